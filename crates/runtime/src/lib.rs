//! The WebAssembly runtime: one engine, compiled components cached on disk
//! and pre-linked in memory, and `invoke`, which runs one call in a fresh
//! store under the configured limits. Knows nothing about HTTP routes.

pub mod bindings;
mod call;
mod compile_cache;
mod engine;
pub mod fsutil;
mod instance;
mod libraries;
mod limits;
mod linking;
mod loaded;
mod output;
mod reuse;
mod scheduler;
mod sections;
mod sources;
mod upload;
mod wasi_http;
mod wit;

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context;
use wasmtime::component::{Component, Linker, ResourceTable};
use wasmtime::{Engine, Store};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};
use wasmtime_wasi_http::p2::bindings::ProxyPre;
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpView};

use bindings::cron::{CronVal, CronValPre};
use bindings::email_val::{EmailVal, EmailValPre};
use bindings::http::HttpValPre;
use bindings::script::{ScriptVal, ScriptValPre};
pub use call::{CallError, HttpRequest, HttpResponse, Input, Outcome, Output};
use engine::{engine_config, start_epoch_ticker};
use instance::{classify, new_store};
pub use libraries::{Host, LibraryPlan, LinkPlan};
use libraries::{LibrarySlot, LoadedLibrary};
use limits::{CallLimiter, MemoryBudget};
use loaded::LoadedCache;
use output::Capture;
pub use reuse::Reuse;
use reuse::{Ready, Warm, WarmPool};
use scheduler::{Scheduler, Seat};
pub use sections::section_lines;
pub use sources::{Fetched, Sources};
pub use upload::{Prepared, UploadError};
use valbox_model::Limits;
pub use wit::component_wit;

/// How often the epoch advances: the granularity of wall-clock deadlines
/// and of yielding a busy guest back to the async runtime, which is how
/// long a new request may wait to be read while every worker runs wasm.
const EPOCH_TICK: Duration = Duration::from_millis(1);

/// The state of one store of a call (the val's, or a library's): WASI's,
/// the memory limiter's, what the call's stores share, the libraries its
/// component imports, and `host`, what the embedder links its own imports
/// to (the capabilities).
pub struct CallState<H: Host> {
    wasi: WasiCtx,
    http: WasiHttpCtx,
    table: ResourceTable,
    limiter: CallLimiter,
    shared: Arc<CallShared>,
    libraries: Vec<LibrarySlot<H>>,
    pub host: H,
}

impl<H: Host> WasiView for CallState<H> {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl<H: Host> WasiHttpView for CallState<H> {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        WasiHttpCtxView {
            ctx: &mut self.http,
            table: &mut self.table,
            hooks: self.host.http_hooks(),
        }
    }
}

/// What every store of one call shares: its limits and log, its deadline,
/// its CPU slot and its memory budget.
struct CallShared {
    limits: Arc<Limits>,
    stdout: Capture,
    stderr: Capture,
    deadline: Instant,
    seat: Arc<Mutex<Seat>>,
    memory: Arc<MemoryBudget>,
}

impl CallShared {
    /// What the stores of a call until `deadline` share: its output goes
    /// to `stdout` and `stderr`, its memories count in `memory`.
    fn new(
        limits: &Arc<Limits>,
        (stdout, stderr): (&Capture, &Capture),
        deadline: Instant,
        seat: Arc<Mutex<Seat>>,
        memory: Arc<MemoryBudget>,
    ) -> Arc<Self> {
        Arc::new(Self {
            limits: limits.clone(),
            stdout: stdout.clone(),
            stderr: stderr.clone(),
            deadline,
            seat,
            memory,
        })
    }
}

/// A component ready to instantiate, with its libraries.
struct Loaded<H: Host> {
    handler: Handler<H>,
    libraries: Vec<Arc<LoadedLibrary<H>>>,
    /// Its weight in the loaded cache: see [`LoadedLibrary::bytes`].
    bytes: usize,
}

