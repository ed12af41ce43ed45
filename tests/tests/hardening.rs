//! Regression tests for what an outside attack run broke (issue 8): hostile
//! SQL, TEMP storage, credentials in odd spellings, chains of vals that
//! change each other, and statuses a val may not answer. Each drives the
//! real server over HTTP.

mod support;

use std::time::Duration;

use base64::Engine as _;
use reqwest::header::{HeaderMap, HeaderValue};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use support::{TestServer, assert_error};
use valbox_model::Scopes;

/// Statements that once crashed the server, leaked addresses, or reach
/// past what user SQL may do. Each must be answered with a clear 4xx or
/// 5xx JSON error naming the problem, and the server must stay up.
const HOSTILE: &[&str] = &[
    "SELECT hex(fts3_tokenizer('simple'))",
    "SELECT fts3_tokenizer('evil', x'4141414141414141')",
    "CREATE VIRTUAL TABLE temp.f USING fts3(content, tokenize=evil)",
    "CREATE VIRTUAL TABLE f4 USING fts4(content)",
    "CREATE VIRTUAL TABLE r USING rtree(id, a, b)",
    "SELECT load_extension('/lib/x86_64-linux-gnu/libc.so.6')",
    "SELECT * FROM sqlite_dbpage",
    "SELECT * FROM dbstat",
    "SELECT * FROM pragma_database_list",
    "SELECT * FROM pragma_compile_options",
    "SELECT sqlite_compileoption_get(0)",
    "PRAGMA writable_schema = ON",
    "PRAGMA temp_store = MEMORY",
    "PRAGMA cache_size = -1000000",
    "ATTACH DATABASE '/etc/passwd' AS p",
    "SELECT zeroblob(2000000000)",
    "SELECT length(randomblob(1000000000))",
    "SELECT rtreenode(2, x'0000')",
    "WITH RECURSIVE r(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM r) SELECT count(*) FROM r",
];

async fn alive(s: &TestServer) {
    let me = s.get("/v1/me", Some(&s.alice)).await;
    assert_eq!(me.status(), 200, "the server must stay up");
}

#[tokio::test]
async fn hostile_sql_gets_a_clear_error_over_rest_and_from_a_val() {
    let s = TestServer::start_with(|l| l.timeout = Duration::from_secs(1)).await;
    let (_, reader) = s.token_with(&s.alice, &["sqlite:read"]).await;
    s.deploy("inspect", "inspect", "public").await;
    for sql in HOSTILE {
        for token in [&reader, &s.alice] {
            let resp = s
                .req(Method::POST, "/v1/sqlite/execute", Some(token))
                .json(&json!({ "statement": sql }))
                .send()
                .await
                .unwrap();
            let status = resp.status();
            let body: Value = resp.json().await.expect("a JSON error");
            assert!(
                status.is_client_error() || [504, 507].contains(&status.as_u16()),
                "{sql}: {status} {body}"
            );
            assert!(body["message"].as_str().is_some_and(|m| !m.is_empty()));
            assert!(!body.to_string().contains("20B3"), "{body}");
        }
        // The same through a val's sqlite import.
        let resp = s
            .req(Method::POST, "/x/alice/inspect/sql", None)
            .json(&json!([[sql, []]]))
            .send()
            .await
            .unwrap();
        let status = resp.status();
        let text = resp.text().await.unwrap();
        // An endless statement and the call end at the same deadline.
        assert!([400, 504].contains(&status.as_u16()), "{sql}: {text}");
        alive(&s).await;
    }

    // The batch that killed the server, with bound parameters.
    let crash = json!({
        "statements": [
            { "sql": "SELECT fts3_tokenizer(?, ?)", "args": ["evil", "AAAAAAAA"] },
            "CREATE VIRTUAL TABLE temp.f USING fts3(content, tokenize=evil)"
        ],
        "mode": "write"
    });
    let resp = s
        .req(Method::POST, "/v1/sqlite/batch", Some(&s.alice))
        .json(&crash)
        .send()
        .await
        .unwrap();
    let msg = assert_error(resp, StatusCode::BAD_REQUEST, "sql_error").await;
    assert!(msg.contains("fts3_tokenizer"), "{msg}");
    let resp = s
        .req(Method::POST, "/x/alice/inspect/sql", None)
        .json(&json!([
            ["SELECT fts3_tokenizer(?, ?)", ["evil", "AAAAAAAA"]],
            [
                "CREATE VIRTUAL TABLE temp.f USING fts3(content, tokenize=evil)",
                []
            ]
        ]))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    assert!(resp.text().await.unwrap().contains("fts3_tokenizer"));
    alive(&s).await;

    // What users rely on still works: JSON, window functions, FTS5.
    let resp = s
        .req(Method::POST, "/v1/sqlite/batch", Some(&s.alice))
        .json(&json!({ "statements": [
            "CREATE VIRTUAL TABLE docs USING fts5(body)",
            "INSERT INTO docs VALUES ('hello world')",
            "SELECT highlight(docs, 0, '<', '>') FROM docs WHERE docs MATCH 'hello' \
             ORDER BY bm25(docs)",
            "SELECT json_object('n', row_number() OVER ()) FROM docs"
        ], "mode": "write" }))
        .send()
        .await
        .unwrap();
    let status = resp.status();
    let results: Value = resp.json().await.unwrap();
    assert_eq!(status, 200, "{results}");
    assert_eq!(results[2]["rows"], json!([["<hello> world"]]));
    assert_eq!(results[3]["rows"], json!([["{\"n\":1}"]]));
}

