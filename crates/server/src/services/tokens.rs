//! The rules of handing out scopes, shared by the REST API and the web UI:
//! a token can only give what it holds, only a person's own token manages
//! tokens, and issuing a personal token.

use valbox_auth as auth;
use valbox_model::{Principal, Scope, Scopes};
use valbox_store::NewToken;
use valbox_store::TokenRow;

use crate::app::App;
use crate::services::error::{ServiceError, ServiceResult};

const MAX_NAME_LEN: usize = 100;

/// Refuse a val's per-call token: it may never manage tokens.
pub fn require_personal_token(who: &Principal) -> Result<(), ServiceError> {
    if who.is_personal() {
        Ok(())
    } else {
        Err(ServiceError::forbidden(
            "a val's per-call token cannot manage tokens; use a personal API token",
        ))
    }
}

/// Refuse (403, with `message` naming the first missing scope) unless the
/// caller's own token holds every scope in `wanted`.
pub fn require_all(
    who: &Principal,
    wanted: &Scopes,
    message: impl FnOnce(Scope) -> String,
) -> ServiceResult<()> {
    match wanted.first_missing_from(&who.scopes) {
        Some(scope) => Err(ServiceError::forbidden(message(scope))),
        None => Ok(()),
    }
}

/// [`require_all`] for handing scopes out.
pub fn require_grantable(who: &Principal, wanted: &Scopes) -> ServiceResult<()> {
    require_all(who, wanted, |scope| {
        format!("cannot grant `{scope}`: the token making this request does not hold it")
    })
}

/// Make `who` a personal token `name` holding `scopes` (never more than
/// `who` holds); returns it and its secret, shown once.
pub async fn issue(
    app: &App,
    who: &Principal,
    name: &str,
    scopes: Scopes,
    expires_at: Option<i64>,
) -> ServiceResult<(TokenRow, String)> {
    let name = name.trim().to_string();
    if name.is_empty() || name.chars().count() > MAX_NAME_LEN {
        return Err(ServiceError::bad_request(
            "invalid_name",
            format!("a token needs a name of 1 to {MAX_NAME_LEN} characters"),
        ));
    }
    require_grantable(who, &scopes)?;
    let (token, hash) = auth::generate_token(auth::API_TOKEN_PREFIX);
    let new = NewToken {
        name,
        hash,
        scopes,
        expires_at,
    };
    let row = app.store.tokens.insert(&who.user_id, new).await?;
    Ok((row, token))
}
