//! Scope usage, scope requests and scope notices, in SQLite.

use async_trait::async_trait;
use rusqlite::{Connection, OptionalExtension, Row, TransactionBehavior, params};

use valbox_model::{Scope, Scopes, Subject, Tally, now_ms};

use super::{Sqlite, outbox, typed, vals};
use crate::{
    DailyLimit, Holding, NewMail, ScopeRecords, ScopeRequestRow, StoreResult, UsageRow, ValChange,
    new_id,
};

/// Add a batch of counts to the stored records.
fn add_usage(tx: &Connection, batch: &[(Subject, Scope, Tally)]) -> StoreResult<()> {
    {
        let mut stmt = tx.prepare_cached(
            "INSERT INTO scope_usage (subject_kind, subject_id, scope, used_count, last_used_at,
                                      denied_count, last_denied_at)
             VALUES (?1, ?2, ?3, ?4, NULLIF(?5, 0), ?6, NULLIF(?7, 0))
             ON CONFLICT (subject_kind, subject_id, scope) DO UPDATE SET
               used_count = used_count + excluded.used_count,
               last_used_at = COALESCE(MAX(last_used_at, excluded.last_used_at),
                                       last_used_at, excluded.last_used_at),
               denied_count = denied_count + excluded.denied_count,
               last_denied_at = COALESCE(MAX(last_denied_at, excluded.last_denied_at),
                                         last_denied_at, excluded.last_denied_at)",
        )?;
        for (subject, scope, t) in batch {
            stmt.execute(params![
                subject.kind(),
                subject.id(),
                scope.as_str(),
                t.used as i64,
                t.last_used_ms,
                t.denied as i64,
                t.last_denied_ms
            ])?;
        }
    }
    Ok(())
}

