//! Least privilege over time: what tokens and vals do with their scopes is
//! recorded (REST routes and host imports alike), they can be narrowed to
//! what they used, and a val refused a scope asks its owner for it.

mod support;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use support::smtp::smtp_server;
use support::{TestServer, assert_error, val_bytes, with_section};
use valbox_caps::email::delivery::SmtpConfig;

/// A token of alice's holding `scopes`; returns (id, secret).
async fn token(s: &TestServer, scopes: &str) -> (String, String) {
    let resp = s
        .req(Method::POST, "/v1/tokens", Some(&s.alice))
        .json(&json!({ "name": "narrow me", "scopes": scopes }))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::CREATED);
    let body: Value = resp.json().await.unwrap();
    (
        body["id"].as_str().unwrap().into(),
        body["token"].as_str().unwrap().into(),
    )
}

async fn get_json(s: &TestServer, path: &str) -> Value {
    let resp = s.get(path, Some(&s.alice)).await;
    assert_eq!(resp.status(), StatusCode::OK, "{path}");
    resp.json().await.unwrap()
}

async fn post_json(s: &TestServer, path: &str) -> Value {
    let resp = s
        .req(Method::POST, path, Some(&s.alice))
        .send()
        .await
        .unwrap();
    let status = resp.status();
    let body: Value = resp.json().await.unwrap();
    assert_eq!(status, StatusCode::OK, "{path}: {body}");
    body
}

/// The report's entry for `scope`.
fn entry<'a>(report: &'a Value, scope: &str) -> &'a Value {
    report["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["scope"] == scope)
        .unwrap_or_else(|| panic!("no {scope} in {report}"))
}

fn names(list: &Value) -> Vec<&str> {
    list.as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect()
}

#[tokio::test]
async fn a_tokens_uses_and_refusals_are_recorded_and_it_narrows_to_what_it_used() {
    let s = TestServer::start().await;
    let (id, secret) = token(
        &s,
        "blob:read blob:write email:read sqlite:read sqlite:write",
    )
    .await;
    let resp = s
        .req(Method::POST, "/v1/blob/notes", Some(&secret))
        .body("hi")
        .send()
        .await
        .unwrap();
    assert!(resp.status().is_success());
    for _ in 0..3 {
        assert_eq!(s.get("/v1/blob/notes", Some(&secret)).await.status(), 200);
    }
    // A read-only statement uses sqlite:read only, though it holds both.
    let resp = s
        .req(Method::POST, "/v1/sqlite/execute", Some(&secret))
        .json(&json!({ "statement": "SELECT 1" }))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    // Refused: it does not hold val:write.
    let resp = s
        .req(Method::POST, "/v2/vals", Some(&secret))
        .json(&json!({ "name": "nope", "privacy": "public" }))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);

    let report = get_json(&s, &format!("/v1/tokens/{id}/usage")).await;
    assert_eq!(entry(&report, "blob:read")["used"], 3);
    assert_eq!(entry(&report, "blob:write")["used"], 1);
    assert!(entry(&report, "blob:read")["lastUsedAt"].is_string());
    assert_eq!(entry(&report, "val:write")["held"], false);
    assert_eq!(entry(&report, "val:write")["denied"], 1);
    assert_eq!(entry(&report, "sqlite:read")["used"], 1);
    assert_eq!(entry(&report, "sqlite:write")["used"], 0);
    assert_eq!(names(&report["unused"]), ["email:read", "sqlite:write"]);
    assert_eq!(
        names(&report["suggested"]),
        ["blob:read", "blob:write", "sqlite:read"]
    );

    let narrowed = post_json(&s, &format!("/v1/tokens/{id}/narrow?days=7")).await;
    assert_eq!(names(&narrowed["removed"]), ["email:read", "sqlite:write"]);
    assert_eq!(
        names(&narrowed["after"]),
        ["blob:read", "blob:write", "sqlite:read"]
    );
    assert_eq!(s.get("/v1/blob/notes", Some(&secret)).await.status(), 200);
    let resp = s.get("/v1/email", Some(&secret)).await;
    assert_error(resp, StatusCode::FORBIDDEN, "forbidden").await;

    // Only its owner's personal tokens may read or narrow it.
    let bob = s.create_user("bob").await;
    let resp = s.get(&format!("/v1/tokens/{id}/usage"), Some(&bob)).await;
    assert_error(resp, StatusCode::NOT_FOUND, "not_found").await;
    let resp = s
        .get(&format!("/v1/tokens/{id}/usage?days=0"), Some(&s.alice))
        .await;
    assert_error(resp, StatusCode::BAD_REQUEST, "invalid_days").await;
}

