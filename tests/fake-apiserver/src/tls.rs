//! Throw-away TLS material for an HTTPS fake server: a CA and a server certificate for `localhost` and
//! `127.0.0.1` signed by it, so kubeconfigs can carry the CA as `certificate-authority-data` and both kubectl
//! and kube-rs verify the server for real.
//!
//! In: nothing. Out: PEM/DER material and a rustls `ServerConfig`.

use std::sync::Arc;

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

/// Why TLS material could not be made.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("generating the fake server's certificates: {0}")]
    Generate(#[from] rcgen::Error),
    #[error("building the fake server's TLS configuration: {0}")]
    Rustls(#[from] rustls::Error),
}

/// A CA and a server configuration using a certificate it signed.
#[derive(Clone)]
pub struct TlsMaterial {
    /// The CA certificate (PEM), for kubeconfigs and webhook `caBundle`s.
    pub ca_pem: String,
    /// The CA certificate (DER), for `kube::Config::root_cert`.
    pub ca_der: Vec<u8>,
    /// The server certificate (PEM) and its key (PKCS#8 PEM), for anyone who needs to serve as this host.
    pub cert_pem: String,
    pub key_pem: String,
    pub server_config: Arc<rustls::ServerConfig>,
}

impl std::fmt::Debug for TlsMaterial {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsMaterial").finish_non_exhaustive()
    }
}

/// The process-wide rustls provider; installing twice is harmless (the second attempt just reports the first).
pub fn install_crypto_provider() {
    let _already_installed = rustls::crypto::ring::default_provider().install_default();
}

/// Generates a CA and a server certificate for `localhost` and `127.0.0.1`.
pub fn generate() -> Result<TlsMaterial, TlsError> {
    install_crypto_provider();
    let mut ca_params = CertificateParams::new(Vec::<String>::new())?;
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "fake-apiserver-ca");
    ca_params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let ca_key = KeyPair::generate()?;
    let ca_cert = ca_params.self_signed(&ca_key)?;
    let issuer = Issuer::new(ca_params, ca_key);

    let mut leaf = CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()])?;
    leaf.distinguished_name
        .push(DnType::CommonName, "fake-apiserver");
    let leaf_key = KeyPair::generate()?;
    let leaf_cert = leaf.signed_by(&leaf_key, &issuer)?;

    let chain = vec![
        CertificateDer::from(leaf_cert.der().to_vec()),
        CertificateDer::from(ca_cert.der().to_vec()),
    ];
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(leaf_key.serialize_der()));
    let mut config = rustls::ServerConfig::builder()
        .with_no_client_auth()
        .with_single_cert(chain, key)?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(TlsMaterial {
        ca_pem: ca_cert.pem(),
        ca_der: ca_cert.der().to_vec(),
        cert_pem: leaf_cert.pem(),
        key_pem: leaf_key.serialize_pem(),
        server_config: Arc::new(config),
    })
}
