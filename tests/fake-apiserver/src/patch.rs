//! The three classic patch types as kube-apiserver applies them.
//!
//! In: the stored object and the parsed request body, both `serde_json::Value`. Out: the patched object, or a
//! [`PatchError`] whose variant selects the HTTP status (422 Invalid, 400 BadRequest, 415 UnsupportedMediaType).
//!
//! - [`merge_patch`]: RFC 7386 JSON merge patch (`application/merge-patch+json`).
//! - [`json_patch()`]: RFC 6902 JSON patch (`application/json-patch+json`) with the semantics of the Go library the
//!   apiserver uses (evanphx/json-patch), in particular `test` of an absent member against `null` passing.
//! - [`strategic_merge_patch`]: `application/strategic-merge-patch+json` for built-in kinds, with the merge keys
//!   and patch strategies of the Kubernetes Go types for the lists the project's kinds carry.
//!
//! The apiserver answers a patch that does not apply with 422 `Invalid` and only the generic message
//! [`PATCH_INVALID_MESSAGE`]; [`PatchError::status`] gives the code, reason and message to send, while the
//! error's `Display` keeps the library's explanation for logs. A strategic merge patch on a custom resource is
//! 415 with [`SMP_UNSUPPORTED_MESSAGE`].
//!
//! The built-in list semantics (merge keys, set lists, atomic maps) live here too and are shared with
//! [`crate::ssa`], so both patch paths agree on what a list item's identity is.

use serde_json::{Map, Value};

/// Why a patch could not be applied; the variant picks the HTTP status.
#[derive(Debug, thiserror::Error)]
pub enum PatchError {
    /// Patch cannot be applied (bad pointer, failed test, wrong types): HTTP 422 Invalid.
    #[error("{0}")]
    Invalid(String),
    /// Malformed patch document: HTTP 400 BadRequest.
    #[error("{0}")]
    BadRequest(String),
    /// Patch type not supported for this kind (strategic merge on a custom resource): HTTP 415.
    #[error("{0}")]
    Unsupported(String),
}

/// The message of the 422 `Invalid` Status the apiserver answers a patch that does not apply with; it keeps the
/// library's explanation to itself (no causes, empty details).
pub const PATCH_INVALID_MESSAGE: &str =
    "the server rejected our request due to an error in our request";

impl PatchError {
    /// HTTP code, `reason` and `message` of the `metav1.Status` the apiserver answers this error with.
    pub fn status(&self) -> (u16, &'static str, String) {
        match self {
            PatchError::Invalid(_) => (422, "Invalid", PATCH_INVALID_MESSAGE.to_string()),
            PatchError::BadRequest(message) => (400, "BadRequest", message.clone()),
            PatchError::Unsupported(message) => (415, "UnsupportedMediaType", message.clone()),
        }
    }
}

/// The apiserver's 415 message for a strategic merge patch sent to a custom resource.
pub const SMP_UNSUPPORTED_MESSAGE: &str = "the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml";

// ---------------------------------------------------------------------------------------------------------------
// RFC 7386 merge patch
// ---------------------------------------------------------------------------------------------------------------

/// RFC 7386 JSON merge patch: objects merge recursively, `null` deletes a member, anything else replaces.
pub fn merge_patch(target: &Value, patch: &Value) -> Value {
    let Value::Object(patch_map) = patch else {
        return patch.clone();
    };
    let mut out = match target {
        Value::Object(map) => map.clone(),
        _ => Map::new(),
    };
    for (key, value) in patch_map {
        if value.is_null() {
            out.shift_remove(key);
        } else {
            let merged = merge_patch(out.get(key).unwrap_or(&Value::Null), value);
            out.insert(key.clone(), merged);
        }
    }
    Value::Object(out)
}

// ---------------------------------------------------------------------------------------------------------------
// RFC 6902 JSON patch
// ---------------------------------------------------------------------------------------------------------------

/// RFC 6902 JSON patch with the apiserver's (evanphx) rules.
///
/// evanphx rule: `test` of an absent member against `null` passes (kube-runtime finalizer() relies on it).
/// A document that is not an array of objects is [`PatchError::BadRequest`]; everything the library only finds
/// while applying (unknown `op`, missing `path`/`from`/`value`, a path that does not resolve, an index out of
/// range, a failed `test`) is [`PatchError::Invalid`], as with the apiserver. Either way nothing is applied.
pub fn json_patch(target: &Value, patch: &Value) -> Result<Value, PatchError> {
    let Value::Array(ops) = patch else {
        return Err(PatchError::BadRequest(
            "json: cannot unmarshal object into Go value of type jsonpatch.Patch".to_string(),
        ));
    };
    let ops = ops
        .iter()
        .map(Operation::parse)
        .collect::<Result<Vec<_>, _>>()?;
    let mut doc = target.clone();
    for op in &ops {
        op.apply(&mut doc)?;
    }
    Ok(doc)
}

/// One decoded JSON patch operation.
enum Operation<'a> {
    Add {
        path: Vec<String>,
        raw: &'a str,
        value: &'a Value,
    },
    Remove {
        path: Vec<String>,
        raw: &'a str,
    },
    Replace {
        path: Vec<String>,
        raw: &'a str,
        value: &'a Value,
    },
    Move {
        from: Vec<String>,
        path: Vec<String>,
        raw: &'a str,
    },
    Copy {
        from: Vec<String>,
        path: Vec<String>,
        raw: &'a str,
    },
    Test {
        path: Vec<String>,
        raw: &'a str,
        value: &'a Value,
    },
}

impl<'a> Operation<'a> {
    fn parse(op: &'a Value) -> Result<Self, PatchError> {
        let Value::Object(fields) = op else {
            return Err(PatchError::BadRequest(format!(
                "json patch operation must be an object, got {op}"
            )));
        };
        let kind = fields.get("op").and_then(Value::as_str).ok_or_else(|| {
            PatchError::Invalid(format!("json patch operation {op} has no string \"op\""))
        })?;
        let raw = fields.get("path").and_then(Value::as_str).ok_or_else(|| {
            PatchError::Invalid(format!("json patch operation {op} has no string \"path\""))
        })?;
        let path = parse_pointer(raw)?;
        let value = || {
            fields.get("value").ok_or_else(|| {
                PatchError::Invalid(format!(
                    "json patch operation {op} needs a \"value\" for \"{kind}\""
                ))
            })
        };
        let from = || -> Result<Vec<String>, PatchError> {
            let raw_from = fields.get("from").and_then(Value::as_str).ok_or_else(|| {
                PatchError::Invalid(format!(
                    "json patch operation {op} needs a string \"from\" for \"{kind}\""
                ))
            })?;
            parse_pointer(raw_from)
        };
        Ok(match kind {
            "add" => Operation::Add {
                path,
                raw,
                value: value()?,
            },
            "remove" => Operation::Remove { path, raw },
            "replace" => Operation::Replace {
                path,
                raw,
                value: value()?,
            },
            "move" => Operation::Move {
                from: from()?,
                path,
                raw,
            },
            "copy" => Operation::Copy {
                from: from()?,
                path,
                raw,
            },
            "test" => {
                // A missing "value" decodes to null in Go, so `test` without a value tests for absence/null.
                let value = fields.get("value").unwrap_or(&Value::Null);
                Operation::Test { path, raw, value }
            }
            other => {
                return Err(PatchError::Invalid(format!("Unexpected kind: {other}")));
            }
        })
    }

