//! Nodes sharing one PostgreSQL store: what one node changes is in force
//! on the others, within a second where a node caches it; users'
//! SQLite databases are refused, not answered differently by each node.

mod support;

use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use support::TestServer;

#[tokio::test(flavor = "multi_thread")]
async fn tokens_and_val_settings_changed_on_one_node_hold_on_the_other() {
    let a = TestServer::start_on_postgres().await;
    let b = a.another_node().await;
    // alice's token, made before either node started, works on both.
    assert_eq!(
        b.get("/v1/me", Some(&a.alice)).await.status(),
        StatusCode::OK
    );

    // A token made on A works on B; revoked on B, A refuses it at once
    // (tokens are read from the store on every request).
    let (id, token) = a.token_with(&a.alice, &["val:read"]).await;
    assert_eq!(
        b.get("/v1/me", Some(&token)).await.status(),
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        b.get("/v2/me/vals", Some(&token)).await.status(),
        StatusCode::OK
    );
    let revoked = b
        .req(Method::DELETE, &format!("/v1/tokens/{id}"), Some(&b.alice))
        .send()
        .await
        .unwrap();
    assert_eq!(revoked.status(), StatusCode::NO_CONTENT);
    let refused = a.get("/v2/me/vals", Some(&token)).await;
    assert_eq!(refused.status(), StatusCode::UNAUTHORIZED);

    // A val made public on A, cached by B, then made private on A: B
    // stops showing it to strangers within a second.
    let made = a
        .req(Method::POST, "/v2/vals", Some(&a.alice))
        .json(&json!({ "name": "shared", "privacy": "public" }))
        .send()
        .await
        .unwrap();
    assert_eq!(made.status(), StatusCode::CREATED);
    let val: Value = made.json().await.unwrap();
    let alias = "/v2/alias/vals/alice/shared";
    assert_eq!(b.get(alias, None).await.status(), StatusCode::OK);
    let private = a
        .patch_val(
            val["id"].as_str().unwrap(),
            &json!({ "privacy": "private" }),
        )
        .await;
    assert_eq!(private.status(), StatusCode::OK);
    let changed = Instant::now();
    while b.get(alias, None).await.status() != StatusCode::NOT_FOUND {
        assert!(
            changed.elapsed() < Duration::from_secs(1),
            "node B still shows a val made private on node A"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_node_on_a_shared_store_refuses_sqlite_with_a_reason() {
    let s = TestServer::start_on_postgres().await;
    let resp = s
        .req(Method::POST, "/v1/sqlite/execute", Some(&s.alice))
        .json(&json!({ "statement": "SELECT 1" }))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::SERVICE_UNAVAILABLE);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["error"], "sqlite_unavailable", "{body}");
    assert!(body["message"].as_str().unwrap().contains("not available"));
}

/// PostgreSQL restarted: while it is down, what needs it answers 503 with
/// `Retry-After` quickly (no hang) and a loaded val keeps answering; once
/// it is back, the node reconnects by itself.
#[tokio::test(flavor = "multi_thread")]
async fn a_database_restart_is_a_short_503_not_a_hang() {
    let s = TestServer::start_on_postgres().await;
    s.deploy("hello", "hello", "public").await;
    assert_eq!(
        s.get("/x/alice/hello/", None).await.status(),
        StatusCode::OK
    );
    let cluster = s.cluster().unwrap();
    cluster.stop();

    let asked = Instant::now();
    let resp = s.get("/v1/me", Some(&s.alice)).await;
    assert!(
        asked.elapsed() < Duration::from_secs(8),
        "{:?}",
        asked.elapsed()
    );
    assert_eq!(resp.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(resp.headers()["retry-after"], "1");
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["error"], "store_unavailable", "{body}");
    // The cached val answers without the database.
    assert_eq!(
        s.get("/x/alice/hello/", None).await.status(),
        StatusCode::OK
    );

    cluster.resume();
    assert_eq!(
        s.get("/v1/me", Some(&s.alice)).await.status(),
        StatusCode::OK
    );
}

/// A node whose secret key cannot open what the store holds refuses to
/// start, and says which key file to use.
#[tokio::test(flavor = "multi_thread")]
async fn a_node_with_another_key_refuses_to_start() {
    let s = TestServer::start_on_postgres().await;
    let dir = tempfile::tempdir().unwrap();
    let mut config = valbox_server::config::Config::new(dir.path(), "127.0.0.1:0".parse().unwrap());
    config.database = s.database.clone();
    let refused = valbox_server::server::Server::start(config)
        .await
        .err()
        .unwrap();
    let message = format!("{refused:#}");
    assert!(message.contains("cannot decrypt"), "{message}");
    assert!(message.contains("--secret-key-file"), "{message}");
}

/// Two nodes deploying to one val at the same moment: every deploy gets a
/// version of its own, numbered without gaps or duplicates.
#[tokio::test(flavor = "multi_thread")]
async fn deploys_racing_on_two_nodes_are_numbered_without_gaps() {
    let a = TestServer::start_on_postgres().await;
    let b = a.another_node().await;
    let val = a.ensure_val(&a.alice, "raced", "public").await;
    let id = val["id"].as_str().unwrap().to_string();
    let wasm = support::val_bytes("hello");
    // Two per node: a node lets one owner compile two deploys at once.
    let deploys = (0..4).map(|i| {
        let node = if i % 2 == 0 { &a } else { &b };
        node.upload_version(&node.alice, &id, wasm.clone())
    });
    let mut numbers = Vec::new();
    for resp in futures_util::future::join_all(deploys).await {
        assert_eq!(resp.status(), StatusCode::CREATED);
        let body: Value = resp.json().await.unwrap();
        numbers.push(body["version"].as_i64().unwrap());
    }
    numbers.sort();
    assert_eq!(numbers, (0..4).collect::<Vec<_>>());
}
