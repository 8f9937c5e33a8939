//! The real `drgitops webhook` process: readiness before caches sync, and SIGTERM draining in-flight reviews.

mod webhook_common;

use std::process::{Command, Stdio};

use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use webhook_common::{
    Pki, admin_get, eventually, fixture, free_port, read_response, secret_volume,
};

/// A kubeconfig pointing at a port nothing listens on: the caches can never sync.
fn unreachable_kubeconfig(dir: &std::path::Path) -> std::path::PathBuf {
    let path = dir.join("kubeconfig");
    let port = free_port();
    std::fs::write(
        &path,
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster:\n    server: https://127.0.0.1:{port}\n    \
             insecure-skip-tls-verify: true\nusers:\n- name: u\n  user:\n    token: t\ncontexts:\n- name: x\n  context:\n    \
             cluster: c\n    user: u\ncurrent-context: x\n"
        ),
    )
    .expect("kubeconfig");
    path
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_lets_an_in_flight_review_finish() {
    webhook_common::install_crypto();
    let pki = Pki::new("webhook-ca");
    let dir = tempfile::tempdir().expect("tempdir");
    secret_volume(dir.path(), "v1", &pki.leaf("drgitops-webhook"));
    let listen = format!("127.0.0.1:{}", free_port());
    let admin = format!("127.0.0.1:{}", free_port());
    let mut child = Command::new(env!("CARGO_BIN_EXE_drgitops"))
        .args([
            "webhook",
            "--listen",
            &listen,
            "--admin-listen",
            &admin,
            "--log-format",
            "json",
        ])
        .arg("--tls-cert")
        .arg(dir.path().join("tls.crt"))
        .arg("--tls-key")
        .arg(dir.path().join("tls.key"))
        .env("KUBECONFIG", unreachable_kubeconfig(dir.path()))
        .env_remove("KUBERNETES_SERVICE_HOST")
        .env("RUST_LOG", "info,drgitops=debug")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(dir.path().join("stderr.log")).expect("log file"))
        .spawn()
        .expect("start drgitops webhook");

    let live = eventually(30, || admin_get(&admin, "/livez")).await;
    assert_eq!(
        live.map(|(s, _)| s),
        Some(200),
        "livez must answer once started"
    );
    let (status, body) = admin_get(&admin, "/readyz").await.expect("readyz");
    assert_eq!(
        (status, body.as_str()),
        (503, "not ready: cluster caches not synced\n")
    );

    // Start a review: headers and half of the body, as a slow apiserver connection would.
    let review = fixture("scale-deployment.json");
    let tcp = TcpStream::connect(&listen).await.expect("connect");
    let connector = {
        let mut roots = rustls::RootCertStore::empty();
        for cert in rustls_pemfile::certs(&mut pki.ca_pem().as_bytes()) {
            roots.add(cert.expect("pem")).expect("root");
        }
        tokio_rustls::TlsConnector::from(std::sync::Arc::new(
            rustls::ClientConfig::builder()
                .with_root_certificates(roots)
                .with_no_client_auth(),
        ))
    };
    let name = rustls::pki_types::ServerName::try_from("localhost").expect("name");
    let mut tls = connector.connect(name, tcp).await.expect("handshake");
    let head = format!(
        "POST /validate HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        review.len()
    );
    tls.write_all(head.as_bytes()).await.expect("head");
    tls.write_all(&review[..review.len() / 2])
        .await
        .expect("half body");
    tls.flush().await.expect("flush");
    // Signal only once the server is reading this review: a request whose head it has not read yet arrives on
    // what is still an idle connection, which a draining server closes (as Go's http.Server does).
    let log = dir.path().join("stderr.log");
    assert!(
        eventually(10, || {
            let log = std::fs::read_to_string(&log).unwrap_or_default();
            async move { log.contains("receiving admission review").then_some(()) }
        })
        .await
        .is_some(),
        "the webhook never started reading the review"
    );

    let killed = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill");
    assert!(killed.success());
    let draining = eventually(10, || async {
        match admin_get(&admin, "/readyz").await {
            Some((503, body)) if body.contains("shutting down") => Some(()),
            _ => None,
        }
    })
    .await;
    assert!(
        draining.is_some(),
        "readyz must turn false as soon as shutdown begins"
    );
    assert!(
        eventually(10, || async {
            TcpStream::connect(&listen).await.is_err().then_some(())
        })
        .await
        .is_some(),
        "no new connections once shutdown begins"
    );

    tls.write_all(&review[review.len() / 2..])
        .await
        .expect("rest of body");
    tls.flush().await.expect("flush");
    let (status, answer) = read_response(&mut tls)
        .await
        .expect("the in-flight review is answered");
    assert_eq!(status, 200);
    assert_eq!(
        answer["response"]["uid"],
        "0df28fbd-5f5f-4ea9-a7ec-2f1a4b3d3a11"
    );
    assert_eq!(answer["response"]["allowed"], true);

    let exited = eventually(20, || {
        let status = child.try_wait().ok().flatten();
        async move { status }
    })
    .await;
    assert_eq!(
        exited.and_then(|s| s.code()),
        Some(0),
        "the webhook exits cleanly after draining"
    );

    // One JSON line per review, naming the review and the decision.
    let log = std::fs::read_to_string(dir.path().join("stderr.log")).expect("log");
    let line = log
        .lines()
        .find(|l| l.contains("review answered"))
        .unwrap_or_else(|| panic!("no review log line in:\n{log}"));
    eprintln!("{line}");
    let review_line: serde_json::Value = serde_json::from_str(line).expect("a JSON log line");
    let line = &review_line;
    assert_eq!(line["name"], "mysql");
    assert_eq!(line["uid"], "0df28fbd-5f5f-4ea9-a7ec-2f1a4b3d3a11");
    assert_eq!(line["kind"], "Deployment");
    assert_eq!(line["namespace"], "mysql");
    assert_eq!(line["operation"], "UPDATE");
    assert_eq!(line["decision"], "allowed");
}
