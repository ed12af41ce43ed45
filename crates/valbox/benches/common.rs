//! Shared by the benchmarks: the example components they run.

#![allow(dead_code)]

use std::future::Future;
use std::path::PathBuf;
use std::time::Duration;

/// `target/vals/{name}.wasm`, built by `scripts/build-vals`.
pub fn val_wasm(name: &str) -> Vec<u8> {
    let path =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(format!("../../target/vals/{name}.wasm"));
    std::fs::read(&path).unwrap_or_else(|e| {
        panic!(
            "{}: {e}; run scripts/build-vals first (scripts/bench does)",
            path.display()
        )
    })
}

pub fn hello_wasm() -> Vec<u8> {
    val_wasm("hello")
}

/// `wasm` with a custom section `name` holding `data` appended: a build
/// that differs only there, so it is a component of its own.
pub fn with_section(mut wasm: Vec<u8>, name: &str, data: &[u8]) -> Vec<u8> {
    let leb = |mut n: usize, out: &mut Vec<u8>| loop {
        let byte = (n & 0x7f) as u8;
        n >>= 7;
        if n == 0 {
            out.push(byte);
            break;
        }
        out.push(byte | 0x80);
    };
    let mut body = Vec::new();
    leb(name.len(), &mut body);
    body.extend_from_slice(name.as_bytes());
    body.extend_from_slice(data);
    wasm.push(0);
    leb(body.len(), &mut wasm);
    wasm.extend(body);
    wasm
}

/// Create the public val `name` as `token`'s user and deploy `wasm` to it;
/// returns the val's id.
pub async fn deploy(base: &str, token: &str, name: &str, wasm: Vec<u8>) -> String {
    deploy_with(base, token, name, wasm, "").await
}

