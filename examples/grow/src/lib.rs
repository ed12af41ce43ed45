//! `grow`: an HTTP val that allocates memory, to exercise the host's memory
//! limits.
//!
//! Without a query it allocates 1 MiB chunks until an allocation fails,
//! which aborts the val (the host sees a trap). With `?mb=N` it allocates
//! N MiB, keeps them until it answers, and answers `grew N MiB`.

use std::hint::black_box;
use valbox_sdk::{Request, Response};

const MIB: usize = 1024 * 1024;

fn grow(req: Request) -> Response {
    let limit = match req.query_param("mb") {
        None => None,
        Some(n) => match n.parse::<usize>() {
            Ok(n) => Some(n),
            Err(_) => return Response::text("mb must be a whole number").with_status(400),
        },
    };

    let mut chunks: Vec<Vec<u8>> = Vec::new();
    while limit.is_none_or(|limit| chunks.len() < limit) {
        // Fill the chunk so its pages are really written, not just reserved.
        let mut chunk = Vec::with_capacity(MIB);
        chunk.resize(MIB, 0xa5);
        chunks.push(black_box(chunk));
    }
    black_box(&chunks);
    Response::text(format!("grew {} MiB", chunks.len()))
}

valbox_sdk::http_val!(grow);
