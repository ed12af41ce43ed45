//! Benchmark (m): users' SQLite databases on three nodes (processes of
//! their own, PostgreSQL, S3 on loopback, HAProxy), with the default lease.
//! A statement forwarded to the database's home node against the same
//! statement sent to the home itself, side by side (p50 and p99, reads and
//! writes); the replication lag under a steady write load, from the home's
//! metrics; and the take-over time after kill -9 of the home: from the kill
//! to the first answer from another node.

#[path = "../../crates/valbox/benches/histogram.rs"]
mod histogram;
#[path = "../tests/support/mod.rs"]
mod support;

use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use support::Api;
use support::balanced::Balanced;

/// Statements timed each way, in alternating rounds.
const STATEMENTS: usize = 2_000;
const ROUND: usize = 100;
/// The steady write load for the replication lag.
const WRITES_PER_SECOND: u64 = 100;
const LOADED_FOR: Duration = Duration::from_secs(20);
/// Take-overs timed.
const TAKE_OVERS: usize = 3;

fn main() {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(run());
}

async fn run() {
    let lease = valbox_server::cluster::LEASE;
    let c = Balanced::start_with(lease, &[]).await;
    let made = execute(
        &c.nodes[0],
        json!("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)"),
    )
    .await;
    assert_eq!(made, StatusCode::OK);

    forwarded_against_local(&c).await;
    replication_lag(&c).await;
    take_overs(&c, lease).await;
}

async fn execute(api: &Api, statement: Value) -> StatusCode {
    api.req(Method::POST, "/v1/sqlite/execute", Some(&api.alice))
        .json(&json!({ "statement": statement }))
        .send()
        .await
        .map_or(StatusCode::BAD_GATEWAY, |r| r.status())
}

/// Sequential statements through node 1 (the home) and node 2 (which
/// forwards), alternating rounds so both see the same machine.
async fn forwarded_against_local(c: &Balanced) {
    for (what, statement) in [
        ("read", json!("SELECT count(*) FROM t")),
        ("write", json!({ "sql": "INSERT INTO t (v) VALUES ('x')" })),
    ] {
        let (mut local, mut forwarded) = (Vec::new(), Vec::new());
        while local.len() < STATEMENTS {
            for (node, times) in [(0, &mut local), (1, &mut forwarded)] {
                for _ in 0..ROUND {
                    let started = Instant::now();
                    let status = execute(&c.nodes[node], statement.clone()).await;
                    assert_eq!(status, StatusCode::OK);
                    times.push(started.elapsed());
                }
            }
        }
        let (l50, l99) = percentiles(&mut local);
        let (f50, f99) = percentiles(&mut forwarded);
        println!(
            "(m) {what}: local p50 {l50:?} p99 {l99:?}; forwarded p50 {f50:?} p99 {f99:?}; \
             forwarded/local p50 {:.2}x, p99 {:.2}x",
            f50.as_secs_f64() / l50.as_secs_f64(),
            f99.as_secs_f64() / l99.as_secs_f64()
        );
    }
}

/// A steady write load through node 2 for a while; the home's histogram
/// of the time from a first unsynced write to its replica holding it.
async fn replication_lag(c: &Balanced) {
    let lag = "valbox_sqlite_replication_lag_seconds";
    let before = histogram::buckets(&c.nodes[0].metrics, lag).await;
    let every = Duration::from_secs(1) / WRITES_PER_SECOND as u32;
    let mut ticks = tokio::time::interval(every);
    let stop = Instant::now() + LOADED_FOR;
    let mut sent = 0;
    while Instant::now() < stop {
        ticks.tick().await;
        let insert = json!({ "sql": "INSERT INTO t (v) VALUES ('steady')" });
        assert_eq!(execute(&c.nodes[1], insert).await, StatusCode::OK);
        sent += 1;
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let after = histogram::buckets(&c.nodes[0].metrics, lag).await;
    let (total, p50, p99) = histogram::between(&before, &after);
    println!(
        "(m) replication lag, {sent} writes at {WRITES_PER_SECOND}/s: {total} syncs, p50 ≤ {:.2} s, \
         p99 ≤ {:.2} s (bucket bounds)",
        p50, p99
    );
}

/// kill -9 the home, then ask another node until it answers: the lease
/// runs out, the other node restores the replica and serves.
async fn take_overs(c: &Balanced, lease: Duration) {
    let alice = {
        let me: Value = c.nodes[0]
            .get("/v1/me", Some(&c.alice))
            .await
            .json()
            .await
            .unwrap();
        me["id"].as_str().unwrap().to_owned()
    };
    let mut times = Vec::new();
    for round in 0..TAKE_OVERS {
        let (home, _) = c.home_of(&alice).await.unwrap();
        let other = (home + 1) % 3;
        let insert = json!({ "sql": "INSERT INTO t (v) VALUES ('before')" });
        assert_eq!(execute(&c.nodes[home], insert).await, StatusCode::OK);
        tokio::time::sleep(Duration::from_secs(2)).await;
        c.kill(home);
        let killed = Instant::now();
        while execute(&c.nodes[other], json!("SELECT count(*) FROM t")).await != StatusCode::OK {
            assert!(
                killed.elapsed() < lease * 3,
                "round {round}: never taken over"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        times.push(killed.elapsed());
        c.restart(home).await;
    }
    times.sort();
    println!(
        "(m) take-over after kill -9 with a {lease:?} lease: {:?} (median {:?})",
        times,
        times[times.len() / 2]
    );
}

fn percentiles(times: &mut [Duration]) -> (Duration, Duration) {
    times.sort();
    let at = |q: f64| times[((times.len() as f64 * q) as usize).min(times.len() - 1)];
    (at(0.5), at(0.99))
}
