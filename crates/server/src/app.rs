//! The server's shared state, built once at start and cloned into every
//! handler.

use std::ops::Deref;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use tokio::sync::OwnedSemaphorePermit;

use axum::extract::FromRef;

use crate::config::Config;
use crate::services::call_log::{LogSink, Retention};
use crate::services::owner_slots::{FullShare, OwnerSlots};
use crate::services::val_cache::ValCache;
use valbox_auth::{Authenticator, CallTokens};
use valbox_caps::sqlite::Placement;
use valbox_caps::{CallHost, Capabilities, CapsConfig, Settings};
use valbox_objects::Objects;
use valbox_runtime::Runtime;
use valbox_store::secrets::SecretBox;
use valbox_store::{Sealed, Store, ValRow};

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

pub struct AppInner {
    pub config: Config,
    pub store: Store,
    pub secrets: SecretBox,
    pub runtime: Arc<Runtime<CallHost>>,
    /// The object store nodes share (`--objects`): uploads go there too.
    pub objects: Option<Arc<dyn Objects>>,
    pub logs: LogSink,
    /// Resolves tokens; holds the live call tokens too.
    pub auth: Authenticator,
    pub caps: Arc<Capabilities>,
    /// Vals by (owner, name) for the invocation hot path.
    vals: ValCache,
    /// Bounds how many sign-in links the web UI mails.
    pub sign_in_limit: crate::services::sign_in::SignInLimiter,
    /// Resolved libraries of the versions called lately.
    pub plans: crate::services::libraries::PlanCache,
    pub metrics: Arc<crate::metrics::Metrics>,
    /// Turns to compile uploads.
    pub compiles: crate::services::compile_gate::CompileGate,
    /// Calls of each owner's vals running at once.
    owner_slots: OwnerSlots,
    /// Where owners' SQLite databases live, on a node of a cluster.
    pub homes: Option<Arc<crate::cluster::NodeHomes>>,
    /// Set as the server stops: background work starts nothing new.
    stopping: std::sync::atomic::AtomicBool,
    /// Woken when this node queues received mail, so delivery starts at
    /// once rather than at its next look.
    pub mail_arrived: tokio::sync::Notify,
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
    /// A val by owner and name, cached.
    pub async fn val_by_name(
        &self,
        owner: &str,
        name: &str,
    ) -> valbox_store::StoreResult<Option<Arc<ValRow>>> {
        self.vals.get(&self.store, owner, name).await
    }

    /// Call after any change to any val: forgets the cached vals and their
    /// resolved libraries.
    pub fn forget_vals(&self) {
        self.vals.forget();
        self.plans.forget();
    }

    /// A slot for one call of `owner`'s vals, or which share is full.
    /// Start no new background work (cron runs): the server is stopping.
    pub fn stop_background(&self) {
        self.stopping
            .store(true, std::sync::atomic::Ordering::SeqCst);
    }

    pub fn stopping(&self) -> bool {
        self.stopping.load(std::sync::atomic::Ordering::SeqCst)
    }

    pub fn try_owner_slot(
        &self,
        owner: &str,
        by_owner: bool,
    ) -> Result<OwnedSemaphorePermit, FullShare> {
        let total = self.config.limits.concurrent_calls_per_owner;
        self.owner_slots.try_take(owner, by_owner, total)
    }

