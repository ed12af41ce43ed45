//! Val Town's official TypeScript client (`@valtown/sdk`, from npm) against
//! a live Valbox server: the REST shapes must be what it expects.

mod support;

use std::process::Command;

use support::{TestServer, repo_root};

#[tokio::test]
async fn the_official_client_works_against_valbox() {
    let s = TestServer::start().await;
    let v = s.deploy("hello", "hello", "public").await;
    s.deploy("counter", "counter", "public").await;
    assert_eq!(s.get("/x/alice/hello/", None).await.status(), 200);
    let dir = repo_root().join("tests/valtown-sdk");
    assert!(
        dir.join("node_modules/@valtown/sdk").exists(),
        "run `npm ci` in tests/valtown-sdk first (scripts/test does)"
    );
    let base = s.base.clone();
    let token = s.alice.clone();
    let val_id = v["valId"].as_str().unwrap().to_string();
    let output = tokio::task::spawn_blocking(move || {
        Command::new("node")
            .arg("check.mjs")
            .current_dir(dir)
            .env("VAL_TOWN_BASE_URL", base)
            .env("VAL_TOWN_API_KEY", token)
            .env("VAL_ID", val_id)
            .output()
            .expect("running node")
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "the official client failed:\n{stdout}\n{stderr}"
    );
    assert!(stdout.contains("all checks passed"), "{stdout}");
}
