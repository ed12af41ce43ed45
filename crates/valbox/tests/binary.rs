//! The `valbox` binary as a user runs it: create a user on a data dir,
//! start the server, deploy an example with the client commands, call it,
//! and read its logs, checking what each command prints; and killed with
//! SIGKILL, losing nothing it acknowledged.

use std::io::{BufRead, BufReader};

use std::process::{Child, Command, Output, Stdio};

use serde_json::{Value, json};

mod common;
use common::val_wasm;

const VALBOX: &str = env!("CARGO_BIN_EXE_valbox");

fn valbox(args: &[&str], env: &[(&str, &str)]) -> Output {
    let out = Command::new(VALBOX)
        .args(args)
        .envs(env.iter().copied())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "valbox {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn stdout(out: &Output) -> String {
    String::from_utf8(out.stdout.clone()).unwrap()
}

/// A running `valbox serve`, killed (SIGKILL) when dropped.
struct Serving {
    child: Child,
    url: String,
}

impl Serving {
    fn start(data_dir: &str) -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let listen = format!("127.0.0.1:{port}");
        let mut child = Command::new(VALBOX)
            .args(["serve", "--data", data_dir, "--listen", &listen])
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        // The first line comes once the socket is bound.
        let mut first = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut first)
            .unwrap();
        let url = format!("http://{listen}");
        assert_eq!(first.trim(), format!("valbox listening on {url}"));
        Self { child, url }
    }
}

impl Drop for Serving {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn create_user(data_dir: &str, name: &str) -> String {
    let email = format!("{name}@example.com");
    let args = [
        "user", "create", name, "--email", &email, "--data", data_dir,
    ];
    let created = stdout(&valbox(&args, &[]));
    let token = created.lines().last().unwrap().to_string();
    assert!(
        token.starts_with("vbx_")
            && token.len() == 40
            && token
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_'),
        "the last line is not a token: {created}"
    );
    token
}

#[test]
fn a_user_creates_an_account_serves_deploys_calls_and_reads_logs() {
    let data = tempfile::tempdir().unwrap();
    let data_dir = data.path().to_str().unwrap();
    let wasm = val_wasm("hello");
    let token = create_user(data_dir, "alice");
    let server = Serving::start(data_dir);
    let url = &server.url;

    let client = [("VALBOX_URL", url.as_str()), ("VALBOX_TOKEN", &token)];
    let deployed = valbox(
        &[
            "deploy",
            "hello",
            wasm.to_str().unwrap(),
            "--privacy",
            "public",
        ],
        &client,
    );
    let deployed = stdout(&deployed);
    assert!(
        deployed.starts_with("deployed hello version 0\n"),
        "{deployed}"
    );
    let val_url = format!("{url}/x/alice/hello/");
    assert!(deployed.lines().any(|l| l == val_url), "{deployed}");

    let body = http_get(url.trim_start_matches("http://"), "/x/alice/hello/");
    assert!(body.ends_with("Hello, world!"), "{body}");

    // The log record is written off the request path: poll briefly.
    let mut logs = String::new();
    for _ in 0..50 {
        logs = stdout(&valbox(&["logs", "hello"], &client));
        if !logs.is_empty() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let line = logs.lines().next().unwrap_or_default();
    assert!(line.contains(" v0 http 200 "), "{logs}");
}

#[tokio::test]
async fn what_was_acknowledged_survives_kill_9() {
    let data = tempfile::tempdir().unwrap();
    let data_dir = data.path().to_str().unwrap();
    let wasm = std::fs::read(val_wasm("greet-env")).unwrap();
    let token = create_user(data_dir, "alice");
    let http = reqwest::Client::new();
    let server = Serving::start(data_dir);
    let base = server.url.clone();
    let send = |req: reqwest::RequestBuilder| async {
        let resp = req.bearer_auth(&token).send().await.unwrap();
        assert!(resp.status().is_success(), "{}", resp.status());
        resp
    };
    let val: Value = send(
        http.post(format!("{base}/v2/vals"))
            .json(&json!({ "name": "greet", "privacy": "public" })),
    )
    .await
    .json()
    .await
    .unwrap();
    let id = val["id"].as_str().unwrap();
    send(
        http.post(format!("{base}/v2/vals/{id}/versions"))
            .body(wasm),
    )
    .await;
    send(
        http.put(format!(
            "{base}/v2/vals/{id}/environment_variables/GREETING"
        ))
        .json(&json!({ "value": "Durable" })),
    )
    .await;
    send(
        http.post(format!("{base}/v1/blob/kept"))
            .body("acknowledged"),
    )
    .await;
    send(
        http.post(format!("{base}/v1/sqlite/execute"))
            .json(&json!({ "statement": "CREATE TABLE kept AS SELECT 'committed' AS v" })),
    )
    .await;
    drop(server); // SIGKILL: no shutdown, no flush.

    let server = Serving::start(data_dir);
    let base = server.url.clone();
    let kept = send(http.get(format!("{base}/v1/blob/kept"))).await;
    assert_eq!(kept.text().await.unwrap(), "acknowledged");
    let rows: Value = send(
        http.post(format!("{base}/v1/sqlite/execute"))
            .json(&json!({ "statement": "SELECT v FROM kept" })),
    )
    .await
    .json()
    .await
    .unwrap();
    assert_eq!(rows["rows"], json!([["committed"]]));
    let greeting = send(http.get(format!("{base}/x/alice/greet/"))).await;
    assert_eq!(greeting.text().await.unwrap(), "Durable, world!");
}

/// A minimal HTTP/1.1 GET, so the test needs no client library.
fn http_get(addr: &str, path: &str) -> String {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(addr).unwrap();
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    response
}

#[test]
fn least_privilege_from_the_command_line() {
    let data = tempfile::tempdir().unwrap();
    let data_dir = data.path().to_str().unwrap();
    let wasm = val_wasm("counter");
    let token = create_user(data_dir, "alice");
    let server = Serving::start(data_dir);
    let url = &server.url;
    let client = [("VALBOX_URL", url.as_str()), ("VALBOX_TOKEN", &token)];

    let deployed = stdout(&valbox(
        &[
            "deploy",
            "counter",
            wasm.to_str().unwrap(),
            "--scopes",
            "val:read",
            "--grant-declared",
        ],
        &client,
    ));
    assert!(
        deployed.contains("declares scopes: blob:read blob:write"),
        "{deployed}"
    );
    assert!(deployed.contains("granted what it declares"), "{deployed}");
    let body = http_get(url.trim_start_matches("http://"), "/x/alice/counter/");
    assert!(body.ends_with('1'), "{body}");

    let usage = stdout(&valbox(&["val", "scopes", "counter", "--usage"], &client));
    let blob_read = usage
        .lines()
        .find(|l| l.starts_with("blob:read"))
        .unwrap_or_default();
    assert!(
        blob_read.contains("yes") && blob_read.contains(" 1 "),
        "{usage}"
    );
    assert!(
        usage.contains("held but unused in the last 30 days: val:read"),
        "{usage}"
    );
    let narrowed = stdout(&valbox(&["val", "scopes", "counter", "--to-used"], &client));
    assert!(narrowed.contains("removed: val:read"), "{narrowed}");

    let report = stdout(&valbox(
        &[
            "admin",
            "migrate-scopes",
            "--remove",
            "email:read",
            "--dry-run",
            "--data",
            data_dir,
        ],
        &[],
    ));
    // The token `user create` made holds email:read and never used it.
    assert!(
        report.starts_with("would migrate 1 (email:read removed)"),
        "{report}"
    );
}
