//! The REST API's OpenAPI document at `/openapi.json`, from a real server:
//! OpenAPI 3.1, every REST route in it and nothing in it that the router
//! does not serve, every operation's client errors in the
//! `{error, message}` shape; and its page in the web UI, in Chromium.

mod support;

use std::path::Path;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use support::browser::Browser;
use support::{TestServer, repo_root};

const METHODS: [&str; 5] = ["get", "post", "put", "patch", "delete"];

async fn document(s: &TestServer) -> Value {
    let resp = s.get("/openapi.json", None).await;
    assert_eq!(resp.status(), StatusCode::OK);
    resp.json().await.unwrap()
}

/// Every `(method, path, operation)` of the document.
fn operations(doc: &Value) -> Vec<(String, String, Value)> {
    let mut all = Vec::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in METHODS {
            if let Some(op) = item.get(method) {
                all.push((method.to_string(), path.clone(), op.clone()));
            }
        }
    }
    all
}

#[tokio::test]
async fn the_document_is_openapi_3_1_with_the_error_shape_for_every_client_error() {
    let s = TestServer::start().await;
    let doc = document(&s).await;
    assert!(
        doc["openapi"].as_str().unwrap().starts_with("3.1"),
        "{}",
        doc["openapi"]
    );
    let bearer = &doc["components"]["securitySchemes"]["bearer"];
    assert_eq!(bearer["type"], "http");
    assert_eq!(bearer["scheme"], "bearer");
    let error = &doc["components"]["schemas"]["ErrorResponse"];
    assert_eq!(error["required"], json!(["error", "message"]));

    let ops = operations(&doc);
    assert!(ops.len() >= 40, "only {} operations", ops.len());
    let mut ids: Vec<&str> = ops
        .iter()
        .map(|(_, _, op)| op["operationId"].as_str().unwrap())
        .collect();
    ids.sort();
    let before = ids.len();
    ids.dedup();
    assert_eq!(ids.len(), before, "operation ids are not unique");

    for (method, path, op) in &ops {
        let responses = op["responses"].as_object().unwrap();
        assert!(op["summary"].is_string(), "{method} {path} has no summary");
        assert!(
            op["tags"].as_array().is_some_and(|t| !t.is_empty()),
            "{method} {path}: no tag"
        );
        assert!(
            responses.keys().any(|s| s.starts_with('2')),
            "{method} {path}: no success"
        );
        let client_errors: Vec<_> = responses
            .iter()
            .filter(|(s, _)| s.starts_with('4'))
            .collect();
        // Only what takes nothing from the client can refuse it nothing
        // (`/healthz`, `/readyz`, `/openapi.json`).
        let takes_input = op["parameters"].as_array().is_some_and(|p| !p.is_empty())
            || op["requestBody"].is_object()
            || op["security"].as_array().is_some_and(|s| !s.is_empty());
        assert!(
            !takes_input || !client_errors.is_empty(),
            "{method} {path} documents no 4xx"
        );
        for (status, response) in client_errors {
            assert_eq!(
                response["content"]["application/json"]["schema"]["$ref"],
                "#/components/schemas/ErrorResponse",
                "{method} {path} answers {status} in another shape"
            );
        }
        // Whatever names a token names the document's scheme.
        for requirement in op["security"].as_array().into_iter().flatten() {
            for name in requirement.as_object().unwrap().keys() {
                assert_eq!(name, "bearer", "{method} {path}");
            }
        }
    }

    // The routes every part of the API has, by name (a smoke test: the
    // source scan below is what keeps the list whole).
    for (method, path) in [
        ("get", "/healthz"),
        ("get", "/v1/me"),
        ("post", "/v1/tokens"),
        ("delete", "/v1/tokens/{id}"),
        ("get", "/v1/tokens/{id}/usage"),
        ("post", "/v2/vals"),
        ("patch", "/v2/vals/{id}"),
        ("post", "/v2/vals/{id}/versions"),
        ("get", "/v2/vals/{id}/environment_variables"),
        ("post", "/v1/run/{target}"),
        ("get", "/v1/telemetry/logs"),
        ("get", "/v1/blob/{key}"),
        ("post", "/v1/sqlite/batch"),
        ("post", "/v1/email"),
        ("post", "/v1/secret-scanning/verify"),
        ("get", "/openapi.json"),
    ] {
        assert!(
            doc["paths"][path][method].is_object(),
            "{method} {path} is missing"
        );
    }
    // The vals' own endpoints are user content: not described.
    assert!(
        doc["paths"]
            .as_object()
            .unwrap()
            .keys()
            .all(|p| !p.starts_with("/x/"))
    );
}

