//! The server's shared state, built once at start and cloned into every
//! handler.

use std::collections::HashMap;
use std::ops::Deref;
use std::sync::{Arc, Mutex};

use anyhow::Context;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::auth::CallTokens;
use crate::caps::log::LogSink;
use crate::config::Config;
use crate::db::{self, Db, ValRow};
use crate::runtime::Runtime;
use crate::secrets::SecretBox;

#[derive(Clone)]
pub struct App(Arc<AppInner>);

/// The val cache. `generation` moves on every change, so a row read from
/// the database before a change is never cached after it (a val just made
/// private must not keep serving from a stale entry).
#[derive(Default)]
struct ValCache {
    generation: u64,
    vals: HashMap<(String, String), Arc<ValRow>>,
}

pub struct AppInner {
    pub config: Config,
    pub db: Db,
    pub secrets: SecretBox,
    pub runtime: Arc<Runtime>,
    pub logs: LogSink,
    pub call_tokens: CallTokens,
    pub blobs: crate::caps::blob::BlobStore,
    pub sqlite: crate::caps::sqlite::SqliteStore,
    pub fetcher: crate::caps::fetch::Fetcher,
    pub mailer: crate::caps::email::Mailer,
    /// Vals by (owner, name) for the invocation hot path. Every change to a
    /// val goes through this process and clears it.
    val_cache: Mutex<ValCache>,
    owner_slots: Mutex<HashMap<String, OwnerSlots>>,
}

/// One owner's call slots: a share kept for the owner's own calls, so that
/// anonymous callers and other users can never take them all, and the
/// rest, open to any caller.
#[derive(Clone)]
struct OwnerSlots {
    reserved: Arc<Semaphore>,
    open: Arc<Semaphore>,
}

/// Which share of an owner's call slots was full.
#[derive(Debug)]
pub enum FullShare {
    /// The share open to callers other than the owner.
    Others { open: usize, reserved: usize },
    /// Every slot: the owner's own call found both shares full.
    All { total: usize },
}

/// Slots kept for the owner's own calls out of `total`: a quarter, at
/// least one, once there are two or more.
fn owner_reserve(total: usize) -> usize {
    if total < 2 { 0 } else { (total / 4).max(1) }
}

impl Deref for App {
    type Target = AppInner;
    fn deref(&self) -> &AppInner {
        &self.0
    }
}

impl App {
    /// Open (or create) the data dir. Returns the app and the log writer,
    /// which finishes once the app is dropped.
    pub fn open(config: Config) -> anyhow::Result<(Self, tokio::task::JoinHandle<()>)> {
        std::fs::create_dir_all(&config.data_dir)
            .with_context(|| format!("creating {}", config.data_dir.display()))?;
        let db = Db::open(&config.data_dir.join("valbox.db"))?;
        let secrets = SecretBox::load_or_create(&config.data_dir.join("secret.key"))?;
        let runtime = Runtime::new(config.limits.clone(), config.data_dir.join("components"))?;
        let (logs, writer) = LogSink::start(db.clone());
        let mailer = crate::caps::email::Mailer {
            db: db.clone(),
            daily_limit: config.limits.emails_per_day,
            wake: Default::default(),
        };
        if let Some(smtp) = &config.smtp {
            crate::caps::email::delivery::start(db.clone(), smtp.clone(), mailer.wake.clone());
        }
        let fetcher = crate::caps::fetch::Fetcher::new(
            config.fetch_policy.clone(),
            crate::caps::fetch::FetchLimits {
                requests_per_call: config.limits.fetch_requests_per_call,
                request_body_bytes: config.limits.request_body_bytes,
                response_body_bytes: config.limits.fetch_response_bytes,
            },
        )?;
        crate::caps::sqlite::policy::limit_heap(config.limits.sqlite_heap_bytes);
        let sqlite = crate::caps::sqlite::SqliteStore::new(
            config.data_dir.join("sqlite"),
            config.limits.sqlite_quota_bytes,
            config.limits.sqlite_temp_bytes,
        )
        .with_concurrency(config.limits.concurrent_calls_per_owner);
        let blobs = crate::caps::blob::BlobStore::new(
            config.data_dir.join("blobs"),
            config.limits.blob_bytes,
            config.limits.blob_quota_bytes,
        );
        let app = App(Arc::new(AppInner {
            config,
            db,
            secrets,
            runtime,
            logs,
            call_tokens: CallTokens::default(),
            blobs,
            sqlite,
            fetcher,
            mailer,
            val_cache: Mutex::default(),
            owner_slots: Mutex::default(),
        }));
        Ok((app, writer))
    }

    /// A val by owner and name, cached.
    pub async fn val_by_name(
        &self,
        owner: &str,
        name: &str,
    ) -> anyhow::Result<Option<Arc<ValRow>>> {
        let key = (owner.to_string(), name.to_string());
        let generation = {
            let cache = self.val_cache.lock().unwrap_or_else(|p| p.into_inner());
            if let Some(v) = cache.vals.get(&key) {
                return Ok(Some(v.clone()));
            }
            cache.generation
        };
        let (o, n) = key.clone();
        let Some(val) = self
            .db
            .call(move |conn| db::val_by_name(conn, &o, &n))
            .await?
        else {
            return Ok(None);
        };
        let val = Arc::new(val);
        let mut cache = self.val_cache.lock().unwrap_or_else(|p| p.into_inner());
        if cache.generation == generation {
            cache.vals.insert(key, val.clone());
        }
        Ok(Some(val))
    }

    /// Call after any change to any val.
    pub fn forget_vals(&self) {
        let mut cache = self.val_cache.lock().unwrap_or_else(|p| p.into_inner());
        cache.generation += 1;
        cache.vals.clear();
    }

    /// A slot for one call of `owner`'s vals, or which share is full.
    /// `by_owner`: the caller is the owner (a personal token or one of the
    /// owner's vals' call tokens).
    pub fn try_owner_slot(
        &self,
        owner: &str,
        by_owner: bool,
    ) -> Result<OwnedSemaphorePermit, FullShare> {
        let total = self.config.limits.concurrent_calls_per_owner;
        let reserved = owner_reserve(total);
        let slots = self
            .owner_slots
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(owner.to_string())
            .or_insert_with(|| OwnerSlots {
                reserved: Arc::new(Semaphore::new(reserved)),
                open: Arc::new(Semaphore::new(total - reserved)),
            })
            .clone();
        if by_owner {
            // The reserve first: the owner's calls leave the open share
            // to others as long as they can.
            slots
                .reserved
                .try_acquire_owned()
                .or_else(|_| slots.open.try_acquire_owned())
                .map_err(|_| FullShare::All { total })
        } else {
            slots
                .open
                .try_acquire_owned()
                .map_err(|_| FullShare::Others {
                    open: total - reserved,
                    reserved,
                })
        }
    }
}
