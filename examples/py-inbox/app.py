"""`py-inbox`: an email val in Python that keeps each message it receives
in the owner's SQLite database (needs `sqlite:read` and `sqlite:write`),
in the table `inbox` (created if missing): who it is from, its subject and
text, and beside them its attachments' names and sizes as JSON. A message
that could not be parsed is kept too, with its raw text and `parsed = 0`.
A denied scope raises, which fails the delivery; it is then retried. Like
`inbox`, in Rust."""

import json

import valbox

CREATE = """CREATE TABLE IF NOT EXISTS inbox (
    id INTEGER PRIMARY KEY,
    sender TEXT NOT NULL,
    subject TEXT,
    text TEXT,
    attachments TEXT NOT NULL,
    message_id TEXT,
    parsed INTEGER NOT NULL
)"""


def receive(mail):
    attachments = [{"name": a.filename, "size": len(a.content)} for a in mail.attachments]
    # The raw bytes, decoded lossily, when the message was not valid MIME.
    text = mail.raw.decode(errors="replace") if mail.raw is not None else mail.text
    valbox.sqlite.batch(
        [
            CREATE,
            (
                "INSERT INTO inbox (sender, subject, text, attachments, message_id, parsed)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                [
                    mail.from_.email,
                    mail.subject,
                    text,
                    json.dumps(attachments, separators=(",", ":")),
                    mail.message_id,
                    int(mail.parsed),
                ],
            ),
        ]
    )
    print(
        f"kept mail from {mail.from_.email} ({mail.raw_size} bytes,"
        f" {len(mail.attachments)} attachments)"
    )


EmailHandler = valbox.receive_email(receive)
