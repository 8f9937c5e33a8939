//! drgitops: disaster recovery for Kubernetes clusters protected by Portworx Stork.
//!
//! The pure core ([`stork`], [`plan`], [`policy`]) takes data and returns data; [`cluster`], [`webhook`] and
//! [`gitops`] are the IO shell around it, and [`cli`] wires the subcommands.

pub mod cli;
pub mod cluster;
pub mod gitops;
pub mod plan;
pub mod policy;
pub mod stork;
pub mod webhook;
