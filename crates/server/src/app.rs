//! The server's shared state, built once at start and cloned into every
//! handler.

use std::collections::HashMap;
use std::ops::Deref;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use axum::extract::FromRef;

use crate::config::Config;
use crate::services::call_log::{LogSink, Retention};
use valbox_auth::{Authenticator, CallTokens};
use valbox_caps::{CallHost, Capabilities, CapsConfig, Settings};
use valbox_runtime::Runtime;
use valbox_store as db;
use valbox_store::secrets::SecretBox;
use valbox_store::{Db, ValRow};

#[derive(Clone)]
pub struct App(Arc<AppInner>);

/// A handle on the app that does not keep it alive, for the parts it owns
/// that call back into it (vals calling vals).
pub struct WeakApp(std::sync::Weak<AppInner>);

impl WeakApp {
    pub fn upgrade(&self) -> Option<App> {
        self.0.upgrade().map(App)
    }
}

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
    pub runtime: Arc<Runtime<CallHost>>,
    pub logs: LogSink,
    /// Resolves tokens; holds the live call tokens too.
    pub auth: Authenticator,
    pub caps: Arc<Capabilities>,
    /// Vals by (owner, name) for the invocation hot path. Every change to a
    /// val goes through this process and clears it.
    val_cache: Mutex<ValCache>,
    /// Bounds how many sign-in links the web UI mails.
    pub sign_in_limit: crate::services::sign_in::SignInLimiter,
    /// Resolved libraries of the versions called lately.
    pub plans: crate::services::libraries::PlanCache,
    pub metrics: Arc<crate::metrics::Metrics>,
    /// Turns to compile uploads.
    pub compiles: crate::services::compile_gate::CompileGate,
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

impl FromRef<App> for Authenticator {
    fn from_ref(app: &App) -> Self {
        app.auth.clone()
    }
}

impl FromRef<App> for Arc<Capabilities> {
    fn from_ref(app: &App) -> Self {
        app.caps.clone()
    }
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
        let runtime = Runtime::new(
            config.limits.clone(),
            config.data_dir.join("components"),
            &config.compile_cache,
            Capabilities::link,
        )?;
        let retention = Retention {
            bytes_per_val: config.limits.log_bytes_per_val,
            max_age: config.limits.log_max_age,
        };
        let (logs, writer) = LogSink::start(db.clone(), retention);
        let caps_config = CapsConfig {
            data_dir: config.data_dir.clone(),
            limits: config.limits.clone(),
            fetch_policy: config.fetch_policy.clone(),
            smtp: config.smtp.clone(),
        };
        let caps = Arc::new(Capabilities::open(&Settings {
            config: &caps_config,
            db: &db,
            secrets: &secrets,
        })?);
        let auth = Authenticator {
            db: db.clone(),
            call_tokens: CallTokens::default(),
            usage: Default::default(),
        };
        let app = App(Arc::new(AppInner {
            config,
            db,
            secrets,
            runtime,
            logs,
            auth,
            caps,
            val_cache: Mutex::default(),
            plans: Default::default(),
            metrics: Default::default(),
            // Half the CPUs: deploys never take all of them from calls.
            compiles: crate::services::compile_gate::CompileGate::new(
                std::thread::available_parallelism().map_or(1, |n| n.get() / 2),
            ),
            sign_in_limit: Default::default(),
            owner_slots: Mutex::default(),
        }));
        let runner = crate::services::api_calls::ValRunner(WeakApp(Arc::downgrade(&app.0)));
        app.caps.vals.connect(Arc::new(runner));
        crate::services::scope_usage::start(WeakApp(Arc::downgrade(&app.0)));
        let version = app.db.call_blocking(data_version)?;
        watch_outside_writes(WeakApp(Arc::downgrade(&app.0)), version);
        unload_idle_components(Arc::downgrade(&app.runtime), app.config.limits.loaded_idle);
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
        self.plans.forget();
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
        let slots = {
            let mut all = self.owner_slots.lock().unwrap_or_else(|p| p.into_inner());
            match all.get(owner) {
                Some(slots) => slots.clone(),
                None => all
                    .entry(owner.to_string())
                    .or_insert_with(|| OwnerSlots {
                        reserved: Arc::new(Semaphore::new(reserved)),
                        open: Arc::new(Semaphore::new(total - reserved)),
                    })
                    .clone(),
            }
        };
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

/// How often the database is checked for writes from outside the server.
const OUTSIDE_WRITES_EVERY: Duration = Duration::from_secs(1);

/// Forget cached vals whenever another process writes the database (an
/// operator's `valbox admin migrate-scopes`, say): SQLite's `data_version`
/// changes only for other connections' commits.
fn watch_outside_writes(app: WeakApp, mut seen: i64) {
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(OUTSIDE_WRITES_EVERY).await;
            let Some(app) = app.upgrade() else { break };
            match app.db.call(data_version).await {
                Ok(version) if version != seen => {
                    app.forget_vals();
                    seen = version;
                }
                Ok(_) => {}
                Err(e) => tracing::error!("checking for outside writes: {e:#}"),
            }
        }
    });
}

/// Drop the components that went uncalled for `idle`, checking a few times
/// within each `idle`, so memory follows the vals in use.
fn unload_idle_components(runtime: std::sync::Weak<Runtime<CallHost>>, idle: Duration) {
    let every = (idle / 4).clamp(Duration::from_millis(50), Duration::from_secs(10));
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(every).await;
            let Some(runtime) = runtime.upgrade() else {
                break;
            };
            match tokio::task::spawn_blocking(move || runtime.unload_idle()).await {
                Ok(0) => {}
                Ok(dropped) => tracing::debug!("unloaded {dropped} idle components"),
                Err(e) => tracing::error!("unloading idle components: {e}"),
            }
        }
    });
}

fn data_version(conn: &mut rusqlite::Connection) -> anyhow::Result<i64> {
    Ok(conn.pragma_query_value(None, "data_version", |r| r.get(0))?)
}
