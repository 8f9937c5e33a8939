//! Server-side apply and `metadata.managedFields` bookkeeping, after kube-apiserver's structured-merge-diff.
//!
//! In: the live object (or none, for a create), the applied configuration or the object about to be stored, and a
//! [`FieldManagerCtx`] naming the manager. Out: the object to store with `metadata.managedFields` rewritten, or
//! [`ApplyConflicts`] carrying the apiserver's exact 409 message and causes.
//!
//! Ownership is tracked as field sets in the FieldsV1 format: `f:<field>` for struct and map members,
//! `k:{"name":"nginx"}` for items of associative lists (keys from the built-in Go types, see
//! [`crate::patch`]), `v:<json>` for items of set lists, and `.` for "this node itself". Apply owners own what
//! their configuration mentions; Update owners own what their writes changed. A field is in conflict when another
//! manager owns it and the apply would change its value; equal values are shared.
//!
//! What the caller does: defaulting, resourceVersion, generation, and the status/spec split (strip `.status`
//! from main-resource writes of kinds that have a status subresource before calling; on `/status` writes pass
//! `subresource: Some("status")` and only `.status` is applied). If nothing but managedFields timestamps would
//! change, both functions return the live object unchanged, so the caller can skip the write (no RV bump).

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use crate::patch::{
    ITEM, ListSemantics, is_atomic_map, is_builtin, json_equal, key_default, list_semantics,
};

/// Who is writing, for the managedFields entry and for list semantics.
pub struct FieldManagerCtx<'a> {
    /// fieldManager (or User-Agent prefix for non-apply writes).
    pub manager: &'a str,
    /// e.g. "apps/v1".
    pub api_version: &'a str,
    /// RFC 3339, second precision, e.g. "2026-01-01T00:00:00Z".
    pub time: &'a str,
    /// Some("status") / Some("scale") for subresource writes.
    pub subresource: Option<&'a str>,
    /// e.g. "apps/Deployment", "/ConfigMap"; selects associative-list keys (built-ins) — CRs treat lists atomic.
    pub group_kind: &'a str,
}

/// One field another manager owns and the apply would change.
#[derive(Debug, Clone)]
pub struct FieldConflict {
    pub manager: String,
    /// "Apply" or "Update".
    pub operation: String,
    pub api_version: String,
    /// The owner's managedFields time (may be empty when the entry had none).
    pub time: String,
    pub subresource: Option<String>,
    /// As the apiserver prints paths: ".spec.replicas", `.spec.template.spec.containers[name="nginx"].image`.
    pub field: String,
}

/// An apply refused because of conflicts (HTTP 409 Conflict).
#[derive(Debug, Clone)]
pub struct ApplyConflicts {
    pub conflicts: Vec<FieldConflict>,
}

impl std::fmt::Display for ApplyConflicts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message())
    }
}

impl std::error::Error for ApplyConflicts {}

impl FieldConflict {
    /// The owner as the apiserver's conflict messages print it.
    fn owner(&self) -> String {
        let mut out = format!("{:?}", self.manager);
        if let Some(sub) = &self.subresource {
            out.push_str(&format!(" with subresource {sub:?}"));
        }
        if self.operation == "Update" {
            out.push_str(&format!(" using {}", self.api_version));
            if !self.time.is_empty() {
                out.push_str(&format!(" at {}", self.time));
            }
        }
        out
    }

    /// The manager identity the apiserver groups and sorts conflicts by (its JSON manager identifier).
    fn identity(&self) -> String {
        let mut id = Map::new();
        id.insert("manager".into(), Value::String(self.manager.clone()));
        id.insert("operation".into(), Value::String(self.operation.clone()));
        if self.operation != "Apply" {
            id.insert("apiVersion".into(), Value::String(self.api_version.clone()));
        }
        if let Some(sub) = &self.subresource {
            id.insert("subresource".into(), Value::String(sub.clone()));
        }
        Value::Object(id).to_string()
    }
}

impl ApplyConflicts {
    /// The apiserver's exact message: `Apply failed with 1 conflict: conflict with "m" using apps/v1 at <time>: .spec.replicas`
    /// (an Apply owner prints just `"m"`; an Update owner `"m" using apps/v1`; subresource adds `with subresource "status"`;
    /// several conflicts as the apiserver formats them).
    pub fn message(&self) -> String {
        if let [only] = self.conflicts.as_slice() {
            return format!(
                "Apply failed with 1 conflict: conflict with {}: {}",
                only.owner(),
                only.field
            );
        }
        let mut groups: BTreeMap<String, (String, Vec<&str>)> = BTreeMap::new();
        for conflict in &self.conflicts {
            groups
                .entry(conflict.identity())
                .or_insert_with(|| (conflict.owner(), Vec::new()))
                .1
                .push(&conflict.field);
        }
        let mut lines = Vec::new();
        for (owner, fields) in groups.values() {
            lines.push(format!("conflicts with {owner}:"));
            lines.extend(fields.iter().map(|field| format!("- {field}")));
        }
        format!(
            "Apply failed with {} conflicts: {}",
            self.conflicts.len(),
            lines.join("\n")
        )
    }

