//! Capabilities: the host imports a val can call, one folder each (its WIT
//! host implementation, its scope check, its storage, its REST routes).
//! Every import checks the call's scopes at the moment it is called and
//! answers a denial as the `denied(scope)` error value, never a trap.

pub mod blob;
pub mod email;
pub mod env;
pub mod fetch;
pub mod log;
pub mod sqlite;

use std::collections::HashMap;

use axum::Router;

use crate::app::App;
use crate::auth::{CallTokens, Scope, Scopes};
use crate::db::Db;
use crate::runtime::bindings::types::{self, Error};
use crate::secrets::SecretBox;

/// What one call of a val may reach, and on whose behalf.
pub struct CallContext {
    pub owner_id: String,
    pub val_id: String,
    pub scopes: Scopes,
    /// The call's own API token (the `valtown` env var) and its hash.
    pub call_token: String,
    pub call_token_hash: String,
    pub call_tokens: CallTokens,
    pub db: Db,
    pub blobs: blob::BlobStore,
    pub sqlite: sqlite::SqliteStore,
    pub fetcher: fetch::Fetcher,
    pub mailer: email::Mailer,
    /// Hosts the val may fetch from; `None` means any public host.
    pub fetch_allowlist: Option<Vec<String>>,
    pub fetch_count: u32,
    /// When the call must end; host work is bounded by it too.
    pub deadline: std::time::Instant,
    pub secrets: SecretBox,
    /// The val's env vars, decrypted on first use.
    pub env_cache: Option<HashMap<String, String>>,
    /// Scopes the guest was refused, reported in the call's log.
    pub denials: Vec<String>,
}

impl CallContext {
    /// Check, at the moment of each import, that the call's token is still
    /// live and holds `scope`; a refusal is recorded for the call's log.
    pub fn check(&mut self, scope: Scope) -> Result<(), Error> {
        if self.allowed(scope) {
            Ok(())
        } else {
            Err(self.deny(scope))
        }
    }

    /// Whether the call's token is live and holds `scope`.
    pub fn allowed(&self, scope: Scope) -> bool {
        self.call_tokens.is_live(&self.call_token_hash) && self.scopes.has(scope)
    }

    /// The denial of `scope`, recorded for the call's log.
    pub fn deny(&mut self, scope: Scope) -> Error {
        self.denials.push(scope.to_string());
        if !self.call_tokens.is_live(&self.call_token_hash) {
            return Error::Denied(format!(
                "this call's token was revoked or has expired, so `{scope}` is refused"
            ));
        }
        Error::Denied(format!(
            "this call's token lacks the `{scope}` scope; the val's owner can grant it in the val's scopes"
        ))
    }
}

impl types::Host for CallContext {}
impl crate::runtime::bindings::http::valbox::platform::http_types::Host for CallContext {}

/// The REST routes of every capability, merged into the API router.
pub fn routes() -> Router<App> {
    Router::new()
        .merge(env::routes())
        .merge(log::routes())
        .merge(blob::routes())
        .merge(sqlite::routes())
        .merge(email::routes())
}
