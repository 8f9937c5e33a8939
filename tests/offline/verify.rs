//! `--verify-signatures`: real repositories whose commits are signed with SSH keys made by `ssh-keygen` and with
//! OpenPGP keys made by `gpg` in a temporary home, checked by `drgitops render` and by the git source's range check,
//! as the reconciler runs it from its last applied revision.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use drgitops::source::verify::{self, TrustedSigners, Verification, VerifyError, VerifyMode};
use testkit::reconcile::gitops_data;
use testkit::{WEST, git};

/// A repository, a trusted key and an untrusted one, and the allowed_signers file that trusts the first.
struct Signed {
    repo: tempfile::TempDir,
    keys: tempfile::TempDir,
    gpg: Option<Gpg>,
}

/// How a commit is signed.
#[derive(Clone, Copy)]
enum Sign<'a> {
    Unsigned,
    /// With the SSH key of this name under `keys`.
    Ssh(&'a str),
    /// With the OpenPGP key of this user ID's email in the test's GnuPG home.
    Pgp(&'a str),
}

/// A temporary GnuPG home holding two OpenPGP keys: `oncall@example.com`, a certify-only primary key with a signing
/// subkey (git signs with the subkey), whose public key is exported to `trusted.asc`; and `mallory@example.com`, a
/// primary key that signs itself, trusted by nobody.
struct Gpg(testkit::gpg::Gpg);

impl Gpg {
    fn new() -> Self {
        let gpg = testkit::gpg::Gpg::empty();
        gpg.run(&[
            "--quick-gen-key",
            "On-call <oncall@example.com>",
            "ed25519",
            "cert",
            "never",
        ]);
        let fingerprint = gpg.fingerprint("oncall@example.com");
        gpg.run(&["--quick-add-key", &fingerprint, "ed25519", "sign", "never"]);
        gpg.add_key("Mallory <mallory@example.com>");
        let gpg = Gpg(gpg);
        std::fs::write(gpg.trusted(), gpg.0.public_key("oncall@example.com")).expect("write");
        gpg
    }

    fn home(&self) -> &Path {
        self.0.home()
    }

    fn trusted(&self) -> PathBuf {
        self.home().join("trusted.asc")
    }

    /// The fingerprint of the primary key of `email`, upper-case hex as gpg prints it.
    fn fingerprint(&self, email: &str) -> String {
        self.0.fingerprint(email)
    }
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
        let signed = Signed {
            repo,
            keys,
            gpg: None,
        };
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

    /// [`Signed::new`] with a GnuPG home holding OpenPGP keys.
    fn with_gpg() -> Self {
        let mut signed = Signed::new();
        signed.gpg = Some(Gpg::new());
        signed
    }

    fn gpg(&self) -> &Gpg {
        self.gpg.as_ref().expect("made with_gpg")
    }

    /// Writes files and commits them as Mallory, signed with `key` (a name under `keys`) or unsigned.
    fn commit(&self, key: Option<&str>, files: &[(&str, &str)], message: &str) -> String {
        self.commit_as(key.map_or(Sign::Unsigned, Sign::Ssh), files, message)
    }

    /// Writes files and commits them as Mallory, signed as `sign` says.
    fn commit_as(&self, sign: Sign, files: &[(&str, &str)], message: &str) -> String {
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
        let mut command = Command::new("git");
        match sign {
            Sign::Unsigned => {}
            Sign::Ssh(key) => args.extend([
                "-c".into(),
                "gpg.format=ssh".into(),
                "-c".into(),
                format!("user.signingkey={}", self.keys.path().join(key).display()),
            ]),
            Sign::Pgp(email) => {
                args.extend([
                    "-c".into(),
                    "gpg.format=openpgp".into(),
                    "-c".into(),
                    "gpg.program=gpg".into(),
                    "-c".into(),
                    format!("user.signingkey={email}"),
                ]);
                command.env("GNUPGHOME", self.gpg().home());
            }
        }
        args.extend(["commit".into(), "-q".into(), "--allow-empty".into()]);
        if !matches!(sign, Sign::Unsigned) {
            args.push("-S".into());
        }
        args.extend(["-m".into(), message.into()]);
        let out = command
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
        self.render_trusting(mode, &[self.allowed_signers()])
    }

    /// `drgitops render` with `--trusted-signers` given once per file.
    fn render_trusting(&self, mode: &str, signers: &[PathBuf]) -> Output {
        let mut command = Command::new(env!("CARGO_BIN_EXE_drgitops"));
        command
            .args(["render", "--repo"])
            .arg(self.repo.path())
            .args(["--path", "plans", "--cluster-domain", WEST])
            .args(["--verify-signatures", mode]);
        for file in signers {
            command.arg("--trusted-signers").arg(file);
        }
        command.output().expect("drgitops runs")
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
fn a_role_change_signed_with_an_rsa_key_is_rendered_and_a_short_rsa_key_stops_the_start() {
    let repo = Signed::new();
    let keys = repo.keys.path();
    for (name, bits) in [("rsa", "3072"), ("rsa1024", "1024")] {
        let out = Command::new("ssh-keygen")
            .args(["-q", "-t", "rsa", "-b", bits, "-N", "", "-C", name, "-f"])
            .arg(keys.join(name))
            .output()
            .expect("ssh-keygen runs");
        assert!(out.status.success(), "{out:?}");
    }
    let signers = |name: &str| {
        let public = std::fs::read_to_string(keys.join(format!("{name}.pub"))).expect("key");
        let file = keys.join(format!("{name}_signers"));
        std::fs::write(&file, format!("oncall@example.com {public}")).expect("write");
        file
    };
    let plan = repo.mysql_with(FAILOVER.0, FAILOVER.1);
    repo.commit(Some("rsa"), &[("plans/mysql.yaml", &plan)], "fail over");

    // The first commit, adding the plans, is signed by the trusted Ed25519 key.
    let out = repo.render_trusting("role-changes", &[repo.allowed_signers(), signers("rsa")]);
    assert!(out.status.success(), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stdout).contains("primary: us-east-1b"));

    let stderr = refused(&repo.render_trusting(
        "role-changes",
        &[repo.allowed_signers(), signers("rsa1024")],
    ));
    assert!(
        stderr.contains("rsa1024_signers:1: ssh-rsa keys of this size or curve are not supported"),
        "{stderr}"
    );
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
fn a_role_change_signed_with_a_trusted_openpgp_subkey_is_rendered() {
    let repo = Signed::with_gpg();
    let plan = repo.mysql_with(FAILOVER.0, FAILOVER.1);
    repo.commit_as(
        Sign::Pgp("oncall@example.com"),
        &[("plans/mysql.yaml", &plan)],
        "fail over",
    );

    // The first commit is signed with SSH: both kinds of trusted signers are given.
    let out = repo.render_trusting(
        "role-changes",
        &[repo.allowed_signers(), repo.gpg().trusted()],
    );
    assert!(out.status.success(), "{out:?}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("primary: us-east-1b"), "{stdout}");
}

#[test]
fn openpgp_refusals_name_the_commit_and_why() {
    let repo = Signed::with_gpg();
    let trusted = [repo.allowed_signers(), repo.gpg().trusted()];

    // Signed by an OpenPGP key nobody trusts.
    let plan = repo.mysql_with(FAILOVER.0, FAILOVER.1);
    let untrusted = repo.commit_as(
        Sign::Pgp("mallory@example.com"),
        &[("plans/mysql.yaml", &plan)],
        "fail over",
    );
    let stderr = refused(&repo.render_trusting("role-changes", &trusted));
    let mallory = repo.gpg().fingerprint("mallory@example.com");
    for expected in [
        format!(
            "commit {} by Mallory <mallory@example.com>",
            short(&untrusted)
        ),
        "changes the primary of DRPlan mysql/mysql".into(),
        format!("is signed by OpenPGP key {mallory}, which is not a trusted signer"),
        "nothing rendered".into(),
    ] {
        assert!(stderr.contains(&expected), "{expected:?} in {stderr}");
    }

    // Unsigned, then hidden behind a tip the trusted key signed.
    git(repo.repo.path(), &["reset", "-q", "--hard", "HEAD~1"]);
    let hidden = repo.commit_as(Sign::Unsigned, &[("plans/mysql.yaml", &plan)], "fail over");
    let stderr = refused(&repo.render_trusting("role-changes", &trusted));
    assert!(
        stderr.contains(&format!("commit {} by Mallory", short(&hidden)))
            && stderr.contains("is not signed"),
        "{stderr}"
    );
    let tuned = plan.replace(INTERVAL.0, INTERVAL.1);
    repo.commit_as(
        Sign::Pgp("oncall@example.com"),
        &[("plans/mysql.yaml", &tuned)],
        "tune",
    );
    let stderr = refused(&repo.render_trusting("role-changes", &trusted));
    assert!(
        stderr.contains(&format!("commit {} by Mallory", short(&hidden)))
            && stderr.contains("is not signed"),
        "the unsigned failover under the signed tip: {stderr}"
    );

    // An OpenPGP signature and only SSH keys trusted: the refusal says what to add.
    git(repo.repo.path(), &["reset", "-q", "--hard", "HEAD~2"]);
    let pgp_only = repo.commit_as(
        Sign::Pgp("oncall@example.com"),
        &[("plans/mysql.yaml", &plan)],
        "fail over",
    );
    let stderr = refused(&repo.render("role-changes"));
    assert!(stderr.contains(short(&pgp_only)), "{stderr}");
    assert!(
        stderr.contains("no trusted-signers file holds an OpenPGP key"),
        "{stderr}"
    );
}

#[test]
fn ssh_and_openpgp_signers_are_trusted_together_from_a_list() {
    let repo = Signed::with_gpg();
    let plan = repo.mysql_with(FAILOVER.0, FAILOVER.1);
    repo.commit_as(
        Sign::Pgp("oncall@example.com"),
        &[("plans/mysql.yaml", &plan)],
        "fail over, OpenPGP",
    );
    let tuned = plan.replace(INTERVAL.0, INTERVAL.1);
    repo.commit_as(
        Sign::Ssh("trusted"),
        &[("plans/mysql.yaml", &tuned)],
        "tune, SSH",
    );

    // Repeated flags.
    let both = [repo.allowed_signers(), repo.gpg().trusted()];
    let out = repo.render_trusting("all", &both);
    assert!(out.status.success(), "{out:?}");
    // The environment variable's list, comma- and newline-separated.
    for separator in [",", "\n"] {
        let out = Command::new(env!("CARGO_BIN_EXE_drgitops"))
            .args(["render", "--repo"])
            .arg(repo.repo.path())
            .args(["--path", "plans", "--cluster-domain", WEST])
            .args(["--verify-signatures", "all"])
            .env(
                "DRGITOPS_TRUSTED_SIGNERS",
                format!(
                    "{}{separator}{}",
                    repo.allowed_signers().display(),
                    repo.gpg().trusted().display()
                ),
            )
            .output()
            .expect("drgitops runs");
        assert!(out.status.success(), "{separator:?}: {out:?}");
        assert!(String::from_utf8_lossy(&out.stdout).contains("intervalMinutes: 30"));
    }
    // Either file alone leaves the other kind's commit refused.
    let stderr = refused(&repo.render_trusting("all", &[repo.gpg().trusted()]));
    assert!(stderr.contains("which is not a trusted signer"), "{stderr}");
}

#[test]
fn an_ssh_signature_outside_the_keys_validity_window_is_refused() {
    let repo = Signed::new();
    let public = std::fs::read_to_string(repo.keys.path().join("trusted.pub")).expect("key");
    let expired = repo.keys.path().join("expired_signers");
    std::fs::write(
        &expired,
        format!("oncall@example.com namespaces=\"git\",valid-before=\"20000101Z\" {public}"),
    )
    .expect("write");
    let plan = repo.mysql_with(FAILOVER.0, FAILOVER.1);
    let signed = repo.commit(Some("trusted"), &[("plans/mysql.yaml", &plan)], "fail over");

    let stderr = refused(&repo.render_trusting("role-changes", &[expired]));
    assert!(stderr.contains(short(&signed)), "{stderr}");
    assert!(
        stderr.contains("outside the key's valid-after/valid-before window"),
        "{stderr}"
    );
    // The same key with a window that holds the commit's time.
    let current = repo.keys.path().join("current_signers");
    std::fs::write(
        &current,
        format!("oncall@example.com valid-after=\"20000101\",valid-before=\"29991231\" {public}"),
    )
    .expect("write");
    let out = repo.render_trusting("role-changes", &[current]);
    assert!(out.status.success(), "{out:?}");
}

#[test]
fn a_broken_openpgp_key_file_stops_the_start_naming_the_file() {
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
    assert!(stderr.contains(&format!("{}: ", key.display())), "{stderr}");
    assert!(stderr.contains("OpenPGP"), "{stderr}");
}