    /// `details.causes` entries: [{"reason":"FieldManagerConflict","message":"conflict with ...","field":".spec.replicas"}]
    pub fn causes(&self) -> Vec<Value> {
        self.conflicts
            .iter()
            .map(|c| {
                serde_json::json!({
                    "reason": "FieldManagerConflict",
                    "message": format!("conflict with {}", c.owner()),
                    "field": c.field,
                })
            })
            .collect()
    }
}

// ---------------------------------------------------------------------------------------------------------------
// Field sets
// ---------------------------------------------------------------------------------------------------------------

/// One step of a field path; the variant order is the order structured-merge-diff sorts and serialises them in.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum PathElement {
    /// `f:<name>`: a struct field or map key.
    Field(String),
    /// `k:<json>`: an associative-list item by its key fields (canonical JSON object, keys sorted).
    Key(String),
    /// `v:<json>`: a set-list item by its value (canonical JSON).
    Value(String),
    /// `i:<n>`: a list item by position (only read from stored entries; never produced here).
    Index(usize),
}

impl PathElement {
    fn fields_v1_key(&self) -> String {
        match self {
            PathElement::Field(name) => format!("f:{name}"),
            PathElement::Key(json) => format!("k:{json}"),
            PathElement::Value(json) => format!("v:{json}"),
            PathElement::Index(i) => format!("i:{i}"),
        }
    }

    fn parse(key: &str) -> Option<Self> {
        let (prefix, rest) = key.split_once(':')?;
        match prefix {
            "f" => Some(PathElement::Field(rest.to_string())),
            "k" => serde_json::from_str::<Value>(rest)
                .ok()
                .map(|v| PathElement::Key(canonical(&v))),
            "v" => serde_json::from_str::<Value>(rest)
                .ok()
                .map(|v| PathElement::Value(canonical(&v))),
            "i" => rest.parse().ok().map(PathElement::Index),
            _ => None,
        }
    }

    /// As structured-merge-diff prints path elements in conflict messages.
    fn display(&self) -> String {
        match self {
            PathElement::Field(name) => format!(".{name}"),
            PathElement::Key(json) => {
                let pairs = match serde_json::from_str::<Value>(json) {
                    Ok(Value::Object(map)) => map
                        .iter()
                        .map(|(k, v)| format!("{k}={v}"))
                        .collect::<Vec<_>>()
                        .join(","),
                    _ => json.clone(),
                };
                format!("[{pairs}]")
            }
            PathElement::Value(json) => format!("[={json}]"),
            PathElement::Index(i) => format!("[{i}]"),
        }
    }
}

type Path = Vec<PathElement>;

fn display_path(path: &[PathElement]) -> String {
    path.iter().map(PathElement::display).collect()
}

/// A set of field paths as a tree; `member` marks the path to this node as being in the set.
#[derive(Debug, Clone, Default, PartialEq)]
struct FieldSet {
    member: bool,
    children: BTreeMap<PathElement, FieldSet>,
}

impl FieldSet {
    fn is_empty(&self) -> bool {
        !self.member && self.children.values().all(FieldSet::is_empty)
    }

    fn insert(&mut self, path: &[PathElement]) {
        let mut node = self;
        for element in path {
            node = node.children.entry(element.clone()).or_default();
        }
        node.member = true;
    }

    /// Whether the path, anything below it, or an atomic node above it is in the set.
    fn covers(&self, path: &[PathElement]) -> bool {
        let mut node = self;
        for element in path {
            match node.children.get(element) {
                Some(child) if child.member && child.children.is_empty() => return true,
                Some(child) => node = child,
                None => return false,
            }
        }
        !node.is_empty()
    }

    fn union_with(&mut self, other: &FieldSet) {
        self.member |= other.member;
        for (element, child) in &other.children {
            self.children
                .entry(element.clone())
                .or_default()
                .union_with(child);
        }
    }

    /// Members of `self` that are not members of `other`.
    fn difference(&self, other: &FieldSet) -> FieldSet {
        let mut out = FieldSet {
            member: self.member && !other.member,
            children: BTreeMap::new(),
        };
        for (element, child) in &self.children {
            let rest = match other.children.get(element) {
                Some(other_child) => child.difference(other_child),
                None => child.clone(),
            };
            if !rest.is_empty() {
                out.children.insert(element.clone(), rest);
            }
        }
        out
    }

