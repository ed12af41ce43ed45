//! The commands that work on the data directory itself, on the server's
//! machine: users and their first tokens, and scope migrations.

use anyhow::{Context, bail};

use std::path::PathBuf;
use valbox_auth as auth;
use valbox_model::Scopes;

use valbox_store::{NewToken, Store};

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

/// Where a command finds the data: the data directory, and the metadata
/// store (PostgreSQL, or `valbox.db` in the data directory).
#[derive(clap::Args, Clone, Debug)]
pub struct StoreArgs {
    #[arg(long, env = "VALBOX_DATA", default_value = "valbox-data")]
    pub data: PathBuf,
    /// The metadata store on PostgreSQL: `postgres://USER@HOST:PORT/DB`.
    /// Without it, `valbox.db` in --data.
    #[arg(long, env = "VALBOX_DATABASE_URL", hide_env_values = true)]
    pub database: Option<String>,
    /// Components and blobs on S3, shared by every node:
    /// `s3://BUCKET?endpoint=URL&region=R` (credentials from
    /// AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY). Without it, files in
    /// --data.
    #[arg(long, env = "VALBOX_OBJECTS_URL")]
    pub objects: Option<String>,
}

impl StoreArgs {
    /// The store, made (and migrated) if it does not exist yet.
    pub async fn open(&self) -> anyhow::Result<Store> {
        if self.database.is_none() {
            let data = &self.data;
            std::fs::create_dir_all(data)
                .with_context(|| format!("creating {}", data.display()))?;
        }
        valbox_store::open(self.database.as_deref(), &self.data).await
    }

    /// The store of data that must exist already.
    pub async fn existing(&self) -> anyhow::Result<Store> {
        if self.database.is_none() && !self.data.join("valbox.db").exists() {
            bail!(
                "no Valbox data in {} (give --data, or --database for PostgreSQL)",
                self.data.display()
            );
        }
        valbox_store::open(self.database.as_deref(), &self.data).await
    }
}

/// Create a user with a token holding every scope in the embedded store
/// in `data`; returns the token.
pub async fn create_user(
    data: &std::path::Path,
    username: &str,
    email: &str,
) -> anyhow::Result<String> {
    let args = StoreArgs {
        data: data.to_path_buf(),
        database: None,
        objects: None,
    };
    create_user_in(&args.open().await?, username, email).await
}

/// Create a user with a token holding every scope in `store`; returns
/// the token.
pub async fn create_user_in(store: &Store, username: &str, email: &str) -> anyhow::Result<String> {
    validate_username(username)?;
    if !email.contains('@') {
        bail!("`{email}` is not an email address");
    }
    let (token, hash) = auth::generate_token(auth::API_TOKEN_PREFIX);
    let first = NewToken {
        name: "cli".into(),
        hash,
        scopes: Scopes::all(),
        expires_at: None,
    };
    store.users.create(username, email, first).await?;
    Ok(token)
}

/// `valbox admin migrate-scopes`: run the migration and print its report.
pub async fn migrate_scopes(
    at: &StoreArgs,
    remove: &str,
    days: u32,
    dry_run: bool,
) -> anyhow::Result<()> {
    let remove = Scopes::parse(remove).map_err(|e| anyhow::anyhow!("--remove: {e}"))?;
    if remove == Scopes::none() {
        bail!("--remove names no scope");
    }
    let store = at.existing().await?;
    let report =
        valbox_server::services::scope_migration::migrate(&store, remove, days, dry_run).await?;
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