enum Handler<H: Host> {
    Http(HttpValPre<CallState<H>>),
    Script(ScriptValPre<CallState<H>>),
    Cron(CronValPre<CallState<H>>),
    Email(EmailValPre<CallState<H>>),
    /// A standard `wasi:http/proxy` component.
    WasiHttp(ProxyPre<CallState<H>>),
}

// Derived `Clone` would ask `H: Clone`; the pre-linked parts never hold one.
impl<H: Host> Clone for Loaded<H> {
    fn clone(&self) -> Self {
        let handler = match &self.handler {
            Handler::Http(pre) => Handler::Http(pre.clone()),
            Handler::Script(pre) => Handler::Script(pre.clone()),
            Handler::Cron(pre) => Handler::Cron(pre.clone()),
            Handler::Email(pre) => Handler::Email(pre.clone()),
            Handler::WasiHttp(pre) => Handler::WasiHttp(pre.clone()),
        };
        Self {
            handler,
            libraries: self.libraries.clone(),
            bytes: self.bytes,
        }
    }
}

/// What a call consumed, filled in even when it fails.
#[derive(Default)]
struct Usage {
    fuel_used: u64,
    cpu_time: Duration,
    /// The library the call failed in, if it did.
    failed_in: Option<String>,
}

impl Usage {
    /// The call's outcome, begun at `started`, with what it wrote.
    fn outcome<H>(
        self,
        result: Result<Output, CallError>,
        started: Instant,
        (stdout, stderr): (String, String),
        host: Option<H>,
    ) -> Outcome<H> {
        Outcome {
            result,
            fuel_used: self.fuel_used,
            duration: started.elapsed(),
            cpu_time: self.cpu_time,
            stdout,
            stderr,
            failed_in: self.failed_in,
            host,
        }
    }
}

/// Runs components whose imports beyond WASI are served by a host state
/// `H`, one per call, which the embedder links in `Runtime::new`.
pub struct Runtime<H: Host> {
    engine: Engine,
    linker: Linker<CallState<H>>,
    limits: Arc<Limits>,
    components_dir: PathBuf,
    /// Pre-linked components by content hash and libraries, within
    /// `Limits::loaded_bytes` and `Limits::loaded_idle`.
    loaded: Mutex<LoadedCache<Loaded<H>>>,
    scheduler: Arc<Scheduler>,
    /// Where uploads this node lacks are fetched from, if anywhere.
    sources: Option<Arc<dyn Sources>>,
    /// Instances of vals that opted into reuse, waiting for a call.
    warm: WarmPool<H>,
}

impl<H: Host> Runtime<H> {
    /// A runtime whose platform imports `link_host` adds to the linker,
    /// keeping compiled components in `components_dir` and compiled
    /// functions in the SQLite file `compile_cache`, and fetching uploads
    /// it lacks from `sources`.
    pub fn new(
        limits: Limits,
        components_dir: PathBuf,
        compile_cache: &std::path::Path,
        sources: Option<Arc<dyn Sources>>,
        link_host: impl FnOnce(&mut Linker<CallState<H>>) -> wasmtime::Result<()>,
    ) -> anyhow::Result<Arc<Self>> {
        std::fs::create_dir_all(&components_dir)
            .with_context(|| format!("creating {}", components_dir.display()))?;
        // Without the cache, components still compile, only slower.
        let cache = compile_cache::CompileCache::open(compile_cache, limits.compile_cache_bytes)
            .inspect_err(|e| tracing::warn!("compiling without a cache: {e:#}"))
            .ok();
        let engine = Engine::new(&engine_config(&limits, cache))?;
        let mut linker = Linker::<CallState<H>>::new(&engine);
        wasmtime_wasi::p2::add_to_linker_async(&mut linker)?;
        wasmtime_wasi_http::p2::add_only_http_to_linker_async(&mut linker)?;
        wasi_http::link_environment(&mut linker)?;
        link_host(&mut linker)?;
        start_epoch_ticker(&engine);
        let ticker = engine.clone();
        // Extra epochs are harmless: deadlines are checked against the clock.
        let scheduler = Scheduler::new(limits.running_guests, move || ticker.increment_epoch());
        // Each waiting instance holds a pool slot: at most a quarter wait.
        let warm = WarmPool::new(limits.concurrent_instances / 4);
        Ok(Arc::new(Self {
            warm,
            engine,
            linker,
            loaded: Mutex::new(LoadedCache::new(limits.loaded_bytes, limits.loaded_idle)),
            limits: Arc::new(limits),
            components_dir,
            scheduler,
            sources,
        }))
    }

    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// Calls holding a slot to run wasm right now.
    pub fn guests_running(&self) -> usize {
        self.scheduler.running()
    }

