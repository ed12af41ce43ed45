//! Deploying vals and calling them: by path, by host, through the Run API;
//! versions, env vars, logs and privacy.

mod support;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use support::{TestServer, assert_error};

#[tokio::test]
async fn hello_answers_by_path_and_by_host() {
    let s = TestServer::start().await;
    let v = s.deploy("hello", "hello", "public").await;
    assert_eq!(v["version"], 0);
    assert_eq!(v["kind"], "http");
    assert_eq!(v["url"], format!("{}/x/alice/hello/", s.base));

    let resp = s.get("/x/alice/hello/?name=Bob", None).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["x-valbox-example"], "hello");
    assert_eq!(resp.text().await.unwrap(), "Hello, Bob!");
    // Without the trailing slash too.
    assert_eq!(
        s.get("/x/alice/hello", None).await.text().await.unwrap(),
        "Hello, world!"
    );

    let resp = s
        .req(Method::GET, "/anything?name=Host", None)
        .header("host", format!("alice-hello.localhost:{}", s.addr.port()))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.text().await.unwrap(), "Hello, Host!");
}

#[tokio::test]
async fn method_path_query_headers_and_body_reach_the_val() {
    let s = TestServer::start().await;
    s.deploy("inspect", "inspect", "public").await;
    let resp = s
        .req(
            Method::PUT,
            "/x/alice/inspect/a/b%20c?x=1&y=two",
            Some(&s.alice),
        )
        .header("x-custom", "yes")
        .body("the body")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["x-inspect"], "yes");
    let seen: Value = resp.json().await.unwrap();
    assert_eq!(seen["method"], "PUT");
    assert_eq!(seen["path"], "/a/b%20c");
    assert_eq!(seen["query"], "x=1&y=two");
    assert_eq!(seen["body"], "the body");
    let headers = seen["headers"].as_array().unwrap();
    let header = |name: &str| headers.iter().find(|h| h[0] == name).map(|h| h[1].clone());
    assert_eq!(header("x-custom"), Some(json!("yes")));
    // The caller's Valbox token is for the platform, never for the val,
    // however the header is spaced.
    assert_eq!(header("authorization"), None);
    let seen = inspect_with_authorization(&s, &format!("Bearer   {}", s.alice)).await;
    let forwarded = seen["headers"].to_string();
    assert!(!forwarded.contains("vbx_"), "token forwarded: {forwarded}");

    // Any other Authorization scheme is the val's business (custom auth).
    let seen = inspect_with_authorization(&s, "Basic dTpw").await;
    assert!(
        seen["headers"]
            .as_array()
            .unwrap()
            .iter()
            .any(|h| h[0] == "authorization" && h[1] == "Basic dTpw")
    );

    let resp = s.get("/x/alice/inspect/status/201", None).await;
    assert_eq!(resp.status(), 201);
    assert_eq!(resp.text().await.unwrap(), "status 201");
}

