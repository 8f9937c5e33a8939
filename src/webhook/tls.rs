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

/// Builds the value from the files' bytes (in the order of the files).
type Parse<T> =
    fn(&[(&'static str, PathBuf)], &[Vec<u8>], &Arc<CryptoProvider>) -> Result<Arc<T>, TlsError>;
/// The bytes last parsed and what they gave.
type Loaded<T> = (Vec<Vec<u8>>, Arc<T>);

/// Files read again on every handshake and parsed only when their bytes changed. Files that cannot be read, or a
/// change that does not parse (often a swap seen half-way), leave the last good value in force; a refused change
/// is logged once, not on every handshake. Kubernetes swaps a Secret volume's files through the `..data` symlink,
/// which a read by path follows.
struct Reloading<T: ?Sized> {
    /// What each file holds (for messages) and its path.
    files: Vec<(&'static str, PathBuf)>,
    provider: Arc<CryptoProvider>,
    parse: Parse<T>,
    current: RwLock<Arc<Loaded<T>>>,
    refused: Mutex<Option<Vec<Vec<u8>>>>,
}

/// Shows the files only: the keys and parsed contents stay out of debug output.
impl<T: ?Sized> std::fmt::Debug for Reloading<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reloading")
            .field("files", &self.names())
            .finish_non_exhaustive()
    }
}

impl<T: ?Sized> Reloading<T> {
    /// Loads the files once; files that do not load now are a start-up error.
    fn load(
        files: Vec<(&'static str, PathBuf)>,
        provider: Arc<CryptoProvider>,
        parse: Parse<T>,
    ) -> Result<Self, TlsError> {
        let bytes = files
            .iter()
            .map(|(what, path)| read(what, path))
            .collect::<Result<Vec<_>, _>>()?;
        let value = parse(&files, &bytes, &provider)?;
        Ok(Reloading {
            files,
            provider,
            parse,
            current: RwLock::new(Arc::new((bytes, value))),
            refused: Mutex::new(None),
        })
    }

    fn names(&self) -> String {
        let paths: Vec<String> = self
            .files
            .iter()
            .map(|(_, p)| p.display().to_string())
            .collect();
        paths.join(", ")
    }

    /// The value loaded last, without looking at the files.
    fn loaded(&self) -> Arc<T> {
        snapshot(&self.current).1.clone()
    }

    /// Re-reads the files and returns the value in force.
    fn current(&self) -> Arc<T> {
        let loaded = snapshot(&self.current);
        let read: Result<Vec<Vec<u8>>, _> = self
            .files
            .iter()
            .map(|(_, path)| std::fs::read(path))
            .collect();
        let bytes = match read {
            Ok(bytes) => bytes,
            Err(err) => {
                tracing::warn!(files = %self.names(), error = %err,
                    "cannot read the TLS files; keeping the last good ones");
                return loaded.1.clone();
            }
        };
        if bytes == loaded.0 {
            return loaded.1.clone();
        }
        match (self.parse)(&self.files, &bytes, &self.provider) {
            Ok(value) => {
                replace(&self.current, Arc::new((bytes, value.clone())));
                *self.refused.lock().unwrap_or_else(|p| p.into_inner()) = None;
                tracing::info!(files = %self.names(), "loaded new TLS files");
                value
            }
            Err(err) => {
                let mut refused = self.refused.lock().unwrap_or_else(|p| p.into_inner());
                if refused.as_ref() != Some(&bytes) {
                    tracing::warn!(error = %err, "new TLS files not usable; keeping the last good ones");
                    *refused = Some(bytes);
                }
                loaded.1.clone()
            }
        }
    }
}

/// Serves the pair currently in the files, falling back to the last good one.
#[derive(Debug)]
pub struct ReloadingCert(Reloading<CertifiedKey>);

impl ReloadingCert {
    /// Loads the pair once; a pair that does not load now is a start-up error.
    pub fn load(
        cert_path: &Path,
        key_path: &Path,
        provider: Arc<CryptoProvider>,
    ) -> Result<Self, TlsError> {
        let files = vec![
            ("certificate", cert_path.to_path_buf()),
            ("key", key_path.to_path_buf()),
        ];
        Reloading::load(files, provider, |files, bytes, provider| {
            parse_pair(&files[0].1, &files[1].1, &bytes[0], &bytes[1], provider).map(Arc::new)
        })
        .map(ReloadingCert)
    }

    /// Re-reads the files and returns the pair to serve.
    pub fn current(&self) -> Arc<CertifiedKey> {
        self.0.current()
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

/// Verifies client certificates against the CA bundle currently in the file, falling back to the last good one.
#[derive(Debug)]
pub struct ReloadingClientCa(Reloading<dyn ClientCertVerifier>);

impl ReloadingClientCa {
    /// Loads the bundle once; a bundle that does not load now is a start-up error.
    pub fn load(path: &Path, provider: Arc<CryptoProvider>) -> Result<Self, TlsError> {
        let files = vec![("client CA bundle", path.to_path_buf())];
        Reloading::load(files, provider, |files, bytes, provider| {
            client_verifier(&files[0].1, &bytes[0], provider)
        })
        .map(ReloadingClientCa)
    }

    /// Re-reads the file and returns the verifier of the bundle in force.
    pub fn current(&self) -> Arc<dyn ClientCertVerifier> {
        self.0.current()
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
        self.0.loaded().verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.loaded().verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.loaded().supported_verify_schemes()
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
