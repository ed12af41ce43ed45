//! Cron vals: setting a val's schedule, and running what is due. Every
//! tick each node claims the due runs in the store (so on many nodes
//! exactly one runs each, and a run still going holds its val: the next
//! is not started beside it), runs each as a call of its own with trigger
//! `cron`, then records how it ended and when the next is due. Runs missed
//! while no node ran (a restart, a run longer than the interval) collapse
//! into one; five failures in a row pause the schedule and mail the owner.

use std::time::Duration;

use valbox_caps::email::outbox::Outgoing;
use valbox_model::schedule::Schedule;
use valbox_model::{Trigger, ValKind, now_ms};
use valbox_runtime::bindings::CronEvent;
use valbox_runtime::{Input, Output};
use valbox_store::{RunEnd, ScheduleRow, ValRow};

use super::error::{Kind, ServiceError};
use crate::app::{App, WeakApp};

/// How often a node looks for due runs.
const TICK: Duration = Duration::from_millis(250);
/// How long a claim holds its val; a run going on extends it every
/// third of that, so a node that dies mid-run lets go within it.
const HOLD: Duration = Duration::from_secs(60);
/// Runs one node claims per tick.
const CLAIMS: i64 = 64;
/// Failures in a row that pause a schedule.
pub const PAUSE_AFTER: i32 = 5;

/// Look for due runs every tick while the app lives.
pub fn start(app: WeakApp) {
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(TICK).await;
            let Some(app) = app.upgrade() else { break };
            if app.stopping() {
                break;
            }
            if let Err(e) = run_due(&app).await {
                tracing::warn!("looking for due cron runs: {e}");
            }
        }
    });
}

/// Claim what is due and start each run.
async fn run_due(app: &App) -> Result<(), valbox_store::StoreError> {
    let now = now_ms();
    let hold = now + HOLD.as_millis() as i64;
    for claimed in app.store.schedules.claim_due(now, hold, CLAIMS).await? {
        let app = app.clone();
        tokio::spawn(async move { run_one(&app, claimed).await });
    }
    Ok(())
}

async fn run_one(app: &App, claimed: ScheduleRow) {
    let started = now_ms();
    let late = started.saturating_sub(claimed.next_run_ms).max(0);
    app.metrics.cron_lateness.observe(late as f64 / 1000.0);
    let Ok(schedule) = Schedule::parse(&claimed.schedule) else {
        // Checked when set: only a schedule from another version's rules.
        tracing::error!(
            "the stored schedule of val {} no longer parses",
            claimed.val_id
        );
        return;
    };
    let val = match app.store.vals.by_id(&claimed.val_id).await {
        Ok(Some(val)) if val.latest.as_ref().is_some_and(|v| v.kind == ValKind::Cron) => val,
        Ok(_) => {
            // Deleted, or redeployed as another kind: nothing to run.
            let _ = app.store.schedules.remove(&claimed.val_id).await;
            return;
        }
        Err(e) => {
            tracing::warn!("reading cron val {}: {e}", claimed.val_id);
            return;
        }
    };
    let event = CronEvent {
        schedule: claimed.schedule.clone(),
        due_ms: claimed.next_run_ms as u64,
        last_run_ms: claimed.last_run_ms.map(|ms| ms as u64),
    };
    let run = super::call::call_within(app, &val, true, Input::Cron(event), Trigger::Cron, None);
    let (called, claimed) = hold_while(app, claimed, run).await;
    let ok = match &called {
        Ok(c) => Some(matches!(c.output, Output::Cron(Ok(())))),
        // The platform did not get to run it (the owner's calls full, the
        // store or a node down): not the val's failure.
        Err(e) if matches!(e.kind, Kind::TooMany | Kind::Busy | Kind::Internal) => None,
        Err(_) => Some(false),
    };
    let (next, skipped) = next_after_now(&schedule, claimed.next_run_ms);
    if skipped > 0 {
        // In the val's log, where its owner looks: status 409, no run.
        let version = val.latest.as_ref().map_or(0, |v| v.version);
        let mut skip = super::call::first_record(&val, version, Trigger::Cron, None);
        skip.status = 409;
        skip.error = Some(format!(
            "{skipped} run(s) skipped: due while the last run was still going, or while no \
             node was running; the schedule goes on from the next one"
        ));
        app.logs.record(skip);
    }
    let end = RunEnd {
        started_ms: started,
        next_run_ms: next,
        ok,
        pause_after: PAUSE_AFTER,
    };
    match app.store.schedules.finish(&claimed, end).await {
        Ok(true) => mail_paused(app, &val, &called).await,
        Ok(false) => {}
        Err(e) => tracing::warn!("recording the cron run of {}: {e}", val.name),
    }
}

/// Run `run`, extending `claimed`'s hold while it goes on; the claim as
/// it stands at the end, for its finish.
async fn hold_while<T>(
    app: &App,
    mut claimed: ScheduleRow,
    run: impl Future<Output = T>,
) -> (T, ScheduleRow) {
    tokio::pin!(run);
    let mut extend = tokio::time::interval_at(tokio::time::Instant::now() + HOLD / 3, HOLD / 3);
    loop {
        tokio::select! {
            done = &mut run => return (done, claimed),
            _ = extend.tick() => {
                let hold = now_ms() + HOLD.as_millis() as i64;
                match app.store.schedules.extend(&claimed, hold).await {
                    Ok(true) => claimed.running_until = Some(hold),
                    Ok(false) => tracing::warn!("the cron run of {} lost its hold", claimed.val_id),
                    Err(e) => tracing::warn!("extending the cron run of {}: {e}", claimed.val_id),
                }
            }
        }
    }
}

/// Due times walked over one by one after a run, before jumping to now.
const MAX_STEPS: u64 = 1_000;

