//! What each token and val does with its scopes: counted in memory on
//! every check, cheaply (a lookup under a lock, no allocation once the
//! holder is known), and taken in batches by the writer that stores them
//! (`services::scope_usage`), never a write per request.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use crate::Scope;

/// Whose scopes are counted: a personal token, or a val (its calls' grants
/// and its call tokens used over REST).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Subject {
    Token(String),
    Val(String),
}

impl Subject {
    pub fn kind(&self) -> &'static str {
        match self {
            Subject::Token(_) => "token",
            Subject::Val(_) => "val",
        }
    }

    pub fn id(&self) -> &str {
        match self {
            Subject::Token(id) | Subject::Val(id) => id,
        }
    }
}

/// One scope's uses and refusals since the last batch was taken.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Tally {
    pub used: u64,
    pub last_used_ms: i64,
    pub denied: u64,
    pub last_denied_ms: i64,
}

type Tallies = [Tally; Scope::ALL.len()];

/// The counters, shared by every principal and grant of the server.
#[derive(Clone, Default)]
pub struct ScopeUsage {
    pending: Arc<Mutex<HashMap<Subject, Tallies>>>,
}

impl std::fmt::Debug for ScopeUsage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ScopeUsage")
    }
}

impl ScopeUsage {
    /// Count a use of `scope` by `subject` (`allowed`) or a refusal.
    pub fn record(&self, subject: &Subject, scope: Scope, allowed: bool) {
        let now = crate::now_ms();
        let mut pending = self.pending.lock().unwrap_or_else(|p| p.into_inner());
        let tallies = match pending.get_mut(subject) {
            Some(t) => t,
            None => pending.entry(subject.clone()).or_default(),
        };
        let tally = &mut tallies[scope as usize];
        if allowed {
            tally.used += 1;
            tally.last_used_ms = now;
        } else {
            tally.denied += 1;
            tally.last_denied_ms = now;
        }
    }

    /// Everything counted since the last call, for the writer.
    pub fn take(&self) -> Vec<(Subject, Scope, Tally)> {
        let pending = std::mem::take(&mut *self.pending.lock().unwrap_or_else(|p| p.into_inner()));
        pending
            .into_iter()
            .flat_map(|(subject, tallies)| {
                Scope::ALL
                    .into_iter()
                    .zip(tallies)
                    .filter(|(_, t)| t.used + t.denied > 0)
                    .map(move |(scope, t)| (subject.clone(), scope, t))
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uses_and_refusals_are_counted_per_subject_and_scope_until_taken() {
        let usage = ScopeUsage::default();
        let val = Subject::Val("v".into());
        usage.record(&val, Scope::BlobRead, true);
        usage.record(&val, Scope::BlobRead, true);
        usage.record(&val, Scope::EmailWrite, false);
        usage.record(&Subject::Token("t".into()), Scope::BlobRead, true);
        let mut taken = usage.take();
        taken.sort_by_key(|(s, scope, _)| (s.kind(), *scope as usize));
        let counts: Vec<_> = taken
            .iter()
            .map(|(s, scope, t)| (s.kind(), *scope, t.used, t.denied))
            .collect();
        assert_eq!(
            counts,
            [
                ("token", Scope::BlobRead, 1, 0),
                ("val", Scope::BlobRead, 2, 0),
                ("val", Scope::EmailWrite, 0, 1),
            ]
        );
        assert!(usage.take().is_empty());
    }
}
