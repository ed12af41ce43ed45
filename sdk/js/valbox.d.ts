// Types of the `valbox` helper module (valbox.js) and of the platform's
// WIT interfaces as componentize-js presents them to JavaScript.

/** The cases of the WIT `error` variant every capability returns. */
export type ErrorKind = "denied" | "unavailable" | "invalid" | "limit" | "not-found" | "internal";

/** A host call's failure; `message` reads `<kind>: <detail>`. */
export class ValboxError extends Error {
  readonly kind: ErrorKind;
  readonly detail: string;
}

export class Request {
  readonly method: string;
  /** Below the val's root, starting with `/`. */
  readonly path: string;
  readonly query: URLSearchParams;
  /** Lower-case names. */
  readonly headers: Map<string, string>;
  readonly body: Uint8Array;
  text(): string;
  json(): unknown;
}

export type Body = string | Uint8Array | object | null | undefined;

export class Response {
  constructor(body?: Body, init?: { status?: number; headers?: Record<string, string> });
  status: number;
  headers: [string, string][];
  body: Uint8Array;
  static text(text: string, status?: number): Response;
  static html(html: string, status?: number): Response;
  static json(value: unknown, status?: number): Response;
}

/** The export of an HTTP val: `export const httpHandler = http(handler)`.
 * A handler returning something else than a Response answers it as JSON. */
export function http(handler: (req: Request) => Response | object): {
  handle(request: import("valbox:platform/http-types@0.1.0").Request): import("valbox:platform/http-types@0.1.0").Response;
};

/** The export of a script val: `export const script = run(fn)`. */
export function run(fn: (...args: any[]) => unknown): { run(args: string): string };

/** One due run of a cron val; times in ms since the epoch. */
export interface CronEvent {
  schedule: string;
  due: number;
  /** Undefined on the first run. */
  lastRun?: number;
}

/** The export of a cron val: `export const cron = scheduled(fn)`; throwing fails the run. */
export function scheduled(fn: (event: CronEvent) => void): { run(event: unknown): void };

export interface Address {
  email: string;
  name?: string;
}

export interface ReceivedAttachment {
  /** Undefined when the message gives no file name. */
  filename?: string;
  /** The MIME type, e.g. `application/pdf`. */
  contentType: string;
  content: Uint8Array;
}

/** A message an email val receives. */
export class ReceivedEmail {
  /** The `From` header's first address (else the envelope's sender):
   * whatever the sender wrote, so it proves nothing. */
  readonly from: Address;
  readonly to: Address[];
  readonly cc: Address[];
  readonly subject?: string;
  /** The plain-text body (made from the HTML when there is none). */
  readonly text?: string;
  readonly html?: string;
  /** Every header, in order, as received (values decoded). */
  readonly headers: [string, string][];
  readonly attachments: ReceivedAttachment[];
  readonly messageId?: string;
  /** The envelope's sender (`MAIL FROM`); empty for a bounce. */
  readonly envelopeFrom: string;
  /** The envelope's recipient: this val's address. */
  readonly envelopeTo: string;
  /** The message's size as received, in bytes. */
  readonly rawSize: number;
  /** False when the message was not valid MIME: the fields above are
   * then empty and `raw` holds the message. */
  readonly parsed: boolean;
  /** The message as received, only when it could not be parsed. */
  readonly raw?: Uint8Array;
  /** The first value of the header `name` (any case). */
  header(name: string): string | undefined;
}

/** The export of an email val: `export const emailHandler = receiveEmail(fn)`,
 * called with each message sent to the val's address. Throwing, or a
 * rejected promise, fails the delivery (retried later). */
export function receiveEmail(fn: (mail: ReceivedEmail) => void | Promise<void>): {
  receive(mail: unknown): void | Promise<void>;
};

export interface BlobEntry {
  key: string;
  size: number;
  /** Milliseconds since the Unix epoch. */
  lastModified: number;
}

export const blob: {
  get(key: string): Uint8Array | undefined;
  getText(key: string): string | undefined;
  getJSON<T = unknown>(key: string): T | undefined;
  set(key: string, value: Body): void;
  setJSON(key: string, value: unknown): void;
  list(prefix?: string): BlobEntry[];
  delete(key: string): void;
  /** Retried on a concurrent write, so no update is lost. */
  updateJSON<T>(key: string, change: (old: T | undefined) => T): T;
};

export type SqlValue = null | number | bigint | string | Uint8Array;
export type SqlArgs = SqlValue[] | Record<string, SqlValue>;

export interface ResultSet {
  columns: string[];
  columnTypes: string[];
  rows: SqlValue[][];
  rowsAffected: number;
  lastInsertRowid: number | null;
}

export const sqlite: {
  execute(sql: string, args?: SqlArgs): ResultSet;
  batch(statements: (string | [string, SqlArgs])[], mode?: "write" | "read" | "deferred"): ResultSet[];
};

export const env: {
  get(name: string): string | undefined;
};

/** Mail to the val's owner; answers the message's id. */
export function email(message: { subject?: string; text?: string; html?: string }): string;

export interface FetchResponse {
  status: number;
  headers: Map<string, string>;
  body: Uint8Array;
  text(): string;
  json(): unknown;
}

export function fetch(
  url: string,
  init?: { method?: string; headers?: Record<string, string>; body?: Body },
): FetchResponse;

// The raw WIT imports, for what the helpers do not cover. Functions
// returning `result<T, error>` return T and throw `{ payload: { tag, val } }`.
declare module "valbox:platform/http-types@0.1.0" {
  export interface Request {
    method: string;
    path: string;
    query: string;
    headers: [string, string][];
    body: Uint8Array;
  }
  export interface Response {
    status: number;
    headers: [string, string][];
    body: Uint8Array;
  }
}

declare module "valbox:platform/blob@0.1.0" {
  export interface BlobEntry {
    key: string;
    size: bigint;
    lastModified: bigint;
  }
  export interface Versioned {
    value: Uint8Array;
    version: string;
  }
  export type SetOutcome = { tag: "written"; val: string } | { tag: "conflict"; val: string | undefined };
  export function get(key: string): Uint8Array | undefined;
  export function set(key: string, value: Uint8Array): void;
  export function getVersioned(key: string): Versioned | undefined;
  export function setIf(key: string, value: Uint8Array, expected: string | undefined): SetOutcome;
  export function list(prefix: string): BlobEntry[];
  export { del as delete };
  function del(key: string): void;
}

declare module "valbox:platform/env@0.1.0" {
  export function get(name: string): string | undefined;
}
