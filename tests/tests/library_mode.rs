//! Library mode: a val imports another val's WIT interface, names it at
//! deploy, and runs its code inside its own call. The library sees none of
//! the caller's env vars, blobs or network unless granted; another owner's
//! library is pinned, so its author cannot change the code under a caller.

mod support;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use support::{TestServer, assert_error, val_bytes};

/// Deploy `wasm` as `token`'s val `name`, naming libraries in `query`
/// (`dep=..&grant=..`).
async fn deploy_with(
    s: &TestServer,
    token: &str,
    name: &str,
    wasm: Vec<u8>,
    query: &str,
) -> reqwest::Response {
    let val = s.ensure_val(token, name, "public").await;
    let id = val["id"].as_str().unwrap();
    s.req(
        Method::POST,
        &format!("/v2/vals/{id}/versions?{query}"),
        Some(token),
    )
    .body(wasm)
    .send()
    .await
    .unwrap()
}

async fn created(resp: reqwest::Response) -> Value {
    let status = resp.status();
    let body: Value = resp.json().await.unwrap();
    assert_eq!(status, StatusCode::CREATED, "{body}");
    body
}

async fn text(s: &TestServer, path: &str) -> (StatusCode, String) {
    let resp = s.get(path, None).await;
    (resp.status(), resp.text().await.unwrap())
}

/// Bob publishes `slugify`; alice deploys `uses-slugify` with it.
async fn setup(s: &TestServer, query: &str) -> (String, Value) {
    let bob = s.create_user("bob").await;
    created(deploy_with(s, &bob, "slugify", val_bytes("slugify"), "").await).await;
    let caller = created(
        deploy_with(
            s,
            &s.alice,
            "uses-slugify",
            val_bytes("uses-slugify"),
            query,
        )
        .await,
    )
    .await;
    (bob, caller)
}

async fn set_env(s: &TestServer, val_id: &str, key: &str, value: &str) {
    let resp = s
        .req(
            Method::POST,
            &format!("/v2/vals/{val_id}/environment_variables"),
            Some(&s.alice),
        )
        .json(&json!({ "key": key, "value": value }))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::CREATED);
}

async fn set_blob(s: &TestServer, key: &str, value: &str) {
    let resp = s
        .req(Method::POST, &format!("/v1/blob/{key}"), Some(&s.alice))
        .body(value.to_string())
        .send()
        .await
        .unwrap();
    assert!(resp.status().is_success(), "{}", resp.status());
}

#[tokio::test]
async fn a_library_answers_its_callers_import_and_sees_nothing_of_it() {
    let s = TestServer::start().await;
    let (bob, caller) = setup(&s, "dep=bob/slugify").await;
    // Another owner's library is pinned to its current version.
    assert_eq!(
        caller["resolvedLibraries"],
        json!([{ "name": "bob/slugify", "version": 0, "pinned": true, "grants": [] }])
    );
    let (status, body) = text(&s, "/x/alice/uses-slugify/slug?text=Hello,%20World!").await;
    assert_eq!((status, body.as_str()), (StatusCode::OK, "hello-world"));

    let val_id = caller["valId"].as_str().unwrap();
    set_env(&s, val_id, "SECRET", "s3cret-4242").await;
    set_blob(&s, "diary", "dear diary").await;
    for what in [
        "env:SECRET",
        "env:valtown",
        "blob:diary",
        "fetch:http://example.com/",
    ] {
        let (status, body) = text(&s, &format!("/x/alice/uses-slugify/probe?what={what}")).await;
        assert_eq!(status, StatusCode::OK);
        assert!(body.contains("denied"), "{what}: {body}");
        assert!(body.contains("library `bob/slugify@0`"), "{what}: {body}");
        assert!(body.contains("--grant bob/slugify="), "{what}: {body}");
        assert!(
            !body.contains("s3cret") && !body.contains("dear diary"),
            "{body}"
        );
    }
    // The refusals are in the caller's log, naming the library; the
    // library's author has no log of these calls.
    let logs = s
        .wait_for_logs(&s.alice, &format!("val_id={val_id}"), |d| d.len() >= 5)
        .await;
    let errors: Vec<String> = logs
        .iter()
        .filter_map(|l| l["attributes"]["error"].as_str().map(String::from))
        .collect();
    assert!(
        errors
            .iter()
            .any(|e| e.contains("env:read (library bob/slugify@0)")),
        "{errors:?}"
    );
    let bobs: Value = s
        .get("/v1/telemetry/logs", Some(&bob))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(bobs["data"], json!([]), "{bobs}");
}

