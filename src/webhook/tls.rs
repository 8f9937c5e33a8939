//! TLS for the admission endpoints: a certificate and a client CA bundle that follow their files without a
//! restart.
//!
//! In: the PEM paths of `--tls-cert`, `--tls-key` and `--client-ca`. Out: a rustls [`ServerConfig`] whose
//! certificate resolver re-reads both files on every handshake and swaps to the new pair once it parses and
//! matches, and (with `--client-ca`) whose client verifier re-reads the bundle on every handshake that presents a
//! certificate and swaps to it once it parses. Reading by path on each handshake follows Kubernetes' `..data`
//! symlink swap of Secret volumes, which inotify on the old file would miss; a half-swapped pair (new cert, old
//! key) or an unusable bundle is refused and the last good one stays in force.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};

use rustls::client::danger::HandshakeSignatureValid;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::server::{ClientHello, ResolvesServerCert, WebPkiClientVerifier};
use rustls::sign::CertifiedKey;
use rustls::{
    DigitallySignedStruct, DistinguishedName, RootCertStore, ServerConfig, SignatureScheme,
};

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

/// The value behind `lock`. A poisoned lock only means a panic elsewhere while swapping an Arc; the Arc inside is
/// still whole.
fn snapshot<T: ?Sized>(lock: &RwLock<Arc<T>>) -> Arc<T> {
    match lock.read() {
        Ok(guard) => guard.clone(),
        Err(poisoned) => poisoned.into_inner().clone(),
    }
}

fn replace<T: ?Sized>(lock: &RwLock<Arc<T>>, next: Arc<T>) {
    match lock.write() {
        Ok(mut guard) => *guard = next,
        Err(poisoned) => *poisoned.into_inner() = next,
    }
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

    /// Re-reads the files and returns the pair to serve.
    pub fn current(&self) -> Arc<CertifiedKey> {
        let loaded = snapshot(&self.current);
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
                replace(&self.current, next);
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

/// A verifier for client certificates signed by a CA of the bundle `pem`. It hints no CA names to clients: rustls
/// borrows the hints from the long-lived outer verifier, so they could not follow a swapped bundle, and a stale
/// hint is worse than none: a client whose certificate's issuer is not among the hinted names may send no
/// certificate at all (Go's crypto/tls chooses among its certificates that way). Without hints, a client sends the
/// certificate it has.
fn client_verifier(
    path: &Path,
    pem: &[u8],
    provider: &Arc<CryptoProvider>,
) -> Result<Arc<dyn ClientCertVerifier>, TlsError> {
    let unusable = |message: String| TlsError::ClientCa {
        path: path.to_path_buf(),
        message,
    };
    let mut roots = RootCertStore::empty();
    for cert in parse_certs("client CA bundle", path, pem)? {
        roots.add(cert).map_err(|e| unusable(e.to_string()))?;
    }
    WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone())
        .clear_root_hint_subjects()
        .build()
        .map_err(|e| unusable(e.to_string()))
}

struct LoadedCa {
    pem: Vec<u8>,
    verifier: Arc<dyn ClientCertVerifier>,
}

/// Verifies client certificates against the CA bundle currently in the file, falling back to the last good one.
pub struct ReloadingClientCa {
    path: PathBuf,
    provider: Arc<CryptoProvider>,
    current: RwLock<Arc<LoadedCa>>,
    /// The last bundle refused, so that a bad file is logged once, not on every handshake.
    refused: Mutex<Option<Vec<u8>>>,
}

impl std::fmt::Debug for ReloadingClientCa {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReloadingClientCa")
            .field("path", &self.path)
            .finish()
    }
}

impl ReloadingClientCa {
    /// Loads the bundle once; a bundle that does not load now is a start-up error.
    pub fn load(path: &Path, provider: Arc<CryptoProvider>) -> Result<Self, TlsError> {
        let pem = read("client CA bundle", path)?;
        let verifier = client_verifier(path, &pem, &provider)?;
        Ok(ReloadingClientCa {
            path: path.to_path_buf(),
            provider,
            current: RwLock::new(Arc::new(LoadedCa { pem, verifier })),
            refused: Mutex::new(None),
        })
    }

    /// Re-reads the file and returns the verifier of the bundle in force.
    pub fn current(&self) -> Arc<dyn ClientCertVerifier> {
        let loaded = snapshot(&self.current);
        let pem = match std::fs::read(&self.path) {
            Ok(pem) => pem,
            Err(err) => {
                tracing::warn!(path = %self.path.display(), error = %err,
                    "cannot read the client CA bundle; keeping the last good one");
                return loaded.verifier.clone();
            }
        };
        if pem == loaded.pem {
            return loaded.verifier.clone();
        }
        match client_verifier(&self.path, &pem, &self.provider) {
            Ok(verifier) => {
                replace(
                    &self.current,
                    Arc::new(LoadedCa {
                        pem,
                        verifier: verifier.clone(),
                    }),
                );
                *self.refused.lock().unwrap_or_else(|p| p.into_inner()) = None;
                tracing::info!(path = %self.path.display(), "verifying clients against a new CA bundle");
                verifier
            }
            Err(err) => {
                let mut refused = self.refused.lock().unwrap_or_else(|p| p.into_inner());
                if refused.as_deref() != Some(pem.as_slice()) {
                    tracing::warn!(error = %err, "new client CA bundle refused; keeping the last good one");
                    *refused = Some(pem);
                }
                loaded.verifier.clone()
            }
        }
    }
}

impl ClientCertVerifier for ReloadingClientCa {
    fn client_auth_mandatory(&self) -> bool {
        true
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        // See `client_verifier`: no hints.
        &[]
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        self.current()
            .verify_client_cert(end_entity, intermediates, now)
    }

    // The signature checks depend on the crypto provider only, never on the bundle: no re-read.
    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        snapshot(&self.current)
            .verifier
            .verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        snapshot(&self.current)
            .verifier
            .verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        snapshot(&self.current).verifier.supported_verify_schemes()
    }
}

/// Builds the server config: reloading certificate, HTTP/1.1 ALPN, and client certificates checked against the
/// reloading bundle `client_ca` when given.
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
            builder.with_client_cert_verifier(Arc::new(ReloadingClientCa::load(path, provider)?))
        }
        None => builder.with_no_client_auth(),
    };
    let mut config = builder.with_cert_resolver(resolver.clone());
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok((Arc::new(config), resolver))
}
