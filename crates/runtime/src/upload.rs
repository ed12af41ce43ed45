//! Accepting an upload: check the bytes are a component, compile it, check
//! what it imports and exports, and store source and compiled artifact
//! durably before the deploy is acknowledged.

use std::fmt;
use std::sync::Arc;

use sha2::{Digest, Sha256};
use wasmtime::Engine;
use wasmtime::component::Component;
use wasmtime::component::types::ComponentItem;

use super::bindings::{CRON_EXPORT, EMAIL_EXPORT, HTTP_EXPORT, SCRIPT_EXPORT};
use valbox_model::ValKind;

use super::{Host, LibraryPlan, Runtime};
use crate::fsutil::write_atomic;
use crate::wasi_http::WASI_HTTP_EXPORT_PREFIX;

const WASM_MAGIC: &[u8] = b"\0asm";
const CORE_VERSION: &[u8] = &[1, 0, 0, 0];
const COMPONENT_VERSION: &[u8] = &[0x0d, 0, 1, 0];

#[derive(Debug)]
pub enum UploadError {
    NotWasm,
    CoreModule,
    Invalid(String),
    UnsupportedImport(String),
    /// An import that none of the named libraries exports.
    UnmatchedImport(String),
    /// An import that more than one named library exports.
    AmbiguousImport(String, Vec<String>),
    /// An import whose library exports it with another type.
    MismatchedImport {
        import: String,
        library: String,
        detail: String,
    },
    /// A named library that answers none of the imports.
    UnusedLibrary(String),
    NoHandler(String),
    Internal(String),
}

impl UploadError {
    pub fn code(&self) -> &'static str {
        match self {
            UploadError::NotWasm => "not_wasm",
            UploadError::CoreModule => "core_module",
            UploadError::Invalid(_) => "invalid_component",
            UploadError::UnsupportedImport(_) => "unsupported_import",
            UploadError::UnmatchedImport(_) => "unmatched_import",
            UploadError::AmbiguousImport(..) => "ambiguous_import",
            UploadError::MismatchedImport { .. } => "mismatched_import",
            UploadError::UnusedLibrary(_) => "unused_library",
            UploadError::NoHandler(_) => "no_handler",
            UploadError::Internal(_) => "internal",
        }
    }
}

impl fmt::Display for UploadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            UploadError::NotWasm => f.write_str(
                "the upload is not WebAssembly (no `\\0asm` header); upload the .wasm file that `cargo build --target wasm32-wasip2` produced",
            ),
            UploadError::CoreModule => f.write_str(
                "the upload is a core WebAssembly module, not a component; build with `--target wasm32-wasip2` (or wrap it with `wasm-tools component new`)",
            ),
            UploadError::Invalid(e) => write!(f, "the component does not validate: {e}"),
            UploadError::UnsupportedImport(e) => write!(
                f,
                "the component imports something Valbox does not provide ({e}); vals may import `valbox:platform` interfaces, WASI 0.2 (`wasi:http` included; sockets are refused when called), and interfaces of library vals named at deploy (`--dep USER/VAL[@N]`)"
            ),
            UploadError::UnmatchedImport(name) => write!(
                f,
                "the component imports `{name}`, which no library named at deploy exports; name the library val that exports it with `--dep USER/VAL[@N]` (`libraries` in the API)"
            ),
            UploadError::AmbiguousImport(name, labels) => write!(
                f,
                "the component imports `{name}`, which more than one named library exports ({}); name only one of them",
                labels.join(", ")
            ),
            UploadError::MismatchedImport {
                import,
                library,
                detail,
            } => write!(
                f,
                "the component imports `{import}` with another type than library `{library}` exports it ({detail}); regenerate the bindings from the library's WIT (GET /v2/vals/ID/versions/N/wit)"
            ),
            UploadError::UnusedLibrary(label) => write!(
                f,
                "library `{label}` was named at deploy, but the component imports none of its interfaces; drop it, or check the import's name and version"
            ),
            UploadError::NoHandler(e) => write!(
                f,
                "the component exports no Valbox handler ({e}); export `{HTTP_EXPORT}` (valbox_sdk::http_val!), `{SCRIPT_EXPORT}` (valbox_sdk::script_val!), `{CRON_EXPORT}` (valbox_sdk::cron_val!), `{EMAIL_EXPORT}` (valbox_sdk::email_val!), or the standard `wasi:http/incoming-handler@0.2.x` (the `wasi:http/proxy` world)"
            ),
            UploadError::Internal(e) => write!(f, "storing the component failed: {e}"),
        }
    }
}

/// A stored, validated component.
#[derive(Debug)]
pub struct Prepared {
    pub sha256: String,
    pub kind: ValKind,
    pub size: usize,
}

