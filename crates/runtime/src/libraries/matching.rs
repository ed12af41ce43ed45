//! Which library answers which import: by interface name, and by the
//! same functions with the same types, holding only plain values.

use wasmtime::Engine;
use wasmtime::component::Component;
use wasmtime::component::types::{ComponentFunc, ComponentInstance, ComponentItem, Type};

use super::{PLATFORM_PREFIX, WASI_PREFIX};
use crate::UploadError;

/// A component's imports that only a library can answer.
pub(crate) fn library_imports(
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
pub(crate) fn match_imports(
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
