//! Shared by the benchmarks: the example component they run.

use std::path::PathBuf;

/// `target/vals/hello.wasm`, built by `scripts/build-vals`.
pub fn hello_wasm() -> Vec<u8> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/vals/hello.wasm");
    std::fs::read(&path).unwrap_or_else(|e| {
        panic!(
            "{}: {e}; run scripts/build-vals first (scripts/bench does)",
            path.display()
        )
    })
}
