//! Parsing a commit's manifest files into DRPlan documents, with errors that name file, line and field. Pure.
//!
//! In: the files read at one revision (or from a directory). Out: every DRPlan as JSON with the file and line it
//! came from, or every problem found. Callers fail closed: one problem anywhere means nothing from that commit is
//! applied.

use std::collections::BTreeMap;

use serde_json::Value;

use crate::cluster::apply::ObjectKey;
use crate::plan::API_VERSION as DRPLAN_API_VERSION;
use crate::source::git::ManifestFile;

/// One DRPlan document and where it came from.
#[derive(Clone, Debug, PartialEq)]
pub struct PlanDocument {
    pub file: String,
    /// 1-based line where the document starts.
    pub line: usize,
    pub object: Value,
}

impl PlanDocument {
    pub fn key(&self) -> Option<ObjectKey> {
        ObjectKey::of(&self.object)
    }

    /// `namespace/name`.
    pub fn id(&self) -> String {
        let ns = self
            .object
            .pointer("/metadata/namespace")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let name = self
            .object
            .pointer("/metadata/name")
            .and_then(Value::as_str)
            .unwrap_or_default();
        format!("{ns}/{name}")
    }
}

/// A problem in one file of a commit.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ManifestError {
    pub file: String,
    pub line: usize,
    /// Field path (`spec.primary`), when the problem is a field's.
    pub field: Option<String>,
    /// The plan the problem belongs to (`namespace/name`), when it got that far.
    pub plan: Option<String>,
    pub message: String,
}

impl std::fmt::Display for ManifestError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // A problem of the whole commit (a refused signature) names no file.
        if !self.file.is_empty() {
            write!(f, "{}:{}: ", self.file, self.line)?;
        }
        if let Some(field) = &self.field {
            write!(f, "{field}: ")?;
        }
        f.write_str(&self.message)
    }
}

/// A field-level problem reported by plan validation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FieldProblem {
    /// Dotted path from the document root, e.g. `spec.schedule.interval.intervalMinutes`.
    pub field: String,
    pub message: String,
}

/// Parses every file; DRPlan documents are checked by `validate`. Documents of other kinds are skipped (a
/// repository may also hold a `kustomization.yaml`), but a document that is not a Kubernetes object at all, or a
/// DRPlan of another apiVersion, is an error.
pub fn parse_plans(
    files: &[ManifestFile],
    validate: impl Fn(&Value) -> Vec<FieldProblem>,
) -> Result<Vec<PlanDocument>, Vec<ManifestError>> {
    let mut plans = Vec::new();
    let mut errors = Vec::new();
    for file in files {
        for doc in crate::manifest::documents(&file.contents) {
            let (start, text) = (doc.line, doc.text);
            let value: Value = match serde_yaml::from_str::<Value>(text) {
                Ok(Value::Null) => continue,
                Ok(v) => v,
                Err(e) => {
                    let line = e.location().map_or(start, |l| doc.stream_line(l.line()));
                    errors.push(ManifestError {
                        file: file.path.clone(),
                        line,
                        field: None,
                        plan: None,
                        message: format!("not valid YAML: {}", yaml_message(&e)),
                    });
                    continue;
                }
            };
            let kind = value.get("kind").and_then(Value::as_str);
            let api_version = value.get("apiVersion").and_then(Value::as_str);
            let (Some(kind), Some(api_version)) = (kind, api_version) else {
                errors.push(ManifestError {
                    file: file.path.clone(),
                    line: start,
                    field: Some(if kind.is_none() { "kind" } else { "apiVersion" }.into()),
                    plan: None,
                    message: "not a Kubernetes object: apiVersion and kind are required".into(),
                });
                continue;
            };
            if kind != "DRPlan" {
                continue;
            }
            let here = |field: &str, message: String, plan: Option<String>| ManifestError {
                file: file.path.clone(),
                line: start + line_of_field(text, field).unwrap_or(0),
                field: Some(field.to_string()),
                plan,
                message,
            };
            if api_version != DRPLAN_API_VERSION {
                errors.push(here(
                    "apiVersion",
                    format!("DRPlan must be {DRPLAN_API_VERSION}, not {api_version}"),
                    None,
                ));
                continue;
            }
            let name = value
                .pointer("/metadata/name")
                .and_then(Value::as_str)
                .unwrap_or_default();
            let namespace = value
                .pointer("/metadata/namespace")
                .and_then(Value::as_str)
                .unwrap_or_default();
            if name.is_empty() {
                errors.push(here("metadata.name", "is required".into(), None));
                continue;
            }
            let id = format!("{namespace}/{name}");
            if namespace.is_empty() {
                errors.push(here(
                    "metadata.namespace",
                    "is required: plans are applied into the namespace they name".into(),
                    Some(id),
                ));
                continue;
            }
            let problems = validate(&value);
            if !problems.is_empty() {
                for problem in problems {
                    errors.push(here(&problem.field, problem.message, Some(id.clone())));
                }
                continue;
            }
            plans.push(PlanDocument {
                file: file.path.clone(),
                line: start,
                object: value,
            });
        }
    }
    let mut seen: BTreeMap<String, &PlanDocument> = BTreeMap::new();
    for plan in &plans {
        if let Some(first) = seen.insert(plan.id(), plan) {
            errors.push(ManifestError {
                file: plan.file.clone(),
                line: plan.line,
                field: Some("metadata.name".into()),
                plan: Some(plan.id()),
                message: format!(
                    "DRPlan {} is also defined in {}:{}",
                    plan.id(),
                    first.file,
                    first.line
                ),
            });
        }
    }
    if errors.is_empty() {
        Ok(plans)
    } else {
        Err(errors)
    }
}

