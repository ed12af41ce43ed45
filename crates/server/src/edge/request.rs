//! What the edge does around every request before the router sees it:
//! settle the one host it is for (or refuse it: see `canonical_host`),
//! name the client (behind a trusted proxy, from its forwarding header),
//! open the request's tracing span, bound the time its body may take to
//! arrive, and count it in the metrics.

use std::future::Future;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::http::uri::Authority;
use axum::http::{Request, Response, StatusCode, Version, header};
use axum::response::IntoResponse;
use bytes::Bytes;
use http_body::{Body as HttpBody, Frame, SizeHint};
use hyper::body::Incoming;
use tower::ServiceExt;
use tracing::Instrument;

use super::clients::{ClientAddr, TrustedProxies};
use crate::error::ApiError;
use crate::metrics::Metrics;

/// Shared by every connection of one listener.
pub(super) struct RequestContext {
    pub router: Router,
    pub proxies: TrustedProxies,
    pub body_timeout: Duration,
    pub metrics: Arc<Metrics>,
}

impl RequestContext {
    pub async fn handle(&self, peer: IpAddr, mut request: Request<Incoming>) -> Response<Body> {
        let began = Instant::now();
        let client = self.proxies.client_addr(peer, request.headers());
        let span = tracing::info_span!(
            "request",
            method = %request.method(),
            path = %request.uri().path(),
            %client,
        );
        if let Err(refused) = canonical_host(&mut request) {
            let response = refused.into_response();
            self.metrics
                .request(response.status().as_u16(), began.elapsed().as_secs_f64());
            span.in_scope(|| tracing::debug!(status = 400, "refused: its host"));
            return response;
        }
        let late = Arc::new(AtomicBool::new(false));
        let mut request =
            request.map(|body| Body::new(DeadlineBody::new(body, self.body_timeout, late.clone())));
        request.extensions_mut().insert(ClientAddr(client));
        let response = match self
            .router
            .clone()
            .oneshot(request)
            .instrument(span.clone())
            .await
        {
            Ok(response) => response,
            Err(never) => match never {},
        };
        let response = if late.load(Ordering::Relaxed) {
            self.metrics.body_timeout();
            body_timeout_response(self.body_timeout)
        } else {
            response
        };
        let elapsed = began.elapsed();
        let status = response.status().as_u16();
        self.metrics.request(status, elapsed.as_secs_f64());
        span.in_scope(|| tracing::debug!(status, ms = elapsed.as_secs_f64() * 1e3, "answered"));
        response
    }
}

/// Make `Host` the one authority the request names, so that every route
/// that reads it (a val's own host name, the web UI's same-origin check)
/// sees the same host whichever way the client spelled it. The
/// request-target's authority wins where it has one (RFC 9112 §3.2.2, an
/// HTTP/1.1 absolute-form target; RFC 9113 §8.3.1, HTTP/2's `:authority`,
/// which hyper puts in the URI); a `Host` that names another host is
/// refused, as are two `Host` fields, a `Host` that is not a host, and an
/// HTTP/1.1 request without one (RFC 9112 §3.2).
fn canonical_host<B>(request: &mut Request<B>) -> Result<(), ApiError> {
    let mut hosts = request.headers().get_all(header::HOST).iter();
    let host = hosts.next();
    if hosts.next().is_some() {
        return Err(ApiError::bad_request(
            "duplicate_host",
            "the request has more than one Host header; send exactly one",
        ));
    }
    let host = match host {
        Some(value) => Some(parse_host(value.as_bytes())?),
        None if request.version() == Version::HTTP_11 => {
            return Err(ApiError::bad_request(
                "missing_host",
                "an HTTP/1.1 request needs a Host header naming the server it is for",
            ));
        }
        None => None,
    };
    let Some(target) = request.uri().authority() else {
        return Ok(());
    };
    if target.as_str().contains('@') {
        return Err(ApiError::bad_request(
            "invalid_host",
            "the request-target's authority has a user-info part (`user@`); \
             send credentials in the Authorization header",
        ));
    }
    let scheme = request.uri().scheme_str();
    if let Some(host) = &host
        && !host
            .as_ref()
            .is_some_and(|host| same_authority(host, target, scheme))
    {
        return Err(ApiError::bad_request(
            "host_mismatch",
            format!(
                "the Host header (`{}`) names another host than the request-target \
                 (`{target}`); send the same host in both, or only one of them",
                host.as_ref().map_or("", Authority::as_str)
            ),
        ));
    }
    let value = header::HeaderValue::from_str(target.as_str()).map_err(|_| invalid_host())?;
    request.headers_mut().insert(header::HOST, value);
    Ok(())
}

/// A `Host` value: an authority without user-info (`host`, `host:port`,
/// `[::1]:port`), or `None` when empty (allowed when the target has none).
fn parse_host(value: &[u8]) -> Result<Option<Authority>, ApiError> {
    if value.is_empty() {
        return Ok(None);
    }
    match Authority::try_from(value) {
        Ok(host) if !host.as_str().contains('@') && !host.host().is_empty() => Ok(Some(host)),
        _ => Err(invalid_host()),
    }
}

