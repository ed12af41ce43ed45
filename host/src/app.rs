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
    owner_slots: Mutex<HashMap<String, Arc<Semaphore>>>,
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

    /// A slot for one call of `owner`'s vals, or `None` when the owner is
    /// at the concurrency limit.
    pub fn try_owner_slot(&self, owner: &str) -> Option<OwnedSemaphorePermit> {
        let sem = self
            .owner_slots
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(owner.to_string())
            .or_insert_with(|| {
                Arc::new(Semaphore::new(
                    self.config.limits.concurrent_calls_per_owner,
                ))
            })
            .clone();
        sem.try_acquire_owned().ok()
    }
}
