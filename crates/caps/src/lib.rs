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
use std::sync::Arc;

use valbox_model::Limits;
use wasmtime::component::{HasData, Linker};

pub use budget::RequestBudget;
pub use grant::{CallOf, Grant, Within};
pub use registry::{CallHost, Capabilities};

use valbox_store::secrets::SecretBox;
use valbox_store::{Store, ValRow};

/// What the capabilities are configured with: where their data lives, and
/// each capability's own settings.
#[derive(Clone, Debug)]
pub struct CapsConfig {
    pub data_dir: PathBuf,
    pub blob: blob::BlobSettings,
    pub sqlite: sqlite::SqliteSettings,
    pub fetch: fetch::FetchSettings,
    pub email: email::EmailSettings,
    /// Everything one owner stores together (`storage`).
    pub storage_quota_bytes: u64,
}

impl CapsConfig {
    /// Each capability's settings from the operator's limits, where fetch
    /// may go and where mail is delivered: the one place they are read.
    pub fn new(
        data_dir: PathBuf,
        limits: &Limits,
        fetch_policy: fetch::policy::Policy,
        smtp: Option<email::delivery::SmtpConfig>,
    ) -> Self {
        Self {
            data_dir: data_dir.clone(),
            blob: blob::BlobSettings {
                max_bytes: limits.blob_bytes,
                quota_bytes: limits.blob_quota_bytes,
                objects: Arc::new(valbox_objects::Files::new(data_dir.clone())),
            },
            sqlite: sqlite::SqliteSettings {
                quota_bytes: limits.sqlite_quota_bytes,
                temp_bytes: limits.sqlite_temp_bytes,
                heap_bytes: limits.sqlite_heap_bytes,
                concurrency: limits.concurrent_calls_per_owner,
                // A value as large as a blob, and no larger: no query takes
                // more memory than a blob does.
                max_value_bytes: limits.blob_bytes,
                rest_timeout: limits.timeout,
                placement: sqlite::Placement::Local,
                replicated: false,
            },
            fetch: fetch::FetchSettings {
                policy: fetch_policy,
                limits: fetch::FetchLimits {
                    request_body_bytes: limits.request_body_bytes,
                    response_body_bytes: limits.fetch_response_bytes,
                },
            },
            email: email::EmailSettings {
                per_day: limits.emails_per_day,
                platform_per_day: limits.platform_emails_per_day,
                smtp,
            },
            storage_quota_bytes: limits.storage_quota_bytes,
        }
    }
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