fn invalid_host() -> ApiError {
    ApiError::bad_request(
        "invalid_host",
        "the Host header is not a host name or address with an optional port",
    )
}

/// Whether two authorities name the same host and port (the scheme's
/// default port when none is given).
fn same_authority(a: &Authority, b: &Authority, scheme: Option<&str>) -> bool {
    let default = match scheme {
        Some(s) if s.eq_ignore_ascii_case("https") => Some(443),
        Some(s) if s.eq_ignore_ascii_case("http") => Some(80),
        _ => None,
    };
    a.host().eq_ignore_ascii_case(b.host()) && a.port_u16().or(default) == b.port_u16().or(default)
}

/// The 408 for a body that came too slowly; the connection closes with it.
fn body_timeout_response(limit: Duration) -> Response<Body> {
    let mut response = ApiError::new(
        StatusCode::REQUEST_TIMEOUT,
        "request_body_timeout",
        format!(
            "the request body did not arrive within {} s of the server starting to read it; \
             send it in one go, or a smaller one",
            limit.as_secs_f64()
        ),
    )
    .into_response();
    response.headers_mut().insert(
        header::CONNECTION,
        header::HeaderValue::from_static("close"),
    );
    response
}

/// A request body that fails once `limit` has passed since it was first
/// read, so a client trickling a body (a slow POST) cannot hold a handler,
/// its buffers and its call slot for ever. The clock starts at the first
/// read, not at the request head, so a handler that waits before reading
/// costs the client nothing.
struct DeadlineBody {
    inner: Incoming,
    limit: Duration,
    deadline: Option<Pin<Box<tokio::time::Sleep>>>,
    late: Arc<AtomicBool>,
}

impl DeadlineBody {
    fn new(inner: Incoming, limit: Duration, late: Arc<AtomicBool>) -> Self {
        Self {
            inner,
            limit,
            deadline: None,
            late,
        }
    }
}

#[derive(Debug, thiserror::Error)]
#[error("the request body did not arrive in time")]
struct BodyTimedOut;

impl HttpBody for DeadlineBody {
    type Data = Bytes;
    type Error = axum::BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let this = self.get_mut();
        if let Poll::Ready(frame) = Pin::new(&mut this.inner).poll_frame(cx) {
            return Poll::Ready(frame.map(|f| f.map_err(Into::into)));
        }
        let limit = this.limit;
        let deadline = this
            .deadline
            .get_or_insert_with(|| Box::pin(tokio::time::sleep(limit)));
        match deadline.as_mut().poll(cx) {
            Poll::Ready(()) => {
                this.late.store(true, Ordering::Relaxed);
                Poll::Ready(Some(Err(BodyTimedOut.into())))
            }
            Poll::Pending => Poll::Pending,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(version: Version, uri: &str, hosts: &[&str]) -> Request<()> {
        let mut request = Request::builder().version(version).uri(uri);
        for host in hosts {
            request = request.header(header::HOST, *host);
        }
        request.body(()).unwrap()
    }

    /// The one `Host` a request is routed by, or the code it is refused with.
    fn host(version: Version, uri: &str, hosts: &[&str]) -> Result<String, &'static str> {
        let mut request = request(version, uri, hosts);
        canonical_host(&mut request).map_err(|e| e.code)?;
        let mut all = request.headers().get_all(header::HOST).iter();
        let one = all.next().map_or("", |h| h.to_str().unwrap()).to_string();
        assert!(all.next().is_none());
        Ok(one)
    }

    #[test]
    fn the_target_authority_routes_and_a_disagreeing_host_is_refused() {
        let (http_10, http_11, http_2) = (Version::HTTP_10, Version::HTTP_11, Version::HTTP_2);
        assert_eq!(host(http_11, "/x", &["a.test"]), Ok("a.test".into()));
        assert_eq!(host(http_11, "/x", &[]), Err("missing_host"));
        assert_eq!(host(http_10, "/x", &[]), Ok("".into()));
        assert_eq!(host(http_11, "/x", &["a", "a"]), Err("duplicate_host"));
        assert_eq!(host(http_11, "/x", &["a b"]), Err("invalid_host"));
        assert_eq!(host(http_11, "/x", &["u@a"]), Err("invalid_host"));
        // Absolute-form, and HTTP/2's :authority (both in the URI).
        for version in [http_11, http_2] {
            let uri = "http://a.test/x";
            assert_eq!(host(version, uri, &["A.test:80"]), Ok("a.test".into()));
            assert_eq!(host(version, uri, &["b.test"]), Err("host_mismatch"));
            assert_eq!(host(version, uri, &["a.test:8080"]), Err("host_mismatch"));
            assert_eq!(host(version, uri, &[""]), Err("host_mismatch"));
            assert_eq!(
                host(version, "http://u@a.test/", &["a.test"]),
                Err("invalid_host")
            );
        }
        assert_eq!(
            host(http_2, "https://[::1]:8443/", &[]),
            Ok("[::1]:8443".into())
        );
        assert_eq!(
            host(http_2, "https://a.test/", &["a.test:443"]),
            Ok("a.test".into())
        );
        assert_eq!(
            host(http_10, "http://a.test:81/", &[]),
            Ok("a.test:81".into())
        );
    }
}
