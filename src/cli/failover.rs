//! `drgitops failover`: the failover (and failback) button, as a Git commit.
//!
//! In: a Git work tree, a plan name, the domain to make primary, optionally a domain to mark inactive (metro) and
//! a declared disaster; optionally the plan's live status from the cluster of the current kubeconfig. Out: what
//! will happen, printed before anything changes; the plan file edited in place (only the fields that change;
//! comments, quoting and layout stay as they were), validated like the webhook and the reconciler validate it,
//! and committed with a message naming plan, from and to (and for a disaster, the data age it starts from).
//!
//! The pure part (`manifest::edit::edit_plan`) locates the exact spans in the YAML text and proves the edit by
//! re-parsing: the result must equal the original document with exactly the intended fields changed. A declared
//! disaster is written as `spec.failover.disaster` (the reconciler's only permission to start without the lost
//! cluster); a planned failover or failback removes it.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use git2::{Repository, StatusOptions};
use jiff::Timestamp;
use serde_yaml::Value;
use thiserror::Error;

mod break_glass;
mod live;
mod sign;

pub use self::live::{Live, read_live};
use self::live::{data_as_of, live_line};
use super::FailoverArgs;
use crate::manifest::edit::{Declaration, EditError, PlanChange, PlanEdit, edit_plan};
use crate::plan::DRPlan;
use crate::plan::types::Disaster;
use crate::plan::validate::{FieldError, validate};
use crate::stork::keys::DEFAULT_ADMIN_NAMESPACE;

/// Why a failover commit was not made.
#[derive(Debug, Error)]
pub enum FailoverError {
    #[error(
        "cannot open git work tree {path}: {source}; pass --repo a clone of the plans repository"
    )]
    OpenRepo {
        path: PathBuf,
        #[source]
        source: git2::Error,
    },
    #[error(
        "{path} is a bare repository; pass --repo a work tree (a clone with checked-out files)"
    )]
    Bare { path: PathBuf },
    #[error(
        "the work tree has uncommitted changes ({files}); commit or stash them first, so the failover commit holds only the failover"
    )]
    Dirty { files: String },
    #[error(
        "no DRPlan named {plan} in any YAML file under {root}; check --plan against metadata.name"
    )]
    PlanNotFound { plan: String, root: PathBuf },
    #[error(
        "several DRPlans are named {plan} ({places}); keep one per name, or run failover in a work tree that holds only one"
    )]
    Ambiguous { plan: String, places: String },
    #[error("plan {plan}: {message}")]
    Refused { plan: String, message: String },
    #[error(
        "plan {plan} in {file}: cannot edit in place: {message}; edit the plan by hand ({by_hand}) and commit"
    )]
    Edit {
        plan: String,
        file: String,
        message: String,
        /// The fields to write, in words.
        by_hand: String,
    },
    #[error("plan {plan}: the edited plan would be rejected: {errors}")]
    Invalid { plan: String, errors: String },
    #[error("git: {context}: {source}")]
    Git {
        context: String,
        #[source]
        source: git2::Error,
    },
    #[error("cannot read or write {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

fn git(context: &str) -> impl FnOnce(git2::Error) -> FailoverError + '_ {
    move |source| FailoverError::Git {
        context: context.to_string(),
        source,
    }
}

/// What `drgitops failover` is asked to do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FailoverRequest<'a> {
    /// The DRPlan's `metadata.name`.
    pub plan: &'a str,
    /// The domain that becomes primary.
    pub to: &'a str,
    /// A domain to mark `active: false` (metro).
    pub deactivate: Option<&'a str>,
    /// Declare the current primary lost.
    pub disaster: bool,
    /// The operator's words: the commit body, and the declaration's message.
    pub message: Option<&'a str>,
    /// Stork's admin namespace, as the reconciler validates plans with it.
    pub admin_namespace: &'a str,
}

