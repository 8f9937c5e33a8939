//! The only tests left on the in-memory API server (`tests/fake-apiserver`): each needs an HTTP-level fault
//! a real kube-apiserver cannot produce on cue (an error answer to the N-th request of one verb, a watch cut
//! with 410 by compaction). Everything else that talks to Kubernetes runs on real control planes in
//! `tests/real`.

mod failover_exec;
mod reconcile_faults;
