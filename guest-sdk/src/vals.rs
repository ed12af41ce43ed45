//! Other vals, called as APIs: the callee runs in its own owner's sandbox
//! with its owner's secrets, and never sees this val's token. Needs the
//! `val:read` scope.

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::bindings::valbox::platform::{http_types, vals as raw};
use crate::{Error, Request, Response};

/// Run the script val `name` (`"user/val"`, or `"user/val@N"` to pin its
/// version N) with `args` (serialised as the JSON array of its arguments)
/// and deserialise its result.
///
/// ```no_run
/// use serde_json::Value;
/// let weather: Value = valbox_sdk::vals::run("alice/weather", &("Paris",))?;
/// # Ok::<(), valbox_sdk::Error>(())
/// ```
///
/// # Errors
///
/// [`Error::NotFound`] when there is no such val this val may call,
/// [`Error::Invalid`] with the callee's message when it returns an error,
/// [`Error::Denied`] without `val:read`, [`Error::Limit`] past the depth of
/// nested calls or the callee owner's concurrency.
pub fn run<T: DeserializeOwned>(name: &str, args: &impl Serialize) -> Result<T, Error> {
    let args = serde_json::to_string(args)
        .map_err(|e| Error::Invalid(format!("the arguments are not JSON: {e}")))?;
    let result = run_json(name, &args)?;
    serde_json::from_str(&result)
        .map_err(|e| Error::Invalid(format!("`{name}` returned unexpected JSON: {e}")))
}

/// [`run`] with the arguments and the result as JSON text.
pub fn run_json(name: &str, args: &str) -> Result<String, Error> {
    raw::run(name, args).map_err(Error::from)
}

/// Send `request` to the HTTP val `name` (`"user/val"`) and return its
/// response.
///
/// ```no_run
/// use valbox_sdk::Request;
/// let request = Request {
///     method: "GET".into(),
///     path: "/items".into(),
///     query: "limit=5".into(),
///     headers: Vec::new(),
///     body: Vec::new(),
/// };
/// let response = valbox_sdk::vals::call_http("alice/shop", &request)?;
/// # Ok::<(), valbox_sdk::Error>(())
/// ```
pub fn call_http(name: &str, request: &Request) -> Result<Response, Error> {
    let request = http_types::Request {
        method: request.method.clone(),
        path: request.path.clone(),
        query: request.query.clone(),
        headers: request.headers.clone(),
        body: request.body.clone(),
    };
    let response = raw::call_http(name, &request).map_err(Error::from)?;
    Ok(Response {
        status: response.status,
        headers: response.headers,
        body: response.body,
    })
}
