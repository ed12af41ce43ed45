//! Benchmark (h): a SQL statement run by a val through the `sqlite` import
//! against the same statement run natively (rusqlite, one open connection,
//! cached prepared statement, rows copied out) on the same database file,
//! side by side in one run. The val (`sql-repeat`) runs the statement `n`
//! times in one call, one import call each or all in one batch; the cost of
//! one statement is the call's time less that of a call running none,
//! divided by `n`. Prints each per-statement time and the ratio.
//! Run with `scripts/bench`.

mod common;

use std::time::{Duration, Instant};

use rusqlite::types::Value;

const ROWS: usize = 1000;
/// Calls timed for each figure; the median is kept.
const SAMPLES: usize = 15;

/// (label, statement, times per call)
const STATEMENTS: &[(&str, &str, usize)] = &[
    ("point read", "SELECT v FROM kv WHERE k = 500", 200),
    (
        "100-row range",
        "SELECT k, v FROM kv WHERE k BETWEEN 100 AND 199",
        50,
    ),
    (
        "1000-row aggregate",
        "SELECT count(*), sum(length(v)), max(v) FROM kv",
        50,
    ),
];

fn main() {
    common::run_on_tokio(run());
}

async fn run() {
    let server = common::BenchServer::start().await;
    let base = &server.base;
    common::deploy(base, &server.token, "sql", common::val_wasm("sql-repeat")).await;
    let http = reqwest::Client::new();
    for sql in [
        "CREATE TABLE kv (k INTEGER PRIMARY KEY, v TEXT NOT NULL)".to_string(),
        format!(
            "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < {ROWS}) \
             INSERT INTO kv SELECT x, hex(randomblob(50)) FROM c"
        ),
    ] {
        let resp = http
            .post(format!("{base}/v1/sqlite/execute"))
            .bearer_auth(&server.token)
            .json(&serde_json::json!({ "statement": sql }))
            .send()
            .await
            .unwrap();
        assert!(
            resp.status().is_success(),
            "{sql}: {}",
            resp.text().await.unwrap()
        );
    }
    let db = owner_database(&server);
    let native = rusqlite::Connection::open(&db).unwrap();
    native
        .execute_batch("PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL;")
        .unwrap();

    println!("per statement, median of {SAMPLES} runs:");
    // VALBOX_BENCH_ONLY=point times only the statements so labelled (for
    // a profiler).
    let only = std::env::var("VALBOX_BENCH_ONLY").unwrap_or_default();
    for (label, sql, n) in STATEMENTS.iter().filter(|s| s.0.contains(&only)) {
        let native_time = per_statement_native(&native, sql, *n);
        let url = format!("{base}/x/bench/sql/");
        let none = median_call(&http, &format!("{url}?n=0"), sql).await;
        let each = median_call(&http, &format!("{url}?n={n}"), sql).await;
        let batch = median_call(&http, &format!("{url}?n={n}&batch"), sql).await;
        let each = (each.saturating_sub(none)) / *n as u32;
        let batch = (batch.saturating_sub(none)) / *n as u32;
        println!(
            "{label:>20}: native {:>8.1} µs | import, a call each {:>8.1} µs ({:.2}x) | in one batch {:>8.1} µs ({:.2}x)",
            common::micros(native_time),
            common::micros(each),
            each.as_secs_f64() / native_time.as_secs_f64(),
            common::micros(batch),
            batch.as_secs_f64() / native_time.as_secs_f64(),
        );
    }
    server.server.shutdown().await.unwrap();
}

/// The bench user's database file: the only one there.
fn owner_database(server: &common::BenchServer) -> std::path::PathBuf {
    let dir = server.server.app.config.data_dir.join("sqlite");
    std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|e| e == "sqlite3"))
        .unwrap_or_else(|| panic!("no database in {}", dir.display()))
}

/// The median time of one native run of `sql`, over `SAMPLES` batches of `n`.
fn per_statement_native(conn: &rusqlite::Connection, sql: &str, n: usize) -> Duration {
    let mut samples = Vec::with_capacity(SAMPLES);
    for _ in 0..SAMPLES {
        let began = Instant::now();
        for _ in 0..n {
            let mut statement = conn.prepare_cached(sql).unwrap();
            let columns = statement.column_count();
            let rows: Vec<Vec<Value>> = statement
                .query_map([], |row| (0..columns).map(|i| row.get(i)).collect())
                .unwrap()
                .collect::<Result<_, _>>()
                .unwrap();
            std::hint::black_box(rows);
        }
        samples.push(began.elapsed() / n as u32);
    }
    median(samples)
}

async fn median_call(http: &reqwest::Client, url: &str, sql: &str) -> Duration {
    let mut samples = Vec::with_capacity(SAMPLES);
    for _ in 0..SAMPLES {
        let began = Instant::now();
        let resp = http.post(url).body(sql.to_string()).send().await.unwrap();
        let status = resp.status();
        let body = resp.text().await.unwrap();
        assert!(status.is_success(), "{url}: {body}");
        samples.push(began.elapsed());
    }
    median(samples)
}

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}
