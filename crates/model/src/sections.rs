//! Custom sections of a component that hold lines of text, anywhere in it
//! (a Rust val's are in its core module), joined in order; and the
//! instances it exports. Read with wasmparser alone, before any compile.

use wasmparser::{Parser, Payload};

/// The non-empty lines of every custom section named `name` in `bytes`.
pub fn section_lines(bytes: &[u8], name: &str) -> Result<Vec<String>, String> {
    let mut lines = Vec::new();
    for payload in Parser::new(0).parse_all(bytes) {
        let payload = payload.map_err(|e| e.to_string())?;
        if let Payload::CustomSection(section) = payload
            && section.name() == name
        {
            let text = std::str::from_utf8(section.data())
                .map_err(|_| format!("the `{name}` section is not UTF-8"))?;
            lines.extend(
                text.lines()
                    .map(str::trim)
                    .filter(|l| !l.is_empty())
                    .map(String::from),
            );
        }
    }
    Ok(lines)
}

/// How many instances (interfaces) the component exports at its top level,
/// read without compiling it: a val exports a handler or, as a library,
/// interfaces of its own, so a component exporting none can be refused
/// before it costs a compile.
pub fn exported_instances(bytes: &[u8]) -> Result<usize, String> {
    use wasmparser::ComponentExternalKind;
    let (mut depth, mut instances) = (0usize, 0);
    for payload in Parser::new(0).parse_all(bytes) {
        match payload.map_err(|e| e.to_string())? {
            Payload::ModuleSection { .. } | Payload::ComponentSection { .. } => depth += 1,
            Payload::End(_) => depth = depth.saturating_sub(1),
            Payload::ComponentExportSection(exports) if depth == 0 => {
                for export in exports {
                    let export = export.map_err(|e| e.to_string())?;
                    instances += usize::from(export.kind == ComponentExternalKind::Instance);
                }
            }
            _ => {}
        }
    }
    Ok(instances)
}
