//! Library vals linked into a call (Val Town's library mode, typed).
//!
//! A component's imports beyond the platform's and WASI's are answered by
//! the libraries its deploy named: each import by the one library that
//! exports an interface of that name and type, checked at deploy and again
//! whenever the link is built. A library runs in its own store, started on
//! its first use within the call, with its own host state (the embedder's
//! [`Host::library`] view), but on the caller's fuel, deadline, memory
//! budget, CPU slot and log. Only plain values cross: a library's
//! interfaces may not hold resources, so nothing of one store can reach
//! the other.

use std::sync::Arc;

use anyhow::Context as _;
use wasmtime::component::types::{ComponentInstance, ComponentItem};
use wasmtime::component::{Component, ComponentExportIndex, Instance, InstancePre, Linker, Val};
use wasmtime::{Engine, Store, StoreContextMut};

use super::CallState;

mod matching;

pub(crate) use matching::match_imports;

/// Interfaces the platform answers itself: its own and WASI 0.2.
const PLATFORM_PREFIX: &str = "valbox:platform/";
const WASI_PREFIX: &str = "wasi:";

/// The embedder's per-call host state, as libraries need it.
pub trait Host: Send + Sized + 'static {
    /// What the embedder knows of a library's view (its grants).
    type View: Send + Sync + 'static;

    /// The host state that the library `label` runs on in this call.
    fn library(&self, label: &str, view: &Self::View) -> Self;

    /// A state that grants nothing, left in a reused instance between its
    /// calls, so that it never holds an earlier call's grant.
    fn spent(&self) -> Self;

    /// Where a `wasi:http` component's outgoing requests go.
    fn http_hooks(&mut self) -> &mut dyn wasmtime_wasi_http::WasiHttpHooks;

    /// What `wasi:cli/environment` answers this call.
    fn environment(&mut self) -> impl Future<Output = Vec<(String, String)>> + Send + '_;
}

/// What to link for a call: a component, and the libraries that answer
/// its imports, each with its own view and libraries.
pub struct LinkPlan<V> {
    pub sha256: String,
    pub libraries: Vec<Arc<LibraryPlan<V>>>,
    /// Names the linked form in the runtime's cache.
    key: String,
}

/// One library of a [`LinkPlan`].
pub struct LibraryPlan<V> {
    /// How errors name it, e.g. `alice/slugify@3`.
    pub label: String,
    pub view: V,
    pub plan: LinkPlan<V>,
}

impl<V> LinkPlan<V> {
    pub fn new(sha256: String, libraries: Vec<Arc<LibraryPlan<V>>>) -> Self {
        let mut key = sha256.clone();
        for library in &libraries {
            key.push_str(&format!("+({})", library.plan.key));
        }
        Self {
            sha256,
            libraries,
            key,
        }
    }

    pub(super) fn key(&self) -> &str {
        &self.key
    }
}

/// A library, linked and ready to instantiate in a call.
pub(super) struct LoadedLibrary<H: Host> {
    pub pre: InstancePre<CallState<H>>,
    pub libraries: Vec<Arc<LoadedLibrary<H>>>,
    /// The compiled code and data mapped for it and its libraries.
    pub bytes: usize,
}

/// A library of one store's component, within one call.
pub(super) struct LibrarySlot<H: Host> {
    plan: Arc<LibraryPlan<H::View>>,
    loaded: Arc<LoadedLibrary<H>>,
    stage: Stage<H>,
}

enum Stage<H: Host> {
    /// Not called yet in this call.
    Idle,
    Started(Box<Started<H>>),
    /// Trapped; the call is failing.
    Failed,
}

/// A library's store in a call, and its instance once made.
struct Started<H: Host> {
    store: Store<CallState<H>>,
    instance: Option<Instance>,
}

impl<H: Host> LibrarySlot<H> {
    pub fn plan(&self) -> &LibraryPlan<H::View> {
        &self.plan
    }

    pub fn loaded(&self) -> &LoadedLibrary<H> {
        &self.loaded
    }
}

/// The slots of a component's libraries for one call.
pub(super) fn slots<H: Host>(
    plans: &[Arc<LibraryPlan<H::View>>],
    loaded: &[Arc<LoadedLibrary<H>>],
) -> Vec<LibrarySlot<H>> {
    plans
        .iter()
        .zip(loaded)
        .map(|(plan, loaded)| LibrarySlot {
            plan: plan.clone(),
            loaded: loaded.clone(),
            stage: Stage::Idle,
        })
        .collect()
}

/// Define each function of the import `name` in `linker` as a call into
/// the library in slot `slot`, which exports it from `library`.
pub(super) fn forward<H: Host>(
    engine: &Engine,
    linker: &mut Linker<CallState<H>>,
    name: &str,
    ty: &ComponentInstance,
    library: &Component,
    slot: usize,
) -> anyhow::Result<()> {
    let instance = library
        .get_export_index(None, name)
        .with_context(|| format!("the library does not export `{name}`"))?;
    let mut linker = linker.instance(name)?;
    for (func, item) in ty.exports(engine) {
        if !matches!(item.ty, ComponentItem::ComponentFunc(_)) {
            continue;
        }
        let export = library
            .get_export_index(Some(&instance), func)
            .with_context(|| format!("the library does not export `{name}#{func}`"))?;
        linker.func_new_async(func, move |store, _ty, params, results| {
            Box::new(call_library(store, slot, export, params, results))
        })?;
    }
    Ok(())
}

/// Call `export` of the library in `slot`, starting it on first use. The
/// caller's remaining fuel moves to the library for the call and back.
async fn call_library<H: Host>(
    mut store: StoreContextMut<'_, CallState<H>>,
    slot: usize,
    export: ComponentExportIndex,
    params: &[Val],
    results: &mut [Val],
) -> wasmtime::Result<()> {
    let library = &mut store.data_mut().libraries[slot];
    let (plan, loaded) = (library.plan.clone(), library.loaded.clone());
    let mut started = match std::mem::replace(&mut library.stage, Stage::Failed) {
        Stage::Started(started) => started,
        Stage::Idle => Box::new(Started {
            store: crate::instance::library_store(&mut store, slot),
            instance: None,
        }),
        Stage::Failed => {
            let label = &plan.label;
            return Err(wasmtime::Error::msg(format!(
                "library `{label}` failed earlier in this call"
            )));
        }
    };
    let metered = store.data().shared.limits.meter_fuel;
    if metered {
        started.store.set_fuel(store.get_fuel()?)?;
    }
    let result = async {
        let instance = match started.instance {
            Some(instance) => instance,
            None => {
                let instance = loaded.pre.instantiate_async(&mut started.store).await?;
                *started.instance.insert(instance)
            }
        };
        let func = instance
            .get_func(&mut started.store, export)
            .ok_or_else(|| wasmtime::Error::msg("the library's export vanished"))?;
        func.call_async(&mut started.store, params, results).await
    }
    .await;
    if metered {
        store.set_fuel(started.store.get_fuel()?)?;
    }
    match result {
        Ok(()) => {
            store.data_mut().libraries[slot].stage = Stage::Started(started);
            Ok(())
        }
        Err(e) => Err(e.context(InLibrary(plan.label.clone()))),
    }
}

/// Marks an error as coming from a library, naming it.
#[derive(Debug)]
struct InLibrary(String);

impl std::fmt::Display for InLibrary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "in library `{}`", self.0)
    }
}

/// The library a call's error came from (the outermost, for nested ones).
pub(super) fn failed_in(err: &wasmtime::Error) -> Option<String> {
    err.downcast_ref::<InLibrary>().map(|l| l.0.clone())
}
