//! Where a blob is stored: `ObjectKey::blob(owner, key)` for any owner id
//! and any key a caller sends. Whatever the key (`..`, `/`, NUL, a
//! thousand bytes), the object's path is `blobs/<owner>/<hash>`: three
//! plain segments inside the store, never a path of the caller's making.
#![no_main]

use libfuzzer_sys::fuzz_target;
use valbox_objects::ObjectKey;

fuzz_target!(|data: &[u8]| {
    // The first byte says where the owner id ends and the key begins.
    let Some((&split, rest)) = data.split_first() else {
        return;
    };
    let split = usize::from(split).min(rest.len());
    let (Ok(owner), Ok(key)) = (
        std::str::from_utf8(&rest[..split]),
        std::str::from_utf8(&rest[split..]),
    ) else {
        return;
    };
    let object = ObjectKey::blob(owner, key);
    let path = object.as_str();
    let segments: Vec<&str> = path.split('/').collect();
    assert_eq!(segments.len(), 3, "{path:?}");
    assert_eq!(segments[0], "blobs");
    for segment in &segments {
        assert!(is_plain(segment), "{path:?}");
    }
    // The key never shows through: it is always hashed.
    assert_eq!(segments[2].len(), 64);
    assert!(segments[2].bytes().all(|b| b.is_ascii_hexdigit()));
    assert_eq!(ObjectKey::blob(owner, key), object);
    let mut shorter = key.chars();
    if shorter.next().is_some() {
        assert_ne!(ObjectKey::blob(owner, shorter.as_str()), object);
    }
    let component = ObjectKey::component(key);
    let name = component.as_str().strip_prefix("components/").unwrap();
    let stem = name.strip_suffix(".wasm").unwrap();
    assert!(is_plain(stem), "{name:?}");
});

/// A name that is one path segment everywhere: not empty, not `.` or
/// `..`, only ASCII letters, digits, `-` and `_`.
fn is_plain(segment: &str) -> bool {
    !segment.is_empty()
        && segment != "."
        && segment != ".."
        && segment
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}
