//! Vals calling vals as APIs: the call service behind the `vals` import.
//! The callee is found as an anonymous caller would find it over HTTP,
//! except that a private val may be called by its own owner's vals, and
//! runs through the same call service as any request, within the caller's
//! deadline.

use futures_util::future::BoxFuture;
use tracing::Instrument;

use super::call::{Nested, call_within};
use super::runnable::{NotRunnable, find_runnable};
use crate::app::WeakApp;
use crate::services::error::{Kind, ServiceError};
use valbox_caps::vals::{ApiCall, RunVal};
use valbox_model::{Privacy, Trigger, ValKind};
use valbox_runtime::bindings::types::Error;
use valbox_runtime::{Input, Output};
use valbox_store::ValRow;

/// Runs API calls on the app it was made from, without keeping it alive.
pub struct ValRunner(pub WeakApp);

impl RunVal for ValRunner {
    fn run<'a>(&'a self, call: ApiCall<'a>) -> BoxFuture<'a, Result<Output, Error>> {
        Box::pin(run(self, call))
    }
}

async fn run(runner: &ValRunner, call: ApiCall<'_>) -> Result<Output, Error> {
    let app = (runner.0.upgrade())
        .ok_or_else(|| Error::Unavailable("the server is shutting down".into()))?;
    let (user, name) = (call.user, call.val);
    let kind = match &call.input {
        Input::Http(_) => ValKind::Http,
        Input::Script(_) => ValKind::Script,
        Input::Cron(_) => ValKind::Cron,
        Input::Email(_) => ValKind::Email,
    };
    // A private val exists only for its own owner's vals.
    let visible =
        |val: &ValRow| val.privacy != Privacy::Private || val.owner_id == call.caller_owner;
    let val = find_runnable(&app, user, name, call.version, kind, visible)
        .await
        .map_err(|why| match why {
            NotRunnable::Missing => {
                Error::NotFound(format!("no val `{user}/{name}` that this val may call"))
            }
            NotRunnable::NotDeployed => {
                Error::NotFound(format!("`{user}/{name}` has no deployed version yet"))
            }
            NotRunnable::NoSuchVersion(n) => {
                Error::NotFound(format!("`{user}/{name}` has no version {n}"))
            }
            NotRunnable::OtherKind(other) => Error::Invalid(match other {
                ValKind::Script => format!("`{user}/{name}` is a script val: use `run`"),
                ValKind::Http => format!("`{user}/{name}` is an HTTP val: use `call-http`"),
                ValKind::Library => format!(
                    "`{user}/{name}` is a library: import its interfaces instead \
                     (deploy with `--dep {user}/{name}`)"
                ),
                ValKind::Cron => format!("`{user}/{name}` is a cron val: it runs on its schedule"),
                ValKind::Email => {
                    format!("`{user}/{name}` is an email val: it runs when mail arrives")
                }
            }),
            NotRunnable::Failed(e) => Error::Internal(format!("finding `{user}/{name}`: {e}")),
        })?;
    let own = val.owner_id == call.caller_owner;
    if let Some(n) = call.version
        && !own
    {
        return Err(Error::Invalid(format!(
            "`{user}/{name}@{n}`: another owner's val runs only at its current version when \
             called as an API (its owner may have replaced an old one for good reason); call \
             `{user}/{name}`, or use it as a library pinned to a version"
        )));
    }
    let nested = Nested {
        within: call.within,
        caller: call.caller,
    };
    // The callee runs as a task of its own, so that its caller, waiting
    // for it in a host call, holds no slot to run wasm: otherwise a chain
    // of callers, each polling its callee from inside its own turn, needs
    // one slot per link, and enough chains at once take every slot while
    // waiting for one more. Dropping the caller's call stops the callee.
    let input = call.input;
    let task = tokio::spawn(
        async move { call_within(&app, &val, own, input, Trigger::Api, Some(nested)).await }
            .in_current_span(),
    );
    let called = AbortOnDrop(task)
        .await
        .map_err(|e| Error::Internal(format!("calling `{user}/{name}`: {e}")))?;
    called
        .map(|called| called.output)
        .map_err(|e| wit_error(&e, user, name))
}

/// A spawned task that is stopped when whoever awaits it goes away.
struct AbortOnDrop<T>(tokio::task::JoinHandle<T>);

impl<T> std::future::Future for AbortOnDrop<T> {
    type Output = Result<T, tokio::task::JoinError>;

    fn poll(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Self::Output> {
        std::pin::Pin::new(&mut self.0).poll(cx)
    }
}

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// The callee's failure as the caller's import sees it.
fn wit_error(e: &ServiceError, user: &str, name: &str) -> Error {
    let message = format!("`{user}/{name}`: {}", e.message);
    match e.kind {
        Kind::NotFound => Error::NotFound(message),
        Kind::TooMany | Kind::Busy | Kind::Deadline | Kind::OutOfFuel | Kind::OutOfSpace => {
            Error::Limit(message)
        }
        Kind::Internal | Kind::ValFailed => Error::Internal(message),
        Kind::Invalid | Kind::Unauthorized | Kind::Forbidden | Kind::Conflict | Kind::TooLarge => {
            Error::Invalid(message)
        }
    }
}
