//! `spin`: an HTTP val that burns CPU, to exercise the host's time limits.
//!
//! Without a query it loops forever, until the host stops it. With
//! `?iters=N` it does N iterations and answers `spun N`.

use std::hint::black_box;
use valbox_sdk::{Request, Response};

fn spin(req: Request) -> Response {
    let iters = match req.query_param("iters") {
        None => None,
        Some(n) => match n.parse::<u64>() {
            Ok(n) => Some(n),
            Err(_) => return Response::text("iters must be a whole number").with_status(400),
        },
    };

    // `black_box` keeps the optimiser from proving the loop useless and
    // deleting it.
    let mut state = 1u64;
    let step = |state: &mut u64| {
        *state = black_box(
            state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407),
        );
    };
    match iters {
        Some(n) => {
            for _ in 0..n {
                step(&mut state);
            }
            black_box(state);
            Response::text(format!("spun {n}"))
        }
        None => loop {
            step(&mut state);
        },
    }
}

valbox_sdk::http_val!(spin);
