//! The admission webhook as production runs it: registered by the shipped webhook configurations, which name
//! Service `drgitops-system/drgitops-webhook` (only `caBundle` filled in, as the README's path without
//! cert-manager does), serving a certificate for the Service's DNS name, watching the cluster as the shipped
//! `drgitops-webhook` ServiceAccount; kube-apiserver reaches it at the Service's endpoint, and kubectl is the
//! user.

use std::path::Path;
use std::time::Duration;

use base64::Engine;

use testkit::{Cluster, Drgitops, EAST, WEST, eventually, repo_file};

const SERVICE_NAMES: [&str; 2] = [
    "drgitops-webhook.drgitops-system.svc",
    "drgitops-webhook.drgitops-system.svc.cluster.local",
];

pub(crate) struct Webhook {
    pub(crate) process: Drgitops,
    admin: String,
}

/// How the manifests are installed, as the README says.
#[derive(Clone, Copy, Debug)]
enum Install {
    /// "Certificates without cert-manager": `certificate.yaml` and the `inject-ca-from` annotations removed,
    /// the Secret and `caBundle` made by hand.
    WithoutCertManager,
    /// `kubectl apply -k manifests/` as shipped, on a cluster with cert-manager's CRDs (from its module). Its
    /// controller and cainjector cannot be built here (the module proxy does not serve their modules), so
    /// the test then does what they would: the Secret from the Certificate, the CA into both configurations.
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

/// Installs every shipped manifest the way `install` says, starts `drgitops webhook` as its ServiceAccount
/// with a certificate for `names`, and routes the Service to it.
async fn install_webhook(cluster: &Cluster, names: &[&str], install: Install) -> Webhook {
    let stork = repo_file("tests/data/webhook/stork-crds.yaml")
        .display()
        .to_string();
    if !matches!(install, Install::CrdsLater) {
        cluster.kubectl(&["apply", "-f", &stork]);
    }
    let ca = testenv::pki::Pki::new("drgitops-webhook CA").expect("CA");
    let serving = ca.serving(names).expect("serving certificate");
    let tls = cluster.dir.path().join("tls");
    std::fs::create_dir_all(&tls).expect("tls dir");
    let (cert, key) = (tls.join("tls.crt"), tls.join("tls.key"));
    std::fs::write(&cert, &serving.cert_pem).expect("cert");
    std::fs::write(&key, &serving.key_pem).expect("key");
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
            cluster.kubectl(&[
                "wait",
                "--for=condition=Established",
                "crd",
                "--all",
                "--timeout=60s",
            ]);
            let out =
                cluster.kubectl(&["apply", "-k", &repo_file("manifests").display().to_string()]);
            assert!(
                out.contains("certificate.cert-manager.io/drgitops-webhook created")
                    && out.contains("issuer.cert-manager.io/drgitops-selfsigned created"),
                "{out}"
            );
            let secret = cluster.kubectl(&[
                "-n",
                "drgitops-system",
                "get",
                "certificate",
                "drgitops-webhook",
                "-o",
                "jsonpath={.spec.secretName}",
            ]);
            assert_eq!(secret, "drgitops-webhook-tls");
        }
    }
    if !matches!(install, Install::CrdsLater) {
        cluster.kubectl(&[
            "wait",
            "--for=condition=Established",
            "crd",
            "--all",
            "--timeout=60s",
        ]);
    }
    // The README's commands (without cert-manager), or what cert-manager and its cainjector would do.
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
    for kind in [
        "mutatingwebhookconfiguration",
        "validatingwebhookconfiguration",
    ] {
        cluster.kubectl(&["patch", kind, "drgitops", "--type=json", "-p", &patch]);
    }
    cluster.kubectl(&["create", "namespace", "mysql"]);

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
    if matches!(install, Install::CrdsLater) {
        let drplan = repo_file("manifests/crd/drplan.yaml").display().to_string();
        cluster.kubectl(&["apply", "-f", &stork, "-f", &drplan]);
        cluster.kubectl(&[
            "wait",
            "--for=condition=Established",
            "crd",
            "--all",
            "--timeout=60s",
        ]);
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
    let webhook = Webhook { process, admin };
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

fn spawn(cluster: &Cluster, kubeconfig: &Path, port: u16, admin: &str, tls: &Path) -> Drgitops {
    let listen = format!("127.0.0.1:{port}");
    let (cert, key) = (tls.join("tls.crt"), tls.join("tls.key"));
    let policies = repo_file("policies");
    Drgitops::spawn(
        crate::DRGITOPS,
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
    http_get(addr, path).await.map(|(status, _)| status)
}

/// A plain-HTTP GET on the webhook's admin port: status and body.
async fn http_get(addr: &str, path: &str) -> Option<(u16, String)> {
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

/// One cluster (domain us-east-1b) with every manifest installed the README's way without cert-manager and
/// the webhook registered by Service, shared by the tests that only touch objects of their own. Its
/// processes are stopped by the control plane's watchdog when the test binary exits.
pub(crate) async fn shared() -> &'static (Cluster, Webhook) {
    static SHARED: tokio::sync::OnceCell<(Cluster, Webhook)> = tokio::sync::OnceCell::const_new();
    SHARED
        .get_or_init(|| async {
            let cluster = Cluster::start(WEST).await;
            let webhook =
                install_webhook(&cluster, &SERVICE_NAMES, Install::WithoutCertManager).await;
            cluster
                .env
                .adopt(webhook.process.pid())
                .expect("adopt the webhook");
            (cluster, webhook)
        })
        .await
}

/// kubectl through kube-apiserver; the stderr of a command that must fail.
fn fails(cluster: &Cluster, args: &[&str]) -> String {
    let out = cluster.kubectl_output(args, None);
    assert!(
        !out.status.success(),
        "kubectl {args:?} should fail, printed: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Denied through the Service, and never stored; the mutating webhook repairs through the same Service.
fn migration_schedules_are_denied_and_repaired(cluster: &Cluster, webhook: &Webhook) {
    let schedule = data("migrationschedule-start-apps.yaml");
    until_reached(
        cluster,
        &["apply", "-f", &schedule],
        "denied the request",
        webhook,
    );
    let stderr = fails(cluster, &["apply", "-f", &schedule]);
    assert!(
        stderr.starts_with("Error from server (Forbidden)")
            && stderr.contains("admission webhook \"dr-objects.drgitops.dev\" denied the request")
            && stderr.contains("startApplications"),
        "{stderr}"
    );
    fails(
        cluster,
        &[
            "-n",
            "mysql",
            "get",
            "migrationschedule",
            "mysql-starts-apps",
        ],
    );

    // Server-side dry run: judged the same, nothing stored either way.
    let dry = fails(cluster, &["apply", "--dry-run=server", "-f", &schedule]);
    assert!(dry.contains("denied the request"), "{dry}");
    let no_start = data("migrationschedule-no-start-field.yaml");
    let dry_ok = cluster.kubectl(&["apply", "--dry-run=server", "-f", &no_start]);
    assert!(dry_ok.contains("(server dry run)"), "{dry_ok}");
    fails(
        cluster,
        &["-n", "mysql", "get", "migrationschedule", "mysql-schedule"],
    );

    // Without the field: stored, with the field made explicit by the mutating webhook.
    cluster.kubectl(&["apply", "-f", &no_start]);
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
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn migration_schedules_never_start_applications() {
    let (cluster, webhook) = shared().await;
    migration_schedules_are_denied_and_repaired(cluster, webhook);
    // A one-shot Migration may start applications on purpose: admitted, with a warning kubectl prints.
    let out = cluster.kubectl_output(&["apply", "-f", &data("migration-start-apps.yaml")], None);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains("Warning: migration-start-applications: "),
        "{stderr}"
    );
    assert_eq!(http_status(&webhook.admin, "/livez").await, Some(200));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_manifests_install_as_shipped_with_cert_managers_crds() {
    let cluster = Cluster::start(EAST).await;
    let webhook = install_webhook(&cluster, &SERVICE_NAMES, Install::CertManager).await;
    migration_schedules_are_denied_and_repaired(&cluster, &webhook);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_default_storage_class_is_rejected_naming_the_first() {
    let (cluster, webhook) = shared().await;
    cluster.kubectl(&["apply", "-f", &data("storageclass-default-a.yaml")]);
    let b = data("storageclass-default-b.yaml");
    until_reached(cluster, &["apply", "-f", &b], "denied the request", webhook);
    let stderr = fails(cluster, &["apply", "-f", &b]);
    assert!(stderr.contains("denied the request"), "{stderr}");
    assert!(
        stderr.contains("\"px-db\""),
        "the denial names the current default: {stderr}"
    );
    fails(cluster, &["get", "storageclass", "px-fast"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_schedule_policy_is_rejected_naming_the_field() {
    let (cluster, webhook) = shared().await;
    let policy = data("schedulepolicy-daily-invalid.yaml");
    let stderr = until_reached(
        cluster,
        &["apply", "-f", &policy],
        "denied the request",
        webhook,
    );
    assert!(
        stderr.contains("policy.daily.time"),
        "the denial names the field: {stderr}"
    );
    let stderr = fails(cluster, &["apply", "-f", &policy]);
    assert!(stderr.contains("denied the request"), "{stderr}");
    assert!(
        stderr.contains("12:04"),
        "the denial shows the value: {stderr}"
    );
}

/// The standby guard's fixtures moved to namespace `ns` (the plan protects its own namespace); the
/// Deployment and its pods' `app` label are named `ns` too.
fn standby_fixtures(cluster: &Cluster, ns: &str) {
    cluster.kubectl(&["create", "namespace", ns]);
    for file in ["drplan-mysql.yaml", "deployment-mysql.yaml"] {
        let text = std::fs::read_to_string(data(file)).expect("fixture");
        cluster.apply_yaml(&text.replace("mysql", ns));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scaling_up_on_a_standby_cluster_is_left_to_the_reconciler() {
    // This cluster is us-east-1b; the plan makes us-east-1a primary, so the namespace is standby here.
    let (cluster, webhook) = shared().await;
    let ns = "guard";
    standby_fixtures(cluster, ns);
    let scale = ["scale", "deployment", ns, "-n", ns, "--replicas=2"];
    until_reached(cluster, &scale, "denied the request", webhook);
    let stderr = fails(cluster, &scale);
    assert!(
        stderr.contains("admission webhook \"workloads.drgitops.dev\" denied the request"),
        "{stderr}"
    );
    let replicas = [
        "get",
        "deployment",
        ns,
        "-n",
        ns,
        "-o",
        "jsonpath={.spec.replicas}",
    ];
    assert_eq!(cluster.kubectl(&replicas), "0");
    assert_eq!(cluster.ready_pods(ns, ns).await, 0, "nothing runs");

    // The reconciler, as its ServiceAccount, scales with a merge patch of spec.replicas, as it does in a
    // failover (its RBAC has list and patch on Deployments, no get and no deployments/scale).
    let kubeconfig = cluster
        .service_account_kubeconfig("drgitops-reconciler")
        .await;
    let reconciler =
        testenv::client_from_kubeconfig(&std::fs::read_to_string(kubeconfig).expect("kubeconfig"))
            .await
            .expect("reconciler client");
    kube::Api::<k8s_openapi::api::apps::v1::Deployment>::namespaced(reconciler, ns)
        .patch(
            ns,
            &kube::api::PatchParams::default(),
            &kube::api::Patch::Merge(serde_json::json!({"spec": {"replicas": 2}})),
        )
        .await
        .expect("the reconciler scales the standby up");
    assert_eq!(cluster.kubectl(&replicas), "2");
    let running = eventually(Duration::from_secs(60), || async {
        (cluster.ready_pods(ns, ns).await == 2).then_some(())
    })
    .await;
    assert!(running.is_some(), "the reconciler's scale-up runs two pods");

    let (status, metrics) = http_get(&webhook.admin, "/metrics").await.expect("metrics");
    assert_eq!(status, 200);
    let denials = metrics
        .lines()
        .find(|l| {
            l.starts_with(
                "drgitops_rule_results_total{rule=\"standby-scale-guard\",action=\"deny\"}",
            )
        })
        .and_then(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
        .unwrap_or_else(|| panic!("no standby-scale-guard denials counted:\n{metrics}"));
    assert!(
        denials >= 2,
        "the dry runs and the real scale were counted: {denials}"
    );
    assert!(metrics.contains(
        "drgitops_admission_requests_total{endpoint=\"validate\",operation=\"UPDATE\",kind=\"Scale\",decision=\"Denied\"}"
    ) || metrics.contains(
        "drgitops_admission_requests_total{endpoint=\"validate\",operation=\"UPDATE\",kind=\"Deployment\",decision=\"Denied\"}"
    ), "{metrics}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kinds_installed_after_start_are_picked_up() {
    // Ready without Stork or the DRPlan CRD: kinds that are not served count as synced and empty. The
    // DRPlan watch starts working once its CRD exists, and the standby guard then sees the plan.
    let cluster = Cluster::start(WEST).await;
    let webhook = install_webhook(&cluster, &SERVICE_NAMES, Install::CrdsLater).await;
    let ns = "later";
    standby_fixtures(&cluster, ns);
    until_reached(
        &cluster,
        &["scale", "deployment", ns, "-n", ns, "--replicas=1"],
        "denied the request",
        &webhook,
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_certificate_for_another_name_is_refused_by_kube_apiserver() {
    // The name check production relies on: kube-apiserver verifies the webhook's certificate against the
    // Service's DNS name, so a certificate for another name fails the call, and `failurePolicy: Fail` keeps
    // the object out.
    let cluster = Cluster::start(EAST).await;
    let webhook = install_webhook(
        &cluster,
        &["drgitops-webhook.elsewhere.svc"],
        Install::WithoutCertManager,
    )
    .await;
    let stderr = until_reached(
        &cluster,
        &[
            "apply",
            "-f",
            &data("migrationschedule-no-start-field.yaml"),
        ],
        "x509",
        &webhook,
    );
    assert!(
        stderr.contains("failed calling webhook \"dr-objects.drgitops.dev\"")
            && stderr.contains("drgitops-webhook.drgitops-system.svc"),
        "{stderr}"
    );
}
