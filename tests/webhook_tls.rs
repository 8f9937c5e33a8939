//! The HTTPS server: certificate and client CA rotation through a Secret volume's symlink swap, and client
//! certificates.

mod webhook_common;

use std::sync::Arc;
use std::time::Duration;

use drgitops::cluster::live::LiveView;
use drgitops::policy::PolicyConfig;
use drgitops::webhook::admission::{self, AdmissionState};
use drgitops::webhook::config::PolicyStore;
use drgitops::webhook::metrics::Metrics;
use drgitops::webhook::{server, tls};
use tokio::net::TcpListener;
use webhook_common::{ClientIdentity, Pki, fixture, post, secret_volume, secret_volume_files};

async fn start(
    dir: &std::path::Path,
    client_ca: Option<&std::path::Path>,
) -> (String, tokio::sync::watch::Sender<bool>) {
    webhook_common::install_crypto();
    let (config, _) = tls::server_config(&dir.join("tls.crt"), &dir.join("tls.key"), client_ca)
        .expect("tls config");
    let state = AdmissionState::new(
        Arc::new(LiveView::new(None)),
        Arc::new(PolicyStore::new(PolicyConfig::default())),
        Arc::new(Metrics::new()),
    );
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr").to_string();
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    tokio::spawn(server::serve_tls(
        listener,
        config,
        admission::router(state),
        stop_rx,
        Duration::from_secs(5),
    ));
    (addr, stop_tx)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_symlink_swap_is_served_to_new_connections_without_restart() {
    let pki = Pki::new("webhook-ca");
    let first = pki.leaf("drgitops-webhook-1");
    let second = pki.leaf("drgitops-webhook-2");
    let dir = tempfile::tempdir().expect("tempdir");
    secret_volume(dir.path(), "2026_01_01_00_00_00.1", &first);
    let (addr, _stop) = start(dir.path(), None).await;

    let before = post(
        &addr,
        &pki.ca_pem(),
        None,
        "/validate",
        &fixture("scale-deployment.json"),
    )
    .await
    .expect("post");
    assert_eq!(before.server_cert, first.der);
    assert_eq!(before.status, 200);
    assert_eq!(
        before.body["response"]["uid"],
        "0df28fbd-5f5f-4ea9-a7ec-2f1a4b3d3a11"
    );

    secret_volume(dir.path(), "2026_02_01_00_00_00.2", &second);
    let after = post(
        &addr,
        &pki.ca_pem(),
        None,
        "/validate",
        &fixture("scale-deployment.json"),
    )
    .await
    .expect("post");
    assert_eq!(
        after.server_cert, second.der,
        "a new connection must get the swapped-in certificate"
    );

    // A half-written pair (the new certificate with a key that does not match) is not served: the last good
    // pair stays until both files agree again.
    let third = pki.leaf("drgitops-webhook-3");
    let mismatched = webhook_common::Leaf {
        cert_pem: third.cert_pem.clone(),
        key_pem: first.key_pem.clone(),
        der: vec![],
    };
    secret_volume(dir.path(), "2026_03_01_00_00_00.3", &mismatched);
    let kept = post(
        &addr,
        &pki.ca_pem(),
        None,
        "/validate",
        &fixture("scale-deployment.json"),
    )
    .await
    .expect("post");
    assert_eq!(kept.server_cert, second.der);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_a_client_ca_only_certified_clients_are_answered() {
    let server_pki = Pki::new("webhook-ca");
    let client_pki = Pki::new("apiserver-client-ca");
    let stranger_pki = Pki::new("someone-else");
    let dir = tempfile::tempdir().expect("tempdir");
    secret_volume(dir.path(), "v1", &server_pki.leaf("drgitops-webhook"));
    let ca_file = dir.path().join("client-ca.crt");
    std::fs::write(&ca_file, client_pki.ca_pem()).expect("write ca");
    let (addr, _stop) = start(dir.path(), Some(&ca_file)).await;

    let apiserver = client_pki.leaf("kube-apiserver");
    let id = ClientIdentity {
        cert_pem: apiserver.cert_pem,
        key_pem: apiserver.key_pem,
    };
    let ok = post(
        &addr,
        &server_pki.ca_pem(),
        Some(&id),
        "/validate",
        &fixture("scale-deployment.json"),
    )
    .await
    .expect("a client with a certificate from the client CA is answered");
    assert_eq!(
        ok.body["response"]["uid"],
        "0df28fbd-5f5f-4ea9-a7ec-2f1a4b3d3a11"
    );

    let anonymous = post(
        &addr,
        &server_pki.ca_pem(),
        None,
        "/validate",
        &fixture("scale-deployment.json"),
    )
    .await;
    assert!(
        anonymous.is_err(),
        "a client without a certificate must not get an answer"
    );

    let other = stranger_pki.leaf("intruder");
    let id = ClientIdentity {
        cert_pem: other.cert_pem,
        key_pem: other.key_pem,
    };
    let stranger = post(
        &addr,
        &server_pki.ca_pem(),
        Some(&id),
        "/validate",
        &fixture("scale-deployment.json"),
    )
    .await;
    assert!(
        stranger.is_err(),
        "a certificate from another CA must be refused"
    );
}

/// Whether a new connection presenting a certificate of `pki` is answered.
async fn answered(addr: &str, server_pki: &Pki, pki: &Pki) -> bool {
    let leaf = pki.leaf("kube-apiserver");
    let id = ClientIdentity {
        cert_pem: leaf.cert_pem,
        key_pem: leaf.key_pem,
    };
    match post(
        addr,
        &server_pki.ca_pem(),
        Some(&id),
        "/validate",
        &fixture("scale-deployment.json"),
    )
    .await
    {
        Ok(exchange) => {
            assert_eq!(
                exchange.body["response"]["uid"],
                "0df28fbd-5f5f-4ea9-a7ec-2f1a4b3d3a11"
            );
            true
        }
        Err(_) => false,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_ca_swap_is_enforced_on_new_connections_without_restart() {
    let server_pki = Pki::new("webhook-ca");
    let (a, b) = (Pki::new("client-ca-a"), Pki::new("client-ca-b"));
    let dir = tempfile::tempdir().expect("tempdir");
    secret_volume(dir.path(), "v1", &server_pki.leaf("drgitops-webhook"));
    let ca_dir = tempfile::tempdir().expect("tempdir");
    secret_volume_files(
        ca_dir.path(),
        "2026_01_01_00_00_00.1",
        &[("ca.crt", &a.ca_pem())],
    );
    let (addr, _stop) = start(dir.path(), Some(&ca_dir.path().join("ca.crt"))).await;
    assert!(
        answered(&addr, &server_pki, &a).await,
        "signed by A, trusted"
    );
    assert!(!answered(&addr, &server_pki, &b).await, "B not trusted yet");

    secret_volume_files(
        ca_dir.path(),
        "2026_02_01_00_00_00.2",
        &[("ca.crt", &b.ca_pem())],
    );
    assert!(
        !answered(&addr, &server_pki, &a).await,
        "A no longer trusted once the bundle holds only B"
    );
    assert!(answered(&addr, &server_pki, &b).await, "B trusted now");

    // An unusable bundle is refused: B, the last good one, stays in force.
    secret_volume_files(
        ca_dir.path(),
        "2026_03_01_00_00_00.3",
        &[("ca.crt", "-----BEGIN CERTIFICATE-----\ntruncated")],
    );
    assert!(answered(&addr, &server_pki, &b).await);
    assert!(!answered(&addr, &server_pki, &a).await);

    // A bundle of both (the overlap of a rotation) trusts both.
    let both = format!("{}{}", a.ca_pem(), b.ca_pem());
    secret_volume_files(ca_dir.path(), "2026_04_01_00_00_00.4", &[("ca.crt", &both)]);
    assert!(answered(&addr, &server_pki, &a).await);
    assert!(answered(&addr, &server_pki, &b).await);
}

#[test]
fn unusable_tls_files_fail_at_start_naming_the_file() {
    webhook_common::install_crypto();
    let dir = tempfile::tempdir().expect("tempdir");
    let cert = dir.path().join("tls.crt");
    let key = dir.path().join("tls.key");
    std::fs::write(&cert, "not a certificate").expect("write");
    std::fs::write(&key, "not a key").expect("write");
    let err = tls::server_config(&cert, &key, None).expect_err("garbage must be refused");
    assert!(
        err.to_string().contains("holds no PEM CERTIFICATE"),
        "{err}"
    );
    assert!(err.to_string().contains("tls.crt"), "{err}");
    let missing =
        tls::server_config(&dir.path().join("absent.crt"), &key, None).expect_err("missing file");
    assert!(
        missing.to_string().starts_with("cannot read certificate"),
        "{missing}"
    );
}
