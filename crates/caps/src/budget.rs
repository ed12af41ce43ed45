//! What one request from outside and everything it causes share: the val
//! it called, the vals that val calls as APIs (and theirs), their
//! libraries and their fetches. Without one budget for the whole tree, a
//! single request could fan out into thousands of calls of other owners'
//! vals, each within its own per-call limits.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use valbox_model::Limits;

pub struct RequestBudget {
    /// The owner of the val the request called: every nested call counts
    /// against its call slots too, whoever's val it runs.
    root_owner: String,
    nested_calls: Counter,
    fetches: Counter,
    /// The vals that the mail which started the request went through
    /// (its loop header), which mail sent within it carries on, so that
    /// mail going round between vals is caught when it comes back.
    mail_trace: Vec<String>,
}

/// A count that stops at its limit.
struct Counter {
    taken: AtomicU32,
    limit: u32,
}

impl Counter {
    /// Take one; `Err(limit)` once all are taken.
    fn take(&self) -> Result<(), u32> {
        self.taken
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| {
                (n < self.limit).then_some(n + 1)
            })
            .map(drop)
            .map_err(|_| self.limit)
    }
}

impl RequestBudget {
    /// The budget of a request that called a val of `root_owner`.
    pub fn new(root_owner: &str, limits: &Limits) -> Arc<Self> {
        Self::carrying_mail_trace(root_owner, limits, Vec::new())
    }

    /// [`Self::new`] for a request started by mail that went through the
    /// vals `mail_trace`.
    pub fn carrying_mail_trace(
        root_owner: &str,
        limits: &Limits,
        mail_trace: Vec<String>,
    ) -> Arc<Self> {
        Arc::new(Self {
            mail_trace,
            root_owner: root_owner.to_string(),
            nested_calls: Counter {
                taken: AtomicU32::new(0),
                limit: limits.nested_calls_per_request,
            },
            fetches: Counter {
                taken: AtomicU32::new(0),
                limit: limits.fetch_requests_per_call,
            },
        })
    }

    pub fn root_owner(&self) -> &str {
        &self.root_owner
    }

    pub fn mail_trace(&self) -> &[String] {
        &self.mail_trace
    }

    /// Count one more val called as an API; `Err(limit)` past the limit.
    pub fn take_call(&self) -> Result<(), u32> {
        self.nested_calls.take()
    }

    /// Outbound requests counted so far.
    pub fn fetches_taken(&self) -> u32 {
        self.fetches.taken.load(Ordering::Relaxed)
    }

    /// Count one more outbound request (each redirect hop is one);
    /// `Err(limit)` past the limit.
    pub fn take_fetch(&self) -> Result<(), u32> {
        self.fetches.take()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calls_and_fetches_stop_at_their_limits_and_stay_there() {
        let limits = Limits {
            nested_calls_per_request: 2,
            fetch_requests_per_call: 1,
            ..Limits::default()
        };
        let budget = RequestBudget::new("alice", &limits);
        assert_eq!(budget.take_call(), Ok(()));
        assert_eq!(budget.take_call(), Ok(()));
        assert_eq!(budget.take_call(), Err(2));
        assert_eq!(budget.take_call(), Err(2));
        assert_eq!(budget.take_fetch(), Ok(()));
        assert_eq!(budget.take_fetch(), Err(1));
        assert_eq!(budget.root_owner(), "alice");
    }
}
