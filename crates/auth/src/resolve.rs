//! Resolving a request's `Authorization` header to its principal: call
//! tokens in memory, personal tokens in the store.

use std::sync::Arc;

use valbox_model::{Principal, ScopeUsage, now_ms};
use valbox_store::{StoreError, Tokens};

use crate::{API_TOKEN_PREFIX, CALL_TOKEN_PREFIX, CallTokens, bearer, hash_token, well_formed};

/// Why a request's token was not accepted.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// Malformed, unknown, revoked or expired; the text says which and
    /// what to do.
    #[error("{0}")]
    Refused(String),
    /// The store could not be read.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What resolves a request's token: personal tokens in the database,
/// call tokens in memory.
#[derive(Clone)]
pub struct Authenticator {
    pub tokens: Arc<dyn Tokens>,
    pub call_tokens: CallTokens,
    /// Counts every principal's and grant's use of its scopes.
    pub usage: ScopeUsage,
}

impl Authenticator {
    /// Resolve an `Authorization` header. No header means anonymous
    /// (`None`); any token that is malformed, unknown, revoked or expired
    /// is refused.
    pub async fn authenticate(&self, header: Option<&str>) -> Result<Option<Principal>, AuthError> {
        authenticate(self, header).await
    }
}

async fn authenticate(
    auth: &Authenticator,
    header: Option<&str>,
) -> Result<Option<Principal>, AuthError> {
    let Some(header) = header else {
        return Ok(None);
    };
    let token = bearer(header).ok_or_else(|| {
        AuthError::Refused("the Authorization header must be `Bearer <token>`".into())
    })?;
    if well_formed(token, CALL_TOKEN_PREFIX) {
        return match auth.call_tokens.get(&hash_token(token)) {
            Some(call) if call.expired() => Err(AuthError::Refused(
                "this call token has expired; call tokens last only for their call".into(),
            )),
            Some(call) => Ok(Some(call.principal(auth.usage.clone()))),
            None => Err(AuthError::Refused(
                "unknown or revoked call token; call tokens last only for their call".into(),
            )),
        };
    }
    if !well_formed(token, API_TOKEN_PREFIX) {
        return Err(AuthError::Refused(
            "malformed API token (bad prefix, length or checksum); copy the whole token".into(),
        ));
    }
    let hash = hash_token(token);
    let found = auth.tokens.resolve(&hash, now_ms()).await?;
    let Some((row, user)) = found else {
        return Err(AuthError::Refused("unknown API token".into()));
    };
    if let Some(why) = row.refusal(now_ms()) {
        return Err(AuthError::Refused(why.into()));
    }
    let scopes = row.scopes;
    Ok(Some(Principal {
        user_id: user.id,
        username: user.username,
        scopes,
        token_id: row.id,
        call_of_val: None,
        usage: auth.usage.clone(),
    }))
}
