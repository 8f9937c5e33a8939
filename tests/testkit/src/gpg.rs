//! A temporary GnuPG home for tests of signed commits: OpenPGP keys made with the `gpg` CLI, their armored
//! public keys, and the environment git and `drgitops failover` need to sign with them. The gpg-agent started for
//! the home is stopped when it is dropped.

use std::path::Path;
use std::process::Command;

pub struct Gpg {
    home: tempfile::TempDir,
}

impl Gpg {
    /// An empty home.
    pub fn empty() -> Gpg {
        // GnuPG's socket paths must stay short: a home in the system temp directory, not a test's data dir.
        let home = tempfile::Builder::new()
            .prefix("gnupg")
            .tempdir()
            .expect("tempdir");
        Gpg { home }
    }

    /// A home with one Ed25519 key for `user_id` (e.g. `On-call <oncall@example.com>`) that signs.
    pub fn with_key(user_id: &str) -> Gpg {
        let gpg = Gpg::empty();
        gpg.add_key(user_id);
        gpg
    }

    /// Adds an Ed25519 key for `user_id` that signs.
    pub fn add_key(&self, user_id: &str) {
        self.run(&["--quick-gen-key", user_id, "ed25519", "sign", "never"]);
    }

    /// `gpg --batch ARGS` in this home, without a passphrase; panics unless it succeeds. Returns stdout.
    pub fn run(&self, args: &[&str]) -> String {
        let out = Command::new("gpg")
            .args([
                "--batch",
                "--quiet",
                "--passphrase",
                "",
                "--pinentry-mode",
                "loopback",
            ])
            .args(args)
            .env("GNUPGHOME", self.home.path())
            .output()
            .expect("gpg runs");
        assert!(out.status.success(), "gpg {args:?}: {out:?}");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    pub fn home(&self) -> &Path {
        self.home.path()
    }

    /// The armored public key of `who` (an email or fingerprint).
    pub fn public_key(&self, who: &str) -> String {
        self.run(&["--armor", "--export", who])
    }

    /// The fingerprint of the primary key of `who`, upper-case hex as gpg prints it.
    pub fn fingerprint(&self, who: &str) -> String {
        self.run(&["--with-colons", "--list-keys", who])
            .lines()
            .find_map(|l| l.strip_prefix("fpr:"))
            .map(|l| l.trim_matches(':').to_string())
            .expect("a fingerprint")
    }

    /// Configures the repository at `repo` to sign every commit with `who`'s key, as a user would
    /// (`commit.gpgsign`, `user.signingkey`); git and `drgitops failover` then need `GNUPGHOME` = [`Gpg::home`].
    pub fn sign_commits_in(&self, repo: &Path, who: &str) {
        let key = self.fingerprint(who);
        for (name, value) in [
            ("commit.gpgsign", "true"),
            ("user.signingkey", key.as_str()),
        ] {
            let out = Command::new("git")
                .args(["config", name, value])
                .current_dir(repo)
                .output()
                .expect("git runs");
            assert!(out.status.success(), "git config {name}: {out:?}");
        }
    }
}

impl Drop for Gpg {
    fn drop(&mut self) {
        // The agent gpg started for this home would outlive the test.
        let _ = Command::new("gpgconf")
            .args(["--kill", "gpg-agent"])
            .env("GNUPGHOME", self.home.path())
            .output();
    }
}