#[tokio::test]
async fn granted_scopes_reach_the_callers_data_and_no_more() {
    let s = TestServer::start().await;
    let (_, caller) = setup(&s, "dep=bob/slugify&grant=bob/slugify=env:read,blob:read").await;
    assert_eq!(
        caller["resolvedLibraries"][0]["grants"],
        json!(["blob:read", "env:read"])
    );
    let val_id = caller["valId"].as_str().unwrap();
    set_env(&s, val_id, "SECRET", "s3cret-4242").await;
    set_blob(&s, "diary", "dear diary").await;
    let probe = |what: &'static str| {
        let s = &s;
        async move {
            text(s, &format!("/x/alice/uses-slugify/probe?what={what}"))
                .await
                .1
        }
    };
    assert_eq!(probe("env:SECRET").await, "env SECRET = s3cret-4242");
    assert_eq!(probe("blob:diary").await, "blob diary = dear diary");
    // A library never gets a token of its own.
    assert_eq!(probe("env:valtown").await, "env valtown is not set");
    assert!(probe("fetch:http://example.com/").await.contains("denied"));

    // A grant cannot exceed the caller's own scopes.
    let resp = s
        .patch_val(val_id, &json!({ "scopes": ["env:read", "blob:read"] }))
        .await;
    assert_eq!(resp.status(), StatusCode::OK);
    let resp = deploy_with(
        &s,
        &s.alice,
        "uses-slugify",
        val_bytes("uses-slugify"),
        "dep=bob/slugify&grant=bob/slugify=blob:write",
    )
    .await;
    let message = assert_error(resp, StatusCode::BAD_REQUEST, "invalid_grant").await;
    assert!(message.contains("blob:write"), "{message}");
    // Nor name a library the deploy does not use.
    let resp = deploy_with(
        &s,
        &s.alice,
        "uses-slugify",
        val_bytes("uses-slugify"),
        "dep=bob/slugify&grant=carol/x=blob:read",
    )
    .await;
    assert_error(resp, StatusCode::BAD_REQUEST, "invalid_grant").await;
}

#[tokio::test]
async fn revoking_the_callers_token_mid_call_ends_its_librarys_grant() {
    let s = TestServer::start().await;
    setup(&s, "dep=bob/slugify&grant=bob/slugify=blob:read").await;
    set_blob(&s, "diary", "dear diary").await;
    let (status, body) = text(&s, "/x/alice/uses-slugify/probe?what=blob:diary").await;
    assert_eq!(
        (status, body.as_str()),
        (StatusCode::OK, "blob diary = dear diary")
    );

    let (http, base) = (s.http.clone(), s.base.clone());
    let call = tokio::spawn(async move {
        let url = format!("{base}/x/alice/uses-slugify/probe?what=blob:diary&after_ms=1500");
        http.get(url).send().await.unwrap().text().await.unwrap()
    });
    // The call's token, listed while it runs; its owner revokes it.
    let id = loop {
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
            .find(|t| t["kind"] == "call");
        if let Some(token) = live {
            break token["id"].as_str().unwrap().to_string();
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    };
    let resp = s
        .req(Method::DELETE, &format!("/v1/tokens/{id}"), Some(&s.alice))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::NO_CONTENT);
    let body = call.await.unwrap();
    assert!(!body.contains("dear diary"), "{body}");
    assert!(body.contains("revoked or has expired"), "{body}");
}

