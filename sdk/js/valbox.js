// The Valbox helpers for JavaScript and TypeScript vals: requests and
// responses, JSON, and each capability as plain functions that throw a
// `ValboxError` (with `kind`, e.g. "denied") when the host refuses.
// Types: valbox.d.ts. Bundled into the val by build.mjs.

import * as rawBlob from "valbox:platform/blob@0.1.0";
import * as rawSqlite from "valbox:platform/sqlite@0.1.0";
import * as rawEnv from "valbox:platform/env@0.1.0";
import * as rawEmail from "valbox:platform/email@0.1.0";
import * as rawFetch from "valbox:platform/fetch@0.1.0";

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** A host call's failure: `kind` is the WIT error's case. */
export class ValboxError extends Error {
  constructor(kind, message) {
    super(`${kind}: ${message}`);
    this.name = "ValboxError";
    this.kind = kind;
    this.detail = message;
  }
}

/** Call a WIT import, turning its error into a ValboxError. */
function host(call) {
  try {
    return call();
  } catch (e) {
    if (e && e.payload && typeof e.payload.tag === "string") {
      throw new ValboxError(e.payload.tag, e.payload.val);
    }
    throw e;
  }
}

/** The message of a thrown error or rejection, for the host's `err`. */
function failure(e) {
  return String(e && e.message ? e.message : e);
}

function bytes(body) {
  if (body === undefined || body === null) return new Uint8Array();
  if (body instanceof Uint8Array) return body;
  if (typeof body === "string") return encoder.encode(body);
  return encoder.encode(JSON.stringify(body));
}

/** The request an HTTP val receives. Its query and headers are parsed
 * when first read: a val that does not read them does not pay for them. */
