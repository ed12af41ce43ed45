//! A component for the standard `wasi:http/proxy` world, as `wasmtime
//! serve` or Spin would run it: nothing in it knows of Valbox.
//!
//! - `GET /?name=N` answers `Hello, N!`
//! - `GET /fetch?url=U` requests U and answers with its status and body
//! - `POST /echo` streams the request body back as it arrives
//! - `GET /stream?chunks=N` answers N lines, written one at a time
//! - `GET /env?name=V` answers the environment variable V

use wstd::http::body::{Body, Bytes};
use wstd::http::{Client, Error, Request, Response, StatusCode};

#[wstd::http_server]
async fn main(request: Request<Body>) -> Result<Response<Body>, Error> {
    let query = request.uri().query().unwrap_or("").to_string();
    match request.uri().path() {
        "/" => Ok(text(
            StatusCode::OK,
            format!("Hello, {}!", param(&query, "name").unwrap_or("world".into())),
        )),
        "/fetch" => match param(&query, "url") {
            Some(url) => fetch(&url).await,
            None => Ok(text(StatusCode::BAD_REQUEST, "say which: /fetch?url=U".into())),
        },
        "/echo" => Ok(Response::new(request.into_body())),
        "/stream" => {
            let chunks: usize = param(&query, "chunks").and_then(|n| n.parse().ok()).unwrap_or(3);
            let lines = (0..chunks).map(|i| Ok::<_, std::convert::Infallible>(Bytes::from(format!("chunk {i}\n"))));
            Ok(Response::new(Body::from_try_stream(futures_lite::stream::iter(lines))))
        }
        "/env" => {
            let name = param(&query, "name").unwrap_or_default();
            Ok(match std::env::var(&name) {
                Ok(value) => text(StatusCode::OK, value),
                Err(_) => text(StatusCode::NOT_FOUND, format!("`{name}` is not set")),
            })
        }
        _ => Ok(text(StatusCode::NOT_FOUND, "no such page".into())),
    }
}

/// Request `url` and answer with what came back; a refused or failed
/// request answers 502 with the reason.
async fn fetch(url: &str) -> Result<Response<Body>, Error> {
    let request = match Request::get(url).body(Body::empty()) {
        Ok(request) => request,
        Err(e) => return Ok(text(StatusCode::BAD_REQUEST, format!("bad url: {e}"))),
    };
    match Client::new().send(request).await {
        Ok(response) => {
            let status = response.status();
            let body = response.into_body().bytes_contents().await?;
            Ok(Response::builder().status(status).body(Body::from(body))?)
        }
        Err(e) => Ok(text(StatusCode::BAD_GATEWAY, format!("fetch failed: {e:?}"))),
    }
}

fn text(status: StatusCode, body: String) -> Response<Body> {
    let mut response = Response::new(Body::from(body));
    *response.status_mut() = status;
    response
}

/// The query parameter `name`, percent-decoded.
fn param(query: &str, name: &str) -> Option<String> {
    query.split('&').find_map(|pair| {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        (key == name).then(|| decode(value))
    })
}

fn decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' => match text.get(i + 1..i + 3).and_then(|h| u8::from_str_radix(h, 16).ok()) {
                Some(b) => {
                    out.push(b);
                    i += 2;
                }
                None => out.push(b'%'),
            },
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}