#[tokio::test]
async fn another_owners_library_stays_pinned_and_an_own_one_may_float() {
    let s = TestServer::start().await;
    let (bob, _) = setup(&s, "dep=bob/slugify").await;
    // Bob's next version is something else entirely: alice's val is pinned.
    created(deploy_with(&s, &bob, "slugify", val_bytes("hello"), "").await).await;
    let (status, body) = text(&s, "/x/alice/uses-slugify/slug?text=Still%20Pinned").await;
    assert_eq!((status, body.as_str()), (StatusCode::OK, "still-pinned"));
    // Naming the version explicitly keeps working; the current one no longer fits.
    let deploy = |query: &'static str| {
        deploy_with(
            &s,
            &s.alice,
            "uses-slugify",
            val_bytes("uses-slugify"),
            query,
        )
    };
    created(deploy("dep=bob/slugify@0").await).await;
    assert_error(
        deploy("dep=bob/slugify").await,
        StatusCode::BAD_REQUEST,
        "unmatched_import",
    )
    .await;
    // Another owner's library cannot float.
    assert_error(
        deploy("dep=bob/slugify@latest").await,
        StatusCode::BAD_REQUEST,
        "unpinned_library",
    )
    .await;

    // Alice's own library may follow its latest version.
    created(deploy_with(&s, &s.alice, "myslug", val_bytes("slugify"), "").await).await;
    let floating = created(deploy("dep=alice/myslug@latest").await).await;
    assert_eq!(floating["resolvedLibraries"][0]["pinned"], false);
    let (_, body) = text(&s, "/x/alice/uses-slugify/slug?text=A%20B").await;
    assert_eq!(body, "a-b");
    created(deploy_with(&s, &s.alice, "myslug", val_bytes("hello"), "").await).await;
    let resp = s.get("/x/alice/uses-slugify/slug?text=A%20B", None).await;
    let message = assert_error(resp, StatusCode::BAD_GATEWAY, "library_unavailable").await;
    assert!(message.contains("redeploy"), "{message}");
}

#[tokio::test]
async fn imports_no_library_answers_are_refused_at_upload() {
    let s = TestServer::start().await;
    let bob = s.create_user("bob").await;
    created(deploy_with(&s, &bob, "slugify", val_bytes("slugify"), "").await).await;
    created(deploy_with(&s, &bob, "hello", val_bytes("hello"), "").await).await;
    // The same interface name with other types.
    created(deploy_with(&s, &bob, "typed", mistyped_slug(), "").await).await;
    let slug = "valbox-examples:slugify/slug@0.1.0";
    // What the deploy names, the refusal, and what its message must say.
    let cases: &[(&str, &str, &[&str])] = &[
        ("", "unsupported_import", &[slug, "--dep"]),
        ("dep=bob/hello", "unmatched_import", &[slug]),
        (
            "dep=bob/slugify&dep=bob/hello",
            "unused_library",
            &["bob/hello"],
        ),
        ("dep=bob/nothing", "unknown_library", &["bob/nothing"]),
        ("dep=bob/slugify@7", "unknown_library", &["no version 7"]),
        ("dep=nonsense", "invalid_library", &["user/val@N"]),
        (
            "dep=bob/typed",
            "mismatched_import",
            &["`slugify`", "string", "u32"],
        ),
        (
            "dep=bob/slugify&dep=bob/typed",
            "ambiguous_import",
            &["bob/typed"],
        ),
    ];
    for (query, code, says) in cases {
        let wasm = val_bytes("uses-slugify");
        let resp = deploy_with(&s, &s.alice, "caller", wasm, query).await;
        let message = assert_error(resp, StatusCode::BAD_REQUEST, code).await;
        for part in *says {
            assert!(message.contains(part), "{query}: {message}");
        }
    }
}

#[tokio::test]
async fn a_val_cannot_import_itself_and_libraries_nest_at_most_four_deep() {
    let s = TestServer::start().await;
    created(deploy_with(&s, &s.alice, "selfish", val_bytes("slugify"), "").await).await;
    let resp = deploy_with(
        &s,
        &s.alice,
        "selfish",
        val_bytes("uses-slugify"),
        "dep=alice/selfish",
    )
    .await;
    assert_error(resp, StatusCode::BAD_REQUEST, "library_cycle").await;

    // A chain of libraries, each importing the one below it.
    created(deploy_with(&s, &s.alice, "chain0", chain_link(false), "").await).await;
    for n in 1..=5 {
        let query = format!("dep=alice/chain{}", n - 1);
        let resp = deploy_with(&s, &s.alice, &format!("chain{n}"), chain_link(true), &query).await;
        if n <= 4 {
            created(resp).await;
        } else {
            let message = assert_error(resp, StatusCode::BAD_REQUEST, "library_depth").await;
            assert!(message.contains("4 deep"), "{message}");
        }
    }

    // A call goes four libraries deep, each in a store of its own.
    let resp = deploy_with(&s, &s.alice, "chained", chain_caller(), "dep=alice/chain3").await;
    created(resp).await;
    let resp = s
        .req(Method::POST, "/v1/run/alice.chained", None)
        .json(&json!({ "args": [] }))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.json::<Value>().await.unwrap(), json!(3));
}

