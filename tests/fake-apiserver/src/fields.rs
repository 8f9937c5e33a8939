//! The seam between the REST layer and the patch/apply engines (`patch.rs`, `ssa.rs`): builds their field
//! manager context from the resource being written and maps their errors to `metav1.Status` errors.
//!
//! In: live objects, patches, the resource type and field manager. Out: patched objects with managedFields, or
//! API errors (400/415/422 for patches, 409 Conflict with `FieldManagerConflict` causes for apply).

use serde_json::{Value, json};

use crate::patch::PatchError;
use crate::resources::ResourceType;
use crate::ssa::{self, FieldManagerCtx, SchemaListTypes};
use crate::status::ApiError;
use crate::store::now_rfc3339;

fn patch_error(e: PatchError) -> ApiError {
    let (code, reason, message) = e.status();
    ApiError::new(code, reason, message)
}

/// List/map types a custom resource's schema declares; built-ins use patch.rs' own tables.
fn schema_types(rt: &ResourceType) -> Option<SchemaListTypes> {
    rt.schema
        .as_ref()
        .filter(|_| rt.custom)
        .map(SchemaListTypes::from_openapi_v3)
}

/// RFC 7386 merge patch.
pub fn merge_patch(target: &Value, patch: &Value) -> Value {
    crate::patch::merge_patch(target, patch)
}

/// RFC 6902 JSON patch with the apiserver's rule that `test` of an absent member against `null` passes.
pub fn json_patch(target: &Value, patch: &Value) -> Result<Value, ApiError> {
    crate::patch::json_patch(target, patch).map_err(patch_error)
}

/// Strategic merge patch for built-in kinds (415 for custom resources).
pub fn strategic_merge_patch(
    target: &Value,
    patch: &Value,
    group_kind: &str,
) -> Result<Value, ApiError> {
    crate::patch::strategic_merge_patch(target, patch, group_kind).map_err(patch_error)
}

/// The `(apiVersion, group/Kind)` ownership is recorded under: the Scale kind for `/scale` applies.
fn identity(rt: &ResourceType, sub: Option<&str>, object_is_scale: bool) -> (String, String) {
    if sub == Some("scale") && object_is_scale {
        ("autoscaling/v1".into(), "autoscaling/Scale".into())
    } else {
        (rt.api_version(), rt.group_kind())
    }
}

/// Server-side apply of `applied` onto `live` (None = create); conflicts become 409 Conflict.
pub fn apply(
    live: Option<&Value>,
    applied: &Value,
    rt: &ResourceType,
    manager: &str,
    sub: Option<&str>,
    force: bool,
) -> Result<Value, ApiError> {
    let (api_version, group_kind) = identity(rt, sub, true);
    let time = now_rfc3339();
    let ctx = FieldManagerCtx {
        manager,
        api_version: &api_version,
        time: &time,
        subresource: sub,
        group_kind: &group_kind,
    };
    let schema = if sub == Some("scale") {
        None
    } else {
        schema_types(rt)
    };
    ssa::apply_with_schema(live, applied, &ctx, force, schema.as_ref()).map_err(|c| {
        ApiError::new(409, "Conflict", c.message()).with_details(json!({"causes": c.causes()}))
    })
}

/// managedFields bookkeeping for a non-apply write (never conflicts).
pub fn record_update(
    old: Option<&Value>,
    new: &Value,
    rt: &ResourceType,
    manager: &str,
    sub: Option<&str>,
) -> Value {
    let (api_version, group_kind) = identity(rt, sub, false);
    let time = now_rfc3339();
    let ctx = FieldManagerCtx {
        manager,
        api_version: &api_version,
        time: &time,
        subresource: sub,
        group_kind: &group_kind,
    };
    ssa::record_update_with_schema(old, new, &ctx, schema_types(rt).as_ref())
}
