//! Benchmark (c): noisy neighbours. `hello`'s latency from one owner,
//! first on an idle server, then while 12 other owners keep 96 CPU-bound
//! `spin` calls in flight (each loops until its fuel or deadline ends it
//! and is restarted at once). Prints p50/p99 of both, the p99 ratio,
//! hello's errors, and how the spin calls ended. Run with `scripts/bench`.
//!
//! The server runs on its own multi-threaded runtime, as in production;
//! the clients run on other threads, as a remote client would.

mod common;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use valbox::config::{Config, Limits};
use valbox::server::Server;

const OWNERS: usize = 12;
const SPINS_PER_OWNER: usize = 8;
const REQUESTS: usize = 2000;
const WARMUP: usize = 200;
/// Bounds each measuring phase, however slow `hello` gets.
const PHASE_LIMIT: Duration = Duration::from_secs(60);

fn main() {
    let server_rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let client = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let bench = valbox::cli::create_user(dir.path(), "bench", "bench@example.com").unwrap();
    let neighbours: Vec<(String, String)> = (1..=OWNERS)
        .map(|i| {
            let name = format!("neighbour{i}");
            let email = format!("{name}@example.com");
            let token = valbox::cli::create_user(dir.path(), &name, &email).unwrap();
            (name, token)
        })
        .collect();
    let mut config = Config::new(dir.path(), "127.0.0.1:0".parse().unwrap());
    let defaults = Limits::default();
    config.limits = Limits {
        concurrent_calls_per_owner: defaults.concurrent_calls_per_owner.max(SPINS_PER_OWNER),
        ..defaults
    };
    let server = server_rt.block_on(Server::start(config)).unwrap();
    let base = format!("http://{}", server.addr);

    client.block_on(async {
        common::deploy(&base, &bench, "hello", common::hello_wasm()).await;
        for (_, token) in &neighbours {
            common::deploy(&base, token, "spin", common::val_wasm("spin")).await;
        }
    });
    let hello_url = format!("{base}/x/bench/hello/");
    let unloaded = client.block_on(measure(&hello_url));

    let stop = Arc::new(AtomicBool::new(false));
    let in_flight = Arc::new(AtomicUsize::new(0));
    let load = {
        let urls: Vec<String> = neighbours
            .iter()
            .map(|(name, _)| format!("{base}/x/{name}/spin/"))
            .collect();
        let (stop, in_flight) = (stop.clone(), in_flight.clone());
        std::thread::spawn(move || {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap()
                .block_on(spin_load(urls, stop, in_flight))
        })
    };
    while in_flight.load(Ordering::Relaxed) < OWNERS * SPINS_PER_OWNER {
        std::thread::sleep(Duration::from_millis(10));
    }
    // Let the spin calls reach the server and start burning.
    std::thread::sleep(Duration::from_secs(1));
    let loaded = client.block_on(measure(&hello_url));
    stop.store(true, Ordering::Relaxed);
    let spins = load.join().unwrap();

    println!(
        "hello, unloaded: {} ({} requests)",
        unloaded.summary(),
        unloaded.samples.len()
    );
    println!(
        "hello, {} spin calls of {OWNERS} other owners in flight: {} ({} requests)",
        OWNERS * SPINS_PER_OWNER,
        loaded.summary(),
        loaded.samples.len()
    );
    println!(
        "p99 loaded/unloaded: {:.1}x; hello errors: {} unloaded, {} loaded",
        ms(loaded.pct(0.99)) / ms(unloaded.pct(0.99)),
        unloaded.errors,
        loaded.errors
    );
    let ended: Vec<String> = spins.iter().map(|(k, n)| format!("{k}: {n}")).collect();
    println!("spin calls ended: {}", ended.join(", "));
    server_rt.block_on(server.shutdown()).unwrap();
}

struct Latencies {
    samples: Vec<Duration>,
    errors: usize,
}

impl Latencies {
    fn pct(&self, p: f64) -> Duration {
        let n = self.samples.len();
        self.samples[((n as f64 * p) as usize).min(n - 1)]
    }

    fn summary(&self) -> String {
        format!(
            "p50 {:.2} ms, p99 {:.2} ms",
            ms(self.pct(0.5)),
            ms(self.pct(0.99))
        )
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// `REQUESTS` sequential calls of `url` over one keep-alive connection.
async fn measure(url: &str) -> Latencies {
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap();
    let get = || async {
        match http.get(url).send().await {
            Ok(r) if r.status().is_success() => r.bytes().await.is_ok(),
            _ => false,
        }
    };
    for _ in 0..WARMUP {
        get().await;
    }
    let mut out = Latencies {
        samples: Vec::with_capacity(REQUESTS),
        errors: 0,
    };
    let phase = Instant::now();
    while out.samples.len() < REQUESTS && phase.elapsed() < PHASE_LIMIT {
        let started = Instant::now();
        let ok = get().await;
        out.samples.push(started.elapsed());
        out.errors += usize::from(!ok);
    }
    out.samples.sort();
    out
}

/// Keep `SPINS_PER_OWNER` calls of each url in flight until `stop`;
/// returns how the calls ended, by status and error code.
async fn spin_load(
    urls: Vec<String>,
    stop: Arc<AtomicBool>,
    in_flight: Arc<AtomicUsize>,
) -> BTreeMap<String, usize> {
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(60))
        .build()
        .unwrap();
    let mut tasks = tokio::task::JoinSet::new();
    for url in urls {
        for _ in 0..SPINS_PER_OWNER {
            let (http, url, stop, in_flight) =
                (http.clone(), url.clone(), stop.clone(), in_flight.clone());
            tasks.spawn(async move {
                in_flight.fetch_add(1, Ordering::Relaxed);
                let mut ended = Vec::new();
                while !stop.load(Ordering::Relaxed) {
                    ended.push(match http.get(&url).send().await {
                        Ok(r) => {
                            let status = r.status().as_u16();
                            let body: serde_json::Value = r.json().await.unwrap_or_default();
                            format!("{status} {}", body["error"].as_str().unwrap_or("-"))
                        }
                        Err(e) => format!("transport error ({e})"),
                    });
                }
                ended
            });
        }
    }
    let mut counts = BTreeMap::new();
    while let Some(ended) = tasks.join_next().await {
        for k in ended.unwrap() {
            *counts.entry(k).or_default() += 1;
        }
    }
    counts
}
