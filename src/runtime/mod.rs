//! What a long-running drgitops process needs besides its job: the admin port, logging, signals, the leader
//! lease, the reconciler's metrics registry, Events, and the client for the peer cluster.
//!
//! Depends on nothing else in the crate; `source`, `reconcile`, `webhook` and `cli` use it.

pub mod admin;
pub mod events;
pub mod http;
pub mod leader;
pub mod logging;
pub mod metrics;
pub mod peer;
pub mod signals;
