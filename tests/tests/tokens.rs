//! The permission model: scoped API tokens, per-call val tokens, scope
//! checks at every REST endpoint and every host import, privacy and
//! downloads, and secret-scanning revocation.

mod support;

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use support::{TestServer, assert_error};
use valbox_model::{ALL_SCOPES, Scopes};

fn all_but(scope: &str) -> Vec<&'static str> {
    ALL_SCOPES.iter().copied().filter(|s| *s != scope).collect()
}

#[tokio::test]
async fn tokens_are_created_listed_limited_revoked_and_expire() {
    let s = TestServer::start().await;
    let resp = s
        .req(Method::POST, "/v1/tokens", Some(&s.alice))
        .json(&json!({ "name": "ci", "scopes": ["val:read"], "expiresInDays": 30 }))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::CREATED);
    let created: Value = resp.json().await.unwrap();
    let token = created["token"].as_str().unwrap().to_string();
    assert!(token.starts_with("vbx_") && token.len() == 40);
    assert_eq!(created["scopes"], json!(["val:read"]));
    assert!(created["expiresAt"].as_str().is_some());

    assert_eq!(s.get("/v2/me/vals", Some(&token)).await.status(), 200);
    let resp = s
        .req(Method::POST, "/v2/vals", Some(&token))
        .json(&json!({ "name": "x", "privacy": "public" }))
        .send()
        .await
        .unwrap();
    let msg = assert_error(resp, StatusCode::FORBIDDEN, "forbidden").await;
    assert!(msg.contains("val:write"));

    // Listing never shows a secret.
    let listed = s
        .get("/v1/tokens", Some(&s.alice))
        .await
        .text()
        .await
        .unwrap();
    assert!(listed.contains(created["id"].as_str().unwrap()) && !listed.contains(&token));

    // A token cannot mint a token with a scope it lacks.
    let (_, manager) = s.token_with(&s.alice, &["user:write"]).await;
    let resp = s
        .req(Method::POST, "/v1/tokens", Some(&manager))
        .json(&json!({ "name": "x", "scopes": ["blob:read"] }))
        .send()
        .await
        .unwrap();
    let msg = assert_error(resp, StatusCode::FORBIDDEN, "forbidden").await;
    assert!(msg.contains("blob:read"));
    let resp = s
        .req(Method::POST, "/v1/tokens", Some(&token))
        .json(&json!({ "name": "x", "scopes": ["val:read"] }))
        .send()
        .await
        .unwrap();
    assert!(
        assert_error(resp, StatusCode::FORBIDDEN, "forbidden")
            .await
            .contains("user:write")
    );

    for (body, code) in [
        (
            json!({ "name": "x", "scopes": ["val:admin"] }),
            "invalid_scope",
        ),
        (json!({ "name": "", "scopes": [] }), "invalid_name"),
        (
            json!({ "name": "x", "scopes": [], "expiresInDays": 0 }),
            "invalid_expiry",
        ),
        (
            json!({ "name": "x", "scopes": [], "expiresAt": "2001-01-01T00:00:00Z" }),
            "invalid_expiry",
        ),
        (
            json!({ "name": "x", "scopes": [], "expiresAt": "soon" }),
            "invalid_expiry",
        ),
        // One cap for both spellings of an expiry.
        (
            json!({ "name": "x", "scopes": [], "expiresAt": "9999-12-31T00:00:00Z" }),
            "invalid_expiry",
        ),
        (
            json!({ "name": "x", "scopes": [], "expiresInDays": 3651 }),
            "invalid_expiry",
        ),
    ] {
        let resp = s
            .req(Method::POST, "/v1/tokens", Some(&s.alice))
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_error(resp, StatusCode::BAD_REQUEST, code).await;
    }

    // Revocation takes effect on the next request.
    let resp = s
        .req(
            Method::DELETE,
            &format!("/v1/tokens/{}", created["id"].as_str().unwrap()),
            Some(&s.alice),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::NO_CONTENT);
    let msg = assert_error(
        s.get("/v2/me/vals", Some(&token)).await,
        StatusCode::UNAUTHORIZED,
        "unauthorized",
    )
    .await;
    assert!(msg.contains("revoked"));

    // Expiry.
    let soon = time::OffsetDateTime::now_utc() + Duration::from_secs(2);
    let soon = soon
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap();
    let resp = s
        .req(Method::POST, "/v1/tokens", Some(&s.alice))
        .json(&json!({ "name": "brief", "scopes": ["user:read"], "expiresAt": soon }))
        .send()
        .await
        .unwrap();
    let brief: Value = resp.json().await.unwrap();
    let brief = brief["token"].as_str().unwrap();
    assert_eq!(s.get("/v1/me", Some(brief)).await.status(), 200);
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let msg = assert_error(
        s.get("/v1/me", Some(brief)).await,
        StatusCode::UNAUTHORIZED,
        "unauthorized",
    )
    .await;
    assert!(msg.contains("expired"));
}

