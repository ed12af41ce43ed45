//! The one wasmtime engine: fuel, epoch interruption, copy-on-write memory
//! images, the pooling allocator sized by the limits and the incremental
//! compilation cache, and the thread that advances its epoch.

use wasmtime::{Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig};

use super::EPOCH_TICK;
use super::compile_cache::CompileCache;
use crate::config::Limits;

/// Bytes of each pooled memory and table kept resident between calls.
const RESIDENT_BYTES: usize = 16 << 20;

pub(super) fn engine_config(limits: &Limits, compile_cache: Option<CompileCache>) -> Config {
    let mut config = Config::new();
    config.consume_fuel(limits.meter_fuel);
    config.epoch_interruption(true);
    config.memory_init_cow(true);
    let max_instances = limits.concurrent_instances as u32;
    let mut pool = PoolingAllocationConfig::default();
    pool.total_component_instances(max_instances)
        .total_core_instances(max_instances * 4)
        .total_memories(max_instances * 2)
        .total_tables(max_instances * 4)
        .total_stacks(max_instances)
        .max_memory_size(limits.memory_bytes)
        .max_core_instances_per_component(limits.instances as u32)
        .max_memories_per_component(limits.instances as u32)
        .max_tables_per_component(limits.tables as u32)
        .table_elements(limits.table_elements)
        // Reuse warm slots without page faults: reset only the pages a call
        // dirtied (PAGEMAP_SCAN, Linux 6.7+) with memset instead of madvise.
        .pagemap_scan(wasmtime::Enabled::Auto)
        .linear_memory_keep_resident(RESIDENT_BYTES)
        .table_keep_resident(RESIDENT_BYTES);
    config.allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
    if let Some(cache) = compile_cache {
        config
            .enable_incremental_compilation(std::sync::Arc::new(cache))
            .expect("the engine has a compiler");
    }
    config
}

/// Advance the engine's epoch every tick for as long as the engine lives.
pub(super) fn start_epoch_ticker(engine: &Engine) {
    let weak = engine.weak();
    std::thread::Builder::new()
        .name("valbox-epoch".into())
        .spawn(move || {
            while let Some(engine) = weak.upgrade() {
                engine.increment_epoch();
                drop(engine);
                std::thread::sleep(EPOCH_TICK);
            }
        })
        .expect("spawning the epoch thread");
}
