//! The admission webhook as production runs it: every shipped manifest installed with kubectl the way the
//! README says (with or without cert-manager), the shipped webhook configurations naming Service
//! `drgitops-system/drgitops-webhook` with only `caBundle` filled in (by hand, or by cert-manager's
//! cainjector), `drgitops webhook` serving a certificate for the Service's DNS name and watching the cluster
//! as the shipped `drgitops-webhook` ServiceAccount, and the Service routed to it
//! (`testenv::TestEnv::route_service`), so kube-apiserver calls it as it would a pod.

use std::path::Path;
use std::time::Duration;

use base64::Engine;

use crate::{Cluster, Drgitops, eventually, repo_file};

pub const SERVICE_NAMES: [&str; 2] = [
    "drgitops-webhook.drgitops-system.svc",
    "drgitops-webhook.drgitops-system.svc.cluster.local",
];

/// A `drgitops webhook` process registered by Service, and its admin address (`/livez`, `/readyz`,
/// `/metrics`).
pub struct Webhook {
    pub process: Drgitops,
    pub admin: String,
    /// With [`Install::CertManager`], cert-manager's controller and cainjector, which keep running (and
    /// are killed with the rest); empty otherwise.
    pub cert_manager: Vec<Drgitops>,
}

/// How the manifests are installed, as the README says.
#[derive(Clone, Copy, Debug)]
pub enum Install {
    /// "Certificates without cert-manager": `certificate.yaml` and the `inject-ca-from` annotations removed,
    /// the Secret and `caBundle` made by hand.
    WithoutCertManager,
    /// `kubectl apply -k manifests/` as shipped, on a cluster with cert-manager's CRDs and its controller
    /// and cainjector running (built from its module, see [`testenv::assets::cert_manager`]): the shipped
    /// Certificate becomes Ready, the webhook serves the Secret cert-manager issued, and cainjector writes
    /// its CA into both configurations. Only for `names` = [`SERVICE_NAMES`], the names the Certificate
    /// asks for.
    CertManager,
    /// As [`Install::WithoutCertManager`], but neither Stork's CRDs nor the DRPlan CRD exist when the
    /// webhook starts: they are installed once it is ready.
    CrdsLater,
}

/// Copies `manifests/` to `dir`, minus what the README's path without cert-manager removes.
fn manifests_without_cert_manager(dir: &Path) {
    copy_dir(&repo_file("manifests"), dir);
    let kustomization = dir.join("webhook/kustomization.yaml");
    let text = std::fs::read_to_string(&kustomization).expect("kustomization");
    assert!(text.contains("  - certificate.yaml\n"), "{text}");
    std::fs::write(&kustomization, text.replace("  - certificate.yaml\n", "")).expect("write");
    for file in [
        "mutatingwebhookconfiguration.yaml",
        "validatingwebhookconfiguration.yaml",
    ] {
        let path = dir.join("webhook").join(file);
        let text = std::fs::read_to_string(&path).expect("configuration");
        let annotation = "  annotations:\n    cert-manager.io/inject-ca-from: drgitops-system/drgitops-webhook\n";
        assert!(text.contains(annotation), "{file}: {text}");
        std::fs::write(&path, text.replace(annotation, "")).expect("write");
    }
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for entry in std::fs::read_dir(from).expect("read dir") {
        let entry = entry.expect("entry");
        let target = to.join(entry.file_name());
        if entry.file_type().expect("type").is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).expect("copy");
        }
    }
}

