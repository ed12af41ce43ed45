//! Benchmark (d): the price of a val using a val, side by side on one
//! server over loopback (keep-alive, one request at a time):
//!
//! - `wrapper`: an HTTP request to `wrapper`, which calls the script val
//!   `hidden` in API mode;
//! - `hello`: an HTTP request to `hello` (a request and a call, no hop);
//! - `run hidden`: the Run API request for `hidden` directly, what a val
//!   would pay to reach it over HTTP instead (before fetch's own costs);
//! - `uses-slugify`: an HTTP request to `uses-slugify`, which calls the
//!   library `slugify` (library mode: a second store in the same call).
//!
//! The API-mode hop is `wrapper` - `hello`; it should cost less than a
//! whole HTTP request to the callee. A library call should cost at most
//! 1.5x `hello`. Run with `scripts/bench`.

mod common;

use std::time::{Duration, Instant};

const ROUNDS: usize = 20;
const PER_ROUND: usize = 200;

fn main() {
    common::run_on_tokio(run());
}

async fn run() {
    let bench = common::BenchServer::start().await;
    let (base, token) = (bench.base.clone(), bench.token.clone());
    let http = reqwest::Client::new();
    common::deploy(&base, &token, "hello", common::hello_wasm()).await;
    common::deploy(&base, &token, "hidden", common::val_wasm("hidden")).await;
    let wrapper = common::deploy(&base, &token, "wrapper", common::val_wasm("wrapper")).await;
    let resp = http
        .post(format!("{base}/v2/vals/{wrapper}/environment_variables"))
        .bearer_auth(&token)
        .json(&serde_json::json!({ "key": "TARGET", "value": "bench/hidden" }))
        .send()
        .await
        .unwrap();
    assert!(resp.status().is_success(), "setting TARGET");
    common::deploy(&base, &token, "slugify", common::val_wasm("slugify")).await;
    let uses = common::val_wasm("uses-slugify");
    common::deploy_with(&base, &token, "uses-slugify", uses, "dep=bench/slugify").await;

    let wrapper = || http.get(format!("{base}/x/bench/wrapper/?name=x")).send();
    let hello = || http.get(format!("{base}/x/bench/hello/")).send();
    let direct = || {
        http.post(format!("{base}/v1/run/bench.hidden"))
            .json(&serde_json::json!({ "args": ["x"] }))
            .send()
    };
    let library = || {
        http.get(format!(
            "{base}/x/bench/uses-slugify/slug?text=Hello,%20World"
        ))
        .send()
    };
    let (mut w, mut h, mut d, mut l) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for round in 0..=ROUNDS {
        // Round 0 warms up.
        let keep = round > 0;
        for _ in 0..PER_ROUND {
            timed(keep.then_some(&mut w), "wrapper", wrapper()).await;
            timed(keep.then_some(&mut h), "hello", hello()).await;
            timed(keep.then_some(&mut d), "run hidden", direct()).await;
            timed(keep.then_some(&mut l), "uses-slugify", library()).await;
        }
    }
    let (w, h, d, l) = (p50(w), p50(h), p50(d), p50(l));
    println!(
        "wrapper (API-mode call inside): p50 {:.1} µs",
        common::micros(w)
    );
    println!(
        "hello (no hop):                 p50 {:.1} µs",
        common::micros(h)
    );
    println!(
        "run hidden over HTTP:           p50 {:.1} µs",
        common::micros(d)
    );
    let hop = w.saturating_sub(h);
    println!(
        "API-mode hop {:.1} µs = {:.2}x an HTTP request to the callee",
        common::micros(hop),
        hop.as_secs_f64() / d.as_secs_f64()
    );
    println!(
        "uses-slugify (library call):   p50 {:.1} µs = {:.2}x hello",
        common::micros(l),
        l.as_secs_f64() / h.as_secs_f64()
    );
    bench.server.shutdown().await.unwrap();
}

/// Send one request, check it answered 200, read its body, and add its
/// time to `samples` (none while warming up).
async fn timed(
    samples: Option<&mut Vec<Duration>>,
    what: &str,
    request: impl std::future::Future<Output = reqwest::Result<reqwest::Response>>,
) {
    let started = Instant::now();
    let response = request.await.unwrap();
    assert_eq!(response.status(), 200, "{what}");
    response.bytes().await.unwrap();
    if let Some(samples) = samples {
        samples.push(started.elapsed());
    }
}

fn p50(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}
