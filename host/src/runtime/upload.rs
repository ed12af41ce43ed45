//! Accepting an upload: check the bytes are a component, compile it, check
//! what it imports and exports, and store source and compiled artifact
//! durably before the deploy is acknowledged.

use std::fmt;
use std::sync::Arc;

use sha2::{Digest, Sha256};
use wasmtime::Engine;
use wasmtime::component::Component;
use wasmtime::component::types::ComponentItem;

use super::bindings::{HTTP_EXPORT, SCRIPT_EXPORT};
use super::{Runtime, ValKind};
use crate::fsutil::write_atomic;

/// Interfaces a val may import: the platform's own and WASI 0.2. Which
/// WASI interfaces resolve is then decided by the linker itself.
const PLATFORM_PREFIX: &str = "valbox:platform/";
const WASI_PREFIX: &str = "wasi:";

const WASM_MAGIC: &[u8] = b"\0asm";
const CORE_VERSION: &[u8] = &[1, 0, 0, 0];
const COMPONENT_VERSION: &[u8] = &[0x0d, 0, 1, 0];

#[derive(Debug)]
pub enum UploadError {
    NotWasm,
    CoreModule,
    Invalid(String),
    UnsupportedImport(String),
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
                "the component imports something Valbox does not provide ({e}); vals may import only `valbox:platform` interfaces and WASI 0.2"
            ),
            UploadError::NoHandler(e) => write!(
                f,
                "the component exports no Valbox handler ({e}); export `{HTTP_EXPORT}` (valbox_sdk::http_val!) or `{SCRIPT_EXPORT}` (valbox_sdk::script_val!)"
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

pub(super) fn check_imports(engine: &Engine, component: &Component) -> Result<(), UploadError> {
    for (name, _) in component.component_type().imports(engine) {
        if !name.starts_with(PLATFORM_PREFIX) && !name.starts_with(WASI_PREFIX) {
            return Err(UploadError::UnsupportedImport(format!("`{name}`")));
        }
    }
    Ok(())
}

pub(super) fn exported_kind(
    engine: &Engine,
    component: &Component,
) -> Result<ValKind, UploadError> {
    let mut kinds = Vec::new();
    for (name, item) in component.component_type().exports(engine) {
        if !matches!(item.ty, ComponentItem::ComponentInstance(_)) {
            continue;
        }
        match name {
            HTTP_EXPORT => kinds.push(ValKind::Http),
            SCRIPT_EXPORT => kinds.push(ValKind::Script),
            _ => {}
        }
    }
    match kinds.as_slice() {
        [kind] => Ok(*kind),
        [] => Err(UploadError::NoHandler("none found".into())),
        _ => Err(UploadError::NoHandler(
            "it exports both handlers; a val is either an HTTP val or a script val".into(),
        )),
    }
}

impl<H: Send + 'static> Runtime<H> {
    /// Validate, compile and durably store an upload. CPU-heavy: runs on the
    /// blocking pool.
    pub async fn prepare(self: &Arc<Self>, bytes: Vec<u8>) -> Result<Prepared, UploadError> {
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
        tokio::task::spawn_blocking(move || this.prepare_blocking(&bytes))
            .await
            .map_err(|e| UploadError::Internal(e.to_string()))?
    }

    fn prepare_blocking(&self, bytes: &[u8]) -> Result<Prepared, UploadError> {
        let sha256 = hex::encode(Sha256::digest(bytes));
        let component = Component::new(&self.engine, bytes)
            .map_err(|e| UploadError::Invalid(format!("{e:#}")))?;
        let (loaded, kind) = self.link(&component)?;
        let store_err = |e: std::io::Error| UploadError::Internal(e.to_string());
        write_atomic(&self.wasm_path(&sha256), bytes).map_err(store_err)?;
        let compiled = component
            .serialize()
            .map_err(|e| UploadError::Internal(format!("{e:#}")))?;
        write_atomic(&self.compiled_path(&sha256), &compiled).map_err(store_err)?;
        self.remember(&sha256, loaded);
        Ok(Prepared {
            sha256,
            kind,
            size: bytes.len(),
        })
    }

    /// The uploaded bytes of a stored component, for downloads.
    pub fn component_bytes(&self, sha256: &str) -> std::io::Result<Vec<u8>> {
        std::fs::read(self.wasm_path(sha256))
    }
}
