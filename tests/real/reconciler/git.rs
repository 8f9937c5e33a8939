//! The reconciler end to end against real clusters and a real git repository, as the shipped ServiceAccount:
//! commits become DRPlans and each role's Stork objects; edits update them; deleted plans are pruned (and only
//! what we applied); a broken commit changes nothing and says where it is broken; a later good commit recovers.

use drgitops::reconcile::runner::Reconciler;
use serde_json::json;
use testkit::reconcile::{commit, plan_repo, reconciler_cluster, remove};
use testkit::{EAST, WEST, git};

use super::support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commits_drive_both_roles_prune_and_fail_closed() {
    let (east, west) = pair().await;
    let (admin, west_admin) = (east.client().await, west.client().await);
    let repo = plan_repo();
    let first = git(repo.path(), &["rev-parse", "HEAD"]);
    let (east_cache, west_cache) = (
        tempfile::tempdir().expect("tmp"),
        tempfile::tempdir().expect("tmp"),
    );
    let east_rec = Reconciler::new(
        reconciler_client(&east).await,
        options(EAST, repo.path(), east_cache.path()),
    );
    let west_rec = Reconciler::new(
        reconciler_client(&west).await,
        options(WEST, repo.path(), west_cache.path()),
    );

    // 1. A commit with plans yields the role's objects on the primary and on the standby.
    let outcome = east_rec.pass(true).await;
    assert!(outcome.ok, "east pass: {:?}", outcome.errors);
    let outcome = west_rec.pass(true).await;
    assert!(outcome.ok, "west pass: {:?}", outcome.errors);

    let pair = stork(&admin, "ClusterPair", "mysql", "remotecluster")
        .await
        .expect("pair on east");
    assert_eq!(
        pair["spec"]["options"],
        json!({"ip": "10.0.0.9", "port": "9001", "token": "px-token", "mode": "DisasterRecovery"})
    );
    assert_eq!(pair["spec"]["config"]["current-context"], WEST);
    assert_eq!(
        pair["spec"]["config"]["clusters"][WEST]["server"],
        west.env.url()
    );
    assert_eq!(
        pair["metadata"]["labels"]["app.kubernetes.io/managed-by"],
        "drgitops"
    );
    assert_eq!(pair["metadata"]["labels"]["drgitops.dev/plan"], "mysql");
    assert!(
        pair.get("status").is_none_or(|s| s.is_null()),
        "no status is ever sent: {pair}"
    );
    let metro_pair = stork(&admin, "ClusterPair", "postgres", "metro-peer")
        .await
        .expect("metro pair");
    assert!(
        metro_pair["spec"].get("options").is_none(),
        "metro pairs carry no storage options"
    );

    let policy = stork(&admin, "NamespacedSchedulePolicy", "mysql", "mysql")
        .await
        .expect("policy");
    assert_eq!(policy["policy"]["interval"]["intervalMinutes"], 15);

    let primary = stork(&admin, "MigrationSchedule", "mysql", "mysql")
        .await
        .expect("schedule on east");
    assert_eq!(primary["spec"]["suspend"], false);
    assert_eq!(primary["spec"]["schedulePolicyName"], "mysql");
    assert_eq!(
        primary["spec"]["template"]["spec"]["startApplications"],
        false
    );
    assert_eq!(
        primary["spec"]["template"]["spec"]["namespaces"],
        json!(["mysql"])
    );
    assert_eq!(
        primary["spec"]["template"]["spec"]["clusterPair"],
        "remotecluster"
    );

    let standby = stork(&west_admin, "MigrationSchedule", "mysql", "mysql")
        .await
        .expect("schedule on west");
    assert_eq!(standby["spec"]["suspend"], true);
    assert_eq!(
        standby["metadata"]["annotations"]["stork.libopenstorage.org/static-copy"],
        "true"
    );
    let west_pair = stork(&west_admin, "ClusterPair", "mysql", "remotecluster")
        .await
        .expect("pair kept on standby");
    assert_eq!(west_pair["spec"]["config"]["current-context"], EAST);

    let east_plan = plan(&admin, "mysql", "mysql").await.expect("plan applied");
    assert_eq!(east_plan["status"]["role"], "Primary");
    assert_eq!(east_plan["status"]["localDomain"], EAST);
    assert_eq!(east_plan["status"]["lastAppliedRevision"], first.as_str());
    assert_eq!(east_plan["status"]["lastAttemptedRevision"], first.as_str());
    assert_eq!(
        east_plan["status"]["observedGeneration"],
        east_plan["metadata"]["generation"]
    );
    assert_eq!(
        condition(&east_plan, "Ready").expect("Ready")["status"],
        "True"
    );
    assert_eq!(
        condition(&east_plan, "Stalled").expect("Stalled")["status"],
        "False"
    );
    let west_plan = plan(&west_admin, "mysql", "mysql")
        .await
        .expect("plan applied");
    assert_eq!(west_plan["status"]["role"], "Standby");
    assert_eq!(west_plan["status"]["phase"], "Standby");

    // 2. A commit that edits the schedule updates both clusters.
    let edited =
        read_data("plans/mysql.yaml").replace("intervalMinutes: 15", "intervalMinutes: 30");
    let second = commit(
        repo.path(),
        &[("plans/mysql.yaml", &edited)],
        "every 30 minutes",
    );
    assert!(east_rec.pass(false).await.ok);
    assert!(west_rec.pass(false).await.ok);
    for (cluster, client) in [(&east, &admin), (&west, &west_admin)] {
        let policy = stork(client, "NamespacedSchedulePolicy", "mysql", "mysql")
            .await
            .expect("policy");
        assert_eq!(
            policy["policy"]["interval"]["intervalMinutes"], 30,
            "on {}",
            cluster.domain
        );
        let plan = plan(client, "mysql", "mysql").await.expect("plan");
        assert_eq!(plan["status"]["lastAppliedRevision"], second.as_str());
    }

    // 3. A broken commit changes nothing and says where it is broken.
    let broken = edited.replace("intervalMinutes: 30", "intervalMinutes: 0");
    let bad = commit(repo.path(), &[("plans/mysql.yaml", &broken)], "oops");
    let outcome = east_rec.pass(false).await;
    assert!(!outcome.ok, "a broken commit fails the pass");
    let report = outcome.errors.join("\n");
    assert!(
        report.contains("plans/mysql.yaml:21"),
        "names file and line: {report}"
    );
    assert!(
        report.contains("spec.schedule.interval.intervalMinutes"),
        "names the field: {report}"
    );
    let policy = stork(&admin, "NamespacedSchedulePolicy", "mysql", "mysql")
        .await
        .expect("policy");
    assert_eq!(
        policy["policy"]["interval"]["intervalMinutes"], 30,
        "the last good state stays"
    );
    let stalled_plan = plan(&admin, "mysql", "mysql").await.expect("plan");
    let stalled = condition(&stalled_plan, "Stalled").expect("Stalled");
    assert_eq!(stalled["status"], "True");
    assert_eq!(stalled["reason"], "InvalidCommit");
    assert!(
        stalled["message"]
            .as_str()
            .unwrap_or_default()
            .contains("plans/mysql.yaml:21"),
        "{stalled}"
    );
    assert_eq!(
        stalled_plan["status"]["lastAttemptedRevision"],
        bad.as_str()
    );
    assert_eq!(
        stalled_plan["status"]["lastAppliedRevision"],
        second.as_str()
    );
    let other = plan(&admin, "postgres", "postgres")
        .await
        .expect("other plan");
    assert_eq!(
        condition(&other, "Ready").expect("Ready")["status"],
        "True",
        "an unrelated plan stays Ready"
    );

    // 4. A later good commit recovers.
    let fixed = broken.replace("intervalMinutes: 0", "intervalMinutes: 45");
    let good = commit(repo.path(), &[("plans/mysql.yaml", &fixed)], "fix");
    let outcome = east_rec.pass(false).await;
    assert!(outcome.ok, "{:?}", outcome.errors);
    let policy = stork(&admin, "NamespacedSchedulePolicy", "mysql", "mysql")
        .await
        .expect("policy");
    assert_eq!(policy["policy"]["interval"]["intervalMinutes"], 45);
    let recovered = plan(&admin, "mysql", "mysql").await.expect("plan");
    assert_eq!(
        condition(&recovered, "Stalled").expect("Stalled")["status"],
        "False"
    );
    assert_eq!(recovered["status"]["lastAppliedRevision"], good.as_str());

    // 5. Deleting a plan file prunes the plan and what was rendered from it; a hand-made schedule survives.
    create_stork(
        &admin,
        "MigrationSchedule",
        "mysql",
        json!({"apiVersion": "stork.libopenstorage.org/v1alpha1", "kind": "MigrationSchedule",
            "metadata": {"name": "by-hand", "namespace": "mysql",
                "labels": {"app.kubernetes.io/managed-by": "drgitops", "drgitops.dev/plan": "mysql"}},
            "spec": {"schedulePolicyName": "mysql", "template": {"spec": {"clusterPair": "remotecluster"}}}}),
    )
    .await;
    remove(repo.path(), "plans/mysql.yaml", "retire mysql");
    let outcome = east_rec.pass(false).await;
    assert!(outcome.ok, "{:?}", outcome.errors);
    assert!(
        plan(&admin, "mysql", "mysql").await.is_none(),
        "the plan is pruned"
    );
    for (kind, name) in [
        ("ClusterPair", "remotecluster"),
        ("NamespacedSchedulePolicy", "mysql"),
        ("MigrationSchedule", "mysql"),
    ] {
        assert!(
            stork(&admin, kind, "mysql", name).await.is_none(),
            "{kind} {name} is pruned"
        );
    }
    assert!(
        stork(&admin, "MigrationSchedule", "mysql", "by-hand")
            .await
            .is_some(),
        "hand-made object survives"
    );
    assert!(
        plan(&admin, "postgres", "postgres").await.is_some(),
        "the other plan stays"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_secret_is_a_condition_and_an_empty_commit_prunes_nothing() {
    // No peer Secrets in the plan namespaces.
    let east = reconciler_cluster(EAST).await;
    let admin = east.client().await;
    let repo = plan_repo();
    let cache = tempfile::tempdir().expect("tmp");
    let reconciler = Reconciler::new(
        reconciler_client(&east).await,
        options(EAST, repo.path(), cache.path()),
    );

    let outcome = reconciler.pass(true).await;
    assert!(!outcome.ok, "plans without their Secrets are not Ready");
    let stuck = plan(&admin, "mysql", "mysql")
        .await
        .expect("plan applied anyway");
    let stalled = condition(&stuck, "Stalled").expect("Stalled");
    assert_eq!(stalled["status"], "True");
    assert_eq!(stalled["reason"], "MissingSecret");
    assert!(
        stalled["message"]
            .as_str()
            .unwrap_or_default()
            .contains("mysql/drgitops-peer"),
        "{stalled}"
    );
    assert_eq!(stuck["status"]["phase"], "Stalled");

    // An empty commit (every plan file gone) never prunes.
    remove(repo.path(), "plans", "remove everything");
    let _ = reconciler.pass(false).await;
    assert!(
        plan(&admin, "mysql", "mysql").await.is_some(),
        "an empty render never prunes"
    );
    assert!(
        plan(&admin, "postgres", "postgres").await.is_some(),
        "an empty render never prunes"
    );

    // Unless the reconciler runs with --allow-empty.
    let cache = tempfile::tempdir().expect("tmp");
    let mut allow_empty = options(EAST, repo.path(), cache.path());
    allow_empty.allow_empty = true;
    let reconciler = Reconciler::new(reconciler_client(&east).await, allow_empty);
    let _ = reconciler.pass(false).await;
    for (ns, name) in [("mysql", "mysql"), ("postgres", "postgres")] {
        assert!(
            plan(&admin, ns, name).await.is_none(),
            "--allow-empty prunes {ns}/{name}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_commit_warns_its_plans_while_another_stored_plan_does_not_read() {
    let east = east().await;
    let admin = east.client().await;
    let repo = plan_repo();
    let cache = tempfile::tempdir().expect("tmp");
    let reconciler = Reconciler::new(
        reconciler_client(&east).await,
        options(EAST, repo.path(), cache.path()),
    );
    let outcome = reconciler.pass(true).await;
    assert!(outcome.ok, "{:?}", outcome.errors);

    // The postgres plan holds a field of the wrong type (stored while an older CRD schema let it through), then a
    // commit breaks the mysql plan: the commit is refused, and the mysql plan still gets its Warning Event.
    store_under_older_schema(
        &east,
        "postgres",
        "postgres",
        json!({"spec": {"schedule": {"interval": {"intervalMinutes": "often"}}}}),
    )
    .await;
    let broken = read_data("plans/mysql.yaml").replace("intervalMinutes: 15", "intervalMinutes: 0");
    commit(repo.path(), &[("plans/mysql.yaml", &broken)], "oops");
    let outcome = reconciler.pass(false).await;
    assert!(!outcome.ok, "a broken commit fails the pass");
    assert!(
        warning_names(&admin, "mysql", "InvalidCommit", "plans/mysql.yaml:21").await,
        "the refused commit's plan is warned, naming file and line"
    );
}
