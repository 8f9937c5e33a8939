//! The span editor `failover` uses: changes a DRPlan's `spec.primary` (and a domain's `active`) in the YAML text
//! itself, and writes or removes the declaration `spec.failover.disaster`, so comments, quoting and layout stay as
//! they were. Pure.
//!
//! It locates the exact spans by following indentation, block, flow and inline styles, and proves each edit by
//! re-parsing: the result must equal the original document with exactly the intended fields changed, or the edit
//! is refused as one it cannot prove.

use std::ops::Range;

use serde_yaml::Value;
use thiserror::Error;

use crate::plan::types::Disaster;

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

/// The change [`edit_plan`] makes.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct PlanChange<'a> {
    /// The domain that becomes `spec.primary`.
    pub to: &'a str,
    /// A domain whose `active` becomes `false` (metro).
    pub deactivate: Option<&'a str>,
    /// `Some`: a disaster is declared, written as `spec.failover.disaster` (replacing an earlier declaration).
    /// `None`: a planned change, which removes an earlier declaration.
    pub disaster: Option<&'a Disaster>,
}

/// What happened to `spec.failover.disaster`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Declaration {
    /// Neither there before nor written.
    Absent,
    /// Written (inserted, or replacing an earlier one).
    Declared,
    /// An earlier declaration removed (with `spec.failover` when it held nothing else).
    Cleared,
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
    /// What the edit did to `spec.failover.disaster`.
    pub declaration: Declaration,
}

/// Edits document `index` of `text` (a DRPlan): `spec.primary` becomes `change.to`, with `change.deactivate` that
/// domain's `active` becomes `false` (added when absent), and `spec.failover.disaster` is written (a declaration)
/// or removed (a planned change; `spec.failover` goes too when the declaration was all it held). Nothing else
/// changes: the result is re-parsed and must equal the original document with exactly those fields changed, or
/// the edit is refused.
pub fn edit_plan(text: &str, index: usize, change: &PlanChange) -> Result<PlanEdit, EditError> {
    let to = change.to;
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
    let deactivate_index = match change.deactivate {
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
    if change.disaster.is_some_and(|d| d.lost == to) {
        return Err(EditError::Refused(format!(
            "{to} would be declared lost and become the primary: a disaster declares the old primary lost and \
             moves the applications away from it; pass --to the domain that takes over"
        )));
    }
    let primary_changes = from != to;
    let active_changes = deactivate_index.is_some_and(|i| domains[i].1 != Some(false));
    if !primary_changes && !active_changes && change.disaster.is_none() {
        return Err(EditError::Refused(format!(
            "{to} is already the primary; nothing to commit"
        )));
    }
    let failover = spec.get("failover");
    let declared_before = failover.and_then(|f| f.get("disaster")).is_some();
    let declaration = match (change.disaster, declared_before) {
        (Some(_), _) => Declaration::Declared,
        (None, true) => Declaration::Cleared,
        (None, false) => Declaration::Absent,
    };
    let disaster_value = change
        .disaster
        .map(serde_yaml::to_value)
        .transpose()
        .map_err(|e| {
            EditError::Unsupported(format!("the declaration does not serialize as YAML: {e}"))
        })?;

    // Locate and replace the spans (later spans first, so earlier offsets stay valid).
    let lines = Lines::new(doc);
    let spec_block = lines.block_of_top_level_key("spec")?;
    let mut edits: Vec<(Range<usize>, String)> = Vec::new();
    if primary_changes {
        let span = lines.scalar_of_key(&spec_block, "primary")?;
        let replacement = format_scalar(&doc[span.clone()], to);
        edits.push((span, replacement));
    }
    if let (Some(i), true) = (deactivate_index, active_changes) {
        edits.push(lines.domain_active_edit(&spec_block, &domains[i].0)?);
    }
    let mut failover_after = FailoverAfter::Kept;
    if declaration != Declaration::Absent {
        let (span, replacement, after) =
            lines.disaster_edit(&spec_block, failover.is_some(), change.disaster)?;
        edits.push((span, replacement));
        failover_after = after;
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
        expect_declaration(spec, disaster_value, declaration, failover_after);
    }
    if edited != expected {
        return Err(EditError::Unsupported(
            "the layout of spec is not one the in-place editor can change safely: the edited text would change \
             more than the intended fields"
                .into(),
        ));
    }
    let mut out = String::with_capacity(text.len() + 160);
    out.push_str(&text[..range.start]);
    out.push_str(&new_doc);
    out.push_str(&text[range.end..]);
    Ok(PlanEdit {
        text: out,
        document: edited,
        from,
        declaration,
    })
}

/// What the text edit of a cleared declaration left of `failover:`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum FailoverAfter {
    /// The `failover:` line stays (with its other keys, or only its comments: then its value is null).
    Kept,
    /// The `failover:` line went with the declaration, its only content.
    Removed,
}

