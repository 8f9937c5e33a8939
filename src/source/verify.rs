//! Who may change roles: commit signatures (SSH or OpenPGP) checked against trusted signers before a revision is
//! applied.
//!
//! In: `--verify-signatures role-changes|all`, the trusted-signers files (each either an SSH `allowed_signers` file,
//! as git's `gpg.ssh.allowedSignersFile`, or armored OpenPGP public keys, told apart by content), a repository and
//! the range of commits from the last applied revision to the tip.
//! Out: nothing when every commit that needs a signature carries a good one from a trusted key, else a
//! [`Refusal`] that names the commit, its author and why. The check is on each commit in the range, not only on the
//! tip: a role change committed unsigned stays refused when a signed commit lands on top of it.
//!
//! A role change is a commit whose DRPlans under the plans path differ from its first parent's in `spec.primary`,
//! any domain's `active`, or `spec.failover.disaster`.

use std::collections::BTreeMap;
use std::path::Path;

use git2::{Oid, Repository, Sort};
use serde_json::Value;
use ssh_key::{PublicKey, SshSig};

use crate::source::git::{self, SourceError};
use crate::source::manifests;
use crate::source::openpgp;

/// The namespace git signs commits in (`ssh-keygen -Y sign -n git`).
const GIT_NAMESPACE: &str = "git";

/// Which commits must be signed by a trusted key.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum VerifyMode {
    /// Commits that change a DRPlan's primary, a domain's `active`, or the declared disaster.
    RoleChanges,
    /// Every commit.
    All,
}

