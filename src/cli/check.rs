//! `drgitops check`: the admission rules, offline, over manifest files (what `kyverno test` or `gator` are to
//! their engines).
//!
//! In: policy config, cluster-state files and input files. Each input object is evaluated as a CREATE by an
//! ordinary user against a view made of the cluster state plus the other input objects. Out: findings as text
//! (`FILE: Kind/name: [rule] message`, denials first, one summary line) or one JSON document; exit 0 when
//! nothing is denied, 1 when something is, 2 when the input or the config cannot be read.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use serde::Serialize;

use super::{CheckArgs, OutputFormat};
use crate::cluster::file::{FileView, Manifest, read_manifests};
use crate::policy::{Operation, Outcome, PolicyConfig, Request, UserInfo, evaluate};

/// The user `check` evaluates as: authenticated, exempt from nothing.
const CHECK_USER: &str = "drgitops-check";

/// One finding as reported.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Finding {
    pub file: String,
    pub document: usize,
    pub api_version: String,
    pub kind: String,
    pub namespace: Option<String>,
    pub name: String,
    pub rule: &'static str,
    /// `deny`, `warn`, `audit` or `patch`.
    pub action: &'static str,
    pub field: String,
    pub message: String,
}

#[derive(Debug, Default, Serialize)]
pub struct Summary {
    pub files: usize,
    pub objects: usize,
    pub denied: usize,
    pub warned: usize,
    pub patched: usize,
}

/// The whole report (`-o json` prints exactly this).
#[derive(Debug, Default, Serialize)]
pub struct Report {
    pub findings: Vec<Finding>,
    pub summary: Summary,
}

fn action_rank(action: &str) -> u8 {
    match action {
        "deny" => 0,
        "warn" => 1,
        "audit" => 2,
        _ => 3,
    }
}

/// Evaluates `input` against `state` (what the cluster already holds). Findings come denials first, then
/// warnings, audits and patches, each group in input order.
pub fn check(
    input: &[Manifest],
    state: &[Manifest],
    config: &PolicyConfig,
    cluster_domain: Option<&str>,
    files: usize,
) -> Report {
    let view = FileView::new(state, input, cluster_domain);
    let user = UserInfo {
        username: CHECK_USER.to_string(),
        groups: vec!["system:authenticated".to_string()],
    };
    let mut report = Report {
        summary: Summary {
            files,
            objects: input.len(),
            ..Summary::default()
        },
        ..Report::default()
    };
    for (index, m) in input.iter().enumerate() {
        let req = Request {
            operation: Operation::Create,
            group: m.group(),
            kind: m.kind(),
            sub_resource: None,
            namespace: m.namespace(),
            name: Some(m.name()),
            object: Some(&m.object),
            old_object: None,
            user: &user,
            dry_run: true,
            field_manager: None,
        };
        let decision = evaluate(&req, &view.at(index), config);
        let finding = |rule, action, field: String, message: String| Finding {
            file: m.file.display().to_string(),
            document: m.document,
            api_version: m.api_version().to_string(),
            kind: m.kind().to_string(),
            namespace: m.namespace().map(String::from),
            name: m.name().to_string(),
            rule,
            action,
            field,
            message,
        };
        for f in decision.findings {
            let action = match f.outcome {
                Outcome::Deny => "deny",
                Outcome::Warn => "warn",
                Outcome::Audit => "audit",
            };
            report
                .findings
                .push(finding(f.rule, action, f.field, f.message));
        }
        for mutation in decision.mutations {
            report.findings.push(finding(
                mutation.rule,
                "patch",
                mutation.field,
                mutation.message,
            ));
        }
    }
    // A stable sort keeps input order within each action.
    report.findings.sort_by_key(|f| action_rank(f.action));
    for f in &report.findings {
        match f.action {
            "deny" => report.summary.denied += 1,
            "warn" => report.summary.warned += 1,
            "patch" => report.summary.patched += 1,
            _ => {}
        }
    }
    report
}

/// The text report: one line per finding, then the summary.
pub fn render_text(report: &Report) -> String {
    let mut out = String::new();
    for f in &report.findings {
        let label = match f.action {
            "deny" => "denied",
            "warn" => "warning",
            "audit" => "audit",
            _ => "patch",
        };
        out.push_str(&format!(
            "{}: {}/{}: [{}] {label}: {}\n",
            f.file, f.kind, f.name, f.rule, f.message
        ));
    }
    let s = &report.summary;
    let plural = |n: usize, word: &str| {
        if n == 1 {
            format!("{n} {word}")
        } else {
            format!("{n} {word}s")
        }
    };
    out.push_str(&format!(
        "{} in {}: {} denied, {} warned, {} patched\n",
        plural(s.objects, "object"),
        plural(s.files, "file"),
        s.denied,
        s.warned,
        s.patched
    ));
    out
}

/// `drgitops check`.
pub fn run(args: CheckArgs) -> anyhow::Result<ExitCode> {
    let config = match &args.policies {
        Some(dir) => PolicyConfig::load_dir(dir)?,
        None => PolicyConfig::default(),
    };
    let namespace = args.namespace.as_deref().filter(|n| !n.is_empty());
    let state = match &args.cluster_state {
        Some(dir) => {
            read_manifests(std::slice::from_ref(dir), namespace)
                .context("cannot read --cluster-state")?
                .0
        }
        None => Vec::new(),
    };
    let paths: Vec<PathBuf> = args.paths.clone();
    let (input, files) = read_manifests(&paths, namespace)?;
    let report = check(
        &input,
        &state,
        &config,
        args.cluster_domain.as_deref(),
        files,
    );
    match args.output {
        OutputFormat::Text => print!("{}", render_text(&report)),
        OutputFormat::Json => println!("{}", serde_json::to_string_pretty(&report)?),
    }
    Ok(if report.summary.denied > 0 {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}
