//! Where an uploaded component comes from when this node has never seen
//! it: on many nodes, the object store they share. The source is fetched
//! on the first call that needs it, checked against the hash it is named
//! by, and kept beside this node's other uploads; the node compiles it
//! itself. (A compiled artifact is native code that wasmtime trusts
//! without checking, so it is never taken from a store other nodes write.)

use std::future::Future;
use std::pin::Pin;

use bytes::Bytes;
use sha2::{Digest, Sha256};

use crate::{CallError, Host, LinkPlan, Runtime};

/// What an upload's bytes are fetched with: `Ok(None)` when the store
/// has no such component, `Err` (what went wrong) when it cannot be reached.
pub type Fetched<'a> = Pin<Box<dyn Future<Output = Result<Option<Bytes>, String>> + Send + 'a>>;

pub trait Sources: Send + Sync {
    fn fetch<'a>(&'a self, sha256: &'a str) -> Fetched<'a>;
}

/// `plan`'s component and every library's under it.
fn hashes<V>(plan: &LinkPlan<V>, into: &mut Vec<String>) {
    into.push(plan.sha256.clone());
    for library in &plan.libraries {
        hashes(&library.plan, into);
    }
}

impl<H: Host> Runtime<H> {
    /// Fetch the uploads of `plan` and its libraries that this node lacks.
    pub(crate) async fn fetch_missing(&self, plan: &LinkPlan<H::View>) -> Result<(), CallError> {
        let mut all = Vec::new();
        hashes(plan, &mut all);
        for sha256 in all {
            self.fetch_source(&sha256).await?;
        }
        Ok(())
    }

    /// Make sure the upload `sha256` is on this node's disk.
    pub async fn fetch_source(&self, sha256: &str) -> Result<(), CallError> {
        let Some(sources) = &self.sources else {
            return Ok(());
        };
        let path = self.wasm_path(sha256);
        if tokio::fs::try_exists(&path).await.unwrap_or(false) {
            return Ok(());
        }
        let bytes = sources
            .fetch(sha256)
            .await
            .map_err(CallError::Unavailable)?
            .ok_or_else(|| CallError::Internal(format!("component {sha256} is in no store")))?;
        let expected = sha256.to_owned();
        tokio::task::spawn_blocking(move || {
            if hex::encode(Sha256::digest(&bytes)) != expected {
                return Err(CallError::Internal(format!(
                    "the stored component {expected} does not match its hash; refusing it"
                )));
            }
            crate::fsutil::write_atomic(&path, &bytes)
                .map_err(|e| CallError::Internal(format!("keeping component {expected}: {e}")))
        })
        .await
        .map_err(|e| CallError::Internal(e.to_string()))?
    }
}
