//! End to end: the in-memory API server calls the real `drgitops webhook` process through webhook
//! configurations taken from `manifests/` (pointed at a loopback URL), and kubectl is the user.

mod webhook_common;

use std::path::PathBuf;

use fake_apiserver::FakeApiServer;
use webhook_common::{
    Pki, admin_get, data, eventually, free_port, loopback_webhook_configurations, secret_volume,
    spawn_webhook,
};

/// The reconciler's identity in the shipped deployment, exempt from the standby guard.
const RECONCILER: &str = "system:serviceaccount:drgitops-system:drgitops-reconciler";

fn repo(path: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(path)
}

struct Kubectl {
    success: bool,
    stdout: String,
    stderr: String,
}

/// One cluster: the fake API server with Stork's and drgitops' CRDs, and a webhook process registered in it.
struct Cluster {
    _api: FakeApiServer,
    dir: tempfile::TempDir,
    webhook: std::process::Child,
    /// The webhook's admin address (`/livez`, `/readyz`, `/metrics`).
    admin: String,
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let _ = self.webhook.kill();
        let _ = self.webhook.wait();
    }
}

impl Cluster {
    async fn start(local_domain: &str) -> Cluster {
        Cluster::start_with(local_domain, true).await
    }

    /// `crds_first: false` starts the webhook on a cluster where neither Stork nor drgitops is installed yet.
    async fn start_with(local_domain: &str, crds_first: bool) -> Cluster {
        webhook_common::install_crypto();
        let api = FakeApiServer::start().await.expect("fake API server");
        let dir = tempfile::tempdir().expect("tempdir");
        api.write_kubeconfig(dir.path().join("kubeconfig"))
            .expect("kubeconfig");
        let admin = format!("127.0.0.1:{}", free_port());
        let mut cluster = Cluster {
            _api: api,
            dir,
            webhook: placeholder_child(),
            admin: admin.clone(),
        };
        if crds_first {
            cluster.install_crds().await;
        }
        cluster.ok(&["create", "namespace", "mysql"]).await;

        let pki = Pki::new("drgitops-webhook-ca");
        let tls_dir = cluster.dir.path().join("tls");
        std::fs::create_dir_all(&tls_dir).expect("tls dir");
        secret_volume(&tls_dir, "1", &pki.leaf("drgitops-webhook"));
        let listen = format!("127.0.0.1:{}", free_port());
        let _ = cluster.webhook.kill();
        let _ = cluster.webhook.wait();
        cluster.webhook =
            spawn_webhook(&listen, &admin, local_domain, &tls_dir, cluster.dir.path());
        let ready = eventually(60, || async {
            matches!(admin_get(&admin, "/readyz").await, Some((200, _))).then_some(())
        })
        .await;
        assert!(
            ready.is_some(),
            "the webhook never became ready; log:\n{}",
            cluster.log()
        );

        for config in loopback_webhook_configurations(&listen, &pki.ca_pem(), cluster.dir.path()) {
            cluster
                .ok(&["apply", "-f", &config.to_string_lossy()])
                .await;
        }
        cluster
    }