    /// Members present in both sets.
    fn intersection(&self, other: &FieldSet) -> FieldSet {
        let mut out = FieldSet {
            member: self.member && other.member,
            children: BTreeMap::new(),
        };
        for (element, child) in &self.children {
            if let Some(other_child) = other.children.get(element) {
                let both = child.intersection(other_child);
                if !both.is_empty() {
                    out.children.insert(element.clone(), both);
                }
            }
        }
        out
    }

    /// Every member path, in sorted order.
    fn members(&self) -> Vec<Path> {
        fn walk(node: &FieldSet, prefix: &mut Path, out: &mut Vec<Path>) {
            if node.member {
                out.push(prefix.clone());
            }
            for (element, child) in &node.children {
                prefix.push(element.clone());
                walk(child, prefix, out);
                prefix.pop();
            }
        }
        let mut out = Vec::new();
        walk(self, &mut Vec::new(), &mut out);
        out
    }

    fn to_fields_v1(&self) -> Value {
        let mut map = Map::new();
        if self.member && !self.children.is_empty() {
            map.insert(".".to_string(), Value::Object(Map::new()));
        }
        for (element, child) in &self.children {
            if !child.is_empty() {
                map.insert(element.fields_v1_key(), child.to_fields_v1());
            }
        }
        Value::Object(map)
    }

    fn from_fields_v1(value: &Value) -> FieldSet {
        let mut set = FieldSet::default();
        if let Value::Object(map) = value {
            for (key, child) in map {
                if key == "." {
                    set.member = true;
                } else if let Some(element) = PathElement::parse(key) {
                    let mut node = FieldSet::from_fields_v1(child);
                    // A leaf is written as `{}`: the member itself.
                    if child.as_object().is_some_and(Map::is_empty) {
                        node.member = true;
                    }
                    set.children.insert(element, node);
                }
            }
        }
        set
    }
}

/// Compact JSON with object keys sorted, so equal values give equal path elements.
fn canonical(value: &Value) -> String {
    fn sorted(value: &Value) -> Value {
        match value {
            Value::Object(map) => {
                let mut keys: Vec<&String> = map.keys().collect();
                keys.sort();
                Value::Object(
                    keys.into_iter()
                        .map(|k| (k.clone(), sorted(&map[k])))
                        .collect(),
                )
            }
            Value::Array(items) => Value::Array(items.iter().map(sorted).collect()),
            other => other.clone(),
        }
    }
    sorted(value).to_string()
}

// ---------------------------------------------------------------------------------------------------------------
// Schema-aware walking
// ---------------------------------------------------------------------------------------------------------------

/// Metadata fields the apiserver never records ownership of.
const IGNORED_METADATA: &[&str] = &[
    "name",
    "namespace",
    "uid",
    "creationTimestamp",
    "resourceVersion",
    "generation",
    "managedFields",
    "selfLink",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
];

/// Whether the field `name` below `path` is never tracked (apiVersion, kind, server-owned metadata).
fn is_ignored(path: &[PathElement], name: &str) -> bool {
    match path {
        [] => name == "apiVersion" || name == "kind",
        [PathElement::Field(meta)] if meta == "metadata" => IGNORED_METADATA.contains(&name),
        _ => false,
    }
}

/// How a list's items are identified, for one concrete list value.
enum ItemIds {
    /// One leaf for the whole list.
    Atomic,
    /// One path element per item, in list order.
    Items(Vec<PathElement>),
}

/// Path elements of the items of `items`, the list at schema path `spath`; atomic when the list is atomic or an
/// item lacks its key fields (the apiserver would reject such an object; treating it atomic keeps data intact).
fn item_ids(items: &[Value], group_kind: &str, spath: &[&str]) -> ItemIds {
    let semantics: ListSemantics = list_semantics(group_kind, spath);
    if semantics.ssa_set {
        return ItemIds::Items(
            items
                .iter()
                .map(|v| PathElement::Value(canonical(v)))
                .collect(),
        );
    }
    if semantics.ssa_keys.is_empty() {
        return ItemIds::Atomic;
    }
    let mut ids = Vec::with_capacity(items.len());
    for item in items {
        let Value::Object(fields) = item else {
            return ItemIds::Atomic;
        };
        let mut key = Map::new();
        let mut sorted_keys = semantics.ssa_keys.to_vec();
        sorted_keys.sort_unstable();
        for name in sorted_keys {
            match fields
                .get(name)
                .cloned()
                .or_else(|| key_default(group_kind, spath, name))
            {
                Some(value) => {
                    key.insert(name.to_string(), value);
                }
                None if name == semantics.ssa_keys[0] => return ItemIds::Atomic,
                None => {}
            }
        }
        ids.push(PathElement::Key(Value::Object(key).to_string()));
    }
    ItemIds::Items(ids)
}

