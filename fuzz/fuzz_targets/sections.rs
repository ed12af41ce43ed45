//! The checks an upload passes before it is compiled: the declared-scope
//! and fetch-host sections (`valbox_model::sections::section_lines`, then
//! `Scopes::parse`) and the count of exported instances.
//!
//! The first byte chooses how the rest is used: as a whole upload, or as
//! the data of one custom section in an otherwise empty component, whose
//! lines must then come back exactly as `str::lines` splits them.
#![no_main]

use libfuzzer_sys::fuzz_target;
use valbox_model::Scopes;
use valbox_model::sections::{exported_instances, section_lines};

const SCOPES_SECTION: &str = "valbox:scopes";
const COMPONENT_HEADER: &[u8] = b"\0asm\x0d\0\x01\0";

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    if mode % 2 == 0 {
        check_upload(rest);
    } else {
        check_one_section(rest);
    }
});

/// Any bytes: a clean answer or a clean error, and lines fit to parse.
fn check_upload(bytes: &[u8]) {
    let _ = exported_instances(bytes);
    let Ok(lines) = section_lines(bytes, SCOPES_SECTION) else {
        return;
    };
    check_scopes(&lines);
}

/// A component holding one custom section whose data is `data`.
fn check_one_section(data: &[u8]) {
    let mut component = COMPONENT_HEADER.to_vec();
    component.push(0); // a custom section
    let name = SCOPES_SECTION.as_bytes();
    leb128(
        &mut component,
        leb128_len(name.len()) + name.len() + data.len(),
    );
    leb128(&mut component, name.len());
    component.extend_from_slice(name);
    component.extend_from_slice(data);

    assert_eq!(exported_instances(&component), Ok(0));
    let lines = section_lines(&component, SCOPES_SECTION);
    let Ok(text) = std::str::from_utf8(data) else {
        assert!(lines.is_err(), "a section that is not UTF-8 is refused");
        return;
    };
    let expected: Vec<String> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(String::from)
        .collect();
    let lines = lines.expect("a UTF-8 section is read");
    assert_eq!(lines, expected);
    assert_eq!(
        section_lines(&component, "valbox:fetch-hosts"),
        Ok(Vec::new())
    );
    check_scopes(&lines);
}

/// Lines as a deploy reads them: trimmed, non-empty, one line each; the
/// scopes they name, if all are known, written out and parsed again are
/// the same set.
fn check_scopes(lines: &[String]) {
    for line in lines {
        assert!(!line.is_empty() && !line.contains('\n'));
        assert_eq!(line.as_str(), line.trim());
    }
    if let Ok(scopes) = Scopes::parse(&lines.join(" ")) {
        assert_eq!(Scopes::parse(&scopes.to_string()), Ok(scopes));
    }
}

fn leb128(out: &mut Vec<u8>, mut n: usize) {
    loop {
        let byte = (n & 0x7f) as u8;
        n >>= 7;
        if n == 0 {
            out.push(byte);
            return;
        }
        out.push(byte | 0x80);
    }
}

fn leb128_len(n: usize) -> usize {
    let mut out = Vec::new();
    leb128(&mut out, n);
    out.len()
}
