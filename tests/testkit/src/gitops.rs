//! What the tests of a GitOps tool delivering the DRPlans and the application (Flux, Argo CD) share: the two
//! protected clusters before the tool runs, the reconciler it hands plans to, a repository laid out from the
//! examples, the on-call engineer's failover commit, the plan's role on a cluster, and the wait for a failover to
//! settle with the application running on one cluster only.

use std::path::Path;
use std::time::Duration;

use crate::migration::StorkStandIn;
use crate::reconcile::add_peer_secrets;
use crate::webhook::{Install, SERVICE_NAMES, Webhook};
use crate::{Cluster, Drgitops, EAST, WEST, eventually};

/// Two clusters as a GitOps tool finds them: the webhook (without cert-manager) and the reconciler's manifests
/// installed as shipped, each cluster's peer kubeconfig Secret in `namespace`, and Stork's stand-in migrating
/// between them. `drgitops` is the binary.
pub async fn protected_pair(
    drgitops: &str,
    namespace: &str,
) -> ([(Cluster, Webhook); 2], StorkStandIn) {
    let (east, west) = tokio::join!(Cluster::start(EAST), Cluster::start(WEST));
    let (east_webhook, west_webhook) = tokio::join!(
        crate::webhook::install(drgitops, &east, &SERVICE_NAMES, Install::WithoutCertManager),
        crate::webhook::install(drgitops, &west, &SERVICE_NAMES, Install::WithoutCertManager),
    );
    for cluster in [&east, &west] {
        cluster.install_reconciler();
    }
    add_peer_secrets(&east, &west, &[namespace], None).await;
    add_peer_secrets(&west, &east, &[namespace], None).await;
    let stork = StorkStandIn::start(east.client().await, west.client().await);
    ([(east, east_webhook), (west, west_webhook)], stork)
}

/// `drgitops reconcile` on `cluster` as its shipped ServiceAccount, without `--git-url`: it reconciles the DRPlans
/// the GitOps tool applies. Polls every second; logs to `reconcile.log` in the cluster's directory.
pub async fn spawn_reconciler(drgitops: &str, cluster: &Cluster) -> Drgitops {
    let kubeconfig = cluster
        .service_account_kubeconfig("drgitops-reconciler")
        .await;
    Drgitops::spawn(
        drgitops,
        &kubeconfig,
        &[
            "reconcile",
            "--cluster-domain",
            &cluster.domain,
            "--interval",
            "1s",
            "--admin-listen",
            "127.0.0.1:0",
            "--system-namespace",
            "drgitops-system",
        ],
        cluster.dir.path().join("reconcile.log"),
    )
}

/// `drgitops failover --plan mysql --to DOMAIN --no-live` on `repo`, as the on-call engineer
/// (`oncall@example.com`) runs it, with `env` added (e.g. `GNUPGHOME` to sign); panics unless it commits.
pub fn commit_failover(drgitops: &str, repo: &Path, to: &str, env: &[(&str, &Path)]) {
    let out = std::process::Command::new(drgitops)
        .args([
            "failover",
            "--plan",
            "mysql",
            "--to",
            to,
            "--no-live",
            "--repo",
        ])
        .arg(repo)
        .envs(env.iter().copied())
        .env("GIT_AUTHOR_NAME", "On-call")
        .env("GIT_AUTHOR_EMAIL", "oncall@example.com")
        .env("GIT_COMMITTER_NAME", "On-call")
        .env("GIT_COMMITTER_EMAIL", "oncall@example.com")
        .output()
        .expect("drgitops failover runs");
    assert!(
        out.status.success(),
        "drgitops failover: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Copies the directory tree `from` into `to` (which exists).
pub fn copy_dir(from: &Path, to: &Path) {
    for entry in std::fs::read_dir(from).expect("read_dir") {
        let entry = entry.expect("entry");
        let target = to.join(entry.file_name());
        if entry.file_type().expect("file type").is_dir() {
            std::fs::create_dir_all(&target).expect("mkdir");
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).expect("copy");
        }
    }
}

/// The role of plan `namespace/name` on `cluster` (`Primary`, `Standby`), as its reconciler reports it in
/// `status.role`; None while it reports none or the plan is missing.
pub fn role(cluster: &Cluster, namespace: &str, name: &str) -> Option<String> {
    let out = cluster.kubectl_output(
        &[
            "-n",
            namespace,
            "get",
            "drplan",
            name,
            "-o",
            "jsonpath={.status.role}",
        ],
        None,
    );
    let role = String::from_utf8_lossy(&out.stdout).trim().to_string();
    (out.status.success() && !role.is_empty()).then_some(role)
}

/// Waits (at most `timeout`) until `primary` alone runs `replicas` ready pods labelled `app=<app>` in `namespace`
/// and plan `namespace/plan` reports `Primary` there and `Standby` on `standby`, asserting on every poll that
/// the two clusters never run the application at once. Panics with `describe()` if it never settles.
#[allow(clippy::too_many_arguments)]
pub async fn settle_on(
    primary: &Cluster,
    standby: &Cluster,
    namespace: &str,
    plan: &str,
    app: &str,
    replicas: usize,
    timeout: Duration,
    describe: impl Fn() -> String,
) {
    let settled = eventually(timeout, || async {
        let (on_p, on_s) = (
            primary.ready_pods(namespace, app).await,
            standby.ready_pods(namespace, app).await,
        );
        assert!(
            on_p == 0 || on_s == 0,
            "the application runs on both clusters: {on_p} pods on {}, {on_s} on {}",
            primary.domain,
            standby.domain
        );
        let roles = (
            role(primary, namespace, plan),
            role(standby, namespace, plan),
        );
        let settled =
            roles.0.as_deref() == Some("Primary") && roles.1.as_deref() == Some("Standby");
        (on_p == replicas && on_s == 0 && settled).then_some(())
    })
    .await;
    assert!(
        settled.is_some(),
        "{} never ran {replicas} pods alone\n{}",
        primary.domain,
        describe()
    );
}
