//! A transition waiting at the fence is re-checked on the planner's schedule, not through the error backoff: the
//! running reconciler (leader election, watch, pass loop) notices `spec.failover.peerStopTimeoutSeconds` soon after
//! it runs out, and starts the applications soon after the old primary stands by, however long it waited before.

mod reconcile_support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use drgitops::gitops::metrics::{Outcome, ReconcileLabels};
use drgitops::gitops::runner::Reconciler;
use drgitops::plan::{DRPlan, DRPlanStatus, Role};
use k8s_openapi::api::apps::v1::Deployment;
use kube::Api;
use reconcile_support::{
    Cluster, EAST, WEST, commit, git, options, plan_repo, read_data, two_clusters, web_deployment,
};
use tokio::sync::watch;

async fn web_replicas(client: &kube::Client) -> i32 {
    let d = Api::<Deployment>::namespaced(client.clone(), "mysql")
        .get("web")
        .await
        .expect("web");
    d.spec.and_then(|s| s.replicas).unwrap_or(1)
}

async fn status(cluster: &Cluster) -> DRPlanStatus {
    Api::<DRPlan>::namespaced(cluster.client(), "mysql")
        .get("mysql")
        .await
        .expect("plan")
        .status
        .unwrap_or_default()
}

fn failed_passes(reconciler: &Reconciler) -> u64 {
    reconciler
        .metrics
        .reconcile_total
        .get_or_create(&ReconcileLabels {
            result: Outcome::Failure,
        })
        .get()
}

