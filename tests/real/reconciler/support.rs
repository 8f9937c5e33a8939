//! Set-up and reads the reconciler tests share that need drgitops' types: clusters with the peer Secrets,
//! clients and options for the shipped `drgitops-reconciler` ServiceAccount, Stork objects and DRPlans as JSON,
//! and a DRPlan stored under an older, looser CRD schema.

use std::path::Path;
use std::time::Duration;

use drgitops::reconcile::runner::ReconcilerOptions;
use drgitops::source::git::{GitAuth, GitSourceConfig};
use kube::api::{Api, DynamicObject, Patch, PatchParams, PostParams};
use serde_json::{Value, json};
use testkit::reconcile::{
    PLAN_NAMESPACES, add_peer_secrets, reconciler_cluster, shared_reconciler_cluster,
};
use testkit::{Cluster, EAST, WEST, eventually, repo_file};

pub use testkit::reconcile::gitops_data as read_data;

/// Where the reconciler keeps its Lease and inventory, as the shipped Deployment sets it.
pub const SYSTEM_NAMESPACE: &str = "drgitops-system";

/// The peer (domain us-east-1b) of the tests' own east clusters, shared: it only answers the reconciler's
/// reachability probe, as the `drgitops-peer` ServiceAccount. Tests never write to it.
pub async fn peer() -> &'static Cluster {
    static PEER: tokio::sync::OnceCell<Cluster> = tokio::sync::OnceCell::const_new();
    shared_reconciler_cluster(&PEER, WEST).await
}

/// A cluster of this test's own in us-east-1a whose plan namespaces hold the peer Secrets for [`peer`].
pub async fn east() -> Cluster {
    let (east, peer) = tokio::join!(reconciler_cluster(EAST), peer());
    add_peer_secrets(&east, peer, &PLAN_NAMESPACES, None).await;
    east
}

/// Two clusters of this test's own, east and west, each the other's peer.
pub async fn pair() -> (Cluster, Cluster) {
    let (east, west) = tokio::join!(reconciler_cluster(EAST), reconciler_cluster(WEST));
    add_peer_secrets(&east, &west, &PLAN_NAMESPACES, None).await;
    add_peer_secrets(&west, &east, &PLAN_NAMESPACES, None).await;
    (east, west)
}

/// A client that is the shipped `drgitops-reconciler` ServiceAccount of `cluster`, as the reconciler's pods are.
pub async fn reconciler_client(cluster: &Cluster) -> kube::Client {
    cluster.service_account_client("drgitops-reconciler").await
}

/// Options of a reconciler without a git source (plans applied by Argo CD or Flux), in `domain` if given.
pub fn controller_options(domain: Option<&str>) -> ReconcilerOptions {
    let mut options = ReconcilerOptions::new("test");
    options.cluster_domain = domain.map(Into::into);
    options.system_namespace = SYSTEM_NAMESPACE.into();
    options.admin_listen = "127.0.0.1:0".into();
    options
}

/// Options for a reconciler of `domain` following `repo`'s `plans/` on main.
pub fn options(domain: &str, repo: &Path, cache: &Path) -> ReconcilerOptions {
    let mut options = controller_options(Some(domain));
    options.identity = format!("test-{domain}");
    options.git = Some(GitSourceConfig {
        url: repo.display().to_string(),
        branch: "main".into(),
        path: "plans".into(),
        cache_dir: cache.to_path_buf(),
        auth: GitAuth::None,
    });
    options.interval = Duration::from_secs(3600);
    options.lease_duration = Duration::from_secs(3);
    options.peer_timeout = Duration::from_secs(2);
    options
}

fn stork_resource(kind: &str) -> kube::discovery::ApiResource {
    let (resource, _) =
        drgitops::cluster::apply::api_resource(drgitops::stork::keys::STORK_API_VERSION, kind)
            .expect("known kind");
    resource
}

/// Stork objects of `kind` in `namespace`, as an admin reads them.
pub fn stork_api(client: &kube::Client, kind: &str, namespace: &str) -> Api<DynamicObject> {
    Api::namespaced_with(client.clone(), namespace, &stork_resource(kind))
}

/// A Stork object as JSON, or None.
pub async fn stork(
    client: &kube::Client,
    kind: &str,
    namespace: &str,
    name: &str,
) -> Option<Value> {
    stork_api(client, kind, namespace)
        .get_opt(name)
        .await
        .expect("get")
        .map(|o| serde_json::to_value(o).expect("json"))
}

/// Creates a Stork object by hand (as a person with kubectl would).
pub async fn create_stork(client: &kube::Client, kind: &str, namespace: &str, object: Value) {
    let object: DynamicObject = serde_json::from_value(object).expect("object");
    stork_api(client, kind, namespace)
        .create(
            &PostParams {
                field_manager: Some("kubectl-create".into()),
                ..Default::default()
            },
            &object,
        )
        .await
        .expect("created");
}

fn plans_resource() -> kube::api::ApiResource {
    kube::api::ApiResource::erase::<drgitops::plan::DRPlan>(&())
}

fn plans_api(client: &kube::Client, namespace: &str) -> Api<DynamicObject> {
    Api::namespaced_with(client.clone(), namespace, &plans_resource())
}

