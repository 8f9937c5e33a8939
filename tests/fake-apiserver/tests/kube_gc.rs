//! Deletion semantics through kube-rs: owner-reference garbage collection with each propagation policy, and
//! namespace deletion waiting for finalizers of its content.

mod common;

use common::eventually;
use fake_apiserver::FakeApiServer;
use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::core::v1::{ConfigMap, Namespace};
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams, PropagationPolicy};
use kube::{Resource, ResourceExt};
use serde_json::json;

async fn owner_and_dependent(srv: &FakeApiServer) -> (Api<Deployment>, Api<ReplicaSet>) {
    let deps: Api<Deployment> = Api::default_namespaced(srv.client());
    let rss: Api<ReplicaSet> = Api::default_namespaced(srv.client());
    let d: Deployment = serde_json::from_value(json!({
        "metadata": {"name": "web"},
        "spec": {"selector": {"matchLabels": {"app": "web"}},
            "template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{"name": "c", "image": "nginx"}]}}}
    }))
    .unwrap();
    let d = deps.create(&PostParams::default(), &d).await.unwrap();
    let owner = d.controller_owner_ref(&()).unwrap();
    let rs: ReplicaSet = serde_json::from_value(json!({
        "metadata": {"name": "web-1", "ownerReferences": [owner]},
        "spec": {"selector": {"matchLabels": {"app": "web"}},
            "template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{"name": "c", "image": "nginx"}]}}}
    }))
    .unwrap();
    rss.create(&PostParams::default(), &rs).await.unwrap();
    (deps, rss)
}

#[tokio::test]
async fn background_deletion_collects_dependents() {
    let srv = FakeApiServer::start().await.unwrap();
    let (deps, rss) = owner_and_dependent(&srv).await;
    deps.delete("web", &DeleteParams::background())
        .await
        .unwrap();
    assert!(rss.get_opt("web-1").await.unwrap().is_none());
}

#[tokio::test]
async fn orphan_deletion_keeps_dependents_without_the_owner_reference() {
    let srv = FakeApiServer::start().await.unwrap();
    let (deps, rss) = owner_and_dependent(&srv).await;
    deps.delete("web", &DeleteParams::orphan()).await.unwrap();
    let rs = rss.get("web-1").await.unwrap();
    assert!(rs.owner_references().is_empty());
    let dp = DeleteParams {
        propagation_policy: Some(PropagationPolicy::Foreground),
        ..DeleteParams::default()
    };
    rss.delete("web-1", &dp).await.unwrap();
}

#[tokio::test]
async fn namespace_deletion_waits_for_finalized_content() {
    let srv = FakeApiServer::start().await.unwrap();
    let nss: Api<Namespace> = Api::all(srv.client());
    let ns: Namespace = serde_json::from_value(json!({"metadata": {"name": "doomed"}})).unwrap();
    nss.create(&PostParams::default(), &ns).await.unwrap();
    let cms: Api<ConfigMap> = Api::namespaced(srv.client(), "doomed");
    let plain: ConfigMap = serde_json::from_value(json!({"metadata": {"name": "plain"}})).unwrap();
    let held: ConfigMap = serde_json::from_value(
        json!({"metadata": {"name": "held", "finalizers": ["example.com/hold"]}}),
    )
    .unwrap();
    cms.create(&PostParams::default(), &plain).await.unwrap();
    cms.create(&PostParams::default(), &held).await.unwrap();

    nss.delete("doomed", &DeleteParams::default())
        .await
        .unwrap();
    let terminating = nss.get("doomed").await.unwrap();
    assert_eq!(
        terminating.status.unwrap().phase.as_deref(),
        Some("Terminating")
    );
    assert!(cms.get_opt("plain").await.unwrap().is_none());
    assert!(
        cms.get("held")
            .await
            .unwrap()
            .metadata
            .deletion_timestamp
            .is_some()
    );
    let refused = cms
        .create(&PostParams::default(), &plain)
        .await
        .unwrap_err();
    assert!(
        matches!(refused, kube::Error::Api(s) if s.code == 403 && s.message.contains("is being terminated"))
    );

    cms.patch(
        "held",
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"finalizers": null}})),
    )
    .await
    .unwrap();
    eventually(5, "the namespace to go", || async {
        nss.get_opt("doomed").await.unwrap().is_none().then_some(())
    })
    .await;
}

#[tokio::test]
async fn foreground_deletion_waits_for_dependents() {
    let srv = FakeApiServer::start().await.unwrap();
    let (deps, rss) = owner_and_dependent(&srv).await;
    rss.patch(
        "web-1",
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"finalizers": ["example.com/hold"]}})),
    )
    .await
    .unwrap();
    let dp = DeleteParams {
        propagation_policy: Some(PropagationPolicy::Foreground),
        ..DeleteParams::default()
    };
    deps.delete("web", &dp).await.unwrap();
    let owner = deps.get("web").await.unwrap();
    assert_eq!(owner.finalizers(), ["foregroundDeletion"]);
    assert!(owner.metadata.deletion_timestamp.is_some());
    assert!(
        rss.get("web-1")
            .await
            .unwrap()
            .metadata
            .deletion_timestamp
            .is_some()
    );

    rss.patch(
        "web-1",
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"finalizers": null}})),
    )
    .await
    .unwrap();
    assert!(rss.get_opt("web-1").await.unwrap().is_none());
    assert!(
        deps.get_opt("web").await.unwrap().is_none(),
        "the owner goes with its last dependent"
    );
}
