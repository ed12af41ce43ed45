"""The Valbox helpers for Python vals: requests and responses, JSON, and
each capability as plain functions that raise `ValboxError` (with `kind`,
e.g. "denied") when the host refuses. Built into the val by
componentize-py, beside the bindings it generates from the platform's WIT.
"""

import json
from dataclasses import dataclass, fields
from typing import List, Optional, Tuple
from urllib.parse import parse_qs

from componentize_py_types import Err
from wit_world.imports import blob as _blob
from wit_world.imports import email as _email
from wit_world.imports import env as _env
from wit_world.imports import fetch as _fetch
from wit_world.imports import sqlite as _sqlite
from wit_world.imports import types as _types

_KINDS = {
    _types.Error_Denied: "denied",
    _types.Error_Unavailable: "unavailable",
    _types.Error_Invalid: "invalid",
    _types.Error_Limit: "limit",
    _types.Error_NotFound: "not-found",
    _types.Error_Internal: "internal",
}


class ValboxError(Exception):
    """A host call's failure: `kind` is the WIT error's case."""

    def __init__(self, kind, message):
        super().__init__(f"{kind}: {message}")
        self.kind = kind
        self.detail = message


def _host(call, *args):
    try:
        return call(*args)
    except Err as e:
        raise ValboxError(_KINDS.get(type(e.value), "internal"), e.value.value) from None


def _bytes(body):
    if body is None:
        return b""
    if isinstance(body, (bytes, bytearray)):
        return bytes(body)
    if isinstance(body, str):
        return body.encode()
    return json.dumps(body).encode()


class Request:
    """The request an HTTP val receives."""

    def __init__(self, raw):
        self.method = raw.method
        self.path = raw.path
        self.query = {k: v[0] for k, v in parse_qs(raw.query).items()}
        self.headers = {k.lower(): v for k, v in raw.headers}
        self.body = raw.body

    def text(self):
        return self.body.decode()

    def json(self):
        return json.loads(self.body)


class Response:
    """What an HTTP val answers."""

    def __init__(self, body=b"", status=200, headers=None):
        self.status = status
        self.headers = list((headers or {}).items())
        self.body = _bytes(body)

    @staticmethod
    def text(text, status=200):
        return Response(text, status, {"content-type": "text/plain; charset=utf-8"})

    @staticmethod
    def html(html, status=200):
        return Response(html, status, {"content-type": "text/html; charset=utf-8"})

    @staticmethod
    def json(value, status=200):
        return Response(json.dumps(value), status, {"content-type": "application/json"})


def http(handler):
    """Export an HTTP val: `HttpHandler = valbox.http(handle)`."""
    from wit_world.imports.http_types import Response as RawResponse

    class HttpHandler:
        def handle(self, raw):
            response = handler(Request(raw))
            if not isinstance(response, Response):
                response = Response.json(response)
            return RawResponse(response.status, response.headers, response.body)

    return HttpHandler


def script(fn):
    """Export a script val: `Script = valbox.script(fn)`; its arguments are
    the Run API's JSON args, its result any JSON value."""

    class Script:
        def run(self, args):
            try:
                return json.dumps(fn(*json.loads(args)))
            except Exception as e:
                raise Err(str(e)) from None

    return Script


class CronEvent:
    """One due run of a cron val: `schedule`, `due` and `last_run` (ms
    since the epoch; `None` on the first run)."""

    def __init__(self, schedule, due, last_run):
        self.schedule = schedule
        self.due = due
        self.last_run = last_run


def cron(fn):
    """Export a cron val: `Cron = valbox.cron(fn)`; `fn` gets a
    `CronEvent`, and an exception fails the run."""

    class Cron:
        def run(self, event):
            try:
                fn(CronEvent(event.schedule, event.due_ms, event.last_run_ms))
            except Exception as e:
                raise Err(str(e)) from None

    return Cron


@dataclass
class ReceivedEmail:
    """A message an email val receives: the WIT `received-email`'s fields.
    `from_` (`from` is Python's), `to` and `cc` are addresses (`.email`,
    `.name`); the sender's is whatever the message says, so it proves
    nothing. `attachments` have `.filename` (or None), `.content_type` and
    `.content` (bytes). When the message was not valid MIME, `parsed` is
    False, the parsed fields are empty and `raw` holds its bytes."""

    from_: _email.Address
    to: List[_email.Address]
    cc: List[_email.Address]
    subject: Optional[str]
    text: Optional[str]
    html: Optional[str]
    headers: List[Tuple[str, str]]
    attachments: list
    message_id: Optional[str]
    envelope_from: str
    envelope_to: str
    raw_size: int
    parsed: bool
    raw: Optional[bytes]

    def header(self, name):
        """The first value of the header `name` (any case), or None."""
        name = name.lower()
        return next((v for n, v in self.headers if n.lower() == name), None)


