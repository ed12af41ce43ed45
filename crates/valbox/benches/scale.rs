//! Benchmark (g): many vals on one machine, measured from outside on the
//! real `valbox` binary. Deploys N distinct builds of `hello` (N from
//! `VALBOX_BENCH_VALS`, default 1000) and prints the deploy rate, the
//! server's RSS after deploying, after one call of each and after idling,
//! and the memory per val; then restarts the server and times first calls
//! of cold vals; then runs `hello` under load with wrk and reports errors
//! and RSS after it. Run with `scripts/bench`.

mod common;

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Concurrent calls while filling the server.
const CLIENTS: usize = 4;
/// Concurrent deploys: the compiles one owner may have at once.
const DEPLOYERS: usize = valbox_server::services::compile_gate::PER_OWNER;
/// Past the server's default `loaded_idle` (60 s).
const IDLE: Duration = Duration::from_secs(65);
const COLD_CALLS: usize = 50;
const LOAD_DURATION: &str = "30s";
const LOAD_CONNECTIONS: &str = "64";

fn main() {
    common::run_on_tokio(run());
}

async fn run() {
    let vals: usize = std::env::var("VALBOX_BENCH_VALS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1000);
    let dir = tempfile::tempdir().unwrap();
    let token = valbox::cli::create_user(dir.path(), "bench", "bench@example.com")
        .await
        .unwrap();
    let token: Arc<str> = token.into();
    let mut server = Server::start(dir.path()).await;
    let started = server.memory();
    println!("server started:          {started}");

    let hello = Arc::new(common::hello_wasm());
    let began = Instant::now();
    each_val(vals, DEPLOYERS, |i, _| {
        let (base, token, hello) = (server.base.clone(), token.clone(), hello.clone());
        async move {
            let wasm = distinct_build(&hello, i);
            common::deploy(&base, &token, &format!("v{i}"), wasm).await;
        }
    })
    .await;
    let took = began.elapsed();
    println!(
        "deployed {vals} vals in {:.1} s: {:.1} deploys/s",
        took.as_secs_f64(),
        vals as f64 / took.as_secs_f64()
    );
    let deployed = server.memory();
    println!("after deploying:         {deployed}");

    let began = Instant::now();
    each_val(vals, CLIENTS, |i, http| {
        let base = server.base.clone();
        async move { call(&http, &base, i).await }
    })
    .await;
    println!("called each once in {:.1} s", began.elapsed().as_secs_f64());
    let called = server.memory();
    println!("after one call each:     {called}");
    tokio::time::sleep(IDLE).await;
    let idle = server.memory();
    println!("after {} s idle:         {idle}", IDLE.as_secs());
    let per_val = |m: &Memory| (m.rss_kb.saturating_sub(started.rss_kb)) as f64 / vals as f64;
    println!(
        "per val: {:.0} KB after deploying, {:.0} KB after calls, {:.0} KB idle",
        per_val(&deployed),
        per_val(&called),
        per_val(&idle)
    );

    server.stop();
    let mut server = Server::start(dir.path()).await;
    let http = reqwest::Client::new();
    let mut cold = Vec::new();
    for i in (0..vals).step_by((vals / COLD_CALLS).max(1)) {
        let began = Instant::now();
        call(&http, &server.base, i).await;
        cold.push(began.elapsed());
    }
    let mut warm = Vec::new();
    for _ in 0..cold.len() {
        let began = Instant::now();
        call(&http, &server.base, 0).await;
        warm.push(began.elapsed());
    }
    println!(
        "first call after restart: p50 {:.2} ms, max {:.2} ms ({} vals); warm call p50 {:.2} ms",
        percentile(&mut cold, 50) * 1e3,
        percentile(&mut cold, 100) * 1e3,
        cold.len(),
        percentile(&mut warm, 50) * 1e3,
    );

    let before = server.memory();
    let load = wrk(&format!("{}/x/bench/v0/", server.base));
    println!("load: {load}");
    println!("after load:              {}", server.memory());
    println!("before load:             {before}");
    server.stop();
}

/// Run `job(i, client)` for every val `i`, `clients` at a time.
async fn each_val<F, Fut>(vals: usize, clients: usize, job: F)
where
    F: Fn(usize, reqwest::Client) -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let http = reqwest::Client::new();
    let mut running = tokio::task::JoinSet::new();
    for i in 0..vals {
        if running.len() >= clients {
            running.join_next().await.unwrap().unwrap();
        }
        running.spawn(job(i, http.clone()));
    }
    while let Some(done) = running.join_next().await {
        done.unwrap();
    }
}

