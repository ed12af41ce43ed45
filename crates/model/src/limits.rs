//! The limits every call and every owner run under: plain numbers, set by
//! the CLI and read by the runtime, the capabilities and the services.

use std::time::Duration;

/// The limits of one call. Defaults are documented in the README; each one
/// has a test that hits it.
#[derive(Clone, Debug)]
pub struct Limits {
    /// Fuel (roughly, wasm instructions) a call may burn. Default 1e9.
    pub fuel: u64,
    /// Whether calls are metered by fuel at all. Default on; off, CPU is
    /// bounded by the wall-clock deadline (epochs) and the scheduler's
    /// time slices only, which costs the guest's code nothing.
    pub meter_fuel: bool,
    /// Wall-clock time a call may take. Default 10 s.
    pub timeout: Duration,
    /// Bytes of linear memory of one call, all its memories together.
    /// Default 64 MiB.
    pub memory_bytes: usize,
    /// Tables per instance and elements per table. Defaults 20 and 100_000.
    pub tables: usize,
    pub table_elements: usize,
    /// Core instances a component may create. Default 50.
    pub instances: usize,
    /// Request body a val may receive. Default 1 MiB.
    pub request_body_bytes: usize,
    /// Response body a val may return. Default 5 MiB.
    pub response_body_bytes: usize,
    /// Compiled functions the compile cache keeps; past it the least
    /// recently used go. Default 2 GiB.
    pub compile_cache_bytes: u64,
    /// What one call keeps of its stdout and stderr together, for its log.
    /// Default 8 KiB; the rest is dropped, and the log says how much.
    pub log_bytes: usize,
    /// Call logs one val keeps; past it the oldest go. Default 4 MiB.
    pub log_bytes_per_val: u64,
    /// Call logs older than this go. Default 7 days.
    pub log_max_age: Duration,
    /// Size of an uploaded component. Default 20 MiB.
    pub component_bytes: usize,
    /// Calls of one owner's vals running at once. Default 16.
    pub concurrent_calls_per_owner: usize,
    /// Instances alive at once across the server: sizes the pooling
    /// allocator. Default 1000.
    pub concurrent_instances: usize,
    /// Guests running wasm at once across the server; the other calls wait
    /// their turn, those that have used the least CPU first. Default: the
    /// number of CPUs.
    pub running_guests: usize,
    /// Size of one blob. Default 10 MiB.
    pub blob_bytes: usize,
    /// Everything one owner stores together: components of every version,
    /// blobs, SQLite and call logs. Default 1 GiB.
    pub storage_quota_bytes: u64,
    /// All of one owner's blobs together. Default 100 MiB.
    pub blob_quota_bytes: u64,
    /// Size of one owner's SQLite database. Default 100 MiB.
    pub sqlite_quota_bytes: u64,
    /// Temporary storage (TEMP tables, sorts, materialised subqueries) of
    /// all of one owner's running SQLite statements together. Default
    /// 100 MiB.
    pub sqlite_temp_bytes: u64,
    /// Memory all SQLite connections of the server may hold together.
    /// Default 1 GiB.
    pub sqlite_heap_bytes: u64,
    /// Outbound requests of one request from outside, its nested calls
    /// and libraries included (each redirect hop counts). Default 20.
    pub fetch_requests_per_call: u32,
    /// Vals that one request from outside may call as APIs, at any depth,
    /// together. Default 32.
    pub nested_calls_per_request: u32,
    /// A fetched response body. Default 5 MiB.
    pub fetch_response_bytes: usize,
    /// Emails one owner's vals and tokens may send per 24 hours. Default 100.
    pub emails_per_day: u32,
    /// Mail the platform itself sends one user per 24 hours (sign-in links,
    /// scope requests, notices), apart from the above. Default 50.
    pub platform_emails_per_day: u32,
    /// Compiled code and data of the components kept loaded (mapped from
    /// the compiled cache on disk and pre-linked), together; past it the
    /// least recently called is dropped. Default 64 MiB.
    pub loaded_bytes: usize,
    /// A loaded component no call used for this long is dropped. Default
    /// 60 s. Loading one again takes about a millisecond.
    pub loaded_idle: Duration,
    /// Bytes of each pooled memory and table left resident (zeroed, not
    /// given back to the kernel) when a call ends, so the next call in the
    /// slot does not fault those pages in again. Default 16 MiB.
    pub keep_resident_bytes: usize,
    /// Pooled slots kept warm (their val's memory image still mapped) after
    /// their call ended; each holds the pages its call touched, up to
    /// `keep_resident_bytes`. Default 100.
    pub warm_slots: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            fuel: 1_000_000_000,
            meter_fuel: true,
            timeout: Duration::from_secs(10),
            memory_bytes: 64 << 20,
            tables: 20,
            table_elements: 100_000,
            instances: 50,
            request_body_bytes: 1 << 20,
            response_body_bytes: 5 << 20,
            compile_cache_bytes: 2 << 30,
            log_bytes: 8 << 10,
            log_bytes_per_val: 4 << 20,
            log_max_age: Duration::from_secs(7 * 24 * 3600),
            component_bytes: 20 << 20,
            concurrent_calls_per_owner: 16,
            concurrent_instances: 1000,
            running_guests: std::thread::available_parallelism().map_or(1, |n| n.get()),
            blob_bytes: 10 << 20,
            blob_quota_bytes: 100 << 20,
            storage_quota_bytes: 1 << 30,
            sqlite_quota_bytes: 100 << 20,
            sqlite_temp_bytes: 100 << 20,
            sqlite_heap_bytes: 1 << 30,
            fetch_requests_per_call: 20,
            nested_calls_per_request: 32,
            fetch_response_bytes: 5 << 20,
            emails_per_day: 100,
            platform_emails_per_day: 50,
            loaded_bytes: 64 << 20,
            loaded_idle: Duration::from_secs(60),
            keep_resident_bytes: 16 << 20,
            warm_slots: 100,
        }
    }
}
