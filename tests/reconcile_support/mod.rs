//! Shared set-up of the reconciler tests: in-memory clusters with the DRPlan and Stork CRDs, peer Secrets, real
//! git repositories made with the `git` CLI, and reconciler options.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use drgitops::gitops::runner::ReconcilerOptions;
use drgitops::gitops::source::{GitAuth, GitSourceConfig};
use fake_apiserver::FakeApiServer;
use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::{Namespace, Secret};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, DynamicObject, PostParams};
use serde_json::{Value, json};

pub const EAST: &str = "us-east-1a";
pub const WEST: &str = "us-east-1b";
pub const NAMESPACES: [&str; 2] = ["mysql", "postgres"];

pub fn data_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/gitops")
}

pub fn read_data(name: &str) -> String {
    std::fs::read_to_string(data_dir().join(name)).expect("fixture exists")
}

/// One in-memory cluster in a cluster domain.
pub struct Cluster {
    pub srv: FakeApiServer,
    pub domain: String,
}

impl Cluster {
    pub fn client(&self) -> kube::Client {
        self.srv.client()
    }
}

/// A cluster with the DRPlan and Stork CRDs and the plan namespaces.
pub async fn cluster(domain: &str) -> Cluster {
    let srv = FakeApiServer::start().await.expect("fake apiserver starts");
    let client = srv.client();
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    crds.create(&PostParams::default(), &drgitops::plan::crd::crd())
        .await
        .expect("DRPlan CRD");
    for doc in serde_yaml::Deserializer::from_str(&read_data("stork-crds.yaml")) {
        let value: Value = serde::Deserialize::deserialize(doc).expect("crd yaml");
        if value.is_null() {
            continue;
        }
        let crd: CustomResourceDefinition = serde_json::from_value(value).expect("crd");
        crds.create(&PostParams::default(), &crd)
            .await
            .expect("Stork CRD");
    }
    let namespaces: Api<Namespace> = Api::all(client.clone());
    for ns in NAMESPACES {
        let namespace: Namespace =
            serde_json::from_value(json!({"metadata": {"name": ns}})).expect("namespace");
        namespaces
            .create(&PostParams::default(), &namespace)
            .await
            .expect("namespace created");
    }
    Cluster {
        srv,
        domain: domain.into(),
    }
}

/// Puts the peer's kubeconfig and storage Secrets into every plan namespace of `cluster`.
pub async fn add_peer_secrets(cluster: &Cluster, peer: &Cluster) {
    for ns in NAMESPACES {
        let secrets: Api<Secret> = Api::namespaced(cluster.client(), ns);
        let kubeconfig = peer.srv.kubeconfig_named(&peer.domain);
        create_secret(&secrets, "drgitops-peer", &[("kubeconfig", &kubeconfig)]).await;
        create_secret(
            &secrets,
            "drgitops-peer-storage",
            &[("ip", "10.0.0.9"), ("port", "9001"), ("token", "px-token")],
        )
        .await;
    }
}

pub async fn create_secret(secrets: &Api<Secret>, name: &str, data: &[(&str, &str)]) {
    let data: BTreeMap<String, ByteString> = data
        .iter()
        .map(|(k, v)| (k.to_string(), ByteString(v.as_bytes().to_vec())))
        .collect();
    let secret = Secret {
        metadata: kube::api::ObjectMeta {
            name: Some(name.into()),
            ..Default::default()
        },
        data: Some(data),
        ..Default::default()
    };
    secrets
        .create(&PostParams::default(), &secret)
        .await
        .expect("secret created");
}

/// Two paired clusters: east (primary in the fixtures) and west.
pub async fn two_clusters() -> (Cluster, Cluster) {
    let east = cluster(EAST).await;
    let west = cluster(WEST).await;
    add_peer_secrets(&east, &west).await;
    add_peer_secrets(&west, &east).await;
    (east, west)
}

pub fn git(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .args([
            "-c",
            "user.name=Test",
            "-c",
            "user.email=test@example.com",
            "-c",
            "commit.gpgsign=false",
        ])
        .args(args)
        .current_dir(dir)
        .output()
        .expect("git runs");
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// A repository with the fixture plans under `plans/`.
pub fn plan_repo() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    git(dir.path(), &["init", "-q", "-b", "main"]);
    commit(
        dir.path(),
        &[
            ("plans/mysql.yaml", &read_data("plans/mysql.yaml")),
            ("plans/postgres.yaml", &read_data("plans/postgres.yaml")),
        ],
        "add plans",
    );
    dir
}