#[tokio::test]
async fn every_rest_endpoint_checks_its_scope() {
    let s = TestServer::start().await;
    let v = s.deploy("hello", "hello", "public").await;
    let id = v["valId"].as_str().unwrap().to_string();
    let envs = format!("/v2/vals/{id}/environment_variables");
    let doomed = s.deploy("doomed", "hello", "public").await;
    let doomed = doomed["valId"].as_str().unwrap().to_string();
    let (spare_token, _) = s.token_with(&s.alice, &["val:read"]).await;
    let cases: Vec<(&str, Method, String, Option<Value>)> = vec![
        ("user:read", Method::GET, "/v1/me".into(), None),
        ("user:read", Method::GET, "/v1/tokens".into(), None),
        (
            "user:write",
            Method::POST,
            "/v1/tokens".into(),
            Some(json!({ "name": "n", "scopes": [] })),
        ),
        ("val:read", Method::GET, "/v2/me/vals".into(), None),
        ("val:read", Method::GET, "/v1/telemetry/logs".into(), None),
        (
            "val:write",
            Method::POST,
            "/v2/vals".into(),
            Some(json!({ "name": "fresh", "privacy": "public" })),
        ),
        (
            "val:write",
            Method::PATCH,
            format!("/v2/vals/{id}"),
            Some(json!({ "description": "d" })),
        ),
        ("env:read", Method::GET, envs.clone(), None),
        (
            "env:write",
            Method::POST,
            envs.clone(),
            Some(json!({ "key": "K", "value": "v" })),
        ),
        (
            "env:write",
            Method::PUT,
            format!("{envs}/K"),
            Some(json!({ "value": "w" })),
        ),
        ("env:write", Method::DELETE, format!("{envs}/K"), None),
        ("user:read", Method::GET, "/v1/notifications".into(), None),
        ("blob:read", Method::GET, "/v1/blob".into(), None),
        (
            "blob:write",
            Method::DELETE,
            "/v1/blob/some-key".into(),
            None,
        ),
        (
            "sqlite:read",
            Method::POST,
            "/v1/sqlite/batch".into(),
            Some(json!({ "statements": ["SELECT 1"], "mode": "read" })),
        ),
        (
            "sqlite:write",
            Method::POST,
            "/v1/sqlite/execute".into(),
            Some(json!({ "statement": "CREATE TABLE IF NOT EXISTS t (x)" })),
        ),
        ("email:read", Method::GET, "/v1/email".into(), None),
        (
            "email:write",
            Method::POST,
            "/v1/email".into(),
            Some(json!({ "subject": "s", "text": "t" })),
        ),
        (
            "val:write",
            Method::DELETE,
            format!("/v2/vals/{doomed}"),
            None,
        ),
        (
            "user:write",
            Method::DELETE,
            format!("/v1/tokens/{spare_token}"),
            None,
        ),
    ];
    for (scope, method, path, body) in cases {
        // A node on a shared store serves no SQLite at all (cluster.rs).
        if support::on_postgres() && path.starts_with("/v1/sqlite") {
            continue;
        }
        let (_, without) = s.token_with(&s.alice, &all_but(scope)).await;
        let (_, with) = s.token_with(&s.alice, &[scope]).await;
        let send = |token: String| {
            let mut r = s.req(method.clone(), &path, Some(&token));
            if let Some(b) = &body {
                r = r.json(b);
            }
            r.send()
        };
        let resp = send(without).await.unwrap();
        let msg = assert_error(resp, StatusCode::FORBIDDEN, "forbidden").await;
        assert!(msg.contains(scope), "{method} {path}: {msg}");
        let resp = send(with).await.unwrap();
        assert!(
            resp.status().is_success(),
            "{method} {path} with {scope}: {}",
            resp.status()
        );
    }
    // Deploying needs val:write too.
    let (_, without) = s.token_with(&s.alice, &all_but("val:write")).await;
    let resp = s
        .upload_version(&without, &id, support::val_bytes("hello"))
        .await;
    assert!(
        assert_error(resp, StatusCode::FORBIDDEN, "forbidden")
            .await
            .contains("val:write")
    );
}