/// What alice's `inspect` val saw of a request sent with `authorization`.
async fn inspect_with_authorization(s: &TestServer, authorization: &str) -> Value {
    s.req(Method::GET, "/x/alice/inspect/", None)
        .header("authorization", authorization)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

#[tokio::test]
async fn each_deploy_is_a_new_version_and_the_newest_serves() {
    let s = TestServer::start().await;
    assert_eq!(s.deploy("site", "hello", "public").await["version"], 0);
    assert_eq!(
        s.get("/x/alice/site/", None).await.text().await.unwrap(),
        "Hello, world!"
    );
    assert_eq!(s.deploy("site", "inspect", "public").await["version"], 1);
    let resp = s.get("/x/alice/site/status/202", None).await;
    assert_eq!(resp.status(), 202);

    let val: Value = s
        .get("/v2/alias/vals/alice/site", None)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(val["version"], 1);
    let versions: Value = s
        .get(
            &format!("/v2/vals/{}/versions", val["id"].as_str().unwrap()),
            None,
        )
        .await
        .json()
        .await
        .unwrap();
    let numbers: Vec<i64> = versions["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["version"].as_i64().unwrap())
        .collect();
    assert_eq!(numbers, vec![0, 1]);
}

#[tokio::test]
async fn run_api_calls_script_vals() {
    let s = TestServer::start().await;
    let v = s.deploy("echo", "echo", "public").await;
    assert_eq!(v["kind"], "script");

    let resp = s
        .req(Method::POST, "/v1/run/alice.echo", None)
        .json(&json!({ "args": [1, "two", { "three": 3 }] }))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(
        resp.json::<Value>().await.unwrap(),
        json!([1, "two", { "three": 3 }])
    );

    let resp = s
        .get("/v1/run/alice.echo?args=%5B%22hi%22%2C2%5D", None)
        .await;
    assert_eq!(resp.json::<Value>().await.unwrap(), json!(["hi", 2]));
    let resp = s.get("/v1/run/alice.echo", None).await;
    assert_eq!(resp.json::<Value>().await.unwrap(), json!([]));

    let resp = s
        .req(Method::POST, "/v1/run/alice.echo", None)
        .json(&json!({ "args": ["fail"] }))
        .send()
        .await
        .unwrap();
    let msg = assert_error(resp, StatusCode::BAD_REQUEST, "val_error").await;
    assert_eq!(msg, "echo was asked to fail");

    assert_error(
        s.get("/v1/run/alice.echo?args=notjson", None).await,
        StatusCode::BAD_REQUEST,
        "invalid_args",
    )
    .await;
    let resp = s
        .req(Method::POST, "/v1/run/alice.echo", None)
        .json(&json!({ "args": 5 }))
        .send()
        .await
        .unwrap();
    assert_error(resp, StatusCode::UNPROCESSABLE_ENTITY, "invalid_json").await;
    let resp = s
        .req(Method::POST, "/v1/run/alice.echo", None)
        .body("{")
        .header("content-type", "application/json")
        .send()
        .await
        .unwrap();
    assert_error(resp, StatusCode::BAD_REQUEST, "invalid_json").await;
    assert_error(
        s.get("/v1/run/aliceecho", None).await,
        StatusCode::BAD_REQUEST,
        "invalid_target",
    )
    .await;
    assert_error(
        s.get("/v1/run/alice.nope", None).await,
        StatusCode::NOT_FOUND,
        "not_found",
    )
    .await;

    // Each kind answers only on its own routes.
    assert_error(
        s.get("/x/alice/echo/", None).await,
        StatusCode::BAD_REQUEST,
        "wrong_val_kind",
    )
    .await;
    s.deploy("hello", "hello", "public").await;
    assert_error(
        s.get("/v1/run/alice.hello", None).await,
        StatusCode::BAD_REQUEST,
        "wrong_val_kind",
    )
    .await;
}

#[tokio::test]
async fn env_vars_reach_the_val_encrypted_at_rest_and_never_returned() {
    let s = TestServer::start().await;
    s.deploy("greet", "greet-env", "public").await;
    let val: Value = s
        .get("/v2/alias/vals/alice/greet", None)
        .await
        .json()
        .await
        .unwrap();
    let id = val["id"].as_str().unwrap();
    let envs = format!("/v2/vals/{id}/environment_variables");

    assert_eq!(
        s.get("/x/alice/greet/", None).await.text().await.unwrap(),
        "GREETING is not set"
    );

    let resp = s
        .req(Method::POST, &envs, Some(&s.alice))
        .json(&json!({ "key": "GREETING", "value": "Bonjour-secret-4242", "description": "the greeting" }))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::CREATED);
    let created: Value = resp.json().await.unwrap();
    assert_eq!(created["key"], "GREETING");
    assert!(created.get("value").is_none());
    assert_eq!(
        s.get("/x/alice/greet/", None).await.text().await.unwrap(),
        "Bonjour-secret-4242, world!"
    );

    let resp = s
        .req(Method::PUT, &format!("{envs}/GREETING"), Some(&s.alice))
        .json(&json!({ "value": "Hej" }))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(
        s.get("/x/alice/greet/", None).await.text().await.unwrap(),
        "Hej, world!"
    );

    let listed = s.get(&envs, Some(&s.alice)).await.text().await.unwrap();
    assert!(listed.contains("GREETING") && listed.contains("the greeting"));
    assert!(
        !listed.contains("Hej"),
        "the API must never return a value: {listed}"
    );

    // The value is not stored in the clear anywhere in the data dir.
    for entry in walk(s.dir.path()) {
        let bytes = std::fs::read(&entry).unwrap();
        assert!(
            !bytes.windows(3).any(|w| w == b"Hej"),
            "{} holds the secret in the clear",
            entry.display()
        );
    }

    // Bad names are refused clearly; `valtown` is reserved.
    for key in ["1BAD", "A-B", "valtown"] {
        let resp = s
            .req(Method::POST, &envs, Some(&s.alice))
            .json(&json!({ "key": key, "value": "x" }))
            .send()
            .await
            .unwrap();
        assert_error(resp, StatusCode::BAD_REQUEST, "invalid_env_var").await;
    }

    // Another user cannot see or change alice's env vars.
    let bob = s.create_user("bob").await;
    assert_error(
        s.get(&envs, Some(&bob)).await,
        StatusCode::NOT_FOUND,
        "not_found",
    )
    .await;
    let resp = s
        .req(Method::PUT, &format!("{envs}/GREETING"), Some(&bob))
        .json(&json!({ "value": "pwned" }))
        .send()
        .await
        .unwrap();
    assert_error(resp, StatusCode::NOT_FOUND, "not_found").await;
    assert_error(
        s.get(&envs, None).await,
        StatusCode::UNAUTHORIZED,
        "unauthorized",
    )
    .await;

    let resp = s
        .req(Method::DELETE, &format!("{envs}/GREETING"), Some(&s.alice))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::NO_CONTENT);
    assert_eq!(
        s.get("/x/alice/greet/", None).await.text().await.unwrap(),
        "GREETING is not set"
    );
    let resp = s
        .req(Method::DELETE, &format!("{envs}/GREETING"), Some(&s.alice))
        .send()
        .await
        .unwrap();
    assert_error(resp, StatusCode::NOT_FOUND, "not_found").await;
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(walk(&path));
        } else {
            out.push(path);
        }
    }
    out
}

