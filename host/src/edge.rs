//! The server's edge: connections are accepted within a cap in all and a
//! cap per client address (past either the connection is closed at once,
//! so one client cannot take every file descriptor), each reads its
//! request heads, and waits between keep-alive requests, within a time
//! limit; accept errors back off instead of spinning; and stopping lets
//! the requests in flight finish.

use std::collections::HashMap;
use std::future::Future;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

/// Limits at the edge; defaults in `Default`, documented in the README.
#[derive(Clone, Debug)]
pub struct EdgeLimits {
    /// Connections open at once, in all. Default 4096.
    pub max_connections: usize,
    /// Connections open at once from one client address. Default 256.
    pub max_connections_per_client: usize,
    /// Time to send a request head, and the longest a keep-alive
    /// connection waits idle for the next one. Default 10 s.
    pub header_timeout: Duration,
}

impl Default for EdgeLimits {
    fn default() -> Self {
        Self {
            max_connections: 4096,
            max_connections_per_client: 256,
            header_timeout: Duration::from_secs(10),
        }
    }
}

/// Serve `router` on `listener` until `stop` completes, then wait for the
/// open connections' requests to finish.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: EdgeLimits,
    stop: impl Future<Output = ()>,
) {
    let graceful = GracefulShutdown::new();
    let open = Arc::new(Semaphore::new(limits.max_connections));
    let clients = Arc::new(Mutex::new(HashMap::new()));
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
            tracing::debug!(
                "refused {peer}: {} connections open",
                limits.max_connections
            );
            continue;
        };
        let Some(client) = ClientSeat::take(&clients, peer.ip(), limits.max_connections_per_client)
        else {
            tracing::debug!("refused {peer}: its address holds the most connections it may");
            continue;
        };
        let _ = stream.set_nodelay(true);
        let connection = http1::Builder::new()
            .timer(TokioTimer::new())
            .header_read_timeout(limits.header_timeout)
            .serve_connection(
                TokioIo::new(stream),
                TowerToHyperService::new(router.clone()),
            );
        let connection = graceful.watch(connection);
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::debug!("connection from {peer}: {e}");
            }
            drop((seat, client));
        });
    }
    drop(listener);
    graceful.shutdown().await;
}

const MIN_BACKOFF: Duration = Duration::from_millis(5);
const MAX_BACKOFF: Duration = Duration::from_secs(1);

/// One of a client address's connections, given back when dropped.
struct ClientSeat {
    clients: Arc<Mutex<HashMap<IpAddr, usize>>>,
    ip: IpAddr,
}

impl ClientSeat {
    fn take(clients: &Arc<Mutex<HashMap<IpAddr, usize>>>, ip: IpAddr, max: usize) -> Option<Self> {
        let mut open = clients.lock().unwrap_or_else(|p| p.into_inner());
        let count = open.entry(ip).or_insert(0);
        if *count >= max {
            return None;
        }
        *count += 1;
        Some(Self {
            clients: clients.clone(),
            ip,
        })
    }
}

impl Drop for ClientSeat {
    fn drop(&mut self) {
        let mut open = self.clients.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(count) = open.get_mut(&self.ip) {
            *count -= 1;
            if *count == 0 {
                open.remove(&self.ip);
            }
        }
    }
}
