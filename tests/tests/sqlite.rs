//! SQLite per owner: through the host import (the `guestbook` example)
//! and through `/v1/sqlite`, with scopes, transactions, the authorizer,
//! limits and isolation.

mod support;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use support::{TestServer, assert_error, val_bytes};

async fn sql(s: &TestServer, token: &str, path: &str, body: Value) -> reqwest::Response {
    s.req(Method::POST, path, Some(token))
        .json(&body)
        .send()
        .await
        .unwrap()
}

async fn execute(s: &TestServer, token: &str, statement: Value) -> Value {
    let resp = sql(
        s,
        token,
        "/v1/sqlite/execute",
        json!({ "statement": statement }),
    )
    .await;
    assert_eq!(resp.status(), 200);
    resp.json().await.unwrap()
}

#[tokio::test]
async fn the_guestbook_writes_and_reads_within_its_scopes() {
    let s = TestServer::start().await;
    let v = s.deploy("guestbook", "guestbook", "public").await;
    let id = v["valId"].as_str().unwrap().to_string();
    let page = s.get("/x/alice/guestbook/", None).await;
    assert_eq!(page.headers()["content-type"], "text/html; charset=utf-8");
    assert!(!page.text().await.unwrap().contains("<li>"));
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let resp = client
        .post(format!("{}/x/alice/guestbook/", s.base))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("name=Ada&message=%3Cb%3Ehi%3C%2Fb%3E")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 303);
    let page = s
        .get("/x/alice/guestbook/", None)
        .await
        .text()
        .await
        .unwrap();
    assert!(
        page.contains("<li><b>Ada</b>: &lt;b&gt;hi&lt;/b&gt;</li>"),
        "{page}"
    );

    // The owner's REST API sees the val's table: one database per owner.
    let rs = execute(&s, &s.alice, json!("SELECT name, message FROM entries")).await;
    assert_eq!(rs["rows"], json!([["Ada", "<b>hi</b>"]]));
    assert_eq!(rs["columnTypes"], json!(["TEXT", "TEXT"]));

    // With only sqlite:read the page still renders, but signing is denied.
    let resp = s
        .patch_val(&id, &json!({ "scopes": ["sqlite:read"] }))
        .await;
    assert_eq!(resp.status(), 200);
    assert!(
        s.get("/x/alice/guestbook/", None)
            .await
            .text()
            .await
            .unwrap()
            .contains("Ada")
    );
    let resp = s
        .req(Method::POST, "/x/alice/guestbook/", None)
        .body("name=Eve&message=x")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 403);
    assert!(resp.text().await.unwrap().contains("sqlite:write"));
    // With neither, reading is denied too.
    let resp = s.patch_val(&id, &json!({ "scopes": [] })).await;
    assert_eq!(resp.status(), 200);
    assert!(
        s.get("/x/alice/guestbook/", None)
            .await
            .text()
            .await
            .unwrap()
            .contains("sqlite:read")
    );
    let rs = execute(&s, &s.alice, json!("SELECT count(*) FROM entries")).await;
    assert_eq!(rs["rows"], json!([[1]]));
}

