//! Benchmark (k): one owner's large writes against everyone else's
//! requests. `GET /v1/me` of one user (it needs the metadata database, as
//! nearly every request does), first on an idle server, then while another
//! user keeps four 10 MiB blob writes in flight. Prints p50/p99 of both and
//! the ratio. Run with `scripts/bench`.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use common::{measure, ms};
use valbox_model::Limits;
use valbox_server::config::Config;
use valbox_server::server::Server;

const WRITERS: usize = 4;
const BLOB_BYTES: usize = 10 << 20;

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
        client.block_on(valbox::cli::create_user(dir.path(), name, &email))
    };
    let (reader, writer) = (create("reader").unwrap(), create("writer").unwrap());
    let mut config = Config::new(dir.path(), "127.0.0.1:0".parse().unwrap());
    config.limits = Limits {
        blob_bytes: BLOB_BYTES,
        ..Limits::default()
    };
    let server = server_rt.block_on(Server::start(config)).unwrap();
    let base = format!("http://{}", server.addr);
    let me = format!("{base}/v1/me");
    let idle = client.block_on(measure(&me, Some(&reader)));

    let stop = Arc::new(AtomicBool::new(false));
    let written = Arc::new(AtomicUsize::new(0));
    let load = {
        let (stop, written, base) = (stop.clone(), written.clone(), base.clone());
        std::thread::spawn(move || {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap()
                .block_on(write_blobs(base, writer, stop, written))
        })
    };
    while written.load(Ordering::Relaxed) == 0 {
        std::thread::sleep(Duration::from_millis(10));
    }
    let loaded = client.block_on(measure(&me, Some(&reader)));
    stop.store(true, Ordering::Relaxed);
    load.join().unwrap();

    println!("GET /v1/me, idle: {}", idle.summary());
    println!(
        "GET /v1/me, {WRITERS} writes of {} MiB by another user in flight: {} ({} blobs written, {} errors)",
        BLOB_BYTES >> 20,
        loaded.summary(),
        written.load(Ordering::Relaxed),
        loaded.errors
    );
    println!(
        "p50 loaded/idle: {:.1}x, p99 loaded/idle: {:.1}x",
        ms(loaded.pct(0.5)) / ms(idle.pct(0.5)),
        ms(loaded.pct(0.99)) / ms(idle.pct(0.99))
    );
    server_rt.block_on(server.shutdown()).unwrap();
}

/// Keep `WRITERS` blob writes of `BLOB_BYTES` in flight until `stop`.
async fn write_blobs(
    base: String,
    token: String,
    stop: Arc<AtomicBool>,
    written: Arc<AtomicUsize>,
) {
    let http = reqwest::Client::new();
    let body = bytes::Bytes::from(vec![b'x'; BLOB_BYTES]);
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..WRITERS {
        let (http, body, stop, written) =
            (http.clone(), body.clone(), stop.clone(), written.clone());
        let url = format!("{base}/v1/blob/big{i}");
        let token = token.clone();
        tasks.spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                let resp = http
                    .post(&url)
                    .bearer_auth(&token)
                    .body(body.clone())
                    .send()
                    .await;
                assert!(
                    resp.is_ok_and(|r| r.status().is_success()),
                    "a blob write failed"
                );
                written.fetch_add(1, Ordering::Relaxed);
            }
        });
    }
    while tasks.join_next().await.is_some() {}
}
