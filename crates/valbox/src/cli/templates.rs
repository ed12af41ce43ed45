//! What `valbox new` writes: a handler per language and kind, the helper
//! modules and build script of `sdk/`, and the platform's WIT, all built
//! into the binary so a project needs nothing else from this repository
//! (a Rust val excepted: it depends on the guest SDK's source).

use super::project::{Kind, Lang};

/// The version `sdk/python/requirements.txt` pins.
pub const COMPONENTIZE_PY: &str = "0.25.1";

pub const JS_HELPERS: &str = include_str!("../../../../sdk/js/valbox.js");
pub const JS_TYPES: &str = include_str!("../../../../sdk/js/valbox.d.ts");
pub const JS_BUILD: &str = include_str!("../../../../sdk/js/build.mjs");
const JS_PACKAGE: &str = include_str!("../../../../sdk/js/package.json");
const JS_LOCK: &str = include_str!("../../../../sdk/js/package-lock.json");
/// For editors and `tsc --noEmit`: `valbox` resolves to its types.
pub const TSCONFIG: &str = r#"{
  "compilerOptions": {
    "target": "es2022",
    "module": "es2022",
    "moduleResolution": "bundler",
    "strict": true,
    "noEmit": true,
    "paths": { "valbox": ["./valbox.d.ts"] }
  },
  "files": ["val.ts", "valbox.d.ts"]
}
"#;
pub const PY_HELPERS: &str = include_str!("../../../../sdk/python/valbox.py");
pub const CARGO_CONFIG: &str = include_str!("../../../../examples/.cargo/config.toml");

/// The platform's WIT package, file by file.
pub const WIT: &[(&str, &str)] = &[
    ("blob.wit", include_str!("../../../../wit/blob.wit")),
    ("cron.wit", include_str!("../../../../wit/cron.wit")),
    (
        "email-handler.wit",
        include_str!("../../../../wit/email-handler.wit"),
    ),
    ("email.wit", include_str!("../../../../wit/email.wit")),
    ("env.wit", include_str!("../../../../wit/env.wit")),
    ("fetch.wit", include_str!("../../../../wit/fetch.wit")),
    ("http.wit", include_str!("../../../../wit/http.wit")),
    ("script.wit", include_str!("../../../../wit/script.wit")),
    ("sqlite.wit", include_str!("../../../../wit/sqlite.wit")),
    ("types.wit", include_str!("../../../../wit/types.wit")),
    ("vals.wit", include_str!("../../../../wit/vals.wit")),
    ("worlds.wit", include_str!("../../../../wit/worlds.wit")),
];

/// package.json and package-lock.json of sdk/js, named after the val (the
/// lock's pins stay: `npm ci` installs exactly them).
pub fn npm_manifests(name: &str) -> (String, String) {
    let named =
        |text: &str| text.replace("\"name\": \"valbox-js\"", &format!("\"name\": \"{name}\""));
    (named(JS_PACKAGE), named(JS_LOCK))
}

pub fn readme(name: &str, lang: Lang) -> String {
    let language = match lang {
        Lang::Rust => "Rust",
        Lang::Js => "JavaScript",
        Lang::Ts => "TypeScript",
        Lang::Python => "Python",
    };
    format!(
        "# {name}\n\nA Valbox val in {language}. `valbox build` builds it into one \
         WebAssembly component; `valbox deploy {name}` builds and deploys it.\n"
    )
}

pub fn cargo_toml(name: &str, sdk: &std::path::Path) -> String {
    format!(
        r#"[package]
name = "{name}"
version = "0.1.0"
edition = "2024"

[lib]
# A val is a library the host loads.
crate-type = ["cdylib"]

[dependencies]
valbox-sdk = {{ path = "{sdk}" }}

[profile.release]
# A panic traps the call; small components upload and compile faster.
panic = "abort"
opt-level = "s"
lto = true
codegen-units = 1
strip = "debuginfo"

# A project of its own, not a member of any workspace above it.
[workspace]
"#,
        sdk = sdk.display()
    )
}

