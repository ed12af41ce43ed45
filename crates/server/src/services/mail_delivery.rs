//! Delivering received mail to email vals: each node claims due messages
//! in the mail queue (so on many nodes exactly one delivers each), calls
//! the val with the parsed message (trigger `email`, logged like any
//! call), and removes the message once the val took it. A val that fails
//! gets it again with backoff until `retry_for` after its arrival; a
//! delivery the platform could not start (the owner's calls full, a node
//! going down) does not count as an attempt.

use std::time::Duration;

use valbox_model::{Trigger, ValKind, now_ms};
use valbox_runtime::{Input, Output};
use valbox_store::QueuedMail;

use super::error::Kind;
use crate::app::{App, WeakApp};

/// How often a node looks for due mail when none arrived.
const LOOK_EVERY: Duration = Duration::from_millis(500);
/// How long a claim holds a message: longer than any call.
const HOLD: Duration = Duration::from_secs(120);
/// Messages one node claims at a time (each up to the size limit).
const CLAIMS: i64 = 8;
/// The longest wait between two attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(600);
/// The wait after a delivery the platform could not start.
const BUSY_BACKOFF: Duration = Duration::from_secs(1);

/// Deliveries one node runs at once: a backlog waits in the store, not
/// in memory.
const IN_FLIGHT: usize = 2 * CLAIMS as usize;

/// Deliver due mail while the app lives: when this node queued some, and
/// every [`LOOK_EVERY`] for what other nodes queued or retries.
pub fn start(app: WeakApp) {
    let turns = std::sync::Arc::new(tokio::sync::Semaphore::new(IN_FLIGHT));
    tokio::spawn(async move {
        loop {
            let Some(strong) = app.upgrade() else { break };
            if strong.stopping() {
                break;
            }
            match deliver_due(&strong, &turns).await {
                // A full claim: more may be due at once.
                Ok(n) if n == CLAIMS as usize => continue,
                // No free turn: wait for one, not for the next look.
                Ok(0) if turns.available_permits() == 0 => {
                    let _ = turns.acquire().await.map(drop);
                    continue;
                }
                Ok(_) => {}
                Err(e) => tracing::warn!("looking for mail to deliver: {e}"),
            }
            let arrived = async { strong.mail_arrived.notified().await };
            let _ = tokio::time::timeout(LOOK_EVERY, arrived).await;
        }
    });
}

/// Claim what is due, as much as there are free `turns` for, and deliver
/// each; how many were claimed.
async fn deliver_due(
    app: &App,
    turns: &std::sync::Arc<tokio::sync::Semaphore>,
) -> Result<usize, valbox_store::StoreError> {
    let free = turns.available_permits().min(CLAIMS as usize);
    if free == 0 {
        return Ok(0);
    }
    let now = now_ms();
    let hold = now + HOLD.as_millis() as i64;
    let claimed = app
        .store
        .mail_queue
        .claim_due(now, hold, free as i64)
        .await?;
    let n = claimed.len();
    for mail in claimed {
        let Ok(turn) = turns.clone().try_acquire_owned() else {
            break; // only this loop takes turns: never, in practice
        };
        let app = app.clone();
        tokio::spawn(async move {
            deliver(&app, mail).await;
            drop(turn);
        });
    }
    Ok(n)
}

/// What became of one attempt.
enum Attempt {
    Delivered,
    /// The val failed: why.
    Failed(String),
    /// The platform could not run it now.
    NotRun,
    /// No such email val any more: nothing to deliver to.
    Gone,
}

