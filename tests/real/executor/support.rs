//! What the tests of this binary share: a kube client for a cluster's shipped ServiceAccount, the reconciler's
//! git repository and options, and waits on Ready pods.

use std::sync::Arc;
use std::time::Duration;

use drgitops::plan::{DRPlan, DRPlanStatus};
use drgitops::reconcile::runner::Reconciler;
use k8s_openapi::api::apps::v1::Deployment;
use kube::Api;
use kube::api::DynamicObject;
use serde_json::Value;
use testkit::{Cluster, eventually};

/// The kubeconfig (YAML) of ServiceAccount `drgitops-system/name` of `cluster`.
pub async fn service_account_kubeconfig(cluster: &Cluster, name: &str) -> String {
    let path = cluster.service_account_kubeconfig(name).await;
    std::fs::read_to_string(path).expect("kubeconfig")
}

/// Waits until `count` pods of each `(app, count)` in `namespace` are Ready (and no others).
pub async fn await_ready_pods(cluster: &Cluster, namespace: &str, apps: &[(&str, usize)]) {
    let done = eventually(Duration::from_secs(60), || async {
        for (app, count) in apps {
            if cluster.ready_pods(namespace, app).await != *count {
                return None;
            }
        }
        Some(())
    })
    .await;
    if done.is_none() {
        let mut seen = Vec::new();
        for (app, _) in apps {
            seen.push((*app, cluster.ready_pods(namespace, app).await));
        }
        panic!(
            "{namespace} on {}: Ready pods {seen:?}, expected {apps:?}",
            cluster.domain
        );
    }
}

pub use testkit::reconcile::Pair;

/// An in-process reconciler for `cluster` of `pair`, as its `drgitops-reconciler` ServiceAccount.
pub async fn reconciler(pair: &Pair, cluster: &Cluster) -> Arc<Reconciler> {
    let client = cluster.service_account_client("drgitops-reconciler").await;
    let cache = cluster.dir.path().join("cache");
    Reconciler::new(
        client,
        crate::reconciler::support::options(&cluster.domain, pair.repo.path(), &cache),
    )
}

/// `web`'s `spec.replicas` and recorded `migrationReplicas` in `mysql` on `cluster`.
pub async fn web_replicas(cluster: &Cluster) -> (i32, Option<String>) {
    // Stork's final migration deletes and re-creates a standby's changed objects: wait out that moment.
    let d = eventually(Duration::from_secs(10), || async {
        Api::<Deployment>::namespaced(cluster.client().await, "mysql")
            .get_opt("web")
            .await
            .expect("get web")
    })
    .await
    .expect("Deployment mysql/web exists");
    let recorded = d
        .metadata
        .annotations
        .and_then(|a| a.get("stork.libopenstorage.org/migrationReplicas").cloned());
    (d.spec.and_then(|s| s.replicas).unwrap_or(1), recorded)
}

/// The status of DRPlan `mysql/mysql` on `cluster`.
pub async fn plan_status(cluster: &Cluster) -> DRPlanStatus {
    Api::<DRPlan>::namespaced(cluster.client().await, "mysql")
        .get("mysql")
        .await
        .expect("plan")
        .status
        .unwrap_or_default()
}

/// A Stork object in `mysql` on `cluster` as JSON.
pub async fn stork_object(cluster: &Cluster, kind: &str, plural: &str, name: &str) -> Value {
    let api: Api<DynamicObject> = Api::namespaced_with(
        cluster.client().await,
        "mysql",
        &testkit::stork::resource(kind, plural),
    );
    serde_json::to_value(api.get(name).await.expect("stork object")).expect("json")
}
