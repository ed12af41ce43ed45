//! Benchmark (b): HTTP throughput of the `hello` val against a native axum
//! handler that returns the same body, side by side in one run, measured
//! by `wrk` on loopback. Prints requests/s for both and their ratio.
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

    let val_rps = common::wrk(&val_url).await;
    let native_rps = common::wrk(&native_url).await;
    println!("hello val:   {val_rps:>10.0} req/s");
    println!("native axum: {native_rps:>10.0} req/s");
    println!("ratio val/native: {:.2}", val_rps / native_rps);
    server.shutdown().await.unwrap();
}
