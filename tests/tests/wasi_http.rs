//! Standard `wasi:http/proxy` components as HTTP vals: `examples/wasi-hello`
//! (built with wstd, knowing nothing of Valbox) answers at the val's URLs,
//! streams bodies, and its outgoing requests and environment get exactly
//! what the fetch and env capabilities would give a platform val.

mod support;

use axum::Router;
use axum::routing::get;
use futures_util::stream;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use support::{TestServer, assert_error, val_bytes};

/// A local target for the val's requests.
async fn target() -> u16 {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let app = Router::new().route(
        "/hello",
        get(|| async { (StatusCode::CREATED, "from target") }),
    );
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    port
}

async fn call(s: &TestServer, path_and_query: &str) -> (u16, String) {
    let resp = s
        .get(&format!("/x/alice/wasi-hello{path_and_query}"), None)
        .await;
    (resp.status().as_u16(), resp.text().await.unwrap())
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

fn val_id(version: &Value) -> String {
    version["valId"].as_str().unwrap().to_string()
}

#[tokio::test]
async fn a_wasi_http_component_answers_and_streams_bodies_in_and_out() {
    let s = TestServer::start_with(|l| l.response_body_bytes = (1 << 20) + 1024).await;
    let version = s.deploy("wasi-hello", "wasi-hello", "public").await;
    assert_eq!(version["kind"], "http", "{version}");
    assert_eq!(call(&s, "/?name=Ada").await, (200, "Hello, Ada!".into()));
    assert_eq!(call(&s, "/").await, (200, "Hello, world!".into()));
    assert_eq!(call(&s, "/nowhere").await, (404, "no such page".into()));

    // 1 MiB sent in 256 chunks, without a length: echoed whole.
    let chunks: Vec<Vec<u8>> = (0..256u32)
        .map(|i| (0..4096u32).map(|j| ((i * 7 + j) % 251) as u8).collect())
        .collect();
    let sent: Vec<u8> = chunks.concat();
    let body = reqwest::Body::wrap_stream(stream::iter(
        chunks.into_iter().map(Ok::<_, std::io::Error>),
    ));
    let resp = s
        .req(Method::POST, "/x/alice/wasi-hello/echo", None)
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.bytes().await.unwrap().as_ref(), sent.as_slice());

    // A body written a chunk at a time.
    let (status, text) = call(&s, "/stream?chunks=500").await;
    assert_eq!(status, 200);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 500);
    assert_eq!((lines[0], lines[499]), ("chunk 0", "chunk 499"));

    // Past the response limit: refused, not cut.
    let resp = s
        .get("/x/alice/wasi-hello/stream?chunks=100000", None)
        .await;
    assert_error(resp, StatusCode::BAD_GATEWAY, "response_too_large").await;
    // The log records each call like any val's.
    s.wait_for_logs(&s.alice, "", |entries| {
        entries.len() == 6
            && entries.iter().any(|e| {
                e["attributes"]["http.status"] == 502
                    && e["body"]
                        .as_str()
                        .unwrap()
                        .contains("larger than the limit")
            })
    })
    .await;
}

#[tokio::test]
async fn its_requests_pass_the_fetch_guard_only_to_public_hosts() {
    // `api.example.com` resolves to the local target, whose one address
    // the operator allowed: a public host as far as the guard can tell.
    let s = TestServer::start_configured(|c| {
        c.fetch_policy.allow = vec!["127.0.0.1/32".parse().unwrap()];
        c.fetch_policy
            .resolve
            .insert("api.example.com".into(), "127.0.0.1".parse().unwrap());
        c.limits.fetch_requests_per_call = 2;
    })
    .await;
    let version = s.deploy("wasi-hello", "wasi-hello", "public").await;
    let port = target().await;
    let url = format!("http://api.example.com:{port}/hello");
    let fetch = format!("/fetch?url={}", urlencode(&url));
    assert_eq!(call(&s, &fetch).await, (201, "from target".into()));

    // Only the hosts in the val's allowlist.
    let id = val_id(&version);
    let patch = |body: Value| {
        let s = &s;
        let id = id.clone();
        async move {
            let resp = s.patch_val(&id, &body).await;
            assert_eq!(resp.status(), 200);
        }
    };
    patch(json!({ "fetchAllowlist": ["other.example.com"] })).await;
    let (status, body) = call(&s, &fetch).await;
    assert_eq!(status, 502, "{body}");
    assert!(body.contains("HttpRequestDenied"), "{body}");
    patch(json!({ "fetchAllowlist": ["api.example.com"] })).await;
    assert_eq!(call(&s, &fetch).await.0, 201);

    // Not without the `fetch` scope; the refusal is in the val's log.
    patch(json!({ "scopes": ["env:read"] })).await;
    let (status, body) = call(&s, &fetch).await;
    assert_eq!(status, 502, "{body}");
    assert!(body.contains("HttpRequestDenied"), "{body}");
    s.wait_for_logs(&s.alice, "", |entries| {
        entries
            .iter()
            .any(|e| e.to_string().contains("fetch") && e.to_string().contains("denied"))
    })
    .await;
}

