//! Reused instances, which a val's owner opts into: one instance serves up
//! to N calls of the same val, version, scopes and env, and keeps its
//! memory between them; never a token or grant of an earlier call.

mod support;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use support::{TestServer, assert_error, with_section};

async fn memo(s: &TestServer) -> Value {
    let resp = s.get("/x/alice/inspect/memo", None).await;
    assert_eq!(resp.status(), 200);
    resp.json().await.unwrap()
}

async fn set_reuse(s: &TestServer, id: &str, n: u32) {
    let resp = s.patch_val(id, &json!({ "reuse": n })).await;
    assert_eq!(resp.status(), 200);
    let val: Value = resp.json().await.unwrap();
    assert_eq!(val["reuse"], n, "{val}");
}

#[tokio::test]
async fn a_reused_instance_keeps_its_memory_but_never_an_earlier_calls_token() {
    let s = TestServer::start().await;
    let version = s.deploy("inspect", "inspect", "public").await;
    let id = version["valId"].as_str().unwrap().to_string();

    // Off unless asked for: every call a fresh instance.
    for _ in 0..3 {
        assert_eq!(memo(&s).await["calls"], 1);
    }

    set_reuse(&s, &id, 3).await;
    let first = memo(&s).await;
    let second = memo(&s).await;
    let third = memo(&s).await;
    assert_eq!(
        [&first["calls"], &second["calls"], &third["calls"]],
        [1, 2, 3]
    );
    // Each call had its own token; the instance remembers the last one,
    // which died with its call.
    let tokens: Vec<&str> = [&first, &second, &third]
        .iter()
        .map(|m| m["token"].as_str().unwrap())
        .collect();
    assert!(tokens.iter().all(|t| t.starts_with("vbc_")), "{tokens:?}");
    assert!(tokens[0] != tokens[1] && tokens[1] != tokens[2]);
    assert_eq!(second["previous"], first["token"]);
    assert_eq!(third["previous"], second["token"]);
    for old in &tokens {
        let resp = s.get("/v1/me", Some(old)).await;
        assert_eq!(resp.status(), StatusCode::UNAUTHORIZED, "{old} still works");
    }
    // Retired after its third call.
    assert_eq!(memo(&s).await["calls"], 1);
    assert_eq!(memo(&s).await["calls"], 2);

    // New scopes: a new instance, with only what the new grant holds.
    let resp = s.patch_val(&id, &json!({ "scopes": ["blob:read"] })).await;
    assert_eq!(resp.status(), 200);
    let narrowed = memo(&s).await;
    assert_eq!(narrowed["calls"], 1, "{narrowed}");
    assert_eq!(narrowed["scopes"], false, "env:read was taken away");
    assert_eq!(narrowed["token"], "");
    let resp = s
        .patch_val(&id, &json!({ "scopes": ["env:read", "blob:read"] }))
        .await;
    assert_eq!(resp.status(), 200);
    assert_eq!(memo(&s).await["calls"], 1);
    assert_eq!(memo(&s).await["calls"], 2);

    // A change of env vars retires it too.
    let resp = s
        .req(
            Method::POST,
            &format!("/v2/vals/{id}/environment_variables"),
            Some(&s.alice),
        )
        .json(&json!({ "key": "MOOD", "value": "sunny" }))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::CREATED);
    assert_eq!(memo(&s).await["calls"], 1);

    // So does a call that hit a limit.
    assert_eq!(memo(&s).await["calls"], 2);
    let resp = s.get("/x/alice/inspect/bytes/100000000", None).await;
    assert_error(
        resp,
        StatusCode::INSUFFICIENT_STORAGE,
        "memory_limit_exceeded",
    )
    .await;
    assert_eq!(memo(&s).await["calls"], 1);

    // And a new version.
    assert_eq!(memo(&s).await["calls"], 2);
    s.deploy("inspect", "inspect", "public").await;
    assert_eq!(memo(&s).await["calls"], 1);
}

#[tokio::test]
async fn concurrent_calls_of_a_reused_val_each_get_an_instance() {
    let s = TestServer::start().await;
    let version = s.deploy("inspect", "inspect", "public").await;
    set_reuse(&s, version["valId"].as_str().unwrap(), 1000).await;
    // Within the share of the owner's call slots other callers get.
    let calls: Vec<Value> = futures_util::future::join_all((0..8).map(|_| memo(&s))).await;
    let mut tokens: Vec<&str> = calls.iter().map(|m| m["token"].as_str().unwrap()).collect();
    tokens.sort();
    tokens.dedup();
    assert_eq!(tokens.len(), 8, "each call its own token");
    // Then they serve on: some instance has served more than one call.
    let mut most = 0;
    for _ in 0..20 {
        most = most.max(memo(&s).await["calls"].as_u64().unwrap());
    }
    assert!(most > 1, "no instance was reused");
}

#[tokio::test]
async fn reuse_is_bounded_and_only_for_owners() {
    let s = TestServer::start().await;
    let version = s.deploy("inspect", "inspect", "public").await;
    let id = version["valId"].as_str().unwrap();
    let resp = s.patch_val(id, &json!({ "reuse": 10_001 })).await;
    assert_error(resp, StatusCode::BAD_REQUEST, "invalid_reuse").await;
    let bob = s.create_user("bob").await;
    let resp = s
        .req(Method::PATCH, &format!("/v2/vals/{id}"), Some(&bob))
        .json(&json!({ "reuse": 5 }))
        .send()
        .await
        .unwrap();
    assert!(resp.status().is_client_error());
    assert_eq!(memo(&s).await["calls"], 1);
    assert_eq!(memo(&s).await["calls"], 1);
}

#[tokio::test]
async fn a_declared_reuse_is_shown_at_deploy_and_taken_when_granted() {
    let s = TestServer::start().await;
    let wasm = with_section(support::val_bytes("inspect"), "valbox:reuse", "5\n");
    let val = s.ensure_val(&s.alice, "inspect", "public").await;
    let id = val["id"].as_str().unwrap();
    let deploy = |query: &'static str, wasm: Vec<u8>| {
        s.req(
            Method::POST,
            &format!("/v2/vals/{id}/versions{query}"),
            Some(&s.alice),
        )
        .body(wasm)
        .send()
    };
    let resp = deploy("", wasm.clone()).await.unwrap();
    assert_eq!(resp.status(), StatusCode::CREATED);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["declared"]["reuse"], 5, "{body}");
    assert_eq!(memo(&s).await["calls"], 1);
    assert_eq!(memo(&s).await["calls"], 1, "declared, not yet granted");

    let resp = deploy("?grantDeclared=true", wasm).await.unwrap();
    assert_eq!(resp.status(), StatusCode::CREATED);
    assert_eq!(memo(&s).await["calls"], 1);
    assert_eq!(memo(&s).await["calls"], 2);

    let bad = with_section(support::val_bytes("inspect"), "valbox:reuse", "lots\n");
    let resp = deploy("", bad).await.unwrap();
    let msg = assert_error(resp, StatusCode::BAD_REQUEST, "invalid_declaration").await;
    assert!(msg.contains("valbox:reuse"), "{msg}");
}
