// `js-inbox`: an email val in JavaScript that keeps each message it
// receives in the owner's SQLite database (needs `sqlite:read` and
// `sqlite:write`), in the table `inbox` (created if missing): who it is
// from, its subject and text, and beside them its attachments' names and
// sizes as JSON. A message that could not be parsed is kept too, with its
// raw text and `parsed = 0`. A denied scope throws, which fails the
// delivery; it is then retried. Like `inbox`, in Rust.

import { receiveEmail, sqlite } from "valbox";

const CREATE = `CREATE TABLE IF NOT EXISTS inbox (
    id INTEGER PRIMARY KEY,
    sender TEXT NOT NULL,
    subject TEXT,
    text TEXT,
    attachments TEXT NOT NULL,
    message_id TEXT,
    parsed INTEGER NOT NULL
)`;

export const emailHandler = receiveEmail(async (mail) => {
  const attachments = mail.attachments.map((a) => ({
    name: a.filename ?? null,
    size: a.content.length,
  }));
  // The raw bytes, decoded lossily, when the message was not valid MIME.
  const text = mail.raw ? new TextDecoder().decode(mail.raw) : mail.text;
  sqlite.batch([
    CREATE,
    [
      `INSERT INTO inbox (sender, subject, text, attachments, message_id, parsed)
       VALUES (?, ?, ?, ?, ?, ?)`,
      [
        mail.from.email,
        mail.subject ?? null,
        text ?? null,
        JSON.stringify(attachments),
        mail.messageId ?? null,
        mail.parsed ? 1 : 0,
      ],
    ],
  ]);
  console.log(
    `kept mail from ${mail.from.email} (${mail.rawSize} bytes, ${mail.attachments.length} attachments)`,
  );
});
