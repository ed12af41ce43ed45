//! Vals, their settings and their versions.

use rusqlite::{Connection, OptionalExtension, Row, params};

use valbox_model::{Privacy, Scopes, ValKind, now_ms};

use crate::{new_id, typed};

#[derive(Clone, Debug)]
pub struct ValRow {
    pub id: String,
    pub owner_id: String,
    pub owner_name: String,
    pub name: String,
    pub privacy: Privacy,
    pub description: String,
    pub scopes: Scopes,
    pub created_at: i64,
    /// Hosts the val may fetch from; `None` means any public host.
    pub fetch_allowlist: Option<Vec<String>>,
    /// The newest version, which serves; `None` before the first deploy.
    pub latest: Option<VersionRow>,
}

#[derive(Clone, Debug)]
pub struct VersionRow {
    pub version: i64,
    pub sha256: String,
    pub size: i64,
    pub kind: ValKind,
    pub created_at: i64,
    /// The libraries its imports resolve to, in the deploy's order.
    pub libraries: Vec<LibraryRef>,
}

/// A library a version imports: which val, at which version, granted what.
#[derive(Clone, Debug)]
pub struct LibraryRef {
    pub library_id: String,
    /// `None`: the owner's own library, following its latest version.
    pub version: Option<i64>,
    /// The scopes its caller granted it.
    pub grants: Scopes,
}

impl VersionRow {
    fn from_row(r: &Row) -> rusqlite::Result<Self> {
        Ok(Self {
            version: r.get("version")?,
            sha256: r.get("sha256")?,
            size: r.get("size")?,
            kind: typed::column(r, "kind", typed::known(ValKind::parse))?,
            created_at: r.get("created_at")?,
            libraries: Vec::new(),
        })
    }

    /// Fill in the libraries of this version of `val_id`.
    fn with_libraries(mut self, conn: &Connection, val_id: &str) -> rusqlite::Result<Self> {
        let mut stmt = conn.prepare_cached(
            "SELECT library_id, library_version, grants FROM version_libraries
             WHERE val_id = ?1 AND version = ?2 ORDER BY position",
        )?;
        let rows = stmt.query_map(params![val_id, self.version], |r| {
            Ok(LibraryRef {
                library_id: r.get(0)?,
                version: r.get(1)?,
                grants: typed::column(r, "grants", Scopes::parse)?,
            })
        })?;
        self.libraries = rows.collect::<Result<_, _>>()?;
        Ok(self)
    }
}

const VAL_SELECT: &str =
    "SELECT v.*, u.username AS owner_name FROM vals v JOIN users u ON u.id = v.owner_id";

fn val_from_row(conn: &Connection, r: &Row) -> anyhow::Result<ValRow> {
    let id: String = r.get("id")?;
    let latest = conn
        .query_row(
            "SELECT * FROM versions WHERE val_id = ?1 ORDER BY version DESC LIMIT 1",
            [&id],
            VersionRow::from_row,
        )
        .optional()?
        .map(|v| v.with_libraries(conn, &id))
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
        latest,
    })
}

fn query_vals(
    conn: &Connection,
    sql: &str,
    args: impl rusqlite::Params,
) -> anyhow::Result<Vec<ValRow>> {
    let mut stmt = conn.prepare(sql)?;
    let mut rows = stmt.query(args)?;
    let mut out = Vec::new();
    while let Some(r) = rows.next()? {
        out.push(val_from_row(conn, r)?);
    }
    Ok(out)
}

pub fn val_by_id(conn: &Connection, id: &str) -> anyhow::Result<Option<ValRow>> {
    Ok(query_vals(conn, &format!("{VAL_SELECT} WHERE v.id = ?1"), [id])?.pop())
}

pub fn val_by_name(conn: &Connection, owner: &str, name: &str) -> anyhow::Result<Option<ValRow>> {
    Ok(query_vals(
        conn,
        &format!("{VAL_SELECT} WHERE u.username = ?1 AND v.name = ?2"),
        [owner, name],
    )?
    .pop())
}

/// Vals visible in listings: the caller's own, and everyone's public ones.
pub fn list_vals(
    conn: &Connection,
    viewer: Option<&str>,
    only_owner: Option<&str>,
    limit: i64,
    offset: i64,
) -> anyhow::Result<Vec<ValRow>> {
    query_vals(
        conn,
        &format!(
            "{VAL_SELECT} WHERE (v.privacy = 'public' OR v.owner_id = ?1)
             AND (?2 IS NULL OR v.owner_id = ?2)
             ORDER BY v.created_at, v.id LIMIT ?3 OFFSET ?4"
        ),
        params![viewer, only_owner, limit, offset],
    )
}

