//! What the tests of a GitOps tool delivering the DRPlans and the application (Flux, Argo CD) share: a
//! repository laid out from the examples, the plan's role on a cluster, and the wait for a failover to settle
//! with the application running on one cluster only.

use std::path::Path;
use std::time::Duration;

use crate::{Cluster, eventually};

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
