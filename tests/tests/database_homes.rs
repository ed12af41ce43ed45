//! Users' SQLite databases on three nodes when their home node fails: the
//! home killed under writers is replaced from its replica in the object
//! store, a home that comes back serves nothing stale, a stalled home
//! never acknowledges past its lease, a stopping home hands its databases
//! over, and the guestbook example goes on through the load balancer.
//! And a cron val on the same three nodes runs each tick once.

mod support;

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use support::Api;
use support::balanced::{Balanced, LEASE};

/// The nodes' replication interval (the default).
const INTERVAL: Duration = Duration::from_secs(1);
/// The most a take-over may take in a test: the lease, the restore, and
/// room for a busy machine.
const TAKEN_OVER_WITHIN: Duration = Duration::from_secs(3 + 12);

async fn execute(api: &Api, statement: Value) -> (StatusCode, Value) {
    let resp = api
        .req(Method::POST, "/v1/sqlite/execute", Some(&api.alice))
        .json(&json!({ "statement": statement }))
        .send()
        .await;
    match resp {
        Ok(resp) => {
            let status = resp.status();
            (status, resp.json().await.unwrap_or(Value::Null))
        }
        Err(e) => (StatusCode::BAD_GATEWAY, json!(e.to_string())),
    }
}

async fn alice_id(api: &Api) -> String {
    let me: Value = api
        .get("/v1/me", Some(&api.alice))
        .await
        .json()
        .await
        .unwrap();
    me["id"].as_str().unwrap().to_owned()
}

/// Alice's table `t` made through node 1 (its home, then); her id.
async fn table_at_node_1(c: &Balanced) -> String {
    let made = execute(
        &c.nodes[0],
        json!("CREATE TABLE t (id INTEGER PRIMARY KEY)"),
    )
    .await;
    assert_eq!(made.0, StatusCode::OK, "{}", made.1);
    alice_id(&c.nodes[0]).await
}

