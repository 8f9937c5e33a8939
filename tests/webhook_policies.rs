//! Policy config hot reload from a ConfigMap-shaped directory, seen through the admission endpoint.

mod webhook_common;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use drgitops::cluster::live::LiveView;
use drgitops::webhook::admission::{self, AdmissionState};
use drgitops::webhook::config::{self, PolicyStore};
use drgitops::webhook::load_policies;
use drgitops::webhook::metrics::{Metrics, ReloadResult};
use http_body_util::BodyExt;
use serde_json::{Value, json};
use tower::ServiceExt;
use webhook_common::eventually;

/// Writes `files` as kubelet writes a ConfigMap volume: a new `..<version>` directory, then an atomic swap of
/// `..data`, with each visible name a symlink through `..data`.
fn configmap_volume(dir: &Path, version: &str, files: &[(&str, &str)]) {
    let versioned = dir.join(format!("..{version}"));
    std::fs::create_dir_all(&versioned).expect("version dir");
    for (name, text) in files {
        std::fs::write(versioned.join(name), text).expect("write");
    }
    let tmp = dir.join("..data_tmp");
    let _ = std::fs::remove_file(&tmp);
    std::os::unix::fs::symlink(format!("..{version}"), &tmp).expect("symlink");
    std::fs::rename(&tmp, dir.join("..data")).expect("swap");
    for (name, _) in files {
        let link = dir.join(name);
        if std::fs::symlink_metadata(&link).is_err() {
            std::os::unix::fs::symlink(format!("..data/{name}"), &link).expect("link");
        }
    }
}

const HEADER: &str = "apiVersion: drgitops.dev/v1alpha1\nkind: PolicyConfig\n";

fn second_default_class() -> Vec<u8> {
    serde_json::to_vec(&json!({
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": "5e1e2b8f-0000-4000-8000-000000000001",
            "kind": {"group": "storage.k8s.io", "version": "v1", "kind": "StorageClass"},
            "resource": {"group": "storage.k8s.io", "version": "v1", "resource": "storageclasses"},
            "name": "fast",
            "operation": "CREATE",
            "userInfo": {"username": "alice"},
            "object": {"apiVersion": "storage.k8s.io/v1", "kind": "StorageClass",
                "metadata": {"name": "fast", "annotations": {"storageclass.kubernetes.io/is-default-class": "true"}},
                "provisioner": "pxd.portworx.com"},
            "oldObject": null,
            "dryRun": false
        }
    }))
    .expect("json")
}

async fn validate(state: &AdmissionState) -> Value {
    let request = http::Request::post("/validate")
        .body(Body::from(second_default_class()))
        .expect("request");
    let response = admission::router(state.clone())
        .oneshot(request)
        .await
        .expect("infallible");
    let bytes = response
        .into_body()
        .collect()
        .await
        .expect("body")
        .to_bytes();
    let review: Value = serde_json::from_slice(&bytes).expect("json");
    review["response"].clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_changed_config_applies_and_a_bad_one_is_rejected() {
    let dir = tempfile::tempdir().expect("tempdir");
    configmap_volume(dir.path(), "1", &[("policies.yaml", HEADER)]);
    let view = Arc::new(LiveView::new(None));
    view.apply(
        &serde_json::from_value(json!({"apiVersion": "storage.k8s.io/v1", "kind": "StorageClass",
            "metadata": {"name": "standard", "annotations": {"storageclass.kubernetes.io/is-default-class": "true"}}}))
        .expect("object"),
    );
    let store = Arc::new(PolicyStore::new(
        load_policies(dir.path()).expect("initial config"),
    ));
    let metrics = Arc::new(Metrics::new());
    let state = AdmissionState::new(view, store.clone(), metrics.clone());
    let (_stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let poll = Duration::from_millis(50);
    tokio::spawn(config::watch(
        dir.path().to_path_buf(),
        store,
        load_policies,
        metrics.clone(),
        poll,
        stop_rx,
    ));

    let denied = validate(&state).await;
    assert_eq!(denied["allowed"], false);
    let message = denied["status"]["message"].as_str().expect("message");
    assert!(
        message.contains("\"standard\""),
        "the denial names the current default: {message}"
    );

    // Warn mode, as a rollout starts.
    let warn = format!("{HEADER}rules:\n  single-default-storageclass:\n    action: warn\n");
    configmap_volume(dir.path(), "2", &[("policies.yaml", &warn)]);
    let warned = eventually(10, || async {
        let r = validate(&state).await;
        (r["allowed"] == true).then_some(r)
    })
    .await
    .expect("the new config takes effect without a restart");
    let warning = warned["warnings"][0].as_str().expect("a warning");
    assert!(
        warning.starts_with("single-default-storageclass: "),
        "{warning}"
    );

    // A typo in the next edit: rejected, and warn mode stays in force.
    let bad = format!("{HEADER}rules:\n  single-default-storagecalss:\n    action: deny\n");
    configmap_volume(dir.path(), "3", &[("policies.yaml", &bad)]);
    assert!(
        load_policies(dir.path()).is_err(),
        "the bad config must not load"
    );
    let seen = eventually(10, || async {
        (metrics.reloads(ReloadResult::rejected) == 1).then_some(())
    })
    .await;
    assert!(
        seen.is_some(),
        "the poller sees the bad config and rejects it"
    );
    assert_eq!(
        validate(&state).await["allowed"],
        true,
        "the last good config stays in force"
    );
    assert_eq!(metrics.reloads(ReloadResult::applied), 1);
    assert!(
        metrics
            .render()
            .contains("drgitops_policy_reloads_total{result=\"rejected\"} 1")
    );
}
