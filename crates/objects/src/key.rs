//! Where an object lives in the store. Keys are made only here, from
//! segments that are plain names, so no user input (a blob key with `/`
//! or `..`, say) can name another object or a path outside the store.

use sha2::{Digest, Sha256};

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ObjectKey(String);

impl ObjectKey {
    /// One of an owner's blobs: named by the hash of its key.
    pub fn blob(owner_id: &str, key: &str) -> Self {
        Self(format!("blobs/{}/{}", segment(owner_id), hash(key)))
    }

    /// An uploaded component, by the SHA-256 of its bytes.
    pub fn component(sha256: &str) -> Self {
        Self(format!("components/{}.wasm", segment(sha256)))
    }

    /// The path inside the store: `/`-separated plain names.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

fn hash(s: &str) -> String {
    hex::encode(Sha256::digest(s.as_bytes()))
}

/// `s` where it is a plain name (the ids and hashes we make always are),
/// else its hash.
fn segment(s: &str) -> String {
    let plain = !s.is_empty()
        && s.len() <= 128
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if plain { s.to_owned() } else { hash(s) }
}

#[cfg(test)]
mod tests {
    use super::ObjectKey;

    #[test]
    fn no_input_escapes_its_place() {
        let key = ObjectKey::blob("../etc", "../../passwd");
        let parts: Vec<_> = key.as_str().split('/').collect();
        assert_eq!(parts.len(), 3);
        assert!(parts.iter().all(|p| !p.contains("..") && !p.is_empty()));
        assert_eq!(
            ObjectKey::blob("u1", "a/b").as_str(),
            format!("blobs/u1/{}", super::hash("a/b"))
        );
        assert!(
            ObjectKey::component("x/y")
                .as_str()
                .starts_with("components/")
        );
    }
}
