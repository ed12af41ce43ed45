//! Benchmark (i): vals in JavaScript and Python against the Rust `hello`,
//! side by side on one server. Times each deploy (the first JS and Python
//! vals compile their language engine; the next ones find its functions
//! in the compile cache; an unchanged build deployed again is not compiled
//! at all), then the p50 and p99 of sequential HTTP requests
//! to each, taken in alternating rounds, and the ratio to Rust's; each
//! language also with instance reuse on (`-r`), against Rust's reused,
//! and `js-hello` compiled ahead of time (`js-aot`, `valbox build --aot`,
//! which `scripts/bench` builds with weval).
//! Run with `scripts/bench`.

mod common;

use std::time::{Duration, Instant};

const ROUNDS: usize = 20;
const PER_ROUND: usize = 50;

fn main() {
    common::run_on_tokio(run());
}

async fn run() {
    let server = common::BenchServer::start().await;
    let (base, token) = (&server.base, &server.token);
    // (val, example): the second of each language finds its engine cached.
    let deploys = [
        ("hello", "hello"),
        ("js-hello", "js-hello"),
        ("ts-hello", "ts-hello"),
        ("py-hello", "py-hello"),
        ("py-notes", "py-notes"),
        ("js-aot", "js-hello-aot"),
        // The same bytes as js-hello again: an unchanged build redeployed.
        ("js-again", "js-hello"),
        // The same builds with reuse on.
        ("hello-r", "hello"),
        ("js-r", "js-hello"),
        ("py-r", "py-hello"),
        ("js-aot-r", "js-hello-aot"),
    ];
    for (name, example) in deploys {
        let wasm = common::val_wasm(example);
        let size = wasm.len();
        let began = Instant::now();
        let id = common::deploy(base, token, name, wasm).await;
        if name.ends_with("-r") {
            let patched = reqwest::Client::new()
                .patch(format!("{base}/v2/vals/{id}"))
                .bearer_auth(token)
                .json(&serde_json::json!({ "reuse": 10_000 }))
                .send()
                .await
                .unwrap();
            assert!(patched.status().is_success());
        }
        println!(
            "deploy {name:<9} {:>5.1} MB: {:>6.2} s",
            size as f64 / 1e6,
            began.elapsed().as_secs_f64()
        );
    }
    let http = reqwest::Client::new();
    let vals = [
        "hello", "js-hello", "js-aot", "py-hello", "hello-r", "js-r", "js-aot-r", "py-r",
    ];
    let mut samples: Vec<Vec<Duration>> = vec![Vec::new(); vals.len()];
    for _ in 0..ROUNDS {
        for (i, val) in vals.iter().enumerate() {
            let url = format!("{base}/x/bench/{val}/?name=bench");
            for _ in 0..PER_ROUND {
                let began = Instant::now();
                let body = http.get(&url).send().await.unwrap().text().await.unwrap();
                samples[i].push(began.elapsed());
                assert_eq!(body, "Hello, bench!");
            }
        }
    }
    let p = |s: &mut Vec<Duration>, q: usize| {
        s.sort();
        s[(s.len() - 1) * q / 100].as_secs_f64() * 1e3
    };
    let rust_p50 = p(&mut samples[0], 50);
    let rust_reused_p50 = p(&mut samples[4], 50);
    for (val, s) in vals.iter().zip(&mut samples) {
        let (p50, p99) = (p(s, 50), p(s, 99));
        println!(
            "{val:<9} p50 {p50:>6.3} ms, p99 {p99:>6.3} ms: {:.2}x Rust's p50, {:.2}x reused Rust's",
            p50 / rust_p50,
            p50 / rust_reused_p50
        );
    }
    server.server.shutdown().await.unwrap();
}
