//! Turns to compile an upload: compiling is the most CPU a request can
//! buy, and Cranelift cannot be stopped once started, so compiles run a
//! few at a time across the server (the rest wait their turn) and one
//! owner may have only a couple waiting or running at once (the next is
//! refused), so that no owner can queue everyone else's deploys behind
//! theirs.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Compiles one owner may have running or waiting at once.
pub const PER_OWNER: usize = 2;

pub struct CompileGate {
    running: Arc<Semaphore>,
    owners: Arc<Mutex<HashMap<String, usize>>>,
}

/// A turn to compile; dropping it lets the next one go.
pub struct CompileTurn {
    _running: OwnedSemaphorePermit,
    _owner: OwnerShare,
}

struct OwnerShare {
    owner: String,
    owners: Arc<Mutex<HashMap<String, usize>>>,
}

impl Drop for OwnerShare {
    fn drop(&mut self) {
        let mut owners = self.owners.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(n) = owners.get_mut(&self.owner) {
            *n -= 1;
            if *n == 0 {
                owners.remove(&self.owner);
            }
        }
    }
}

impl CompileGate {
    /// At most `at_once` compiles across the server.
    pub fn new(at_once: usize) -> Self {
        Self {
            running: Arc::new(Semaphore::new(at_once.max(1))),
            owners: Arc::default(),
        }
    }

    /// Wait for a turn for `owner`, or `None` at once when the owner
    /// already has [`PER_OWNER`] compiles running or waiting.
    pub async fn turn(&self, owner: &str) -> Option<CompileTurn> {
        let share = {
            let mut owners = self.owners.lock().unwrap_or_else(|p| p.into_inner());
            let n = owners.entry(owner.to_string()).or_default();
            if *n >= PER_OWNER {
                return None;
            }
            *n += 1;
            OwnerShare {
                owner: owner.to_string(),
                owners: self.owners.clone(),
            }
        };
        let running = self.running.clone().acquire_owned().await.ok()?;
        Some(CompileTurn {
            _running: running,
            _owner: share,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn an_owner_gets_two_turns_and_others_theirs() {
        let gate = CompileGate::new(4);
        let a = gate.turn("alice").await.unwrap();
        let _b = gate.turn("alice").await.unwrap();
        assert!(gate.turn("alice").await.is_none());
        assert!(gate.turn("bob").await.is_some());
        drop(a);
        assert!(gate.turn("alice").await.is_some());
    }
}
