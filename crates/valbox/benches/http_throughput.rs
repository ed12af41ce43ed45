//! Benchmark (b): HTTP throughput of the `hello` val, with a fresh instance
//! per call and with reuse on, against a native axum handler that returns
//! the same body, side by side in one run, measured by `wrk` on loopback.
//! Prints requests/s for each and the ratios.
//! Run with `scripts/bench` (which installs wrk).

mod common;

use axum::Router;
use axum::routing::get;
use valbox_model::Limits;
use valbox_server::config::Config;
use valbox_server::server::Server;

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
    let reused = common::deploy(&base, &token, "hello-reused", common::hello_wasm()).await;
    let patched = reqwest::Client::new()
        .patch(format!("{base}/v2/vals/{reused}"))
        .bearer_auth(&token)
        .json(&serde_json::json!({ "reuse": 10_000 }))
        .send()
        .await
        .unwrap();
    assert!(patched.status().is_success());

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
    let reused_url = format!("{base}/x/bench/hello-reused/");
    let native_url = format!("http://{native_addr}/");
    let check = reqwest::get(&val_url).await.unwrap().text().await.unwrap();
    assert_eq!(check, "Hello, world!");

    let val_rps = common::wrk(&val_url).await;
    let reused_rps = common::wrk(&reused_url).await;
    let native_rps = common::wrk(&native_url).await;
    println!("hello val:          {val_rps:>10.0} req/s");
    println!("hello val, reused:  {reused_rps:>10.0} req/s");
    println!("native axum:        {native_rps:>10.0} req/s");
    println!("ratio val/native: {:.2}", val_rps / native_rps);
    println!("ratio reused/native: {:.2}", reused_rps / native_rps);
    println!("ratio reused/fresh: {:.2}", reused_rps / val_rps);
    server.shutdown().await.unwrap();
}