impl VerifyMode {
    pub fn as_str(self) -> &'static str {
        match self {
            VerifyMode::RoleChanges => "role-changes",
            VerifyMode::All => "all",
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SignersError {
    #[error("cannot read trusted signers {path}: {cause}")]
    Read {
        path: String,
        #[source]
        cause: std::io::Error,
    },
    #[error("{path}: {message}")]
    OpenPgp { path: String, message: String },
    #[error("{path}:{line}: {message}")]
    Line {
        path: String,
        line: usize,
        message: String,
    },
    #[error("{path}: no trusted signer in the file")]
    Empty { path: String },
    #[error("--verify-signatures needs at least one --trusted-signers file")]
    NoFiles,
}

/// One `allowed_signers` entry.
#[derive(Clone, Debug)]
struct Signer {
    principals: String,
    key: PublicKey,
    /// `valid-after` / `valid-before`, seconds since the epoch: the commit's committer time must fall between.
    valid_after: Option<i64>,
    valid_before: Option<i64>,
}

/// The keys trusted to sign commits, from one or more files: SSH `allowed_signers` entries and OpenPGP keys.
#[derive(Clone, Debug, Default)]
pub struct TrustedSigners {
    signers: Vec<Signer>,
    openpgp: Vec<openpgp::SigningKey>,
}

impl TrustedSigners {
    /// Reads every file; each is an SSH allowed_signers file or armored OpenPGP public keys, told apart by content.
    pub fn load(paths: &[impl AsRef<Path>]) -> Result<Self, SignersError> {
        if paths.is_empty() {
            return Err(SignersError::NoFiles);
        }
        let mut all = TrustedSigners::default();
        for path in paths {
            let path = path.as_ref();
            let name = path.display().to_string();
            let text = std::fs::read_to_string(path).map_err(|cause| SignersError::Read {
                path: name.clone(),
                cause,
            })?;
            let one = Self::parse(&text, &name)?;
            all.signers.extend(one.signers);
            all.openpgp.extend(one.openpgp);
        }
        Ok(all)
    }

    /// Parses one file's text (`origin` names it in errors).
    pub fn parse(text: &str, origin: &str) -> Result<Self, SignersError> {
        if openpgp::is_openpgp(text) {
            let openpgp = openpgp::parse_keys(text).map_err(|message| SignersError::OpenPgp {
                path: origin.into(),
                message,
            })?;
            return Ok(TrustedSigners {
                signers: Vec::new(),
                openpgp,
            });
        }
        let mut signers = Vec::new();
        for (index, raw) in text.lines().enumerate() {
            let line = raw.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let fail = |message: String| SignersError::Line {
                path: origin.into(),
                line: index + 1,
                message,
            };
            let tokens = tokenize(line);
            let mut rest = tokens.iter().skip(1);
            let principals = tokens.first().cloned().unwrap_or_default();
            let mut next = rest.next();
            let mut options = LineOptions::default();
            if let Some(text) = next.filter(|t| !is_key_type(t)) {
                options = LineOptions::parse(text).map_err(fail)?;
                if !options.git_namespace {
                    continue;
                }
                next = rest.next();
            }
            let (Some(kind), Some(base64)) = (next, rest.next()) else {
                return Err(fail(
                    "expected `principals [options] key-type base64-key`".into(),
                ));
            };
            let key = PublicKey::from_openssh(&format!("{kind} {base64}"))
                .map_err(|e| fail(format!("not an SSH public key: {e}")))?;
            if !verifiable(key.key_data()) {
                return Err(fail(format!(
                    "{kind} keys of this size or curve are not supported (their signatures cannot be verified \
                     here, so every commit they sign would be refused); sign with an Ed25519, ECDSA P-256/P-384 \
                     or RSA key of at least 2048 bits (`ssh-keygen -t ed25519`) and list that key instead"
                )));
            }
            signers.push(Signer {
                principals,
                key,
                valid_after: options.valid_after,
                valid_before: options.valid_before,
            });
        }
        if signers.is_empty() {
            return Err(SignersError::Empty {
                path: origin.into(),
            });
        }
        Ok(TrustedSigners {
            signers,
            openpgp: Vec::new(),
        })
    }

    fn find(&self, key: &ssh_key::public::KeyData) -> Option<&Signer> {
        self.signers.iter().find(|s| s.key.key_data() == key)
    }
}

/// Whether signatures by this key can be verified: Ed25519, ECDSA P-256/P-384 (with their FIDO `sk-` forms) and RSA
/// of at least 2,048 bits; not DSA or P-521.
fn verifiable(key: &ssh_key::public::KeyData) -> bool {
    use ssh_key::public::{EcdsaPublicKey, KeyData};
    match key {
        KeyData::Ed25519(_)
        | KeyData::SkEd25519(_)
        | KeyData::SkEcdsaSha2NistP256(_)
        | KeyData::Ecdsa(EcdsaPublicKey::NistP256(_) | EcdsaPublicKey::NistP384(_)) => true,
        KeyData::Rsa(rsa) => rsa
            .n
            .as_positive_bytes()
            .is_some_and(|n| n.len() * 8 >= 2048),
        _ => false,
    }
}

fn is_key_type(token: &str) -> bool {
    ["ssh-", "ecdsa-", "sk-"]
        .iter()
        .any(|p| token.starts_with(p))
}

/// The options of one `allowed_signers` entry that drgitops enforces.
#[derive(Debug, Default, PartialEq, Eq)]
struct LineOptions {
    /// Whether the entry may sign in the `git` namespace.
    git_namespace: bool,
    valid_after: Option<i64>,
    valid_before: Option<i64>,
}

impl LineOptions {
    /// Options this reader does not enforce are refused rather than ignored, so no entry is trusted more widely
    /// than its line says.
    fn parse(options: &str) -> Result<Self, String> {
        let mut out = LineOptions {
            git_namespace: true,
            ..LineOptions::default()
        };
        for option in split_options(options) {
            let (name, value) = option.split_once('=').unwrap_or((option.as_str(), ""));
            let value = value.trim_matches('"');
            match name.to_ascii_lowercase().as_str() {
                "namespaces" => {
                    out.git_namespace = value.split(',').any(|n| n.trim() == GIT_NAMESPACE);
                }
                "valid-after" => out.valid_after = Some(parse_ssh_time(value)?),
                "valid-before" => out.valid_before = Some(parse_ssh_time(value)?),
                "cert-authority" => {
                    return Err(
                        "cert-authority is not supported (signatures by SSH certificates are not checked); list \
                         each signer's own key instead"
                            .into(),
                    );
                }
                other => {
                    return Err(format!(
                        "option {other:?} is not supported; remove it (namespaces=, valid-after= and \
                         valid-before= are)"
                    ));
                }
            }
        }
        Ok(out)
    }
}

/// An `allowed_signers` time: `YYYYMMDD` or `YYYYMMDDHHMM[SS]`, optionally ending in `Z`, read as UTC (ssh-keygen
/// reads it in its local time zone unless it ends in `Z`; a reconciler's container runs in UTC).
fn parse_ssh_time(value: &str) -> Result<i64, String> {
    let bad =
        || format!("time {value:?} is not YYYYMMDD or YYYYMMDDHHMM[SS], optionally followed by Z");
    let digits = value.strip_suffix(['Z', 'z']).unwrap_or(value);
    if !digits.bytes().all(|b| b.is_ascii_digit()) || ![8, 12, 14].contains(&digits.len()) {
        return Err(bad());
    }
    let field = |range: std::ops::Range<usize>| -> i16 {
        digits.get(range).and_then(|d| d.parse().ok()).unwrap_or(0)
    };
    let date = jiff::civil::Date::new(field(0..4), field(4..6) as i8, field(6..8) as i8)
        .map_err(|_| bad())?;
    let time = jiff::civil::Time::new(
        field(8..10) as i8,
        field(10..12) as i8,
        field(12..14) as i8,
        0,
    )
    .map_err(|_| bad())?;
    date.to_datetime(time)
        .to_zoned(jiff::tz::TimeZone::UTC)
        .map(|z| z.timestamp().as_second())
        .map_err(|_| bad())
}

fn split_options(options: &str) -> Vec<String> {
    let mut out = Vec::new();
    let (mut current, mut quoted) = (String::new(), false);
    for c in options.chars() {
        match c {
            '"' => {
                quoted = !quoted;
                current.push(c);
            }
            ',' if !quoted => out.push(std::mem::take(&mut current)),
            _ => current.push(c),
        }
    }
    out.push(current);
    out
}

/// Whitespace-separated tokens; double quotes keep spaces inside one token.
fn tokenize(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    let (mut current, mut quoted) = (String::new(), false);
    for c in line.chars() {
        if c == '"' {
            quoted = !quoted;
            current.push(c);
        } else if c.is_whitespace() && !quoted {
            if !current.is_empty() {
                out.push(std::mem::take(&mut current));
            }
        } else {
            current.push(c);
        }
    }
    if !current.is_empty() {
        out.push(current);
    }
    out
}

/// What `--verify-signatures` requires, ready to check commits.
#[derive(Clone, Debug)]
pub struct Verification {
    pub mode: VerifyMode,
    pub signers: TrustedSigners,
}

/// A commit that needed a trusted signature and lacks one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Refusal {
    pub commit: String,
    /// `Name <email>`.
    pub author: String,
    /// Why the commit needed a signature (`changes the primary of ns/name`), or empty in `all` mode.
    pub needs: String,
    pub reason: String,
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "commit {} by {}",
            crate::source::sync::short(&self.commit),
            self.author
        )?;
        if !self.needs.is_empty() {
            write!(f, " {}", self.needs)?;
        }
        write!(
            f,
            " but {}; nothing of this revision is applied (a trusted key must sign it, or the commit must leave \
             the branch)",
            self.reason
        )
    }
}