/// [`deploy`], naming libraries in `query` (`dep=user/val`).
pub async fn deploy_with(
    base: &str,
    token: &str,
    name: &str,
    wasm: Vec<u8>,
    query: &str,
) -> String {
    let http = reqwest::Client::new();
    let val: serde_json::Value = http
        .post(format!("{base}/v2/vals"))
        .bearer_auth(token)
        .json(&serde_json::json!({ "name": name, "privacy": "public" }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let resp = http
        .post(format!(
            "{base}/v2/vals/{}/versions?{query}",
            val["id"].as_str().unwrap()
        ))
        .bearer_auth(token)
        .body(wasm)
        .send()
        .await
        .unwrap();
    let status = resp.status();
    assert!(
        status.is_success(),
        "deploying {name}: {status} {}",
        resp.text().await.unwrap_or_default()
    );
    val["id"].as_str().unwrap().to_string()
}

/// Run a benchmark's async body on a multi-threaded tokio runtime, as the
/// server runs.
pub fn run_on_tokio(body: impl Future<Output = ()>) {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(body);
}

/// A loopback port free at the time of asking.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

pub fn micros(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

/// A server on a loopback port with default config and a user `bench`.
pub struct BenchServer {
    pub server: valbox_server::server::Server,
    pub base: String,
    pub token: String,
    _dir: tempfile::TempDir,
}

impl BenchServer {
    pub async fn start() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let token = valbox::cli::create_user(dir.path(), "bench", "bench@example.com")
            .await
            .unwrap();
        let config = valbox_server::config::Config::new(dir.path(), "127.0.0.1:0".parse().unwrap());
        let server = valbox_server::server::Server::start(config).await.unwrap();
        let base = format!("http://{}", server.addr);
        Self {
            server,
            base,
            token,
            _dir: dir,
        }
    }
}

/// Deploy `wasm` as the public val `name` of the user `bench` (made on
/// first use) straight through the runtime and the database, as a deploy
/// would, without HTTP; returns the val as calls see it.
pub async fn deploy_in_process(
    app: &valbox_server::app::App,
    name: &str,
    wasm: Vec<u8>,
) -> valbox_store::ValRow {
    use valbox_model::{Privacy, Scopes};
    use valbox_store::{NewToken, NewVal, NewVersion, Room};
    let prepared = app.runtime.prepare(wasm, Vec::new(), true).await.unwrap();
    let store = &app.store;
    let user = match store.users.by_name("bench").await.unwrap() {
        Some(user) => user,
        None => {
            let token = NewToken {
                name: "bench".into(),
                hash: "bench".into(),
                scopes: Scopes::all(),
                expires_at: None,
            };
            let created = store.users.create("bench", "bench@example.com", token);
            created.await.unwrap().0
        }
    };
    let val = NewVal {
        owner_id: user.id.clone(),
        name: name.into(),
        privacy: Privacy::Public,
        description: String::new(),
        scopes: Scopes::val_default(),
    };
    let val = store.vals.create(val).await.unwrap();
    let version = NewVersion {
        val_id: val.id.clone(),
        owner_id: user.id,
        sha256: prepared.sha256,
        size: 0,
        kind: prepared.kind,
        libraries: Vec::new(),
        room: Room {
            quota: u64::MAX,
            outside: 0,
            adding: 0,
        },
        edit: None,
    };
    let added = store.vals.add_version(version).await.unwrap();
    added.expect("val just made").expect("room").1
}

/// Requests [`measure`] times, after its warm-up.
const REQUESTS: usize = 2000;
const WARMUP: usize = 200;
/// Bounds each measuring phase, however slow the server gets.
const PHASE_LIMIT: Duration = Duration::from_secs(60);

/// Latencies of sequential requests, sorted, and how many failed.
pub struct Latencies {
    pub samples: Vec<Duration>,
    pub errors: usize,
}

impl Latencies {
    pub fn pct(&self, p: f64) -> Duration {
        let n = self.samples.len();
        self.samples[((n as f64 * p) as usize).min(n - 1)]
    }

    pub fn summary(&self) -> String {
        format!(
            "p50 {:.2} ms, p99 {:.2} ms",
            ms(self.pct(0.5)),
            ms(self.pct(0.99))
        )
    }
}

pub fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// 2,000 sequential GETs of `url` (with `token`, if given) over one
/// keep-alive connection, after 200 to warm up; at most a minute each.
pub async fn measure(url: &str, token: Option<&str>) -> Latencies {
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap();
    let get = || async {
        let mut req = http.get(url);
        if let Some(token) = token {
            req = req.bearer_auth(token);
        }
        match req.send().await {
            Ok(r) if r.status().is_success() => r.bytes().await.is_ok(),
            _ => false,
        }
    };
    let phase = std::time::Instant::now();
    for _ in 0..WARMUP {
        if phase.elapsed() > PHASE_LIMIT {
            break;
        }
        get().await;
    }
    let mut out = Latencies {
        samples: Vec::with_capacity(REQUESTS),
        errors: 0,
    };
    let phase = std::time::Instant::now();
    while out.samples.len() < REQUESTS && phase.elapsed() < PHASE_LIMIT {
        let started = std::time::Instant::now();
        let ok = get().await;
        out.samples.push(started.elapsed());
        out.errors += usize::from(!ok);
    }
    out.samples.sort();
    out
}

/// How long and with how many connections [`wrk`] loads a URL.
const WRK_DURATION: &str = "5s";
const WRK_CONNECTIONS: &str = "32";

/// Requests per second that wrk reaches against `url`.
pub async fn wrk(url: &str) -> f64 {
    let url = url.to_string();
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new("wrk")
            .args(["-t1", "-c", WRK_CONNECTIONS, "-d", WRK_DURATION, &url])
            .output()
            .expect("running wrk (apt-get install wrk; scripts/bench does)")
    })
    .await
    .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(!text.contains("Non-2xx"), "wrk saw errors:\n{text}");
    text.lines()
        .find_map(|l| l.strip_prefix("Requests/sec:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no Requests/sec in wrk output:\n{text}"))
}
