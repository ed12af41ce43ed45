//! `uses-slugify`: an HTTP val that uses the `slugify` library val.
//!
//! It imports the library's interface (generated from the library's WIT,
//! which the server serves at `GET /v2/vals/ID/versions/N/wit`) and is
//! deployed naming the library: `valbox deploy uses-slugify FILE.wasm
//! --dep USER/slugify`. The library's code runs inside this val's call.
//!
//! - `GET /slug?text=Hello, World!` answers `hello-world`.
//! - `GET /probe?what=env:NAME` answers the library's `probe(..)` as is:
//!   what the library sees of this val's env vars, blobs and network;
//!   with `&after_ms=N` it waits N ms first (to revoke the call's token
//!   mid-call, say).

mod bindings {
    wit_bindgen::generate!({
        path: "../slugify/wit",
        inline: "
            package valbox-examples:uses-slugify;
            world uses-slugify { import valbox-examples:slugify/slug@0.1.0; }
        ",
        // The library's interface lives in another package than this world.
        generate_all,
    });
}

use bindings::valbox_examples::slugify::slug;
use valbox_sdk::{Request, Response};

fn handle(req: Request) -> Response {
    let arg = |name| req.query_param(name).unwrap_or_default();
    match req.path.as_str() {
        "/slug" => Response::text(slug::slugify(&arg("text"))),
        "/probe" => {
            let wait = arg("after_ms").parse().unwrap_or(0);
            std::thread::sleep(std::time::Duration::from_millis(wait));
            Response::text(slug::probe(&arg("what")))
        }
        _ => Response::text("try /slug?text=Hello, World! or /probe?what=env:NAME").with_status(404),
    }
}

valbox_sdk::http_val!(handle);
