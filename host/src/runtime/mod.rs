//! The WebAssembly runtime: one engine, compiled components cached on disk
//! and pre-linked in memory, and `invoke`, which runs one call in a fresh
//! store under the configured limits. Knows nothing about HTTP routes.

pub mod bindings;
mod call;
mod engine;
mod limits;
mod output;
mod scheduler;
mod upload;
mod wit;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context;
use wasmtime::component::{Component, Linker, ResourceTable};
use wasmtime::{Engine, Store, Trap, UpdateDeadline};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

use crate::config::Limits;
use bindings::http::{HttpVal, HttpValPre};
use bindings::script::{ScriptVal, ScriptValPre};
pub use call::{CallError, HttpRequest, HttpResponse, Input, Outcome, Output, ValKind};
use engine::{engine_config, start_epoch_ticker};
use limits::CallLimiter;
use output::Capture;
use scheduler::Scheduler;
pub use upload::{Prepared, UploadError};
pub use wit::component_wit;

/// How often the epoch advances: the granularity of wall-clock deadlines
/// and of yielding a busy guest back to the async runtime, which is how
/// long a new request may wait to be read while every worker runs wasm.
const EPOCH_TICK: Duration = Duration::from_millis(1);

/// Pre-linked components kept in memory at most. Past it one is dropped
/// for each one loaded: it comes back from the on-disk compiled cache in
/// milliseconds, and memory stays bounded however many versions exist.
const MAX_LOADED: usize = 1024;

/// The state of one call's store: WASI's, the memory limiter's, and
/// `host`, what the embedder links its own imports to (the capabilities).
pub struct CallState<H> {
    wasi: WasiCtx,
    table: ResourceTable,
    limiter: CallLimiter,
    pub host: H,
}

impl<H: Send> WasiView for CallState<H> {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

/// A component ready to instantiate.
enum Loaded<H: 'static> {
    Http(HttpValPre<CallState<H>>),
    Script(ScriptValPre<CallState<H>>),
}

// Derived `Clone` would ask `H: Clone`; the pre-linked parts never hold one.
impl<H> Clone for Loaded<H> {
    fn clone(&self) -> Self {
        match self {
            Loaded::Http(pre) => Loaded::Http(pre.clone()),
            Loaded::Script(pre) => Loaded::Script(pre.clone()),
        }
    }
}

/// What a call consumed, filled in even when it fails.
#[derive(Default)]
struct Usage {
    fuel_used: u64,
    cpu_time: Duration,
}

/// Runs components whose imports beyond WASI are served by a host state
/// `H`, one per call, which the embedder links in `Runtime::new`.
pub struct Runtime<H: 'static> {
    engine: Engine,
    linker: Linker<CallState<H>>,
    limits: Limits,
    components_dir: PathBuf,
    /// Pre-linked components by content hash.
    loaded: Mutex<HashMap<String, Loaded<H>>>,
    scheduler: Arc<Scheduler>,
}

