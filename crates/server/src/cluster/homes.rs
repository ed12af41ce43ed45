//! This node's view of where owners' SQLite databases live: the leases it
//! holds (renewed while it lives), the other nodes it last found holding
//! one, and the take-over of a database whose home went away: restore the
//! newest replica, then serve.

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use prometheus_client::metrics::histogram::Histogram;
use valbox_caps::sqlite::store::SqlError;
use valbox_caps::sqlite::wire::{Answer, Forwarded};
use valbox_caps::sqlite::{DatabaseHomes, SqliteStore, Whereabouts, database_path};
use valbox_store::{Home, Homes, Node};

use super::ClusterConfig;
use super::replicas::Replicas;

/// How long a node trusts what it learnt of another node's lease.
const AWAY_FOR: Duration = Duration::from_secs(1);
/// Databases synced to their replicas at once.
const SYNCS_AT_ONCE: usize = 8;

/// This node's view of where owners' databases live.
pub struct NodeHomes {
    homes: Arc<dyn Homes>,
    me: Node,
    /// How long a lease runs without renewal.
    lease: Duration,
    /// Where this node keeps the databases it serves.
    databases: PathBuf,
    secret: String,
    http: reqwest::Client,
    known: Mutex<HashMap<String, Known>>,
    /// Replicas in the object store, unless the node runs without them.
    replicas: Option<Arc<Replicas>>,
    /// The databases' files, to close and replace at a take-over: given
    /// once the SQLite capability is open.
    files: OnceLock<SqliteStore>,
    /// The leases whose database this node has ready to serve.
    held: Mutex<HashMap<String, Held>>,
    /// One take-over at a time for each owner.
    taking: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
    /// Set when the node stops: it takes no lease and serves nothing.
    draining: AtomicBool,
    /// Where the replication lag is measured.
    lag: Histogram,
}

#[derive(Clone)]
enum Known {
    Here { until: Instant },
    Away { address: String, until: Instant },
}

/// A database this node holds the lease of, and its file is ready.
struct Held {
    fencing: i64,
    /// Operations that could write since the last sync, and when the
    /// first of them ended.
    unsynced: Option<Instant>,
    /// Whether the store knows this holder's replica as complete.
    recorded: bool,
}

impl NodeHomes {
    /// The homes of a node called `me`, renewing its leases every third of
    /// a lease while it lives, and syncing replicas if it keeps them.
    pub fn start(
        homes: Arc<dyn Homes>,
        me: Node,
        config: &ClusterConfig,
        databases: PathBuf,
        replicas: Option<Arc<Replicas>>,
        lag: Histogram,
    ) -> Arc<Self> {
        let this = Arc::new(Self {
            homes,
            me,
            lease: config.lease,
            databases,
            secret: config.secret.clone(),
            lag,
            // Straight to the other node: never through a proxy from the
            // environment, which would see the secret.
            http: reqwest::Client::builder()
                .no_proxy()
                .build()
                .expect("a plain HTTP client"),
            known: Mutex::default(),
            replicas,
            files: OnceLock::new(),
            held: Mutex::default(),
            taking: Mutex::default(),
            draining: AtomicBool::new(false),
        });
        tokio::spawn(renew(Arc::downgrade(&this)));
        if let Some(replicas) = &this.replicas {
            tokio::spawn(sync_replicas(Arc::downgrade(&this), replicas.interval));
        }
        this
    }

    /// Whether Litestream replicates the databases this node serves.
    pub fn replicates(&self) -> bool {
        self.replicas.is_some()
    }

    /// The SQLite capability's files, which a take-over replaces.
    pub fn serve_from(&self, files: SqliteStore) {
        let _ = self.files.set(files);
    }

    /// A node stops serving a database this long before its lease would
    /// end, so that the next home never overlaps it.
    fn margin(&self) -> Duration {
        self.lease / 5
    }

    fn remember(&self, owner: &str, known: Known) {
        self.known.lock().unwrap().insert(owner.to_owned(), known);
    }

    fn forget(&self, owner: &str) {
        self.known.lock().unwrap().remove(owner);
    }

