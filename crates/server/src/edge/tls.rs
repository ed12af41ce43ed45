//! HTTPS at the edge: rustls with a certificate chain and key read from
//! PEM files, read again when either file changes, so a renewed
//! certificate is served without a restart. ALPN offers HTTP/2 first,
//! then HTTP/1.1.

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock, Weak};
use std::time::{Duration, SystemTime};

use anyhow::{Context, bail};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use tokio_rustls::TlsAcceptor;

/// Where the certificate chain and its private key are.
#[derive(Clone, Debug)]
pub struct TlsFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// How often the files are checked for a change.
const RELOAD_CHECK: Duration = Duration::from_secs(1);

/// An HTTPS acceptor serving the files' certificate, and a task that
/// reloads it when they change, for as long as the acceptor lives.
pub fn acceptor(files: &TlsFiles) -> anyhow::Result<TlsAcceptor> {
    acceptor_offering(files, &[b"h2", b"http/1.1"])
}

/// [`acceptor`] offering the ALPN protocols `alpn` (none for SMTP).
pub fn acceptor_offering(files: &TlsFiles, alpn: &[&[u8]]) -> anyhow::Result<TlsAcceptor> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let cert = Arc::new(ReloadingCert::load(files.clone(), provider.clone())?);
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .context("setting up TLS")?
        .with_no_client_auth()
        .with_cert_resolver(cert.clone());
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    watch(Arc::downgrade(&cert));
    Ok(TlsAcceptor::from(Arc::new(config)))
}

/// The certificate to serve, swapped when the files change. A change that
/// does not load (a half-written file, a key that does not match) is
/// logged and the certificate in use stays.
struct ReloadingCert {
    files: TlsFiles,
    provider: Arc<CryptoProvider>,
    current: RwLock<(Arc<CertifiedKey>, Stamp)>,
}

impl std::fmt::Debug for ReloadingCert {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReloadingCert")
            .field("files", &self.files)
            .finish()
    }
}

impl ResolvesServerCert for ReloadingCert {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(
            self.current
                .read()
                .unwrap_or_else(|p| p.into_inner())
                .0
                .clone(),
        )
    }
}

impl ReloadingCert {
    fn load(files: TlsFiles, provider: Arc<CryptoProvider>) -> anyhow::Result<Self> {
        let stamp = Stamp::of(&files);
        let key = read_key_pair(&files, &provider)?;
        Ok(Self {
            files,
            provider,
            current: RwLock::new((Arc::new(key), stamp)),
        })
    }

    /// Load the files again if they changed since last read.
    fn reload_if_changed(&self) {
        let stamp = Stamp::of(&self.files);
        if stamp == self.current.read().unwrap_or_else(|p| p.into_inner()).1 {
            return;
        }
        match read_key_pair(&self.files, &self.provider) {
            Ok(key) => {
                *self.current.write().unwrap_or_else(|p| p.into_inner()) = (Arc::new(key), stamp);
                tracing::info!(
                    "TLS certificate reloaded from {}",
                    self.files.cert.display()
                );
            }
            // Retried at the next check: the stamp in use is not updated.
            Err(e) => tracing::warn!("TLS certificate changed but did not load: {e:#}"),
        }
    }
}

/// What tells a file changed: its modification time, size and inode (a
/// renewal tool may write a new file and rename or re-link it).
#[derive(Clone, Debug, PartialEq, Eq)]
struct Stamp(Vec<Option<(SystemTime, u64, u64)>>);

impl Stamp {
    fn of(files: &TlsFiles) -> Self {
        use std::os::unix::fs::MetadataExt;
        let of = |path: &Path| {
            let m = std::fs::metadata(path).ok()?;
            Some((m.modified().ok()?, m.len(), m.ino()))
        };
        Self(vec![of(&files.cert), of(&files.key)])
    }
}

fn watch(cert: Weak<ReloadingCert>) {
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(RELOAD_CHECK).await;
            let Some(cert) = cert.upgrade() else { return };
            // File reads stay off the async workers.
            let _ = tokio::task::spawn_blocking(move || cert.reload_if_changed()).await;
        }
    });
}

fn read_key_pair(files: &TlsFiles, provider: &CryptoProvider) -> anyhow::Result<CertifiedKey> {
    let certs = CertificateDer::pem_file_iter(&files.cert)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .with_context(|| format!("reading certificates from {}", files.cert.display()))?;
    if certs.is_empty() {
        bail!(
            "{} holds no certificate: give a PEM file with the server's certificate \
             (and its intermediates) as `BEGIN CERTIFICATE` blocks",
            files.cert.display()
        );
    }
    let key = PrivateKeyDer::from_pem_file(&files.key).with_context(|| {
        format!(
            "reading a private key from {} (a PEM `BEGIN PRIVATE KEY`, `BEGIN RSA PRIVATE KEY` \
             or `BEGIN EC PRIVATE KEY` block)",
            files.key.display()
        )
    })?;
    let signing = provider
        .key_provider
        .load_private_key(key)
        .with_context(|| format!("loading the private key in {}", files.key.display()))?;
    let pair = CertifiedKey::new(certs, signing);
    // A key whose public half rustls cannot tell is let through: the
    // handshake fails later if it does not match.
    let checked = match pair.keys_match() {
        Err(rustls::Error::InconsistentKeys(rustls::InconsistentKeys::Unknown)) => Ok(()),
        other => other,
    };
    checked.with_context(|| {
        format!(
            "the key in {} does not belong to the certificate in {}",
            files.key.display(),
            files.cert.display()
        )
    })?;
    Ok(pair)
}
