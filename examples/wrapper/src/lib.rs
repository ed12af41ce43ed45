//! `wrapper`: an HTTP val that calls another val as an API.
//!
//! `GET /?name=Ada` runs the script val named by the env var `TARGET`
//! (`user/val`) with `["Ada"]` and answers its JSON result as is. The
//! callee runs in its own owner's sandbox with its own secrets, and never
//! sees this val's token. Needs `env:read` and `val:read`.

use serde_json::Value;
use valbox_sdk::{Error, Request, Response, env, vals};

fn wrap(req: Request) -> Response {
    match call_target(&req) {
        Ok(result) => Response::json(&result),
        Err(err) => Response::text(err.to_string()).with_status(502),
    }
}

fn call_target(req: &Request) -> Result<Value, Error> {
    let target = env::get("TARGET")?
        .ok_or_else(|| Error::NotFound("set the env var TARGET to `user/val`".into()))?;
    let name = req.query_param("name").unwrap_or_else(|| "world".into());
    vals::run(&target, &(name,))
}

valbox_sdk::http_val!(wrap);