pub(super) fn exported_kind(
    engine: &Engine,
    component: &Component,
) -> Result<ValKind, UploadError> {
    let mut kinds = Vec::new();
    let mut interfaces = 0;
    for (name, item) in component.component_type().exports(engine) {
        if !matches!(item.ty, ComponentItem::ComponentInstance(_)) {
            continue;
        }
        match name {
            HTTP_EXPORT => kinds.push(ValKind::Http),
            SCRIPT_EXPORT => kinds.push(ValKind::Script),
            CRON_EXPORT => kinds.push(ValKind::Cron),
            EMAIL_EXPORT => kinds.push(ValKind::Email),
            name if name.starts_with(WASI_HTTP_EXPORT_PREFIX) => kinds.push(ValKind::Http),
            name if name.starts_with("wasi:http/handler@0.3") => {
                return Err(UploadError::NoHandler(format!(
                    "it exports `{name}`, WASI 0.3's handler, which Valbox does not run yet; \
                     build for WASI 0.2 (`wasi:http/proxy@0.2.x`)"
                )));
            }
            _ => interfaces += 1,
        }
    }
    match kinds.as_slice() {
        [kind] => Ok(*kind),
        // Only interfaces of its own: a library for other vals to import.
        [] if interfaces > 0 => Ok(ValKind::Library),
        [] => Err(UploadError::NoHandler("none found".into())),
        _ => Err(UploadError::NoHandler(
            "it exports more than one handler; a val is one kind: an HTTP, script, cron or email val".into(),
        )),
    }
}

impl<H: Host> Runtime<H> {
    /// Validate, compile and durably store an upload whose library imports
    /// `libraries` answer. CPU-heavy: runs on the blocking pool. With
    /// `reuse_stored`, bytes deployed before map their stored artifact
    /// instead of compiling again; a deploy should allow it only for bytes
    /// its owner deployed before, so that how fast a deploy is tells no
    /// one what others deployed.
    pub async fn prepare(
        self: &Arc<Self>,
        bytes: Vec<u8>,
        libraries: Vec<Arc<LibraryPlan<H::View>>>,
        reuse_stored: bool,
    ) -> Result<Prepared, UploadError> {
        if !bytes.starts_with(WASM_MAGIC) || bytes.len() < 8 {
            return Err(UploadError::NotWasm);
        }
        match &bytes[4..8] {
            v if v == CORE_VERSION => return Err(UploadError::CoreModule),
            v if v == COMPONENT_VERSION => {}
            _ => {
                return Err(UploadError::Invalid(
                    "unknown WebAssembly binary version".into(),
                ));
            }
        }
        let this = self.clone();
        tokio::task::spawn_blocking(move || {
            // What can be checked without compiling is checked first: a
            // refused upload should cost a parse, not a compile.
            match super::sections::exported_instances(&bytes) {
                Ok(0) => return Err(UploadError::NoHandler("none found".into())),
                Err(e) => return Err(UploadError::Invalid(e)),
                Ok(_) => {}
            }
            this.prepare_blocking(&bytes, libraries, reuse_stored)
        })
        .await
        .map_err(|e| UploadError::Internal(e.to_string()))?
    }

    fn prepare_blocking(
        &self,
        bytes: &[u8],
        libraries: Vec<Arc<LibraryPlan<H::View>>>,
        reuse_stored: bool,
    ) -> Result<Prepared, UploadError> {
        let sha256 = hex::encode(Sha256::digest(bytes));
        let stored = reuse_stored
            .then(|| self.stored_component(&sha256))
            .flatten();
        let fresh = stored.is_none();
        let component = match stored {
            Some(component) => component,
            None => Component::new(&self.engine, bytes)
                .map_err(|e| UploadError::Invalid(format!("{e:#}")))?,
        };
        let linked = self.link_libraries(&component, &libraries)?;
        let kind = exported_kind(&self.engine, &component)?;
        // A library is linked into its callers: only its imports are checked.
        if kind != ValKind::Library {
            crate::linking::with_handler(kind, linked)?;
        }
        if fresh {
            let store_err = |e: std::io::Error| UploadError::Internal(e.to_string());
            write_atomic(&self.wasm_path(&sha256), bytes).map_err(store_err)?;
            let compiled = component
                .serialize()
                .map_err(|e| UploadError::Internal(format!("{e:#}")))?;
            write_atomic(&self.compiled_path(&sha256), &compiled).map_err(store_err)?;
            // Not kept in memory: its first call maps the compiled artifact
            // from disk, file-backed memory the kernel may reclaim, where
            // this copy is anonymous memory held for as long as it is
            // cached. What compiling it allocated goes back to the system.
            drop((component, compiled));
            super::loaded::release_freed_memory();
        }
        Ok(Prepared {
            sha256,
            kind,
            size: bytes.len(),
        })
    }

    /// The component whose source hashes to `sha256`, when the same bytes
    /// were deployed before (to this val or another) and both the source
    /// and its compiled artifact are stored: a redeploy of an unchanged
    /// build then maps the artifact instead of compiling it again. Both
    /// files are written atomically and only after the component passed
    /// every check, and are never removed, so their presence is proof.
    fn stored_component(&self, sha256: &str) -> Option<Component> {
        if !self.wasm_path(sha256).is_file() {
            return None;
        }
        // SAFETY: as in `Runtime::component`: the artifact is one this
        // server serialised itself, named by the hash of its source, and
        // wasmtime checks it matches this engine's version and config.
        unsafe { Component::deserialize_file(&self.engine, self.compiled_path(sha256)) }.ok()
    }

    /// The uploaded bytes of a stored component, for downloads.
    pub fn component_bytes(&self, sha256: &str) -> std::io::Result<Vec<u8>> {
        std::fs::read(self.wasm_path(sha256))
    }
}
