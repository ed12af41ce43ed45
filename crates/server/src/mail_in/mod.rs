//! Receiving mail for email vals: an SMTP server (`--smtp-listen`) for
//! `{user}.{val}@` the mail domain. A message is acknowledged (250) only
//! once it is in the store's mail queue; the delivery worker
//! (`services::mail_delivery`) calls the val with it.
//!
//! Strangers talk to this port, so everything is bounded: connections in
//! all and per client address (421), messages per address per minute
//! (451), line and message sizes (500, 552), recipients per message (452),
//! bytes queued per val (452), time per command and per session (421),
//! bad commands per session (421).

mod parse;
mod session;

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::net::TcpListener;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_rustls::TlsAcceptor;

pub use parse::{LOOP_HEADER, loop_trace, received, trace_of};

use crate::app::App;
use crate::edge::{ClientCounts, ClientSeat, TlsFiles};

/// How the SMTP server listens and what it allows.
#[derive(Clone, Debug)]
pub struct MailConfig {
    pub listen: SocketAddr,
    /// The domain of vals' addresses, lowercase: `{user}.{val}@domain`.
    pub domain: String,
    /// Offer STARTTLS with this certificate.
    pub tls: Option<TlsFiles>,
    pub max_message_bytes: usize,
    pub max_connections: usize,
    pub max_connections_per_client: usize,
    /// Messages one client address may send per minute.
    pub messages_per_client_minute: u32,
    /// Bytes that may wait in the queue for one val.
    pub max_queued_bytes_per_val: i64,
    /// Bytes that may wait in the queue in all: what strangers can make
    /// this server keep on disk.
    pub max_queued_bytes: i64,
    /// How long a message whose val keeps failing is retried.
    pub retry_for: Duration,
    /// The first retry's delay; each next one doubles, up to 10 minutes.
    pub first_retry: Duration,
}

impl MailConfig {
    pub fn new(listen: SocketAddr, domain: &str) -> Self {
        Self {
            listen,
            domain: domain.trim().trim_end_matches('.').to_ascii_lowercase(),
            tls: None,
            max_message_bytes: 10 * 1024 * 1024,
            max_connections: 500,
            max_connections_per_client: 20,
            messages_per_client_minute: 120,
            max_queued_bytes_per_val: 100 * 1024 * 1024,
            max_queued_bytes: 2 * 1024 * 1024 * 1024,
            retry_for: Duration::from_secs(24 * 3600),
            first_retry: Duration::from_secs(30),
        }
    }
}

/// Where `val` receives mail: `{user}.{val}@domain`, if this server
/// receives mail and `val` is an email val others may reach.
pub fn address_of(app: &App, val: &valbox_store::ValRow) -> Option<String> {
    let mail = app.config.mail.as_ref()?;
    let is_email = val.latest.as_ref()?.kind == valbox_model::ValKind::Email;
    (is_email && val.privacy != valbox_model::Privacy::Private)
        .then(|| format!("{}.{}@{}", val.owner_name, val.name, mail.domain))
}

