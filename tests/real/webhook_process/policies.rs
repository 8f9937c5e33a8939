//! Policy config hot reload in the shipped binary: a ConfigMap-volume-shaped `--policies` directory edited
//! while the webhook runs, seen through its admission endpoint and its metrics, with the StorageClass the rule
//! names read from the cluster by the webhook's watch.

use std::time::Duration;

use drgitops::webhook::load_policies;
use serde_json::{Value, json};
use testenv::pki::Pki;
use testkit::eventually;

use super::{
    Webhook, cluster, http_get, post, secret_volume, secret_volume_files as configmap_volume,
    serving, start,
};

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

async fn validate(webhook: &Webhook, ca_pem: &str) -> Value {
    let exchange = post(
        &webhook.listen,
        ca_pem,
        None,
        "/validate",
        &second_default_class(),
    )
    .await
    .expect("post");
    assert_eq!(exchange.status, 200);
    exchange.body["response"].clone()
}

/// The value of the counter line `line` (name and labels) on the admin port's `/metrics`, 0 when absent.
async fn counter(webhook: &Webhook, line: &str) -> u64 {
    let (_, metrics) = http_get(&webhook.admin, "/metrics").await.expect("metrics");
    metrics
        .lines()
        .find_map(|l| l.strip_prefix(line)?.trim().parse().ok())
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_changed_config_applies_and_a_bad_one_is_rejected() {
    // The cluster's default StorageClass, which the webhook learns from its watch.
    cluster().await.apply_yaml(
        "apiVersion: storage.k8s.io/v1\nkind: StorageClass\nmetadata:\n  name: standard\n  annotations:\n    \
         storageclass.kubernetes.io/is-default-class: \"true\"\nprovisioner: pxd.portworx.com\n",
    );
    let pki = Pki::new("webhook-ca").expect("CA");
    let dir = tempfile::tempdir().expect("tempdir");
    let (tls_dir, policies) = (dir.path().join("tls"), dir.path().join("policies"));
    std::fs::create_dir(&tls_dir).expect("mkdir");
    std::fs::create_dir(&policies).expect("mkdir");
    secret_volume(&tls_dir, "v1", &serving(&pki));
    configmap_volume(&policies, "1", &[("policies.yaml", HEADER)]);
    let webhook = start(dir.path(), &tls_dir, None, Some(&policies)).await;
    let ca = pki.ca_pem();

    let denied = validate(&webhook, &ca).await;
    assert_eq!(denied["allowed"], false);
    let message = denied["status"]["message"].as_str().expect("message");
    assert!(
        message.contains("\"standard\""),
        "the denial names the current default: {message}"
    );

    // Warn mode, as a rollout starts.
    let warn = format!("{HEADER}rules:\n  single-default-storageclass:\n    action: warn\n");
    configmap_volume(&policies, "2", &[("policies.yaml", &warn)]);
    let warned = eventually(Duration::from_secs(10), || async {
        let r = validate(&webhook, &ca).await;
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
    configmap_volume(&policies, "3", &[("policies.yaml", &bad)]);
    assert!(
        load_policies(&policies).is_err(),
        "the bad config must not load"
    );
    let rejected = "drgitops_policy_reloads_total{result=\"rejected\"}";
    let seen = eventually(Duration::from_secs(10), || async {
        (counter(&webhook, rejected).await == 1).then_some(())
    })
    .await;
    assert!(
        seen.is_some(),
        "the poller sees the bad config and rejects it:\n{}",
        webhook.process.log()
    );
    assert_eq!(
        validate(&webhook, &ca).await["allowed"],
        true,
        "the last good config stays in force"
    );
    assert_eq!(
        counter(
            &webhook,
            "drgitops_policy_reloads_total{result=\"applied\"}"
        )
        .await,
        1
    );
}
