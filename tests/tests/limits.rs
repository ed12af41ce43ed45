//! Every per-call limit, hit on purpose: each gives a clear JSON error with
//! its documented status, a log record, and no harm to other calls.

mod support;

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::Value;
use support::{TestServer, assert_error};

/// After a limit is hit, the server still serves other vals.
async fn still_healthy(s: &TestServer) {
    let resp = s.get("/x/alice/hello/", None).await;
    assert_eq!(resp.text().await.unwrap(), "Hello, world!");
}

/// The log record of alice's `val` with HTTP status `status`, waiting for
/// it: records are written off the request path, so an earlier call's
/// record may be the only one there yet.
async fn log_with_status(s: &TestServer, val: &str, status: u16) -> Value {
    let v: Value = s
        .get(&format!("/v2/alias/vals/alice/{val}"), Some(&s.alice))
        .await
        .json()
        .await
        .unwrap();
    let id = v["id"].as_str().unwrap();
    let is_it = |r: &Value| r["attributes"]["http.status"] == status;
    let logs = s
        .wait_for_logs(&s.alice, &format!("val_id={id}"), |d| d.iter().any(is_it))
        .await;
    logs.into_iter().find(is_it).unwrap()
}

/// The pool's tuning knobs at their extremes still serve calls: nothing
/// kept resident and no warm slots, or more of both than can exist (kept
/// resident is capped by the memory limit).
#[tokio::test]
async fn the_pool_knobs_at_their_extremes_still_serve() {
    for (keep_resident_bytes, warm_slots) in [(0, 0), (usize::MAX, u32::MAX)] {
        let s = TestServer::start_with(|l| {
            l.keep_resident_bytes = keep_resident_bytes;
            l.warm_slots = warm_slots;
            l.concurrent_instances = 8;
        })
        .await;
        s.deploy("hello", "hello", "public").await;
        for _ in 0..3 {
            still_healthy(&s).await;
        }
    }
}

#[tokio::test]
async fn a_busy_loop_runs_out_of_fuel() {
    let s = TestServer::start_with(|l| {
        l.fuel = 50_000_000;
        l.timeout = Duration::from_secs(30);
    })
    .await;
    s.deploy("hello", "hello", "public").await;
    s.deploy("spin", "spin", "public").await;
    // Bounded work within the budget is fine.
    assert_eq!(
        s.get("/x/alice/spin/?iters=1000", None)
            .await
            .text()
            .await
            .unwrap(),
        "spun 1000"
    );
    let msg = assert_error(
        s.get("/x/alice/spin/", None).await,
        StatusCode::LOOP_DETECTED,
        "fuel_exhausted",
    )
    .await;
    assert!(msg.contains("fuel"));
    let log = log_with_status(&s, "spin", 508).await;
    assert_eq!(log["severityText"], "ERROR");
    assert!(log["attributes"]["fuel_used"].as_i64().unwrap() >= 50_000_000 - 1);
    still_healthy(&s).await;
}

#[tokio::test]
async fn a_slow_call_hits_the_wall_clock_deadline() {
    let s = TestServer::start_with(|l| {
        l.fuel = u64::MAX / 2;
        l.timeout = Duration::from_millis(300);
    })
    .await;
    s.deploy("hello", "hello", "public").await;
    s.deploy("spin", "spin", "public").await;
    let started = std::time::Instant::now();
    let msg = assert_error(
        s.get("/x/alice/spin/", None).await,
        StatusCode::GATEWAY_TIMEOUT,
        "deadline_exceeded",
    )
    .await;
    assert!(msg.contains("300 ms"));
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "the deadline did not stop the val"
    );
    log_with_status(&s, "spin", 504).await;
    still_healthy(&s).await;
}

#[tokio::test]
async fn without_fuel_metering_the_deadline_still_stops_a_busy_val() {
    let s = TestServer::start_with(|l| {
        l.meter_fuel = false;
        l.timeout = Duration::from_millis(300);
    })
    .await;
    s.deploy("hello", "hello", "public").await;
    s.deploy("spin", "spin", "public").await;
    // Bounded work answers, with no fuel counted.
    let resp = s.get("/x/alice/spin/?iters=1000", None).await;
    assert_eq!(resp.text().await.unwrap(), "spun 1000");
    let log = log_with_status(&s, "spin", 200).await;
    assert_eq!(log["attributes"]["fuel_used"], 0);
    // Unbounded work is stopped at the deadline.
    assert_error(
        s.get("/x/alice/spin/", None).await,
        StatusCode::GATEWAY_TIMEOUT,
        "deadline_exceeded",
    )
    .await;
    still_healthy(&s).await;
}