#[tokio::test]
async fn execute_and_batch_in_val_towns_shapes() {
    let s = TestServer::start().await;
    let t = s.alice.clone();
    let rs = execute(
        &s,
        &t,
        json!("CREATE TABLE people (id INTEGER PRIMARY KEY, name TEXT, age INT, photo BLOB)"),
    )
    .await;
    assert_eq!(rs["rowsAffected"], 0);
    let rs = execute(
        &s,
        &t,
        json!({ "sql": "INSERT INTO people (name, age) VALUES (?, ?)", "args": ["Ada", 36] }),
    )
    .await;
    assert_eq!(rs["rowsAffected"], 1);
    assert_eq!(rs["lastInsertRowid"], 1);
    execute(&s, &t, json!({ "sql": "INSERT INTO people (name, age, photo) VALUES (:name, $age, x'00ff')", "args": { "name": "Grace", "$age": 45.5 } })).await;
    let rs = execute(
        &s,
        &t,
        json!("SELECT name, age, photo FROM people ORDER BY id"),
    )
    .await;
    assert_eq!(rs["columns"], json!(["name", "age", "photo"]));
    assert_eq!(rs["columnTypes"], json!(["TEXT", "INT", "BLOB"]));
    assert_eq!(
        rs["rows"],
        json!([["Ada", 36, null], ["Grace", 45.5, "AP8="]])
    );
    assert_eq!(rs["lastInsertRowid"], Value::Null);

    // A batch is all or nothing.
    let resp = sql(
        &s,
        &t,
        "/v1/sqlite/batch",
        json!({ "mode": "write", "statements": [
        { "sql": "INSERT INTO people (name) VALUES (?)", "args": ["Linus"] },
        "INSERT INTO nowhere VALUES (1)",
    ] }),
    )
    .await;
    let msg = assert_error(resp, StatusCode::BAD_REQUEST, "sql_error").await;
    assert!(
        msg.contains("statement 1") && msg.contains("no such table: nowhere"),
        "{msg}"
    );
    let rs = execute(&s, &t, json!("SELECT count(*) AS n FROM people")).await;
    assert_eq!(rs["rows"], json!([[2]]));
    let resp = sql(
        &s,
        &t,
        "/v1/sqlite/batch",
        json!({ "mode": "write", "statements": [
        { "sql": "INSERT INTO people (name) VALUES (?)", "args": ["Linus"] },
        "SELECT count(*) FROM people",
    ] }),
    )
    .await;
    let results: Value = resp.json().await.unwrap();
    assert_eq!(results[1]["rows"], json!([[3]]));
    // Read mode refuses writes even with sqlite:write.
    let resp = sql(
        &s,
        &t,
        "/v1/sqlite/batch",
        json!({ "mode": "read", "statements": ["DELETE FROM people"] }),
    )
    .await;
    assert!(
        assert_error(resp, StatusCode::BAD_REQUEST, "invalid_statement")
            .await
            .contains("read-only")
    );
    let resp = sql(
        &s,
        &t,
        "/v1/sqlite/batch",
        json!({ "mode": "sideways", "statements": [] }),
    )
    .await;
    assert_error(resp, StatusCode::BAD_REQUEST, "invalid_mode").await;

    // Bad input is answered with SQLite's own message.
    let resp = sql(
        &s,
        &t,
        "/v1/sqlite/execute",
        json!({ "statement": "SELEC 1" }),
    )
    .await;
    assert!(
        assert_error(resp, StatusCode::BAD_REQUEST, "sql_error")
            .await
            .contains("syntax error")
    );
    let resp = sql(
        &s,
        &t,
        "/v1/sqlite/execute",
        json!({ "statement": { "sql": "SELECT ?", "args": [] } }),
    )
    .await;
    assert_error(resp, StatusCode::BAD_REQUEST, "invalid_statement").await;
    let resp = sql(
        &s,
        &t,
        "/v1/sqlite/execute",
        json!({ "statement": { "sql": "SELECT ?", "args": [[1]] } }),
    )
    .await;
    assert_error(resp, StatusCode::BAD_REQUEST, "invalid_args").await;
}

#[tokio::test]
async fn dangerous_statements_are_refused() {
    let s = TestServer::start().await;
    let t = s.alice.clone();
    for statement in [
        "ATTACH DATABASE '/tmp/elsewhere.db' AS other",
        "PRAGMA writable_schema = ON",
        "PRAGMA journal_mode = OFF",
        "PRAGMA synchronous = OFF",
        "VACUUM INTO '/tmp/copy.db'",
        "SELECT load_extension('/tmp/evil.so')",
    ] {
        let resp = sql(
            &s,
            &t,
            "/v1/sqlite/execute",
            json!({ "statement": statement }),
        )
        .await;
        assert_eq!(
            resp.status(),
            StatusCode::BAD_REQUEST,
            "{statement} was allowed"
        );
    }
    assert!(!std::path::Path::new("/tmp/elsewhere.db").exists());
    assert!(!std::path::Path::new("/tmp/copy.db").exists());
    // Reading the schema is fine.
    execute(&s, &t, json!("CREATE TABLE t (x)")).await;
    let rs = execute(&s, &t, json!("PRAGMA table_info(t)")).await;
    assert_eq!(rs["rows"][0][1], "x");
}

#[tokio::test]
async fn databases_are_private_and_scoped() {
    let s = TestServer::start().await;
    let bob = s.create_user("bob").await;
    execute(&s, &s.alice.clone(), json!("CREATE TABLE secrets (v TEXT)")).await;
    execute(
        &s,
        &s.alice.clone(),
        json!("INSERT INTO secrets VALUES ('alice only')"),
    )
    .await;
    let resp = sql(
        &s,
        &bob,
        "/v1/sqlite/execute",
        json!({ "statement": "SELECT * FROM secrets" }),
    )
    .await;
    assert!(
        assert_error(resp, StatusCode::BAD_REQUEST, "sql_error")
            .await
            .contains("no such table")
    );
    let rs = execute(&s, &bob, json!("SELECT name FROM sqlite_master")).await;
    assert_eq!(rs["rows"], json!([]));

    let (_, reader) = s.token_with(&s.alice, &["sqlite:read"]).await;
    let rs = execute(&s, &reader, json!("SELECT v FROM secrets")).await;
    assert_eq!(rs["rows"], json!([["alice only"]]));
    let resp = sql(
        &s,
        &reader,
        "/v1/sqlite/execute",
        json!({ "statement": "DELETE FROM secrets" }),
    )
    .await;
    assert!(
        assert_error(resp, StatusCode::FORBIDDEN, "forbidden")
            .await
            .contains("sqlite:write")
    );
    let (_, neither) = s.token_with(&s.alice, &["val:read"]).await;
    let resp = sql(
        &s,
        &neither,
        "/v1/sqlite/execute",
        json!({ "statement": "SELECT 1" }),
    )
    .await;
    assert!(
        assert_error(resp, StatusCode::FORBIDDEN, "forbidden")
            .await
            .contains("sqlite:read")
    );
}