/// The first due time after now, and how many due times were passed over
/// on the way from `due` (the run that just ended).
fn next_after_now(schedule: &Schedule, due: i64) -> (i64, u64) {
    let now = now_ms() as u64;
    let mut next = schedule.next_after(due as u64);
    let mut skipped = 0;
    while let Some(at) = next.filter(|at| *at <= now) {
        skipped += 1;
        // Long downtime on a short interval: jump rather than walk.
        next = match skipped {
            ..MAX_STEPS => schedule.next_after(at),
            _ => schedule.next_after(now),
        };
    }
    // A schedule with no next time (never, in practice): a year out.
    let next = next.unwrap_or(now + 365 * 86_400_000);
    (next as i64, skipped)
}

async fn mail_paused(app: &App, val: &ValRow, called: &Result<super::call::Called, ServiceError>) {
    let why = match called {
        Ok(c) => match &c.output {
            Output::Cron(Err(message)) => message.clone(),
            _ => "it did not finish".into(),
        },
        Err(e) => e.message.clone(),
    };
    // The val's own words, bounded, in mail the platform sends.
    let why: String = why.chars().take(500).collect();
    let name = format!("{}/{}", val.owner_name, val.name);
    let mail = Outgoing {
        from_name: Some("Valbox".into()),
        reply_to: Vec::new(),
        subject: format!("Your cron val {name} is paused"),
        text: Some(format!(
            "Your cron val {name} failed {PAUSE_AFTER} times in a row, so it will not run \
             again until you unpause it. The last failure, in the val's words: {why}\n\n\
             See its runs:  valbox logs {}\n\
             Unpause it:    valbox val schedule {} --unpause\n  \
             (or PATCH {}/v2/vals/{} with {{\"paused\": false}})\n",
            val.name, val.name, app.config.public_url, val.id
        )),
        html: None,
        loop_trace: Vec::new(),
    };
    let mailer = &app.caps.email.mailer;
    if let Err(e) = mailer
        .send_platform(&val.owner_id, Some(&val.id), mail)
        .await
    {
        tracing::info!("mailing that cron val {name} is paused: {e}");
    }
}

/// Why a schedule was refused, for the owner.
pub enum Refused {
    Invalid(String),
    TooOften { min: Duration },
    TooMany(u64),
    NotCron(Option<ValKind>),
    Store(valbox_store::StoreError),
}

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Refused::Invalid(message) => f.write_str(message),
            Refused::TooOften { min } => write!(
                f,
                "this schedule runs more often than once every {:?}, the shortest this server \
                 allows",
                min
            ),
            Refused::TooMany(limit) => write!(
                f,
                "you have {limit} scheduled vals, the most allowed; turn one off first"
            ),
            Refused::NotCron(Some(kind)) => write!(
                f,
                "only a cron val runs on a schedule, and this one is a {kind} val; deploy a \
                 component made with valbox_sdk::cron_val! (or the JS/Python helpers)"
            ),
            Refused::NotCron(None) => {
                f.write_str("deploy the val (a cron val) before giving it a schedule")
            }
            Refused::Store(e) => write!(f, "{e}"),
        }
    }
}

/// What `text` asks of `val`'s schedule, checked: a schedule, or none
/// (`off`). Nothing is stored yet.
pub fn check(app: &App, val: &ValRow, text: &str) -> Result<Option<Schedule>, Refused> {
    let text = text.trim();
    if text.eq_ignore_ascii_case("off") {
        return Ok(None);
    }
    if text.is_empty() {
        return Err(Refused::Invalid(
            "the schedule is empty: write one like `every 15m` or `0 9 * * 1-5`, or `off`".into(),
        ));
    }
    let kind = val.latest.as_ref().map(|v| v.kind);
    if kind != Some(ValKind::Cron) {
        return Err(Refused::NotCron(kind));
    }
    let schedule = Schedule::parse(text).map_err(|e| Refused::Invalid(e.to_string()))?;
    let min = app.config.min_schedule;
    if schedule.min_interval_ms() < min.as_millis() as u64 {
        return Err(Refused::TooOften { min });
    }
    Ok(Some(schedule))
}

/// Give `val` the `checked` schedule, first due after now. The same
/// schedule again keeps its next run, failures and pause, so that a
/// redeploy with `--schedule` never postpones it.
pub async fn set(app: &App, val: &ValRow, checked: Option<Schedule>) -> Result<(), Refused> {
    let store = &app.store.schedules;
    let Some(schedule) = checked else {
        return store.remove(&val.id).await.map_err(Refused::Store);
    };
    let normalised = schedule.to_string();
    let existing = store.get(&val.id).await.map_err(Refused::Store)?;
    if existing.is_some_and(|e| e.schedule == normalised) {
        return Ok(());
    }
    let now = now_ms() as u64;
    let first = schedule.next_after(now).unwrap_or(now) as i64;
    let limit = app.config.schedules_per_owner;
    match store
        .set(&val.id, &val.owner_id, (&normalised, first), limit)
        .await
    {
        Ok(true) => Ok(()),
        Ok(false) => Err(Refused::TooMany(limit)),
        Err(e) => Err(Refused::Store(e)),
    }
}

/// Unpause `val`'s schedule, next due after now.
pub async fn unpause(app: &App, val: &ValRow) -> Result<(), valbox_store::StoreError> {
    let Some(row) = app.store.schedules.get(&val.id).await? else {
        return Ok(());
    };
    let now = now_ms() as u64;
    let next = Schedule::parse(&row.schedule)
        .ok()
        .and_then(|s| s.next_after(now))
        .unwrap_or(now);
    app.store.schedules.unpause(&val.id, next as i64).await
}