    fn apply(&self, doc: &mut Value) -> Result<(), PatchError> {
        match self {
            Operation::Add { path, raw, value } => add(doc, path, raw, (*value).clone(), "add"),
            Operation::Remove { path, raw } => remove(doc, path, raw, "remove").map(drop),
            Operation::Replace { path, raw, value } => {
                if path.is_empty() {
                    *doc = (*value).clone();
                    return Ok(());
                }
                let slot = lookup_mut(doc, path).ok_or_else(|| {
                    PatchError::Invalid(format!(
                        "replace operation does not apply: doc is missing key: {raw}: missing value"
                    ))
                })?;
                *slot = (*value).clone();
                Ok(())
            }
            Operation::Move { from, path, raw } => {
                if path.starts_with(from) && path.len() > from.len() {
                    return Err(PatchError::Invalid(format!(
                        "move operation does not apply: cannot move {} into its own child {raw}",
                        render_pointer(from)
                    )));
                }
                let value = remove(doc, from, &render_pointer(from), "move")?;
                add(doc, path, raw, value, "move")
            }
            Operation::Copy { from, path, raw } => {
                let value = lookup(doc, from).cloned().ok_or_else(|| {
                    PatchError::Invalid(format!(
                        "copy operation does not apply: doc is missing from path: {}: missing value",
                        render_pointer(from)
                    ))
                })?;
                add(doc, path, raw, value, "copy")
            }
            Operation::Test { path, raw, value } => test(doc, path, raw, value),
        }
    }
}

/// Splits a JSON pointer into unescaped reference tokens.
fn parse_pointer(raw: &str) -> Result<Vec<String>, PatchError> {
    if raw.is_empty() {
        return Ok(Vec::new());
    }
    let Some(rest) = raw.strip_prefix('/') else {
        return Err(PatchError::Invalid(format!(
            "json patch path {raw:?} is not a JSON pointer: it must start with \"/\""
        )));
    };
    Ok(rest
        .split('/')
        .map(|token| token.replace("~1", "/").replace("~0", "~"))
        .collect())
}

fn render_pointer(tokens: &[String]) -> String {
    tokens
        .iter()
        .map(|t| format!("/{}", t.replace('~', "~0").replace('/', "~1")))
        .collect()
}

fn array_index(token: &str, len: usize) -> Option<usize> {
    // Leading zeros and signs are not array indices in RFC 6901.
    if token.is_empty() || (token.len() > 1 && token.starts_with('0')) {
        return None;
    }
    if !token.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    token.parse::<usize>().ok().filter(|i| *i < len)
}

fn lookup<'v>(doc: &'v Value, path: &[String]) -> Option<&'v Value> {
    path.iter().try_fold(doc, |node, token| match node {
        Value::Object(map) => map.get(token),
        Value::Array(items) => array_index(token, items.len()).map(|i| &items[i]),
        _ => None,
    })
}

fn lookup_mut<'v>(doc: &'v mut Value, path: &[String]) -> Option<&'v mut Value> {
    path.iter().try_fold(doc, |node, token| match node {
        Value::Object(map) => map.get_mut(token),
        Value::Array(items) => {
            let len = items.len();
            array_index(token, len).map(move |i| &mut items[i])
        }
        _ => None,
    })
}

fn add(
    doc: &mut Value,
    path: &[String],
    raw: &str,
    value: Value,
    op: &str,
) -> Result<(), PatchError> {
    let Some((last, parent_path)) = path.split_last() else {
        *doc = value;
        return Ok(());
    };
    let missing = || {
        PatchError::Invalid(format!(
            "{op} operation does not apply: doc is missing path: \"{raw}\": missing value"
        ))
    };
    match lookup_mut(doc, parent_path).ok_or_else(missing)? {
        Value::Object(map) => {
            map.insert(last.clone(), value);
            Ok(())
        }
        Value::Array(items) => {
            let index = if last == "-" {
                items.len()
            } else {
                // Insertion may target one past the end.
                array_index(last, items.len() + 1).ok_or_else(|| {
                    PatchError::Invalid(format!(
                        "{op} operation does not apply: index {last} of {raw} is out of bounds: Unable to access invalid index: {last}: invalid index referenced"
                    ))
                })?
            };
            items.insert(index, value);
            Ok(())
        }
        _ => Err(missing()),
    }
}

fn remove(doc: &mut Value, path: &[String], raw: &str, op: &str) -> Result<Value, PatchError> {
    let missing = || {
        PatchError::Invalid(format!(
            "{op} operation does not apply: doc is missing path: \"{raw}\": missing value"
        ))
    };
    let Some((last, parent_path)) = path.split_last() else {
        return Ok(std::mem::take(doc));
    };
    match lookup_mut(doc, parent_path).ok_or_else(missing)? {
        Value::Object(map) => map.shift_remove(last).ok_or_else(missing),
        Value::Array(items) => {
            let index = array_index(last, items.len()).ok_or_else(missing)?;
            Ok(items.remove(index))
        }
        _ => Err(missing()),
    }
}

fn test(doc: &Value, path: &[String], raw: &str, expected: &Value) -> Result<(), PatchError> {
    let failed = || PatchError::Invalid(format!("testing value {raw} failed: test failed"));
    let actual = match path.split_last() {
        None => Some(doc),
        Some((last, parent_path)) => {
            let parent = lookup(doc, parent_path).ok_or_else(|| {
                PatchError::Invalid(format!(
                    "test operation does not apply: is missing path: {raw}: missing value"
                ))
            })?;
            match parent {
                Value::Object(map) => map.get(last),
                Value::Array(items) => array_index(last, items.len()).map(|i| &items[i]),
                _ => return Err(failed()),
            }
        }
    };
    // evanphx: an absent member and an explicit null both equal a null (or missing) test value.
    match actual {
        None | Some(Value::Null) if expected.is_null() => Ok(()),
        Some(actual) if json_equal(actual, expected) => Ok(()),
        _ => Err(failed()),
    }
}

