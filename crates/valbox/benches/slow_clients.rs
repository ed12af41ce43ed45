//! Benchmark (j): one client address holding 20,000 slow connections (a
//! partial request head on each, then nothing) against the real `valbox`
//! binary with its default edge limits, while another local address calls
//! `hello`, each request on a new connection. Prints that client's p50 and
//! p99 without the flood and under it, and their ratio; how many of the
//! slow connections the server kept and how fast it closed the rest; and
//! that the kept ones are closed at the head timeout. The count comes from
//! `VALBOX_BENCH_SLOW` (default 20000). Run with `scripts/bench`.

mod common;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpSocket;
use tokio::sync::Semaphore;

const FLOOD_FROM: IpAddr = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 1));
const CALLER: IpAddr = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2));
const CALLS: usize = 1000;
/// Connections being opened at once by the flood.
const OPENING: usize = 2000;

fn main() {
    raise_open_file_limit();
    common::run_on_tokio(run());
}

async fn run() {
    let slow: usize = std::env::var("VALBOX_BENCH_SLOW")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20_000);
    let dir = tempfile::tempdir().unwrap();
    let token = valbox::cli::create_user(dir.path(), "bench", "bench@example.com")
        .await
        .unwrap();
    let port = common::free_port();
    let metrics_port = common::free_port();
    let server = Server::start(dir.path(), port, metrics_port).await;
    let base = format!("http://127.0.0.1:{port}");
    common::deploy(&base, &token, "hello", common::hello_wasm()).await;
    let url = format!("{base}/x/bench/hello/?name=bench");
    let caller = reqwest::Client::builder()
        .local_address(CALLER)
        .pool_max_idle_per_host(0)
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    calls(&caller, &url, 100).await; // warm up
    let quiet = calls(&caller, &url, CALLS).await;
    println!(
        "hello from {CALLER}, unloaded:      p50 {:>7.3} ms, p99 {:>7.3} ms, {} failed",
        quiet.p50, quiet.p99, quiet.failed
    );

    let addr = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), port);
    let opened = Instant::now();
    let flood = Flood::open(addr, slow).await;
    println!(
        "{slow} slow connections from {FLOOD_FROM}: opened in {:.2} s; {} still open a second \
         later, {} closed by the server within a second ({} could not connect)",
        opened.elapsed().as_secs_f64(),
        flood.held.load(Ordering::Relaxed),
        flood.closed.load(Ordering::Relaxed),
        flood.failed.load(Ordering::Relaxed),
    );
    let metrics = reqwest::get(format!("http://127.0.0.1:{metrics_port}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let metric = |name: &str| {
        metrics
            .lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(' '))
            .unwrap_or("?")
            .to_string()
    };
    println!(
        "the server's metrics: {} connections open, {} refused",
        metric("valbox_open_connections"),
        metric("valbox_connections_refused_total")
    );
    let loaded = calls(&caller, &url, CALLS).await;
    println!(
        "hello from {CALLER}, under the flood: p50 {:>7.3} ms, p99 {:>7.3} ms, {} failed",
        loaded.p50, loaded.p99, loaded.failed
    );
    println!(
        "p99 under the flood / unloaded p99: {:.2}x (target <= 10x)",
        loaded.p99 / quiet.p99
    );
    let waited = Instant::now();
    while flood.held.load(Ordering::Relaxed) > 0 && waited.elapsed() < Duration::from_secs(30) {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    println!(
        "the kept connections were closed {:.1} s later ({} still open; head timeout 10 s)",
        waited.elapsed().as_secs_f64(),
        flood.held.load(Ordering::Relaxed)
    );
    drop(server);
}

struct Latency {
    p50: f64,
    p99: f64,
    failed: usize,
}

/// `n` sequential calls, each on a new connection.
async fn calls(http: &reqwest::Client, url: &str, n: usize) -> Latency {
    let mut took = Vec::with_capacity(n);
    let mut failed = 0;
    for _ in 0..n {
        let began = Instant::now();
        let answered = match http.get(url).send().await {
            Ok(r) => r.status() == 200 && r.text().await.is_ok(),
            Err(_) => false,
        };
        if answered {
            took.push(began.elapsed());
        } else {
            failed += 1;
        }
    }
    took.sort();
    let at = |q: usize| {
        took.get(took.len().saturating_sub(1) * q / 100)
            .map_or(f64::NAN, |d| d.as_secs_f64() * 1e3)
    };
    Latency {
        p50: at(50),
        p99: at(99),
        failed,
    }
}

/// The slow connections, each a task that waits for the server to close it.
struct Flood {
    /// Open, the server not having closed them yet.
    held: Arc<AtomicUsize>,
    /// Closed by the server within a second of connecting.
    closed: Arc<AtomicUsize>,
    failed: Arc<AtomicUsize>,
}

impl Flood {
    async fn open(addr: SocketAddr, n: usize) -> Self {
        let flood = Self {
            held: Arc::default(),
            closed: Arc::default(),
            failed: Arc::default(),
        };
        let opening = Arc::new(Semaphore::new(OPENING));
        for _ in 0..n {
            let permit = opening.clone().acquire_owned().await.unwrap();
            let (held, closed, failed) = (
                flood.held.clone(),
                flood.closed.clone(),
                flood.failed.clone(),
            );
            tokio::spawn(async move {
                let socket = TcpSocket::new_v4().unwrap();
                socket.bind(SocketAddr::new(FLOOD_FROM, 0)).unwrap();
                let Ok(mut stream) = socket.connect(addr).await else {
                    failed.fetch_add(1, Ordering::Relaxed);
                    return;
                };
                let connected = Instant::now();
                let _ = stream.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n").await;
                held.fetch_add(1, Ordering::Relaxed);
                drop(permit);
                let mut buf = [0u8; 256];
                while let Ok(n) = stream.read(&mut buf).await {
                    if n == 0 {
                        break;
                    }
                }
                held.fetch_sub(1, Ordering::Relaxed);
                if connected.elapsed() < Duration::from_secs(1) {
                    closed.fetch_add(1, Ordering::Relaxed);
                }
            });
        }
        // Let the last ones connect and be sorted into kept and closed.
        tokio::time::sleep(Duration::from_secs(1)).await;
        flood
    }
}

struct Server(Child);

impl Server {
    async fn start(data: &std::path::Path, port: u16, metrics_port: u16) -> Self {
        let mut child = Command::new(env!("CARGO_BIN_EXE_valbox"))
            .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
            .args(["--metrics-listen", &format!("127.0.0.1:{metrics_port}")])
            .arg("--data")
            .arg(data)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("starting valbox serve");
        let http = reqwest::Client::new();
        for _ in 0..200 {
            if http
                .get(format!("http://127.0.0.1:{port}/healthz"))
                .send()
                .await
                .is_ok()
            {
                return Self(child);
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let _ = child.kill();
        let _ = child.wait();
        panic!("valbox serve did not answer on port {port}");
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// This process holds thousands of sockets: up to the hard limit.
fn raise_open_file_limit() {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit and setrlimit write and read the struct given.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) == 0 {
            limit.rlim_cur = limit.rlim_max;
            libc::setrlimit(libc::RLIMIT_NOFILE, &limit);
        }
    }
}
