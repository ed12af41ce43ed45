//! Scope usage, scope requests and scope notices, in PostgreSQL.

use async_trait::async_trait;
use deadpool_postgres::GenericClient;
use tokio_postgres::Row;

use valbox_model::{Scope, Scopes, Subject, Tally, now_ms};

use super::{Postgres, announce, outbox, typed, vals};
use crate::{
    DailyLimit, Holding, NewMail, ScopeRecords, ScopeRequestRow, StoreResult, UsageRow, ValChange,
    new_id,
};

const REQUEST_SELECT: &str = "SELECT r.*, v.name AS val_name, v.owner_id, u.username AS owner_name
     FROM scope_requests r JOIN vals v ON v.id = r.val_id JOIN users u ON u.id = v.owner_id";

fn request_from_row(r: &Row) -> StoreResult<ScopeRequestRow> {
    Ok(ScopeRequestRow {
        id: r.try_get("id")?,
        val_id: r.try_get("val_id")?,
        val_name: r.try_get("val_name")?,
        owner_id: r.try_get("owner_id")?,
        owner_name: r.try_get("owner_name")?,
        scope: r.try_get("scope")?,
        status: r.try_get("status")?,
        denied_count: r.try_get("denied_count")?,
        first_denied_at: r.try_get("first_denied_at")?,
        last_denied_at: r.try_get("last_denied_at")?,
        mailed_at: r.try_get("mailed_at")?,
    })
}

async fn request_by_id(c: &impl GenericClient, id: &str) -> StoreResult<Option<ScopeRequestRow>> {
    let row = c
        .query_opt(&format!("{REQUEST_SELECT} WHERE r.id = $1"), &[&id])
        .await?;
    row.as_ref().map(request_from_row).transpose()
}

async fn requests(
    c: &impl GenericClient,
    filter: &str,
    arg: &(dyn tokio_postgres::types::ToSql + Sync),
) -> StoreResult<Vec<ScopeRequestRow>> {
    let rows = c
        .query(&format!("{REQUEST_SELECT} {filter}"), &[arg])
        .await?;
    rows.iter().map(request_from_row).collect()
}

/// Add one scope's counts for a token or val.
async fn add_usage(
    c: &impl GenericClient,
    subject: &Subject,
    scope: Scope,
    t: &Tally,
) -> StoreResult<()> {
    let last_used = (t.last_used_ms != 0).then_some(t.last_used_ms);
    let last_denied = (t.last_denied_ms != 0).then_some(t.last_denied_ms);
    c.execute(
        "INSERT INTO scope_usage (subject_kind, subject_id, scope, used_count, last_used_at,
                                  denied_count, last_denied_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7)
         ON CONFLICT (subject_kind, subject_id, scope) DO UPDATE SET
           used_count = scope_usage.used_count + excluded.used_count,
           last_used_at = greatest(scope_usage.last_used_at, excluded.last_used_at),
           denied_count = scope_usage.denied_count + excluded.denied_count,
           last_denied_at = greatest(scope_usage.last_denied_at, excluded.last_denied_at)",
        &[
            &subject.kind(),
            &subject.id(),
            &scope.as_str(),
            &(t.used as i64),
            &last_used,
            &(t.denied as i64),
            &last_denied,
        ],
    )
    .await?;
    Ok(())
}

/// A val refused `scope` asks for it; a val that no longer exists asks
/// for nothing.
async fn note_refusals(
    c: &impl GenericClient,
    val_id: &str,
    scope: Scope,
    t: &Tally,
) -> StoreResult<()> {
    c.execute(
        "INSERT INTO scope_requests (id, val_id, scope, status, denied_count, first_denied_at,
                                     last_denied_at)
         SELECT $1, $2, $3, 'open', $4, $5, $5 WHERE EXISTS (SELECT 1 FROM vals WHERE id = $2)
         ON CONFLICT (val_id, scope) DO UPDATE SET
           denied_count = scope_requests.denied_count + excluded.denied_count,
           last_denied_at = excluded.last_denied_at,
           status = CASE scope_requests.status WHEN 'granted' THEN 'open'
                    ELSE scope_requests.status END",
        &[
            &new_id(),
            &val_id,
            &scope.as_str(),
            &(t.denied as i64),
            &t.last_denied_ms,
        ],
    )
    .await?;
    Ok(())
}