    /// Open (or create) the data dir. Returns the app and the log writer,
    /// which finishes once the app is dropped.
    pub async fn open(config: Config) -> anyhow::Result<(Self, tokio::task::JoinHandle<()>)> {
        std::fs::create_dir_all(&config.data_dir)
            .with_context(|| format!("creating {}", config.data_dir.display()))?;
        let store = valbox_store::open(config.database.as_deref(), &config.data_dir).await?;
        let key_file =
            (config.secret_key_file.clone()).unwrap_or_else(|| config.data_dir.join("secret.key"));
        let secrets = SecretBox::load_or_create(&key_file)?;
        check_key(&store, &secrets, &key_file).await?;
        let objects = config
            .objects
            .as_deref()
            .map(valbox_objects::open)
            .transpose()?;
        if let Some(objects) = &objects {
            tracing::info!("components and blobs in {}", objects.describe());
        } else if config.database.is_some() {
            tracing::warn!(
                "blobs and components stay in this node's --data: other nodes will not see them; give every node the same --objects"
            );
        }
        let sources = objects.clone().map(|o| {
            Arc::new(crate::services::components::SharedComponents(o))
                as Arc<dyn valbox_runtime::Sources>
        });
        let runtime = Runtime::new(
            config.limits.clone(),
            config.data_dir.join("components"),
            &config.compile_cache,
            sources,
            Capabilities::link,
        )?;
        let retention = Retention {
            bytes_per_val: config.limits.log_bytes_per_val,
            max_age: config.limits.log_max_age,
        };
        let (logs, writer) = LogSink::start(store.logs.clone(), retention);
        let mut caps_config = CapsConfig::new(
            config.data_dir.clone(),
            &config.limits,
            config.fetch_policy.clone(),
            config.smtp.clone(),
        );
        // Users' databases are files of one node: on a shared store they
        // would answer differently from node to node.
        let metrics = Arc::new(crate::metrics::Metrics::default());
        let homes = node_homes(&config, &store, objects.as_ref(), &metrics).await?;
        caps_config.sqlite.placement = match (&config.database, &homes) {
            (None, _) => Placement::Local,
            (Some(_), None) => Placement::Unavailable(
                "SQLite is not available on this server: it runs on many machines, and each \
                 node needs --cluster-listen and the shared --cluster-secret-file to serve \
                 users' databases (see the README)"
                    .into(),
            ),
            (Some(_), Some(homes)) => Placement::Homes(homes.clone()),
        };
        caps_config.sqlite.replicated = homes.as_ref().is_some_and(|h| h.replicates());
        if let Some(objects) = &objects {
            caps_config.blob.objects = objects.clone();
        }
        let caps = Arc::new(Capabilities::open(&Settings {
            config: &caps_config,
            store: &store,
            secrets: &secrets,
        })?);
        if let Some(homes) = &homes {
            homes.serve_from(caps.sqlite.store.clone());
        }
        let auth = Authenticator {
            tokens: store.tokens.clone(),
            call_tokens: CallTokens::default(),
            usage: Default::default(),
        };
        let app = App(Arc::new(AppInner {
            config,
            store,
            secrets,
            runtime,
            objects,
            logs,
            auth,
            caps,
            vals: ValCache::default(),
            plans: Default::default(),
            metrics,
            homes,
            stopping: Default::default(),
            mail_arrived: Default::default(),
            // Half the CPUs: deploys never take all of them from calls.
            compiles: crate::services::compile_gate::CompileGate::new(
                std::thread::available_parallelism().map_or(1, |n| n.get() / 2),
            ),
            sign_in_limit: Default::default(),
            owner_slots: OwnerSlots::default(),
        }));
        let runner = crate::services::api_calls::ValRunner(WeakApp(Arc::downgrade(&app.0)));
        app.caps.vals.connect(Arc::new(runner));
        crate::services::scope_usage::start(WeakApp(Arc::downgrade(&app.0)));
        crate::services::cron::start(WeakApp(Arc::downgrade(&app.0)));
        if app.config.mail.is_some() {
            crate::services::mail_delivery::start(WeakApp(Arc::downgrade(&app.0)));
        }
        watch_store_changes(WeakApp(Arc::downgrade(&app.0)));
        unload_idle_components(Arc::downgrade(&app.runtime), app.config.limits.loaded_idle);
        Ok((app, writer))
    }
}

/// Refuse to start with a key that cannot open what the store holds (a
/// node given another node's store but its own new key): found now, not
/// when a val reads an env var.
async fn check_key(store: &Store, secrets: &SecretBox, path: &Path) -> anyhow::Result<()> {
    const CONTEXT: &str = "valbox/key-check";
    let (nonce, ciphertext) = secrets.seal(b"valbox", CONTEXT)?;
    let stored = store.health.key_check(Sealed { nonce, ciphertext }).await?;
    if secrets
        .open(&stored.nonce, &stored.ciphertext, CONTEXT)
        .is_err()
    {
        anyhow::bail!(
            "the secret key in {} cannot decrypt what the metadata store holds: every node \
             of one store must use the same key; copy the key file from a node that runs \
             and give it with --secret-key-file",
            path.display()
        );
    }
    Ok(())
}

/// Forget cached vals whenever the store says they may have changed
/// elsewhere: another node's write, or an operator's `valbox admin
/// migrate-scopes` beside this server.
fn watch_store_changes(app: WeakApp) {
    let Some(mut changes) = app.upgrade().map(|app| app.store.health.changes()) else {
        return;
    };
    tokio::spawn(async move {
        // Woken now and then too, so that a dropped app lets the store's
        // watch end.
        let mut alive = tokio::time::interval(Duration::from_secs(1));
        loop {
            tokio::select! {
                changed = changes.changed() => if changed.is_err() { break },
                _ = alive.tick() => {
                    if app.upgrade().is_none() { break }
                    continue;
                }
            }
            let Some(app) = app.upgrade() else { break };
            app.forget_vals();
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

/// This node's view of where users' SQLite databases live, on a node of a
/// cluster (a shared store and an internal listener), with replicas in the
/// object store unless they are turned off.
async fn node_homes(
    config: &Config,
    store: &Store,
    objects: Option<&Arc<dyn Objects>>,
    metrics: &crate::metrics::Metrics,
) -> anyhow::Result<Option<Arc<crate::cluster::NodeHomes>>> {
    let (Some(_), Some(cluster)) = (&config.database, &config.cluster) else {
        return Ok(None);
    };
    let me = valbox_store::Node {
        id: crate::cluster::node_id(&config.data_dir)?,
        address: (cluster.address.clone()).unwrap_or_else(|| cluster.listen.to_string()),
    };
    let replicas = match (cluster.replication, objects) {
        (None, _) => None,
        (Some(_), None) => anyhow::bail!(
            "replicas of users' SQLite databases go to the object store every node shares: \
             give --objects, or turn them off with --replication-interval-ms 0"
        ),
        (Some(interval), Some(objects)) => Some(
            crate::cluster::Replicas::start(
                cluster.litestream.clone(),
                &config.data_dir.join("litestream"),
                objects.clone(),
                interval,
            )
            .await?,
        ),
    };
    Ok(Some(crate::cluster::NodeHomes::start(
        store.homes.clone(),
        me,
        cluster,
        config.data_dir.join("sqlite"),
        replicas,
        metrics.replication_lag.clone(),
    )))
}