/// A DRPlan as JSON, or None; read as stored, so a plan that no longer reads as a DRPlan can be looked at too.
pub async fn plan(client: &kube::Client, namespace: &str, name: &str) -> Option<Value> {
    plans_api(client, namespace)
        .get_opt(name)
        .await
        .expect("get plan")
        .map(|p| serde_json::to_value(p).expect("json"))
}

/// The condition `type_` of a plan's status.
pub fn condition<'a>(plan: &'a Value, type_: &str) -> Option<&'a Value> {
    plan.pointer("/status/conditions")?
        .as_array()?
        .iter()
        .find(|c| c["type"] == type_)
}

/// Whether the plan `name` (in the namespace of the same name) carries a Warning Event with `reason` whose note
/// contains `text`, within a few seconds.
pub async fn warning_names(client: &kube::Client, name: &str, reason: &str, text: &str) -> bool {
    let events: Api<k8s_openapi::api::core::v1::Event> = Api::namespaced(client.clone(), name);
    eventually(Duration::from_secs(10), || async {
        events
            .list(&Default::default())
            .await
            .expect("events")
            .items
            .into_iter()
            .any(|e| {
                e.type_.as_deref() == Some("Warning")
                    && e.reason.as_deref() == Some(reason)
                    && e.involved_object.name.as_deref() == Some(name)
                    && e.involved_object.kind.as_deref() == Some("DRPlan")
                    && e.message.as_deref().is_some_and(|m| m.contains(text))
            })
            .then_some(())
    })
    .await
    .is_some()
}

/// Creates Deployment `mysql/web` at `replicas`, with `recorded` in the `migrationReplicas` annotation if given.
pub async fn web_deployment(client: &kube::Client, replicas: i32, recorded: Option<&str>) {
    let annotations = match recorded {
        Some(n) => json!({"stork.libopenstorage.org/migrationReplicas": n}),
        None => json!({}),
    };
    let d: k8s_openapi::api::apps::v1::Deployment = serde_json::from_value(json!({
        "metadata": {"name": "web", "namespace": "mysql", "annotations": annotations},
        "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": "web"}},
                 "template": {"metadata": {"labels": {"app": "web"}},
                              "spec": {"containers": [{"name": "web", "image": "registry.example/web:1"}]}}}
    }))
    .expect("deployment");
    Api::<k8s_openapi::api::apps::v1::Deployment>::namespaced(client.clone(), "mysql")
        .create(&PostParams::default(), &d)
        .await
        .expect("deployment created");
}

/// The shipped DRPlan CRD with a schema that takes any `spec`, as an older drgitops' CRD might have had.
fn loosened_crd() -> String {
    let path = repo_file("manifests/crd/drplan.yaml");
    let shipped = std::fs::read_to_string(&path).expect("shipped CRD");
    let mut crd: Value = serde_yaml::from_str(&shipped).expect("CRD yaml");
    for version in crd["spec"]["versions"]
        .as_array_mut()
        .expect("versions")
        .iter_mut()
    {
        version["schema"]["openAPIV3Schema"]["properties"]["spec"] =
            json!({"type": "object", "x-kubernetes-preserve-unknown-fields": true});
    }
    serde_json::to_string(&crd).expect("json")
}

/// Stores the merge patch `patch` on DRPlan `namespace/name` the way a cluster comes to hold a plan the shipped
/// schema refuses: written while an older, looser CRD was installed, kept when the shipped CRD came back (stored
/// objects are not re-validated). Applies the loosened CRD and the shipped one with kubectl, and returns once the
/// shipped schema refuses the same patch again.
pub async fn store_under_older_schema(
    cluster: &Cluster,
    namespace: &str,
    name: &str,
    patch: Value,
) {
    let admin = cluster.client().await;
    let plans = plans_api(&admin, namespace);
    cluster.apply_yaml(&loosened_crd());
    let stored = eventually(Duration::from_secs(30), || async {
        plans
            .patch(name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
            .ok()
    })
    .await;
    assert!(stored.is_some(), "the loosened schema never took {patch}");
    cluster.kubectl(&[
        "apply",
        "-f",
        &repo_file("manifests/crd/drplan.yaml").display().to_string(),
    ]);
    // The shipped schema is back when it refuses a new plan with the stored spec (an update that leaves the
    // field as it is would pass: CRD validation ratchets unchanged fields).
    let stored = plans.get(name).await.expect("stored plan");
    let mut copy =
        DynamicObject::new(&format!("{name}-schema-check"), &plans_resource()).within(namespace);
    copy.data = json!({"spec": stored.data["spec"].clone()});
    let dry_run = PostParams {
        dry_run: true,
        ..Default::default()
    };
    let refused = eventually(Duration::from_secs(30), || async {
        plans.create(&dry_run, &copy).await.is_err().then_some(())
    })
    .await;
    assert!(
        refused.is_some(),
        "the shipped schema never came back to refuse {patch}"
    );
}

/// Merge-patches DRPlan `namespace/name` as an admin with kubectl would.
pub async fn patch_plan(client: &kube::Client, namespace: &str, name: &str, patch: Value) {
    plans_api(client, namespace)
        .patch(name, &PatchParams::default(), &Patch::Merge(patch))
        .await
        .expect("patched");
}