/// JSON equality where numbers compare by value (`1` equals `1.0`), as Go's decoding into float64 makes them.
pub(crate) fn json_equal(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => {
            x == y || matches!((x.as_f64(), y.as_f64()), (Some(p), Some(q)) if p == q)
        }
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(p, q)| json_equal(p, q))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(k, v)| y.get(k).is_some_and(|w| json_equal(v, w)))
        }
        _ => a == b,
    }
}

// ---------------------------------------------------------------------------------------------------------------
// Built-in list semantics shared with server-side apply
// ---------------------------------------------------------------------------------------------------------------

/// API groups served by kube-apiserver itself; anything else is a custom resource.
const BUILTIN_GROUPS: &[&str] = &[
    "",
    "admissionregistration.k8s.io",
    "apiextensions.k8s.io",
    "apiregistration.k8s.io",
    "apps",
    "authentication.k8s.io",
    "authorization.k8s.io",
    "autoscaling",
    "batch",
    "certificates.k8s.io",
    "coordination.k8s.io",
    "discovery.k8s.io",
    "events.k8s.io",
    "flowcontrol.apiserver.k8s.io",
    "networking.k8s.io",
    "node.k8s.io",
    "policy",
    "rbac.authorization.k8s.io",
    "resource.k8s.io",
    "scheduling.k8s.io",
    "storage.k8s.io",
];

/// Splits `"apps/Deployment"` into `("apps", "Deployment")`; `"/ConfigMap"` and `"ConfigMap"` are core.
pub(crate) fn split_group_kind(group_kind: &str) -> (&str, &str) {
    group_kind.rsplit_once('/').unwrap_or(("", group_kind))
}

/// Whether `group_kind` names a kind compiled into kube-apiserver (so its Go struct tags define list semantics).
pub fn is_builtin(group_kind: &str) -> bool {
    BUILTIN_GROUPS.contains(&split_group_kind(group_kind).0)
}

/// Path segment standing for "an item of the list named by the previous segment" in schema paths.
pub(crate) const ITEM: &str = "[]";

const CONTAINER_LISTS: &[&str] = &["containers", "initContainers", "ephemeralContainers"];

/// Identity of the items of one list, from the Go types' `patchMergeKey`/`listType`/`listMapKey` tags.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ListSemantics {
    /// Strategic merge: the `patchMergeKey`, or `None`.
    pub smp_key: Option<&'static str>,
    /// Strategic merge: primitive list merged as a set (`patchStrategy:"merge"` without a key, e.g. finalizers).
    pub smp_merge_primitive: bool,
    /// Server-side apply: `listType=map` keys; empty with `ssa_set == false` means atomic.
    pub ssa_keys: &'static [&'static str],
    /// Server-side apply: `listType=set`.
    pub ssa_set: bool,
}

const ATOMIC: ListSemantics = ListSemantics {
    smp_key: None,
    smp_merge_primitive: false,
    ssa_keys: &[],
    ssa_set: false,
};

