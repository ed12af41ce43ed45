//! The readers of a component's custom sections and top-level exports
//! live in `valbox-model` (they need only wasmparser), so the fuzz targets
//! reach them without building wasmtime.

pub use valbox_model::sections::{exported_instances, section_lines};