#[tokio::test]
async fn every_call_is_logged_for_its_owner_only() {
    let s = TestServer::start().await;
    s.deploy("greet", "greet-env", "public").await;
    let val: Value = s
        .get("/v2/alias/vals/alice/greet", None)
        .await
        .json()
        .await
        .unwrap();
    let id = val["id"].as_str().unwrap().to_string();
    s.get("/x/alice/greet/", None).await;
    s.get("/x/alice/greet/", None).await;

    let logs = s
        .wait_for_logs(&s.alice, &format!("val_id={id}"), |d| d.len() >= 2)
        .await;
    let entry = &logs[0];
    assert!(
        entry["timeUnixNano"]
            .as_str()
            .unwrap()
            .parse::<u128>()
            .unwrap()
            > 0
    );
    assert_eq!(entry["severityText"], "INFO");
    let a = &entry["attributes"];
    assert_eq!(a["val.name"], "greet");
    assert_eq!(a["val.version"], 0);
    assert_eq!(a["http.status"], 200);
    assert_eq!(a["trigger"], "http");
    assert!(a["fuel_used"].as_i64().unwrap() > 0);
    assert!(a["duration_ms"].as_f64().unwrap() > 0.0);
    assert_eq!(a["stdout"], "greet-env: stdout line\n");
    assert_eq!(a["stderr"], "greet-env: stderr line\n");

    // Newest first by default; ascending on request; limit honoured.
    let asc = s
        .wait_for_logs(
            &s.alice,
            &format!("val_id={id}&direction=asc&limit=1"),
            |d| d.len() == 1,
        )
        .await;
    assert!(asc[0]["timeUnixNano"].as_str().unwrap() <= logs[0]["timeUnixNano"].as_str().unwrap());
    assert_error(
        s.get("/v1/telemetry/logs?limit=0", Some(&s.alice)).await,
        StatusCode::BAD_REQUEST,
        "invalid_query",
    )
    .await;
    assert_error(
        s.get("/v1/telemetry/logs?start=yesterday", Some(&s.alice))
            .await,
        StatusCode::BAD_REQUEST,
        "invalid_query",
    )
    .await;
    let future = s
        .get(
            "/v1/telemetry/logs?start=2999-01-01T00:00:00Z",
            Some(&s.alice),
        )
        .await
        .json::<Value>()
        .await
        .unwrap();
    assert_eq!(future["data"], json!([]));

    // Bob sees none of alice's calls.
    let bob = s.create_user("bob").await;
    let theirs: Value = s
        .get("/v1/telemetry/logs", Some(&bob))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(theirs["data"], json!([]));
    assert_error(
        s.get("/v1/telemetry/logs", None).await,
        StatusCode::UNAUTHORIZED,
        "unauthorized",
    )
    .await;
}

