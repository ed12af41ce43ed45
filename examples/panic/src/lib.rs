//! `panic`: an HTTP val that panics, to show what the host does then.
//!
//! Vals build with `panic = "abort"`: the panic message goes to stderr (so to
//! the val's logs) and the call traps instead of returning a response.

use valbox_sdk::{Request, Response};

fn handler(_req: Request) -> Response {
    panic!("this val panics on purpose")
}

valbox_sdk::http_val!(handler);
