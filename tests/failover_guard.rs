//! The split-brain guard around a transition: the real `drgitops webhook` process registered in an in-memory API
//! server, kubectl as the person, and the transition executor as the reconciler (its service account). After a
//! failover makes this cluster standby, `kubectl scale` of a protected workload is rejected; the reconciler's own
//! scaling (deactivation, then activation on failback) passes.

mod webhook_common;

use std::path::PathBuf;
use std::time::Duration;

use drgitops::gitops::transition_exec::TransitionExecutor;
use drgitops::plan::DRPlan;
use fake_apiserver::FakeApiServer;
use k8s_openapi::api::apps::v1::Deployment;
use kube::api::{Patch, PatchParams};
use kube::{Api, Client};
use serde_json::json;
use webhook_common::{
    Pki, admin_get, eventually, free_port, loopback_webhook_configurations, secret_volume,
    spawn_webhook,
};

/// The reconciler's identity in the shipped deployment, exempt from the standby guard.
const RECONCILER: &str = "system:serviceaccount:drgitops-system:drgitops";
const LOCAL: &str = "us-east-1a";
const PEER: &str = "us-east-1b";

fn repo(path: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(path)
}

struct Cluster {
    api: FakeApiServer,
    dir: tempfile::TempDir,
    webhook: Option<std::process::Child>,
}