/// What Schemathesis found the server taking, or refusing, against the
/// document (docs/notes/schemathesis.md), each as a class.
#[tokio::test]
async fn requests_are_taken_or_refused_as_the_document_says() {
    let s = TestServer::start().await;
    let post =
        |path: &str, body: Value| s.req(Method::POST, path, Some(&s.alice)).json(&body).send();
    // A struct body sent as an array of its fields is no JSON object.
    let resp = post("/v2/vals", json!(["listed", "public"])).await.unwrap();
    support::assert_error(resp, StatusCode::UNPROCESSABLE_ENTITY, "invalid_json").await;
    // Every query parameter is checked, whichever of them wins.
    let resp = s.get("/v2/vals?cursor=8&offset=-720", Some(&s.alice)).await;
    support::assert_error(resp, StatusCode::BAD_REQUEST, "invalid_query").await;
    // Each item of a list of scopes is a scope.
    let resp = post("/v1/tokens", json!({"name": "t", "scopes": [""]}))
        .await
        .unwrap();
    support::assert_error(resp, StatusCode::BAD_REQUEST, "invalid_scope").await;
    // 30.0 is an integer to JSON Schema (in every integer field of a
    // body); a name's limit is in characters.
    let body = json!({"name": "é".repeat(100), "scopes": "val:read", "expiresInDays": 30.0});
    assert_eq!(
        post("/v1/tokens", body).await.unwrap().status(),
        StatusCode::CREATED
    );
    let val = s.ensure_val(&s.alice, "floats", "private").await;
    let change = json!({"reuse": 1.0});
    let resp = s.patch_val(val["id"].as_str().unwrap(), &change).await;
    assert_eq!(resp.status(), StatusCode::OK);
    // The document's bound is the server's.
    let doc = document(&s).await;
    let reuse = &doc["components"]["schemas"]["ValChange"]["properties"]["reuse"];
    assert_eq!(reuse["maximum"], valbox_server::api::vals::MAX_REUSE);
}

/// A value for a path parameter that names nothing.
fn placeholder(path: &str) -> String {
    let mut out = String::new();
    let mut rest = path;
    while let Some(start) = rest.find('{') {
        let end = rest[start..].find('}').unwrap() + start;
        out.push_str(&rest[..start]);
        out.push_str(if &rest[start..=end] == "{version}" {
            "0"
        } else {
            "nothing1"
        });
        rest = &rest[end + 1..];
    }
    out + rest
}

/// Nothing in the document that the router does not serve: each
/// operation answers something other than the router's own "no such
/// route" (404) or "not that method" (405).
#[tokio::test]
async fn every_documented_operation_is_served() {
    let s = TestServer::start().await;
    let doc = document(&s).await;
    for (method, path, _) in operations(&doc) {
        let url = placeholder(&path);
        let method = Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
        let resp = s
            .req(method.clone(), &url, Some(&s.alice))
            .send()
            .await
            .unwrap();
        let status = resp.status();
        let body = resp.text().await.unwrap();
        assert_ne!(
            status,
            StatusCode::METHOD_NOT_ALLOWED,
            "{method} {url}: {body}"
        );
        assert!(
            !body.contains("no such route"),
            "{method} {url} is not routed: {body}"
        );
        assert!(status.as_u16() < 500, "{method} {url}: {status} {body}");
    }
}