/// What `drgitops failover` did.
#[derive(Clone, Debug, PartialEq)]
pub struct FailoverReport {
    pub plan: String,
    /// The plan file, relative to the work tree root.
    pub file: PathBuf,
    pub from: String,
    pub to: String,
    pub deactivated: Option<String>,
    /// What the commit did to `spec.failover.disaster`.
    pub declaration: Declaration,
    /// The declaration written, when one was.
    pub disaster: Option<Disaster>,
    pub commit: String,
    /// Signed as the git config asks (`commit.gpgsign`).
    pub signed: bool,
    pub branch: Option<String>,
    /// The commit's summary line.
    pub summary: String,
    /// The whole commit message.
    pub message: String,
}

/// Runs `drgitops failover`: says what will happen (and what the cluster of the current kubeconfig reports),
/// then commits and prints what it did.
pub fn run(args: &FailoverArgs) -> anyhow::Result<ExitCode> {
    if args.break_glass {
        return break_glass::run(args);
    }
    let Some(repo) = &args.repo else {
        anyhow::bail!(
            "--repo is required: pass a clone of the plans repository (or --break-glass without Git)"
        );
    };
    let request = FailoverRequest {
        plan: &args.plan,
        to: &args.to,
        deactivate: args.deactivate.as_deref(),
        disaster: args.disaster,
        message: args.message.as_deref(),
        admin_namespace: &args.admin_namespace,
    };
    let located = locate(repo, &args.plan)?;
    // Refusals first, so a wrong command does not wait on a cluster.
    located.prepare(&request, &Live::Skipped, Timestamp::now())?;
    let live = if args.no_live {
        Live::Skipped
    } else {
        read_live(located.namespace().as_deref(), &args.plan)
    };
    let prepared = located.prepare(&request, &live, Timestamp::now())?;
    println!("{}", prepared.summary);
    for line in &prepared.preview {
        println!("  {line}");
    }
    let report = located.commit(prepared)?;
    let file = report.file.display();
    if report.from != report.to {
        println!(
            "  edited {file}: spec.primary {} -> {}",
            report.from, report.to
        );
    }
    if let Some(d) = &report.deactivated {
        println!("  edited {file}: spec.domains {d} active: false");
    }
    match report.declaration {
        Declaration::Declared => println!(
            "  edited {file}: spec.failover.disaster lost {}",
            report
                .disaster
                .as_ref()
                .map(|d| d.lost.as_str())
                .unwrap_or_default()
        ),
        Declaration::Cleared => println!("  edited {file}: spec.failover.disaster removed"),
        Declaration::Absent => {}
    }
    let signed = if report.signed { "signed " } else { "" };
    match &report.branch {
        Some(b) => println!("  committed {signed}{} on {b}", report.commit),
        None => println!("  committed {signed}{}", report.commit),
    }
    if !report.signed {
        eprintln!(
            "warning: the failover commit is not signed (git config commit.gpgsign is not true); a reconciler run \
             with --verify-signatures refuses a role change no trusted key signed. To sign: git config \
             gpg.format ssh; git config user.signingkey ~/.ssh/id_ed25519.pub; git config commit.gpgsign true"
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// A planned failover (or failback): edits the plan in the work tree at `repo` and commits it, without reading
/// any cluster. See the module docs. `admin_namespace` is Stork's admin namespace, as the reconciler validates
/// plans with it.
pub fn failover(
    repo_path: &Path,
    plan: &str,
    to: &str,
    deactivate: Option<&str>,
    message: Option<&str>,
    admin_namespace: &str,
) -> Result<FailoverReport, FailoverError> {
    let request = FailoverRequest {
        plan,
        to,
        deactivate,
        disaster: false,
        message,
        admin_namespace,
    };
    failover_with(repo_path, &request, &Live::Skipped, Timestamp::now())
}

/// Edits and commits as `request` says, with `live` as the plan's live status and `now` as the time of a
/// declaration.
pub fn failover_with(
    repo_path: &Path,
    request: &FailoverRequest,
    live: &Live,
    now: Timestamp,
) -> Result<FailoverReport, FailoverError> {
    let located = locate(repo_path, request.plan)?;
    let prepared = located.prepare(request, live, now)?;
    located.commit(prepared)
}

/// A DRPlan found in a clean work tree, read but not changed.
pub struct Located {
    repo: Repository,
    /// `--repo` as given, for the commands the messages suggest.
    repo_arg: PathBuf,
    /// The work tree root.
    root: PathBuf,
    file: PathBuf,
    text: String,
    /// The plan's document among the file's.
    index: usize,
    document: Value,
}

/// A failover ready to be committed: the edited file, the commit message and what it will do.
#[derive(Clone, Debug)]
pub struct Prepared {
    edit: PlanEdit,
    plan: String,
    to: String,
    deactivated: Option<String>,
    disaster: Option<Disaster>,
    /// The commit's summary line.
    pub summary: String,
    /// The whole commit message.
    pub message: String,
    /// What will happen, then the live state: one line each, for the operator to read before the commit.
    pub preview: Vec<String>,
}

/// Opens the work tree at `repo_path`, refuses uncommitted changes and finds the one DRPlan named `plan`.
pub fn locate(repo_path: &Path, plan: &str) -> Result<Located, FailoverError> {
    let repo = Repository::discover(repo_path).map_err(|source| FailoverError::OpenRepo {
        path: repo_path.into(),
        source,
    })?;
    let root = repo
        .workdir()
        .ok_or_else(|| FailoverError::Bare {
            path: repo_path.into(),
        })?
        .to_path_buf();
    refuse_dirty(&repo)?;

    let mut found = Vec::new();
    for file in yaml_files(&root)? {
        let text = std::fs::read_to_string(&file).map_err(|source| FailoverError::Io {
            path: file.clone(),
            source,
        })?;
        for (index, doc) in crate::manifest::documents(&text).into_iter().enumerate() {
            if let Ok(value) = serde_yaml::from_str::<Value>(doc.text)
                && is_plan_named(&value, plan)
            {
                found.push((file.clone(), text.clone(), index, value));
            }
        }
    }
    let (file, text, index, document) = match found.len() {
        0 => {
            return Err(FailoverError::PlanNotFound {
                plan: plan.into(),
                root,
            });
        }
        1 => found.remove(0),
        _ => {
            let places: Vec<String> = found
                .iter()
                .map(|(f, _, i, _)| format!("{} document {}", relative(&root, f).display(), i + 1))
                .collect();
            return Err(FailoverError::Ambiguous {
                plan: plan.into(),
                places: places.join(", "),
            });
        }
    };
    Ok(Located {
        repo,
        repo_arg: repo_path.into(),
        root,
        file,
        text,
        index,
        document,
    })
}

impl Located {
    /// The plan's `metadata.namespace`, if it has one.
    pub fn namespace(&self) -> Option<String> {
        self.document
            .get("metadata")
            .and_then(|m| m.get("namespace"))
            .and_then(Value::as_str)
            .map(str::to_string)
    }

    /// The plan file, relative to the work tree root.
    pub fn file(&self) -> PathBuf {
        relative(&self.root, &self.file)
    }

    /// Edits the text (in memory), validates the result and words the commit and the preview. Changes nothing.
    pub fn prepare(
        &self,
        request: &FailoverRequest,
        live: &Live,
        now: Timestamp,
    ) -> Result<Prepared, FailoverError> {
        let plan = request.plan;
        let spec = self.document.get("spec");
        let from = spec
            .and_then(|s| s.get("primary"))
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        let metro = spec.and_then(|s| s.get("mode")).and_then(Value::as_str) == Some("metro");
        let refused = |message: String| FailoverError::Refused {
            plan: plan.into(),
            message,
        };
        // A planned failover already committed that the old primary cannot carry out (it is lost, the new
        // primary waits for it): the declaration names the other domain, the one that was primary before.
        let from = if request.disaster && from == request.to {
            let others: Vec<&str> = spec
                .and_then(|s| s.get("domains"))
                .and_then(Value::as_sequence)
                .into_iter()
                .flatten()
                .filter_map(|d| d.get("name").and_then(Value::as_str))
                .filter(|n| *n != request.to)
                .collect();
            match others.as_slice() {
                [lost] => lost.to_string(),
                _ => {
                    return Err(refused(format!(
                        "{} is already the primary and the plan has no single other domain to declare lost; pass \
                         --to the domain that takes over",
                        request.to
                    )));
                }
            }
        } else {
            from
        };
        if request.disaster && metro && request.to != from {
            let already_inactive = spec
                .and_then(|s| s.get("domains"))
                .and_then(Value::as_sequence)
                .is_some_and(|domains| {
                    domains.iter().any(|d| {
                        d.get("name").and_then(Value::as_str) == Some(from.as_str())
                            && d.get("active").and_then(Value::as_bool) == Some(false)
                    })
                });
            if request.deactivate != Some(from.as_str()) && !already_inactive {
                return Err(refused(format!(
                    "metro: --disaster does not fence the stretched storage by itself; {to} starts only once the \
                     lost domain {from} is deactivated, so deactivate it in the same commit: {command}",
                    to = request.to,
                    command = self.command(request, &from),
                )));
            }
        }

        let data = data_as_of(live, &from, now);
        let disaster = request.disaster.then(|| Disaster {
            lost: from.clone(),
            declared_at: Some(to_the_second(now).to_string()),
            message: request
                .message
                .map(str::trim)
                .filter(|m| !m.is_empty())
                .map(str::to_string),
            data_as_of: data.as_ref().ok().map(|(t, _)| t.to_string()),
        });
        let change = PlanChange {
            to: request.to,
            deactivate: request.deactivate,
            disaster: disaster.as_ref(),
        };
        let rel = self.file();
        let edit = edit_plan(&self.text, self.index, &change).map_err(|e| match e {
            EditError::Refused(message) => refused(message),
            EditError::Unsupported(message) => FailoverError::Edit {
                plan: plan.into(),
                file: rel.display().to_string(),
                message,
                by_hand: by_hand(request, disaster.as_ref()),
            },
        })?;
        let errors = validate_edited(&edit.document, request.admin_namespace)?;
        if !errors.is_empty() {
            let errors: Vec<String> = errors.iter().map(ToString::to_string).collect();
            return Err(FailoverError::Invalid {
                plan: plan.into(),
                errors: errors.join("; "),
            });
        }

        let to = request.to;
        let mut notes = Vec::new();
        if disaster.is_some() {
            notes.push(format!("disaster declared: {from} lost"));
        }
        if let Some(d) = request.deactivate {
            notes.push(format!("deactivate {d}"));
        }
        let mut summary = format!("failover {plan}: {from} -> {to}");
        if !notes.is_empty() {
            let _ = write!(summary, " ({})", notes.join("; "));
        }
        let mut body = Vec::new();
        if let Some(m) = request.message.map(str::trim).filter(|m| !m.is_empty()) {
            body.push(m.to_string());
        }
        if disaster.is_some() {
            body.push(match &data {
                Ok((t, age)) => format!("Data as of: {t} ({age} old)"),
                Err(why) => format!("Data age: unknown ({why})"),
            });
        }
        let mut message = summary.clone();
        for part in &body {
            let _ = write!(message, "\n\n{part}");
        }

        let storage = match request.deactivate {
            Some(d) if metro => format!("storage domain {d} is deactivated; then "),
            _ => String::new(),
        };
        let what = if disaster.is_some() {
            let data = match &data {
                Ok((t, age)) => format!("data as of {t}, {age} old"),
                Err(_) => "data age unknown".into(),
            };
            format!(
                "{storage}{to} starts at once from its last migrated copy ({data}); {from} is not waited for and \
                 runs no final migration; when it returns it stops its applications"
            )
        } else {
            format!(
                "{storage}{from} stops its applications, waits for its pods to stop, runs a final migration to {to}; \
                 {to} starts once it succeeded (nothing is lost)"
            )
        };
        Ok(Prepared {
            edit,
            plan: plan.into(),
            to: to.into(),
            deactivated: request.deactivate.map(str::to_string),
            disaster,
            summary,
            message,
            preview: vec![what, live_line(live, now)],
        })
    }

    /// Writes the edited file and commits it.
    pub fn commit(&self, prepared: Prepared) -> Result<FailoverReport, FailoverError> {
        let rel = self.file();
        std::fs::write(&self.file, &prepared.edit.text).map_err(|source| FailoverError::Io {
            path: self.file.clone(),
            source,
        })?;
        let (commit, signed) = commit_file(&self.repo, &rel, &prepared.message)?;
        let branch = self
            .repo
            .head()
            .ok()
            .and_then(|h| h.shorthand().map(str::to_string))
            .filter(|b| b != "HEAD");
        Ok(FailoverReport {
            plan: prepared.plan,
            file: rel,
            from: prepared.edit.from,
            to: prepared.to,
            deactivated: prepared.deactivated,
            declaration: prepared.edit.declaration,
            disaster: prepared.disaster,
            commit,
            signed,
            branch,
            summary: prepared.summary,
            message: prepared.message,
        })
    }

    /// The command that makes this request with `--deactivate lost`, as the operator would type it.
    fn command(&self, request: &FailoverRequest, lost: &str) -> String {
        let mut words = vec![
            "drgitops".to_string(),
            "failover".into(),
            "--repo".into(),
            shell_word(&self.repo_arg.display().to_string()),
            "--plan".into(),
            shell_word(request.plan),
            "--to".into(),
            shell_word(request.to),
            "--deactivate".into(),
            shell_word(lost),
            "--disaster".into(),
        ];
        if let Some(m) = request.message {
            words.push("--message".into());
            words.push(shell_word(m));
        }
        if request.admin_namespace != DEFAULT_ADMIN_NAMESPACE {
            words.push("--admin-namespace".into());
            words.push(shell_word(request.admin_namespace));
        }
        words.join(" ")
    }
}

/// The fields an edit by hand would write, for the message of an edit the editor cannot prove.
fn by_hand(request: &FailoverRequest, disaster: Option<&Disaster>) -> String {
    let mut fields = vec![format!("spec.primary: {}", request.to)];
    if let Some(d) = request.deactivate {
        fields.push(format!("active: false on domain {d}"));
    }
    match disaster {
        Some(d) => {
            let mut declaration = format!("spec.failover.disaster: {{lost: {}", d.lost);
            for (key, value) in [
                ("declaredAt", &d.declared_at),
                ("message", &d.message),
                ("dataAsOf", &d.data_as_of),
            ] {
                if let Some(value) = value {
                    let _ = write!(declaration, ", {key}: {}", quoted(value));
                }
            }
            declaration.push('}');
            fields.push(declaration);
        }
        None => fields.push("no spec.failover.disaster".into()),
    }
    fields.join(", ")
}

fn quoted(value: &str) -> String {
    serde_json::to_string(value).unwrap_or_else(|_| format!("\"{value}\""))
}

/// `word` as one shell word: as it is when it holds nothing a shell would read, else single-quoted.
fn shell_word(word: &str) -> String {
    let plain = !word.is_empty()
        && word
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./:=@%+,".contains(c));
    if plain {
        word.to_string()
    } else {
        format!("'{}'", word.replace('\'', r"'\''"))
    }
}

/// `now` without its fraction of a second.
fn to_the_second(now: Timestamp) -> Timestamp {
    Timestamp::from_second(now.as_second()).unwrap_or(now)
}

fn relative(root: &Path, file: &Path) -> PathBuf {
    file.strip_prefix(root).unwrap_or(file).to_path_buf()
}

fn refuse_dirty(repo: &Repository) -> Result<(), FailoverError> {
    let mut options = StatusOptions::new();
    options
        .include_untracked(true)
        .include_ignored(false)
        .recurse_untracked_dirs(true);
    let statuses = repo
        .statuses(Some(&mut options))
        .map_err(git("reading the work tree status"))?;
    let dirty: Vec<String> = statuses
        .iter()
        .filter(|s| s.status() != git2::Status::CURRENT)
        .map(|s| s.path().unwrap_or("?").to_string())
        .collect();
    if dirty.is_empty() {
        return Ok(());
    }
    let mut files = dirty.iter().take(5).cloned().collect::<Vec<_>>().join(", ");
    if dirty.len() > 5 {
        let _ = write!(files, " and {} more", dirty.len() - 5);
    }
    Err(FailoverError::Dirty { files })
}

/// YAML files under `root`, skipping hidden directories (`.git`, ...), in a stable order.
fn yaml_files(root: &Path) -> Result<Vec<PathBuf>, FailoverError> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let entries = std::fs::read_dir(&dir).map_err(|source| FailoverError::Io {
            path: dir.clone(),
            source,
        })?;
        for entry in entries {
            let entry = entry.map_err(|source| FailoverError::Io {
                path: dir.clone(),
                source,
            })?;
            let path = entry.path();
            let name = entry.file_name();
            if name.to_string_lossy().starts_with('.') {
                continue;
            }
            let kind = entry.file_type().map_err(|source| FailoverError::Io {
                path: path.clone(),
                source,
            })?;
            if kind.is_dir() {
                stack.push(path);
            } else if kind.is_file() && path.extension().is_some_and(|e| e == "yaml" || e == "yml")
            {
                out.push(path);
            }
        }
    }
    out.sort();
    Ok(out)
}

fn is_plan_named(value: &Value, plan: &str) -> bool {
    value.get("kind").and_then(Value::as_str) == Some("DRPlan")
        && value
            .get("metadata")
            .and_then(|m| m.get("name"))
            .and_then(Value::as_str)
            == Some(plan)
}

fn validate_edited(
    document: &Value,
    admin_namespace: &str,
) -> Result<Vec<FieldError>, FailoverError> {
    let json = serde_json::to_value(document).map_err(|e| FailoverError::Refused {
        plan: String::new(),
        message: format!("the edited plan is not representable as JSON: {e}"),
    })?;
    Ok(match DRPlan::deserialize_value(&json) {
        Ok(plan) => validate(&plan, admin_namespace),
        Err(e) => vec![e],
    })
}

/// Commits the plan file, signed when the git config asks for it (`commit.gpgsign`, as `git commit` signs).
/// Returns the commit id and whether it is signed.
fn commit_file(
    repo: &Repository,
    rel: &Path,
    message: &str,
) -> Result<(String, bool), FailoverError> {
    let signature = repo.signature().map_err(git(
        "no author identity (set user.name and user.email with `git config` in the repository or globally)",
    ))?;
    let mut index = repo.index().map_err(git("opening the index"))?;
    index.add_path(rel).map_err(git("staging the plan file"))?;
    index.write().map_err(git("writing the index"))?;
    let tree_id = index.write_tree().map_err(git("writing the tree"))?;
    let tree = repo
        .find_tree(tree_id)
        .map_err(git("reading the new tree"))?;
    let parent = repo.head().and_then(|h| h.peel_to_commit()).map_err(git(
        "reading HEAD (the repository needs at least one commit)",
    ))?;
    let config = repo.config().map_err(git("reading the git config"))?;
    let committer = format!(
        "{} <{}>",
        signature.name().unwrap_or_default(),
        signature.email().unwrap_or_default()
    );
    let signing = sign::signing(&config, &committer).map_err(|message| FailoverError::Refused {
        plan: String::new(),
        message,
    })?;
    if signing == sign::Signing::Off {
        let id = repo
            .commit(
                Some("HEAD"),
                &signature,
                &signature,
                message,
                &tree,
                &[&parent],
            )
            .map_err(git("committing"))?;
        return Ok((id.to_string(), false));
    }
    let buffer = repo
        .commit_create_buffer(&signature, &signature, message, &tree, &[&parent])
        .map_err(git("preparing the commit"))?;
    let buffer = buffer.as_str().ok_or_else(|| FailoverError::Refused {
        plan: String::new(),
        message: "the commit to sign is not UTF-8 text".into(),
    })?;
    let signed = sign::sign(&signing, buffer).map_err(|message| FailoverError::Refused {
        plan: String::new(),
        message: format!("cannot sign the failover commit: {message}"),
    })?;
    let id = repo
        .commit_signed(buffer, &signed, None)
        .map_err(git("writing the signed commit"))?;
    repo.find_reference("HEAD")
        .and_then(|head| head.resolve())
        .and_then(|mut branch| branch.set_target(id, "drgitops failover"))
        .map_err(git("moving the branch to the signed commit"))?;
    Ok((id.to_string(), true))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::age::human_age as age;
    use crate::plan::types::DRPlanStatus;
    use crate::plan::types::MigrationRecord;

    fn live(from: Option<&str>, finished_at: Option<&str>) -> Live {
        Live::Read(Box::new(DRPlanStatus {
            last_migration: Some(MigrationRecord {
                name: "mysql-1".into(),
                finished_at: finished_at.map(str::to_string),
                from: from.map(str::to_string),
                ..Default::default()
            }),
            ..Default::default()
        }))
    }

    #[test]
    fn the_data_age_comes_only_from_a_migration_out_of_the_lost_primary() {
        let now: Timestamp = "2026-11-22T16:05:00Z".parse().unwrap();
        let (at, age) =
            data_as_of(&live(Some("a"), Some("2026-11-22T13:04:59.9Z")), "a", now).unwrap();
        assert_eq!(
            (at.to_string().as_str(), age.as_str()),
            ("2026-11-22T13:04:59Z", "3h")
        );
        assert_eq!(
            data_as_of(&live(Some("b"), Some("2026-11-22T16:00:00Z")), "a", now).unwrap_err(),
            "the last migration reported, mysql-1, ran from b, not from a"
        );
        assert_eq!(
            data_as_of(&live(None, None), "a", now).unwrap_err(),
            "migration mysql-1 reports no finish time"
        );
        assert_eq!(
            data_as_of(&Live::Read(Box::default()), "a", now).unwrap_err(),
            "no reachable cluster reported a migration"
        );
        assert_eq!(
            data_as_of(&Live::Unknown("connection refused".into()), "a", now).unwrap_err(),
            "no reachable cluster reported a migration"
        );
    }

    #[test]
    fn ages_and_shell_words() {
        let ages: Vec<String> = [-5, 59, 119, 120, 7_199, 7_200, 172_800].map(age).into();
        assert_eq!(ages, ["0s", "59s", "119s", "2m", "119m", "2h", "2d"]);
        assert_eq!(shell_word("us-east-1a"), "us-east-1a");
        assert_eq!(shell_word("site A's power"), r"'site A'\''s power'");
        assert_eq!(shell_word(""), "''");
    }

    #[test]
    fn the_live_line_says_what_the_cluster_reports() {
        let now: Timestamp = "2026-11-22T16:05:00Z".parse().unwrap();
        let mut status = DRPlanStatus {
            local_domain: Some("us-east-1b".into()),
            role: Some(crate::plan::Role::Standby),
            phase: Some("Standby".into()),
            ..Default::default()
        };
        assert_eq!(
            live_line(&Live::Read(Box::new(status.clone())), now),
            "live plan on us-east-1b: role Standby, phase Standby, last migration <none>"
        );
        status.last_migration = Some(MigrationRecord {
            name: "mysql-1".into(),
            finished_at: Some("2026-11-22T15:53:00Z".into()),
            ..Default::default()
        });
        assert_eq!(
            live_line(&Live::Read(Box::new(status)), now),
            "live plan on us-east-1b: role Standby, phase Standby, last migration mysql-1 finished \
             2026-11-22T15:53:00Z (12m ago)"
        );
        assert_eq!(
            live_line(&Live::Unknown("no cluster configured".into()), now),
            "live state unknown: no cluster configured"
        );
    }
}