    fn wasm_path(&self, sha256: &str) -> PathBuf {
        self.components_dir.join(format!("{sha256}.wasm"))
    }

    fn compiled_path(&self, sha256: &str) -> PathBuf {
        self.components_dir.join(format!("{sha256}.cwasm"))
    }

    /// The pre-linked form of `plan`: from memory, else from the compiled
    /// cache on disk, else compiled again from the stored upload.
    async fn load(self: &Arc<Self>, plan: &LinkPlan<H::View>) -> Result<Loaded<H>, CallError> {
        if let Some(l) = self.loaded_cache().get(plan.key(), Instant::now()) {
            return Ok(l);
        }
        self.fetch_missing(plan).await?;
        let this = self.clone();
        let sha = plan.sha256.clone();
        let libraries = plan.libraries.clone();
        let linked = tokio::task::spawn_blocking(move || {
            let component = this.component(&sha)?;
            Ok::<_, anyhow::Error>(this.link(&component, &libraries))
        })
        .await
        .map_err(|e| CallError::Internal(e.to_string()))?
        .map_err(|e| CallError::Internal(format!("{e:#}")))?;
        let (loaded, _) = linked.map_err(|e| match e {
            UploadError::Internal(m) => CallError::Internal(m),
            e => CallError::Link(e.to_string()),
        })?;
        let bytes = loaded.bytes;
        self.loaded_cache()
            .insert(plan.key(), loaded.clone(), bytes, Instant::now());
        Ok(loaded)
    }

    fn loaded_cache(&self) -> std::sync::MutexGuard<'_, LoadedCache<Loaded<H>>> {
        self.loaded.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Drop the loaded components no call used within
    /// `Limits::loaded_idle` and give the memory they held back to the
    /// system; returns how many. Blocking: call it periodically, off the
    /// async runtime.
    pub fn unload_idle(&self) -> usize {
        self.warm.retire_idle();
        let dropped = self.loaded_cache().drop_idle(Instant::now());
        if dropped > 0 {
            loaded::release_freed_memory();
        }
        dropped
    }

    /// Retire the waiting instances whose reuse key starts with `prefix`
    /// (a val whose env changed); returns how many.
    pub fn retire_reused(&self, prefix: &str) -> usize {
        self.warm.retire_matching(prefix)
    }

    /// Components held in memory, and the bytes of compiled code and data
    /// they map.
    pub fn loaded(&self) -> (usize, usize) {
        let cache = self.loaded_cache();
        (cache.len(), cache.bytes())
    }

    /// The compiled component `sha256`, from the on-disk cache or compiled
    /// again from the stored upload.
    fn component(&self, sha256: &str) -> anyhow::Result<Component> {
        let compiled = self.compiled_path(sha256);
        // SAFETY: the cache directory holds only artifacts this server
        // serialised itself, named by the hash of their source; wasmtime
        // checks that the artifact matches this engine's version and config.
        match unsafe { Component::deserialize_file(&self.engine, &compiled) } {
            Ok(c) => Ok(c),
            Err(e) => {
                tracing::info!("recompiling {sha256}: cached artifact unusable ({e:#})");
                let wasm = std::fs::read(self.wasm_path(sha256))
                    .with_context(|| format!("component {sha256} is missing from the store"))?;
                let c = Component::new(&self.engine, &wasm)?;
                crate::fsutil::write_atomic(&compiled, &c.serialize()?)?;
                Ok(c)
            }
        }
    }