#[tokio::test]
async fn privacy_levels_decide_who_can_run_and_list() {
    let s = TestServer::start().await;
    let bob = s.create_user("bob").await;
    s.deploy("pub", "hello", "public").await;
    s.deploy("unl", "hello", "unlisted").await;
    s.deploy("priv", "hello", "private").await;

    for name in ["pub", "unl"] {
        assert_eq!(
            s.get(&format!("/x/alice/{name}/"), None).await.status(),
            200
        );
        assert_eq!(
            s.get(&format!("/x/alice/{name}/"), Some(&bob))
                .await
                .status(),
            200
        );
    }
    assert_error(
        s.get("/x/alice/priv/", None).await,
        StatusCode::NOT_FOUND,
        "not_found",
    )
    .await;
    assert_error(
        s.get("/x/alice/priv/", Some(&bob)).await,
        StatusCode::NOT_FOUND,
        "not_found",
    )
    .await;
    assert_eq!(s.get("/x/alice/priv/", Some(&s.alice)).await.status(), 200);
    // A private val is as absent as a missing one, by path and by host.
    let missing = s
        .get("/x/alice/nothing/", None)
        .await
        .json::<Value>()
        .await
        .unwrap();
    assert_eq!(missing["error"], "not_found");
    let resp = s
        .req(Method::GET, "/", None)
        .header("host", format!("alice-priv.localhost:{}", s.addr.port()))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);

    let names = |v: Value| -> Vec<String> {
        v["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x["name"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(
        names(s.get("/v2/vals", None).await.json().await.unwrap()),
        vec!["pub"]
    );
    assert_eq!(
        names(s.get("/v2/vals", Some(&bob)).await.json().await.unwrap()),
        vec!["pub"]
    );
    assert_eq!(
        names(
            s.get("/v2/vals", Some(&s.alice))
                .await
                .json()
                .await
                .unwrap()
        ),
        vec!["pub", "unl", "priv"]
    );
    assert_eq!(s.get("/v2/alias/vals/alice/unl", None).await.status(), 200);
    assert_eq!(
        s.get("/v2/alias/vals/alice/priv", Some(&bob))
            .await
            .status(),
        404
    );

    // Bob cannot deploy to, change or delete alice's val.
    let val: Value = s
        .get("/v2/alias/vals/alice/pub", None)
        .await
        .json()
        .await
        .unwrap();
    let id = val["id"].as_str().unwrap();
    let resp = s
        .req(Method::POST, &format!("/v2/vals/{id}/versions"), Some(&bob))
        .body(support::val_bytes("panic"))
        .send()
        .await
        .unwrap();
    assert_error(resp, StatusCode::NOT_FOUND, "not_found").await;
    let resp = s
        .req(Method::PATCH, &format!("/v2/vals/{id}"), Some(&bob))
        .json(&json!({ "privacy": "private" }))
        .send()
        .await
        .unwrap();
    assert_error(resp, StatusCode::NOT_FOUND, "not_found").await;
    let resp = s
        .req(Method::DELETE, &format!("/v2/vals/{id}"), Some(&bob))
        .send()
        .await
        .unwrap();
    assert_error(resp, StatusCode::NOT_FOUND, "not_found").await;

    // The owner can make it private, after which anonymous callers get 404.
    let resp = s.patch_val(id, &json!({ "privacy": "private" })).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(s.get("/x/alice/pub/", None).await.status(), 404);
}