#[tokio::test]
async fn temp_storage_counts_against_a_limit() {
    let s = TestServer::start_with(|l| l.sqlite_temp_bytes = 4 << 20).await;
    s.deploy("inspect", "inspect", "public").await;
    let fill = "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 200) \
                INSERT INTO temp.big SELECT zeroblob(1048576) FROM n";
    let resp = s
        .req(Method::POST, "/v1/sqlite/batch", Some(&s.alice))
        .json(&json!({ "statements": ["CREATE TEMP TABLE big (b)", fill], "mode": "write" }))
        .send()
        .await
        .unwrap();
    let msg = assert_error(resp, StatusCode::INSUFFICIENT_STORAGE, "quota_exceeded").await;
    assert!(msg.contains("temporary storage"), "{msg}");
    // A sort that spills to disk is bounded the same way.
    let sort = "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 20000) \
                SELECT count(*) FROM (SELECT randomblob(1000) AS x FROM n ORDER BY x)";
    let resp = s
        .req(Method::POST, "/v1/sqlite/execute", Some(&s.alice))
        .json(&json!({ "statement": sort }))
        .send()
        .await
        .unwrap();
    assert_error(resp, StatusCode::INSUFFICIENT_STORAGE, "quota_exceeded").await;
    // And from a val.
    let resp = s
        .req(Method::POST, "/x/alice/inspect/sql", None)
        .json(&json!([["CREATE TEMP TABLE big (b)", []], [fill, []]]))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    assert!(resp.text().await.unwrap().contains("temporary storage"));
    // Small temporary work still runs.
    let resp = s
        .req(Method::POST, "/v1/sqlite/execute", Some(&s.alice))
        .json(&json!({ "statement": "SELECT count(*) FROM (SELECT 1 UNION SELECT 2)" }))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
}

