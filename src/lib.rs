//! drgitops: disaster recovery for Kubernetes clusters protected by Portworx Stork.
//!
//! The pure core takes data and returns data: [`stork`] (Stork's objects and keys), [`plan`] (the DRPlan, its
//! validation, rendering and the transition planner) and [`policy`] (the admission rules). The IO shell around
//! it: [`cluster`] (the views the rules read, server-side apply), [`source`] (git → DRPlans), [`reconcile`]
//! (DRPlans → Stork objects, transitions, status), [`webhook`] (AdmissionReviews → verdicts) and [`runtime`]
//! (logging, signals, leader lease, metrics). [`cli`] wires the subcommands on top and is imported by nothing.
//!
//! Dependencies point one way: `cli` → `reconcile` → `source` → `cluster` → `plan`/`policy` → `stork`, with
//! `webhook` beside `reconcile`, and `runtime` used by the shell.

// A panic in the webhook or the reconciler is an outage: outside tests, say why a value must be there (`expect`)
// or handle its absence.
#![cfg_attr(not(test), deny(clippy::unwrap_used))]

pub mod cli;
pub mod cluster;
pub mod manifest;
pub mod plan;
pub mod policy;
pub mod reconcile;
pub mod runtime;
pub mod source;
pub mod stork;
pub mod webhook;
