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
//! The plan controller calls it between deciding the role and the steady-state apply:
//! 1. read the peer kubeconfig Secret (as for rendering);
//! 2. `TransitionExecutor::run(plan, local, revision, Some(kubeconfig), apply_role)`, where `apply_role` renders and
//!    applies the role's objects (the protect step); in dry-run call [`TransitionExecutor::plan_only`] instead;
//! 3. if the outcome is not `complete`, the status (phase, conditions, transition) is already written: requeue after
//!    `requeue_after_seconds` and skip the steady-state apply (the new primary must not start migrations early);
//! 4. otherwise re-read the plan (its status changed) and continue with the steady-state apply and status.

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::time::Duration;

use futures::{StreamExt, TryStreamExt, stream};
use jiff::Timestamp;
use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet, StatefulSet};
use k8s_openapi::api::batch::v1::CronJob as KubeCronJob;
use kube::api::{
    ApiResource, DynamicObject, GroupVersionKind, ListParams, Patch, PatchParams, PostParams,
};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::runtime::events::{Event as KubeEvent, EventType, Recorder, Reporter};
use kube::{Api, Client, Config, Resource, ResourceExt};
use serde_json::{Value, json};
use thiserror::Error;

use crate::plan::transition::{
    self, Action, CronJob, DomainState, DomainUpdate, Observed, Outcome, Peer, PeerPlan, PlanSpec,
    PreviousStatus, SUSPENDED_BY_ANNOTATION, SUSPENDED_BY_VALUE, Schedule, StaticCopy, Workload,
    WorkloadKind, WorkloadRef,
};
use crate::plan::{DRPlan, DRPlanStatus};
use crate::stork::keys::{FIELD_MANAGER, MANAGED_BY, MANAGED_BY_VALUE, MIGRATED, STATIC_COPY};

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
    recorder: Option<Recorder>,
}

impl TransitionExecutor {
    /// `peer_timeout` bounds everything the peer is asked in one pass.
    pub fn new(client: Client, peer_timeout: Duration) -> Self {
        TransitionExecutor {
            client,
            peer_timeout,
            parallelism: DEFAULT_PARALLELISM,
            recorder: None,
        }
    }