/// Accept SMTP connections on `listener` until `stopped` resolves, then
/// end the sessions still open (a message not yet acknowledged is sent
/// again by its sender: SMTP's own promise).
pub fn start(
    app: App,
    listener: TcpListener,
    stopped: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<tokio::task::JoinHandle<()>> {
    let config = app
        .config
        .mail
        .clone()
        .ok_or_else(|| anyhow::anyhow!("no mail configuration"))?;
    let tls = match &config.tls {
        Some(files) => Some(crate::edge::tls_acceptor_offering(files, &[])?),
        None => None,
    };
    // Messages being received at once, each held in memory up to the
    // size limit: 256 MiB of them at most.
    let receiving = (256 * 1024 * 1024 / config.max_message_bytes.max(1)).clamp(1, 256);
    let shared = Arc::new(Shared {
        open: Arc::new(Semaphore::new(config.max_connections)),
        clients: ClientCounts::default(),
        rates: Mutex::default(),
        receiving: Arc::new(Semaphore::new(receiving)),
        queued: Mutex::new(None),
        app,
        config,
        tls,
    });
    Ok(tokio::spawn(async move {
        tokio::pin!(stopped);
        let mut sessions = tokio::task::JoinSet::new();
        loop {
            let (stream, peer) = tokio::select! {
                _ = &mut stopped => break,
                accepted = crate::edge::accept(&listener) => accepted,
            };
            // Reap the sessions that ended, so the set stays small.
            while sessions.try_join_next().is_some() {}
            let shared = shared.clone();
            sessions.spawn(async move {
                let _ = stream.set_nodelay(true);
                let slot = shared.admit(peer.ip());
                session::run(&shared, stream, peer, slot).await;
            });
        }
        sessions.shutdown().await;
    }))
}

/// What every session shares.
pub(crate) struct Shared {
    pub app: App,
    pub config: MailConfig,
    pub tls: Option<TlsAcceptor>,
    /// Connections open in all, and per client (the edge's counts).
    open: Arc<Semaphore>,
    clients: ClientCounts,
    /// Messages each client began in its current minute.
    rates: Mutex<Rates>,
    /// Turns to receive a message's data (bounds the memory they take).
    pub receiving: Arc<Semaphore>,
    /// The bytes queued in all, and when they were counted.
    queued: Mutex<Option<(Instant, i64)>>,
}

#[derive(Default)]
struct Rates {
    by_client: HashMap<IpAddr, Minute>,
    swept: Option<Instant>,
}

/// Messages begun in one minute, and when it began.
struct Minute {
    began: Instant,
    messages: u32,
}

/// Why a connection is turned away at once.
pub(crate) enum Refusal {
    TooManyConnections,
    TooManyFromClient,
}

/// A connection's places among the open ones, given back when dropped.
pub(crate) struct Slot {
    _open: OwnedSemaphorePermit,
    _client: ClientSeat,
}

impl Shared {
    /// Whether the queue holds less than its bound in all, counted at most
    /// once a second (an estimate: the bound is for the disk, not exact).
    pub async fn queue_has_room(&self) -> Result<bool, valbox_store::StoreError> {
        let fresh = |q: &Option<(Instant, i64)>| {
            q.filter(|(at, _)| at.elapsed() < Duration::from_secs(1))
                .map(|(_, bytes)| bytes)
        };
        let counted = fresh(&self.queued.lock().unwrap_or_else(|p| p.into_inner()));
        let bytes = match counted {
            Some(bytes) => bytes,
            None => {
                let bytes = self.app.store.mail_queue.queued_total().await?.bytes;
                *self.queued.lock().unwrap_or_else(|p| p.into_inner()) =
                    Some((Instant::now(), bytes));
                bytes
            }
        };
        Ok(bytes < self.config.max_queued_bytes)
    }

    /// A place for a connection from `ip`, or why there is none.
    fn admit(&self, ip: IpAddr) -> Result<Slot, Refusal> {
        let open =
            (self.open.clone().try_acquire_owned()).map_err(|_| Refusal::TooManyConnections)?;
        let client = (self.clients)
            .take(client_of(ip), self.config.max_connections_per_client)
            .ok_or(Refusal::TooManyFromClient)?;
        Ok(Slot {
            _open: open,
            _client: client,
        })
    }

    /// Count a message from `ip`; `false` once it has sent its share this
    /// minute.
    pub fn take_message(&self, ip: IpAddr) -> bool {
        let mut rates = self.rates.lock().unwrap_or_else(|p| p.into_inner());
        // Forget past minutes now and then, so the map stays small (at
        // most once every 10 s: the sweep walks the whole map).
        if rates.by_client.len() > 10_000
            && (rates.swept).is_none_or(|at| at.elapsed() > Duration::from_secs(10))
        {
            rates.swept = Some(Instant::now());
            rates.by_client.retain(|_, m| m.began.elapsed() < MINUTE);
        }
        let minute = rates.by_client.entry(client_of(ip)).or_insert(Minute {
            began: Instant::now(),
            messages: 0,
        });
        if minute.began.elapsed() >= MINUTE {
            *minute = Minute {
                began: Instant::now(),
                messages: 0,
            };
        }
        if minute.messages >= self.config.messages_per_client_minute {
            return false;
        }
        minute.messages += 1;
        true
    }
}

const MINUTE: Duration = Duration::from_secs(60);

/// The client an address counts as: itself for IPv4, its /64 for IPv6
/// (one host usually holds a whole /64).
fn client_of(ip: IpAddr) -> IpAddr {
    match ip.to_canonical() {
        IpAddr::V6(v6) => IpAddr::V6((u128::from(v6) & !((1u128 << 64) - 1)).into()),
        v4 => v4,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_ipv6_client_is_its_64() {
        let a: IpAddr = "2001:db8:1:2:aaaa::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:bbbb::2".parse().unwrap();
        let c: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        assert_eq!(client_of(a), client_of(b));
        assert_ne!(client_of(a), client_of(c));
        let mapped: IpAddr = "::ffff:192.0.2.1".parse().unwrap();
        assert_eq!(client_of(mapped), "192.0.2.1".parse::<IpAddr>().unwrap());
    }
}
