//! What one call of a val may do: on whose behalf, with which scopes, until
//! when; and the scopes it was refused, for its log.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::RequestBudget;
use valbox_auth::{CallToken, CallTokens, MintedToken, TokenWatch};
use valbox_model::{Denied, Holder, Scope, ScopeUsage, Scopes, Subject};

/// Its fields are private: capability code reads them and records
/// refusals, but cannot widen what the call may do.
pub struct Grant {
    owner_id: String,
    val_id: String,
    /// `owner/val`, as a callee's log names this call's val.
    val_label: String,
    scopes: Scopes,
    /// When the call must end; host work is bounded by it too.
    deadline: Instant,
    /// The call's own API token (the `valtown` env var): revoked when the
    /// grant is dropped, and refusing every scope once revoked. A library
    /// has none.
    token: Option<MintedToken>,
    /// The token this grant's scopes come from: its own, or for a library
    /// its caller's. Once that is revoked or expired, every scope is
    /// refused, in the call's own store and in its libraries' alike.
    source: TokenWatch,
    /// What the request this call belongs to may still cause.
    budget: Arc<RequestBudget>,
    /// Scopes the guest was refused, in order, for the call's log; shared
    /// with the grants of the call's libraries.
    denials: Arc<Mutex<Vec<Denial>>>,
    /// How many calls this one is nested in (0 for a call from outside).
    depth: u8,
    /// The library this grant is for, within its caller's call.
    library: Option<String>,
    /// Where the val's uses and refusals of its scopes are counted.
    usage: ScopeUsage,
    subject: Subject,
}

/// A refused scope, and the library that was refused it.
struct Denial {
    scope: Scope,
    library: Option<String>,
}

/// Whose call a grant is for: the val and its owner, and the call it is
/// nested in when another val called it as an API.
pub struct CallOf<'a> {
    pub owner_id: &'a str,
    pub owner_name: &'a str,
    pub val_id: &'a str,
    pub val_name: &'a str,
    pub within: Option<Within>,
    /// The budget of a call from outside; a nested call uses its
    /// caller's instead.
    pub budget: Arc<RequestBudget>,
}

/// The call a nested call runs within: it ends no later, one level
/// deeper, and draws on the same request's budget.
#[derive(Clone)]
pub struct Within {
    pub deadline: Instant,
    pub depth: u8,
    pub budget: Arc<RequestBudget>,
}

impl Grant {
    /// The grant of one call of `call.val_id`, holding `scopes` until
    /// `timeout` from now, with its token registered in `tokens`.
    pub fn mint(
        tokens: &CallTokens,
        usage: &ScopeUsage,
        call: CallOf,
        scopes: Scopes,
        timeout: Duration,
    ) -> Self {
        let mut deadline = Instant::now() + timeout;
        let mut depth = 0;
        let mut budget = call.budget;
        if let Some(within) = call.within {
            deadline = deadline.min(within.deadline);
            depth = within.depth.saturating_add(1);
            budget = within.budget;
        }
        let timeout = deadline.saturating_duration_since(Instant::now());
        let now_ms = valbox_model::now_ms();
        let token = tokens.mint(CallToken {
            id: String::new(),
            owner_id: call.owner_id.into(),
            username: call.owner_name.into(),
            val_id: call.val_id.into(),
            scopes,
            created_at_ms: now_ms,
            deadline,
            expires_at_ms: now_ms + timeout.as_millis() as i64,
        });
        Grant {
            source: token.watch(),
            budget,
            owner_id: call.owner_id.into(),
            val_id: call.val_id.into(),
            val_label: format!("{}/{}", call.owner_name, call.val_name),
            scopes,
            deadline,
            token: Some(token),
            denials: Arc::default(),
            depth,
            library: None,
            usage: usage.clone(),
            subject: Subject::Val(call.val_id.into()),
        }
    }

    /// The grant of the library `label` linked into this call: the scopes
    /// its caller granted it (never more than this call holds), on the
    /// caller's data, with no token of its own.
    pub fn for_library(&self, label: &str, granted: Scopes) -> Grant {
        Grant {
            owner_id: self.owner_id.clone(),
            val_id: self.val_id.clone(),
            val_label: self.val_label.clone(),
            scopes: granted.intersect(&self.scopes),
            deadline: self.deadline,
            token: None,
            source: self.source.clone(),
            budget: self.budget.clone(),
            denials: self.denials.clone(),
            depth: self.depth,
            library: Some(label.to_string()),
            usage: self.usage.clone(),
            subject: self.subject.clone(),
        }
    }

    /// This call, as the one a nested call runs within.
    pub fn as_within(&self) -> Within {
        Within {
            deadline: self.deadline,
            depth: self.depth,
            budget: self.budget.clone(),
        }
    }

    /// What the request this call belongs to may still cause.
    pub fn budget(&self) -> &RequestBudget {
        &self.budget
    }
}

impl Grant {
    pub fn owner_id(&self) -> &str {
        &self.owner_id
    }

    pub fn val_id(&self) -> &str {
        &self.val_id
    }

    /// Who is calling, as a callee's log names it: `owner/val`, or the
    /// library within it.
    pub fn caller_label(&self) -> String {
        match &self.library {
            Some(library) => format!("{} (library {library})", self.val_label),
            None => self.val_label.clone(),
        }
    }

    pub fn deadline(&self) -> Instant {
        self.deadline
    }

    /// The call's token, for the val: made on first use. A library has
    /// none.
    pub fn token_text(&mut self) -> Option<&str> {
        self.token.as_mut().map(|t| t.text())
    }

