//! Custom sections of a component that hold lines of text, anywhere in it
//! (a Rust val's are in its core module), joined in order.

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
