//! `counter`: counts its visits in a blob (scopes `blob:read` and
//! `blob:write`). `GET /` adds one and answers the new count; `DELETE /`
//! resets it. A denied scope comes back as a 403 that names it.

use valbox_sdk::{Request, Response, blob};

const KEY: &str = "counter/visits";

fn count(req: Request) -> Response {
    let result = if req.method == "DELETE" {
        blob::delete(KEY).map(|()| 0)
    } else {
        blob::get_json::<u64>(KEY).and_then(|n| {
            let next = n.unwrap_or(0) + 1;
            blob::set_json(KEY, &next).map(|()| next)
        })
    };
    match result {
        Ok(n) => Response::text(n.to_string()),
        Err(e) => Response::text(e.to_string()).with_status(403),
    }
}

valbox_sdk::http_val!(count);
valbox_sdk::scopes!("blob:read", "blob:write");
