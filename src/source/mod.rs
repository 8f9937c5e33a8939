//! The optional built-in git source of `drgitops reconcile`: git → DRPlans stored on this cluster.
//!
//! [`git`] fetches incrementally into a bare cache, bounded in time by [`deadline`], and reads a revision's files
//! (git2) within the caps and checks of [`limits`] (pure); [`manifests`] turns those files into DRPlans or errors
//! naming file, line and field (pure); [`sync`] applies a revision's plans and prunes
//! the ones it no longer holds, fail-closed, and records what it did in a [`sync::SourceState`]; [`verify`] refuses
//! a revision whose role changes (or, with `all`, any commit) lack a trusted SSH or OpenPGP signature ([`openpgp`]
//! reads OpenPGP keys and signatures, pure); [`hooks`] checks push-notification signatures (pure). Without
//! `--git-url` (Argo CD or Flux deliver the plans) none of this runs.
//!
//! Depends on `plan` and `cluster` (server-side apply); nothing here knows how a plan is reconciled.

pub mod deadline;
pub mod git;
pub mod hooks;
pub mod limits;
pub mod manifests;
pub mod openpgp;
pub mod sync;
pub mod verify;