/// Installs every shipped manifest the way `install` says, starts `drgitops webhook` (the binary at `program`)
/// as its ServiceAccount
/// with a certificate for `names`, and routes the Service to it.
pub async fn install(
    program: &str,
    cluster: &Cluster,
    names: &[&str],
    install: Install,
) -> Webhook {
    let stork = repo_file("tests/data/webhook/stork-crds.yaml")
        .display()
        .to_string();
    if !matches!(install, Install::CrdsLater) {
        cluster.kubectl(&["apply", "-f", &stork]);
    }
    let tls = cluster.dir.path().join("tls");
    std::fs::create_dir_all(&tls).expect("tls dir");
    let (cert, key) = (tls.join("tls.crt"), tls.join("tls.key"));
    // Without cert-manager, the README's own CA signs the serving certificate; with it, cert-manager's
    // Secret fills the TLS directory below.
    let ca = if matches!(install, Install::CertManager) {
        assert_eq!(
            names, SERVICE_NAMES,
            "the shipped Certificate names the Service"
        );
        None
    } else {
        let ca = testenv::pki::Pki::new("drgitops-webhook CA").expect("CA");
        let serving = ca.serving(names).expect("serving certificate");
        std::fs::write(&cert, &serving.cert_pem).expect("cert");
        std::fs::write(&key, &serving.key_pem).expect("key");
        Some(ca)
    };
    match install {
        Install::WithoutCertManager | Install::CrdsLater => {
            let manifests = cluster.dir.path().join("manifests");
            manifests_without_cert_manager(&manifests);
            if matches!(install, Install::CrdsLater) {
                let top = manifests.join("kustomization.yaml");
                let text = std::fs::read_to_string(&top).expect("kustomization");
                std::fs::write(&top, text.replace("  - crd/drplan.yaml\n", "")).expect("write");
            }
            cluster.kubectl(&["apply", "-k", &manifests.display().to_string()]);
        }
        Install::CertManager => {
            let crds = testenv::assets::cert_manager_crds().expect("cert-manager CRDs");
            cluster.kubectl(&["apply", "-f", &crds.display().to_string()]);
            cluster.wait_crds_established();
            let out =
                cluster.kubectl(&["apply", "-k", &repo_file("manifests").display().to_string()]);
            assert!(
                out.contains("certificate.cert-manager.io/drgitops-webhook created")
                    && out.contains("issuer.cert-manager.io/drgitops-selfsigned created"),
                "{out}"
            );
            let secret = cluster.get(
                &["-n", "drgitops-system", "certificate", "drgitops-webhook"],
                "{.spec.secretName}",
            );
            assert_eq!(secret, "drgitops-webhook-tls");
        }
    }
    if !matches!(install, Install::CrdsLater) {
        cluster.wait_crds_established();
    }
    let cert_manager = match &ca {
        // The README's commands without cert-manager.
        Some(ca) => {
            cluster.kubectl(&[
                "-n",
                "drgitops-system",
                "create",
                "secret",
                "tls",
                "drgitops-webhook-tls",
                &format!("--cert={}", cert.display()),
                &format!("--key={}", key.display()),
            ]);
            let bundle = base64::engine::general_purpose::STANDARD.encode(ca.ca_pem());
            let patch = format!(
                r#"[{{"op":"add","path":"/webhooks/0/clientConfig/caBundle","value":"{bundle}"}},{{"op":"add","path":"/webhooks/1/clientConfig/caBundle","value":"{bundle}"}}]"#
            );
            for kind in WEBHOOK_CONFIGURATIONS {
                cluster.kubectl(&["patch", kind, "drgitops", "--type=json", "-p", &patch]);
            }
            Vec::new()
        }
        None => run_cert_manager(cluster, &tls).await,
    };
    cluster.kubectl(&["create", "namespace", "mysql"]);

    let kubeconfig = cluster.service_account_kubeconfig("drgitops-webhook").await;
    let port = testenv::free_port().expect("port");
    let admin = format!("127.0.0.1:{}", testenv::free_port().expect("port"));
    let process = spawn(program, cluster, &kubeconfig, port, &admin, &tls);
    let ready = eventually(Duration::from_secs(60), || async {
        http_status(&admin, "/readyz").await.filter(|s| *s == 200)
    })
    .await;
    assert!(
        ready.is_some(),
        "the webhook never became ready:\n{}",
        process.log()
    );
    if matches!(install, Install::CrdsLater) {
        let drplan = repo_file("manifests/crd/drplan.yaml").display().to_string();
        cluster.kubectl(&["apply", "-f", &stork, "-f", &drplan]);
        cluster.wait_crds_established();
    }
    // The shipped Service selects the Deployment's pods, which kwok runs without running drgitops: point
    // the Service at this process instead.
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
    let webhook = Webhook {
        process,
        admin,
        cert_manager,
    };
    // kube-apiserver's view of the Service's endpoints lags behind the EndpointSlices: until it catches up,
    // calls go to the (kwok-run) pods and fail. Wait until the webhook answers through the Service.
    if names == SERVICE_NAMES {
        until_reached(
            cluster,
            &["apply", "-f", &data("migrationschedule-start-apps.yaml")],
            "denied the request",
            &webhook,
        );
    }
    webhook
}

const WEBHOOK_CONFIGURATIONS: [&str; 2] = [
    "mutatingwebhookconfiguration",
    "validatingwebhookconfiguration",
];

