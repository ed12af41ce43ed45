//! Per-call resource limits enforced through wasmtime's `ResourceLimiter`.
//! Refused growth is remembered so a later trap can be reported as "memory
//! limit" rather than as a generic crash.

use wasmtime::ResourceLimiter;

use crate::config::Limits;

pub struct CallLimiter {
    memory_bytes: usize,
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
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired > self.memory_bytes {
            self.memory_refused = true;
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
