//! What the reconciler's tests on real clusters share: clusters with the reconciler's manifests and the plan
//! namespaces, a peer cluster that lives for the whole test process, the peer Secrets (a kubeconfig for the
//! shipped `drgitops-peer` ServiceAccount), and git repositories of the fixture plans.
//!
//! A cluster shared between tests may be started on any test's runtime: a control plane runs no task on the
//! runtime that started it (its proxies have threads of their own), and tests make their own kube clients
//! ([`Cluster::client`]) on their own runtime. Its processes are stopped by the control plane's watchdog when
//! the test binary exits.

use std::path::Path;

use std::time::Duration;

use crate::{Cluster, EAST, WEST, eventually, git, repo_file, web_deployment};

/// The namespaces of the fixture plans (`tests/data/gitops/plans`).
pub const PLAN_NAMESPACES: [&str; 2] = ["mysql", "postgres"];

/// A fixture of `tests/data/gitops`.
pub fn gitops_data(name: &str) -> String {
    let path = repo_file("tests/data/gitops").join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// A cluster in `domain` with the reconciler installed ([`Cluster::install_reconciler`]) and the plan
/// namespaces created, for one test.
pub async fn reconciler_cluster(domain: &str) -> Cluster {
    let cluster = Cluster::start(domain).await;
    cluster.install_reconciler();
    create_namespaces(&cluster, &PLAN_NAMESPACES);
    cluster
}

/// The cluster in `domain` kept in `cell`, started once per test process as [`reconciler_cluster`] does
/// (see the module docs).
pub async fn shared_reconciler_cluster(
    cell: &'static tokio::sync::OnceCell<Cluster>,
    domain: &'static str,
) -> &'static Cluster {
    cell.get_or_init(|| reconciler_cluster(domain)).await
}

pub fn create_namespaces(cluster: &Cluster, names: &[&str]) {
    for name in names {
        cluster.kubectl(&["create", "namespace", name]);
    }
}

/// Puts the peer Secrets into `namespaces` of `cluster`: `drgitops-peer` with a kubeconfig for `peer`'s
/// `drgitops-peer` ServiceAccount (its server replaced by `server` when given, e.g. a fault proxy), and
/// `drgitops-peer-storage` with the storage endpoint.
pub async fn add_peer_secrets(
    cluster: &Cluster,
    peer: &Cluster,
    namespaces: &[&str],
    server: Option<&str>,
) {
    let mut kubeconfig = peer
        .env
        .service_account_kubeconfig("drgitops-system", "drgitops-peer")
        .await
        .unwrap_or_else(|e| panic!("token for drgitops-peer on {}: {e:#}", peer.domain));
    if let Some(server) = server {
        kubeconfig = kubeconfig.replace(peer.env.url(), server);
    }
    for ns in namespaces {
        cluster.kubectl(&[
            "-n",
            ns,
            "create",
            "secret",
            "generic",
            "drgitops-peer",
            &format!("--from-literal=kubeconfig={kubeconfig}"),
        ]);
        cluster.kubectl(&[
            "-n",
            ns,
            "create",
            "secret",
            "generic",
            "drgitops-peer-storage",
            "--from-literal=ip=10.0.0.9",
            "--from-literal=port=9001",
            "--from-literal=token=px-token",
        ]);
    }
}

/// A repository whose `plans/` holds the fixture plans mysql and postgres, on branch main.
pub fn plan_repo() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    git(dir.path(), &["init", "-q", "-b", "main"]);
    commit(
        dir.path(),
        &[
            ("plans/mysql.yaml", &gitops_data("plans/mysql.yaml")),
            ("plans/postgres.yaml", &gitops_data("plans/postgres.yaml")),
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

/// Removes `path` in a commit; returns the commit id.
pub fn remove(dir: &Path, path: &str, message: &str) -> String {
    git(dir, &["rm", "-r", "-q", path]);
    git(dir, &["commit", "-q", "-m", message]);
    git(dir, &["rev-parse", "HEAD"])
}

/// Two clusters, east and west, with the reconciler's and the peer's shipped manifests, namespace `mysql`
/// with the peer Secrets (a kubeconfig for the other cluster's `drgitops-peer`), Deployment `web` running
/// `replicas` Ready pods on east and migrated to west (0, the count recorded), and a repository whose plan
/// `mysql` (`tests/data/gitops/plans/mysql.yaml`) makes east the primary, with the on-call git identity.
pub struct Pair {
    pub east: Cluster,
    pub west: Cluster,
    pub repo: tempfile::TempDir,
    /// Stork's Migration controllers between the two (a planned failover ends with a final Migration).
    pub stork: crate::migration::StorkStandIn,
}

impl Pair {
    pub async fn start(replicas: u32) -> Pair {
        let (east, west) = tokio::join!(Cluster::start(EAST), Cluster::start(WEST));
        for cluster in [&east, &west] {
            cluster.install_reconciler();
            create_namespaces(cluster, &["mysql"]);
        }
        add_peer_secrets(&east, &west, &["mysql"], None).await;
        add_peer_secrets(&west, &east, &["mysql"], None).await;
        east.apply_yaml(&web_deployment("mysql", replicas, None));
        west.apply_yaml(&web_deployment("mysql", 0, Some(replicas)));
        let running = eventually(Duration::from_secs(60), || async {
            (east.ready_pods("mysql", "web").await == replicas as usize).then_some(())
        })
        .await;
        assert!(running.is_some(), "web never ran {replicas} pods on {EAST}");

        let repo = tempfile::tempdir().expect("repo");
        git(repo.path(), &["init", "-q", "-b", "main"]);
        git(repo.path(), &["config", "user.name", "On-call"]);
        git(repo.path(), &["config", "user.email", "oncall@example.com"]);
        commit(
            repo.path(),
            &[("plans/mysql.yaml", &gitops_data("plans/mysql.yaml"))],
            "protect mysql",
        );
        let stork = crate::migration::StorkStandIn::start(east.client().await, west.client().await);
        Pair {
            east,
            west,
            repo,
            stork,
        }
    }
}
