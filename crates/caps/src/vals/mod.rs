//! Vals calling vals as APIs (Val Town's API mode). The callee runs in its
//! own owner's sandbox, with its owner's scopes and env vars, through the
//! same call service as an HTTP request; the caller's token never reaches
//! it. The service checks `val:read` and the depth; running the callee is
//! the call service's job, which sits above the capabilities and is
//! connected once the app is built (`Vals::connect`). `host` is the import.

mod host;

use std::sync::{Arc, OnceLock};

use futures_util::future::BoxFuture;
use wasmtime::component::Linker;

use super::{Capability, Ctx, Grant, HasCap, Settings, Within};
use valbox_model::{Holder, Scope};
use valbox_runtime::bindings::types::Error;
use valbox_runtime::{Input, Output};

/// How many calls deep a chain of vals calling vals may go.
pub const MAX_DEPTH: u8 = 4;

/// A call of another val, as a val asked for it.
pub struct ApiCall<'a> {
    /// The owner of the calling val: a private callee must be theirs.
    pub caller_owner: &'a str,
    /// The calling val (`owner/val`), for the callee's log.
    pub caller: String,
    pub user: &'a str,
    pub val: &'a str,
    /// A version to run, or `None` for the latest.
    pub version: Option<i64>,
    pub input: Input,
    /// The calling call: the callee ends no later, one level deeper.
    pub within: Within,
}

/// What runs an [`ApiCall`]: the call service.
pub trait RunVal: Send + Sync {
    fn run<'a>(&'a self, call: ApiCall<'a>) -> BoxFuture<'a, Result<Output, Error>>;
}

/// The vals service.
pub struct Vals {
    runner: OnceLock<Arc<dyn RunVal>>,
}

impl Vals {
    /// Connect the call service; once, when the app is built.
    pub fn connect(&self, runner: Arc<dyn RunVal>) {
        let _ = self.runner.set(runner);
    }

    /// Call the val `name` (`user/val`, or `user/val@N` for version N)
    /// for the call holding `grant`.
    pub async fn call(&self, grant: &mut Grant, name: &str, input: Input) -> Result<Output, Error> {
        grant
            .check(Scope::ValRead)
            .map_err(|d| Error::Denied(d.message))?;
        let invalid = || {
            Error::Invalid(format!(
                "`{name}` is not a val's name; name it as `user/val` or `user/val@N`"
            ))
        };
        let (path, version) = match name.split_once('@') {
            Some((path, n)) => (path, Some(n.parse::<i64>().map_err(|_| invalid())?)),
            None => (name, None),
        };
        let (user, val) = path
            .split_once('/')
            .filter(|(u, v)| !u.is_empty() && !v.is_empty() && !v.contains('/'))
            .ok_or_else(invalid)?;
        let within = grant.as_within();
        if within.depth + 1 >= MAX_DEPTH {
            return Err(Error::Limit(format!(
                "vals may call vals at most {MAX_DEPTH} deep; `{name}` would be deeper"
            )));
        }
        within.budget.take_call().map_err(|limit| {
            Error::Limit(format!(
                "one request may call at most {limit} vals as APIs, at any depth and \
                 together; `{name}` would be one more"
            ))
        })?;
        let runner = self
            .runner
            .get()
            .ok_or_else(|| Error::Unavailable("calling vals is not connected yet".into()))?;
        let call = ApiCall {
            caller_owner: grant.owner_id(),
            caller: grant.caller_label(),
            user,
            val,
            version,
            input,
            within,
        };
        runner.run(call).await
    }
}

impl Capability for Vals {
    type Call = ();

    fn link<T: Send + 'static>(
        linker: &mut Linker<T>,
        get: fn(&mut T) -> Ctx<'_, Self>,
    ) -> wasmtime::Result<()> {
        valbox_runtime::bindings::vals::add_to_linker::<T, HasCap<Self>>(linker, get)
    }

    fn open(_: &Settings) -> anyhow::Result<Self> {
        Ok(Self {
            runner: OnceLock::new(),
        })
    }
}

#[cfg(test)]
mod tests;
