//! Break-glass failover on two real clusters while Git is unreachable: the on-call engineer's `drgitops failover
//! --break-glass` against the surviving cluster starts the applications there; a git revision that still names the
//! lost primary is not applied over the override; once Git holds the same primary the reconciler removes the
//! override and the plan is Ready at that revision. Without the granted ClusterRole, nobody can break glass; and
//! the admission policy keeps `requestedBy` the API server's word.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use drgitops::plan::{DRPlan, DRPlanStatus};
use kube::Api;

use crate::failover::{NS, Pair};
use testkit::{Cluster, EAST, WEST, eventually};

const COMMIT: &str = "drgitops failover --plan mysql --to us-east-1b --disaster";

async fn plan(cluster: &Cluster) -> DRPlan {
    Api::<DRPlan>::namespaced(cluster.client().await, NS)
        .get("mysql")
        .await
        .expect("DRPlan mysql")
}

async fn status(cluster: &Cluster) -> DRPlanStatus {
    plan(cluster).await.status.unwrap_or_default()
}

/// The message of a condition of the plan that is True.
async fn condition(cluster: &Cluster, type_: &str) -> Option<String> {
    status(cluster)
        .await
        .conditions
        .into_iter()
        .find(|c| c.type_ == type_ && c.status == "True")
        .map(|c| c.message.unwrap_or_default())
}

fn logs(pair: &Pair) -> String {
    pair.reconcilers
        .iter()
        .map(|r| r.log())
        .collect::<Vec<_>>()
        .join("\n----\n")
}

/// A kubeconfig for ServiceAccount `mysql/name` of `cluster`, created here.
async fn user_kubeconfig(cluster: &Cluster, name: &str) -> PathBuf {
    cluster.kubectl(&["-n", NS, "create", "serviceaccount", name]);
    let yaml = cluster
        .env
        .service_account_kubeconfig(NS, name)
        .await
        .expect("token");
    let path = cluster.dir.path().join(format!("{name}.kubeconfig"));
    std::fs::write(&path, yaml).expect("write kubeconfig");
    path
}

fn break_glass(kubeconfig: &Path, reason: &str) -> Output {
    Command::new(crate::DRGITOPS)
        .args([
            "failover",
            "--break-glass",
            "--plan",
            "mysql",
            "-n",
            NS,
            "--to",
            WEST,
            "--reason",
            reason,
        ])
        .env("KUBECONFIG", kubeconfig)
        .output()
        .expect("drgitops failover runs")
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

/// A kubeconfig whose server does not answer: the peer as seen during the outage.
fn unreachable_kubeconfig() -> String {
    let port = testenv::free_port().expect("port");
    format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: lost\n  cluster:\n    server: https://127.0.0.1:{port}\n    insecure-skip-tls-verify: true\nusers:\n- name: lost\n  user: {{token: x}}\ncontexts:\n- name: lost\n  context: {{cluster: lost, user: lost}}\ncurrent-context: lost\n"
    )
}

/// ServiceAccount `mysql/oncall` on `cluster`, bound to the ClusterRole drgitops-break-glass in the plan's
/// namespace as the README says; its kubeconfig.
async fn oncall(cluster: &Cluster) -> PathBuf {
    let kubeconfig = user_kubeconfig(cluster, "oncall").await;
    cluster.kubectl(&[
        "-n",
        NS,
        "create",
        "rolebinding",
        "drgitops-break-glass",
        "--clusterrole=drgitops-break-glass",
        "--serviceaccount=mysql:oncall",
    ]);
    kubeconfig
}

