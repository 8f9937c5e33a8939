//! `drgitops reconcile --once` and `--dry-run` as a person runs them, with the kubeconfig of the shipped
//! `drgitops-reconciler` ServiceAccount, against a real cluster.

use std::path::Path;

use testkit::EAST;
use testkit::reconcile::{commit, plan_repo};

use super::support::*;

async fn reconcile(
    kubeconfig: &Path,
    repo: &Path,
    cache: &Path,
    extra: &[&str],
) -> std::process::Output {
    let mut command = tokio::process::Command::new(crate::DRGITOPS);
    command
        .arg("reconcile")
        .args([
            "--cluster-domain",
            EAST,
            "--system-namespace",
            SYSTEM_NAMESPACE,
        ])
        .args(["--git-path", "plans", "--git-url"])
        .arg(repo)
        .arg("--cache-dir")
        .arg(cache)
        .args(extra)
        .env("KUBECONFIG", kubeconfig)
        .env_remove("DRGITOPS_GIT_URL");
    command.output().await.expect("drgitops runs")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dry_run_prints_the_diff_and_changes_nothing_then_once_applies() {
    let east = east().await;
    let admin = east.client().await;
    let dir = tempfile::tempdir().expect("tmp");
    let kubeconfig = east.service_account_kubeconfig("drgitops-reconciler").await;
    let repo = plan_repo();
    let cache = dir.path().join("cache");

    let dry = reconcile(&kubeconfig, repo.path(), &cache, &["--dry-run"]).await;
    let stdout = String::from_utf8_lossy(&dry.stdout);
    assert!(
        stdout.contains("+++ desired DRPlan mysql/mysql (create)"),
        "{stdout}"
    );
    assert!(
        !stdout.contains("px-token"),
        "credentials never reach the diff"
    );
    assert!(
        plan(&admin, "mysql", "mysql").await.is_none(),
        "dry-run changes nothing"
    );

    let once = reconcile(&kubeconfig, repo.path(), &cache, &["--once"]).await;
    assert!(
        once.status.success(),
        "{}",
        String::from_utf8_lossy(&once.stderr)
    );
    let schedule = stork(&admin, "MigrationSchedule", "mysql", "mysql")
        .await
        .expect("applied");
    assert_eq!(schedule["spec"]["suspend"], false);

    let edited =
        read_data("plans/mysql.yaml").replace("intervalMinutes: 15", "intervalMinutes: 25");
    commit(
        repo.path(),
        &[("plans/mysql.yaml", &edited)],
        "every 25 minutes",
    );
    let dry = reconcile(&kubeconfig, repo.path(), &cache, &["--dry-run"]).await;
    let stdout = String::from_utf8_lossy(&dry.stdout);
    assert!(
        stdout.contains("+++ desired NamespacedSchedulePolicy mysql/mysql\n"),
        "{stdout}"
    );
    assert!(
        stdout.contains("-    intervalMinutes: 15\n+    intervalMinutes: 25"),
        "the rendered policy's diff: {stdout}"
    );
    let policy = stork(&admin, "NamespacedSchedulePolicy", "mysql", "mysql")
        .await
        .expect("policy");
    assert_eq!(
        policy["policy"]["interval"]["intervalMinutes"], 15,
        "dry-run changes nothing"
    );

    let broken = edited.replace("primary: us-east-1a", "primary: nowhere");
    commit(repo.path(), &[("plans/mysql.yaml", &broken)], "broken");
    let once = reconcile(&kubeconfig, repo.path(), &cache, &["--once"]).await;
    assert!(
        !once.status.success(),
        "--once exits non-zero on a broken commit"
    );
    let stderr = String::from_utf8_lossy(&once.stderr);
    assert!(
        stderr.contains("plans/mysql.yaml:8: spec.primary"),
        "{stderr}"
    );
    let policy = stork(&admin, "NamespacedSchedulePolicy", "mysql", "mysql")
        .await
        .expect("policy");
    assert_eq!(
        policy["policy"]["interval"]["intervalMinutes"], 15,
        "nothing of the broken commit is applied"
    );
    // The shipped ConfigMap's way to let Argo CD or Flux deliver the plans: DRGITOPS_GIT_URL left empty. The plan
    // already in the cluster is reconciled; no git source is started.
    let once = tokio::process::Command::new(crate::DRGITOPS)
        .args(["reconcile", "--once", "--cluster-domain", EAST])
        .args(["--system-namespace", SYSTEM_NAMESPACE])
        .env("KUBECONFIG", &kubeconfig)
        .env("DRGITOPS_GIT_URL", "")
        .output()
        .await
        .expect("drgitops runs");
    let stderr = String::from_utf8_lossy(&once.stderr);
    assert!(once.status.success(), "{stderr}");
    assert!(!stderr.contains("URL"), "{stderr}");
}