const fn keyed(smp_key: &'static str, ssa_keys: &'static [&'static str]) -> ListSemantics {
    ListSemantics {
        smp_key: Some(smp_key),
        smp_merge_primitive: false,
        ssa_keys,
        ssa_set: false,
    }
}

/// List semantics of the list at `path` (field names, [`ITEM`] for list items) in an object of `group_kind`.
/// Custom resources only get the ObjectMeta lists; their other lists are atomic (no schema is consulted).
pub(crate) fn list_semantics(group_kind: &str, path: &[&str]) -> ListSemantics {
    let Some((&last, parent)) = path.split_last() else {
        return ATOMIC;
    };
    let parent_last = parent.last().copied();
    if parent_last == Some("metadata") {
        return match last {
            "finalizers" => ListSemantics {
                smp_key: None,
                smp_merge_primitive: true,
                ssa_keys: &[],
                ssa_set: true,
            },
            "ownerReferences" => keyed("uid", &["uid"]),
            _ => ATOMIC,
        };
    }
    if !is_builtin(group_kind) {
        return ATOMIC;
    }
    let in_container = parent.len() >= 2
        && parent[parent.len() - 1] == ITEM
        && CONTAINER_LISTS.contains(&parent[parent.len() - 2]);
    let kind = split_group_kind(group_kind).1;
    match last {
        l if CONTAINER_LISTS.contains(&l) => keyed("name", &["name"]),
        "ports" if in_container => keyed("containerPort", &["containerPort", "protocol"]),
        "ports" if kind == "Service" && path == ["spec", "ports"] => {
            keyed("port", &["port", "protocol"])
        }
        "env" if in_container => keyed("name", &["name"]),
        "volumeMounts" if in_container => keyed("mountPath", &["mountPath"]),
        "volumeDevices" if in_container => keyed("devicePath", &["devicePath"]),
        "volumes" | "imagePullSecrets" | "schedulingGates" | "resourceClaims" => {
            keyed("name", &["name"])
        }
        "hostAliases" => keyed("ip", &["ip"]),
        "topologySpreadConstraints" => keyed("topologyKey", &["topologyKey", "whenUnsatisfiable"]),
        "conditions" if path.contains(&"status") => keyed("type", &["type"]),
        "webhooks" if path.len() == 1 => keyed("name", &["name"]),
        _ => ATOMIC,
    }
}

/// Server-side apply: maps that are one leaf (`+structType=atomic` / `+mapType=atomic`), e.g. label selectors.
pub(crate) fn is_atomic_map(group_kind: &str, path: &[&str]) -> bool {
    if !is_builtin(group_kind) {
        return false;
    }
    matches!(
        path.last().copied(),
        Some(
            "selector" | "labelSelector" | "namespaceSelector" | "objectSelector" | "nodeSelector"
        )
    ) && !path.starts_with(&["metadata"])
}

/// Defaults the apiserver fills into associative-list key fields, which server-side apply uses when the applied
/// item omits them (so `{"containerPort":80}` is the item `{"containerPort":80,"protocol":"TCP"}`).
pub(crate) fn key_default(group_kind: &str, list_path: &[&str], key: &str) -> Option<Value> {
    if !is_builtin(group_kind) {
        return None;
    }
    match (list_path.last().copied(), key) {
        (Some("ports"), "protocol") => Some(Value::String("TCP".to_string())),
        _ => None,
    }
}

// ---------------------------------------------------------------------------------------------------------------
// Strategic merge patch
// ---------------------------------------------------------------------------------------------------------------

const DIRECTIVE_PATCH: &str = "$patch";
const DIRECTIVE_RETAIN_KEYS: &str = "$retainKeys";
const PREFIX_SET_ELEMENT_ORDER: &str = "$setElementOrder/";
const PREFIX_DELETE_FROM_PRIMITIVE: &str = "$deleteFromPrimitiveList/";

/// Strategic merge for built-in kinds; `group_kind` like "apps/Deployment", "/ConfigMap" (core), e.g. containers,
/// env, volumes, ports, conditions, ownerReferences, volumeMounts by their merge keys; `$patch: replace|delete`,
/// `$setElementOrder`, `$retainKeys`, `$deleteFromPrimitiveList`. Lists without a known merge key are replaced.
///
/// A custom resource (`group_kind` outside the built-in groups) gets [`PatchError::Unsupported`] with the
/// apiserver's 415 text; a patch that is not an object or uses an unknown directive is [`PatchError::BadRequest`].
pub fn strategic_merge_patch(
    target: &Value,
    patch: &Value,
    group_kind: &str,
) -> Result<Value, PatchError> {
    if !is_builtin(group_kind) {
        return Err(PatchError::Unsupported(SMP_UNSUPPORTED_MESSAGE.to_string()));
    }
    let Value::Object(patch_map) = patch else {
        return Err(PatchError::BadRequest(format!(
            "strategic merge patch must be a JSON object, got {}",
            json_type(patch)
        )));
    };
    let mut out = match target {
        Value::Object(map) => map.clone(),
        _ => Map::new(),
    };
    let mut path = Vec::new();
    match smp_map(&mut out, patch_map, group_kind, &mut path)? {
        MapOutcome::Keep => Ok(Value::Object(out)),
        MapOutcome::Delete => Ok(Value::Object(Map::new())),
    }
}

fn json_type(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

enum MapOutcome {
    Keep,
    Delete,
}

fn smp_map<'p>(
    original: &mut Map<String, Value>,
    patch: &'p Map<String, Value>,
    group_kind: &str,
    path: &mut Vec<&'p str>,
) -> Result<MapOutcome, PatchError> {
    match patch.get(DIRECTIVE_PATCH) {
        None => {}
        Some(Value::String(directive)) => match directive.as_str() {
            "replace" => {
                *original = clean_map(patch);
                return Ok(MapOutcome::Keep);
            }
            "delete" => return Ok(MapOutcome::Delete),
            "merge" => {}
            other => {
                return Err(PatchError::BadRequest(format!(
                    "unknown patch type: {other} in map at {}",
                    render_path(path)
                )));
            }
        },
        Some(other) => {
            return Err(PatchError::BadRequest(format!(
                "$patch at {} must be a string, got {other}",
                render_path(path)
            )));
        }
    }

    let mut orders: Vec<(&'p str, &'p Vec<Value>)> = Vec::new();
    let mut deletions: Vec<(&'p str, &'p Vec<Value>)> = Vec::new();
    for (key, value) in patch {
        if key == DIRECTIVE_PATCH || key == DIRECTIVE_RETAIN_KEYS {
            continue;
        }
        if let Some(field) = key.strip_prefix(PREFIX_SET_ELEMENT_ORDER) {
            orders.push((field, directive_list(key, value, path)?));
            continue;
        }
        if let Some(field) = key.strip_prefix(PREFIX_DELETE_FROM_PRIMITIVE) {
            deletions.push((field, directive_list(key, value, path)?));
            continue;
        }
        if value.is_null() {
            original.shift_remove(key);
            continue;
        }
        path.push(key.as_str());
        let result = smp_field(original, key, value, group_kind, path);
        path.pop();
        result?;
    }

    for (field, values) in deletions {
        if let Some(Value::Array(items)) = original.get_mut(field) {
            items.retain(|item| !values.iter().any(|v| json_equal(v, item)));
        }
    }
    for (field, order) in orders {
        path.push(field);
        let semantics = list_semantics(group_kind, path);
        path.pop();
        if let Some(Value::Array(items)) = original.get_mut(field) {
            apply_element_order(items, order, semantics.smp_key);
        }
    }
    if let Some(retain) = patch.get(DIRECTIVE_RETAIN_KEYS) {
        let Value::Array(keys) = retain else {
            return Err(PatchError::BadRequest(format!(
                "$retainKeys at {} must be a list of field names",
                render_path(path)
            )));
        };
        let keys: Vec<&str> = keys.iter().filter_map(Value::as_str).collect();
        // The apiserver insists that the patch itself only sets fields it retains.
        if let Some(stray) = patch
            .keys()
            .find(|k| !k.starts_with('$') && !keys.contains(&k.as_str()) && !patch[*k].is_null())
        {
            return Err(PatchError::Invalid(format!(
                "the patch has a field {stray:?} at {} that is not listed in $retainKeys",
                render_path(path)
            )));
        }
        original.retain(|k, _| keys.contains(&k.as_str()));
    }
    Ok(MapOutcome::Keep)
}

fn directive_list<'p>(
    key: &str,
    value: &'p Value,
    path: &[&str],
) -> Result<&'p Vec<Value>, PatchError> {
    match value {
        Value::Array(items) => Ok(items),
        _ => Err(PatchError::BadRequest(format!(
            "{key} at {} must be a list, got {}",
            render_path(path),
            json_type(value)
        ))),
    }
}

/// Merges one patch member `key` into `original`; `path` already ends with `key`.
fn smp_field<'p>(
    original: &mut Map<String, Value>,
    key: &'p str,
    value: &'p Value,
    group_kind: &str,
    path: &mut Vec<&'p str>,
) -> Result<(), PatchError> {
    match (original.get_mut(key), value) {
        (Some(Value::Object(current)), Value::Object(patch_map)) => {
            if let MapOutcome::Delete = smp_map(current, patch_map, group_kind, path)? {
                original.shift_remove(key);
            }
        }
        (Some(Value::Array(current)), Value::Array(patch_items)) => {
            let semantics = list_semantics(group_kind, path);
            let merged = smp_list(current, patch_items, semantics, group_kind, path)?;
            *current = merged;
        }
        (_, Value::Object(patch_map)) if is_delete_directive(patch_map) => {
            original.shift_remove(key);
        }
        (_, new_value) => {
            original.insert(key.to_string(), clean(new_value));
        }
    }
    Ok(())
}