/// `hello` with a custom section naming `i` appended: a distinct
/// component (its own hash, its own compiled artifact), the same code.
fn distinct_build(hello: &[u8], i: usize) -> Vec<u8> {
    common::with_section(hello.to_vec(), "valbox-bench", i.to_string().as_bytes())
}

async fn call(http: &reqwest::Client, base: &str, i: usize) {
    let resp = http
        .get(format!("{base}/x/bench/v{i}/"))
        .send()
        .await
        .unwrap();
    assert!(resp.status().is_success(), "calling v{i}: {resp:?}");
    assert_eq!(resp.text().await.unwrap(), "Hello, world!");
}

fn percentile(samples: &mut [Duration], p: usize) -> f64 {
    samples.sort();
    let at = ((samples.len() - 1) * p / 100).min(samples.len() - 1);
    samples[at].as_secs_f64()
}

/// The `valbox serve` binary on a loopback port, its output discarded.
struct Server {
    child: Child,
    base: String,
}

impl Server {
    async fn start(data: &Path) -> Self {
        let port = common::free_port();
        let mut child = Command::new(env!("CARGO_BIN_EXE_valbox"))
            .args(["serve", "--listen", &format!("127.0.0.1:{port}"), "--data"])
            .arg(data)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("starting valbox serve");
        let base = format!("http://127.0.0.1:{port}");
        let http = reqwest::Client::new();
        for _ in 0..200 {
            if http.get(format!("{base}/v1/me")).send().await.is_ok() {
                return Self { child, base };
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let _ = child.kill();
        let _ = child.wait();
        panic!("valbox serve did not answer on {base}");
    }

    fn memory(&self) -> Memory {
        Memory::of(self.child.id())
    }

    fn stop(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let _ = self.child.wait();
    }
}

/// A process's resident memory, from /proc/PID/status.
struct Memory {
    rss_kb: u64,
    anon_kb: u64,
    file_kb: u64,
    shmem_kb: u64,
}

impl Memory {
    fn of(pid: u32) -> Self {
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
        let field = |name: &str| {
            status
                .lines()
                .find_map(|l| l.strip_prefix(name))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
                .unwrap_or(0)
        };
        Self {
            rss_kb: field("VmRSS:"),
            anon_kb: field("RssAnon:"),
            file_kb: field("RssFile:"),
            shmem_kb: field("RssShmem:"),
        }
    }
}

impl std::fmt::Display for Memory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "RSS {:.1} MB (anonymous {:.1}, file {:.1}, shmem {:.1})",
            self.rss_kb as f64 / 1024.0,
            self.anon_kb as f64 / 1024.0,
            self.file_kb as f64 / 1024.0,
            self.shmem_kb as f64 / 1024.0
        )
    }
}

/// Run wrk against `url` and summarise requests, errors and rate.
fn wrk(url: &str) -> String {
    let out = Command::new("wrk")
        .args(["-t2", "-c", LOAD_CONNECTIONS, "-d", LOAD_DURATION, url])
        .output()
        .expect("running wrk (apt-get install wrk; scripts/bench does)");
    let text = String::from_utf8_lossy(&out.stdout);
    let requests = text
        .lines()
        .find_map(|l| {
            l.split_once(" requests in ")
                .map(|(n, _)| n.trim().to_string())
        })
        .unwrap_or_else(|| panic!("no request count in wrk output:\n{text}"));
    let rate = text
        .lines()
        .find_map(|l| l.strip_prefix("Requests/sec:"))
        .map_or("?", str::trim);
    let non_2xx = text
        .lines()
        .find_map(|l| l.strip_prefix("  Non-2xx or 3xx responses:"))
        .map_or("0", str::trim);
    let socket_errors = text
        .lines()
        .find_map(|l| l.strip_prefix("  Socket errors:"))
        .map_or("none", str::trim);
    format!(
        "{requests} requests of hello at concurrency {LOAD_CONNECTIONS} over {LOAD_DURATION}, {rate} req/s; non-2xx: {non_2xx}; socket errors: {socket_errors}"
    )
}