#[async_trait]
impl ScopeRecords for Postgres {
    async fn record(&self, batch: Vec<(Subject, Scope, Tally)>) -> StoreResult<()> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        for (subject, scope, tally) in &batch {
            add_usage(&tx, subject, *scope, tally).await?;
            if let Subject::Val(val_id) = subject
                && tally.denied > 0
            {
                note_refusals(&tx, val_id, *scope, tally).await?;
            }
        }
        tx.commit().await?;
        Ok(())
    }

    async fn usage_of(&self, subject: &Subject) -> StoreResult<Vec<UsageRow>> {
        let rows = self
            .client()
            .await?
            .query(
                "SELECT scope, used_count, last_used_at, denied_count, last_denied_at
                 FROM scope_usage WHERE subject_kind = $1 AND subject_id = $2 ORDER BY scope",
                &[&subject.kind(), &subject.id()],
            )
            .await?;
        rows.iter()
            .map(|r| {
                Ok(UsageRow {
                    scope: r.try_get(0)?,
                    used_count: r.try_get(1)?,
                    last_used_at: r.try_get(2)?,
                    denied_count: r.try_get(3)?,
                    last_denied_at: r.try_get(4)?,
                })
            })
            .collect()
    }

    async fn requests_of(&self, owner_id: &str) -> StoreResult<Vec<ScopeRequestRow>> {
        let filter = "WHERE v.owner_id = $1 ORDER BY r.status != 'open', r.last_denied_at DESC";
        requests(&self.client().await?, filter, &owner_id).await
    }

    async fn request(&self, id: &str) -> StoreResult<Option<ScopeRequestRow>> {
        request_by_id(&self.client().await?, id).await
    }

    async fn requests_to_mail(&self, since: i64) -> StoreResult<Vec<ScopeRequestRow>> {
        let filter = "WHERE r.status = 'open' AND (r.mailed_at IS NULL OR r.mailed_at < $1)";
        requests(&self.client().await?, filter, &since).await
    }

    async fn mark_mailed(&self, id: &str) -> StoreResult<()> {
        self.client()
            .await?
            .execute(
                "UPDATE scope_requests SET mailed_at = $2 WHERE id = $1",
                &[&id, &now_ms()],
            )
            .await?;
        Ok(())
    }

    async fn decide(&self, id: &str, grant: bool) -> StoreResult<Option<ScopeRequestRow>> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        let Some(request) = request_by_id(&tx, id).await? else {
            return Ok(None);
        };
        if grant {
            let edit = Box::new(move |val: &crate::ValRow| {
                let scope = Scope::parse(&request.scope);
                Ok(ValChange {
                    scopes: Some(scope.map_or(val.scopes, |s| val.scopes.with(s))),
                    ..ValChange::default()
                })
            });
            if vals::edit_locked(&tx, &self.node, &request.val_id, edit)
                .await?
                .is_none()
            {
                return Ok(None);
            }
        }
        let status = if grant { "granted" } else { "dismissed" };
        tx.execute(
            "UPDATE scope_requests SET status = $2, decided_at = $3 WHERE id = $1",
            &[&id, &status, &now_ms()],
        )
        .await?;
        let row = request_by_id(&tx, id).await?;
        tx.commit().await?;
        Ok(row)
    }

    async fn holdings(&self) -> StoreResult<Vec<Holding>> {
        let client = self.client().await?;
        let vals = client
            .query(
                "SELECT v.id, v.owner_id, u.username, v.name, v.scopes FROM vals v
                 JOIN users u ON u.id = v.owner_id ORDER BY u.username, v.name",
                &[],
            )
            .await?;
        let tokens = client
            .query(
                "SELECT t.id, t.user_id, u.username, t.name, t.scopes FROM tokens t
                 JOIN users u ON u.id = t.user_id
                 WHERE t.revoked_at IS NULL ORDER BY u.username, t.created_at",
                &[],
            )
            .await?;
        let holding = |subject: fn(String) -> Subject, r: &Row| {
            Ok(Holding {
                subject: subject(r.try_get(0)?),
                owner_id: r.try_get(1)?,
                owner_name: r.try_get(2)?,
                name: r.try_get(3)?,
                scopes: typed(r, "scopes", Scopes::parse)?,
            })
        };
        let vals = vals.iter().map(|r| holding(Subject::Val, r));
        let tokens = tokens.iter().map(|r| holding(Subject::Token, r));
        vals.chain(tokens).collect()
    }

    async fn remove_scopes(&self, subject: &Subject, remove: &Scopes) -> StoreResult<()> {
        let (table, id) = match subject {
            Subject::Val(id) => ("vals", id),
            Subject::Token(id) => ("tokens", id),
        };
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        let row = tx
            .query_opt(
                &format!("SELECT scopes FROM {table} WHERE id = $1 FOR UPDATE"),
                &[id],
            )
            .await?;
        if let Some(row) = row {
            let held = typed(&row, "scopes", Scopes::parse)?;
            let kept: Scopes = held.iter().filter(|s| !remove.has(*s)).collect();
            tx.execute(
                &format!("UPDATE {table} SET scopes = $2 WHERE id = $1"),
                &[id, &kept.to_string()],
            )
            .await?;
            announce(&tx, &self.node).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn notice_sent(&self, subject: &Subject, key: &str) -> StoreResult<bool> {
        let row = self
            .client()
            .await?
            .query_opt(
                "SELECT 1 FROM scope_notices
                 WHERE subject_kind = $1 AND subject_id = $2 AND scopes = $3",
                &[&subject.kind(), &subject.id(), &key],
            )
            .await?;
        Ok(row.is_some())
    }

    async fn send_notice(
        &self,
        subjects: Vec<Subject>,
        key: &str,
        mail: NewMail,
    ) -> StoreResult<Result<String, DailyLimit>> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        let queued = outbox::enqueue(&tx, &mail).await?;
        if queued.is_err() {
            return Ok(queued);
        }
        for subject in &subjects {
            tx.execute(
                "INSERT INTO scope_notices (subject_kind, subject_id, scopes, sent_at)
                 VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
                &[&subject.kind(), &subject.id(), &key, &now_ms()],
            )
            .await?;
        }
        tx.commit().await?;
        Ok(queued)
    }
}
