//! The nodes of a cluster among themselves. Each owner's SQLite database
//! is served by one home node at a time, under a lease in the shared store;
//! a node that takes a call for a database at home elsewhere forwards the
//! operation to that node's internal listener (`--cluster-listen`), which
//! answers only requests that carry the secret every node shares.

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use valbox_caps::sqlite::database_path;
use valbox_caps::sqlite::store::SqlError;
use valbox_caps::sqlite::wire::{Answer, Forwarded};
use valbox_caps::sqlite::{DatabaseHomes, Whereabouts};
use valbox_store::{Homes, Node};

use crate::app::App;
use crate::error::ApiError;

/// How this node meets the others.
#[derive(Clone, Debug)]
pub struct ClusterConfig {
    /// The internal listener.
    pub listen: SocketAddr,
    /// How other nodes reach it (default: `listen`).
    pub address: Option<String>,
    /// The bearer every node presents to the others.
    pub secret: String,
}

/// How long a lease runs without renewal; a node renews every third of it.
pub const LEASE: Duration = Duration::from_secs(10);
/// A node stops serving a database this long before its lease would end,
/// so that the next home never overlaps it.
const MARGIN: Duration = Duration::from_secs(2);
/// How long a node trusts what it learnt of another node's lease.
const AWAY_FOR: Duration = Duration::from_secs(1);

/// This node's view of where owners' databases live.
pub struct NodeHomes {
    homes: Arc<dyn Homes>,
    me: Node,
    /// Where this node keeps the databases it serves.
    databases: PathBuf,
    secret: String,
    http: reqwest::Client,
    known: Mutex<HashMap<String, Known>>,
}

#[derive(Clone)]
enum Known {
    Here { until: Instant },
    Away { address: String, until: Instant },
}

impl NodeHomes {
    /// The homes of a node called `me`, renewing its leases while it lives.
    pub fn start(homes: Arc<dyn Homes>, me: Node, databases: PathBuf, secret: String) -> Arc<Self> {
        let this = Arc::new(Self {
            homes,
            me,
            databases,
            secret,
            // Straight to the other node: never through a proxy from the
            // environment, which would see the secret.
            http: reqwest::Client::builder()
                .no_proxy()
                .build()
                .expect("a plain HTTP client"),
            known: Mutex::default(),
        });
        tokio::spawn(renew(Arc::downgrade(&this)));
        this
    }

    fn remember(&self, owner: &str, known: Known) {
        self.known.lock().unwrap().insert(owner.to_owned(), known);
    }

    fn forget(&self, owner: &str) {
        self.known.lock().unwrap().remove(owner);
    }
}

/// Renew the node's leases every third of a lease while it lives. A lease
/// the store no longer gives this node is forgotten at once; one it cannot
/// renew (the store down) lapses at its own time.
async fn renew(homes: Weak<NodeHomes>) {
    loop {
        tokio::time::sleep(LEASE / 3).await;
        let Some(homes) = homes.upgrade() else { return };
        let asked = Instant::now();
        // Bounded: a renewal that hangs must not outlive the leases.
        let renewed = tokio::time::timeout(LEASE / 3, homes.homes.renew(&homes.me.id, LEASE));
        match renewed.await {
            Ok(Ok(held)) => {
                let until = asked + LEASE - MARGIN;
                let held: HashSet<String> = held.into_iter().map(|(owner, _)| owner).collect();
                let mut known = homes.known.lock().unwrap();
                // Only what `find` took here, with its checks, is extended:
                // a lease it has just given back may still be renewed once.
                known.retain(|owner, k| match k {
                    Known::Here { until: old } if held.contains(owner) => {
                        *old = until;
                        true
                    }
                    Known::Here { .. } => false,
                    Known::Away { until, .. } => *until > asked,
                });
            }
            Ok(Err(e)) => tracing::warn!("renewing this node's database leases: {e}"),
            Err(_) => tracing::warn!("renewing this node's database leases took too long"),
        }
    }
}

