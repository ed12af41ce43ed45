//! Standard `wasi:http/proxy` components as HTTP vals: the platform's
//! request handed to `wasi:http/incoming-handler`, the response read while
//! the handler runs, and `wasi:cli/environment` answered by the host.
//! Their outgoing requests go to [`Host::http_hooks`], where the embedder
//! checks them as it checks its own fetch.

use std::future::Future;

use bytes::Bytes;
use futures_util::FutureExt;
use http_body_util::{BodyExt, Full, Limited};
use wasmtime::component::Linker;
use wasmtime::{Store, StoreContextMut};
use wasmtime_wasi_http::WasiHttpView;
use wasmtime_wasi_http::p2::bindings::Proxy;
use wasmtime_wasi_http::p2::bindings::http::types::{ErrorCode, Scheme};
use wasmtime_wasi_http::p2::body::HyperOutgoingBody;

use crate::{CallState, Host, HttpRequest, HttpResponse};

/// The export that makes a component a standard HTTP val (any 0.2.x).
pub const WASI_HTTP_EXPORT_PREFIX: &str = "wasi:http/incoming-handler@0.2.";

/// The `wasi:cli/environment` function whose answer the host decides.
const ENVIRONMENT: (&str, &str) = ("wasi:cli/environment@0.2.12", "get-environment");

/// The val's response body was larger than the limit.
#[derive(Debug, thiserror::Error)]
#[error("the val's response body is larger than the limit")]
pub(crate) struct BodyTooLarge;

/// Answer `get-environment` from the call's host state instead of the
/// empty environment wasmtime-wasi holds, so that `std::env`, `process.env`
/// and `os.environ` see what the call was granted and nothing else.
pub(crate) fn link_environment<H: Host>(linker: &mut Linker<CallState<H>>) -> wasmtime::Result<()> {
    linker.allow_shadowing(true);
    let result = linker.instance(ENVIRONMENT.0)?.func_wrap_async(
        ENVIRONMENT.1,
        |mut store: StoreContextMut<'_, CallState<H>>, (): ()| {
            Box::new(async move { Ok((store.data_mut().host.environment().await,)) })
        },
    );
    linker.allow_shadowing(false);
    result
}

/// Call the component's `wasi:http/incoming-handler` with `request`,
/// reading its response body (at most `limit` bytes) while it runs: the
/// guest writes into a channel that holds one chunk.
pub(crate) async fn handle<H: Host>(
    proxy: &Proxy,
    store: &mut Store<CallState<H>>,
    request: HttpRequest,
    limit: usize,
) -> wasmtime::Result<HttpResponse> {
    let request = incoming(request)?;
    let (sender, receiver) = tokio::sync::oneshot::channel();
    let (request, out) = {
        let mut http = store.data_mut().http();
        let request = http.new_incoming_request(Scheme::Http, request)?;
        (request, http.new_response_outparam(sender)?)
    };
    let call = proxy
        .wasi_http_incoming_handler()
        .call_handle(&mut *store, request, out);
    let read = read_response(receiver, limit);
    match run_both(call, read).await {
        // Its writes fail once the body is refused: the size is the cause.
        (_, Some(Err(e))) if e.is::<BodyTooLarge>() => Err(e),
        (Err(e), _) => Err(e),
        (Ok(()), Some(response)) => response,
        (Ok(()), None) => Err(wasmtime::Error::msg(
            "the val returned before it finished its response (set the response-outparam and \
             finish the body before returning from `handle`)",
        )),
    }
}

/// Run `call` to its end while `read` makes progress; then finish `read`
/// only with what is already there: once the handler has returned, the
/// guest writes nothing more.
async fn run_both<C, R>(call: C, read: R) -> (C::Output, Option<R::Output>)
where
    C: Future,
    R: Future,
{
    let mut call = std::pin::pin!(call);
    let mut read = std::pin::pin!(read);
    let mut response = None;
    let called = loop {
        tokio::select! {
            called = &mut call => break called,
            done = &mut read, if response.is_none() => response = Some(done),
        }
    };
    if response.is_none() {
        // Unconstrained: tokio's cooperative budget must not make a ready
        // body look pending.
        response = tokio::task::unconstrained(read).now_or_never();
    }
    (called, response)
}

/// The response the guest set, with its body collected.
async fn read_response(
    receiver: tokio::sync::oneshot::Receiver<Result<http::Response<HyperOutgoingBody>, ErrorCode>>,
    limit: usize,
) -> wasmtime::Result<HttpResponse> {
    let response = match receiver.await {
        Ok(Ok(response)) => response,
        Ok(Err(code)) => {
            return Err(wasmtime::Error::msg(format!(
                "the val answered with the error {code:?}"
            )));
        }
        Err(_) => {
            return Err(wasmtime::Error::msg(
                "the val dropped its response-outparam without setting a response",
            ));
        }
    };
    let (parts, body) = response.into_parts();
    let body = match Limited::new(body, limit).collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(e) if e.is::<http_body_util::LengthLimitError>() => {
            return Err(wasmtime::Error::new(BodyTooLarge));
        }
        Err(e) => {
            return Err(wasmtime::Error::msg(format!(
                "the val's response body failed: {e}"
            )));
        }
    };
    let headers = parts
        .headers
        .iter()
        .map(|(name, value)| {
            (
                name.to_string(),
                String::from_utf8_lossy(value.as_bytes()).into_owned(),
            )
        })
        .collect();
    Ok(HttpResponse {
        status: parts.status.as_u16(),
        headers,
        body: body.to_vec(),
    })
}

/// The platform's request as `wasi:http` sees it: an absolute URI whose
/// authority is the request's `Host` (the edge has made it canonical), or
/// `localhost` for a request without one (a nested call, HTTP/1.0).
fn incoming(request: HttpRequest) -> wasmtime::Result<http::Request<Full<Bytes>>> {
    let authority = request
        .headers
        .iter()
        .find(|(name, _)| name.eq_ignore_ascii_case("host"))
        .and_then(|(_, value)| http::uri::Authority::try_from(value.as_str()).ok())
        .map_or_else(|| "localhost".to_string(), |a| a.to_string());
    let uri = if request.query.is_empty() {
        format!("http://{authority}{}", request.path)
    } else {
        format!("http://{authority}{}?{}", request.path, request.query)
    };
    let mut builder = http::Request::builder()
        .method(request.method.as_str())
        .uri(uri);
    for (name, value) in &request.headers {
        builder = builder.header(name.as_str(), value.as_str());
    }
    Ok(builder.body(Full::new(Bytes::from(request.body)))?)
}
