//! The one wasmtime engine: fuel, epoch interruption, copy-on-write memory
//! images, the pooling allocator sized by the limits and the incremental
//! compilation cache, and the thread that advances its epoch.

use wasmtime::{Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig};

use super::EPOCH_TICK;
use super::compile_cache::CompileCache;
use valbox_model::Limits;

pub(super) fn engine_config(limits: &Limits, compile_cache: Option<CompileCache>) -> Config {
    let mut config = Config::new();
    config.consume_fuel(limits.meter_fuel);
    config.epoch_interruption(true);
    config.memory_init_cow(true);
    let max_instances = limits.concurrent_instances as u32;
    // No memory can dirty more than the memory limit.
    let keep_resident = limits.keep_resident_bytes.min(limits.memory_bytes);
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
        // dirtied (PAGEMAP_SCAN, Linux 6.7+) with memset instead of madvise;
        // never where pages can be swapped out (see `pagemap_scan`).
        .pagemap_scan(pagemap_scan())
        .linear_memory_keep_resident(keep_resident)
        .table_keep_resident(keep_resident)
        .max_unused_warm_slots(limits.warm_slots);
    config.allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
    if let Some(cache) = compile_cache {
        config
            .enable_incremental_compilation(std::sync::Arc::new(cache))
            .expect("the engine has a compiler");
    }
    config
}

/// Whether to reset pooled memories by scanning which pages were dirtied.
/// Wasmtime up to 49.0.5 misses dirty pages that the kernel swapped out,
/// so the next call in the slot could read the last one's data (fixed in
/// 50.0.0, which our compiler cannot build): with any swap enabled at
/// start, slots are reset the plain way, a little slower.
fn pagemap_scan() -> wasmtime::Enabled {
    let swaps = std::fs::read_to_string("/proc/swaps").unwrap_or_default();
    if swap_enabled(&swaps) {
        tracing::warn!(
            "swap is enabled: pooled memories are reset without the page-map scan, \
             which can miss swapped-out pages in this wasmtime; calls are a little slower"
        );
        wasmtime::Enabled::No
    } else {
        wasmtime::Enabled::Auto
    }
}

/// Whether `/proc/swaps` lists any swap area (its first line is a header).
fn swap_enabled(proc_swaps: &str) -> bool {
    proc_swaps.lines().skip(1).any(|l| !l.trim().is_empty())
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

#[cfg(test)]
mod tests {
    use super::swap_enabled;

    #[test]
    fn any_listed_swap_area_counts_as_swap() {
        let header = "Filename\t\t\t\tType\t\tSize\t\tUsed\t\tPriority\n";
        assert!(!swap_enabled(header));
        assert!(!swap_enabled(""));
        let file =
            format!("{header}/swapfile                               file\t\t1048572\t\t0\t\t-2\n");
        assert!(swap_enabled(&file));
        let zram = format!(
            "{header}/dev/zram0                              partition\t4194300\t\t0\t\t100\n"
        );
        assert!(swap_enabled(&zram));
    }
}
