//! Transient API errors (injected 500s and 429s, dropped connections, a dropped watch) are retried with backoff
//! and the reconciler ends in the right state.

mod reconcile_support;

use std::time::Duration;

use drgitops::gitops::runner::Reconciler;
use fake_apiserver::faults::FaultMatch;
use reconcile_support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transient_errors_are_retried_until_the_state_is_right() {
    let (east, _west) = two_clusters().await;
    let repo = plan_repo();
    let cache = tempfile::tempdir().expect("tmp");
    let reconciler = Reconciler::new(east.client(), options(EAST, repo.path(), cache.path()));
    let faults = east.srv.faults();
    faults.fail_next(
        3,
        FaultMatch::verb_resource("patch", "migrationschedules"),
        500,
    );
    faults.fail_next(2, FaultMatch::verb_resource("list", "drplans"), 429);
    faults.fail_next(1, FaultMatch::verb_resource("get", "secrets"), 503);
    faults.drop_next(
        1,
        FaultMatch::verb_resource("patch", "namespacedschedulepolicies"),
    );

    // A single pass meets the faults and asks for a retry instead of giving up.
    let first = reconciler.pass(true).await;
    assert!(!first.ok);
    assert!(
        first.retry,
        "transient errors are retried: {:?}",
        first.errors
    );

    let (stop, shutdown) = tokio::sync::watch::channel(false);
    let runner = tokio::spawn(reconciler.clone().run(shutdown));
    let client = east.client();
    let settled = eventually(Duration::from_secs(30), || async {
        let schedule = stork(&client, "MigrationSchedule", "mysql", "mysql").await?;
        let policy = stork(&client, "NamespacedSchedulePolicy", "mysql", "mysql").await?;
        let plan = plan(&client, "mysql", "mysql").await?;
        let ready = condition(&plan, "Ready")?["status"] == "True";
        (schedule["spec"]["suspend"] == false
            && policy["policy"]["interval"]["intervalMinutes"] == 15
            && ready)
            .then_some(())
    })
    .await;
    assert!(settled.is_some(), "the retries end in the primary's state");

    // A dropped watch (history compacted: the watch ends with 410) is re-listed; a later commit still lands.
    east.srv.compact();
    let edited =
        read_data("plans/mysql.yaml").replace("intervalMinutes: 15", "intervalMinutes: 20");
    commit(
        repo.path(),
        &[("plans/mysql.yaml", &edited)],
        "every 20 minutes",
    );
    faults.fail_next(2, FaultMatch::verb_resource("patch", "drplans"), 500);
    reconciler.trigger.notify_one();
    let updated = eventually(Duration::from_secs(30), || async {
        let policy = stork(&client, "NamespacedSchedulePolicy", "mysql", "mysql").await?;
        (policy["policy"]["interval"]["intervalMinutes"] == 20).then_some(())
    })
    .await;
    assert!(
        updated.is_some(),
        "the commit lands after the injected failures"
    );
    let _ = stop.send(true);
    runner.await.expect("stops");
}