/// The ids in alice's table `t`, read through `api`.
async fn ids(api: &Api) -> BTreeSet<i64> {
    let (status, rows) = execute(api, json!("SELECT id FROM t")).await;
    assert_eq!(status, StatusCode::OK, "{rows}");
    rows["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r[0].as_i64().unwrap())
        .collect()
}

/// Writes each with an id of its own, and when each was acknowledged.
#[derive(Default)]
struct Writes {
    acked: Vec<(i64, Instant)>,
    failed: usize,
}

/// Two writers per node in `through` inserting ids until `stop`.
async fn write_until(c: &Balanced, through: &[usize], stop: Instant) -> Writes {
    let writes = Arc::new(Mutex::new(Writes::default()));
    let next = Arc::new(std::sync::atomic::AtomicI64::new(1));
    let writers = through.iter().flat_map(|&i| [i, i]).map(|i| {
        let (writes, next, api) = (writes.clone(), next.clone(), &c.nodes[i].api);
        async move {
            while Instant::now() < stop {
                let id = next.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                let insert = json!({ "sql": "INSERT INTO t (id) VALUES (?)", "args": [id] });
                let (status, _) = execute(api, insert).await;
                let acked = status == StatusCode::OK;
                {
                    let mut writes = writes.lock().unwrap();
                    match acked {
                        true => writes.acked.push((id, Instant::now())),
                        false => writes.failed += 1,
                    }
                }
                if !acked {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
        }
    });
    futures_util::future::join_all(writers).await;
    Arc::try_unwrap(writes).ok().unwrap().into_inner().unwrap()
}

/// kill -9 the home under writers: the database is served again within
/// the lease and a restore, everything acknowledged more than one
/// replication interval before the kill is there, and the new home's
/// writes all are. Then the old home comes back on its own disk: it serves
/// nothing of its stale file, and when it is home again it restores the
/// newest replica rather than trusting its own.
#[tokio::test(flavor = "multi_thread")]
async fn a_killed_home_is_replaced_from_its_replica_and_the_old_one_serves_nothing_stale() {
    let c = Balanced::start().await;
    let alice = table_at_node_1(&c).await;
    assert_eq!(c.home_of(&alice).await, Some((0, 1)));

    // Writers through nodes 2 and 3; node 1, the home, dies 3 s in.
    let start = Instant::now();
    let stop = start + Duration::from_secs(3) + TAKEN_OVER_WITHIN;
    let kill_at = start + Duration::from_secs(3);
    let (writes, ()) = tokio::join!(write_until(&c, &[1, 2], stop), async {
        tokio::time::sleep_until(kill_at.into()).await;
        c.kill(0);
    });
    let killed = Instant::now().min(kill_at + Duration::from_millis(100));
    let back = writes
        .acked
        .iter()
        .map(|(_, at)| *at)
        .find(|at| *at > killed);
    let back = back.expect("the database was never served again after its home died");
    eprintln!(
        "{} writes acknowledged, {} failed; served again {:?} after the kill",
        writes.acked.len(),
        writes.failed,
        back - killed
    );
    assert!(
        back - killed < TAKEN_OVER_WITHIN,
        "took {:?}",
        back - killed
    );
    let (home, fencing) = c.home_of(&alice).await.unwrap();
    assert!(home != 0 && fencing == 2, "home {home}, fencing {fencing}");

    // Everything acknowledged before the last interval, and everything the
    // new home acknowledged, is there.
    let there = ids(&c.nodes[1]).await;
    let synced = killed - INTERVAL;
    let missing: Vec<i64> = (writes.acked.iter())
        .filter(|(id, at)| (*at < synced || *at > killed) && !there.contains(id))
        .map(|(id, _)| *id)
        .collect();
    assert!(missing.is_empty(), "acknowledged and lost: {missing:?}");
    let window = (writes.acked.iter())
        .filter(|(id, at)| *at >= synced && *at <= killed && !there.contains(id))
        .count();
    eprintln!("acknowledged in the last interval before the kill and lost: {window}");

    // The old home back on its disk: it forwards to the new home, and what
    // it reads is the new home's.
    c.restart(0).await;
    let late = json!({ "sql": "INSERT INTO t (id) VALUES (?)", "args": [1_000_000] });
    assert_eq!(execute(&c.nodes[0], late).await.0, StatusCode::OK);
    let seen = ids(&c.nodes[0]).await;
    assert!(seen.contains(&1_000_000) && seen.is_superset(&there));
    assert_eq!(c.home_of(&alice).await, Some((home, 2)));

    // The new home killed too, with only node 1 asking: node 1 becomes home
    // again, and restores the new home's replica over its own old file.
    tokio::time::sleep(INTERVAL * 2).await;
    c.kill(home);
    let asked = Instant::now();
    let seen = loop {
        let (status, rows) = execute(&c.nodes[0], json!("SELECT id FROM t")).await;
        if status == StatusCode::OK {
            break rows["rows"].as_array().unwrap().len();
        }
        assert!(asked.elapsed() < TAKEN_OVER_WITHIN, "{status}: {rows}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(seen, there.len() + 1);
    assert_eq!(c.home_of(&alice).await, Some((0, 3)));
}

/// A home frozen past its lease (SIGSTOP) while it runs a write: another
/// node takes the database over, and the frozen node, thawed, never
/// acknowledges that write; what it reads afterwards is the new home's.
#[tokio::test(flavor = "multi_thread")]
async fn a_stalled_home_never_acknowledges_past_its_lease() {
    let c = Balanced::start().await;
    let alice = table_at_node_1(&c).await;
    let first = json!({ "sql": "INSERT INTO t (id) VALUES (1)" });
    assert_eq!(execute(&c.nodes[0], first).await.0, StatusCode::OK);
    tokio::time::sleep(INTERVAL * 2).await;

    // A write that takes a while, on the home, frozen half-way.
    let slow = json!({
        "sql": "INSERT INTO t (id) SELECT 2 FROM (WITH RECURSIVE c(x) AS \
                (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 3000000) SELECT max(x) FROM c)"
    });
    let stalled = tokio::spawn({
        let api = Api::new(c.nodes[0].base.clone(), c.alice.clone());
        async move { execute(&api, slow).await }
    });
    tokio::time::sleep(Duration::from_millis(150)).await;
    c.pause(0);
    // Node 2 takes the database over once the lease has run out, and
    // writes.
    let asked = Instant::now();
    loop {
        let next = json!({ "sql": "INSERT INTO t (id) VALUES (3)" });
        let (status, body) = execute(&c.nodes[1], next).await;
        if status == StatusCode::OK {
            break;
        }
        assert!(asked.elapsed() < TAKEN_OVER_WITHIN, "{status}: {body}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(c.home_of(&alice).await, Some((1, 2)));
    c.resume(0);
    let (status, body) = stalled.await.unwrap();
    assert_ne!(
        status,
        StatusCode::OK,
        "acknowledged past its lease: {body}"
    );
    // Node 1 reads the new home's database, without the stalled write.
    assert_eq!(ids(&c.nodes[0]).await, BTreeSet::from([1, 3]));
}

/// A home stopped with SIGTERM syncs its databases and hands them over:
/// the next node serves them at once, with every write.
#[tokio::test(flavor = "multi_thread")]
async fn a_stopping_home_hands_its_databases_over() {
    let c = Balanced::start().await;
    let alice = table_at_node_1(&c).await;
    for id in 1..=20 {
        let insert = json!({ "sql": "INSERT INTO t (id) VALUES (?)", "args": [id] });
        assert_eq!(execute(&c.nodes[0], insert).await.0, StatusCode::OK);
    }
    c.terminate(0);
    let stopped = Instant::now();
    assert_eq!(ids(&c.nodes[2]).await, (1..=20).collect());
    // Handed over, not waited out.
    assert!(stopped.elapsed() < LEASE, "took {:?}", stopped.elapsed());
    assert_eq!(c.home_of(&alice).await, Some((2, 2)));
}

/// The guestbook example through the load balancer while its home node
/// is killed and replaced: signing goes on, and every entry acknowledged
/// before the last replication interval is on the page afterwards.
#[tokio::test(flavor = "multi_thread")]
async fn the_guestbook_goes_on_while_its_home_is_replaced() {
    let c = Balanced::start().await;
    let alice = alice_id(&c.nodes[0]).await;
    c.nodes[0].deploy("guestbook", "guestbook", "public").await;
    // Signing answers 303 to the page, which the client follows.
    let sign = |n: usize| {
        c.req(Method::POST, "/x/alice/guestbook/", None)
            .body(format!("name=guest&message=entry-{n}"))
            .send()
    };
    let mut acked = Vec::new();
    for n in 0..5 {
        let resp = sign(n).await.unwrap();
        assert_eq!(resp.status(), StatusCode::OK);
        acked.push((n, Instant::now()));
    }
    let (home, _) = c.home_of(&alice).await.unwrap();
    tokio::time::sleep(INTERVAL * 2).await;
    c.kill(home);
    let killed = Instant::now();
    let mut n = 5;
    while Instant::now() < killed + TAKEN_OVER_WITHIN && acked.last().unwrap().1 < killed {
        if let Ok(resp) = sign(n).await
            && resp.status() == StatusCode::OK
        {
            acked.push((n, Instant::now()));
        }
        n += 1;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(acked.last().unwrap().1 > killed, "never signed again");
    let page = c
        .get("/x/alice/guestbook/", None)
        .await
        .text()
        .await
        .unwrap();
    for (n, _) in &acked {
        assert!(
            page.contains(&format!("entry-{n}<")),
            "entry-{n} lost: {page}"
        );
    }
    let (new_home, fencing) = c.home_of(&alice).await.unwrap();
    assert!(new_home != home && fencing == 2);
}

/// Without replicas (`--replication-interval-ms 0`) a dead home's
/// database waits for it: no other node serves it, empty or stale, and
/// their failed attempts to take it do not stop the home, back on its own
/// disk, from serving it again with every write.
#[tokio::test(flavor = "multi_thread")]
async fn without_replicas_a_dead_homes_database_waits_for_it() {
    let c = Balanced::start_with(LEASE, &["--replication-interval-ms", "0"]).await;
    let alice = table_at_node_1(&c).await;
    for id in 1..=5 {
        let insert = json!({ "sql": "INSERT INTO t (id) VALUES (?)", "args": [id] });
        assert_eq!(execute(&c.nodes[1], insert).await.0, StatusCode::OK);
    }
    c.kill(0);
    // Past the lease, the others try and refuse, each time.
    tokio::time::sleep(LEASE + Duration::from_secs(1)).await;
    for i in [1, 2, 1, 2] {
        let (status, body) = execute(&c.nodes[i], json!("SELECT id FROM t")).await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "node {i}: {body}");
    }
    // Back, it takes its databases again by itself.
    c.restart(0).await;
    let back = Instant::now();
    while c.home_of(&alice).await.unwrap().0 != 0 {
        assert!(back.elapsed() < Duration::from_secs(5), "never taken back");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(ids(&c.nodes[1]).await, (1..=5).collect());
}

/// A cron val on three nodes: each due run is claimed by one node, so a
/// one-second schedule counts about one tick a second, not three, and
/// every tick is one call in the log.
#[tokio::test(flavor = "multi_thread")]
async fn a_cron_val_on_three_nodes_runs_each_tick_once() {
    let c = Balanced::start_with(LEASE, &["--min-schedule-secs", "1"]).await;
    let tick = c.nodes[0].deploy("tick", "tick", "private").await;
    let id = tick["valId"].as_str().unwrap().to_owned();
    let set = c.nodes[1]
        .patch_val(&id, &json!({ "schedule": "every 1s" }))
        .await;
    assert_eq!(set.status(), StatusCode::OK);
    tokio::time::sleep(Duration::from_millis(5_500)).await;
    let ticks: u64 = c
        .get("/v1/blob/ticks", Some(&c.alice))
        .await
        .text()
        .await
        .unwrap()
        .parse()
        .unwrap();
    assert!((4..=6).contains(&ticks), "{ticks} ticks in 5.5 s");
    let logs: Value = c
        .get(
            &format!("/v1/telemetry/logs?val_id={id}&limit=50"),
            Some(&c.alice),
        )
        .await
        .json()
        .await
        .unwrap();
    let runs = logs["data"].as_array().unwrap().len() as u64;
    // A run's log record is written just after the run.
    assert!(
        runs.abs_diff(ticks) <= 1,
        "{runs} runs logged, {ticks} ticks"
    );
}
