//! Vals, their settings and their versions, in SQLite.

use async_trait::async_trait;
use rusqlite::{Connection, OptionalExtension, Row, TransactionBehavior, params};

use valbox_model::{Privacy, Scopes, ValKind, now_ms};

use super::{Sqlite, quota, typed};
use crate::{
    Edit, LibraryRef, NewVal, NewVersion, Refusal, StoreError, StoreResult, ValChange, ValRow,
    Vals, VersionRow, new_id,
};

fn version_from_row(r: &Row) -> rusqlite::Result<VersionRow> {
    Ok(VersionRow {
        version: r.get("version")?,
        sha256: r.get("sha256")?,
        size: r.get("size")?,
        kind: typed::column(r, "kind", typed::known(ValKind::parse))?,
        created_at: r.get("created_at")?,
        libraries: Vec::new(),
    })
}

/// `version` of `val_id` with its libraries filled in.
fn with_libraries(
    mut version: VersionRow,
    conn: &Connection,
    val_id: &str,
) -> rusqlite::Result<VersionRow> {
    let mut stmt = conn.prepare_cached(
        "SELECT library_id, library_version, grants FROM version_libraries
         WHERE val_id = ?1 AND version = ?2 ORDER BY position",
    )?;
    let rows = stmt.query_map(params![val_id, version.version], |r| {
        Ok(LibraryRef {
            library_id: r.get(0)?,
            version: r.get(1)?,
            grants: typed::column(r, "grants", Scopes::parse)?,
        })
    })?;
    version.libraries = rows.collect::<Result<_, _>>()?;
    Ok(version)
}

const VAL_SELECT: &str =
    "SELECT v.*, u.username AS owner_name FROM vals v JOIN users u ON u.id = v.owner_id";

fn val_from_row(conn: &Connection, r: &Row) -> StoreResult<ValRow> {
    let id: String = r.get("id")?;
    let latest = conn
        .prepare_cached("SELECT * FROM versions WHERE val_id = ?1 ORDER BY version DESC LIMIT 1")?
        .query_row([&id], version_from_row)
        .optional()?
        .map(|v| with_libraries(v, conn, &id))
        .transpose()?;
    Ok(ValRow {
        id,
        owner_id: r.get("owner_id")?,
        owner_name: r.get("owner_name")?,
        name: r.get("name")?,
        privacy: typed::column(r, "privacy", typed::known(Privacy::parse))?,
        description: r.get("description")?,
        scopes: typed::column(r, "scopes", Scopes::parse)?,
        created_at: r.get("created_at")?,
        fetch_allowlist: r
            .get::<_, Option<String>>("fetch_allowlist")?
            .map(|s| s.split_whitespace().map(String::from).collect()),
        reuse: r.get("reuse")?,
        latest,
    })
}

fn query_vals(
    conn: &Connection,
    sql: &str,
    args: impl rusqlite::Params,
) -> StoreResult<Vec<ValRow>> {
    let mut stmt = conn.prepare_cached(sql)?;
    let mut rows = stmt.query(args)?;
    let mut out = Vec::new();
    while let Some(r) = rows.next()? {
        out.push(val_from_row(conn, r)?);
    }
    Ok(out)
}

pub(super) fn by_id(conn: &Connection, id: &str) -> StoreResult<Option<ValRow>> {
    Ok(query_vals(conn, &format!("{VAL_SELECT} WHERE v.id = ?1"), [id])?.pop())
}

fn by_name(conn: &Connection, owner: &str, name: &str) -> StoreResult<Option<ValRow>> {
    let sql = format!("{VAL_SELECT} WHERE u.username = ?1 AND v.name = ?2");
    Ok(query_vals(conn, &sql, [owner, name])?.pop())
}

