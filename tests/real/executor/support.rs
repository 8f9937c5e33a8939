//! What the tests of this binary share: a kube client for a cluster's shipped ServiceAccount, the reconciler's
//! git repository and options, and waits on Ready pods.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use drgitops::gitops::runner::{Reconciler, ReconcilerOptions};
use drgitops::gitops::source::{GitAuth, GitSourceConfig};
use drgitops::plan::{DRPlan, DRPlanStatus};
use k8s_openapi::api::apps::v1::Deployment;
use kube::Api;
use kube::api::DynamicObject;
use serde_json::Value;
use testkit::reconcile::add_peer_secrets;
use testkit::{Cluster, EAST, WEST, eventually, git, repo_file, web_deployment};

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

/// Options for an in-process reconciler of `domain` following `repo`'s `plans/` on main, with the Lease and
/// inventory in `drgitops-system` as the shipped Role allows.
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
    options.system_namespace = "drgitops-system".into();
    options.interval = Duration::from_secs(3600);
    options.lease_duration = Duration::from_secs(3);
    options.peer_timeout = Duration::from_secs(2);
    options
}

/// Two clusters with the shipped reconciler and peer manifests, namespace `mysql` on both with the peer
/// Secrets (a kubeconfig for the other cluster's `drgitops-peer`), `web` running 2 replicas on east and
/// migrated to west, and a repository whose plan `mysql` makes east the primary.
pub struct Pair {
    pub east: Cluster,
    pub west: Cluster,
    pub repo: tempfile::TempDir,
}

impl Pair {
    pub async fn start() -> Pair {
        let (east, west) = tokio::join!(Cluster::start(EAST), Cluster::start(WEST));
        for cluster in [&east, &west] {
            cluster.install_reconciler();
            cluster.kubectl(&["create", "namespace", "mysql"]);
        }
        add_peer_secrets(&east, &west, &["mysql"], None).await;
        add_peer_secrets(&west, &east, &["mysql"], None).await;
        east.apply_yaml(&web_deployment("mysql", 2, None));
        west.apply_yaml(&web_deployment("mysql", 0, Some(2)));
        await_ready_pods(&east, "mysql", &[("web", 2)]).await;

        let repo = tempfile::tempdir().expect("repo");
        git(repo.path(), &["init", "-q", "-b", "main"]);
        git(repo.path(), &["config", "user.name", "On-call"]);
        git(repo.path(), &["config", "user.email", "oncall@example.com"]);
        std::fs::create_dir_all(repo.path().join("plans")).expect("plans dir");
        std::fs::copy(
            repo_file("tests/data/gitops/plans/mysql.yaml"),
            repo.path().join("plans/mysql.yaml"),
        )
        .expect("plan");
        git(repo.path(), &["add", "-A"]);
        git(repo.path(), &["commit", "-q", "-m", "protect mysql"]);
        Pair { east, west, repo }
    }

    /// An in-process reconciler for `cluster`, as its `drgitops-reconciler` ServiceAccount.
    pub async fn reconciler(&self, cluster: &Cluster) -> Arc<Reconciler> {
        let client = cluster.service_account_client("drgitops-reconciler").await;
        let cache = cluster.dir.path().join("cache");
        Reconciler::new(client, options(&cluster.domain, self.repo.path(), &cache))
    }
}

/// `web`'s `spec.replicas` and recorded `migrationReplicas` in `mysql` on `cluster`.
pub async fn web_replicas(cluster: &Cluster) -> (i32, Option<String>) {
    let d = Api::<Deployment>::namespaced(cluster.client().await, "mysql")
        .get("web")
        .await
        .expect("web");
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
