//! Helpers shared by the webhook tests: a throw-away PKI, Secret-volume-shaped certificate directories, and a
//! minimal HTTPS client that reports which certificate the server presented.
#![allow(dead_code)] // each test binary uses a different subset

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

pub fn data(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/webhook")
        .join(name)
}

pub fn fixture(name: &str) -> Vec<u8> {
    let path = data(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("fixture {}: {e}", path.display()))
}

pub fn install_crypto() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// A certificate authority that issues server and client certificates.
pub struct Pki {
    ca: CertifiedIssuer<'static, KeyPair>,
}

pub struct Leaf {
    pub cert_pem: String,
    pub key_pem: String,
    pub der: Vec<u8>,
}

impl Pki {
    pub fn new(name: &str) -> Self {
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("params");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, name);
        let ca =
            CertifiedIssuer::self_signed(params, KeyPair::generate().expect("key")).expect("ca");
        Pki { ca }
    }

    pub fn ca_pem(&self) -> String {
        self.ca.as_ref().pem()
    }

    /// A leaf for `localhost` and 127.0.0.1, usable as a server or a client certificate.
    pub fn leaf(&self, common_name: &str) -> Leaf {
        let mut params =
            CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()])
                .expect("params");
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, common_name);
        let key = KeyPair::generate().expect("key");
        let cert = params.signed_by(&key, &self.ca).expect("signed");
        Leaf {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
            der: cert.der().to_vec(),
        }
    }
}

/// Lays out `dir` as kubelet does for a Secret volume holding a TLS pair: see [`secret_volume_files`].
pub fn secret_volume(dir: &Path, version: &str, leaf: &Leaf) {
    secret_volume_files(
        dir,
        version,
        &[("tls.crt", &leaf.cert_pem), ("tls.key", &leaf.key_pem)],
    );
}

/// Lays out `dir` as kubelet does for a Secret volume: `..<version>/` holding the files, `..data` pointing at
/// it, and each file name pointing through `..data`.
pub fn secret_volume_files(dir: &Path, version: &str, files: &[(&str, &str)]) {
    let versioned = dir.join(format!("..{version}"));
    std::fs::create_dir_all(&versioned).expect("version dir");
    for (name, contents) in files {
        std::fs::write(versioned.join(name), contents).expect("file");
    }
    let tmp = dir.join("..data_tmp");
    let _ = std::fs::remove_file(&tmp);
    std::os::unix::fs::symlink(format!("..{version}"), &tmp).expect("symlink");
    // rename(2) over the old link is the atomic swap kubelet performs.
    std::fs::rename(&tmp, dir.join("..data")).expect("swap ..data");
    for (name, _) in files {
        let link = dir.join(name);
        if std::fs::symlink_metadata(&link).is_err() {
            std::os::unix::fs::symlink(format!("..data/{name}"), &link).expect("file symlink");
        }
    }
}

pub struct ClientIdentity {
    pub cert_pem: String,
    pub key_pem: String,
}

fn connector(ca_pem: &str, identity: Option<&ClientIdentity>) -> TlsConnector {
    install_crypto();
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls_pemfile::certs(&mut ca_pem.as_bytes()) {
        roots.add(cert.expect("ca pem")).expect("add root");
    }
    let builder = rustls::ClientConfig::builder().with_root_certificates(roots);
    let config = match identity {
        Some(id) => {
            let certs: Vec<CertificateDer<'static>> =
                rustls_pemfile::certs(&mut id.cert_pem.as_bytes())
                    .map(|c| c.expect("cert"))
                    .collect();
            let key: PrivateKeyDer<'static> =
                rustls_pemfile::private_key(&mut id.key_pem.as_bytes())
                    .expect("key pem")
                    .expect("a key");
            builder
                .with_client_auth_cert(certs, key)
                .expect("client auth")
        }
        None => builder.with_no_client_auth(),
    };
    TlsConnector::from(Arc::new(config))
}

/// What one HTTPS exchange returned.
pub struct Exchange {
    pub status: u16,
    pub body: Value,
    /// DER of the certificate the server presented.
    pub server_cert: Vec<u8>,
}

/// Opens a fresh TLS connection to `addr`, posts `body` to `path` and reads the answer.
pub async fn post(
    addr: &str,
    ca_pem: &str,
    identity: Option<&ClientIdentity>,
    path: &str,
    body: &[u8],
) -> std::io::Result<Exchange> {
    let tcp = TcpStream::connect(addr).await?;
    let mut tls = connector(ca_pem, identity)
        .connect(ServerName::try_from("localhost").expect("name"), tcp)
        .await?;
    let server_cert = tls
        .get_ref()
        .1
        .peer_certificates()
        .and_then(|c| c.first())
        .map(|c| c.to_vec())
        .unwrap_or_default();
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    tls.write_all(head.as_bytes()).await?;
    tls.write_all(body).await?;
    tls.flush().await?;
    let (status, body) = read_response(&mut tls).await?;
    Ok(Exchange {
        status,
        body,
        server_cert,
    })
}

