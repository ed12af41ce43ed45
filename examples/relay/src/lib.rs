//! `relay`: an HTTP val that calls other HTTP vals as APIs, for trying
//! out chains of calls and what one request may cause.
//!
//! - `GET /?via=alice/relay,bob/relay` calls the first val named with
//!   `via` set to the rest, and answers `relay <- ` followed by its answer;
//!   with nothing left it answers `end`. A callee's failure ends the chain
//!   with status 502 and the callee's error.
//! - `GET /?times=N&call=bob/relay&via=V` calls `bob/relay` N times, one
//!   after another (passing `via` on, if given), and answers how many
//!   answered and the first error.
//!
//! Needs `val:read`.

use valbox_sdk::{Request, Response, vals};

fn relay(req: Request) -> Response {
    if let Some(times) = req.query_param("times") {
        return repeat(&req, times.parse().unwrap_or(0));
    }
    let via = req.query_param("via").unwrap_or_default();
    let mut hops = via.split(',').filter(|hop| !hop.is_empty());
    let Some(next) = hops.next() else {
        return Response::text("end");
    };
    let rest: Vec<&str> = hops.collect();
    let onward = Request {
        method: "GET".into(),
        path: "/".into(),
        query: format!("via={}", rest.join(",")),
        ..Request::default()
    };
    match vals::call_http(next, &onward) {
        Ok(answer) => Response::text(format!(
            "relay <- {}",
            String::from_utf8_lossy(&answer.body)
        ))
        .with_status(answer.status),
        Err(e) => Response::text(format!("{next}: {e}")).with_status(502),
    }
}

fn repeat(req: &Request, times: u32) -> Response {
    let target = req.query_param("call").unwrap_or_default();
    let via = req.query_param("via").unwrap_or_default();
    let request = Request {
        method: "GET".into(),
        path: "/".into(),
        query: format!("via={via}"),
        ..Request::default()
    };
    let mut answered = 0;
    let mut first_error = None;
    for _ in 0..times {
        match vals::call_http(&target, &request) {
            Ok(answer) if answer.status == 200 => answered += 1,
            Ok(answer) => {
                first_error.get_or_insert(String::from_utf8_lossy(&answer.body).into_owned());
            }
            Err(e) => {
                first_error.get_or_insert(e.to_string());
            }
        }
    }
    let error = first_error.unwrap_or_default();
    Response::text(format!("answered {answered} of {times}; {error}"))
}

valbox_sdk::http_val!(relay);
