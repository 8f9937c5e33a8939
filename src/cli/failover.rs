//! `drgitops failover`: the failover (and failback) button, as a Git commit.
//!
//! In: a Git work tree, a plan name, the domain to make primary and optionally a domain to mark inactive (metro).
//! Out: the plan file edited in place (only the scalars that change; comments, quoting and layout stay as they
//! were), validated like the webhook and the reconciler validate it, and committed with a message naming plan,
//! from and to. The pure part (`manifest::edit::edit_plan`) locates the exact scalar spans in the YAML text and proves the edit by
//! re-parsing: the result must equal the original document with exactly the intended fields changed.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use git2::{Repository, StatusOptions};
use serde_yaml::Value;
use thiserror::Error;

use super::FailoverArgs;
use crate::manifest::edit::{EditError, edit_plan};
use crate::plan::DRPlan;
use crate::plan::validate::{FieldError, validate};

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
        "plan {plan} in {file}: cannot edit in place: {message}; edit spec.primary by hand and commit"
    )]
    Edit {
        plan: String,
        file: String,
        message: String,
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

/// What `drgitops failover` did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FailoverReport {
    pub plan: String,
    /// The plan file, relative to the work tree root.
    pub file: PathBuf,
    pub from: String,
    pub to: String,
    pub deactivated: Option<String>,
    pub commit: String,
    pub branch: Option<String>,
    pub summary: String,
}

/// Runs `drgitops failover` and prints what it did.
pub fn run(args: &FailoverArgs) -> anyhow::Result<ExitCode> {
    let report = failover(
        &args.repo,
        &args.plan,
        &args.to,
        args.deactivate.as_deref(),
        args.message.as_deref(),
        &args.admin_namespace,
    )?;
    println!("{}", report.summary);
    println!(
        "  edited {}: spec.primary {} -> {}",
        report.file.display(),
        report.from,
        report.to
    );
    if let Some(d) = &report.deactivated {
        println!(
            "  edited {}: spec.domains {d} active: false",
            report.file.display()
        );
    }
    match &report.branch {
        Some(b) => println!("  committed {} on {b}", report.commit),
        None => println!("  committed {}", report.commit),
    }
    Ok(ExitCode::SUCCESS)
}

/// Edits the plan in the work tree at `repo` and commits it. See the module docs. `admin_namespace` is Stork's
/// admin namespace, as the reconciler validates plans with it.
pub fn failover(
    repo_path: &Path,
    plan: &str,
    to: &str,
    deactivate: Option<&str>,
    message: Option<&str>,
    admin_namespace: &str,
) -> Result<FailoverReport, FailoverError> {
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
                found.push((file.clone(), text.clone(), index));
            }
        }
    }
    let (file, text, index) = match found.len() {
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
                .map(|(f, _, i)| format!("{} document {}", relative(&root, f).display(), i + 1))
                .collect();
            return Err(FailoverError::Ambiguous {
                plan: plan.into(),
                places: places.join(", "),
            });
        }
    };
    let rel = relative(&root, &file);
    let edit = edit_plan(&text, index, to, deactivate).map_err(|e| match e {
        EditError::Refused(message) => FailoverError::Refused {
            plan: plan.into(),
            message,
        },
        EditError::Unsupported(message) => FailoverError::Edit {
            plan: plan.into(),
            file: rel.display().to_string(),
            message,
        },
    })?;
    let errors = validate_edited(&edit.document, admin_namespace)?;
    if !errors.is_empty() {
        let errors: Vec<String> = errors.iter().map(ToString::to_string).collect();
        return Err(FailoverError::Invalid {
            plan: plan.into(),
            errors: errors.join("; "),
        });
    }
    std::fs::write(&file, &edit.text).map_err(|source| FailoverError::Io {
        path: file.clone(),
        source,
    })?;

    let mut summary = format!("failover {plan}: {} -> {to}", edit.from);
    if let Some(d) = deactivate {
        let _ = write!(summary, " (deactivate {d})");
    }
    let mut full = summary.clone();
    if let Some(m) = message.filter(|m| !m.trim().is_empty()) {
        let _ = write!(full, "\n\n{}", m.trim());
    }
    let commit = commit_file(&repo, &rel, &full)?;
    let branch = repo
        .head()
        .ok()
        .and_then(|h| h.shorthand().map(str::to_string))
        .filter(|b| b != "HEAD");
    Ok(FailoverReport {
        plan: plan.into(),
        file: rel,
        from: edit.from,
        to: to.into(),
        deactivated: deactivate.map(str::to_string),
        commit,
        branch,
        summary,
    })
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

fn commit_file(repo: &Repository, rel: &Path, message: &str) -> Result<String, FailoverError> {
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
    Ok(id.to_string())
}
