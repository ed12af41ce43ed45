//! The ground floor of Valbox: the types every layer speaks (scopes, who is
//! asking, what a val is, the limits) and nothing that does I/O.

mod limits;
mod principal;
pub mod schedule;
mod scope;
pub mod sections;
mod time;
mod usage;
mod val;

pub use limits::Limits;
pub use principal::{Denied, Holder, Principal};
pub use scope::{ALL_SCOPES, Scope, Scopes};
pub use time::{iso8601, now_ms};
pub use usage::{ScopeUsage, Subject, Tally};
pub use val::{Privacy, Trigger, ValKind};