#[tokio::test]
async fn each_call_gets_a_token_that_dies_with_the_call() {
    let s = TestServer::start().await;
    s.deploy("inspect", "inspect", "public").await;
    let resp = s.get("/x/alice/inspect/env/valtown", None).await;
    assert_eq!(resp.status(), 200);
    let token = resp.text().await.unwrap();
    assert!(token.starts_with("vbc_"), "{token}");
    let msg = assert_error(
        s.get("/v1/me", Some(&token)).await,
        StatusCode::UNAUTHORIZED,
        "unauthorized",
    )
    .await;
    assert!(msg.contains("call"));
    // Each call gets its own.
    let again = s
        .get("/x/alice/inspect/env/valtown", None)
        .await
        .text()
        .await
        .unwrap();
    assert_ne!(token, again);
}

#[tokio::test]
async fn a_call_token_acts_with_its_vals_scopes_and_cannot_escalate() {
    let s = TestServer::start().await;
    let v = s.deploy("inspect", "inspect", "public").await;
    let id = v["valId"].as_str().unwrap().to_string();

    let token = s.mint_call_token(&id, Scopes::val_default(), Duration::from_secs(30));
    let me: Value = s.get("/v1/me", Some(&token)).await.json().await.unwrap();
    assert_eq!(me["username"], "alice");
    // It can never manage tokens, whatever its scopes.
    let resp = s
        .req(Method::POST, "/v1/tokens", Some(&token))
        .json(&json!({ "name": "n", "scopes": [] }))
        .send()
        .await
        .unwrap();
    assert!(
        assert_error(resp, StatusCode::FORBIDDEN, "forbidden")
            .await
            .contains("per-call")
    );
    assert_error(
        s.get("/v1/tokens", Some(&token)).await,
        StatusCode::FORBIDDEN,
        "forbidden",
    )
    .await;
    // By default it cannot write its val: not its code, not its scopes.
    let resp = s
        .upload_version(&token, &id, support::val_bytes("hello"))
        .await;
    assert!(
        assert_error(resp, StatusCode::FORBIDDEN, "forbidden")
            .await
            .contains("val:write")
    );
    let resp = s
        .req(Method::PATCH, &format!("/v2/vals/{id}"), Some(&token))
        .json(&json!({ "scopes": ALL_SCOPES }))
        .send()
        .await
        .unwrap();
    assert!(
        assert_error(resp, StatusCode::FORBIDDEN, "forbidden")
            .await
            .contains("val:write")
    );

    // Even when granted val:write, it cannot change its own val at all:
    // not its code, its scopes, or its existence.
    let granted = Scopes::parse("val:read val:write").unwrap();
    let token = s.mint_call_token(&id, granted, Duration::from_secs(30));
    let own = [
        s.req(Method::PATCH, &format!("/v2/vals/{id}"), Some(&token))
            .json(&json!({ "scopes": ["val:write", "user:write"] })),
        s.req(
            Method::POST,
            &format!("/v2/vals/{id}/versions"),
            Some(&token),
        )
        .body(support::val_bytes("hello")),
        s.req(Method::DELETE, &format!("/v2/vals/{id}"), Some(&token)),
    ];
    for req in own {
        let resp = req.send().await.unwrap();
        let msg = assert_error(resp, StatusCode::FORBIDDEN, "forbidden").await;
        assert!(msg.contains("its own val"), "{msg}");
    }
    // And on another of its owner's vals it cannot grant what it lacks.
    let other = s.deploy("other", "hello", "public").await;
    let other = other["valId"].as_str().unwrap();
    let resp = s
        .req(Method::PATCH, &format!("/v2/vals/{other}"), Some(&token))
        .json(&json!({ "scopes": ["val:write", "user:write"] }))
        .send()
        .await
        .unwrap();
    assert!(
        assert_error(resp, StatusCode::FORBIDDEN, "forbidden")
            .await
            .contains("user:write")
    );

    let expired = s.mint_call_token(&id, Scopes::val_default(), Duration::ZERO);
    let msg = assert_error(
        s.get("/v1/me", Some(&expired)).await,
        StatusCode::UNAUTHORIZED,
        "unauthorized",
    )
    .await;
    assert!(msg.contains("expired"));
}

