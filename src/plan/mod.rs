//! The `DRPlan` custom resource (`drgitops.dev/v1alpha1`): its type, validation, CRD and rendering. Pure.
//!
//! In: DRPlan manifests. Out: typed plans ([`types`]), field-path validation errors ([`validate`]) and the
//! CustomResourceDefinition ([`crd`]).

pub mod crd;
pub mod render;
pub mod types;
pub mod validate;

pub use types::*;