#[tokio::test]
async fn the_size_quota_and_the_deadline_stop_runaway_sql() {
    let s = TestServer::start_with(|l| l.sqlite_quota_bytes = 64 * 1024).await;
    let t = s.alice.clone();
    execute(&s, &t, json!("CREATE TABLE big (v BLOB)")).await;
    let resp = sql(&s, &t, "/v1/sqlite/execute", json!({ "statement": "INSERT INTO big SELECT randomblob(1000) FROM generate_series(1, 1000)" })).await;
    let status = resp.status();
    let body: Value = resp.json().await.unwrap();
    // generate_series may be missing from this SQLite build; a recursive CTE does the same.
    if body["message"]
        .as_str()
        .unwrap_or_default()
        .contains("no such table")
    {
        let resp = sql(&s, &t, "/v1/sqlite/execute", json!({ "statement": "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 1000) INSERT INTO big SELECT randomblob(1000) FROM n" })).await;
        let msg = assert_error(resp, StatusCode::INSUFFICIENT_STORAGE, "quota_exceeded").await;
        assert!(msg.contains("quota"), "{msg}");
    } else {
        assert_eq!(status, StatusCode::INSUFFICIENT_STORAGE, "{body}");
    }
    // A statement that would run forever is interrupted at the deadline.
    let started = std::time::Instant::now();
    let resp = sql(&s, &t, "/v1/sqlite/execute", json!({ "statement": "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n) SELECT count(*) FROM n" })).await;
    let msg = assert_error(resp, StatusCode::GATEWAY_TIMEOUT, "deadline_exceeded").await;
    assert!(msg.contains("deadline"), "{msg}");
    assert!(started.elapsed() < std::time::Duration::from_secs(30));
}

#[tokio::test]
async fn results_are_bounded_by_the_blob_size_limit() {
    let s = TestServer::start().await;
    let t = s.alice.clone();
    let limit = support::test_limits().blob_bytes.to_string();
    // One value past the limit is refused by SQLite before it is built.
    let resp = sql(
        &s,
        &t,
        "/v1/sqlite/execute",
        json!({ "statement": "SELECT randomblob(900000000)" }),
    )
    .await;
    let msg = assert_error(resp, StatusCode::BAD_REQUEST, "result_too_large").await;
    assert!(msg.contains(&limit), "{msg}");
    // Many values, each under it, stop once the result passes it.
    let resp = sql(&s, &t, "/v1/sqlite/execute", json!({ "statement": "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 100) SELECT randomblob(1000000) FROM n" })).await;
    let msg = assert_error(resp, StatusCode::BAD_REQUEST, "result_too_large").await;
    assert!(msg.contains("result") && msg.contains(&limit), "{msg}");
    // A batch's results count together.
    let resp = sql(
        &s,
        &t,
        "/v1/sqlite/batch",
        json!({ "statements": ["SELECT randomblob(6000000)", "SELECT randomblob(6000000)"] }),
    )
    .await;
    let msg = assert_error(resp, StatusCode::BAD_REQUEST, "result_too_large").await;
    assert!(msg.contains("result") && msg.contains(&limit), "{msg}");
    // Text that is not UTF-8 comes back, not a crash.
    let rs = execute(&s, &t, json!("SELECT CAST(x'61ff' AS TEXT)")).await;
    assert_eq!(rs["rows"], json!([["a\u{fffd}"]]));
}

#[tokio::test]
async fn transaction_control_cannot_break_a_batch() {
    let s = TestServer::start().await;
    let t = s.alice.clone();
    execute(&s, &t, json!("CREATE TABLE t (x)")).await;
    let resp = sql(
        &s,
        &t,
        "/v1/sqlite/batch",
        json!({ "mode": "write", "statements": [
        "INSERT INTO t VALUES (1)",
        "COMMIT",
        "INSERT INTO nowhere VALUES (1)",
    ] }),
    )
    .await;
    let msg = assert_error(resp, StatusCode::BAD_REQUEST, "invalid_statement").await;
    assert!(
        msg.contains("statement 1") && msg.contains("COMMIT"),
        "{msg}"
    );
    let rs = execute(&s, &t, json!("SELECT count(*) FROM t")).await;
    assert_eq!(rs["rows"], json!([[0]]));
    for statement in ["BEGIN", "SAVEPOINT a", "RELEASE a", "ROLLBACK", "END"] {
        let resp = sql(
            &s,
            &t,
            "/v1/sqlite/execute",
            json!({ "statement": statement }),
        )
        .await;
        assert_error(resp, StatusCode::BAD_REQUEST, "invalid_statement").await;
    }
}

