//! Stork's DR objects, annotation keys and schedule-policy syntax, as Stork itself reads them. Pure.
//!
//! In: Stork manifests (JSON/YAML values). Out: typed objects that write back every field they read
//! ([`types`]), the annotation and label keys ([`keys`]), and Stork's schedule syntax ([`schedule`]).

pub mod keys;
pub mod schedule;
pub mod types;

pub use types::*;
