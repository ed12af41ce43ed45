//! Linking a compiled component: its library imports forwarded to the
//! libraries that answer them, and its handler found by its exports.

use std::sync::Arc;

use wasmtime::component::Component;

use crate::bindings::cron::CronValPre;
use crate::bindings::email_val::EmailValPre;
use crate::bindings::http::HttpValPre;
use crate::bindings::script::ScriptValPre;
use crate::libraries::{self, LoadedLibrary};
use valbox_model::ValKind;
use wasmtime_wasi_http::p2::bindings::ProxyPre;

use crate::{Handler, Host, LibraryPlan, Loaded, Runtime, UploadError, image_bytes, upload};

impl<H: Host> Runtime<H> {
    /// Link a compiled component and its libraries, learning its kind
    /// from its exports.
    pub(crate) fn link(
        &self,
        component: &Component,
        libraries: &[Arc<LibraryPlan<H::View>>],
    ) -> Result<(Loaded<H>, ValKind), UploadError> {
        let linked = self.link_libraries(component, libraries)?;
        let kind = upload::exported_kind(&self.engine, component)?;
        Ok((with_handler(kind, linked)?, kind))
    }

    /// Pre-link `component` with each of its library imports forwarded to
    /// the library that answers it, and those libraries linked in turn.
    pub(crate) fn link_libraries(
        &self,
        component: &Component,
        libraries: &[Arc<LibraryPlan<H::View>>],
    ) -> Result<LoadedLibrary<H>, UploadError> {
        let internal = |e: anyhow::Error| UploadError::Internal(format!("{e:#}"));
        let mut components = Vec::with_capacity(libraries.len());
        let mut loaded = Vec::with_capacity(libraries.len());
        let mut bytes = image_bytes(component);
        for library in libraries {
            let lib_component = self.component(&library.plan.sha256).map_err(internal)?;
            let linked = self.link_libraries(&lib_component, &library.plan.libraries)?;
            bytes += linked.bytes;
            components.push(lib_component);
            loaded.push(Arc::new(linked));
        }
        let labeled: Vec<(&str, &Component)> = libraries
            .iter()
            .zip(&components)
            .map(|(l, c)| (l.label.as_str(), c))
            .collect();
        let matches = libraries::match_imports(&self.engine, component, &labeled)?;
        let pre = if matches.is_empty() {
            self.linker.instantiate_pre(component)
        } else {
            let mut linker = self.linker.clone();
            for (name, ty, slot) in &matches {
                libraries::forward(
                    &self.engine,
                    &mut linker,
                    name,
                    ty,
                    &components[*slot],
                    *slot,
                )
                .map_err(internal)?;
            }
            linker.instantiate_pre(component)
        };
        let pre = pre.map_err(|e| UploadError::UnsupportedImport(format!("{e:#}")))?;
        Ok(LoadedLibrary {
            pre,
            libraries: loaded,
            bytes,
        })
    }
}

/// A linked component as a val of `kind`, ready to call its handler.
pub(crate) fn with_handler<H: Host>(
    kind: ValKind,
    linked: LoadedLibrary<H>,
) -> Result<Loaded<H>, UploadError> {
    let LoadedLibrary {
        pre,
        libraries,
        bytes,
    } = linked;
    let no_handler = |e: wasmtime::Error| UploadError::NoHandler(format!("{e:#}"));
    let handler = match kind {
        // The platform's handler, or else the standard one.
        ValKind::Http => match HttpValPre::new(pre.clone()) {
            Ok(pre) => Handler::Http(pre),
            Err(_) => Handler::WasiHttp(ProxyPre::new(pre).map_err(no_handler)?),
        },
        ValKind::Script => Handler::Script(ScriptValPre::new(pre).map_err(no_handler)?),
        ValKind::Cron => Handler::Cron(CronValPre::new(pre).map_err(no_handler)?),
        ValKind::Email => Handler::Email(EmailValPre::new(pre).map_err(no_handler)?),
        ValKind::Library => return Err(UploadError::NoHandler("it is a library".into())),
    };
    Ok(Loaded {
        handler,
        libraries,
        bytes,
    })
}