#[tokio::test]
async fn a_vals_imports_are_recorded_and_it_narrows_to_what_it_used() {
    let s = TestServer::start().await;
    let counter = s.deploy("counter", "counter", "public").await;
    let id = counter["valId"].as_str().unwrap();
    for _ in 0..2 {
        assert_eq!(s.get("/x/alice/counter/", None).await.status(), 200);
    }
    let report = get_json(&s, &format!("/v2/vals/{id}/usage")).await;
    assert_eq!(entry(&report, "blob:read")["used"], 2);
    assert_eq!(entry(&report, "blob:write")["used"], 2);
    assert!(names(&report["unused"]).contains(&"email:write"));

    let narrowed = post_json(&s, &format!("/v2/vals/{id}/narrow")).await;
    assert_eq!(names(&narrowed["after"]), ["blob:read", "blob:write"]);
    let val = get_json(&s, &format!("/v2/vals/{id}")).await;
    assert_eq!(names(&val["scopes"]), ["blob:read", "blob:write"]);
    // It still works with what it kept.
    assert_eq!(s.get("/x/alice/counter/", None).await.status(), 200);
}

#[tokio::test]
async fn a_refused_import_asks_the_owner_once_and_a_grant_lets_the_next_call_through() {
    let smtp = smtp_server().await;
    let url = format!("smtp://127.0.0.1:{}", smtp.port);
    let s = TestServer::start_configured(|c| {
        c.smtp = Some(SmtpConfig::from_url(&url, "valbox@test.invalid").unwrap())
    })
    .await;
    let notify = s.deploy("notify", "notify", "public").await;
    let id = notify["valId"].as_str().unwrap();
    let resp = s.patch_val(id, &json!({ "scopes": ["blob:read"] })).await;
    assert_eq!(resp.status(), StatusCode::OK);
    let send = || async {
        s.req(Method::POST, "/x/alice/notify/?subject=Hi", None)
            .body("hello")
            .send()
            .await
            .unwrap()
    };
    for _ in 0..3 {
        let resp = send().await;
        assert_eq!(resp.status(), 400);
        assert!(resp.text().await.unwrap().contains("denied"));
    }
    // One request for the three refusals, mailed once.
    let requests = get_json(&s, "/v1/scope-requests").await;
    let data = requests["data"].as_array().unwrap();
    assert_eq!(data.len(), 1, "{requests}");
    let request = &data[0];
    assert_eq!(request["scope"], "email:write");
    assert_eq!(request["val"], "alice/notify");
    assert_eq!(request["status"], "open");
    assert_eq!(request["denied"], 3);
    let mail = smtp.wait_for(1).await;
    assert!(mail[0].contains("asks for `email:write`"), "{}", mail[0]);
    assert!(mail[0].contains("To: alice@example.com"), "{}", mail[0]);
    // Refused again: counted, not mailed again the same day.
    assert_eq!(send().await.status(), 400);
    let requests = get_json(&s, "/v1/scope-requests").await;
    assert_eq!(requests["data"][0]["denied"], 4);
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    assert_eq!(smtp.messages().len(), 1);

    // The owner grants it with one call.
    let request_id = request["id"].as_str().unwrap();
    let granted = post_json(&s, &format!("/v1/scope-requests/{request_id}/grant")).await;
    assert_eq!(granted["status"], "granted");
    let resp = send().await;
    assert_eq!(resp.status(), 200);
    assert!(resp.text().await.unwrap().starts_with("queued "));
}

#[tokio::test]
async fn a_dismissed_request_stays_quiet() {
    let s = TestServer::start().await;
    let notify = s.deploy("notify", "notify", "public").await;
    let id = notify["valId"].as_str().unwrap();
    let resp = s.patch_val(id, &json!({ "scopes": [] })).await;
    assert_eq!(resp.status(), StatusCode::OK);
    let send = || async {
        s.req(Method::POST, "/x/alice/notify/", None)
            .body("x")
            .send()
            .await
            .unwrap()
            .status()
    };
    assert_eq!(send().await, 400);
    let requests = get_json(&s, "/v1/scope-requests").await;
    let request_id = requests["data"][0]["id"].as_str().unwrap().to_string();
    let dismissed = post_json(&s, &format!("/v1/scope-requests/{request_id}/dismiss")).await;
    assert_eq!(dismissed["status"], "dismissed");
    assert_eq!(send().await, 400);
    let requests = get_json(&s, "/v1/scope-requests").await;
    assert_eq!(requests["data"].as_array().unwrap().len(), 1);
    assert_eq!(requests["data"][0]["status"], "dismissed");
    // Nobody else may decide it, and a decision is grant or dismiss.
    let bob = s.create_user("bob").await;
    let path = format!("/v1/scope-requests/{request_id}/grant");
    let resp = s.req(Method::POST, &path, Some(&bob)).send().await.unwrap();
    assert_error(resp, StatusCode::NOT_FOUND, "not_found").await;
    let path = format!("/v1/scope-requests/{request_id}/approve");
    let resp = s
        .req(Method::POST, &path, Some(&s.alice))
        .send()
        .await
        .unwrap();
    assert_error(resp, StatusCode::NOT_FOUND, "not_found").await;
}