/// The stored records of `subject`, by scope name.
fn usage_of(conn: &Connection, subject: &Subject) -> StoreResult<Vec<UsageRow>> {
    let mut stmt = conn.prepare_cached(
        "SELECT scope, used_count, last_used_at, denied_count, last_denied_at FROM scope_usage
         WHERE subject_kind = ?1 AND subject_id = ?2 ORDER BY scope",
    )?;
    let rows = stmt.query_map(params![subject.kind(), subject.id()], |r| {
        Ok(UsageRow {
            scope: r.get(0)?,
            used_count: r.get(1)?,
            last_used_at: r.get(2)?,
            denied_count: r.get(3)?,
            last_denied_at: r.get(4)?,
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

const REQUEST_SELECT: &str = "SELECT r.*, v.name AS val_name, v.owner_id, u.username AS owner_name
     FROM scope_requests r JOIN vals v ON v.id = r.val_id JOIN users u ON u.id = v.owner_id";

fn request_from_row(r: &Row) -> rusqlite::Result<ScopeRequestRow> {
    Ok(ScopeRequestRow {
        id: r.get("id")?,
        val_id: r.get("val_id")?,
        val_name: r.get("val_name")?,
        owner_id: r.get("owner_id")?,
        owner_name: r.get("owner_name")?,
        scope: r.get("scope")?,
        status: r.get("status")?,
        denied_count: r.get("denied_count")?,
        first_denied_at: r.get("first_denied_at")?,
        last_denied_at: r.get("last_denied_at")?,
        mailed_at: r.get("mailed_at")?,
    })
}

/// Record that val `val_id` was refused `scope` `count` times, the last at
/// `at`: a new request, or more of an existing one. A dismissed request
/// stays dismissed; a granted one opens again (the scope was taken back).
/// A val that no longer exists asks for nothing.
fn note_refusals(
    conn: &Connection,
    val_id: &str,
    scope: Scope,
    count: u64,
    at: i64,
) -> StoreResult<()> {
    conn.execute(
        "INSERT INTO scope_requests (id, val_id, scope, status, denied_count, first_denied_at,
                                     last_denied_at)
         SELECT ?1, ?2, ?3, 'open', ?4, ?5, ?5 WHERE EXISTS (SELECT 1 FROM vals WHERE id = ?2)
         ON CONFLICT (val_id, scope) DO UPDATE SET
           denied_count = denied_count + excluded.denied_count,
           last_denied_at = excluded.last_denied_at,
           status = CASE status WHEN 'granted' THEN 'open' ELSE status END",
        params![new_id(), val_id, scope.as_str(), count as i64, at],
    )?;
    Ok(())
}

fn request_by_id(conn: &Connection, id: &str) -> StoreResult<Option<ScopeRequestRow>> {
    Ok(conn
        .query_row(
            &format!("{REQUEST_SELECT} WHERE r.id = ?1"),
            [id],
            request_from_row,
        )
        .optional()?)
}

/// Whether a notice about `scopes` was sent for `subject`.
fn notice_sent(conn: &Connection, subject: &Subject, scopes: &str) -> StoreResult<bool> {
    Ok(conn
        .query_row(
            "SELECT 1 FROM scope_notices WHERE subject_kind = ?1 AND subject_id = ?2 AND scopes = ?3",
            params![subject.kind(), subject.id(), scopes],
            |_| Ok(()),
        )
        .optional()?
        .is_some())
}

#[async_trait]
impl ScopeRecords for Sqlite {
    async fn record(&self, batch: Vec<(Subject, Scope, Tally)>) -> StoreResult<()> {
        self.run(move |conn| {
            let tx = conn.transaction()?;
            add_usage(&tx, &batch)?;
            for (subject, scope, tally) in &batch {
                if let Subject::Val(val_id) = subject
                    && tally.denied > 0
                {
                    note_refusals(&tx, val_id, *scope, tally.denied, tally.last_denied_ms)?;
                }
            }
            tx.commit()?;
            Ok(())
        })
        .await
    }

    async fn usage_of(&self, subject: &Subject) -> StoreResult<Vec<UsageRow>> {
        let subject = subject.clone();
        self.run(move |conn| usage_of(conn, &subject)).await
    }

    async fn requests_of(&self, owner_id: &str) -> StoreResult<Vec<ScopeRequestRow>> {
        let owner = owner_id.to_owned();
        self.run(move |conn| {
            let mut stmt = conn.prepare(&format!(
                "{REQUEST_SELECT} WHERE v.owner_id = ?1
                 ORDER BY r.status != 'open', r.last_denied_at DESC"
            ))?;
            let rows = stmt.query_map([owner], request_from_row)?;
            Ok(rows.collect::<Result<_, _>>()?)
        })
        .await
    }

    async fn request(&self, id: &str) -> StoreResult<Option<ScopeRequestRow>> {
        let id = id.to_owned();
        self.run(move |conn| request_by_id(conn, &id)).await
    }

    async fn requests_to_mail(&self, since: i64) -> StoreResult<Vec<ScopeRequestRow>> {
        self.run(move |conn| {
            let mut stmt = conn.prepare(&format!(
                "{REQUEST_SELECT} WHERE r.status = 'open'
                 AND (r.mailed_at IS NULL OR r.mailed_at < ?1)"
            ))?;
            let rows = stmt.query_map([since], request_from_row)?;
            Ok(rows.collect::<Result<_, _>>()?)
        })
        .await
    }

    async fn mark_mailed(&self, id: &str) -> StoreResult<()> {
        let id = id.to_owned();
        self.run(move |conn| {
            conn.execute(
                "UPDATE scope_requests SET mailed_at = ?2 WHERE id = ?1",
                params![id, now_ms()],
            )?;
            Ok(())
        })
        .await
    }

    async fn decide(&self, id: &str, grant: bool) -> StoreResult<Option<ScopeRequestRow>> {
        let id = id.to_owned();
        self.run(move |conn| {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let Some(request) = request_by_id(&tx, &id)? else {
                return Ok(None);
            };
            if grant {
                let Some(val) = vals::by_id(&tx, &request.val_id)? else {
                    return Ok(None);
                };
                let scope = Scope::parse(&request.scope)
                    .ok_or_else(|| anyhow::anyhow!("stored scope `{}`", request.scope))?;
                let change = ValChange {
                    scopes: Some(val.scopes.with(scope)),
                    ..ValChange::default()
                };
                vals::apply(&tx, &val.id, change)?;
            }
            let status = if grant { "granted" } else { "dismissed" };
            tx.execute(
                "UPDATE scope_requests SET status = ?2, decided_at = ?3 WHERE id = ?1",
                params![id, status, now_ms()],
            )?;
            let row = request_by_id(&tx, &id)?;
            tx.commit()?;
            Ok(row)
        })
        .await
    }

    async fn holdings(&self) -> StoreResult<Vec<Holding>> {
        self.run(|conn| {
            let holding = |subject: fn(String) -> Subject| {
                move |r: &Row| {
                    Ok(Holding {
                        subject: subject(r.get(0)?),
                        owner_id: r.get(1)?,
                        owner_name: r.get(2)?,
                        name: r.get(3)?,
                        scopes: typed::column(r, "scopes", Scopes::parse)?,
                    })
                }
            };
            let mut vals = conn.prepare(
                "SELECT v.id, v.owner_id, u.username, v.name, v.scopes FROM vals v
                 JOIN users u ON u.id = v.owner_id ORDER BY u.username, v.name",
            )?;
            let mut tokens = conn.prepare(
                "SELECT t.id, t.user_id, u.username, t.name, t.scopes FROM tokens t
                 JOIN users u ON u.id = t.user_id
                 WHERE t.revoked_at IS NULL ORDER BY u.username, t.created_at",
            )?;
            let vals = vals.query_map([], holding(Subject::Val))?;
            let tokens = tokens.query_map([], holding(Subject::Token))?;
            Ok(vals.chain(tokens).collect::<Result<_, _>>()?)
        })
        .await
    }

    async fn remove_scopes(&self, subject: &Subject, remove: &Scopes) -> StoreResult<()> {
        let (subject, remove) = (subject.clone(), *remove);
        self.run(move |conn| {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let (table, id) = match &subject {
                Subject::Val(id) => ("vals", id),
                Subject::Token(id) => ("tokens", id),
            };
            let held: Option<Scopes> = tx
                .query_row(
                    &format!("SELECT scopes FROM {table} WHERE id = ?1"),
                    [id],
                    |r| typed::column(r, "scopes", Scopes::parse),
                )
                .optional()?;
            if let Some(held) = held {
                let kept: Scopes = held.iter().filter(|s| !remove.has(*s)).collect();
                tx.execute(
                    &format!("UPDATE {table} SET scopes = ?2 WHERE id = ?1"),
                    params![id, kept.to_string()],
                )?;
            }
            tx.commit()?;
            Ok(())
        })
        .await
    }

    async fn notice_sent(&self, subject: &Subject, key: &str) -> StoreResult<bool> {
        let (subject, key) = (subject.clone(), key.to_owned());
        self.run(move |conn| notice_sent(conn, &subject, &key))
            .await
    }

    async fn send_notice(
        &self,
        subjects: Vec<Subject>,
        key: &str,
        mail: NewMail,
    ) -> StoreResult<Result<String, DailyLimit>> {
        let key = key.to_owned();
        self.run(move |conn| {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let queued = outbox::enqueue(&tx, &mail)?;
            if queued.is_err() {
                return Ok(queued);
            }
            for subject in &subjects {
                tx.execute(
                    "INSERT OR IGNORE INTO scope_notices (subject_kind, subject_id, scopes, sent_at)
                     VALUES (?1, ?2, ?3, ?4)",
                    params![subject.kind(), subject.id(), key, now_ms()],
                )?;
            }
            tx.commit()?;
            Ok(queued)
        })
        .await
    }
}
