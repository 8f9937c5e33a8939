//! The admission webhook as production runs it: registered by the shipped webhook configurations, which name
//! Service `drgitops-system/drgitops-webhook` (only `caBundle` filled in, as the README's path without
//! cert-manager does), serving a certificate for the Service's DNS name, watching the cluster as the shipped
//! `drgitops-webhook` ServiceAccount; kube-apiserver reaches it at the Service's endpoint, and kubectl is the
//! user.

use std::path::Path;
use std::time::Duration;

use base64::Engine;

use crate::kit::{Cluster, Drgitops, EAST, eventually, repo_file};

const SERVICE_NAMES: [&str; 2] = [
    "drgitops-webhook.drgitops-system.svc",
    "drgitops-webhook.drgitops-system.svc.cluster.local",
];

struct Webhook {
    process: Drgitops,
    admin: String,
}

/// Installs the webhook's shipped objects (without cert-manager), starts `drgitops webhook` as its
/// ServiceAccount with a certificate for `names`, and routes the Service to it.
async fn install_webhook(cluster: &Cluster, names: &[&str]) -> Webhook {
    let f = |p: &str| repo_file(p).display().to_string();
    cluster.kubectl(&[
        "apply",
        "-f",
        &f("manifests/namespace.yaml"),
        "-f",
        &f("manifests/crd/drplan.yaml"),
        "-f",
        &f("tests/data/webhook/stork-crds.yaml"),
    ]);
    for file in [
        "serviceaccount.yaml",
        "rbac.yaml",
        "policies.yaml",
        "service.yaml",
        "mutatingwebhookconfiguration.yaml",
        "validatingwebhookconfiguration.yaml",
    ] {
        cluster.kubectl(&["apply", "-f", &f(&format!("manifests/webhook/{file}"))]);
    }
    cluster.kubectl(&[
        "wait",
        "--for=condition=Established",
        "crd",
        "--all",
        "--timeout=60s",
    ]);
    cluster.kubectl(&["create", "namespace", "mysql"]);

    let ca = testenv::pki::Pki::new("drgitops-webhook CA").expect("CA");
    let serving = ca.serving(names).expect("serving certificate");
    let tls = cluster.dir.path().join("tls");
    std::fs::create_dir_all(&tls).expect("tls dir");
    std::fs::write(tls.join("tls.crt"), &serving.cert_pem).expect("cert");
    std::fs::write(tls.join("tls.key"), &serving.key_pem).expect("key");
    // As the README: put the CA into both webhooks of both configurations.
    let bundle = base64::engine::general_purpose::STANDARD.encode(ca.ca_pem());
    let patch = format!(
        r#"[{{"op":"add","path":"/webhooks/0/clientConfig/caBundle","value":"{bundle}"}},{{"op":"add","path":"/webhooks/1/clientConfig/caBundle","value":"{bundle}"}}]"#
    );
    for kind in [
        "mutatingwebhookconfiguration",
        "validatingwebhookconfiguration",
    ] {
        cluster.kubectl(&["patch", kind, "drgitops", "--type=json", "-p", &patch]);
    }

    let kubeconfig = cluster.service_account_kubeconfig("drgitops-webhook").await;
    let port = testenv::free_port().expect("port");
    let admin = format!("127.0.0.1:{}", testenv::free_port().expect("port"));
    let process = spawn(cluster, &kubeconfig, port, &admin, &tls);
    let ready = eventually(Duration::from_secs(60), || async {
        http_status(&admin, "/readyz").await.filter(|s| *s == 200)
    })
    .await;
    assert!(
        ready.is_some(),
        "the webhook never became ready:\n{}",
        process.log()
    );
    cluster
        .env
        .route_service(
            "drgitops-system",
            "drgitops-webhook",
            "https",
            443,
            ([127, 0, 0, 1], port).into(),
        )
        .await
        .expect("route the webhook Service");
    Webhook { process, admin }
}

