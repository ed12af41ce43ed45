//! Blob storage: through the host import (the `counter` example) and
//! through `/v1/blob`, with scopes, limits, odd keys and isolation.

mod support;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use support::{TestServer, assert_error};

/// The URL of `key`, with `/` encoded too so that keys like `../x` stay one
/// path segment instead of being normalised away by the client.
fn blob_path(key: &str) -> String {
    let encoded: String = key
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect();
    format!("/v1/blob/{encoded}")
}

#[tokio::test]
async fn a_val_counts_in_a_blob_within_its_scopes() {
    let s = TestServer::start().await;
    let v = s.deploy("counter", "counter", "public").await;
    let id = v["valId"].as_str().unwrap().to_string();
    for expected in ["1", "2", "3"] {
        assert_eq!(
            s.get("/x/alice/counter/", None).await.text().await.unwrap(),
            expected
        );
    }
    // The owner sees the val's blob over REST.
    let resp = s.get(&blob_path("counter/visits"), Some(&s.alice)).await;
    assert_eq!(resp.headers()["content-type"], "application/octet-stream");
    assert_eq!(resp.text().await.unwrap(), "3");

    // Without blob:write the import is denied, and the val says which scope.
    let resp = s.patch_val(&id, &json!({ "scopes": ["blob:read"] })).await;
    assert_eq!(resp.status(), 200);
    let resp = s.get("/x/alice/counter/", None).await;
    assert_eq!(resp.status(), 403);
    assert!(resp.text().await.unwrap().contains("blob:write"));
    let resp = s.patch_val(&id, &json!({ "scopes": [] })).await;
    assert_eq!(resp.status(), 200);
    assert!(
        s.get("/x/alice/counter/", None)
            .await
            .text()
            .await
            .unwrap()
            .contains("blob:read")
    );
    assert_eq!(
        s.get(&blob_path("counter/visits"), Some(&s.alice))
            .await
            .text()
            .await
            .unwrap(),
        "3"
    );

    // Another owner's counter is a different blob.
    let bob = s.create_user("bob").await;
    assert_eq!(
        s.deploy_bytes(&bob, "counter", "public", support::val_bytes("counter"))
            .await
            .status(),
        201
    );
    assert_eq!(
        s.get("/x/bob/counter/", None).await.text().await.unwrap(),
        "1"
    );
}

#[tokio::test]
async fn the_blob_api_stores_lists_and_deletes_any_key() {
    let s = TestServer::start().await;
    // (A key that is exactly `..` cannot be named in a URL path at all:
    // clients normalise the segment away; vals can still use it.)
    let keys = [
        "plain",
        "a/b/c.txt",
        "../../etc/passwd",
        "../..",
        "ünïcødé ✓",
        "dots...",
        "/leading",
    ];
    for (i, key) in keys.iter().enumerate() {
        let resp = s
            .req(Method::POST, &blob_path(key), Some(&s.alice))
            .body(format!("value {i}"))
            .send()
            .await
            .unwrap();
        assert!(resp.status().is_success(), "{key}: {}", resp.status());
    }
    for (i, key) in keys.iter().enumerate() {
        assert_eq!(
            s.get(&blob_path(key), Some(&s.alice))
                .await
                .text()
                .await
                .unwrap(),
            format!("value {i}"),
            "{key}"
        );
    }
    // Nothing escaped the owner's directory.
    assert!(!s.dir.path().join("etc").exists());

    let listed: Value = s
        .get("/v1/blob", Some(&s.alice))
        .await
        .json()
        .await
        .unwrap();
    let mut expected: Vec<&str> = keys.to_vec();
    expected.sort();
    let got: Vec<&str> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["key"].as_str().unwrap())
        .collect();
    assert_eq!(got, expected);
    assert_eq!(listed[0]["size"], 7);
    assert!(
        listed[0]["lastModified"]
            .as_str()
            .unwrap()
            .starts_with("20")
    );
    let prefixed: Value = s
        .get("/v1/blob?prefix=a%2F", Some(&s.alice))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        prefixed,
        json!([{ "key": "a/b/c.txt", "size": 7, "lastModified": prefixed[0]["lastModified"] }])
    );

    let resp = s
        .req(Method::DELETE, &blob_path("a/b/c.txt"), Some(&s.alice))
        .send()
        .await
        .unwrap();
    assert!(resp.status().is_success());
    assert_error(
        s.get(&blob_path("a/b/c.txt"), Some(&s.alice)).await,
        StatusCode::NOT_FOUND,
        "not_found",
    )
    .await;
    // Deleting again is fine.
    assert!(
        s.req(Method::DELETE, &blob_path("a/b/c.txt"), Some(&s.alice))
            .send()
            .await
            .unwrap()
            .status()
            .is_success()
    );

    let long = "k".repeat(513);
    let resp = s
        .req(Method::POST, &blob_path(&long), Some(&s.alice))
        .body("x")
        .send()
        .await
        .unwrap();
    assert_error(resp, StatusCode::BAD_REQUEST, "invalid_key").await;
}

