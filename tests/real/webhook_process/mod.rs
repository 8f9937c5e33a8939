//! The `drgitops webhook` process on its own: watching a real cluster as the shipped `drgitops-webhook`
//! ServiceAccount (the namespace, ServiceAccount and RBAC of `manifests/webhook` applied with kubectl), but not
//! registered with kube-apiserver. The tests speak HTTPS to it directly, for what kube-apiserver cannot be made
//! to do on cue: send half a review and wait, present a client certificate of another CA, open a connection
//! right after a certificate swap. One cluster (domain us-east-1b) is shared by every test here: each only
//! reads, except the policy test's StorageClass, which no other test here looks at.
//!
//! In: certificates made by [`testenv::pki::Pki`], laid out as kubelet lays out a Secret or ConfigMap volume.
//! Out: the webhook's answers, the certificate it presented, its admin port and its log.

mod policies;
mod shutdown;
mod tls;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use serde_json::Value;
use testenv::pki::CertPair;
pub(super) use testkit::webhook::http_get;
use testkit::{Cluster, Drgitops, WEST, eventually, repo_file};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

/// The uid of `tests/data/webhook/scale-deployment.json`, which every answer to it echoes.
const SCALE_UID: &str = "0df28fbd-5f5f-4ea9-a7ec-2f1a4b3d3a11";

/// The cluster shared by this module's tests, started once per test process.
async fn cluster() -> &'static Cluster {
    static CLUSTER: tokio::sync::OnceCell<Cluster> = tokio::sync::OnceCell::const_new();
    CLUSTER
        .get_or_init(|| async {
            let cluster = Cluster::start(WEST).await;
            let f = |p: &str| repo_file(p).display().to_string();
            cluster.kubectl(&[
                "apply",
                "-f",
                &f("manifests/namespace.yaml"),
                "-f",
                &f("manifests/webhook/serviceaccount.yaml"),
                "-f",
                &f("manifests/webhook/rbac.yaml"),
            ]);
            cluster
        })
        .await
}

/// A kubeconfig file in `dir` for the shipped `drgitops-webhook` ServiceAccount of `cluster`, its server
/// replaced by `server` when given (e.g. a fault proxy).
async fn webhook_kubeconfig(cluster: &Cluster, dir: &Path, server: Option<&str>) -> PathBuf {
    let mut yaml = cluster
        .env
        .service_account_kubeconfig("drgitops-system", "drgitops-webhook")
        .await
        .expect("token for drgitops-webhook");
    if let Some(server) = server {
        yaml = yaml.replace(cluster.env.url(), server);
    }
    let path = dir.join("drgitops-webhook.kubeconfig");
    std::fs::write(&path, yaml).expect("write kubeconfig");
    path
}

/// A running `drgitops webhook` and its addresses.
struct Webhook {
    process: Drgitops,
    listen: String,
    admin: String,
}

/// Starts `drgitops webhook` as the `drgitops-webhook` ServiceAccount of the shared cluster, serving the pair
/// in `tls_dir`, with `client_ca` and `policies` if given; its kubeconfig and log go to `dir`. Returns once
/// it is ready (its caches synced).
async fn start(
    dir: &Path,
    tls_dir: &Path,
    client_ca: Option<&Path>,
    policies: Option<&Path>,
) -> Webhook {
    let cluster = cluster().await;
    let kubeconfig = webhook_kubeconfig(cluster, dir, None).await;
    let listen = format!("127.0.0.1:{}", testenv::free_port().expect("port"));
    let admin = format!("127.0.0.1:{}", testenv::free_port().expect("port"));
    let path = |p: &Path| p.display().to_string();
    let mut args = vec![
        "webhook".to_string(),
        "--listen".into(),
        listen.clone(),
        "--admin-listen".into(),
        admin.clone(),
        "--cluster-domain".into(),
        cluster.domain.clone(),
        "--tls-cert".into(),
        path(&tls_dir.join("tls.crt")),
        "--tls-key".into(),
        path(&tls_dir.join("tls.key")),
    ];
    if let Some(ca) = client_ca {
        args.extend(["--client-ca".into(), path(ca)]);
    }
    if let Some(policies) = policies {
        args.extend(["--policies".into(), path(policies)]);
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let process = Drgitops::spawn(crate::DRGITOPS, &kubeconfig, &args, dir.join("webhook.log"));
    let ready = eventually(Duration::from_secs(60), || async {
        http_get(&admin, "/readyz")
            .await
            .filter(|(status, _)| *status == 200)
    })
    .await;
    assert!(
        ready.is_some(),
        "the webhook never became ready:\n{}",
        process.log()
    );
    Webhook {
        process,
        listen,
        admin,
    }
}

/// A fixture of `tests/data/webhook`.
fn fixture(name: &str) -> Vec<u8> {
    let path = repo_file("tests/data/webhook").join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("fixture {}: {e}", path.display()))
}

fn install_crypto() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// A serving certificate for `localhost` and 127.0.0.1 (the name [`post`] asks for), issued by `pki`.
fn serving(pki: &testenv::pki::Pki) -> CertPair {
    pki.serving(&["localhost", "127.0.0.1"])
        .expect("serving certificate")
}

/// The DER of a PEM certificate, as the server presents it.
fn der(cert_pem: &str) -> Vec<u8> {
    rustls_pemfile::certs(&mut cert_pem.as_bytes())
        .next()
        .expect("a certificate")
        .expect("pem")
        .to_vec()
}

/// Lays out `dir` as kubelet does for a Secret volume holding a TLS pair: see [`secret_volume_files`].
fn secret_volume(dir: &Path, version: &str, pair: &CertPair) {
    secret_volume_files(
        dir,
        version,
        &[("tls.crt", &pair.cert_pem), ("tls.key", &pair.key_pem)],
    );
}

/// Lays out `dir` as kubelet does for a Secret or ConfigMap volume: `..<version>/` holding the files, `..data`
/// pointing at it, and each file name pointing through `..data`.
fn secret_volume_files(dir: &Path, version: &str, files: &[(&str, &str)]) {
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

/// A TLS connector trusting `ca_pem`, presenting `identity` if given.
fn connector(ca_pem: &str, identity: Option<&CertPair>) -> TlsConnector {
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
struct Exchange {
    status: u16,
    body: Value,
    /// DER of the certificate the server presented.
    server_cert: Vec<u8>,
}

/// Opens a fresh TLS connection to `addr` (as `localhost`), posts `body` to `path` and reads the answer.
async fn post(
    addr: &str,
    ca_pem: &str,
    identity: Option<&CertPair>,
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
async fn read_response<S: tokio::io::AsyncRead + Unpin>(
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