#[async_trait::async_trait]
impl DatabaseHomes for NodeHomes {
    async fn find(&self, owner: &str) -> Result<Whereabouts, SqlError> {
        let now = Instant::now();
        let known = self.known.lock().unwrap().get(owner).cloned();
        match known {
            Some(Known::Here { until }) if until > now => return Ok(Whereabouts::Here { until }),
            Some(Known::Away { address, until }) if until > now => {
                return Ok(Whereabouts::Away(address));
            }
            _ => {}
        }
        let home = self
            .homes
            .claim(owner, &self.me, LEASE)
            .await
            .map_err(|e| {
                SqlError::Unavailable(format!(
                    "the cluster's database does not answer ({e}); retry"
                ))
            })?;
        if home.node.id != self.me.id {
            let until = now + home.remaining.min(AWAY_FOR);
            let address = home.node.address;
            self.remember(
                owner,
                Known::Away {
                    address: address.clone(),
                    until,
                },
            );
            return Ok(Whereabouts::Away(address));
        }
        // Taken here. A database that another node served must not start
        // empty here: only the node that holds its file serves it.
        let file = database_path(&self.databases, owner);
        if home.fencing > 1 && !tokio::fs::try_exists(file).await.unwrap_or(false) {
            let _ = self.homes.release(owner, &self.me.id).await;
            return Err(SqlError::Unavailable(
                "this user's database lives on a node that is not answering; it is served again \
                 when that node is back"
                    .into(),
            ));
        }
        let until = now + home.remaining.saturating_sub(MARGIN);
        self.remember(owner, Known::Here { until });
        Ok(Whereabouts::Here { until })
    }

    async fn record_size(&self, owner: &str, bytes: u64) {
        if let Err(e) = self.homes.record_size(owner, &self.me.id, bytes).await {
            tracing::warn!("recording the size of a database: {e}");
        }
    }

    async fn forward(&self, address: &str, forwarded: Forwarded) -> Result<Answer, SqlError> {
        let owner = forwarded.owner.clone();
        let wait = Duration::from_millis(forwarded.remaining_ms) + Duration::from_secs(1);
        let sent = self
            .http
            .post(format!("http://{address}/internal/sqlite"))
            .bearer_auth(&self.secret)
            .timeout(wait)
            .json(&forwarded)
            .send()
            .await;
        let answer = match sent {
            Ok(resp) if resp.status().is_success() => {
                resp.json::<Answer>().await.map_err(|e| e.to_string())
            }
            Ok(resp) => Err(format!("it answered {}", resp.status())),
            Err(e) => Err(e.to_string()),
        };
        match answer {
            Ok(answer) => {
                if answer.output.is_err() {
                    // It may have moved: ask the store next time.
                    self.forget(&owner);
                }
                Ok(answer)
            }
            Err(why) => {
                tracing::warn!("forwarding SQLite to {address}: {why}");
                self.forget(&owner);
                Err(SqlError::Busy(
                    "the node that serves this database did not answer, so whether the \
                     operation ran is unknown; read before you retry a write"
                        .into(),
                ))
            }
        }
    }
}

/// The internal listener's routes.
pub fn router(app: App) -> Router {
    Router::new()
        .route("/internal/sqlite", post(sqlite))
        .with_state(app)
}

/// The most a forwarded operation may hold: statements and arguments as a
/// call may send them, blobs in hex.
const FORWARDED_BYTES: usize = 256 << 20;

async fn sqlite(State(app): State<App>, headers: HeaderMap, body: Body) -> Response {
    let Some(cluster) = &app.config.cluster else {
        return StatusCode::NOT_FOUND.into_response();
    };
    // The secret first: nobody else makes this node read a body.
    let presented = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or_default();
    if !same(presented.as_bytes(), cluster.secret.as_bytes()) {
        return ApiError::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "the internal listener answers only other nodes of this cluster",
        )
        .into_response();
    }
    let forwarded = match axum::body::to_bytes(body, FORWARDED_BYTES).await {
        Ok(bytes) => serde_json::from_slice::<Forwarded>(&bytes),
        Err(e) => return ApiError::bad_request("invalid_body", e.to_string()).into_response(),
    };
    match forwarded {
        Ok(forwarded) => Json(app.caps.sqlite.serve_forwarded(forwarded).await).into_response(),
        Err(e) => ApiError::bad_request("invalid_body", e.to_string()).into_response(),
    }
}

/// Equal bytes, compared in time that does not depend on where they
/// differ.
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |d, (x, y)| d | (x ^ y)) == 0
}

/// This node's name, kept in `--data` so that it knows its leases again
/// after a restart.
pub fn node_id(data_dir: &std::path::Path) -> anyhow::Result<String> {
    let path = data_dir.join("node-id");
    match std::fs::read_to_string(&path) {
        Ok(id) if !id.trim().is_empty() => Ok(id.trim().to_owned()),
        _ => {
            let id = valbox_store::new_id();
            std::fs::create_dir_all(data_dir)?;
            std::fs::write(&path, &id)?;
            Ok(id)
        }
    }
}
