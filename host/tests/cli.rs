//! The `valbox` binary as a user runs it: create a user on a data dir,
//! start the server, deploy an example with the client commands, call it,
//! and read its logs, checking what each command prints.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};

const VALBOX: &str = env!("CARGO_BIN_EXE_valbox");

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .into()
}

/// `target/vals/hello.wasm`, brought up to date by `scripts/build-vals`.
fn hello_wasm() -> PathBuf {
    let status = Command::new(repo_root().join("scripts/build-vals"))
        .status()
        .expect("running scripts/build-vals");
    assert!(status.success(), "scripts/build-vals failed");
    repo_root().join("target/vals/hello.wasm")
}

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

/// Kills the server when the test ends, however it ends.
struct Serving(Child);

impl Drop for Serving {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[test]
fn a_user_creates_an_account_serves_deploys_calls_and_reads_logs() {
    let data = tempfile::tempdir().unwrap();
    let data_dir = data.path().to_str().unwrap();
    let wasm = hello_wasm();

    let created = valbox(
        &[
            "user",
            "create",
            "alice",
            "--email",
            "a@example.com",
            "--data",
            data_dir,
        ],
        &[],
    );
    let created = stdout(&created);
    let token = created.lines().last().unwrap().to_string();
    assert!(
        token.starts_with("vbx_")
            && token.len() == 40
            && token
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_'),
        "the last line is not a token: {created}"
    );

    let listen = format!("127.0.0.1:{}", free_port());
    let mut child = Command::new(VALBOX)
        .args(["serve", "--data", data_dir, "--listen", &listen])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut first)
        .unwrap();
    let _server = Serving(child);
    let url = format!("http://{listen}");
    assert_eq!(first.trim(), format!("valbox listening on {url}"));

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

    let body = http_get(&listen, "/x/alice/hello/");
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