#[tokio::test]
async fn one_owner_cannot_run_sqlite_requests_without_bound() {
    let s = TestServer::start_with(|l| {
        l.concurrent_calls_per_owner = 2;
        l.timeout = Duration::from_secs(6);
    })
    .await;
    let endless = json!({ "statement":
        "WITH RECURSIVE r(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM r) SELECT count(*) FROM r" });
    // The database exists before the race below, which is about turns.
    let resp = s
        .req(Method::POST, "/v1/sqlite/execute", Some(&s.alice))
        .json(&json!({ "statement": "CREATE TABLE t (x)" }))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let slow: Vec<_> = (0..2)
        .map(|_| {
            let request = s.req(Method::POST, "/v1/sqlite/execute", Some(&s.alice));
            tokio::spawn(request.json(&endless).send())
        })
        .collect();
    // Once both hold their turns, a third request of the same owner is
    // refused.
    let alice = s.alice_id();
    for _ in 0..500 {
        if s.app().caps.sqlite.store.turns_taken(&alice) == 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(
        s.app().caps.sqlite.store.turns_taken(&alice),
        2,
        "the slow requests never ran"
    );
    let resp = s
        .req(Method::POST, "/v1/sqlite/execute", Some(&s.alice))
        .json(&json!({ "statement": "SELECT 1" }))
        .send()
        .await
        .unwrap();
    assert_error(resp, StatusCode::TOO_MANY_REQUESTS, "too_many_requests").await;
    // A token without SQLite scopes is refused as such, before any turn:
    // refused requests cannot hold up the owner's own.
    let (_, narrow) = s.token_with(&s.alice, &["blob:read"]).await;
    let resp = s
        .req(Method::POST, "/v1/sqlite/execute", Some(&narrow))
        .json(&json!({ "statement": "SELECT 1" }))
        .send()
        .await
        .unwrap();
    assert_error(resp, StatusCode::FORBIDDEN, "forbidden").await;
    for request in slow {
        assert_eq!(request.await.unwrap().unwrap().status(), 504);
    }
}

/// The request headers the `inspect` val saw, as one lower-case string.
async fn seen_by_val(s: &TestServer, headers: HeaderMap) -> (StatusCode, String) {
    let resp = s
        .http
        .get(format!("{}/x/alice/inspect/", s.base))
        .headers(headers)
        .send()
        .await
        .unwrap();
    let status = resp.status();
    let body: Value = resp.json().await.unwrap();
    (status, body["headers"].to_string())
}

#[tokio::test]
async fn a_valbox_token_never_reaches_a_val_in_any_spelling() {
    let s = TestServer::start().await;
    let v = s.deploy("inspect", "inspect", "private").await;
    let id = v["valId"].as_str().unwrap().to_string();
    let token = s.alice.clone();
    let call = s.mint_call_token(&id, Scopes::val_default(), Duration::from_secs(30));
    let secret_part = |t: &str| t[4..].to_string();

    // Bearer in any case and spacing authenticates (the val is private, so
    // only its owner gets a 200), on the val routes and REST alike.
    for t in [&token, &call] {
        for spelling in [
            "Bearer {}",
            "bearer {}",
            "BEARER {}",
            "Bearer\t{}",
            "Bearer   {}",
            "bEaReR \t {} ",
        ] {
            let value = spelling.replace("{}", t);
            let mut headers = HeaderMap::new();
            headers.insert("authorization", HeaderValue::from_str(&value).unwrap());
            let (status, seen) = seen_by_val(&s, headers.clone()).await;
            assert_eq!(status, 200, "{value:?}");
            assert!(
                !seen.contains(&secret_part(t)),
                "{value:?} reached the val: {seen}"
            );
            let me = s.http.get(format!("{}/v1/me", s.base)).headers(headers);
            assert_eq!(me.send().await.unwrap().status(), 200, "{value:?}");
        }
    }

    // Under any other scheme, or anywhere else, it is never forwarded.
    let basic = base64::engine::general_purpose::STANDARD.encode(format!("alice:{token}"));
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("authorization", format!("Token {token}").into_bytes()),
        ("authorization", format!("Basic {basic}").into_bytes()),
        ("authorization", token.clone().into_bytes()),
        ("x-api-key", token.clone().into_bytes()),
        ("cookie", format!("session={call}; theme=dark").into_bytes()),
        (
            "x-forwarded-authorization",
            format!("Bearer {token}").into_bytes(),
        ),
        (
            "x-raw",
            [format!("Bearer {token}").as_bytes(), &[0xff]].concat(),
        ),
    ];
    s.patch_val(&id, &json!({ "privacy": "public" })).await;
    for (name, value) in cases {
        let mut headers = HeaderMap::new();
        headers.insert(name, HeaderValue::from_bytes(&value).unwrap());
        let (status, seen) = seen_by_val(&s, headers).await;
        assert!([200, 401].contains(&status.as_u16()), "{name}: {status}");
        assert!(
            !seen.contains(&secret_part(&token)) && !seen.contains(&secret_part(&call)),
            "{name} reached the val: {seen}"
        );
    }
    // A token in the URL is refused before the val runs.
    for url in [
        format!("/x/alice/inspect/?key={token}"),
        format!("/x/alice/inspect/{}", token.replace('_', "%5F")),
        // The Run API's arguments are in the URL too.
        format!("/v1/run/alice.inspect?args=%5B%22{token}%22%5D"),
        format!(
            "/v1/run/alice.inspect?args=[\"{}\"]",
            token.replace('_', "%5F")
        ),
    ] {
        let resp = s.get(&url, None).await;
        assert_error(resp, StatusCode::BAD_REQUEST, "token_in_url").await;
    }
    // Other services' credentials still reach the val.
    let mut headers = HeaderMap::new();
    headers.insert(
        "authorization",
        HeaderValue::from_static("Bearer ghp_not_ours"),
    );
    let (status, seen) = seen_by_val(&s, headers).await;
    assert_eq!(status, 200);
    assert!(seen.contains("ghp_not_ours"), "{seen}");
}

