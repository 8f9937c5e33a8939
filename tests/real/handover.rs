//! The hand-over of a failover on two real clusters, with Stork's Migration controllers played by the test kit's
//! stand-in: a planned failover brings every write the old primary made to the new one before it starts, and
//! never runs the application on both; a final migration that fails starts nothing anywhere; an old primary
//! that does not answer is waited for until a commit declares the disaster.

use std::time::Duration;

use drgitops::plan::{DRPlan, DRPlanStatus, Role};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Pod;
use kube::Api;
use kube::api::ListParams;

use crate::failover::{NS, Pair};
use testkit::{Cluster, EAST, WEST, eventually};

async fn status(cluster: &Cluster) -> DRPlanStatus {
    Api::<DRPlan>::namespaced(cluster.client().await, NS)
        .get("mysql")
        .await
        .ok()
        .and_then(|p| p.status)
        .unwrap_or_default()
}

/// The Stalled condition's reason and message, when the plan is Stalled.
async fn stalled(cluster: &Cluster) -> Option<(String, String)> {
    status(cluster)
        .await
        .conditions
        .into_iter()
        .find(|c| c.type_ == "Stalled" && c.status == "True")
        .map(|c| (c.reason.unwrap_or_default(), c.message.unwrap_or_default()))
}

/// Pods of the application that have not finished (running, starting or terminating).
async fn live_pods(cluster: &Cluster) -> usize {
    Api::<Pod>::namespaced(cluster.client().await, NS)
        .list(&ListParams::default().labels("app=web"))
        .await
        .expect("list pods")
        .items
        .iter()
        .filter(|p| drgitops::cluster::pods::not_finished(p))
        .count()
}

/// `spec.replicas` of the application. Stork's final migration deletes and re-creates a standby's changed objects:
/// that moment is waited out.
async fn replicas(cluster: &Cluster) -> i32 {
    let web = eventually(Duration::from_secs(10), || async {
        Api::<Deployment>::namespaced(cluster.client().await, NS)
            .get_opt("web")
            .await
            .expect("get web")
    })
    .await
    .expect("Deployment web exists");
    web.spec.and_then(|s| s.replicas).unwrap_or(1)
}

fn has_marker(cluster: &Cluster) -> bool {
    let out = cluster.kubectl_output(&["-n", NS, "get", "configmap", "last-write"], None);
    out.status.success()
}

fn logs(pair: &Pair) -> String {
    pair.reconcilers
        .iter()
        .map(|r| r.log())
        .collect::<Vec<_>>()
        .join("\n----\n")
}

/// Final Migrations of the plan on `cluster`: `name status` per line.
fn final_migrations(cluster: &Cluster) -> Vec<String> {
    let out = cluster.get(
        &[
            "-n",
            NS,
            "migrations",
            "-l",
            "drgitops.dev/final-migration=true",
        ],
        "{range .items[*]}{.metadata.name} {.status.status}{\"\\n\"}{end}",
    );
    out.lines().map(str::to_string).collect()
}

