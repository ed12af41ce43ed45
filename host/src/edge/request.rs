//! What the edge does around every request before the router sees it:
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
use axum::http::{Request, Response, StatusCode, header};
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
        host_from_authority(&mut request);
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

/// HTTP/2 names the host in the `:authority` pseudo-header, which hyper
/// puts in the URI, not in `Host`: copy it there, so the routes that read
/// `Host` (a val's own host name, the web UI's same-origin check) see the
/// same request whichever version carried it.
fn host_from_authority<B>(request: &mut Request<B>) {
    if request.headers().contains_key(header::HOST) {
        return;
    }
    // Host and port only: never a user-info part.
    let host = request.uri().authority().and_then(|a| {
        let host = match a.port_u16() {
            Some(port) => format!("{}:{port}", a.host()),
            None => a.host().to_string(),
        };
        header::HeaderValue::from_str(&host).ok()
    });
    if let Some(host) = host {
        request.headers_mut().insert(header::HOST, host);
    }
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
