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
use wasmtime::component::types::{ComponentFunc, ComponentInstance, ComponentItem, Type};
use wasmtime::component::{Component, ComponentExportIndex, Instance, InstancePre, Linker, Val};
use wasmtime::{Engine, Store, StoreContextMut};

use super::{CallState, UploadError};

/// Interfaces the platform answers itself: its own and WASI 0.2.
const PLATFORM_PREFIX: &str = "valbox:platform/";
const WASI_PREFIX: &str = "wasi:";

/// The embedder's per-call host state, as libraries need it.
pub trait Host: Send + Sized + 'static {
    /// What the embedder knows of a library's view (its grants).
    type View: Send + Sync + 'static;

    /// The host state that the library `label` runs on in this call.
    fn library(&self, label: &str, view: &Self::View) -> Self;
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

/// A component's imports that only a library can answer.
pub(super) fn library_imports(
    engine: &Engine,
    component: &Component,
) -> Vec<(String, ComponentItem)> {
    component
        .component_type()
        .imports(engine)
        .filter(|(name, _)| !name.starts_with(PLATFORM_PREFIX) && !name.starts_with(WASI_PREFIX))
        .map(|(name, item)| (name.to_string(), item.ty))
        .collect()
}

/// For each library import of `component`, the index of the one library
/// in `libraries` (label, component) that exports it with the same type.
/// Every library must answer at least one import.
pub(super) fn match_imports(
    engine: &Engine,
    component: &Component,
    libraries: &[(&str, &Component)],
) -> Result<Vec<(String, ComponentInstance, usize)>, UploadError> {
    let mut matches = Vec::new();
    for (name, item) in library_imports(engine, component) {
        let ComponentItem::ComponentInstance(wanted) = item else {
            return Err(UploadError::UnsupportedImport(format!(
                "`{name}` is not an interface; vals and libraries share whole interfaces"
            )));
        };
        let offered: Vec<(usize, ComponentInstance)> = libraries
            .iter()
            .enumerate()
            .filter_map(
                |(i, (_, lib))| match lib.component_type().get_export(engine, &name) {
                    Some(e) => match e.ty {
                        ComponentItem::ComponentInstance(ty) => Some((i, ty)),
                        _ => None,
                    },
                    None => None,
                },
            )
            .collect();
        let (index, exported) = match offered.as_slice() {
            // With no library named, it is simply not something we provide.
            [] if libraries.is_empty() => {
                return Err(UploadError::UnsupportedImport(format!("`{name}`")));
            }
            [] => return Err(UploadError::UnmatchedImport(name)),
            [one] => one.clone(),
            many => {
                let labels = many
                    .iter()
                    .map(|(i, _)| libraries[*i].0.to_string())
                    .collect();
                return Err(UploadError::AmbiguousImport(name, labels));
            }
        };
        same_interface(engine, &wanted, &exported).map_err(|detail| {
            UploadError::MismatchedImport {
                import: name.clone(),
                library: libraries[index].0.to_string(),
                detail,
            }
        })?;
        matches.push((name, wanted, index));
    }
    for (i, (label, _)) in libraries.iter().enumerate() {
        if !matches.iter().any(|(_, _, m)| *m == i) {
            return Err(UploadError::UnusedLibrary(label.to_string()));
        }
    }
    Ok(matches)
}

/// Whether the interface a caller imports is the one a library exports:
/// every function it asks for, with the same parameter and result types,
/// holding only plain values.
fn same_interface(
    engine: &Engine,
    wanted: &ComponentInstance,
    exported: &ComponentInstance,
) -> Result<(), String> {
    for (name, item) in wanted.exports(engine) {
        match item.ty {
            ComponentItem::ComponentFunc(want) => {
                let have = match exported.get_export(engine, name).map(|e| e.ty) {
                    Some(ComponentItem::ComponentFunc(f)) => f,
                    _ => return Err(format!("the library has no function `{name}`")),
                };
                same_function(&want, &have).map_err(|e| format!("`{name}`: {e}"))?;
            }
            ComponentItem::Type(ty) if plain(&ty) => {}
            ComponentItem::Type(_) | ComponentItem::Resource(_) => {
                return Err(format!(
                    "`{name}` is or holds a resource; libraries share plain values only \
                     (strings, numbers, lists, records, variants, options, results)"
                ));
            }
            _ => return Err(format!("`{name}` is not a function or a type")),
        }
    }
    Ok(())
}