/// A scheduled migration runs; the primary (and, through it, the standby) records it as the data age.
async fn scheduled_migration(pair: &Pair) -> String {
    let started = pair.stork.trigger_schedules().await;
    assert_eq!(started.len(), 1, "{started:?}");
    let recorded = eventually(Duration::from_secs(60), || async {
        let (e, w) = (status(&pair.east).await, status(&pair.west).await);
        let name = e.last_migration?.name;
        (w.last_migration.map(|m| m.name).as_ref() == Some(&name)).then_some(name)
    })
    .await;
    recorded.unwrap_or_else(|| panic!("the data age was never recorded\n{}", logs(pair)))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_planned_failover_carries_every_write_and_survives_restarts_of_both_reconcilers() {
    let mut pair = Pair::start().await;
    pair.converge(&pair.east, &pair.west).await;
    let scheduled = scheduled_migration(&pair).await;
    assert!(scheduled.starts_with("mysql-interval-"), "{scheduled}");
    // The application writes after the last scheduled migration.
    pair.east.kubectl(&[
        "-n",
        NS,
        "create",
        "configmap",
        "last-write",
        "--from-literal=at=after-the-last-scheduled-migration",
    ]);
    assert!(!has_marker(&pair.west));

    // The final migration is held in flight while both reconcilers are restarted.
    pair.stork.hold_migrations(true);
    pair.commit_failover(WEST);
    let held = eventually(Duration::from_secs(60), || async {
        let t = status(&pair.east).await.transition?;
        let step = t.steps.into_iter().find(|s| s.name == "final-migration")?;
        (step.state == "Waiting").then_some(())
    })
    .await;
    assert!(
        held.is_some(),
        "east never waited for its final migration\n{}",
        logs(&pair)
    );
    assert_eq!(
        replicas(&pair.west).await,
        0,
        "west waits for the hand-over"
    );
    pair.reconcilers.clear();
    for i in 0..2 {
        let reconciler = pair.spawn_reconciler(i).await;
        pair.reconcilers.push(reconciler);
    }
    pair.stork.hold_migrations(false);

    // From here on, what a person would see on both clusters, every 100 ms: poll numbers of east's last live
    // pod and west's first Ready one, and whether the last write was on west when its applications started.
    #[derive(Default)]
    struct Seen {
        polls: u32,
        east_last_live: Option<u32>,
        west_first_ready: Option<u32>,
        marker_when_started: Option<bool>,
    }
    let seen = std::sync::Mutex::new(Seen::default());
    let (east, west) = (&pair.east, &pair.west);
    let done = eventually(Duration::from_secs(120), || async {
        let east_live = live_pods(east).await;
        let west_ready = west.ready_pods(NS, "web").await;
        let started = replicas(west).await > 0;
        let marker = started && has_marker(west);
        {
            let mut s = seen.lock().expect("poll record");
            s.polls += 1;
            let poll = s.polls;
            if east_live > 0 {
                s.east_last_live = Some(poll);
            }
            if west_ready > 0 && s.west_first_ready.is_none() {
                s.west_first_ready = Some(poll);
            }
            if started && s.marker_when_started.is_none() {
                s.marker_when_started = Some(marker);
            }
        }
        assert!(
            west_ready == 0 || east_live == 0,
            "{west_ready} pods Ready on west while {east_live} still live on east"
        );
        (west_ready == 3 && status(west).await.phase.as_deref() == Some("Protected")).then_some(())
    })
    .await;
    let seen = seen.into_inner().expect("poll record");
    let (east_last_live, west_first_ready, marker_when_started) = (
        seen.east_last_live,
        seen.west_first_ready,
        seen.marker_when_started,
    );
    assert!(done.is_some(), "west never took over\n{}", logs(&pair));
    assert!(
        east_last_live.unwrap_or(0) < west_first_ready.unwrap_or(0),
        "east's last live pod (poll {east_last_live:?}) before west's first Ready one (poll {west_first_ready:?})"
    );
    assert_eq!(
        marker_when_started,
        Some(true),
        "the write made after the last scheduled migration was on west when its applications started"
    );

    // Exactly one final migration, recorded on both sides as the data age.
    let finals = final_migrations(&pair.east);
    assert_eq!(finals.len(), 1, "{finals:?}");
    let (name, state) = finals[0].split_once(' ').expect("name and status");
    assert_eq!(state, "Successful");
    let east = status(&pair.east).await;
    let recorded = east.final_migration.expect("status.finalMigration");
    assert_eq!(
        (
            recorded.name.as_str(),
            recorded.status.as_deref(),
            recorded.from.as_deref()
        ),
        (name, Some("Successful"), Some(EAST))
    );
    assert_eq!(east.role, Some(Role::Standby));
    let west = status(&pair.west).await;
    let last = west.last_migration.expect("status.lastMigration");
    assert_eq!(last.name, name);
    assert!(final_migrations(&pair.west).is_empty());

    // The data age on west's /metrics: the final migration's finish time.
    let finished: jiff::Timestamp = last
        .finished_at
        .expect("finishedAt")
        .parse()
        .expect("RFC 3339");
    let log = pair.reconcilers[1].log();
    let addr = log
        .split("admin server listening")
        .nth(1)
        .and_then(|rest| rest.split("addr=").nth(1))
        .and_then(|rest| rest.split_whitespace().next())
        .expect("west's admin address in its log")
        .to_string();
    let series = format!(
        "drgitops_plan_last_migration_timestamp_seconds{{namespace=\"{NS}\",plan=\"mysql\"}} {}",
        finished.as_second()
    );
    let exported = eventually(Duration::from_secs(30), || async {
        let (_, metrics) = testkit::webhook::http_get(&addr, "/metrics").await?;
        metrics.contains(&series).then_some(())
    })
    .await;
    assert!(exported.is_some(), "{series} never on west's /metrics");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_final_migration_starts_nothing_and_a_revert_brings_the_applications_back() {
    let pair = Pair::start().await;
    pair.converge(&pair.east, &pair.west).await;
    pair.stork.fail_migrations(Some(
        "Migration Backup failed for volume: cloudsnap upload timed out",
    ));
    pair.commit_failover(WEST);
    let both = eventually(Duration::from_secs(90), || async {
        let (e, w) = (stalled(&pair.east).await?, stalled(&pair.west).await?);
        assert_eq!(replicas(&pair.west).await, 0, "west started nothing");
        Some((e, w))
    })
    .await;
    let Some(((east_reason, east_message), (west_reason, west_message))) = both else {
        panic!(
            "not both Stalled: {:?} / {:?}\n{}",
            stalled(&pair.east).await,
            stalled(&pair.west).await,
            logs(&pair)
        )
    };
    assert_eq!(east_reason, "FinalMigrationFailed");
    assert_eq!(west_reason, "PeerHandOverFailed");
    for message in [&east_message, &west_message] {
        assert!(message.contains("cloudsnap upload timed out"), "{message}");
        assert!(
            message.contains("nothing was started anywhere"),
            "{message}"
        );
        assert!(
            message.contains("drgitops failover --plan mysql --to us-east-1a;"),
            "{message}"
        );
    }
    assert_eq!(pair.east.ready_pods(NS, "web").await, 0);
    assert_eq!(pair.west.ready_pods(NS, "web").await, 0);
    assert_eq!(replicas(&pair.east).await, 0);

    // The one-command revert: east runs the application again; west, which never ran it, migrates nothing.
    pair.stork.fail_migrations(None);
    pair.commit_failover(EAST);
    pair.converge(&pair.east, &pair.west).await;
    assert!(final_migrations(&pair.west).is_empty());
    let west = status(&pair.west).await.transition.expect("transition");
    assert!(
        west.steps.iter().all(|s| s.name != "final-migration"),
        "{west:?}"
    );
}

/// A kubeconfig for a port nothing listens on: the old primary's API as seen during a partition.
fn unreachable_kubeconfig() -> String {
    let port = testenv::free_port().expect("port");
    format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: lost\n  cluster:\n    server: https://127.0.0.1:{port}\n    insecure-skip-tls-verify: true\nusers:\n- name: lost\n  user: {{token: x}}\ncontexts:\n- name: lost\n  context: {{cluster: lost, user: lost}}\ncurrent-context: lost\n"
    )
}

fn set_peer_kubeconfig(cluster: &Cluster, kubeconfig: &str) {
    let file = cluster.dir.path().join("peer-for-test.kubeconfig");
    std::fs::write(&file, kubeconfig).expect("write kubeconfig");
    let secret = cluster.kubectl(&[
        "-n",
        NS,
        "create",
        "secret",
        "generic",
        "drgitops-peer",
        &format!("--from-file=kubeconfig={}", file.display()),
        "--dry-run=client",
        "-o",
        "yaml",
    ]);
    cluster.apply_yaml(&secret);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_old_primary_is_waited_for_until_the_disaster_is_declared() {
    let mut pair = Pair::start().await;
    // A short wait, so the test sees the Stalled state.
    let plan = testkit::reconcile::gitops_data("plans/mysql.yaml").replace(
        "spec:\n",
        "spec:\n  failover:\n    peerStopTimeoutSeconds: 5\n",
    );
    testkit::reconcile::commit(
        pair.repo.path(),
        &[("plans/mysql.yaml", &plan)],
        "wait 5 s for the old primary",
    );
    pair.converge(&pair.east, &pair.west).await;
    let data_age = scheduled_migration(&pair).await;

    // East is lost: its reconciler is gone and west cannot reach its API.
    let east_reconciler = pair.reconcilers.remove(0);
    drop(east_reconciler);
    let peer_secret = pair
        .west
        .get(&["-n", NS, "secret", "drgitops-peer"], "{.data.kubeconfig}");
    set_peer_kubeconfig(&pair.west, &unreachable_kubeconfig());
    pair.commit_failover(WEST);
    let stall = eventually(Duration::from_secs(90), || async {
        assert_eq!(replicas(&pair.west).await, 0, "no start on a partition");
        stalled(&pair.west).await
    })
    .await;
    let Some((reason, message)) = stall else {
        panic!("west never stalled\n{}", logs(&pair))
    };
    assert_eq!(reason, "PeerUnreachable");
    assert!(
        message.contains("drgitops failover --plan mysql --to us-east-1b --disaster"),
        "{message}"
    );
    assert_eq!(pair.west.ready_pods(NS, "web").await, 0);

    // The on-call engineer declares the disaster, against the surviving cluster.
    let admin = pair.west.dir.path().join("admin.kubeconfig");
    let preview = pair.commit_failover_with(
        WEST,
        &["--disaster", "-m", "us-east-1a lost power"],
        Some(&admin),
    );
    assert!(preview.contains(&data_age), "{preview}");
    let body = testkit::git(pair.repo.path(), &["log", "-1", "--format=%B"]);
    assert!(
        body.contains("disaster declared: us-east-1a lost"),
        "{body}"
    );
    assert!(body.contains("Data as of: "), "{body}");
    let started = eventually(Duration::from_secs(90), || async {
        (pair.west.ready_pods(NS, "web").await == 3).then_some(())
    })
    .await;
    assert!(started.is_some(), "west never started\n{}", logs(&pair));
    let west = status(&pair.west).await;
    let fence = west
        .transition
        .expect("transition")
        .steps
        .into_iter()
        .find(|s| s.name == "fence")
        .expect("fence");
    assert!(
        fence
            .message
            .unwrap_or_default()
            .contains("disaster declared: us-east-1a is lost"),
    );
    assert_eq!(
        west.last_migration.map(|m| m.name).as_deref(),
        Some(data_age.as_str()),
        "the data age it started from stays on record"
    );

    // East comes back (network and reconciler): it stops its applications and migrates nothing.
    let restored = String::from_utf8(
        base64::Engine::decode(
            &base64::engine::general_purpose::STANDARD,
            peer_secret.trim(),
        )
        .expect("base64"),
    )
    .expect("utf-8");
    set_peer_kubeconfig(&pair.west, &restored);
    let east_reconciler = pair.spawn_reconciler(0).await;
    pair.reconcilers.insert(0, east_reconciler);
    // Until it has, both run: that is what declaring the disaster accepted for a cluster taken for lost.
    let stopped = eventually(Duration::from_secs(90), || async {
        (live_pods(&pair.east).await == 0).then_some(())
    })
    .await;
    assert!(stopped.is_some(), "east never stopped\n{}", logs(&pair));
    pair.converge(&pair.west, &pair.east).await;
    assert!(final_migrations(&pair.east).is_empty());
}
