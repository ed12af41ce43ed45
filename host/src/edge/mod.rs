//! The server's edge: connections are accepted within a cap in all and a
//! cap per client address (past either the connection is closed at once,
//! so one client cannot take every file descriptor); each speaks HTTP/1.1
//! or HTTP/2 (over TLS by ALPN, in the clear by its preface), reads its
//! request heads and bodies, and waits between keep-alive requests, within
//! time limits; accept errors back off instead of spinning; and stopping
//! lets the requests in flight finish.

mod clients;
mod request;
mod tls;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio_rustls::TlsAcceptor;

pub use clients::{ClientAddr, ForwardedHeader, TrustedProxies};
pub use tls::{TlsFiles, acceptor as tls_acceptor};

use crate::metrics::Metrics;
use clients::ClientCounts;
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
}

impl Default for EdgeLimits {
    fn default() -> Self {
        Self {
            max_connections: 4096,
            max_connections_per_client: 256,
            header_timeout: Duration::from_secs(10),
            body_timeout: Duration::from_secs(60),
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

/// Serve `router` on `listener` until `stop` completes, then wait for the
/// open connections' requests to finish.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    edge: Edge,
    stop: impl Future<Output = ()>,
) {
    let graceful = GracefulShutdown::new();
    let open = Arc::new(Semaphore::new(edge.limits.max_connections));
    let clients = ClientCounts::default();
    let mut http = auto::Builder::new(TokioExecutor::new());
    http.http1()
        .timer(TokioTimer::new())
        .header_read_timeout(edge.limits.header_timeout);
    http.http2()
        .timer(TokioTimer::new())
        .max_concurrent_streams(MAX_STREAMS_PER_CONNECTION)
        .keep_alive_interval(HTTP2_PING)
        .keep_alive_timeout(HTTP2_PING);
    let context = Arc::new(RequestContext {
        router,
        proxies: edge.proxies.clone(),
        body_timeout: edge.limits.body_timeout,
        metrics: edge.metrics.clone(),
    });
    let mut backoff = MIN_BACKOFF;
    tokio::pin!(stop);
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            () = &mut stop => break,
        };
        let (stream, peer) = match accepted {
            Ok(accepted) => {
                backoff = MIN_BACKOFF;
                accepted
            }
            Err(e) => {
                // Out of file descriptors, say: wait for some to close.
                tracing::warn!("accepting a connection: {e}; retrying in {backoff:?}");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(MAX_BACKOFF);
                continue;
            }
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
        let (http, context, tls, watcher) = (
            http.clone(),
            context.clone(),
            edge.tls.clone(),
            graceful.watcher(),
        );
        let handshake_timeout = edge.limits.header_timeout;
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |request| {
                let context = context.clone();
                async move { Ok::<_, std::convert::Infallible>(context.handle(peer, request).await) }
            });
            let served = match tls {
                None => {
                    let connection = http.serve_connection(TokioIo::new(stream), service);
                    watcher.watch(connection.into_owned()).await
                }
                Some(tls) => match handshake(&tls, stream, handshake_timeout).await {
                    Some(stream) => {
                        let connection = http.serve_connection(TokioIo::new(stream), service);
                        watcher.watch(connection.into_owned()).await
                    }
                    None => Ok(()),
                },
            };
            if let Err(e) = served {
                tracing::debug!("connection from {peer}: {e}");
            }
            drop((seat, client, counted));
        });
    }
    drop(listener);
    graceful.shutdown().await;
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
