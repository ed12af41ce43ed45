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
    /// One take-over, sync or hand-over at a time for each owner.
    gates: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
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
    /// When it was taken: a renewal asked before then cannot know of it.
    taken: Instant,
    /// Operations that could write, in all and as of the last sync, and
    /// when the first one not yet synced ended.
    writes: u64,
    synced: u64,
    unsynced_since: Option<Instant>,
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
            gates: Mutex::default(),
            draining: AtomicBool::new(false),
            lag,
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

    /// The SQLite capability's files, which a take-over replaces. Then
    /// take back the databases this node served last, if nobody else has:
    /// without replicas nobody else can serve them.
    pub fn serve_from(self: &Arc<Self>, files: SqliteStore) {
        let _ = self.files.set(files);
        let this = Arc::downgrade(self);
        tokio::spawn(async move {
            let Some(homes) = this.upgrade() else { return };
            let owners = match homes.homes.last_served_by(&homes.me.id).await {
                Ok(owners) => owners,
                Err(e) => return tracing::warn!("finding the databases this node served: {e}"),
            };
            futures_util::stream::iter(owners)
                .for_each_concurrent(SYNCS_AT_ONCE, |owner| {
                    let homes = homes.clone();
                    async move {
                        // Another node may hold it for a moment, trying.
                        for _ in 0..5 {
                            match homes.find(&owner).await {
                                Ok(Whereabouts::Here { .. }) => return,
                                Ok(Whereabouts::Away(_)) => {}
                                Err(e) => tracing::debug!("taking back {owner}'s database: {e}"),
                            }
                            tokio::time::sleep(AWAY_FOR).await;
                        }
                    }
                })
                .await;
        });
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

    fn gate(&self, owner: &str) -> Arc<tokio::sync::Mutex<()>> {
        let mut gates = self.gates.lock().unwrap();
        gates.retain(|_, gate| Arc::strong_count(gate) > 1);
        gates.entry(owner.to_owned()).or_default().clone()
    }

    fn held_as(&self, owner: &str) -> Option<i64> {
        self.held.lock().unwrap().get(owner).map(|h| h.fencing)
    }

    /// The lease of `owner` is another node's now (or given back): stop
    /// following the file this node had.
    async fn let_go(&self, owner: &str) {
        let gate = self.gate(owner);
        let _turn = gate.lock().await;
        if self.held.lock().unwrap().remove(owner).is_none() {
            return;
        }
        tracing::debug!("the database of {owner} is no longer this node's");
        if let Some(replicas) = &self.replicas
            && let Err(e) = replicas
                .unfollow(&database_path(&self.databases, owner))
                .await
        {
            tracing::warn!("{e}");
        }
    }

    /// Make this node's file of `owner`'s database the newest there is,
    /// now that it holds `home`, and say so in the store: its own file if
    /// it was the last to serve it, else the newest complete replica.
    async fn take_over(&self, owner: &str, home: &Home) -> Result<(), SqlError> {
        let file = database_path(&self.databases, owner);
        let here = tokio::fs::try_exists(&file).await.unwrap_or(false);
        let mine = match &home.served_by {
            Some(node) => *node == self.me.id && (here || home.size == 0),
            // Served before homes were recorded, or never: the file is
            // the one there is, if this node has it.
            None => here || home.size == 0,
        };
        if !mine {
            self.restore(owner, home).await?;
        }
        if home.served_by.as_deref() != Some(&self.me.id) {
            self.homes
                .record_serving(owner, &self.me.id, home.fencing)
                .await
                .map_err(|e| {
                    tracing::warn!("recording that this node serves {owner}'s database: {e}");
                    SqlError::Unavailable("the cluster's database does not answer; retry".into())
                })?;
        }
        Ok(())
    }

    /// Replace this node's file of `owner`'s database with the newest
    /// complete replica.
    async fn restore(&self, owner: &str, home: &Home) -> Result<(), SqlError> {
        let file = database_path(&self.databases, owner);
        let away = || {
            SqlError::Unavailable(
                "this user's database lives on a node that is not answering, and it has no \
                 replica to take over from; it is served again when that node is back"
                    .into(),
            )
        };
        let Some(replicas) = &self.replicas else {
            return Err(away());
        };
        let files = self.files.get().ok_or_else(|| {
            SqlError::Unavailable("this node is starting; retry in a moment".into())
        })?;
        // Whatever this node had of it is older than the replica.
        (replicas.unfollow(&file).await).map_err(|e| restore_failed(owner, &e))?;
        let restored = match &home.replica {
            Some(replica) => {
                let into = self.databases.join(format!(".{owner}.restoring"));
                tokio::fs::create_dir_all(&self.databases)
                    .await
                    .map_err(|e| restore_failed(owner, &e.to_string()))?;
                let started = Instant::now();
                match replicas.restore(owner, replica, home.size, &into).await {
                    Ok(true) => {
                        tracing::info!(
                            "restored the database of {owner} from replica {replica} in {:?}",
                            started.elapsed()
                        );
                        Some(into)
                    }
                    Ok(false) => return Err(restore_failed(owner, "its replica is missing")),
                    Err(e) => return Err(restore_failed(owner, &e)),
                }
            }
            // Written, and never replicated in full: only its home has it.
            None if home.size > 0 => return Err(away()),
            // Never written: nothing to restore.
            None => None,
        };
        let (files, who) = (files.clone(), owner.to_owned());
        let replaced =
            tokio::task::spawn_blocking(move || files.replace(&who, restored.as_deref()));
        match replaced.await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(restore_failed(owner, &e.to_string())),
            Err(e) => Err(restore_failed(owner, &e.to_string())),
        }
    }

    /// Sync `owner`'s database, held as `fencing`, to this node's replica
    /// of it, and record the replica once complete. Under the owner's gate,
    /// so that no take-over or hand-over moves the file meanwhile.
    async fn sync_one(&self, owner: &str, fencing: i64) -> Result<(), String> {
        let Some(replicas) = &self.replicas else {
            return Ok(());
        };
        let gate = self.gate(owner);
        let _turn = gate.lock().await;
        let Some(writes) = (self.held.lock().unwrap().get(owner))
            .filter(|h| h.fencing == fencing)
            .map(|h| h.writes)
        else {
            return Ok(());
        };
        let file = database_path(&self.databases, owner);
        // Nothing to follow until the first operation makes the file.
        if !tokio::fs::try_exists(&file).await.unwrap_or(false) {
            return Ok(());
        }
        let started = Instant::now();
        let replica = replicas.follow(&file, owner, fencing).await?;
        replicas.sync(&file).await?;
        let record = {
            let mut held = self.held.lock().unwrap();
            let Some(h) = held.get_mut(owner) else {
                return Ok(());
            };
            if let Some(since) = h.unsynced_since {
                self.lag.observe(since.elapsed().as_secs_f64());
            }
            // Writes that ended during the sync are due next time; the
            // sync's start is older than any of them.
            h.unsynced_since = (h.writes != writes).then_some(started);
            h.synced = writes;
            !h.recorded
        };
        if record {
            (self
                .homes
                .record_replica(owner, &self.me.id, fencing, &replica)
                .await)
                .map_err(|e| format!("recording the replica of {owner}'s database: {e}"))?;
            tracing::debug!("the replica {replica} of {owner}'s database is complete");
            if let Some(h) = self.held.lock().unwrap().get_mut(owner) {
                h.recorded = true;
            }
        }
        Ok(())
    }

    /// Hand every lease over before the node stops: no new operation, each
    /// database synced to its replica, each lease released, so that the
    /// next node to need one takes it at once. Without replicas the leases
    /// are kept: the next node could not serve the databases anyway, and
    /// this one takes them back when it starts again.
    pub async fn drain(&self) {
        self.draining.store(true, Ordering::SeqCst);
        self.known.lock().unwrap().clear();
        if self.replicas.is_none() {
            return;
        }
        let held: Vec<(String, i64)> = (self.held.lock().unwrap().iter())
            .map(|(owner, h)| (owner.clone(), h.fencing))
            .collect();
        futures_util::stream::iter(held)
            .for_each_concurrent(SYNCS_AT_ONCE, |(owner, fencing)| async move {
                if let Err(e) = self.sync_one(&owner, fencing).await {
                    // Kept: back soon, this node serves it again from its
                    // own file; else the lease runs out and the next home
                    // restores an older replica.
                    tracing::error!("syncing the database of {owner} before stopping: {e}");
                    return;
                }
                self.let_go(&owner).await;
                if let Err(e) = self.homes.release(&owner, &self.me.id).await {
                    tracing::warn!("handing over the database of {owner}: {e}");
                }
            })
            .await;
    }
}

