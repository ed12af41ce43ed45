//! Vals, their settings and their versions, in PostgreSQL.

use std::collections::HashMap;

use async_trait::async_trait;
use deadpool_postgres::GenericClient;
use tokio_postgres::Row;

use valbox_model::{Privacy, Scopes, ValKind, now_ms};

use super::{Postgres, announce, is_unique_violation, lock_quota, quota, typed};
use crate::stored::known;
use crate::{
    Edit, LibraryRef, NewVal, NewVersion, Refusal, StoreError, StoreResult, ValChange, ValRow,
    Vals, VersionRow, new_id,
};

fn version_from_row(r: &Row) -> StoreResult<VersionRow> {
    Ok(VersionRow {
        version: r.try_get("version")?,
        sha256: r.try_get("sha256")?,
        size: r.try_get("size")?,
        kind: typed(r, "kind", known(ValKind::parse))?,
        created_at: r.try_get("created_at")?,
        libraries: Vec::new(),
    })
}

/// `version` of `val_id` with its libraries filled in.
async fn with_libraries(
    c: &impl GenericClient,
    mut version: VersionRow,
    val_id: &str,
) -> StoreResult<VersionRow> {
    let rows = c
        .query(
            "SELECT library_id, library_version, grants FROM version_libraries
             WHERE val_id = $1 AND version = $2 ORDER BY position",
            &[&val_id, &version.version],
        )
        .await?;
    version.libraries = rows
        .iter()
        .map(|r| {
            Ok(LibraryRef {
                library_id: r.try_get(0)?,
                version: r.try_get(1)?,
                grants: typed(r, "grants", Scopes::parse)?,
            })
        })
        .collect::<StoreResult<_>>()?;
    Ok(version)
}

const VAL_SELECT: &str =
    "SELECT v.*, u.username AS owner_name FROM vals v JOIN users u ON u.id = v.owner_id";

fn val_from_row(r: &Row, latest: Option<VersionRow>) -> StoreResult<ValRow> {
    Ok(ValRow {
        id: r.try_get("id")?,
        owner_id: r.try_get("owner_id")?,
        owner_name: r.try_get("owner_name")?,
        name: r.try_get("name")?,
        privacy: typed(r, "privacy", known(Privacy::parse))?,
        description: r.try_get("description")?,
        scopes: typed(r, "scopes", Scopes::parse)?,
        created_at: r.try_get("created_at")?,
        fetch_allowlist: r
            .try_get::<_, Option<String>>("fetch_allowlist")?
            .map(|s| s.split_whitespace().map(String::from).collect()),
        reuse: u32::try_from(r.try_get::<_, i32>("reuse")?).unwrap_or(0),
        latest,
    })
}

/// The vals `sql` selects, each with its latest version and that
/// version's libraries: three queries however many vals there are.
async fn query_vals(
    c: &impl GenericClient,
    sql: &str,
    args: &[&(dyn tokio_postgres::types::ToSql + Sync)],
) -> StoreResult<Vec<ValRow>> {
    let rows = c.query(sql, args).await?;
    let ids = rows
        .iter()
        .map(|r| r.try_get("id"))
        .collect::<Result<Vec<String>, _>>()?;
    let mut latest: HashMap<String, VersionRow> = HashMap::new();
    let versions = c
        .query(
            "SELECT DISTINCT ON (val_id) * FROM versions WHERE val_id = ANY($1)
             ORDER BY val_id, version DESC",
            &[&ids],
        )
        .await?;
    for row in &versions {
        latest.insert(row.try_get("val_id")?, version_from_row(row)?);
    }
    let libraries = c
        .query(
            "SELECT val_id, version, library_id, library_version, grants
             FROM version_libraries WHERE val_id = ANY($1) ORDER BY position",
            &[&ids],
        )
        .await?;
    for row in &libraries {
        let val_id: String = row.try_get("val_id")?;
        let Some(version) = latest.get_mut(&val_id) else {
            continue;
        };
        if version.version == row.try_get::<_, i64>("version")? {
            version.libraries.push(LibraryRef {
                library_id: row.try_get("library_id")?,
                version: row.try_get("library_version")?,
                grants: typed(row, "grants", Scopes::parse)?,
            });
        }
    }
    rows.iter()
        .zip(ids)
        .map(|(row, id)| val_from_row(row, latest.remove(&id)))
        .collect()
}

