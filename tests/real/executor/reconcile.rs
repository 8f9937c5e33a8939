//! The whole button: `drgitops failover` commits to a real Git repository, and the two clusters' reconcilers
//! (git source, plan controller, transition executor; in-process, as the shipped ServiceAccount) carry the
//! failover out on two real clusters, pass by pass.

use drgitops::plan::Role;
use testkit::{EAST, WEST, git};

use super::support::{Pair, await_ready_pods, plan_status, reconciler, stork_object, web_replicas};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failover_commit_moves_the_application_and_a_failback_brings_it_home() {
    let pair = Pair::start(2).await;
    let (east, west) = (&pair.east, &pair.west);
    let east_rec = reconciler(&pair, east).await;
    let west_rec = reconciler(&pair, west).await;
    assert!(east_rec.pass(true).await.ok);
    assert!(west_rec.pass(true).await.ok);
    assert_eq!(
        (plan_status(east).await.role, plan_status(west).await.role),
        (Some(Role::Primary), Some(Role::Standby))
    );

    for (to, from_cluster, to_cluster, from_rec, to_rec) in [
        (WEST, east, west, &east_rec, &west_rec),
        (EAST, west, east, &west_rec, &east_rec),
    ] {
        let report = drgitops::cli::failover::failover(
            pair.repo.path(),
            "mysql",
            to,
            None,
            None,
            "kube-system",
        )
        .expect("failover commit");
        assert_eq!(git(pair.repo.path(), &["rev-parse", "HEAD"]), report.commit);

        // The new primary's reconciler sees the commit first: it must wait for the old primary.
        to_rec.pass(false).await;
        assert_eq!(
            web_replicas(to_cluster).await.0,
            0,
            "nothing starts before the old primary stops"
        );
        assert_eq!(to_cluster.ready_pods("mysql", "web").await, 0);
        assert_eq!(web_replicas(from_cluster).await.0, 2);
        // The old primary drains and hands over its last writes (Stork's final migration) before the new one
        // starts.
        let moved = testkit::eventually(std::time::Duration::from_secs(60), || async {
            from_rec.pass(false).await;
            to_rec.pass(false).await;
            assert!(
                web_replicas(from_cluster).await.0 == 0 || web_replicas(to_cluster).await.0 == 0
            );
            (web_replicas(to_cluster).await.0 == 2).then_some(())
        })
        .await;
        assert!(moved.is_some(), "{to} never took over");
        assert_eq!(
            web_replicas(to_cluster).await.0,
            2,
            "{to} runs the application"
        );
        assert_eq!(web_replicas(from_cluster).await, (0, Some("2".into())));
        await_ready_pods(to_cluster, "mysql", &[("web", 2)]).await;
        await_ready_pods(from_cluster, "mysql", &[("web", 0)]).await;
        assert_eq!(plan_status(to_cluster).await.role, Some(Role::Primary));
        assert_eq!(plan_status(from_cluster).await.role, Some(Role::Standby));
        let schedule = stork_object(
            from_cluster,
            "MigrationSchedule",
            "migrationschedules",
            "mysql",
        )
        .await;
        assert_eq!(schedule["spec"]["suspend"], true, "{schedule}");
        let schedule = stork_object(
            to_cluster,
            "MigrationSchedule",
            "migrationschedules",
            "mysql",
        )
        .await;
        assert_eq!(schedule["spec"]["suspend"], false, "{schedule}");
        let status = plan_status(to_cluster).await;
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
