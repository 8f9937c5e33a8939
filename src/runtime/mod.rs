//! What a long-running drgitops process needs besides its job: logging, signals, the leader lease, and the
//! reconciler's metrics registry.
//!
//! Depends on nothing else in the crate but the admission span's name; `source`, `reconcile`, `webhook` and
//! `cli` use it.

pub mod leader;
pub mod logging;
pub mod metrics;
pub mod signals;
