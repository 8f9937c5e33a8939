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
//! Custom resources have no Go types: their lists are atomic unless the CRD's schema declares otherwise, which
//! [`apply_with_schema`] / [`record_update_with_schema`] honour given [`SchemaListTypes::from_crd`].
//!
//! What the caller does: defaulting, resourceVersion, generation, and the status/spec split (strip `.status`
//! from main-resource writes of kinds that have a status subresource before calling; on `/status` writes pass
//! `subresource: Some("status")` and only `.status` is applied). If nothing but managedFields timestamps would
//! change, both functions return the live object unchanged, so the caller can skip the write (no RV bump).

use std::collections::{BTreeMap, HashMap};

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

    /// The whole 409 `metav1.Status` the apiserver answers with (details carry only the causes).
    pub fn status(&self) -> Value {
        serde_json::json!({
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message(),
            "reason": "Conflict",
            "details": {"causes": self.causes()},
            "code": 409,
        })
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
fn item_ids(items: &[Value], types: &Types<'_>, spath: &[&str]) -> ItemIds {
    let keys = match types.list(spath) {
        ListKind::Atomic => return ItemIds::Atomic,
        ListKind::Set => {
            return ItemIds::Items(
                items
                    .iter()
                    .map(|v| PathElement::Value(canonical(v)))
                    .collect(),
            );
        }
        ListKind::Map(keys) => keys,
    };
    let Some(&primary) = keys.first() else {
        return ItemIds::Atomic;
    };
    let mut sorted_keys = keys.clone();
    sorted_keys.sort_unstable();
    let mut ids = Vec::with_capacity(items.len());
    for item in items {
        let Value::Object(fields) = item else {
            return ItemIds::Atomic;
        };
        let mut key = Map::new();
        for &name in &sorted_keys {
            match fields
                .get(name)
                .cloned()
                .or_else(|| types.key_default(spath, name))
            {
                Some(value) => {
                    key.insert(name.to_string(), value);
                }
                None if name == primary => return ItemIds::Atomic,
                None => {}
            }
        }
        ids.push(PathElement::Key(Value::Object(key).to_string()));
    }
    ItemIds::Items(ids)
}

/// How the items of one list are identified.
enum ListKind<'a> {
    Atomic,
    Set,
    Map(Vec<&'a str>),
}

/// The type information the walkers consult: built-in Go type tags, or a CRD's declared list and map types.
struct Types<'a> {
    group_kind: &'a str,
    builtin: bool,
    schema: Option<&'a SchemaListTypes>,
}

impl<'a> Types<'a> {
    fn new(group_kind: &'a str, schema: Option<&'a SchemaListTypes>) -> Self {
        Types {
            group_kind,
            builtin: is_builtin(group_kind),
            schema,
        }
    }

    fn declared(&self, spath: &[&str]) -> Option<&'a Declared> {
        let schema = self.schema?;
        if schema.declared.is_empty() {
            return None;
        }
        schema.declared.get(&spath.join("/"))
    }

    fn list(&self, spath: &[&str]) -> ListKind<'a> {
        match self.declared(spath) {
            Some(Declared::Map { keys, .. }) => {
                ListKind::Map(keys.iter().map(String::as_str).collect())
            }
            Some(Declared::Set) => ListKind::Set,
            Some(Declared::AtomicList | Declared::AtomicMap) => ListKind::Atomic,
            None => {
                let semantics: ListSemantics = list_semantics(self.group_kind, spath);
                if semantics.ssa_set {
                    ListKind::Set
                } else if semantics.ssa_keys.is_empty() {
                    ListKind::Atomic
                } else {
                    ListKind::Map(semantics.ssa_keys.to_vec())
                }
            }
        }
    }

    fn atomic_map(&self, spath: &[&str]) -> bool {
        matches!(self.declared(spath), Some(Declared::AtomicMap))
            || is_atomic_map(self.group_kind, spath)
    }

    fn key_default(&self, spath: &[&str], key: &str) -> Option<Value> {
        match self.declared(spath) {
            Some(Declared::Map { defaults, .. }) => defaults
                .iter()
                .find(|(name, _)| name == key)
                .map(|(_, value)| value.clone()),
            _ => key_default(self.group_kind, spath, key),
        }
    }
}

/// List and map types a CRD's structural schema declares (`x-kubernetes-list-type: map|set|atomic` with
/// `x-kubernetes-list-map-keys`, `x-kubernetes-map-type: atomic`), so server-side apply merges a custom
/// resource's lists the way the apiserver does. Undeclared lists stay atomic; key fields with a schema
/// `default` count as present when an item omits them.
#[derive(Debug, Clone, Default)]
pub struct SchemaListTypes {
    /// Keyed by schema path: field names joined by `/`, `[]` for list items.
    declared: HashMap<String, Declared>,
}

#[derive(Debug, Clone)]
enum Declared {
    Map {
        keys: Vec<String>,
        defaults: Vec<(String, Value)>,
    },
    Set,
    AtomicList,
    AtomicMap,
}

impl SchemaListTypes {
    /// Reads the declarations of one version's `openAPIV3Schema`.
    pub fn from_openapi_v3(schema: &Value) -> Self {
        fn walk(schema: &Value, path: &mut Vec<String>, out: &mut HashMap<String, Declared>) {
            let text = |k: &str| schema.get(k).and_then(Value::as_str);
            match text("x-kubernetes-list-type") {
                Some("map") => {
                    let keys: Vec<String> = schema
                        .get("x-kubernetes-list-map-keys")
                        .and_then(Value::as_array)
                        .map(|keys| {
                            keys.iter()
                                .filter_map(Value::as_str)
                                .map(str::to_string)
                                .collect()
                        })
                        .unwrap_or_default();
                    let defaults = keys
                        .iter()
                        .filter_map(|key| {
                            let default =
                                schema.pointer(&format!("/items/properties/{key}/default"))?;
                            Some((key.clone(), default.clone()))
                        })
                        .collect();
                    out.insert(path.join("/"), Declared::Map { keys, defaults });
                }
                Some("set") => {
                    out.insert(path.join("/"), Declared::Set);
                }
                Some("atomic") => {
                    out.insert(path.join("/"), Declared::AtomicList);
                }
                _ => {}
            }
            if text("x-kubernetes-map-type") == Some("atomic") {
                out.insert(path.join("/"), Declared::AtomicMap);
            }
            if let Some(Value::Object(properties)) = schema.get("properties") {
                for (name, child) in properties {
                    path.push(name.clone());
                    walk(child, path, out);
                    path.pop();
                }
            }
            if let Some(items) = schema.get("items") {
                path.push(ITEM.to_string());
                walk(items, path, out);
                path.pop();
            }
        }
        let mut declared = HashMap::new();
        walk(schema, &mut Vec::new(), &mut declared);
        SchemaListTypes { declared }
    }