async fn deliver(app: &App, mail: QueuedMail) {
    let attempt = attempt(app, &mail).await;
    let queue = &app.store.mail_queue;
    let now = now_ms();
    let done = match attempt {
        Attempt::Delivered | Attempt::Gone => queue.remove(&mail).await,
        Attempt::NotRun => {
            queue
                .release(&mail, now + BUSY_BACKOFF.as_millis() as i64)
                .await
        }
        Attempt::Failed(why) => {
            let config = app.config.mail.as_ref().expect("delivery runs with mail");
            let next = now + backoff(config.first_retry, mail.attempts).as_millis() as i64;
            let give_up_at = mail.received_ms + config.retry_for.as_millis() as i64;
            if next > give_up_at {
                give_up(app, &mail, &why).await;
                queue.remove(&mail).await
            } else {
                queue.retry(&mail, next, &why).await
            }
        }
    };
    match done {
        Ok(true) => {}
        // Held too long (a call past the hold): another node has it now.
        Ok(false) => tracing::warn!("the delivery of mail {} lost its hold", mail.id),
        Err(e) => tracing::warn!("recording the delivery of mail {}: {e}", mail.id),
    }
}

async fn attempt(app: &App, mail: &QueuedMail) -> Attempt {
    let val = match app.store.vals.by_id(&mail.val_id).await {
        Ok(Some(val))
            if val
                .latest
                .as_ref()
                .is_some_and(|v| v.kind == ValKind::Email) =>
        {
            val
        }
        Ok(_) => {
            tracing::info!(
                "mail {} dropped: its val is deleted or no longer an email val",
                mail.id
            );
            return Attempt::Gone;
        }
        Err(e) => {
            tracing::warn!("reading email val {}: {e}", mail.val_id);
            return Attempt::NotRun;
        }
    };
    // Parsing up to the size limit of MIME: off the async threads.
    let (raw, from, to) = (
        mail.raw.clone(),
        mail.envelope_from.clone(),
        mail.envelope_to.clone(),
    );
    let parsed = tokio::task::spawn_blocking(move || crate::mail_in::received(&raw, &from, &to));
    let Ok(received) = parsed.await else {
        return Attempt::Failed("the message could not be read".into());
    };
    if mail.attempts == 0 {
        let waited = now_ms().saturating_sub(mail.received_ms).max(0);
        app.metrics
            .mail_delivery_delay
            .observe(waited as f64 / 1000.0);
    }
    let input = Input::Email(Box::new(received));
    match super::call::call_within(app, &val, false, input, Trigger::Email, None).await {
        Ok(called) => match called.output {
            Output::Email(Ok(())) => Attempt::Delivered,
            Output::Email(Err(message)) => Attempt::Failed(message),
            _ => Attempt::Failed("the val did not answer as an email val".into()),
        },
        Err(e) if matches!(e.kind, Kind::TooMany | Kind::Busy | Kind::Internal) => Attempt::NotRun,
        Err(e) => Attempt::Failed(e.message),
    }
}

/// The wait after `attempts` failed attempts: `first`, doubling, at most
/// [`MAX_BACKOFF`].
fn backoff(first: Duration, attempts: i32) -> Duration {
    let doublings = attempts.clamp(0, 20) as u32;
    first.saturating_mul(1 << doublings).min(MAX_BACKOFF)
}

/// The last failure: in the val's log, where its owner looks.
async fn give_up(app: &App, mail: &QueuedMail, why: &str) {
    let Ok(Some(val)) = app.store.vals.by_id(&mail.val_id).await else {
        return;
    };
    let version = val.latest.as_ref().map_or(0, |v| v.version);
    let mut record = super::call::first_record(&val, version, Trigger::Email, None);
    record.status = 410;
    let why: String = why.chars().take(500).collect();
    record.error = Some(format!(
        "mail from <{}> given up after {} attempts; the last failure: {why}",
        mail.envelope_from,
        mail.attempts + 1
    ));
    app.logs.record(record);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_its_cap() {
        let first = Duration::from_secs(30);
        assert_eq!(backoff(first, 0), first);
        assert_eq!(backoff(first, 2), Duration::from_secs(120));
        assert_eq!(backoff(first, 30), MAX_BACKOFF);
        assert_eq!(backoff(first, -1), first);
    }
}
