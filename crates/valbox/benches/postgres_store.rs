//! Benchmark (l): nodes with their metadata on PostgreSQL. `hello` through
//! a node on PostgreSQL against a node on the embedded store, side by side
//! in one run (req/s by wrk, alternating, and sequential p50/p99); and the
//! invalidation delay between two PostgreSQL nodes: a val made private
//! through node A until node B answers 404 for it, p50 and p99.

#[path = "../../../tests/tests/support/postgres.rs"]
mod cluster;
mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::json;
use valbox_server::config::Config;
use valbox_server::server::Server;

/// Changes timed for the invalidation delay.
const FLIPS: usize = 50;

fn main() {
    common::run_on_tokio(run());
}

/// A server on `database` (or the embedded store) in `dir`, sealing with
/// `key`; its base URL.
async fn node(dir: &Path, database: Option<String>, key: Option<&Path>) -> (Server, String) {
    let mut config = Config::new(dir, "127.0.0.1:0".parse().unwrap());
    config.database = database;
    config.secret_key_file = key.map(Path::to_path_buf);
    let server = Server::start(config).await.unwrap();
    let base = format!("http://{}", server.addr);
    (server, base)
}

async fn user(dir: &Path, database: Option<String>) -> String {
    let at = valbox::cli::StoreArgs {
        data: dir.to_path_buf(),
        database,
        objects: None,
    };
    let store = at.open().await.unwrap();
    valbox::cli::create_user_in(&store, "bench", "bench@example.com")
        .await
        .unwrap()
}

async fn run() {
    let pg = cluster::Cluster::start();
    let url = pg.database("bench").await;
    let (embedded_dir, a_dir, b_dir) = (tempdir(), tempdir(), tempdir());
    let embedded_token = user(embedded_dir.path(), None).await;
    let token = user(a_dir.path(), Some(url.clone())).await;
    let (embedded, embedded_base) = node(embedded_dir.path(), None, None).await;
    let (a, a_base) = node(a_dir.path(), Some(url.clone()), None).await;
    let key = a_dir.path().join("secret.key");
    let (b, b_base) = node(b_dir.path(), Some(url), Some(&key)).await;
    common::deploy(
        &embedded_base,
        &embedded_token,
        "hello",
        common::hello_wasm(),
    )
    .await;
    common::deploy(&a_base, &token, "hello", common::hello_wasm()).await;

    let (embedded_url, pg_url) = (
        format!("{embedded_base}/x/bench/hello/"),
        format!("{a_base}/x/bench/hello/"),
    );
    for round in 1..=2 {
        let embedded_rps = common::wrk(&embedded_url).await;
        let pg_rps = common::wrk(&pg_url).await;
        println!(
            "round {round}: hello embedded {embedded_rps:>8.0} req/s, on PostgreSQL \
             {pg_rps:>8.0} req/s, ratio {:.2}",
            pg_rps / embedded_rps
        );
    }
    let embedded_latency = common::measure(&embedded_url, None).await;
    let pg_latency = common::measure(&pg_url, None).await;
    println!("hello embedded:      {}", embedded_latency.summary());
    println!("hello on PostgreSQL: {}", pg_latency.summary());

    let delays = invalidation_delays(&a_base, &b_base, &token).await;
    println!(
        "invalidation delay, node A to node B, {FLIPS} changes: p50 {:.1} ms, p99 {:.1} ms",
        common::ms(delays[FLIPS / 2]),
        common::ms(delays[(FLIPS * 99 / 100).min(FLIPS - 1)])
    );
    for server in [embedded, a, b] {
        server.shutdown().await.unwrap();
    }
}

fn tempdir() -> tempfile::TempDir {
    tempfile::tempdir().unwrap()
}

/// Make a val private on A and time until B refuses it, `FLIPS` times
/// (sorted); B holds the val in its cache before each change.
async fn invalidation_delays(a: &str, b: &str, token: &str) -> Vec<Duration> {
    let http = reqwest::Client::new();
    let made: serde_json::Value = http
        .post(format!("{a}/v2/vals"))
        .bearer_auth(token)
        .json(&json!({ "name": "flip", "privacy": "public" }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = made["id"].as_str().unwrap().to_string();
    let alias = format!("{b}/v2/alias/vals/bench/flip");
    let status = |url: String| {
        let http = http.clone();
        async move { http.get(url).send().await.unwrap().status().as_u16() }
    };
    let set = |privacy: &'static str| {
        let (http, url) = (http.clone(), format!("{a}/v2/vals/{id}"));
        async move {
            let resp = http
                .patch(url)
                .bearer_auth(token)
                .json(&json!({ "privacy": privacy }))
                .send()
                .await
                .unwrap();
            assert!(resp.status().is_success());
        }
    };
    let mut delays = Vec::with_capacity(FLIPS);
    for _ in 0..FLIPS {
        while status(alias.clone()).await != 200 {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        set("private").await;
        let changed = Instant::now();
        while status(alias.clone()).await != 404 {
            assert!(
                changed.elapsed() < Duration::from_secs(30),
                "B never saw it"
            );
        }
        delays.push(changed.elapsed());
        set("public").await;
    }
    delays.sort();
    delays
}
