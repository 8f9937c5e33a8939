//! `--verify-signatures`: real repositories whose commits are signed with SSH keys made by `ssh-keygen`, checked
//! by `drgitops render` and by the git source's range check, as the reconciler runs it from its last applied
//! revision.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use drgitops::source::verify::{self, TrustedSigners, Verification, VerifyError, VerifyMode};
use testkit::reconcile::gitops_data;
use testkit::{WEST, git};

/// A repository, a trusted key and an untrusted one, and the allowed_signers file that trusts the first.
struct Signed {
    repo: tempfile::TempDir,
    keys: tempfile::TempDir,
}

impl Signed {
    fn new() -> Self {
        let repo = tempfile::tempdir().expect("tempdir");
        let keys = tempfile::tempdir().expect("tempdir");
        for name in ["trusted", "untrusted"] {
            let out = Command::new("ssh-keygen")
                .args(["-q", "-t", "ed25519", "-N", "", "-C", name, "-f"])
                .arg(keys.path().join(name))
                .output()
                .expect("ssh-keygen runs");
            assert!(out.status.success(), "{out:?}");
        }
        let public = std::fs::read_to_string(keys.path().join("trusted.pub")).expect("key");
        std::fs::write(
            keys.path().join("allowed_signers"),
            format!("# on-call\noncall@example.com namespaces=\"git\" {public}"),
        )
        .expect("write");
        git(repo.path(), &["init", "-q", "-b", "main"]);
        let signed = Signed { repo, keys };
        signed.commit(
            Some("trusted"),
            &[
                ("plans/mysql.yaml", &gitops_data("plans/mysql.yaml")),
                ("plans/postgres.yaml", &gitops_data("plans/postgres.yaml")),
            ],
            "add plans",
        );
        signed
    }

    fn allowed_signers(&self) -> PathBuf {
        self.keys.path().join("allowed_signers")
    }

    /// Writes files and commits them as Mallory, signed with `key` (a name under `keys`) or unsigned.
    fn commit(&self, key: Option<&str>, files: &[(&str, &str)], message: &str) -> String {
        let dir = self.repo.path();
        for (path, contents) in files {
            let full = dir.join(path);
            std::fs::create_dir_all(full.parent().expect("parent")).expect("mkdir");
            std::fs::write(full, contents).expect("write");
        }
        git(dir, &["add", "-A"]);
        let mut args = vec![
            "-c".to_string(),
            "user.name=Mallory".into(),
            "-c".into(),
            "user.email=mallory@example.com".into(),
        ];
        if let Some(key) = key {
            args.extend([
                "-c".into(),
                "gpg.format=ssh".into(),
                "-c".into(),
                format!("user.signingkey={}", self.keys.path().join(key).display()),
            ]);
        }
        args.extend(["commit".into(), "-q".into(), "--allow-empty".into()]);
        if key.is_some() {
            args.push("-S".into());
        }
        args.extend(["-m".into(), message.into()]);
        let out = Command::new("git")
            .args(&args)
            .current_dir(dir)
            .output()
            .expect("git runs");
        assert!(out.status.success(), "{out:?}");
        git(dir, &["rev-parse", "HEAD"])
    }

    fn mysql_with(&self, from: &str, to: &str) -> String {
        let text = gitops_data("plans/mysql.yaml");
        assert!(text.contains(from), "{from} in the fixture");
        text.replace(from, to)
    }

    fn render(&self, mode: &str) -> Output {
        Command::new(env!("CARGO_BIN_EXE_drgitops"))
            .args(["render", "--repo"])
            .arg(self.repo.path())
            .args(["--path", "plans", "--cluster-domain", WEST])
            .args(["--verify-signatures", mode, "--trusted-signers"])
            .arg(self.allowed_signers())
            .output()
            .expect("drgitops runs")
    }

    fn verification(&self, mode: VerifyMode) -> Verification {
        Verification {
            mode,
            signers: TrustedSigners::load(&[self.allowed_signers()]).expect("signers"),
        }
    }
}

const FAILOVER: (&str, &str) = ("primary: us-east-1a", "primary: us-east-1b");
const INTERVAL: (&str, &str) = ("intervalMinutes: 15", "intervalMinutes: 30");

