//! Compiled components come from the on-disk cache after a restart rather
//! than being recompiled. (What was acknowledged surviving a kill -9 is
//! tested against the real binary in `host/tests/binary.rs`.)

mod support;

use support::TestServer;

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