fn same_function(want: &ComponentFunc, have: &ComponentFunc) -> Result<(), String> {
    let want_params: Vec<Type> = want.params().map(|(_, t)| t).collect();
    let have_params: Vec<Type> = have.params().map(|(_, t)| t).collect();
    let want_results: Vec<Type> = want.results().collect();
    let have_results: Vec<Type> = have.results().collect();
    if let Some(t) = want_params.iter().chain(&want_results).find(|t| !plain(t)) {
        return Err(format!(
            "its type holds `{}`; libraries share plain values only",
            wit_name(t)
        ));
    }
    if want_params != have_params {
        return Err(format!(
            "the caller passes ({}), the library takes ({})",
            describe(&want_params),
            describe(&have_params)
        ));
    }
    if want_results != have_results {
        return Err(format!(
            "the caller expects ({}), the library returns ({})",
            describe(&want_results),
            describe(&have_results)
        ));
    }
    if want.async_() != have.async_() {
        return Err("one side is async, the other is not".into());
    }
    Ok(())
}

fn describe(types: &[Type]) -> String {
    types.iter().map(wit_name).collect::<Vec<_>>().join(", ")
}

/// A type as WIT writes it, for error messages.
fn wit_name(ty: &Type) -> String {
    let list = |types: Vec<String>| types.join(", ");
    let opt = |t: Option<Type>| t.map_or("_".to_string(), |t| wit_name(&t));
    match ty {
        Type::Bool => "bool".into(),
        Type::S8 => "s8".into(),
        Type::U8 => "u8".into(),
        Type::S16 => "s16".into(),
        Type::U16 => "u16".into(),
        Type::S32 => "s32".into(),
        Type::U32 => "u32".into(),
        Type::S64 => "s64".into(),
        Type::U64 => "u64".into(),
        Type::Float32 => "f32".into(),
        Type::Float64 => "f64".into(),
        Type::Char => "char".into(),
        Type::String => "string".into(),
        Type::List(l) => format!("list<{}>", wit_name(&l.ty())),
        Type::Option(o) => format!("option<{}>", wit_name(&o.ty())),
        Type::Result(r) => format!("result<{}, {}>", opt(r.ok()), opt(r.err())),
        Type::Tuple(t) => format!("tuple<{}>", list(t.types().map(|t| wit_name(&t)).collect())),
        Type::Record(r) => format!(
            "record {{ {} }}",
            list(
                r.fields()
                    .map(|f| format!("{}: {}", f.name, wit_name(&f.ty)))
                    .collect()
            )
        ),
        Type::Variant(v) => format!(
            "variant {{ {} }}",
            list(
                v.cases()
                    .map(|c| match c.ty {
                        Some(t) => format!("{}({})", c.name, wit_name(&t)),
                        None => c.name.to_string(),
                    })
                    .collect()
            )
        ),
        Type::Enum(e) => format!("enum {{ {} }}", list(e.names().map(String::from).collect())),
        Type::Flags(f) => format!(
            "flags {{ {} }}",
            list(f.names().map(String::from).collect())
        ),
        Type::Own(_) | Type::Borrow(_) => "a resource".into(),
        Type::Future(_) => "a future".into(),
        Type::Stream(_) => "a stream".into(),
        _ => "a type of the component model's newer features".into(),
    }
}

/// A type made of values only: no resources, futures or streams, which
/// would tie one store's state to the other's.
fn plain(ty: &Type) -> bool {
    match ty {
        Type::List(l) => plain(&l.ty()),
        Type::FixedLengthList(l) => plain(&l.ty()),
        Type::Map(m) => plain(&m.key()) && plain(&m.value()),
        Type::Record(r) => r.fields().all(|f| plain(&f.ty)),
        Type::Tuple(t) => t.types().all(|t| plain(&t)),
        Type::Variant(v) => v.cases().all(|c| c.ty.as_ref().is_none_or(plain)),
        Type::Option(o) => plain(&o.ty()),
        Type::Result(r) => r.ok().as_ref().is_none_or(plain) && r.err().as_ref().is_none_or(plain),
        Type::Own(_) | Type::Borrow(_) | Type::Future(_) | Type::Stream(_) | Type::ErrorContext => {
            false
        }
        _ => true,
    }
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