impl Drop for Cluster {
    fn drop(&mut self) {
        if let Some(mut child) = self.webhook.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Cluster {
    /// The fake API server with the CRDs and namespace `mysql`, and a webhook for cluster domain `LOCAL` registered
    /// in it with the shipped webhook configurations (pointed at the loopback listener).
    async fn start() -> Cluster {
        webhook_common::install_crypto();
        let api = FakeApiServer::start().await.expect("fake API server");
        let dir = tempfile::tempdir().expect("tempdir");
        api.write_kubeconfig(dir.path().join("kubeconfig"))
            .expect("kubeconfig");
        let mut cluster = Cluster {
            api,
            dir,
            webhook: None,
        };
        for file in [
            repo("tests/data/failover/stork-crds.yaml"),
            repo("manifests/crd/drplan.yaml"),
        ] {
            cluster.ok(&["apply", "-f", &file.to_string_lossy()]).await;
        }
        cluster.ok(&["create", "namespace", "mysql"]).await;

        let pki = Pki::new("drgitops-webhook-ca");
        let tls_dir = cluster.dir.path().join("tls");
        std::fs::create_dir_all(&tls_dir).expect("tls dir");
        secret_volume(&tls_dir, "1", &pki.leaf("drgitops-webhook"));
        let listen = format!("127.0.0.1:{}", free_port());
        let admin = format!("127.0.0.1:{}", free_port());
        cluster.webhook = Some(spawn_webhook(
            &listen,
            &admin,
            LOCAL,
            &tls_dir,
            cluster.dir.path(),
        ));
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

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("webhook.log")).unwrap_or_default()
    }

    async fn kubectl(&self, args: &[&str]) -> std::process::Output {
        tokio::process::Command::new("kubectl")
            .args(args)
            .env("KUBECONFIG", self.dir.path().join("kubeconfig"))
            .output()
            .await
            .expect("kubectl is installed")
    }

    async fn ok(&self, args: &[&str]) -> String {
        let out = self.kubectl(args).await;
        assert!(
            out.status.success(),
            "kubectl {args:?} failed: {}\nwebhook log:\n{}",
            String::from_utf8_lossy(&out.stderr),
            self.log()
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// The reconciler's client: the same server, as the reconciler's service account.
    fn reconciler(&self) -> Client {
        let mut config = self.api.config();
        config.auth_info.impersonate = Some(RECONCILER.into());
        Client::try_from(config).expect("client")
    }

    async fn commit(&self, primary: &str) {
        let plan = json!({
            "apiVersion": "drgitops.dev/v1alpha1",
            "kind": "DRPlan",
            "metadata": {"name": "mysql", "namespace": "mysql"},
            "spec": {
                "mode": "async", "primary": primary, "domains": [{"name": LOCAL}, {"name": PEER}],
                "clusterPair": {"name": "remotecluster", "peerKubeconfigSecret": {"name": "drgitops-peer", "key": "kubeconfig"},
                                "storageSecret": {"name": "drgitops-peer-storage"}},
                "schedule": {"interval": {"intervalMinutes": 15}}
            }
        });
        let api: Api<DRPlan> = Api::namespaced(self.reconciler(), "mysql");
        api.patch(
            "mysql",
            &PatchParams::apply("git-source").force(),
            &Patch::Apply(&plan),
        )
        .await
        .expect("plan applied");
    }

    /// Runs the reconciler's transition (the peer does not answer: a disaster). The protect step waits for the plan
    /// controller's apply, which this test leaves out; the replicas are what it checks.
    async fn reconcile(&self, revision: &str) {
        let client = self.reconciler();
        let plan = Api::<DRPlan>::namespaced(client.clone(), "mysql")
            .get("mysql")
            .await
            .expect("plan");
        TransitionExecutor::new(client, Duration::from_secs(1))
            .run(&plan, LOCAL, revision, None, || async { Ok(()) })
            .await
            .map(drop)
            .unwrap_or_else(|e| {
                panic!(
                    "the reconciler's writes pass the webhook: {e}\nwebhook log:\n{}",
                    self.log()
                )
            });
    }

    async fn replicas(&self) -> i32 {
        let d = Api::<Deployment>::namespaced(self.reconciler(), "mysql")
            .get("web")
            .await
            .expect("web");
        d.spec.and_then(|s| s.replicas).unwrap_or(1)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_a_failover_kubectl_cannot_scale_up_the_standby_but_the_reconciler_can_fail_back() {
    let c = Cluster::start().await;
    c.commit(LOCAL).await;
    let deployment = json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "mysql"},
        "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "web"}},
                 "template": {"metadata": {"labels": {"app": "web"}},
                              "spec": {"containers": [{"name": "web", "image": "registry.example/web:1"}]}}}
    });
    let file = c.dir.path().join("web.json");
    std::fs::write(&file, deployment.to_string()).expect("write");
    c.ok(&["apply", "-f", &file.to_string_lossy()]).await;
    c.reconcile("rev1").await;
    assert_eq!(c.replicas().await, 2, "primary: the applications run");

    // Failover to the peer: this cluster stops its applications, through the webhook.
    c.commit(PEER).await;
    c.reconcile("rev2").await;
    assert_eq!(c.replicas().await, 0);
    let recorded = c
        .ok(&[
            "get",
            "deployment",
            "web",
            "-n",
            "mysql",
            "-o",
            "jsonpath={.metadata.annotations.stork\\.libopenstorage\\.org/migrationReplicas}",
        ])
        .await;
    assert_eq!(recorded, "2");

    // A person scaling the application up here would run it on both sides: rejected (once the webhook's view has
    // seen the plan's new primary).
    let scale = ["scale", "deployment", "web", "-n", "mysql", "--replicas=2"];
    let denied = eventually(30, || async {
        let out = c.kubectl(&scale).await;
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        (!out.status.success() && stderr.contains("denied the request")).then_some(stderr)
    })
    .await;
    let stderr = denied
        .unwrap_or_else(|| panic!("kubectl scale was never denied; webhook log:\n{}", c.log()));
    assert!(
        stderr.contains("admission webhook \"workloads.drgitops.dev\" denied the request"),
        "{stderr}"
    );
    assert_eq!(c.replicas().await, 0);

    // Failback: the reconciler's own activation passes the same webhook.
    c.commit(LOCAL).await;
    c.reconcile("rev3").await;
    assert_eq!(c.replicas().await, 2);
}
