//! Per-call resource limits enforced through wasmtime's `ResourceLimiter`.
//! Refused growth is remembered so a later trap can be reported as "memory
//! limit" rather than as a generic crash.

use wasmtime::ResourceLimiter;

use crate::config::Limits;

pub struct CallLimiter {
    /// The cap on all of the call's linear memories together: a component
    /// may hold several, and each must not get the whole cap to itself.
    memory_bytes: usize,
    /// What the call's memories hold now, together.
    memory_in_use: usize,
    table_elements: usize,
    tables: usize,
    instances: usize,
    /// Set when the guest asked for more memory than allowed.
    pub memory_refused: bool,
}

impl CallLimiter {
    pub fn new(limits: &Limits) -> Self {
        Self {
            memory_bytes: limits.memory_bytes,
            memory_in_use: 0,
            table_elements: limits.table_elements,
            tables: limits.tables,
            instances: limits.instances,
            memory_refused: false,
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
        let total = self.memory_in_use - current.min(self.memory_in_use) + desired;
        if total > self.memory_bytes {
            self.memory_refused = true;
            return Ok(false);
        }
        self.memory_in_use = total;
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
        let mut limiter = CallLimiter::new(&limits);
        assert!(limiter.memory_growing(0, 6 << 20, None).unwrap());
        // A second memory may not take the whole cap for itself.
        assert!(!limiter.memory_growing(0, 6 << 20, None).unwrap());
        assert!(limiter.memory_refused);
        assert!(limiter.memory_growing(0, 4 << 20, None).unwrap());
        // Growing the first memory counts only the difference.
        assert!(!limiter.memory_growing(6 << 20, 7 << 20, None).unwrap());
    }
}