#[tokio::test]
async fn bad_tokens_and_bad_requests_get_clear_errors() {
    let s = TestServer::start().await;
    assert_error(
        s.get("/v1/me", Some("vbx_nonsense")).await,
        StatusCode::UNAUTHORIZED,
        "unauthorized",
    )
    .await;
    let resp = s
        .req(Method::GET, "/v1/me", None)
        .header("authorization", "Token abc")
        .send()
        .await
        .unwrap();
    assert_error(resp, StatusCode::UNAUTHORIZED, "unauthorized").await;
    // A well-formed token that was never issued.
    let (unknown, _) = valbox_auth::generate_token(valbox_auth::API_TOKEN_PREFIX);
    assert_error(
        s.get("/v1/me", Some(&unknown)).await,
        StatusCode::UNAUTHORIZED,
        "unauthorized",
    )
    .await;

    let me: Value = s.get("/v1/me", Some(&s.alice)).await.json().await.unwrap();
    assert_eq!(me["username"], "alice");
    assert_eq!(me["email"], "alice@example.com");
    assert_eq!(me["type"], "user");

    let resp = s
        .req(Method::POST, "/v2/vals", Some(&s.alice))
        .json(&json!({ "name": "9lives", "privacy": "public" }))
        .send()
        .await
        .unwrap();
    assert_error(resp, StatusCode::BAD_REQUEST, "invalid_name").await;
    let resp = s
        .req(Method::POST, "/v2/vals", Some(&s.alice))
        .json(&json!({ "name": "ok", "privacy": "secret" }))
        .send()
        .await
        .unwrap();
    assert_error(resp, StatusCode::BAD_REQUEST, "invalid_privacy").await;
    let resp = s
        .req(Method::POST, "/v2/vals", Some(&s.alice))
        .body("name=x")
        .send()
        .await
        .unwrap();
    assert_error(
        resp,
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "unsupported_media_type",
    )
    .await;
    s.ensure_val(&s.alice.clone(), "dup", "public").await;
    let resp = s
        .req(Method::POST, "/v2/vals", Some(&s.alice))
        .json(&json!({ "name": "dup", "privacy": "public" }))
        .send()
        .await
        .unwrap();
    assert_error(resp, StatusCode::CONFLICT, "conflict").await;
    assert_error(
        s.get("/x/alice/dup/", None).await,
        StatusCode::NOT_FOUND,
        "not_found",
    )
    .await;
    assert_error(
        s.get("/no/such/route", None).await,
        StatusCode::NOT_FOUND,
        "not_found",
    )
    .await;
    assert_error(
        s.get("/v2/vals?limit=1000", None).await,
        StatusCode::BAD_REQUEST,
        "invalid_query",
    )
    .await;
}

