//! Per-call val tokens. Each call of a val mints one: owned by the val's
//! author, holding the val's scopes, valid until the call's deadline and
//! revoked when the call ends. They live only in memory: every call runs
//! in this process and none outlives it, so a lookup costs no I/O.

use std::collections::HashMap;
use std::hash::{BuildHasher, RandomState};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use valbox_model::{Principal, ScopeUsage, Scopes};

use super::{CALL_TOKEN_PREFIX, generate_token};

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

    /// The principal of a request made with this token, counting its
    /// scopes' use in `usage`.
    pub fn principal(&self, usage: ScopeUsage) -> Principal {
        Principal {
            user_id: self.owner_id.clone(),
            username: self.username.clone(),
            scopes: self.scopes,
            token_id: self.id.clone(),
            call_of_val: Some(self.val_id.clone()),
            usage,
        }
    }
}

/// The live call tokens. Each is registered when its call starts (so its
/// owner can list and revoke it); its text is made only when the val first
/// reads it, which most calls never do, so a call costs no random draw and
/// no hash unless it uses its token.
#[derive(Clone, Default)]
pub struct CallTokens {
    live: Arc<Mutex<Live>>,
    next_id: Arc<AtomicU64>,
    /// Keys the ids owners see, so that an id tells nothing of how many
    /// calls ran and does not repeat across restarts.
    id_key: RandomState,
}

#[derive(Default)]
struct Live {
    by_id: HashMap<u64, Entry>,
    /// Tokens whose text exists, by the text's hash.
    by_hash: HashMap<String, u64>,
}

struct Entry {
    token: CallToken,
    hash: Option<String>,
}

impl Live {
    fn remove(&mut self, id: u64) -> bool {
        match self.by_id.remove(&id) {
            Some(entry) => {
                if let Some(hash) = entry.hash {
                    self.by_hash.remove(&hash);
                }
                true
            }
            None => false,
        }
    }
}

impl CallTokens {
    /// Register a call's token. It is revoked when the returned lease is
    /// dropped.
    pub fn mint(&self, mut token: CallToken) -> MintedToken {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        token.id = format!("call-{:016x}", self.id_key.hash_one(id));
        let entry = Entry { token, hash: None };
        self.lock().by_id.insert(id, entry);
        MintedToken {
            id,
            text: None,
            tokens: self.clone(),
        }
    }

    /// The live or expired token whose text hashes to `hash`.
    pub fn get(&self, hash: &str) -> Option<CallToken> {
        let live = self.lock();
        let id = live.by_hash.get(hash)?;
        live.by_id.get(id).map(|e| e.token.clone())
    }

    /// Whether token `id` is live: not revoked and not expired.
    fn is_live(&self, id: u64) -> bool {
        self.lock()
            .by_id
            .get(&id)
            .is_some_and(|e| !e.token.expired())
    }

    /// Make the text of token `id`, and know it by its hash from now on.
    fn issue_text(&self, id: u64) -> String {
        let (text, hash) = generate_token(CALL_TOKEN_PREFIX);
        let mut live = self.lock();
        if let Some(entry) = live.by_id.get_mut(&id) {
            entry.hash = Some(hash.clone());
            live.by_hash.insert(hash, id);
        }
        text
    }

    /// Revoke the token whose text hashes to `hash`.
    pub fn revoke(&self, hash: &str) -> bool {
        let mut live = self.lock();
        match live.by_hash.get(hash).copied() {
            Some(id) => live.remove(id),
            None => false,
        }
    }

    /// Revoke by id, only among `owner`'s tokens.
    pub fn revoke_id(&self, owner: &str, id: &str) -> bool {
        let mut live = self.lock();
        let found = live
            .by_id
            .iter()
            .find(|(_, e)| e.token.id == id && e.token.owner_id == owner)
            .map(|(n, _)| *n);
        found.is_some_and(|n| live.remove(n))
    }

    pub fn for_owner(&self, owner: &str) -> Vec<CallToken> {
        let mut tokens: Vec<CallToken> = self
            .lock()
            .by_id
            .values()
            .filter(|e| e.token.owner_id == owner)
            .map(|e| e.token.clone())
            .collect();
        tokens.sort_by_key(|t| t.created_at_ms);
        tokens
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Live> {
        self.live.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// A call's token, revoked when dropped: it ends with its call even if the
/// request is cancelled mid-way.
pub struct MintedToken {
    id: u64,
    text: Option<String>,
    tokens: CallTokens,
}

impl MintedToken {
    /// The token itself, for the val (its `valtown` env var); made on
    /// first use.
    pub fn text(&mut self) -> &str {
        let (tokens, id) = (&self.tokens, self.id);
        self.text.get_or_insert_with(|| tokens.issue_text(id))
    }

    /// Whether it is still live: not revoked (by its owner, or found
    /// leaked) and not expired.
    pub fn is_live(&self) -> bool {
        self.tokens.is_live(self.id)
    }

    /// A handle that tells whether this token is still live without
    /// keeping it alive: what a library's grant, derived from this call's,
    /// checks on every use.
    pub fn watch(&self) -> TokenWatch {
        TokenWatch {
            id: self.id,
            tokens: self.tokens.clone(),
        }
    }
}

/// Whether a call's token is live, seen from a grant derived from it.
#[derive(Clone)]
pub struct TokenWatch {
    id: u64,
    tokens: CallTokens,
}

impl TokenWatch {
    pub fn is_live(&self) -> bool {
        self.tokens.is_live(self.id)
    }
}

impl Drop for MintedToken {
    fn drop(&mut self) {
        self.tokens.lock().remove(self.id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{hash_token, well_formed};

    fn token(owner: &str) -> CallToken {
        CallToken {
            id: String::new(),
            owner_id: owner.into(),
            username: owner.into(),
            val_id: "val".into(),
            scopes: Scopes::val_default(),
            created_at_ms: 0,
            deadline: Instant::now() + std::time::Duration::from_secs(10),
            expires_at_ms: 0,
        }
    }

    #[test]
    fn the_text_is_made_on_first_read_and_then_authenticates() {
        let tokens = CallTokens::default();
        let mut minted = tokens.mint(token("alice"));
        assert!(minted.is_live());
        let text = minted.text().to_string();
        assert_eq!(minted.text(), text, "one text per call");
        assert!(well_formed(&text, CALL_TOKEN_PREFIX));
        let found = tokens.get(&hash_token(&text)).unwrap();
        assert_eq!(found.owner_id, "alice");
        assert!(tokens.revoke(&hash_token(&text)));
        assert!(!minted.is_live());
        assert!(tokens.get(&hash_token(&text)).is_none());
    }

    #[test]
    fn only_the_owner_revokes_by_id_and_the_lease_revokes_on_drop() {
        let tokens = CallTokens::default();
        let mut minted = tokens.mint(token("alice"));
        let text = minted.text().to_string();
        let id = tokens.for_owner("alice")[0].id.clone();
        assert!(!tokens.revoke_id("bob", &id));
        assert!(minted.is_live());
        drop(minted);
        assert!(tokens.for_owner("alice").is_empty());
        assert!(tokens.get(&hash_token(&text)).is_none());
    }
}
