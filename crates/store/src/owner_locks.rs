//! One in-process lock per stripe of owners, for a node's own turns at
//! an owner's blob index: a blob write's settle asks the object store what
//! it now holds while it holds the owner's lock, so that of two settles
//! the later records the newer state. On PostgreSQL the lock is taken
//! before a pooled connection is, so that one owner's writes queue here,
//! holding no connection, rather than in the database, holding one each.

use std::hash::{BuildHasher, BuildHasherDefault, DefaultHasher};

use tokio::sync::{Mutex, MutexGuard};

pub(crate) struct OwnerLocks([Mutex<()>; 64]);

impl OwnerLocks {
    pub(crate) fn new() -> Self {
        Self(std::array::from_fn(|_| Mutex::new(())))
    }

    pub(crate) async fn lock(&self, owner: &str) -> MutexGuard<'_, ()> {
        let hash = BuildHasherDefault::<DefaultHasher>::default().hash_one(owner);
        self.0[hash as usize % self.0.len()].lock().await
    }
}