async fn deploy_query(
    s: &TestServer,
    token: &str,
    val_id: &str,
    wasm: Vec<u8>,
    query: &str,
) -> (StatusCode, Value) {
    let resp = s
        .req(
            Method::POST,
            &format!("/v2/vals/{val_id}/versions?{query}"),
            Some(token),
        )
        .body(wasm)
        .send()
        .await
        .unwrap();
    (resp.status(), resp.json().await.unwrap())
}

#[tokio::test]
async fn a_val_declares_its_scopes_and_the_deploy_grants_them_when_asked() {
    let s = TestServer::start().await;
    let val = s.ensure_val(&s.alice, "counter", "public").await;
    let id = val["id"].as_str().unwrap();
    let resp = s.patch_val(id, &json!({ "scopes": ["val:read"] })).await;
    assert_eq!(resp.status(), StatusCode::OK);

    // `counter` declares blob:read and blob:write (valbox_sdk::scopes!).
    let (status, body) = deploy_query(&s, &s.alice, id, val_bytes("counter"), "").await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let declared = &body["declared"];
    assert_eq!(names(&declared["scopes"]), ["blob:read", "blob:write"]);
    assert_eq!(names(&declared["notGranted"]), ["blob:read", "blob:write"]);
    assert_eq!(declared["grantedNow"], false);
    assert_eq!(s.get("/x/alice/counter/", None).await.status(), 403);

    // A token that lacks them cannot grant them.
    let (_, narrow) = token(&s, "val:read val:write blob:read").await;
    let (status, body) =
        deploy_query(&s, &narrow, id, val_bytes("counter"), "grantDeclared=true").await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");

    let (status, body) =
        deploy_query(&s, &s.alice, id, val_bytes("counter"), "grantDeclared=true").await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["declared"]["grantedNow"], true);
    assert_eq!(names(&body["declared"]["notGranted"]), Vec::<&str>::new());
    let val = get_json(&s, &format!("/v2/vals/{id}")).await;
    assert_eq!(
        names(&val["scopes"]),
        ["blob:read", "blob:write", "val:read"]
    );
    assert_eq!(s.get("/x/alice/counter/", None).await.status(), 200);

    // Declared hosts become the fetch allowlist, with `fetch`.
    let wasm = with_section(
        val_bytes("counter"),
        "valbox:fetch-hosts",
        "api.example.com\n",
    );
    let (status, body) = deploy_query(&s, &s.alice, id, wasm, "grantDeclared=true").await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(names(&body["declared"]["fetchHosts"]), ["api.example.com"]);
    let val = get_json(&s, &format!("/v2/vals/{id}")).await;
    assert!(names(&val["scopes"]).contains(&"fetch"), "{val}");
    assert_eq!(names(&val["fetchAllowlist"]), ["api.example.com"]);

    // An unknown scope in a declaration is refused, naming it.
    let wasm = with_section(val_bytes("hello"), "valbox:scopes", "blob:admin\n");
    let (status, body) = deploy_query(&s, &s.alice, id, wasm, "").await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["error"], "invalid_declaration");
    assert!(body["message"].as_str().unwrap().contains("blob:admin"));
}

/// Every scope of every val and token in the data dir, by a stable name.
fn all_scopes(s: &TestServer) -> Vec<(String, String)> {
    s.db()
        .call_blocking(|conn| {
            let mut stmt = conn.prepare(
                "SELECT 'val ' || u.username || '/' || v.name, v.scopes FROM vals v
               JOIN users u ON u.id = v.owner_id
             UNION ALL
             SELECT 'token ' || u.username || '/' || t.name, t.scopes FROM tokens t
               JOIN users u ON u.id = t.user_id
             ORDER BY 1",
            )?;
            let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
            Ok(rows.collect::<Result<Vec<_>, _>>()?)
        })
        .unwrap()
}

