//! Cron vals: run on their schedule as calls with trigger `cron`, never two
//! runs of one val at once, one run for the ticks missed while the server
//! was down, paused (and the owner mailed) after five failures in a row,
//! and schedules checked when set.

mod support;

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use support::{TestServer, assert_error};

/// A server that allows one-second schedules.
async fn server() -> TestServer {
    TestServer::start_configured(|c| c.min_schedule = Duration::from_secs(1)).await
}

async fn schedule(s: &TestServer, val_id: &str, body: Value) -> reqwest::Response {
    s.req(Method::PATCH, &format!("/v2/vals/{val_id}"), Some(&s.alice))
        .json(&body)
        .send()
        .await
        .unwrap()
}

async fn blob_number(s: &TestServer, key: &str) -> u64 {
    let resp = s.get(&format!("/v1/blob/{key}"), Some(&s.alice)).await;
    if resp.status() == StatusCode::NOT_FOUND {
        return 0;
    }
    resp.text().await.unwrap().trim().parse().unwrap()
}

#[tokio::test]
async fn a_cron_val_runs_on_its_schedule_and_once_for_ticks_missed() {
    let s = server().await;
    let deployed = s.deploy("tick", "tick", "private").await;
    let id = deployed["valId"].as_str().unwrap().to_owned();
    let resp = schedule(&s, &id, json!({ "schedule": "every 1s" })).await;
    assert_eq!(resp.status(), StatusCode::OK);
    let val: Value = resp.json().await.unwrap();
    assert_eq!(val["schedule"]["expression"], "every 1s");
    assert!(val["schedule"]["nextRunAt"].is_string(), "{val}");

    tokio::time::sleep(Duration::from_millis(3_600)).await;
    let ticks = blob_number(&s, "ticks").await;
    assert!((2..=4).contains(&ticks), "{ticks} runs in 3.6 s");
    let logs = s
        .wait_for_logs(&s.alice, &format!("val_id={id}"), |d| !d.is_empty())
        .await;
    let trigger = &logs[0]["attributes"]["trigger"];
    assert_eq!(trigger, "cron", "{}", logs[0]);
    let val: Value = s
        .get(&format!("/v2/vals/{id}"), Some(&s.alice))
        .await
        .json()
        .await
        .unwrap();
    assert!(val["schedule"]["lastRunAt"].is_string(), "{val}");

    // Down for five ticks: one run when it is back, not five.
    let s = s.restart_after(Duration::from_secs(5)).await;
    let before = blob_number(&s, "ticks").await;
    tokio::time::sleep(Duration::from_millis(600)).await;
    let after = blob_number(&s, "ticks").await;
    assert!(
        after - before <= 2,
        "{} runs just after the restart",
        after - before
    );

    // Off: no more runs.
    let resp = schedule(&s, &id, json!({ "schedule": "off" })).await;
    assert_eq!(resp.status(), StatusCode::OK);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let stopped = blob_number(&s, "ticks").await;
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    assert_eq!(blob_number(&s, "ticks").await, stopped);
}

#[tokio::test]
async fn a_run_longer_than_the_interval_is_never_run_twice_at_once() {
    let s = server().await;
    let deployed = s.deploy("slow-tick", "slow-tick", "private").await;
    let id = deployed["valId"].as_str().unwrap().to_owned();
    let resp = schedule(&s, &id, json!({ "schedule": "every 1s" })).await;
    assert_eq!(resp.status(), StatusCode::OK);
    // Runs of 2.5 s on a 1 s schedule, for 7 s: at most three, in turn.
    tokio::time::sleep(Duration::from_secs(7)).await;
    let started = blob_number(&s, "started").await;
    assert!((2..=3).contains(&started), "{started} runs started");
    let overlapped = s.get("/v1/blob/overlapped", Some(&s.alice)).await;
    assert_eq!(
        overlapped.status(),
        StatusCode::NOT_FOUND,
        "two runs at once"
    );
    // The runs it skipped are in its log.
    let skipped = |r: &Value| r["attributes"]["http.status"] == 409;
    let logs = s
        .wait_for_logs(&s.alice, &format!("val_id={id}&limit=50"), |d| {
            d.iter().any(skipped)
        })
        .await;
    let skip = logs.iter().find(|r| skipped(r)).unwrap();
    assert!(skip["body"].as_str().unwrap().contains("skipped"), "{skip}");
}