#[tokio::test]
async fn blobs_are_private_to_their_owner_and_need_scopes() {
    let s = TestServer::start().await;
    let bob = s.create_user("bob").await;
    let resp = s
        .req(Method::POST, &blob_path("secret"), Some(&s.alice))
        .body("alice's")
        .send()
        .await
        .unwrap();
    assert!(resp.status().is_success());
    assert_error(
        s.get(&blob_path("secret"), Some(&bob)).await,
        StatusCode::NOT_FOUND,
        "not_found",
    )
    .await;
    assert_eq!(
        s.get("/v1/blob", Some(&bob))
            .await
            .json::<Value>()
            .await
            .unwrap(),
        json!([])
    );
    let resp = s
        .req(Method::DELETE, &blob_path("secret"), Some(&bob))
        .send()
        .await
        .unwrap();
    assert!(resp.status().is_success(), "deleting one's own missing key");
    assert_eq!(
        s.get(&blob_path("secret"), Some(&s.alice))
            .await
            .text()
            .await
            .unwrap(),
        "alice's"
    );
    assert_error(
        s.get("/v1/blob", None).await,
        StatusCode::UNAUTHORIZED,
        "unauthorized",
    )
    .await;

    let (_, reader) = s.token_with(&s.alice, &["blob:read"]).await;
    assert_eq!(
        s.get(&blob_path("secret"), Some(&reader)).await.status(),
        200
    );
    let resp = s
        .req(Method::POST, &blob_path("secret"), Some(&reader))
        .body("x")
        .send()
        .await
        .unwrap();
    assert!(
        assert_error(resp, StatusCode::FORBIDDEN, "forbidden")
            .await
            .contains("blob:write")
    );
    let (_, writer) = s.token_with(&s.alice, &["blob:write"]).await;
    assert!(
        assert_error(
            s.get("/v1/blob", Some(&writer)).await,
            StatusCode::FORBIDDEN,
            "forbidden"
        )
        .await
        .contains("blob:read")
    );
}

#[tokio::test]
async fn blob_size_and_quota_limits() {
    // Every blob counts at least 4 KiB (a disk block) against the quota.
    const KIB8: usize = 8192;
    let s = TestServer::start_with(|l| {
        l.blob_bytes = KIB8;
        l.blob_quota_bytes = 20480;
    })
    .await;
    let put = |key: &str, n: usize| {
        s.req(Method::POST, &blob_path(key), Some(&s.alice))
            .body(vec![b'x'; n])
            .send()
    };
    assert_error(
        put("big", KIB8 + 1).await.unwrap(),
        StatusCode::PAYLOAD_TOO_LARGE,
        "too_large",
    )
    .await;
    assert!(put("a", KIB8).await.unwrap().status().is_success());
    assert!(put("b", KIB8).await.unwrap().status().is_success());
    let msg = assert_error(
        put("c", KIB8).await.unwrap(),
        StatusCode::INSUFFICIENT_STORAGE,
        "quota_exceeded",
    )
    .await;
    assert!(msg.contains("20480"));
    // Overwriting counts the new size, not both.
    assert!(put("b", 50).await.unwrap().status().is_success());
    assert!(put("c", KIB8).await.unwrap().status().is_success());
    // Empty blobs are not free: the quota bounds how many there can be.
    assert_error(
        put("empty", 0).await.unwrap(),
        StatusCode::INSUFFICIENT_STORAGE,
        "quota_exceeded",
    )
    .await;
}

