//! Noisy neighbours: an owner's own calls keep a share of the owner's call
//! slots whoever else calls their vals, a short call runs while CPU-bound
//! calls outnumber the guests that may run at once, a call waiting in a
//! host call holds no slot, and every call reports the CPU time it used.

mod support;

use std::time::Duration;

use reqwest::{Response, StatusCode};
use support::{TestServer, assert_error};

/// Start `n` anonymous calls of `path` in the background; their responses
/// arrive on the returned channel as they end.
fn call_in_background(
    s: &TestServer,
    path: &str,
    n: usize,
) -> (
    tokio::sync::mpsc::UnboundedReceiver<Response>,
    Vec<tokio::task::JoinHandle<()>>,
) {
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    let tasks = (0..n)
        .map(|_| {
            let request = s.http.get(format!("{}{path}", s.base));
            let tx = tx.clone();
            tokio::spawn(async move {
                let _ = tx.send(request.send().await.unwrap());
            })
        })
        .collect();
    (rx, tasks)
}

#[tokio::test]
async fn the_owners_own_calls_keep_a_share_of_the_owners_slots() {
    let s = TestServer::start_with(|l| {
        l.concurrent_calls_per_owner = 4;
        l.fuel = u64::MAX / 2;
        l.timeout = Duration::from_secs(3);
    })
    .await;
    s.deploy("spin", "spin", "public").await;
    s.deploy("hello", "hello", "public").await;
    let bob = s.create_user("bob").await;

    // Anonymous callers try to take all four of alice's slots: one of the
    // four slots is kept for alice, so the fourth call is refused at once.
    let (mut ended, _spins) = call_in_background(&s, "/x/alice/spin/", 4);
    let refused = ended.recv().await.unwrap();
    let msg = assert_error(refused, StatusCode::TOO_MANY_REQUESTS, "too_many_calls").await;
    assert!(msg.contains("other callers"), "{msg}");

    // With the open share full, alice's own call still runs...
    let own = s.get("/x/alice/hello/", Some(&s.alice)).await;
    assert_eq!(own.text().await.unwrap(), "Hello, world!");
    // ...and other users are refused like anonymous callers.
    assert_error(
        s.get("/x/alice/hello/", Some(&bob)).await,
        StatusCode::TOO_MANY_REQUESTS,
        "too_many_calls",
    )
    .await;

    // The three that ran end at their deadline, as without the share.
    for _ in 0..3 {
        assert_eq!(
            ended.recv().await.unwrap().status(),
            StatusCode::GATEWAY_TIMEOUT
        );
    }
}

#[tokio::test]
async fn a_short_call_runs_while_cpu_bound_calls_fill_every_guest_slot() {
    let s = TestServer::start_with(|l| {
        l.running_guests = 1;
        l.fuel = u64::MAX / 2;
        l.timeout = Duration::from_secs(30);
    })
    .await;
    s.deploy("hello", "hello", "public").await;
    s.deploy("echo", "echo", "public").await;
    let bob = s.create_user("bob").await;
    let resp = s
        .deploy_bytes(&bob, "spin", "public", support::val_bytes("spin"))
        .await;
    assert_eq!(resp.status(), StatusCode::CREATED);

    let (_, spins) = call_in_background(&s, "/x/bob/spin/", 3);
    let runtime = &s.app().runtime;
    wait_until(|| runtime.guests_running() == 1).await;

    // One spin runs wasm and two wait for the one slot; hello overtakes
    // them and answers while all three are still in flight.
    let hello = s.get("/x/alice/hello/", None).await;
    assert_eq!(hello.status(), StatusCode::OK);
    assert!(cpu_timing(&hello) >= 0.0);
    assert_eq!(hello.text().await.unwrap(), "Hello, world!");
    let run = s.get("/v1/run/alice.echo?args=[1]", None).await;
    assert_eq!(run.status(), StatusCode::OK);
    assert!(cpu_timing(&run) >= 0.0);
    assert!(
        spins.iter().all(|t| !t.is_finished()),
        "the CPU-bound calls ended too soon to show anything"
    );

    // Their callers hang up: every slot comes back.
    for spin in &spins {
        spin.abort();
    }
    wait_until(|| runtime.guests_running() == 0).await;
    assert_eq!(
        s.get("/x/alice/hello/", None).await.status(),
        StatusCode::OK
    );

    // The owner's log has each call's CPU time.
    let logs = s
        .wait_for_logs(&s.alice, "", |d| {
            d.iter().any(|r| r["attributes"]["val.name"] == "hello")
        })
        .await;
    let record = logs
        .iter()
        .find(|r| r["attributes"]["val.name"] == "hello")
        .unwrap();
    assert!(
        record["attributes"]["cpu_ms"].as_f64().unwrap() > 0.0,
        "{record}"
    );
}

#[tokio::test]
async fn a_call_sleeping_in_a_host_call_holds_no_slot() {
    let s = TestServer::start_with(|l| {
        l.running_guests = 1;
        l.timeout = Duration::from_secs(30);
    })
    .await;
    s.deploy("hello", "hello", "public").await;
    s.deploy("inspect", "inspect", "public").await;
    let me: serde_json::Value = s.get("/v1/me", Some(&s.alice)).await.json().await.unwrap();
    let alice = me["id"].as_str().unwrap().to_string();

    // Two calls sleep in the guest (a host call); with one slot between
    // them, a call that kept its slot while it waited would stop both the
    // other and hello.
    let (_, sleepers) = call_in_background(&s, "/x/alice/inspect/env-twice/X?wait_ms=5000", 2);
    let app = s.app();
    wait_until(|| {
        app.auth.call_tokens.for_owner(&alice).len() == 2 && app.runtime.guests_running() == 0
    })
    .await;
    let hello = s.get("/x/alice/hello/", None).await;
    assert_eq!(hello.text().await.unwrap(), "Hello, world!");
    assert!(sleepers.iter().all(|t| !t.is_finished()));
}

/// The `cpu` duration of a response's `Server-Timing` header, in ms.
fn cpu_timing(resp: &Response) -> f64 {
    let header = resp.headers()["server-timing"].to_str().unwrap();
    let ms = header
        .strip_prefix("cpu;dur=")
        .unwrap_or_else(|| panic!("{header}"));
    ms.parse().unwrap()
}

/// Poll `cond` until it holds, or panic after a generous while.
async fn wait_until(cond: impl Fn() -> bool) {
    for _ in 0..500 {
        if cond() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("the condition never held");
}
