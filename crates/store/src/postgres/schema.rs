//! The schema, migrated at start under an advisory lock so that nodes
//! starting together migrate once.

use deadpool_postgres::Object;

use crate::StoreResult;

/// Each entry migrates the schema from version `i` to `i + 1`.
const MIGRATIONS: &[&str] = &[
    r#"
CREATE TABLE users (
    id TEXT PRIMARY KEY,
    username TEXT NOT NULL UNIQUE,
    email TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE TABLE tokens (
    id TEXT PRIMARY KEY,
    user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    hash TEXT NOT NULL UNIQUE,
    scopes TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    last_used_at BIGINT,
    expires_at BIGINT,
    revoked_at BIGINT
);
CREATE TABLE vals (
    id TEXT PRIMARY KEY,
    owner_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    privacy TEXT NOT NULL,
    description TEXT NOT NULL DEFAULT '',
    scopes TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    fetch_allowlist TEXT,
    UNIQUE (owner_id, name)
);
CREATE TABLE versions (
    val_id TEXT NOT NULL REFERENCES vals(id) ON DELETE CASCADE,
    version BIGINT NOT NULL,
    sha256 TEXT NOT NULL,
    size BIGINT NOT NULL,
    kind TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (val_id, version)
);
CREATE TABLE version_libraries (
    val_id TEXT NOT NULL,
    version BIGINT NOT NULL,
    position INT NOT NULL,
    library_id TEXT NOT NULL,
    library_version BIGINT,
    grants TEXT NOT NULL,
    PRIMARY KEY (val_id, version, position),
    FOREIGN KEY (val_id, version) REFERENCES versions (val_id, version) ON DELETE CASCADE
);
CREATE TABLE env_vars (
    val_id TEXT NOT NULL REFERENCES vals(id) ON DELETE CASCADE,
    key TEXT NOT NULL,
    nonce BYTEA NOT NULL,
    ciphertext BYTEA NOT NULL,
    description TEXT NOT NULL DEFAULT '',
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (val_id, key)
);
CREATE TABLE call_logs (
    id BIGSERIAL PRIMARY KEY,
    owner_id TEXT NOT NULL,
    val_id TEXT NOT NULL,
    val_name TEXT NOT NULL,
    version BIGINT NOT NULL,
    trigger TEXT NOT NULL,
    time_ns BIGINT NOT NULL,
    status INT NOT NULL,
    duration_us BIGINT NOT NULL,
    fuel_used BIGINT NOT NULL,
    stdout TEXT NOT NULL,
    stderr TEXT NOT NULL,
    error TEXT,
    cpu_us BIGINT NOT NULL,
    caller TEXT,
    bytes BIGINT NOT NULL
);
CREATE INDEX call_logs_owner_time ON call_logs (owner_id, time_ns);
CREATE INDEX call_logs_val ON call_logs (val_id, id);
CREATE TABLE call_log_usage (
    val_id TEXT PRIMARY KEY,
    owner_id TEXT NOT NULL,
    bytes BIGINT NOT NULL
);
CREATE TABLE notifications (
    id BIGSERIAL PRIMARY KEY,
    user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    kind TEXT NOT NULL,
    message TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE TABLE blobs (
    owner_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    key TEXT NOT NULL,
    size BIGINT NOT NULL,
    last_modified BIGINT NOT NULL,
    etag TEXT NOT NULL,
    PRIMARY KEY (owner_id, key)
);
CREATE TABLE emails (
    id TEXT PRIMARY KEY,
    owner_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    val_id TEXT,
    message TEXT NOT NULL,
    status TEXT NOT NULL,
    attempts BIGINT NOT NULL,
    next_attempt_at BIGINT NOT NULL,
    last_error TEXT,
    created_at BIGINT NOT NULL,
    sent_at BIGINT,
    platform BOOLEAN NOT NULL
);
CREATE INDEX emails_due ON emails (status, next_attempt_at);
CREATE INDEX emails_owner ON emails (owner_id, created_at);
CREATE TABLE scope_usage (
    subject_kind TEXT NOT NULL,
    subject_id TEXT NOT NULL,
    scope TEXT NOT NULL,
    used_count BIGINT NOT NULL DEFAULT 0,
    last_used_at BIGINT,
    denied_count BIGINT NOT NULL DEFAULT 0,
    last_denied_at BIGINT,
    PRIMARY KEY (subject_kind, subject_id, scope)
);
CREATE TABLE scope_requests (
    id TEXT PRIMARY KEY,
    val_id TEXT NOT NULL REFERENCES vals(id) ON DELETE CASCADE,
    scope TEXT NOT NULL,
    status TEXT NOT NULL,
    denied_count BIGINT NOT NULL,
    first_denied_at BIGINT NOT NULL,
    last_denied_at BIGINT NOT NULL,
    mailed_at BIGINT,
    decided_at BIGINT,
    UNIQUE (val_id, scope)
);
CREATE TABLE scope_notices (
    subject_kind TEXT NOT NULL,
    subject_id TEXT NOT NULL,
    scopes TEXT NOT NULL,
    sent_at BIGINT NOT NULL,
    PRIMARY KEY (subject_kind, subject_id, scopes)
);
CREATE TABLE login_links (
    hash TEXT PRIMARY KEY,
    user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    used_at BIGINT
);
CREATE TABLE sessions (
    id TEXT PRIMARY KEY,
    hash TEXT NOT NULL UNIQUE,
    user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    csrf TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    last_seen_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    revoked_at BIGINT
);
"#,
    // A value sealed with the nodes' key, which every node must open.
    "CREATE TABLE key_check (id INT PRIMARY KEY CHECK (id = 1), nonce BYTEA NOT NULL, ciphertext BYTEA NOT NULL);",
    // Room held for blob writes in flight: a write reserves, puts its
    // object, then settles, with no lock held while the bytes travel.
    r#"
CREATE TABLE blob_reservations (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    owner_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    key TEXT NOT NULL,
    size BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE INDEX blob_reservations_owner ON blob_reservations (owner_id, expires_at);
"#,
    // Each owner's SQLite database's home node, as a lease: the node, its
    // internal address, a fencing number that grows with every holder, and
    // when the lease runs out (the database's clock).
    r#"
CREATE TABLE database_homes (
    owner_id TEXT PRIMARY KEY REFERENCES users(id) ON DELETE CASCADE,
    node_id TEXT NOT NULL,
    address TEXT NOT NULL,
    fencing BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    -- The database file's size as its home last saw it, for the storage
    -- quota on every node.
    size BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX database_homes_node ON database_homes (node_id);
"#,
    // The replica of the database a new holder restores, and the last node
    // that served it (whose own file is then the newest).
    "ALTER TABLE database_homes ADD COLUMN replica TEXT, ADD COLUMN served_by TEXT;",
    // Cron vals' schedules: when each is next due, and the run that holds
    // it (until `running_until`, when a node that died lets it go).
    r#"
CREATE TABLE cron_schedules (
    val_id TEXT PRIMARY KEY REFERENCES vals(id) ON DELETE CASCADE,
    owner_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    schedule TEXT NOT NULL,
    next_run_ms BIGINT NOT NULL,
    last_run_ms BIGINT,
    running_until BIGINT,
    failures INT NOT NULL DEFAULT 0,
    paused_at BIGINT
);
CREATE INDEX cron_schedules_due ON cron_schedules (next_run_ms) WHERE paused_at IS NULL;
CREATE INDEX cron_schedules_owner ON cron_schedules (owner_id);
"#,
    // Mail received for email vals, from its acknowledgement to its
    // delivery (`running_until`: the delivery that holds it).
    r#"
CREATE TABLE inbound_mail (
    id TEXT PRIMARY KEY,
    val_id TEXT NOT NULL REFERENCES vals(id) ON DELETE CASCADE,
    owner_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    envelope_from TEXT NOT NULL,
    envelope_to TEXT NOT NULL,
    raw BYTEA NOT NULL,
    size BIGINT NOT NULL,
    received_ms BIGINT NOT NULL,
    attempts INT NOT NULL DEFAULT 0,
    next_attempt_ms BIGINT NOT NULL,
    running_until BIGINT,
    last_error TEXT
);
CREATE INDEX inbound_mail_due ON inbound_mail (next_attempt_ms);
CREATE INDEX inbound_mail_val ON inbound_mail (val_id);
"#,
    // Calls one instance of the val may serve; 0: a fresh one each call.
    "ALTER TABLE vals ADD COLUMN reuse INT NOT NULL DEFAULT 0;",
];

/// The advisory lock migrations hold: any number, the same on every node.
const MIGRATION_LOCK: i64 = 0x7661_6c62_6f78; // "valbox"

/// Bring the schema to the newest version. The lock is the session's, so
/// a node that waits for another's migration then finds nothing to do.
pub(super) async fn migrate(client: &mut Object) -> StoreResult<()> {
    // A migration (or waiting for another node's) may take longer than
    // the node's bound on a request's statements and locks.
    client
        .batch_execute("SET statement_timeout = 0; SET lock_timeout = 0")
        .await?;
    client
        .execute("SELECT pg_advisory_lock($1)", &[&MIGRATION_LOCK])
        .await?;
    let migrated = run(client).await;
    client
        .execute("SELECT pg_advisory_unlock($1)", &[&MIGRATION_LOCK])
        .await?;
    client
        .batch_execute("RESET statement_timeout; RESET lock_timeout")
        .await?;
    migrated
}

async fn run(client: &mut Object) -> StoreResult<()> {
    client
        .batch_execute("CREATE TABLE IF NOT EXISTS schema_version (version INT NOT NULL)")
        .await?;
    let current: Option<i32> = client
        .query_opt("SELECT version FROM schema_version", &[])
        .await?
        .map(|r| r.get(0));
    let current = current.unwrap_or(0) as usize;
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(current) {
        let tx = client.transaction().await?;
        tx.batch_execute(sql).await?;
        let version = (i + 1) as i32;
        tx.execute("DELETE FROM schema_version", &[]).await?;
        tx.execute("INSERT INTO schema_version VALUES ($1)", &[&version])
            .await?;
        tx.commit().await?;
    }
    Ok(())
}
