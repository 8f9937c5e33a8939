//! drgitops on real control planes (`tests/testenv`: etcd, kube-apiserver with RBAC, controller-manager,
//! scheduler, kwok nodes), installed from the shipped manifests with kubectl and run as the shipped
//! ServiceAccounts. One test binary, so the assets are located once and the tests share its start-up.

mod kit;

mod crd;
mod failover;
mod faults;
mod webhook;
