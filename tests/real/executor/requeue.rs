//! A transition waiting at the fence is re-checked on the planner's schedule, not through the error backoff: the
//! running reconciler (leader election, watch, pass loop; in-process, as the shipped ServiceAccount) notices
//! `spec.failover.peerStopTimeoutSeconds` soon after it runs out, and starts the applications soon after the old
//! primary stands by, however long it waited before.

use std::sync::Arc;
use std::time::Duration;

use drgitops::plan::{DRPlan, Role};
use drgitops::reconcile::runner::Reconciler;
use drgitops::runtime::metrics::{Outcome, ReconcileLabels};
use kube::Api;
use testkit::{WEST, eventually, git};
use tokio::sync::watch;

use super::support::{Pair, await_ready_pods, plan_status, reconciler, web_replicas};

fn failed_passes(reconciler: &Reconciler) -> u64 {
    reconciler
        .metrics
        .reconcile_total
        .get_or_create(&ReconcileLabels {
            result: Outcome::Failure,
        })
        .get()
}

/// Polls `check` until it holds; panics with `what` after `bound`.
async fn await_condition<F, Fut>(bound: Duration, what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let held = eventually(bound, || {
        let check = check();
        async move { check.await.then_some(()) }
    })
    .await;
    assert!(held.is_some(), "not within {bound:?}: {what}");
}

struct Setup {
    pair: Pair,
    east_rec: Arc<Reconciler>,
    west_rec: Arc<Reconciler>,
}

/// East runs `web` (2 replicas) as the primary, west stands by; then a failover to west is committed. `timeout`
/// sets `spec.failover.peerStopTimeoutSeconds` in the plan.
async fn failover_committed(timeout: Option<u64>) -> Setup {
    let pair = Pair::start(2).await;
    if let Some(seconds) = timeout {
        let path = pair.repo.path().join("plans/mysql.yaml");
        let plan = std::fs::read_to_string(&path).expect("plan");
        let plan = format!("{plan}  failover:\n    peerStopTimeoutSeconds: {seconds}\n");
        std::fs::write(&path, plan).expect("plan");
        git(
            pair.repo.path(),
            &[
                "commit",
                "-q",
                "-am",
                "give the old primary a short time to stop",
            ],
        );
    }
    let east_rec = reconciler(&pair, &pair.east).await;
    let west_rec = reconciler(&pair, &pair.west).await;
    assert!(east_rec.pass(true).await.ok);
    assert!(west_rec.pass(true).await.ok);
    assert_eq!(
        (
            plan_status(&pair.east).await.role,
            plan_status(&pair.west).await.role
        ),
        (Some(Role::Primary), Some(Role::Standby))
    );
    drgitops::cli::failover::failover(pair.repo.path(), "mysql", WEST, None, None, "kube-system")
        .expect("failover commit");
    Setup {
        pair,
        east_rec,
        west_rec,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plan_waiting_at_the_fence_goes_stalled_soon_after_the_peer_stop_timeout() {
    let s = failover_committed(Some(2)).await;
    let (east, west) = (&s.pair.east, &s.pair.west);
    let (stop, shutdown) = watch::channel(false);
    let running = tokio::spawn(s.west_rec.clone().run(shutdown));

    // East never stops (its reconciler is not running): west waits at the fence, then gives up after 2 s. Nothing
    // but the plan's own re-check brings the passes that notice it.
    await_condition(
        Duration::from_secs(20),
        "west's plan turns Stalled after peerStopTimeoutSeconds",
        || async { plan_status(west).await.phase.as_deref() == Some("Stalled") },
    )
    .await;
    let status = plan_status(west).await;
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
    assert_eq!(web_replicas(west).await.0, 0, "nothing started");
    assert_eq!(web_replicas(east).await.0, 2);
    await_ready_pods(west, "mysql", &[("web", 0)]).await;
    await_ready_pods(east, "mysql", &[("web", 2)]).await;

    stop.send(true).expect("stop");
    running.await.expect("run loop ends");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plan_waiting_at_the_fence_proceeds_soon_after_the_peer_stands_by() {
    let s = failover_committed(None).await;
    let (east, west) = (&s.pair.east, &s.pair.west);

    // Waiting at the fence is no error: the pass asks for a prompt re-check instead of a retry with backoff.
    let waiting = s.west_rec.pass(false).await;
    let plan = waiting
        .plans
        .plans
        .iter()
        .find(|p| p.plan == "mysql/mysql")
        .expect("mysql reported");
    assert_eq!(plan.phase.as_str(), "WaitingForPeer", "{plan:?}");
    assert!(!waiting.retry, "waiting is not an error: {waiting:?}");
    let after = waiting
        .plans
        .requeue_after
        .expect("the wait asks for a re-check");
    assert!(after <= Duration::from_secs(1), "{after:?}");
    assert_eq!(web_replicas(west).await.0, 0);

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
        plan_status(west).await.phase.as_deref(),
        Some("WaitingForPeer")
    );
    assert_eq!(web_replicas(west).await.0, 0);
    assert_eq!(west.ready_pods("mysql", "web").await, 0);

    // East sees the commit and stands by.
    // East sees the commit, stops, drains and hands over (Stork's final migration): it stands by.
    let standing_by = testkit::eventually(Duration::from_secs(60), || async {
        s.east_rec.pass(false).await;
        let status = plan_status(east).await;
        (status.role == Some(Role::Standby) && status.phase.as_deref() == Some("Standby"))
            .then_some(())
    })
    .await;
    assert!(
        standing_by.is_some(),
        "east never stood by: {:?}",
        plan_status(east).await
    );
    assert_eq!(web_replicas(east).await.0, 0);

    // Nothing wakes west but its own re-check of the fence.
    await_condition(
        Duration::from_secs(10),
        "west starts the application once east stands by",
        || async { web_replicas(west).await.0 == 2 },
    )
    .await;
    await_ready_pods(west, "mysql", &[("web", 2)]).await;
    await_ready_pods(east, "mysql", &[("web", 0)]).await;
    await_condition(
        Duration::from_secs(10),
        "west's plan reads Protected and Ready",
        || async {
            let status = plan_status(west).await;
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
        (west, Role::Primary, "Protected"),
        (east, Role::Standby, "Standby"),
    ] {
        let status = plan_status(cluster).await;
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
        Api::<DRPlan>::namespaced(west.client().await, "mysql")
            .get("mysql")
            .await
            .expect("plan")
            .metadata
            .resource_version
    };
    let before = version().await;
    assert!(s.west_rec.pass(false).await.ok);
    assert!(s.west_rec.pass(true).await.ok);
    assert_eq!(version().await, before, "{:?}", plan_status(west).await);
}