/// The field set an applied configuration claims: leaves, list items, set values and atomic nodes — not the maps
/// that merely contain them (as structured-merge-diff's `ToFieldSet`).
fn applied_set(value: &Value, group_kind: &str) -> FieldSet {
    fn walk<'v>(
        value: &'v Value,
        group_kind: &str,
        path: &mut Path,
        spath: &mut Vec<&'v str>,
        out: &mut FieldSet,
    ) {
        match value {
            Value::Object(map) if path.is_empty() || !is_atomic_map(group_kind, spath) => {
                for (name, child) in map {
                    if is_ignored(path, name) {
                        continue;
                    }
                    path.push(PathElement::Field(name.clone()));
                    spath.push(name);
                    walk(child, group_kind, path, spath, out);
                    spath.pop();
                    path.pop();
                }
            }
            Value::Array(items) => match item_ids(items, group_kind, spath) {
                ItemIds::Atomic => out.insert(path),
                ItemIds::Items(ids) => {
                    for (item, id) in items.iter().zip(ids) {
                        let is_value = matches!(id, PathElement::Value(_));
                        path.push(id);
                        out.insert(path);
                        if !is_value {
                            spath.push(ITEM);
                            walk(item, group_kind, path, spath, out);
                            spath.pop();
                        }
                        path.pop();
                    }
                }
            },
            _ => out.insert(path),
        }
    }
    let mut out = FieldSet::default();
    walk(
        value,
        group_kind,
        &mut Vec::new(),
        &mut Vec::new(),
        &mut out,
    );
    out
}

/// What changed between two versions of an object.
#[derive(Default)]
struct Comparison {
    added: FieldSet,
    modified: FieldSet,
    removed: FieldSet,
}

impl Comparison {
    fn is_same(&self) -> bool {
        self.added.is_empty() && self.modified.is_empty() && self.removed.is_empty()
    }

    fn changed(&self) -> FieldSet {
        let mut out = self.added.clone();
        out.union_with(&self.modified);
        out
    }
}

struct Comparer<'g> {
    group_kind: &'g str,
    /// Apply compares with explicit nulls as values (so nulling an owned field conflicts); writes treat a null as
    /// an absent field, as decoding into the Go types does.
    nulls_are_values: bool,
    out: Comparison,
}

impl Comparer<'_> {
    fn present<'v>(&self, value: Option<&'v Value>) -> Option<&'v Value> {
        let keep_nulls = self.nulls_are_values;
        value.filter(|v| keep_nulls || !v.is_null())
    }

    fn compare<'v>(
        &mut self,
        old: Option<&'v Value>,
        new: Option<&'v Value>,
        path: &mut Path,
        spath: &mut Vec<&'v str>,
    ) {
        let (old, new) = (self.present(old), self.present(new));
        match (old, new) {
            (None, None) => {}
            (None, Some(new)) => {
                subtree(new, self.group_kind, path, spath, &mut self.out.added, true);
            }
            (Some(old), None) => {
                subtree(
                    old,
                    self.group_kind,
                    path,
                    spath,
                    &mut self.out.removed,
                    false,
                );
            }
            (Some(Value::Object(a)), Some(Value::Object(b)))
                if path.is_empty() || !is_atomic_map(self.group_kind, spath) =>
            {
                for (name, new_child) in b {
                    if is_ignored(path, name) {
                        continue;
                    }
                    path.push(PathElement::Field(name.clone()));
                    spath.push(name);
                    self.compare(a.get(name), Some(new_child), path, spath);
                    spath.pop();
                    path.pop();
                }
                for (name, old_child) in a {
                    if b.contains_key(name) || is_ignored(path, name) {
                        continue;
                    }
                    path.push(PathElement::Field(name.clone()));
                    spath.push(name);
                    self.compare(Some(old_child), None, path, spath);
                    spath.pop();
                    path.pop();
                }
            }
            (Some(Value::Array(a)), Some(Value::Array(b))) => {
                match (
                    item_ids(a, self.group_kind, spath),
                    item_ids(b, self.group_kind, spath),
                ) {
                    (ItemIds::Items(a_ids), ItemIds::Items(b_ids)) => {
                        spath.push(ITEM);
                        for (new_item, id) in b.iter().zip(&b_ids) {
                            let old_item = a_ids.iter().position(|x| x == id).map(|i| &a[i]);
                            path.push(id.clone());
                            self.compare(old_item, Some(new_item), path, spath);
                            path.pop();
                        }
                        for (old_item, id) in a.iter().zip(&a_ids) {
                            if !b_ids.contains(id) {
                                path.push(id.clone());
                                self.compare(Some(old_item), None, path, spath);
                                path.pop();
                            }
                        }
                        spath.pop();
                    }
                    _ => {
                        let equal =
                            a.len() == b.len() && a.iter().zip(b).all(|(x, y)| json_equal(x, y));
                        if !equal {
                            self.out.modified.insert(path);
                        }
                    }
                }
            }
            (Some(old), Some(new)) => {
                if !json_equal(old, new) {
                    self.out.modified.insert(path);
                }
            }
        }
    }
}

