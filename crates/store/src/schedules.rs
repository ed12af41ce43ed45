//! Cron vals' schedules and their runs: when each is next due, whether a
//! run holds it now (claimed in the store, so that on many nodes exactly
//! one runs each due run, and never two at once), and its failures.

use async_trait::async_trait;

use crate::StoreResult;

/// A cron val's schedule as stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScheduleRow {
    pub val_id: String,
    pub owner_id: String,
    /// As the owner wrote it, normalised.
    pub schedule: String,
    /// When the next run is due, in ms since the epoch.
    pub next_run_ms: i64,
    /// When the last run started.
    pub last_run_ms: Option<i64>,
    /// Runs that failed in a row.
    pub failures: i32,
    /// When it was paused after failing too often.
    pub paused_at: Option<i64>,
    /// Until when the run that claimed it holds it: also the claim's
    /// token, which its finish and its extensions must present.
    pub running_until: Option<i64>,
}

/// How a run ended, for [`Schedules::finish`].
#[derive(Clone, Copy, Debug)]
pub struct RunEnd {
    /// When the run started.
    pub started_ms: i64,
    /// When the next is due.
    pub next_run_ms: i64,
    /// Whether the val succeeded; `None`: it did not get to run (the
    /// platform's fault), which does not count as a failure.
    pub ok: Option<bool>,
    /// Failures in a row that pause the schedule.
    pub pause_after: i32,
}

#[async_trait]
pub trait Schedules: Send + Sync {
    /// Set `val_id`'s schedule, first due at `next_run_ms`, unpaused with
    /// no failures (a run going on keeps its hold), unless its owner has
    /// `limit` schedules on other vals: then `false`.
    async fn set(
        &self,
        val_id: &str,
        owner_id: &str,
        schedule: (&str, i64),
        limit: u64,
    ) -> StoreResult<bool>;
    /// Remove `val_id`'s schedule.
    async fn remove(&self, val_id: &str) -> StoreResult<()>;
    async fn get(&self, val_id: &str) -> StoreResult<Option<ScheduleRow>>;
    /// Claim up to `limit` runs due at `now_ms` that no run holds and that
    /// are not paused, each held until `hold_until_ms` (when a node that
    /// died while running it lets it go).
    async fn claim_due(
        &self,
        now_ms: i64,
        hold_until_ms: i64,
        limit: i64,
    ) -> StoreResult<Vec<ScheduleRow>>;
    /// Hold `claimed` until `hold_until_ms` instead, if its claim still
    /// holds it; `false` if not (the hold ran out and another took it).
    async fn extend(&self, claimed: &ScheduleRow, hold_until_ms: i64) -> StoreResult<bool>;
    /// Record the end of the run `claimed`, if its claim still holds the
    /// schedule (a next due time from a schedule changed meanwhile is
    /// kept); whether the schedule is now paused.
    async fn finish(&self, claimed: &ScheduleRow, end: RunEnd) -> StoreResult<bool>;
    /// Unpause a paused schedule, next due at `next_run_ms`.
    async fn unpause(&self, val_id: &str, next_run_ms: i64) -> StoreResult<()>;
}
