//! Benchmark (l): nodes with their metadata on PostgreSQL and their
//! components and blobs on S3 (moto on loopback). `hello` through such a
//! node against a node on the embedded store, side by side in one run
//! (req/s by wrk, alternating, and sequential p50/p99); the invalidation
//! delay between two such nodes (a val made private through node A until
//! node B answers 404 for it, p50 and p99); and a deploy through A until
//! B's first 200, which B pays for by fetching the upload and compiling
//! it, against the deploy itself (which compiles on A).

mod common;
#[path = "../../../tests/tests/support/postgres.rs"]
mod postgres;
#[path = "../../../tests/tests/support/process.rs"]
mod process;
// The tests' S3 server; they use what this benchmark does not.
#[allow(dead_code)]
#[path = "../../../tests/tests/support/s3.rs"]
mod s3;

use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::json;
use valbox_server::config::Config;
use valbox_server::server::Server;

/// Changes timed for the invalidation delay.
const FLIPS: usize = 50;
/// Deploys timed from node A to node B.
const DEPLOYS: usize = 20;

fn main() {
    common::run_on_tokio(run());
}

/// A server on `database` (or the embedded store) in `dir`, sealing with
/// `key`; its base URL.
async fn node(dir: &Path, shared: Option<&Shared>, key: Option<&Path>) -> (Server, String) {
    let mut config = Config::new(dir, "127.0.0.1:0".parse().unwrap());
    config.database = shared.map(|s| s.database.clone());
    config.objects = shared.map(|s| s.objects.clone());
    config.secret_key_file = key.map(Path::to_path_buf);
    let server = Server::start(config).await.unwrap();
    let base = format!("http://{}", server.addr);
    (server, base)
}

/// The stores nodes share: a PostgreSQL database and a bucket.
struct Shared {
    database: String,
    objects: String,
}

async fn user(dir: &Path, shared: Option<&Shared>) -> String {
    let at = valbox::cli::StoreArgs {
        data: dir.to_path_buf(),
        database: shared.map(|s| s.database.clone()),
        objects: shared.map(|s| s.objects.clone()),
    };
    let store = at.open().await.unwrap();
    valbox::cli::create_user_in(&store, "bench", "bench@example.com")
        .await
        .unwrap()
}

async fn run() {
    let pg = postgres::Cluster::start();
    let s3 = s3::S3Server::start();
    let shared = Shared {
        database: pg.database("bench").await,
        objects: s3.bucket().await,
    };
    let (embedded_dir, a_dir, b_dir) = (tempdir(), tempdir(), tempdir());
    let embedded_token = user(embedded_dir.path(), None).await;
    let token = user(a_dir.path(), Some(&shared)).await;
    let (embedded, embedded_base) = node(embedded_dir.path(), None, None).await;
    let (a, a_base) = node(a_dir.path(), Some(&shared), None).await;
    let key = a_dir.path().join("secret.key");
    let (b, b_base) = node(b_dir.path(), Some(&shared), Some(&key)).await;
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
            "round {round}: hello embedded {embedded_rps:>8.0} req/s, on PostgreSQL + S3 \
             {pg_rps:>8.0} req/s, ratio {:.2}",
            pg_rps / embedded_rps
        );
    }
    let embedded_latency = common::measure(&embedded_url, None).await;
    let pg_latency = common::measure(&pg_url, None).await;
    println!("hello embedded:      {}", embedded_latency.summary());
    println!("hello on PostgreSQL + S3: {}", pg_latency.summary());

    let delays = invalidation_delays(&a_base, &b_base, &token).await;
    println!(
        "invalidation delay, node A to node B, {FLIPS} changes: p50 {:.1} ms, p99 {:.1} ms",
        common::ms(delays[FLIPS / 2]),
        common::ms(delays[(FLIPS * 99 / 100).min(FLIPS - 1)])
    );
    let (deploys, first_calls) = deploy_to_first_call(&a_base, &b_base, &token).await;
    println!(
        "deploy through A, {DEPLOYS} fresh components: the deploy (A compiles) {}; \
         then until B's first 200 (B fetches and compiles) {}",
        deploys.summary(),
        first_calls.summary()
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

/// `hello` with a custom section of its own, so that each deploy is a
/// component no node has seen or compiled.
fn fresh_hello(n: usize) -> Vec<u8> {
    common::with_section(common::hello_wasm(), "valbox-bench", &n.to_le_bytes())
}

/// Deploy `DEPLOYS` fresh components through A and time each deploy, then
/// from its answer until B first answers 200 for it (sorted).
async fn deploy_to_first_call(
    a: &str,
    b: &str,
    token: &str,
) -> (common::Latencies, common::Latencies) {
    let http = reqwest::Client::new();
    let (mut deploys, mut first_calls) = (Vec::new(), Vec::new());
    for n in 0..DEPLOYS {
        let name = format!("fresh{n}");
        let started = Instant::now();
        common::deploy(a, token, &name, fresh_hello(n)).await;
        let deployed = Instant::now();
        let url = format!("{b}/x/bench/{name}/");
        while http.get(&url).send().await.unwrap().status() != 200 {
            assert!(
                deployed.elapsed() < Duration::from_secs(30),
                "B never ran {name}"
            );
        }
        deploys.push(deployed - started);
        first_calls.push(deployed.elapsed());
    }
    deploys.sort();
    first_calls.sort();
    let latencies = |samples| common::Latencies { samples, errors: 0 };
    (latencies(deploys), latencies(first_calls))
}