#[tokio::test]
async fn every_import_checks_the_scope_when_called() {
    let s = TestServer::start().await;
    let v = s.deploy("inspect", "inspect", "public").await;
    let id = v["valId"].as_str().unwrap().to_string();
    let resp = s
        .req(
            Method::POST,
            &format!("/v2/vals/{id}/environment_variables"),
            Some(&s.alice),
        )
        .json(&json!({ "key": "GREETING", "value": "hi" }))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 201);
    assert_eq!(
        s.get("/x/alice/inspect/env/GREETING", None)
            .await
            .text()
            .await
            .unwrap(),
        "hi"
    );

    let resp = s.patch_val(&id, &json!({ "scopes": ["val:read"] })).await;
    assert_eq!(resp.status(), 200);
    let resp = s.get("/x/alice/inspect/env/GREETING", None).await;
    assert_eq!(resp.status(), 403, "the val answers the denial it received");
    let text = resp.text().await.unwrap();
    assert!(
        text.contains("denied") && text.contains("env:read"),
        "{text}"
    );
    let logs = s
        .wait_for_logs(&s.alice, &format!("val_id={id}"), |d| {
            d.iter().any(|e| {
                e["attributes"]["error"]
                    .as_str()
                    .is_some_and(|e| e.contains("denied scopes: env:read"))
            })
        })
        .await;
    assert!(!logs.is_empty());

    // Granting it back works at the next call.
    let resp = s.patch_val(&id, &json!({ "scopes": "env:read" })).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(
        s.get("/x/alice/inspect/env/GREETING", None)
            .await
            .text()
            .await
            .unwrap(),
        "hi"
    );
}

