//! Where each owner's SQLite database lives when many nodes share one
//! store: one home node at a time, held as a lease with an expiry and a
//! fencing number that grows with every new holder. Expiries are counted
//! on the store's clock, so that nodes' clocks need not agree.

use std::time::Duration;

use async_trait::async_trait;

use crate::StoreResult;

/// A node, as other nodes reach it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Node {
    pub id: String,
    /// Its internal listener (`--cluster-listen`).
    pub address: String,
}

/// An owner's home as the store saw it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Home {
    pub node: Node,
    /// Grows with every new holder: work stamped with a smaller number
    /// comes from a node that has since lost the lease.
    pub fencing: i64,
    /// How long the lease ran on when the store answered (zero if over).
    pub remaining: Duration,
    /// The newest replica of the database known to be complete, as its
    /// maker named it, if any was ever made.
    pub replica: Option<String>,
    /// The last node to serve the database: if that is the claimant, its
    /// own file is the newest copy.
    pub served_by: Option<String>,
    /// The database's size as its home last recorded it (0: never written).
    pub size: u64,
}

#[async_trait]
pub trait Homes: Send + Sync {
    /// The owner's home: whoever holds a live lease, or else `node`, which
    /// takes the lease for `ttl` with a fencing number above any before.
    /// The live holder claiming again renews its lease for `ttl` at the
    /// address it gives now (a node restarted elsewhere), same number.
    async fn claim(&self, owner_id: &str, node: &Node, ttl: Duration) -> StoreResult<Home>;
    /// Extend by `ttl` every live lease `node_id` holds; the owners it
    /// still holds, with their fencing numbers. A lease that ran out is
    /// not renewed: its next holder claims it.
    async fn renew(&self, node_id: &str, ttl: Duration) -> StoreResult<Vec<(String, i64)>>;
    /// End `owner_id`'s lease if `node_id` holds it (a node draining), so
    /// that the next claim takes it at once.
    async fn release(&self, owner_id: &str, node_id: &str) -> StoreResult<()>;
    /// Record the size of `owner_id`'s database file, if `node_id` is its
    /// home: every node counts it against the owner's storage quota.
    async fn record_size(&self, owner_id: &str, node_id: &str, bytes: u64) -> StoreResult<()>;
    /// Record that `node_id`, holder `fencing`, serves the database from
    /// now on, if it still holds that lease.
    async fn record_serving(&self, owner_id: &str, node_id: &str, fencing: i64) -> StoreResult<()>;
    /// Record that `replica`, made by `node_id` as holder `fencing`, is
    /// complete, if it still holds that lease: a later holder restores it.
    async fn record_replica(
        &self,
        owner_id: &str,
        node_id: &str,
        fencing: i64,
        replica: &str,
    ) -> StoreResult<()>;
    /// The owners whose databases `node_id` was the last to serve: a node
    /// back from a stop takes them again, if nobody else has.
    async fn last_served_by(&self, node_id: &str) -> StoreResult<Vec<String>>;
    /// The size its home last recorded (0 if none).
    async fn size(&self, owner_id: &str) -> StoreResult<u64>;
}
