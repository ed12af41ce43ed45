//! `sql-repeat`: runs the SQL statement in the request body `n` times
//! (`?n=`, default 1) through the `sqlite` import, one import call each,
//! or all of them in one read batch with `?batch`, and answers with the
//! number of rows the last run returned. The SQLite benchmark times it
//! against the same statement run natively; it is also a quick way to try
//! a statement against your database by hand.

use valbox_sdk::sqlite::{self, BatchMode};
use valbox_sdk::{Request, Response};

fn sql_repeat(req: Request) -> Response {
    let sql = req.text().unwrap_or_default().to_string();
    let n: usize = req
        .query_param("n")
        .and_then(|n| n.parse().ok())
        .unwrap_or(1);
    let result = if req.query_param("batch").is_some() {
        let statements = vec![sqlite::statement(&sql, &[]); n];
        sqlite::batch(&statements, BatchMode::Read).map(|r| r.last().map_or(0, |r| r.rows.len()))
    } else {
        let mut rows = 0;
        (0..n)
            .try_for_each(|_| sqlite::execute(&sql, &[]).map(|r| rows = r.rows.len()))
            .map(|()| rows)
    };
    match result {
        Ok(rows) => Response::text(rows.to_string()),
        Err(e) => Response::text(e.to_string()).with_status(400),
    }
}

valbox_sdk::http_val!(sql_repeat);
