//! The GitOps reconciler (`drgitops reconcile`): git source, apply and prune, plan controller, transitions.

pub mod apply;
pub mod cli;
pub mod controller;
pub mod diff;
pub mod hooks;
pub mod leader;
pub mod manifests;
pub mod metrics;
pub mod runner;
pub mod source;
pub mod sync;