    /// Run one call of the component of `plan`, with its libraries. Once
    /// it is loaded, `start` gives the call's host state and its deadline,
    /// so loading (at worst a compile) never eats into the call's time.
    pub async fn invoke(
        self: &Arc<Self>,
        plan: &LinkPlan<H::View>,
        input: Input,
        start: impl FnOnce() -> (H, Instant),
    ) -> Outcome<H> {
        let started = Instant::now();
        let (stdout, stderr) = Capture::pair(self.limits.log_bytes);
        let mut usage = Usage::default();
        let (result, host) = match self.load(plan).await {
            Ok(loaded) => {
                let (host, deadline) = start();
                let seat = self.scheduler.seat();
                let output = (&stdout, &stderr);
                let shared = CallShared::new(&self.limits, output, deadline, seat, Arc::default());
                let libraries = libraries::slots(&plan.libraries, &loaded.libraries);
                let mut store = new_store(&self.engine, shared, host, libraries);
                let result = self
                    .run(loaded, &mut store, &mut None, input, &mut usage)
                    .await;
                (result, Some(store.into_data().host))
            }
            Err(e) => (Err(e), None),
        };
        usage.outcome(result, started, (stdout.text(), stderr.text()), host)
    }

    /// [`Runtime::invoke`] for a val that opted into reuse: an HTTP call
    /// of a val without libraries is served by a waiting instance of the
    /// same `reuse.key` if there is one, and its instance kept afterwards
    /// if the call ended well and the instance is within its bounds. Its
    /// host state (grant, token) is this call's alone: put in before the
    /// call, taken out after it.
    pub async fn invoke_reusing(
        self: &Arc<Self>,
        plan: &LinkPlan<H::View>,
        input: Input,
        start: impl FnOnce() -> (H, Instant),
        reuse: &Reuse,
    ) -> Outcome<H> {
        if !plan.libraries.is_empty() || !matches!(input, Input::Http(_)) {
            return self.invoke(plan, input, start).await;
        }
        let started = Instant::now();
        let mut usage = Usage::default();
        let loaded = match self.load(plan).await {
            Ok(loaded) => loaded,
            Err(e) => return usage.outcome(Err(e), started, Default::default(), None),
        };
        let (host, deadline) = start();
        let seat = self.scheduler.seat();
        let mut warm = match self.warm.take(&reuse.key) {
            Some(mut warm) => {
                let state = warm.store.data_mut();
                let output = (&warm.stdout, &warm.stderr);
                let memory = state.shared.memory.clone();
                state.host = host;
                state.shared =
                    CallShared::new(&self.limits, output, deadline, seat.clone(), memory);
                instance::arm(&mut warm.store, deadline, seat);
                warm
            }
            None => {
                let (stdout, stderr) = Capture::pair(self.limits.log_bytes);
                let output = (&stdout, &stderr);
                let shared = CallShared::new(&self.limits, output, deadline, seat, Arc::default());
                Warm {
                    store: new_store(&self.engine, shared, host, Vec::new()),
                    ready: None,
                    stdout,
                    stderr,
                    served: 0,
                    since: started,
                    idle: reuse.idle,
                }
            }
        };
        let result = self
            .run(loaded, &mut warm.store, &mut warm.ready, input, &mut usage)
            .await;
        let output = Capture::take_pair(&warm.stdout, &warm.stderr);
        let spent = warm.store.data().host.spent();
        let host = std::mem::replace(&mut warm.store.data_mut().host, spent);
        warm.served += 1;
        let memory = &warm.store.data().shared.memory;
        // A trap or a limit may have left it anywhere: only a call that
        // ended well hands its instance on.
        if result.is_ok()
            && warm.ready.is_some()
            && warm.served < reuse.max_requests
            && memory.in_use() <= reuse.max_memory
            && !memory.refused()
        {
            warm.since = Instant::now();
            self.warm.put(&reuse.key, warm);
        }
        usage.outcome(result, started, output, Some(host))
    }