#[tokio::test]
async fn revoking_a_call_token_mid_call_stops_the_next_import() {
    let s = TestServer::start().await;
    let v = s.deploy("inspect", "inspect", "public").await;
    let id = v["valId"].as_str().unwrap().to_string();
    let resp = s
        .req(
            Method::PUT,
            &format!("/v2/vals/{id}/environment_variables/GREETING"),
            Some(&s.alice),
        )
        .json(&json!({ "value": "hi" }))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);

    let call = s.get("/x/alice/inspect/env-twice/GREETING?wait_ms=1500", None);
    let revoke = async {
        for _ in 0..100 {
            let list: Value = s
                .get("/v1/tokens", Some(&s.alice))
                .await
                .json()
                .await
                .unwrap();
            let live = list["data"]
                .as_array()
                .unwrap()
                .iter()
                .find(|t| t["kind"] == "call")
                .cloned();
            if let Some(t) = live {
                assert_eq!(t["valId"], id.as_str());
                let path = format!("/v1/tokens/{}", t["id"].as_str().unwrap());
                let resp = s
                    .req(Method::DELETE, &path, Some(&s.alice))
                    .send()
                    .await
                    .unwrap();
                assert_eq!(resp.status(), StatusCode::NO_CONTENT);
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!("the call's token never showed up in the token list");
    };
    let (resp, ()) = tokio::join!(call, revoke);
    let seen: Value = resp.json().await.unwrap();
    assert_eq!(seen["first"], "ok:hi");
    let second = seen["second"].as_str().unwrap();
    assert!(
        second.starts_with("err:denied") && second.contains("revoked"),
        "{second}"
    );
}

#[tokio::test]
async fn users_cannot_reach_each_others_tokens_or_private_code() {
    let s = TestServer::start().await;
    let bob = s.create_user("bob").await;
    let (alice_token_id, alice_token) = s.token_with(&s.alice, &["user:read"]).await;
    let resp = s
        .req(
            Method::DELETE,
            &format!("/v1/tokens/{alice_token_id}"),
            Some(&bob),
        )
        .send()
        .await
        .unwrap();
    assert_error(resp, StatusCode::NOT_FOUND, "not_found").await;
    assert_eq!(s.get("/v1/me", Some(&alice_token)).await.status(), 200);
    let bobs: Value = s.get("/v1/tokens", Some(&bob)).await.json().await.unwrap();
    assert!(!bobs.to_string().contains(&alice_token_id));

    // Downloads follow privacy.
    let hello = support::val_bytes("hello");
    for (name, privacy) in [("pub", "public"), ("unl", "unlisted"), ("priv", "private")] {
        let v = s.deploy(name, "hello", privacy).await;
        let path = format!(
            "/v2/vals/{}/versions/0/component",
            v["valId"].as_str().unwrap()
        );
        let anonymous = s.get(&path, None).await;
        let as_bob = s.get(&path, Some(&bob)).await;
        if privacy == "private" {
            assert_error(anonymous, StatusCode::NOT_FOUND, "not_found").await;
            assert_error(as_bob, StatusCode::NOT_FOUND, "not_found").await;
        } else {
            assert_eq!(anonymous.bytes().await.unwrap().to_vec(), hello);
            assert_eq!(as_bob.status(), 200);
        }
        let owner = s.get(&path, Some(&s.alice)).await;
        assert_eq!(owner.headers()["content-type"], "application/wasm");
        assert_eq!(owner.bytes().await.unwrap().to_vec(), hello);
    }
    // The owner without val:read is treated like anyone else.
    let v: Value = s
        .get("/v2/alias/vals/alice/priv", Some(&s.alice))
        .await
        .json()
        .await
        .unwrap();
    let (_, no_read) = s.token_with(&s.alice, &all_but("val:read")).await;
    let path = format!(
        "/v2/vals/{}/versions/0/component",
        v["id"].as_str().unwrap()
    );
    assert_error(
        s.get(&path, Some(&no_read)).await,
        StatusCode::NOT_FOUND,
        "not_found",
    )
    .await;
    assert_eq!(s.get("/x/alice/priv/", Some(&no_read)).await.status(), 404);
    assert_error(
        s.get(
            &format!(
                "/v2/vals/{}/versions/9/component",
                v["id"].as_str().unwrap()
            ),
            Some(&s.alice),
        )
        .await,
        StatusCode::NOT_FOUND,
        "not_found",
    )
    .await;
}

mod secret_scanning {
    use super::*;
    use base64::Engine as _;
    use p256::ecdsa::signature::Signer;
    use p256::ecdsa::{Signature, SigningKey};
    use p256::pkcs8::{EncodePublicKey, LineEnding};

    fn key() -> SigningKey {
        let mut bytes = [0u8; 32];
        getrandom::fill(&mut bytes).unwrap();
        SigningKey::from_slice(&bytes).unwrap()
    }

    fn sign(key: &SigningKey, body: &[u8]) -> String {
        let signature: Signature = key.sign(body);
        base64::engine::general_purpose::STANDARD.encode(signature.to_der().as_bytes())
    }

    async fn post(
        s: &TestServer,
        body: &str,
        key_id: Option<&str>,
        signature: Option<String>,
    ) -> reqwest::Response {
        let mut r = s
            .req(Method::POST, "/v1/secret-scanning/verify", None)
            .header("content-type", "application/json")
            .body(body.to_string());
        if let Some(id) = key_id {
            r = r.header("Github-Public-Key-Identifier", id);
        }
        if let Some(sig) = signature {
            r = r.header("Github-Public-Key-Signature", sig);
        }
        r.send().await.unwrap()
    }

    #[tokio::test]
    async fn a_signed_alert_revokes_the_leaked_token_and_tells_the_owner() {
        let github = key();
        let pem = github
            .verifying_key()
            .to_public_key_pem(LineEnding::LF)
            .unwrap();
        let s =
            TestServer::start_configured(|c| c.secret_scanning_keys = vec![("key-1".into(), pem)])
                .await;
        let (_, leaked) = s.token_with(&s.alice, &["user:read"]).await;
        let (_, reader) = s.token_with(&s.alice, &["user:read"]).await;
        let (never_issued, _) = valbox_auth::generate_token(valbox_auth::API_TOKEN_PREFIX);
        let body = json!([
            { "token": leaked, "type": "valbox_api_token", "url": "https://github.com/x/y/blob/main/a.env", "source": "content" },
            { "token": never_issued, "type": "valbox_api_token", "url": "", "source": "content" },
        ])
        .to_string();

        // Unsigned, badly signed, or signed by an unknown key: nothing happens.
        assert_error(
            post(&s, &body, None, None).await,
            StatusCode::UNAUTHORIZED,
            "unauthorized",
        )
        .await;
        assert_error(
            post(
                &s,
                &body,
                Some("key-1"),
                Some(sign(&key(), body.as_bytes())),
            )
            .await,
            StatusCode::UNAUTHORIZED,
            "unauthorized",
        )
        .await;
        assert_error(
            post(&s, &body, Some("key-1"), Some("not base64!".into())).await,
            StatusCode::UNAUTHORIZED,
            "unauthorized",
        )
        .await;
        assert_error(
            post(
                &s,
                &body,
                Some("key-2"),
                Some(sign(&github, body.as_bytes())),
            )
            .await,
            StatusCode::UNAUTHORIZED,
            "unauthorized",
        )
        .await;
        let tampered = body.replace("content", "commit");
        assert_error(
            post(
                &s,
                &tampered,
                Some("key-1"),
                Some(sign(&github, body.as_bytes())),
            )
            .await,
            StatusCode::UNAUTHORIZED,
            "unauthorized",
        )
        .await;
        assert_eq!(s.get("/v1/me", Some(&leaked)).await.status(), 200);

        let resp = post(
            &s,
            &body,
            Some("key-1"),
            Some(sign(&github, body.as_bytes())),
        )
        .await;
        assert_eq!(resp.status(), 200);
        let answer: Value = resp.json().await.unwrap();
        assert_eq!(
            answer,
            json!([
                { "token_raw": leaked, "token_type": "valbox_api_token", "label": "true_positive" },
                { "token_raw": never_issued, "token_type": "valbox_api_token", "label": "false_positive" },
            ])
        );
        let msg = assert_error(
            s.get("/v1/me", Some(&leaked)).await,
            StatusCode::UNAUTHORIZED,
            "unauthorized",
        )
        .await;
        assert!(msg.contains("revoked"));
        let notes: Value = s
            .get("/v1/notifications", Some(&reader))
            .await
            .json()
            .await
            .unwrap();
        let note = &notes["data"][0];
        assert_eq!(note["kind"], "token_leaked");
        assert!(note["message"].as_str().unwrap().contains("a.env"));
        let outbox: Value = s
            .get("/v1/email", Some(&s.alice))
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(
            outbox["data"][0]["subject"],
            "A Valbox token of yours was leaked and revoked"
        );

        // Reported again: still a real token, but the owner is told once.
        let resp = post(
            &s,
            &body,
            Some("key-1"),
            Some(sign(&github, body.as_bytes())),
        )
        .await;
        assert_eq!(resp.json::<Value>().await.unwrap(), answer);
        let notes: Value = s
            .get("/v1/notifications", Some(&reader))
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(notes["data"].as_array().unwrap().len(), 1);
    }
}

#[tokio::test]
async fn val_write_alone_buys_no_other_scope() {
    let s = TestServer::start().await;
    let hello = s.deploy("hello", "hello", "public").await;
    let hello = hello["valId"].as_str().unwrap().to_string();
    let (_, narrow) = s.token_with(&s.alice, &["val:read", "val:write"]).await;

    // A val it creates gets only the default scopes it holds: `val:read`.
    let resp = s
        .req(Method::POST, "/v2/vals", Some(&narrow))
        .json(&json!({ "name": "narrow", "privacy": "public" }))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::CREATED);
    let created: Value = resp.json().await.unwrap();
    assert_eq!(created["scopes"], json!(["val:read"]));
    let resp = s
        .upload_version(
            &narrow,
            created["id"].as_str().unwrap(),
            support::val_bytes("hello"),
        )
        .await;
    assert_eq!(resp.status(), StatusCode::CREATED);

    // New code in a val with wider scopes needs a token holding them all.
    let resp = s
        .upload_version(&narrow, &hello, support::val_bytes("hello"))
        .await;
    let msg = assert_error(resp, StatusCode::FORBIDDEN, "forbidden").await;
    assert!(msg.contains("deploying token lacks"), "{msg}");

    // Where a val may fetch is part of the `fetch` grant.
    let patch = |token: &str, body: Value| {
        s.req(Method::PATCH, &format!("/v2/vals/{hello}"), Some(token))
            .json(&body)
            .send()
    };
    let resp = patch(&narrow, json!({ "fetchAllowlist": ["*"] }))
        .await
        .unwrap();
    let msg = assert_error(resp, StatusCode::FORBIDDEN, "forbidden").await;
    assert!(msg.contains("fetch"), "{msg}");
    let resp = patch(
        &s.alice,
        json!({ "fetchAllowlist": ["https://api.example.com"] }),
    )
    .await
    .unwrap();
    assert_error(resp, StatusCode::BAD_REQUEST, "invalid_allowlist").await;

    // A val's settings are its owner's business only.
    let seen: Value = s
        .get(&format!("/v2/vals/{hello}"), None)
        .await
        .json()
        .await
        .unwrap();
    assert!(seen.get("scopes").is_none() && seen.get("fetchAllowlist").is_none());
    // ...reading with `val:read`: an owner's blob-only token sees none.
    let (_, blob_only) = s.token_with(&s.alice, &["blob:read"]).await;
    let seen: Value = s
        .get(&format!("/v2/vals/{hello}"), Some(&blob_only))
        .await
        .json()
        .await
        .unwrap();
    assert!(seen.get("scopes").is_none(), "{seen}");
    let seen: Value = s
        .get(&format!("/v2/vals/{hello}"), Some(&s.alice))
        .await
        .json()
        .await
        .unwrap();
    assert!(seen["scopes"].as_array().unwrap().len() > 1);
}