#[tokio::test]
async fn cli_deploys_sets_env_and_reads_logs() {
    let s = TestServer::start().await;
    let wasm = support::val_path("greet-env");
    let run = |args: &[&str]| {
        let mut full = vec!["valbox"];
        full.extend_from_slice(args);
        full.extend_from_slice(&["--url", &s.base, "--token", &s.alice]);
        let cli = <valbox::cli::Cli as clap::Parser>::try_parse_from(full).unwrap();
        valbox::cli::run(cli)
    };
    run(&[
        "deploy",
        "greeter",
        wasm.to_str().unwrap(),
        "--privacy",
        "unlisted",
    ])
    .await
    .unwrap();
    run(&["env", "set", "greeter", "GREETING", "Howdy"])
        .await
        .unwrap();
    assert_eq!(
        s.get("/x/alice/greeter/", None).await.text().await.unwrap(),
        "Howdy, world!"
    );
    run(&[
        "deploy",
        "greeter",
        wasm.to_str().unwrap(),
        "--privacy",
        "private",
    ])
    .await
    .unwrap();
    let val: Value = s
        .get("/v2/alias/vals/alice/greeter", Some(&s.alice))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(val["version"], 1);
    assert_eq!(val["privacy"], "private");
    run(&["logs", "greeter"]).await.unwrap();
    run(&["env", "delete", "greeter", "GREETING"])
        .await
        .unwrap();
    // Scopes at deploy time and afterwards; tokens.
    run(&[
        "deploy",
        "scoped",
        wasm.to_str().unwrap(),
        "--scopes",
        "val:read",
    ])
    .await
    .unwrap();
    let scopes = |v: Value| v["scopes"].clone();
    let val: Value = s
        .get("/v2/alias/vals/alice/scoped", Some(&s.alice))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(scopes(val), json!(["val:read"]));
    run(&["val", "scopes", "scoped", "env:read", "val:read"])
        .await
        .unwrap();
    let val: Value = s
        .get("/v2/alias/vals/alice/scoped", Some(&s.alice))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(scopes(val), json!(["env:read", "val:read"]));
    run(&["token", "create", "ci", "--scopes", "val:read"])
        .await
        .unwrap();
    run(&["token", "list"]).await.unwrap();
    run(&["email", "list"]).await.unwrap();
    let listed: Value = s
        .get("/v1/tokens", Some(&s.alice))
        .await
        .json()
        .await
        .unwrap();
    let ci = listed["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "ci")
        .unwrap()
        .clone();
    run(&["token", "revoke", ci["id"].as_str().unwrap()])
        .await
        .unwrap();
    let err = run(&["token", "revoke", ci["id"].as_str().unwrap()])
        .await
        .unwrap_err();
    assert!(format!("{err:#}").contains("no live token"));
    let err = run(&["deploy", "greeter", "/no/such.wasm"])
        .await
        .unwrap_err();
    assert!(format!("{err:#}").contains("/no/such.wasm"));
}

#[tokio::test]
async fn a_val_cannot_reach_host_files_or_env() {
    let s = TestServer::start().await;
    s.deploy("inspect", "inspect", "public").await;
    let report: Value = s
        .get("/x/alice/inspect/escape", None)
        .await
        .json()
        .await
        .unwrap();
    assert!(
        report["read_file"].as_str().unwrap().starts_with("Err"),
        "{report}"
    );
    assert!(
        report["list_root"].as_str().unwrap().starts_with("Err"),
        "{report}"
    );
    // The process environment is the val's own (its vars, none here, and
    // its call's token, as `env:read` gives them), never the host's.
    assert_eq!(
        report["env_vars"],
        json!(["valtown"]),
        "no host environment"
    );
}

#[tokio::test]
async fn the_webhook_example_checks_a_shared_secret() {
    let s = TestServer::start().await;
    let v = s.deploy("webhook", "webhook", "public").await;
    let id = v["valId"].as_str().unwrap();
    let post = |secret: Option<&str>| {
        let mut r = s
            .req(Method::POST, "/x/alice/webhook/", None)
            .body("payload");
        if let Some(secret) = secret {
            r = r.header("x-webhook-secret", secret);
        }
        r.send()
    };
    assert_eq!(
        post(Some("anything")).await.unwrap().status(),
        500,
        "no secret configured"
    );
    let resp = s
        .req(
            Method::PUT,
            &format!("/v2/vals/{id}/environment_variables/WEBHOOK_SECRET"),
            Some(&s.alice),
        )
        .json(&json!({ "value": "s3cret" }))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(post(None).await.unwrap().status(), 401);
    assert_eq!(post(Some("s3cre")).await.unwrap().status(), 401);
    let resp = post(Some("s3cret")).await.unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(
        resp.json::<Value>().await.unwrap(),
        json!({ "received": "payload" })
    );
}

#[tokio::test]
async fn malformed_requests_get_json_errors_but_vals_answer_as_they_like() {
    let s = TestServer::start().await;
    s.deploy("webhook", "webhook", "public").await;
    let msg = assert_error(
        s.get("/v2/vals?limit=many", None).await,
        StatusCode::BAD_REQUEST,
        "bad_request",
    )
    .await;
    assert!(msg.contains("limit"), "{msg}");
    assert_error(
        s.req(Method::PUT, "/v1/me", Some(&s.alice))
            .send()
            .await
            .unwrap(),
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
    )
    .await;
    assert_error(
        s.get("/v2/vals/x/versions/not-a-number/component", None)
            .await,
        StatusCode::BAD_REQUEST,
        "bad_request",
    )
    .await;
    // A val's own error response (plain text here) is passed through as is.
    let resp = s.get("/x/alice/webhook/", None).await;
    assert_eq!(resp.status(), StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(resp.text().await.unwrap(), "WEBHOOK_SECRET is not set");
}
