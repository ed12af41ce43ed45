//! One quota over everything an owner stores: the components of every
//! version, blobs, the SQLite database and call logs. Each has its own
//! bound too; this one stops an owner (or strangers calling their vals)
//! from filling the disk by spreading over all of them. Writes that add
//! much (a deploy, a blob) check it first and are refused whole.

use std::path::PathBuf;

use rusqlite::Connection;
use serde::Serialize;

use super::blob::MIN_CHARGE_BYTES;
use super::sqlite::database_path;
use crate::CapsConfig;

/// What an owner stores, in bytes, against their quota.
#[derive(Clone, Copy, Debug, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StorageUsage {
    pub components: u64,
    pub blobs: u64,
    pub sqlite: u64,
    pub logs: u64,
    pub total: u64,
    pub quota: u64,
}

/// Measures owners' storage.
#[derive(Clone, Debug)]
pub struct StorageMeter {
    quota: u64,
    sqlite_root: PathBuf,
}

impl StorageMeter {
    pub fn new(config: &CapsConfig) -> Self {
        Self {
            quota: config.limits.storage_quota_bytes,
            sqlite_root: config.data_dir.join("sqlite"),
        }
    }

    /// `owner`'s storage now. Reads the metadata database (`conn`) and the
    /// size of one file.
    pub fn usage(&self, conn: &Connection, owner: &str) -> rusqlite::Result<StorageUsage> {
        let sum = |sql: &str, params: &[&dyn rusqlite::ToSql]| -> rusqlite::Result<u64> {
            conn.prepare_cached(sql)?
                .query_row(params, |r| r.get::<_, i64>(0))
                .map(|n| n.max(0) as u64)
        };
        let components = sum(
            "SELECT coalesce(sum(v.size), 0) FROM versions v
             JOIN vals ON vals.id = v.val_id WHERE vals.owner_id = ?1",
            &[&owner],
        )?;
        // Each blob is charged at least a disk block, as its own quota does.
        let blobs = sum(
            "SELECT coalesce(sum(max(size, ?2)), 0) FROM blobs WHERE owner_id = ?1",
            &[&owner, &(MIN_CHARGE_BYTES as i64)],
        )?;
        let logs = sum(
            "SELECT coalesce(sum(bytes), 0) FROM call_log_usage WHERE owner_id = ?1",
            &[&owner],
        )?;
        let sqlite =
            std::fs::metadata(database_path(&self.sqlite_root, owner)).map_or(0, |m| m.len());
        Ok(StorageUsage {
            components,
            blobs,
            sqlite,
            logs,
            total: components + blobs + sqlite + logs,
            quota: self.quota,
        })
    }

    /// Whether `owner` may store `more` bytes (net of what the write
    /// replaces); if not, what to tell them.
    pub fn room_for(
        &self,
        conn: &Connection,
        owner: &str,
        more: i64,
    ) -> rusqlite::Result<Result<(), String>> {
        let usage = self.usage(conn, owner)?;
        if more <= 0 || usage.total.saturating_add(more as u64) <= self.quota {
            return Ok(Ok(()));
        }
        Ok(Err(format!(
            "this would take your storage past its quota of {} bytes: {} are used \
             (components {}, blobs {}, SQLite {}, logs {}) and this adds {more}; \
             delete vals, blobs or rows you no longer need (GET /v1/me shows the figures)",
            self.quota, usage.total, usage.components, usage.blobs, usage.sqlite, usage.logs
        )))
    }
}
