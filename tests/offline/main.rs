//! Tests that need no cluster: `check` and `render` on files and git repositories, the CRD and Stork types,
//! `failover`'s commit, the git source, the admission handler in-process, and the shipped manifests read as
//! files. One test binary, so the suite links once for all of them.

mod abuse;
mod argocd_cmp;
mod argocd_health;
mod break_glass;
mod check;
mod crd;
mod failover_cli;
mod git_source;
mod hostile_manifests;
mod hostile_repo;
mod render;
mod roundtrip;
mod verify;
mod webhook_handler;
mod webhook_manifests;
