//! drgitops: disaster recovery for Kubernetes clusters protected by Portworx Stork.
//!
//! The pure core takes data and returns data: [`stork`] (Stork's objects and keys), [`plan`] (the DRPlan, its
//! validation, rendering and the transition planner), [`policy`] (the admission rules and the view of the
//! cluster they read) and [`manifest`] (YAML streams and the span editor). The IO shell around it: [`cluster`]
//! (the adapters of that view, server-side apply), [`source`] (git → DRPlans), [`reconcile`] (DRPlans → Stork
//! objects, transitions, status), [`webhook`] (AdmissionReviews → verdicts) and [`runtime`] (admin port,
//! logging, signals, leader lease, metrics, Events, the peer client). [`cli`] wires the subcommands on top and
//! is imported by nothing.
//!
//! Dependencies point one way: `cli` → `reconcile` → `source` → `cluster` → `policy` → `plan` → `stork`, with
//! `webhook` beside `reconcile` (→ `policy`), `manifest` under `source` and `cluster`, and `runtime` used by
//! the shell.

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
