//! Two reconcilers on one cluster, each as the shipped ServiceAccount, electing a leader with the real Lease API
//! in the system namespace: only the Lease holder writes; when it shuts down the other takes over.

use std::sync::atomic::Ordering;
use std::time::Duration;

use drgitops::reconcile::runner::Reconciler;
use k8s_openapi::api::coordination::v1::Lease;
use kube::Api;
use testkit::reconcile::{commit, plan_repo};
use testkit::{EAST, eventually};

use super::support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_the_leader_writes() {
    let east = east().await;
    let client = east.client().await;
    let repo = plan_repo();
    let (cache_a, cache_b) = (
        tempfile::tempdir().expect("tmp"),
        tempfile::tempdir().expect("tmp"),
    );
    let mut opts_a = options(EAST, repo.path(), cache_a.path());
    opts_a.identity = "replica-a".into();
    let mut opts_b = options(EAST, repo.path(), cache_b.path());
    opts_b.identity = "replica-b".into();
    opts_b.webhook_secret = Some(b"s".to_vec());
    let a = Reconciler::new(reconciler_client(&east).await, opts_a);
    let b = Reconciler::new(reconciler_client(&east).await, opts_b);
    let (stop_a, shutdown_a) = tokio::sync::watch::channel(false);
    let (stop_b, shutdown_b) = tokio::sync::watch::channel(false);
    let run_a = tokio::spawn(a.clone().run(shutdown_a));
    // B starts once A holds the lease, so the test knows who leads.
    let leases: Api<Lease> = Api::namespaced(client.clone(), SYSTEM_NAMESPACE);
    let holder = |want: &'static str| {
        let leases = leases.clone();
        async move {
            let lease = leases.get_opt("drgitops-reconciler").await.ok()??;
            (lease.spec?.holder_identity.as_deref() == Some(want)).then_some(())
        }
    };
    assert!(
        eventually(Duration::from_secs(10), || holder("replica-a"))
            .await
            .is_some(),
        "A leads"
    );
    let run_b = tokio::spawn(b.clone().run(shutdown_b));

    let applied = eventually(Duration::from_secs(20), || async {
        plan(&client, "mysql", "mysql")
            .await?
            .get("status")
            .cloned()
    })
    .await;
    assert!(applied.is_some(), "the leader applies and reports");
    // B is running and watching the same DRPlans, but never acts while A holds the lease.
    assert!(
        eventually(Duration::from_secs(5), || async {
            b.ready.load(Ordering::SeqCst).then_some(())
        })
        .await
        .is_some()
    );
    assert!(a.leader.load(Ordering::SeqCst));
    assert!(
        !b.leader.load(Ordering::SeqCst),
        "two replicas never lead at once"
    );
    let b_passes = b.metrics.encode();
    assert!(
        !b_passes.contains("drgitops_reconcile_total{result="),
        "B ran no pass: {b_passes}"
    );

    // A push that reaches the follower is handed to the leader through the Lease and applied by the leader.
    let edited = read_data("plans/mysql.yaml").replace("intervalMinutes: 15", "intervalMinutes: 7");
    commit(
        repo.path(),
        &[("plans/mysql.yaml", &edited)],
        "every 7 minutes",
    );
    let payload = br#"{"ref":"refs/heads/main"}"#;
    let request = http::Request::post("/hooks/git")
        .header(
            "x-hub-signature-256",
            drgitops::source::hooks::sign(b"s", payload),
        )
        .body(axum::body::Body::from(payload.to_vec()))
        .expect("request");
    let response = tower::ServiceExt::oneshot(b.admin_router(), request)
        .await
        .expect("served");
    assert_eq!(response.status(), http::StatusCode::ACCEPTED);
    let handed_over = eventually(Duration::from_secs(10), || async {
        let policy = stork(&client, "NamespacedSchedulePolicy", "mysql", "mysql").await?;
        (policy["policy"]["interval"]["intervalMinutes"] == 7).then_some(())
    })
    .await;
    assert!(
        handed_over.is_some(),
        "the leader fetched the push the follower received"
    );
    assert!(
        !b.metrics
            .encode()
            .contains("drgitops_reconcile_total{result="),
        "the follower still ran no pass"
    );

    // A shuts down gracefully and releases the lease: B takes over and acts.
    let _ = stop_a.send(true);
    run_a.await.expect("A stops");
    assert!(
        eventually(Duration::from_secs(10), || holder("replica-b"))
            .await
            .is_some(),
        "B takes over"
    );
    let acted = eventually(Duration::from_secs(10), || async {
        b.metrics
            .encode()
            .contains("drgitops_reconcile_total{result=")
            .then_some(())
    })
    .await;
    assert!(acted.is_some(), "the new leader runs passes");
    let _ = stop_b.send(true);
    run_b.await.expect("B stops");
}

/// Fetches the reconciler has made so far, from its own metrics.
fn fetches(reconciler: &Reconciler) -> u64 {
    reconciler
        .metrics
        .encode()
        .lines()
        .filter(|line| line.starts_with("drgitops_git_fetch_total{"))
        .filter_map(|line| line.rsplit(' ').next()?.parse::<u64>().ok())
        .sum()
}

/// A reconciler that has just won the Lease polls on its own interval from then on, not on the follower's Lease
/// recheck (a third of the lease duration, 20 s here): once the first commit is applied and nothing else wakes
/// it, it keeps fetching every 200 ms, and a later commit is picked up by polling alone, with no push.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_leader_polls_on_its_interval() {
    let east = east().await;
    let client = east.client().await;
    let repo = plan_repo();
    let cache = tempfile::tempdir().expect("tmp");
    let mut opts = options(EAST, repo.path(), cache.path());
    opts.interval = Duration::from_millis(200);
    opts.lease_duration = Duration::from_secs(60);
    let reconciler = Reconciler::new(reconciler_client(&east).await, opts);
    let (stop, shutdown) = tokio::sync::watch::channel(false);
    let run = tokio::spawn(reconciler.clone().run(shutdown));
    let first = eventually(Duration::from_secs(10), || async {
        stork(&client, "NamespacedSchedulePolicy", "mysql", "mysql").await
    })
    .await;
    assert!(first.is_some(), "the leader applies the first commit");

    // Five more fetches: more than the passes the first apply's own status writes trigger, well before the 20 s
    // a follower's schedule would allow.
    let before = fetches(&reconciler);
    let polling = eventually(Duration::from_secs(15), || async {
        (fetches(&reconciler) >= before + 5).then_some(())
    })
    .await;
    assert!(
        polling.is_some(),
        "the new leader polls every 200 ms: {} fetches after the first apply, {before} before",
        fetches(&reconciler)
    );

    let edited = read_data("plans/mysql.yaml").replace("intervalMinutes: 15", "intervalMinutes: 7");
    commit(
        repo.path(),
        &[("plans/mysql.yaml", &edited)],
        "every 7 minutes",
    );
    let polled = eventually(Duration::from_secs(10), || async {
        let policy = stork(&client, "NamespacedSchedulePolicy", "mysql", "mysql").await?;
        (policy["policy"]["interval"]["intervalMinutes"] == 7).then_some(())
    })
    .await;
    assert!(polled.is_some(), "the commit is picked up by polling");
    let _ = stop.send(true);
    run.await.expect("stops");
}
