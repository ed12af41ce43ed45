//! Capabilities: the host imports a val can call. Each is one folder with
//! the same parts: `mod.rs` (its service: scope check, bounds and storage,
//! shared by the import and the REST route, and its [`Capability`] impl),
//! `host.rs` (its WIT imports, on its own per-call state) and its store.
//! Their REST routes live in the server's API, over the same services. The `capabilities!` list in
//! `registry.rs` ties them in: adding a capability is a folder and a line
//! there.
//!
//! Every import checks the call's scopes at the moment it is called and
//! answers a denial as the `denied(...)` error value, never a trap.

pub mod blob;
mod budget;
pub mod email;
pub mod env;
pub mod fetch;
mod grant;
mod registry;
pub mod sqlite;
pub mod storage;
#[cfg(test)]
mod testing;
pub mod vals;

use std::marker::PhantomData;
use std::path::PathBuf;

use valbox_model::Limits;
use wasmtime::component::{HasData, Linker};

pub use budget::RequestBudget;
pub use grant::{CallOf, Grant, Within};
pub use registry::{CallHost, Capabilities};

use valbox_store::secrets::SecretBox;
use valbox_store::{Store, ValRow};

/// What the capabilities are configured with: where their data lives,
/// their limits, where fetch may go and where mail is delivered.
#[derive(Clone, Debug)]
pub struct CapsConfig {
    pub data_dir: PathBuf,
    pub limits: Limits,
    pub fetch_policy: fetch::policy::Policy,
    pub smtp: Option<email::delivery::SmtpConfig>,
}

/// What a capability's service is built from at start.
pub struct Settings<'a> {
    pub config: &'a CapsConfig,
    pub store: &'a Store,
    pub secrets: &'a SecretBox,
}

/// One capability: what it links, and what it keeps for a call.
pub trait Capability: Send + Sync + Sized + 'static {
    /// What the capability keeps for one call (`()` when nothing).
    type Call: Default + Send + 'static;

    /// Add the capability's WIT imports; `get` reaches its view of a call.
    fn link<T: Send + 'static>(
        linker: &mut Linker<T>,
        get: fn(&mut T) -> Ctx<'_, Self>,
    ) -> wasmtime::Result<()>;

    /// The capability's part of one call of `val`; by default empty.
    fn start_call(&self, _val: &ValRow) -> Self::Call {
        Self::Call::default()
    }

    /// Its part of a library's view within a call whose part is `caller`;
    /// by default empty, sharing nothing with the caller.
    fn start_library(&self, _caller: &Self::Call) -> Self::Call {
        Self::Call::default()
    }

    /// Build the capability's service at start.
    fn open(settings: &Settings) -> anyhow::Result<Self>;
}

/// A capability's view of one call, which its imports run on: the call's
/// grant (who, which scopes, until when), the capability's shared service,
/// and its own per-call state.
pub struct Ctx<'a, C: Capability> {
    pub grant: &'a mut Grant,
    pub cap: &'a C,
    pub call: &'a mut C::Call,
}

/// The `HasData` projection that links capability `C`'s imports to its view
/// of a call (as wasmtime-wasi links each WASI interface to its own state).
pub struct HasCap<C>(PhantomData<C>);

impl<C: Capability> HasData for HasCap<C> {
    type Data<'a> = Ctx<'a, C>;
}