    /// The lease of `owner` is another node's now: stop following the
    /// file this node had.
    async fn let_go(&self, owner: &str) {
        if self.held.lock().unwrap().remove(owner).is_none() {
            return;
        }
        tracing::debug!("the database of {owner} is another node's now");
        if let Some(replicas) = &self.replicas {
            replicas
                .unfollow(&database_path(&self.databases, owner))
                .await;
        }
    }

    fn gate(&self, owner: &str) -> Arc<tokio::sync::Mutex<()>> {
        let mut taking = self.taking.lock().unwrap();
        taking.retain(|_, gate| Arc::strong_count(gate) > 1);
        taking.entry(owner.to_owned()).or_default().clone()
    }

    fn ready_for(&self, owner: &str) -> Option<i64> {
        self.held.lock().unwrap().get(owner).map(|h| h.fencing)
    }

    /// Make this node's file of `owner`'s database the newest there is,
    /// now that it holds `home`: its own if it served the lease before this
    /// one (or this one, before a restart), else the last holder's replica.
    async fn take_over(&self, owner: &str, home: &Home) -> Result<(), SqlError> {
        let made = tokio::fs::create_dir_all(&self.databases).await;
        made.map_err(|e| SqlError::Internal(format!("creating the databases' directory: {e}")))?;
        // The lease under which this node last served its file.
        let marker = self.databases.join(format!(".{owner}.lease"));
        let last: Option<i64> = tokio::fs::read_to_string(&marker)
            .await
            .ok()
            .and_then(|s| s.trim().parse().ok());
        let mine = match last {
            None => home.fencing == 1,
            Some(last) => last == home.fencing || last == home.fencing - 1,
        };
        if !mine {
            self.restore(owner, home).await?;
        }
        write_atomically(&marker, home.fencing.to_string().as_bytes())
            .await
            .map_err(|e| SqlError::Internal(format!("recording the lease of a database: {e}")))
    }

    /// Replace this node's file of `owner`'s database with the replica of
    /// the last holder that completed one.
    async fn restore(&self, owner: &str, home: &Home) -> Result<(), SqlError> {
        let file = database_path(&self.databases, owner);
        let Some(replicas) = &self.replicas else {
            // With no replicas, the newest copy is on the node that last
            // served it: wait for that node to come back.
            return Err(SqlError::Unavailable(
                "this user's database lives on a node that is not answering; it is served again \
                 when that node is back"
                    .into(),
            ));
        };
        let files = self.files.get().ok_or_else(|| {
            SqlError::Unavailable("this node is starting; retry in a moment".into())
        })?;
        // Whatever this node had of it is older than the replica.
        replicas.unfollow(&file).await;
        let restored = match home.replica {
            Some(fencing) => {
                let into = self.databases.join(format!(".{owner}.restoring"));
                let started = Instant::now();
                match replicas.restore(owner, fencing, &into).await {
                    Ok(true) => {
                        tracing::info!(
                            "restored the database of {owner} from holder {fencing}'s replica in \
                             {:?}",
                            started.elapsed()
                        );
                        Some(into)
                    }
                    Ok(false) => return Err(restore_failed("the newest replica is missing")),
                    Err(e) => return Err(restore_failed(&e)),
                }
            }
            // Never replicated in full, and written: only its home has it.
            None if home.size > 0 => {
                return Err(SqlError::Unavailable(
                    "this user's database lives on a node that is not answering, and it was \
                     new enough to have no replica yet; it is served again when that node is \
                     back"
                        .into(),
                ));
            }
            // Never written: nothing to restore.
            None => None,
        };
        // Litestream's own record of the old file would not match.
        let state = self.databases.join(format!(".{owner}.sqlite3-litestream"));
        let _ = tokio::fs::remove_dir_all(state).await;
        let (files, owner) = (files.clone(), owner.to_owned());
        tokio::task::spawn_blocking(move || files.replace(&owner, restored.as_deref()))
            .await
            .map_err(|e| SqlError::Internal(e.to_string()))?
            .map_err(|e| SqlError::Internal(format!("putting the restored database in place: {e}")))
    }