#[tokio::test]
async fn a_locked_database_answers_busy_with_a_retry_hint() {
    let s = TestServer::start().await;
    let t = s.alice.clone();
    execute(&s, &t, json!("CREATE TABLE t (x)")).await;
    // A write batch holds the write lock until the deadline interrupts it.
    let holder = {
        let req = s.req(Method::POST, "/v1/sqlite/batch", Some(&t)).json(&json!({ "mode": "write", "statements": ["WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n) SELECT count(*) FROM n"] }));
        tokio::spawn(req.send())
    };
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    let resp = sql(
        &s,
        &t,
        "/v1/sqlite/execute",
        json!({ "statement": "INSERT INTO t VALUES (1)" }),
    )
    .await;
    assert_eq!(resp.headers()["retry-after"], "1");
    let msg = assert_error(resp, StatusCode::SERVICE_UNAVAILABLE, "database_busy").await;
    assert!(msg.contains("retry"), "{msg}");
    let resp = holder.await.unwrap().unwrap();
    assert_error(resp, StatusCode::GATEWAY_TIMEOUT, "deadline_exceeded").await;
}

#[tokio::test]
async fn two_owners_guestbooks_do_not_share_entries() {
    let s = TestServer::start().await;
    let bob = s.create_user("bob").await;
    s.deploy("guestbook", "guestbook", "public").await;
    let resp = s
        .deploy_bytes(&bob, "guestbook", "public", val_bytes("guestbook"))
        .await;
    assert_eq!(resp.status(), StatusCode::CREATED);
    let sign = |user: &str, name: &str| {
        s.req(Method::POST, &format!("/x/{user}/guestbook/"), None)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(format!("name={name}&message=hi"))
            .send()
    };
    // The client follows the 303 back to the page.
    assert_eq!(sign("alice", "Ada").await.unwrap().status(), 200);
    assert_eq!(sign("bob", "Bo").await.unwrap().status(), 200);
    let alice = s
        .get("/x/alice/guestbook/", None)
        .await
        .text()
        .await
        .unwrap();
    let bobs = s.get("/x/bob/guestbook/", None).await.text().await.unwrap();
    assert!(alice.contains("Ada") && !alice.contains("Bo<"), "{alice}");
    assert!(bobs.contains("Bo<") && !bobs.contains("Ada"), "{bobs}");
}

#[tokio::test]
async fn temp_objects_last_one_operation_while_connections_are_reused() {
    let s = TestServer::start().await;
    s.deploy("sql", "sql-repeat", "public").await;
    let run = |sql: &'static str, query: &'static str| {
        let s = &s;
        async move {
            let resp = s
                .req(Method::POST, &format!("/x/alice/sql/{query}"), None)
                .body(sql)
                .send()
                .await
                .unwrap();
            (resp.status(), resp.text().await.unwrap())
        }
    };
    execute(
        &s,
        &s.alice,
        json!("CREATE TABLE kv (k INTEGER PRIMARY KEY, v)"),
    )
    .await;
    execute(&s, &s.alice, json!("INSERT INTO kv VALUES (1, 'one')")).await;
    // Many operations in one call, each on a connection the last one left.
    let (status, rows) = run("SELECT v FROM kv WHERE k = 1", "?n=50").await;
    assert_eq!((status, rows.as_str()), (StatusCode::OK, "1"));
    let (status, rows) = run("SELECT v FROM kv", "?n=20&batch").await;
    assert_eq!((status, rows.as_str()), (StatusCode::OK, "1"));
    // A TEMP table made by one call (or REST request) is gone for the next.
    let (status, _) = run("CREATE TEMP TABLE scratch (x)", "").await;
    assert_eq!(status, StatusCode::OK);
    let (status, message) = run("SELECT * FROM scratch", "").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(message.contains("no such table"), "{message}");
    execute(
        &s,
        &s.alice,
        json!("CREATE TEMP TRIGGER spy AFTER INSERT ON kv BEGIN SELECT 1; END"),
    )
    .await;
    let (status, _) = run("INSERT INTO kv VALUES (2, 'two')", "").await;
    assert_eq!(status, StatusCode::OK);
    let (status, rows) = run("SELECT name FROM sqlite_temp_schema", "").await;
    assert_eq!((status, rows.as_str()), (StatusCode::OK, "0"));
}