#[tokio::test]
async fn env_vars_are_their_owners_alone_and_never_a_call_tokens() {
    let s = TestServer::start().await;
    let v = s.deploy("hello", "hello", "public").await;
    let id = v["valId"].as_str().unwrap().to_string();
    let envs = format!("/v2/vals/{id}/environment_variables");
    let bob_token = s.create_user("bob").await;
    let resp = s.get(&envs, Some(&bob_token)).await;
    assert_error(resp, StatusCode::NOT_FOUND, "not_found").await;
    let (_, reader) = s.token_with(&s.alice, &["env:read"]).await;
    let resp = s
        .req(Method::POST, &envs, Some(&reader))
        .json(&json!({ "key": "K", "value": "v" }))
        .send()
        .await
        .unwrap();
    assert_error(resp, StatusCode::FORBIDDEN, "forbidden").await;
    let call = s.mint_call_token(&id, Scopes::all(), Duration::from_secs(60));
    let resp = s
        .req(Method::POST, &envs, Some(&call))
        .json(&json!({ "key": "K", "value": "v" }))
        .send()
        .await
        .unwrap();
    assert_error(resp, StatusCode::FORBIDDEN, "forbidden").await;
    let resp = s
        .req(Method::POST, &envs, Some(&s.alice))
        .json(&json!({ "key": "valtown", "value": "v" }))
        .send()
        .await
        .unwrap();
    assert_error(resp, StatusCode::BAD_REQUEST, "invalid_env_var").await;
}
