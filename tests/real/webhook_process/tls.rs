//! The webhook's HTTPS server in the shipped binary: certificate and client CA rotation through a Secret
//! volume's symlink swap, seen by new connections without a restart, and client certificates.

use drgitops::webhook::tls;
use testenv::pki::{CertPair, Pki};

use super::{SCALE_UID, der, fixture, post, secret_volume, secret_volume_files, serving, start};

/// Posts the scale review on a new connection; what came back.
async fn review(addr: &str, server_ca: &str, identity: Option<&CertPair>) -> super::Exchange {
    post(
        addr,
        server_ca,
        identity,
        "/validate",
        &fixture("scale-deployment.json"),
    )
    .await
    .expect("post")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_symlink_swap_is_served_to_new_connections_without_restart() {
    let pki = Pki::new("webhook-ca").expect("CA");
    let (first, second) = (serving(&pki), serving(&pki));
    let dir = tempfile::tempdir().expect("tempdir");
    let tls_dir = dir.path().join("tls");
    std::fs::create_dir(&tls_dir).expect("mkdir");
    secret_volume(&tls_dir, "2026_01_01_00_00_00.1", &first);
    let webhook = start(dir.path(), &tls_dir, None, None).await;

    let before = review(&webhook.listen, &pki.ca_pem(), None).await;
    assert_eq!(before.server_cert, der(&first.cert_pem));
    assert_eq!(before.status, 200);
    assert_eq!(before.body["response"]["uid"], SCALE_UID);

    secret_volume(&tls_dir, "2026_02_01_00_00_00.2", &second);
    let after = review(&webhook.listen, &pki.ca_pem(), None).await;
    assert_eq!(
        after.server_cert,
        der(&second.cert_pem),
        "a new connection must get the swapped-in certificate"
    );

    // A half-written pair (the new certificate with a key that does not match) is not served: the last good
    // pair stays until both files agree again.
    let mismatched = CertPair {
        cert_pem: serving(&pki).cert_pem,
        key_pem: first.key_pem.clone(),
    };
    secret_volume(&tls_dir, "2026_03_01_00_00_00.3", &mismatched);
    let kept = review(&webhook.listen, &pki.ca_pem(), None).await;
    assert_eq!(kept.server_cert, der(&second.cert_pem));
    assert!(
        admin_alive(&webhook.admin).await,
        "the webhook keeps running:\n{}",
        webhook.process.log()
    );
}

async fn admin_alive(admin: &str) -> bool {
    super::http_get(admin, "/livez").await.map(|(s, _)| s) == Some(200)
}

/// A client certificate of `pki`, as kube-apiserver would present one.
fn client(pki: &Pki) -> CertPair {
    pki.client("kube-apiserver", &[])
        .expect("client certificate")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_a_client_ca_only_certified_clients_are_answered() {
    let server_pki = Pki::new("webhook-ca").expect("CA");
    let client_pki = Pki::new("apiserver-client-ca").expect("CA");
    let stranger_pki = Pki::new("someone-else").expect("CA");
    let dir = tempfile::tempdir().expect("tempdir");
    let tls_dir = dir.path().join("tls");
    std::fs::create_dir(&tls_dir).expect("mkdir");
    secret_volume(&tls_dir, "v1", &serving(&server_pki));
    let ca_file = dir.path().join("client-ca.crt");
    std::fs::write(&ca_file, client_pki.ca_pem()).expect("write ca");
    let webhook = start(dir.path(), &tls_dir, Some(&ca_file), None).await;
    let addr = &webhook.listen;

    let ok = post(
        addr,
        &server_pki.ca_pem(),
        Some(&client(&client_pki)),
        "/validate",
        &fixture("scale-deployment.json"),
    )
    .await
    .expect("a client with a certificate from the client CA is answered");
    assert_eq!(ok.body["response"]["uid"], SCALE_UID);

    let anonymous = post(
        addr,
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

    let stranger = post(
        addr,
        &server_pki.ca_pem(),
        Some(&client(&stranger_pki)),
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
    match post(
        addr,
        &server_pki.ca_pem(),
        Some(&client(pki)),
        "/validate",
        &fixture("scale-deployment.json"),
    )
    .await
    {
        Ok(exchange) => {
            assert_eq!(exchange.body["response"]["uid"], SCALE_UID);
            true
        }
        Err(_) => false,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_ca_swap_is_enforced_on_new_connections_without_restart() {
    let server_pki = Pki::new("webhook-ca").expect("CA");
    let (a, b) = (
        Pki::new("client-ca-a").expect("CA"),
        Pki::new("client-ca-b").expect("CA"),
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let tls_dir = dir.path().join("tls");
    let ca_dir = dir.path().join("client-ca");
    std::fs::create_dir(&tls_dir).expect("mkdir");
    std::fs::create_dir(&ca_dir).expect("mkdir");
    secret_volume(&tls_dir, "v1", &serving(&server_pki));
    secret_volume_files(&ca_dir, "2026_01_01_00_00_00.1", &[("ca.crt", &a.ca_pem())]);
    let webhook = start(dir.path(), &tls_dir, Some(&ca_dir.join("ca.crt")), None).await;
    let addr = &webhook.listen;
    assert!(
        answered(addr, &server_pki, &a).await,
        "signed by A, trusted"
    );
    assert!(!answered(addr, &server_pki, &b).await, "B not trusted yet");

    secret_volume_files(&ca_dir, "2026_02_01_00_00_00.2", &[("ca.crt", &b.ca_pem())]);
    assert!(
        !answered(addr, &server_pki, &a).await,
        "A no longer trusted once the bundle holds only B"
    );
    assert!(answered(addr, &server_pki, &b).await, "B trusted now");

    // An unusable bundle is refused: B, the last good one, stays in force.
    secret_volume_files(
        &ca_dir,
        "2026_03_01_00_00_00.3",
        &[("ca.crt", "-----BEGIN CERTIFICATE-----\ntruncated")],
    );
    assert!(answered(addr, &server_pki, &b).await);
    assert!(!answered(addr, &server_pki, &a).await);

    // A bundle of both (the overlap of a rotation) trusts both.
    let both = format!("{}{}", a.ca_pem(), b.ca_pem());
    secret_volume_files(&ca_dir, "2026_04_01_00_00_00.4", &[("ca.crt", &both)]);
    assert!(answered(addr, &server_pki, &a).await);
    assert!(answered(addr, &server_pki, &b).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unusable_tls_files_fail_at_start_naming_the_file() {
    super::install_crypto();
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

    // The shipped binary, as its ServiceAccount: it exits at start and says which file.
    let kubeconfig = super::webhook_kubeconfig(super::cluster().await, dir.path(), None).await;
    let out = tokio::time::timeout(
        std::time::Duration::from_secs(30),
        tokio::process::Command::new(crate::DRGITOPS)
            .args([
                "webhook",
                "--listen",
                "127.0.0.1:0",
                "--admin-listen",
                "127.0.0.1:0",
            ])
            .arg("--tls-cert")
            .arg(&cert)
            .arg("--tls-key")
            .arg(&key)
            .env("KUBECONFIG", &kubeconfig)
            .kill_on_drop(true)
            .output(),
    )
    .await
    .expect("drgitops webhook exits at start")
    .expect("drgitops runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(
        stderr.contains("holds no PEM CERTIFICATE") && stderr.contains(&cert.display().to_string()),
        "{stderr}"
    );
}
