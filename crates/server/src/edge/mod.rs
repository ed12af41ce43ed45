//! The server's edge: connections are accepted within a cap in all and a
//! cap per client address (past either the connection is closed at once,
//! so one client cannot take every file descriptor); each speaks HTTP/1.1
//! or HTTP/2 (over TLS by ALPN, in the clear by its preface), reads its
//! request heads (within a size limit) and bodies, writes its responses,
//! and waits for its first request and between requests, within time
//! limits; a connection counts against its client's share until it is
//! closed, stalled writes included; accept errors back off instead of
//! spinning; and stopping lets the requests in flight finish.

mod clients;
mod connection;
mod io;
mod request;
mod tls;

use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, watch};
use tokio_rustls::TlsAcceptor;

pub use clients::{ClientAddr, ClientCounts, ClientSeat, ForwardedHeader, TrustedProxies};
pub use tls::{TlsFiles, acceptor as tls_acceptor, acceptor_offering as tls_acceptor_offering};

use crate::metrics::Metrics;
use connection::{Activity, Deadlines, Expired};
use io::{EdgeIo, Stream, linger};
use request::RequestContext;

/// Limits at the edge; defaults in `Default`, documented in the README.
#[derive(Clone, Debug)]
pub struct EdgeLimits {
    /// Connections open at once, in all. Default 4096.
    pub max_connections: usize,
    /// Connections open at once from one client address. Default 256.
    /// Trusted proxies are held to the total cap only.
    pub max_connections_per_client: usize,
    /// Time to send a request head (and, with TLS, to finish the
    /// handshake), and the longest an HTTP/1.1 keep-alive connection waits
    /// idle for the next one. Default 10 s.
    pub header_timeout: Duration,
    /// Time a request body may take to arrive, from when the server starts
    /// reading it. Default 60 s.
    pub body_timeout: Duration,
    /// Bytes of one request head: the request line and every header
    /// (HTTP/2: the header list as RFC 9113 counts it). Past it, 431.
    /// Default 32 KiB; at least 8 KiB.
    pub max_header_bytes: usize,
    /// Time a response may make no progress in being written: the client
    /// reads none of it (or, over HTTP/2, opens no flow-control window
    /// for it). Past it the connection is closed. Default 30 s.
    pub write_timeout: Duration,
    /// The longest an HTTP/2 connection stays open with no request on it
    /// (an HTTP/1.1 one waits at most `header_timeout`). Default 60 s.
    pub idle_timeout: Duration,
}

impl Default for EdgeLimits {
    fn default() -> Self {
        Self {
            max_connections: 4096,
            max_connections_per_client: 256,
            header_timeout: Duration::from_secs(10),
            body_timeout: Duration::from_secs(60),
            max_header_bytes: 32 << 10,
            write_timeout: Duration::from_secs(30),
            idle_timeout: Duration::from_secs(60),
        }
    }
}

/// What one listener serves and how.
pub struct Edge {
    pub limits: EdgeLimits,
    pub proxies: TrustedProxies,
    /// HTTPS with this acceptor; plain HTTP without one.
    pub tls: Option<TlsAcceptor>,
    pub metrics: Arc<Metrics>,
}

/// Most HTTP/2 streams one connection may have open at once.
const MAX_STREAMS_PER_CONNECTION: u32 = 128;
/// HTTP/2 connections are pinged this often, and closed when a ping is not
/// answered within as long again: a dead peer does not keep its slot.
const HTTP2_PING: Duration = Duration::from_secs(30);
/// The least `max_header_bytes` may be (hyper's smallest read buffer).
pub const MIN_HEADER_BYTES: usize = 8 << 10;
/// After refusing a request head, how long the connection reads and drops
/// what the client still sends before closing (see `io::linger`).
const LINGER: Duration = Duration::from_secs(2);

/// Serve `router` on `listener` until `stop` completes, then wait for the
/// open connections' requests to finish.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    edge: Edge,
    stop: impl Future<Output = ()>,
) {
    // Each connection holds a receiver until it ends: stopping sends on
    // it, then waits for every receiver to be dropped.
    let (stopping, _) = watch::channel(());
    let open = Arc::new(Semaphore::new(edge.limits.max_connections));
    let clients = ClientCounts::default();
    let http = http_builder(&edge.limits);
    let context = Arc::new(RequestContext {
        router,
        proxies: edge.proxies.clone(),
        body_timeout: edge.limits.body_timeout,
        metrics: edge.metrics.clone(),
    });
    let deadlines = Deadlines {
        first_request: edge.limits.header_timeout,
        idle: edge.limits.idle_timeout,
        write: edge.limits.write_timeout,
        grace: edge.limits.header_timeout,
    };
    tokio::pin!(stop);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = accept(&listener) => accepted,
            () = &mut stop => break,
        };
        let Ok(seat) = open.clone().try_acquire_owned() else {
            edge.metrics.connection_refused();
            tracing::debug!(
                "refused {peer}: {} connections open",
                edge.limits.max_connections
            );
            continue;
        };
        let peer = peer.ip().to_canonical();
        // A trusted proxy carries many clients: only the total cap holds it.
        let client = if edge.proxies.trusts(peer) {
            None
        } else {
            let Some(client) = clients.take(peer, edge.limits.max_connections_per_client) else {
                edge.metrics.connection_refused();
                tracing::debug!("refused {peer}: its address holds the most connections it may");
                continue;
            };
            Some(client)
        };
        let counted = edge.metrics.connection_opened();
        let _ = stream.set_nodelay(true);
        let (http, context, tls, stop) = (
            http.clone(),
            context.clone(),
            edge.tls.clone(),
            stopping.subscribe(),
        );
        let handshake_timeout = edge.limits.header_timeout;
        tokio::spawn(async move {
            // The seats are held (the connection counts against its
            // client's share and the total) until everything below ends,
            // a stalled writer and a lingering close included.
            let stream = match tls {
                None => Some(Stream::Plain(stream)),
                Some(tls) => handshake(&tls, stream, handshake_timeout)
                    .await
                    .map(|stream| Stream::Tls(Box::new(stream))),
            };
            if let Some(stream) = stream {
                serve_connection(&http, context, stream, peer, deadlines, stop).await;
            }
            drop((seat, client, counted));
        });
    }
    drop(listener);
    stopping.send_replace(());
    stopping.closed().await;
}

