//! Write Valbox vals in Rust.
//!
//! A val is a small program that Valbox runs as a WebAssembly component. An
//! *HTTP val* answers requests; a *script val* is called through the Run API
//! with a JSON array of arguments and returns a JSON value; a *cron val* runs
//! on a schedule; an *email val* receives the mail sent to its address. This
//! crate hides the component plumbing: write an ordinary function and hand it
//! to [`http_val!`], [`script_val!`], [`cron_val!`] or [`email_val!`].
//!
//! ```no_run
//! use valbox_sdk::{Request, Response};
//!
//! fn handler(req: Request) -> Response {
//!     let name = req.query_param("name").unwrap_or_else(|| "world".to_string());
//!     Response::text(format!("Hello, {name}!"))
//! }
//!
//! valbox_sdk::http_val!(handler);
//! ```
//!
//! Build it as a `cdylib` for `wasm32-wasip2`:
//!
//! ```toml
//! [lib]
//! crate-type = ["cdylib"]
//!
//! [dependencies]
//! valbox-sdk = { path = "path/to/valbox/guest-sdk" }
//!
//! [profile.release]
//! panic = "abort"
//! ```
//!
//! ```sh
//! rustup target add wasm32-wasip2
//! cargo build --release --target wasm32-wasip2
//! ```
//!
//! The result, `target/wasm32-wasip2/release/<name>.wasm`, is the component
//! to upload. Anything written to stdout or stderr (`println!`, `eprintln!`)
//! ends up in the val's logs; a panic prints its message to stderr and fails
//! the call. The `examples/` directory of the Valbox repository holds small
//! vals to start from, built by its `scripts/build-vals`.
//!
//! Host capabilities (the val's environment variables, blob storage, SQLite,
//! email, outbound HTTP) are imports of the component. [`env::get`] has a
//! helper; the others are reachable through the generated bindings in
//! [`raw`]. Each call needs a scope on the val's token and fails with
//! [`Error::Denied`] without it.
#![warn(missing_docs)]

pub mod blob;
mod cron;
#[doc(hidden)]
pub mod declare;
pub mod email;
mod error;
pub mod fetch;
mod http;
mod inbound;
pub mod sqlite;
pub mod vals;

pub use cron::CronEvent;
pub use error::Error;
pub use http::{Request, Response};
pub use inbound::{ReceivedAttachment, ReceivedEmail};

/// Bindings for the `platform` world: every import a val may call.
///
/// Generated once here and reused by the export worlds below.
#[allow(missing_docs, clippy::all)]
mod bindings {
    wit_bindgen::generate!({
        path: "../wit",
        world: "platform",
        generate_all,
    });
}

/// The generated bindings of the host's capabilities, for those that have
/// no helper in this crate yet.
///
/// Every function returns `Result<_, raw::types::Error>`; convert the error
/// into this crate's [`Error`] with `?` or [`From`].
///
/// ```no_run
/// use valbox_sdk::{raw, Error};
///
/// fn remember(key: &str, value: &[u8]) -> Result<Option<Vec<u8>>, Error> {
///     let previous = raw::blob::get(key)?;
///     raw::blob::set(key, value)?;
///     Ok(previous)
/// }
/// ```
pub mod raw {
    pub use crate::bindings::valbox::platform::{blob, email, env, fetch, sqlite, types, vals};
}

/// The val's environment variables: its secrets, set by its owner.
///
/// Reading them needs the `env:read` scope.
///
/// ```no_run
/// let token = valbox_sdk::env::get("API_TOKEN")?.unwrap_or_default();
/// # Ok::<(), valbox_sdk::Error>(())
/// ```
pub mod env {
    use crate::Error;

    /// The value of the environment variable `name`, or `None` when the val
    /// has no such variable.
    ///
    /// The variable `valtown` holds the call's own short-lived API token.
    ///
    /// # Errors
    ///
    /// [`Error::Denied`] when the val's token lacks the `env:read` scope, or
    /// whatever else the host reports.
    ///
    /// ```no_run
    /// match valbox_sdk::env::get("GREETING") {
    ///     Ok(Some(greeting)) => println!("{greeting}, world!"),
    ///     Ok(None) => println!("GREETING is not set"),
    ///     Err(err) => eprintln!("cannot read GREETING: {err}"),
    /// }
    /// ```
    pub fn get(name: &str) -> Result<Option<String>, Error> {
        crate::bindings::valbox::platform::env::get(name).map_err(Error::from)
    }
}

