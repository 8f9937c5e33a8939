//! TLS for the admission endpoints: a certificate that follows its files without a restart, and optional client
//! certificate checking.
//!
//! In: the PEM paths of `--tls-cert`, `--tls-key` and `--client-ca`. Out: a rustls [`ServerConfig`] whose
//! certificate resolver re-reads both files on every handshake and swaps to the new pair once it parses and
//! matches. Reading by path on each handshake follows Kubernetes' `..data` symlink swap of Secret volumes, which
//! inotify on the old file would miss; a half-swapped pair (new cert, old key) is refused and the last good pair
//! keeps serving until the next handshake sees both files updated.

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert, WebPkiClientVerifier};
use rustls::sign::CertifiedKey;
use rustls::{RootCertStore, ServerConfig};

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot read {what} {path}: {source}")]
    Read {
        what: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "{what} {path} holds no PEM {expected}; pass a PEM file (kubernetes.io/tls Secrets hold tls.crt and tls.key)"
    )]
    Empty {
        what: &'static str,
        path: PathBuf,
        expected: &'static str,
    },
    #[error("certificate {cert} and key {key} do not form a usable pair: {source}")]
    Pair {
        cert: PathBuf,
        key: PathBuf,
        #[source]
        source: rustls::Error,
    },
    #[error("client CA bundle {path} is not usable: {message}")]
    ClientCa { path: PathBuf, message: String },
    #[error("TLS configuration rejected: {0}")]
    Config(#[source] rustls::Error),
}

fn read(what: &'static str, path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|source| TlsError::Read {
        what,
        path: path.to_path_buf(),
        source,
    })
}

fn parse_certs(
    what: &'static str,
    path: &Path,
    pem: &[u8],
) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let certs: Vec<_> = rustls_pemfile::certs(&mut &pem[..])
        .filter_map(Result::ok)
        .collect();
    if certs.is_empty() {
        return Err(TlsError::Empty {
            what,
            path: path.to_path_buf(),
            expected: "CERTIFICATE",
        });
    }
    Ok(certs)
}

fn parse_pair(
    cert_path: &Path,
    key_path: &Path,
    cert_pem: &[u8],
    key_pem: &[u8],
    provider: &CryptoProvider,
) -> Result<CertifiedKey, TlsError> {
    let certs = parse_certs("certificate", cert_path, cert_pem)?;
    let key: PrivateKeyDer<'static> = rustls_pemfile::private_key(&mut &key_pem[..])
        .ok()
        .flatten()
        .ok_or_else(|| TlsError::Empty {
            what: "key",
            path: key_path.to_path_buf(),
            expected: "PRIVATE KEY",
        })?;
    CertifiedKey::from_der(certs, key, provider).map_err(|source| TlsError::Pair {
        cert: cert_path.to_path_buf(),
        key: key_path.to_path_buf(),
        source,
    })
}

struct Loaded {
    cert_pem: Vec<u8>,
    key_pem: Vec<u8>,
    key: Arc<CertifiedKey>,
}

/// Serves the pair currently in the files, falling back to the last good one.
pub struct ReloadingCert {
    cert_path: PathBuf,
    key_path: PathBuf,
    provider: Arc<CryptoProvider>,
    current: RwLock<Arc<Loaded>>,
}

impl std::fmt::Debug for ReloadingCert {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReloadingCert")
            .field("cert", &self.cert_path)
            .field("key", &self.key_path)
            .finish()
    }
}

impl ReloadingCert {
    /// Loads the pair once; a pair that does not load now is a start-up error.
    pub fn load(
        cert_path: &Path,
        key_path: &Path,
        provider: Arc<CryptoProvider>,
    ) -> Result<Self, TlsError> {
        let cert_pem = read("certificate", cert_path)?;
        let key_pem = read("key", key_path)?;
        let key = parse_pair(cert_path, key_path, &cert_pem, &key_pem, &provider)?;
        Ok(ReloadingCert {
            cert_path: cert_path.to_path_buf(),
            key_path: key_path.to_path_buf(),
            provider,
            current: RwLock::new(Arc::new(Loaded {
                cert_pem,
                key_pem,
                key: Arc::new(key),
            })),
        })
    }

    fn snapshot(&self) -> Arc<Loaded> {
        // A poisoned lock only means a panic elsewhere while swapping an Arc; the Arc inside is still whole.
        match self.current.read() {
            Ok(guard) => guard.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Re-reads the files and returns the pair to serve.
    pub fn current(&self) -> Arc<CertifiedKey> {
        let loaded = self.snapshot();
        let (Ok(cert_pem), Ok(key_pem)) = (
            std::fs::read(&self.cert_path),
            std::fs::read(&self.key_path),
        ) else {
            tracing::warn!(cert = %self.cert_path.display(), key = %self.key_path.display(),
                "cannot read the TLS files; serving the last good certificate");
            return loaded.key.clone();
        };
        if cert_pem == loaded.cert_pem && key_pem == loaded.key_pem {
            return loaded.key.clone();
        }
        match parse_pair(
            &self.cert_path,
            &self.key_path,
            &cert_pem,
            &key_pem,
            &self.provider,
        ) {
            Ok(key) => {
                let key = Arc::new(key);
                let next = Arc::new(Loaded {
                    cert_pem,
                    key_pem,
                    key: key.clone(),
                });
                match self.current.write() {
                    Ok(mut guard) => *guard = next,
                    Err(poisoned) => *poisoned.into_inner() = next,
                }
                tracing::info!(cert = %self.cert_path.display(), "serving a new TLS certificate");
                key
            }
            Err(err) => {
                // Usually a swap seen half-way; the next handshake reads both files again.
                tracing::warn!(error = %err, "new TLS files not usable yet; serving the last good certificate");
                loaded.key.clone()
            }
        }
    }
}

impl ResolvesServerCert for ReloadingCert {
    fn resolve(&self, _client_hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.current())
    }
}

/// Builds the server config: reloading certificate, HTTP/1.1 ALPN, and client certificates checked against
/// `client_ca` when given.
pub fn server_config(
    cert: &Path,
    key: &Path,
    client_ca: Option<&Path>,
) -> Result<(Arc<ServerConfig>, Arc<ReloadingCert>), TlsError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let resolver = Arc::new(ReloadingCert::load(cert, key, provider.clone())?);
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(TlsError::Config)?;
    let builder = match client_ca {
        Some(path) => {
            let pem = read("client CA bundle", path)?;
            let mut roots = RootCertStore::empty();
            for cert in parse_certs("client CA bundle", path, &pem)? {
                roots.add(cert).map_err(|e| TlsError::ClientCa {
                    path: path.to_path_buf(),
                    message: e.to_string(),
                })?;
            }
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
                .build()
                .map_err(|e| TlsError::ClientCa {
                    path: path.to_path_buf(),
                    message: e.to_string(),
                })?;
            builder.with_client_cert_verifier(verifier)
        }
        None => builder.with_no_client_auth(),
    };
    let mut config = builder.with_cert_resolver(resolver.clone());
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok((Arc::new(config), resolver))
}