    /// Reads the declarations of the CRD's version `version` (`spec.versions[].schema.openAPIV3Schema`);
    /// none when the version or its schema is missing.
    pub fn from_crd(crd: &Value, version: &str) -> Self {
        crd.pointer("/spec/versions")
            .and_then(Value::as_array)
            .and_then(|versions| {
                versions
                    .iter()
                    .find(|v| v.get("name").and_then(Value::as_str) == Some(version))
            })
            .and_then(|v| v.pointer("/schema/openAPIV3Schema"))
            .map(SchemaListTypes::from_openapi_v3)
            .unwrap_or_default()
    }
}

/// The field set an applied configuration claims: leaves, list items, set values and atomic nodes — not the maps
/// that merely contain them (as structured-merge-diff's `ToFieldSet`).
fn applied_set(value: &Value, types: &Types<'_>) -> FieldSet {
    fn walk<'v>(
        value: &'v Value,
        types: &Types<'_>,
        path: &mut Path,
        spath: &mut Vec<&'v str>,
        out: &mut FieldSet,
    ) {
        match value {
            Value::Object(map) if path.is_empty() || !types.atomic_map(spath) => {
                for (name, child) in map {
                    if is_ignored(path, name) {
                        continue;
                    }
                    path.push(PathElement::Field(name.clone()));
                    spath.push(name);
                    walk(child, types, path, spath, out);
                    spath.pop();
                    path.pop();
                }
            }
            Value::Array(items) => match item_ids(items, types, spath) {
                ItemIds::Atomic => out.insert(path),
                ItemIds::Items(ids) => {
                    for (item, id) in items.iter().zip(ids) {
                        let is_value = matches!(id, PathElement::Value(_));
                        path.push(id);
                        out.insert(path);
                        if !is_value {
                            spath.push(ITEM);
                            walk(item, types, path, spath, out);
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
    walk(value, types, &mut Vec::new(), &mut Vec::new(), &mut out);
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
    types: &'g Types<'g>,
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
                subtree(new, self.types, path, spath, &mut self.out.added, true);
            }
            (Some(old), None) => {
                subtree(old, self.types, path, spath, &mut self.out.removed, false);
            }
            (Some(Value::Object(a)), Some(Value::Object(b)))
                if path.is_empty() || !self.types.atomic_map(spath) =>
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
                    item_ids(a, self.types, spath),
                    item_ids(b, self.types, spath),
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
    types: &Types<'_>,
    path: &mut Path,
    spath: &mut Vec<&'v str>,
    out: &mut FieldSet,
    added: bool,
) {
    match value {
        Value::Object(map) if path.is_empty() || !types.atomic_map(spath) => {
            if !path.is_empty() && (!added || map_is_member_when_added(types, spath)) {
                out.insert(path);
            }
            for (name, child) in map {
                if is_ignored(path, name) {
                    continue;
                }
                path.push(PathElement::Field(name.clone()));
                spath.push(name);
                subtree(child, types, path, spath, out, added);
                spath.pop();
                path.pop();
            }
        }
        Value::Array(items) => match item_ids(items, types, spath) {
            ItemIds::Atomic => out.insert(path),
            ItemIds::Items(ids) => {
                out.insert(path);
                spath.push(ITEM);
                for (item, id) in items.iter().zip(ids) {
                    path.push(id);
                    subtree(item, types, path, spath, out, added);
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

fn map_is_member_when_added(types: &Types<'_>, spath: &[&str]) -> bool {
    if spath.contains(&ITEM) {
        return true;
    }
    match spath.last().copied() {
        Some("metadata") => false,
        Some("spec" | "status" | "template" | "strategy" | "updateStrategy" | "jobTemplate") => {
            !types.builtin
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
    types: &Types<'_>,
    spath: &mut Vec<&'v str>,
) -> Value {
    match (live, applied) {
        (Value::Object(l), Value::Object(a)) if spath.is_empty() || !types.atomic_map(spath) => {
            let in_metadata = spath.len() == 1 && spath[0] == "metadata";
            let mut out = Map::with_capacity(l.len() + a.len());
            for (name, current) in l {
                let keep_live = in_metadata && IGNORED_METADATA.contains(&name.as_str());
                let value = match a.get(name) {
                    Some(value) if !keep_live => {
                        spath.push(name);
                        let merged = merge(current, value, types, spath);
                        spath.pop();
                        merged
                    }
                    _ => current.clone(),
                };
                out.insert(name.clone(), value);
            }
            for (name, value) in a {
                if !l.contains_key(name) {
                    out.insert(name.clone(), value.clone());
                }
            }
            Value::Object(out)
        }
        (Value::Array(l), Value::Array(a)) => {
            match (item_ids(l, types, spath), item_ids(a, types, spath)) {
                (ItemIds::Items(l_ids), ItemIds::Items(a_ids)) => {
                    spath.push(ITEM);
                    let merged = merge_items(l, &l_ids, a, &a_ids, types, spath);
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
    types: &Types<'_>,
    spath: &mut Vec<&'v str>,
) -> Vec<Value> {
    let mut out = Vec::with_capacity(live.len().max(applied.len()));
    let mut next_applied = 0;
    let mut emit_applied_through = |end: usize, out: &mut Vec<Value>, spath: &mut Vec<&'v str>| {
        while next_applied <= end && next_applied < applied.len() {
            let id = &applied_ids[next_applied];
            let item = match live_ids.iter().position(|x| x == id) {
                Some(i) => merge(&live[i], &applied[next_applied], types, spath),
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
fn remove_path(value: &mut Value, path: &[PathElement], types: &Types<'_>) {
    /// `None` when nothing was removed, else whether `value` is now empty.
    fn go<'p>(
        value: &mut Value,
        path: &'p [PathElement],
        types: &Types<'_>,
        spath: &mut Vec<&'p str>,
    ) -> Option<bool> {
        let (first, rest) = path.split_first()?;
        match (value, first) {
            (Value::Object(map), PathElement::Field(name)) => {
                if rest.is_empty() {
                    map.shift_remove(name)?;
                } else {
                    spath.push(name);
                    let emptied = go(map.get_mut(name)?, rest, types, spath);
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
                        match item_ids(items, types, spath) {
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
                    let emptied = go(&mut items[index], rest, types, spath);
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
    go(value, path, types, &mut Vec::new());
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

/// Drops the members an applied configuration set to `null` (the Go types would not keep them); members whose
/// live value was kept (server-owned metadata such as `creationTimestamp`) stay.
fn strip_applied_nulls(target: &mut Value, applied: &Value) {
    if let (Value::Object(t), Value::Object(a)) = (target, applied) {
        for (name, value) in a {
            if value.is_null() {
                if t.get(name).is_some_and(Value::is_null) {
                    t.shift_remove(name);
                }
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

/// Equality of two objects apart from `metadata.managedFields`, without copying them.
fn equal_ignoring_managed_fields(a: &Value, b: &Value) -> bool {
    fn maps_equal_except(a: &Map<String, Value>, b: &Map<String, Value>, skip: &str) -> bool {
        let count = |m: &Map<String, Value>| m.keys().filter(|k| *k != skip).count();
        count(a) == count(b)
            && a.iter()
                .filter(|(k, _)| *k != skip)
                .all(|(k, v)| b.get(k).is_some_and(|w| json_equal(v, w)))
    }
    match (a, b) {
        (Value::Object(a), Value::Object(b)) => {
            let metadata_equal = match (a.get("metadata"), b.get("metadata")) {
                (Some(Value::Object(ma)), Some(Value::Object(mb))) => {
                    maps_equal_except(ma, mb, "managedFields")
                }
                (ma, mb) => ma == mb,
            };
            metadata_equal && maps_equal_except(a, b, "metadata")
        }
        _ => json_equal(a, b),
    }
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
    (same_entries && equal_ignoring_managed_fields(live, result)).then(|| live.clone())
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
    apply_with_schema(live, applied, ctx, force, None)
}

/// [`apply`] for a custom resource whose CRD declares list and map types (see [`SchemaListTypes`]).
pub fn apply_with_schema(
    live: Option<&Value>,
    applied: &Value,
    ctx: &FieldManagerCtx<'_>,
    force: bool,
    schema: Option<&SchemaListTypes>,
) -> Result<Value, ApplyConflicts> {
    let empty = Value::Object(Map::new());
    let live_value = live.unwrap_or(&empty);
    let types = Types::new(ctx.group_kind, schema);
    let gk = &types;

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
    if let (Some(live), true) = (live, entries.is_empty()) {
        entries.push(before_first_apply(live, ctx, gk));
    }
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
        types: gk,
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

/// The manager the apiserver credits with the fields of an object that has no managedFields when it is first
/// applied to, so that apply still conflicts with values nobody declared.
pub const BEFORE_FIRST_APPLY: &str = "before-first-apply";

fn before_first_apply(live: &Value, ctx: &FieldManagerCtx<'_>, types: &Types<'_>) -> Entry {
    let mut fields = FieldSet::default();
    subtree(
        live,
        types,
        &mut Vec::new(),
        &mut Vec::new(),
        &mut fields,
        true,
    );
    Entry {
        manager: BEFORE_FIRST_APPLY.to_string(),
        operation: "Update".to_string(),
        api_version: ctx.api_version.to_string(),
        time: Some(ctx.time.to_string()),
        subresource: None,
        fields,
    }
}

/// The field manager of a non-apply write, as the apiserver picks it: the `fieldManager` query parameter, else
/// the User-Agent up to its first `/` (`kubectl-annotate/v1.32.4 (linux/amd64) ...` → `kubectl-annotate`).
pub fn manager_for_update(field_manager: Option<&str>, user_agent: Option<&str>) -> String {
    match field_manager.filter(|m| !m.is_empty()) {
        Some(manager) => manager.to_string(),
        None => user_agent
            .unwrap_or_default()
            .split('/')
            .next()
            .unwrap_or_default()
            .to_string(),
    }
}

/// The entries a non-apply write starts from, as the apiserver decodes them: a main-resource write may set
/// managedFields itself (`[{}]` clears them); an empty or unreadable list, or any subresource write, keeps the
/// stored ones.
fn entries_for_update(old: Option<&Value>, new: &Value, ctx: &FieldManagerCtx<'_>) -> Vec<Entry> {
    let requested = new
        .pointer("/metadata/managedFields")
        .and_then(Value::as_array)
        .filter(|_| ctx.subresource.is_none());
    if let Some(list) = requested {
        if let [only] = list.as_slice()
            && only.as_object().is_some_and(Map::is_empty)
        {
            return Vec::new();
        }
        let parsed: Vec<Entry> = list.iter().filter_map(Entry::parse).collect();
        if !parsed.is_empty() && parsed.len() == list.len() {
            return parsed;
        }
    }
    read_entries(old)
}

/// Bookkeeping for a non-apply write (POST/PUT/merge/json/strategic PATCH): `new` is the object about to be stored;
/// returns it with managedFields updated: the manager's `Update` entry takes ownership of every field whose value
/// changed (or, on create, every field), other managers lose those fields. Never conflicts.
pub fn record_update(old: Option<&Value>, new: &Value, ctx: &FieldManagerCtx<'_>) -> Value {
    record_update_with_schema(old, new, ctx, None)
}

/// [`record_update`] for a custom resource whose CRD declares list and map types (see [`SchemaListTypes`]).
pub fn record_update_with_schema(
    old: Option<&Value>,
    new: &Value,
    ctx: &FieldManagerCtx<'_>,
    schema: Option<&SchemaListTypes>,
) -> Value {
    let types = Types::new(ctx.group_kind, schema);
    let empty = Value::Object(Map::new());
    let mut comparer = Comparer {
        types: &types,
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

    let mut entries = entries_for_update(old, new, ctx);
    let mut result = new.clone();
    if comparison.is_same() {
        write_entries(&mut result, entries);
        return result;
    }
    let changed = comparison.changed();
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

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const T0: &str = "2026-01-01T00:00:00Z";
    const T1: &str = "2026-01-01T00:01:00Z";
    const T2: &str = "2026-01-01T00:02:00Z";

    fn ctx<'a>(manager: &'a str, time: &'a str) -> FieldManagerCtx<'a> {
        FieldManagerCtx {
            manager,
            api_version: "apps/v1",
            time,
            subresource: None,
            group_kind: "apps/Deployment",
        }
    }

    fn applied_deployment() -> Value {
        serde_json::from_str(include_str!("../tests/data/ssa/deployment-apply.json"))
            .expect("fixture")
    }

    /// Stands in for what the server adds around an apply: identity, RV and the defaults nobody owns.
    fn stored(mut object: Value) -> Value {
        object["metadata"]["uid"] = json!("0b9d5d1c-2f43-4b7e-9d8e-8a4f0f7a1c11");
        object["metadata"]["resourceVersion"] = json!("7");
        object["metadata"]["creationTimestamp"] = json!(T0);
        object["metadata"]["generation"] = json!(1);
        if let Some(spec) = object.get_mut("spec").and_then(Value::as_object_mut) {
            spec.entry("revisionHistoryLimit").or_insert(json!(10));
        }
        object
    }

    fn entries(object: &Value) -> Vec<(String, String, Option<String>)> {
        object["metadata"]["managedFields"]
            .as_array()
            .map(|list| {
                list.iter()
                    .map(|e| {
                        (
                            e["manager"].as_str().unwrap_or_default().to_string(),
                            e["operation"].as_str().unwrap_or_default().to_string(),
                            e.get("subresource")
                                .and_then(Value::as_str)
                                .map(str::to_string),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default()
    }

    fn fields_of<'v>(object: &'v Value, manager: &str, operation: &str) -> &'v Value {
        object["metadata"]["managedFields"]
            .as_array()
            .and_then(|list| {
                list.iter()
                    .find(|e| e["manager"] == manager && e["operation"] == operation)
            })
            .map(|e| &e["fieldsV1"])
            .unwrap_or(&Value::Null)
    }

    fn containers(object: &Value) -> &Vec<Value> {
        object["spec"]["template"]["spec"]["containers"]
            .as_array()
            .expect("containers")
    }

    #[test]
    fn apply_creates_with_one_apply_entry_in_fields_v1() {
        let created =
            apply(None, &applied_deployment(), &ctx("kubectl", T0), false).expect("no conflicts");
        assert_eq!(created["spec"]["replicas"], 2);
        assert_eq!(
            containers(&created)[0]["ports"],
            json!([{"containerPort": 80}])
        );
        let managed = created["metadata"]["managedFields"]
            .as_array()
            .expect("managedFields");
        assert_eq!(managed.len(), 1);
        let entry = &managed[0];
        assert_eq!(entry["manager"], "kubectl");
        assert_eq!(entry["operation"], "Apply");
        assert_eq!(entry["apiVersion"], "apps/v1");
        assert_eq!(entry["time"], T0);
        assert_eq!(entry["fieldsType"], "FieldsV1");
        assert!(entry.get("subresource").is_none());
        let expected: Value = serde_json::from_str(include_str!(
            "../tests/data/ssa/deployment-apply-fields.json"
        ))
        .expect("fixture");
        assert_eq!(entry["fieldsV1"], expected);
        let keys: Vec<&String> = entry.as_object().expect("entry").keys().collect();
        assert_eq!(
            keys,
            [
                "manager",
                "operation",
                "apiVersion",
                "time",
                "fieldsType",
                "fieldsV1"
            ]
        );
    }

    #[test]
    fn reapplying_the_same_configuration_changes_nothing() {
        let live =
            stored(apply(None, &applied_deployment(), &ctx("kubectl", T0), false).expect("create"));
        let again = apply(
            Some(&live),
            &applied_deployment(),
            &ctx("kubectl", T1),
            false,
        )
        .expect("no conflicts");
        assert_eq!(
            again, live,
            "same object, same timestamps: the server can skip the write"
        );
    }

    #[test]
    fn two_managers_applying_equal_values_share_ownership() {
        let live =
            stored(apply(None, &applied_deployment(), &ctx("kubectl", T0), false).expect("create"));
        let mine = json!({"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"web","namespace":"default"},
            "spec":{"replicas":2}});
        let shared = apply(Some(&live), &mine, &ctx("drgitops", T1), false)
            .expect("equal value: no conflict");
        assert_eq!(shared["spec"]["replicas"], 2);
        assert_eq!(
            fields_of(&shared, "drgitops", "Apply"),
            &json!({"f:spec":{"f:replicas":{}}})
        );
        assert_eq!(
            fields_of(&shared, "kubectl", "Apply")["f:spec"]["f:replicas"],
            json!({})
        );
    }

    #[test]
    fn a_differing_value_owned_by_an_applier_conflicts_with_its_exact_message() {
        let live =
            stored(apply(None, &applied_deployment(), &ctx("kubectl", T0), false).expect("create"));
        let mine = json!({"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"web"},"spec":{"replicas":5}});
        let err = apply(Some(&live), &mine, &ctx("drgitops", T1), false).expect_err("conflict");
        assert_eq!(
            err.message(),
            r#"Apply failed with 1 conflict: conflict with "kubectl": .spec.replicas"#
        );
        assert_eq!(
            err.causes(),
            vec![
                json!({"reason":"FieldManagerConflict","message":"conflict with \"kubectl\"","field":".spec.replicas"})
            ]
        );
        assert_eq!(err.to_string(), err.message());
        assert_eq!(
            err.status(),
            json!({"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure",
                "message":"Apply failed with 1 conflict: conflict with \"kubectl\": .spec.replicas","reason":"Conflict",
                "details":{"causes":[{"reason":"FieldManagerConflict","message":"conflict with \"kubectl\"","field":".spec.replicas"}]},
                "code":409})
        );
    }

    #[test]
    fn a_differing_value_owned_by_an_updater_names_its_version_and_time() {
        let created = record_update(
            None,
            &stored(applied_deployment()),
            &ctx("my-controller", T0),
        );
        let mine = json!({"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"web"},"spec":{"replicas":1}});
        let err = apply(Some(&created), &mine, &ctx("drgitops", T1), false).expect_err("conflict");
        assert_eq!(
            err.message(),
            r#"Apply failed with 1 conflict: conflict with "my-controller" using apps/v1 at 2026-01-01T00:00:00Z: .spec.replicas"#
        );
    }

    #[test]
    fn several_conflicts_are_grouped_by_manager() {
        let live =
            stored(apply(None, &applied_deployment(), &ctx("kubectl", T0), false).expect("create"));
        let scaled = record_update(
            Some(&live),
            &merge_into(&live, json!({"metadata":{"annotations":{"team":"blue"}}})),
            &ctx("kubectl-annotate", T1),
        );
        let mine = json!({"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"web","annotations":{"team":"red"}},
            "spec":{"replicas":4,"template":{"spec":{"containers":[{"name":"nginx","image":"nginx:2"}]}}}});
        let err = apply(Some(&scaled), &mine, &ctx("drgitops", T2), false).expect_err("conflicts");
        assert_eq!(
            err.message(),
            "Apply failed with 3 conflicts: conflicts with \"kubectl\":\n- .spec.replicas\n- .spec.template.spec.containers[name=\"nginx\"].image\nconflicts with \"kubectl-annotate\" using apps/v1 at 2026-01-01T00:01:00Z:\n- .metadata.annotations.team"
        );
        let fields: Vec<Value> = err.causes().iter().map(|c| c["field"].clone()).collect();
        assert_eq!(
            fields,
            [
                json!(".spec.replicas"),
                json!(".spec.template.spec.containers[name=\"nginx\"].image"),
                json!(".metadata.annotations.team")
            ]
        );
    }

    fn merge_into(object: &Value, patch: Value) -> Value {
        crate::patch::merge_patch(object, &patch)
    }

    #[test]
    fn force_takes_ownership_and_drops_emptied_entries() {
        let live =
            stored(apply(None, &applied_deployment(), &ctx("kubectl", T0), false).expect("create"));
        let scaled = record_update(
            Some(&live),
            &merge_into(&live, json!({"spec":{"replicas":3}})),
            &FieldManagerCtx {
                subresource: Some("scale"),
                ..ctx("kubectl-scale", T1)
            },
        );
        assert_eq!(
            fields_of(&scaled, "kubectl-scale", "Update"),
            &json!({"f:spec":{"f:replicas":{}}})
        );
        assert!(
            fields_of(&scaled, "kubectl", "Apply")["f:spec"]
                .get("f:replicas")
                .is_none(),
            "updater took it"
        );

        let mine = json!({"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"web"},"spec":{"replicas":1}});
        let err = apply(Some(&scaled), &mine, &ctx("drgitops", T2), false).expect_err("conflict");
        assert_eq!(
            err.message(),
            r#"Apply failed with 1 conflict: conflict with "kubectl-scale" with subresource "scale" using apps/v1 at 2026-01-01T00:01:00Z: .spec.replicas"#
        );
        let forced = apply(Some(&scaled), &mine, &ctx("drgitops", T2), true).expect("force wins");
        assert_eq!(forced["spec"]["replicas"], 1);
        assert_eq!(
            entries(&forced),
            [
                ("kubectl".to_string(), "Apply".to_string(), None),
                ("drgitops".to_string(), "Apply".to_string(), None),
            ],
            "the scaler owned nothing else, so its entry is gone; entries sort by operation, then time"
        );
        assert_eq!(
            fields_of(&forced, "drgitops", "Apply"),
            &json!({"f:spec":{"f:replicas":{}}})
        );
    }

    #[test]
    fn a_field_dropped_from_the_configuration_is_removed_unless_someone_else_owns_it() {
        let mut config = applied_deployment();
        config["metadata"]["labels"]["tier"] = json!("front");
        config["metadata"]["annotations"] = json!({"note": "x"});
        let live = stored(apply(None, &config, &ctx("kubectl", T0), false).expect("create"));

        // Someone else applies the same tier label: shared ownership.
        let other = json!({"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"web","labels":{"tier":"front"}}});
        let live = apply(Some(&live), &other, &ctx("labeller", T1), false).expect("equal value");

        // kubectl stops applying the tier label, the annotation and the replicas.
        let mut reduced = applied_deployment();
        reduced["spec"]
            .as_object_mut()
            .expect("spec")
            .shift_remove("replicas");
        let after = apply(Some(&live), &reduced, &ctx("kubectl", T2), false).expect("no conflicts");
        assert_eq!(
            after["metadata"]["labels"],
            json!({"app":"web","tier":"front"}),
            "labeller still owns tier"
        );
        assert!(
            after["metadata"].get("annotations").is_none(),
            "nobody owns the annotation: removed"
        );
        assert!(
            after["spec"].get("replicas").is_none(),
            "nobody owns replicas: removed"
        );
        assert_eq!(
            after["spec"]["revisionHistoryLimit"], 10,
            "fields never applied stay"
        );
        assert!(
            fields_of(&after, "kubectl", "Apply")["f:metadata"]["f:labels"]
                .get("f:tier")
                .is_none()
        );
    }

    #[test]
    fn containers_merge_by_name_between_managers() {
        let live =
            stored(apply(None, &applied_deployment(), &ctx("kubectl", T0), false).expect("create"));
        let sidecar = json!({"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"web"},
            "spec":{"template":{"spec":{"containers":[{"name":"proxy","image":"envoy:1"}]}}}});
        let both = apply(Some(&live), &sidecar, &ctx("injector", T1), false)
            .expect("different item: no conflict");
        let names: Vec<&str> = containers(&both)
            .iter()
            .filter_map(|c| c["name"].as_str())
            .collect();
        assert_eq!(names, ["nginx", "proxy"]);
        assert_eq!(containers(&both)[0]["image"], "nginx:1.27");

        // kubectl re-applies its own container only: the injector's container stays.
        let again = apply(
            Some(&both),
            &applied_deployment(),
            &ctx("kubectl", T2),
            false,
        )
        .expect("no conflicts");
        assert_eq!(containers(&again).len(), 2);

        // The injector drops its container: it goes, kubectl's stays.
        let dropped = json!({"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"web","labels":{"x":"y"}}});
        let after =
            apply(Some(&again), &dropped, &ctx("injector", T2), false).expect("no conflicts");
        let names: Vec<&str> = containers(&after)
            .iter()
            .filter_map(|c| c["name"].as_str())
            .collect();
        assert_eq!(names, ["nginx"]);
    }

    #[test]
    fn ports_are_keyed_by_container_port_and_defaulted_protocol() {
        let mut live =
            stored(apply(None, &applied_deployment(), &ctx("kubectl", T0), false).expect("create"));
        // The server defaults the protocol; the applied item without it is still the same item.
        live["spec"]["template"]["spec"]["containers"][0]["ports"][0]["protocol"] = json!("TCP");
        let mut config = applied_deployment();
        config["spec"]["template"]["spec"]["containers"][0]["ports"] = json!([{"containerPort": 80, "name": "http"}, {"containerPort": 53, "protocol": "UDP"}]);
        let after = apply(Some(&live), &config, &ctx("kubectl", T1), false).expect("no conflicts");
        assert_eq!(
            containers(&after)[0]["ports"],
            json!([{"containerPort":80,"protocol":"TCP","name":"http"},{"containerPort":53,"protocol":"UDP"}])
        );
        let ports = &fields_of(&after, "kubectl", "Apply")["f:spec"]["f:template"]["f:spec"]["f:containers"]
            [r#"k:{"name":"nginx"}"#]["f:ports"];
        assert_eq!(
            ports,
            &json!({
                r#"k:{"containerPort":53,"protocol":"UDP"}"#: {".": {}, "f:containerPort": {}, "f:protocol": {}},
                r#"k:{"containerPort":80,"protocol":"TCP"}"#: {".": {}, "f:containerPort": {}, "f:name": {}}
            })
        );
    }

    #[test]
    fn the_deployment_selector_is_one_atomic_field() {
        let live =
            stored(apply(None, &applied_deployment(), &ctx("kubectl", T0), false).expect("create"));
        let other = json!({"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"web"},
            "spec":{"selector":{"matchLabels":{"app":"web","extra":"1"}}}});
        let err =
            apply(Some(&live), &other, &ctx("drgitops", T1), false).expect_err("selector differs");
        assert_eq!(
            err.message(),
            r#"Apply failed with 1 conflict: conflict with "kubectl": .spec.selector"#
        );
        let forced = apply(Some(&live), &other, &ctx("drgitops", T1), true).expect("forced");
        assert_eq!(
            forced["spec"]["selector"],
            json!({"matchLabels":{"app":"web","extra":"1"}}),
            "replaced, not merged"
        );
    }

    #[test]
    fn record_update_on_create_owns_every_field_with_map_markers() {
        let object = json!({"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"c","namespace":"default","labels":{"a":"1"}},
            "data":{"k":"v"}});
        let created = record_update(
            None,
            &object,
            &FieldManagerCtx {
                api_version: "v1",
                group_kind: "/ConfigMap",
                ..ctx("kubectl-create", T0)
            },
        );
        assert_eq!(
            fields_of(&created, "kubectl-create", "Update"),
            &json!({"f:data":{".":{},"f:k":{}},"f:metadata":{"f:labels":{".":{},"f:a":{}}}})
        );
        assert_eq!(created["data"], json!({"k":"v"}));
    }

    #[test]
    fn record_update_transfers_ownership_of_changed_fields_only() {
        let live =
            stored(apply(None, &applied_deployment(), &ctx("kubectl", T0), false).expect("create"));
        let mut new = live.clone();
        new["spec"]["template"]["spec"]["containers"][0]["image"] = json!("nginx:1.28");
        new["spec"]["replicas"] = json!(2); // same value: stays with kubectl
        let updated = record_update(Some(&live), &new, &ctx("kubectl-set", T1));
        assert_eq!(
            fields_of(&updated, "kubectl-set", "Update"),
            &json!({"f:spec":{"f:template":{"f:spec":{"f:containers":{r#"k:{"name":"nginx"}"#:{"f:image":{}}}}}}})
        );
        let kubectl = fields_of(&updated, "kubectl", "Apply");
        assert!(
            kubectl["f:spec"]["f:template"]["f:spec"]["f:containers"][r#"k:{"name":"nginx"}"#]
                .get("f:image")
                .is_none()
        );
        assert_eq!(kubectl["f:spec"]["f:replicas"], json!({}));

        // A write that changes nothing keeps managedFields byte for byte.
        let noop = record_update(Some(&updated), &updated, &ctx("someone", T2));
        assert_eq!(noop, updated);

        // A later write by the same manager folds into its entry and moves its time.
        let mut newer = updated.clone();
        newer["spec"]["template"]["spec"]["containers"][0]["image"] = json!("nginx:1.29");
        newer["metadata"]["annotations"] = json!({"a": "b"});
        let again = record_update(Some(&updated), &newer, &ctx("kubectl-set", T2));
        let own: Vec<&Value> = again["metadata"]["managedFields"]
            .as_array()
            .expect("entries")
            .iter()
            .filter(|e| e["manager"] == "kubectl-set")
            .collect();
        assert_eq!(own.len(), 1);
        assert_eq!(own[0]["time"], T2);
        assert_eq!(
            own[0]["fieldsV1"]["f:metadata"],
            json!({"f:annotations":{".":{},"f:a":{}}})
        );
    }

    #[test]
    fn removing_a_field_takes_it_from_every_owner() {
        let live =
            stored(apply(None, &applied_deployment(), &ctx("kubectl", T0), false).expect("create"));
        let mut new = live.clone();
        new["metadata"]
            .as_object_mut()
            .expect("metadata")
            .shift_remove("labels");
        let updated = record_update(Some(&live), &new, &ctx("kubectl-edit", T1));
        assert!(fields_of(&updated, "kubectl", "Apply")["f:metadata"].is_null());
        assert!(
            fields_of(&updated, "kubectl-edit", "Update").is_null(),
            "a pure removal owns nothing"
        );
    }

    #[test]
    fn custom_resources_treat_lists_as_atomic_and_finalizers_as_a_set() {
        let gk = "stork.libopenstorage.org/MigrationSchedule";
        let cr = FieldManagerCtx {
            api_version: "stork.libopenstorage.org/v1alpha1",
            group_kind: gk,
            ..ctx("drgitops", T0)
        };
        let config = json!({"apiVersion":"stork.libopenstorage.org/v1alpha1","kind":"MigrationSchedule",
            "metadata":{"name":"m","namespace":"app","finalizers":["drgitops.io/guard"]},
            "spec":{"template":{"spec":{"namespaces":["app"],"startApplications":false}}}});
        let created = apply(None, &config, &cr, false).expect("create");
        assert_eq!(
            fields_of(&created, "drgitops", "Apply"),
            &json!({"f:metadata":{"f:finalizers":{r#"v:"drgitops.io/guard""#:{}}},
                "f:spec":{"f:template":{"f:spec":{"f:namespaces":{},"f:startApplications":{}}}}})
        );
        let other = json!({"apiVersion":"stork.libopenstorage.org/v1alpha1","kind":"MigrationSchedule",
            "metadata":{"name":"m","finalizers":["other.io/x"]},"spec":{"template":{"spec":{"namespaces":["app","db"]}}}});
        let err = apply(
            Some(&created),
            &other,
            &FieldManagerCtx {
                manager: "other",
                ..cr
            },
            false,
        )
        .expect_err("atomic list");
        assert_eq!(
            err.message(),
            r#"Apply failed with 1 conflict: conflict with "drgitops": .spec.template.spec.namespaces"#
        );
        let forced = apply(
            Some(&created),
            &other,
            &FieldManagerCtx {
                manager: "other",
                ..cr
            },
            true,
        )
        .expect("forced");
        assert_eq!(
            forced["metadata"]["finalizers"],
            json!(["drgitops.io/guard", "other.io/x"]),
            "set lists union"
        );
        assert_eq!(
            forced["spec"]["template"]["spec"]["namespaces"],
            json!(["app", "db"])
        );
    }

    #[test]
    fn status_applies_touch_only_status_and_record_the_subresource() {
        let live =
            stored(apply(None, &applied_deployment(), &ctx("kubectl", T0), false).expect("create"));
        let mut status = applied_deployment();
        status["spec"]["replicas"] = json!(9);
        status["status"] =
            json!({"replicas": 2, "conditions": [{"type": "Available", "status": "True"}]});
        let after = apply(
            Some(&live),
            &status,
            &FieldManagerCtx {
                subresource: Some("status"),
                ..ctx("controller", T1)
            },
            false,
        )
        .expect("status fields are nobody else's");
        assert_eq!(
            after["spec"]["replicas"], 2,
            "spec untouched by a status apply"
        );
        assert_eq!(after["status"]["replicas"], 2);
        assert_eq!(
            entries(&after),
            [
                ("kubectl".to_string(), "Apply".to_string(), None),
                (
                    "controller".to_string(),
                    "Apply".to_string(),
                    Some("status".to_string())
                ),
            ]
        );
        assert_eq!(
            fields_of(&after, "controller", "Apply"),
            &json!({"f:status":{"f:conditions":{r#"k:{"type":"Available"}"#:{".":{},"f:status":{},"f:type":{}}},"f:replicas":{}}})
        );
    }

    #[test]
    fn applying_null_clears_a_field_and_conflicts_with_its_owner() {
        let live =
            stored(apply(None, &applied_deployment(), &ctx("kubectl", T0), false).expect("create"));
        let nulling = json!({"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"web"},"spec":{"replicas":null}});
        let err = apply(Some(&live), &nulling, &ctx("drgitops", T1), false)
            .expect_err("owned by kubectl");
        assert_eq!(err.conflicts[0].field, ".spec.replicas");
        let forced = apply(Some(&live), &nulling, &ctx("drgitops", T1), true).expect("forced");
        assert!(forced["spec"].get("replicas").is_none());
    }

    #[test]
    fn an_object_without_managed_fields_is_owned_by_before_first_apply() {
        let mut live = stored(applied_deployment());
        live["metadata"]["labels"]["legacy"] = json!("yes");
        let mine = json!({"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"web"},"spec":{"replicas":7}});
        let err = apply(Some(&live), &mine, &ctx("drgitops", T1), false)
            .expect_err("existing value differs");
        assert_eq!(
            err.message(),
            r#"Apply failed with 1 conflict: conflict with "before-first-apply" using apps/v1 at 2026-01-01T00:01:00Z: .spec.replicas"#
        );
        let same = json!({"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"web"},"spec":{"replicas":2}});
        let shared = apply(Some(&live), &same, &ctx("drgitops", T1), false).expect("equal value");
        assert_eq!(
            entries(&shared),
            [
                ("drgitops".to_string(), "Apply".to_string(), None),
                (BEFORE_FIRST_APPLY.to_string(), "Update".to_string(), None),
            ]
        );
        assert_eq!(
            fields_of(&shared, BEFORE_FIRST_APPLY, "Update")["f:metadata"]["f:labels"]["f:legacy"],
            json!({})
        );
    }

    #[test]
    fn the_update_manager_comes_from_field_manager_or_user_agent() {
        let cases = [
            (
                Some("drgitops"),
                Some("kubectl/v1.32.4 (linux/amd64) kubernetes/abc"),
                "drgitops",
            ),
            (
                None,
                Some("kubectl-annotate/v1.32.4 (linux/amd64) kubernetes/abc"),
                "kubectl-annotate",
            ),
            (Some(""), Some("kubectl-create/v1.32.4"), "kubectl-create"),
            (None, Some("kube-rs"), "kube-rs"),
            (None, None, ""),
        ];
        for (field_manager, user_agent, expected) in cases {
            assert_eq!(
                manager_for_update(field_manager, user_agent),
                expected,
                "{field_manager:?} {user_agent:?}"
            );
        }
    }

    #[test]
    fn kubectl_generated_manifests_with_null_timestamps_apply_cleanly() {
        // `kubectl create deployment --dry-run=client -o yaml` output, as `kubectl apply --server-side` sends it.
        let mut manifest = applied_deployment();
        manifest["metadata"]["creationTimestamp"] = Value::Null;
        manifest["spec"]["template"]["metadata"]["creationTimestamp"] = Value::Null;
        manifest["status"] = json!({});
        let created = stored(apply(None, &manifest, &ctx("kubectl", T0), false).expect("create"));
        assert_eq!(created["metadata"]["creationTimestamp"], T0);
        assert!(
            created["spec"]["template"]["metadata"]
                .get("creationTimestamp")
                .is_none()
        );
        assert!(
            fields_of(&created, "kubectl", "Apply")
                .get("f:status")
                .is_none(),
            "an empty map claims nothing"
        );

        let again =
            apply(Some(&created), &manifest, &ctx("kubectl", T1), false).expect("no conflicts");
        assert_eq!(
            again["metadata"]["creationTimestamp"], T0,
            "server-owned metadata survives a null"
        );
        assert_eq!(again, created, "a repeated apply is a no-op");
    }

    #[test]
    fn record_update_on_create_marks_only_maps_the_go_zero_value_lacks() {
        let mut object = stored(applied_deployment());
        object["spec"]["strategy"] = json!({"type":"RollingUpdate","rollingUpdate":{"maxSurge":"25%","maxUnavailable":"25%"}});
        object["spec"]["template"]["spec"]["containers"][0]["resources"] = json!({});
        let created = record_update(None, &object, &ctx("kube-rs", T0));
        let fields = fields_of(&created, "kube-rs", "Update");
        let spec = &fields["f:spec"];
        assert!(spec.get(".").is_none(), "spec is always serialised");
        assert!(
            spec["f:strategy"].get(".").is_none(),
            "strategy is a struct, not a pointer"
        );
        assert_eq!(
            spec["f:strategy"]["f:rollingUpdate"],
            json!({".":{},"f:maxSurge":{},"f:maxUnavailable":{}})
        );
        assert_eq!(spec["f:selector"], json!({}), "atomic");
        assert_eq!(
            spec["f:revisionHistoryLimit"],
            json!({}),
            "defaults belong to the writer"
        );
        assert_eq!(
            spec["f:template"]["f:metadata"]["f:labels"],
            json!({".":{},"f:app":{}})
        );
        let nginx = &spec["f:template"]["f:spec"]["f:containers"][r#"k:{"name":"nginx"}"#];
        assert_eq!(nginx["."], json!({}));
        assert_eq!(
            nginx["f:resources"],
            json!({}),
            "an empty struct in a new item is still owned"
        );
        assert_eq!(
            nginx["f:ports"],
            json!({".":{},r#"k:{"containerPort":80,"protocol":"TCP"}"#:{".":{},"f:containerPort":{}}})
        );
        assert!(
            fields["f:metadata"].get("f:uid").is_none()
                && fields["f:metadata"].get("f:name").is_none()
        );
        assert!(fields.get("f:apiVersion").is_none() && fields.get("f:kind").is_none());
    }

    #[test]
    fn a_write_may_carry_its_own_managed_fields_or_clear_them() {
        let live =
            stored(apply(None, &applied_deployment(), &ctx("kubectl", T0), false).expect("create"));
        // A write that sends managedFields of its own replaces the stored ones.
        let mut restored = live.clone();
        restored["metadata"]["managedFields"] = json!([{"manager":"restorer","operation":"Update",
            "apiVersion":"apps/v1","time":T0,"fieldsType":"FieldsV1","fieldsV1":{"f:spec":{"f:replicas":{}}}}]);
        let restored = record_update(Some(&live), &restored, &ctx("kube-rs", T1));
        assert_eq!(
            entries(&restored),
            [("restorer".to_string(), "Update".to_string(), None)]
        );

        let mut cleared = live.clone();
        cleared["metadata"]["managedFields"] = json!([{}]);
        let cleared = record_update(Some(&live), &cleared, &ctx("kubectl-edit", T1));
        assert!(cleared["metadata"].get("managedFields").is_none());

        // An empty list is ignored, so clients that drop the field do not wipe ownership.
        let mut dropped = live.clone();
        dropped["metadata"]["managedFields"] = json!([]);
        dropped["spec"]["replicas"] = json!(3);
        let dropped = record_update(Some(&live), &dropped, &ctx("kube-rs", T1));
        assert_eq!(
            entries(&dropped),
            [
                ("kubectl".to_string(), "Apply".to_string(), None),
                ("kube-rs".to_string(), "Update".to_string(), None),
            ]
        );

        // Subresource writes never take managedFields from the request.
        let mut status = live.clone();
        status["metadata"]["managedFields"] = json!([{}]);
        status["status"] = json!({"replicas": 2});
        let status = record_update(
            Some(&live),
            &status,
            &FieldManagerCtx {
                subresource: Some("status"),
                ..ctx("controller", T1)
            },
        );
        assert_eq!(entries(&status).len(), 2);
    }

    #[test]
    fn a_crd_schema_makes_custom_resource_lists_associative() {
        let crd: Value =
            serde_json::from_str(include_str!("../tests/data/ssa/crd-list-types.json"))
                .expect("fixture");
        let schema = SchemaListTypes::from_crd(&crd, "v1alpha1");
        let cr = |manager| FieldManagerCtx {
            api_version: "drgitops.io/v1alpha1",
            group_kind: "drgitops.io/DRPlan",
            ..ctx(manager, T0)
        };
        let first = json!({"apiVersion":"drgitops.io/v1alpha1","kind":"DRPlan","metadata":{"name":"p"},
            "spec":{"namespaces":["app"],"steps":[{"name":"suspend","action":"scale-down"}],
                "selector":{"tier":"db"},"targets":["a"]}});
        let live =
            apply_with_schema(None, &first, &cr("alice"), false, Some(&schema)).expect("create");
        assert_eq!(
            fields_of(&live, "alice", "Apply")["f:spec"],
            json!({"f:namespaces":{r#"v:"app""#:{}},"f:selector":{},"f:steps":{
                r#"k:{"name":"suspend","phase":"Failover"}"#:{".":{},"f:action":{},"f:name":{}}},"f:targets":{}})
        );

        // Another manager adds its own step, namespace and condition: merged, no conflict.
        let second = json!({"apiVersion":"drgitops.io/v1alpha1","kind":"DRPlan","metadata":{"name":"p"},
            "spec":{"namespaces":["db"],"steps":[{"name":"suspend","phase":"Failback","action":"scale-up"}]}});
        let merged = apply_with_schema(Some(&live), &second, &cr("bob"), false, Some(&schema))
            .expect("no overlap");
        assert_eq!(merged["spec"]["namespaces"], json!(["app", "db"]));
        assert_eq!(
            merged["spec"]["steps"],
            json!([{"name":"suspend","action":"scale-down"},{"name":"suspend","phase":"Failback","action":"scale-up"}])
        );

        // Undeclared lists and atomic maps are single fields.
        let third = json!({"apiVersion":"drgitops.io/v1alpha1","kind":"DRPlan","metadata":{"name":"p"},
            "spec":{"selector":{"tier":"db","zone":"b"},"targets":["a","b"]}});
        let err = apply_with_schema(Some(&merged), &third, &cr("carol"), false, Some(&schema))
            .expect_err("conflicts");
        assert_eq!(
            err.message(),
            "Apply failed with 2 conflicts: conflicts with \"alice\":\n- .spec.selector\n- .spec.targets"
        );

        // Without the schema the same lists are atomic: bob's lists would replace alice's.
        let plain = apply(None, &first, &cr("alice"), false).expect("create");
        let err =
            apply(Some(&plain), &second, &cr("bob"), false).expect_err("atomic without schema");
        let fields: Vec<&str> = err.conflicts.iter().map(|c| c.field.as_str()).collect();
        assert_eq!(fields, [".spec.namespaces", ".spec.steps"]);

        // Status conditions merge by type, and record_update understands them too.
        let mut with_status = merged.clone();
        with_status["status"] = json!({"conditions":[{"type":"Ready","status":"True"}]});
        let updated = record_update_with_schema(
            Some(&merged),
            &with_status,
            &FieldManagerCtx {
                subresource: Some("status"),
                ..cr("controller")
            },
            Some(&schema),
        );
        assert_eq!(
            fields_of(&updated, "controller", "Update"),
            &json!({"f:status":{".":{},"f:conditions":{".":{},r#"k:{"type":"Ready"}"#:{".":{},"f:status":{},"f:type":{}}}}})
        );
        assert!(SchemaListTypes::from_crd(&crd, "v9").declared.is_empty());
    }

    #[test]
    fn stored_fields_v1_round_trips() {
        let value: Value = serde_json::from_str(include_str!(
            "../tests/data/ssa/deployment-apply-fields.json"
        ))
        .expect("fixture");
        assert_eq!(FieldSet::from_fields_v1(&value).to_fields_v1(), value);
        let with_index = json!({"f:spec":{"f:list":{"i:0":{"f:a":{}}}}});
        assert_eq!(
            FieldSet::from_fields_v1(&with_index).to_fields_v1(),
            with_index
        );
    }
}
