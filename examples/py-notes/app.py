"""`py-notes`: a list of notes in the owner's SQLite database. `GET /`
lists them as JSON (needs `sqlite:read`); `POST /` with a text body adds
one (needs `sqlite:write`). Without a scope it answers 403 with the
host's `denied: ...` message."""

import valbox


def notes(req):
    try:
        if req.method == "POST":
            valbox.sqlite.batch(
                [
                    "CREATE TABLE IF NOT EXISTS notes (id INTEGER PRIMARY KEY, text TEXT NOT NULL)",
                    ("INSERT INTO notes (text) VALUES (?)", [req.text()]),
                ]
            )
            return valbox.Response.text("added", 201)
        try:
            rows = valbox.sqlite.execute("SELECT id, text FROM notes ORDER BY id")
        except valbox.ValboxError as e:
            if e.kind == "invalid" and "no such table" in e.detail:
                rows = []
            else:
                raise
        return valbox.Response.json([{"id": i, "text": t} for i, t in rows])
    except valbox.ValboxError as e:
        return valbox.Response.text(str(e), 403 if e.kind == "denied" else 500)


HttpHandler = valbox.http(notes)
