//! What one connection's requests are doing, so that a connection whose
//! client stops reading its responses, or that carries no request, is
//! closed rather than held for ever.

use std::collections::HashMap;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::Body;
use axum::http::Version;
use bytes::Bytes;
use http_body::{Body as HttpBody, Frame, SizeHint};
use tokio::sync::Notify;
use tokio::time::Instant;

/// The time limits [`Activity::expired`] applies.
#[derive(Clone, Copy, Debug)]
pub(super) struct Deadlines {
    /// From the start (after the TLS handshake) to the first request.
    pub first_request: Duration,
    /// Between an HTTP/2 connection's requests.
    pub idle: Duration,
    /// A response waiting to be written.
    pub write: Duration,
    /// After a graceful close began, for the client to let go.
    pub grace: Duration,
}

/// Why a connection should end.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Expired {
    /// A response has waited `write` to be taken up: the client is not
    /// reading (or, over HTTP/2, opens it no window). Close at once.
    Stalled,
    /// No request for as long as the connection may sit idle: close it
    /// gracefully (or, when that began long enough ago, at once).
    Idle,
}

/// What one connection's requests are doing.
pub(super) struct Activity {
    state: Mutex<State>,
    changed: Notify,
}

struct State {
    /// Requests being handled or answered.
    in_flight: usize,
    /// Since when none has been (from the start).
    idle_since: Instant,
    /// Whether a request came at all.
    served_any: bool,
    http2: bool,
    /// Responses handed to hyper and not taken up since, by when.
    waiting: HashMap<u64, Instant>,
    next_id: u64,
}

