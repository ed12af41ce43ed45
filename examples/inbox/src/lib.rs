//! `inbox`: an email val that keeps each message it receives in the
//! owner's SQLite database (scopes `sqlite:read` and `sqlite:write`), in
//! the table `inbox` (created if missing): who it is from, its subject and
//! text, and beside them its attachments' names and sizes as JSON. A
//! message that could not be parsed is kept too, with its raw text and
//! `parsed = 0`. A denied scope fails the delivery, which is then retried.

use valbox_sdk::sqlite::{self, BatchMode, Value};
use valbox_sdk::{Error, ReceivedEmail};

const CREATE: &str = "CREATE TABLE IF NOT EXISTS inbox (
    id INTEGER PRIMARY KEY,
    sender TEXT NOT NULL,
    subject TEXT,
    text TEXT,
    attachments TEXT NOT NULL,
    message_id TEXT,
    parsed INTEGER NOT NULL
)";

fn receive(mail: ReceivedEmail) -> Result<(), Error> {
    let attachments: Vec<_> = mail
        .attachments
        .iter()
        .map(|a| serde_json::json!({ "name": a.filename, "size": a.content.len() }))
        .collect();
    let text = match &mail.raw {
        Some(raw) => Some(String::from_utf8_lossy(raw).into_owned()),
        None => mail.text.clone(),
    };
    let optional = |v: Option<String>| v.map_or(Value::Null, Value::Text);
    sqlite::batch(
        &[
            sqlite::statement(CREATE, &[]),
            sqlite::statement(
                "INSERT INTO inbox (sender, subject, text, attachments, message_id, parsed)
                 VALUES (?, ?, ?, ?, ?, ?)",
                &[
                    Value::Text(mail.from.email.clone()),
                    optional(mail.subject.clone()),
                    optional(text),
                    Value::Text(serde_json::Value::from(attachments).to_string()),
                    optional(mail.message_id.clone()),
                    Value::Integer(mail.parsed.into()),
                ],
            ),
        ],
        BatchMode::Write,
    )?;
    println!(
        "kept mail from {} ({} bytes, {} attachments)",
        mail.from.email,
        mail.raw_size,
        mail.attachments.len()
    );
    Ok(())
}

valbox_sdk::email_val!(receive);
valbox_sdk::scopes!("sqlite:read", "sqlite:write");
