//! Outbound fetch: allowed with its scope and to allowed hosts; refused
//! for private and local addresses in every form, at every redirect, and
//! beyond its limits. Traffic stays on loopback: the private-range
//! refusals happen before any connection (the resolver override maps
//! names to such addresses), and only 127.0.0.1 is explicitly allowed.

mod support;

use std::time::Duration;

use axum::Router;
use axum::extract::Path;
use axum::http::HeaderMap;
use axum::response::Redirect;
use axum::routing::get;
use reqwest::Method;
use serde_json::{Value, json};
use support::TestServer;

/// A local target: answers, redirects (to a forbidden address, or by
/// `/to/{host}/{port}/{rest}` to anywhere), echoes the Authorization it
/// got, is large or slow.
async fn target() -> u16 {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let app =
        Router::new()
            .route("/hello", get(|| async { "from target" }))
            .route(
                "/to-allowed",
                get(move || async move {
                    Redirect::temporary(&format!("http://127.0.0.1:{port}/hello"))
                }),
            )
            .route(
                "/to-forbidden",
                get(move || async move {
                    Redirect::temporary(&format!("http://127.0.0.2:{port}/hello"))
                }),
            )
            .route(
                "/to-metadata",
                get(|| async { Redirect::temporary("http://metadata.test/latest/meta-data/") }),
            )
            .route(
                "/to/{host}/{port}/{*rest}",
                get(
                    |Path((host, port, rest)): Path<(String, u16, String)>| async move {
                        Redirect::temporary(&format!("http://{host}:{port}/{rest}"))
                    },
                ),
            )
            .route(
                "/echo/{*rest}",
                get(|headers: HeaderMap| async move {
                    match headers.get("authorization") {
                        Some(v) => format!("authorization: {}", v.to_str().unwrap()),
                        None => "no authorization".to_string(),
                    }
                }),
            )
            .route("/big", get(|| async { "x".repeat(4096) }))
            .route(
                "/slow",
                get(|| async {
                    tokio::time::sleep(Duration::from_secs(20)).await;
                    "late"
                }),
            );
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    port
}

async fn server() -> TestServer {
    let s = TestServer::start_configured(|c| {
        c.fetch_policy.allow = vec!["127.0.0.1/32".parse().unwrap()];
        for (name, ip) in [
            ("loop.test", "127.0.0.1"),
            ("metadata.test", "169.254.169.254"),
            ("private.test", "10.0.0.1"),
            ("mapped.test", "::ffff:127.0.0.2"),
            ("ula.test", "fd00::1"),
        ] {
            c.fetch_policy
                .resolve
                .insert(name.into(), ip.parse().unwrap());
        }
        c.limits.fetch_requests_per_call = 3;
        c.limits.fetch_response_bytes = 1000;
        c.limits.timeout = Duration::from_secs(2);
    })
    .await;
    s.deploy("proxy", "proxy", "public").await;
    s
}

