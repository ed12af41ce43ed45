//! `inspect`: a diagnostic HTTP val for the host's tests.
//!
//! - `/status/{code}` answers that status (any u16, even an invalid HTTP
//!   status, so the host's checks can be tested) with body `status {code}`.
//! - `/bytes/{n}` answers `n` bytes of `a`.
//! - `/print/{n}` writes `n` bytes to stdout (`x`s in lines of 80 bytes) and
//!   answers `printed {n}`.
//! - Any other path answers the request itself as JSON:
//!   `{"method", "path", "query", "headers": [[name, value], ...], "body"}`
//!   with the header `x-inspect: yes`.

use std::io::Write;
use valbox_sdk::{Request, Response};

fn inspect(req: Request) -> Response {
    if let Some(code) = req.path.strip_prefix("/status/") {
        return match code.parse::<u16>() {
            Ok(code) => Response::text(format!("status {code}")).with_status(code),
            Err(_) => bad_request("status must be a number from 0 to 65535"),
        };
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

fn bad_request(message: &str) -> Response {
    Response::text(message).with_status(400)
}

valbox_sdk::http_val!(inspect);