/// Every `.rs` file under `dir`.
fn sources(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            sources(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// Nothing the router serves is left out of the document. A REST route
/// is mounted only through utoipa-axum's `routes!`, which takes the path
/// and method from the handler's `#[utoipa::path]` attribute, the same
/// one the document is made of; so no file that mounts REST routes may
/// mount one with axum's own `.route(...)` or a `Router` of its own.
/// The exceptions are not the REST API: the web UI's pages, the vals'
/// own endpoints (`/x/...`, user content), the metrics and cluster
/// listeners on their own addresses, and the router that joins the API
/// and the UI.
#[test]
fn no_route_is_mounted_outside_the_document() {
    let root = repo_root();
    let not_rest = [
        "crates/server/src/ui/",
        "crates/server/src/cluster/",
        "crates/server/src/api/invoke.rs",
        "crates/server/src/api/metrics.rs",
        "crates/server/src/router.rs",
    ];
    let mut files = Vec::new();
    sources(&root.join("crates/server/src"), &mut files);
    sources(&root.join("crates/caps/src"), &mut files);
    let mut checked = 0;
    for file in files {
        let relative = file
            .strip_prefix(&root)
            .unwrap()
            .to_string_lossy()
            .into_owned();
        if not_rest.iter().any(|p| relative.starts_with(p)) {
            continue;
        }
        let text = std::fs::read_to_string(&file).unwrap();
        for (n, line) in text.lines().enumerate() {
            // utoipa-axum's own router is the documented way.
            let code = line
                .split("//")
                .next()
                .unwrap()
                .replace("OpenApiRouter::new()", "");
            for mount in [
                ".route(",
                ".route_service(",
                ".nest(",
                ".nest_service(",
                "Router::new()",
            ] {
                assert!(
                    !code.contains(mount),
                    "{relative}:{}: `{mount}` mounts a route the OpenAPI document does not \
                     describe; mount REST routes with utoipa-axum's `routes!` and a \
                     `#[utoipa::path]` attribute",
                    n + 1
                );
            }
        }
        checked += 1;
    }
    assert!(checked > 20, "only {checked} files scanned");
    // And the router joins exactly the API (documented, plus the vals'
    // own endpoints) and the UI.
    let router = std::fs::read_to_string(root.join("crates/server/src/router.rs")).unwrap();
    assert!(router.contains("api::routes()") && router.matches(".merge(").count() == 1);
    assert!(!router.contains(".route("));
    let api = std::fs::read_to_string(root.join("crates/server/src/api/mod.rs")).unwrap();
    assert!(api.contains("documented().split_for_parts()"));
}

/// The web UI's API page, reached from the navigation as a signed-in user
/// would: every operation of the document is on it, under its tag.
#[tokio::test]
async fn the_api_page_shows_every_operation_by_tag() {
    let s = TestServer::start().await;
    let doc = document(&s).await;
    let b = Browser::start().await;
    b.sign_in(&s, "alice").await;
    b.click("nav a[href='/api']").await;
    b.find("#tag-vals").await;
    assert_eq!(b.client.current_url().await.unwrap().path(), "/api");
    b.screenshot("api").await;

    for (method, path, op) in operations(&doc) {
        let id = op["operationId"].as_str().unwrap();
        let tag = op["tags"][0].as_str().unwrap().replace(' ', "-");
        let row = b.find(&format!("#tag-{tag} #op-{id}")).await;
        let text = row.text().await.unwrap();
        assert!(text.contains(&method.to_uppercase()), "{id}: {text}");
        assert!(text.contains(path.as_str()), "{id}: {text}");
    }
    let json = b.find("#openapi-json").await;
    assert_eq!(
        json.attr("href").await.unwrap().as_deref(),
        Some("/openapi.json")
    );
    // The shapes too: the error every operation answers.
    b.find("#schema-ErrorResponse").await;
}