#[tokio::test]
async fn chains_of_vals_cannot_change_each_other() {
    let s = TestServer::start().await;
    let a = s.deploy("a", "hello", "public").await["valId"]
        .as_str()
        .unwrap()
        .to_string();
    let b = s.deploy("b", "hello", "public").await["valId"]
        .as_str()
        .unwrap()
        .to_string();
    let writer = Scopes::parse("val:read val:write env:read env:write blob:read").unwrap();
    // A holds val:write and env:write (granted by its owner).
    let resp = s
        .patch_val(
            &a,
            &json!({ "scopes": ["val:read", "val:write", "env:read", "env:write", "blob:read"] }),
        )
        .await;
    assert_eq!(resp.status(), 200);
    let a_token = s.mint_call_token(&a, writer, Duration::from_secs(30));

    // A may not hand B the power to change vals...
    for scope in ["val:write", "env:write"] {
        let resp = s
            .req(Method::PATCH, &format!("/v2/vals/{b}"), Some(&a_token))
            .json(&json!({ "scopes": ["val:read", scope] }))
            .send()
            .await
            .unwrap();
        let msg = assert_error(resp, StatusCode::FORBIDDEN, "forbidden").await;
        assert!(msg.contains(scope), "{msg}");
    }
    // ...but may change B in other ways, since B cannot change vals.
    let resp = s
        .req(Method::PATCH, &format!("/v2/vals/{b}"), Some(&a_token))
        .json(&json!({ "scopes": ["val:read", "blob:read"] }))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);

    // Once its owner gives B val:write, B is out of A's reach, and B's
    // call token cannot change A (which holds val:write) either.
    let resp = s
        .patch_val(
            &b,
            &json!({ "scopes": ["val:read", "val:write", "env:write"] }),
        )
        .await;
    assert_eq!(resp.status(), 200);
    let b_token = s.mint_call_token(&b, writer, Duration::from_secs(30));
    for (token, target) in [(&a_token, &b), (&b_token, &a), (&a_token, &a)] {
        let attempts = [
            s.req(Method::PATCH, &format!("/v2/vals/{target}"), Some(token))
                .json(&json!({ "description": "changed" })),
            s.req(
                Method::POST,
                &format!("/v2/vals/{target}/versions"),
                Some(token),
            )
            .body(support::val_bytes("hello")),
            s.req(
                Method::POST,
                &format!("/v2/vals/{target}/environment_variables"),
                Some(token),
            )
            .json(&json!({ "key": "K", "value": "v" })),
            s.req(Method::DELETE, &format!("/v2/vals/{target}"), Some(token)),
        ];
        for attempt in attempts {
            let resp = attempt.send().await.unwrap();
            assert_error(resp, StatusCode::FORBIDDEN, "forbidden").await;
        }
    }
    // A person's token still can.
    let resp = s.patch_val(&a, &json!({ "description": "by alice" })).await;
    assert_eq!(resp.status(), 200);
}

#[tokio::test]
async fn a_val_answers_only_final_statuses_and_no_body_where_http_forbids_one() {
    let s = TestServer::start().await;
    s.deploy("inspect", "inspect", "public").await;
    for code in [100, 101, 103, 199, 0, 99, 600, 999] {
        let resp = s
            .get(&format!("/x/alice/inspect/status/{code}"), None)
            .await;
        assert_error(resp, StatusCode::BAD_GATEWAY, "invalid_response").await;
    }
    for code in [204, 205, 304] {
        let resp = s
            .get(&format!("/x/alice/inspect/status/{code}"), None)
            .await;
        assert_eq!(resp.status().as_u16(), code);
        // 205 may say its emptiness; 204 and 304 may not frame a body.
        let length = resp.headers().get("content-length");
        assert!(
            length.is_none() || (code == 205 && length.unwrap() == "0"),
            "{code}"
        );
        assert!(resp.headers().get("transfer-encoding").is_none(), "{code}");
        assert!(resp.bytes().await.unwrap().is_empty());
    }
    let resp = s
        .req(Method::HEAD, "/x/alice/inspect/bytes/10", None)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert!(resp.bytes().await.unwrap().is_empty());
    // The connection is still usable for a normal answer afterwards.
    let resp = s.get("/x/alice/inspect/bytes/10", None).await;
    assert_eq!(resp.text().await.unwrap(), "aaaaaaaaaa");
}
