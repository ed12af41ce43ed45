//! Outbound HTTP(S) from vals: the service (scope `fetch`, the val's host
//! allowlist in `allowlist`, the address policy in `policy`), bounded by
//! the call's deadline and by size and count limits; `host` is the WIT
//! import. Fetch has no REST routes.

mod allowlist;
mod client;
mod host;
pub mod policy;
pub mod wasi_http;

pub use allowlist::validate_allowlist_entry;
pub use client::{FetchLimits, Fetcher};

use std::time::Instant;

use wasmtime::component::Linker;

use super::{Capability, Ctx, Grant, HasCap, Settings};
use valbox_model::{Holder, Scope};
use valbox_runtime::bindings::fetch::{Request, Response};
use valbox_runtime::bindings::types::Error;
use valbox_store::ValRow;

/// The fetch service: the shared client, checked against the scope and
/// the val's allowlist on every request.
pub struct Fetch {
    pub fetcher: Fetcher,
}

/// What one call has of fetch: its val's allowlist. What it sent counts
/// in its request's budget, on its grant.
#[derive(Default)]
pub struct FetchCall {
    /// Hosts the val may fetch from; `None` means any public host.
    allowlist: Option<Vec<String>>,
}

impl Fetch {
    /// Fetch `request` for `who` within `call`'s allowlist and its
    /// request's budget.
    pub async fn fetch(
        &self,
        who: &mut Grant,
        call: &mut FetchCall,
        request: Request,
        deadline: Instant,
    ) -> Result<Response, Error> {
        who.check(Scope::Fetch)
            .map_err(|d| Error::Denied(d.message))?;
        let allowlist = call.allowlist.as_deref();
        self.fetcher
            .fetch(request, allowlist, deadline, who.budget())
            .await
    }
}

/// What the fetch capability is configured with: where it may go, and how
/// much it sends and takes per request.
#[derive(Clone, Debug)]
pub struct FetchSettings {
    pub policy: policy::Policy,
    pub limits: FetchLimits,
}

impl Capability for Fetch {
    type Call = FetchCall;

    fn open(s: &Settings) -> anyhow::Result<Self> {
        let settings = s.config.fetch.clone();
        let fetcher = Fetcher::new(settings.policy, settings.limits)?;
        Ok(Self { fetcher })
    }

    fn link<T: Send + 'static>(
        linker: &mut Linker<T>,
        get: fn(&mut T) -> Ctx<'_, Self>,
    ) -> wasmtime::Result<()> {
        valbox_runtime::bindings::fetch::add_to_linker::<T, HasCap<Self>>(linker, get)
    }

    fn start_call(&self, val: &ValRow) -> FetchCall {
        FetchCall {
            allowlist: val.fetch_allowlist.clone(),
        }
    }

    /// A library granted `fetch` reaches what its caller may reach.
    fn start_library(&self, caller: &FetchCall) -> FetchCall {
        FetchCall {
            allowlist: caller.allowlist.clone(),
        }
    }
}

#[cfg(test)]
mod service_tests;
