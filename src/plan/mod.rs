//! The `DRPlan` custom resource (`drgitops.dev/v1alpha1`): its type, validation, CRD and rendering. Pure.
pub mod transition;
