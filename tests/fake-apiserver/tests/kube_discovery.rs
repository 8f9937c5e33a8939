//! kube-rs discovery against the fake: legacy and aggregated discovery both see built-in groups and CRDs created
//! at run time, with their scope, subresources and verbs.

use fake_apiserver::FakeApiServer;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, PostParams};
use kube::discovery::{Discovery, Scope, verbs};
use serde_json::json;

async fn with_crd() -> FakeApiServer {
    let srv = FakeApiServer::start().await.unwrap();
    let crds: Api<CustomResourceDefinition> = Api::all(srv.client());
    let crd: CustomResourceDefinition = serde_json::from_value(json!({
        "metadata": {"name": "gadgets.example.com"},
        "spec": {"group": "example.com", "scope": "Cluster",
            "names": {"kind": "Gadget", "plural": "gadgets"},
            "versions": [{"name": "v1", "served": true, "storage": true, "subresources": {"status": {}},
                "schema": {"openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}}}]}
    }))
    .unwrap();
    crds.create(&PostParams::default(), &crd).await.unwrap();
    srv
}

fn check(discovery: &Discovery) {
    let apps = discovery.get("apps").expect("apps group");
    let (deploy, caps) = apps
        .recommended_resources()
        .into_iter()
        .find(|(r, _)| r.kind == "Deployment")
        .expect("deployments");
    assert_eq!(deploy.plural, "deployments");
    assert_eq!(caps.scope, Scope::Namespaced);
    assert!(caps.supports_operation(verbs::WATCH));
    assert!(
        caps.subresources.iter().any(|(r, _)| r.plural == "scale"),
        "{:?}",
        caps.subresources
    );

    let (gadget, caps) = discovery
        .get("example.com")
        .expect("the CRD's group")
        .recommended_kind("Gadget")
        .expect("Gadget");
    assert_eq!(gadget.api_version, "example.com/v1");
    assert_eq!(caps.scope, Scope::Cluster);
    assert!(caps.subresources.iter().any(|(r, _)| r.plural == "status"));

    let core = discovery.get("").expect("core group");
    assert!(core.recommended_kind("ConfigMap").is_some());
}

#[tokio::test]
async fn legacy_discovery_sees_builtins_and_crds() {
    let srv = with_crd().await;
    let discovery = Discovery::new(srv.client()).run().await.unwrap();
    check(&discovery);
}

#[tokio::test]
async fn aggregated_discovery_sees_builtins_and_crds() {
    let srv = with_crd().await;
    let discovery = Discovery::new(srv.client()).run_aggregated().await.unwrap();
    check(&discovery);
}