#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    #[error(transparent)]
    Source(#[from] SourceError),
    #[error("cannot walk the commits to verify: {0}")]
    Walk(#[source] git2::Error),
    #[error("{0}")]
    Refused(Refusal),
}

/// Checks every commit reachable from `tip` and not from `base` (all of `tip`'s history when `base` is `None` or
/// unknown to the repository), oldest first; stops at the first commit refused.
pub fn verify_range(
    repo_path: &Path,
    base: Option<&str>,
    tip: &str,
    dir: &str,
    verification: &Verification,
) -> Result<(), VerifyError> {
    let repo = Repository::open(repo_path).map_err(|cause| SourceError::Open {
        path: repo_path.display().to_string(),
        cause,
    })?;
    let tip = Oid::from_str(tip).map_err(VerifyError::Walk)?;
    let mut walk = repo.revwalk().map_err(VerifyError::Walk)?;
    walk.set_sorting(Sort::TOPOLOGICAL | Sort::REVERSE)
        .map_err(VerifyError::Walk)?;
    walk.push(tip).map_err(VerifyError::Walk)?;
    if let Some(base) = base.and_then(|b| Oid::from_str(b).ok()) {
        // A base the cache no longer holds (the branch was rewritten) means all of the tip's history is checked.
        if repo.find_commit(base).is_ok() {
            walk.hide(base).map_err(VerifyError::Walk)?;
        }
    }
    let mut roles_cache: BTreeMap<Oid, Option<Roles>> = BTreeMap::new();
    for oid in walk {
        let oid = oid.map_err(VerifyError::Walk)?;
        let commit = repo.find_commit(oid).map_err(VerifyError::Walk)?;
        let needs = match verification.mode {
            VerifyMode::All => Some(String::new()),
            VerifyMode::RoleChanges => {
                let mine = roles_at(&repo, oid, dir, &mut roles_cache)?;
                let parent = match commit.parent_id(0) {
                    Ok(parent) => roles_at(&repo, parent, dir, &mut roles_cache)?,
                    Err(_) => Some(Roles::new()),
                };
                role_change(parent.as_ref(), mine.as_ref())
            }
        };
        let Some(needs) = needs else {
            continue;
        };
        let committed = commit.committer().when().seconds();
        if let Err(reason) = check_signature(&repo, oid, committed, &verification.signers) {
            let author = commit.author();
            return Err(VerifyError::Refused(Refusal {
                commit: oid.to_string(),
                author: format!(
                    "{} <{}>",
                    author.name().unwrap_or("?"),
                    author.email().unwrap_or("?")
                ),
                needs,
                reason,
            }));
        }
    }
    Ok(())
}

/// Per plan (`namespace/name`): the fields that decide roles.
type Roles = BTreeMap<String, Value>;

/// The role fields of every DRPlan under `dir` at `oid`; `None` when the commit's plans do not parse (then any
/// difference from or to it counts as a role change: fail closed).
fn roles_at(
    repo: &Repository,
    oid: Oid,
    dir: &str,
    cache: &mut BTreeMap<Oid, Option<Roles>>,
) -> Result<Option<Roles>, VerifyError> {
    if let Some(roles) = cache.get(&oid) {
        return Ok(roles.clone());
    }
    let files = match git::read_revision_in(repo, &oid.to_string(), dir) {
        Ok(files) => files,
        Err(SourceError::NoPath { .. }) => Vec::new(),
        Err(err) => return Err(err.into()),
    };
    let roles = manifests::parse_plans(&files, |_| Vec::new())
        .ok()
        .map(|plans| {
            plans
                .iter()
                .map(|plan| (plan.id(), role_fields(&plan.object)))
                .collect()
        });
    cache.insert(oid, roles.clone());
    Ok(roles)
}

/// `spec.primary`, each domain's `active` (absent means active), and `spec.failover.disaster`.
pub fn role_fields(plan: &Value) -> Value {
    let domains: BTreeMap<String, bool> = plan
        .pointer("/spec/domains")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .map(|d| {
            (
                d.get("name")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_string(),
                d.get("active").and_then(Value::as_bool).unwrap_or(true),
            )
        })
        .collect();
    serde_json::json!({
        "primary": plan.pointer("/spec/primary"),
        "domains": domains,
        "disaster": plan.pointer("/spec/failover/disaster"),
    })
}

/// What changed between a parent's roles and a commit's, described for the refusal; `None` when nothing did.
fn role_change(parent: Option<&Roles>, mine: Option<&Roles>) -> Option<String> {
    let (Some(parent), Some(mine)) = (parent, mine) else {
        return (parent != mine).then(|| "changes plans that do not parse".to_string());
    };
    let empty = Value::Null;
    let mut changed = Vec::new();
    for id in parent.keys().chain(mine.keys()) {
        let (before, after) = (
            parent.get(id).unwrap_or(&empty),
            mine.get(id).unwrap_or(&empty),
        );
        if before == after || changed.iter().any(|(c, _)| c == id) {
            continue;
        }
        let what = if before.is_null() {
            "adds"
        } else if after.is_null() {
            "removes"
        } else if before.get("primary") != after.get("primary") {
            "changes the primary of"
        } else if before.get("disaster") != after.get("disaster") {
            "changes the declared disaster of"
        } else {
            "changes which domains are active in"
        };
        changed.push((id.clone(), what));
    }
    if changed.is_empty() {
        return None;
    }
    let parts: Vec<String> = changed
        .iter()
        .map(|(id, what)| format!("{what} DRPlan {id}"))
        .collect();
    Some(parts.join(", "))
}

/// `Ok` when the commit carries a good signature by a trusted key: OpenPGP, or SSH in the `git` namespace within
/// the entry's validity at the commit's committer time (as `git verify-commit` checks it); else why not.
fn check_signature(
    repo: &Repository,
    oid: Oid,
    committed: i64,
    signers: &TrustedSigners,
) -> Result<(), String> {
    let (signature, data) = match repo.extract_signature(&oid, None) {
        Ok(pair) => pair,
        Err(e) if e.code() == git2::ErrorCode::NotFound => return Err("is not signed".into()),
        Err(e) => return Err(format!("its signature cannot be read: {}", e.message())),
    };
    let signature = String::from_utf8_lossy(&signature);
    if signature.trim_start().starts_with(openpgp::SIGNATURE_BLOCK) {
        if signers.openpgp.is_empty() {
            return Err(
                "is signed with OpenPGP and no trusted-signers file holds an OpenPGP key (add the signer's \
                 `gpg --armor --export` as a --trusted-signers file)"
                    .into(),
            );
        }
        return openpgp::verify(&signers.openpgp, &signature, &data);
    }
    let sig = SshSig::from_pem(signature.trim().as_bytes())
        .map_err(|e| format!("its signature is not an SSH signature ({e})"))?;
    if sig.namespace() != GIT_NAMESPACE {
        return Err(format!(
            "its signature is for namespace {:?}, not \"git\"",
            sig.namespace()
        ));
    }
    let fingerprint = PublicKey::from(sig.public_key().clone()).fingerprint(Default::default());
    let Some(signer) = signers.find(sig.public_key()) else {
        return Err(format!(
            "is signed by key {fingerprint}, which is not a trusted signer"
        ));
    };
    signer.key.verify(GIT_NAMESPACE, &data, &sig).map_err(|_| {
        format!(
            "its signature by {} ({fingerprint}) does not verify",
            signer.principals
        )
    })?;
    if signer.valid_after.is_some_and(|after| committed < after)
        || signer.valid_before.is_some_and(|before| committed > before)
    {
        return Err(format!(
            "is signed by {} ({fingerprint}) outside the key's valid-after/valid-before window",
            signer.principals
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const KEY: &str = "AAAAC3NzaC1lZDI1NTE5AAAAID99BJAiY3MOjo4b1WrIKZWhbiIeC7p3zDdl3l76k9NN";

    #[test]
    fn allowed_signers_lines_read_like_gits() {
        let text = format!(
            "# on-call\nalice@example.com ssh-ed25519 {KEY} alice\n\
             bob@example.com,carol@example.com namespaces=\"git,file\" ssh-ed25519 {KEY}\n\
             mallory@example.com namespaces=\"file\" ssh-ed25519 {KEY}\n"
        );
        let signers = TrustedSigners::parse(&text, "signers").expect("parses");
        let principals: Vec<&str> = signers
            .signers
            .iter()
            .map(|s| s.principals.as_str())
            .collect();
        assert_eq!(
            principals,
            ["alice@example.com", "bob@example.com,carol@example.com"]
        );
    }

    #[test]
    fn broken_openpgp_keys_and_unenforced_options_are_refused() {
        let pgp =
            "-----BEGIN PGP PUBLIC KEY BLOCK-----\n\nmQINBF\n-----END PGP PUBLIC KEY BLOCK-----\n";
        let err = TrustedSigners::parse(pgp, "key.asc").unwrap_err();
        assert!(err.to_string().starts_with("key.asc: "), "{err}");
        let err = TrustedSigners::parse(
            &format!("a@example.com principals=\"x\" ssh-ed25519 {KEY}"),
            "signers",
        )
        .unwrap_err();
        assert!(err.to_string().starts_with("signers:1: option"), "{err}");
        let err = TrustedSigners::parse(
            &format!("*@example.com cert-authority ssh-ed25519 {KEY}"),
            "signers",
        )
        .unwrap_err();
        assert!(
            err.to_string().contains("cert-authority is not supported"),
            "{err}"
        );
        assert!(TrustedSigners::parse("# nobody\n", "signers").is_err());
    }

    #[test]
    fn a_short_rsa_key_stops_the_start_instead_of_refusing_every_commit_it_signs() {
        let (short, long) = (
            "AAAAB3NzaC1yc2EAAAADAQABAAAAgQC0PzK9R3YBZBxSj6Oq8aetjb4kvvK6hQkqgTnMpbP/yLfKIcD0k9lv0nX1S+cKpqHOU/HejxBZDcmZYD6E8y6hAYuoEiHy4iHmBIfa4IOB4kZHqjESQQNH4S/gj2r0UFLtaeb5sg8AJDanJ/YeYHQE/pLuGGcPuJPgeUFn6SAO9Q==",
            "AAAAB3NzaC1yc2EAAAADAQABAAABAQDnhLtr1yFuQ45BY+PYIFt2RedeSOWb+1LaNkx+JLPBS5DSwNyBN1j4VOzofVliPNQZfCh1V5QzBI3hK8vCcnS70D64rar8JeVZpE+2z6EvDK9sxuSMeoT0qymGwwTYVD3ImJSVHTKBnGLTsSle26GrSI5LV0VTCFOJ655Ss5WzFclO2OcvTDrh/F8i1l/TVvcbQNDodKw6Z9aPVpG4VcyyUZJJo6uZIyP6FFoidnNxcx3GWUMXYmF03GptACw2Gr7qLZzlZQaP9WjOBUkAY7ZUuFaoaRJwioVXqvlhJjjttn0MkbBglnBRWhzMbFEFsi4UQY2Uq0AZPfVGuCKoDKIf",
        );
        let err = TrustedSigners::parse(&format!("a@example.com ssh-rsa {short}\n"), "signers")
            .unwrap_err();
        let message = err.to_string();
        assert!(
            message.starts_with("signers:1: ssh-rsa keys of this size or curve are not supported"),
            "{message}"
        );
        assert!(message.contains("ssh-keygen -t ed25519"), "{message}");
        TrustedSigners::parse(&format!("a@example.com ssh-rsa {long}\n"), "signers")
            .expect("2048 bits");
    }

    #[test]
    fn validity_windows_read_like_ssh_keygen_in_utc() {
        let options = LineOptions::parse("valid-after=\"20260101\",valid-before=\"202701021530Z\"")
            .expect("parses");
        assert_eq!(options.valid_after, Some(1_767_225_600));
        assert_eq!(options.valid_before, Some(1_798_903_800));
        assert!(options.git_namespace);
        for bad in ["2026", "20261301", "2026010112", "tomorrow"] {
            let err = LineOptions::parse(&format!("valid-after={bad}")).unwrap_err();
            assert!(err.contains("is not YYYYMMDD"), "{bad}: {err}");
        }
    }

    #[test]
    fn role_changes_are_primary_active_and_disaster() {
        let plan = |primary: &str, active: Option<bool>, disaster: bool| {
            let mut object = json!({"spec": {"primary": primary, "domains": [
                {"name": "east"}, {"name": "west", "active": active}]}});
            if disaster {
                object["spec"]["failover"] = json!({"disaster": {"reason": "x"}});
            }
            Roles::from([("db/mysql".to_string(), role_fields(&object))])
        };
        let base = plan("east", None, false);
        let cases = [
            (plan("east", None, false), None),
            (plan("east", Some(true), false), None),
            (
                plan("west", None, false),
                Some("changes the primary of DRPlan db/mysql"),
            ),
            (
                plan("east", Some(false), false),
                Some("changes which domains are active in DRPlan db/mysql"),
            ),
            (
                plan("east", None, true),
                Some("changes the declared disaster of DRPlan db/mysql"),
            ),
            (Roles::new(), Some("removes DRPlan db/mysql")),
        ];
        for (after, expected) in cases {
            assert_eq!(
                role_change(Some(&base), Some(&after)).as_deref(),
                expected,
                "{after:?}"
            );
        }
        assert!(role_change(Some(&base), None).is_some());
        assert!(role_change(None, None).is_none());
    }
}
