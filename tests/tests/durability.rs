//! What was acknowledged (deploys, env vars, blobs, SQL) survives a restart and
//! a kill -9, and compiled
//! components come from the on-disk cache rather than being recompiled.

mod support;

use std::process::{Command, Stdio};
use std::time::Duration;

use reqwest::Method;
use serde_json::{Value, json};
use support::{TestServer, repo_root, val_bytes};

#[tokio::test]
async fn a_restart_serves_from_the_compiled_cache() {
    let s = TestServer::start().await;
    let v = s.deploy("hello", "hello", "public").await;
    let sha = v["sha256"].as_str().unwrap().to_string();
    let cached = s.dir.path().join("components").join(format!("{sha}.cwasm"));
    assert!(cached.exists());
    let modified = std::fs::metadata(&cached).unwrap().modified().unwrap();

    let s = s.restart().await;
    assert_eq!(
        s.get("/x/alice/hello/", None).await.text().await.unwrap(),
        "Hello, world!"
    );
    assert_eq!(
        std::fs::metadata(&cached).unwrap().modified().unwrap(),
        modified,
        "the component was recompiled"
    );
}

#[tokio::test]
async fn a_deploy_and_an_env_change_survive_kill_9() {
    let dir = tempfile::tempdir().unwrap();
    let token = valbox::cli::create_user(dir.path(), "alice", "alice@example.com").unwrap();
    let status = Command::new("cargo")
        .args(["build", "-q", "-p", "valbox", "--bin", "valbox"])
        .current_dir(repo_root())
        .status()
        .unwrap();
    assert!(status.success());
    let bin = repo_root().join("target/debug/valbox");
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let mut child = Command::new(&bin)
        .args([
            "serve",
            "--data",
            dir.path().to_str().unwrap(),
            "--listen",
            &format!("127.0.0.1:{port}"),
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let base = format!("http://127.0.0.1:{port}");
    let http = reqwest::Client::new();
    for _ in 0..200 {
        if http.get(format!("{base}/v2/vals")).send().await.is_ok() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    let val: Value = http
        .post(format!("{base}/v2/vals"))
        .bearer_auth(&token)
        .json(&json!({ "name": "greet", "privacy": "public" }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = val["id"].as_str().unwrap();
    let resp = http
        .post(format!("{base}/v2/vals/{id}/versions"))
        .bearer_auth(&token)
        .body(val_bytes("greet-env"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 201);
    let resp = http
        .request(
            Method::PUT,
            format!("{base}/v2/vals/{id}/environment_variables/GREETING"),
        )
        .bearer_auth(&token)
        .json(&json!({ "value": "Durable" }))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let resp = http
        .post(format!("{base}/v1/blob/kept"))
        .bearer_auth(&token)
        .body("acknowledged")
        .send()
        .await
        .unwrap();
    assert!(resp.status().is_success());
    let resp = http
        .post(format!("{base}/v1/sqlite/execute"))
        .bearer_auth(&token)
        .json(&json!({ "statement": "CREATE TABLE kept AS SELECT 'committed' AS v" }))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    child.kill().unwrap(); // SIGKILL: no shutdown, no flush.
    child.wait().unwrap();

    let limits = support::test_limits();
    let s = TestServer::start_in(dir, limits, token).await;
    let kept = s
        .get("/v1/blob/kept", Some(&s.alice))
        .await
        .text()
        .await
        .unwrap();
    assert_eq!(kept, "acknowledged");
    let rows: Value = s
        .req(Method::POST, "/v1/sqlite/execute", Some(&s.alice))
        .json(&json!({ "statement": "SELECT v FROM kept" }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(rows["rows"], json!([["committed"]]));
    assert_eq!(
        s.get("/x/alice/greet/", None).await.text().await.unwrap(),
        "Durable, world!"
    );
}