fn is_delete_directive(map: &Map<String, Value>) -> bool {
    map.get(DIRECTIVE_PATCH).and_then(Value::as_str) == Some("delete")
}

fn smp_list<'p>(
    current: &[Value],
    patch_items: &'p [Value],
    semantics: ListSemantics,
    group_kind: &str,
    path: &mut Vec<&'p str>,
) -> Result<Vec<Value>, PatchError> {
    // `{"$patch": "replace"}` as an element replaces the whole list with the remaining elements.
    let replace_marker = |item: &Value| {
        item.as_object().is_some_and(|m| {
            m.len() == 1 && m.get(DIRECTIVE_PATCH).and_then(Value::as_str) == Some("replace")
        })
    };
    if patch_items.iter().any(replace_marker) {
        return Ok(patch_items
            .iter()
            .filter(|i| !replace_marker(i))
            .map(clean)
            .collect());
    }
    if semantics.smp_merge_primitive {
        let mut out = current.to_vec();
        for item in patch_items {
            if !out.iter().any(|existing| json_equal(existing, item)) {
                out.push(clean(item));
            }
        }
        return Ok(out);
    }
    let Some(merge_key) = semantics.smp_key else {
        return Ok(patch_items
            .iter()
            .filter(|i| !i.is_null())
            .map(clean)
            .collect());
    };

    let mut out = current.to_vec();
    path.push(ITEM);
    for item in patch_items {
        let Value::Object(patch_item) = item else {
            path.pop();
            return Err(PatchError::BadRequest(format!(
                "list {} merges by {merge_key:?} and needs objects, got {item}",
                render_path(&path[..])
            )));
        };
        let Some(key_value) = patch_item.get(merge_key) else {
            path.pop();
            return Err(PatchError::BadRequest(format!(
                "map: {item} does not contain declared merge key: {merge_key}"
            )));
        };
        let position = out.iter().position(|existing| {
            existing
                .get(merge_key)
                .is_some_and(|v| json_equal(v, key_value))
        });
        if is_delete_directive(patch_item) {
            out.retain(|existing| {
                !existing
                    .get(merge_key)
                    .is_some_and(|v| json_equal(v, key_value))
            });
            continue;
        }
        match position {
            Some(index) => {
                if let Value::Object(existing) = &mut out[index] {
                    let outcome = smp_map(existing, patch_item, group_kind, path);
                    match outcome {
                        Ok(MapOutcome::Keep) => {}
                        Ok(MapOutcome::Delete) => {
                            out.remove(index);
                        }
                        Err(err) => {
                            path.pop();
                            return Err(err);
                        }
                    }
                } else {
                    out[index] = clean(item);
                }
            }
            None => out.push(clean(item)),
        }
    }
    path.pop();
    Ok(out)
}

/// Reorders `items` as `$setElementOrder` says; items it does not name keep their relative order after them.
fn apply_element_order(items: &mut Vec<Value>, order: &[Value], merge_key: Option<&str>) {
    let identity = |item: &Value| -> Option<Value> {
        match merge_key {
            Some(key) => item.get(key).cloned(),
            None => Some(item.clone()),
        }
    };
    let mut remaining: Vec<Option<Value>> = std::mem::take(items).into_iter().map(Some).collect();
    for wanted in order {
        let Some(wanted) = identity(wanted) else {
            continue;
        };
        let found = remaining.iter_mut().find(|slot| {
            slot.as_ref()
                .and_then(identity)
                .is_some_and(|id| json_equal(&id, &wanted))
        });
        if let Some(item) = found.and_then(Option::take) {
            items.push(item);
        }
    }
    items.extend(remaining.into_iter().flatten());
}

/// A patch value stored as-is: directives and nulls dropped, as decoding into the Go types would.
fn clean(value: &Value) -> Value {
    match value {
        Value::Object(map) => Value::Object(clean_map(map)),
        Value::Array(items) => Value::Array(
            items
                .iter()
                .filter(|item| !item.as_object().is_some_and(is_delete_directive))
                .map(clean)
                .collect(),
        ),
        other => other.clone(),
    }
}

fn clean_map(map: &Map<String, Value>) -> Map<String, Value> {
    map.iter()
        .filter(|(k, v)| !k.starts_with('$') && !v.is_null())
        .map(|(k, v)| (k.clone(), clean(v)))
        .collect()
}

