//! What user SQL may reach inside SQLite: allowlists, not denylists. Every
//! connection to an owner's database is hardened here before any of the
//! owner's SQL is prepared:
//!
//! - SQL functions: only [`ALLOWED_FUNCTIONS`] (core scalar, aggregate,
//!   window, date and JSON functions, and FTS5's ranking helpers). Anything
//!   that hands out pointers or touches the host (`fts3_tokenizer`, `fts5`,
//!   `load_extension`, `sqlite_log`, the R-tree debugging functions) is out.
//! - Virtual-table modules: only [`ALLOWED_MODULES`]; every other module the
//!   bundled SQLite was built with (dbstat, fts3/4, rtree...) is dropped from
//!   the connection, so it can be neither created nor read eponymously.
//! - Pragmas: only the schema-reading [`SAFE_PRAGMAS`], which also limits
//!   the `pragma_*` table-valued functions (SQLite authorizes those as the
//!   pragma they run).
//! - ATTACH, DETACH and so VACUUM INTO are refused; extension loading, writable schema,
//!   trusted schema and the FTS3 tokenizer switch are off; defensive mode is
//!   on (no writes to shadow tables or `sqlite_dbpage`).
//! - Transaction control is flagged for the store, which refuses it.
//!
//! What the bundled SQLite (libsqlite3-sys 0.35, SQLite 3.50) is built with
//! and how each option reaches user SQL: FTS3/FTS4 and RTREE add modules
//! (dropped) and functions (`fts3_tokenizer`, `matchinfo`, `offsets`,
//! `optimize`, `rtreecheck`, `rtreedepth`, `rtreenode`: not listed);
//! DBSTAT_VTAB adds `dbstat` (dropped); FTS5 adds `fts5` and `fts5vocab`
//! (only `fts5` kept) and functions (`fts5()` hands out a pointer: not
//! listed); JSON1 is listed; SOUNDEX adds `soundex` (listed); STAT4 only
//! changes ANALYZE; LOAD_EXTENSION adds `load_extension` (not listed);
//! COLUMN_METADATA and MEMORY_MANAGEMENT are C API only; USE_URI affects
//! file names, which user SQL reaches only through ATTACH (refused).

use std::ffi::{CString, c_char};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use rusqlite::Connection;
use rusqlite::config::DbConfig;
use rusqlite::functions::FunctionFlags;
use rusqlite::hooks::{AuthAction, AuthContext, Authorization};
use rusqlite::limits::Limit;

/// SQL functions user SQL may call (compared without case). The operators
/// `->` and `->>` are JSON functions too.
#[rustfmt::skip]
pub const ALLOWED_FUNCTIONS: &[&str] = &[
    // Core scalar functions.
    "abs", "changes", "char", "coalesce", "concat", "concat_ws", "format", "glob", "hex", "if",
    "ifnull", "iif", "instr", "last_insert_rowid", "length", "like", "likelihood", "likely",
    "lower", "ltrim", "max", "min", "nullif", "octet_length", "printf", "quote", "random",
    "randomblob", "replace", "round", "rtrim", "sign", "soundex", "sqlite_source_id",
    "sqlite_version", "substr", "substring", "total_changes", "trim", "typeof", "unhex",
    "unicode", "unistr", "unistr_quote", "unlikely", "upper", "zeroblob",
    // Date and time.
    "current_date", "current_time", "current_timestamp", "date", "datetime", "julianday",
    "strftime", "time", "timediff", "unixepoch",
    // Aggregates.
    "avg", "count", "group_concat", "string_agg", "sum", "total",
    // Window functions.
    "cume_dist", "dense_rank", "first_value", "lag", "last_value", "lead", "nth_value", "ntile",
    "percent_rank", "rank", "row_number",
    // JSON.
    "->", "->>", "json", "json_array", "json_array_length", "json_error_position",
    "json_extract", "json_group_array", "json_group_object", "json_insert", "json_object",
    "json_patch", "json_pretty", "json_quote", "json_remove", "json_replace", "json_set",
    "json_type", "json_valid", "jsonb", "jsonb_array", "jsonb_extract", "jsonb_group_array",
    "jsonb_group_object", "jsonb_insert", "jsonb_object", "jsonb_patch", "jsonb_remove",
    "jsonb_replace", "jsonb_set",
    // FTS5 queries and ranking.
    "match", "bm25", "highlight", "snippet",
    // ALTER TABLE's own helpers: SQLite marks them internal and refuses
    // them in user SQL, but authorizes them when ALTER TABLE runs them.
    "sqlite_drop_column", "sqlite_rename_column", "sqlite_rename_quotefix",
    "sqlite_rename_table", "sqlite_rename_test",
];

/// Virtual-table modules a connection keeps: JSON's table-valued functions
/// and FTS5 (safe here because defensive mode makes its shadow tables
/// read-only to user SQL).
pub const ALLOWED_MODULES: &[&str] =
    &["json_each", "json_tree", "jsonb_each", "jsonb_tree", "fts5"];

