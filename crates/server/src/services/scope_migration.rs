//! Moving defaults safely: remove scopes from every val and token that
//! holds them, except those that used them lately. Those are held back,
//! and their owners are told once, through the outbox, what would change
//! and how to opt in. Each item changes in a transaction of its own, so an
//! interrupted run leaves nothing half-done, and a second run changes and
//! mails nothing the first one did.

use rusqlite::{Connection, params};

use crate::services::scope_usage::DAY_MS;
use valbox_caps::email::outbox::{self, Budget, Outgoing};
use valbox_model::{Scopes, Subject};
use valbox_store as db;
use valbox_store::Db;

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
pub fn migrate(db: &Db, remove: Scopes, days: u32, dry_run: bool) -> anyhow::Result<Report> {
    let since = valbox_model::now_ms() - i64::from(days) * DAY_MS;
    let items = db.call_blocking(|conn| holders(conn, remove))?;
    let mut report = Report::default();
    for item in items {
        let used = db.call_blocking(|conn| {
            let held: Vec<_> = item.holds.iter().collect();
            db::used_any_since(conn, &item.subject, &held, since)
        })?;
        if used {
            report.held_back.push(item);
        } else {
            if !dry_run {
                db.call_blocking(|conn| narrow(conn, &item, remove))?;
            }
            report.migrated.push(item);
        }
    }
    let mut owners: Vec<&str> = report
        .held_back
        .iter()
        .map(|i| i.owner_id.as_str())
        .collect();
    owners.sort();
    owners.dedup();
    for owner in owners {
        let items: Vec<&Item> = report
            .held_back
            .iter()
            .filter(|i| i.owner_id == owner)
            .collect();
        let mailed = db.call_blocking(|conn| notify(conn, owner, &items, remove, days, dry_run))?;
        if mailed {
            report.emailed.push(owner.to_string());
        }
    }
    Ok(report)
}

/// Every val and live token holding any of `remove`.
fn holders(conn: &mut Connection, remove: Scopes) -> anyhow::Result<Vec<Item>> {
    let mut items = Vec::new();
    let mut vals = conn.prepare(
        "SELECT v.id, v.owner_id, u.username, v.name, v.scopes FROM vals v
         JOIN users u ON u.id = v.owner_id ORDER BY u.username, v.name",
    )?;
    let mut rows = vals.query([])?;
    while let Some(r) = rows.next()? {
        let holds = Scopes::parse(&r.get::<_, String>(4)?).map_err(anyhow::Error::msg)?;
        let holds = holds.intersect(&remove);
        if holds != Scopes::none() {
            items.push(Item {
                subject: Subject::Val(r.get(0)?),
                owner_id: r.get(1)?,
                label: format!("val {}/{}", r.get::<_, String>(2)?, r.get::<_, String>(3)?),
                holds,
            });
        }
    }
    let mut tokens = conn.prepare(
        "SELECT t.id, t.user_id, t.name, t.scopes FROM tokens t JOIN users u ON u.id = t.user_id
         WHERE t.revoked_at IS NULL ORDER BY u.username, t.created_at",
    )?;
    let mut rows = tokens.query([])?;
    while let Some(r) = rows.next()? {
        let holds = Scopes::parse(&r.get::<_, String>(3)?).map_err(anyhow::Error::msg)?;
        let holds = holds.intersect(&remove);
        if holds != Scopes::none() {
            let id: String = r.get(0)?;
            items.push(Item {
                label: format!("token \"{}\" ({id})", r.get::<_, String>(2)?),
                subject: Subject::Token(id),
                owner_id: r.get(1)?,
                holds,
            });
        }
    }
    Ok(items)
}

/// Remove `remove` from one item, reading its scopes again in the same
/// transaction (its owner may have changed them since).
fn narrow(conn: &mut Connection, item: &Item, remove: Scopes) -> anyhow::Result<()> {
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    let (table, id) = match &item.subject {
        Subject::Val(id) => ("vals", id),
        Subject::Token(id) => ("tokens", id),
    };
    let scopes: String = tx.query_row(
        &format!("SELECT scopes FROM {table} WHERE id = ?1"),
        [id],
        |r| r.get(0),
    )?;
    let held = Scopes::parse(&scopes).map_err(anyhow::Error::msg)?;
    let kept: Scopes = held.iter().filter(|s| !remove.has(*s)).collect();
    tx.execute(
        &format!("UPDATE {table} SET scopes = ?2 WHERE id = ?1"),
        params![id, kept.to_string()],
    )?;
    tx.commit()?;
    Ok(())
}

/// Mail `owner` about the held-back `items` not already told of; whether
/// a mail was (or would be) queued.
fn notify(
    conn: &mut Connection,
    owner: &str,
    items: &[&Item],
    remove: Scopes,
    days: u32,
    dry_run: bool,
) -> anyhow::Result<bool> {
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    let key = remove.to_string();
    let mut news = Vec::new();
    for item in items {
        let first = if dry_run {
            !db::notice_sent(&tx, &item.subject, &key)?
        } else {
            db::first_notice(&tx, &item.subject, &key)?
        };
        if first {
            news.push(*item);
        }
    }
    if news.is_empty() || dry_run {
        return Ok(!news.is_empty());
    }
    let lines: Vec<String> = news
        .iter()
        .map(|i| format!("  - {} (uses {})", i.label, i.holds))
        .collect();
    let mail = Outgoing {
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
    };
    let email = outbox::owner_email(&tx, owner)?.unwrap_or_default();
    match outbox::check_owner_address(&email).and_then(|()| {
        outbox::enqueue(&tx, owner, None, &mail, Budget::Platform(NOTICE_LIMIT)).map(|_| ())
    }) {
        Ok(()) => {}
        Err(e) => {
            // Not mailable: the notice is not recorded, so a later run
            // (after the address is fixed) tries again.
            tracing::warn!("could not mail {owner} about the scope migration: {e}");
            return Ok(false);
        }
    }
    tx.commit()?;
    Ok(true)
}
