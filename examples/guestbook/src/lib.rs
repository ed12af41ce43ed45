//! `guestbook`: an HTML page backed by the owner's SQLite database.
//! `GET /` lists the entries (needs `sqlite:read`); `POST /` with a form
//! body `name=...&message=...` adds one (needs `sqlite:write`).

use valbox_sdk::sqlite::{self, BatchMode, Value};
use valbox_sdk::{Request, Response};

fn guestbook(req: Request) -> Response {
    let result = match req.method.as_str() {
        "POST" => sign(&req),
        _ => page(),
    };
    result.unwrap_or_else(|e| {
        let status = match e {
            valbox_sdk::Error::Denied(_) => 403,
            // The database is moving between nodes, or busy: try again.
            valbox_sdk::Error::Unavailable(_) | valbox_sdk::Error::Internal(_) => 503,
            _ => 500,
        };
        Response::text(e.to_string()).with_status(status)
    })
}

fn sign(req: &Request) -> Result<Response, valbox_sdk::Error> {
    let form = Request {
        query: req.text().unwrap_or_default().to_string(),
        ..Request::default()
    };
    let name = form
        .query_param("name")
        .unwrap_or_else(|| "anonymous".into());
    let message = form.query_param("message").unwrap_or_default();
    sqlite::batch(
        &[
            sqlite::statement(
                "CREATE TABLE IF NOT EXISTS entries (name TEXT NOT NULL, message TEXT NOT NULL)",
                &[],
            ),
            sqlite::statement(
                "INSERT INTO entries (name, message) VALUES (?, ?)",
                &[Value::Text(name), Value::Text(message)],
            ),
        ],
        BatchMode::Write,
    )?;
    Ok(Response::new(303).with_header("location", "./"))
}

fn page() -> Result<Response, valbox_sdk::Error> {
    let rows = match sqlite::execute("SELECT name, message FROM entries ORDER BY rowid", &[]) {
        Ok(rs) => rs.rows,
        // No entries yet: the table does not exist until the first one.
        Err(valbox_sdk::Error::Invalid(m)) if m.contains("no such table") => Vec::new(),
        Err(e) => return Err(e),
    };
    let mut html = String::from("<!doctype html><title>Guestbook</title><h1>Guestbook</h1><ul>");
    for row in rows {
        if let [Value::Text(name), Value::Text(message)] = row.as_slice() {
            html.push_str(&format!(
                "<li><b>{}</b>: {}</li>",
                escape(name),
                escape(message)
            ));
        }
    }
    html.push_str("</ul><form method=post><input name=name placeholder=name> <input name=message placeholder=message> <button>Sign</button></form>");
    Ok(Response::html(html))
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

valbox_sdk::http_val!(guestbook);
