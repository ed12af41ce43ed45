//! Vals in JavaScript, TypeScript and Python, built from `examples/` by
//! `scripts/build-vals` (componentize-js and componentize-py, pinned in
//! `sdk/`), deployed and called like Rust ones; a scope they lack reaches
//! them as the host's `denied` error.

mod support;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use support::TestServer;

async fn text(s: &TestServer, path: &str) -> (StatusCode, String) {
    let resp = s.get(path, None).await;
    (resp.status(), resp.text().await.unwrap())
}

#[tokio::test]
async fn hello_in_javascript_typescript_and_python() {
    let s = TestServer::start().await;
    for example in ["js-hello", "ts-hello", "py-hello"] {
        let v = s.deploy(example, example, "public").await;
        assert_eq!(v["kind"], "http", "{example}: {v}");
        assert_eq!(
            text(&s, &format!("/x/alice/{example}/?name=Ada")).await,
            (StatusCode::OK, "Hello, Ada!".to_string()),
            "{example}"
        );
        assert_eq!(
            text(&s, &format!("/x/alice/{example}/")).await,
            (StatusCode::OK, "Hello, world!".to_string()),
            "{example}"
        );
    }
}

#[tokio::test]
async fn a_javascript_val_counts_in_a_blob_and_sees_a_denied_scope() {
    let s = TestServer::start().await;
    let v = s.deploy("js-counter", "js-counter", "public").await;
    let id = v["valId"].as_str().unwrap().to_string();
    for expected in 1..=3 {
        let (status, body) = text(&s, "/x/alice/js-counter/").await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let body: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(body, json!({ "count": expected }));
    }
    let resp = s.patch_val(&id, &json!({ "scopes": ["blob:read"] })).await;
    assert_eq!(resp.status(), StatusCode::OK);
    let (status, body) = text(&s, "/x/alice/js-counter/").await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert!(body.starts_with("denied: "), "{body}");
    assert!(body.contains("blob:write"), "{body}");
    // The count did not move.
    let count = s.get("/v1/blob/js-counter", Some(&s.alice)).await;
    assert_eq!(count.text().await.unwrap(), "3");
}

#[tokio::test]
async fn a_python_val_keeps_notes_in_sqlite_and_sees_a_denied_scope() {
    let s = TestServer::start().await;
    let v = s.deploy("py-notes", "py-notes", "public").await;
    let id = v["valId"].as_str().unwrap().to_string();
    assert_eq!(text(&s, "/x/alice/py-notes/").await.1, "[]");
    for note in ["first", "second"] {
        let resp = s
            .req(Method::POST, "/x/alice/py-notes/", None)
            .body(note)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::CREATED);
    }
    let (status, body) = text(&s, "/x/alice/py-notes/").await;
    assert_eq!(status, StatusCode::OK);
    let notes: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        notes,
        json!([{ "id": 1, "text": "first" }, { "id": 2, "text": "second" }])
    );
    let resp = s
        .patch_val(&id, &json!({ "scopes": ["sqlite:read"] }))
        .await;
    assert_eq!(resp.status(), StatusCode::OK);
    let resp = s
        .req(Method::POST, "/x/alice/py-notes/", None)
        .body("third")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);
    let body = resp.text().await.unwrap();
    assert!(body.starts_with("denied: "), "{body}");
    assert!(body.contains("sqlite:write"), "{body}");
    // Reading is still allowed, and the refused note is not there.
    let (_, body) = text(&s, "/x/alice/py-notes/").await;
    assert_eq!(
        serde_json::from_str::<Value>(&body)
            .unwrap()
            .as_array()
            .unwrap()
            .len(),
        2
    );
}
