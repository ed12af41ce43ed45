//! Upload validation: what is not a usable component is refused with a
//! JSON error naming the problem.

mod support;

use reqwest::StatusCode;
use support::{TestServer, assert_error};

async fn upload(s: &TestServer, bytes: Vec<u8>) -> reqwest::Response {
    s.deploy_bytes(&s.alice.clone(), "up", "public", bytes)
        .await
}

#[tokio::test]
async fn bytes_that_are_not_wasm() {
    let s = TestServer::start().await;
    let msg = assert_error(
        upload(&s, b"#!/bin/sh\necho hi\n".to_vec()).await,
        StatusCode::BAD_REQUEST,
        "not_wasm",
    )
    .await;
    assert!(msg.contains("wasm32-wasip2"));
    assert_error(
        upload(&s, Vec::new()).await,
        StatusCode::BAD_REQUEST,
        "not_wasm",
    )
    .await;
}

#[tokio::test]
async fn a_core_module_instead_of_a_component() {
    let s = TestServer::start().await;
    let module = wat::parse_str("(module (func (export \"run\")))").unwrap();
    let msg = assert_error(
        upload(&s, module).await,
        StatusCode::BAD_REQUEST,
        "core_module",
    )
    .await;
    assert!(msg.contains("component"));
}

#[tokio::test]
async fn a_broken_component() {
    let s = TestServer::start().await;
    let mut bytes = b"\0asm\x0d\0\x01\0".to_vec();
    bytes.extend_from_slice(&[0xff; 32]);
    assert_error(
        upload(&s, bytes).await,
        StatusCode::BAD_REQUEST,
        "invalid_component",
    )
    .await;
}

#[tokio::test]
async fn imports_outside_the_platform_are_refused() {
    let s = TestServer::start().await;
    // Each exports an interface (the one it imports), or it would be
    // refused before compiling for exporting nothing.
    let evil = wat::parse_str(
        r#"(component (import "evil:net/raw-socket" (instance $i)) (export "x:y/z" (instance $i)))"#,
    )
    .unwrap();
    let msg = assert_error(
        upload(&s, evil).await,
        StatusCode::BAD_REQUEST,
        "unsupported_import",
    )
    .await;
    assert!(msg.contains("evil:net/raw-socket"), "{msg}");
    // A WASI interface this server does not link (here an invented one).
    let unknown_wasi = wat::parse_str(
        r#"(component (import "wasi:teleport/beam@0.2.0" (instance (export "go" (func))))
             (instance $e) (export "x:y/z" (instance $e)))"#,
    )
    .unwrap();
    assert_error(
        upload(&s, unknown_wasi).await,
        StatusCode::BAD_REQUEST,
        "unsupported_import",
    )
    .await;
}

#[tokio::test]
async fn a_component_without_a_handler() {
    let s = TestServer::start().await;
    let empty = wat::parse_str("(component)").unwrap();
    let msg = assert_error(
        upload(&s, empty).await,
        StatusCode::BAD_REQUEST,
        "no_handler",
    )
    .await;
    assert!(msg.contains("http_val!"));
}

#[tokio::test]
async fn a_component_exporting_nothing_is_refused_before_it_compiles() {
    let s = TestServer::start().await;
    // 4,000 functions of real code and no export: refused by reading the
    // export section, so nothing is compiled and nothing kept.
    let funcs: String = (0..4000)
        .map(|i| {
            format!("(func (export \"f{i}\") (result i32) (i32.add (i32.const {i}) (i32.const 1)))")
        })
        .collect();
    let big = wat::parse_str(format!("(component (core module {funcs}))")).unwrap();
    let components = s.dir.path().join("components");
    let stored = || std::fs::read_dir(&components).map_or(0, |d| d.count());
    let stored_before = stored();
    let msg = assert_error(upload(&s, big).await, StatusCode::BAD_REQUEST, "no_handler").await;
    assert!(msg.contains("http_val!"), "{msg}");
    assert_eq!(stored(), stored_before, "nothing of it is stored");
}

