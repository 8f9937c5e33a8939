//! Carries out the failover / failback transitions that [`crate::plan::transition`] plans.
//!
//! In: a kube client for this cluster, a DRPlan, the local cluster domain, the revision, the peer's kubeconfig (the
//! Secret's contents) and a callback that applies this role's rendered objects. Out: workloads scaled, CronJobs
//! and schedules suspended or resumed, ClusterDomainUpdates created, `status.applicationActivated` set on static
//! copies, the plan's status (role, phase, conditions, transition, revisions) and Events.
//!
//! Each pass observes live state, asks the pure planner what to do, writes the status *first* (so a passed fence is
//! durable before any scale-up), then performs the actions with bounded parallelism. Passes repeat until the
//! planner has nothing left to do or waits. The peer is observed under one short timeout: an unreachable peer
//! costs at most that timeout per pass and never stalls the rest of the reconciler.
//!
//! The plan controller calls [`TransitionExecutor::gate`] between deciding the role and the steady-state apply:
//! - [`Gate::ApplyRole`]: the protect step; the controller renders and applies the role's objects and calls again;
//! - [`Gate::Hold`]: a transition is under way (waiting or stalled) and its status is written: requeue after
//!   `requeue_after_seconds` and skip the steady-state apply (the new primary must not start migrations early);
//! - [`Gate::Proceed`]: continue with the steady-state apply and status, on the plan as re-read.
//!
//! In dry-run, [`TransitionExecutor::plan_only`] says what the next pass would do and writes nothing.
//! [`TransitionExecutor::run`] drives a transition without the controller (the executor tests and the failover
//! benchmark), applying the role's objects through a callback.

mod observe;
mod perform;

use self::observe::{empty_observation, stork_resource};

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::{StreamExt, TryStreamExt, stream};
use jiff::Timestamp;
use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet, StatefulSet};
use k8s_openapi::api::batch::v1::CronJob as KubeCronJob;
use kube::api::{
    ApiResource, DynamicObject, GroupVersionKind, ListParams, Patch, PatchParams, PostParams,
};
use kube::runtime::events::EventType;

use crate::runtime::events::Events;
use kube::{Api, Client, Resource, ResourceExt};
use serde_json::{Value, json};
use thiserror::Error;

use crate::plan::DRPlan;
use crate::plan::transition::{
    self, Action, CronJob, DomainState, DomainUpdate, MigrationRecord, Observed, Outcome, Peer,
    PeerPlan, PlanSpec, PreviousStatus, SUSPENDED_BY_ANNOTATION, SUSPENDED_BY_VALUE, Schedule,
    StaticCopy, Workload, WorkloadKind, WorkloadRef,
};
use crate::stork::keys::{
    FIELD_MANAGER, FINAL_MIGRATION_LABEL, MANAGED_BY, MANAGED_BY_VALUE, MIGRATED, PLAN_LABEL,
    STATIC_COPY, TRANSITION_ANNOTATION,
};

/// At most this many object writes run at once (activation of hundreds of namespaces without flooding).
pub const DEFAULT_PARALLELISM: usize = 32;
/// Passes per [`TransitionExecutor::run`] call before handing back to the caller's loop.
const MAX_PASSES: usize = 16;
/// Above this many namespaces, workloads are listed cluster-wide and filtered (4 requests instead of 4 per ns).
const PER_NAMESPACE_LIST_LIMIT: usize = 8;

/// Why a transition pass failed. Every variant is worth a retry with backoff.
#[derive(Debug, Error)]
pub enum ExecError {
    #[error("listing {what} failed: {source}; retrying")]
    List {
        what: String,
        #[source]
        source: Box<kube::Error>,
    },
    #[error("{action} failed: {source}; retrying")]
    Act {
        action: String,
        #[source]
        source: Box<kube::Error>,
    },
    #[error("writing the status of DRPlan {plan} failed: {source}; retrying")]
    Status {
        plan: String,
        #[source]
        source: Box<kube::Error>,
    },
    #[error("applying this cluster's objects failed: {0}")]
    ApplyRole(String),
}

/// The executor for one cluster.
#[derive(Clone)]
pub struct TransitionExecutor {
    client: Client,
    peer_timeout: Duration,
    parallelism: usize,
    events: Option<Events>,
    /// Peer clients by kubeconfig, kept across passes: both roles ask the peer on every pass, and a new client
    /// would cost a TLS handshake each time. A changed Secret is a new key.
    peers: Arc<Mutex<HashMap<String, Client>>>,
}