    /// Emit the planner's Events as Kubernetes Events on the DRPlan, reported as `instance`.
    pub fn with_events(mut self, instance: &str) -> Self {
        let reporter = Reporter {
            controller: "drgitops".into(),
            instance: Some(instance.into()),
        };
        self.recorder = Some(Recorder::new(self.client.clone(), reporter));
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
            self.write_status(&plans, &current, &outcome, local_domain, revision)
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

    /// A snapshot of live state for the planner.
    pub async fn observe(
        &self,
        plan: &DRPlan,
        spec: &PlanSpec,
        local_domain: &str,
        revision: &str,
        peer_kubeconfig: Option<&str>,
    ) -> Result<Observed, ExecError> {
        let namespaces: BTreeSet<String> = plan.namespaces().into_iter().collect();
        // The plan's schedule lives in the plan's namespace, which (for a plan in the admin namespace) need not be
        // one of the namespaces it protects.
        let mut schedule_namespaces = namespaces.clone();
        schedule_namespaces.insert(spec.namespace.clone());
        let cron_jobs = list_in(&self.client, &namespaces, "CronJobs", |c: KubeCronJob| {
            let annotations = c.annotations().clone();
            let labels = c.labels().clone();
            CronJob {
                namespace: c.namespace().unwrap_or_default(),
                name: c.name_any(),
                suspend: c.spec.as_ref().and_then(|s| s.suspend).unwrap_or(false),
                migrated: annotations.get(MIGRATED).is_some_and(|v| v == "true")
                    || labels.get(MIGRATED).is_some_and(|v| v == "true"),
                suspended_by_us: annotations
                    .get(SUSPENDED_BY_ANNOTATION)
                    .is_some_and(|v| v == SUSPENDED_BY_VALUE),
            }
        });
        let local = async {
            futures::try_join!(
                list_workloads(&self.client, &namespaces),
                cron_jobs,
                list_stork(
                    &self.client,
                    "MigrationSchedule",
                    Some(&schedule_namespaces)
                ),
                list_stork(&self.client, "ClusterDomainsStatus", None),
                list_stork(&self.client, "ClusterDomainUpdate", None),
            )
        };
        // Only a cluster becoming (or being) primary asks the peer anything, at the same time as the local lists.
        let peer = async {
            if spec.primary != local_domain {
                return Peer::Unreachable {
                    error: "not asked: this cluster is standby".into(),
                };
            }
            match peer_kubeconfig {
                Some(kubeconfig) => self.observe_peer(kubeconfig, spec, &namespaces).await,
                None => Peer::Unreachable {
                    error: "no peer kubeconfig".into(),
                },
            }
        };
        let (local, peer) = tokio::join!(local, peer);
        let (workloads, cron_jobs, schedules, domain_statuses, domain_updates) = local?;
        let mut schedule = None;
        let mut static_copies = Vec::new();
        for s in schedules {
            let namespace = s.namespace().unwrap_or_default();
            let name = s.name_any();
            let is_copy = s
                .annotations()
                .get(STATIC_COPY)
                .is_some_and(|v| v == "true");
            let activated = s
                .data
                .pointer("/status/applicationActivated")
                .and_then(Value::as_bool)
                .unwrap_or(false);
            let is_plans = namespace == spec.namespace && name == spec.name;
            if is_plans {
                schedule = Some(Schedule {
                    namespace: namespace.clone(),
                    name: name.clone(),
                    suspend: s
                        .data
                        .pointer("/spec/suspend")
                        .and_then(Value::as_bool)
                        .unwrap_or(false),
                    static_copy: is_copy,
                });
            }
            // The plan's own schedule keeps `applicationActivated` from when it was the standby's copy; clearing it
            // on deactivation keeps the peer's Stork from auto-suspending the new primary's schedule.
            if is_copy || (is_plans && activated) {
                static_copies.push(StaticCopy {
                    namespace,
                    name,
                    application_activated: activated,
                });
            }
        }
        let cluster_domains = domain_statuses.first().map(|cds| {
            cds.data
                .pointer("/status/clusterDomainInfos")
                .and_then(Value::as_array)
                .map(|infos| {
                    infos
                        .iter()
                        .filter_map(|i| {
                            Some(DomainState {
                                name: i.get("name")?.as_str()?.to_string(),
                                active: i.get("state").and_then(Value::as_str) == Some("Active"),
                            })
                        })
                        .collect()
                })
                .unwrap_or_default()
        });
        let domain_updates = domain_updates
            .into_iter()
            .map(|u| DomainUpdate {
                name: u.name_any(),
                domain: u
                    .data
                    .pointer("/spec/clusterdomain")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_string(),
                active: u
                    .data
                    .pointer("/spec/active")
                    .and_then(Value::as_bool)
                    .unwrap_or(false),
                status: u
                    .data
                    .pointer("/status/status")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_string(),
                reason: u
                    .data
                    .pointer("/status/reason")
                    .and_then(Value::as_str)
                    .map(str::to_string),
            })
            .collect();
        Ok(Observed {
            local_domain: local_domain.to_string(),
            revision: revision.to_string(),
            now: Timestamp::now(),
            workloads,
            cron_jobs,
            schedule,
            static_copies,
            cluster_domains,
            domain_updates,
            peer,
            previous: PreviousStatus::from_status(plan.status.as_ref()),
        })
    }

    /// The peer's DRPlan status and its running workloads, all under one timeout.
    async fn observe_peer(
        &self,
        kubeconfig: &str,
        spec: &PlanSpec,
        namespaces: &BTreeSet<String>,
    ) -> Peer {
        let ask = async {
            let client = peer_client(kubeconfig, self.peer_timeout).await?;
            let plans: Api<DRPlan> = Api::namespaced(client.clone(), &spec.namespace);
            let plan = match plans.get_opt(&spec.name).await {
                Ok(plan) => plan,
                Err(kube::Error::Api(s)) if s.code == 404 => None,
                Err(e) => return Err(e.to_string()),
            };
            // Only a peer that says it is standby needs its word checked against its workloads (a peer that says
            // primary is waited for anyway), which keeps each recheck of a waiting fence to one request. Listing may
            // be forbidden; the DRPlan status then decides alone.
            let says_standby = plan
                .as_ref()
                .and_then(|p| p.status.as_ref())
                .is_some_and(|s| s.role == Some(crate::plan::Role::Standby));
            let running = if says_standby {
                list_workloads(&client, namespaces)
                    .await
                    .ok()
                    .map(|ws| ws.iter().filter(|w| w.replicas.unwrap_or(1) > 0).count() as u32)
            } else {
                None
            };
            Ok(Peer::Reachable {
                plan: plan.map(|p| PeerPlan::from_status(p.status.as_ref())),
                running_workloads: running,
            })
        };
        match tokio::time::timeout(self.peer_timeout, ask).await {
            Ok(Ok(peer)) => peer,
            Ok(Err(error)) => Peer::Unreachable { error },
            Err(_) => Peer::Unreachable {
                error: format!("no answer within {}s", self.peer_timeout.as_secs_f32()),
            },
        }
    }

    async fn write_status(
        &self,
        plans: &Api<DRPlan>,
        current: &DRPlan,
        outcome: &Outcome,
        local_domain: &str,
        revision: &str,
    ) -> Result<(), ExecError> {
        let mut status = current.status.clone().unwrap_or_default();
        status.observed_generation = current.metadata.generation;
        let settled = (status.phase.clone(), status.conditions.clone());
        outcome.write_status(&mut status, local_domain, revision);
        // With nothing left to do and the transition record unchanged, the plan controller's steady-state status
        // (phase `Protected`/`Standby`/`Degraded`, its `Ready` condition) stands: overwriting it with the planner's
        // generic `Ready` would make the two writers flip the status, and every flip wake the pass loop again.
        if outcome.complete
            && settled.0.is_some()
            && current.status.as_ref().and_then(|s| s.transition.as_ref())
                == status.transition.as_ref()
        {
            (status.phase, status.conditions) = settled;
        }
        // An unchanged status is not written: a write would wake every watcher of the plan (this reconciler's own
        // pass loop included) although nothing happened; the wait is re-checked on the planner's schedule instead.
        if current.status.as_ref() == Some(&status) {
            return Ok(());
        }
        let patch = status_patch(&status);
        plans
            .patch_status(
                &current.name_any(),
                &PatchParams {
                    field_manager: Some(FIELD_MANAGER.into()),
                    ..Default::default()
                },
                &Patch::Merge(&patch),
            )
            .await
            .map_err(|e| ExecError::Status {
                plan: format!(
                    "{}/{}",
                    current.namespace().unwrap_or_default(),
                    current.name_any()
                ),
                source: e.into(),
            })?;
        Ok(())
    }

    async fn emit(&self, plan: &DRPlan, outcome: &Outcome) {
        let Some(recorder) = &self.recorder else {
            return;
        };
        let reference = plan.object_ref(&());
        for e in &outcome.events {
            let event = KubeEvent {
                type_: if e.type_ == "Warning" {
                    EventType::Warning
                } else {
                    EventType::Normal
                },
                reason: e.reason.clone(),
                note: Some(e.message.chars().take(1000).collect()),
                action: "Transition".into(),
                secondary: None,
            };
            if let Err(err) = recorder.publish(&event, &reference).await {
                // Events are best effort: the status holds the same facts.
                tracing::warn!(reason = %e.reason, "cannot publish event: {err}");
            }
        }
    }

    /// Performs one outcome's actions: object writes with bounded parallelism, the role apply last.
    /// Performs one outcome's object writes with bounded parallelism ([`Action::ApplyRoleObjects`] is the caller's).
    async fn perform(&self, actions: &[Action]) -> Result<(), ExecError> {
        // Owned actions: futures that borrow from a closure argument are not provably `Send` for every lifetime,
        // and the plan controller runs this inside a spawned task.
        let writes: Vec<Action> = actions
            .iter()
            .filter(|a| !matches!(a, Action::ApplyRoleObjects))
            .cloned()
            .collect();
        stream::iter(writes)
            .map(|a| async move { self.perform_one(&a).await })
            .buffer_unordered(self.parallelism)
            .try_collect::<Vec<()>>()
            .await?;
        Ok(())
    }

    /// A merge patch on a MigrationSchedule (Stork's own or ours).
    async fn merge_patch_schedule(
        &self,
        namespace: &str,
        name: &str,
        params: &PatchParams,
        patch: Value,
    ) -> Result<(), kube::Error> {
        let api: Api<DynamicObject> = Api::namespaced_with(
            self.client.clone(),
            namespace,
            &stork_resource("MigrationSchedule"),
        );
        api.patch(name, params, &Patch::Merge(patch))
            .await
            .map(drop)
    }

    async fn perform_one(&self, action: &Action) -> Result<(), ExecError> {
        let params = PatchParams {
            field_manager: Some(FIELD_MANAGER.into()),
            ..Default::default()
        };
        let result = match action {
            Action::CreateDomainUpdate {
                name,
                domain,
                active,
            } => {
                let api: Api<DynamicObject> =
                    Api::all_with(self.client.clone(), &stork_resource("ClusterDomainUpdate"));
                let mut object = DynamicObject::new(name, &stork_resource("ClusterDomainUpdate"));
                object.metadata.labels = Some(BTreeMap::from([(
                    MANAGED_BY.to_string(),
                    MANAGED_BY_VALUE.to_string(),
                )]));
                object.data = json!({"spec": {"clusterdomain": domain, "active": active}});
                match api
                    .create(
                        &PostParams {
                            field_manager: Some(FIELD_MANAGER.into()),
                            ..Default::default()
                        },
                        &object,
                    )
                    .await
                {
                    Err(kube::Error::Api(s)) if s.code == 409 => Ok(()),
                    other => other.map(drop),
                }
            }
            Action::SetScheduleSuspend {
                namespace,
                name,
                suspend,
            } => {
                self.merge_patch_schedule(
                    namespace,
                    name,
                    &params,
                    json!({"spec": {"suspend": suspend}}),
                )
                .await
            }
            Action::ScaleDown { workload, record } => {
                let mut patch = json!({"spec": {"replicas": 0}});
                if let Some(n) = record {
                    patch["metadata"] =
                        json!({"annotations": {transition::REPLICAS_ANNOTATION: n.to_string()}});
                }
                patch_workload(&self.client, workload, &params, patch).await
            }
            Action::ScaleUp { workload, replicas } => {
                patch_workload(
                    &self.client,
                    workload,
                    &params,
                    json!({"spec": {"replicas": replicas}}),
                )
                .await
            }
            Action::SetCronJobSuspend {
                namespace,
                name,
                suspend,
            } => {
                let api: Api<KubeCronJob> = Api::namespaced(self.client.clone(), namespace);
                let mark = if *suspend {
                    Value::from(SUSPENDED_BY_VALUE)
                } else {
                    Value::Null
                };
                let patch = json!({"metadata": {"annotations": {SUSPENDED_BY_ANNOTATION: mark}}, "spec": {"suspend": suspend}});
                api.patch(name, &params, &Patch::Merge(patch))
                    .await
                    .map(drop)
            }
            Action::SetApplicationActivated {
                namespace,
                name,
                activated,
            } => {
                // Stork's CRDs have no status subresource: status is written on the object itself.
                self.merge_patch_schedule(
                    namespace,
                    name,
                    &params,
                    json!({"status": {"applicationActivated": activated}}),
                )
                .await
            }
            Action::ApplyRoleObjects => Ok(()),
        };
        result.map_err(|e| ExecError::Act {
            action: describe(action),
            source: e.into(),
        })
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

fn describe(action: &Action) -> String {
    match action {
        Action::CreateDomainUpdate { name, .. } => format!("creating ClusterDomainUpdate {name}"),
        Action::SetScheduleSuspend {
            namespace,
            name,
            suspend,
        } => {
            format!("setting suspend: {suspend} on MigrationSchedule {namespace}/{name}")
        }
        Action::ScaleDown { workload, .. } => format!("scaling {workload} to 0"),
        Action::ScaleUp { workload, replicas } => format!("scaling {workload} to {replicas}"),
        Action::SetCronJobSuspend {
            namespace,
            name,
            suspend,
        } => {
            format!("setting suspend: {suspend} on CronJob {namespace}/{name}")
        }
        Action::SetApplicationActivated {
            namespace,
            name,
            activated,
        } => {
            format!(
                "setting applicationActivated: {activated} on MigrationSchedule {namespace}/{name}"
            )
        }
        Action::ApplyRoleObjects => "applying this cluster's objects".into(),
    }
}

/// The status as a merge patch: optional transition fields the planner cleared are sent as `null`, so a finished
/// transition's `finishedAt` never survives into the next one.
fn status_patch(status: &DRPlanStatus) -> Value {
    let mut value = serde_json::to_value(status).unwrap_or_else(|_| json!({}));
    if let Some(t) = value.get_mut("transition").and_then(Value::as_object_mut)
        && !t.contains_key("finishedAt")
    {
        t.insert("finishedAt".into(), Value::Null);
    }
    json!({"status": value})
}

fn empty_observation(local_domain: &str, revision: &str) -> Observed {
    Observed {
        local_domain: local_domain.to_string(),
        revision: revision.to_string(),
        now: Timestamp::now(),
        workloads: Vec::new(),
        cron_jobs: Vec::new(),
        schedule: None,
        static_copies: Vec::new(),
        cluster_domains: None,
        domain_updates: Vec::new(),
        peer: Peer::Unreachable {
            error: "not observed".into(),
        },
        previous: PreviousStatus::default(),
    }
}

async fn patch_workload(
    client: &Client,
    w: &WorkloadRef,
    params: &PatchParams,
    patch: Value,
) -> Result<(), kube::Error> {
    let patch = Patch::Merge(patch);
    match w.kind {
        WorkloadKind::Deployment => Api::<Deployment>::namespaced(client.clone(), &w.namespace)
            .patch(&w.name, params, &patch)
            .await
            .map(drop),
        WorkloadKind::StatefulSet => Api::<StatefulSet>::namespaced(client.clone(), &w.namespace)
            .patch(&w.name, params, &patch)
            .await
            .map(drop),
        WorkloadKind::ReplicaSet => Api::<ReplicaSet>::namespaced(client.clone(), &w.namespace)
            .patch(&w.name, params, &patch)
            .await
            .map(drop),
    }
}

/// A client for the peer from its kubeconfig, with the peer timeout on connect and read.
async fn peer_client(kubeconfig: &str, timeout: Duration) -> Result<Client, String> {
    let kubeconfig =
        Kubeconfig::from_yaml(kubeconfig).map_err(|e| format!("invalid peer kubeconfig: {e}"))?;
    let mut config = Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
        .await
        .map_err(|e| format!("invalid peer kubeconfig: {e}"))?;
    config.connect_timeout = Some(timeout);
    config.read_timeout = Some(timeout);
    Client::try_from(config).map_err(|e| format!("cannot build a client for the peer: {e}"))
}

fn stork_resource(kind: &str) -> ApiResource {
    let plural = match kind {
        "ClusterDomainsStatus" => "clusterdomainsstatuses".to_string(),
        other => format!("{}s", other.to_ascii_lowercase()),
    };
    ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("stork.libopenstorage.org", "v1alpha1", kind),
        &plural,
    )
}

/// Lists a Stork kind (in `namespaces`, or cluster-wide); a kind whose CRD is not installed lists as empty.
async fn list_stork(
    client: &Client,
    kind: &str,
    namespaces: Option<&BTreeSet<String>>,
) -> Result<Vec<DynamicObject>, ExecError> {
    let resource = stork_resource(kind);
    let api: Api<DynamicObject> = Api::all_with(client.clone(), &resource);
    match api.list(&ListParams::default()).await {
        Ok(list) => Ok(list
            .items
            .into_iter()
            .filter(|o| namespaces.is_none_or(|ns| o.namespace().is_some_and(|n| ns.contains(&n))))
            .collect()),
        Err(kube::Error::Api(s)) if s.code == 404 => Ok(Vec::new()),
        Err(e) => Err(ExecError::List {
            what: format!("{kind}s"),
            source: e.into(),
        }),
    }
}

/// Lists a namespaced kind in the plan's namespaces (per namespace for few, cluster-wide and filtered for many).
async fn list_in<K, T>(
    client: &Client,
    namespaces: &BTreeSet<String>,
    what: &str,
    map: impl Fn(K) -> T,
) -> Result<Vec<T>, ExecError>
where
    K: Resource<DynamicType = (), Scope = k8s_openapi::NamespaceResourceScope>
        + Clone
        + serde::de::DeserializeOwned
        + std::fmt::Debug,
{
    let err = |e: kube::Error| ExecError::List {
        what: what.to_string(),
        source: e.into(),
    };
    let mut items = Vec::new();
    if namespaces.len() > PER_NAMESPACE_LIST_LIMIT {
        let api: Api<K> = Api::all(client.clone());
        let list = api.list(&ListParams::default()).await.map_err(err)?;
        items.extend(list.items.into_iter().filter(|o| {
            o.meta()
                .namespace
                .as_ref()
                .is_some_and(|n| namespaces.contains(n))
        }));
    } else {
        for ns in namespaces {
            let api: Api<K> = Api::namespaced(client.clone(), ns);
            items.extend(api.list(&ListParams::default()).await.map_err(err)?.items);
        }
    }
    Ok(items.into_iter().map(map).collect())
}

/// Deployments, StatefulSets and owner-less ReplicaSets in the plan's namespaces.
async fn list_workloads(
    client: &Client,
    namespaces: &BTreeSet<String>,
) -> Result<Vec<Workload>, ExecError> {
    let reference = |kind, namespace: Option<String>, name: String| WorkloadRef {
        kind,
        namespace: namespace.unwrap_or_default(),
        name,
    };
    let deployments = list_in(client, namespaces, "Deployments", |d: Deployment| {
        Workload::new(
            reference(WorkloadKind::Deployment, d.namespace(), d.name_any()),
            d.spec.as_ref().and_then(|s| s.replicas),
            d.annotations(),
        )
    });
    let stateful_sets = list_in(client, namespaces, "StatefulSets", |s: StatefulSet| {
        Workload::new(
            reference(WorkloadKind::StatefulSet, s.namespace(), s.name_any()),
            s.spec.as_ref().and_then(|s| s.replicas),
            s.annotations(),
        )
    });
    let replica_sets = list_in(client, namespaces, "ReplicaSets", |r: ReplicaSet| {
        let owned = r
            .metadata
            .owner_references
            .as_ref()
            .is_some_and(|o| !o.is_empty());
        (!owned).then(|| {
            Workload::new(
                reference(WorkloadKind::ReplicaSet, r.namespace(), r.name_any()),
                r.spec.as_ref().and_then(|s| s.replicas),
                r.annotations(),
            )
        })
    });
    let (mut out, stateful_sets, replica_sets) =
        futures::try_join!(deployments, stateful_sets, replica_sets)?;
    out.extend(stateful_sets);
    out.extend(replica_sets.into_iter().flatten());
    out.sort_by(|a, b| a.workload.cmp(&b.workload));
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_patch_clears_a_previous_finished_at() {
        let status = DRPlanStatus {
            transition: Some(crate::plan::types::Transition {
                from: Some("a".into()),
                ..Default::default()
            }),
            ..Default::default()
        };
        let patch = status_patch(&status);
        assert_eq!(patch["status"]["transition"]["finishedAt"], Value::Null);
        assert!(
            patch["status"]["transition"]
                .as_object()
                .unwrap()
                .contains_key("finishedAt")
        );
    }

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
