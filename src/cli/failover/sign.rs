//! Signing the failover commit as `git commit` would, when the repository's git config asks for it
//! (`commit.gpgsign`): SSH (`gpg.format ssh`: `ssh-keygen -Y sign -n git` with `user.signingkey`) or OpenPGP
//! (`gpg.format openpgp`, the default: `gpg --status-fd=2 -bsau <key>`). A reconciler run with
//! `--verify-signatures` refuses a role change that no trusted key signed, so an unsigned failover commit is
//! worth a warning.

use std::io::Write as _;
use std::path::PathBuf;
use std::process::{Command, Stdio};

/// How the failover commit is signed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum Signing {
    /// `commit.gpgsign` is not set: the commit is not signed.
    Off,
    /// `ssh-keygen -Y sign` with this key (a path, or a literal public key whose private half the agent holds).
    Ssh { program: String, key: String },
    /// `gpg -bsau` with this key id (or the committer identity).
    OpenPgp { program: String, key: String },
}

/// What the git config (repository, then global and system) asks for.
pub(super) fn signing(config: &git2::Config, committer: &str) -> Result<Signing, String> {
    if !config.get_bool("commit.gpgsign").unwrap_or(false) {
        return Ok(Signing::Off);
    }
    let format = config
        .get_string("gpg.format")
        .unwrap_or_else(|_| "openpgp".into());
    let key = config.get_string("user.signingkey").ok();
    match format.as_str() {
        "ssh" => {
            let key = key.ok_or(
                "commit.gpgsign is set with gpg.format ssh but user.signingkey is not: set it to your SSH key file",
            )?;
            let program = config
                .get_string("gpg.ssh.program")
                .unwrap_or_else(|_| "ssh-keygen".into());
            Ok(Signing::Ssh { program, key })
        }
        "openpgp" => {
            let program = config
                .get_string("gpg.openpgp.program")
                .or_else(|_| config.get_string("gpg.program"))
                .unwrap_or_else(|_| "gpg".into());
            Ok(Signing::OpenPgp {
                program,
                key: key.unwrap_or_else(|| committer.to_string()),
            })
        }
        other => Err(format!(
            "commit.gpgsign is set with gpg.format {other}, which drgitops failover cannot sign with; use ssh or \
             openpgp, or commit the change with git"
        )),
    }
}

/// The signature of `buffer` (the commit object without its signature), armored as git stores it.
pub(super) fn sign(signing: &Signing, buffer: &str) -> Result<String, String> {
    match signing {
        Signing::Off => Err("signing is off".into()),
        Signing::Ssh { program, key } => {
            let dir = ScratchDir::new()?;
            let key_file = if key.starts_with("key::") || key.starts_with("ssh-") {
                let file = dir.path().join("signing-key.pub");
                let literal = key.trim_start_matches("key::");
                std::fs::write(&file, format!("{literal}\n"))
                    .map_err(|e| format!("cannot write the signing key: {e}"))?;
                file
            } else {
                expand_home(key)
            };
            let data = dir.path().join("commit");
            std::fs::write(&data, buffer)
                .map_err(|e| format!("cannot write the commit to sign: {e}"))?;
            let out = Command::new(program)
                .args(["-Y", "sign", "-n", "git", "-f"])
                .arg(&key_file)
                .arg(&data)
                .stdin(Stdio::null())
                .output()
                .map_err(|e| format!("cannot run {program}: {e}"))?;
            if !out.status.success() {
                return Err(format!(
                    "{program} -Y sign failed: {}",
                    String::from_utf8_lossy(&out.stderr).trim()
                ));
            }
            let mut sig = data.into_os_string();
            sig.push(".sig");
            std::fs::read_to_string(PathBuf::from(sig))
                .map_err(|e| format!("cannot read the signature {program} wrote: {e}"))
        }
        Signing::OpenPgp { program, key } => {
            let mut child = Command::new(program)
                .args(["--status-fd=2", "-bsau", key])
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .map_err(|e| format!("cannot run {program}: {e}"))?;
            if let Some(mut stdin) = child.stdin.take() {
                stdin
                    .write_all(buffer.as_bytes())
                    .map_err(|e| format!("cannot hand the commit to {program}: {e}"))?;
            }
            let out = child
                .wait_with_output()
                .map_err(|e| format!("{program} failed: {e}"))?;
            if !out.status.success() {
                return Err(format!(
                    "{program} could not sign with {key}: {}",
                    String::from_utf8_lossy(&out.stderr).trim()
                ));
            }
            String::from_utf8(out.stdout)
                .map_err(|_| format!("{program} wrote a signature that is not text"))
        }
    }
}

/// A directory of its own under the system's temporary directory, removed when dropped.
struct ScratchDir(PathBuf);

impl ScratchDir {
    fn new() -> Result<ScratchDir, String> {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or_default();
        let path =
            std::env::temp_dir().join(format!("drgitops-sign-{}-{nanos}", std::process::id()));
        std::fs::create_dir(&path).map_err(|e| format!("cannot make {}: {e}", path.display()))?;
        Ok(ScratchDir(path))
    }

    fn path(&self) -> &std::path::Path {
        &self.0
    }
}

impl Drop for ScratchDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn expand_home(path: &str) -> PathBuf {
    match (path.strip_prefix("~/"), std::env::var_os("HOME")) {
        (Some(rest), Some(home)) => PathBuf::from(home).join(rest),
        _ => PathBuf::from(path),
    }
}
