//! Benchmark (a): in-process instantiate + call of the `hello` val, the
//! whole of `Runtime::invoke` (fresh store, WASI context, instantiation
//! from the cached `InstancePre`, the handler call, output capture).
//! Prints p50, p99 and mean. Run with `scripts/bench`.

mod common;

use std::time::{Duration, Instant};

use valbox::auth::{CallToken, CallTokens, Scopes};
use valbox::caps::CallContext;
use valbox::caps::blob::BlobStore;
use valbox::caps::email::Mailer;
use valbox::caps::fetch::{FetchLimits, Fetcher};
use valbox::caps::sqlite::SqliteStore;
use valbox::config::Limits;
use valbox::db::Db;
use valbox::runtime::{HttpRequest, Input, Output, Runtime};
use valbox::secrets::SecretBox;

const WARMUP: usize = 2_000;
const SAMPLES: usize = 20_000;

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(run());
}

async fn run() {
    let dir = tempfile::tempdir().unwrap();
    let runtime = Runtime::new(Limits::default(), dir.path().join("components")).unwrap();
    let db = Db::open(&dir.path().join("valbox.db")).unwrap();
    let secrets = SecretBox::load_or_create(&dir.path().join("secret.key")).unwrap();
    let prepared = runtime.prepare(common::hello_wasm()).await.unwrap();

    let call_tokens = CallTokens::default();
    let mailer = Mailer {
        db: db.clone(),
        daily_limit: 100,
        wake: Default::default(),
    };
    let fetcher = Fetcher::new(
        Default::default(),
        FetchLimits {
            requests_per_call: 20,
            request_body_bytes: 1 << 20,
            response_body_bytes: 1 << 20,
        },
    )
    .unwrap();
    let limits = Limits::default();
    let blobs = BlobStore::new(
        dir.path().join("blobs"),
        limits.blob_bytes,
        limits.blob_quota_bytes,
    );
    let call = || async {
        // As the API does per call: mint the call's token (revoked after).
        let (call_token, call_token_hash) = call_tokens.mint(CallToken {
            id: String::new(),
            owner_id: "owner".into(),
            username: "bench".into(),
            val_id: "val".into(),
            scopes: Scopes::val_default(),
            created_at_ms: 0,
            deadline: Instant::now() + Duration::from_secs(10),

            expires_at_ms: 0,
        });
        let caps = CallContext {
            owner_id: "owner".into(),
            val_id: "val".into(),
            scopes: Scopes::val_default(),
            call_token,
            call_token_hash: call_token_hash.clone(),
            call_tokens: call_tokens.clone(),
            blobs: blobs.clone(),
            fetcher: fetcher.clone(),
            fetch_allowlist: None,
            fetch_count: 0,
            mailer: mailer.clone(),
            sqlite: SqliteStore::new(
                dir.path().join("sqlite"),
                limits.sqlite_quota_bytes,
                limits.sqlite_temp_bytes,
            ),
            deadline: Instant::now() + Duration::from_secs(10),
            db: db.clone(),
            secrets: secrets.clone(),
            env_cache: None,
            denials: Vec::new(),
        };
        let request = HttpRequest {
            method: "GET".into(),
            path: "/".into(),
            query: String::new(),
            headers: vec![("accept".into(), "*/*".into())],
            body: Vec::new(),
        };
        let outcome = runtime
            .invoke(&prepared.sha256, caps, Input::Http(request))
            .await;
        call_tokens.revoke(&call_token_hash);
        outcome
    };

    for _ in 0..WARMUP {
        call().await.result.unwrap();
    }
    let mut samples = Vec::with_capacity(SAMPLES);
    for _ in 0..SAMPLES {
        let started = Instant::now();
        let outcome = call().await;
        samples.push(started.elapsed());
        match outcome.result {
            Ok(Output::Http(r)) => assert_eq!(r.status, 200),
            other => panic!("unexpected outcome: {other:?}"),
        }
    }
    samples.sort();
    let pct = |p: f64| samples[((samples.len() as f64 * p) as usize).min(samples.len() - 1)];
    let mean = samples.iter().sum::<Duration>() / samples.len() as u32;
    println!(
        "invoke hello ({SAMPLES} calls): p50 {:.1} µs, p99 {:.1} µs, mean {:.1} µs",
        micros(pct(0.50)),
        micros(pct(0.99)),
        micros(mean)
    );
}

fn micros(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}
