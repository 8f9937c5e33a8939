//! The GitOps reconciler (`drgitops reconcile`): git source, apply and prune, plan controller, transitions.

pub mod hooks;
pub mod metrics;
pub mod source;
