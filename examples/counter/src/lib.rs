//! `counter`: counts its visits in a blob (scopes `blob:read` and
//! `blob:write`). `GET /` adds one and answers the new count; `DELETE /`
//! resets it. A denied scope comes back as a 403 that names it. Each visit
//! is a compare-and-swap (`blob::update_json`), so concurrent visits all
//! count.

use valbox_sdk::{Request, Response, blob};

const KEY: &str = "counter/visits";

fn count(req: Request) -> Response {
    let result = if req.method == "DELETE" {
        blob::delete(KEY).map(|()| 0)
    } else {
        // A conditional write: concurrent visits never lose a count.
        blob::update_json(KEY, |n: Option<u64>| n.unwrap_or(0) + 1)
    };
    match result {
        Ok(n) => Response::text(n.to_string()),
        Err(e) => Response::text(e.to_string()).with_status(403),
    }
}

valbox_sdk::http_val!(count);
valbox_sdk::scopes!("blob:read", "blob:write");
