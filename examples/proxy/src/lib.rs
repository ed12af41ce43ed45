//! `proxy`: outbound fetch (scope `fetch`).
//!
//! - `/?url=U&times=N` fetches `U` (N times, default once) and answers the
//!   last response's status and body, with `x-fetched-status`.
//! - `/me?api=BASE` calls the Valbox API at `BASE` back with the call's own
//!   token (the `valtown` env var) and answers what `/v1/me` said.
//!
//! A refused fetch (scope, allowlist, private address) answers 403, any
//! other failure 502, each with the host's message.

use valbox_sdk::{Error, Request, Response, env, fetch};

fn proxy(req: Request) -> Response {
    let result = if req.path == "/me" {
        call_api_back(&req)
    } else {
        fetch_url(&req)
    };
    result.unwrap_or_else(|e| {
        let status = if matches!(e, Error::Denied(_)) {
            403
        } else {
            502
        };
        Response::text(e.to_string()).with_status(status)
    })
}

fn fetch_url(req: &Request) -> Result<Response, Error> {
    let url = req
        .query_param("url")
        .ok_or_else(|| Error::Invalid("pass ?url=".into()))?;
    let times: u32 = req
        .query_param("times")
        .and_then(|t| t.parse().ok())
        .unwrap_or(1);
    let mut last = None;
    for _ in 0..times.max(1) {
        last = Some(fetch::get(&url, &[])?);
    }
    let fetched = last.expect("at least one fetch");
    Ok(Response::new(200)
        .with_header("x-fetched-status", fetched.status.to_string())
        .with_body(fetched.body))
}

fn call_api_back(req: &Request) -> Result<Response, Error> {
    let api = req
        .query_param("api")
        .ok_or_else(|| Error::Invalid("pass ?api=".into()))?;
    let token = env::get("valtown")?.ok_or_else(|| Error::NotFound("no call token".into()))?;
    let me = fetch::get(
        &format!("{api}/v1/me"),
        &[("authorization", &format!("Bearer {token}"))],
    )?;
    Ok(Response::new(me.status)
        .with_header("content-type", "application/json")
        .with_body(me.body))
}

valbox_sdk::http_val!(proxy);