impl Activity {
    pub fn new() -> Arc<Self> {
        Arc::new(Self {
            state: Mutex::new(State {
                in_flight: 0,
                idle_since: Instant::now(),
                served_any: false,
                http2: false,
                waiting: HashMap::new(),
                next_id: 0,
            }),
            changed: Notify::new(),
        })
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A request begins; it ends when the ticket (or the body it becomes
    /// part of) is dropped.
    pub fn request(self: &Arc<Self>, version: Version) -> Ticket {
        let mut state = self.state();
        state.in_flight += 1;
        state.served_any = true;
        state.http2 |= version == Version::HTTP_2;
        let id = state.next_id;
        state.next_id += 1;
        Ticket {
            activity: self.clone(),
            id,
            http2: version == Version::HTTP_2,
        }
    }

    /// Completes when the connection should end, and why. `closing`:
    /// when a graceful close began, if it did.
    pub async fn expired(&self, limits: &Deadlines, closing: Option<Instant>) -> Expired {
        loop {
            let changed = self.changed.notified();
            tokio::pin!(changed);
            changed.as_mut().enable();
            let next = {
                let state = self.state();
                if let Some(oldest) = state.waiting.values().min() {
                    Some((*oldest + limits.write, Expired::Stalled))
                } else if state.in_flight > 0 {
                    None
                } else if let Some(closing) = closing {
                    Some((state.idle_since.max(closing) + limits.grace, Expired::Idle))
                } else if !state.served_any {
                    Some((state.idle_since + limits.first_request, Expired::Idle))
                } else if state.http2 {
                    Some((state.idle_since + limits.idle, Expired::Idle))
                } else {
                    // HTTP/1.1 waits for its next head within hyper's own
                    // head timeout.
                    None
                }
            };
            match next {
                Some((at, why)) if at <= Instant::now() => return why,
                Some((at, _)) => {
                    tokio::select! {
                        () = tokio::time::sleep_until(at) => {}
                        () = &mut changed => {}
                    }
                }
                None => changed.await,
            }
        }
    }
}

/// One request on the connection, from its head until its response is
/// written (or abandoned).
pub(super) struct Ticket {
    activity: Arc<Activity>,
    id: u64,
    http2: bool,
}

impl Ticket {
    /// The response waits (from now) for hyper to take up its next part,
    /// or, with `false`, for its handler to produce it.
    fn waiting(&self, waiting: bool) {
        let mut state = self.activity.state();
        if waiting {
            let was_empty = state.waiting.is_empty();
            state.waiting.insert(self.id, Instant::now());
            drop(state);
            if was_empty {
                self.activity.changed.notify_one();
            }
        } else {
            state.waiting.remove(&self.id);
        }
    }

    /// The response to this request, watched until it is written.
    pub fn answer(self, response: axum::http::Response<Body>) -> axum::http::Response<WatchedBody> {
        self.waiting(true);
        response.map(|inner| WatchedBody {
            inner,
            rest: Bytes::new(),
            ticket: self,
        })
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        let mut state = self.activity.state();
        state.waiting.remove(&self.id);
        state.in_flight -= 1;
        if state.in_flight == 0 {
            state.idle_since = Instant::now();
            drop(state);
            self.activity.changed.notify_one();
        }
    }
}

/// Over HTTP/2, a response body is handed to hyper in pieces of at most
/// this many bytes (a frame's default size): hyper waits for the client's
/// flow-control window before taking each one, so a client that opens no
/// window stalls the body where it can be seen, instead of hyper handing
/// the whole of it to h2 to hold (out of sight) for as long as the
/// connection lives.
const HTTP2_PIECE: usize = 16 << 10;

/// A response body that tells its connection's [`Activity`] whether it is
/// waiting for hyper to take up its next frame (or, having given its
/// last, to be let go). Waiting is the client's doing: hyper takes frames
/// as fast as the client reads them. A body with no frame ready yet is the
/// handler's doing, and is not held against the connection.
pub(super) struct WatchedBody {
    inner: Body,
    /// The rest of a data frame handed over in pieces.
    rest: Bytes,
    ticket: Ticket,
}

impl HttpBody for WatchedBody {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let this = self.get_mut();
        let polled = if this.rest.is_empty() {
            Pin::new(&mut this.inner).poll_frame(cx)
        } else {
            Poll::Ready(Some(Ok(Frame::data(std::mem::take(&mut this.rest)))))
        };
        let polled = polled.map(|frame| {
            frame.map(|frame| {
                frame.map(|frame| match frame.into_data() {
                    Ok(mut data) if this.ticket.http2 && data.len() > HTTP2_PIECE => {
                        this.rest = data.split_off(HTTP2_PIECE);
                        Frame::data(data)
                    }
                    Ok(data) => Frame::data(data),
                    Err(frame) => frame,
                })
            })
        });
        this.ticket.waiting(polled.is_ready());
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.rest.is_empty() && self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        let inner = self.inner.size_hint();
        let rest = self.rest.len() as u64;
        let mut hint = SizeHint::new();
        hint.set_lower(inner.lower() + rest);
        if let Some(upper) = inner.upper() {
            hint.set_upper(upper + rest);
        }
        hint
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    fn limits() -> Deadlines {
        Deadlines {
            first_request: 200 * MS,
            idle: 400 * MS,
            write: 300 * MS,
            grace: 100 * MS,
        }
    }

    /// Why and when (roughly, in ms) the watch fires, or `None` within 1 s.
    async fn expires(activity: &Activity, closing: Option<Instant>) -> Option<(Expired, u128)> {
        let began = Instant::now();
        let why =
            tokio::time::timeout(Duration::from_secs(1), activity.expired(&limits(), closing))
                .await
                .ok()?;
        // Rounded down to 100 ms: timers fire a little late, never early.
        Some((why, began.elapsed().as_millis() / 100 * 100))
    }

    #[tokio::test]
    async fn a_connection_without_a_request_expires_after_the_first_request_limit() {
        let activity = Activity::new();
        assert_eq!(expires(&activity, None).await, Some((Expired::Idle, 200)));
    }

    #[tokio::test]
    async fn an_unread_response_stalls_and_a_slow_handler_does_not() {
        let activity = Activity::new();
        let ticket = activity.request(Version::HTTP_11);
        // Handling: no deadline at all.
        assert_eq!(expires(&activity, None).await, None);
        let response = ticket.answer(axum::http::Response::new(Body::from("hello")));
        assert_eq!(
            expires(&activity, None).await,
            Some((Expired::Stalled, 300))
        );
        // Taken up, the body waits to be let go; dropped, HTTP/1.1 waits
        // on hyper's own head timeout.
        let mut body = response.into_body();
        let frame = std::future::poll_fn(|cx| Pin::new(&mut body).poll_frame(cx)).await;
        assert_eq!(frame.unwrap().unwrap().into_data().unwrap(), "hello");
        assert_eq!(
            expires(&activity, None).await,
            Some((Expired::Stalled, 300))
        );
        drop(body);
        assert_eq!(expires(&activity, None).await, None);
    }

    #[tokio::test]
    async fn an_idle_http2_connection_expires_and_a_closing_one_sooner() {
        let activity = Activity::new();
        drop(activity.request(Version::HTTP_2));
        assert_eq!(expires(&activity, None).await, Some((Expired::Idle, 400)));
        let closing = Some(Instant::now());
        assert_eq!(
            expires(&activity, closing).await,
            Some((Expired::Idle, 100))
        );
    }

    #[tokio::test]
    async fn a_response_handed_over_wakes_the_watch() {
        let activity = Activity::new();
        let watch = {
            let activity = activity.clone();
            tokio::spawn(async move {
                let began = Instant::now();
                let why = activity.expired(&limits(), None).await;
                (why, began.elapsed())
            })
        };
        tokio::time::sleep(100 * MS).await;
        let ticket = activity.request(Version::HTTP_11);
        tokio::time::sleep(300 * MS).await;
        let _response = ticket.answer(axum::http::Response::new(Body::from("x")));
        let (why, after) = watch.await.unwrap();
        assert_eq!(why, Expired::Stalled);
        assert!(after >= 700 * MS && after < 900 * MS, "{after:?}");
    }

    #[tokio::test]
    async fn an_http2_body_is_handed_over_in_pieces() {
        let activity = Activity::new();
        let big = Bytes::from(vec![7u8; 40 << 10]);
        let response = activity
            .request(Version::HTTP_2)
            .answer(axum::http::Response::new(Body::from(big.clone())));
        let mut body = response.into_body();
        assert_eq!(body.size_hint().exact(), Some(40 << 10));
        let mut pieces = Vec::new();
        while !body.is_end_stream() {
            let frame = std::future::poll_fn(|cx| Pin::new(&mut body).poll_frame(cx)).await;
            pieces.push(frame.unwrap().unwrap().into_data().unwrap());
        }
        assert_eq!(
            pieces.iter().map(Bytes::len).collect::<Vec<_>>(),
            [16 << 10, 16 << 10, 8 << 10]
        );
        assert_eq!(pieces.concat(), big);
    }
}
