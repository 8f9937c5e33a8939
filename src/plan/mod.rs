//! The `DRPlan` custom resource (`drgitops.dev/v1alpha1`): its type, validation, CRD and rendering. Pure.
//!
//! In: DRPlan manifests. Out: typed plans ([`types`]), field-path validation errors ([`validate`]) and the
//! CustomResourceDefinition ([`crd`]).

pub mod age;
pub mod breakglass;
pub mod crd;
pub mod render;
pub mod transition;
pub mod types;
pub mod validate;

pub use types::*;

/// Reads an object as stored in the cluster as a DRPlan. The error is `field.path: what is wrong`, for a plan
/// stored where no schema checked it (the CRD's schema, or a webhook, normally keeps such plans out).
pub fn from_stored(object: &kube::api::DynamicObject) -> Result<DRPlan, String> {
    let value = serde_json::to_value(object).map_err(|err| err.to_string())?;
    serde_path_to_error::deserialize::<_, DRPlan>(value)
        .map_err(|err| format!("{}: {}", err.path(), err.inner()))
}