export class Request {
  #raw;
  #query;
  #headers;
  constructor(raw) {
    this.#raw = raw;
    this.method = raw.method;
    this.path = raw.path;
    this.body = raw.body;
  }
  get query() {
    return (this.#query ??= new URLSearchParams(this.#raw.query));
  }
  get headers() {
    return (this.#headers ??= new Map(this.#raw.headers.map(([k, v]) => [k.toLowerCase(), v])));
  }
  text() {
    return decoder.decode(this.body);
  }
  json() {
    return JSON.parse(this.text());
  }
}

/** What an HTTP val answers. */
export class Response {
  constructor(body = "", { status = 200, headers = {} } = {}) {
    this.status = status;
    this.headers = Object.entries(headers);
    this.body = bytes(body);
  }
  static text(text, status = 200) {
    return new Response(text, { status, headers: { "content-type": "text/plain; charset=utf-8" } });
  }
  static html(html, status = 200) {
    return new Response(html, { status, headers: { "content-type": "text/html; charset=utf-8" } });
  }
  static json(value, status = 200) {
    return new Response(JSON.stringify(value), {
      status,
      headers: { "content-type": "application/json" },
    });
  }
}

/** Export an HTTP val: `export const httpHandler = http((req) => Response.text("hi"))`. */
export function http(handler) {
  return {
    handle(raw) {
      let response;
      try {
        response = handler(new Request(raw));
      } catch (e) {
        console.error(String(e && e.stack ? e.stack : e));
        response = Response.text(`the val failed: ${e}`, 500);
      }
      if (!(response instanceof Response)) response = Response.json(response);
      return { status: response.status, headers: response.headers, body: response.body };
    },
  };
}

/** Export a script val: `export const script = run((a, b) => a + b)`; its
 * arguments are the Run API's JSON args, its result any JSON value. */
export function run(fn) {
  return {
    run(args) {
      try {
        return JSON.stringify(fn(...JSON.parse(args)) ?? null);
      } catch (e) {
        throw failure(e);
      }
    },
  };
}

/**
 * The export of a cron val: `export const cron = scheduled(fn)`. `fn` gets
 * `{ schedule, due, lastRun }` (times in ms since the epoch; `lastRun` is
 * undefined on the first run); throwing fails the run.
 */
export function scheduled(fn) {
  return {
    run(event) {
      try {
        const done = fn({
          schedule: event.schedule,
          due: Number(event.dueMs),
          lastRun: event.lastRunMs === undefined ? undefined : Number(event.lastRunMs),
        });
        if (done && typeof done.then === "function") {
          throw new Error("a cron val's function must be synchronous (no async): its run ends when it returns");
        }
      } catch (e) {
        throw failure(e);
      }
    },
  };
}

/** The mail an email val receives (the WIT `received-email`, in camelCase). */
export class ReceivedEmail {
  constructor(raw) {
    const address = (a) => ({ email: a.email, name: a.name });
    /** What the `From` header says: anyone can write anything there. */
    this.from = address(raw.from);
    this.to = raw.to.map(address);
    this.cc = raw.cc.map(address);
    this.subject = raw.subject;
    this.text = raw.text;
    this.html = raw.html;
    this.headers = raw.headers.map(([name, value]) => [name, value]);
    this.attachments = raw.attachments.map((a) => ({
      filename: a.filename,
      contentType: a.contentType,
      content: a.content,
    }));
    this.messageId = raw.messageId;
    this.envelopeFrom = raw.envelopeFrom;
    this.envelopeTo = raw.envelopeTo;
    this.rawSize = Number(raw.rawSize);
    this.parsed = raw.parsed;
    this.raw = raw.raw;
  }
  /** The first value of the header `name` (any case), or undefined. */
  header(name) {
    const wanted = name.toLowerCase();
    const found = this.headers.find(([n]) => n.toLowerCase() === wanted);
    return found ? found[1] : undefined;
  }
}

/**
 * The export of an email val: `export const emailHandler =
 * receiveEmail(async (mail) => { ... })`, called with each message sent to
 * the val's address as a `ReceivedEmail`. A thrown error or a rejected
 * promise fails the delivery with its message (it is retried later).
 * (`email()` is the other way: it sends mail to the val's owner.)
 */
export function receiveEmail(fn) {
  return {
    receive(raw) {
      let done;
      try {
        done = fn(new ReceivedEmail(raw));
      } catch (e) {
        throw failure(e);
      }
      // componentize-js runs the event loop until a returned promise
      // settles: the delivery ends then.
      if (done && typeof done.then === "function") {
        return done.then(
          () => undefined,
          (e) => {
            throw failure(e);
          },
        );
      }
    },
  };
}

/** The owner's blobs (`blob:read`, `blob:write`). */
export const blob = {
  get: (key) => host(() => rawBlob.get(key)),
  getText: (key) => {
    const value = blob.get(key);
    return value === undefined ? undefined : decoder.decode(value);
  },
  getJSON: (key) => {
    const text = blob.getText(key);
    return text === undefined ? undefined : JSON.parse(text);
  },
  set: (key, value) => host(() => rawBlob.set(key, bytes(value))),
  setJSON: (key, value) => blob.set(key, JSON.stringify(value)),
  list: (prefix = "") =>
    host(() => rawBlob.list(prefix)).map((e) => ({
      key: e.key,
      size: Number(e.size),
      lastModified: Number(e.lastModified),
    })),
  delete: (key) => host(() => rawBlob.delete(key)),
  /** Read, change and write a JSON blob without losing concurrent
   * updates: `change(old)` (undefined when absent) is retried on conflict. */
  updateJSON(key, change) {
    for (;;) {
      const current = host(() => rawBlob.getVersioned(key));
      const old = current ? JSON.parse(decoder.decode(current.value)) : undefined;
      const next = change(old);
      const outcome = host(() =>
        rawBlob.setIf(key, bytes(JSON.stringify(next)), current ? current.version : undefined),
      );
      if (outcome.tag === "written") return next;
    }
  },
};

function sqlValue(v) {
  if (v === null || v === undefined) return { tag: "null" };
  if (typeof v === "bigint") return { tag: "integer", val: v };
  if (typeof v === "number")
    return Number.isInteger(v) ? { tag: "integer", val: BigInt(v) } : { tag: "real", val: v };
  if (typeof v === "boolean") return { tag: "integer", val: v ? 1n : 0n };
  if (v instanceof Uint8Array) return { tag: "blob", val: v };
  return { tag: "text", val: String(v) };
}

function jsValue(v) {
  if (v.tag === "null") return null;
  if (v.tag === "integer") {
    const n = Number(v.val);
    return Number.isSafeInteger(n) ? n : v.val;
  }
  return v.val;
}

function statement(sql, args = []) {
  const named = !Array.isArray(args);
  return {
    sql,
    args: named
      ? { tag: "named", val: Object.entries(args).map(([k, v]) => [k, sqlValue(v)]) }
      : { tag: "positional", val: args.map(sqlValue) },
  };
}

function resultSet(rs) {
  return {
    columns: rs.columns,
    columnTypes: rs.columnTypes,
    rows: rs.rows.map((row) => row.map(jsValue)),
    rowsAffected: Number(rs.rowsAffected),
    lastInsertRowid: rs.lastInsertRowid === undefined ? null : Number(rs.lastInsertRowid),
  };
}

/** The owner's SQLite database (`sqlite:read`, `sqlite:write`). */
export const sqlite = {
  /** `args`: an array (`?`) or an object (`:name`). */
  execute: (sql, args) => resultSet(host(() => rawSqlite.execute(statement(sql, args)))),
  /** `statements`: strings or `[sql, args]`; mode "write", "read" or "deferred". */
  batch: (statements, mode = "write") =>
    host(() =>
      rawSqlite.batch(
        statements.map((s) => (typeof s === "string" ? statement(s) : statement(s[0], s[1]))),
        mode,
      ),
    ).map(resultSet),
};

/** The val's environment variables (`env:read`). */
export const env = {
  get: (name) => host(() => rawEnv.get(name)),
};

/** Mail to the val's owner (`email:write`): `{subject, text, html}`. */
export function email(message) {
  return host(() =>
    rawEmail.send({
      to: [],
      cc: [],
      bcc: [],
      from: undefined,
      replyTo: [],
      subject: message.subject,
      text: message.text,
      html: message.html,
      headers: [],
      attachments: [],
    }),
  );
}

/** An outbound HTTP request (`fetch`); answers `{status, headers, body,
 * text(), json()}`. */
export function fetch(url, { method = "GET", headers = {}, body } = {}) {
  const raw = host(() =>
    rawFetch.fetch({ method, url, headers: Object.entries(headers), body: bytes(body) }),
  );
  return {
    status: raw.status,
    headers: new Map(raw.headers.map(([k, v]) => [k.toLowerCase(), v])),
    body: raw.body,
    text: () => decoder.decode(raw.body),
    json: () => JSON.parse(decoder.decode(raw.body)),
  };
}
