//! Tokens, scopes and principals.
//!
//! A token looks like `vbx_` + 30 base62 characters + a 6-character base62
//! CRC32 of the body (GitHub's format), so a leaked token is recognisable
//! by pattern and a typo is rejected before any database lookup. Only the
//! SHA-256 of a token is stored: tokens are 178 bits of randomness, so a
//! fast hash is enough.

use std::sync::Arc;

use sha2::{Digest, Sha256};

use valbox_model::{Principal, ScopeUsage, now_ms};
use valbox_store::{StoreError, Tokens};

pub use call_tokens::{CallToken, CallTokens, MintedToken, TokenWatch};
pub use header::{bearer, carries_valbox_token};

mod call_tokens;
mod header;

/// Prefix of personal API tokens.
pub const API_TOKEN_PREFIX: &str = "vbx_";
/// Prefix of the short-lived tokens minted for one call of a val.
pub const CALL_TOKEN_PREFIX: &str = "vbc_";
const BODY_LEN: usize = 30;
const CHECKSUM_LEN: usize = 6;
const BASE62: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// Make a new token with `prefix`. Returns the token and its stored hash.
pub fn generate_token(prefix: &str) -> (String, String) {
    let mut body = String::with_capacity(BODY_LEN);
    let mut buf = [0u8; 64];
    while body.len() < BODY_LEN {
        getrandom::fill(&mut buf).expect("the OS random number generator failed");
        // 248 = 4 * 62: rejecting larger bytes keeps the draw uniform.
        for b in buf.iter().filter(|b| **b < 248) {
            if body.len() == BODY_LEN {
                break;
            }
            body.push(BASE62[(*b % 62) as usize] as char);
        }
    }
    let token = format!("{prefix}{body}{}", checksum(&body));
    let hash = hash_token(&token);
    (token, hash)
}

fn checksum(body: &str) -> String {
    let mut n = crc32fast::hash(body.as_bytes()) as u64;
    let mut out = [b'0'; CHECKSUM_LEN];
    for slot in out.iter_mut().rev() {
        *slot = BASE62[(n % 62) as usize];
        n /= 62;
    }
    String::from_utf8(out.to_vec()).expect("base62 is ASCII")
}

/// Check a token's shape and checksum without touching the database.
pub fn well_formed(token: &str, prefix: &str) -> bool {
    let Some(rest) = token.strip_prefix(prefix) else {
        return false;
    };
    if rest.len() != BODY_LEN + CHECKSUM_LEN || !rest.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return false;
    }
    let (body, sum) = rest.split_at(BODY_LEN);
    checksum(body) == sum
}

pub fn hash_token(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// Whether `token` starts like a Valbox token of either kind.
pub fn has_token_prefix(token: &str) -> bool {
    token.starts_with(API_TOKEN_PREFIX) || token.starts_with(CALL_TOKEN_PREFIX)
}

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_tokens_are_well_formed_and_distinct() {
        let (a, ha) = generate_token(API_TOKEN_PREFIX);
        let (b, _) = generate_token(API_TOKEN_PREFIX);
        assert_ne!(a, b);
        assert_eq!(a.len(), API_TOKEN_PREFIX.len() + BODY_LEN + CHECKSUM_LEN);
        assert!(well_formed(&a, API_TOKEN_PREFIX));
        assert_eq!(ha, hash_token(&a));
    }

    #[test]
    fn a_typo_fails_the_checksum() {
        let (token, _) = generate_token(API_TOKEN_PREFIX);
        let mut bytes = token.into_bytes();
        let i = API_TOKEN_PREFIX.len() + 3;
        bytes[i] = if bytes[i] == b'a' { b'b' } else { b'a' };
        let typo = String::from_utf8(bytes).unwrap();
        assert!(!well_formed(&typo, API_TOKEN_PREFIX));
        assert!(!well_formed("vbx_short", API_TOKEN_PREFIX));
        assert!(!well_formed(
            &typo.replacen("vbx_", "ghp_", 1),
            API_TOKEN_PREFIX
        ));
    }
}