fn render_path(path: &[&str]) -> String {
    if path.is_empty() {
        return "the top level".to_string();
    }
    let mut out = String::new();
    for segment in path {
        if *segment == ITEM {
            out.push_str("[]");
        } else {
            out.push('.');
            out.push_str(segment);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn deployment() -> Value {
        serde_json::from_str(include_str!("../tests/data/patch/deployment.json"))
            .expect("fixture is JSON")
    }

    fn container<'v>(deployment: &'v Value, name: &str) -> Option<&'v Value> {
        deployment["spec"]["template"]["spec"]["containers"]
            .as_array()
            .expect("containers")
            .iter()
            .find(|c| c["name"] == name)
    }

    fn container_names(deployment: &Value) -> Vec<&str> {
        deployment["spec"]["template"]["spec"]["containers"]
            .as_array()
            .expect("containers")
            .iter()
            .filter_map(|c| c["name"].as_str())
            .collect()
    }

    // ----- RFC 7386 -----

    #[test]
    fn merge_patch_follows_the_rfc_7386_examples() {
        // RFC 7386 Appendix A, one row per example.
        let cases = [
            (json!({"a":"b"}), json!({"a":"c"}), json!({"a":"c"})),
            (json!({"a":"b"}), json!({"b":"c"}), json!({"a":"b","b":"c"})),
            (json!({"a":"b"}), json!({"a":null}), json!({})),
            (
                json!({"a":"b","b":"c"}),
                json!({"a":null}),
                json!({"b":"c"}),
            ),
            (json!({"a":["b"]}), json!({"a":"c"}), json!({"a":"c"})),
            (json!({"a":"c"}), json!({"a":["b"]}), json!({"a":["b"]})),
            (
                json!({"a":{"b":"c"}}),
                json!({"a":{"b":"d","c":null}}),
                json!({"a":{"b":"d"}}),
            ),
            (json!({"a":[{"b":"c"}]}), json!({"a":[1]}), json!({"a":[1]})),
            (json!(["a", "b"]), json!(["c", "d"]), json!(["c", "d"])),
            (json!({"a":"b"}), json!(["c"]), json!(["c"])),
            (json!({"a":"foo"}), json!(null), json!(null)),
            (json!({"a":"foo"}), json!("bar"), json!("bar")),
            (json!({"e":null}), json!({"a":1}), json!({"e":null,"a":1})),
            (json!([1, 2]), json!({"a":"b","c":null}), json!({"a":"b"})),
            (
                json!({}),
                json!({"a":{"bb":{"ccc":null}}}),
                json!({"a":{"bb":{}}}),
            ),
        ];
        for (target, patch, expected) in cases {
            assert_eq!(merge_patch(&target, &patch), expected, "{target} + {patch}");
        }
    }

    #[test]
    fn merge_patch_replaces_lists_and_keeps_key_order() {
        let patched = merge_patch(
            &deployment(),
            &json!({"metadata":{"annotations":{"team":"blue"}},"spec":{"replicas":3}}),
        );
        assert_eq!(patched["spec"]["replicas"], 3);
        assert_eq!(patched["metadata"]["annotations"]["team"], "blue");
        let keys: Vec<&String> = patched["metadata"]
            .as_object()
            .expect("metadata")
            .keys()
            .collect();
        assert_eq!(
            keys,
            ["name", "namespace", "labels", "finalizers", "annotations"]
        );
    }

    // ----- RFC 6902 -----

    #[test]
    fn json_patch_applies_every_operation() {
        let doc = json!({"a": {"b": [1, 2, 3]}, "c": "x"});
        let cases = [
            (
                json!([{"op":"add","path":"/a/d","value":true}]),
                json!({"a":{"b":[1,2,3],"d":true},"c":"x"}),
            ),
            (
                json!([{"op":"add","path":"/a/b/1","value":9}]),
                json!({"a":{"b":[1,9,2,3]},"c":"x"}),
            ),
            (
                json!([{"op":"add","path":"/a/b/-","value":4}]),
                json!({"a":{"b":[1,2,3,4]},"c":"x"}),
            ),
            (
                json!([{"op":"add","path":"/a/b/3","value":4}]),
                json!({"a":{"b":[1,2,3,4]},"c":"x"}),
            ),
            (
                json!([{"op":"remove","path":"/a/b/0"}]),
                json!({"a":{"b":[2,3]},"c":"x"}),
            ),
            (
                json!([{"op":"remove","path":"/c"}]),
                json!({"a":{"b":[1,2,3]}}),
            ),
            (
                json!([{"op":"replace","path":"/c","value":{"y":1}}]),
                json!({"a":{"b":[1,2,3]},"c":{"y":1}}),
            ),
            (
                json!([{"op":"move","from":"/c","path":"/a/c"}]),
                json!({"a":{"b":[1,2,3],"c":"x"}}),
            ),
            (
                json!([{"op":"copy","from":"/a/b/2","path":"/z"}]),
                json!({"a":{"b":[1,2,3]},"c":"x","z":3}),
            ),
            (
                json!([{"op":"test","path":"/a/b","value":[1,2,3]}]),
                doc.clone(),
            ),
            (
                json!([{"op":"test","path":"/a/b/0","value":1.0}]),
                doc.clone(),
            ),
            (json!([{"op":"replace","path":"","value":[]}]), json!([])),
            (
                json!([{"op":"add","path":"/a~1b","value":1}]),
                json!({"a":{"b":[1,2,3]},"c":"x","a/b":1}),
            ),
        ];
        for (patch, expected) in cases {
            assert_eq!(
                json_patch(&doc, &patch).expect("applies"),
                expected,
                "{patch}"
            );
        }
    }

    #[test]
    fn json_patch_test_of_absent_member_against_null_passes() {
        let doc = json!({"metadata": {"name": "x"}});
        let patched = json_patch(
            &doc,
            &json!([
                {"op":"test","path":"/metadata/finalizers","value":null},
                {"op":"add","path":"/metadata/finalizers","value":["example.com/cleanup"]}
            ]),
        )
        .expect("absent equals null");
        assert_eq!(
            patched["metadata"]["finalizers"],
            json!(["example.com/cleanup"])
        );

        let explicit_null = json!({"metadata": {"finalizers": null}});
        assert!(
            json_patch(
                &explicit_null,
                &json!([{"op":"test","path":"/metadata/finalizers","value":null}])
            )
            .is_ok()
        );

        // But a present value is not null, and a missing parent is not absent.
        let present = json!({"metadata": {"finalizers": ["a"]}});
        let err = json_patch(
            &present,
            &json!([{"op":"test","path":"/metadata/finalizers","value":null}]),
        )
        .expect_err("present list is not null");
        assert!(
            matches!(err, PatchError::Invalid(ref m) if m == "testing value /metadata/finalizers failed: test failed"),
            "{err}"
        );
        let err = json_patch(
            &json!({}),
            &json!([{"op":"test","path":"/metadata/finalizers","value":null}]),
        )
        .expect_err("parent missing");
        assert!(matches!(err, PatchError::Invalid(_)), "{err}");
    }

    #[test]
    fn kube_runtime_finalizer_patches_apply_as_on_a_real_apiserver() {
        let mut object = json!({"apiVersion":"example.com/v1","kind":"Doc","metadata":{"name":"d","namespace":"default"}});
        // finalizer(): first finalizer on an object without any.
        object = json_patch(
            &object,
            &json!([
                {"op":"test","path":"/metadata/finalizers","value":null},
                {"op":"add","path":"/metadata/finalizers","value":["documents.example.com/cleanup"]}
            ]),
        )
        .expect("first finalizer");
        // Someone else's finalizer joins through the list-append form with the exact current list tested.
        object = json_patch(&object, &json!([
            {"op":"test","path":"/metadata/finalizers","value":["documents.example.com/cleanup"]},
            {"op":"add","path":"/metadata/finalizers/-","value":"other.example.com/x"}
        ]))
        .expect("append finalizer");
        assert_eq!(
            object["metadata"]["finalizers"],
            json!(["documents.example.com/cleanup", "other.example.com/x"])
        );
        // A stale view of the list fails instead of duplicating.
        let stale = json_patch(
            &object,
            &json!([
                {"op":"test","path":"/metadata/finalizers","value":["documents.example.com/cleanup"]},
                {"op":"add","path":"/metadata/finalizers/-","value":"documents.example.com/cleanup"}
            ]),
        );
        assert!(matches!(stale, Err(PatchError::Invalid(_))));
        // Cleanup removes by index after testing it is still ours.
        object = json_patch(&object, &json!([
            {"op":"test","path":"/metadata/finalizers/0","value":"documents.example.com/cleanup"},
            {"op":"remove","path":"/metadata/finalizers/0"}
        ]))
        .expect("remove finalizer");
        assert_eq!(
            object["metadata"]["finalizers"],
            json!(["other.example.com/x"])
        );
        let wrong_index = json_patch(
            &object,
            &json!([
                {"op":"test","path":"/metadata/finalizers/0","value":"documents.example.com/cleanup"},
                {"op":"remove","path":"/metadata/finalizers/0"}
            ]),
        );
        assert!(matches!(wrong_index, Err(PatchError::Invalid(_))));
    }

    #[test]
    fn json_patch_reports_operations_that_do_not_apply_as_invalid() {
        let doc = json!({"a": {"b": [1]}});
        let cases = [
            json!([{"op":"remove","path":"/missing"}]),
            json!([{"op":"replace","path":"/a/missing","value":1}]),
            json!([{"op":"add","path":"/x/y","value":1}]),
            json!([{"op":"add","path":"/a/b/5","value":1}]),
            json!([{"op":"add","path":"/a/b/01","value":1}]),
            json!([{"op":"remove","path":"/a/b/1"}]),
            json!([{"op":"move","from":"/a","path":"/a/c"}]),
            json!([{"op":"copy","from":"/nope","path":"/c"}]),
            json!([{"op":"test","path":"/a/b/0","value":2}]),
        ];
        for patch in cases {
            let err = json_patch(&doc, &patch).expect_err("must fail");
            assert!(matches!(err, PatchError::Invalid(_)), "{patch}: {err:?}");
        }
        // Nothing is half-applied: the input is untouched and a failing later op discards earlier ones.
        let err = json_patch(
            &doc,
            &json!([{"op":"add","path":"/n","value":1},{"op":"remove","path":"/zz"}]),
        );
        assert!(err.is_err());
        assert_eq!(doc, json!({"a": {"b": [1]}}));
    }

    #[test]
    fn json_patch_reports_malformed_documents_as_bad_request() {
        let doc = json!({});
        for patch in [
            json!({"op":"add","path":"/a","value":1}),
            json!(["add"]),
            json!("x"),
        ] {
            let err = json_patch(&doc, &patch).expect_err("must fail");
            assert!(matches!(err, PatchError::BadRequest(_)), "{patch}: {err:?}");
            assert_eq!(err.status().0, 400);
        }
        // Decodable operations the library cannot carry out are 422 with the apiserver's generic message.
        let cases = [
            json!([{"path":"/a","value":1}]),
            json!([{"op":"add","value":1}]),
            json!([{"op":"add","path":"/a"}]),
            json!([{"op":"move","path":"/a"}]),
            json!([{"op":"frobnicate","path":"/a"}]),
            json!([{"op":"add","path":"a","value":1}]),
        ];
        for patch in cases {
            let err = json_patch(&doc, &patch).expect_err("must fail");
            assert!(matches!(err, PatchError::Invalid(_)), "{patch}: {err:?}");
            assert_eq!(
                err.status(),
                (
                    422,
                    "Invalid",
                    "the server rejected our request due to an error in our request".to_string()
                )
            );
        }
    }

    // ----- strategic merge -----

    #[test]
    fn strategic_merge_merges_containers_and_env_by_name() {
        let patch = json!({"spec":{"template":{"spec":{"containers":[
            {"name":"nginx","image":"nginx:1.28","env":[{"name":"B","value":"two"},{"name":"C","value":"3"}]}
        ]}}}});
        let patched =
            strategic_merge_patch(&deployment(), &patch, "apps/Deployment").expect("applies");
        assert_eq!(container_names(&patched), ["nginx", "sidecar"]);
        let nginx = container(&patched, "nginx").expect("nginx kept");
        assert_eq!(nginx["image"], "nginx:1.28");
        assert_eq!(
            nginx["args"],
            json!(["-g", "daemon off;"]),
            "untouched fields stay"
        );
        assert_eq!(
            nginx["env"],
            json!([{"name":"A","value":"1"},{"name":"B","value":"two"},{"name":"C","value":"3"}])
        );
        assert_eq!(
            container(&patched, "sidecar").expect("sidecar")["image"],
            "busybox:1.36"
        );
    }

    #[test]
    fn strategic_merge_adds_new_items_and_replaces_lists_without_merge_key() {
        let patch = json!({"spec":{"template":{"spec":{"containers":[
            {"name":"nginx","args":["-v"],"ports":[{"containerPort":443,"protocol":"TCP"}]},
            {"name":"metrics","image":"exporter:1"}
        ]}}}});
        let patched =
            strategic_merge_patch(&deployment(), &patch, "apps/Deployment").expect("applies");
        assert_eq!(container_names(&patched), ["nginx", "sidecar", "metrics"]);
        let nginx = container(&patched, "nginx").expect("nginx");
        assert_eq!(
            nginx["args"],
            json!(["-v"]),
            "args has no merge key: replaced"
        );
        assert_eq!(
            nginx["ports"],
            json!([{"containerPort":80,"protocol":"TCP"},{"containerPort":443,"protocol":"TCP"}]),
            "ports merge by containerPort"
        );
    }

    #[test]
    fn strategic_merge_honours_patch_delete_and_replace_directives() {
        let delete_item = json!({"spec":{"template":{"spec":{"containers":[{"name":"sidecar","$patch":"delete"}]}}}});
        let patched =
            strategic_merge_patch(&deployment(), &delete_item, "apps/Deployment").expect("applies");
        assert_eq!(container_names(&patched), ["nginx"]);

        let replace_map = json!({"spec":{"strategy":{"$patch":"replace","type":"Recreate"}}});
        let patched =
            strategic_merge_patch(&deployment(), &replace_map, "apps/Deployment").expect("applies");
        assert_eq!(patched["spec"]["strategy"], json!({"type":"Recreate"}));

        let delete_map = json!({"spec":{"strategy":{"rollingUpdate":{"$patch":"delete"}}}});
        let patched =
            strategic_merge_patch(&deployment(), &delete_map, "apps/Deployment").expect("applies");
        assert_eq!(patched["spec"]["strategy"], json!({"type":"RollingUpdate"}));

        let replace_list = json!({"spec":{"template":{"spec":{"containers":[{"$patch":"replace"},{"name":"only","image":"x"}]}}}});
        let patched = strategic_merge_patch(&deployment(), &replace_list, "apps/Deployment")
            .expect("applies");
        assert_eq!(
            patched["spec"]["template"]["spec"]["containers"],
            json!([{"name":"only","image":"x"}])
        );

        let bad = json!({"spec":{"strategy":{"$patch":"explode"}}});
        assert!(matches!(
            strategic_merge_patch(&deployment(), &bad, "apps/Deployment"),
            Err(PatchError::BadRequest(_))
        ));
    }

    #[test]
    fn strategic_merge_orders_lists_by_set_element_order() {
        let patch = json!({"spec":{"template":{"spec":{
            "$setElementOrder/containers":[{"name":"sidecar"},{"name":"nginx"}],
            "containers":[{"name":"sidecar","image":"busybox:1.37"}]
        }}}});
        let patched =
            strategic_merge_patch(&deployment(), &patch, "apps/Deployment").expect("applies");
        assert_eq!(container_names(&patched), ["sidecar", "nginx"]);
        assert_eq!(
            container(&patched, "sidecar").expect("sidecar")["image"],
            "busybox:1.37"
        );
        assert!(
            patched["spec"]["template"]["spec"]
                .get("$setElementOrder/containers")
                .is_none()
        );
    }

    #[test]
    fn strategic_merge_retain_keys_drops_fields_not_listed() {
        let patch = json!({"spec":{"strategy":{"$retainKeys":["type"],"type":"Recreate"}}});
        let patched =
            strategic_merge_patch(&deployment(), &patch, "apps/Deployment").expect("applies");
        assert_eq!(patched["spec"]["strategy"], json!({"type":"Recreate"}));

        let stray =
            json!({"spec":{"strategy":{"$retainKeys":["type"],"rollingUpdate":{"maxSurge":1}}}});
        assert!(matches!(
            strategic_merge_patch(&deployment(), &stray, "apps/Deployment"),
            Err(PatchError::Invalid(_))
        ));
    }

    #[test]
    fn strategic_merge_treats_finalizers_as_a_set() {
        let add = json!({"metadata":{"finalizers":["example.com/keep","example.com/other"]}});
        let patched =
            strategic_merge_patch(&deployment(), &add, "apps/Deployment").expect("applies");
        assert_eq!(
            patched["metadata"]["finalizers"],
            json!(["example.com/keep", "example.com/other"])
        );

        let delete =
            json!({"metadata":{"$deleteFromPrimitiveList/finalizers":["example.com/keep"]}});
        let patched = strategic_merge_patch(&patched, &delete, "apps/Deployment").expect("applies");
        assert_eq!(
            patched["metadata"]["finalizers"],
            json!(["example.com/other"])
        );
    }

    #[test]
    fn strategic_merge_null_deletes_and_new_values_are_stored_without_directives() {
        let patch = json!({"metadata":{"labels":{"app":null,"tier":"front"}},"spec":{"paused":true,"template":{"spec":{"volumes":[{"name":"cache","emptyDir":{"medium":null}}]}}}});
        let patched =
            strategic_merge_patch(&deployment(), &patch, "apps/Deployment").expect("applies");
        assert_eq!(patched["metadata"]["labels"], json!({"tier":"front"}));
        assert_eq!(patched["spec"]["paused"], true);
        assert_eq!(
            patched["spec"]["template"]["spec"]["volumes"],
            json!([{"name":"data","emptyDir":{}},{"name":"cache","emptyDir":{}}])
        );
    }

    #[test]
    fn strategic_merge_merges_conditions_by_type_and_owner_references_by_uid() {
        let target = json!({"metadata":{"name":"x","ownerReferences":[{"uid":"1","name":"a"}]},
            "status":{"conditions":[{"type":"Available","status":"False"},{"type":"Progressing","status":"True"}]}});
        let patch = json!({"metadata":{"ownerReferences":[{"uid":"2","name":"b"}]},
            "status":{"conditions":[{"type":"Available","status":"True"}]}});
        let patched = strategic_merge_patch(&target, &patch, "apps/Deployment").expect("applies");
        assert_eq!(
            patched["metadata"]["ownerReferences"],
            json!([{"uid":"1","name":"a"},{"uid":"2","name":"b"}])
        );
        assert_eq!(
            patched["status"]["conditions"],
            json!([{"type":"Available","status":"True"},{"type":"Progressing","status":"True"}])
        );
    }

    #[test]
    fn strategic_merge_merges_service_ports_by_port_and_orders_primitive_lists() {
        let service = json!({"apiVersion":"v1","kind":"Service","metadata":{"name":"s","finalizers":["a","b"]},
            "spec":{"ports":[{"port":80,"targetPort":8080},{"port":443,"targetPort":8443}]}});
        let patch = json!({"metadata":{"$setElementOrder/finalizers":["b","a"]},
            "spec":{"ports":[{"port":443,"targetPort":9443}]}});
        let patched = strategic_merge_patch(&service, &patch, "/Service").expect("applies");
        assert_eq!(patched["metadata"]["finalizers"], json!(["b", "a"]));
        assert_eq!(
            patched["spec"]["ports"],
            json!([{"port":80,"targetPort":8080},{"port":443,"targetPort":9443}])
        );
    }

    #[test]
    fn strategic_merge_on_configmaps_merges_data() {
        let target = json!({"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"c"},"data":{"a":"1","b":"2"}});
        let patched =
            strategic_merge_patch(&target, &json!({"data":{"b":null,"c":"3"}}), "/ConfigMap")
                .expect("applies");
        assert_eq!(patched["data"], json!({"a":"1","c":"3"}));
    }

    #[test]
    fn strategic_merge_is_unsupported_for_custom_resources_and_non_objects() {
        let err = strategic_merge_patch(
            &json!({}),
            &json!({"spec":{}}),
            "stork.libopenstorage.org/Migration",
        )
        .expect_err("CRs have no Go struct tags");
        assert!(matches!(err, PatchError::Unsupported(ref m) if m == SMP_UNSUPPORTED_MESSAGE));
        assert!(matches!(
            strategic_merge_patch(&json!({}), &json!([1]), "apps/Deployment"),
            Err(PatchError::BadRequest(_))
        ));
        let err = strategic_merge_patch(
            &deployment(),
            &json!({"spec":{"template":{"spec":{"containers":[{"image":"no-name"}]}}}}),
            "apps/Deployment",
        )
        .expect_err("merge key missing");
        assert!(
            matches!(err, PatchError::BadRequest(ref m) if m.contains("merge key: name")),
            "{err}"
        );
    }
}
