//! The split-brain guard around a transition: the real `drgitops webhook` registered by Service in a real
//! cluster (the shared one of `webhook.rs`, cluster domain us-east-1b), kubectl as the person, and the
//! transition executor as the reconciler (the shipped `drgitops-reconciler` ServiceAccount). After a failover
//! makes this cluster standby, `kubectl scale` of a protected workload is rejected; the reconciler's own
//! scaling (deactivation, then activation on failback) passes, and pods run or stop accordingly.

use std::time::Duration;

use drgitops::plan::DRPlan;
use drgitops::reconcile::transition::TransitionExecutor;
use k8s_openapi::api::apps::v1::Deployment;
use kube::api::{Patch, PatchParams};
use kube::{Api, Client};
use serde_json::json;
use testkit::{Cluster, EAST, WEST, eventually};

use crate::webhook::shared;
use testkit::webhook::Webhook;

/// This cluster's domain (the shared webhook cluster's) and the peer's.
const LOCAL: &str = WEST;
const PEER: &str = EAST;
/// The namespace of this test's plan and application, its own in the shared cluster.
const NS: &str = "split";

struct Guarded<'a> {
    cluster: &'a Cluster,
    webhook: &'a Webhook,
    reconciler: Client,
}

impl Guarded<'_> {
    /// The plan as the git source applies it (as the reconciler); `lost` declares a disaster.
    async fn commit(&self, primary: &str, lost: Option<&str>) {
        let mut plan = json!({
            "apiVersion": "drgitops.dev/v1alpha1",
            "kind": "DRPlan",
            "metadata": {"name": NS, "namespace": NS},
            "spec": {
                "mode": "async", "primary": primary, "domains": [{"name": LOCAL}, {"name": PEER}],
                "clusterPair": {"name": "remotecluster", "peerKubeconfigSecret": {"name": "drgitops-peer", "key": "kubeconfig"},
                                "storageSecret": {"name": "drgitops-peer-storage"}},
                "schedule": {"interval": {"intervalMinutes": 15}}
            }
        });
        if let Some(lost) = lost {
            plan["spec"]["failover"] = json!({"disaster": {"lost": lost}});
        }
        Api::<DRPlan>::namespaced(self.reconciler.clone(), NS)
            .patch(
                NS,
                &PatchParams::apply("git-source").force(),
                &Patch::Apply(&plan),
            )
            .await
            .expect("plan applied");
    }

    /// Runs the reconciler's transition (there is no peer here: the failback declares it lost). The protect step
    /// waits for the
    /// plan controller's apply, which this test leaves out; the replicas are what it checks.
    async fn reconcile(&self, revision: &str) {
        let plan = Api::<DRPlan>::namespaced(self.reconciler.clone(), NS)
            .get(NS)
            .await
            .expect("plan");
        TransitionExecutor::new(self.reconciler.clone(), Duration::from_secs(1))
            .run(&plan, LOCAL, revision, None, || async { Ok(()) })
            .await
            .map(drop)
            .unwrap_or_else(|e| {
                panic!(
                    "the reconciler's writes pass the webhook: {e}\nwebhook log:\n{}",
                    self.webhook.process.log()
                )
            });
    }

    /// `spec.replicas` of the application, read as admin (the reconciler may list, not get).
    async fn replicas(&self) -> i32 {
        let d = Api::<Deployment>::namespaced(self.cluster.client().await, NS)
            .get("web")
            .await
            .expect("web");
        d.spec.and_then(|s| s.replicas).unwrap_or(1)
    }

    /// Waits until `count` pods of the application are Ready (and no more).
    async fn running(&self, count: usize) {
        let reached = eventually(Duration::from_secs(60), || async {
            (self.cluster.ready_pods(NS, "web").await == count).then_some(())
        })
        .await;
        assert!(
            reached.is_some(),
            "{count} pods never ran; {} do",
            self.cluster.ready_pods(NS, "web").await
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_a_failover_kubectl_cannot_scale_up_the_standby_but_the_reconciler_can_fail_back() {
    let (cluster, webhook) = shared().await;
    let reconciler = cluster.service_account_client("drgitops-reconciler").await;
    let c = Guarded {
        cluster,
        webhook,
        reconciler,
    };
    cluster.kubectl(&["create", "namespace", NS]);
    c.commit(LOCAL, None).await;
    cluster.apply_yaml(&format!(
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\n  namespace: {NS}\nspec:\n  replicas: 2\n  selector:\n    matchLabels: {{app: web}}\n  template:\n    metadata:\n      labels: {{app: web}}\n    spec:\n      containers:\n      - name: web\n        image: registry.example/web:1\n"
    ));
    c.reconcile("rev1").await;
    assert_eq!(c.replicas().await, 2, "primary: the applications run");
    c.running(2).await;

    // Failover to the peer: this cluster stops its applications, through the webhook (and then waits for its
    // final migration, which no Stork here carries out).
    c.commit(PEER, None).await;
    c.reconcile("rev2").await;
    assert_eq!(c.replicas().await, 0);
    c.running(0).await;
    let recorded = cluster.kubectl(&[
        "get",
        "deployment",
        "web",
        "-n",
        NS,
        "-o",
        "jsonpath={.metadata.annotations.stork\\.libopenstorage\\.org/migrationReplicas}",
    ]);
    assert_eq!(recorded, "2");

    // A person scaling the application up here would run it on both sides: rejected (once the webhook's view
    // has seen the plan's new primary).
    let scale = ["scale", "deployment", "web", "-n", NS, "--replicas=2"];
    let denied = eventually(Duration::from_secs(30), || async {
        let out = cluster.kubectl_output(&scale, None);
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        (!out.status.success() && stderr.contains("denied the request")).then_some(stderr)
    })
    .await;
    let stderr = denied.unwrap_or_else(|| {
        panic!(
            "kubectl scale was never denied; webhook log:\n{}",
            webhook.process.log()
        )
    });
    assert!(
        stderr.contains("admission webhook \"workloads.drgitops.dev\" denied the request"),
        "{stderr}"
    );
    assert_eq!(c.replicas().await, 0);
    c.running(0).await;

    // Failback, the peer declared lost: the reconciler's own activation passes the same webhook.
    c.commit(LOCAL, Some(PEER)).await;
    c.reconcile("rev3").await;
    assert_eq!(c.replicas().await, 2);
    c.running(2).await;
}
