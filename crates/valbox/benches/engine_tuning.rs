//! Benchmark (p): the engine's knobs with instance reuse off, side by side
//! in one process. Each variant is a server of its own (`App`) whose
//! limits differ in one knob from the defaults: how much of a pooled
//! memory stays resident after a call, how many slots stay warm, and fuel
//! metering. Each deploys the Rust, JavaScript and Python `hello`, and the
//! calls (the runtime's path, as bench (a) measures it) alternate between
//! variants in rounds so all see the same machine. Prints p50 and p99 of
//! each and the p50 ratio to the defaults. Run with `scripts/bench`.

mod common;

use std::time::{Duration, Instant};

use valbox_model::Limits;
use valbox_runtime::{HttpRequest, Input, LinkPlan, Output};
use valbox_server::app::App;
use valbox_server::config::Config;
use valbox_server::services::call::begin;
use valbox_store::ValRow;

const ROUNDS: usize = 20;
const PER_ROUND: [usize; 3] = [500, 100, 50];
const LANGUAGES: [&str; 3] = ["hello", "js-hello", "py-hello"];

type Knob = fn(&mut Limits);

const VARIANTS: [(&str, Knob); 5] = [
    ("defaults", |_| {}),
    ("keep resident 0", |l| l.keep_resident_bytes = 0),
    ("keep resident 1 MiB", |l| l.keep_resident_bytes = 1 << 20),
    ("warm slots 0", |l| l.warm_slots = 0),
    ("no fuel", |l| l.meter_fuel = false),
];

fn main() {
    common::run_on_tokio(run());
}

struct Variant {
    name: &'static str,
    app: App,
    vals: Vec<ValRow>,
    _dir: tempfile::TempDir,
}

async fn run() {
    let mut variants = Vec::new();
    for (name, knob) in VARIANTS {
        let dir = tempfile::tempdir().unwrap();
        let mut config = Config::new(dir.path(), "127.0.0.1:0".parse().unwrap());
        knob(&mut config.limits);
        let (app, _log_writer) = App::open(config).await.unwrap();
        let began = Instant::now();
        let mut vals = Vec::new();
        for language in LANGUAGES {
            vals.push(common::deploy_in_process(&app, language, common::val_wasm(language)).await);
        }
        println!("{name}: deployed in {:.1} s", began.elapsed().as_secs_f64());
        variants.push(Variant {
            name,
            app,
            vals,
            _dir: dir,
        });
    }
    let mut samples = vec![vec![Vec::new(); LANGUAGES.len()]; variants.len()];
    for round in 0..=ROUNDS {
        for (v, variant) in variants.iter().enumerate() {
            for (l, val) in variant.vals.iter().enumerate() {
                for _ in 0..PER_ROUND[l] {
                    let started = Instant::now();
                    check(call(&variant.app, val).await);
                    // Round 0 warms every slot and cache up.
                    if round > 0 {
                        samples[v][l].push(started.elapsed());
                    }
                }
            }
        }
    }
    let p50s: Vec<Vec<f64>> = samples
        .iter_mut()
        .map(|by_language| by_language.iter_mut().map(|s| percentile(s, 50)).collect())
        .collect();
    for (v, variant) in variants.iter().enumerate() {
        for (l, language) in LANGUAGES.iter().enumerate() {
            println!(
                "{:<20} {language:<9} p50 {:>7.1} µs, p99 {:>7.1} µs, {:.2}x defaults",
                variant.name,
                p50s[v][l],
                percentile(&mut samples[v][l], 99),
                p50s[v][l] / p50s[0][l],
            );
        }
    }
}

/// A call as the call service makes it, minus the slot and the log.
async fn call(app: &App, val: &ValRow) -> Result<Output, String> {
    let start = || begin(app, val, val.scopes, None);
    let plan = LinkPlan::new(val.latest.as_ref().unwrap().sha256.clone(), Vec::new());
    let input = Input::Http(HttpRequest {
        method: "GET".into(),
        path: "/".into(),
        query: "name=bench".into(),
        headers: Vec::new(),
        body: Vec::new(),
    });
    let outcome = app.runtime.invoke(&plan, input, start).await;
    outcome.result.map_err(|e| format!("{e:?}"))
}

fn check(out: Result<Output, String>) {
    match out {
        Ok(Output::Http(r)) => assert_eq!(r.status, 200),
        other => panic!("unexpected outcome: {other:?}"),
    }
}

/// The `p`th percentile in µs.
fn percentile(samples: &mut [Duration], p: usize) -> f64 {
    samples.sort();
    common::micros(samples[(samples.len() - 1) * p / 100])
}
