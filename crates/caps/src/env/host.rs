//! The `env` WIT import: the call's token under [`CALL_TOKEN_VAR`], the
//! val's own vars under their names.

use super::{CALL_TOKEN_VAR, Env};
use crate::Ctx;
use valbox_model::{Holder, Scope};
use valbox_runtime::bindings::env::Host;
use valbox_runtime::bindings::types::Error;

impl Host for Ctx<'_, Env> {
    async fn get(&mut self, name: String) -> Result<Option<String>, Error> {
        self.grant
            .check(Scope::EnvRead)
            .map_err(|d| Error::Denied(d.message))?;
        if name == CALL_TOKEN_VAR {
            return Ok(self.grant.token_text().map(String::from));
        }
        if self.call.vars.is_none() {
            let vars = self.cap.values(self.grant.val_id()).await.map_err(|e| {
                tracing::error!("loading env vars: {e:#}");
                Error::Internal("could not load env vars".into())
            })?;
            self.call.vars = Some(vars);
        }
        Ok(self
            .call
            .vars
            .as_ref()
            .and_then(|vars| vars.get(&name).cloned()))
    }
}
