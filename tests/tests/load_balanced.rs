//! Three nodes as processes of their own, on PostgreSQL and S3, behind
//! HAProxy with `deploy/haproxy.cfg`: any node serves any call, a change
//! made on one holds on the others, and neither a node killed with SIGKILL
//! nor PostgreSQL restarted under load loses what was acknowledged.

mod support;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use support::balanced::{Balanced, TAKEN_OUT_WITHIN};

#[tokio::test(flavor = "multi_thread")]
async fn three_nodes_behind_a_load_balancer_act_as_one() {
    let c = Balanced::start().await;

    // Deployed on node 1, served by the others and through the balancer.
    let hello = c.nodes[0].deploy("hello", "hello", "public").await;
    let others = c.nodes[1..].iter().map(|n| &n.api);
    for node in others.chain(std::iter::repeat_n(&c.lb, 3)) {
        let resp = node.get("/x/alice/hello/?name=cluster", None).await;
        assert_eq!(resp.status(), StatusCode::OK, "from {}", node.base);
        assert_eq!(resp.text().await.unwrap(), "Hello, cluster!");
    }

    // A token revoked on node 1 is refused by the others within a second.
    let (id, token) = c.nodes[0].token_with(&c.alice, &["val:read"]).await;
    for node in &c.nodes {
        let resp = node.get("/v2/me/vals", Some(&token)).await;
        assert_eq!(resp.status(), StatusCode::OK);
    }
    let revoked = c.nodes[0]
        .req(Method::DELETE, &format!("/v1/tokens/{id}"), Some(&c.alice))
        .send()
        .await
        .unwrap();
    assert_eq!(revoked.status(), StatusCode::NO_CONTENT);
    let at = Instant::now();
    for node in &c.nodes[1..] {
        while node.get("/v2/me/vals", Some(&token)).await.status() != StatusCode::UNAUTHORIZED {
            assert!(
                at.elapsed() < Duration::from_secs(1),
                "{} still takes it",
                node.base
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    // The counter stays exact under 48 concurrent visits through the
    // balancer, which spreads them over the three nodes.
    c.nodes[1].deploy("counter", "counter", "public").await;
    let visits = (0..48).map(|_| async {
        let resp = c.get("/x/alice/counter/", None).await;
        let status = resp.status();
        let text = resp.text().await.unwrap();
        assert_eq!(status, StatusCode::OK, "{text}");
        text.parse::<u64>().unwrap()
    });
    let mut counts = futures_util::future::join_all(visits).await;
    counts.sort();
    assert_eq!(counts, (1..=48).collect::<Vec<_>>());
    let stored = c.nodes[2]
        .get("/v1/blob/counter%2Fvisits", Some(&c.alice))
        .await;
    assert_eq!(stored.text().await.unwrap(), "48");

    // Val Town's own client, through the balancer.
    let val_id = hello["valId"].as_str().unwrap();
    support::official_client_checks(&c.lb, val_id, &[]).await;
}

/// Each owner's SQLite database is served by one home node (the first
/// to need it); the other nodes forward to it, from the REST API and from
/// a val's import alike, with the caller's scopes checked where the call
/// came in.
#[tokio::test(flavor = "multi_thread")]
async fn sqlite_is_served_by_the_databases_home_from_any_node() {
    let c = Balanced::start().await;
    let execute = |i: usize, token: &str, statement: Value| {
        let node = &c.nodes[i];
        node.req(Method::POST, "/v1/sqlite/execute", Some(token))
            .json(&json!({ "statement": statement }))
            .send()
    };
    // Node 1 uses alice's database first: it is its home.
    let made = execute(
        0,
        &c.alice,
        json!("CREATE TABLE notes (body TEXT, data BLOB)"),
    );
    assert_eq!(made.await.unwrap().status(), StatusCode::OK);
    // A write through node 3 and a read through node 2 meet there.
    let insert = json!({ "sql": "INSERT INTO notes VALUES (?, x'00ff')", "args": ["from node 3"] });
    let inserted: Value = execute(2, &c.alice, insert)
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(inserted["rowsAffected"], 1, "{inserted}");
    let read = json!("SELECT body, hex(data) FROM notes");
    let rows: Value = execute(1, &c.alice, read.clone())
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(rows["rows"], json!([["from node 3", "00FF"]]), "{rows}");

    // Every node counts the database against alice's storage quota, not
    // only its home (which alone holds the file).
    let big = json!({ "sql": "INSERT INTO notes VALUES ('big', zeroblob(200000))" });
    assert_eq!(
        execute(2, &c.alice, big).await.unwrap().status(),
        StatusCode::OK
    );
    for (i, node) in c.nodes.iter().enumerate() {
        let me: Value = node
            .get("/v1/me", Some(&c.alice))
            .await
            .json()
            .await
            .unwrap();
        let counted = me["storage"]["sqlite"].as_u64().unwrap();
        assert!(
            counted >= 200_000,
            "node {i} counts {counted} bytes of SQLite"
        );
    }
    let drop_big = json!("DELETE FROM notes WHERE body = 'big'");
    assert_eq!(
        execute(1, &c.alice, drop_big).await.unwrap().status(),
        StatusCode::OK
    );

    // The guestbook val, called on node 2, writes alice's database at
    // its home; node 3's REST API reads what it wrote.
    c.nodes[1].deploy("guestbook", "guestbook", "public").await;
    let signed = c.nodes[1]
        .req(Method::POST, "/x/alice/guestbook/", Some(&c.alice))
        .body("name=val&message=hello+from+node+2")
        .send()
        .await
        .unwrap();
    assert!(
        signed.status().is_success(),
        "{}",
        signed.text().await.unwrap()
    );
    let entries = json!("SELECT name, message FROM entries");
    let rows: Value = execute(2, &c.alice, entries)
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        rows["rows"],
        json!([["val", "hello from node 2"]]),
        "{rows}"
    );

    // A read-only token reads on every node and writes on none.
    let (_, reader) = c.nodes[0].token_with(&c.alice, &["sqlite:read"]).await;
    for i in 0..3 {
        let resp = execute(i, &reader, read.clone()).await.unwrap();
        assert_eq!(resp.status(), StatusCode::OK, "node {i}");
        let write = json!("INSERT INTO notes VALUES ('no', NULL)");
        let resp = execute(i, &reader, write).await.unwrap();
        assert_eq!(resp.status(), StatusCode::FORBIDDEN, "node {i}");
    }
    let rows: Value = execute(1, &c.alice, json!("SELECT count(*) FROM notes"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(rows["rows"], json!([[1]]));

    // The home node killed (past a replication interval after the last
    // write): while its lease runs, nobody else serves the database (never
    // an empty one in its place); then another node takes it over from its
    // replica, with every row.
    tokio::time::sleep(Duration::from_secs(2)).await;
    c.kill(0);
    let down = Instant::now();
    for i in [1, 2] {
        let resp = execute(i, &c.alice, read.clone()).await.unwrap();
        let status = resp.status();
        let body: Value = resp.json().await.unwrap();
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "node {i}: {body}");
    }
    let count = json!("SELECT count(*) FROM notes");
    loop {
        let resp = execute(1, &c.alice, count.clone()).await.unwrap();
        if resp.status() == StatusCode::OK {
            let rows: Value = resp.json().await.unwrap();
            assert_eq!(rows["rows"], json!([[1]]));
            break;
        }
        assert!(down.elapsed() < Duration::from_secs(20), "never taken over");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // The internal listener answers other nodes only.
    for secret in ["", "wrong"] {
        let resp = c
            .http
            .post(format!("http://{}/internal/sqlite", c.nodes[1].cluster))
            .bearer_auth(secret)
            .json(&json!({ "owner": "x", "read": true, "write": true,
                            "op": { "Execute": { "sql": "SELECT 1", "args": { "Positional": [] } } },
                            "remaining_ms": 1000 }))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    }
}

/// What writers saw while something failed under them.
#[derive(Default)]
struct Outcome {
    /// Blob key → the bytes acknowledged for it.
    acked: BTreeMap<String, String>,
    /// Requests that failed: when they were sent, how long they took, and
    /// what came back.
    failed: Vec<(Instant, Duration, String)>,
}

/// Four writers storing blobs with keys of their own through the
/// balancer until `stop`; each blob is written once.
async fn write_blobs_until(c: &Balanced, stop: Instant) -> Outcome {
    let outcome = Arc::new(std::sync::Mutex::new(Outcome::default()));
    let writers = (0..4).map(|w| {
        let outcome = outcome.clone();
        async move {
            let mut i = 0;
            while Instant::now() < stop {
                let (key, body) = (format!("load/{w}-{i}"), format!("writer {w} write {i}"));
                let sent = Instant::now();
                let resp = c
                    .req(
                        Method::POST,
                        &format!("/v1/blob/load%2F{w}-{i}"),
                        Some(&c.alice),
                    )
                    .timeout(Duration::from_secs(15))
                    .body(body.clone())
                    .send()
                    .await;
                let took = sent.elapsed();
                let mut outcome = outcome.lock().unwrap();
                let failure = match resp {
                    Ok(r) if r.status().is_success() => {
                        outcome.acked.insert(key, body);
                        None
                    }
                    Ok(r) => {
                        let retry = r.headers().get("retry-after").cloned();
                        Some(format!("{key}: {} (Retry-After {retry:?})", r.status()))
                    }
                    Err(e) => Some(format!("{key}: {e}")),
                };
                outcome.failed.extend(failure.map(|f| (sent, took, f)));
                i += 1;
            }
        }
    });
    futures_util::future::join_all(writers).await;
    Arc::into_inner(outcome).unwrap().into_inner().unwrap()
}

/// Every acknowledged blob is there, with its bytes, read through `api`.
async fn assert_all_there(api: &support::Api, acked: &BTreeMap<String, String>) {
    for (key, body) in acked {
        let path = format!("/v1/blob/{}", key.replace('/', "%2F"));
        let resp = api.get(&path, Some(&api.alice)).await;
        assert_eq!(resp.status(), StatusCode::OK, "acknowledged {key} is gone");
        assert_eq!(&resp.text().await.unwrap(), body, "{key}");
    }
}

/// Deploys of `hello` to alice's val `redeployed` through the balancer
/// until `stop`: the version numbers acknowledged, and when each failed
/// deploy was sent.
async fn deploy_until(c: &Balanced, stop: Instant) -> (Vec<i64>, Vec<(Instant, String)>) {
    let val = c.ensure_val(&c.alice, "redeployed", "public").await;
    let path = format!("/v2/vals/{}/versions", val["id"].as_str().unwrap());
    let (mut acked, mut failed) = (Vec::new(), Vec::new());
    while Instant::now() < stop {
        let sent = Instant::now();
        let resp = c
            .req(Method::POST, &path, Some(&c.alice))
            .body(support::val_bytes("hello"))
            .send()
            .await;
        match resp {
            Ok(r) if r.status() == StatusCode::CREATED => {
                let body: Value = r.json().await.unwrap();
                acked.push(body["version"].as_i64().unwrap());
            }
            Ok(r) => failed.push((sent, format!("deploy: {}", r.status()))),
            Err(e) => failed.push((sent, format!("deploy: {e}"))),
        }
    }
    (acked, failed)
}

/// Every acknowledged version of `redeployed` can be downloaded from
/// every node still running.
async fn assert_deploys_there(c: &Balanced, nodes: &[usize], versions: &[i64]) {
    let val: Value = c
        .get("/v2/alias/vals/alice/redeployed", Some(&c.alice))
        .await
        .json()
        .await
        .unwrap();
    let id = val["id"].as_str().unwrap();
    let wasm = support::val_bytes("hello");
    for &i in nodes {
        for v in versions {
            let path = format!("/v2/vals/{id}/versions/{v}/component");
            let resp = c.nodes[i].get(&path, Some(&c.alice)).await;
            assert_eq!(resp.status(), StatusCode::OK, "version {v} from node {i}");
            assert!(
                resp.bytes().await.unwrap() == wasm,
                "version {v} from node {i}"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_node_killed_under_load_loses_nothing_acknowledged() {
    let c = Balanced::start().await;
    c.nodes[0].deploy("warm", "hello", "public").await;
    let started = Instant::now();
    let (stop, killed_at) = (
        started + Duration::from_secs(6),
        started + Duration::from_secs(2),
    );
    let (blobs, (versions, failed_deploys), ()) =
        tokio::join!(write_blobs_until(&c, stop), deploy_until(&c, stop), async {
            tokio::time::sleep_until(killed_at.into()).await;
            c.kill(1);
        });
    // A request in flight on the node when it died may fail; once the
    // balancer's checks have taken it out, none may.
    let failed = (blobs.failed.iter().map(|(sent, _, why)| (sent, why)))
        .chain(failed_deploys.iter().map(|(sent, why)| (sent, why)));
    let late: Vec<&String> = failed
        .filter(|(sent, _)| **sent > killed_at + TAKEN_OUT_WITHIN)
        .map(|(_, why)| why)
        .collect();
    eprintln!(
        "node killed: {} blob writes and {} deploys acknowledged; {} and {} failed in flight",
        blobs.acked.len(),
        versions.len(),
        blobs.failed.len(),
        failed_deploys.len()
    );
    assert!(
        late.is_empty(),
        "failed after the node was taken out: {late:?}"
    );
    assert!(blobs.acked.len() > 20, "only {} writes", blobs.acked.len());
    assert!(!versions.is_empty(), "no deploy went through");
    assert_all_there(&c.lb, &blobs.acked).await;
    assert_all_there(&c.nodes[2], &blobs.acked).await;
    assert_deploys_there(&c, &[0, 2], &versions).await;
}

/// PostgreSQL stopped for two seconds under load: a loaded val answers
/// throughout, writes get 503 with `Retry-After` (never a hang), the
/// nodes reconnect by themselves, and every acknowledged write is kept.
#[tokio::test(flavor = "multi_thread")]
async fn postgres_restarted_under_load_keeps_vals_answering_and_writes_safe() {
    let c = Balanced::start().await;
    c.nodes[0].deploy("hello", "hello", "public").await;
    for node in &c.nodes {
        assert_eq!(
            node.get("/x/alice/hello/", None).await.status(),
            StatusCode::OK
        );
    }
    let started = Instant::now();
    let stop = started + Duration::from_secs(7);
    let calls = async {
        let mut failed = Vec::new();
        while Instant::now() < stop {
            let resp = c.get("/x/alice/hello/", None).await;
            if resp.status() != StatusCode::OK {
                failed.push(resp.status());
            }
        }
        failed
    };
    let restart = async {
        tokio::time::sleep(Duration::from_secs(2)).await;
        let pg = c.postgres();
        tokio::task::block_in_place(|| pg.stop());
        tokio::time::sleep(Duration::from_secs(2)).await;
        tokio::task::block_in_place(|| pg.resume());
    };
    let (blobs, failed_calls, ()) = tokio::join!(write_blobs_until(&c, stop), calls, restart);
    eprintln!(
        "database restarted: {} blob writes acknowledged, {} refused with 503",
        blobs.acked.len(),
        blobs.failed.len()
    );
    assert!(
        failed_calls.is_empty(),
        "val calls failed: {failed_calls:?}"
    );
    for (_, took, why) in &blobs.failed {
        assert!(
            why.contains("503 Service Unavailable (Retry-After Some"),
            "{why}"
        );
        assert!(*took < Duration::from_secs(10), "{why} took {took:?}");
    }
    assert!(!blobs.failed.is_empty(), "the database was never missed");
    assert!(blobs.acked.len() > 20, "only {} writes", blobs.acked.len());

    // Every node reconnects by itself and writes again, and everything
    // acknowledged is there.
    let resumed = Instant::now();
    for (i, node) in c.nodes.iter().enumerate() {
        loop {
            let resp = node
                .req(Method::POST, "/v1/blob/after", Some(&c.alice))
                .body("after")
                .send()
                .await
                .unwrap();
            if resp.status().is_success() {
                break;
            }
            assert!(
                resumed.elapsed() < Duration::from_secs(10),
                "node {i} still cannot write: {}",
                resp.status()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    assert_all_there(&c.lb, &blobs.acked).await;
}