/// Write `change` to val `id`.
pub(super) fn apply(conn: &Connection, id: &str, change: ValChange) -> StoreResult<()> {
    let allowlist = change.fetch_allowlist.as_ref();
    conn.execute(
        "UPDATE vals SET privacy = COALESCE(?2, privacy),
           description = COALESCE(?3, description),
           scopes = COALESCE(?4, scopes),
           fetch_allowlist = CASE WHEN ?5 THEN ?6 ELSE fetch_allowlist END,
           reuse = COALESCE(?7, reuse)
         WHERE id = ?1",
        params![
            id,
            change.privacy.map(|p| p.as_str()),
            change.description,
            change.scopes.map(|s| s.to_string()),
            allowlist.is_some(),
            allowlist.and_then(|hosts| hosts.as_ref().map(|h| h.join(" "))),
            change.reuse,
        ],
    )?;
    Ok(())
}

/// Run `edit` on val `id` as it is and write what it decides: the val
/// after, `None` if there is none.
fn edit_in(
    conn: &Connection,
    id: &str,
    edit: Edit,
) -> StoreResult<Option<Result<ValRow, Refusal>>> {
    let Some(val) = by_id(conn, id)? else {
        return Ok(None);
    };
    let change = match edit(&val) {
        Ok(change) => change,
        Err(refusal) => return Ok(Some(Err(refusal))),
    };
    apply(conn, id, change)?;
    Ok(Some(Ok(
        by_id(conn, id)?.expect("val read in this transaction")
    )))
}

fn insert_version(conn: &Connection, new: &NewVersion) -> StoreResult<VersionRow> {
    let version: i64 = conn.query_row(
        "SELECT COALESCE(MAX(version) + 1, 0) FROM versions WHERE val_id = ?1",
        [&new.val_id],
        |r| r.get(0),
    )?;
    let row = VersionRow {
        version,
        sha256: new.sha256.clone(),
        size: new.size,
        kind: new.kind,
        created_at: now_ms(),
        libraries: new.libraries.clone(),
    };
    conn.execute(
        "INSERT INTO versions (val_id, version, sha256, size, kind, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        params![
            new.val_id,
            row.version,
            row.sha256,
            row.size,
            row.kind.as_str(),
            row.created_at
        ],
    )?;
    for (position, library) in new.libraries.iter().enumerate() {
        conn.execute(
            "INSERT INTO version_libraries
             (val_id, version, position, library_id, library_version, grants)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![
                new.val_id,
                row.version,
                position as i64,
                library.library_id,
                library.version,
                library.grants.to_string()
            ],
        )?;
    }
    Ok(row)
}

#[async_trait]
impl Vals for Sqlite {
    async fn by_id(&self, id: &str) -> StoreResult<Option<ValRow>> {
        let id = id.to_owned();
        self.run(move |conn| by_id(conn, &id)).await
    }

    async fn by_name(&self, owner_name: &str, name: &str) -> StoreResult<Option<ValRow>> {
        let (owner, name) = (owner_name.to_owned(), name.to_owned());
        self.run(move |conn| by_name(conn, &owner, &name)).await
    }

    async fn list(
        &self,
        viewer: Option<&str>,
        only_owner: Option<&str>,
        limit: i64,
        offset: i64,
    ) -> StoreResult<Vec<ValRow>> {
        let (viewer, only) = (viewer.map(str::to_owned), only_owner.map(str::to_owned));
        self.run(move |conn| {
            let sql = format!(
                "{VAL_SELECT} WHERE (v.privacy = 'public' OR v.owner_id = ?1)
                 AND (?2 IS NULL OR v.owner_id = ?2)
                 ORDER BY v.created_at, v.id LIMIT ?3 OFFSET ?4"
            );
            query_vals(conn, &sql, params![viewer, only, limit, offset])
        })
        .await
    }

