//! Benchmark (n): how late cron runs start. One server; first a single
//! cron val on a one-second schedule, then 1,000 cron vals (ten owners,
//! a hundred each) on ten-second schedules, about 100 runs a second: the
//! time from each run's due time to its start, p50 and p99, from the
//! server's `valbox_cron_lateness_seconds`.

mod common;
mod histogram;

use std::path::Path;
use std::time::Duration;

use serde_json::json;
use valbox_server::config::Config;
use valbox_server::server::Server;

const OWNERS: usize = 10;
const VALS_PER_OWNER: usize = 100;
const MEASURED_FOR: Duration = Duration::from_secs(40);
const LATENESS: &str = "valbox_cron_lateness_seconds";

fn main() {
    common::run_on_tokio(run());
}

async fn run() {
    let dir = tempfile::tempdir().unwrap();
    let tokens = users(dir.path()).await;
    let mut config = Config::new(dir.path(), "127.0.0.1:0".parse().unwrap());
    config.min_schedule = Duration::from_secs(1);
    config.schedules_per_owner = VALS_PER_OWNER as u64;
    config.limits.concurrent_calls_per_owner = 256;
    config.metrics_listen = Some("127.0.0.1:0".parse().unwrap());
    let server = Server::start(config).await.unwrap();
    let base = format!("http://{}", server.addr);
    let metrics = format!("http://{}/metrics", server.metrics_addr.unwrap());
    let tick = common::val_wasm("tick");

    let alone = common::deploy(&base, &tokens[0], "alone", tick.clone()).await;
    schedule(&base, &tokens[0], &alone, "every 1s").await;
    let (runs, p50, p99) = measure(&metrics, Duration::from_secs(20)).await;
    println!(
        "(n) one cron val, every 1s: {runs} runs, lateness p50 ≤ {p50:.3} s, p99 ≤ {p99:.3} s"
    );
    schedule(&base, &tokens[0], &alone, "off").await;

    let deployed = std::time::Instant::now();
    for (owner, token) in tokens.iter().enumerate() {
        let count = if owner == 0 {
            VALS_PER_OWNER - 1
        } else {
            VALS_PER_OWNER
        };
        for i in 0..count {
            let id = common::deploy(&base, token, &format!("tick-{i}"), tick.clone()).await;
            schedule(&base, token, &id, "every 10s").await;
        }
    }
    println!(
        "(n) {} cron vals deployed and scheduled in {:.1} s",
        OWNERS * VALS_PER_OWNER - 1,
        deployed.elapsed().as_secs_f64()
    );
    // Every val's first run falls due within ten seconds.
    tokio::time::sleep(Duration::from_secs(10)).await;
    let (runs, p50, p99) = measure(&metrics, MEASURED_FOR).await;
    println!(
        "(n) {} cron vals, every 10s: {runs} runs in {}s, lateness p50 ≤ {p50:.3} s, p99 ≤ {p99:.3} s",
        OWNERS * VALS_PER_OWNER - 1,
        MEASURED_FOR.as_secs()
    );
    server.shutdown().await.unwrap();
}

async fn users(dir: &Path) -> Vec<String> {
    let at = valbox::cli::StoreArgs {
        data: dir.to_path_buf(),
        database: None,
        objects: None,
    };
    let store = at.open().await.unwrap();
    let mut tokens = Vec::new();
    for i in 0..OWNERS {
        let name = format!("owner{i}");
        let email = format!("{name}@example.com");
        tokens.push(
            valbox::cli::create_user_in(&store, &name, &email)
                .await
                .unwrap(),
        );
    }
    tokens
}

async fn schedule(base: &str, token: &str, id: &str, schedule: &str) {
    let resp = reqwest::Client::new()
        .patch(format!("{base}/v2/vals/{id}"))
        .bearer_auth(token)
        .json(&json!({ "schedule": schedule }))
        .send()
        .await
        .unwrap();
    assert!(resp.status().is_success(), "scheduling: {}", resp.status());
}

/// The runs started over `window`, and the bucket bounds under which half
/// and 99% of them started.
async fn measure(metrics: &str, window: Duration) -> (u64, f64, f64) {
    let before = histogram::buckets(metrics, LATENESS).await;
    tokio::time::sleep(window).await;
    let after = histogram::buckets(metrics, LATENESS).await;
    histogram::between(&before, &after)
}