impl TransitionExecutor {
    /// `peer_timeout` bounds everything the peer is asked in one pass.
    pub fn new(client: Client, peer_timeout: Duration) -> Self {
        TransitionExecutor {
            client,
            peer_timeout,
            parallelism: DEFAULT_PARALLELISM,
            events: None,
            peers: Arc::default(),
        }
    }

    /// Emit the planner's Events as Kubernetes Events on the DRPlan, reported as `instance`.
    pub fn with_events(mut self, instance: &str) -> Self {
        self.events = Some(Events::new(self.client.clone(), instance));
        self
    }

    pub fn with_parallelism(mut self, parallelism: usize) -> Self {
        self.parallelism = parallelism.max(1);
        self
    }

    /// Runs passes until the planner has no action left (done, waiting or stalled) and returns its last outcome,
    /// with the Events of every pass.
    /// `apply_role` renders and applies this role's objects; it is called for [`Action::ApplyRoleObjects`].
    pub async fn run<F, Fut>(
        &self,
        plan: &DRPlan,
        local_domain: &str,
        revision: &str,
        peer_kubeconfig: Option<&str>,
        mut apply_role: F,
    ) -> Result<Outcome, ExecError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<(), String>>,
    {
        let mut events = Vec::new();
        for _ in 0..MAX_PASSES {
            let mut outcome = self
                .passes(plan, local_domain, revision, peer_kubeconfig)
                .await?;
            events.append(&mut outcome.events);
            if !outcome.actions.contains(&Action::ApplyRoleObjects) {
                outcome.events = events;
                return Ok(outcome);
            }
            apply_role().await.map_err(ExecError::ApplyRole)?;
        }
        let mut outcome = self
            .passes(plan, local_domain, revision, peer_kubeconfig)
            .await?;
        events.append(&mut outcome.events);
        outcome.events = events;
        Ok(outcome)
    }

    /// Runs passes until the planner has no action left, or asks for [`Action::ApplyRoleObjects`] (returned
    /// unperformed, after the pass's other actions: the caller applies the role's objects and calls again).
    pub async fn passes(
        &self,
        plan: &DRPlan,
        local_domain: &str,
        revision: &str,
        peer_kubeconfig: Option<&str>,
    ) -> Result<Outcome, ExecError> {
        let spec = PlanSpec::from_plan(plan);
        let plans: Api<DRPlan> = Api::namespaced(self.client.clone(), &spec.namespace);
        let mut last: Option<Outcome> = None;
        let mut events = Vec::new();
        for _ in 0..MAX_PASSES {
            // The status on the server is the planner's memory: read it fresh every pass.
            let current = plans
                .get_opt(&spec.name)
                .await
                .map_err(|e| ExecError::List {
                    what: format!("DRPlan {}/{}", spec.namespace, spec.name),
                    source: e.into(),
                })?;
            let Some(current) = current else {
                break;
            };
            let observed = self
                .observe(&current, &spec, local_domain, revision, peer_kubeconfig)
                .await?;
            let mut outcome = transition::plan(&spec, &observed);
            self.write_status(&current, &outcome, local_domain, revision)
                .await?;
            self.emit(&current, &outcome).await;
            events.append(&mut outcome.events);
            self.perform(&outcome.actions).await?;
            if outcome.actions.is_empty() || outcome.actions.contains(&Action::ApplyRoleObjects) {
                outcome.events = events;
                return Ok(outcome);
            }
            last = Some(outcome);
        }
        // Still acting after many passes (e.g. someone keeps scaling): the caller requeues at once.
        let mut outcome = last
            .unwrap_or_else(|| transition::plan(&spec, &empty_observation(local_domain, revision)));
        outcome.events = events;
        Ok(outcome)
    }

    /// What the next pass would do, without writing anything (for `--dry-run`).
    pub async fn plan_only(
        &self,
        plan: &DRPlan,
        local_domain: &str,
        revision: &str,
        peer_kubeconfig: Option<&str>,
    ) -> Result<Outcome, ExecError> {
        let spec = PlanSpec::from_plan(plan);
        let observed = self
            .observe(plan, &spec, local_domain, revision, peer_kubeconfig)
            .await?;
        Ok(transition::plan(&spec, &observed))
    }