/// Polls `check` every 50 ms until it holds; panics with `what` after `bound`.
async fn await_condition<F, Fut>(bound: Duration, what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + bound;
    while !check().await {
        assert!(Instant::now() < deadline, "not within {bound:?}: {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

struct Setup {
    east: Cluster,
    west: Cluster,
    east_rec: Arc<Reconciler>,
    west_rec: Arc<Reconciler>,
    _dirs: (tempfile::TempDir, tempfile::TempDir, tempfile::TempDir),
}

/// East runs `web` (2 replicas) as the primary, west stands by; then a failover to west is committed. `timeout`
/// sets `spec.failover.peerStopTimeoutSeconds` in the plan.
async fn failover_committed(timeout: Option<u64>) -> Setup {
    let (east, west) = two_clusters().await;
    web_deployment(&east.client(), 2, None).await;
    web_deployment(&west.client(), 0, Some("2")).await;
    let repo = plan_repo();
    git(repo.path(), &["config", "user.name", "On-call"]);
    git(repo.path(), &["config", "user.email", "oncall@example.com"]);
    if let Some(seconds) = timeout {
        let plan = format!(
            "{}  failover:\n    peerStopTimeoutSeconds: {seconds}\n",
            read_data("plans/mysql.yaml")
        );
        commit(
            repo.path(),
            &[("plans/mysql.yaml", &plan)],
            "give the old primary a short time to stop",
        );
    }
    let (east_cache, west_cache) = (
        tempfile::tempdir().expect("tmp"),
        tempfile::tempdir().expect("tmp"),
    );
    let east_rec = Reconciler::new(east.client(), options(EAST, repo.path(), east_cache.path()));
    let west_rec = Reconciler::new(west.client(), options(WEST, repo.path(), west_cache.path()));
    assert!(east_rec.pass(true).await.ok);
    assert!(west_rec.pass(true).await.ok);
    assert_eq!(
        (status(&east).await.role, status(&west).await.role),
        (Some(Role::Primary), Some(Role::Standby))
    );
    drgitops::cli::failover::failover(repo.path(), "mysql", WEST, None, None)
        .expect("failover commit");
    Setup {
        east,
        west,
        east_rec,
        west_rec,
        _dirs: (repo, east_cache, west_cache),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plan_waiting_at_the_fence_goes_stalled_soon_after_the_peer_stop_timeout() {
    let s = failover_committed(Some(2)).await;
    let (stop, shutdown) = watch::channel(false);
    let running = tokio::spawn(s.west_rec.clone().run(shutdown));

    // East never stops (its reconciler is not running): west waits at the fence, then gives up after 2 s. Nothing
    // but the plan's own re-check brings the passes that notice it.
    await_condition(
        Duration::from_secs(20),
        "west's plan turns Stalled after peerStopTimeoutSeconds",
        || async { status(&s.west).await.phase.as_deref() == Some("Stalled") },
    )
    .await;
    let status = status(&s.west).await;
    let stalled = status
        .conditions
        .iter()
        .find(|c| c.type_ == "Stalled")
        .expect("Stalled condition");
    assert_eq!(
        (stalled.status.as_str(), stalled.reason.as_deref()),
        ("True", Some("PeerStillRunning"))
    );
    let message = stalled.message.as_deref().unwrap_or_default();
    assert!(
        message.contains("after 2s (spec.failover.peerStopTimeoutSeconds)"),
        "{message}"
    );
    assert_eq!(web_replicas(&s.west.client()).await, 0, "nothing started");
    assert_eq!(web_replicas(&s.east.client()).await, 2);

    stop.send(true).expect("stop");
    running.await.expect("run loop ends");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plan_waiting_at_the_fence_proceeds_soon_after_the_peer_stands_by() {
    let s = failover_committed(None).await;

    // Waiting at the fence is no error: the pass asks for a prompt re-check instead of a retry with backoff.
    let waiting = s.west_rec.pass(false).await;
    let plan = waiting
        .plans
        .plans
        .iter()
        .find(|p| p.plan == "mysql/mysql")
        .expect("mysql reported");
    assert_eq!(plan.phase, "WaitingForPeer", "{plan:?}");
    assert!(!waiting.retry, "waiting is not an error: {waiting:?}");
    let after = waiting
        .plans
        .requeue_after
        .expect("the wait asks for a re-check");
    assert!(after <= Duration::from_secs(1), "{after:?}");
    assert_eq!(web_replicas(&s.west.client()).await, 0);

    // Let west's running reconciler wait through many passes: with an error backoff, the next pass would now be
    // tens of seconds away.
    let (stop, shutdown) = watch::channel(false);
    let running = tokio::spawn(s.west_rec.clone().run(shutdown));
    let before = failed_passes(&s.west_rec);
    await_condition(
        Duration::from_secs(30),
        "west re-checks the fence repeatedly",
        || async { failed_passes(&s.west_rec) >= before + 8 },
    )
    .await;
    assert_eq!(
        status(&s.west).await.phase.as_deref(),
        Some("WaitingForPeer")
    );
    assert_eq!(web_replicas(&s.west.client()).await, 0);

    // East sees the commit and stands by.
    for _ in 0..10 {
        s.east_rec.pass(false).await;
        if status(&s.east).await.role == Some(Role::Standby) {
            break;
        }
    }
    assert_eq!(status(&s.east).await.role, Some(Role::Standby));
    assert_eq!(web_replicas(&s.east.client()).await, 0);

    // Nothing wakes west but its own re-check of the fence.
    await_condition(
        Duration::from_secs(10),
        "west starts the application once east stands by",
        || async { web_replicas(&s.west.client()).await == 2 },
    )
    .await;
    await_condition(
        Duration::from_secs(10),
        "west's plan reads Protected and Ready",
        || async {
            let status = status(&s.west).await;
            status.phase.as_deref() == Some("Protected")
                && status
                    .conditions
                    .iter()
                    .any(|c| c.type_ == "Ready" && c.status == "True")
        },
    )
    .await;
    stop.send(true).expect("stop");
    running.await.expect("run loop ends");

    // After the transition both plans read their steady phase, with the finished record kept.
    for (cluster, role, phase) in [
        (&s.west, Role::Primary, "Protected"),
        (&s.east, Role::Standby, "Standby"),
    ] {
        let status = status(cluster).await;
        assert_eq!(
            (status.role, status.phase.as_deref()),
            (Some(role), Some(phase))
        );
        let ready = status
            .conditions
            .iter()
            .find(|c| c.type_ == "Ready")
            .expect("Ready condition");
        assert_eq!(
            (ready.status.as_str(), ready.reason.as_deref()),
            ("True", Some("Reconciled")),
            "{ready:?}"
        );
        let transition = status.transition.expect("transition recorded");
        assert!(transition.finished_at.is_some(), "{transition:?}");
    }

    // A settled plan's status is not rewritten by further passes: nothing flips it, so nothing wakes the loop.
    let version = || async {
        Api::<DRPlan>::namespaced(s.west.client(), "mysql")
            .get("mysql")
            .await
            .expect("plan")
            .metadata
            .resource_version
    };
    let before = version().await;
    assert!(s.west_rec.pass(false).await.ok);
    assert!(s.west_rec.pass(true).await.ok);
    assert_eq!(version().await, before, "{:?}", status(&s.west).await);
}
