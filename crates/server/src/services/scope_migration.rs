//! Moving defaults safely: remove scopes from every val and token that
//! holds them, except those that used them lately. Those are held back,
//! and their owners are told once, through the outbox, what would change
//! and how to opt in. Each item changes in a transaction of its own, so an
//! interrupted run leaves nothing half-done, and a second run changes and
//! mails nothing the first one did.

use crate::services::scope_usage::DAY_MS;
use valbox_caps::email::outbox::{self, Budget, Outgoing};
use valbox_model::{Scope, Scopes, Subject};
use valbox_store::{Holding, Store, StoreResult, used_any_since};

/// One val or token the migration looked at.
#[derive(Debug, Clone)]
pub struct Item {
    pub subject: Subject,
    pub owner_id: String,
    /// `val alice/foo` or `token "cli" (id)`.
    pub label: String,
    /// The scopes of the removed set it holds.
    pub holds: Scopes,
}

/// What a run did, or (dry run) would do.
#[derive(Debug, Default)]
pub struct Report {
    pub migrated: Vec<Item>,
    pub held_back: Vec<Item>,
    /// Owners mailed (or, dry run, to mail) about held-back items.
    pub emailed: Vec<String>,
}

/// The per-owner daily mail limit does not apply to this one notice.
const NOTICE_LIMIT: u32 = u32::MAX;

/// Remove `remove` from every val and live token that holds any of it and
/// used none of it in the last `days` days.
pub async fn migrate(
    store: &Store,
    remove: Scopes,
    days: u32,
    dry_run: bool,
) -> anyhow::Result<Report> {
    let since = valbox_model::now_ms() - i64::from(days) * DAY_MS;
    let mut report = Report::default();
    for item in holders(store, remove).await? {
        let held: Vec<Scope> = item.holds.iter().collect();
        let usage = store.scopes.usage_of(&item.subject).await?;
        if used_any_since(&usage, &held, since) {
            report.held_back.push(item);
        } else {
            if !dry_run {
                store.scopes.remove_scopes(&item.subject, &remove).await?;
            }
            report.migrated.push(item);
        }
    }
    let mut owners: Vec<String> = report
        .held_back
        .iter()
        .map(|i| i.owner_id.clone())
        .collect();
    owners.sort();
    owners.dedup();
    for owner in owners {
        let items: Vec<&Item> = report
            .held_back
            .iter()
            .filter(|i| i.owner_id == owner)
            .collect();
        if notify(store, &owner, &items, remove, days, dry_run).await? {
            report.emailed.push(owner);
        }
    }
    Ok(report)
}

/// Every val and live token holding any of `remove`.
async fn holders(store: &Store, remove: Scopes) -> StoreResult<Vec<Item>> {
    let item = |h: Holding| {
        let holds = h.scopes.intersect(&remove);
        let label = match &h.subject {
            Subject::Val(_) => format!("val {}/{}", h.owner_name, h.name),
            Subject::Token(id) => format!("token \"{}\" ({id})", h.name),
        };
        (holds != Scopes::none()).then_some(Item {
            subject: h.subject,
            owner_id: h.owner_id,
            label,
            holds,
        })
    };
    Ok(store
        .scopes
        .holdings()
        .await?
        .into_iter()
        .filter_map(item)
        .collect())
}

/// Mail `owner` about the held-back `items` not already told of; whether
/// a mail was (or would be) queued.
async fn notify(
    store: &Store,
    owner: &str,
    items: &[&Item],
    remove: Scopes,
    days: u32,
    dry_run: bool,
) -> anyhow::Result<bool> {
    let key = remove.to_string();
    let mut news = Vec::new();
    for item in items {
        if !store.scopes.notice_sent(&item.subject, &key).await? {
            news.push(*item);
        }
    }
    if news.is_empty() || dry_run {
        return Ok(!news.is_empty());
    }
    let email = store.users.by_id(owner).await?.map(|u| u.email);
    if let Err(e) = outbox::check_owner_address(&email.unwrap_or_default()) {
        // Not mailable: the notice is not recorded, so a later run (after
        // the address is fixed) tries again.
        tracing::warn!("could not mail {owner} about the scope migration: {e}");
        return Ok(false);
    }
    let mail = notice(&news, &key, days);
    let queued = Budget::Platform(NOTICE_LIMIT).queue(owner, None, &mail);
    let subjects = news.iter().map(|i| i.subject.clone()).collect();
    if let Err(limit) = store.scopes.send_notice(subjects, &key, queued).await? {
        tracing::warn!(
            "could not mail {owner} about the scope migration: past the limit of {}",
            limit.0
        );
        return Ok(false);
    }
    Ok(true)
}

/// The notice to an owner about held-back `news`.
fn notice(news: &[&Item], key: &str, days: u32) -> Outgoing {
    let lines: Vec<String> = news
        .iter()
        .map(|i| format!("  - {} (uses {})", i.label, i.holds))
        .collect();
    Outgoing {
        from_name: Some("Valbox".into()),
        reply_to: Vec::new(),
        subject: format!("Your Valbox scopes: `{key}` is being removed"),
        text: Some(format!(
            "The server's operator is removing `{key}` from tokens and vals that do not use it.\n\
             These of yours used it in the last {days} days, so they were left as they are:\n\n{}\n\n\
             Nothing changes for them unless you choose to. To see what each uses:\n  \
             valbox token usage ID    valbox val scopes NAME --usage\n\
             To narrow one to what it uses (opting in):\n  \
             valbox token narrow ID --to-used    valbox val scopes NAME --to-used\n",
            lines.join("\n")
        )),
        html: None,
        loop_trace: Vec::new(),
    }
}