#[tokio::test]
async fn every_loopback_form_is_refused() {
    let s = TestServer::start().await;
    s.deploy("wasi-hello", "wasi-hello", "public").await;
    let port = target().await;
    for host in [
        "127.0.0.1".to_string(),
        "localhost".to_string(),
        "127.1".to_string(),
        "2130706433".to_string(),
        "0x7f000001".to_string(),
        "0177.0.0.1".to_string(),
        "127.255.255.254".to_string(),
        "0.0.0.0".to_string(),
        "[::1]".to_string(),
        "[0:0:0:0:0:0:0:1]".to_string(),
        "[::ffff:127.0.0.1]".to_string(),
        "[::]".to_string(),
        "169.254.169.254".to_string(),
        "10.0.0.1".to_string(),
    ] {
        let url = format!("http://{host}:{port}/hello");
        let (status, body) = call(&s, &format!("/fetch?url={}", urlencode(&url))).await;
        assert_eq!(status, 502, "{url} was not refused: {body}");
        assert!(body.contains("HttpRequestDenied"), "{url}: {body}");
    }
    // Nor the server itself, whatever the val believes its host is.
    let own = format!("http://{}/v1/me", s.addr);
    let (status, body) = call(&s, &format!("/fetch?url={}", urlencode(&own))).await;
    assert_eq!(status, 502, "{body}");
}

#[tokio::test]
async fn its_environment_holds_the_vals_vars_only_with_env_read() {
    let s = TestServer::start().await;
    let version = s.deploy("wasi-hello", "wasi-hello", "public").await;
    let id = val_id(&version);
    let resp = s
        .req(
            Method::POST,
            &format!("/v2/vals/{id}/environment_variables"),
            Some(&s.alice),
        )
        .json(&json!({ "key": "GREETING", "value": "bonjour-4242" }))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::CREATED);
    assert_eq!(
        call(&s, "/env?name=GREETING").await,
        (200, "bonjour-4242".into())
    );
    // The call's own token, as for platform vals: usable for this call.
    let (status, token) = call(&s, "/env?name=valtown").await;
    assert_eq!(status, 200);
    assert!(token.starts_with("vbc_"), "{token}");

    let resp = s.patch_val(&id, &json!({ "scopes": ["fetch"] })).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(call(&s, "/env?name=GREETING").await.0, 404);
    assert_eq!(call(&s, "/env?name=valtown").await.0, 404);
}

#[tokio::test]
async fn a_component_importing_what_valbox_does_not_grant_is_refused_by_name() {
    let s = TestServer::start().await;
    // A would-be wasi:http val that also needs a key-value store.
    let wasm = wat::parse_str(
        r#"(component
             (import "wasi:keyvalue/store@0.2.0-draft" (instance (export "open" (func))))
             (instance $e) (export "wasi:http/incoming-handler@0.2.0" (instance $e)))"#,
    )
    .unwrap();
    let resp = s.deploy_bytes(&s.alice, "kv", "public", wasm).await;
    let msg = assert_error(resp, StatusCode::BAD_REQUEST, "unsupported_import").await;
    assert!(msg.contains("wasi:keyvalue/store"), "{msg}");

    // WASI 0.3's handler is named, not taken for a library.
    let p3 = wat::parse_str(
        r#"(component (instance $e) (export "wasi:http/handler@0.3.0" (instance $e)))"#,
    )
    .unwrap();
    let resp = s.deploy_bytes(&s.alice, "p3", "public", p3).await;
    let msg = assert_error(resp, StatusCode::BAD_REQUEST, "no_handler").await;
    assert!(msg.contains("wasi:http/handler@0.3"), "{msg}");
    // The example itself deploys, as an HTTP val.
    let resp = s
        .deploy_bytes(&s.alice, "ok", "public", val_bytes("wasi-hello"))
        .await;
    assert_eq!(resp.status(), StatusCode::CREATED);
}
