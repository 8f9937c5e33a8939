//! `--verify-signatures role-changes` on a real cluster: an unsigned failover commit is refused fail-closed (the
//! old primary stays, the plan's status and a Warning Event name the commit and its author), and the same change
//! signed by a trusted key on top of the last applied revision is applied. The same with OpenPGP keys made by
//! `gpg` in a temporary home: a failover signed by an untrusted key is refused, one signed by the trusted key is
//! applied.

use std::path::Path;
use std::process::Command;

use drgitops::reconcile::runner::Reconciler;
use drgitops::source::verify::{TrustedSigners, Verification, VerifyMode};
use testkit::gpg::Gpg;
use testkit::reconcile::plan_repo;
use testkit::{EAST, WEST, git};

use super::support::*;

fn keygen(dir: &Path) {
    let out = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C", "oncall", "-f"])
        .arg(dir.join("key"))
        .output()
        .expect("ssh-keygen runs");
    assert!(out.status.success(), "{out:?}");
    let public = std::fs::read_to_string(dir.join("key.pub")).expect("key");
    std::fs::write(
        dir.join("allowed_signers"),
        format!("oncall@example.com {public}"),
    )
    .expect("write");
}

/// Commits `plans/mysql.yaml` as Mallory, signed with `key` if given; returns the commit id.
fn commit_as_mallory(repo: &Path, contents: &str, key: Option<&Path>, message: &str) -> String {
    let signing = key.map(|key| {
        vec![
            "gpg.format=ssh".to_string(),
            format!("user.signingkey={}", key.display()),
        ]
    });
    commit_signed(repo, contents, signing, Command::new("git"), message)
}

