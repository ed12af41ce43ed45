//! Benchmark (f): the price of fuel metering. The same CPU-bound val
//! (`spin?iters=N`) runs through the whole call service on two servers in
//! one process, one metering fuel (the default) and one without it (CPU
//! then bounded by the deadline and the scheduler's slices), alternating
//! in rounds so both see the same machine. Prints each p50 and the ratio
//! (aim: at most 1.3x). Run with `scripts/bench`.

mod common;

use std::time::{Duration, Instant};

use valbox_runtime::{HttpRequest, Input, Output};
use valbox_server::app::App;
use valbox_server::config::Config;
use valbox_server::services::call::call;
use valbox_store::ValRow;

const ITERS: u64 = 2_000_000;
const ROUNDS: usize = 12;
const PER_ROUND: usize = 20;

fn main() {
    common::run_on_tokio(run());
}

fn spin_request() -> Input {
    Input::Http(HttpRequest {
        method: "GET".into(),
        path: "/".into(),
        query: format!("iters={ITERS}"),
        headers: Vec::new(),
        body: Vec::new(),
    })
}

async fn open(meter_fuel: bool) -> (tempfile::TempDir, App, ValRow) {
    let dir = tempfile::tempdir().unwrap();
    let mut config = Config::new(dir.path(), "127.0.0.1:0".parse().unwrap());
    config.limits.meter_fuel = meter_fuel;
    config.limits.fuel = u64::MAX / 2;
    let (app, _writer) = App::open(config).await.unwrap();
    let val = common::deploy_in_process(&app, "spin", common::val_wasm("spin")).await;
    (dir, app, val)
}

async fn timed(app: &App, val: &ValRow) -> Duration {
    let started = Instant::now();
    let called = call(app, val, None, spin_request(), valbox_model::Trigger::Http)
        .await
        .unwrap();
    let elapsed = started.elapsed();
    match called.output {
        Output::Http(r) => assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body)),
        other => panic!("unexpected output {other:?}"),
    }
    elapsed
}

async fn run() {
    let (_a, fueled, fueled_val) = open(true).await;
    let (_b, free, free_val) = open(false).await;
    let (mut with, mut without) = (Vec::new(), Vec::new());
    for round in 0..=ROUNDS {
        for _ in 0..PER_ROUND {
            let a = timed(&fueled, &fueled_val).await;
            let b = timed(&free, &free_val).await;
            // Round 0 warms up.
            if round > 0 {
                with.push(a);
                without.push(b);
            }
        }
    }
    let p50 = |mut v: Vec<Duration>| {
        v.sort();
        v[v.len() / 2]
    };
    let (with, without) = (p50(with), p50(without));
    println!(
        "spin?iters={ITERS} with fuel:    p50 {:.1} µs",
        common::micros(with)
    );
    println!(
        "spin?iters={ITERS} without fuel: p50 {:.1} µs",
        common::micros(without)
    );
    println!(
        "fuel metering costs {:.2}x (aim: at most 1.3x)",
        with.as_secs_f64() / without.as_secs_f64()
    );
}
