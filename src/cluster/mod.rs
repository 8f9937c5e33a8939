//! The Kubernetes adapters: the views the admission rules read ([`crate::policy::view::ClusterView`]) — [`live`]
//! from watches for the webhook, [`file`](mod@file) from manifests for `check` — and the reconciler's writes:
//! server-side apply with ownership checks ([`apply`]) and the dry-run diff ([`diff`]); and what a pod's status
//! says about the application ([`pods`]).

pub mod apply;
pub mod diff;
pub mod file;
pub mod live;
pub mod pods;