/// Reads one HTTP/1.1 response with a Content-Length body.
pub async fn read_response<S: tokio::io::AsyncRead + Unpin>(
    stream: &mut S,
) -> std::io::Result<(u16, Value)> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).to_string();
            let status: u16 = head
                .split(' ')
                .nth(1)
                .and_then(|s| s.parse().ok())
                .unwrap_or(0);
            let length: usize = head
                .lines()
                .find_map(|l| {
                    let (k, v) = l.split_once(':')?;
                    k.eq_ignore_ascii_case("content-length")
                        .then(|| v.trim().parse().ok())?
                })
                .unwrap_or(0);
            while buf.len() < end + 4 + length {
                let n = stream.read(&mut chunk).await?;
                if n == 0 {
                    return Err(std::io::Error::new(
                        std::io::ErrorKind::UnexpectedEof,
                        "body cut short",
                    ));
                }
                buf.extend_from_slice(&chunk[..n]);
            }
            let body =
                serde_json::from_slice(&buf[end + 4..end + 4 + length]).unwrap_or(Value::Null);
            return Ok((status, body));
        }
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            return Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                "connection closed before a response",
            ));
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

/// Polls `f` every 20 ms until it returns `Some`, for at most `secs` seconds.
pub async fn eventually<T, F, Fut>(secs: u64, mut f: F) -> Option<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(secs);
    while tokio::time::Instant::now() < deadline {
        if let Some(v) = f().await {
            return Some(v);
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    None
}

/// A plain-HTTP GET on the admin port: status and body, or `None` when nothing answers.
pub async fn admin_get(addr: &str, path: &str) -> Option<(u16, String)> {
    let mut tcp = TcpStream::connect(addr).await.ok()?;
    let req = format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
    tcp.write_all(req.as_bytes()).await.ok()?;
    let mut out = Vec::new();
    tcp.read_to_end(&mut out).await.ok()?;
    let text = String::from_utf8_lossy(&out).to_string();
    let status = text.split(' ').nth(1)?.parse().ok()?;
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    Some((status, body))
}

/// A loopback port nothing listens on right now.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port()
}

/// The shipped webhook configurations of `manifests/webhook/`, pointed at a webhook listening on `listen`
/// (loopback) with `ca_pem` as the `caBundle`, instead of the in-cluster Service and cert-manager's CA injection.
/// Written as JSON files under `dir`, ready for `kubectl apply -f`.
pub fn loopback_webhook_configurations(listen: &str, ca_pem: &str, dir: &Path) -> Vec<PathBuf> {
    use base64::Engine as _;
    let ca_bundle = base64::engine::general_purpose::STANDARD.encode(ca_pem);
    let manifests = Path::new(env!("CARGO_MANIFEST_DIR")).join("manifests/webhook");
    [
        "mutatingwebhookconfiguration.yaml",
        "validatingwebhookconfiguration.yaml",
    ]
    .into_iter()
    .map(|file| {
        let text = std::fs::read_to_string(manifests.join(file)).expect("manifest");
        let mut config: Value = serde_yaml::from_str(&text).expect("yaml");
        config["metadata"]
            .as_object_mut()
            .expect("metadata")
            .remove("annotations");
        for hook in config["webhooks"].as_array_mut().expect("webhooks") {
            let path = hook["clientConfig"]["service"]["path"]
                .as_str()
                .expect("path")
                .to_string();
            hook["clientConfig"] = serde_json::json!({
                "url": format!("https://{listen}{path}"),
                "caBundle": ca_bundle,
            });
        }
        let out = dir.join(file.replace(".yaml", ".json"));
        std::fs::write(&out, serde_json::to_vec(&config).expect("json")).expect("write");
        out
    })
    .collect()
}

/// Starts the real `drgitops webhook` with the shipped policies, serving `tls_dir`'s certificate on `listen`, its
/// admin port on `admin`, talking to the cluster of `<work_dir>/kubeconfig`; its log goes to `<work_dir>/webhook.log`.
pub fn spawn_webhook(
    listen: &str,
    admin: &str,
    cluster_domain: &str,
    tls_dir: &Path,
    work_dir: &Path,
) -> std::process::Child {
    std::process::Command::new(env!("CARGO_BIN_EXE_drgitops"))
        .args([
            "webhook",
            "--listen",
            listen,
            "--admin-listen",
            admin,
            "--cluster-domain",
            cluster_domain,
        ])
        .arg("--tls-cert")
        .arg(tls_dir.join("tls.crt"))
        .arg("--tls-key")
        .arg(tls_dir.join("tls.key"))
        .arg("--policies")
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("policies"))
        .env("KUBECONFIG", work_dir.join("kubeconfig"))
        .env_remove("KUBERNETES_SERVICE_HOST")
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(work_dir.join("webhook.log")).expect("log"))
        .spawn()
        .expect("start drgitops webhook")
}