fn overrides(cluster: &Cluster) -> String {
    cluster.get(&["-n", NS, "drplanoverrides"], "{.items[*].metadata.name}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn break_glass_fails_over_while_git_is_down_and_hands_back_to_git() {
    let mut pair = Pair::start().await;
    pair.converge(&pair.east, &pair.west).await;
    let first = testkit::git(pair.repo.path(), &["rev-parse", "HEAD"]);

    // East is lost, and Git with it: east's reconciler is gone, west cannot reach east's API, and the repository
    // the reconcilers follow is unreachable.
    drop(pair.reconcilers.remove(0));
    let west = &pair.west;
    let peer_secret = west.get(&["-n", NS, "secret", "drgitops-peer"], "{.data.kubeconfig}");
    set_peer_kubeconfig(west, &unreachable_kubeconfig());
    let away = pair.repo.path().with_extension("unreachable");
    std::fs::rename(pair.repo.path(), &away).expect("take the repository away");

    // Without the granted role, breaking glass is refused, saying what to ask for.
    let nobody = user_kubeconfig(west, "nobody").await;
    let out = break_glass(&nobody, "east is down");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "nobody broke glass: {stderr}");
    assert!(
        stderr
            .contains("system:serviceaccount:mysql:nobody may not break glass in namespace mysql")
            && stderr.contains("--clusterrole=drgitops-break-glass"),
        "{stderr}"
    );
    assert_eq!(overrides(west), "", "no override was created");

    // The admission policy: an override may not claim another requester.
    let forged = format!(
        "apiVersion: drgitops.dev/v1alpha1\nkind: DRPlanOverride\nmetadata: {{name: forged, namespace: {NS}}}\nspec:\n  plan: mysql\n  primary: {WEST}\n  reason: test\n  requestedBy: alice@example.com\n"
    );
    let out = west.kubectl_output(&["apply", "-f", "-"], Some(&forged));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "a forged requester was stored");
    assert!(
        stderr.contains("spec.requestedBy must be the requesting user"),
        "{stderr}"
    );

    // The on-call engineer, bound to the ClusterRole in the plan's namespace as the README says, breaks glass.
    let oncall = oncall(west).await;
    let out = break_glass(&oncall, "us-east-1a and the Git host are down");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("break-glass failover mysql/mysql: us-east-1a -> us-east-1b, without Git"),
        "{stdout}"
    );
    assert!(stdout.contains(COMMIT), "{stdout}");
    let requested_by = west.get(
        &["-n", NS, "drplanoverride", "mysql"],
        "{.spec.requestedBy}",
    );
    assert_eq!(requested_by, "system:serviceaccount:mysql:oncall");

    // West starts the applications, as a declared disaster.
    let started = eventually(Duration::from_secs(90), || async {
        (west.ready_pods(NS, "web").await == 3).then_some(())
    })
    .await;
    assert!(started.is_some(), "west never started\n{}", logs(&pair));
    let live = plan(west).await;
    assert_eq!(live.spec.primary, WEST);
    let disaster = live.spec.disaster().expect("a declared disaster");
    assert_eq!(disaster.lost, EAST);
    assert!(
        disaster.message.as_deref().unwrap_or_default().contains(
            "break-glass failover by system:serviceaccount:mysql:oncall: us-east-1a and the Git host are down"
        ),
        "{disaster:?}"
    );
    let fence = status(west)
        .await
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
    let Some(message) = eventually(Duration::from_secs(30), || condition(west, "BreakGlass")).await
    else {
        panic!("no BreakGlass condition: {:?}", status(west).await)
    };
    assert!(message.contains(COMMIT), "{message}");
    let events = west.kubectl(&[
        "-n",
        NS,
        "get",
        "events",
        "-o",
        "jsonpath={.items[*].reason}",
    ]);
    assert!(events.contains("BreakGlass"), "{events}");

    // Git comes back with a revision that still names the lost primary: it is not applied over the override.
    std::fs::rename(&away, pair.repo.path()).expect("bring the repository back");
    let plan_yaml = testkit::reconcile::gitops_data("plans/mysql.yaml");
    let stale = testkit::reconcile::commit(
        pair.repo.path(),
        &[(
            "plans/mysql.yaml",
            &format!("# reviewed before the outage\n{plan_yaml}"),
        )],
        "a change made before the outage",
    );
    assert_ne!(stale, first);
    let held = eventually(Duration::from_secs(60), || async {
        let message = condition(west, "BreakGlass").await?;
        message
            .contains(&format!(
                "git revision {} (primary us-east-1a) is not applied",
                &stale[..12]
            ))
            .then_some(message)
    })
    .await;
    let Some(message) = held else {
        panic!(
            "west never reported holding {stale}: {:?}\n{}",
            condition(west, "BreakGlass").await,
            logs(&pair)
        )
    };
    assert!(message.contains(COMMIT), "{message}");
    // `drgitops status` shows it to whoever looks at the cluster.
    let out = Command::new(crate::DRGITOPS)
        .args(["status", "-n", NS])
        .env("KUBECONFIG", &west.admin)
        .output()
        .expect("drgitops status runs");
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(
        table.contains("mysql/mysql: BreakGlass (GitRevisionHeld): DRPlanOverride mysql/mysql by system:serviceaccount:mysql:oncall")
            && table.contains(COMMIT),
        "{table}"
    );
    assert_eq!(
        plan(west).await.spec.primary,
        WEST,
        "the stale revision was applied"
    );
    assert_eq!(west.ready_pods(NS, "web").await, 3);
    assert_eq!(overrides(west), "mysql");

    // The matching commit is pushed: the override is removed and Git applies again.
    pair.commit_failover_with(
        WEST,
        &["--disaster", "-m", "us-east-1a lost power"],
        Some(west.admin.as_path()),
    );
    let matching = testkit::git(pair.repo.path(), &["rev-parse", "HEAD"]);
    let ended = eventually(Duration::from_secs(60), || async {
        (overrides(west).is_empty()
            && status(west).await.last_applied_revision.as_deref() == Some(matching.as_str()))
        .then_some(())
    })
    .await;
    assert!(
        ended.is_some(),
        "the override stayed ({}) or {matching} was not applied: {:?}\n{}",
        overrides(west),
        status(west).await,
        logs(&pair)
    );

    // East comes back: it stands down, and west is Ready at the matching revision, with no BreakGlass condition.
    let restored = String::from_utf8(
        base64::Engine::decode(
            &base64::engine::general_purpose::STANDARD,
            peer_secret.trim(),
        )
        .expect("base64"),
    )
    .expect("utf-8");
    set_peer_kubeconfig(west, &restored);
    let east_reconciler = pair.spawn_reconciler(0).await;
    pair.reconcilers.insert(0, east_reconciler);
    // Until it has, both run: that is what declaring the disaster accepted for a cluster taken for lost.
    let stopped = eventually(Duration::from_secs(90), || async {
        (pair.east.ready_pods(NS, "web").await == 0).then_some(())
    })
    .await;
    assert!(stopped.is_some(), "east never stood down\n{}", logs(&pair));
    pair.converge(&pair.west, &pair.east).await;
    let ready = eventually(Duration::from_secs(60), || async {
        let status = status(&pair.west).await;
        (status.last_applied_revision.as_deref() == Some(matching.as_str())
            && condition(&pair.west, "Ready").await.is_some()
            && condition(&pair.west, "BreakGlass").await.is_none())
        .then_some(())
    })
    .await;
    assert!(
        ready.is_some(),
        "west is not Ready at {matching}: {:?}\n{}",
        status(&pair.west).await,
        logs(&pair)
    );
    let events = pair.west.kubectl(&[
        "-n",
        NS,
        "get",
        "events",
        "-o",
        "jsonpath={.items[*].reason}",
    ]);
    assert!(
        events.contains("GitRevisionHeld") && events.contains("BreakGlassEnded"),
        "{events}"
    );
}

