//! The commands that work on the data directory itself, on the server's
//! machine: users and their first tokens, and scope migrations.

use anyhow::{Context, bail};

use valbox_auth as auth;
use valbox_model::Scopes;
use valbox_store as db;
use valbox_store::Db;

/// Usernames: a lowercase letter, then lowercase letters, digits or `_`;
/// no `-`, which separates user from val in `{user}-{val}.localhost`.
pub fn validate_username(name: &str) -> anyhow::Result<()> {
    let mut chars = name.chars();
    let ok = chars.next().is_some_and(|c| c.is_ascii_lowercase())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        && name.len() <= 32;
    if !ok {
        bail!(
            "invalid username `{name}`: start with a lowercase letter, then use a-z, 0-9 or `_`, at most 32 characters"
        );
    }
    Ok(())
}

/// Create a user with a token holding every scope; returns the token.
pub fn create_user(data: &std::path::Path, username: &str, email: &str) -> anyhow::Result<String> {
    validate_username(username)?;
    if !email.contains('@') {
        bail!("`{email}` is not an email address");
    }
    std::fs::create_dir_all(data).with_context(|| format!("creating {}", data.display()))?;
    let db = Db::open(&data.join("valbox.db"))?;
    db.call_blocking(|conn| {
        // IMMEDIATE: a read that later writes must not lose the write lock
        // to a running server in between (it would fail as "locked").
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        if db::user_by_name(&tx, username)?.is_some() {
            bail!("user `{username}` already exists");
        }
        let user = db::insert_user(&tx, username, email)?;
        let (token, hash) = auth::generate_token(auth::API_TOKEN_PREFIX);
        db::insert_token(&tx, &user.id, "cli", &hash, Scopes::all(), None)?;
        tx.commit()?;
        Ok(token)
    })
}

/// `valbox admin migrate-scopes`: run the migration and print its report.
pub fn migrate_scopes(
    data: &std::path::Path,
    remove: &str,
    days: u32,
    dry_run: bool,
) -> anyhow::Result<()> {
    let remove = Scopes::parse(remove).map_err(|e| anyhow::anyhow!("--remove: {e}"))?;
    if remove == Scopes::none() {
        bail!("--remove names no scope");
    }
    let path = data.join("valbox.db");
    if !path.exists() {
        bail!("no Valbox data in {} (give --data)", data.display());
    }
    let db = Db::open(&path)?;
    let report = valbox_server::services::scope_migration::migrate(&db, remove, days, dry_run)?;
    let (done, held, mailed) = if dry_run {
        ("would migrate", "would hold back", "would email")
    } else {
        ("migrated", "held back", "emailed")
    };
    println!(
        "{done} {} ({} removed), {held} {} (used in the last {days} days), {mailed} {} owner(s)",
        report.migrated.len(),
        remove,
        report.held_back.len(),
        report.emailed.len()
    );
    for item in &report.migrated {
        println!("  {done}: {} (held {})", item.label, item.holds);
    }
    for item in &report.held_back {
        println!("  {held}: {} (uses {})", item.label, item.holds);
    }
    Ok(())
}
