//! The `env` WIT import: the call's token under [`CALL_TOKEN_VAR`], the
//! val's own vars under their names; and the same as `wasi:cli/environment`
//! shows them.

use std::collections::HashMap;

use super::{CALL_TOKEN_VAR, Env, EnvCall};
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
        let vars = vars(self.cap, self.call, self.grant.val_id()).await?;
        Ok(vars.get(&name).cloned())
    }
}

/// What `wasi:cli/environment` shows the call (`std::env`, `process.env`,
/// `os.environ`): with `env:read`, the val's vars and its token under
/// [`CALL_TOKEN_VAR`], as the `env` import gives them; without it,
/// nothing. Language runtimes read the environment on their own, so an
/// empty one is not recorded as a refusal, nor a full one as a use.
pub(crate) async fn environment(ctx: Ctx<'_, Env>) -> Vec<(String, String)> {
    if !ctx.grant.allowed(Scope::EnvRead) {
        return Vec::new();
    }
    let mut pairs: Vec<(String, String)> = match vars(ctx.cap, ctx.call, ctx.grant.val_id()).await {
        Ok(vars) => vars.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
        Err(_) => Vec::new(),
    };
    pairs.sort();
    if let Some(token) = ctx.grant.token_text() {
        pairs.push((CALL_TOKEN_VAR.to_string(), token.to_string()));
    }
    pairs
}

/// The val's vars, unsealed on the call's first read.
async fn vars<'c>(
    env: &Env,
    call: &'c mut EnvCall,
    val_id: &str,
) -> Result<&'c HashMap<String, String>, Error> {
    if call.vars.is_none() {
        let vars = env.values(val_id).await.map_err(|e| {
            tracing::error!("loading env vars: {e:#}");
            Error::Internal("could not load env vars".into())
        })?;
        call.vars = Some(vars);
    }
    Ok(call.vars.get_or_insert_default())
}
