//! Vals by owner and name for the invocation hot path. A change made
//! through this node clears it; changes made elsewhere (another node, the
//! CLI) clear it through `app`'s watch of the store, and an entry is read
//! again after [`TTL`] whatever happens, which bounds what a missed
//! notice could leave stale.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use valbox_store::{Store, StoreError, StoreResult, ValRow};

/// The cache. `generation` moves on every change, so a row read from the
/// database before a change is never cached after it (a val just made
/// private must not keep serving from a stale entry).
#[derive(Default)]
pub struct ValCache {
    inner: Mutex<Entries>,
}

/// The longest an entry serves before it is read again.
pub const TTL: Duration = Duration::from_secs(10);

#[derive(Default)]
struct Entries {
    generation: u64,
    /// Each val, and when it was read.
    vals: HashMap<(String, String), (Arc<ValRow>, Instant)>,
}

impl ValCache {
    /// The val `name` of `owner`, from the cache or else the store.
    pub async fn get(
        &self,
        store: &Store,
        owner: &str,
        name: &str,
    ) -> StoreResult<Option<Arc<ValRow>>> {
        let key = (owner.to_string(), name.to_string());
        let (generation, stale) = {
            let cache = self.lock();
            match cache.vals.get(&key) {
                Some((v, read)) if read.elapsed() < TTL => return Ok(Some(v.clone())),
                Some((v, _)) => (cache.generation, Some(v.clone())),
                None => (cache.generation, None),
            }
        };
        let val = match store.vals.by_name(owner, name).await {
            // While the store cannot be reached, nothing can change in it:
            // the copy past its TTL is still the val.
            Err(StoreError::Unavailable(_)) if stale.is_some() => return Ok(stale),
            found => found?,
        };
        let Some(val) = val else {
            return Ok(None);
        };
        let val = Arc::new(val);
        let mut cache = self.lock();
        if cache.generation == generation {
            cache.vals.insert(key, (val.clone(), Instant::now()));
        }
        Ok(Some(val))
    }

    /// Forget every val, and any read now in flight.
    pub fn forget(&self) {
        let mut cache = self.lock();
        cache.generation += 1;
        cache.vals.clear();
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Entries> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }
}
