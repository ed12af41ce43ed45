//! Encryption of secrets (env var values) at rest with ChaCha20-Poly1305.
//! The key lives in `secret.key` in the data dir, created on first start
//! with mode 0600. Each value is bound to its val and name (associated
//! data), so a ciphertext copied to another row fails to decrypt.

use std::fs;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use anyhow::{Context, bail};
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce};

#[derive(Clone)]
pub struct SecretBox {
    cipher: ChaCha20Poly1305,
}

impl SecretBox {
    /// Load the key from `path`, creating it on first start.
    pub fn load_or_create(path: &Path) -> anyhow::Result<Self> {
        if !path.exists() {
            let mut key = [0u8; 32];
            getrandom::fill(&mut key).context("the OS random number generator failed")?;
            let tmp = path.with_extension("tmp");
            let mut file = fs::OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .mode(0o600)
                .open(&tmp)?;
            file.write_all(&key)?;
            file.sync_all()?;
            fs::rename(&tmp, path)?;
        }
        let key = fs::read(path).with_context(|| format!("reading {}", path.display()))?;
        if key.len() != 32 {
            bail!("{} must hold exactly 32 bytes", path.display());
        }
        Ok(Self {
            cipher: ChaCha20Poly1305::new(Key::from_slice(&key)),
        })
    }

    /// Returns `(nonce, ciphertext)`.
    pub fn seal(&self, plaintext: &[u8], context: &str) -> anyhow::Result<(Vec<u8>, Vec<u8>)> {
        let mut nonce = [0u8; 12];
        getrandom::fill(&mut nonce).context("the OS random number generator failed")?;
        let sealed = self
            .cipher
            .encrypt(
                Nonce::from_slice(&nonce),
                Payload {
                    msg: plaintext,
                    aad: context.as_bytes(),
                },
            )
            .map_err(|_| anyhow::anyhow!("encryption failed"))?;
        Ok((nonce.to_vec(), sealed))
    }

    pub fn open(&self, nonce: &[u8], sealed: &[u8], context: &str) -> anyhow::Result<Vec<u8>> {
        if nonce.len() != 12 {
            bail!("stored nonce has the wrong length");
        }
        self.cipher
            .decrypt(
                Nonce::from_slice(nonce),
                Payload {
                    msg: sealed,
                    aad: context.as_bytes(),
                },
            )
            .map_err(|_| {
                anyhow::anyhow!("a stored secret failed to decrypt (wrong key or tampered)")
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_context_binding() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("secret.key");
        let sb = SecretBox::load_or_create(&path).unwrap();
        let (nonce, ct) = sb.seal(b"hunter2", "val1/PASSWORD").unwrap();
        assert!(!ct.windows(7).any(|w| w == b"hunter2"));
        // The key persists: a second load opens what the first sealed.
        let again = SecretBox::load_or_create(&path).unwrap();
        assert_eq!(
            again.open(&nonce, &ct, "val1/PASSWORD").unwrap(),
            b"hunter2"
        );
        assert!(again.open(&nonce, &ct, "val2/PASSWORD").is_err());
    }
}
