//! Admission end to end: webhook configurations registered in a running fake API server with `kubectl`, a real
//! HTTPS webhook server denying, patching and warning, and what a user sees from kubectl and kube-rs.

mod admission_support;
mod common;

use admission_support::start_webhooks;
use common::Kubectl;
use fake_apiserver::FakeApiServer;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, PostParams};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_sees_denials_patches_and_warnings() {
    let webhooks = start_webhooks().await;
    let api = FakeApiServer::start()
        .await
        .expect("fake API server starts");
    let kubectl = Kubectl::new(&api);
    let manifest = std::fs::read_to_string(Kubectl::data("admission/webhooks.yaml"))
        .expect("webhook manifest fixture")
        .replace("WEBHOOK_URL", &webhooks.base)
        .replace("CA_BUNDLE", &webhooks.ca_bundle());
    let manifest = kubectl.file("webhooks.yaml", &manifest);
    kubectl
        .ok(&["create", "-f", manifest.to_str().expect("utf-8 path")])
        .await;
    let stored = kubectl
        .ok(&[
            "get",
            "validatingwebhookconfiguration",
            "guard-configmaps",
            "-o",
            "jsonpath={.webhooks[0].failurePolicy}",
        ])
        .await;
    assert_eq!(stored, "Fail", "webhook configurations are defaulted");

    // Allowed: both mutating webhooks patched it, in name order; the validating one warned.
    let created = kubectl
        .run(&["create", "configmap", "plain", "--from-literal=replicas=3"])
        .await;
    assert!(created.ok, "{}", created.stderr);
    assert!(
        created.stderr.contains("Warning: spec.replicas is odd"),
        "{}",
        created.stderr
    );
    assert!(
        created
            .stderr
            .contains("Warning: labelled by the base64 webhook"),
        "{}",
        created.stderr
    );
    let label = kubectl
        .ok(&[
            "get",
            "configmap",
            "plain",
            "-o",
            "jsonpath={.metadata.labels.patched-by}",
        ])
        .await;
    assert_eq!(label, "base64");
    let annotation = kubectl
        .ok(&[
            "get",
            "configmap",
            "plain",
            "-o",
            "jsonpath={.metadata.annotations.example\\.com/by}",
        ])
        .await;
    assert_eq!(annotation, "kube-rs");

    // Denied in a guarded namespace: the apiserver's wording reaches the user, nothing is stored.
    kubectl.ok(&["create", "namespace", "guarded"]).await;
    kubectl
        .ok(&["label", "namespace", "guarded", "guard=on"])
        .await;
    let denied = kubectl
        .run(&[
            "-n",
            "guarded",
            "create",
            "configmap",
            "blocked",
            "--from-literal=replicas=3",
        ])
        .await;
    assert!(!denied.ok);
    assert!(
        denied.stderr.contains(
            "admission webhook \"deny.example.com\" denied the request: replicas must be even"
        ),
        "{}",
        denied.stderr
    );
    let missing = kubectl
        .run(&["-n", "guarded", "get", "configmap", "blocked"])
        .await;
    assert!(missing.stderr.contains("NotFound"), "{}", missing.stderr);

    // A server-side dry run calls the side-effect-free webhooks and stores nothing.
    let dry = kubectl
        .ok(&[
            "create",
            "configmap",
            "dry",
            "--from-literal=a=1",
            "--dry-run=server",
            "-o",
            "jsonpath={.metadata.labels.patched-by}",
        ])
        .await;
    assert_eq!(dry, "base64");
    assert!(!kubectl.run(&["get", "configmap", "dry"]).await.ok);

    // kube-rs sees the same: the patched object back from create, the denial as a 400 Status.
    let client = api.client();
    let default: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    let mut cm = ConfigMap::default();
    cm.metadata.name = Some("from-kube".into());
    let created = default
        .create(&PostParams::default(), &cm)
        .await
        .expect("admitted");
    let labels = created.metadata.labels.unwrap_or_default();
    assert_eq!(labels.get("patched-by").map(String::as_str), Some("base64"));
    let guarded: Api<ConfigMap> = Api::namespaced(client, "guarded");
    match guarded.create(&PostParams::default(), &cm).await {
        Err(kube::Error::Api(status)) => {
            assert_eq!(status.code, 400);
            assert_eq!(
                status.message,
                "admission webhook \"deny.example.com\" denied the request: replicas must be even"
            );
        }
        other => panic!("expected a denial, got {other:?}"),
    }
}
