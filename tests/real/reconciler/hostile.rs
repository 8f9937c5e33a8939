//! A hostile repository on a real cluster: a revision with a link out of the plans path and a force push that
//! rewrites the applied history are each refused with nothing applied (the plan keeps the last applied revision, its
//! status says why and what to do); the rewritten tip is applied once the inventory ConfigMap accepts it; a remote
//! that stalls is cut at `--git-timeout`.

use std::io::Read as _;
use std::net::TcpListener;
use std::time::Duration;

use drgitops::reconcile::runner::Reconciler;
use drgitops::source::sync::{ACCEPT_REWRITE_ANNOTATION, INVENTORY_NAME};
use testkit::reconcile::{commit, plan_repo};
use testkit::{EAST, git};

use super::support::*;

fn stalled_message(plan: &serde_json::Value) -> String {
    condition(plan, "Stalled").expect("Stalled")["message"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_revisions_and_rewritten_history_are_refused_and_the_applied_revision_stays() {
    let east = east().await;
    let admin = east.client().await;
    let repo = plan_repo();
    let dir = repo.path();
    let cache = tempfile::tempdir().expect("tmp");
    let reconciler = Reconciler::new(
        reconciler_client(&east).await,
        options(EAST, dir, cache.path()),
    );
    assert!(reconciler.pass(true).await.ok, "plans applied");
    let first = git(dir, &["rev-parse", "HEAD"]);
    let tuned = read_data("plans/mysql.yaml").replace("intervalMinutes: 15", "intervalMinutes: 30");
    let second = commit(dir, &[("plans/mysql.yaml", &tuned)], "tune");
    assert!(reconciler.pass(false).await.ok, "second revision applied");

    // A link out of the plans path.
    std::fs::write(dir.join("token.yaml"), "token: hunter2\n").expect("write");
    std::os::unix::fs::symlink("../token.yaml", dir.join("plans/leak.yaml")).expect("symlink");
    let hostile = commit(dir, &[], "a link out");
    let outcome = reconciler.pass(false).await;
    assert!(!outcome.ok, "refused");
    let stored = plan(&admin, "mysql", "mysql").await.expect("plan");
    assert_eq!(stored["status"]["lastAppliedRevision"], second.as_str());
    assert_eq!(stored["status"]["lastAttemptedRevision"], hostile.as_str());
    let message = stalled_message(&stored);
    for expected in [
        "plans/leak.yaml is a symbolic link to \"../token.yaml\", outside the plans path",
        "commit the file itself instead of a link",
    ] {
        assert!(message.contains(expected), "{expected:?} in {message}");
    }

    // A force push that drops the applied revision.
    git(dir, &["reset", "-q", "--hard", &first]);
    let other = read_data("plans/mysql.yaml").replace("intervalMinutes: 15", "intervalMinutes: 45");
    let rewritten = commit(dir, &[("plans/mysql.yaml", &other)], "tune differently");
    assert!(!reconciler.pass(false).await.ok, "refused");
    let stored = plan(&admin, "mysql", "mysql").await.expect("plan");
    assert_eq!(stored["status"]["lastAppliedRevision"], second.as_str());
    let message = stalled_message(&stored);
    for expected in [
        format!(
            "its tip {} does not contain the last applied revision {}",
            &rewritten[..12],
            &second[..12]
        ),
        format!("{ACCEPT_REWRITE_ANNOTATION}={rewritten}"),
    ] {
        assert!(message.contains(&expected), "{expected:?} in {message}");
    }
    // A restarted reconciler starts from the inventory's revision and refuses the same tip.
    let fresh_cache = tempfile::tempdir().expect("tmp");
    let restarted = Reconciler::new(
        reconciler_client(&east).await,
        options(EAST, dir, fresh_cache.path()),
    );
    assert!(!restarted.pass(false).await.ok, "refused after a restart");

    // The operator accepts exactly that tip.
    east.kubectl(&[
        "-n",
        SYSTEM_NAMESPACE,
        "annotate",
        "configmap",
        INVENTORY_NAME,
        "--overwrite",
        &format!("{ACCEPT_REWRITE_ANNOTATION}={rewritten}"),
    ]);
    let outcome = reconciler.pass(false).await;
    assert!(outcome.ok, "applied: {:?}", outcome.errors);
    let stored = plan(&admin, "mysql", "mysql").await.expect("plan");
    assert_eq!(stored["status"]["lastAppliedRevision"], rewritten.as_str());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_remote_that_stalls_is_cut_at_the_git_timeout_and_the_plans_stay() {
    let east = east().await;
    let admin = east.client().await;
    let repo = plan_repo();
    let cache = tempfile::tempdir().expect("tmp");
    let first = git(repo.path(), &["rev-parse", "HEAD"]);
    let reconciler = Reconciler::new(
        reconciler_client(&east).await,
        options(EAST, repo.path(), cache.path()),
    );
    assert!(reconciler.pass(true).await.ok, "plans applied");

    // The same cache, now following a remote that accepts connections and never answers.
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for stream in listener.incoming().take(2) {
            let Ok(mut stream) = stream else { continue };
            let mut request = [0u8; 1024];
            let _ = stream.read(&mut request);
            held.push(stream);
        }
    });
    let mut stalled = options(EAST, repo.path(), cache.path());
    if let Some(git) = stalled.git.as_mut() {
        git.url = format!("http://{addr}/plans.git");
    }
    stalled.git_timeout = Duration::from_secs(1);
    let reconciler = Reconciler::new(reconciler_client(&east).await, stalled);
    let outcome = reconciler.pass(false).await;
    assert!(!outcome.ok, "the stalled fetch fails the pass");
    let report = outcome.errors.join("\n");
    assert!(
        report.contains("did not finish within 1s: the remote stalled or is too slow"),
        "{report}"
    );
    let stored = plan(&admin, "mysql", "mysql").await.expect("plan");
    assert_eq!(stored["status"]["lastAppliedRevision"], first.as_str());
    let _ = std::net::TcpStream::connect(addr);
}