#[tokio::test]
async fn a_val_links_at_most_32_libraries_counting_theirs() {
    let s = TestServer::start().await;
    let deps = |prefix: &str, n: usize| {
        (0..n)
            .map(|i| format!("dep=alice/{prefix}{i}"))
            .collect::<Vec<_>>()
            .join("&")
    };
    for i in 0..6 {
        let name = format!("base{i}");
        created(deploy_with(&s, &s.alice, &name, wide_library(&format!("i{i}"), 0), "").await)
            .await;
    }
    // Six libraries, each linking the six base ones: 7 apiece.
    for i in 0..6 {
        let wasm = wide_library(&format!("i{i}"), 6);
        let resp = deploy_with(&s, &s.alice, &format!("mid{i}"), wasm, &deps("base", 6)).await;
        created(resp).await;
    }
    let resp = deploy_with(&s, &s.alice, "top", wide_library("top", 4), &deps("mid", 4)).await;
    created(resp).await;
    let resp = deploy_with(&s, &s.alice, "top", wide_library("top", 6), &deps("mid", 6)).await;
    let message = assert_error(resp, StatusCode::BAD_REQUEST, "too_many_libraries").await;
    assert!(message.contains("at most 32"), "{message}");
}

#[tokio::test]
async fn a_library_that_loops_or_traps_fails_its_callers_call_cleanly() {
    // A tenth of the default fuel, so the loop ends by fuel well within the
    // wall-clock limit even on a loaded machine.
    let s = TestServer::start_with(|l| l.fuel = 100_000_000).await;
    let bob = s.create_user("bob").await;
    created(deploy_with(&s, &bob, "bad", bad_slug(), "").await).await;
    created(
        deploy_with(
            &s,
            &s.alice,
            "uses-slugify",
            val_bytes("uses-slugify"),
            "dep=bob/bad",
        )
        .await,
    )
    .await;
    // `slugify` loops: the caller's fuel runs out.
    let resp = s.get("/x/alice/uses-slugify/slug?text=x", None).await;
    assert_error(resp, StatusCode::LOOP_DETECTED, "fuel_exhausted").await;
    // `probe` traps: the caller's call fails, and its log names the library.
    let resp = s.get("/x/alice/uses-slugify/probe?what=x", None).await;
    assert_error(resp, StatusCode::BAD_GATEWAY, "val_crashed").await;
    // Both failures are logged naming the library: the fuel one too.
    let named = |d: &[Value], what: &str| {
        d.iter().any(|l| {
            l["attributes"]["error"]
                .as_str()
                .is_some_and(|e| e.contains(what) && e.contains("in library `bob/bad@0`"))
        })
    };
    s.wait_for_logs(&s.alice, "", |d| named(d, "fuel") && named(d, "crashed"))
        .await;
    // The server goes on answering.
    let (status, _) = text(&s, "/x/alice/uses-slugify/").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

/// A library exporting the interface `export`, whose functions `funcs`
/// each answer their `u32` argument, and importing (unused) the
/// interfaces `imports`, each with `f: func(u32) -> u32`.
fn identity_library(export: &str, funcs: &[&str], imports: &[String]) -> Vec<u8> {
    let imports: String = imports
        .iter()
        .map(|name| {
            format!(
                r#"(import "{name}" (instance (export "f" (func (param "n" u32) (result u32)))))"#
            )
        })
        .collect();
    let exports: String = funcs
        .iter()
        .map(|f| format!(r#"(export "{f}" (func $f))"#))
        .collect();
    wat::parse_str(format!(
        r#"(component
            {imports}
            (core module $m (func (export "f") (param i32) (result i32) local.get 0))
            (core instance $i (instantiate $m))
            (func $f (param "n" u32) (result u32) (canon lift (core func $i "f")))
            (instance $out {exports})
            (export "{export}" (instance $out)))"#
    ))
    .unwrap()
}

/// A library exporting `slug` with `slugify: func(u32) -> u32`.
fn mistyped_slug() -> Vec<u8> {
    identity_library(
        "valbox-examples:slugify/slug@0.1.0",
        &["slugify", "probe"],
        &[],
    )
}

/// A library exporting `slug` whose `slugify` never ends and whose
/// `probe` traps.
fn bad_slug() -> Vec<u8> {
    wat::parse_str(
        r#"(component
            (core module $m
                (memory (export "mem") 1)
                (func (export "realloc") (param i32 i32 i32 i32) (result i32) i32.const 1024)
                (func (export "spin") (param i32 i32) (result i32) (loop $l br $l) unreachable)
                (func (export "trap") (param i32 i32) (result i32) unreachable))
            (core instance $i (instantiate $m))
            (func $spin (param "text" string) (result string)
                (canon lift (core func $i "spin") (memory (core memory $i "mem")) (realloc (core func $i "realloc"))))
            (func $trap (param "what" string) (result string)
                (canon lift (core func $i "trap") (memory (core memory $i "mem")) (realloc (core func $i "realloc"))))
            (instance $slug (export "slugify" (func $spin)) (export "probe" (func $trap)))
            (export "valbox-examples:slugify/slug@0.1.0" (instance $slug)))"#,
    )
    .unwrap()
}

/// A script val answering, as JSON, `next(0)` of the `chain/link` library
/// it imports (one digit).
fn chain_caller() -> Vec<u8> {
    wat::parse_str(
        r#"(component
            (import "valbox-examples:chain/link@0.1.0"
                (instance $in (export "next" (func (param "n" u32) (result u32)))))
            (core func $next (canon lower (func $in "next")))
            (core module $m
                (import "in" "next" (func $next (param i32) (result i32)))
                (memory (export "mem") 1)
                (func (export "realloc") (param i32 i32 i32 i32) (result i32) i32.const 1024)
                (func (export "run") (param i32 i32) (result i32)
                    ;; The digit at 2000; the result (ok, pointer, length) at 3000.
                    i32.const 2000
                    i32.const 0 call $next i32.const 48 i32.add
                    i32.store8
                    i32.const 3000 i32.const 0 i32.store8
                    i32.const 3004 i32.const 2000 i32.store
                    i32.const 3008 i32.const 1 i32.store
                    i32.const 3000))
            (core instance $i (instantiate $m (with "in" (instance (export "next" (func $next))))))
            (func $run (param "args" string) (result (result string (error string)))
                (canon lift (core func $i "run")
                    (memory (core memory $i "mem")) (realloc (core func $i "realloc"))))
            (instance $script (export "run" (func $run)))
            (export "valbox:platform/script@0.1.0" (instance $script)))"#,
    )
    .unwrap()
}

