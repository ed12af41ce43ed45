//! How many calls of one owner's vals run at once: a share kept for the
//! owner's own calls, so that anonymous callers and other users can never
//! take them all, and the rest, open to any caller.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Every owner's slots, made on an owner's first call.
#[derive(Default)]
pub struct OwnerSlots {
    by_owner: Mutex<HashMap<String, Shares>>,
}

/// One owner's two shares.
#[derive(Clone)]
struct Shares {
    reserved: Arc<Semaphore>,
    open: Arc<Semaphore>,
}

/// Which share of an owner's call slots was full.
#[derive(Debug)]
pub enum FullShare {
    /// The share open to callers other than the owner.
    Others { open: usize, reserved: usize },
    /// Every slot: the owner's own call found both shares full.
    All { total: usize },
}

/// Slots kept for the owner's own calls out of `total`: a quarter, at
/// least one, once there are two or more.
fn owner_reserve(total: usize) -> usize {
    if total < 2 { 0 } else { (total / 4).max(1) }
}

impl OwnerSlots {
    /// A slot for one call of `owner`'s vals, out of `total`, or which
    /// share is full. `by_owner`: the caller is the owner (a personal token
    /// or one of the owner's vals' call tokens).
    pub fn try_take(
        &self,
        owner: &str,
        by_owner: bool,
        total: usize,
    ) -> Result<OwnedSemaphorePermit, FullShare> {
        let reserved = owner_reserve(total);
        let slots = {
            let mut all = self.by_owner.lock().unwrap_or_else(|p| p.into_inner());
            match all.get(owner) {
                Some(slots) => slots.clone(),
                None => all
                    .entry(owner.to_string())
                    .or_insert_with(|| Shares {
                        reserved: Arc::new(Semaphore::new(reserved)),
                        open: Arc::new(Semaphore::new(total - reserved)),
                    })
                    .clone(),
            }
        };
        if by_owner {
            // The reserve first: the owner's calls leave the open share
            // to others as long as they can.
            slots
                .reserved
                .try_acquire_owned()
                .or_else(|_| slots.open.try_acquire_owned())
                .map_err(|_| FullShare::All { total })
        } else {
            slots
                .open
                .try_acquire_owned()
                .map_err(|_| FullShare::Others {
                    open: total - reserved,
                    reserved,
                })
        }
    }
}
