//! The pre-linked components kept in memory: least recently called first
//! out, within a budget of bytes, and dropped after sitting idle. Memory
//! then follows the vals being called, not the vals deployed; a dropped
//! component comes back from the compiled cache on disk in about a
//! millisecond (it is mapped, not compiled).

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

/// Entries by key, each with its weight in bytes and when it was last used.
pub struct LoadedCache<V> {
    entries: HashMap<String, Entry<V>>,
    /// Keys by the tick of their last use: the first is the coldest.
    by_use: BTreeMap<u64, String>,
    tick: u64,
    bytes: usize,
    max_bytes: usize,
    idle: Duration,
}

struct Entry<V> {
    value: V,
    bytes: usize,
    tick: u64,
    used: Instant,
}

impl<V: Clone> LoadedCache<V> {
    /// Holds at most `max_bytes` together, each entry for at most `idle`
    /// since its last use. One entry larger than the budget is still kept
    /// while it is the only one, so a big val is not loaded on every call.
    pub fn new(max_bytes: usize, idle: Duration) -> Self {
        Self {
            entries: HashMap::new(),
            by_use: BTreeMap::new(),
            tick: 0,
            bytes: 0,
            max_bytes,
            idle,
        }
    }

    pub fn get(&mut self, key: &str, now: Instant) -> Option<V> {
        let tick = self.next_tick();
        let entry = self.entries.get_mut(key)?;
        self.by_use.remove(&entry.tick);
        self.by_use.insert(tick, key.to_string());
        entry.tick = tick;
        entry.used = now;
        Some(entry.value.clone())
    }

    pub fn insert(&mut self, key: &str, value: V, bytes: usize, now: Instant) {
        self.remove(key);
        while self.bytes + bytes > self.max_bytes && self.evict_coldest() {}
        let tick = self.next_tick();
        self.by_use.insert(tick, key.to_string());
        self.bytes += bytes;
        let entry = Entry {
            value,
            bytes,
            tick,
            used: now,
        };
        self.entries.insert(key.to_string(), entry);
    }

    /// Drop the entries not used within the idle time; returns how many.
    pub fn drop_idle(&mut self, now: Instant) -> usize {
        let mut dropped = 0;
        while let Some(key) = self.by_use.values().next() {
            let entry = &self.entries[key];
            if now.saturating_duration_since(entry.used) < self.idle {
                break;
            }
            self.evict_coldest();
            dropped += 1;
        }
        dropped
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// The weight of all entries together.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    fn remove(&mut self, key: &str) {
        if let Some(old) = self.entries.remove(key) {
            self.by_use.remove(&old.tick);
            self.bytes -= old.bytes;
        }
    }

    fn evict_coldest(&mut self) -> bool {
        let Some((_, key)) = self.by_use.pop_first() else {
            return false;
        };
        if let Some(old) = self.entries.remove(&key) {
            self.bytes -= old.bytes;
        }
        true
    }

    fn next_tick(&mut self) -> u64 {
        self.tick += 1;
        self.tick
    }
}

/// Return the allocator's free memory to the system. glibc keeps what
/// freed components and their linking left in its arenas (measured: a
/// third of the server's anonymous memory after 300 vals went idle)
/// until asked.
pub fn release_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only walks glibc's own free lists.
    unsafe {
        libc::malloc_trim(0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINUTE: Duration = Duration::from_secs(60);

    #[test]
    fn keeps_within_the_byte_budget_dropping_the_least_recently_used() {
        let now = Instant::now();
        let mut cache = LoadedCache::new(100, MINUTE);
        cache.insert("a", 1, 40, now);
        cache.insert("b", 2, 40, now);
        assert_eq!(cache.get("a", now), Some(1)); // b is now the coldest
        cache.insert("c", 3, 40, now);
        assert_eq!(cache.get("b", now), None);
        assert_eq!(cache.get("a", now), Some(1));
        assert_eq!(cache.get("c", now), Some(3));
        assert_eq!(cache.bytes(), 80);
    }

    #[test]
    fn an_entry_over_budget_is_kept_alone() {
        let now = Instant::now();
        let mut cache = LoadedCache::new(100, MINUTE);
        cache.insert("small", 1, 10, now);
        cache.insert("big", 2, 500, now);
        assert_eq!(cache.len(), 1);
        assert_eq!(cache.get("big", now), Some(2));
        cache.insert("small", 1, 10, now);
        assert_eq!(cache.get("big", now), None);
        assert_eq!(cache.bytes(), 10);
    }

    #[test]
    fn reinserting_a_key_replaces_its_weight() {
        let now = Instant::now();
        let mut cache = LoadedCache::new(100, MINUTE);
        cache.insert("a", 1, 60, now);
        cache.insert("a", 2, 30, now);
        assert_eq!((cache.len(), cache.bytes()), (1, 30));
        assert_eq!(cache.get("a", now), Some(2));
    }

    #[test]
    fn idle_entries_are_dropped_and_recently_used_ones_kept() {
        let start = Instant::now();
        let mut cache = LoadedCache::new(100, MINUTE);
        cache.insert("old", 1, 10, start);
        cache.insert("used", 2, 10, start);
        cache.get("used", start + MINUTE / 2);
        assert_eq!(cache.drop_idle(start + MINUTE / 2), 0);
        assert_eq!(cache.drop_idle(start + MINUTE), 1);
        assert_eq!(cache.get("old", start + MINUTE), None);
        assert_eq!(cache.get("used", start + MINUTE), Some(2));
        assert_eq!(cache.drop_idle(start + MINUTE * 3 / 2), 0);
        assert_eq!(cache.drop_idle(start + MINUTE * 2), 1);
        assert_eq!((cache.len(), cache.bytes()), (0, 0));
    }
}