/// What a caller is told when a take-over fails; the reason goes to the
/// log, since it names paths and buckets.
fn restore_failed(owner: &str, why: &str) -> SqlError {
    tracing::error!("taking over the database of {owner}: {why}");
    SqlError::Unavailable(
        "this user's database is moving to another node and could not be restored yet; retry"
            .into(),
    )
}

/// Renew the node's leases every third of a lease while it lives. A lease
/// the store no longer gives this node is let go at once; one it cannot
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
                // Taken after the renewal was asked: it could not know.
                let lost: Vec<String> = (homes.held.lock().unwrap().iter())
                    .filter(|(owner, h)| h.taken < asked && !held.contains(*owner))
                    .map(|(owner, _)| owner.clone())
                    .collect();
                for owner in lost {
                    let homes = homes.clone();
                    // Never holding up the next renewal.
                    tokio::spawn(async move { homes.let_go(&owner).await });
                }
            }
            Ok(Err(e)) => tracing::warn!("renewing this node's database leases: {e}"),
            Err(_) => tracing::warn!("renewing this node's database leases took too long"),
        }
    }
}

/// Every `interval`, sync each database written since its last sync to
/// its replica, and record a new holder's first complete replica, so that
/// a disk lost loses at most the writes of about the last interval.
async fn sync_replicas(homes: Weak<NodeHomes>, interval: Duration) {
    let mut ticks = tokio::time::interval(interval);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        let Some(homes) = homes.upgrade() else { return };
        let due: Vec<(String, i64)> = (homes.held.lock().unwrap().iter())
            .filter(|(_, h)| h.writes > h.synced || !h.recorded)
            .map(|(owner, h)| (owner.clone(), h.fencing))
            .collect();
        futures_util::stream::iter(due)
            .for_each_concurrent(SYNCS_AT_ONCE, |(owner, fencing)| {
                let homes = homes.clone();
                async move {
                    if let Err(e) = homes.sync_one(&owner, fencing).await {
                        tracing::warn!("replicating the database of {owner}: {e}");
                    }
                }
            })
            .await;
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
        let known = self.known.lock().unwrap().get(owner).cloned();
        match known {
            Some(Known::Here { until }) if until > Instant::now() => {
                return Ok(Whereabouts::Here { until });
            }
            Some(Known::Away { address, until }) if until > Instant::now() => {
                return Ok(Whereabouts::Away(address));
            }
            _ => {}
        }
        // A lease's end is counted from before the store was asked, never
        // from its answer, which may come late.
        let claim = || async {
            let asked = Instant::now();
            let home = self.homes.claim(owner, &self.me, self.lease).await;
            let home = home.map_err(|e| {
                SqlError::Unavailable(format!(
                    "the cluster's database does not answer ({e}); retry"
                ))
            })?;
            Ok::<_, SqlError>((asked, home))
        };
        let (mut asked, mut home) = claim().await?;
        if home.node.id != self.me.id {
            self.let_go(owner).await;
            let until = asked + home.remaining.min(AWAY_FOR);
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
        if self.held_as(owner) != Some(home.fencing) {
            // Taken here: one take-over at a time, then ask again, since a
            // restore can take a while.
            let gate = self.gate(owner);
            let turn = gate.lock().await;
            if self.held_as(owner) != Some(home.fencing) {
                if let Err(e) = self.take_over(owner, &home).await {
                    let _ = self.homes.release(owner, &self.me.id).await;
                    return Err(e);
                }
                tracing::debug!("took the database of {owner} as holder {}", home.fencing);
                self.held.lock().unwrap().insert(
                    owner.to_owned(),
                    Held {
                        fencing: home.fencing,
                        taken: Instant::now(),
                        writes: 0,
                        synced: 0,
                        unsynced_since: None,
                        recorded: false,
                    },
                );
            }
            drop(turn);
            let (again, now_held) = claim().await?;
            if (&now_held.node.id, now_held.fencing) != (&self.me.id, home.fencing) {
                self.let_go(owner).await;
                return Err(SqlError::Busy(
                    "the database moved to another node while this one took it; retry".into(),
                ));
            }
            (asked, home) = (again, now_held);
        }
        let until = asked + home.remaining.saturating_sub(self.margin());
        self.remember(owner, Known::Here { until });
        Ok(Whereabouts::Here { until })
    }

    async fn record_size(&self, owner: &str, bytes: u64) {
        if let Some(held) = self.held.lock().unwrap().get_mut(owner) {
            held.writes += 1;
            held.unsynced_since.get_or_insert_with(Instant::now);
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