/// Implementation details of [`http_val!`], [`script_val!`],
/// [`cron_val!`] and [`email_val!`]; not part of the public API.
#[doc(hidden)]
#[allow(missing_docs)]
pub mod __private {
    /// Bindings for a handler world that reuse the imports above; its
    /// export macro lives at `$module`.
    macro_rules! handler_world {
        ($world:tt, $module:tt) => {
            wit_bindgen::generate!({
                path: "../wit",
                world: $world,
                with: {
                    "valbox:platform/types@0.1.0": crate::bindings::valbox::platform::types,
                    "valbox:platform/env@0.1.0": crate::bindings::valbox::platform::env,
                    "valbox:platform/blob@0.1.0": crate::bindings::valbox::platform::blob,
                    "valbox:platform/sqlite@0.1.0": crate::bindings::valbox::platform::sqlite,
                    "valbox:platform/email@0.1.0": crate::bindings::valbox::platform::email,
                    "valbox:platform/fetch@0.1.0": crate::bindings::valbox::platform::fetch,
                    "valbox:platform/http-types@0.1.0": crate::bindings::valbox::platform::http_types,
                    "valbox:platform/vals@0.1.0": crate::bindings::valbox::platform::vals,
                },
                generate_all,
                pub_export_macro: true,
                default_bindings_module: $module,
            });
        };
    }

    /// Bindings for the `http-val` world.
    #[allow(clippy::all)]
    pub mod http {
        handler_world!("http-val", "valbox_sdk::__private::http");
    }

    /// Bindings for the `script-val` world.
    #[allow(clippy::all)]
    pub mod script {
        handler_world!("script-val", "valbox_sdk::__private::script");
    }

    /// Bindings for the `cron-val` world.
    #[allow(clippy::all)]
    pub mod cron {
        handler_world!("cron-val", "valbox_sdk::__private::cron");
    }

    /// Bindings for the `email-val` world.
    #[allow(clippy::all)]
    pub mod email {
        handler_world!("email-val", "valbox_sdk::__private::email");
    }

    pub use crate::bindings::valbox::platform::http_types::{
        Request as WitRequest, Response as WitResponse,
    };
    pub use cron::exports::valbox::platform::cron::{
        CronEvent as WitCronEvent, Guest as CronGuest,
    };
    pub use email::exports::valbox::platform::email_handler::Guest as EmailGuest;
    pub use http::exports::valbox::platform::http_handler::Guest as HttpGuest;
    pub use script::exports::valbox::platform::script::Guest as ScriptGuest;

    /// The type of [`HttpGuest::handle`].
    pub type HandleFn = fn(WitRequest) -> WitResponse;
    /// The type of [`ScriptGuest::run`].
    pub type RunFn = fn(String) -> Result<String, String>;
    /// The type of [`CronGuest::run`].
    pub type CronFn = fn(WitCronEvent) -> Result<(), String>;
    /// The type of [`EmailGuest::receive`].
    pub type ReceiveFn = fn(crate::ReceivedEmail) -> Result<(), String>;

    use crate::{CronEvent, Request, Response};

    /// Converts the WIT request, calls the val's handler, converts back.
    pub fn serve_http(
        request: WitRequest,
        handler: impl FnOnce(Request) -> Response,
    ) -> WitResponse {
        let response = handler(Request {
            method: request.method,
            path: request.path,
            query: request.query,
            headers: request.headers,
            body: request.body,
        });
        WitResponse {
            status: response.status,
            headers: response.headers,
            body: response.body,
        }
    }

    /// Parses `args` as a JSON array, calls the val's function, serialises
    /// its result.
    pub fn run_script(
        args: String,
        run: impl FnOnce(Vec<serde_json::Value>) -> Result<serde_json::Value, String>,
    ) -> Result<String, String> {
        let args = parse_args(&args)?;
        let value = run(args)?;
        serde_json::to_string(&value).map_err(|err| format!("cannot serialise the result: {err}"))
    }

    /// Converts the WIT event, calls the val's function, renders its error.
    pub fn run_cron<E: std::fmt::Display>(
        event: WitCronEvent,
        run: impl FnOnce(CronEvent) -> Result<(), E>,
    ) -> Result<(), String> {
        run(CronEvent {
            schedule: event.schedule,
            due: event.due_ms,
            last_run: event.last_run_ms,
        })
        .map_err(|err| err.to_string())
    }

    /// Calls the val's function, renders its error.
    pub fn receive_email<E: std::fmt::Display>(
        mail: crate::ReceivedEmail,
        receive: impl FnOnce(crate::ReceivedEmail) -> Result<(), E>,
    ) -> Result<(), String> {
        receive(mail).map_err(|err| err.to_string())
    }

