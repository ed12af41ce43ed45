//! Schemathesis (PyPI; `scripts/test` installs it) against a live server:
//! every operation of `/openapi.json`, as alice with every scope, for a
//! bounded time. It fails on any 5xx, any response the document does not
//! allow (status, content type, headers, body schema), a schema-invalid
//! request that is accepted, and a request that takes longer than the
//! request timeout. `tests/schemathesis/schemathesis.toml` holds the few
//! operations where a valid-looking request may rightly be refused, and
//! why. `VALBOX_SCHEMATHESIS_EXAMPLES` and `VALBOX_SCHEMATHESIS_SEED` run
//! it longer or differently by hand.

mod support;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use support::{TestServer, dies_with_us, repo_root};

/// Test cases per operation and phase, unless the environment says.
const MAX_EXAMPLES: &str = "100";
/// A request that takes longer is a hang, and a failure.
const REQUEST_TIMEOUT_SECS: &str = "10";
/// The whole of one run, however Schemathesis fares.
const HARD_LIMIT: Duration = Duration::from_secs(240);

const ALL_SCOPES: &[&str] = &valbox_model::ALL_SCOPES;

/// Run Schemathesis against `s` with `token` and `filters`; the run's
/// output, or a panic with it when it found anything.
async fn schemathesis(s: &TestServer, name: &str, token: &str, filters: &[&str]) -> String {
    let examples = std::env::var("VALBOX_SCHEMATHESIS_EXAMPLES").unwrap_or(MAX_EXAMPLES.into());
    let seed = std::env::var("VALBOX_SCHEMATHESIS_SEED").unwrap_or("1".into());
    let reports = repo_root().join("target/schemathesis");
    std::fs::create_dir_all(&reports).unwrap();
    let mut command = Command::new("python3");
    command
        .args(["-m", "schemathesis.cli", "--no-color", "--config-file"])
        .arg(repo_root().join("tests/schemathesis/schemathesis.toml"))
        .arg("run")
        .arg(format!("{}/openapi.json", s.base))
        .args(["--header", &format!("Authorization: Bearer {token}")])
        .args(["--checks", "all"])
        // The document has no links, so a stateful phase would have
        // nothing to follow.
        .args(["--phases", "examples,coverage,fuzzing"])
        .args(["--max-examples", &examples, "--seed", &seed])
        .args(["--request-timeout", REQUEST_TIMEOUT_SECS])
        // One worker: hypothesis's lambda descriptions are not thread
        // safe on Python 3.11 (a SystemError from `ast.parse`, seen once).
        .args(["--workers", "1"])
        .args(["--report", "junit", "--report-junit-path"])
        .arg(reports.join(format!("{name}.xml")))
        .args(filters)
        .current_dir(&reports)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let output = tokio::task::spawn_blocking(move || {
        let child = dies_with_us(&mut command).spawn().expect(
            "python3 -m schemathesis.cli (pip install schemathesis==4.32.5; scripts/test does)",
        );
        wait_at_most(child, HARD_LIMIT)
    })
    .await
    .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    std::fs::write(reports.join(format!("{name}.txt")), &text).unwrap();
    let summary = text
        .rsplit_once("SUMMARY")
        .map_or(text.as_str(), |(_, s)| s);
    println!("schemathesis ({name}):{summary}");
    assert!(
        output.status.success(),
        "Schemathesis found something (or did not finish in {HARD_LIMIT:?}):\n{text}"
    );
    text
}

/// The child's output, killed if it runs past `limit`.
fn wait_at_most(mut child: std::process::Child, limit: Duration) -> std::process::Output {
    let started = Instant::now();
    while child.try_wait().unwrap().is_none() && started.elapsed() < limit {
        std::thread::sleep(Duration::from_millis(200));
    }
    let _ = child.kill();
    child.wait_with_output().unwrap()
}

#[tokio::test]
async fn schemathesis_finds_no_server_error_and_no_answer_the_document_does_not_allow() {
    let s = TestServer::start().await;
    // Something real to reach: the Run API's example target
    // (`alice.echo`), and an HTTP val with a version.
    s.deploy("echo", "echo", "public").await;
    s.deploy("hello", "hello", "public").await;
    // Revoking or narrowing a token is tested last, with a token of its
    // own: Schemathesis reuses the ids that responses show it, so it
    // would otherwise revoke or narrow the token it runs with, and every
    // operation after that would only see 401s and 403s.
    let (_, spare) = s.token_with(&s.alice, ALL_SCOPES).await;
    let token_ops = ["revokeToken", "narrowToken"];
    let mut everything_else = Vec::new();
    for id in token_ops {
        everything_else.extend(["--exclude-operation-id", id]);
    }
    let main = schemathesis(&s, "api", &s.alice, &everything_else).await;
    let mut only_those = Vec::new();
    for id in token_ops {
        only_those.extend(["--include-operation-id", id]);
    }
    let tokens = schemathesis(&s, "tokens", &spare, &only_those).await;

    // Between them the two runs tested every operation (but the
    // document's own, which Schemathesis reads rather than tests).
    let doc: serde_json::Value = s.get("/openapi.json", None).await.json().await.unwrap();
    let paths = doc["paths"].as_object().unwrap();
    let count: usize = paths
        .values()
        .map(|item| item.as_object().unwrap().len())
        .sum();
    let tested = format!("Tested: {}", count - 1 - token_ops.len());
    assert!(main.contains(&tested), "expected `{tested}` in:\n{main}");
    assert!(tokens.contains("Tested: 2"), "{tokens}");
}
