//! Borrowing accessors over the admitted object's JSON, so rules read only the fields they check and can name
//! a field of the wrong type precisely (Stork's CRDs have no schema: the API server stores anything).

use serde_json::Value;

use crate::stork::keys::{DEFAULT_STORAGE_CLASS_KEYS, is_default_class_value};

/// A field as found in the object.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Field<'a, T> {
    /// Absent or `null` (Go reads both as the zero value).
    Absent,
    Present(T),
    /// Present with a JSON type Stork would fail to read.
    WrongType(&'a Value),
}

/// The value at `path` (object keys), if every step exists.
pub fn get<'a>(v: &'a Value, path: &[&str]) -> Option<&'a Value> {
    path.iter()
        .try_fold(v, |cur, key| cur.get(*key))
        .filter(|v| !v.is_null())
}

pub fn bool_at<'a>(v: &'a Value, path: &[&str]) -> Field<'a, bool> {
    match get(v, path) {
        None => Field::Absent,
        Some(Value::Bool(b)) => Field::Present(*b),
        Some(other) => Field::WrongType(other),
    }
}

pub fn str_at<'a>(v: &'a Value, path: &[&str]) -> Field<'a, &'a str> {
    match get(v, path) {
        None => Field::Absent,
        Some(Value::String(s)) => Field::Present(s.as_str()),
        Some(other) => Field::WrongType(other),
    }
}

pub fn array_at<'a>(v: &'a Value, path: &[&str]) -> Field<'a, &'a [Value]> {
    match get(v, path) {
        None => Field::Absent,
        Some(Value::Array(a)) => Field::Present(a.as_slice()),
        Some(other) => Field::WrongType(other),
    }
}

pub fn object_at<'a>(v: &'a Value, path: &[&str]) -> Field<'a, &'a serde_json::Map<String, Value>> {
    match get(v, path) {
        None => Field::Absent,
        Some(Value::Object(m)) => Field::Present(m),
        Some(other) => Field::WrongType(other),
    }
}

/// An annotation's value, if present and a string.
pub fn annotation<'a>(object: &'a Value, key: &str) -> Option<&'a str> {
    object
        .get("metadata")?
        .get("annotations")?
        .get(key)?
        .as_str()
}

/// The annotation that makes a StorageClass default (GA spelling first), if any, given a lookup of its
/// annotations. The one reading of the default-class annotations, shared by the `single-default-storageclass`
/// rule, the webhook's live view and `check`'s file view, so they never disagree on how many defaults exist.
/// Kubernetes accepts exactly `"true"` (`storageutil.IsDefaultAnnotation`, used by kube-apiserver's
/// DefaultStorageClass admission): `"True"` makes no default class.
pub fn default_class_annotation<'a>(
    annotation: impl Fn(&str) -> Option<&'a str>,
) -> Option<&'static str> {
    DEFAULT_STORAGE_CLASS_KEYS
        .into_iter()
        .find(|k| annotation(k).is_some_and(is_default_class_value))
}

/// `spec.replicas` of a workload or a Scale; `None` when not an integer. Absent, a workload's count is 1 (the
/// API server's default) and a Scale's is 0: kube-apiserver omits an `autoscaling/v1` Scale's `replicas` when it
/// is 0 (`omitempty` on a plain integer).
pub fn replicas(object: &Value) -> Option<i64> {
    match get(object, &["spec", "replicas"]) {
        None if get(object, &["kind"]).and_then(Value::as_str) == Some("Scale") => Some(0),
        None => Some(1),
        Some(v) => v.as_i64(),
    }
}

/// A short rendering of a JSON value for messages.
pub fn show(v: &Value) -> String {
    let s = v.to_string();
    if s.chars().count() > 60 {
        format!("{}…", s.chars().take(57).collect::<String>())
    } else {
        s
    }
}

/// The JSON type name of a value, for "must be a boolean, got a string" messages.
pub fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "list",
        Value::Object(_) => "map",
    }
}

/// A JSON pointer from path segments, escaping `~` and `/` as RFC 6901 requires.
pub fn pointer(segments: &[&str]) -> json_patch::jsonptr::PointerBuf {
    json_patch::jsonptr::PointerBuf::from_tokens(segments.iter().copied())
}