/// Pragmas user SQL may run: they only read the schema.
pub const SAFE_PRAGMAS: &[&str] = &[
    "table_info",
    "table_xinfo",
    "table_list",
    "index_list",
    "index_info",
    "index_xinfo",
    "foreign_key_list",
    "user_version",
    // FTS5 reads it to notice changes made by other connections.
    "data_version",
];

/// What the authorizer saw while a statement was prepared.
#[derive(Clone, Default)]
pub struct Verdicts {
    /// Set when the statement controls transactions.
    pub control: Arc<AtomicBool>,
    /// Set when the statement creates a view or a trigger.
    pub grows_schema: Arc<AtomicBool>,
    /// Why the statement was refused, in the caller's terms.
    pub refusal: Arc<Mutex<Option<String>>>,
    /// Set, for good, once any statement on the connection creates or
    /// changes something in the TEMP schema: such a connection is not
    /// reused, so TEMP objects live for one operation only.
    temp_schema: Arc<AtomicBool>,
}

impl Verdicts {
    /// Forget the previous statement's verdicts.
    pub fn reset(&self) {
        self.control.store(false, Ordering::Relaxed);
        self.grows_schema.store(false, Ordering::Relaxed);
        self.take_refusal();
    }

    pub fn used_temp_schema(&self) -> bool {
        self.temp_schema.load(Ordering::Relaxed)
    }

    pub fn take_refusal(&self) -> Option<String> {
        self.refusal
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take()
    }

    fn refuse(&self, why: String) -> Authorization {
        *self.refusal.lock().unwrap_or_else(|p| p.into_inner()) = Some(why);
        Authorization::Deny
    }
}

/// Harden a freshly opened connection: configuration switches, limits,
/// modules, and the authorizer that enforces the allowlists.
pub fn harden(conn: &Connection, max_value_bytes: usize) -> rusqlite::Result<Verdicts> {
    for (switch, on) in [
        (DbConfig::SQLITE_DBCONFIG_DEFENSIVE, true),
        (DbConfig::SQLITE_DBCONFIG_TRUSTED_SCHEMA, false),
        (DbConfig::SQLITE_DBCONFIG_ENABLE_FTS3_TOKENIZER, false),
        (DbConfig::SQLITE_DBCONFIG_WRITABLE_SCHEMA, false),
        (DbConfig::SQLITE_DBCONFIG_ENABLE_ATTACH_CREATE, false),
        (DbConfig::SQLITE_DBCONFIG_ENABLE_ATTACH_WRITE, false),
    ] {
        conn.set_db_config(switch, on)?;
    }
    // Extension loading stays off: rusqlite's `load_extension` feature is
    // not enabled, and the SQL function is not on the allowlist.
    let max_len = i32::try_from(max_value_bytes).unwrap_or(i32::MAX);
    for (limit, value) in [
        // No single string, blob or row outgrows the result budget.
        (Limit::SQLITE_LIMIT_LENGTH, max_len),
        (Limit::SQLITE_LIMIT_SQL_LENGTH, 1 << 20),
        (Limit::SQLITE_LIMIT_ATTACHED, 0),
        // Sorts run on the calling thread, where the temp budget applies.
        (Limit::SQLITE_LIMIT_WORKER_THREADS, 0),
        (Limit::SQLITE_LIMIT_EXPR_DEPTH, 200),
        // LIKE and GLOB take time in the product of text and pattern
        // lengths, inside one VM step that the deadline cannot interrupt.
        (Limit::SQLITE_LIMIT_LIKE_PATTERN_LENGTH, 256),
        // Each argument and column may hold a value of the length limit.
        (Limit::SQLITE_LIMIT_FUNCTION_ARG, 64),
        (Limit::SQLITE_LIMIT_COLUMN, 500),
        (Limit::SQLITE_LIMIT_TRIGGER_DEPTH, 32),
    ] {
        conn.set_limit(limit, value)?;
    }
    disable_unlisted_functions(conn)?;
    super::functions::register(conn, max_value_bytes)?;
    drop_unlisted_modules(conn)?;
    let verdicts = Verdicts::default();
    let seen = verdicts.clone();
    conn.authorizer(Some(move |ctx: AuthContext<'_>| authorize(ctx, &seen)));
    Ok(verdicts)
}

/// Bound the memory all SQLite connections of the process may hold
/// together. A single statement can hold many values of the length limit
/// at once (columns, arguments, aggregates); past this bound it fails with
/// an out-of-memory error instead of taking the host down.
pub fn limit_heap(bytes: u64) {
    let bytes = i64::try_from(bytes).unwrap_or(i64::MAX);
    // SAFETY: a plain setting, safe to change at any time from any thread.
    unsafe { rusqlite::ffi::sqlite3_hard_heap_limit64(bytes) };
}

/// Whether the action creates, alters or writes anything in the TEMP
/// schema (`CREATE TEMP ...`, or any write naming `temp.`).
fn changes_temp_schema(ctx: &AuthContext<'_>) -> bool {
    match ctx.action {
        AuthAction::CreateTempIndex { .. }
        | AuthAction::CreateTempTable { .. }
        | AuthAction::CreateTempTrigger { .. }
        | AuthAction::CreateTempView { .. } => true,
        // Reading the (empty) TEMP schema leaves nothing behind.
        AuthAction::Read { .. } | AuthAction::Select | AuthAction::Function { .. } => false,
        _ => ctx.database_name == Some("temp"),
    }
}

fn drop_unlisted_modules(conn: &Connection) -> rusqlite::Result<()> {
    let names: Vec<CString> = ALLOWED_MODULES
        .iter()
        .map(|m| CString::new(*m).expect("module names have no NUL"))
        .collect();
    let mut keep: Vec<*const c_char> = names.iter().map(|n| n.as_ptr()).collect();
    keep.push(std::ptr::null());
    // SAFETY: the handle is this live connection's, used on this thread
    // only; `keep` is a NULL-terminated array of C strings that outlive
    // the call, which SQLite only reads.
    let rc = unsafe { rusqlite::ffi::sqlite3_drop_modules(conn.handle(), keep.as_mut_ptr()) };
    if rc == rusqlite::ffi::SQLITE_OK {
        Ok(())
    } else {
        Err(rusqlite::Error::SqliteFailure(
            rusqlite::ffi::Error::new(rc),
            Some("dropping virtual-table modules".into()),
        ))
    }
}

/// Replace every built-in function that is not on the allowlist with one
/// that fails. The authorizer already refuses them by name in statements,
/// but SQLite compiles a column's DEFAULT expression without asking it, so
/// the allowlist must also hold in the connection's function table.
fn disable_unlisted_functions(conn: &Connection) -> rusqlite::Result<()> {
    static UNLISTED: OnceLock<Vec<(String, i32)>> = OnceLock::new();
    let unlisted = match UNLISTED.get() {
        Some(list) => list,
        None => {
            let mut stmt = conn.prepare("SELECT DISTINCT name, narg FROM pragma_function_list")?;
            let all = stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i32>(1)?)))?;
            let unlisted = all
                .filter(|f| {
                    !f.as_ref()
                        .is_ok_and(|(name, _)| listed(ALLOWED_FUNCTIONS, name))
                })
                .collect::<rusqlite::Result<Vec<_>>>()?;
            UNLISTED.get_or_init(|| unlisted)
        }
    };
    for (name, narg) in unlisted {
        let message = format!("the SQL function `{name}` is not allowed");
        conn.create_scalar_function(
            name.as_str(),
            *narg,
            FunctionFlags::SQLITE_UTF8,
            move |_| {
                Err::<rusqlite::types::Null, _>(rusqlite::Error::UserFunctionError(
                    message.clone().into(),
                ))
            },
        )?;
    }
    Ok(())
}