/// Commits `plans/mysql.yaml` as Mallory with `command` (a `git` command), signed with the `-c` settings
/// `signing` if given; returns the commit id.
fn commit_signed(
    repo: &Path,
    contents: &str,
    signing: Option<Vec<String>>,
    mut command: Command,
    message: &str,
) -> String {
    std::fs::write(repo.join("plans/mysql.yaml"), contents).expect("write");
    git(repo, &["add", "-A"]);
    command.args([
        "-c",
        "user.name=Mallory",
        "-c",
        "user.email=mallory@example.com",
    ]);
    for setting in signing.iter().flatten() {
        command.arg("-c").arg(setting);
    }
    command.args(["commit", "-q", "-m", message]);
    if signing.is_some() {
        command.arg("-S");
    }
    let out = command.current_dir(repo).output().expect("git runs");
    assert!(out.status.success(), "{out:?}");
    git(repo, &["rev-parse", "HEAD"])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unsigned_failover_commit_is_refused_and_the_old_primary_stays() {
    let east = east().await;
    let admin = east.client().await;
    let repo = plan_repo();
    let first = git(repo.path(), &["rev-parse", "HEAD"]);
    let (cache, keys) = (
        tempfile::tempdir().expect("tmp"),
        tempfile::tempdir().expect("tmp"),
    );
    keygen(keys.path());

    // The plans were applied before verification was turned on; the inventory records that revision.
    let unverified = Reconciler::new(
        reconciler_client(&east).await,
        options(EAST, repo.path(), cache.path()),
    );
    let outcome = unverified.pass(true).await;
    assert!(outcome.ok, "first pass: {:?}", outcome.errors);

    let mut verified_options = options(EAST, repo.path(), cache.path());
    verified_options.verification = Some(Verification {
        mode: VerifyMode::RoleChanges,
        signers: TrustedSigners::load(&[keys.path().join("allowed_signers")]).expect("signers"),
    });
    let reconciler = Reconciler::new(reconciler_client(&east).await, verified_options.clone());

    let failover =
        read_data("plans/mysql.yaml").replace("primary: us-east-1a", "primary: us-east-1b");
    let bad = commit_as_mallory(repo.path(), &failover, None, "fail over to west");
    let outcome = reconciler.pass(false).await;
    assert!(!outcome.ok, "the unsigned failover fails the pass");
    let report = outcome.errors.join("\n");
    assert!(report.contains(&bad[..12]), "names the commit: {report}");
    assert!(
        reconciler
            .metrics
            .encode()
            .contains("drgitops_git_verification_failures_total 1"),
        "counted"
    );

    let stored = plan(&admin, "mysql", "mysql").await.expect("plan");
    assert_eq!(stored["spec"]["primary"], EAST, "the old primary stays");
    assert_eq!(stored["status"]["role"], "Primary");
    assert_eq!(stored["status"]["lastAppliedRevision"], first.as_str());
    let stalled = condition(&stored, "Stalled").expect("Stalled");
    assert_eq!(stalled["status"], "True");
    assert_eq!(stalled["reason"], "InvalidCommit");
    let message = stalled["message"].as_str().unwrap_or_default();
    for expected in [
        &bad[..12],
        "Mallory <mallory@example.com>",
        "changes the primary of DRPlan mysql/mysql",
        "is not signed",
    ] {
        assert!(message.contains(expected), "{expected:?} in {message}");
    }
    assert!(
        warning_names(
            &admin,
            "mysql",
            "InvalidCommit",
            "Mallory <mallory@example.com>"
        )
        .await,
        "a Warning Event names the author"
    );
    let schedule = stork(&admin, "MigrationSchedule", "mysql", "mysql")
        .await
        .expect("schedule");
    assert_eq!(
        schedule["spec"]["suspend"], false,
        "east keeps migrating as the primary"
    );

    // A restarted reconciler starts from the inventory's revision and refuses the same commit.
    let restarted = Reconciler::new(reconciler_client(&east).await, verified_options);
    assert!(!restarted.pass(false).await.ok);

    // The remedy: the commit leaves the branch, and a trusted signer commits the change.
    git(repo.path(), &["reset", "-q", "--hard", &first]);
    let good = commit_as_mallory(
        repo.path(),
        &failover,
        Some(&keys.path().join("key")),
        "fail over to west, signed",
    );
    // The pass carries on into the transition (east hands over to west), so it is not Ready yet.
    let outcome = restarted.pass(false).await;
    let report = outcome.errors.join("\n");
    assert!(
        !report.contains("--verify-signatures"),
        "the signed failover is not refused: {report}"
    );
    let stored = plan(&admin, "mysql", "mysql").await.expect("plan");
    assert_eq!(stored["spec"]["primary"], WEST);
    assert_eq!(
        stored["metadata"]["annotations"][drgitops::stork::keys::REVISION_ANNOTATION],
        good.as_str()
    );
}

/// Commits `plans/mysql.yaml` as Mallory, signed by the OpenPGP key of `email` in the GnuPG home `home`.
fn commit_signed_with_gpg(
    repo: &Path,
    home: &Path,
    email: &str,
    contents: &str,
    message: &str,
) -> String {
    let mut command = Command::new("git");
    command.env("GNUPGHOME", home);
    let signing = vec![
        "gpg.format=openpgp".to_string(),
        "gpg.program=gpg".into(),
        format!("user.signingkey={email}"),
    ];
    commit_signed(repo, contents, Some(signing), command, message)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failover_signed_with_a_trusted_openpgp_key_is_applied_and_an_untrusted_one_refused() {
    let east = east().await;
    let admin = east.client().await;
    let repo = plan_repo();
    let first = git(repo.path(), &["rev-parse", "HEAD"]);
    let cache = tempfile::tempdir().expect("tmp");
    let gpg = Gpg::with_key("On-call <oncall@example.com>");
    gpg.add_key("Mallory <mallory@example.com>");
    let trusted = gpg.home().join("trusted.asc");
    std::fs::write(&trusted, gpg.public_key("oncall@example.com")).expect("write");

    let unverified = Reconciler::new(
        reconciler_client(&east).await,
        options(EAST, repo.path(), cache.path()),
    );
    assert!(unverified.pass(true).await.ok, "plans applied");

    let mut verified = options(EAST, repo.path(), cache.path());
    verified.verification = Some(Verification {
        mode: VerifyMode::RoleChanges,
        signers: TrustedSigners::load(&[trusted]).expect("signers"),
    });
    let reconciler = Reconciler::new(reconciler_client(&east).await, verified);
    let failover =
        read_data("plans/mysql.yaml").replace("primary: us-east-1a", "primary: us-east-1b");

    let bad = commit_signed_with_gpg(
        repo.path(),
        gpg.home(),
        "mallory@example.com",
        &failover,
        "fail over to west",
    );
    assert!(
        !reconciler.pass(false).await.ok,
        "the untrusted failover fails the pass"
    );
    let stored = plan(&admin, "mysql", "mysql").await.expect("plan");
    assert_eq!(stored["spec"]["primary"], EAST, "the old primary stays");
    assert_eq!(stored["status"]["lastAppliedRevision"], first.as_str());
    let message = condition(&stored, "Stalled").expect("Stalled")["message"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    for expected in [
        &bad[..12],
        "Mallory <mallory@example.com>",
        "is signed by OpenPGP key",
        "which is not a trusted signer",
    ] {
        assert!(message.contains(expected), "{expected:?} in {message}");
    }

    git(repo.path(), &["reset", "-q", "--hard", &first]);
    let good = commit_signed_with_gpg(
        repo.path(),
        gpg.home(),
        "oncall@example.com",
        &failover,
        "fail over to west, signed",
    );
    let outcome = reconciler.pass(false).await;
    let report = outcome.errors.join("\n");
    assert!(
        !report.contains("--verify-signatures"),
        "the signed failover is not refused: {report}"
    );
    let stored = plan(&admin, "mysql", "mysql").await.expect("plan");
    assert_eq!(stored["spec"]["primary"], WEST);
    assert_eq!(
        stored["metadata"]["annotations"][drgitops::stork::keys::REVISION_ANNOTATION],
        good.as_str()
    );
}