fn yaml_message(e: &serde_yaml::Error) -> String {
    // serde_yaml appends " at line X column Y"; the line is reported separately, relative to the file.
    let text = e.to_string();
    match text.find(" at line ") {
        Some(i) => text[..i].to_string(),
        None => text,
    }
}

/// 0-based line offset (within `text`) of a dotted field path in block-style YAML, following indentation; `None`
/// when the path cannot be found (flow style, or the field is missing: then the document's first line is used).
/// Sequence indices (`domains[1]`, `namespaces.0`) select the n-th item of a block sequence.
pub fn line_of_field(text: &str, path: &str) -> Option<usize> {
    let lines: Vec<&str> = text.lines().collect();
    let indent_of = |line: &str| line.len() - line.trim_start_matches(' ').len();
    let blank = |line: &str| {
        let t = line.trim();
        t.is_empty() || t.starts_with('#')
    };
    let key_at = |line: &str, col: usize, key: &str| {
        let rest = line.get(col..).unwrap_or_default();
        [
            format!("{key}:"),
            format!("\"{key}\":"),
            format!("'{key}':"),
        ]
        .iter()
        .any(|p| rest.starts_with(p.as_str()))
    };
    // The node found so far: its line, its indent, and for a sequence item the column its inline content starts.
    let mut at: Option<usize> = None;
    let mut indent: isize = -1;
    let mut inline: Option<usize> = None;
    for segment in path_segments(path) {
        let start = at.map_or(0, |l| l + 1);
        let mut hit = None;
        match segment {
            Segment::Key(key) => {
                if let (Some(line), Some(col)) = (at, inline)
                    && key_at(lines[line], col, &key)
                {
                    hit = Some((line, col, None));
                }
                let mut child = inline;
                for (i, line) in lines.iter().enumerate().skip(start) {
                    if hit.is_some() || blank(line) {
                        if hit.is_some() {
                            break;
                        }
                        continue;
                    }
                    let ind = indent_of(line);
                    if ind as isize <= indent {
                        break;
                    }
                    let col = *child.get_or_insert(ind);
                    if ind == col && key_at(line, col, &key) {
                        hit = Some((i, col, None));
                    }
                }
            }
            Segment::Index(n) => {
                let mut item_col = None;
                let mut count = 0;
                for (i, line) in lines.iter().enumerate().skip(start) {
                    if blank(line) {
                        continue;
                    }
                    let ind = indent_of(line);
                    let is_item = line[ind..].starts_with("- ") || line[ind..].trim_end() == "-";
                    if (ind as isize) < indent || (ind as isize == indent && !is_item) {
                        break;
                    }
                    let col = *item_col.get_or_insert(ind);
                    if ind < col || (ind == col && !is_item) {
                        break;
                    }
                    if ind == col && is_item {
                        if count == n {
                            hit = Some((i, col, Some(col + 2)));
                            break;
                        }
                        count += 1;
                    }
                }
            }
        }
        let (line, col, inline_col) = hit?;
        at = Some(line);
        indent = col as isize;
        inline = inline_col;
    }
    at
}

