//! Benchmark (c): noisy neighbours. `hello`'s latency from one owner,
//! first on an idle server, then while 12 other owners keep 96 CPU-bound
//! `spin` calls in flight (each loops until its fuel or deadline ends it
//! and is restarted at once), then while they keep 32 chains of `relay`
//! calls four vals deep in flight (each val waiting on the next, as API
//! calls). Prints p50/p99 of each, the p99 ratios, hello's errors, and
//! how the loading calls ended. Run with `scripts/bench`.
//!
//! The server runs on its own multi-threaded runtime, as in production;
//! the clients run on other threads, as a remote client would.

mod common;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use common::{Latencies, measure, ms};
use valbox_model::Limits;
use valbox_server::config::Config;
use valbox_server::server::Server;

const OWNERS: usize = 12;
const SPINS_PER_OWNER: usize = 8;
/// Chains of API calls kept in flight, each four vals deep.
const CHAINS: usize = 32;

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
    let create = |name: &str| {
        let email = format!("{name}@example.com");
        let created = valbox::cli::create_user(dir.path(), name, &email);
        client.block_on(created).unwrap()
    };
    let bench = create("bench");
    let neighbours: Vec<(String, String)> = (1..=OWNERS)
        .map(|i| {
            let name = format!("neighbour{i}");
            let token = create(&name);
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
            common::deploy(&base, token, "relay", common::val_wasm("relay")).await;
        }
    });
    let hello_url = format!("{base}/x/bench/hello/");
    let unloaded = client.block_on(measure(&hello_url, None));

    println!(
        "hello, unloaded: {} ({} requests)",
        unloaded.summary(),
        unloaded.samples.len()
    );
    let spin_urls: Vec<String> = neighbours
        .iter()
        .flat_map(|(name, _)| vec![format!("{base}/x/{name}/spin/"); SPINS_PER_OWNER])
        .collect();
    let what = format!(
        "{} spin calls of {OWNERS} other owners",
        OWNERS * SPINS_PER_OWNER
    );
    report(&what, &unloaded, under_load(&client, &hello_url, spin_urls));
    // Chain i runs through four owners' relays, starting at owner i.
    let chain_urls: Vec<String> = (0..CHAINS)
        .map(|i| {
            let name = |k: usize| &neighbours[(i + k) % OWNERS].0;
            let via: Vec<String> = (1..4).map(|k| format!("{}/relay", name(k))).collect();
            format!("{base}/x/{}/relay/?via={}", name(0), via.join(","))
        })
        .collect();
    let what = format!("{CHAINS} chains of 4 relay calls");
    report(
        &what,
        &unloaded,
        under_load(&client, &hello_url, chain_urls),
    );
    server_rt.block_on(server.shutdown()).unwrap();
}

/// Print one loaded phase against the unloaded one.
fn report(what: &str, unloaded: &Latencies, (loaded, ended): (Latencies, BTreeMap<String, usize>)) {
    println!(
        "hello, {what} in flight: {} ({} requests)",
        loaded.summary(),
        loaded.samples.len()
    );
    println!(
        "  p99 loaded/unloaded: {:.1}x; hello errors: {} unloaded, {} loaded",
        ms(loaded.pct(0.99)) / ms(unloaded.pct(0.99)),
        unloaded.errors,
        loaded.errors
    );
    let ended: Vec<String> = ended.iter().map(|(k, n)| format!("{k}: {n}")).collect();
    println!("  loading calls ended: {}", ended.join(", "));
}

/// `hello`'s latencies while each of `urls` is called over and over, one
/// call in flight per entry; and how those calls ended.
fn under_load(
    client: &tokio::runtime::Runtime,
    hello_url: &str,
    urls: Vec<String>,
) -> (Latencies, BTreeMap<String, usize>) {
    let stop = Arc::new(AtomicBool::new(false));
    let in_flight = Arc::new(AtomicUsize::new(0));
    let wanted = urls.len();
    let load = {
        let (stop, in_flight) = (stop.clone(), in_flight.clone());
        std::thread::spawn(move || {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap()
                .block_on(keep_calling(urls, stop, in_flight))
        })
    };
    while in_flight.load(Ordering::Relaxed) < wanted {
        std::thread::sleep(Duration::from_millis(10));
    }
    // Let the calls reach the server and start working.
    std::thread::sleep(Duration::from_secs(1));
    let latencies = client.block_on(measure(hello_url, None));
    stop.store(true, Ordering::Relaxed);
    (latencies, load.join().unwrap())
}

/// Keep one call of each entry of `urls` in flight until `stop`; returns
/// how the calls ended, by status and error code.
async fn keep_calling(
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
        let (http, stop, in_flight) = (http.clone(), stop.clone(), in_flight.clone());
        tasks.spawn(async move {
            in_flight.fetch_add(1, Ordering::Relaxed);
            let mut ended = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                ended.push(match http.get(&url).send().await {
                    Ok(r) => {
                        let status = r.status().as_u16();
                        let body = r.bytes().await.unwrap_or_default();
                        let body: serde_json::Value =
                            serde_json::from_slice(&body).unwrap_or_default();
                        format!("{status} {}", body["error"].as_str().unwrap_or("-"))
                    }
                    Err(e) => format!("transport error ({e})"),
                });
            }
            ended
        });
    }
    let mut counts = BTreeMap::new();
    while let Some(ended) = tasks.join_next().await {
        for k in ended.unwrap() {
            *counts.entry(k).or_default() += 1;
        }
    }
    counts
}
