//! The admission webhook as production runs it: registered by the shipped webhook configurations, which name
//! Service `drgitops-system/drgitops-webhook` (only `caBundle` filled in, as the README's path without
//! cert-manager does), serving a certificate for the Service's DNS name, watching the cluster as the shipped
//! `drgitops-webhook` ServiceAccount; kube-apiserver reaches it at the Service's endpoint, and kubectl is the
//! user.

use std::time::Duration;

use testkit::webhook::{
    Install, SERVICE_NAMES, Webhook, data, http_get, http_status, install, until_reached,
};
use testkit::{Cluster, EAST, WEST, eventually};

/// One cluster (domain us-east-1b) with every manifest installed the README's way without cert-manager and
/// the webhook registered by Service, shared by the tests that only touch objects of their own. Its
/// processes are stopped by the control plane's watchdog when the test binary exits.
pub(crate) async fn shared() -> &'static (Cluster, Webhook) {
    static SHARED: tokio::sync::OnceCell<(Cluster, Webhook)> = tokio::sync::OnceCell::const_new();
    SHARED
        .get_or_init(|| async {
            let cluster = Cluster::start(WEST).await;
            let webhook = install(
                crate::DRGITOPS,
                &cluster,
                &SERVICE_NAMES,
                Install::WithoutCertManager,
            )
            .await;
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
    let stored = cluster.get(
        &["-n", "mysql", "migrationschedule", "mysql-schedule"],
        "{.spec.template.spec.startApplications}",
    );
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
async fn the_manifests_install_as_shipped_with_cert_manager() {
    // cert-manager's own controller and cainjector: the shipped Issuer signs the shipped Certificate, the
    // webhook serves the Secret it lands in, and cainjector alone fills caBundle.
    let cluster = Cluster::start(EAST).await;
    let webhook = install(
        crate::DRGITOPS,
        &cluster,
        &SERVICE_NAMES,
        Install::CertManager,
    )
    .await;
    assert_eq!(webhook.cert_manager.len(), 2, "controller and cainjector");
    let issuer = cluster.get(
        &["-n", "drgitops-system", "secret", "drgitops-webhook-tls"],
        r"{.metadata.annotations.cert-manager\.io/issuer-name}",
    );
    assert_eq!(
        issuer, "drgitops-selfsigned",
        "issued by the shipped Issuer"
    );
    for kind in [
        "mutatingwebhookconfiguration",
        "validatingwebhookconfiguration",
    ] {
        let managers = cluster.get(
            &[kind, "drgitops", "--show-managed-fields"],
            "{.metadata.managedFields[*].manager}",
        );
        assert!(
            managers
                .split_whitespace()
                .any(|m| m == "cert-manager-cainjector"),
            "{kind}: caBundle written by cainjector, managers {managers}"
        );
    }
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
    let reconciler = cluster.service_account_client("drgitops-reconciler").await;
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
    // A `/scale` review is counted under the workload's kind, as before the move to a real kube-apiserver.
    assert!(
        metrics.contains(
            "drgitops_admission_requests_total{endpoint=\"validate\",operation=\"UPDATE\",kind=\"Deployment\",decision=\"Denied\"}"
        ),
        "{metrics}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kinds_installed_after_start_are_picked_up() {
    // Ready without Stork or the DRPlan CRD: kinds that are not served count as synced and empty. The
    // DRPlan watch starts working once its CRD exists, and the standby guard then sees the plan.
    let cluster = Cluster::start(WEST).await;
    let webhook = install(
        crate::DRGITOPS,
        &cluster,
        &SERVICE_NAMES,
        Install::CrdsLater,
    )
    .await;
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
    let webhook = install(
        crate::DRGITOPS,
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