/// A library exporting the interface `wide/{name}` and importing
/// `wide/i0` .. `wide/i{imports - 1}` (each `f: func(u32) -> u32`).
fn wide_library(name: &str, imports: usize) -> Vec<u8> {
    let imports: Vec<String> = (0..imports)
        .map(|i| format!("valbox-examples:wide/i{i}@0.1.0"))
        .collect();
    identity_library(
        &format!("valbox-examples:wide/{name}@0.1.0"),
        &["f"],
        &imports,
    )
}

/// A library exporting `chain/link` (`next: func(u32) -> u32`); with
/// `imports`, it imports the same interface and adds one to its answer.
fn chain_link(imports: bool) -> Vec<u8> {
    let text = if imports {
        r#"(component
            (import "valbox-examples:chain/link@0.1.0"
                (instance $in (export "next" (func (param "n" u32) (result u32)))))
            (core func $next (canon lower (func $in "next")))
            (core module $m
                (import "in" "next" (func $next (param i32) (result i32)))
                (func (export "next") (param i32) (result i32)
                    local.get 0 call $next i32.const 1 i32.add))
            (core instance $i (instantiate $m (with "in" (instance (export "next" (func $next))))))
            (func $f (param "n" u32) (result u32) (canon lift (core func $i "next")))
            (instance $out (export "next" (func $f)))
            (export "valbox-examples:chain/link@0.1.0" (instance $out)))"#
    } else {
        return identity_library("valbox-examples:chain/link@0.1.0", &["next"], &[]);
    };
    wat::parse_str(text).unwrap()
}
