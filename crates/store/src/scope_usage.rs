//! Scope usage (what each token and val did with its scopes), scope
//! requests (what vals were refused and their owners may grant), and the
//! notices a scope migration sent.

use rusqlite::{Connection, OptionalExtension, Row, params};

use valbox_model::now_ms;

use crate::new_id;
use valbox_model::{Scope, Subject, Tally};

/// One scope's record for a token or val.
#[derive(Clone, Debug)]
pub struct UsageRow {
    pub scope: String,
    pub used_count: i64,
    pub last_used_at: Option<i64>,
    pub denied_count: i64,
    pub last_denied_at: Option<i64>,
}

/// Add a batch of counts to the stored records.
pub fn add_usage(conn: &mut Connection, batch: &[(Subject, Scope, Tally)]) -> anyhow::Result<()> {
    let tx = conn.transaction()?;
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
    tx.commit()?;
    Ok(())
}

/// The stored records of `subject`, by scope name.
pub fn usage_of(conn: &Connection, subject: &Subject) -> anyhow::Result<Vec<UsageRow>> {
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

/// Whether `subject` used any of `scopes` since `since` (ms).
pub fn used_any_since(
    conn: &Connection,
    subject: &Subject,
    scopes: &[Scope],
    since: i64,
) -> anyhow::Result<bool> {
    for row in usage_of(conn, subject)? {
        let listed = scopes.iter().any(|s| s.as_str() == row.scope);
        if listed && row.last_used_at.is_some_and(|t| t >= since) {
            return Ok(true);
        }
    }
    Ok(false)
}

/// A val's request for a scope it was refused.
#[derive(Clone, Debug)]
pub struct ScopeRequestRow {
    pub id: String,
    pub val_id: String,
    pub val_name: String,
    pub owner_id: String,
    pub owner_name: String,
    pub scope: String,
    /// `open`, `granted` or `dismissed`.
    pub status: String,
    pub denied_count: i64,
    pub first_denied_at: i64,
    pub last_denied_at: i64,
    pub mailed_at: Option<i64>,
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
pub fn note_refusals(
    conn: &Connection,
    val_id: &str,
    scope: Scope,
    count: u64,
    at: i64,
) -> anyhow::Result<()> {
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

/// Open requests not mailed to their owner since `since` (ms).
pub fn requests_to_mail(conn: &Connection, since: i64) -> anyhow::Result<Vec<ScopeRequestRow>> {
    let mut stmt = conn.prepare(&format!(
        "{REQUEST_SELECT} WHERE r.status = 'open' AND (r.mailed_at IS NULL OR r.mailed_at < ?1)"
    ))?;
    let rows = stmt.query_map([since], request_from_row)?;
    Ok(rows.collect::<Result<_, _>>()?)
}

pub fn mark_request_mailed(conn: &Connection, id: &str) -> anyhow::Result<()> {
    conn.execute(
        "UPDATE scope_requests SET mailed_at = ?2 WHERE id = ?1",
        params![id, now_ms()],
    )?;
    Ok(())
}

/// `owner_id`'s requests, open ones first, newest first.
pub fn list_requests(conn: &Connection, owner_id: &str) -> anyhow::Result<Vec<ScopeRequestRow>> {
    let mut stmt = conn.prepare(&format!(
        "{REQUEST_SELECT} WHERE v.owner_id = ?1
         ORDER BY r.status != 'open', r.last_denied_at DESC"
    ))?;
    let rows = stmt.query_map([owner_id], request_from_row)?;
    Ok(rows.collect::<Result<_, _>>()?)
}

pub fn request_by_id(conn: &Connection, id: &str) -> anyhow::Result<Option<ScopeRequestRow>> {
    Ok(conn
        .query_row(
            &format!("{REQUEST_SELECT} WHERE r.id = ?1"),
            [id],
            request_from_row,
        )
        .optional()?)
}

/// Set a request's status (`granted` or `dismissed`).
pub fn decide_request(conn: &Connection, id: &str, status: &str) -> anyhow::Result<()> {
    conn.execute(
        "UPDATE scope_requests SET status = ?2, decided_at = ?3 WHERE id = ?1",
        params![id, status, now_ms()],
    )?;
    Ok(())
}

/// Whether a notice about `scopes` was already sent for `subject`; if not,
/// remember that it is being sent now.
pub fn first_notice(conn: &Connection, subject: &Subject, scopes: &str) -> anyhow::Result<bool> {
    let inserted = conn.execute(
        "INSERT OR IGNORE INTO scope_notices (subject_kind, subject_id, scopes, sent_at)
         VALUES (?1, ?2, ?3, ?4)",
        params![subject.kind(), subject.id(), scopes, now_ms()],
    )?;
    Ok(inserted == 1)
}

/// Whether a notice about `scopes` was sent for `subject`.
pub fn notice_sent(conn: &Connection, subject: &Subject, scopes: &str) -> anyhow::Result<bool> {
    Ok(conn
        .query_row(
            "SELECT 1 FROM scope_notices WHERE subject_kind = ?1 AND subject_id = ?2 AND scopes = ?3",
            params![subject.kind(), subject.id(), scopes],
            |_| Ok(()),
        )
        .optional()?
        .is_some())
}
