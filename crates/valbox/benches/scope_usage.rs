//! Benchmark (e): the price of recording scope usage on the hot path.
//! Every scope check counts a use; this times `ScopeUsage::record` alone,
//! on one thread and with two threads contending, against a REST request
//! that makes one such check (`GET /v1/blob/{key}` over loopback,
//! keep-alive), side by side in the same run. Run with `scripts/bench`.

mod common;

use std::time::{Duration, Instant};

use valbox_model::{Scope, ScopeUsage, Subject};

const RECORDS: u32 = 2_000_000;
const REQUESTS: usize = 2_000;

fn main() {
    common::run_on_tokio(run());
}

/// Nanoseconds per `record` with `threads` threads recording at once.
fn record_ns(threads: u32) -> f64 {
    let usage = ScopeUsage::default();
    let started = Instant::now();
    std::thread::scope(|s| {
        for t in 0..threads {
            let usage = usage.clone();
            s.spawn(move || {
                let subject = Subject::Token(format!("token-{t}"));
                for _ in 0..RECORDS {
                    usage.record(&subject, Scope::BlobRead, true);
                }
            });
        }
    });
    started.elapsed().as_nanos() as f64 / f64::from(RECORDS)
}

async fn run() {
    let one = record_ns(1);
    let two = record_ns(2);

    let bench = common::BenchServer::start().await;
    let (base, token) = (bench.base.clone(), bench.token.clone());
    let http = reqwest::Client::new();
    let put = http
        .post(format!("{base}/v1/blob/k"))
        .bearer_auth(&token)
        .body("v")
        .send()
        .await
        .unwrap();
    assert!(put.status().is_success());
    let mut samples = Vec::with_capacity(REQUESTS);
    for i in 0..REQUESTS * 2 {
        let started = Instant::now();
        let resp = http
            .get(format!("{base}/v1/blob/k"))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
        resp.bytes().await.unwrap();
        // The first half warms up.
        if i >= REQUESTS {
            samples.push(started.elapsed());
        }
    }
    samples.sort();
    let p50: Duration = samples[samples.len() / 2];
    println!("ScopeUsage::record, 1 thread:        {one:.1} ns");
    println!("ScopeUsage::record, 2 threads:       {two:.1} ns (each)");
    println!(
        "GET /v1/blob/k (one counted check):  p50 {:.1} µs; recording is {:.3}% of it",
        common::micros(p50),
        two / p50.as_nanos() as f64 * 100.0
    );
    bench.server.shutdown().await.unwrap();
}