pub fn insert_val(
    conn: &Connection,
    owner_id: &str,
    name: &str,
    privacy: &str,
    description: &str,
    scopes: &str,
) -> anyhow::Result<String> {
    let id = new_id();
    conn.execute(
        "INSERT INTO vals (id, owner_id, name, privacy, description, scopes, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        params![id, owner_id, name, privacy, description, scopes, now_ms()],
    )?;
    Ok(id)
}

pub fn update_val(
    conn: &Connection,
    id: &str,
    privacy: Option<&str>,
    description: Option<&str>,
) -> anyhow::Result<()> {
    conn.execute(
        "UPDATE vals SET privacy = COALESCE(?2, privacy), description = COALESCE(?3, description)
         WHERE id = ?1",
        params![id, privacy, description],
    )?;
    Ok(())
}

pub fn delete_val(conn: &Connection, id: &str) -> anyhow::Result<()> {
    conn.execute("DELETE FROM vals WHERE id = ?1", [id])?;
    // Its logs go with it: nobody can read them any more.
    conn.execute("DELETE FROM call_logs WHERE val_id = ?1", [id])?;
    conn.execute("DELETE FROM call_log_usage WHERE val_id = ?1", [id])?;
    Ok(())
}

/// Add the next version of a val, with the libraries it imports;
/// numbering starts at 0. Run it in a transaction: it writes several rows.
pub fn insert_version(
    conn: &Connection,
    val_id: &str,
    sha256: &str,
    size: i64,
    kind: ValKind,
    libraries: &[LibraryRef],
) -> anyhow::Result<VersionRow> {
    let version: i64 = conn.query_row(
        "SELECT COALESCE(MAX(version) + 1, 0) FROM versions WHERE val_id = ?1",
        [val_id],
        |r| r.get(0),
    )?;
    let row = VersionRow {
        version,
        sha256: sha256.into(),
        size,
        kind,
        created_at: now_ms(),
        libraries: libraries.to_vec(),
    };
    conn.execute(
        "INSERT INTO versions (val_id, version, sha256, size, kind, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        params![
            val_id,
            row.version,
            row.sha256,
            row.size,
            row.kind.as_str(),
            row.created_at
        ],
    )?;
    for (position, library) in libraries.iter().enumerate() {
        conn.execute(
            "INSERT INTO version_libraries
             (val_id, version, position, library_id, library_version, grants)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![
                val_id,
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

pub fn list_versions(conn: &Connection, val_id: &str) -> anyhow::Result<Vec<VersionRow>> {
    let mut stmt = conn.prepare("SELECT * FROM versions WHERE val_id = ?1 ORDER BY version")?;
    let rows = stmt.query_map([val_id], VersionRow::from_row)?;
    let versions: Vec<VersionRow> = rows.collect::<Result<_, _>>()?;
    Ok(versions
        .into_iter()
        .map(|v| v.with_libraries(conn, val_id))
        .collect::<Result<_, _>>()?)
}

/// Version `version` of val `val_id`, with its libraries.
pub fn version_of(
    conn: &Connection,
    val_id: &str,
    version: i64,
) -> anyhow::Result<Option<VersionRow>> {
    let row = conn
        .query_row(
            "SELECT * FROM versions WHERE val_id = ?1 AND version = ?2",
            params![val_id, version],
            VersionRow::from_row,
        )
        .optional()?;
    Ok(row.map(|v| v.with_libraries(conn, val_id)).transpose()?)
}

/// `None` allows any public host.
pub fn set_fetch_allowlist(
    conn: &Connection,
    id: &str,
    hosts: Option<&[String]>,
) -> anyhow::Result<()> {
    conn.execute(
        "UPDATE vals SET fetch_allowlist = ?2 WHERE id = ?1",
        params![id, hosts.map(|h| h.join(" "))],
    )?;
    Ok(())
}

pub fn set_val_scopes(conn: &Connection, id: &str, scopes: &str) -> anyhow::Result<()> {
    conn.execute(
        "UPDATE vals SET scopes = ?2 WHERE id = ?1",
        params![id, scopes],
    )?;
    Ok(())
}
