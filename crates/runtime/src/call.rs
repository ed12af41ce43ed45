//! What goes into a call and what comes out of it.

use std::time::Duration;

pub use super::bindings::{HttpRequest, HttpResponse};

/// What a caller asks of a val.
pub enum Input {
    Http(HttpRequest),
    /// The Run API's arguments, a JSON array.
    Script(String),
    /// A due run of a cron val.
    Cron(crate::bindings::CronEvent),
    /// Received mail for an email val.
    Email(Box<crate::bindings::ReceivedEmail>),
}

/// What a val answered.
#[derive(Debug)]
pub enum Output {
    Http(HttpResponse),
    /// The JSON the val returned, or its error message.
    Script(Result<String, String>),
    /// A cron val's run: done, or its error message.
    Cron(Result<(), String>),
    /// An email val's delivery: done, or its error message.
    Email(Result<(), String>),
}

/// Why a call failed. Each names the limit or fault, for the caller's
/// status code and the owner's log.
#[derive(Debug)]
pub enum CallError {
    Fuel(u64),
    Deadline(Duration),
    Memory(usize),
    ResponseTooLarge(usize),
    /// The guest trapped (a panic, for a Rust val); the detail is for logs.
    Trap(String),
    /// The server has no room for another instance right now.
    Busy,
    /// Its libraries no longer fit its imports (a floating library's new
    /// version changed them).
    Link(String),
    /// The component's source could not be fetched from the object store
    /// (what it said); a retry may succeed.
    Unavailable(String),
    /// The component is missing or broken on our side.
    Internal(String),
}

/// The result of one call, with what the owner's log records.
pub struct Outcome<H> {
    pub result: Result<Output, CallError>,
    pub fuel_used: u64,
    pub duration: Duration,
    /// Time the call held a slot to run wasm: its CPU time.
    pub cpu_time: Duration,
    pub stdout: String,
    pub stderr: String,
    /// The library the call failed in (`user/val@N`), if it did.
    pub failed_in: Option<String>,
    /// The call's host state, handed back: what the imports recorded.
    /// `None` when the component could not be loaded.
    pub host: Option<H>,
}
