//! Who holds scopes when a capability is used: a REST caller (its
//! [`Principal`]) or a running val (its call's grant). A capability's
//! service checks scopes through this trait, so its REST route and its
//! WIT import share one check and differ only in how a refusal reads.

use crate::{Scope, ScopeUsage, Scopes, Subject};

/// Who is making a request.
#[derive(Clone, Debug)]
pub struct Principal {
    pub user_id: String,
    pub username: String,
    pub scopes: Scopes,
    /// The id of the token used.
    pub token_id: String,
    /// Set when the token is a val's per-call token.
    pub call_of_val: Option<String>,
    /// Where its uses and refusals of scopes are counted.
    pub usage: ScopeUsage,
}

/// A refused scope, with a sentence saying why and what to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Denied {
    pub scope: Scope,
    pub message: String,
}

pub trait Holder {
    /// The user whose data the request reaches: the caller, or the val's
    /// owner.
    fn owner_id(&self) -> &str;

    /// Whether `scope` is held right now.
    fn allowed(&self, scope: Scope) -> bool;

    /// The refusal of `scope` (a val's call also records it for its log).
    fn deny(&mut self, scope: Scope) -> Denied;

    /// Count a use of `scope`, for the holder's scope usage.
    fn used(&self, _scope: Scope) {}

    /// `Ok` when `scope` is held, else its refusal.
    fn check(&mut self, scope: Scope) -> Result<(), Denied> {
        if self.allowed(scope) {
            self.used(scope);
            Ok(())
        } else {
            Err(self.deny(scope))
        }
    }
}

impl Holder for Principal {
    fn owner_id(&self) -> &str {
        &self.user_id
    }

    fn allowed(&self, scope: Scope) -> bool {
        self.scopes.has(scope)
    }

    fn used(&self, scope: Scope) {
        self.usage.record(&self.subject(), scope, true);
    }

    fn deny(&mut self, scope: Scope) -> Denied {
        self.refusal(scope)
    }
}

impl Principal {
    /// The refusal of `scope` when the token lacks it; a use counted
    /// either way.
    pub fn require(&self, scope: Scope) -> Result<(), Denied> {
        if self.scopes.has(scope) {
            self.usage.record(&self.subject(), scope, true);
            Ok(())
        } else {
            Err(self.refusal(scope))
        }
    }

    /// Whether a person's own token made the request, not a val's call
    /// token (which may never manage tokens).
    pub fn is_personal(&self) -> bool {
        self.call_of_val.is_none()
    }

    /// Whose scopes these are: the val's, for its call token.
    pub fn subject(&self) -> Subject {
        match &self.call_of_val {
            Some(val_id) => Subject::Val(val_id.clone()),
            None => Subject::Token(self.token_id.clone()),
        }
    }

    /// The refusal of `scope`, saying who can grant it; counted.
    pub fn refusal(&self, scope: Scope) -> Denied {
        self.usage.record(&self.subject(), scope, false);
        let message = if self.call_of_val.is_some() {
            format!(
                "this val's call token lacks the `{scope}` scope; the val's owner can grant it in the val's scopes"
            )
        } else {
            format!("this token lacks the `{scope}` scope; create a token that has it")
        };
        Denied { scope, message }
    }
}