pub(super) async fn by_id(c: &impl GenericClient, id: &str) -> StoreResult<Option<ValRow>> {
    Ok(
        query_vals(c, &format!("{VAL_SELECT} WHERE v.id = $1"), &[&id])
            .await?
            .pop(),
    )
}

/// The val `id`, its row locked until the transaction ends.
async fn locked(c: &impl GenericClient, id: &str) -> StoreResult<Option<ValRow>> {
    let sql = format!("{VAL_SELECT} WHERE v.id = $1 FOR UPDATE OF v");
    Ok(query_vals(c, &sql, &[&id]).await?.pop())
}

/// Write `change` to val `id`.
pub(super) async fn apply(c: &impl GenericClient, id: &str, change: ValChange) -> StoreResult<()> {
    let allowlist = change.fetch_allowlist.as_ref();
    c.execute(
        "UPDATE vals SET privacy = COALESCE($2, privacy),
           description = COALESCE($3, description),
           scopes = COALESCE($4, scopes),
           fetch_allowlist = CASE WHEN $5 THEN $6 ELSE fetch_allowlist END,
           reuse = COALESCE($7, reuse)
         WHERE id = $1",
        &[
            &id,
            &change.privacy.map(|p| p.as_str()),
            &change.description,
            &change.scopes.map(|s| s.to_string()),
            &allowlist.is_some(),
            &allowlist.and_then(|hosts| hosts.as_ref().map(|h| h.join(" "))),
            &change.reuse.map(|n| n.min(i32::MAX as u32) as i32),
        ],
    )
    .await?;
    Ok(())
}

/// Run `edit` on val `id` as it is, locked, and write what it decides.
pub(super) async fn edit_locked(
    c: &impl GenericClient,
    node: &str,
    id: &str,
    edit: Edit,
) -> StoreResult<Option<Result<ValRow, Refusal>>> {
    let Some(val) = locked(c, id).await? else {
        return Ok(None);
    };
    let change = match edit(&val) {
        Ok(change) => change,
        Err(refusal) => return Ok(Some(Err(refusal))),
    };
    apply(c, id, change).await?;
    announce(c, node).await?;
    let after = by_id(c, id).await?;
    Ok(Some(Ok(after.expect("val locked in this transaction"))))
}

async fn insert_version(c: &impl GenericClient, new: &NewVersion) -> StoreResult<VersionRow> {
    let next = c
        .query_one(
            "SELECT COALESCE(MAX(version) + 1, 0) FROM versions WHERE val_id = $1",
            &[&new.val_id],
        )
        .await?;
    let row = VersionRow {
        version: next.try_get(0)?,
        sha256: new.sha256.clone(),
        size: new.size,
        kind: new.kind,
        created_at: now_ms(),
        libraries: new.libraries.clone(),
    };
    c.execute(
        "INSERT INTO versions (val_id, version, sha256, size, kind, created_at)
         VALUES ($1, $2, $3, $4, $5, $6)",
        &[
            &new.val_id,
            &row.version,
            &row.sha256,
            &row.size,
            &row.kind.as_str(),
            &row.created_at,
        ],
    )
    .await?;
    for (position, library) in new.libraries.iter().enumerate() {
        c.execute(
            "INSERT INTO version_libraries
             (val_id, version, position, library_id, library_version, grants)
             VALUES ($1, $2, $3, $4, $5, $6)",
            &[
                &new.val_id,
                &row.version,
                &(position as i32),
                &library.library_id,
                &library.version,
                &library.grants.to_string(),
            ],
        )
        .await?;
    }
    Ok(row)
}

#[async_trait]
impl Vals for Postgres {
    async fn by_id(&self, id: &str) -> StoreResult<Option<ValRow>> {
        by_id(&self.client().await?, id).await
    }

    async fn by_name(&self, owner_name: &str, name: &str) -> StoreResult<Option<ValRow>> {
        let sql = format!("{VAL_SELECT} WHERE u.username = $1 AND v.name = $2");
        let client = self.client().await?;
        Ok(query_vals(&client, &sql, &[&owner_name, &name])
            .await?
            .pop())
    }