#[tokio::test]
async fn growing_memory_past_the_cap_is_stopped() {
    let s = TestServer::start_with(|l| l.memory_bytes = 32 << 20).await;
    s.deploy("hello", "hello", "public").await;
    s.deploy("grow", "grow", "public").await;
    assert_eq!(
        s.get("/x/alice/grow/?mb=4", None)
            .await
            .text()
            .await
            .unwrap(),
        "grew 4 MiB"
    );
    let msg = assert_error(
        s.get("/x/alice/grow/", None).await,
        StatusCode::INSUFFICIENT_STORAGE,
        "memory_limit_exceeded",
    )
    .await;
    assert!(msg.contains(&(32u64 << 20).to_string()));
    log_with_status(&s, "grow", 507).await;
    still_healthy(&s).await;
}

#[tokio::test]
async fn a_panic_is_a_502_with_details_in_the_owners_log() {
    let s = TestServer::start().await;
    s.deploy("hello", "hello", "public").await;
    s.deploy("panic", "panic", "public").await;
    let msg = assert_error(
        s.get("/x/alice/panic/", None).await,
        StatusCode::BAD_GATEWAY,
        "val_crashed",
    )
    .await;
    assert!(
        !msg.contains("on purpose"),
        "crash details are for the owner's log only"
    );
    let log = log_with_status(&s, "panic", 502).await;
    assert!(
        log["attributes"]["stderr"]
            .as_str()
            .unwrap()
            .contains("this val panics on purpose")
    );
    assert!(log["body"].as_str().unwrap().contains("crashed"));
    still_healthy(&s).await;
}

#[tokio::test]
async fn oversized_bodies_are_refused_both_ways() {
    let s = TestServer::start_with(|l| {
        l.response_body_bytes = 1000;
        l.request_body_bytes = 1000;
    })
    .await;
    s.deploy("hello", "hello", "public").await;
    s.deploy("inspect", "inspect", "public").await;
    assert_eq!(
        s.get("/x/alice/inspect/bytes/1000", None)
            .await
            .bytes()
            .await
            .unwrap()
            .len(),
        1000
    );
    assert_error(
        s.get("/x/alice/inspect/bytes/1001", None).await,
        StatusCode::BAD_GATEWAY,
        "response_too_large",
    )
    .await;
    log_with_status(&s, "inspect", 502).await;

    let resp = s
        .req(Method::POST, "/x/alice/inspect/", None)
        .body(vec![b'x'; 1001])
        .send()
        .await
        .unwrap();
    assert_error(resp, StatusCode::PAYLOAD_TOO_LARGE, "too_large").await;
    // At the limit it passes (to a path that answers briefly).
    let resp = s
        .req(Method::POST, "/x/alice/inspect/status/200", None)
        .body(vec![b'x'; 1000])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);

    // A script val's result and the Run API's body have the same limits.
    s.deploy("echo", "echo", "public").await;
    let big = "x".repeat(1500);
    assert_error(
        s.get(&format!("/v1/run/alice.echo?args=[%22{big}%22]"), None)
            .await,
        StatusCode::BAD_GATEWAY,
        "response_too_large",
    )
    .await;
    let resp = s
        .req(Method::POST, "/v1/run/alice.echo", None)
        .json(&serde_json::json!({ "args": [big] }))
        .send()
        .await
        .unwrap();
    assert_error(resp, StatusCode::PAYLOAD_TOO_LARGE, "too_large").await;
    still_healthy(&s).await;
}

#[tokio::test]
async fn captured_output_is_bounded() {
    let s = TestServer::start_with(|l| l.log_bytes = 100).await;
    s.deploy("inspect", "inspect", "public").await;
    assert_eq!(
        s.get("/x/alice/inspect/print/5000", None)
            .await
            .text()
            .await
            .unwrap(),
        "printed 5000"
    );
    let log = log_with_status(&s, "inspect", 200).await;
    let stdout = log["attributes"]["stdout"].as_str().unwrap();
    assert!(stdout.starts_with("xxxx"));
    assert!(
        stdout.contains("[output cut: a call keeps 100 bytes of stdout and stderr together;"),
        "{stdout}"
    );
    assert!(stdout.len() < 200);
}