    fn parse_args(args: &str) -> Result<Vec<serde_json::Value>, String> {
        match serde_json::from_str::<serde_json::Value>(args) {
            Ok(serde_json::Value::Array(items)) => Ok(items),
            Ok(other) => Err(format!(
                "args must be a JSON array: got {}",
                json_kind(&other)
            )),
            Err(err) => Err(format!("args must be a JSON array: {err}")),
        }
    }

    fn json_kind(value: &serde_json::Value) -> &'static str {
        match value {
            serde_json::Value::Null => "null",
            serde_json::Value::Bool(_) => "a boolean",
            serde_json::Value::Number(_) => "a number",
            serde_json::Value::String(_) => "a string",
            serde_json::Value::Array(_) => "an array",
            serde_json::Value::Object(_) => "an object",
        }
    }

    #[cfg(test)]
    mod tests {
        use super::*;
        use serde_json::json;

        #[test]
        fn script_args_must_be_an_array() {
            let echo = |args: Vec<serde_json::Value>| Ok(serde_json::Value::Array(args));
            assert_eq!(run_script("[1,\"a\"]".into(), echo), Ok("[1,\"a\"]".into()));
            assert_eq!(
                run_script("{}".into(), echo),
                Err("args must be a JSON array: got an object".into())
            );
            let err = run_script("[1,".into(), echo).unwrap_err();
            assert!(err.starts_with("args must be a JSON array: "), "{err}");
        }

        #[test]
        fn script_errors_pass_through() {
            let fail = |_| Err::<serde_json::Value, _>("nope".to_string());
            assert_eq!(run_script("[]".into(), fail), Err("nope".into()));
            let ok = |_| Ok(json!({"a": [1, 2]}));
            assert_eq!(run_script("[]".into(), ok), Ok("{\"a\":[1,2]}".into()));
        }

        #[test]
        fn http_round_trip() {
            let request = WitRequest {
                method: "POST".into(),
                path: "/x".into(),
                query: "a=1".into(),
                headers: vec![("X-A".into(), "b".into())],
                body: b"hi".to_vec(),
            };
            let response = serve_http(request, |req| {
                assert_eq!(req.method, "POST");
                assert_eq!(req.header("x-a"), Some("b"));
                Response::new(201).with_body(req.body)
            });
            assert_eq!(response.status, 201);
            assert_eq!(response.body, b"hi");
        }

        #[test]
        fn cron_event_and_error() {
            let event = WitCronEvent {
                schedule: "every 15m".into(),
                due_ms: 900_000,
                last_run_ms: Some(1),
            };
            let result = run_cron(event, |event| {
                assert_eq!(event.schedule, "every 15m");
                assert_eq!((event.due, event.last_run), (900_000, Some(1)));
                Err(crate::Error::Denied("missing scope blob:write".into()))
            });
            assert_eq!(result, Err("denied: missing scope blob:write".into()));
        }
    }
}

/// Turns a function into an HTTP val: exports it as the component's
/// `http-handler`.
///
/// The handler has the signature `fn(Request) -> Response` (a closure works
/// too). Use the macro once per crate, at the top level of the `cdylib`.
///
/// ```no_run
/// use valbox_sdk::{Request, Response};
///
/// fn handler(req: Request) -> Response {
///     match req.path.as_str() {
///         "/" => Response::html("<h1>Home</h1>"),
///         _ => Response::new(404).with_body("not found"),
///     }
/// }
///
/// valbox_sdk::http_val!(handler);
/// ```
///
/// The exports exist only when compiling for WebAssembly; elsewhere (for
/// example in unit tests on the build machine) the macro merely checks that
/// the handler has the right type.
#[macro_export]
macro_rules! http_val {
    ($handler:expr $(,)?) => {
        const _: () = {
            #[allow(dead_code)]
            struct ValboxHttpVal;

            impl $crate::__private::HttpGuest for ValboxHttpVal {
                fn handle(
                    request: $crate::__private::WitRequest,
                ) -> $crate::__private::WitResponse {
                    $crate::__private::serve_http(request, $handler)
                }
            }

            // Keeps the handler "used" where the export below is compiled out.
            const _: $crate::__private::HandleFn =
                <ValboxHttpVal as $crate::__private::HttpGuest>::handle;

            #[cfg(target_arch = "wasm32")]
            $crate::__private::http::export! {
                ValboxHttpVal with_types_in $crate::__private::http
            }
        };
    };
}