def receive_email(fn):
    """Export an email val: `EmailHandler = valbox.receive_email(fn)`; `fn`
    gets each message sent to the val's address as a `ReceivedEmail`, and
    an exception fails the delivery (it is retried later). (`email()` is
    the other way: it sends mail to the val's owner.)"""

    class EmailHandler:
        def receive(self, mail):
            names = (f.name for f in fields(ReceivedEmail))
            try:
                fn(ReceivedEmail(**{name: getattr(mail, name) for name in names}))
            except Exception as e:
                raise Err(str(e)) from None

    return EmailHandler


class blob:
    """The owner's blobs (`blob:read`, `blob:write`)."""

    @staticmethod
    def get(key):
        return _host(_blob.get, key)

    @staticmethod
    def get_json(key):
        value = blob.get(key)
        return None if value is None else json.loads(value)

    @staticmethod
    def set(key, value):
        _host(_blob.set, key, _bytes(value))

    @staticmethod
    def set_json(key, value):
        blob.set(key, json.dumps(value))

    @staticmethod
    def list(prefix=""):
        return _host(_blob.list, prefix)

    @staticmethod
    def delete(key):
        _host(_blob.delete, key)

    @staticmethod
    def update_json(key, change):
        """Read, change and write a JSON blob without losing concurrent
        updates: `change(old)` (None when absent) is retried on conflict."""
        while True:
            current = _host(_blob.get_versioned, key)
            old = None if current is None else json.loads(current.value)
            new = change(old)
            expected = None if current is None else current.version
            outcome = _host(_blob.set_if, key, json.dumps(new).encode(), expected)
            if isinstance(outcome, _blob.SetOutcome_Written):
                return new


def _sql_value(v):
    if v is None:
        return _sqlite.Value_Null()
    if isinstance(v, bool):
        return _sqlite.Value_Integer(int(v))
    if isinstance(v, int):
        return _sqlite.Value_Integer(v)
    if isinstance(v, float):
        return _sqlite.Value_Real(v)
    if isinstance(v, (bytes, bytearray)):
        return _sqlite.Value_Blob(bytes(v))
    return _sqlite.Value_Text(str(v))


def _statement(sql, args=None):
    if isinstance(args, dict):
        named = [(k, _sql_value(v)) for k, v in args.items()]
        return _sqlite.Statement(sql, _sqlite.Args_Named(named))
    return _sqlite.Statement(sql, _sqlite.Args_Positional([_sql_value(v) for v in args or []]))


def _rows(rs):
    return [[getattr(v, "value", None) for v in row] for row in rs.rows]


class sqlite:
    """The owner's SQLite database (`sqlite:read`, `sqlite:write`).
    `execute` answers the rows as lists of plain values."""

    @staticmethod
    def execute(sql, args=None):
        return _rows(_host(_sqlite.execute, _statement(sql, args)))

    @staticmethod
    def batch(statements, mode="write"):
        """`statements`: strings or (sql, args) pairs, in one transaction."""
        mode = {"write": _sqlite.BatchMode.WRITE, "read": _sqlite.BatchMode.READ}.get(
            mode, _sqlite.BatchMode.DEFERRED
        )
        prepared = [_statement(s) if isinstance(s, str) else _statement(*s) for s in statements]
        return [_rows(rs) for rs in _host(_sqlite.batch, prepared, mode)]


class env:
    """The val's environment variables (`env:read`)."""

    @staticmethod
    def get(name):
        return _host(_env.get, name)


def email(subject=None, text=None, html=None):
    """Mail the val's owner (`email:write`)."""
    message = _email.Message([], [], [], None, [], subject, text, html, [], [])
    return _host(_email.send, message)


def fetch(url, method="GET", headers=None, body=None):
    """An outbound HTTP request (`fetch`): answers status, headers, body."""
    request = _fetch.Request(method, url, list((headers or {}).items()), _bytes(body))
    return _host(_fetch.fetch, request)