async fn proxy(s: &TestServer, url: &str) -> (u16, String) {
    let resp = s
        .get(&format!("/x/alice/proxy/?url={}", urlencode(url)), None)
        .await;
    let status = resp.status().as_u16();
    (status, resp.text().await.unwrap())
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[tokio::test]
async fn fetch_reaches_an_allowed_target_and_follows_safe_redirects() {
    let s = server().await;
    let port = target().await;
    assert_eq!(
        proxy(&s, &format!("http://127.0.0.1:{port}/hello")).await,
        (200, "from target".into())
    );
    assert_eq!(
        proxy(&s, &format!("http://loop.test:{port}/hello")).await,
        (200, "from target".into())
    );
    assert_eq!(
        proxy(&s, &format!("http://127.0.0.1:{port}/to-allowed")).await,
        (200, "from target".into())
    );
}

#[tokio::test]
async fn every_private_and_local_address_form_is_refused() {
    let s = server().await;
    let port = target().await;
    for url in [
        format!("http://127.0.0.2:{port}/hello"),
        format!("http://[::1]:{port}/"),
        format!("http://0.0.0.0:{port}/"),
        "http://169.254.169.254/latest/meta-data/".to_string(),
        "http://10.0.0.1/".to_string(),
        "http://192.168.1.1/".to_string(),
        "http://[fe80::1]/".to_string(),
        "http://[::ffff:127.0.0.2]/".to_string(),
        "http://[::ffff:169.254.169.254]/".to_string(),
        "http://224.0.0.1/".to_string(),
        "http://metadata.test/".to_string(),
        "http://private.test/".to_string(),
        "http://mapped.test/".to_string(),
        "http://ula.test/".to_string(),
    ] {
        let (status, body) = proxy(&s, &url).await;
        assert_eq!(status, 403, "{url} was not refused: {body}");
        assert!(body.contains("refused"), "{url}: {body}");
    }
    // A redirect from the allowed target to a forbidden address, by IP and by name.
    for path in ["to-forbidden", "to-metadata"] {
        let (status, body) = proxy(&s, &format!("http://127.0.0.1:{port}/{path}")).await;
        assert_eq!(status, 403, "{path}: {body}");
        assert!(body.contains("refused"));
    }
    let (status, body) = proxy(&s, "file:///etc/passwd").await;
    assert_eq!(status, 502);
    assert!(body.contains("only http and https"));
}

#[tokio::test]
async fn fetch_needs_its_scope_and_an_allowed_host() {
    let s = server().await;
    let port = target().await;
    let val: Value = s
        .get("/v2/alias/vals/alice/proxy", None)
        .await
        .json()
        .await
        .unwrap();
    let id = val["id"].as_str().unwrap();
    let patch = |body: Value| {
        s.req(Method::PATCH, &format!("/v2/vals/{id}"), Some(&s.alice))
            .json(&body)
            .send()
    };
    assert_eq!(
        patch(json!({ "scopes": ["env:read"] }))
            .await
            .unwrap()
            .status(),
        200
    );
    let (status, body) = proxy(&s, &format!("http://127.0.0.1:{port}/hello")).await;
    assert_eq!(status, 403);
    assert!(body.contains("`fetch`"), "{body}");

    assert_eq!(
        patch(
            json!({ "scopes": ["fetch"], "fetchAllowlist": ["api.example.com", "*.example.org"] })
        )
        .await
        .unwrap()
        .status(),
        200
    );
    let (status, body) = proxy(&s, &format!("http://127.0.0.1:{port}/hello")).await;
    assert_eq!(status, 403);
    assert!(body.contains("allowlist"), "{body}");
    assert_eq!(
        patch(json!({ "fetchAllowlist": ["loop.test"] }))
            .await
            .unwrap()
            .status(),
        200
    );
    assert_eq!(
        proxy(&s, &format!("http://loop.test:{port}/hello")).await.0,
        200
    );
    assert_eq!(
        proxy(&s, &format!("http://127.0.0.1:{port}/hello")).await.0,
        403
    );
    assert_eq!(
        patch(json!({ "fetchAllowlist": ["*"] }))
            .await
            .unwrap()
            .status(),
        200
    );
    assert_eq!(
        proxy(&s, &format!("http://127.0.0.1:{port}/hello")).await.0,
        200
    );
}

#[tokio::test]
async fn fetch_limits_size_count_and_time() {
    let s = server().await;
    let port = target().await;
    let (status, body) = proxy(&s, &format!("http://127.0.0.1:{port}/big")).await;
    assert_eq!(status, 502);
    assert!(body.contains("1000 bytes"), "{body}");
    let url = urlencode(&format!("http://127.0.0.1:{port}/hello"));
    let resp = s
        .get(&format!("/x/alice/proxy/?url={url}&times=3"), None)
        .await;
    assert_eq!(resp.status(), 200);
    let resp = s
        .get(&format!("/x/alice/proxy/?url={url}&times=4"), None)
        .await;
    assert_eq!(resp.status(), 502);
    assert!(
        resp.text()
            .await
            .unwrap()
            .contains("at most 3 fetch requests")
    );
    // Each redirect hop counts: two redirects and the answer are 3 requests.
    let hop = |rest: &str| format!("to/127.0.0.1/{port}/{rest}");
    let (status, body) = proxy(
        &s,
        &format!("http://127.0.0.1:{port}/{}", hop(&hop("hello"))),
    )
    .await;
    assert_eq!((status, body.as_str()), (200, "from target"));
    let (status, body) = proxy(
        &s,
        &format!("http://127.0.0.1:{port}/{}", hop(&hop(&hop("hello")))),
    )
    .await;
    assert_eq!(status, 502);
    assert!(body.contains("at most 3 fetch requests"), "{body}");
    let started = std::time::Instant::now();
    let (status, body) = proxy(&s, &format!("http://127.0.0.1:{port}/slow")).await;
    assert!(status == 502 || status == 504, "{status}: {body}");
    assert!(started.elapsed() < Duration::from_secs(10));
}

#[tokio::test]
async fn a_val_calls_the_api_back_with_its_call_token() {
    let s = server().await;
    let resp = s
        .get(
            &format!("/x/alice/proxy/me?api={}", urlencode(&s.base)),
            None,
        )
        .await;
    assert_eq!(resp.status(), 200);
    let me: Value = resp.json().await.unwrap();
    assert_eq!(me["username"], "alice");
}

#[tokio::test]
async fn a_call_token_sent_to_another_users_val_does_not_reach_it() {
    let s = server().await;
    let bob = s.create_user("bob").await;
    let resp = s
        .deploy_bytes(&bob, "inspect", "public", support::val_bytes("inspect"))
        .await;
    assert_eq!(resp.status(), 201);
    // alice's proxy calls bob's val with its live call token; bob's code
    // must not see it (it would act as alice until the call ends).
    let api = format!("{}/x/bob/inspect", s.base);
    let resp = s
        .get(&format!("/x/alice/proxy/me?api={}", urlencode(&api)), None)
        .await;
    assert_eq!(resp.status(), 200);
    let seen: Value = resp.json().await.unwrap();
    assert_eq!(seen["path"], "/v1/me");
    let headers = seen["headers"].to_string();
    assert!(!headers.contains("vbc_"), "call token forwarded: {headers}");
    assert!(!headers.contains("authorization"), "{headers}");
}

/// What `/echo` on a target saw when the proxy val sent its call token as
/// `authorization` to `base` (which appends `/v1/me`).
async fn authorization_seen(s: &TestServer, base: &str) -> String {
    let resp = s
        .get(&format!("/x/alice/proxy/me?api={}", urlencode(base)), None)
        .await;
    assert_eq!(resp.status(), 200);
    resp.text().await.unwrap()
}

#[tokio::test]
async fn credentials_do_not_follow_a_redirect_to_another_origin() {
    let s = server().await;
    let (port, other_port) = (target().await, target().await);
    let from = format!("http://127.0.0.1:{port}");
    // Same origin: the header is kept.
    let seen = authorization_seen(&s, &format!("{from}/to/127.0.0.1/{port}/echo")).await;
    assert!(seen.starts_with("authorization: Bearer vbc_"), "{seen}");
    // Another host (same address and port), or another port: dropped.
    for to in [
        format!("loop.test/{port}"),
        format!("127.0.0.1/{other_port}"),
    ] {
        let seen = authorization_seen(&s, &format!("{from}/to/{to}/echo")).await;
        assert_eq!(seen, "no authorization", "redirect to {to}");
    }
    // Dropped for good: not restored by a redirect back to the first origin.
    let back = format!("{from}/to/loop.test/{port}/to/127.0.0.1/{port}/echo");
    assert_eq!(authorization_seen(&s, &back).await, "no authorization");
}
