//! The outgoing requests of standard `wasi:http` components
//! (`wasi:http/outgoing-handler`), checked as the `fetch` import's are:
//! the `fetch` scope, the val's host allowlist, the address policy on
//! every hop (such a guest follows redirects itself, each one a request of
//! its own), the request's budget and the call's deadline.

use std::future::Future;

use bytes::Bytes;
use http_body_util::{BodyExt, Limited};
use valbox_model::{Holder, Scope};
use wasmtime_wasi_http::{Error as WasiError, WasiBody};

use super::Fetch;
use super::client::SendError;
use crate::Ctx;

/// What `WasiHttpHooks::send_request` returns: the response, and the
/// future through which errors after it (none here) would be reported.
pub type Sent = Box<
    dyn Future<
            Output = Result<
                (
                    http::Response<WasiBody>,
                    Box<dyn Future<Output = Result<(), WasiError>> + Send>,
                ),
                WasiError,
            >,
        > + Send,
>;

/// Send `request` for the call in `ctx`. The scope is checked now (so the
/// call's log records a refusal); the rest runs in the returned future,
/// which owns what it needs.
pub fn send_request(ctx: Ctx<'_, Fetch>, request: http::Request<WasiBody>) -> Sent {
    let allowed = ctx.grant.check(Scope::Fetch);
    let fetcher = ctx.cap.fetcher.clone();
    let allowlist = ctx.call.allowlist.clone();
    let deadline = ctx.grant.deadline();
    let budget = ctx.grant.as_within().budget;
    let val_id = ctx.grant.val_id().to_string();
    Box::new(async move {
        let (parts, body) = request.into_parts();
        // The body first: a guest writes it while it waits for the
        // response, and would see a refusal made before reading it as a
        // connection reset rather than as the refusal.
        let body = read_request_body(body, fetcher.limits.request_body_bytes).await?;
        let refused = |e: SendError| {
            tracing::info!(val = %val_id, "wasi:http request refused: {e:?}");
            wasi_error(e)
        };
        allowed.map_err(|d| refused(SendError::Refused(d.message)))?;
        let request = http::Request::from_parts(parts, body);
        let response = fetcher
            .send_one(request, allowlist.as_deref(), deadline, &budget)
            .await
            .map_err(refused)?;
        let limit = fetcher.limits.response_body_bytes;
        let response = http::Response::from(response).map(|body| {
            Limited::new(body, limit)
                .map_err(move |e| {
                    if e.is::<http_body_util::LengthLimitError>() {
                        WasiError::HttpResponseBodySize(Some(limit as u64))
                    } else {
                        WasiError::InternalError(Some(format!("reading the response: {e}")))
                    }
                })
                .boxed_unsync()
        });
        let io: Box<dyn Future<Output = Result<(), WasiError>> + Send> = Box::new(async { Ok(()) });
        Ok((response, io))
    })
}

async fn read_request_body(body: WasiBody, limit: usize) -> Result<Bytes, WasiError> {
    match Limited::new(body, limit).collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(e) if e.is::<http_body_util::LengthLimitError>() => {
            Err(WasiError::HttpRequestBodySize(Some(limit as u64)))
        }
        Err(e) => Err(WasiError::InternalError(Some(format!(
            "reading the request body: {e}"
        )))),
    }
}

/// The fetch refusal as `wasi:http` names it. Its codes carry no text
/// except `internal-error` and the DNS error: the reason is in the
/// server's log.
fn wasi_error(e: SendError) -> WasiError {
    match e {
        SendError::Refused(_) | SendError::OverLimit(_) => WasiError::HttpRequestDenied,
        SendError::Unresolved(why) => WasiError::DnsError {
            rcode: Some(why),
            info_code: None,
        },
        SendError::Invalid(_) => WasiError::HttpRequestUriInvalid,
        SendError::TimedOut(_) => WasiError::ConnectionTimeout,
        SendError::Failed(why) => WasiError::InternalError(Some(why)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each reason a request was not sent reaches a `wasi:http` guest as
    /// the code that names it.
    #[test]
    fn refusals_map_to_their_wasi_http_codes() {
        let why = || "why".to_string();
        let cases = [
            (SendError::Refused(why()), "HttpRequestDenied"),
            (SendError::OverLimit(why()), "HttpRequestDenied"),
            (SendError::Unresolved(why()), "DnsError"),
            (SendError::Invalid(why()), "HttpRequestUriInvalid"),
            (SendError::TimedOut(why()), "ConnectionTimeout"),
            (SendError::Failed(why()), "InternalError"),
        ];
        for (error, code) in cases {
            let seen = format!("{:?}", wasi_error(error));
            assert!(seen.starts_with(code), "{seen} is not {code}");
        }
    }
}