    /// Hand every lease over before the node stops: no new operation, each
    /// database synced to its replica, each lease released, so that the
    /// next node to need one takes it at once.
    pub async fn drain(&self) {
        self.draining.store(true, Ordering::SeqCst);
        self.known.lock().unwrap().clear();
        let held: Vec<(String, i64)> = (self.held.lock().unwrap().iter())
            .map(|(owner, h)| (owner.clone(), h.fencing))
            .collect();
        for (owner, fencing) in held {
            if let Err(e) = self.sync_one(&owner, fencing, None).await {
                // Kept: back soon, this node serves it again from its own
                // file; else the lease runs out and the next home restores
                // an older replica.
                tracing::error!("syncing the database of {owner} before stopping: {e}");
                continue;
            }
            self.let_go(&owner).await;
            if let Err(e) = self.homes.release(&owner, &self.me.id).await {
                tracing::warn!("handing over the database of {owner}: {e}");
            }
        }
    }
}

/// Write `bytes` to `path` whole or not at all, and durably.
async fn write_atomically(path: &std::path::Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut staged = path.as_os_str().to_owned();
    staged.push(".new");
    let staged = PathBuf::from(staged);
    let file = tokio::fs::File::create(&staged).await?;
    let mut file = file;
    tokio::io::AsyncWriteExt::write_all(&mut file, bytes).await?;
    file.sync_all().await?;
    tokio::fs::rename(&staged, path).await
}

fn restore_failed(why: &str) -> SqlError {
    SqlError::Unavailable(format!(
        "this user's database is moving to another node and restoring it failed ({why}); retry"
    ))
}

/// Renew the node's leases every third of a lease while it lives. A lease
/// the store no longer gives this node is forgotten at once; one it cannot
/// renew (the store down) lapses at its own time.
async fn renew(homes: Weak<NodeHomes>) {
    let Some(every) = homes.upgrade().map(|h| h.lease / 3) else {
        return;
    };
    loop {
        tokio::time::sleep(every).await;
        let Some(homes) = homes.upgrade() else { return };
        let asked = Instant::now();
        // Bounded: a renewal that hangs must not outlive the leases.
        let renewed = tokio::time::timeout(every, homes.homes.renew(&homes.me.id, homes.lease));
        match renewed.await {
            Ok(Ok(held)) => {
                let until = asked + homes.lease - homes.margin();
                let held: HashSet<String> = held.into_iter().map(|(owner, _)| owner).collect();
                {
                    let mut known = homes.known.lock().unwrap();
                    // Only what `find` took here, with its checks, is
                    // extended: a lease it has just given back may still be
                    // renewed once.
                    known.retain(|owner, k| match k {
                        Known::Here { until: old } if held.contains(owner) => {
                            *old = until;
                            true
                        }
                        Known::Here { .. } => false,
                        Known::Away { until, .. } => *until > asked,
                    });
                }
                let lost: Vec<String> = (homes.held.lock().unwrap().keys())
                    .filter(|owner| !held.contains(*owner))
                    .cloned()
                    .collect();
                for owner in lost {
                    homes.let_go(&owner).await;
                }
            }
            Ok(Err(e)) => tracing::warn!("renewing this node's database leases: {e}"),
            Err(_) => tracing::warn!("renewing this node's database leases took too long"),
        }
    }
}

/// Every `interval`, sync each database written since its last sync to
/// its replica, and record a new holder's first complete replica, so that
/// a disk lost loses at most the writes of the last interval.
async fn sync_replicas(homes: Weak<NodeHomes>, interval: Duration) {
    let mut ticks = tokio::time::interval(interval);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        let Some(homes) = homes.upgrade() else { return };
        let due: Vec<(String, i64, Option<Instant>)> = (homes.held.lock().unwrap().iter())
            .filter(|(_, h)| h.unsynced.is_some() || !h.recorded)
            .map(|(owner, h)| (owner.clone(), h.fencing, h.unsynced))
            .collect();
        futures_util::stream::iter(due)
            .for_each_concurrent(SYNCS_AT_ONCE, |(owner, fencing, since)| {
                let homes = homes.clone();
                async move {
                    if let Err(e) = homes.sync_one(&owner, fencing, since).await {
                        tracing::warn!("replicating the database of {owner}: {e}");
                    }
                }
            })
            .await;
    }
}