/// The original `spec` turned into what the edited text must read as, for `spec.failover.disaster`.
fn expect_declaration(
    spec: &mut serde_yaml::Mapping,
    disaster: Option<Value>,
    declaration: Declaration,
    failover_after: FailoverAfter,
) {
    let key = Value::from("failover");
    match (declaration, disaster) {
        (Declaration::Declared, Some(disaster)) => {
            let failover = spec
                .entry(key)
                .or_insert_with(|| Value::Mapping(Default::default()));
            if !failover.is_mapping() {
                // A `failover:` line without a value (null) gets the declaration as its first key.
                *failover = Value::Mapping(Default::default());
            }
            if let Some(map) = failover.as_mapping_mut() {
                map.insert(Value::from("disaster"), disaster);
            }
        }
        (Declaration::Cleared, _) if failover_after == FailoverAfter::Removed => {
            spec.remove(&key);
        }
        (Declaration::Cleared, _) => {
            if let Some(failover) = spec.get_mut(&key) {
                if let Some(map) = failover.as_mapping_mut() {
                    map.remove("disaster");
                }
                if failover.as_mapping().is_some_and(|m| m.is_empty()) {
                    *failover = Value::Null;
                }
            }
        }
        _ => {}
    }
}

/// The lines of a `disaster:` mapping in block style at `indent`, its fields `step` deeper, joined by `newline`
/// (no leading or trailing newline). The domain is plain when that reads back as the same string; the times and
/// the message are double-quoted (a plain RFC 3339 time is a timestamp to YAML 1.1 readers).
fn disaster_lines(d: &Disaster, indent: usize, step: usize, newline: &str) -> String {
    let inner = " ".repeat(indent + step);
    let mut out = format!("{}disaster:", " ".repeat(indent));
    let mut field = |key: &str, value: String| {
        out.push_str(newline);
        out.push_str(&inner);
        out.push_str(key);
        out.push_str(": ");
        out.push_str(&value);
    };
    field("lost", format_scalar("", &d.lost));
    for (key, value) in [
        ("declaredAt", &d.declared_at),
        ("message", &d.message),
        ("dataAsOf", &d.data_as_of),
    ] {
        if let Some(value) = value {
            field(key, format_scalar("\"", value));
        }
    }
    out
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

    /// The edit of `spec.failover.disaster`: `declare` written (replacing an earlier declaration, or inserted as
    /// the last key of `failover:`, which is added as the last key of spec when absent), or with `None` the
    /// declaration removed, with the `failover:` line when nothing else, not even a comment, is left under it.
    /// `has_failover`: whether the parsed spec has a `failover` key (a text without the line is then refused).
    fn disaster_edit(
        &self,
        spec: &Block,
        has_failover: bool,
        declare: Option<&Disaster>,
    ) -> Result<(Range<usize>, String, FailoverAfter), EditError> {
        let nl = self.newline;
        let Some(f) = self.find_key(spec, "failover") else {
            if has_failover {
                return Err(EditError::Unsupported(
                    "spec.failover is not written as a `failover:` line of spec".into(),
                ));
            }
            let Some(d) = declare else {
                return Err(EditError::Unsupported(
                    "spec.failover.disaster not found in the text".into(),
                ));
            };
            // A new `failover:` after the last line of spec, one indentation step (spec's own) per level.
            let last = spec.lines.clone().last().ok_or_else(|| {
                EditError::Unsupported("spec has no lines to add `failover:` after".into())
            })?;
            let step = spec.indent;
            let at = self.lines[last].end;
            let text = format!(
                "{nl}{}failover:{nl}{}",
                " ".repeat(spec.indent),
                disaster_lines(d, spec.indent + step, step, nl)
            );
            return Ok((at..at, text, FailoverAfter::Kept));
        };
        let after = self.key_value(f, "failover").unwrap_or(self.lines[f].end);
        if !strip_comment(&self.text[after..self.lines[f].end])
            .trim()
            .is_empty()
        {
            return Err(EditError::Unsupported(
                "spec.failover is written in flow style or with an inline value (`failover: {...}`); write it as a \
                 block mapping, one key per line"
                    .into(),
            ));
        }
        let block = self.nested(f);
        let step = block.indent.saturating_sub(self.lines[f].indent).max(1);
        let Some(d_line) = self.find_key(&block, "disaster") else {
            let Some(d) = declare else {
                return Err(EditError::Unsupported(
                    "spec.failover.disaster is not written as a `disaster:` line of spec.failover"
                        .into(),
                ));
            };
            let at = self.lines[last_line(&block, f)].end;
            let text = format!("{nl}{}", disaster_lines(d, block.indent, step, nl));
            return Ok((at..at, text, FailoverAfter::Kept));
        };
        // The declaration's lines, from the end of the line before `disaster:` to the end of its last line, so an
        // insertion and the removal of what it inserted leave the text as it was.
        let d_block = self.nested(d_line);
        let end = self.lines[last_line(&d_block, d_line)].end;
        if let Some(d) = declare {
            let text = format!(
                "{nl}{}",
                disaster_lines(d, self.lines[d_line].indent, step, nl)
            );
            return Ok((self.lines[d_line - 1].end..end, text, FailoverAfter::Kept));
        }
        // Removing `failover:` too needs it to hold the declaration and nothing else: no other key and no comment
        // (on its line, before the declaration, or indented under it after the declaration).
        let d_last = last_line(&d_block, d_line);
        let comment_after = (d_last + 1..self.lines.len())
            .take_while(|&j| !self.is_structural(j))
            .any(|j| !self.content(j).is_empty() && self.lines[j].indent > self.lines[f].indent);
        let only_declaration = last_line(&block, f) == d_last
            && !comment_after
            && self.text[after..self.lines[f].end].trim().is_empty()
            && (f + 1..d_line).all(|j| self.content(j).is_empty());
        if only_declaration {
            Ok((
                self.lines[f - 1].end..end,
                String::new(),
                FailoverAfter::Removed,
            ))
        } else {
            Ok((
                self.lines[d_line - 1].end..end,
                String::new(),
                FailoverAfter::Kept,
            ))
        }
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

/// The last line of `block`, or `owner` (the line of its key) when nothing is nested under it.
fn last_line(block: &Block, owner: usize) -> usize {
    if block.lines.is_empty() {
        owner
    } else {
        block.lines.end - 1
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

    fn planned(
        text: &str,
        index: usize,
        to: &str,
        deactivate: Option<&str>,
    ) -> Result<PlanEdit, EditError> {
        let change = PlanChange {
            to,
            deactivate,
            disaster: None,
        };
        edit_plan(text, index, &change)
    }

    fn declare(
        text: &str,
        index: usize,
        to: &str,
        deactivate: Option<&str>,
        disaster: &Disaster,
    ) -> Result<PlanEdit, EditError> {
        let change = PlanChange {
            to,
            deactivate,
            disaster: Some(disaster),
        };
        edit_plan(text, index, &change)
    }

    /// The declaration `async-disaster.yaml` holds.
    fn site_a_lost() -> Disaster {
        Disaster {
            lost: "us-east-1a".into(),
            declared_at: Some("2026-11-22T16:05:00Z".into()),
            message: Some("site A lost power: \"no ETA\"".into()),
            data_as_of: Some("2026-11-22T15:53:00Z".into()),
        }
    }

    #[test]
    fn edits_only_the_primary_scalar_and_keeps_comments() {
        let text = data("async.yaml");
        let edit = planned(&text, 0, "us-east-1b", None).unwrap();
        assert_eq!(edit.from, "us-east-1a");
        assert_eq!(edit.declaration, Declaration::Absent);
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
        let edit = planned(text, 0, "b", None).unwrap();
        assert_eq!(edit.text, text.replace("primary: \"a\"", "primary: \"b\""));
        let single = text.replace("\"a\"", "'a'");
        assert!(
            planned(&single, 0, "b", None)
                .unwrap()
                .text
                .contains("primary: 'b' # q")
        );
    }

    #[test]
    fn deactivates_a_domain_in_flow_block_and_inline_styles() {
        let text = data("metro.yaml");
        let edit = planned(&text, 1, "us-east-1b", Some("us-east-1a")).unwrap();
        let expected = text
            .replacen("primary: us-east-1a", "primary: us-east-1b", 1)
            .replacen(
                "{name: us-east-1a, active: true}",
                "{name: us-east-1a, active: false}",
                1,
            );
        assert_eq!(edit.text, expected);

        let block = "kind: DRPlan\nmetadata:\n  name: p\nspec:\n  mode: metro\n  primary: a\n  domains:\n  - name: a  # first\n    # note\n  - name: b\n    active: true\n";
        let edit = planned(block, 0, "b", Some("a")).unwrap();
        assert_eq!(
            edit.text,
            "kind: DRPlan\nmetadata:\n  name: p\nspec:\n  mode: metro\n  primary: b\n  domains:\n  - name: a  # first\n    active: false\n    # note\n  - name: b\n    active: true\n"
        );
        let inline = "kind: DRPlan\nmetadata: {name: p}\nspec:\n  mode: metro\n  primary: b\n  domains: [{name: a}, {name: b}]\n";
        let edit = planned(inline, 0, "a", Some("b")).unwrap();
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
        let err = planned(&text, 0, "eu-west-1a", None).unwrap_err();
        assert_eq!(
            err.to_string(),
            "unknown domain eu-west-1a: spec.domains has [us-east-1a, us-east-1b]; pass --to one of them"
        );
        let err = planned(&text, 0, "us-east-1a", None).unwrap_err();
        assert!(err.to_string().contains("already the primary"), "{err}");
        let err = planned(&text, 0, "us-east-1b", Some("us-east-1b")).unwrap_err();
        assert!(err.to_string().contains("is the new primary"), "{err}");
        let err = declare(&text, 0, "us-east-1a", None, &site_a_lost()).unwrap_err();
        assert!(
            matches!(&err, EditError::Refused(m) if m.contains("would be declared lost")),
            "{err}"
        );
        // A declaration on a plan whose primary already moved (a planned failover the old primary cannot carry
        // out) writes only the declaration.
        let moved = planned(&text, 0, "us-east-1b", None).unwrap().text;
        let edit = declare(&moved, 0, "us-east-1b", None, &site_a_lost()).unwrap();
        assert_eq!(edit.declaration, Declaration::Declared);
        assert_eq!(edit.from, "us-east-1b");
        assert!(edit.text.contains("lost: us-east-1a"), "{}", edit.text);
    }

    #[test]
    fn a_layout_the_editor_cannot_prove_is_refused() {
        let text = "kind: DRPlan\nmetadata: {name: p}\nspec: {primary: a, domains: [{name: a}, {name: b}]}\n";
        assert!(matches!(
            planned(text, 0, "b", None),
            Err(EditError::Unsupported(_))
        ));
    }

    #[test]
    fn a_declaration_is_written_after_the_other_failover_settings() {
        let edit = declare(&data("async.yaml"), 0, "us-east-1b", None, &site_a_lost()).unwrap();
        assert_eq!(edit.declaration, Declaration::Declared);
        assert_eq!(edit.text, data("async-disaster.yaml"));
        let plan: crate::plan::DRPlan =
            serde_json::from_value(serde_json::to_value(&edit.document).unwrap()).unwrap();
        assert_eq!(plan.spec.disaster(), Some(&site_a_lost()));
    }

    #[test]
    fn the_next_planned_failover_clears_the_declaration() {
        let edit = planned(&data("async-disaster.yaml"), 0, "us-east-1a", None).unwrap();
        assert_eq!(edit.declaration, Declaration::Cleared);
        assert_eq!(edit.text, data("async.yaml"));
    }

    #[test]
    fn spec_failover_is_added_for_a_declaration_and_removed_with_it() {
        let text = data("metro.yaml");
        let disaster = Disaster {
            lost: "us-east-1a".into(),
            declared_at: Some("2026-11-22T16:05:00Z".into()),
            ..Default::default()
        };
        let edit = declare(&text, 1, "us-east-1b", Some("us-east-1a"), &disaster).unwrap();
        let expected = text
            .replacen("primary: us-east-1a", "primary: us-east-1b", 1)
            .replacen(
                "{name: us-east-1a, active: true}",
                "{name: us-east-1a, active: false}",
                1,
            )
            + "  failover:\n    disaster:\n      lost: us-east-1a\n      declaredAt: \"2026-11-22T16:05:00Z\"\n";
        assert_eq!(edit.text, expected);

        // Failing back (after reactivating the domain by hand) removes what the declaration added, all of it.
        let reactivated = edit.text.replacen(
            "{name: us-east-1a, active: false}",
            "{name: us-east-1a, active: true}",
            1,
        );
        let back = planned(&reactivated, 1, "us-east-1a", None).unwrap();
        assert_eq!(back.declaration, Declaration::Cleared);
        assert_eq!(back.text, text);
    }

    #[test]
    fn clearing_keeps_the_comments_of_the_failover_block() {
        let text = data("declared.yaml");
        let edit = planned(&text, 0, "us-east-1a", None).unwrap();
        let expected = text.replacen("primary: \"us-east-1b\"", "primary: \"us-east-1a\"", 1).replacen(
            "    disaster:\n      lost: us-east-1a\n      declaredAt: \"2026-11-22T16:05:00Z\"   # from the commit\n",
            "",
            1,
        );
        assert_eq!(edit.text, expected);
        // `failover:` stays for its comment; its value reads as null, which the plan reads as no settings.
        assert_eq!(
            edit.document["spec"]["failover"],
            Value::Null,
            "{}",
            edit.text
        );
        // Declared again and cleared again, the comment still holds `failover:` in place.
        let again = declare(
            &edit.text,
            0,
            "us-east-1b",
            None,
            &Disaster {
                lost: "us-east-1a".into(),
                ..Default::default()
            },
        )
        .unwrap();
        assert!(
            again
                .text
                .contains("  failover:\n    disaster:\n      lost: us-east-1a\n    # the on-call"),
            "{}",
            again.text
        );
        let cleared = planned(&again.text, 0, "us-east-1a", None).unwrap();
        assert_eq!(cleared.text, edit.text);
    }

    #[test]
    fn a_new_declaration_replaces_the_earlier_one_in_place() {
        let text = data("declared.yaml");
        let disaster = Disaster {
            lost: "us-east-1b".into(),
            declared_at: Some("2026-11-23T08:00:00Z".into()),
            message: Some("site B flooded".into()),
            data_as_of: None,
        };
        let edit = declare(&text, 0, "us-east-1a", None, &disaster).unwrap();
        let expected = text.replacen("primary: \"us-east-1b\"", "primary: \"us-east-1a\"", 1).replacen(
            "    disaster:\n      lost: us-east-1a\n      declaredAt: \"2026-11-22T16:05:00Z\"   # from the commit\n",
            "    disaster:\n      lost: us-east-1b\n      declaredAt: \"2026-11-23T08:00:00Z\"\n      message: \"site B flooded\"\n",
            1,
        );
        assert_eq!(edit.text, expected);
    }

    #[test]
    fn a_flow_style_failover_is_refused_only_when_it_must_change() {
        let text = data("flow-failover.yaml");
        let err = declare(&text, 0, "us-east-1b", None, &site_a_lost()).unwrap_err();
        assert!(
            matches!(&err, EditError::Unsupported(m) if m.contains("flow style")),
            "{err}"
        );
        // A planned failover leaves it alone.
        let edit = planned(&text, 0, "us-east-1b", None).unwrap();
        assert_eq!(edit.declaration, Declaration::Absent);
        let declared = "kind: DRPlan\nmetadata: {name: p}\nspec:\n  primary: a\n  domains: [{name: a}, {name: b}]\n  failover: {disaster: {lost: b}}\n";
        let err = planned(declared, 0, "b", None).unwrap_err();
        assert!(matches!(err, EditError::Unsupported(_)), "{err}");
    }

    #[test]
    fn the_reparse_refuses_an_edit_that_would_change_anything_else() {
        // A keep-chomping block scalar ends spec: its trailing blank lines are part of its value, and a key
        // inserted after its last line would take them away from it.
        let text = "kind: DRPlan\nmetadata: {name: p}\nspec:\n  primary: a\n  domains: [{name: a}, {name: b}]\n  notes: |+\n    runbook\n\n\n";
        let err = declare(
            text,
            0,
            "b",
            None,
            &Disaster {
                lost: "a".into(),
                ..Default::default()
            },
        )
        .unwrap_err();
        assert_eq!(
            err,
            EditError::Unsupported(
                "the layout of spec is not one the in-place editor can change safely: the edited text would \
                 change more than the intended fields"
                    .into()
            )
        );
        // A quoted scalar whose second line reads like a `disaster:` key: the text search takes it for the
        // declaration, and the edit would change the scalar instead; the re-parse sees it.
        let quoted = "kind: DRPlan\nmetadata: {name: p}\nspec:\n  primary: b\n  domains: [{name: a}, {name: b}]\n  failover:\n    note: \"x\n    disaster: y\n    z\"\n    disaster:\n      lost: a\n";
        let err = planned(quoted, 0, "a", None).unwrap_err();
        assert!(
            err.to_string().contains("more than the intended fields"),
            "{err}"
        );
        let err = declare(
            quoted,
            0,
            "a",
            None,
            &Disaster {
                lost: "b".into(),
                ..Default::default()
            },
        )
        .unwrap_err();
        assert!(
            err.to_string().contains("more than the intended fields"),
            "{err}"
        );
    }

    #[test]
    fn crlf_files_keep_their_line_endings() {
        let text = data("async.yaml").replace('\n', "\r\n");
        let edit = declare(&text, 0, "us-east-1b", None, &site_a_lost()).unwrap();
        assert_eq!(edit.text, data("async-disaster.yaml").replace('\n', "\r\n"));
        let back = planned(&edit.text, 0, "us-east-1a", None).unwrap();
        assert_eq!(back.text, text);
    }
}