/// Inserts `value` at `path` and everything below it into `out`. For newly added fields (`added`) the maps the
/// Go types always serialise (top-level structs like `spec`, `template`) are not members, as in the apiserver's
/// managedFields, where a create compares against the kind's zero value.
fn subtree<'v>(
    value: &'v Value,
    group_kind: &str,
    path: &mut Path,
    spath: &mut Vec<&'v str>,
    out: &mut FieldSet,
    added: bool,
) {
    match value {
        Value::Object(map) if path.is_empty() || !is_atomic_map(group_kind, spath) => {
            if !path.is_empty() && (!added || map_is_member_when_added(group_kind, spath)) {
                out.insert(path);
            }
            for (name, child) in map {
                if is_ignored(path, name) {
                    continue;
                }
                path.push(PathElement::Field(name.clone()));
                spath.push(name);
                subtree(child, group_kind, path, spath, out, added);
                spath.pop();
                path.pop();
            }
        }
        Value::Array(items) => match item_ids(items, group_kind, spath) {
            ItemIds::Atomic => out.insert(path),
            ItemIds::Items(ids) => {
                out.insert(path);
                spath.push(ITEM);
                for (item, id) in items.iter().zip(ids) {
                    path.push(id);
                    subtree(item, group_kind, path, spath, out, added);
                    path.pop();
                }
                spath.pop();
            }
        },
        Value::Null if added => {}
        _ => {
            if !path.is_empty() {
                out.insert(path);
            }
        }
    }
}

fn map_is_member_when_added(group_kind: &str, spath: &[&str]) -> bool {
    if spath.contains(&ITEM) {
        return true;
    }
    match spath.last().copied() {
        Some("metadata") => false,
        Some("spec" | "status" | "template" | "strategy" | "updateStrategy" | "jobTemplate") => {
            !is_builtin(group_kind)
        }
        _ => true,
    }
}

// ---------------------------------------------------------------------------------------------------------------
// Merging and pruning
// ---------------------------------------------------------------------------------------------------------------

/// Merges an applied configuration into the live object: applied values win, associative lists merge by key,
/// set lists by value, atomic lists and maps are replaced. Server-owned metadata keeps its live value.
fn merge<'v>(
    live: &'v Value,
    applied: &'v Value,
    group_kind: &str,
    spath: &mut Vec<&'v str>,
) -> Value {
    match (live, applied) {
        (Value::Object(l), Value::Object(a))
            if spath.is_empty() || !is_atomic_map(group_kind, spath) =>
        {
            let mut out = l.clone();
            let in_metadata = spath.len() == 1 && spath[0] == "metadata";
            for (name, value) in a {
                if in_metadata && IGNORED_METADATA.contains(&name.as_str()) && l.contains_key(name)
                {
                    continue;
                }
                let merged = match l.get(name) {
                    Some(current) => {
                        spath.push(name);
                        let merged = merge(current, value, group_kind, spath);
                        spath.pop();
                        merged
                    }
                    None => value.clone(),
                };
                out.insert(name.clone(), merged);
            }
            Value::Object(out)
        }
        (Value::Array(l), Value::Array(a)) => {
            match (
                item_ids(l, group_kind, spath),
                item_ids(a, group_kind, spath),
            ) {
                (ItemIds::Items(l_ids), ItemIds::Items(a_ids)) => {
                    spath.push(ITEM);
                    let merged = merge_items(l, &l_ids, a, &a_ids, group_kind, spath);
                    spath.pop();
                    Value::Array(merged)
                }
                _ => applied.clone(),
            }
        }
        _ => applied.clone(),
    }
}

