//! `greet-env`: an HTTP val that reads one of its environment variables.
//!
//! With `GREETING=Howdy` set on the val it answers `Howdy, world!`. Reading
//! environment variables needs the `env:read` scope; without it the host
//! refuses and the val answers 500 with the reason.

use valbox_sdk::{Request, Response, env};

fn greet(_req: Request) -> Response {
    // Both streams are captured into the val's logs.
    println!("greet-env: stdout line");
    eprintln!("greet-env: stderr line");

    match env::get("GREETING") {
        Ok(Some(greeting)) => Response::text(format!("{greeting}, world!")),
        Ok(None) => Response::text("GREETING is not set"),
        // The error displays as e.g. `denied: missing scope env:read`.
        Err(err) => Response::text(err.to_string()).with_status(500),
    }
}

valbox_sdk::http_val!(greet);