#[tokio::test]
async fn another_owners_build_is_compiled_again_not_mapped() {
    let s = TestServer::start().await;
    let bob = s.create_user("bob").await;
    let hello = support::val_bytes("hello");
    s.deploy("hello", "hello", "public").await;
    let compiled = std::fs::read_dir(s.dir.path().join("components"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|x| x == "cwasm"))
        .unwrap();
    let first = std::fs::metadata(&compiled).unwrap().modified().unwrap();
    std::thread::sleep(std::time::Duration::from_millis(20));
    // Alice's redeploy maps what she stored.
    s.deploy("hello2", "hello", "public").await;
    assert_eq!(
        std::fs::metadata(&compiled).unwrap().modified().unwrap(),
        first
    );
    // Bob's deploy of the same bytes is compiled as if new: no faster for
    // what alice deployed.
    let resp = s.deploy_bytes(&bob, "hello", "public", hello).await;
    assert_eq!(resp.status(), StatusCode::CREATED);
    assert!(std::fs::metadata(&compiled).unwrap().modified().unwrap() > first);
    assert_eq!(s.get("/x/bob/hello/", None).await.status(), StatusCode::OK);
}

#[tokio::test]
async fn a_component_over_the_size_limit() {
    let s = TestServer::start_with(|l| l.component_bytes = 1024).await;
    let msg = assert_error(
        upload(&s, support::val_bytes("hello")).await,
        StatusCode::PAYLOAD_TOO_LARGE,
        "too_large",
    )
    .await;
    assert!(msg.contains("1024"));
}

#[tokio::test]
async fn deploying_needs_a_token_and_a_real_val() {
    let s = TestServer::start().await;
    let resp = s
        .req(reqwest::Method::POST, "/v2/vals/nope/versions", None)
        .body(support::val_bytes("hello"))
        .send()
        .await
        .unwrap();
    assert_error(resp, StatusCode::UNAUTHORIZED, "unauthorized").await;
    let resp = s
        .req(
            reqwest::Method::POST,
            "/v2/vals/nope/versions",
            Some(&s.alice),
        )
        .body(support::val_bytes("hello"))
        .send()
        .await
        .unwrap();
    assert_error(resp, StatusCode::NOT_FOUND, "not_found").await;
}

/// A version's WIT is served to whoever may see the val: what it exports
/// (for a caller's bindings) and what it imports, as one WIT document.
#[tokio::test]
async fn a_versions_wit_is_served_to_whoever_may_see_it() {
    let s = TestServer::start().await;
    let bob = s.create_user("bob").await;
    let public = s.deploy("greeter", "hello", "public").await;
    let private = s.deploy("hidden", "hello", "private").await;
    let wit_of = |v: &serde_json::Value, n: u32| {
        format!("/v2/vals/{}/versions/{n}/wit", v["valId"].as_str().unwrap())
    };

    let resp = s.get(&wit_of(&public, 0), None).await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.headers()["content-type"], "text/plain; charset=utf-8");
    let wit = resp.text().await.unwrap();
    assert!(wit.contains("world "), "{wit}");
    assert!(
        wit.contains("export valbox:platform/http-handler@0.1.0;"),
        "{wit}"
    );
    assert!(wit.contains("import wasi:cli/stdout@0.2.6;"), "{wit}");
    // The platform's own interfaces are in the same document.
    assert!(wit.contains("package valbox:platform@0.1.0"), "{wit}");

    // Privacy as for the component itself: a 404 to others, the WIT to
    // its owner; a missing version is a 404 too.
    for who in [None, Some(bob.as_str())] {
        let resp = s.get(&wit_of(&private, 0), who).await;
        assert_error(resp, StatusCode::NOT_FOUND, "not_found").await;
    }
    let resp = s.get(&wit_of(&private, 0), Some(&s.alice)).await;
    assert_eq!(resp.status(), StatusCode::OK);
    let resp = s.get(&wit_of(&public, 7), None).await;
    assert_error(resp, StatusCode::NOT_FOUND, "not_found").await;
}

#[tokio::test]
async fn the_same_build_deployed_again_is_not_compiled_again() {
    let s = TestServer::start().await;
    s.deploy("first", "hello", "public").await;
    let compiled: Vec<_> = std::fs::read_dir(s.dir.path().join("components"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "cwasm"))
        .collect();
    assert_eq!(compiled.len(), 1, "{compiled:?}");
    let written = std::fs::metadata(&compiled[0]).unwrap().modified().unwrap();
    std::thread::sleep(std::time::Duration::from_millis(20));

    // The same bytes to another val: the stored artifact serves it.
    s.deploy("second", "hello", "public").await;
    let again = std::fs::metadata(&compiled[0]).unwrap().modified().unwrap();
    assert_eq!(written, again, "the compiled artifact was written again");
    let answer = s.get("/x/alice/second/?name=again", None).await;
    assert_eq!(answer.text().await.unwrap(), "Hello, again!");
}
