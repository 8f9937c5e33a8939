//! The span editor `failover` uses: changes a DRPlan's `spec.primary` (and a domain's `active`) in the YAML text
//! itself, so comments, quoting and layout stay as they were. Pure.
//!
//! It locates the exact scalar spans by following indentation, block, flow and inline styles, and proves each
//! edit by re-parsing: the result must equal the original document with exactly the intended fields changed, or
//! the edit is refused as one it cannot prove.

use serde_yaml::Value;
use thiserror::Error;

/// Why the text of a plan cannot be edited.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum EditError {
    /// The change itself is wrong (unknown domain, nothing to change).
    #[error("{0}")]
    Refused(String),
    /// The YAML uses a layout the in-place editor does not handle.
    #[error("{0}")]
    Unsupported(String),
}

/// The result of [`edit_plan`].
#[derive(Clone, Debug, PartialEq)]
pub struct PlanEdit {
    /// The whole file with the plan edited.
    pub text: String,
    /// The plan document after the edit.
    pub document: Value,
    /// The primary before the edit.
    pub from: String,
}

/// Edits document `index` of `text` (a DRPlan): `spec.primary` becomes `to`, and with `deactivate` that domain's
/// `active` becomes `false` (added when absent). Only those scalars change. The result is re-parsed and must equal
/// the original document with exactly those fields changed, or the edit is refused.
pub fn edit_plan(
    text: &str,
    index: usize,
    to: &str,
    deactivate: Option<&str>,
) -> Result<PlanEdit, EditError> {
    let docs = crate::manifest::documents(text);
    let range = docs
        .get(index)
        .map(|d| d.range.clone())
        .ok_or_else(|| EditError::Unsupported(format!("document {} not found", index + 1)))?;
    let doc = &text[range.clone()];
    let original: Value = serde_yaml::from_str(doc)
        .map_err(|e| EditError::Unsupported(format!("the plan document does not parse: {e}")))?;
    let spec = original
        .get("spec")
        .ok_or_else(|| EditError::Refused("the plan has no spec".into()))?;
    let from = spec
        .get("primary")
        .and_then(Value::as_str)
        .ok_or_else(|| EditError::Refused("spec.primary is missing or not a string".into()))?
        .to_string();
    let domains: Vec<(String, Option<bool>)> = spec
        .get("domains")
        .and_then(Value::as_sequence)
        .map(|seq| {
            seq.iter()
                .map(|d| {
                    (
                        d.get("name")
                            .and_then(Value::as_str)
                            .unwrap_or_default()
                            .to_string(),
                        d.get("active").and_then(Value::as_bool),
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    let names: Vec<&str> = domains.iter().map(|(n, _)| n.as_str()).collect();
    if !names.contains(&to) {
        return Err(EditError::Refused(format!(
            "unknown domain {to}: spec.domains has [{}]; pass --to one of them",
            names.join(", ")
        )));
    }
    let deactivate_index = match deactivate {
        None => None,
        Some(d) if d == to => {
            return Err(EditError::Refused(format!(
                "--deactivate {d} is the new primary: applications cannot run on an inactive domain; deactivate the \
                 failed domain instead"
            )));
        }
        Some(d) => Some(names.iter().position(|n| *n == d).ok_or_else(|| {
            EditError::Refused(format!(
                "unknown domain {d}: spec.domains has [{}]; pass --deactivate one of them",
                names.join(", ")
            ))
        })?),
    };
    let primary_changes = from != to;
    let active_changes = deactivate_index.is_some_and(|i| domains[i].1 != Some(false));
    if !primary_changes && !active_changes {
        return Err(EditError::Refused(format!(
            "{to} is already the primary; nothing to commit"
        )));
    }

    // Locate and replace the scalars (later spans first, so earlier offsets stay valid).
    let lines = Lines::new(doc);
    let spec_block = lines.block_of_top_level_key("spec")?;
    let mut edits: Vec<(std::ops::Range<usize>, String)> = Vec::new();
    if primary_changes {
        let span = lines.scalar_of_key(&spec_block, "primary")?;
        let replacement = format_scalar(&doc[span.clone()], to);
        edits.push((span, replacement));
    }
    if let (Some(i), true) = (deactivate_index, active_changes) {
        edits.push(lines.domain_active_edit(&spec_block, &domains[i].0)?);
    }
    edits.sort_by_key(|(r, _)| std::cmp::Reverse(r.start));
    let mut new_doc = doc.to_string();
    for (r, s) in edits {
        new_doc.replace_range(r, &s);
    }

    let edited: Value = serde_yaml::from_str(&new_doc)
        .map_err(|e| EditError::Unsupported(format!("the edited document does not parse: {e}")))?;
    let mut expected = original.clone();
    if let Some(spec) = expected.get_mut("spec").and_then(Value::as_mapping_mut) {
        spec.insert(Value::from("primary"), Value::from(to));
        if let (Some(i), Some(seq)) = (
            deactivate_index,
            spec.get_mut("domains").and_then(Value::as_sequence_mut),
        ) && let Some(map) = seq.get_mut(i).and_then(Value::as_mapping_mut)
        {
            map.insert(Value::from("active"), Value::from(false));
        }
    }
    if edited != expected {
        return Err(EditError::Unsupported(
            "the layout of spec is not one the in-place editor can change safely".into(),
        ));
    }
    let mut out = String::with_capacity(text.len() + 32);
    out.push_str(&text[..range.start]);
    out.push_str(&new_doc);
    out.push_str(&text[range.end..]);
    Ok(PlanEdit {
        text: out,
        document: edited,
        from,
    })
}

/// Writes `value` in the style of the scalar it replaces (plain, single- or double-quoted).
fn format_scalar(old: &str, value: &str) -> String {
    if old.starts_with('\'') {
        return format!("'{}'", value.replace('\'', "''"));
    }
    let plain_safe = !value.is_empty()
        && value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '/'))
        && serde_yaml::from_str::<Value>(value)
            .ok()
            .as_ref()
            .and_then(Value::as_str)
            == Some(value);
    if old.starts_with('"') || !plain_safe {
        // A JSON string is a valid YAML double-quoted scalar.
        return serde_json::to_string(value).unwrap_or_else(|_| format!("\"{value}\""));
    }
    value.to_string()
}

/// One line of a document: byte offsets and indentation.
#[derive(Clone, Debug)]
struct Line {
    start: usize,
    /// End of content, before `\n` / `\r\n`.
    end: usize,
    indent: usize,
}

struct Lines<'a> {
    text: &'a str,
    lines: Vec<Line>,
    newline: &'static str,
}

/// A block of lines (indices into `Lines::lines`) whose keys sit at `indent`.
struct Block {
    lines: std::ops::Range<usize>,
    indent: usize,
}

impl<'a> Lines<'a> {
    fn new(text: &'a str) -> Self {
        let mut lines = Vec::new();
        let mut offset = 0;
        for raw in text.split_inclusive('\n') {
            let content = raw.trim_end_matches(['\n', '\r']);
            let indent = content.len() - content.trim_start_matches(' ').len();
            lines.push(Line {
                start: offset,
                end: offset + content.len(),
                indent,
            });
            offset += raw.len();
        }
        let newline = if text.contains("\r\n") { "\r\n" } else { "\n" };
        Lines {
            text,
            lines,
            newline,
        }
    }

    fn content(&self, i: usize) -> &'a str {
        &self.text[self.lines[i].start + self.lines[i].indent..self.lines[i].end]
    }

    /// Blank and comment-only lines carry no structure.
    fn is_structural(&self, i: usize) -> bool {
        let c = self.content(i);
        !c.is_empty() && !c.starts_with('#')
    }

    /// The value text after `key:` on line `i`, if the line is that key.
    fn key_value(&self, i: usize, key: &str) -> Option<usize> {
        let c = self.content(i);
        let rest = c.strip_prefix(key)?.strip_prefix(':')?;
        if !(rest.is_empty() || rest.starts_with([' ', '\t'])) {
            return None;
        }
        Some(self.lines[i].start + self.lines[i].indent + key.len() + 1)
    }

    /// The lines nested under line `i` (more indented than it), as a block with the indentation of its first key.
    fn nested(&self, i: usize) -> Block {
        let parent = self.lines[i].indent;
        let mut end = i + 1;
        let mut indent = None;
        for j in i + 1..self.lines.len() {
            if !self.is_structural(j) {
                continue;
            }
            if self.lines[j].indent <= parent {
                break;
            }
            indent.get_or_insert(self.lines[j].indent);
            end = j + 1;
        }
        Block {
            lines: i + 1..end,
            indent: indent.unwrap_or(parent + 2),
        }
    }

    fn block_of_top_level_key(&self, key: &str) -> Result<Block, EditError> {
        let i = (0..self.lines.len())
            .find(|&i| {
                self.is_structural(i)
                    && self.lines[i].indent == 0
                    && self.key_value(i, key).is_some()
            })
            .ok_or_else(|| EditError::Unsupported(format!("no top-level `{key}:` line")))?;
        let after = self.key_value(i, key).unwrap_or(self.lines[i].end);
        if !strip_comment(&self.text[after..self.lines[i].end])
            .trim()
            .is_empty()
        {
            return Err(EditError::Unsupported(format!(
                "`{key}:` is written in flow style"
            )));
        }
        Ok(self.nested(i))
    }

    fn find_key(&self, block: &Block, key: &str) -> Option<usize> {
        block.lines.clone().find(|&i| {
            self.is_structural(i)
                && self.lines[i].indent == block.indent
                && self.key_value(i, key).is_some()
        })
    }

    /// The byte span of the scalar value of `key` in `block` (on the key's line).
    fn scalar_of_key(&self, block: &Block, key: &str) -> Result<std::ops::Range<usize>, EditError> {
        let i = self
            .find_key(block, key)
            .ok_or_else(|| EditError::Unsupported(format!("no `{key}:` line in spec")))?;
        let after = self.key_value(i, key).unwrap_or(self.lines[i].end);
        scalar_span(self.text, after, self.lines[i].end).ok_or_else(|| {
            EditError::Unsupported(format!("`{key}:` has no single-line scalar value"))
        })
    }

    /// The edit that sets `active: false` on the domain named `name` in `spec.domains`.
    fn domain_active_edit(
        &self,
        spec: &Block,
        name: &str,
    ) -> Result<(std::ops::Range<usize>, String), EditError> {
        let i = self
            .find_key(spec, "domains")
            .ok_or_else(|| EditError::Unsupported("no `domains:` line in spec".into()))?;
        let after = self.key_value(i, "domains").unwrap_or(self.lines[i].end);
        let inline = strip_comment(&self.text[after..self.lines[i].end]).trim();
        if inline.starts_with('[') {
            // Flow sequence: find the `{...}` of the domain from here on.
            let end = self.text[after..]
                .find(']')
                .map(|e| after + e)
                .unwrap_or(self.text.len());
            return self.flow_mappings(after, end, name);
        }
        if !inline.is_empty() {
            return Err(EditError::Unsupported(
                "`domains:` has an unexpected inline value".into(),
            ));
        }
        // Block sequence: items are `-` lines at the first structural indentation after `domains:` (which may equal
        // the key's own indentation).
        let item_indent = (i + 1..self.lines.len())
            .find(|&j| self.is_structural(j))
            .filter(|&j| self.content(j).starts_with('-'))
            .map(|j| self.lines[j].indent)
            .ok_or_else(|| {
                EditError::Unsupported("spec.domains is not a block sequence of `-` items".into())
            })?;
        let mut j = i + 1;
        while j < self.lines.len() {
            if !self.is_structural(j) {
                j += 1;
                continue;
            }
            let line = &self.lines[j];
            if line.indent < item_indent
                || (line.indent == item_indent && !self.content(j).starts_with('-'))
            {
                break;
            }
            if line.indent == item_indent
                && let Some(edit) = self.block_item(j, name)?
            {
                return Ok(edit);
            }
            j += 1;
        }
        Err(EditError::Unsupported(format!(
            "domain {name} not found in the text of spec.domains"
        )))
    }

    /// Checks the sequence item starting on line `j`; returns the edit when it is the domain `name`.
    fn block_item(
        &self,
        j: usize,
        name: &str,
    ) -> Result<Option<(std::ops::Range<usize>, String)>, EditError> {
        let line = &self.lines[j];
        let after_dash = line.start + line.indent + 1;
        let rest = &self.text[after_dash..line.end];
        let first = rest.trim_start();
        if first.starts_with('{') {
            let end = line.end;
            return match self.flow_mappings(after_dash, end, name) {
                Ok(edit) => Ok(Some(edit)),
                Err(_) => Ok(None),
            };
        }
        // `- key: value` with the item's keys at the column of the first key.
        let key_col = line.indent + 1 + (rest.len() - first.len());
        let mut keys: Vec<(usize, usize)> = Vec::new(); // (line, offset of key)
        if !first.is_empty() && !first.starts_with('#') {
            keys.push((j, line.start + key_col));
        }
        let mut k = j + 1;
        while k < self.lines.len() {
            if self.is_structural(k) {
                if self.lines[k].indent <= line.indent {
                    break;
                }
                if self.lines[k].indent == key_col
                    || (keys.is_empty() && self.lines[k].indent > line.indent)
                {
                    keys.push((k, self.lines[k].start + self.lines[k].indent));
                }
            }
            k += 1;
        }
        let value_after = |(l, off): (usize, usize), key: &str| -> Option<usize> {
            let text = &self.text[off..self.lines[l].end];
            let rest = text.strip_prefix(key)?.strip_prefix(':')?;
            (rest.is_empty() || rest.starts_with([' ', '\t'])).then_some(off + key.len() + 1)
        };
        let Some(name_key) = keys
            .iter()
            .copied()
            .find(|k| value_after(*k, "name").is_some())
        else {
            return Ok(None);
        };
        let name_after = value_after(name_key, "name").unwrap_or(self.lines[name_key.0].end);
        let Some(name_span) = scalar_span(self.text, name_after, self.lines[name_key.0].end) else {
            return Ok(None);
        };
        if unquote(&self.text[name_span]) != name {
            return Ok(None);
        }
        if let Some(active_key) = keys
            .iter()
            .copied()
            .find(|k| value_after(*k, "active").is_some())
        {
            let after = value_after(active_key, "active").unwrap_or(self.lines[active_key.0].end);
            let span =
                scalar_span(self.text, after, self.lines[active_key.0].end).ok_or_else(|| {
                    EditError::Unsupported(format!("domain {name}: `active:` has no scalar value"))
                })?;
            return Ok(Some((span, "false".into())));
        }
        let (name_line, name_off) = name_key;
        let col = name_off - self.lines[name_line].start;
        let at = self.lines[name_line].end;
        Ok(Some((
            at..at,
            format!("{}{}active: false", self.newline, " ".repeat(col)),
        )))
    }

    /// Finds the flow mapping `{...}` with `name: <name>` between `from` and `to` and returns its `active` edit.
    fn flow_mappings(
        &self,
        from: usize,
        to: usize,
        name: &str,
    ) -> Result<(std::ops::Range<usize>, String), EditError> {
        let mut pos = from;
        while let Some(open) = self.text[pos..to].find('{').map(|o| pos + o) {
            let close = self.text[open..to]
                .find('}')
                .map(|c| open + c)
                .ok_or_else(|| {
                    EditError::Unsupported("unterminated flow mapping in spec.domains".into())
                })?;
            let mut entries = Vec::new();
            let mut entry_start = open + 1;
            for (k, c) in self.text[open + 1..close].char_indices() {
                if c == ',' {
                    entries.push(entry_start..open + 1 + k);
                    entry_start = open + 1 + k + 1;
                }
            }
            entries.push(entry_start..close);
            let field = |key: &str| {
                entries.iter().find_map(|e| {
                    let t = &self.text[e.clone()];
                    let lead = t.len() - t.trim_start().len();
                    t.trim_start().strip_prefix(key)?.strip_prefix(':')?;
                    let vstart = e.start + lead + key.len() + 1;
                    scalar_span(self.text, vstart, e.end)
                })
            };
            if field("name").is_some_and(|s| unquote(&self.text[s]) == name) {
                if let Some(span) = field("active") {
                    return Ok((span, "false".into()));
                }
                let body_end = open + 1 + self.text[open + 1..close].trim_end().len();
                return Ok((body_end..body_end, ", active: false".into()));
            }
            pos = close + 1;
        }
        Err(EditError::Unsupported(format!(
            "domain {name} not found in the flow mappings of spec.domains"
        )))
    }
}

fn strip_comment(s: &str) -> &str {
    // A `#` starts a comment at the start or after whitespace (outside quotes, which the callers' values avoid).
    let bytes = s.as_bytes();
    for (i, b) in bytes.iter().enumerate() {
        if *b == b'#' && (i == 0 || bytes[i - 1] == b' ' || bytes[i - 1] == b'\t') {
            return &s[..i];
        }
    }
    s
}

/// The span of a single-line scalar that starts after `from` (skipping blanks) and ends before `to`, a comment, or
/// a flow indicator.
fn scalar_span(text: &str, from: usize, to: usize) -> Option<std::ops::Range<usize>> {
    let segment = &text[from..to];
    let start = from + (segment.len() - segment.trim_start().len());
    let rest = &text[start..to];
    match rest.chars().next()? {
        '"' => {
            let mut escaped = false;
            for (i, c) in rest.char_indices().skip(1) {
                match c {
                    '\\' if !escaped => escaped = true,
                    '"' if !escaped => return Some(start..start + i + 1),
                    _ => escaped = false,
                }
            }
            None
        }
        '\'' => {
            let b = rest.as_bytes();
            let mut i = 1;
            while i < b.len() {
                if b[i] == b'\'' {
                    if b.get(i + 1) == Some(&b'\'') {
                        i += 2;
                        continue;
                    }
                    return Some(start..start + i + 1);
                }
                i += 1;
            }
            None
        }
        '#' | '{' | '[' | '|' | '>' | '&' | '*' | '!' => None,
        _ => {
            let value = strip_comment(rest);
            let value = value.split([',', '}', ']']).next().unwrap_or("").trim_end();
            (!value.is_empty()).then(|| start..start + value.len())
        }
    }
}

fn unquote(scalar: &str) -> String {
    if scalar.starts_with('"') || scalar.starts_with('\'') {
        serde_yaml::from_str::<String>(scalar).unwrap_or_else(|_| scalar.to_string())
    } else {
        scalar.to_string()
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    fn data(name: &str) -> String {
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/data/failover")
            .join(name);
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
    }

    #[test]
    fn edits_only_the_primary_scalar_and_keeps_comments() {
        let text = data("async.yaml");
        let edit = edit_plan(&text, 0, "us-east-1b", None).unwrap();
        assert_eq!(edit.from, "us-east-1a");
        let expected = text.replacen(
            "primary: us-east-1a   # runs",
            "primary: us-east-1b   # runs",
            1,
        );
        assert_eq!(edit.text, expected);
    }

    #[test]
    fn keeps_the_quoting_style() {
        let text = "kind: DRPlan\nmetadata: {name: p}\nspec:\n  primary: \"a\" # q\n  domains: [{name: a}, {name: 'b'}]\n";
        let edit = edit_plan(text, 0, "b", None).unwrap();
        assert_eq!(edit.text, text.replace("primary: \"a\"", "primary: \"b\""));
        let single = text.replace("\"a\"", "'a'");
        assert!(
            edit_plan(&single, 0, "b", None)
                .unwrap()
                .text
                .contains("primary: 'b' # q")
        );
    }

    #[test]
    fn deactivates_a_domain_in_flow_block_and_inline_styles() {
        let text = data("metro.yaml");
        let edit = edit_plan(&text, 1, "us-east-1b", Some("us-east-1a")).unwrap();
        let expected = text
            .replacen("primary: us-east-1a", "primary: us-east-1b", 1)
            .replacen(
                "{name: us-east-1a, active: true}",
                "{name: us-east-1a, active: false}",
                1,
            );
        assert_eq!(edit.text, expected);

        let block = "kind: DRPlan\nmetadata:\n  name: p\nspec:\n  mode: metro\n  primary: a\n  domains:\n  - name: a  # first\n    # note\n  - name: b\n    active: true\n";
        let edit = edit_plan(block, 0, "b", Some("a")).unwrap();
        assert_eq!(
            edit.text,
            "kind: DRPlan\nmetadata:\n  name: p\nspec:\n  mode: metro\n  primary: b\n  domains:\n  - name: a  # first\n    active: false\n    # note\n  - name: b\n    active: true\n"
        );
        let inline = "kind: DRPlan\nmetadata: {name: p}\nspec:\n  mode: metro\n  primary: b\n  domains: [{name: a}, {name: b}]\n";
        let edit = edit_plan(inline, 0, "a", Some("b")).unwrap();
        assert!(
            edit.text
                .ends_with("primary: a\n  domains: [{name: a}, {name: b, active: false}]\n"),
            "{}",
            edit.text
        );
    }

    #[test]
    fn refuses_unknown_domains_and_no_ops() {
        let text = data("async.yaml");
        let err = edit_plan(&text, 0, "eu-west-1a", None).unwrap_err();
        assert_eq!(
            err.to_string(),
            "unknown domain eu-west-1a: spec.domains has [us-east-1a, us-east-1b]; pass --to one of them"
        );
        let err = edit_plan(&text, 0, "us-east-1a", None).unwrap_err();
        assert!(err.to_string().contains("already the primary"), "{err}");
        let err = edit_plan(&text, 0, "us-east-1b", Some("us-east-1b")).unwrap_err();
        assert!(err.to_string().contains("is the new primary"), "{err}");
    }

    #[test]
    fn a_layout_the_editor_cannot_prove_is_refused() {
        let text = "kind: DRPlan\nmetadata: {name: p}\nspec: {primary: a, domains: [{name: a}, {name: b}]}\n";
        assert!(matches!(
            edit_plan(text, 0, "b", None),
            Err(EditError::Unsupported(_))
        ));
    }
}