fn spawn(cluster: &Cluster, kubeconfig: &Path, port: u16, admin: &str, tls: &Path) -> Drgitops {
    let listen = format!("127.0.0.1:{port}");
    let (cert, key) = (tls.join("tls.crt"), tls.join("tls.key"));
    let policies = repo_file("policies");
    Drgitops::spawn(
        kubeconfig,
        &[
            "webhook",
            "--listen",
            &listen,
            "--admin-listen",
            admin,
            "--cluster-domain",
            &cluster.domain,
            "--tls-cert",
            &cert.display().to_string(),
            "--tls-key",
            &key.display().to_string(),
            "--policies",
            &policies.display().to_string(),
        ],
        cluster.dir.path().join("webhook.log"),
    )
}

/// The status of a plain-HTTP GET on the webhook's admin port.
async fn http_status(addr: &str, path: &str) -> Option<u16> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut conn = tokio::net::TcpStream::connect(addr).await.ok()?;
    conn.write_all(format!("GET {path} HTTP/1.0\r\nHost: x\r\n\r\n").as_bytes())
        .await
        .ok()?;
    let mut answer = String::new();
    conn.read_to_string(&mut answer).await.ok()?;
    answer.split_whitespace().nth(1)?.parse().ok()
}

fn data(name: &str) -> String {
    repo_file("tests/data/webhook")
        .join(name)
        .display()
        .to_string()
}

/// Waits until kube-apiserver reaches the webhook through the Service (its endpoint informer has caught up):
/// a server-side dry run of the request is answered by the webhook. Harmless to retry: nothing is stored.
fn until_reached(cluster: &Cluster, args: &[&str], expect: &str, webhook: &Webhook) -> String {
    let mut dry: Vec<&str> = args.to_vec();
    dry.push("--dry-run=server");
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let out = cluster.kubectl_output(&dry, None);
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        if stderr.contains(expect) {
            return stderr;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "kube-apiserver never got {expect:?} from the webhook; last answer: {stderr}\nwebhook log:\n{}",
            webhook.process.log()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_is_denied_by_the_webhook_registered_by_service() {
    let cluster = Cluster::start(EAST).await;
    let webhook = install_webhook(&cluster, &SERVICE_NAMES).await;
    let schedule = data("migrationschedule-start-apps.yaml");
    until_reached(
        &cluster,
        &["apply", "-f", &schedule],
        "denied the request",
        &webhook,
    );

    let out = cluster.kubectl_output(&["apply", "-f", &schedule], None);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "stored: {stderr}");
    assert!(
        stderr.starts_with("Error from server (Forbidden)")
            && stderr.contains("admission webhook \"dr-objects.drgitops.dev\" denied the request")
            && stderr.contains("startApplications"),
        "{stderr}"
    );
    let gone = cluster.kubectl_output(
        &[
            "-n",
            "mysql",
            "get",
            "migrationschedule",
            "mysql-starts-apps",
        ],
        None,
    );
    assert!(!gone.status.success(), "nothing is stored");

    // The mutating webhook, through the same Service: the field is made explicit before it is stored.
    cluster.kubectl(&[
        "apply",
        "-f",
        &data("migrationschedule-no-start-field.yaml"),
    ]);
    let stored = cluster.kubectl(&[
        "-n",
        "mysql",
        "get",
        "migrationschedule",
        "mysql-schedule",
        "-o",
        "jsonpath={.spec.template.spec.startApplications}",
    ]);
    assert_eq!(stored, "false");
    assert_eq!(http_status(&webhook.admin, "/livez").await, Some(200));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_certificate_for_another_name_is_refused_by_kube_apiserver() {
    // The name check production relies on: kube-apiserver verifies the webhook's certificate against the
    // Service's DNS name, so a certificate for another name fails the call, and `failurePolicy: Fail` keeps
    // the object out.
    let cluster = Cluster::start(EAST).await;
    let webhook = install_webhook(&cluster, &["drgitops-webhook.elsewhere.svc"]).await;
    let stderr = until_reached(
        &cluster,
        &[
            "apply",
            "-f",
            &data("migrationschedule-no-start-field.yaml"),
        ],
        "failed calling webhook",
        &webhook,
    );
    assert!(
        stderr.contains("drgitops-webhook.drgitops-system.svc") && stderr.contains("x509"),
        "{stderr}"
    );
}