pub fn rust_source(name: &str, kind: Kind) -> String {
    match kind {
        Kind::Http => format!(
            r#"//! `{name}`: an HTTP val. `GET /?name=Ada` answers `Hello, Ada!`.

use valbox_sdk::{{Request, Response}};

fn handle(req: Request) -> Response {{
    let name = req.query_param("name").unwrap_or_else(|| "world".into());
    Response::text(format!("Hello, {{name}}!"))
}}

valbox_sdk::http_val!(handle);
"#
        ),
        Kind::Script => format!(
            r#"//! `{name}`: a script val, called through the Run API with JSON
//! arguments; answers their count.

use serde_json::{{Value, json}};

fn run(args: Vec<Value>) -> Result<Value, String> {{
    Ok(json!({{ "count": args.len() }}))
}}

valbox_sdk::script_val!(run);
"#
        ),
        Kind::Cron => format!(
            r#"//! `{name}`: a cron val, run on its schedule
//! (`valbox deploy {name} --schedule 'every 15m'`); counts its runs in blob
//! `runs`.

use valbox_sdk::{{CronEvent, Error, blob}};

fn run(event: CronEvent) -> Result<(), Error> {{
    let runs: u64 = blob::update_json("runs", |n: Option<u64>| n.unwrap_or(0) + 1)?;
    println!("run {{runs}} of `{{}}`, due at {{}} ms", event.schedule, event.due);
    Ok(())
}}

valbox_sdk::cron_val!(run);
valbox_sdk::scopes!("blob:read", "blob:write");
"#
        ),
        Kind::Email => format!(
            r#"//! `{name}`: an email val, called with each message sent to its address
//! (`{{user}}.{name}@` the server's mail domain); prints who it is from and
//! its subject. An `Err` fails the delivery, which is then retried.

use valbox_sdk::ReceivedEmail;

fn receive(mail: ReceivedEmail) -> Result<(), String> {{
    let subject = mail.subject.as_deref().unwrap_or("(no subject)");
    println!("mail from {{}}: {{subject}}", mail.from.email);
    Ok(())
}}

valbox_sdk::email_val!(receive);
"#
        ),
    }
}

pub fn js_source(kind: Kind, typescript: bool) -> String {
    let (req, args, mail) = if typescript {
        ("req: Request", "...args: unknown[]", "mail: ReceivedEmail")
    } else {
        ("req", "...args", "mail")
    };
    let import_request = if typescript { "Request, " } else { "" };
    let import_mail = if typescript { ", ReceivedEmail" } else { "" };
    match kind {
        Kind::Http => format!(
            r#"// An HTTP val: `GET /?name=Ada` answers `Hello, Ada!`. The helpers and
// their types: valbox.js, valbox.d.ts.

import {{ http, {import_request}Response }} from "valbox";

export const httpHandler = http(({req}) =>
  Response.text(`Hello, ${{req.query.get("name") ?? "world"}}!`),
);
"#
        ),
        Kind::Script => format!(
            r#"// A script val, called through the Run API with JSON arguments;
// answers their count.

import {{ run }} from "valbox";

export const script = run(({args}) => ({{ count: args.length }}));
"#
        ),
        Kind::Cron => r#"// A cron val, run on its schedule
// (`valbox deploy NAME --schedule 'every 15m'`); counts its runs in blob
// `runs`. Throwing fails the run.

import { blob, scheduled } from "valbox";

export const cron = scheduled(({ schedule, due }) => {
  const runs = blob.updateJSON("runs", (n) => (n ?? 0) + 1);
  console.log(`run ${runs} of ${schedule}, due at ${due} ms`);
});
"#
        .into(),
        Kind::Email => format!(
            r#"// An email val, called with each message sent to its address
// (`{{user}}.{{val}}@` the server's mail domain); prints who it is from and
// its subject. Throwing (or a rejected promise) fails the delivery, which
// is then retried. (`email()` sends mail to you instead.)

import {{ receiveEmail{import_mail} }} from "valbox";

export const emailHandler = receiveEmail(async ({mail}) => {{
  console.log(`mail from ${{mail.from.email}}: ${{mail.subject ?? "(no subject)"}}`);
}});
"#
        ),
    }
}

pub fn python_source(kind: Kind) -> String {
    match kind {
        Kind::Http => r#""""An HTTP val: `GET /?name=Ada` answers `Hello, Ada!`."""

import valbox


def handle(req):
    return valbox.Response.text(f"Hello, {req.query.get('name', 'world')}!")


HttpHandler = valbox.http(handle)
"#
        .into(),
        Kind::Script => r#""""A script val, called through the Run API with JSON arguments;
answers their count."""

import valbox


def run(*args):
    return {"count": len(args)}


Script = valbox.script(run)
"#
        .into(),
        Kind::Cron => r#""""A cron val, run on its schedule
(`valbox deploy NAME --schedule 'every 15m'`); counts its runs in blob
`runs`. An exception fails the run."""

import valbox


def run(event):
    runs = valbox.blob.update_json("runs", lambda n: (n or 0) + 1)
    print(f"run {runs} of {event.schedule}, due at {event.due} ms")


Cron = valbox.cron(run)
"#
        .into(),
        Kind::Email => r#""""An email val, called with each message sent to its address
(`{user}.{val}@` the server's mail domain); prints who it is from and its
subject. An exception fails the delivery, which is then retried.
(`valbox.email()` sends mail to you instead.)"""

import valbox


def receive(mail):
    print(f"mail from {mail.from_.email}: {mail.subject or '(no subject)'}")


EmailHandler = valbox.receive_email(receive)
"#
        .into(),
    }
}
