//! The reconciler on real control planes (`tests/testenv`): in-process [`drgitops::reconcile::runner::Reconciler`]s
//! and the `drgitops reconcile` and `drgitops status` binaries, talking to their cluster as the shipped
//! `drgitops-reconciler` ServiceAccount and to the peer as the shipped `drgitops-peer` one.
//!
//! The reconciler lists DRPlans cluster-wide and keeps one inventory and one Lease per cluster, so every test
//! that runs it has a cluster of its own; the peer that tests only read is shared (see [`support::peer`]).

mod cli;
mod controller;
mod git;
mod hooks;
mod hostile;
mod leader;
mod status;
pub(crate) mod support;
mod verify;