#[tokio::test]
async fn the_counter_never_loses_an_increment_under_concurrency() {
    let s = std::sync::Arc::new(TestServer::start().await);
    s.deploy("counter", "counter", "public").await;
    let mut counted = 0;
    for _ in 0..4 {
        let calls: Vec<_> = (0..64)
            .map(|_| {
                let s = s.clone();
                // As its owner: the most calls that may run at once.
                tokio::spawn(
                    async move { s.get("/x/alice/counter/", Some(&s.alice)).await.status() },
                )
            })
            .collect();
        for call in calls {
            if call.await.unwrap() == StatusCode::OK {
                counted += 1;
            }
        }
    }
    // Calls past the owner's concurrency limit get 429 and count nothing.
    assert!(counted >= 32, "too few calls got through: {counted}");
    let stored = s
        .get(&blob_path("counter/visits"), Some(&s.alice))
        .await
        .text()
        .await
        .unwrap();
    assert_eq!(stored, counted.to_string(), "answered 200 {counted} times");
}

#[tokio::test]
async fn rest_writes_can_be_conditional_on_the_version_read() {
    let s = TestServer::start().await;
    let path = blob_path("doc");
    let put = |headers: Vec<(&'static str, String)>, body: &'static str| {
        let mut req = s.req(Method::POST, &path, Some(&s.alice)).body(body);
        for (k, v) in headers {
            req = req.header(k, v);
        }
        req.send()
    };
    // Only if new.
    let created = put(vec![("if-none-match", "*".into())], "v1")
        .await
        .unwrap();
    assert_eq!(created.status(), StatusCode::NO_CONTENT);
    let v1 = created.headers()["etag"].to_str().unwrap().to_string();
    let resp = put(vec![("if-none-match", "*".into())], "again")
        .await
        .unwrap();
    assert_eq!(resp.headers()["etag"].to_str().unwrap(), v1);
    assert_error(resp, StatusCode::PRECONDITION_FAILED, "precondition_failed").await;
    // A read answers the version; a write that names it lands once.
    let read = s.get(&path, Some(&s.alice)).await;
    assert_eq!(read.headers()["etag"].to_str().unwrap(), v1);
    let updated = put(vec![("if-match", v1.clone())], "v2").await.unwrap();
    assert_eq!(updated.status(), StatusCode::NO_CONTENT);
    let v2 = updated.headers()["etag"].to_str().unwrap().to_string();
    assert_ne!(v1, v2);
    let stale = put(vec![("if-match", v1.clone())], "lost").await.unwrap();
    let message = assert_error(
        stale,
        StatusCode::PRECONDITION_FAILED,
        "precondition_failed",
    )
    .await;
    assert!(message.contains("read it again"), "{message}");
    assert_eq!(
        s.get(&path, Some(&s.alice)).await.text().await.unwrap(),
        "v2"
    );
    // A version no store could have given matches nothing: 412, as for a
    // stale one, whatever the store behind; no version at all is a 400.
    for odd in ["\"a/b\"".to_string(), format!("\"{}\"", "f".repeat(300))] {
        let resp = put(vec![("if-match", odd)], "odd").await.unwrap();
        assert_error(resp, StatusCode::PRECONDITION_FAILED, "precondition_failed").await;
    }
    let empty = put(vec![("if-match", "\"\"".into())], "odd").await.unwrap();
    assert_error(empty, StatusCode::BAD_REQUEST, "invalid_precondition").await;
    // A read that names the current version is answered 304.
    let cached = s
        .req(Method::GET, &path, Some(&s.alice))
        .header("if-none-match", v2)
        .send()
        .await
        .unwrap();
    assert_eq!(cached.status(), StatusCode::NOT_MODIFIED);
    let both = put(vec![("if-match", v1), ("if-none-match", "*".into())], "x")
        .await
        .unwrap();
    assert_error(both, StatusCode::BAD_REQUEST, "invalid_precondition").await;
}
