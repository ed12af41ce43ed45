//! Instances a val opted into reusing: an HTTP val's instance kept after
//! a call that ended well, to serve the next call of the same val, version,
//! scopes and env, until it has served its number of calls, sat idle too
//! long, or grown past its memory bound. State can survive from one call to
//! the next (that is the point, and the cost the author accepted); grants
//! and tokens never do: each call puts its own host state in, and takes it
//! out again when it ends.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use wasmtime::Store;
use wasmtime_wasi_http::p2::bindings::Proxy;

use crate::bindings::http::HttpVal;
use crate::output::Capture;
use crate::{CallState, Host};

/// How a val's instances may be reused, as its owner set it.
#[derive(Clone, Debug)]
pub struct Reuse {
    /// What must be equal for an instance to serve a call: the val, its
    /// version, scopes and env (the embedder decides what goes in).
    pub key: String,
    /// Calls one instance serves before it is retired.
    pub max_requests: u32,
    /// How long an instance may wait for its next call.
    pub idle: Duration,
    /// An instance whose memories hold more is retired after its call.
    pub max_memory: usize,
}

/// An instantiated HTTP val, ready for another call.
pub(crate) enum Ready {
    Http(HttpVal),
    WasiHttp(Proxy),
}

/// An instance between calls: its store (with a spent host state), its
/// output captures, how many calls it served and since when it waits.
pub(crate) struct Warm<H: Host> {
    pub store: Store<CallState<H>>,
    pub ready: Option<Ready>,
    pub stdout: Capture,
    pub stderr: Capture,
    pub served: u32,
    pub since: Instant,
    /// How long it may wait for its next call.
    pub idle: Duration,
}

/// The instances waiting for a call, by reuse key. Each holds a slot of
/// the pooling allocator, so their number is bounded.
pub(crate) struct WarmPool<H: Host> {
    waiting: Mutex<HashMap<String, Vec<Warm<H>>>>,
    max_waiting: usize,
}

/// At most this many instances of one val wait at once.
const PER_KEY: usize = 4;

impl<H: Host> WarmPool<H> {
    pub fn new(max_waiting: usize) -> Self {
        Self {
            waiting: Mutex::default(),
            max_waiting,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Vec<Warm<H>>>> {
        self.waiting.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A waiting instance for `key` that has not been idle too long.
    pub fn take(&self, key: &str) -> Option<Warm<H>> {
        let now = Instant::now();
        let mut waiting = self.lock();
        let list = waiting.get_mut(key)?;
        // Dropped outside the lock: a store's teardown is not free.
        let mut stale = Vec::new();
        let mut found = None;
        while let Some(warm) = list.pop() {
            if now.duration_since(warm.since) <= warm.idle {
                found = Some(warm);
                break;
            }
            stale.push(warm);
        }
        if list.is_empty() {
            waiting.remove(key);
        }
        drop(waiting);
        drop(stale);
        found
    }

    /// Keep `warm` for the next call of `key`, if there is room.
    pub fn put(&self, key: &str, warm: Warm<H>) {
        let mut waiting = self.lock();
        let total: usize = waiting.values().map(Vec::len).sum();
        let list = waiting.entry(key.to_string()).or_default();
        if total < self.max_waiting && list.len() < PER_KEY {
            list.push(warm);
        }
    }

    /// Retire every instance idle for too long; returns how many.
    pub fn retire_idle(&self) -> usize {
        let now = Instant::now();
        let mut retired = Vec::new();
        let mut waiting = self.lock();
        for list in waiting.values_mut() {
            let (keep, old): (Vec<_>, Vec<_>) = std::mem::take(list)
                .into_iter()
                .partition(|w| now.duration_since(w.since) <= w.idle);
            *list = keep;
            retired.extend(old);
        }
        waiting.retain(|_, list| !list.is_empty());
        drop(waiting);
        retired.len()
    }

    /// Retire every instance whose key starts with `prefix` (a val whose
    /// env changed); returns how many.
    pub fn retire_matching(&self, prefix: &str) -> usize {
        let mut waiting = self.lock();
        let keys: Vec<String> = waiting
            .keys()
            .filter(|k| k.starts_with(prefix))
            .cloned()
            .collect();
        let retired: Vec<_> = keys.iter().filter_map(|k| waiting.remove(k)).collect();
        drop(waiting);
        retired.iter().map(Vec::len).sum()
    }
}