#[tokio::test]
async fn one_owner_cannot_run_more_than_its_share_at_once() {
    let s = TestServer::start_with(|l| {
        l.concurrent_calls_per_owner = 1;
        l.fuel = u64::MAX / 2;
        l.timeout = Duration::from_millis(1500);
    })
    .await;
    s.deploy("spin", "spin", "public").await;
    s.deploy("hello", "hello", "public").await;
    let bob = s.create_user("bob").await;
    let resp = s
        .deploy_bytes(&bob, "hello", "public", support::val_bytes("hello"))
        .await;
    assert_eq!(resp.status(), 201);

    let slow = s.get("/x/alice/spin/", None);
    let (slow, busy) = tokio::join!(slow, async {
        // Once the slow call runs wasm, it holds alice's one slot (a probe
        // sent before it arrived could take the slot first), and her next
        // call is refused.
        for _ in 0..500 {
            if s.app().runtime.guests_running() > 0 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let started = std::time::Instant::now();
        let busy = loop {
            let resp = s.get("/x/alice/hello/", None).await;
            if resp.status() != StatusCode::OK || started.elapsed() > Duration::from_secs(1) {
                break resp;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        // Another owner's vals are unaffected.
        let other = s.get("/x/bob/hello/", None).await;
        assert_eq!(other.status(), 200);
        busy
    });
    assert_error(busy, StatusCode::TOO_MANY_REQUESTS, "too_many_calls").await;
    assert_eq!(slow.status(), StatusCode::GATEWAY_TIMEOUT);
    still_healthy(&s).await;
}

#[tokio::test]
async fn components_beyond_the_instance_and_table_limits_are_refused_at_upload() {
    type Tune = fn(&mut valbox_model::Limits);
    let cases: [(Tune, &str); 3] = [
        (|l| l.instances = 2, "core module instances"),
        (|l| l.tables = 1, "tables"),
        (|l| l.table_elements = 10, "exceeds the limit of 10"),
    ];
    for (tune, named) in cases {
        let s = TestServer::start_with(tune).await;
        let resp = s
            .deploy_bytes(
                &s.alice.clone(),
                "hello",
                "public",
                support::val_bytes("hello"),
            )
            .await;
        let msg = assert_error(resp, StatusCode::BAD_REQUEST, "invalid_component").await;
        assert!(msg.contains(named), "{msg}");
    }
}

#[tokio::test]
async fn a_caller_hanging_up_stops_the_call_and_is_logged() {
    let s = TestServer::start_with(|l| {
        l.fuel = u64::MAX / 2;
        l.timeout = Duration::from_secs(5);
    })
    .await;
    s.deploy("spin", "spin", "public").await;
    let impatient = reqwest::Client::builder()
        .timeout(Duration::from_millis(300))
        .build()
        .unwrap();
    let started = std::time::Instant::now();
    let gone = impatient
        .get(format!("{}/x/alice/spin/", s.base))
        .send()
        .await;
    assert!(gone.is_err(), "the client should have given up");
    let log = log_with_status(&s, "spin", 499).await;
    assert!(log["body"].as_str().unwrap().contains("hung up"), "{log}");
    // Stopped with the request, well before the 5 s deadline.
    assert!(started.elapsed() < Duration::from_secs(4));
}

#[tokio::test]
async fn loaded_components_stay_within_their_budget_and_idle_ones_are_dropped() {
    // A budget of one byte keeps one component at a time (the last one
    // called); an idle time of 300 ms drops that one soon after.
    let s = TestServer::start_with(|l| {
        l.loaded_bytes = 1;
        l.loaded_idle = Duration::from_millis(300);
    })
    .await;
    s.deploy("hello", "hello", "public").await;
    s.deploy("counter", "counter", "public").await;
    // Deploying loads nothing: the first call maps the compiled artifact.
    assert_eq!(s.app().runtime.loaded(), (0, 0));
    for _ in 0..3 {
        still_healthy(&s).await;
        let resp = s.get("/x/alice/counter/", None).await;
        assert_eq!(resp.status(), StatusCode::OK);
        let (count, bytes) = s.app().runtime.loaded();
        assert_eq!(count, 1, "only the last val called stays loaded");
        assert!(bytes > 0);
    }
    let idle_since = std::time::Instant::now();
    while s.app().runtime.loaded().0 > 0 {
        assert!(
            idle_since.elapsed() < Duration::from_secs(10),
            "the idle component was never dropped"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(idle_since.elapsed() >= Duration::from_millis(250));
    // Dropped is not gone: the next call loads it again.
    still_healthy(&s).await;
    assert_eq!(s.app().runtime.loaded().0, 1);
}