#[tokio::test]
async fn a_scope_migration_holds_back_what_was_used_and_tells_its_owner_once() {
    use valbox_model::Scopes;
    use valbox_server::services::scope_migration::migrate;

    let s = TestServer::start().await;
    // alice uses blob:write, through a val and a token of her own.
    s.deploy("counter", "counter", "public").await;
    assert_eq!(s.get("/x/alice/counter/", None).await.status(), 200);
    let (writer, writer_secret) = token(&s, "blob:read blob:write").await;
    let resp = s
        .req(Method::POST, "/v1/blob/k", Some(&writer_secret))
        .body("v")
        .send()
        .await
        .unwrap();
    assert!(resp.status().is_success());
    // bob's val holds it and never used it.
    let bob = s.create_user("bob").await;
    let resp = s
        .deploy_bytes(&bob, "idle", "public", val_bytes("counter"))
        .await;
    assert_eq!(resp.status(), StatusCode::CREATED);
    // Written before the migration reads them (a report flushes).
    get_json(&s, &format!("/v1/tokens/{writer}/usage")).await;

    let store = s.store().await;
    let remove = Scopes::parse("blob:write").unwrap();
    let before = all_scopes(&s);

    let dry = migrate(&store, remove, 30, true).await.unwrap();
    let labels = |items: &[valbox_server::services::scope_migration::Item]| {
        let mut l: Vec<String> = items.iter().map(|i| i.label.clone()).collect();
        l.sort();
        l
    };
    assert_eq!(labels(&dry.held_back).len(), 2, "{dry:?}");
    assert!(labels(&dry.held_back).contains(&"val alice/counter".to_string()));
    assert!(labels(&dry.migrated).contains(&"val bob/idle".to_string()));
    assert_eq!(dry.emailed.len(), 1);
    assert_eq!(all_scopes(&s), before, "a dry run changes nothing");
    let outbox = get_json(&s, "/v1/email").await;
    assert_eq!(outbox["data"].as_array().unwrap().len(), 0);

    let real = migrate(&store, remove, 30, false).await.unwrap();
    assert_eq!(labels(&real.migrated), labels(&dry.migrated));
    assert_eq!(labels(&real.held_back), labels(&dry.held_back));
    // Held back: what alice used; everything else lost blob:write only.
    let held_back = ["val alice/counter", "token alice/narrow me"];
    assert!(
        labels(&real.held_back)
            .iter()
            .any(|l| l.contains("\"narrow me\""))
    );
    let after = all_scopes(&s);
    for ((name, was), (_, now)) in before.iter().zip(&after) {
        let was = Scopes::parse(was).unwrap();
        let now = Scopes::parse(now).unwrap();
        if held_back.contains(&name.as_str()) {
            assert_eq!(now, was, "{name} was held back");
        } else {
            let expected: Scopes = was.iter().filter(|s| s.as_str() != "blob:write").collect();
            assert_eq!(now, expected, "{name}");
        }
    }
    // alice is told once, about both of hers.
    let outbox = get_json(&s, "/v1/email").await;
    assert_eq!(outbox["data"].as_array().unwrap().len(), 1, "{outbox}");
    let message: String = s
        .db()
        .call_blocking(|c| Ok(c.query_row("SELECT message FROM emails", [], |r| r.get(0))?))
        .unwrap();
    assert!(message.contains("val alice/counter"), "{message}");
    assert!(message.contains("narrow me"), "{message}");

    // A second run changes nothing and mails nobody.
    let again = migrate(&store, remove, 30, false).await.unwrap();
    assert!(again.migrated.is_empty(), "{again:?}");
    assert_eq!(again.held_back.len(), 2);
    assert!(again.emailed.is_empty());
    assert_eq!(all_scopes(&s), after);
    let outbox = get_json(&s, "/v1/email").await;
    assert_eq!(outbox["data"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn the_server_sets_the_default_scopes_of_new_vals() {
    let s = TestServer::start_configured(|c| {
        c.default_val_scopes = valbox_model::Scopes::parse("blob:read fetch").unwrap()
    })
    .await;
    let val = s.ensure_val(&s.alice, "fresh", "public").await;
    assert_eq!(names(&val["scopes"]), ["blob:read", "fetch"]);
}

#[tokio::test]
async fn a_running_server_sees_an_operators_writes_to_its_data_dir() {
    let s = TestServer::start().await;
    s.deploy("hello", "hello", "public").await;
    assert_eq!(s.get("/x/alice/hello/", None).await.status(), 200);
    // As `valbox admin migrate-scopes` would, from another process.
    s.db()
        .call_blocking(|c| Ok(c.execute("UPDATE vals SET privacy = 'private'", [])?))
        .unwrap();
    for _ in 0..40 {
        if s.get("/x/alice/hello/", None).await.status() == StatusCode::NOT_FOUND {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!("the server kept serving its cached copy of the val");
}