#[tokio::test]
async fn five_failures_in_a_row_pause_the_schedule_and_mail_the_owner() {
    let s = server().await;
    let deployed = s.deploy("tick", "tick", "private").await;
    let id = deployed["valId"].as_str().unwrap().to_owned();
    // Without its blob scopes every run fails.
    assert_eq!(
        s.patch_val(&id, &json!({ "scopes": [] })).await.status(),
        200
    );
    let resp = schedule(&s, &id, json!({ "schedule": "every 1s" })).await;
    assert_eq!(resp.status(), StatusCode::OK);
    let mut val = Value::Null;
    for _ in 0..100 {
        val = s
            .get(&format!("/v2/vals/{id}"), Some(&s.alice))
            .await
            .json()
            .await
            .unwrap();
        if val["schedule"]["paused"] == true {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(val["schedule"]["paused"], true, "{val}");
    assert!(
        val["schedule"]["nextRunAt"].is_null(),
        "paused: no next run: {val}"
    );
    assert_eq!(val["schedule"]["failures"], 5);
    let outbox: Value = s
        .get("/v1/email", Some(&s.alice))
        .await
        .json()
        .await
        .unwrap();
    let subjects: Vec<&str> = (outbox["data"].as_array().unwrap().iter())
        .filter_map(|m| m["subject"].as_str())
        .collect();
    assert!(
        subjects.iter().any(|s| s.contains("tick is paused")),
        "{subjects:?}"
    );
    // Paused, it does not run; unpaused with its scopes back, it does.
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    let logs: Value = s
        .get(
            &format!("/v1/telemetry/logs?val_id={id}&limit=50"),
            Some(&s.alice),
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(logs["data"].as_array().unwrap().len(), 5);
    let scopes = json!({ "scopes": ["blob:read", "blob:write"], "paused": false });
    let resp = schedule(&s, &id, scopes).await;
    assert_eq!(resp.status(), StatusCode::OK);
    tokio::time::sleep(Duration::from_millis(2_500)).await;
    assert!(blob_number(&s, "ticks").await >= 1);
}

#[tokio::test]
async fn schedules_are_checked_when_set() {
    let s = server().await;
    let tick = s.deploy("tick", "tick", "private").await;
    let tick = tick["valId"].as_str().unwrap().to_owned();
    for (body, code) in [
        (json!({ "schedule": "every 0m" }), "invalid_schedule"),
        (json!({ "schedule": "* * * * * *" }), "invalid_schedule"),
        (
            json!({ "schedule": "TZ=Mars/Base 0 9 * * *" }),
            "invalid_schedule",
        ),
        (json!({ "schedule": "61 * * * *" }), "invalid_schedule"),
        (
            json!({ "schedule": "x".repeat(10_000) }),
            "invalid_schedule",
        ),
        (json!({ "schedule": "" }), "invalid_schedule"),
        (json!({ "paused": true }), "invalid_paused"),
    ] {
        let message = assert_error(
            schedule(&s, &tick, body.clone()).await,
            StatusCode::BAD_REQUEST,
            code,
        )
        .await;
        assert!(!message.is_empty(), "{body}");
    }
    // Only a cron val takes one.
    let hello = s.deploy("hello", "hello", "public").await;
    let hello = hello["valId"].as_str().unwrap().to_owned();
    let refused = schedule(&s, &hello, json!({ "schedule": "every 5m" })).await;
    let message = assert_error(refused, StatusCode::BAD_REQUEST, "not_a_cron_val").await;
    assert!(message.contains("http"), "{message}");
    // A refused PATCH changes nothing else.
    let both = json!({ "privacy": "public", "schedule": "every 0s" });
    assert_eq!(
        schedule(&s, &tick, both).await.status(),
        StatusCode::BAD_REQUEST
    );
    let val: Value = s
        .get(&format!("/v2/vals/{tick}"), Some(&s.alice))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(val["privacy"], "private");
    // A server's minimum and its count per owner hold.
    let strict = TestServer::start_configured(|c| c.schedules_per_owner = 1).await;
    let tick = strict.deploy("tick", "tick", "private").await;
    let tick = tick["valId"].as_str().unwrap().to_owned();
    let refused = schedule(&strict, &tick, json!({ "schedule": "every 10s" })).await;
    assert_error(refused, StatusCode::BAD_REQUEST, "schedule_too_frequent").await;
    let ok = schedule(
        &strict,
        &tick,
        json!({ "schedule": "TZ=Europe/Paris 0 9 * * 1-5" }),
    )
    .await;
    assert_eq!(ok.status(), StatusCode::OK);
    let val: Value = ok.json().await.unwrap();
    assert_eq!(val["schedule"]["expression"], "TZ=Europe/Paris 0 9 * * 1-5");
    let other = strict.deploy("tock", "tick", "private").await;
    let other = other["valId"].as_str().unwrap().to_owned();
    let refused = schedule(&strict, &other, json!({ "schedule": "every 5m" })).await;
    assert_error(refused, StatusCode::CONFLICT, "too_many_schedules").await;
    // Another user cannot set it.
    let bob = strict.create_user("bob").await;
    let theirs = strict
        .req(Method::PATCH, &format!("/v2/vals/{tick}"), Some(&bob))
        .json(&json!({ "schedule": "every 5m" }))
        .send()
        .await
        .unwrap();
    assert!(theirs.status() == StatusCode::NOT_FOUND || theirs.status() == StatusCode::FORBIDDEN);
}

/// The JavaScript and Python helpers make cron vals too.
#[tokio::test]
async fn cron_vals_in_javascript_and_python_run_on_their_schedule() {
    let s = server().await;
    for (example, key) in [("js-tick", "js-ticks"), ("py-tick", "py-ticks")] {
        let deployed = s.deploy(example, example, "private").await;
        let id = deployed["valId"].as_str().unwrap().to_owned();
        let resp = schedule(&s, &id, json!({ "schedule": "every 1s" })).await;
        assert_eq!(resp.status(), StatusCode::OK, "{example}");
        let mut ticks = 0;
        for _ in 0..100 {
            ticks = blob_number(&s, key).await;
            if ticks >= 2 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert!(ticks >= 2, "{example} ran {ticks} times");
    }
}