fn listed(list: &[&str], name: &str) -> bool {
    list.iter().any(|n| n.eq_ignore_ascii_case(name))
}

fn authorize(ctx: AuthContext<'_>, verdicts: &Verdicts) -> Authorization {
    if changes_temp_schema(&ctx) {
        verdicts.temp_schema.store(true, Ordering::Relaxed);
    }
    match ctx.action {
        // Allowed here, because the host's own BEGIN and COMMIT pass through
        // too; the store refuses them in the caller's SQL.
        AuthAction::Transaction { .. } | AuthAction::Savepoint { .. } => {
            verdicts.control.store(true, Ordering::Relaxed);
            Authorization::Allow
        }
        AuthAction::CreateView { .. }
        | AuthAction::CreateTempView { .. }
        | AuthAction::CreateTrigger { .. }
        | AuthAction::CreateTempTrigger { .. } => {
            verdicts.grows_schema.store(true, Ordering::Relaxed);
            Authorization::Allow
        }
        AuthAction::Attach { .. } | AuthAction::Detach { .. } => verdicts.refuse(
            "ATTACH, DETACH and VACUUM INTO are not allowed: each owner has exactly one \
             database"
                .into(),
        ),
        AuthAction::Pragma {
            pragma_name,
            pragma_value,
        } => {
            let read_only_use =
                !pragma_name.eq_ignore_ascii_case("user_version") || pragma_value.is_none();
            if listed(SAFE_PRAGMAS, pragma_name) && read_only_use {
                Authorization::Allow
            } else {
                verdicts.refuse(format!(
                    "PRAGMA {pragma_name} is not allowed; allowed pragmas (read-only): {}",
                    SAFE_PRAGMAS.join(", ")
                ))
            }
        }
        AuthAction::Function { function_name } if !listed(ALLOWED_FUNCTIONS, function_name) => {
            verdicts.refuse(format!(
                "the SQL function `{function_name}` is not allowed; the README lists the \
                 allowed functions (core, date and time, aggregate, window, JSON, FTS5)"
            ))
        }
        AuthAction::CreateVtable { module_name, .. }
        | AuthAction::DropVtable { module_name, .. }
            if !listed(ALLOWED_MODULES, module_name) =>
        {
            verdicts.refuse(format!(
                "the virtual-table module `{module_name}` is not allowed; allowed modules: {}",
                ALLOWED_MODULES.join(", ")
            ))
        }
        _ => Authorization::Allow,
    }
}