/// The lost cluster comes back before Git does: its own copy of the plan still names it primary, so it runs the
/// applications again; the same break glass there makes it stand down as the cluster declared lost, without a
/// final migration.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_old_primary_back_before_git_stands_down_by_the_same_break_glass() {
    let mut pair = Pair::start().await;
    pair.converge(&pair.east, &pair.west).await;
    drop(pair.reconcilers.remove(0));
    // Neither cluster reaches the other (so no migration runs between them), and Git is gone.
    set_peer_kubeconfig(&pair.west, &unreachable_kubeconfig());
    set_peer_kubeconfig(&pair.east, &unreachable_kubeconfig());
    let away = pair.repo.path().with_extension("unreachable");
    std::fs::rename(pair.repo.path(), &away).expect("take the repository away");

    let west_oncall = oncall(&pair.west).await;
    let out = break_glass(&west_oncall, "us-east-1a and the Git host are down");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let started = eventually(Duration::from_secs(90), || async {
        (pair.west.ready_pods(NS, "web").await == 3).then_some(())
    })
    .await;
    assert!(started.is_some(), "west never started\n{}", logs(&pair));

    // East's reconciler comes back while Git is still down: its plan names it primary.
    let east_reconciler = pair.spawn_reconciler(0).await;
    pair.reconcilers.insert(0, east_reconciler);
    assert_eq!(plan(&pair.east).await.spec.primary, EAST);
    let east_oncall = oncall(&pair.east).await;
    let out = break_glass(&east_oncall, "us-east-1b took over while Git was down");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stood_down = eventually(Duration::from_secs(90), || async {
        let status = status(&pair.east).await;
        (pair.east.ready_pods(NS, "web").await == 0
            && status.role == Some(drgitops::plan::Role::Standby)
            && status.phase.as_deref() == Some("Standby"))
        .then_some(status)
    })
    .await;
    let Some(east) = stood_down else {
        panic!(
            "east never stood down: {:?}\n{}",
            status(&pair.east).await,
            logs(&pair)
        )
    };
    assert!(
        east.final_migration.is_none(),
        "the cluster declared lost ran a final migration: {:?}",
        east.final_migration
    );
    assert_eq!(pair.west.ready_pods(NS, "web").await, 3);
    std::fs::rename(&away, pair.repo.path()).expect("bring the repository back");
}