    /// Run one call in `store`: an HTTP val in the instance `ready` holds,
    /// or one made now (and left there); any other kind in a new instance.
    async fn run(
        &self,
        loaded: Loaded<H>,
        store: &mut Store<CallState<H>>,
        ready: &mut Option<Ready>,
        input: Input,
        usage: &mut Usage,
    ) -> Result<Output, CallError> {
        let limits = &self.limits;
        if limits.meter_fuel {
            store
                .set_fuel(limits.fuel)
                .map_err(|e| CallError::Internal(e.to_string()))?;
        }
        let seat = store.data().shared.seat.clone();
        let deadline = store.data().shared.deadline;
        let call = async {
            let result: wasmtime::Result<Output> = match (&loaded.handler, input) {
                (Handler::Http(pre), Input::Http(request)) => {
                    if ready.is_none() {
                        *ready = Some(Ready::Http(pre.instantiate_async(&mut *store).await?));
                    }
                    let Some(Ready::Http(val)) = ready.as_ref() else {
                        unreachable!("an HTTP val's instance is an http-val");
                    };
                    let response = val
                        .valbox_platform_http_handler()
                        .call_handle(&mut *store, &request)
                        .await?;
                    Ok(Output::Http(response))
                }
                (Handler::WasiHttp(pre), Input::Http(request)) => {
                    if ready.is_none() {
                        *ready = Some(Ready::WasiHttp(pre.instantiate_async(&mut *store).await?));
                    }
                    let Some(Ready::WasiHttp(proxy)) = ready.as_ref() else {
                        unreachable!("a wasi:http val's instance is a proxy");
                    };
                    let limit = limits.response_body_bytes;
                    let response = wasi_http::handle(proxy, &mut *store, request, limit).await?;
                    Ok(Output::Http(response))
                }
                (Handler::Script(pre), Input::Script(args)) => {
                    let val: ScriptVal = pre.instantiate_async(&mut *store).await?;
                    let result = val
                        .valbox_platform_script()
                        .call_run(&mut *store, &args)
                        .await?;
                    Ok(Output::Script(result))
                }
                (Handler::Cron(pre), Input::Cron(event)) => {
                    let val: CronVal = pre.instantiate_async(&mut *store).await?;
                    let result = val
                        .valbox_platform_cron()
                        .call_run(&mut *store, &event)
                        .await?;
                    Ok(Output::Cron(result))
                }
                (Handler::Email(pre), Input::Email(mail)) => {
                    let val: EmailVal = pre.instantiate_async(&mut *store).await?;
                    let result = val
                        .valbox_platform_email_handler()
                        .call_receive(&mut *store, &mail)
                        .await?;
                    Ok(Output::Email(result))
                }
                _ => Err(wasmtime::Error::msg(
                    "the val's kind does not match the route",
                )),
            };
            result
        };
        // The guest runs only while it holds a slot, instantiation included.
        let call = scheduler::scheduled(seat.clone(), call);
        // The epoch deadline stops guest code; this also bounds time spent
        // inside host calls and waiting for a slot.
        let hard_stop = tokio::time::Instant::from_std(deadline + EPOCH_TICK * 4);
        let timed = tokio::time::timeout_at(hard_stop, call).await;
        usage.cpu_time = seat.lock().unwrap_or_else(|p| p.into_inner()).cpu_time();
        if limits.meter_fuel {
            usage.fuel_used = limits.fuel.saturating_sub(store.get_fuel().unwrap_or(0));
        }
        let output = match timed {
            Err(_) => return Err(CallError::Deadline(limits.timeout)),
            Ok(Ok(output)) => output,
            Ok(Err(e)) => {
                usage.failed_in = libraries::failed_in(&e);
                return Err(classify(e, store, limits));
            }
        };
        let size = match &output {
            Output::Http(response) => response.body.len(),
            Output::Script(Ok(text) | Err(text)) => text.len(),
            Output::Cron(result) | Output::Email(result) => {
                result.as_ref().err().map_or(0, String::len)
            }
        };
        if size > limits.response_body_bytes {
            return Err(CallError::ResponseTooLarge(limits.response_body_bytes));
        }
        Ok(output)
    }
}

/// The bytes of compiled code and data `component` maps.
fn image_bytes(component: &Component) -> usize {
    let range = component.image_range();
    (range.end as usize).saturating_sub(range.start as usize)
}