enum Segment {
    Key(String),
    Index(usize),
}

fn path_segments(path: &str) -> Vec<Segment> {
    let mut out = Vec::new();
    for part in path.split('.') {
        let mut rest = part;
        if let Some(open) = rest.find('[') {
            let key = &rest[..open];
            if !key.is_empty() {
                out.push(Segment::Key(key.to_string()));
            }
            rest = &rest[open..];
            while let Some(stripped) = rest.strip_prefix('[') {
                let Some(close) = stripped.find(']') else {
                    break;
                };
                if let Ok(n) = stripped[..close].parse() {
                    out.push(Segment::Index(n));
                }
                rest = &stripped[close + 1..];
            }
        } else if let Ok(n) = rest.parse::<usize>() {
            out.push(Segment::Index(n));
        } else if !rest.is_empty() {
            out.push(Segment::Key(rest.to_string()));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const PLAN: &str = "\
apiVersion: drgitops.dev/v1alpha1
kind: DRPlan
metadata:
  name: mysql
  namespace: mysql
spec:
  mode: async
  primary: us-east-1a
  domains:
    - name: us-east-1a
    - name: us-east-1b
      active: true
  schedule:
    interval:
      intervalMinutes: 0
";

    #[test]
    fn field_lines_follow_indentation() {
        assert_eq!(line_of_field(PLAN, "spec.primary"), Some(7));
        assert_eq!(line_of_field(PLAN, "metadata.namespace"), Some(4));
        assert_eq!(
            line_of_field(PLAN, "spec.schedule.interval.intervalMinutes"),
            Some(14)
        );
        assert_eq!(line_of_field(PLAN, "spec.domains[1]"), Some(10));
        assert_eq!(line_of_field(PLAN, "spec.domains[1].active"), Some(11));
        assert_eq!(line_of_field(PLAN, "spec.missing"), None);
    }

    fn file(path: &str, contents: &str) -> ManifestFile {
        ManifestFile {
            path: path.into(),
            contents: contents.into(),
        }
    }

    #[test]
    fn validation_problems_name_file_line_and_field() {
        let files = [file("plans/a.yaml", &format!("# header\n---\n{PLAN}"))];
        let errors = parse_plans(&files, |_| {
            vec![FieldProblem {
                field: "spec.schedule.interval.intervalMinutes".into(),
                message: "must be ≥ 1".into(),
            }]
        })
        .expect_err("invalid");
        assert_eq!(errors.len(), 1);
        assert_eq!(
            errors[0].to_string(),
            "plans/a.yaml:17: spec.schedule.interval.intervalMinutes: must be ≥ 1"
        );
        assert_eq!(errors[0].plan.as_deref(), Some("mysql/mysql"));
    }

    #[test]
    fn broken_yaml_reports_the_file_line() {
        let files = [file(
            "a.yaml",
            "apiVersion: v1\nkind: ConfigMap\n---\nkind: DRPlan\nspec: [unclosed\n",
        )];
        let errors = parse_plans(&files, |_| vec![]).expect_err("broken");
        assert_eq!(errors[0].file, "a.yaml");
        assert!(errors[0].line >= 4, "{errors:?}");
        assert!(
            errors[0].message.starts_with("not valid YAML"),
            "{errors:?}"
        );
    }

    #[test]
    fn other_kinds_are_skipped_and_duplicates_refused() {
        let files = [
            file("a.yaml", PLAN),
            file(
                "b.yaml",
                &format!("kind: Kustomization\napiVersion: x/v1\n---\n{PLAN}"),
            ),
        ];
        let errors = parse_plans(&files, |_| vec![]).expect_err("duplicate");
        assert_eq!(errors.len(), 1);
        assert!(
            errors[0].message.contains("also defined in a.yaml:1"),
            "{errors:?}"
        );
        let plans = parse_plans(&files[..1], |_| vec![]).expect("one plan");
        assert_eq!(plans.len(), 1);
        assert_eq!(plans[0].id(), "mysql/mysql");
    }
}