/// Writes files and commits them; returns the commit id.
pub fn commit(dir: &Path, files: &[(&str, &str)], message: &str) -> String {
    for (path, contents) in files {
        let full = dir.join(path);
        std::fs::create_dir_all(full.parent().expect("parent")).expect("mkdir");
        std::fs::write(full, contents).expect("write");
    }
    git(dir, &["add", "-A"]);
    git(dir, &["commit", "-q", "--allow-empty", "-m", message]);
    git(dir, &["rev-parse", "HEAD"])
}

pub fn remove(dir: &Path, path: &str, message: &str) -> String {
    git(dir, &["rm", "-r", "-q", path]);
    git(dir, &["commit", "-q", "-m", message]);
    git(dir, &["rev-parse", "HEAD"])
}

/// Options for a reconciler of `domain` following `repo`'s `plans/` on main.
pub fn options(domain: &str, repo: &Path, cache: &Path) -> ReconcilerOptions {
    let mut options = ReconcilerOptions::new(&format!("test-{domain}"));
    options.cluster_domain = Some(domain.into());
    options.git = Some(GitSourceConfig {
        url: repo.display().to_string(),
        branch: "main".into(),
        path: "plans".into(),
        cache_dir: cache.to_path_buf(),
        auth: GitAuth::None,
    });
    options.admin_listen = "127.0.0.1:0".into();
    options.interval = Duration::from_secs(3600);
    options.lease_duration = Duration::from_secs(3);
    options.peer_timeout = Duration::from_secs(2);
    options
}

fn stork_resource(kind: &str) -> kube::discovery::ApiResource {
    let (resource, _) =
        drgitops::gitops::apply::api_resource(drgitops::gitops::apply::STORK_API_VERSION, kind)
            .expect("known kind");
    resource
}

/// A Stork object as JSON, or None.
pub async fn stork(
    client: &kube::Client,
    kind: &str,
    namespace: &str,
    name: &str,
) -> Option<Value> {
    let api: Api<DynamicObject> =
        Api::namespaced_with(client.clone(), namespace, &stork_resource(kind));
    api.get_opt(name)
        .await
        .expect("get")
        .map(|o| serde_json::to_value(o).expect("json"))
}

/// Creates a Stork object by hand (as a person with kubectl would).
pub async fn create_stork(client: &kube::Client, kind: &str, namespace: &str, object: Value) {
    let api: Api<DynamicObject> =
        Api::namespaced_with(client.clone(), namespace, &stork_resource(kind));
    let object: DynamicObject = serde_json::from_value(object).expect("object");
    api.create(
        &PostParams {
            field_manager: Some("kubectl-create".into()),
            ..Default::default()
        },
        &object,
    )
    .await
    .expect("created");
}

/// A DRPlan as JSON, or None; read as stored, so a plan that no longer reads as a DRPlan can be looked at too.
pub async fn plan(client: &kube::Client, namespace: &str, name: &str) -> Option<Value> {
    let resource = kube::api::ApiResource::erase::<drgitops::plan::DRPlan>(&());
    let api: Api<kube::api::DynamicObject> =
        Api::namespaced_with(client.clone(), namespace, &resource);
    api.get_opt(name)
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

/// Polls `check` until it returns Some, for at most `timeout`.
pub async fn eventually<T, F, Fut>(timeout: Duration, mut check: F) -> Option<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if let Some(value) = check().await {
            return Some(value);
        }
        if tokio::time::Instant::now() > deadline {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
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

/// Merge-patches a stored DRPlan as raw JSON, so a field of the wrong type can be stored (no CRD schema checks it
/// here, as none does with `x-kubernetes-preserve-unknown-fields` or a webhook turned off).
pub async fn patch_raw(client: &kube::Client, namespace: &str, name: &str, patch: Value) {
    let resource = kube::api::ApiResource::erase::<drgitops::plan::DRPlan>(&());
    let api: Api<kube::api::DynamicObject> =
        Api::namespaced_with(client.clone(), namespace, &resource);
    api.patch(
        name,
        &kube::api::PatchParams::default(),
        &kube::api::Patch::Merge(patch),
    )
    .await
    .expect("patched");
}

/// Whether the plan `name` (in the namespace of the same name) carries a Warning Event with `reason` whose note
/// contains `text`.
pub async fn warning_names(client: &kube::Client, name: &str, reason: &str, text: &str) -> bool {
    let events: Api<k8s_openapi::api::core::v1::Event> = Api::namespaced(client.clone(), name);
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
}