impl NodeHomes {
    /// Sync `owner`'s database to the replica of holder `fencing`, written
    /// since `since`, and record it once complete.
    async fn sync_one(
        &self,
        owner: &str,
        fencing: i64,
        since: Option<Instant>,
    ) -> Result<(), String> {
        let Some(replicas) = &self.replicas else {
            return Ok(());
        };
        let file = database_path(&self.databases, owner);
        // Nothing to follow until the first operation makes the file.
        if !tokio::fs::try_exists(&file).await.unwrap_or(false) {
            return Ok(());
        }
        replicas.follow(&file, owner, fencing).await?;
        replicas.sync(&file).await?;
        if let Some(since) = since {
            self.lag.observe(since.elapsed().as_secs_f64());
        }
        let record = {
            let mut held = self.held.lock().unwrap();
            let Some(h) = held.get_mut(owner).filter(|h| h.fencing == fencing) else {
                return Ok(());
            };
            // A write that ended during the sync stays due.
            if h.unsynced == since {
                h.unsynced = None;
            }
            !h.recorded
        };
        if record {
            (self.homes.record_replica(owner, &self.me.id, fencing).await)
                .map_err(|e| format!("recording the replica: {e}"))?;
            tracing::debug!("the replica of {owner}'s database by holder {fencing} is complete");
            if let Some(h) = self.held.lock().unwrap().get_mut(owner) {
                h.recorded |= h.fencing == fencing;
            }
        }
        Ok(())
    }
}

#[async_trait::async_trait]
impl DatabaseHomes for NodeHomes {
    async fn find(&self, owner: &str) -> Result<Whereabouts, SqlError> {
        if self.draining.load(Ordering::SeqCst) {
            return Err(SqlError::Unavailable(
                "this node is stopping and hands its databases over; retry".into(),
            ));
        }
        let now = Instant::now();
        let known = self.known.lock().unwrap().get(owner).cloned();
        match known {
            Some(Known::Here { until }) if until > now => return Ok(Whereabouts::Here { until }),
            Some(Known::Away { address, until }) if until > now => {
                return Ok(Whereabouts::Away(address));
            }
            _ => {}
        }
        let claim = || async {
            self.homes
                .claim(owner, &self.me, self.lease)
                .await
                .map_err(|e| {
                    SqlError::Unavailable(format!(
                        "the cluster's database does not answer ({e}); retry"
                    ))
                })
        };
        let mut home = claim().await?;
        if home.node.id != self.me.id {
            self.let_go(owner).await;
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
        if self.ready_for(owner) != Some(home.fencing) {
            // Taken here: one take-over at a time, then ask again, since a
            // restore can take a while.
            let gate = self.gate(owner);
            let _taking = gate.lock().await;
            if self.ready_for(owner) != Some(home.fencing) {
                if let Err(e) = self.take_over(owner, &home).await {
                    let _ = self.homes.release(owner, &self.me.id).await;
                    return Err(e);
                }
                tracing::debug!("took the database of {owner} as holder {}", home.fencing);
                self.held.lock().unwrap().insert(
                    owner.to_owned(),
                    Held {
                        fencing: home.fencing,
                        unsynced: None,
                        recorded: false,
                    },
                );
            }
            let now_held = claim().await?;
            if (&now_held.node.id, now_held.fencing) != (&self.me.id, home.fencing) {
                self.let_go(owner).await;
                return Err(SqlError::Busy(
                    "the database moved to another node while this one took it; retry".into(),
                ));
            }
            home = now_held;
        }
        let until = Instant::now() + home.remaining.saturating_sub(self.margin());
        self.remember(owner, Known::Here { until });
        Ok(Whereabouts::Here { until })
    }

    async fn record_size(&self, owner: &str, bytes: u64) {
        if let Some(held) = self.held.lock().unwrap().get_mut(owner) {
            held.unsynced.get_or_insert_with(Instant::now);
        }
        if let Err(e) = self.homes.record_size(owner, &self.me.id, bytes).await {
            tracing::warn!("recording the size of a database: {e}");
        }
    }

    async fn forward(&self, address: &str, forwarded: Forwarded) -> Result<Answer, SqlError> {
        let owner = forwarded.owner.clone();
        // The home runs nothing past its lease, which it renewed at most a
        // lease ago: waiting longer is waiting on a stalled node.
        let runs_for = Duration::from_millis(forwarded.remaining_ms).min(self.lease);
        let wait = runs_for + Duration::from_secs(1);
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