/// Turns a function into a script val: exports it as the component's
/// `script` interface, called through the Run API.
///
/// The function has the signature
/// `fn(Vec<serde_json::Value>) -> Result<serde_json::Value, String>` (a
/// closure works too). The macro parses the call's arguments, which must be
/// a JSON array, and serialises the result; an `Err` message is returned to
/// the caller as the run's error. Arguments that are not a JSON array fail
/// the call with `args must be a JSON array: ...` before the function runs.
///
/// ```no_run
/// use serde_json::{json, Value};
///
/// fn run(args: Vec<Value>) -> Result<Value, String> {
///     let sum: f64 = args.iter().filter_map(Value::as_f64).sum();
///     Ok(json!({ "sum": sum }))
/// }
///
/// valbox_sdk::script_val!(run);
/// ```
///
/// As with [`http_val!`], the exports exist only when compiling for
/// WebAssembly.
#[macro_export]
macro_rules! script_val {
    ($run:expr $(,)?) => {
        const _: () = {
            #[allow(dead_code)]
            struct ValboxScriptVal;

            impl $crate::__private::ScriptGuest for ValboxScriptVal {
                fn run(
                    args: ::std::string::String,
                ) -> ::core::result::Result<::std::string::String, ::std::string::String> {
                    $crate::__private::run_script(args, $run)
                }
            }

            // Keeps the function "used" where the export below is compiled out.
            const _: $crate::__private::RunFn =
                <ValboxScriptVal as $crate::__private::ScriptGuest>::run;

            #[cfg(target_arch = "wasm32")]
            $crate::__private::script::export! {
                ValboxScriptVal with_types_in $crate::__private::script
            }
        };
    };
}

/// Turns a function into a cron val: exports it as the component's `cron`
/// interface, run on the val's schedule.
///
/// The function has the signature `fn(CronEvent) -> Result<(), E>`, where
/// `E` is anything that displays: [`Error`], `String`, ... (a closure works
/// too). An `Err` fails the run: its message goes to the val's logs, and
/// five failed runs in a row pause the val.
///
/// ```no_run
/// use valbox_sdk::{CronEvent, Error, blob};
///
/// fn run(event: CronEvent) -> Result<(), Error> {
///     let runs: u64 = blob::update_json("runs", |n: Option<u64>| n.unwrap_or(0) + 1)?;
///     println!("run {runs}, due at {} ms ({})", event.due, event.schedule);
///     Ok(())
/// }
///
/// valbox_sdk::cron_val!(run);
/// ```
///
/// As with [`http_val!`], the exports exist only when compiling for
/// WebAssembly.
#[macro_export]
macro_rules! cron_val {
    ($run:expr $(,)?) => {
        const _: () = {
            #[allow(dead_code)]
            struct ValboxCronVal;

            impl $crate::__private::CronGuest for ValboxCronVal {
                fn run(
                    event: $crate::__private::WitCronEvent,
                ) -> ::core::result::Result<(), ::std::string::String> {
                    $crate::__private::run_cron(event, $run)
                }
            }

            // Keeps the function "used" where the export below is compiled out.
            const _: $crate::__private::CronFn =
                <ValboxCronVal as $crate::__private::CronGuest>::run;

            #[cfg(target_arch = "wasm32")]
            $crate::__private::cron::export! {
                ValboxCronVal with_types_in $crate::__private::cron
            }
        };
    };
}

/// Turns a function into an email val: exports it as the component's
/// `email-handler` interface, called with each message sent to the val's
/// address, `{user}.{val}@` the server's mail domain.
///
/// The function has the signature `fn(ReceivedEmail) -> Result<(), E>`,
/// where `E` is anything that displays. An `Err` fails the delivery: it is
/// retried with backoff for a while, each attempt in the val's log. The
/// sender's address is whatever the sender wrote: treat it as data, never
/// as proof of who sent the message.
///
/// ```no_run
/// use valbox_sdk::{Error, ReceivedEmail};
///
/// fn receive(mail: ReceivedEmail) -> Result<(), Error> {
///     println!("{} wrote {:?} ({} bytes)", mail.from.email, mail.subject, mail.raw_size);
///     Ok(())
/// }
///
/// valbox_sdk::email_val!(receive);
/// ```
///
/// As with [`http_val!`], the exports exist only when compiling for
/// WebAssembly.
#[macro_export]
macro_rules! email_val {
    ($receive:expr $(,)?) => {
        const _: () = {
            #[allow(dead_code)]
            struct ValboxEmailVal;

            impl $crate::__private::EmailGuest for ValboxEmailVal {
                fn receive(
                    mail: $crate::ReceivedEmail,
                ) -> ::core::result::Result<(), ::std::string::String> {
                    $crate::__private::receive_email(mail, $receive)
                }
            }

            // Keeps the function "used" where the export below is compiled out.
            const _: $crate::__private::ReceiveFn =
                <ValboxEmailVal as $crate::__private::EmailGuest>::receive;

            #[cfg(target_arch = "wasm32")]
            $crate::__private::email::export! {
                ValboxEmailVal with_types_in $crate::__private::email
            }
        };
    };
}
