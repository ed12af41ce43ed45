//! `hello`: the smallest HTTP val.
//!
//! `GET /?name=Ada` answers `Hello, Ada!`; without a name it greets the world.

use valbox_sdk::{Request, Response};

/// Called once per request; whatever it returns is the HTTP response.
fn hello(req: Request) -> Response {
    // `query_param` percent-decodes, so `?name=Ada%20L` gives "Ada L".
    let name = req
        .query_param("name")
        .filter(|name| !name.is_empty())
        .unwrap_or_else(|| "world".to_string());

    // stdout and stderr end up in the val's logs.
    println!("hello: greeted {name}");

    // `Response::text` is a 200 with `content-type: text/plain; charset=utf-8`.
    Response::text(format!("Hello, {name}!")).with_header("x-valbox-example", "hello")
}

// Export `hello` as this component's HTTP handler.
valbox_sdk::http_val!(hello);