/// Keyed list merge: applied items keep their order, live-only items stay where they were relative to them.
fn merge_items<'v>(
    live: &'v [Value],
    live_ids: &[PathElement],
    applied: &'v [Value],
    applied_ids: &[PathElement],
    group_kind: &str,
    spath: &mut Vec<&'v str>,
) -> Vec<Value> {
    let mut out = Vec::with_capacity(live.len().max(applied.len()));
    let mut next_applied = 0;
    let mut emit_applied_through = |end: usize, out: &mut Vec<Value>, spath: &mut Vec<&'v str>| {
        while next_applied <= end && next_applied < applied.len() {
            let id = &applied_ids[next_applied];
            let item = match live_ids.iter().position(|x| x == id) {
                Some(i) => merge(&live[i], &applied[next_applied], group_kind, spath),
                None => applied[next_applied].clone(),
            };
            out.push(item);
            next_applied += 1;
        }
    };
    for (item, id) in live.iter().zip(live_ids) {
        match applied_ids.iter().position(|x| x == id) {
            Some(j) => emit_applied_through(j, &mut out, spath),
            None => out.push(item.clone()),
        }
    }
    emit_applied_through(applied.len(), &mut out, spath);
    out
}

/// Removes the field at `path` from `value`; maps and lists the removal leaves empty go too (never the top level).
fn remove_path(value: &mut Value, path: &[PathElement], group_kind: &str) {
    /// `None` when nothing was removed, else whether `value` is now empty.
    fn go<'p>(
        value: &mut Value,
        path: &'p [PathElement],
        group_kind: &str,
        spath: &mut Vec<&'p str>,
    ) -> Option<bool> {
        let (first, rest) = path.split_first()?;
        match (value, first) {
            (Value::Object(map), PathElement::Field(name)) => {
                if rest.is_empty() {
                    map.shift_remove(name)?;
                } else {
                    spath.push(name);
                    let emptied = go(map.get_mut(name)?, rest, group_kind, spath);
                    spath.pop();
                    if emptied? {
                        map.shift_remove(name);
                    }
                }
                Some(map.is_empty())
            }
            (Value::Array(items), element) => {
                let index = match element {
                    PathElement::Index(i) => Some(*i).filter(|i| *i < items.len()),
                    PathElement::Key(_) | PathElement::Value(_) => {
                        match item_ids(items, group_kind, spath) {
                            ItemIds::Items(ids) => ids.iter().position(|id| id == element),
                            ItemIds::Atomic => None,
                        }
                    }
                    PathElement::Field(_) => None,
                }?;
                if rest.is_empty() {
                    items.remove(index);
                } else {
                    spath.push(ITEM);
                    let emptied = go(&mut items[index], rest, group_kind, spath);
                    spath.pop();
                    if emptied? {
                        items.remove(index);
                    }
                }
                Some(items.is_empty())
            }
            _ => None,
        }
    }
    go(value, path, group_kind, &mut Vec::new());
}

/// Whether the last element of `path` is a key field of the associative-list item that contains it.
fn is_key_field(path: &[PathElement]) -> bool {
    match path {
        [.., PathElement::Key(key), PathElement::Field(name)] => serde_json::from_str::<Value>(key)
            .ok()
            .and_then(|k| k.get(name).cloned())
            .is_some(),
        _ => false,
    }
}

