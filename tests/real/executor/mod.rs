//! Failover and failback on real control planes (`tests/testenv`), moved from the in-memory API server: the
//! transition executor and the reconciler run in-process as the shipped `drgitops-reconciler` ServiceAccount,
//! the peer is reached as the shipped `drgitops-peer` ServiceAccount, and Stork's cluster-domain controller is
//! played by `testkit::stork`. "Running" means Ready pods, which kwok's nodes report.

mod exec;
mod reconcile;
mod requeue;
pub(crate) mod support;
