//! drgitops on real control planes (`tests/testenv`: etcd, kube-apiserver with RBAC, controller-manager,
//! scheduler, kwok nodes), installed from the shipped manifests with kubectl and run as the shipped
//! ServiceAccounts, with the shared helpers of `tests/testkit`.

/// The binary under test.
pub const DRGITOPS: &str = env!("CARGO_BIN_EXE_drgitops");

mod argocd;
mod break_glass;
mod crd;
mod executor;
mod failover;
mod faults;
mod flux;
mod guard;
mod handover;
mod reconcile_https;
mod reconciler;
mod stork_standin;
mod webhook;
mod webhook_process;
