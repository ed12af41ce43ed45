//! Per-call val tokens. Each call of a val mints one: owned by the val's
//! author, holding the val's scopes, valid until the call's deadline and
//! revoked when the call ends. They live only in memory: every call runs
//! in this process and none outlives it, so a lookup costs no I/O.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use super::{CALL_TOKEN_PREFIX, Principal, Scopes, generate_token};

#[derive(Clone, Debug)]
pub struct CallToken {
    pub id: String,
    pub owner_id: String,
    pub username: String,
    pub val_id: String,
    pub scopes: Scopes,
    pub created_at_ms: i64,
    pub deadline: Instant,
    pub expires_at_ms: i64,
}

impl CallToken {
    pub fn expired(&self) -> bool {
        Instant::now() >= self.deadline
    }

    pub fn principal(&self) -> Principal {
        Principal {
            user_id: self.owner_id.clone(),
            username: self.username.clone(),
            scopes: self.scopes,
            token_id: self.id.clone(),
            call_of_val: Some(self.val_id.clone()),
        }
    }
}

/// The live call tokens, by hash.
#[derive(Clone, Default)]
pub struct CallTokens {
    live: Arc<Mutex<HashMap<String, CallToken>>>,
}

impl CallTokens {
    /// Mint a token. It is revoked when the returned lease is dropped.
    pub fn mint(&self, mut token: CallToken) -> MintedToken {
        let (text, hash) = generate_token(CALL_TOKEN_PREFIX);
        token.id = format!("call-{}", &hash[..16]);
        self.lock().insert(hash.clone(), token);
        MintedToken {
            text,
            hash,
            tokens: self.clone(),
        }
    }

    pub fn get(&self, hash: &str) -> Option<CallToken> {
        self.lock().get(hash).cloned()
    }

    /// Whether the token is live: minted, not revoked, not expired.
    pub fn is_live(&self, hash: &str) -> bool {
        self.lock().get(hash).is_some_and(|t| !t.expired())
    }

    pub fn revoke(&self, hash: &str) -> bool {
        self.lock().remove(hash).is_some()
    }

    /// Revoke by id, only among `owner`'s tokens.
    pub fn revoke_id(&self, owner: &str, id: &str) -> bool {
        let mut live = self.lock();
        let hash = live
            .iter()
            .find(|(_, t)| t.id == id && t.owner_id == owner)
            .map(|(h, _)| h.clone());
        hash.is_some_and(|h| live.remove(&h).is_some())
    }

    pub fn for_owner(&self, owner: &str) -> Vec<CallToken> {
        let mut tokens: Vec<CallToken> = self
            .lock()
            .values()
            .filter(|t| t.owner_id == owner)
            .cloned()
            .collect();
        tokens.sort_by_key(|t| t.created_at_ms);
        tokens
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, CallToken>> {
        self.live.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// A minted call token, revoked when dropped: it ends with its call even
/// if the request is cancelled mid-way.
pub struct MintedToken {
    text: String,
    hash: String,
    tokens: CallTokens,
}

impl MintedToken {
    /// The token itself, for the val (its `valtown` env var).
    pub fn text(&self) -> &str {
        &self.text
    }

    /// Whether it is still live: not revoked (by its owner, or found
    /// leaked) and not expired.
    pub fn is_live(&self) -> bool {
        self.tokens.is_live(&self.hash)
    }
}

impl MintedToken {
    /// Give up the lease: the token stays live until its deadline or a
    /// revocation. For tests that stand in for a running call.
    pub fn detach(mut self) -> String {
        self.hash.clear();
        std::mem::take(&mut self.text)
    }
}

impl Drop for MintedToken {
    fn drop(&mut self) {
        if !self.hash.is_empty() {
            self.tokens.revoke(&self.hash);
        }
    }
}