    async fn install_crds(&self) {
        for file in [data("stork-crds.yaml"), repo("manifests/crd/drplan.yaml")] {
            self.ok(&["apply", "-f", &file.to_string_lossy()]).await;
        }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("webhook.log")).unwrap_or_default()
    }

    async fn kubectl(&self, args: &[&str]) -> Kubectl {
        let out = tokio::process::Command::new("kubectl")
            .args(args)
            .env("KUBECONFIG", self.dir.path().join("kubeconfig"))
            .output()
            .await
            .expect("kubectl is installed");
        Kubectl {
            success: out.status.success(),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    async fn ok(&self, args: &[&str]) -> Kubectl {
        let out = self.kubectl(args).await;
        assert!(
            out.success,
            "kubectl {args:?} failed: {}\nwebhook log:\n{}",
            out.stderr,
            self.log()
        );
        out
    }

    async fn fails(&self, args: &[&str]) -> Kubectl {
        let out = self.kubectl(args).await;
        assert!(
            !out.success,
            "kubectl {args:?} should fail, printed: {}{}",
            out.stdout, out.stderr
        );
        out
    }

    /// Waits until a server-side dry run of `args` is denied by the webhook: the webhook's caches have caught
    /// up with what the test just created. A dry run has no side effects, so retrying it is harmless.
    async fn until_denied(&self, args: &[&str]) {
        let mut with_dry_run: Vec<&str> = args.to_vec();
        with_dry_run.push("--dry-run=server");
        let denied = eventually(30, || async {
            let out = self.kubectl(&with_dry_run).await;
            (!out.success && out.stderr.contains("denied the request")).then_some(())
        })
        .await;
        assert!(
            denied.is_some(),
            "kubectl {args:?} was never denied; webhook log:\n{}",
            self.log()
        );
    }
}

fn placeholder_child() -> std::process::Child {
    std::process::Command::new("true")
        .spawn()
        .expect("spawn true")
}

fn file(name: &str) -> String {
    data(name).to_string_lossy().into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn migration_schedules_never_start_applications() {
    let c = Cluster::start("us-east-1a").await;

    let denied = c
        .fails(&["apply", "-f", &file("migrationschedule-start-apps.yaml")])
        .await;
    assert!(
        denied.stderr.starts_with("Error from server (Forbidden)"),
        "a 403: {}",
        denied.stderr
    );
    assert!(
        denied
            .stderr
            .contains("admission webhook \"dr-objects.drgitops.dev\" denied the request"),
        "{}",
        denied.stderr
    );
    assert!(
        denied.stderr.contains("startApplications"),
        "{}",
        denied.stderr
    );
    c.fails(&[
        "get",
        "migrationschedule",
        "mysql-starts-apps",
        "-n",
        "mysql",
    ])
    .await;

    // Server-side dry run: judged the same, nothing stored either way.
    let dry = c
        .fails(&[
            "apply",
            "--dry-run=server",
            "-f",
            &file("migrationschedule-start-apps.yaml"),
        ])
        .await;
    assert!(dry.stderr.contains("denied the request"), "{}", dry.stderr);
    let dry_ok = c
        .ok(&[
            "apply",
            "--dry-run=server",
            "-f",
            &file("migrationschedule-no-start-field.yaml"),
        ])
        .await;
    assert!(
        dry_ok.stdout.contains("(server dry run)"),
        "{}",
        dry_ok.stdout
    );
    c.fails(&["get", "migrationschedule", "mysql-schedule", "-n", "mysql"])
        .await;

    // Without the field: stored, with the field made explicit by the mutating webhook.
    c.ok(&[
        "apply",
        "-f",
        &file("migrationschedule-no-start-field.yaml"),
    ])
    .await;
    let stored = c
        .ok(&[
            "get",
            "migrationschedule",
            "mysql-schedule",
            "-n",
            "mysql",
            "-o",
            "jsonpath={.spec.template.spec.startApplications}",
        ])
        .await;
    assert_eq!(stored.stdout, "false");

    // A one-shot Migration may start applications on purpose: admitted, with a warning kubectl prints.
    let warned = c
        .ok(&["apply", "-f", &file("migration-start-apps.yaml")])
        .await;
    assert!(
        warned
            .stderr
            .contains("Warning: migration-start-applications: "),
        "{}",
        warned.stderr
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_default_storage_class_is_rejected_naming_the_first() {
    let c = Cluster::start("us-east-1a").await;
    c.ok(&["apply", "-f", &file("storageclass-default-a.yaml")])
        .await;
    let b = file("storageclass-default-b.yaml");
    let second = ["apply", "-f", b.as_str()];
    c.until_denied(&second).await;
    let denied = c.fails(&second).await;
    assert!(
        denied.stderr.contains("denied the request"),
        "{}",
        denied.stderr
    );
    assert!(
        denied.stderr.contains("\"px-db\""),
        "the denial names the current default: {}",
        denied.stderr
    );
    c.fails(&["get", "storageclass", "px-fast"]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_schedule_policy_is_rejected_naming_the_field() {
    let c = Cluster::start("us-east-1a").await;
    let denied = c
        .fails(&["apply", "-f", &file("schedulepolicy-daily-invalid.yaml")])
        .await;
    assert!(
        denied.stderr.contains("denied the request"),
        "{}",
        denied.stderr
    );
    assert!(
        denied.stderr.contains("policy.daily.time"),
        "the denial names the field: {}",
        denied.stderr
    );
    assert!(
        denied.stderr.contains("12:04"),
        "the denial shows the value: {}",
        denied.stderr
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scaling_up_on_a_standby_cluster_is_left_to_the_reconciler() {
    // This cluster is us-east-1b; the plan makes us-east-1a primary, so mysql is standby here.
    let c = Cluster::start("us-east-1b").await;
    c.ok(&["apply", "-f", &file("drplan-mysql.yaml")]).await;
    c.ok(&["apply", "-f", &file("deployment-mysql.yaml")]).await;

    let scale = [
        "scale",
        "deployment",
        "mysql",
        "-n",
        "mysql",
        "--replicas=2",
    ];
    c.until_denied(&scale).await;
    let denied = c.fails(&scale).await;
    assert!(
        denied
            .stderr
            .contains("admission webhook \"workloads.drgitops.dev\" denied the request"),
        "{}",
        denied.stderr
    );
    let replicas = [
        "get",
        "deployment",
        "mysql",
        "-n",
        "mysql",
        "-o",
        "jsonpath={.spec.replicas}",
    ];
    assert_eq!(c.ok(&replicas).await.stdout, "0");

    let as_reconciler = format!("--as={RECONCILER}");
    c.ok(&[
        "scale",
        "deployment",
        "mysql",
        "-n",
        "mysql",
        "--replicas=2",
        &as_reconciler,
    ])
    .await;
    assert_eq!(c.ok(&replicas).await.stdout, "2");

    let (status, metrics) = admin_get(&c.admin, "/metrics").await.expect("metrics");
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
        "drgitops_admission_requests_total{endpoint=\"validate\",operation=\"UPDATE\",kind=\"Deployment\",decision=\"Denied\"}"
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kinds_installed_after_start_are_picked_up() {
    // Ready without Stork or the DRPlan CRD: kinds that are not served count as synced and empty.
    let c = Cluster::start_with("us-east-1b", false).await;
    c.install_crds().await;
    c.ok(&["apply", "-f", &file("drplan-mysql.yaml")]).await;
    c.ok(&["apply", "-f", &file("deployment-mysql.yaml")]).await;
    // The DRPlan watch starts working once its CRD exists, and the standby guard then sees the plan.
    c.until_denied(&[
        "scale",
        "deployment",
        "mysql",
        "-n",
        "mysql",
        "--replicas=1",
    ])
    .await;
}