/// The HTTP/1.1 and HTTP/2 settings every connection is served with.
fn http_builder(limits: &EdgeLimits) -> auto::Builder<TokioExecutor> {
    let max_header_bytes = limits.max_header_bytes.max(MIN_HEADER_BYTES);
    let mut http = auto::Builder::new(TokioExecutor::new());
    http.http1()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout)
        .max_buf_size(max_header_bytes);
    http.http2()
        .timer(TokioTimer::new())
        .max_concurrent_streams(MAX_STREAMS_PER_CONNECTION)
        .max_header_list_size(u32::try_from(max_header_bytes).unwrap_or(u32::MAX))
        .keep_alive_interval(HTTP2_PING)
        .keep_alive_timeout(HTTP2_PING);
    http
}

/// The next connection. A failed accept (out of file descriptors, say) is
/// retried after a pause that grows while accepts keep failing, so that
/// connections can close meanwhile.
pub(crate) async fn accept(listener: &TcpListener) -> (TcpStream, SocketAddr) {
    let mut backoff = MIN_BACKOFF;
    loop {
        match listener.accept().await {
            Ok(accepted) => return accepted,
            Err(e) => {
                tracing::warn!("accepting a connection: {e}; retrying in {backoff:?}");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(MAX_BACKOFF);
            }
        }
    }
}

/// Serve one connection until it ends: by itself, when its client stops
/// reading (at once), when it carries no request for too long or the
/// server stops (gracefully: the requests in flight finish).
async fn serve_connection(
    http: &auto::Builder<TokioExecutor>,
    context: Arc<RequestContext>,
    stream: Stream,
    peer: IpAddr,
    deadlines: Deadlines,
    mut stop: watch::Receiver<()>,
) {
    let (io, given_back) = EdgeIo::new(stream, deadlines.write);
    let activity = Activity::new();
    let service = {
        let activity = activity.clone();
        hyper::service::service_fn(move |request: axum::http::Request<Incoming>| {
            let (context, ticket) = (context.clone(), activity.request(request.version()));
            async move {
                let response = context.handle(peer, request).await;
                Ok::<_, std::convert::Infallible>(ticket.answer(response))
            }
        })
    };
    let mut stalled = false;
    let served = {
        let connection = http.serve_connection(TokioIo::new(io), service);
        tokio::pin!(connection);
        let mut closing = None;
        loop {
            tokio::select! {
                served = connection.as_mut() => break served,
                _ = stop.changed(), if closing.is_none() => {
                    connection.as_mut().graceful_shutdown();
                    closing = Some(tokio::time::Instant::now());
                }
                why = activity.expired(&deadlines, closing) => match why {
                    Expired::Stalled => {
                        tracing::debug!(
                            "connection from {peer}: a response went unread for {:?}; closed",
                            deadlines.write
                        );
                        stalled = true;
                        break Ok(());
                    }
                    Expired::Idle if closing.is_none() => {
                        connection.as_mut().graceful_shutdown();
                        closing = Some(tokio::time::Instant::now());
                    }
                    Expired::Idle => break Ok(()),
                },
            }
        }
    };
    if stalled {
        // Reset, rather than close, so the kernel drops what it still
        // holds for a client that reads nothing.
        if let Ok(stream) = given_back.await {
            let _ = stream.tcp().set_zero_linger();
        }
        return;
    }
    if let Err(e) = served {
        tracing::debug!("connection from {peer}: {e}");
        // Hyper answered a head it refused (431, 400) and closed.
        let refused = e
            .downcast_ref::<hyper::Error>()
            .is_some_and(hyper::Error::is_parse);
        if let (true, Ok(stream)) = (refused, given_back.await) {
            linger(stream, LINGER).await;
        }
    }
}

/// The TLS handshake, within the head timeout (a client that connects and
/// says nothing must not hold its slot).
async fn handshake(
    tls: &TlsAcceptor,
    stream: TcpStream,
    limit: Duration,
) -> Option<tokio_rustls::server::TlsStream<TcpStream>> {
    match tokio::time::timeout(limit, tls.accept(stream)).await {
        Ok(Ok(stream)) => Some(stream),
        Ok(Err(e)) => {
            tracing::debug!("TLS handshake failed: {e}");
            None
        }
        Err(_) => {
            tracing::debug!("TLS handshake took longer than {limit:?}");
            None
        }
    }
}

const MIN_BACKOFF: Duration = Duration::from_millis(5);
const MAX_BACKOFF: Duration = Duration::from_secs(1);