    async fn list(
        &self,
        viewer: Option<&str>,
        only_owner: Option<&str>,
        limit: i64,
        offset: i64,
    ) -> StoreResult<Vec<ValRow>> {
        let sql = format!(
            "{VAL_SELECT} WHERE (v.privacy = 'public' OR v.owner_id = $1)
             AND ($2::TEXT IS NULL OR v.owner_id = $2)
             ORDER BY v.created_at, v.id LIMIT $3 OFFSET $4"
        );
        let client = self.client().await?;
        query_vals(&client, &sql, &[&viewer, &only_owner, &limit, &offset]).await
    }

    async fn create(&self, val: NewVal) -> StoreResult<ValRow> {
        let client = self.client().await?;
        let id = new_id();
        let inserted = client
            .execute(
                "INSERT INTO vals (id, owner_id, name, privacy, description, scopes, created_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7)",
                &[
                    &id,
                    &val.owner_id,
                    &val.name,
                    &val.privacy.as_str(),
                    &val.description,
                    &val.scopes.to_string(),
                    &now_ms(),
                ],
            )
            .await;
        match inserted {
            Err(e) if is_unique_violation(&e) => Err(StoreError::Conflict(format!(
                "you already have a val named `{}`",
                val.name
            ))),
            Err(e) => Err(e.into()),
            Ok(_) => {
                announce(&client, &self.node).await?;
                Ok(by_id(&client, &id).await?.expect("val just written"))
            }
        }
    }

    async fn edit(&self, id: &str, edit: Edit) -> StoreResult<Option<Result<ValRow, Refusal>>> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        let outcome = edit_locked(&tx, &self.node, id, edit).await?;
        tx.commit().await?;
        Ok(outcome)
    }

    async fn delete(&self, id: &str) -> StoreResult<()> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        tx.execute("DELETE FROM vals WHERE id = $1", &[&id]).await?;
        // Its logs go with it: nobody can read them any more.
        tx.execute("DELETE FROM call_logs WHERE val_id = $1", &[&id])
            .await?;
        tx.execute("DELETE FROM call_log_usage WHERE val_id = $1", &[&id])
            .await?;
        announce(&tx, &self.node).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn add_version(
        &self,
        mut new: NewVersion,
    ) -> StoreResult<Option<Result<(VersionRow, ValRow), Refusal>>> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        // One owner's writes that count against the quota go one at a time.
        lock_quota(&tx, &new.owner_id).await?;
        let edit = new
            .edit
            .take()
            .unwrap_or_else(|| crate::set(ValChange::default()));
        // The val's row stays locked: versions are numbered one at a time.
        let val = match edit_locked(&tx, &self.node, &new.val_id, edit).await? {
            None => return Ok(None),
            Some(Err(refusal)) => return Ok(Some(Err(refusal))),
            Some(Ok(val)) => val,
        };
        let stored = quota::stored(&tx, &new.owner_id).await?;
        if !new.room.fits(&stored) {
            return Ok(Some(Err(Refusal::Full(stored))));
        }
        let version = insert_version(&tx, &new).await?;
        tx.commit().await?;
        let val = ValRow {
            latest: Some(version.clone()),
            ..val
        };
        Ok(Some(Ok((version, val))))
    }

    async fn versions(&self, val_id: &str) -> StoreResult<Vec<VersionRow>> {
        let client = self.client().await?;
        let rows = client
            .query(
                "SELECT * FROM versions WHERE val_id = $1 ORDER BY version",
                &[&val_id],
            )
            .await?;
        let mut out = Vec::with_capacity(rows.len());
        for row in &rows {
            out.push(with_libraries(&client, version_from_row(row)?, val_id).await?);
        }
        Ok(out)
    }

    async fn version(&self, val_id: &str, version: i64) -> StoreResult<Option<VersionRow>> {
        let client = self.client().await?;
        let row = client
            .query_opt(
                "SELECT * FROM versions WHERE val_id = $1 AND version = $2",
                &[&val_id, &version],
            )
            .await?;
        match row {
            Some(row) => Ok(Some(
                with_libraries(&client, version_from_row(&row)?, val_id).await?,
            )),
            None => Ok(None),
        }
    }

    async fn owner_has_build(&self, owner_id: &str, sha256: &str) -> StoreResult<bool> {
        let row = self
            .client()
            .await?
            .query_opt(
                "SELECT 1 FROM versions v JOIN vals ON vals.id = v.val_id
                 WHERE vals.owner_id = $1 AND v.sha256 = $2 LIMIT 1",
                &[&owner_id, &sha256],
            )
            .await?;
        Ok(row.is_some())
    }
}
