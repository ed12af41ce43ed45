//! `webhook`: Val Town's custom-authentication pattern. The caller must
//! send the shared secret from the val's env var `WEBHOOK_SECRET` in the
//! `x-webhook-secret` header; anything else gets 401. (The platform never
//! forwards a Valbox token to a val, but any other header reaches it.)

use valbox_sdk::{Request, Response, env};

fn webhook(req: Request) -> Response {
    let secret = match env::get("WEBHOOK_SECRET") {
        Ok(Some(secret)) if !secret.is_empty() => secret,
        Ok(_) => return Response::text("WEBHOOK_SECRET is not set").with_status(500),
        Err(e) => return Response::text(e.to_string()).with_status(500),
    };
    let given = req.header("x-webhook-secret").unwrap_or_default();
    if !constant_time_eq(given.as_bytes(), secret.as_bytes()) {
        return Response::text("unauthorized").with_status(401);
    }
    Response::json(&serde_json::json!({ "received": String::from_utf8_lossy(&req.body) }))
}

/// Compare without leaking, through timing, how much of the secret matched.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

valbox_sdk::http_val!(webhook);