    /// The scopes the call and its libraries were refused, in order.
    pub fn denials(&self) -> Vec<Scope> {
        self.denial_log().iter().map(|d| d.scope).collect()
    }

    /// The refusals as the call's log shows them: the scope, and the
    /// library refused it, if one was.
    pub fn denial_notes(&self) -> Vec<String> {
        self.denial_log()
            .iter()
            .map(|d| match &d.library {
                Some(label) => format!("{} (library {label})", d.scope),
                None => d.scope.to_string(),
            })
            .collect()
    }

    /// The scopes refused during the call, once per refusal.
    pub fn denied_scopes(&self) -> Vec<Scope> {
        self.denial_log().iter().map(|d| d.scope).collect()
    }

    fn denial_log(&self) -> std::sync::MutexGuard<'_, Vec<Denial>> {
        self.denials.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn token_live(&self) -> bool {
        self.source.is_live()
    }
}

impl Holder for Grant {
    fn owner_id(&self) -> &str {
        &self.owner_id
    }

    fn allowed(&self, scope: Scope) -> bool {
        self.scopes.has(scope) && self.token_live()
    }

    /// A library's use of a scope granted to it is its caller's use.
    fn used(&self, scope: Scope) {
        self.usage.record(&self.subject, scope, true);
    }

    fn deny(&mut self, scope: Scope) -> Denied {
        // The val's own lack of a scope (not a library's, nor a dead
        // token's) is what its owner may want to grant.
        if self.library.is_none() && !self.scopes.has(scope) {
            self.usage.record(&self.subject, scope, false);
        }
        self.denial_log().push(Denial {
            scope,
            library: self.library.clone(),
        });
        let message = if !self.token_live() {
            format!("this call's token was revoked or has expired, so `{scope}` is refused")
        } else if let Some(label) = &self.library {
            let name = label.split('@').next().unwrap_or(label);
            format!(
                "library `{label}` was not granted the `{scope}` scope; the caller's owner can grant it \
                 when deploying the caller: `--grant {name}={scope}`"
            )
        } else {
            format!(
                "this call's token lacks the `{scope}` scope; the val's owner can grant it in the val's scopes"
            )
        };
        Denied { scope, message }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grant(tokens: &CallTokens, scopes: &[Scope]) -> Grant {
        let call = CallOf {
            owner_id: "owner",
            owner_name: "alice",
            val_id: "val",
            val_name: "hello",
            within: None,
            budget: RequestBudget::new("owner", &valbox_model::Limits::default()),
        };
        let scopes = scopes.iter().copied().collect();
        Grant::mint(
            tokens,
            &ScopeUsage::default(),
            call,
            scopes,
            Duration::from_secs(10),
        )
    }

    #[test]
    fn a_held_scope_is_allowed_and_a_missing_one_is_denied_and_recorded() {
        let tokens = CallTokens::default();
        let mut g = grant(&tokens, &[Scope::BlobRead]);
        assert!(g.check(Scope::BlobRead).is_ok());
        let denied = g.check(Scope::BlobWrite).unwrap_err();
        assert_eq!(denied.scope, Scope::BlobWrite);
        assert!(denied.message.contains("lacks the `blob:write` scope"));
        assert_eq!(g.denials(), [Scope::BlobWrite]);
    }

    #[test]
    fn a_library_holds_only_what_it_was_granted_of_its_callers_scopes() {
        let tokens = CallTokens::default();
        let caller = grant(&tokens, &[Scope::BlobRead, Scope::EnvRead]);
        let granted = [Scope::BlobRead, Scope::Fetch].into_iter().collect();
        let mut library = caller.for_library("bob/slug@2", granted);
        assert!(library.check(Scope::BlobRead).is_ok());
        // Granted but not the caller's: refused.
        let denied = library.check(Scope::Fetch).unwrap_err();
        assert!(denied.message.contains("library `bob/slug@2`"));
        assert!(denied.message.contains("--grant bob/slug=fetch"));
        assert!(library.check(Scope::EnvRead).is_err());
        assert_eq!(library.token_text(), None);
        // The caller's log sees the library's refusals.
        assert_eq!(caller.denials(), [Scope::Fetch, Scope::EnvRead]);
        assert_eq!(caller.denial_notes()[0], "fetch (library bob/slug@2)");
    }

    #[test]
    fn a_revoked_token_refuses_every_scope() {
        let tokens = CallTokens::default();
        let mut g = grant(&tokens, &[Scope::BlobRead]);
        let id = tokens.for_owner("owner")[0].id.clone();
        assert!(tokens.revoke_id("owner", &id));
        let denied = g.check(Scope::BlobRead).unwrap_err();
        assert!(denied.message.contains("revoked or has expired"));
    }

    #[test]
    fn revoking_the_callers_token_ends_its_libraries_grants_too() {
        let tokens = CallTokens::default();
        let caller = grant(&tokens, &[Scope::BlobRead]);
        let mut library = caller.for_library("bob/slug@2", [Scope::BlobRead].into_iter().collect());
        assert!(library.check(Scope::BlobRead).is_ok());
        let id = tokens.for_owner("owner")[0].id.clone();
        assert!(tokens.revoke_id("owner", &id));
        let denied = library.check(Scope::BlobRead).unwrap_err();
        assert!(
            denied.message.contains("revoked or has expired"),
            "{}",
            denied.message
        );
    }

    #[test]
    fn dropping_the_grant_revokes_its_token() {
        let tokens = CallTokens::default();
        let g = grant(&tokens, &[]);
        assert_eq!(tokens.for_owner("owner").len(), 1);
        drop(g);
        assert!(tokens.for_owner("owner").is_empty());
    }
}
