//! The server's life as an operator sees it, through the real binary:
//! `/healthz` and `/readyz`, and a SIGTERM during a slow call, which
//! finishes the call, writes its log record and exits 0.

use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use tokio::process::{Child, Command};

fn repo() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

async fn serve(data: &Path, port: u16) -> Child {
    let child = Command::new(env!("CARGO_BIN_EXE_valbox"))
        .args(["serve", "--no-fuel-metering", "--timeout-ms", "20000"])
        .args(["--listen", &format!("127.0.0.1:{port}"), "--data"])
        .arg(data)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("starting valbox serve");
    let http = reqwest::Client::new();
    let began = Instant::now();
    while http
        .get(format!("http://127.0.0.1:{port}/healthz"))
        .send()
        .await
        .is_err()
    {
        assert!(began.elapsed() < Duration::from_secs(30), "no answer");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    child
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[tokio::test(flavor = "multi_thread")]
async fn sigterm_lets_a_slow_call_finish_and_loses_nothing() {
    let built = Command::new(repo().join("scripts/build-vals"))
        .output()
        .await
        .unwrap();
    assert!(built.status.success(), "scripts/build-vals failed");
    let data = tempfile::tempdir().unwrap();
    let token = valbox::cli::create_user(data.path(), "ops", "ops@example.com").unwrap();
    let port = free_port();
    let mut server = serve(data.path(), port).await;
    let base = format!("http://127.0.0.1:{port}");
    let http = reqwest::Client::new();

    let health = http.get(format!("{base}/healthz")).send().await.unwrap();
    assert_eq!(health.status(), 200);
    let ready = http.get(format!("{base}/readyz")).send().await.unwrap();
    assert_eq!(ready.status(), 200);
    assert_eq!(
        ready.json::<serde_json::Value>().await.unwrap()["status"],
        "ready"
    );

    let val: serde_json::Value = http
        .post(format!("{base}/v2/vals"))
        .bearer_auth(&token)
        .json(&serde_json::json!({ "name": "spin", "privacy": "public" }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let wasm = std::fs::read(repo().join("target/vals/spin.wasm")).unwrap();
    let deployed = http
        .post(format!(
            "{base}/v2/vals/{}/versions",
            val["id"].as_str().unwrap()
        ))
        .bearer_auth(&token)
        .body(wasm)
        .send()
        .await
        .unwrap();
    assert!(deployed.status().is_success());

    // A call long enough to still run when the signal comes.
    let began = Instant::now();
    let probe = 20_000_000u64;
    http.get(format!("{base}/x/ops/spin/?iters={probe}"))
        .send()
        .await
        .unwrap();
    let per_iter = began.elapsed().as_secs_f64() / probe as f64;
    let iters = ((2.0 / per_iter) as u64).max(probe);
    let slow = tokio::spawn({
        let url = format!("{base}/x/ops/spin/?iters={iters}");
        async move {
            let resp = reqwest::get(url).await.unwrap();
            (resp.status(), resp.text().await.unwrap())
        }
    });
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(!slow.is_finished(), "the slow call ended before the signal");
    let pid = server.id().unwrap() as i32;
    // SAFETY: sends a signal to the child this test started.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGTERM) }, 0);

    let (status, body) = slow.await.unwrap();
    assert_eq!(status, 200, "{body}");
    assert_eq!(body, format!("spun {iters}"));
    let exit = tokio::time::timeout(Duration::from_secs(30), server.wait())
        .await
        .expect("the server did not exit after SIGTERM")
        .unwrap();
    assert!(exit.success(), "{exit}");

    // The slow call's log record was written before the exit.
    let db = rusqlite::Connection::open(data.path().join("valbox.db")).unwrap();
    let logged: i64 = db
        .query_row(
            "SELECT count(*) FROM call_logs WHERE val_name = 'spin' AND status = 200",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(logged, 2, "both calls' records");
}