/// Starts cert-manager's controller and cainjector (`testenv::assets::cert_manager`) against `cluster` and
/// waits for what they do with the shipped manifests: Certificate `drgitops-webhook` Ready, its Secret
/// `drgitops-webhook-tls` issued, and that Secret's CA injected into every webhook of both configurations.
/// Writes the Secret's `tls.crt` and `tls.key` into `tls`, where the webhook reads them, as the shipped
/// Deployment mounts the Secret.
///
/// Both run with the cluster's admin kubeconfig: cert-manager's RBAC ships in its Helm chart, not in the
/// module they are built from, so there is no ServiceAccount of theirs to run as.
async fn run_cert_manager(cluster: &Cluster, tls: &Path) -> Vec<Drgitops> {
    let program = testenv::assets::cert_manager().expect("cert-manager binary");
    let program = program.display().to_string();
    let admin = cluster.admin.display().to_string();
    let processes: Vec<Drgitops> = ["controller", "cainjector"]
        .into_iter()
        .map(|mode| {
            let process = Drgitops::spawn(
                &program,
                &cluster.admin,
                &[mode, "--kubeconfig", &admin],
                cluster.dir.path().join(format!("cert-manager-{mode}.log")),
            );
            cluster
                .env
                .adopt(process.pid())
                .expect("adopt cert-manager");
            process
        })
        .collect();
    let logs = |processes: &[Drgitops]| {
        let describe = cluster.kubectl_output(
            &[
                "-n",
                "drgitops-system",
                "describe",
                "certificate,certificaterequest",
            ],
            None,
        );
        format!(
            "{}\ncert-manager controller log:\n{}\ncainjector log:\n{}",
            String::from_utf8_lossy(&describe.stdout),
            processes[0].log(),
            processes[1].log()
        )
    };
    let ready = eventually(Duration::from_secs(60), || async {
        let status = cluster.get(
            &["-n", "drgitops-system", "certificate", "drgitops-webhook"],
            r#"{.status.conditions[?(@.type=="Ready")].status}"#,
        );
        (status == "True").then_some(())
    })
    .await;
    assert!(
        ready.is_some(),
        "Certificate drgitops-webhook never became Ready:\n{}",
        logs(&processes)
    );
    let secret = |key: &str| {
        let value = cluster.get(
            &["-n", "drgitops-system", "secret", "drgitops-webhook-tls"],
            &format!("{{.data.{}}}", key.replace('.', "\\.")),
        );
        assert!(
            !value.is_empty(),
            "Secret drgitops-webhook-tls has no {key}"
        );
        value
    };
    let ca = secret("ca.crt");
    for key in ["tls.crt", "tls.key"] {
        let pem = base64::engine::general_purpose::STANDARD
            .decode(secret(key))
            .expect("base64");
        std::fs::write(tls.join(key), pem).expect("write the Secret's key pair");
    }
    let injected = eventually(Duration::from_secs(60), || async {
        WEBHOOK_CONFIGURATIONS
            .iter()
            .all(|kind| {
                let bundles =
                    cluster.get(&[kind, "drgitops"], "{.webhooks[*].clientConfig.caBundle}");
                let bundles: Vec<&str> = bundles.split_whitespace().collect();
                bundles.len() == 2 && bundles.iter().all(|b| *b == ca)
            })
            .then_some(())
    })
    .await;
    assert!(
        injected.is_some(),
        "cainjector never wrote the Secret's CA into both webhook configurations:\n{}",
        logs(&processes)
    );
    processes
}

fn spawn(
    program: &str,
    cluster: &Cluster,
    kubeconfig: &Path,
    port: u16,
    admin: &str,
    tls: &Path,
) -> Drgitops {
    let listen = format!("127.0.0.1:{port}");
    let (cert, key) = (tls.join("tls.crt"), tls.join("tls.key"));
    let policies = repo_file("policies");
    Drgitops::spawn_with_env(
        program,
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
        // As the shipped Deployment sets it.
        &[("MALLOC_ARENA_MAX", "2")],
        cluster.dir.path().join("webhook.log"),
    )
}

/// The status of a plain-HTTP GET on the webhook's admin port.
pub async fn http_status(addr: &str, path: &str) -> Option<u16> {
    http_get(addr, path).await.map(|(status, _)| status)
}

/// A plain-HTTP GET on the webhook's admin port: status and body.
pub async fn http_get(addr: &str, path: &str) -> Option<(u16, String)> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut conn = tokio::net::TcpStream::connect(addr).await.ok()?;
    conn.write_all(format!("GET {path} HTTP/1.0\r\nHost: x\r\n\r\n").as_bytes())
        .await
        .ok()?;
    let mut answer = String::new();
    conn.read_to_string(&mut answer).await.ok()?;
    let status = answer.split_whitespace().nth(1)?.parse().ok()?;
    let body = answer.split_once("\r\n\r\n").map(|(_, b)| b.to_string())?;
    Some((status, body))
}

pub fn data(name: &str) -> String {
    repo_file("tests/data/webhook")
        .join(name)
        .display()
        .to_string()
}

/// Waits until kube-apiserver reaches the webhook through the Service (its endpoint informer has caught up):
/// a server-side dry run of the request is answered by the webhook. Harmless to retry: nothing is stored.
pub fn until_reached(cluster: &Cluster, args: &[&str], expect: &str, webhook: &Webhook) -> String {
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
