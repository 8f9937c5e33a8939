//! The whole button: `drgitops failover` commits to a real Git repository, and the two clusters' reconcilers
//! (git source, plan controller, transition executor) carry the failover out on two in-memory API servers.

mod reconcile_support;

use drgitops::gitops::runner::Reconciler;
use drgitops::plan::{DRPlan, Role};
use k8s_openapi::api::apps::v1::Deployment;
use kube::Api;
use reconcile_support::{EAST, WEST, git, options, plan_repo, stork, two_clusters, web_deployment};

async fn web(client: &kube::Client) -> (i32, Option<String>) {
    let d = Api::<Deployment>::namespaced(client.clone(), "mysql")
        .get("web")
        .await
        .expect("web");
    let recorded = d
        .metadata
        .annotations
        .and_then(|a| a.get("stork.libopenstorage.org/migrationReplicas").cloned());
    (d.spec.and_then(|s| s.replicas).unwrap_or(1), recorded)
}

async fn role(client: &kube::Client) -> Option<Role> {
    let plan = Api::<DRPlan>::namespaced(client.clone(), "mysql")
        .get("mysql")
        .await
        .expect("plan");
    plan.status.and_then(|s| s.role)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failover_commit_moves_the_application_and_a_failback_brings_it_home() {
    let (east, west) = two_clusters().await;
    web_deployment(&east.client(), 2, None).await;
    web_deployment(&west.client(), 0, Some("2")).await;
    let repo = plan_repo();
    git(repo.path(), &["config", "user.name", "On-call"]);
    git(repo.path(), &["config", "user.email", "oncall@example.com"]);
    let (east_cache, west_cache) = (
        tempfile::tempdir().expect("tmp"),
        tempfile::tempdir().expect("tmp"),
    );
    let east_rec = Reconciler::new(east.client(), options(EAST, repo.path(), east_cache.path()));
    let west_rec = Reconciler::new(west.client(), options(WEST, repo.path(), west_cache.path()));
    assert!(east_rec.pass(true).await.ok);
    assert!(west_rec.pass(true).await.ok);
    assert_eq!(
        (role(&east.client()).await, role(&west.client()).await),
        (Some(Role::Primary), Some(Role::Standby))
    );

    for (to, from_cluster, to_cluster, from_rec, to_rec) in [
        (WEST, &east, &west, &east_rec, &west_rec),
        (EAST, &west, &east, &west_rec, &east_rec),
    ] {
        let report = drgitops::cli::failover::failover(repo.path(), "mysql", to, None, None)
            .expect("failover commit");
        assert_eq!(git(repo.path(), &["rev-parse", "HEAD"]), report.commit);

        // The new primary's reconciler sees the commit first: it must wait for the old primary.
        to_rec.pass(false).await;
        assert_eq!(
            web(&to_cluster.client()).await.0,
            0,
            "nothing starts before the old primary stops"
        );
        assert_eq!(web(&from_cluster.client()).await.0, 2);
        for _ in 0..5 {
            from_rec.pass(false).await;
            to_rec.pass(false).await;
            assert!(
                web(&from_cluster.client()).await.0 == 0 || web(&to_cluster.client()).await.0 == 0
            );
        }
        assert_eq!(
            web(&to_cluster.client()).await.0,
            2,
            "{to} runs the application"
        );
        assert_eq!(web(&from_cluster.client()).await, (0, Some("2".into())));
        assert_eq!(role(&to_cluster.client()).await, Some(Role::Primary));
        assert_eq!(role(&from_cluster.client()).await, Some(Role::Standby));
        let schedule = stork(
            &from_cluster.client(),
            "MigrationSchedule",
            "mysql",
            "mysql",
        )
        .await
        .expect("schedule");
        assert_eq!(schedule["spec"]["suspend"], true, "{schedule}");
        let schedule = stork(&to_cluster.client(), "MigrationSchedule", "mysql", "mysql")
            .await
            .expect("schedule");
        assert_eq!(schedule["spec"]["suspend"], false, "{schedule}");
        let status = Api::<DRPlan>::namespaced(to_cluster.client(), "mysql")
            .get("mysql")
            .await
            .expect("plan")
            .status
            .expect("status");
        assert_eq!(
            status.last_applied_revision.as_deref(),
            Some(report.commit.as_str())
        );
        let transition = status.transition.expect("transition recorded");
        assert_eq!(transition.revision.as_deref(), Some(report.commit.as_str()));
        assert!(transition.finished_at.is_some());
        assert!(
            transition.steps.iter().all(|s| s.state == "Succeeded"),
            "{transition:?}"
        );
    }
}
