//! The nodes of a cluster among themselves. Each owner's SQLite database
//! is served by one home node at a time, under a lease in the shared store
//! (`homes`), and replicated to the object store (`replicas`); a node that
//! takes a call for a database at home elsewhere forwards the operation to
//! that node's internal listener (`--cluster-listen`, `listener`), which
//! answers only requests that carry the secret every node shares.

mod homes;
mod listener;
mod replicas;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

pub use homes::NodeHomes;
pub use listener::router;
pub use replicas::Replicas;

/// How this node meets the others.
#[derive(Clone, Debug)]
pub struct ClusterConfig {
    /// The internal listener.
    pub listen: SocketAddr,
    /// How other nodes reach it (default: `listen`).
    pub address: Option<String>,
    /// The bearer every node presents to the others.
    pub secret: String,
    /// How long a database's lease runs without renewal: a dead home's
    /// databases are taken over after at most this long.
    pub lease: Duration,
    /// How often a written database is synced to its replica at the
    /// latest; `None`: no replicas (a dead home's databases wait for it).
    pub replication: Option<Duration>,
    /// The Litestream program that makes the replicas.
    pub litestream: PathBuf,
}

/// The default lease of a database's home.
pub const LEASE: Duration = Duration::from_secs(10);

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
