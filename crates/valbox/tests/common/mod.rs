//! Shared by the tests that drive the real `valbox` binary.

#![allow(dead_code)]

use std::path::{Path, PathBuf};

/// The repository's root.
pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Bring `target/vals/*.wasm` up to date with `scripts/build-vals` (which
/// takes a lock, so tests may run it at once).
pub fn build_vals() {
    let status = std::process::Command::new(repo().join("scripts/build-vals"))
        .status()
        .expect("running scripts/build-vals");
    assert!(status.success(), "scripts/build-vals failed");
}

/// `target/vals/<name>.wasm`, brought up to date first.
pub fn val_wasm(name: &str) -> PathBuf {
    build_vals();
    repo().join(format!("target/vals/{name}.wasm"))
}

/// A loopback port free at the time of asking.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Create the public val `name` as `token`'s user on the server at `base`
/// and deploy the example `example` to it.
pub async fn deploy(base: &str, token: &str, name: &str, example: &str) {
    let http = reqwest::Client::new();
    let val: serde_json::Value = http
        .post(format!("{base}/v2/vals"))
        .bearer_auth(token)
        .json(&serde_json::json!({ "name": name, "privacy": "public" }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let wasm = std::fs::read(val_wasm(example)).unwrap();
    let deployed = http
        .post(format!(
            "{base}/v2/vals/{}/versions",
            val["id"].as_str().unwrap()
        ))
        .bearer_auth(token)
        .body(wasm)
        .send()
        .await
        .unwrap();
    assert!(deployed.status().is_success(), "deploying {name}");
}