/// Drops the members an applied configuration set to `null` (the Go types would not keep them).
fn strip_applied_nulls(target: &mut Value, applied: &Value) {
    if let (Value::Object(t), Value::Object(a)) = (target, applied) {
        for (name, value) in a {
            if value.is_null() {
                t.shift_remove(name);
            } else if let Some(child) = t.get_mut(name) {
                strip_applied_nulls(child, value);
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------------------------
// managedFields entries
// ---------------------------------------------------------------------------------------------------------------

#[derive(Debug, Clone)]
struct Entry {
    manager: String,
    operation: String,
    api_version: String,
    time: Option<String>,
    subresource: Option<String>,
    fields: FieldSet,
}

impl Entry {
    fn parse(value: &Value) -> Option<Entry> {
        let text = |k: &str| value.get(k).and_then(Value::as_str).map(str::to_string);
        Some(Entry {
            manager: text("manager").unwrap_or_default(),
            operation: text("operation")?,
            api_version: text("apiVersion").unwrap_or_default(),
            time: text("time"),
            subresource: text("subresource").filter(|s| !s.is_empty()),
            fields: value
                .get("fieldsV1")
                .map(FieldSet::from_fields_v1)
                .unwrap_or_default(),
        })
    }

    /// Same manager identity: Apply entries ignore apiVersion, Update entries include it.
    fn is(
        &self,
        manager: &str,
        operation: &str,
        api_version: &str,
        subresource: Option<&str>,
    ) -> bool {
        self.manager == manager
            && self.operation == operation
            && self.subresource.as_deref() == subresource
            && (operation == "Apply" || self.api_version == api_version)
    }

    fn to_json(&self) -> Value {
        let mut map = Map::new();
        map.insert("manager".into(), Value::String(self.manager.clone()));
        map.insert("operation".into(), Value::String(self.operation.clone()));
        map.insert("apiVersion".into(), Value::String(self.api_version.clone()));
        if let Some(time) = &self.time {
            map.insert("time".into(), Value::String(time.clone()));
        }
        map.insert("fieldsType".into(), Value::String("FieldsV1".into()));
        map.insert("fieldsV1".into(), self.fields.to_fields_v1());
        if let Some(sub) = &self.subresource {
            map.insert("subresource".into(), Value::String(sub.clone()));
        }
        Value::Object(map)
    }

    fn same_ignoring_time(&self, other: &Entry) -> bool {
        self.manager == other.manager
            && self.operation == other.operation
            && self.api_version == other.api_version
            && self.subresource == other.subresource
            && self.fields == other.fields
    }
}

fn read_entries(object: Option<&Value>) -> Vec<Entry> {
    object
        .and_then(|o| o.pointer("/metadata/managedFields"))
        .and_then(Value::as_array)
        .map(|entries| entries.iter().filter_map(Entry::parse).collect())
        .unwrap_or_default()
}

/// Writes `entries` into `object.metadata.managedFields` in the apiserver's order (operation, time, manager,
/// apiVersion, subresource); an empty list removes the field.
fn write_entries(object: &mut Value, mut entries: Vec<Entry>) {
    entries.retain(|e| !e.fields.is_empty());
    entries.sort_by(|a, b| {
        (
            &a.operation,
            &a.time,
            &a.manager,
            &a.api_version,
            &a.subresource,
        )
            .cmp(&(
                &b.operation,
                &b.time,
                &b.manager,
                &b.api_version,
                &b.subresource,
            ))
    });
    let Value::Object(root) = object else { return };
    let metadata = root
        .entry("metadata")
        .or_insert_with(|| Value::Object(Map::new()));
    let Value::Object(metadata) = metadata else {
        return;
    };
    if entries.is_empty() {
        metadata.shift_remove("managedFields");
    } else {
        metadata.insert(
            "managedFields".into(),
            Value::Array(entries.iter().map(Entry::to_json).collect()),
        );
    }
}

fn without_managed_fields(value: &Value) -> Value {
    let mut copy = value.clone();
    if let Some(Value::Object(metadata)) = copy.get_mut("metadata") {
        metadata.shift_remove("managedFields");
    }
    copy
}

/// The apiserver keeps the old managedFields timestamps when nothing else changed, so a repeated identical write
/// is a no-op (no resourceVersion bump). Returns the live object in that case.
fn unchanged(
    live: Option<&Value>,
    result: &Value,
    old_entries: &[Entry],
    new_entries: &[Entry],
) -> Option<Value> {
    let live = live?;
    let kept: Vec<&Entry> = new_entries
        .iter()
        .filter(|e| !e.fields.is_empty())
        .collect();
    let same_entries = kept.len() == old_entries.len()
        && kept
            .iter()
            .all(|n| old_entries.iter().any(|o| o.same_ignoring_time(n)));
    (same_entries
        && json_equal(
            &without_managed_fields(live),
            &without_managed_fields(result),
        ))
    .then(|| live.clone())
}

// ---------------------------------------------------------------------------------------------------------------
// The two operations
// ---------------------------------------------------------------------------------------------------------------

/// Server-side apply of `applied` (already JSON, apiVersion/kind checked by the caller) onto `live` (None = create).
/// Returns the merged object whose `metadata.managedFields` is updated (this manager's Apply entry replaced;
/// fields it stopped applying and nobody else owns removed; entries with no fields dropped).
/// Conflicts only where another manager owns a field whose live value differs from the applied one; `force`
/// takes ownership instead. Never tracks apiVersion, kind, metadata.name/namespace/uid/creationTimestamp/
/// resourceVersion/generation/managedFields. The caller handles defaults, RV, generation, status/spec split.
pub fn apply(
    live: Option<&Value>,
    applied: &Value,
    ctx: &FieldManagerCtx<'_>,
    force: bool,
) -> Result<Value, ApplyConflicts> {
    let empty = Value::Object(Map::new());
    let live_value = live.unwrap_or(&empty);
    let gk = ctx.group_kind;

    // A /status apply only ever touches .status.
    let restricted;
    let applied = match ctx.subresource {
        Some("status") => {
            let mut only_status = Map::new();
            if let Some(status) = applied.get("status") {
                only_status.insert("status".into(), status.clone());
            }
            restricted = Value::Object(only_status);
            &restricted
        }
        _ => applied,
    };

    let old_entries = read_entries(live);
    let mut entries = old_entries.clone();
    let is_self = |e: &Entry| e.is(ctx.manager, "Apply", ctx.api_version, ctx.subresource);
    let last_set = entries
        .iter()
        .find(|e| is_self(e))
        .map(|e| e.fields.clone())
        .unwrap_or_default();
    let new_set = applied_set(applied, gk);

    let mut merged = merge(live_value, applied, gk, &mut Vec::new());

    // Prune what this manager applied last time and nobody claims now.
    let mut claimed = new_set.clone();
    for entry in entries.iter().filter(|e| !is_self(e)) {
        claimed.union_with(&entry.fields);
    }
    for path in last_set.members() {
        if claimed.covers(&path) || is_key_field(&path) {
            continue;
        }
        remove_path(&mut merged, &path, gk);
    }

    let mut comparer = Comparer {
        group_kind: gk,
        nulls_are_values: true,
        out: Comparison::default(),
    };
    comparer.compare(
        Some(live_value),
        Some(&merged),
        &mut Vec::new(),
        &mut Vec::new(),
    );
    let comparison = comparer.out;
    let changed = comparison.changed();

    let mut conflicts = Vec::new();
    for entry in entries.iter_mut().filter(|e| !is_self(e)) {
        let clash = entry.fields.intersection(&changed);
        if clash.is_empty() {
            continue;
        }
        for path in clash.members() {
            conflicts.push(FieldConflict {
                manager: entry.manager.clone(),
                operation: entry.operation.clone(),
                api_version: entry.api_version.clone(),
                time: entry.time.clone().unwrap_or_default(),
                subresource: entry.subresource.clone(),
                field: display_path(&path),
            });
        }
        entry.fields = entry.fields.difference(&clash);
    }
    if !conflicts.is_empty() && !force {
        let mut by_owner: Vec<(String, FieldConflict)> =
            conflicts.into_iter().map(|c| (c.identity(), c)).collect();
        // Stable: within one owner the paths stay in field-set order.
        by_owner.sort_by(|a, b| a.0.cmp(&b.0));
        return Err(ApplyConflicts {
            conflicts: by_owner.into_iter().map(|(_, c)| c).collect(),
        });
    }
    for entry in entries.iter_mut().filter(|e| !is_self(e)) {
        entry.fields = entry.fields.difference(&comparison.removed);
    }

    let own = Entry {
        manager: ctx.manager.to_string(),
        operation: "Apply".to_string(),
        api_version: ctx.api_version.to_string(),
        time: Some(ctx.time.to_string()),
        subresource: ctx.subresource.map(str::to_string),
        fields: new_set,
    };
    entries.retain(|e| !is_self(e));
    entries.push(own);

    strip_applied_nulls(&mut merged, applied);
    if let Some(live) = unchanged(live, &merged, &old_entries, &entries) {
        return Ok(live);
    }
    write_entries(&mut merged, entries);
    Ok(merged)
}

/// Bookkeeping for a non-apply write (POST/PUT/merge/json/strategic PATCH): `new` is the object about to be stored;
/// returns it with managedFields updated: the manager's `Update` entry takes ownership of every field whose value
/// changed (or, on create, every field), other managers lose those fields. Never conflicts.
pub fn record_update(old: Option<&Value>, new: &Value, ctx: &FieldManagerCtx<'_>) -> Value {
    let empty = Value::Object(Map::new());
    let mut comparer = Comparer {
        group_kind: ctx.group_kind,
        nulls_are_values: false,
        out: Comparison::default(),
    };
    comparer.compare(
        Some(old.unwrap_or(&empty)),
        Some(new),
        &mut Vec::new(),
        &mut Vec::new(),
    );
    let comparison = comparer.out;

    let old_entries = read_entries(old);
    let mut result = new.clone();
    if comparison.is_same() {
        write_entries(&mut result, old_entries);
        return result;
    }
    let changed = comparison.changed();
    let mut entries = old_entries.clone();
    for entry in &mut entries {
        entry.fields = entry
            .fields
            .difference(&changed)
            .difference(&comparison.removed);
    }
    let is_self = |e: &Entry| e.is(ctx.manager, "Update", ctx.api_version, ctx.subresource);
    match entries.iter_mut().find(|e| is_self(e)) {
        Some(own) => {
            own.fields.union_with(&changed);
            own.time = Some(ctx.time.to_string());
        }
        None => entries.push(Entry {
            manager: ctx.manager.to_string(),
            operation: "Update".to_string(),
            api_version: ctx.api_version.to_string(),
            time: Some(ctx.time.to_string()),
            subresource: ctx.subresource.map(str::to_string),
            fields: changed,
        }),
    }
    write_entries(&mut result, entries);
    result
}
