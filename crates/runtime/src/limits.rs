//! Per-call resource limits enforced through wasmtime's `ResourceLimiter`.
//! Refused growth is remembered so a later trap can be reported as "memory
//! limit" rather than as a generic crash.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use wasmtime::ResourceLimiter;

use valbox_model::Limits;

/// The memory of one call, shared by its stores (the val's and its
/// libraries'), which run one at a time.
#[derive(Default)]
pub struct MemoryBudget {
    /// What the call's memories hold now, together.
    in_use: AtomicUsize,
    /// Set when the guest asked for more memory than allowed.
    refused: AtomicBool,
}

impl MemoryBudget {
    pub fn refused(&self) -> bool {
        self.refused.load(Ordering::Relaxed)
    }

    /// What the memories hold now, together.
    pub fn in_use(&self) -> usize {
        self.in_use.load(Ordering::Relaxed)
    }
}

pub struct CallLimiter {
    /// The cap on all of the call's linear memories together: a component
    /// may hold several, and each must not get the whole cap to itself.
    memory_bytes: usize,
    memory: Arc<MemoryBudget>,
    table_elements: usize,
    tables: usize,
    instances: usize,
}

impl CallLimiter {
    pub fn new(limits: &Limits, memory: Arc<MemoryBudget>) -> Self {
        Self {
            memory_bytes: limits.memory_bytes,
            memory,
            table_elements: limits.table_elements,
            tables: limits.tables,
            instances: limits.instances,
        }
    }
}

impl ResourceLimiter for CallLimiter {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        // Also called when a memory is first created (current = 0).
        let growth = desired.saturating_sub(current);
        let total = self.memory.in_use.fetch_add(growth, Ordering::Relaxed) + growth;
        if total > self.memory_bytes {
            self.memory.in_use.fetch_sub(growth, Ordering::Relaxed);
            self.memory.refused.store(true, Ordering::Relaxed);
            return Ok(false);
        }
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(desired <= self.table_elements)
    }

    fn instances(&self) -> usize {
        self.instances
    }

    fn tables(&self) -> usize {
        self.tables
    }

    fn memories(&self) -> usize {
        self.instances
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_memory_cap_covers_all_memories_together() {
        let limits = Limits {
            memory_bytes: 10 << 20,
            ..Limits::default()
        };
        let budget = Arc::new(MemoryBudget::default());
        let mut limiter = CallLimiter::new(&limits, budget.clone());
        assert!(limiter.memory_growing(0, 6 << 20, None).unwrap());
        // A second memory may not take the whole cap for itself.
        assert!(!limiter.memory_growing(0, 6 << 20, None).unwrap());
        assert!(budget.refused());
        assert!(limiter.memory_growing(0, 4 << 20, None).unwrap());
        // Growing the first memory counts only the difference.
        assert!(!limiter.memory_growing(6 << 20, 7 << 20, None).unwrap());
        // A library's store draws on the same budget.
        let mut library = CallLimiter::new(&limits, budget);
        assert!(!library.memory_growing(0, 1 << 20, None).unwrap());
    }
}
