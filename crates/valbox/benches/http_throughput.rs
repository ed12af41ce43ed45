//! Benchmark (b): HTTP throughput of the `hello` val against a native axum
//! handler that returns the same body, side by side in one run, measured
//! by `wrk` on loopback. Prints requests/s for both and their ratio.
//! Run with `scripts/bench` (which installs wrk).

mod common;

use std::process::Command;

use axum::Router;
use axum::routing::get;
use valbox_model::Limits;
use valbox_server::config::Config;
use valbox_server::server::Server;

const DURATION: &str = "5s";
const CONNECTIONS: &str = "32";

fn main() {
    common::run_on_tokio(run());
}

async fn run() {
    let dir = tempfile::tempdir().unwrap();
    let token = valbox::cli::create_user(dir.path(), "bench", "bench@example.com")
        .await
        .unwrap();
    let mut config = Config::new(dir.path(), "127.0.0.1:0".parse().unwrap());
    config.limits = Limits::default();
    let server = Server::start(config).await.unwrap();
    let base = format!("http://{}", server.addr);
    common::deploy(&base, &token, "hello", common::hello_wasm()).await;

    let native = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let native_addr = native.local_addr().unwrap();
    let app = Router::new().route(
        "/",
        get(|| async {
            (
                [
                    ("content-type", "text/plain; charset=utf-8"),
                    ("x-valbox-example", "hello"),
                ],
                "Hello, world!",
            )
        }),
    );
    tokio::spawn(async move { axum::serve(native, app).await.unwrap() });

    let val_url = format!("{base}/x/bench/hello/");
    let native_url = format!("http://{native_addr}/");
    let check = reqwest::get(&val_url).await.unwrap().text().await.unwrap();
    assert_eq!(check, "Hello, world!");

    let val_rps = wrk(&val_url).await;
    let native_rps = wrk(&native_url).await;
    println!("hello val:   {val_rps:>10.0} req/s");
    println!("native axum: {native_rps:>10.0} req/s");
    println!("ratio val/native: {:.2}", val_rps / native_rps);
    server.shutdown().await.unwrap();
}

/// Requests per second that wrk reaches against `url`.
async fn wrk(url: &str) -> f64 {
    let url = url.to_string();
    let out = tokio::task::spawn_blocking(move || {
        Command::new("wrk")
            .args(["-t1", "-c", CONNECTIONS, "-d", DURATION, &url])
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
