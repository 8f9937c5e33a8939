//! The GitOps reconciler (`drgitops reconcile`): git source, apply and prune, plan controller, transitions.
pub mod transition_exec;
