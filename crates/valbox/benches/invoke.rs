//! Benchmark (a): one call of the `hello` val in process, no HTTP.
//!
//! - `runtime`: what every call pays below the web layer: mint the call's
//!   token, build its grant and capability state, a fresh store and WASI
//!   context, instantiate from the cached `InstancePre`, call the handler,
//!   capture output.
//! - `call service`: the whole of `services::call::call`, which adds the
//!   owner's concurrency slot and the call's log record.
//! - each again with instance reuse on: the instance is kept, the rest of
//!   the call is the same.
//!
//! Prints p50, p99 and mean of each. Run with `scripts/bench`.

mod common;

use std::time::{Duration, Instant};

use valbox_runtime::{HttpRequest, Input, LinkPlan, Output, Reuse};
use valbox_server::app::App;
use valbox_server::config::Config;
use valbox_server::services::call::{begin, call};
use valbox_store::ValRow;

const WARMUP: usize = 2_000;
const SAMPLES: usize = 20_000;

fn main() {
    common::run_on_tokio(run());
}

fn request() -> Input {
    Input::Http(HttpRequest {
        method: "GET".into(),
        path: "/".into(),
        query: String::new(),
        headers: vec![("accept".into(), "*/*".into())],
        body: Vec::new(),
    })
}

/// What `services::call` does around the runtime, minus slot and log.
async fn runtime_call(app: &App, val: &ValRow, reuse: Option<&Reuse>) -> Result<Output, String> {
    let scopes = val.scopes;
    let start = || begin(app, val, scopes, None);
    let sha256 = &val.latest.as_ref().unwrap().sha256;
    // As the call service makes it for a val without libraries.
    let plan = LinkPlan::new(sha256.clone(), Vec::new());
    let outcome = match reuse {
        Some(reuse) => {
            app.runtime
                .invoke_reusing(&plan, request(), start, reuse)
                .await
        }
        None => app.runtime.invoke(&plan, request(), start).await,
    };
    outcome.result.map_err(|e| format!("{e:?}"))
}

async fn service_call(app: &App, val: &ValRow) -> Result<Output, String> {
    call(app, val, None, request(), valbox_model::Trigger::Http)
        .await
        .map(|c| c.output)
        .map_err(|e| e.message)
}

async fn run() {
    let dir = tempfile::tempdir().unwrap();
    let config = Config::new(dir.path(), "127.0.0.1:0".parse().unwrap());
    let (app, _writer) = App::open(config).await.unwrap();
    let val = common::deploy_in_process(&app, "hello", common::hello_wasm()).await;

    let reuse = Reuse {
        key: "bench".into(),
        max_requests: u32::MAX,
        idle: Duration::from_secs(600),
        max_memory: usize::MAX,
    };
    let reused_val = ValRow {
        reuse: 10_000,
        ..val.clone()
    };
    // Alternate the four in rounds, so all see the same machine.
    let mut samples: [Vec<Duration>; 4] = Default::default();
    for round in 0..(WARMUP + SAMPLES) / 1000 {
        for (which, kept) in samples.iter_mut().enumerate() {
            for _ in 0..1000 {
                let started = Instant::now();
                let out = match which {
                    0 => runtime_call(&app, &val, None).await,
                    1 => runtime_call(&app, &val, Some(&reuse)).await,
                    2 => service_call(&app, &val).await,
                    _ => service_call(&app, &reused_val).await,
                };
                let elapsed = started.elapsed();
                check(out);
                if round >= WARMUP / 1000 {
                    kept.push(elapsed);
                }
            }
        }
    }
    let [runtime, runtime_reused, service, service_reused] = samples;
    report("runtime", runtime);
    report("runtime, reused", runtime_reused);
    report("call service", service);
    report("call service, reused", service_reused);
}

fn check(out: Result<Output, String>) {
    match out {
        Ok(Output::Http(r)) => assert_eq!(r.status, 200),
        other => panic!("unexpected outcome: {other:?}"),
    }
}

fn report(what: &str, mut samples: Vec<Duration>) {
    samples.sort();
    let pct = |p: f64| samples[((samples.len() as f64 * p) as usize).min(samples.len() - 1)];
    let mean = samples.iter().sum::<Duration>() / samples.len() as u32;
    println!(
        "invoke hello, {what} ({} calls): p50 {:.1} µs, p99 {:.1} µs, mean {:.1} µs",
        samples.len(),
        common::micros(pct(0.50)),
        common::micros(pct(0.99)),
        common::micros(mean)
    );
}