impl<H: Send + 'static> Runtime<H> {
    /// A runtime whose platform imports `link_host` adds to the linker.
    pub fn new(
        limits: Limits,
        components_dir: PathBuf,
        link_host: impl FnOnce(&mut Linker<CallState<H>>) -> wasmtime::Result<()>,
    ) -> anyhow::Result<Arc<Self>> {
        std::fs::create_dir_all(&components_dir)
            .with_context(|| format!("creating {}", components_dir.display()))?;
        let engine = Engine::new(&engine_config(&limits))?;
        let mut linker = Linker::<CallState<H>>::new(&engine);
        wasmtime_wasi::p2::add_to_linker_async(&mut linker)?;
        link_host(&mut linker)?;
        start_epoch_ticker(&engine);
        let ticker = engine.clone();
        // Extra epochs are harmless: deadlines are checked against the clock.
        let scheduler = Scheduler::new(limits.running_guests, move || ticker.increment_epoch());
        Ok(Arc::new(Self {
            engine,
            linker,
            limits,
            components_dir,
            loaded: Mutex::default(),
            scheduler,
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

    /// Link a compiled component, learning its kind from its exports.
    fn link(&self, component: &Component) -> Result<(Loaded<H>, ValKind), UploadError> {
        upload::check_imports(&self.engine, component)?;
        let pre = self
            .linker
            .instantiate_pre(component)
            .map_err(|e| UploadError::UnsupportedImport(format!("{e:#}")))?;
        let exports = upload::exported_kind(&self.engine, component)?;
        Ok(match exports {
            ValKind::Http => (
                Loaded::Http(
                    HttpValPre::new(pre).map_err(|e| UploadError::NoHandler(format!("{e:#}")))?,
                ),
                ValKind::Http,
            ),
            ValKind::Script => (
                Loaded::Script(
                    ScriptValPre::new(pre).map_err(|e| UploadError::NoHandler(format!("{e:#}")))?,
                ),
                ValKind::Script,
            ),
        })
    }

    /// The pre-linked component for `sha256`: from memory, else from the
    /// compiled cache on disk, else compiled again from the stored upload.
    async fn load(self: &Arc<Self>, sha256: &str) -> anyhow::Result<Loaded<H>> {
        if let Some(l) = self
            .loaded
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(sha256)
        {
            return Ok(l.clone());
        }
        let this = self.clone();
        let sha = sha256.to_string();
        let loaded = tokio::task::spawn_blocking(move || this.load_from_disk(&sha)).await??;
        self.remember(sha256, loaded.clone());
        Ok(loaded)
    }

    /// Keep `loaded` in memory, within [`MAX_LOADED`].
    fn remember(&self, sha256: &str, loaded: Loaded<H>) {
        let mut cache = self.loaded.lock().unwrap_or_else(|p| p.into_inner());
        if cache.len() >= MAX_LOADED
            && !cache.contains_key(sha256)
            && let Some(evict) = cache.keys().next().cloned()
        {
            cache.remove(&evict);
        }
        cache.insert(sha256.to_string(), loaded);
    }

    fn load_from_disk(&self, sha256: &str) -> anyhow::Result<Loaded<H>> {
        let compiled = self.compiled_path(sha256);
        // SAFETY: the cache directory holds only artifacts this server
        // serialised itself, named by the hash of their source; wasmtime
        // checks that the artifact matches this engine's version and config.
        let component = match unsafe { Component::deserialize_file(&self.engine, &compiled) } {
            Ok(c) => c,
            Err(e) => {
                tracing::info!("recompiling {sha256}: cached artifact unusable ({e:#})");
                let wasm = std::fs::read(self.wasm_path(sha256))
                    .with_context(|| format!("component {sha256} is missing from the store"))?;
                let c = Component::new(&self.engine, &wasm)?;
                crate::fsutil::write_atomic(&compiled, &c.serialize()?)?;
                c
            }
        };
        let (loaded, _) = self.link(&component).map_err(|e| anyhow::anyhow!("{e}"))?;
        Ok(loaded)
    }

    /// Run one call of the component `sha256`. Once it is loaded, `start`
    /// gives the call's host state and its deadline, so loading (at worst
    /// a compile) never eats into the call's time.
    pub async fn invoke(
        self: &Arc<Self>,
        sha256: &str,
        input: Input,
        start: impl FnOnce() -> (H, Instant),
    ) -> Outcome<H> {
        let started = Instant::now();
        let stdout = Capture::new(self.limits.log_bytes);
        let stderr = Capture::new(self.limits.log_bytes);
        let mut usage = Usage::default();
        let (result, host) = match self.load(sha256).await {
            Ok(loaded) => {
                let (host, deadline) = start();
                let mut store = self.store(host, &stdout, &stderr);
                let result = self
                    .run(loaded, &mut store, input, deadline, &mut usage)
                    .await;
                (result, Some(store.into_data().host))
            }
            Err(e) => (Err(CallError::Internal(format!("{e:#}"))), None),
        };
        Outcome {
            result,
            fuel_used: usage.fuel_used,
            duration: started.elapsed(),
            cpu_time: usage.cpu_time,
            stdout: stdout.text(),
            stderr: stderr.text(),
            host,
        }
    }

    /// A fresh store for one call. Nothing ambient: no preopened
    /// directories, no sockets, no host environment variables; stdout and
    /// stderr go to the call's log.
    fn store(&self, host: H, stdout: &Capture, stderr: &Capture) -> Store<CallState<H>> {
        let wasi = WasiCtx::builder()
            .stdout(stdout.clone())
            .stderr(stderr.clone())
            .allow_tcp(false)
            .allow_udp(false)
            .allow_ip_name_lookup(false)
            .build();
        let state = CallState {
            wasi,
            table: ResourceTable::new(),
            limiter: CallLimiter::new(&self.limits),
            host,
        };
        let mut store = Store::new(&self.engine, state);
        store.limiter(|s| &mut s.limiter);
        store
    }

    async fn run(
        &self,
        loaded: Loaded<H>,
        store: &mut Store<CallState<H>>,
        input: Input,
        deadline: Instant,
        usage: &mut Usage,
    ) -> Result<Output, CallError> {
        let limits = &self.limits;
        store
            .set_fuel(limits.fuel)
            .map_err(|e| CallError::Internal(e.to_string()))?;
        let seat = self.scheduler.seat();
        let ticking = seat.clone();
        store.set_epoch_deadline(1);
        store.epoch_deadline_callback(move |_| {
            if Instant::now() >= deadline {
                return Ok(UpdateDeadline::Interrupt);
            }
            // A busy guest yields at every tick: tokio's yield wakes the call
            // only after the worker has polled sockets and timers, so requests
            // are read while every worker runs wasm. Whether the call then
            // gives its slot to a waiting one is the scheduler's choice.
            let mut seat = ticking.lock().unwrap_or_else(|p| p.into_inner());
            Ok(if seat.tick(EPOCH_TICK / 2) {
                UpdateDeadline::YieldCustom(1, Box::pin(tokio::task::yield_now()))
            } else {
                UpdateDeadline::Continue(1)
            })
        });

        let call = async {
            let result: wasmtime::Result<Output> = match (&loaded, input) {
                (Loaded::Http(pre), Input::Http(request)) => {
                    let val: HttpVal = pre.instantiate_async(&mut *store).await?;
                    let response = val
                        .valbox_platform_http_handler()
                        .call_handle(&mut *store, &request)
                        .await?;
                    Ok(Output::Http(response))
                }
                (Loaded::Script(pre), Input::Script(args)) => {
                    let val: ScriptVal = pre.instantiate_async(&mut *store).await?;
                    let result = val
                        .valbox_platform_script()
                        .call_run(&mut *store, &args)
                        .await?;
                    Ok(Output::Script(result))
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
        usage.fuel_used = limits.fuel.saturating_sub(store.get_fuel().unwrap_or(0));
        let output = match timed {
            Err(_) => return Err(CallError::Deadline(limits.timeout)),
            Ok(Ok(output)) => output,
            Ok(Err(e)) => return Err(classify(e, store, limits)),
        };
        let size = match &output {
            Output::Http(response) => response.body.len(),
            Output::Script(Ok(text) | Err(text)) => text.len(),
        };
        if size > limits.response_body_bytes {
            return Err(CallError::ResponseTooLarge(limits.response_body_bytes));
        }
        Ok(output)
    }
}

fn classify<H>(err: wasmtime::Error, store: &Store<CallState<H>>, limits: &Limits) -> CallError {
    if store.data().limiter.memory_refused {
        return CallError::Memory(limits.memory_bytes);
    }
    if err
        .downcast_ref::<wasmtime::PoolConcurrencyLimitError>()
        .is_some()
    {
        return CallError::Busy;
    }
    match err.downcast_ref::<Trap>() {
        Some(Trap::OutOfFuel) => CallError::Fuel(limits.fuel),
        Some(Trap::Interrupt) => CallError::Deadline(limits.timeout),
        _ => CallError::Trap(format!("{err:#}")),
    }
}
