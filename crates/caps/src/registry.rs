//! The list of capabilities, and what it generates: their shared services
//! ([`Capabilities`]), one call's host state ([`CallHost`]) and linking
//! every import.

use std::sync::Arc;

use std::future::Future;

use wasmtime::component::{HasSelf, Linker};
use wasmtime_wasi_http::WasiHttpHooks;

use super::{Capability, Ctx, Grant, Settings, blob, email, env, fetch, sqlite, vals};
use valbox_model::Scopes;
use valbox_runtime::bindings::{http_types, types};
use valbox_runtime::{CallState, Host};
use valbox_store::ValRow;

macro_rules! capabilities {
    ($($field:ident: $cap:ty),+ $(,)?) => {
        /// Every capability's service, built once at start.
        pub struct Capabilities {
            $(pub $field: $cap,)+
        }

        /// One call's host state: its grant and each capability's part.
        pub struct CallHost {
            pub grant: Grant,
            caps: Arc<Capabilities>,
            $($field: <$cap as Capability>::Call,)+
        }

        /// A library linked into a call sees the scopes its caller granted
        /// it, and each capability's library part of the caller's call.
        impl Host for CallHost {
            type View = Scopes;

            fn library(&self, label: &str, granted: &Scopes) -> Self {
                CallHost {
                    grant: self.grant.for_library(label, *granted),
                    caps: self.caps.clone(),
                    $($field: self.caps.$field.start_library(&self.$field),)+
                }
            }

            /// No scopes, no token; its budget and revoked token's watch
            /// are the last call's, which can no longer be used.
            fn spent(&self) -> Self {
                self.library("(idle)", &Scopes::default())
            }

            fn http_hooks(&mut self) -> &mut dyn WasiHttpHooks {
                self
            }

            async fn environment(&mut self) -> Vec<(String, String)> {
                let ctx = Ctx { grant: &mut self.grant, cap: &self.caps.env, call: &mut self.env };
                env::environment(ctx).await
            }
        }

        impl Capabilities {
            pub fn open(s: &Settings) -> anyhow::Result<Self> {
                Ok(Self { $($field: <$cap as Capability>::open(s)?,)+ })
            }

            /// Link every capability's imports, each to its own view.
            pub fn link(linker: &mut Linker<CallState<CallHost>>) -> wasmtime::Result<()> {
                // The interfaces that hold only types.
                types::add_to_linker::<_, HasSelf<Grant>>(linker, |s| &mut s.host.grant)?;
                http_types::add_to_linker::<_, HasSelf<Grant>>(linker, |s| &mut s.host.grant)?;
                $(
                    <$cap as Capability>::link(linker, |s| {
                        let h = &mut s.host;
                        Ctx { grant: &mut h.grant, cap: &h.caps.$field, call: &mut h.$field }
                    })?;
                )+
                Ok(())
            }

            /// The host state of one call of `val` under `grant`.
            pub fn start_call(self: &Arc<Self>, grant: Grant, val: &ValRow) -> CallHost {
                CallHost {
                    $($field: self.$field.start_call(val),)+
                    grant,
                    caps: self.clone(),
                }
            }
        }
    };
}

// The capabilities: adding one is its folder and a line here.
capabilities! {
    env: env::Env,
    blob: blob::Blob,
    sqlite: sqlite::Sqlite,
    email: email::Email,
    fetch: fetch::Fetch,
    vals: vals::Vals,
}

/// A `wasi:http` component's outgoing requests go through fetch's checks.
impl WasiHttpHooks for CallHost {
    fn send_request(
        &mut self,
        request: http::Request<wasmtime_wasi_http::WasiBody>,
        _options: Option<wasmtime_wasi_http::RequestOptions>,
        _fut: Box<dyn Future<Output = Result<(), wasmtime_wasi_http::Error>> + Send>,
    ) -> fetch::wasi_http::Sent {
        let ctx = Ctx {
            grant: &mut self.grant,
            cap: &self.caps.fetch,
            call: &mut self.fetch,
        };
        fetch::wasi_http::send_request(ctx, request)
    }

    /// The client sets `Host` from the URL it connects to.
    fn set_host_header(&mut self) -> bool {
        false
    }
}

impl types::Host for Grant {}
impl http_types::Host for Grant {}
