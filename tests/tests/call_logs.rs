//! Call logs are bounded, so that strangers calling a public val cannot
//! fill the server's disk or memory: what one call keeps, what one val
//! keeps (by size and by age), and what one page of logs carries.

mod support;

use std::time::Duration;

use serde_json::Value;
use support::TestServer;

/// Alice's `val`'s id.
async fn val_id(s: &TestServer, val: &str) -> String {
    let v: Value = s
        .get(&format!("/v2/alias/vals/alice/{val}"), Some(&s.alice))
        .await
        .json()
        .await
        .unwrap();
    v["id"].as_str().unwrap().to_string()
}

async fn print(s: &TestServer, bytes: usize) {
    let resp = s
        .get(&format!("/x/alice/inspect/print/{bytes}"), None)
        .await;
    assert_eq!(resp.text().await.unwrap(), format!("printed {bytes}"));
}

fn stdout(record: &Value) -> &str {
    record["attributes"]["stdout"].as_str().unwrap()
}

#[tokio::test]
async fn one_call_keeps_8_kib_of_output_by_default() {
    let s = TestServer::start().await;
    s.deploy("inspect", "inspect", "public").await;
    print(&s, 200_000).await;
    let id = val_id(&s, "inspect").await;
    let logs = s
        .wait_for_logs(&s.alice, &format!("val_id={id}"), |d| !d.is_empty())
        .await;
    let out = stdout(&logs[0]);
    let (kept, marker) = out.split_once("\n[output cut:").expect(out);
    assert_eq!(kept.len(), 8192);
    assert!(
        marker.contains("191808 more were dropped]"),
        "the marker says what was lost: {marker}"
    );
}

#[tokio::test]
async fn a_val_keeps_its_newest_logs_within_its_size() {
    let s = TestServer::start_with(|l| l.log_bytes_per_val = 64 << 10).await;
    s.deploy("inspect", "inspect", "public").await;
    s.deploy("hello", "hello", "public").await;
    // 40 calls of about 8 KiB each: five times what the val may keep.
    for _ in 0..40 {
        print(&s, 8000).await;
    }
    print(&s, 7).await;
    let id = val_id(&s, "inspect").await;
    let logs = s
        .wait_for_logs(&s.alice, &format!("val_id={id}&limit=1000"), |d| {
            d.first().is_some_and(|r| stdout(r).len() < 100)
        })
        .await;
    let text: usize = logs.iter().map(|r| stdout(r).len()).sum();
    assert!(text <= 64 << 10, "{} records, {text} bytes", logs.len());
    assert!(logs.len() >= 5, "the newest are kept: {}", logs.len());
    // Another val's logs are its own.
    s.get("/x/alice/hello/", None).await;
    let hello = val_id(&s, "hello").await;
    s.wait_for_logs(&s.alice, &format!("val_id={hello}"), |d| d.len() == 1)
        .await;
}

#[tokio::test]
async fn logs_older_than_their_age_are_removed() {
    let s = TestServer::start_with(|l| l.log_max_age = Duration::from_secs(2)).await;
    s.deploy("inspect", "inspect", "public").await;
    print(&s, 10).await;
    let id = val_id(&s, "inspect").await;
    let query = format!("val_id={id}");
    s.wait_for_logs(&s.alice, &query, |d| d.len() == 1).await;
    // Gone within the age and a sweep (a quarter of the age, at least 1 s).
    tokio::time::sleep(Duration::from_secs(3)).await;
    s.wait_for_logs(&s.alice, &query, |d| d.is_empty()).await;
    // A new call is logged as before.
    print(&s, 10).await;
    s.wait_for_logs(&s.alice, &query, |d| d.len() == 1).await;
}

#[tokio::test]
async fn a_page_of_logs_is_bounded_by_bytes_and_links_the_rest() {
    let s = TestServer::start_with(|l| {
        l.log_bytes = 1 << 20;
        l.log_bytes_per_val = 64 << 20;
    })
    .await;
    s.deploy("inspect", "inspect", "public").await;
    for _ in 0..7 {
        print(&s, 1 << 20).await;
    }
    print(&s, 10).await;
    let id = val_id(&s, "inspect").await;
    s.wait_for_logs(&s.alice, &format!("val_id={id}&limit=1"), |d| {
        d.first().is_some_and(|r| stdout(r).len() < 100)
    })
    .await;
    let mut url = format!("/v1/telemetry/logs?limit=1000&val_id={id}");
    let mut seen = Vec::new();
    for _ in 0..8 {
        let page: Value = s.get(&url, Some(&s.alice)).await.json().await.unwrap();
        let data = page["data"].as_array().unwrap();
        assert!(!data.is_empty());
        // About 4 MiB a page: it stops at the record that passes 4 MiB.
        let text: usize = data.iter().map(|r| stdout(r).len()).sum();
        assert!(text <= 5 << 20, "{} records, {text} bytes", data.len());
        seen.extend(data.iter().map(|r| r["timeUnixNano"].clone()));
        match page["links"]["next"].as_str() {
            Some(next) => url = next.to_string(),
            None => break,
        }
    }
    assert_eq!(seen.len(), 8, "every record, once: {seen:?}");
    seen.dedup();
    assert_eq!(seen.len(), 8);
}
