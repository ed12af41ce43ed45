//! `inspect`: a diagnostic HTTP val for the host's tests.
//!
//! - `/status/{code}` answers that status (any u16, even an invalid HTTP
//!   status, so the host's checks can be tested) with body `status {code}`.
//! - `/bytes/{n}` answers `n` bytes of `a`.
//! - `/print/{n}` writes `n` bytes to stdout (`x`s in lines of 80 bytes) and
//!   answers `printed {n}`.
//! - `/env/{NAME}` answers the env var's value, 404 `unset` when the val has
//!   none, or 403 with the host's error (e.g. a denied scope).
//! - `/env-twice/{NAME}?wait_ms=N` reads the env var, sleeps N ms, reads it
//!   again and answers `{"first", "second"}`, each `ok:<value>`, `unset` or
//!   `err:<error>`: for testing a token revoked during a call.
//! - `POST /sql` runs a batch of SQL statements (mode `write`) through the
//!   sqlite import: the body is a JSON array of `[sql, [text args...]]`.
//!   It answers 200 with `{"results": n}` or 400 with the host's error.
//! - `/memo` answers `{"calls", "token", "previous", "scopes"}`: how many
//!   calls this instance served, this call's token, the token the last
//!   call on this instance had (kept in memory), and whether `env:read` is
//!   granted now: for testing reused instances.
//! - `/escape` tries to leave the sandbox (read a host file, list `/`, read
//!   host env vars) and answers what each attempt got.
//! - `/headers?name=value&...` answers 200 with each pair as a response
//!   header (a name may repeat): for testing what the host lets through.
//! - Any other path answers the request itself as JSON:
//!   `{"method", "path", "query", "headers": [[name, value], ...], "body"}`
//!   with the header `x-inspect: yes`.

use std::io::Write;
use valbox_sdk::{Request, Response, sqlite};

fn inspect(req: Request) -> Response {
    if let Some(code) = req.path.strip_prefix("/status/") {
        return match code.parse::<u16>() {
            Ok(code) => Response::text(format!("status {code}")).with_status(code),
            Err(_) => bad_request("status must be a number from 0 to 65535"),
        };
    }
    if req.path == "/headers" {
        let mut response = Response::text("headers set");
        response.headers.extend(req.query_pairs());
        return response;
    }
    if let Some(n) = req.path.strip_prefix("/bytes/") {
        return match n.parse::<usize>() {
            Ok(n) => Response::text("a".repeat(n)),
            Err(_) => bad_request("n must be a whole number"),
        };
    }
    if let Some(n) = req.path.strip_prefix("/print/") {
        return match n.parse::<usize>() {
            Ok(n) => {
                print_bytes(n);
                Response::text(format!("printed {n}"))
            }
            Err(_) => bad_request("n must be a whole number"),
        };
    }
    if let Some(name) = req.path.strip_prefix("/env/") {
        return match valbox_sdk::env::get(name) {
            Ok(Some(value)) => Response::text(value),
            Ok(None) => Response::text("unset").with_status(404),
            Err(e) => Response::text(e.to_string()).with_status(403),
        };
    }
    if let Some(name) = req.path.strip_prefix("/env-twice/") {
        let wait_ms = req
            .query_param("wait_ms")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        let first = read_env(name);
        std::thread::sleep(std::time::Duration::from_millis(wait_ms));
        let second = read_env(name);
        return Response::json(&serde_json::json!({ "first": first, "second": second }));
    }
    if req.path == "/sql" {
        return run_sql(&req.body);
    }
    if req.path == "/memo" {
        return memo();
    }
    if req.path == "/escape" {
        let report = serde_json::json!({
            "read_file": format!("{:?}", std::fs::read_to_string("/etc/passwd").map(|t| t.len())),
            "list_root": format!("{:?}", std::fs::read_dir("/").map(|d| d.count())),
            "env_vars": std::env::vars().map(|(k, _)| k).collect::<Vec<_>>(),
        });
        return Response::json(&report);
    }

    let body = serde_json::json!({
        "method": req.method,
        "path": req.path,
        "query": req.query,
        "headers": req.headers,
        "body": String::from_utf8_lossy(&req.body),
    });
    Response::json(&body).with_header("x-inspect", "yes")
}

/// Writes exactly `n` bytes to stdout: lines of 79 `x`s and a newline, the
/// last line possibly shorter. Write errors (the host may cut the stream off
/// at its log limit) are ignored.
fn print_bytes(n: usize) {
    const LINE: &[u8; 80] = &{
        let mut line = [b'x'; 80];
        line[79] = b'\n';
        line
    };
    let mut out = std::io::BufWriter::with_capacity(64 * 1024, std::io::stdout().lock());
    let mut left = n;
    while left > 0 {
        let len = left.min(LINE.len());
        if out.write_all(&LINE[..len]).is_err() {
            return;
        }
        left -= len;
    }
    let _ = out.flush();
}

fn run_sql(body: &[u8]) -> Response {
    let Ok(items) = serde_json::from_slice::<Vec<(String, Vec<String>)>>(body) else {
        return bad_request("the body must be a JSON array of [sql, [text args...]]");
    };
    let statements: Vec<_> = items
        .iter()
        .map(|(sql, args)| {
            let args: Vec<_> = args.iter().cloned().map(sqlite::Value::Text).collect();
            sqlite::statement(sql, &args)
        })
        .collect();
    match sqlite::batch(&statements, sqlite::BatchMode::Write) {
        Ok(results) => Response::json(&serde_json::json!({ "results": results.len() })),
        Err(e) => Response::text(e.to_string()).with_status(400),
    }
}

/// Calls this instance served, and the token it was given the last time
/// (an instance reused across calls keeps both in its memory).
static MEMO: std::sync::Mutex<(u32, String)> = std::sync::Mutex::new((0, String::new()));

fn memo() -> Response {
    let token = valbox_sdk::env::get("valtown").ok().flatten().unwrap_or_default();
    let mut memo = MEMO.lock().unwrap_or_else(|p| p.into_inner());
    memo.0 += 1;
    let previous = std::mem::replace(&mut memo.1, token.clone());
    Response::json(&serde_json::json!({
        "calls": memo.0,
        "token": token,
        "previous": previous,
        "scopes": valbox_sdk::env::get("X").is_ok(),
    }))
}

fn read_env(name: &str) -> String {
    match valbox_sdk::env::get(name) {
        Ok(Some(value)) => format!("ok:{value}"),
        Ok(None) => "unset".to_string(),
        Err(e) => format!("err:{e}"),
    }
}

fn bad_request(message: &str) -> Response {
    Response::text(message).with_status(400)
}

valbox_sdk::http_val!(inspect);
