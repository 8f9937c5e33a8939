//! The plan controller without the git source (DRPlans applied by Argo CD or Flux), and a primary whose peer's
//! API server stops answering.

mod reconcile_support;

use drgitops::gitops::runner::Reconciler;
use kube::api::{Api, Patch, PatchParams};
use reconcile_support::*;
use serde_json::Value;

async fn apply_plan_as_argocd(client: &kube::Client, file: &str) {
    let object: Value = serde_yaml::from_str(&read_data(file)).expect("plan yaml");
    let namespace = object["metadata"]["namespace"]
        .as_str()
        .expect("namespace")
        .to_string();
    let name = object["metadata"]["name"]
        .as_str()
        .expect("name")
        .to_string();
    let api: Api<drgitops::plan::DRPlan> = Api::namespaced(client.clone(), &namespace);
    api.patch(
        &name,
        &PatchParams::apply("argocd-controller"),
        &Patch::Apply(&object),
    )
    .await
    .expect("applied");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plans_from_argocd_are_reconciled_without_a_git_url() {
    let (east, west) = two_clusters().await;
    for cluster in [&east, &west] {
        apply_plan_as_argocd(&cluster.client(), "plans/mysql.yaml").await;
    }
    for cluster in [&east, &west] {
        let mut opts = drgitops::gitops::runner::ReconcilerOptions::new("test");
        opts.cluster_domain = Some(cluster.domain.clone());
        let outcome = Reconciler::new(cluster.client(), opts).pass(true).await;
        assert!(outcome.ok, "{}: {:?}", cluster.domain, outcome.errors);
    }
    let primary = stork(&east.client(), "MigrationSchedule", "mysql", "mysql")
        .await
        .expect("schedule");
    assert_eq!(primary["spec"]["suspend"], false);
    let standby = stork(&west.client(), "MigrationSchedule", "mysql", "mysql")
        .await
        .expect("schedule");
    assert_eq!(standby["spec"]["suspend"], true);
    let plan = plan(&west.client(), "mysql", "mysql").await.expect("plan");
    assert_eq!(plan["status"]["role"], "Standby");
    assert_eq!(condition(&plan, "Ready").expect("Ready")["status"], "True");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_primary_suspends_its_schedule_while_the_peer_is_unreachable() {
    let (east, west) = two_clusters().await;
    apply_plan_as_argocd(&east.client(), "plans/mysql.yaml").await;
    let mut opts = drgitops::gitops::runner::ReconcilerOptions::new("test");
    opts.cluster_domain = Some(EAST.into());
    opts.peer_timeout = std::time::Duration::from_secs(1);
    let reconciler = Reconciler::new(east.client(), opts);
    assert!(reconciler.pass(true).await.ok);
    let running = stork(&east.client(), "MigrationSchedule", "mysql", "mysql")
        .await
        .expect("schedule");
    assert_eq!(running["spec"]["suspend"], false);

    drop(west);
    let outcome = reconciler.pass(true).await;
    assert!(!outcome.ok, "an unreachable peer is reported");
    let suspended = stork(&east.client(), "MigrationSchedule", "mysql", "mysql")
        .await
        .expect("schedule");
    assert_eq!(suspended["spec"]["suspend"], true);
    let plan = plan(&east.client(), "mysql", "mysql").await.expect("plan");
    assert_eq!(plan["status"]["role"], "Primary");
    assert_eq!(plan["status"]["phase"], "Degraded");
    let ready = condition(&plan, "Ready").expect("Ready");
    assert_eq!(ready["status"], "False");
    assert_eq!(ready["reason"], "PeerUnreachable");
}
