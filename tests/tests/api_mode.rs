//! API mode: a val calls another val, which runs in its own owner's
//! sandbox with its owner's secrets, and logs to its owner. With a private
//! callee behind a public caller this hides code: anyone gets the result,
//! nobody else reads or calls the callee.

mod support;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use support::{TestServer, assert_error};

async fn set_env(s: &TestServer, token: &str, val_id: &str, key: &str, value: &str) {
    let resp = s
        .req(
            Method::POST,
            &format!("/v2/vals/{val_id}/environment_variables"),
            Some(token),
        )
        .json(&json!({ "key": key, "value": value }))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::CREATED, "setting {key}");
}

fn id(v: &Value) -> &str {
    v["valId"].as_str().unwrap()
}

#[tokio::test]
async fn a_public_val_hides_a_private_one_with_its_secret() {
    let s = TestServer::start().await;
    let hidden = s.deploy("hidden", "hidden", "private").await;
    set_env(&s, &s.alice, id(&hidden), "SAUCE", "Bonjour-sauce-4242").await;
    let wrapper = s.deploy("wrapper", "wrapper", "public").await;
    set_env(&s, &s.alice, id(&wrapper), "TARGET", "alice/hidden").await;

    // Anyone gets the greeting, made with the secret...
    let resp = s.get("/x/alice/wrapper/?name=Ada", None).await;
    assert_eq!(resp.status(), StatusCode::OK);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body, json!({ "greeting": "Bonjour-sauce-4242, Ada!" }));

    // ...but cannot call or download the private val itself.
    let resp = s
        .req(Method::POST, "/v1/run/alice.hidden", None)
        .json(&json!({ "args": ["Ada"] }))
        .send()
        .await
        .unwrap();
    assert_error(resp, StatusCode::NOT_FOUND, "not_found").await;
    let download = format!("/v2/vals/{}/versions/0/component", id(&hidden));
    assert_error(
        s.get(&download, None).await,
        StatusCode::NOT_FOUND,
        "not_found",
    )
    .await;

    // The callee's call is logged to its owner, as called by a val.
    let logs = s
        .wait_for_logs(&s.alice, &format!("val_id={}", id(&hidden)), |d| {
            !d.is_empty()
        })
        .await;
    assert_eq!(logs[0]["attributes"]["trigger"], "api");
    assert_eq!(logs[0]["attributes"]["caller"], "alice/wrapper");
    assert_eq!(logs[0]["attributes"]["http.status"], 200);
}

#[tokio::test]
async fn an_api_call_may_pin_the_callees_version() {
    let s = TestServer::start().await;
    let hidden = s.deploy("hidden", "hidden", "private").await;
    set_env(&s, &s.alice, id(&hidden), "SAUCE", "Hola").await;
    let wrapper = s.deploy("wrapper", "wrapper", "public").await;
    set_env(&s, &s.alice, id(&wrapper), "TARGET", "alice/hidden@0").await;
    // The callee's next version is no script val at all: version 0 still runs.
    s.deploy("hidden", "hello", "private").await;
    let body: Value = s
        .get("/x/alice/wrapper/?name=Ada", None)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(body, json!({ "greeting": "Hola, Ada!" }));

    let target = format!("/v2/vals/{}/environment_variables/TARGET", id(&wrapper));
    for (value, expected) in [
        ("alice/hidden", "is an HTTP val"),
        ("alice/hidden@7", "has no version 7"),
        ("alice/hidden@x", "not a val's name"),
    ] {
        let resp = s
            .req(Method::PUT, &target, Some(&s.alice))
            .json(&json!({ "value": value }))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::OK);
        let resp = s.get("/x/alice/wrapper/?name=Ada", None).await;
        assert_eq!(resp.status(), StatusCode::BAD_GATEWAY);
        let text = resp.text().await.unwrap();
        assert!(text.contains(expected), "{value}: {text}");
    }
}

#[tokio::test]
async fn another_users_val_cannot_call_a_private_val() {
    let s = TestServer::start().await;
    let hidden = s.deploy("hidden", "hidden", "private").await;
    set_env(&s, &s.alice, id(&hidden), "SAUCE", "Bonjour-sauce-4242").await;
    let bob = s.create_user("bob").await;
    let bobs = s
        .deploy_bytes(&bob, "wrapper", "public", support::val_bytes("wrapper"))
        .await;
    assert_eq!(bobs.status(), StatusCode::CREATED);
    let bobs: Value = bobs.json().await.unwrap();
    set_env(&s, &bob, id(&bobs), "TARGET", "alice/hidden").await;

    let resp = s.get("/x/bob/wrapper/?name=Ada", None).await;
    assert_eq!(resp.status(), StatusCode::BAD_GATEWAY);
    let text = resp.text().await.unwrap();
    assert!(text.contains("not-found"), "{text}");
    assert!(!text.contains("Bonjour"), "{text}");
    // A public callee is callable by anyone's val.
    let public = s.deploy("open", "hidden", "public").await;
    set_env(&s, &s.alice, id(&public), "SAUCE", "Hi").await;
    let target = format!("/v2/vals/{}/environment_variables/TARGET", id(&bobs));
    let resp = s
        .req(Method::PUT, &target, Some(&bob))
        .json(&json!({ "value": "alice/open" }))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let body: Value = s
        .get("/x/bob/wrapper/?name=Bob", None)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(body, json!({ "greeting": "Hi, Bob!" }));
}

#[tokio::test]
async fn calling_a_val_needs_val_read() {
    let s = TestServer::start().await;
    s.deploy("hidden", "hidden", "private").await;
    let wrapper = s.deploy("wrapper", "wrapper", "public").await;
    set_env(&s, &s.alice, id(&wrapper), "TARGET", "alice/hidden").await;
    let resp = s
        .patch_val(id(&wrapper), &json!({ "scopes": ["env:read"] }))
        .await;
    assert_eq!(resp.status(), StatusCode::OK);
    let resp = s.get("/x/alice/wrapper/?name=Ada", None).await;
    assert_eq!(resp.status(), StatusCode::BAD_GATEWAY);
    let text = resp.text().await.unwrap();
    assert!(
        text.contains("denied") && text.contains("val:read"),
        "{text}"
    );
}