    async fn write_status(
        &self,
        current: &DRPlan,
        outcome: &Outcome,
        local_domain: &str,
        revision: &str,
    ) -> Result<(), ExecError> {
        let mut status = current.status.clone().unwrap_or_default();
        status.observed_generation = current.metadata.generation;
        outcome.write_status(&mut status, local_domain, revision);
        // An unchanged status is not written: a write would wake every watcher of the plan (this reconciler's own
        // pass loop included) although nothing happened; the wait is re-checked on the planner's schedule instead.
        if current.status.as_ref() == Some(&status) {
            return Ok(());
        }
        let namespace = current.namespace().unwrap_or_default();
        super::status::write(&self.client, &namespace, &current.name_any(), &status)
            .await
            .map_err(|e| ExecError::Status {
                plan: format!("{namespace}/{}", current.name_any()),
                source: e.into(),
            })
    }

    async fn emit(&self, plan: &DRPlan, outcome: &Outcome) {
        let Some(events) = &self.events else {
            return;
        };
        let reference = plan.object_ref(&());
        for e in &outcome.events {
            let type_ = if e.type_ == "Warning" {
                EventType::Warning
            } else {
                EventType::Normal
            };
            events
                .publish(&reference, type_, "Transition", &e.reason, &e.message)
                .await;
        }
    }
}

/// What the plan controller does after a plan's transition pass.
#[derive(Debug)]
pub enum Gate {
    /// The protect step: apply this role's objects now, then call [`TransitionExecutor::gate`] again.
    ApplyRole,
    /// The revision is in effect here (or there was nothing to do): continue with the steady-state apply, using
    /// this copy of the plan (with the status the transition wrote).
    Proceed(Box<DRPlan>),
    /// A transition is under way (waiting, or stalled): its status is written; skip the steady-state apply and
    /// look again after `requeue_after_seconds`.
    Hold(Box<Outcome>),
}

/// The revision a transition is recorded under: the Git commit the plan came from, else (plans applied by Argo CD
/// or Flux) a token both clusters derive alike from what decides the transition.
pub fn revision_of(plan: &DRPlan) -> String {
    match plan
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get("drgitops.dev/revision"))
    {
        Some(revision) => revision.clone(),
        None => {
            let domains: Vec<String> = plan
                .spec
                .domains
                .iter()
                .map(|d| format!("{}={}", d.name, d.is_active()))
                .collect();
            format!("primary={};{}", plan.spec.primary, domains.join(","))
        }
    }
}

impl TransitionExecutor {
    /// The plan controller's transition step: runs the transition (or in `dry_run` only plans it) and says whether
    /// the steady-state apply may follow, or the role's objects must be applied first (then call again).
    pub async fn gate(
        &self,
        plan: &DRPlan,
        local_domain: &str,
        peer_kubeconfig: Option<&str>,
        dry_run: bool,
    ) -> Result<Gate, ExecError> {
        let revision = revision_of(plan);
        let outcome = if dry_run {
            self.plan_only(plan, local_domain, &revision, peer_kubeconfig)
                .await?
        } else {
            self.passes(plan, local_domain, &revision, peer_kubeconfig)
                .await?
        };
        if outcome.actions.contains(&Action::ApplyRoleObjects) && !dry_run {
            return Ok(Gate::ApplyRole);
        }
        if !outcome.complete && !dry_run {
            return Ok(Gate::Hold(Box::new(outcome)));
        }
        // Only the status changed (the transition wrote it); the spec stays the caller's, which in a dry run is the
        // desired plan rather than the live one.
        let mut fresh = plan.clone();
        if !dry_run {
            let spec = PlanSpec::from_plan(plan);
            let plans: Api<DRPlan> = Api::namespaced(self.client.clone(), &spec.namespace);
            let live = plans
                .get_opt(&spec.name)
                .await
                .map_err(|e| ExecError::List {
                    what: format!("DRPlan {}/{}", spec.namespace, spec.name),
                    source: e.into(),
                })?;
            if let Some(live) = live {
                fresh.status = live.status;
            }
        }
        Ok(Gate::Proceed(Box::new(fresh)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stork_resources_use_storks_plurals() {
        assert_eq!(
            stork_resource("ClusterDomainsStatus").plural,
            "clusterdomainsstatuses"
        );
        assert_eq!(
            stork_resource("ClusterDomainUpdate").plural,
            "clusterdomainupdates"
        );
        assert_eq!(
            stork_resource("MigrationSchedule").plural,
            "migrationschedules"
        );
        assert_eq!(
            stork_resource("MigrationSchedule").api_version,
            "stork.libopenstorage.org/v1alpha1"
        );
    }
}