fn refused(out: &Output) -> String {
    assert!(!out.status.success(), "refused: {out:?}");
    assert!(out.stdout.is_empty(), "nothing rendered: {out:?}");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn short(commit: &str) -> &str {
    &commit[..12]
}

#[test]
fn a_signed_role_change_is_rendered() {
    let repo = Signed::new();
    let plan = repo.mysql_with(FAILOVER.0, FAILOVER.1);
    repo.commit(Some("trusted"), &[("plans/mysql.yaml", &plan)], "fail over");

    let out = repo.render("role-changes");
    assert!(out.status.success(), "{out:?}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("primary: us-east-1b"), "{stdout}");
}

#[test]
fn an_unsigned_role_change_is_refused_naming_commit_author_and_reason() {
    let repo = Signed::new();
    let plan = repo.mysql_with(FAILOVER.0, FAILOVER.1);
    let bad = repo.commit(None, &[("plans/mysql.yaml", &plan)], "fail over");

    let stderr = refused(&repo.render("role-changes"));
    for expected in [
        short(&bad),
        "Mallory <mallory@example.com>",
        "changes the primary of DRPlan mysql/mysql",
        "is not signed",
        "nothing rendered",
    ] {
        assert!(stderr.contains(expected), "{expected:?} in {stderr}");
    }
}

#[test]
fn a_role_change_signed_by_an_untrusted_key_is_refused() {
    let repo = Signed::new();
    let plan = repo.mysql_with(
        "    - name: us-east-1b\n",
        "    - name: us-east-1b\n      active: false\n",
    );
    let bad = repo.commit(
        Some("untrusted"),
        &[("plans/mysql.yaml", &plan)],
        "deactivate west",
    );

    let stderr = refused(&repo.render("role-changes"));
    assert!(stderr.contains(short(&bad)), "{stderr}");
    assert!(
        stderr.contains("changes which domains are active in DRPlan mysql/mysql"),
        "{stderr}"
    );
    assert!(stderr.contains("not a trusted signer"), "{stderr}");
}

#[test]
fn an_unsigned_commit_that_changes_no_role_is_accepted_in_role_changes_mode_only() {
    let repo = Signed::new();
    let plan = repo.mysql_with(INTERVAL.0, INTERVAL.1);
    let unsigned = repo.commit(None, &[("plans/mysql.yaml", &plan)], "migrate less often");

    let out = repo.render("role-changes");
    assert!(out.status.success(), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stdout).contains("intervalMinutes: 30"));

    let stderr = refused(&repo.render("all"));
    assert!(stderr.contains(short(&unsigned)), "{stderr}");
    assert!(stderr.contains("is not signed"), "{stderr}");
}

#[test]
fn an_unsigned_role_change_behind_a_signed_tip_is_still_refused() {
    let repo = Signed::new();
    let plan = repo.mysql_with(FAILOVER.0, FAILOVER.1);
    let hidden = repo.commit(None, &[("plans/mysql.yaml", &plan)], "fail over");
    let plan = repo
        .mysql_with(INTERVAL.0, INTERVAL.1)
        .replace(FAILOVER.0, FAILOVER.1);
    let tip = repo.commit(Some("trusted"), &[("plans/mysql.yaml", &plan)], "tune");

    let stderr = refused(&repo.render("role-changes"));
    let named = format!("commit {} by Mallory", short(&hidden));
    assert!(stderr.contains(&named), "{named:?} in {stderr}");

    // The reconciler checks from its last applied revision: a range that starts after the unsigned commit holds
    // only the signed one.
    let verification = repo.verification(VerifyMode::RoleChanges);
    let path = repo.repo.path();
    match verify::verify_range(path, None, &tip, "plans", &verification) {
        Err(VerifyError::Refused(refusal)) => assert_eq!(refusal.commit, hidden),
        other => panic!("refused at {hidden}: {other:?}"),
    }
    verify::verify_range(path, Some(&hidden), &tip, "plans", &verification)
        .expect("only the signed tip is new");
}

#[test]
fn an_openpgp_key_is_refused_as_not_supported_yet() {
    let repo = Signed::new();
    let key: &Path = &repo.keys.path().join("key.asc");
    std::fs::write(
        key,
        "-----BEGIN PGP PUBLIC KEY BLOCK-----\n\nmDMEZ\n-----END PGP PUBLIC KEY BLOCK-----\n",
    )
    .expect("write");
    let out = Command::new(env!("CARGO_BIN_EXE_drgitops"))
        .args(["render", "--repo"])
        .arg(repo.repo.path())
        .args(["--path", "plans", "--cluster-domain", WEST])
        .args(["--verify-signatures", "all"])
        .env(
            "DRGITOPS_TRUSTED_SIGNERS",
            format!("{}\n{}", repo.allowed_signers().display(), key.display()),
        )
        .output()
        .expect("drgitops runs");
    let stderr = refused(&out);
    assert!(
        stderr.contains("OpenPGP keys are not supported yet"),
        "{stderr}"
    );
}
