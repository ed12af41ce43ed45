//! Scope usage over time: the writer that stores the counts taken from
//! `auth::ScopeUsage` in batches, turns vals' refusals into scope
//! requests and mails their owners (once per val and scope per day); and
//! the report of a token's or val's usage, with what it never used.

use std::time::Duration;

use serde::Serialize;

use crate::app::{App, WeakApp};
use valbox_caps::email::outbox::Outgoing;
use valbox_model::iso8601;
use valbox_model::{Scope, Scopes, Subject};
use valbox_store::ScopeRequestRow;

/// How often counts are written; also the most a usage report lags.
const FLUSH_EVERY: Duration = Duration::from_millis(500);
/// A scope request is mailed at most this often.
const MAIL_EVERY_MS: i64 = 24 * 60 * 60 * 1000;
pub const DAY_MS: i64 = 24 * 60 * 60 * 1000;

/// Write the counts every [`FLUSH_EVERY`] for as long as the app lives.
pub fn start(app: WeakApp) {
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(FLUSH_EVERY).await;
            let Some(app) = app.upgrade() else { break };
            if let Err(e) = flush(&app).await {
                tracing::error!("writing scope usage: {e:#}");
            }
        }
    });
}

/// Store what was counted since the last flush, open or add to the scope
/// requests of vals that were refused, and mail the requests that are due.
pub async fn flush(app: &App) -> anyhow::Result<()> {
    let batch = app.auth.usage.take();
    if !batch.is_empty() {
        app.store.scopes.record(batch).await?;
    }
    mail_requests(app).await
}

/// Mail each open request not mailed in the last day to its val's owner.
async fn mail_requests(app: &App) -> anyhow::Result<()> {
    let since = valbox_model::now_ms() - MAIL_EVERY_MS;
    let due = app.store.scopes.requests_to_mail(since).await?;
    for request in due {
        let sent = app
            .caps
            .email
            .mailer
            .send_platform(
                &request.owner_id,
                Some(&request.val_id),
                request_mail(app, &request),
            )
            .await;
        if let Err(e) = sent {
            // An owner without a usable address is not asked again today.
            tracing::info!("mailing scope request {}: {e}", request.id);
        }
        app.store.scopes.mark_mailed(&request.id).await?;
    }
    Ok(())
}

fn request_mail(app: &App, r: &ScopeRequestRow) -> Outgoing {
    let base = &app.config.public_url;
    let (val, scope, id) = (format!("{}/{}", r.owner_name, r.val_name), &r.scope, &r.id);
    Outgoing {
        from_name: Some("Valbox".into()),
        reply_to: Vec::new(),
        subject: format!("Your val {val} asks for `{scope}`"),
        text: Some(format!(
            "Your val {val} was refused `{scope}` {} time(s): its calls do not hold it.\n\n\
             To grant it from its next call:\n  valbox val requests --grant {id}\n  \
             (or POST {base}/v1/scope-requests/{id}/grant)\n\n\
             To dismiss it (you will not hear about it again):\n  \
             valbox val requests --dismiss {id}\n  (or POST {base}/v1/scope-requests/{id}/dismiss)\n",
            r.denied_count
        )),
        html: None,
        loop_trace: Vec::new(),
    }
}

/// One scope of a usage report.
#[derive(Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ScopeUse {
    pub scope: String,
    /// Whether the token or val holds it now.
    pub held: bool,
    pub used: i64,
    pub last_used_at: Option<String>,
    pub denied: i64,
    pub last_denied_at: Option<String>,
}

/// What a token or val did with its scopes, and which it holds but has
/// not used within the last `days`.
#[derive(Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct UsageReport {
    pub data: Vec<ScopeUse>,
    pub days: i64,
    pub unused: Vec<String>,
    /// The scopes it would keep if narrowed to what it used.
    pub suggested: Vec<String>,
}

/// The report of `subject`, which holds `held`, over the last `days`.
/// Counts not yet written are written first.
pub async fn report(
    app: &App,
    subject: Subject,
    held: Scopes,
    days: i64,
) -> anyhow::Result<UsageReport> {
    flush(app).await?;
    read_report(app, subject, held, days).await
}

/// [`report`] from what is written so far: for several reports after one
/// [`flush`].
pub async fn read_report(
    app: &App,
    subject: Subject,
    held: Scopes,
    days: i64,
) -> anyhow::Result<UsageReport> {
    let rows = app.store.scopes.usage_of(&subject).await?;
    let since = valbox_model::now_ms() - days * DAY_MS;
    let recent: Scopes = rows
        .iter()
        .filter(|r| r.last_used_at.is_some_and(|t| t >= since))
        .filter_map(|r| Scope::parse(&r.scope))
        .collect();
    let mut data: Vec<ScopeUse> = Scope::ALL
        .into_iter()
        .filter_map(|scope| {
            let row = rows.iter().find(|r| r.scope == scope.as_str());
            if row.is_none() && !held.has(scope) {
                return None;
            }
            Some(ScopeUse {
                scope: scope.to_string(),
                held: held.has(scope),
                used: row.map_or(0, |r| r.used_count),
                last_used_at: row.and_then(|r| r.last_used_at).map(iso8601),
                denied: row.map_or(0, |r| r.denied_count),
                last_denied_at: row.and_then(|r| r.last_denied_at).map(iso8601),
            })
        })
        .collect();
    data.sort_by(|a, b| a.scope.cmp(&b.scope));
    let suggested = held.intersect(&recent);
    let unused = held
        .iter()
        .filter(|s| !recent.has(*s))
        .map(|s| s.to_string());
    Ok(UsageReport {
        data,
        days,
        unused: unused.collect(),
        suggested: suggested.iter().map(|s| s.to_string()).collect(),
    })
}
