//! Admission end to end: webhook configurations registered in a running fake API server with `kubectl`, a real
//! HTTPS webhook server denying, patching and warning, and what a user sees from kubectl and kube-rs.

mod admission_support;

use std::path::{Path, PathBuf};

use admission_support::{WebhookServer, start_webhooks};
use fake_apiserver::FakeApiServer;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, PostParams};

struct Kubectl {
    kubeconfig: PathBuf,
    cache: PathBuf,
}

struct Output {
    success: bool,
    stdout: String,
    stderr: String,
}

impl Kubectl {
    async fn run(&self, args: &[&str]) -> Output {
        let output = tokio::process::Command::new("kubectl")
            .arg("--kubeconfig")
            .arg(&self.kubeconfig)
            .arg("--cache-dir")
            .arg(&self.cache)
            .args(args)
            .output()
            .await
            .expect("kubectl is installed (the end-to-end tests need it)");
        Output {
            success: output.status.success(),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }

    async fn ok(&self, args: &[&str]) -> Output {
        let output = self.run(args).await;
        assert!(output.success, "kubectl {args:?} failed: {}", output.stderr);
        output
    }
}

fn data(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(path)
}

fn register(webhooks: &WebhookServer, dir: &Path) -> PathBuf {
    let manifest = std::fs::read_to_string(data("admission/webhooks.yaml"))
        .expect("webhook manifest fixture")
        .replace("WEBHOOK_URL", &webhooks.base)
        .replace("CA_BUNDLE", &webhooks.ca_bundle());
    let path = dir.join("webhooks.yaml");
    std::fs::write(&path, manifest).expect("write manifest");
    path
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_sees_denials_patches_and_warnings() {
    let webhooks = start_webhooks().await;
    let api = FakeApiServer::start()
        .await
        .expect("fake API server starts");
    let dir = tempfile::tempdir().expect("temp dir");
    let kubeconfig = dir.path().join("kubeconfig");
    api.write_kubeconfig(&kubeconfig)
        .expect("kubeconfig written");
    let kubectl = Kubectl {
        kubeconfig,
        cache: dir.path().join("cache"),
    };
    let manifest = register(&webhooks, dir.path());
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
    assert_eq!(
        stored.stdout, "Fail",
        "webhook configurations are defaulted"
    );

    // Allowed: both mutating webhooks patched it, in name order; the validating one warned.
    let created = kubectl
        .ok(&["create", "configmap", "plain", "--from-literal=replicas=3"])
        .await;
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
    assert_eq!(label.stdout, "base64");
    let annotation = kubectl
        .ok(&[
            "get",
            "configmap",
            "plain",
            "-o",
            "jsonpath={.metadata.annotations.example\\.com/by}",
        ])
        .await;
    assert_eq!(annotation.stdout, "kube-rs");

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
    assert!(!denied.success);
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
    assert_eq!(dry.stdout, "base64");
    assert!(!kubectl.run(&["get", "configmap", "dry"]).await.success);

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
