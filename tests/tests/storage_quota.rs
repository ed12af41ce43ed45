//! One quota over all an owner stores (components of every version, blobs,
//! SQLite, call logs): shown in `GET /v1/me`, and past it a deploy or a
//! blob write is refused whole with 507.

mod support;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use support::{TestServer, assert_error, val_bytes};

async fn storage(s: &TestServer) -> Value {
    let me: Value = s.get("/v1/me", Some(&s.alice)).await.json().await.unwrap();
    me["storage"].clone()
}

#[tokio::test]
async fn an_owner_stores_at_most_their_quota_over_everything() {
    let inspect = val_bytes("inspect");
    let quota = 2 * inspect.len() as u64 + 20_000;
    let s = TestServer::start_with(|l| l.storage_quota_bytes = quota).await;
    let deployed = s.deploy("inspect", "inspect", "public").await;
    let id = deployed["valId"].as_str().unwrap().to_string();
    let before = storage(&s).await;
    assert_eq!(before["quota"], quota);
    assert_eq!(before["components"], inspect.len());

    // Logs and SQLite count too.
    s.get("/x/alice/inspect/print/100", None).await;
    let resp = s
        .req(Method::POST, "/v1/sqlite/execute", Some(&s.alice))
        .json(&json!({ "statement": "CREATE TABLE t (x TEXT)" }))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let mut now = before.clone();
    for _ in 0..100 {
        now = storage(&s).await;
        if now["logs"].as_u64() > Some(0) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(now["logs"].as_u64() > Some(100), "{now}");
    assert!(now["sqlite"].as_u64() > Some(0), "{now}");
    let parts = ["components", "blobs", "sqlite", "logs"];
    let sum: u64 = parts.iter().map(|p| now[p].as_u64().unwrap()).sum();
    assert_eq!(now["total"], sum);

    // A second version fits; a third does not, and leaves nothing behind.
    let resp = s
        .deploy_bytes(&s.alice, "inspect", "public", inspect.clone())
        .await;
    assert_eq!(resp.status(), StatusCode::CREATED);
    let resp = s
        .deploy_bytes(&s.alice, "inspect", "public", inspect.clone())
        .await;
    let msg = assert_error(
        resp,
        StatusCode::INSUFFICIENT_STORAGE,
        "storage_quota_exceeded",
    )
    .await;
    assert!(
        msg.contains(&quota.to_string()) && msg.contains("GET /v1/me"),
        "{msg}"
    );
    let versions: Value = s
        .get(&format!("/v2/vals/{id}/versions"), Some(&s.alice))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(versions["data"].as_array().unwrap().len(), 2, "{versions}");

    // A blob that does not fit is refused, and stores nothing.
    let put = |key: &str, n: usize| {
        s.req(Method::POST, &format!("/v1/blob/{key}"), Some(&s.alice))
            .body(vec![b'x'; n])
            .send()
    };
    assert_error(
        put("big", 30_000).await.unwrap(),
        StatusCode::INSUFFICIENT_STORAGE,
        "storage_quota_exceeded",
    )
    .await;
    let resp = s.get("/v1/blob/big", Some(&s.alice)).await;
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);

    // Other owners have quotas of their own.
    let bob = s.create_user("bob").await;
    let resp = s
        .deploy_bytes(&bob, "inspect", "public", inspect.clone())
        .await;
    assert_eq!(resp.status(), StatusCode::CREATED);

    // Deleting frees the room.
    let resp = s
        .req(Method::DELETE, &format!("/v2/vals/{id}"), Some(&s.alice))
        .send()
        .await
        .unwrap();
    assert!(resp.status().is_success());
    assert_eq!(storage(&s).await["components"], 0);
    assert!(put("big", 30_000).await.unwrap().status().is_success());
}