    async fn create(&self, val: NewVal) -> StoreResult<ValRow> {
        self.run(move |conn| {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let taken: bool = tx
                .prepare_cached("SELECT 1 FROM vals WHERE owner_id = ?1 AND name = ?2")?
                .exists([&val.owner_id, &val.name])?;
            if taken {
                return Err(StoreError::Conflict(format!(
                    "you already have a val named `{}`",
                    val.name
                )));
            }
            let id = new_id();
            tx.execute(
                "INSERT INTO vals (id, owner_id, name, privacy, description, scopes, created_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                params![
                    id,
                    val.owner_id,
                    val.name,
                    val.privacy.as_str(),
                    val.description,
                    val.scopes.to_string(),
                    now_ms()
                ],
            )?;
            let row = by_id(&tx, &id)?.expect("val written in this transaction");
            tx.commit()?;
            Ok(row)
        })
        .await
    }

    async fn edit(&self, id: &str, edit: Edit) -> StoreResult<Option<Result<ValRow, Refusal>>> {
        let id = id.to_owned();
        self.run(move |conn| {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let outcome = edit_in(&tx, &id, edit)?;
            tx.commit()?;
            Ok(outcome)
        })
        .await
    }

    async fn delete(&self, id: &str) -> StoreResult<()> {
        let id = id.to_owned();
        self.run(move |conn| {
            let tx = conn.transaction()?;
            tx.execute("DELETE FROM vals WHERE id = ?1", [&id])?;
            // Its logs go with it: nobody can read them any more.
            tx.execute("DELETE FROM call_logs WHERE val_id = ?1", [&id])?;
            tx.execute("DELETE FROM call_log_usage WHERE val_id = ?1", [&id])?;
            tx.commit()?;
            Ok(())
        })
        .await
    }

    async fn add_version(
        &self,
        mut new: NewVersion,
    ) -> StoreResult<Option<Result<(VersionRow, ValRow), Refusal>>> {
        self.run(move |conn| {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let edit = new
                .edit
                .take()
                .unwrap_or_else(|| crate::set(ValChange::default()));
            let val = match edit_in(&tx, &new.val_id, edit)? {
                None => return Ok(None),
                Some(Err(refusal)) => return Ok(Some(Err(refusal))),
                Some(Ok(val)) => val,
            };
            let stored = quota::stored(&tx, &new.owner_id)?;
            if !new.room.fits(&stored) {
                return Ok(Some(Err(Refusal::Full(stored))));
            }
            let version = insert_version(&tx, &new)?;
            let val = ValRow {
                latest: Some(version.clone()),
                ..val
            };
            tx.commit()?;
            Ok(Some(Ok((version, val))))
        })
        .await
    }

    async fn versions(&self, val_id: &str) -> StoreResult<Vec<VersionRow>> {
        let val_id = val_id.to_owned();
        self.run(move |conn| {
            let mut stmt =
                conn.prepare("SELECT * FROM versions WHERE val_id = ?1 ORDER BY version")?;
            let rows = stmt.query_map([&val_id], version_from_row)?;
            let versions: Vec<VersionRow> = rows.collect::<Result<_, _>>()?;
            Ok(versions
                .into_iter()
                .map(|v| with_libraries(v, conn, &val_id))
                .collect::<Result<_, _>>()?)
        })
        .await
    }

    async fn version(&self, val_id: &str, version: i64) -> StoreResult<Option<VersionRow>> {
        let val_id = val_id.to_owned();
        self.run(move |conn| {
            let row = conn
                .prepare_cached("SELECT * FROM versions WHERE val_id = ?1 AND version = ?2")?
                .query_row(params![val_id, version], version_from_row)
                .optional()?;
            Ok(row.map(|v| with_libraries(v, conn, &val_id)).transpose()?)
        })
        .await
    }

    async fn owner_has_build(&self, owner_id: &str, sha256: &str) -> StoreResult<bool> {
        let (owner, sha256) = (owner_id.to_owned(), sha256.to_owned());
        self.run(move |conn| {
            Ok(conn
                .prepare_cached(
                    "SELECT 1 FROM versions v JOIN vals ON vals.id = v.val_id
                     WHERE vals.owner_id = ?1 AND v.sha256 = ?2 LIMIT 1",
                )?
                .exists([owner, sha256])?)
        })
        .await
    }
}
