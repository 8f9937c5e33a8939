//! The failover / failback state machine of DESIGN.md's "Transitions", as a pure, level-triggered planner.
//!
//! In: a [`PlanSpec`] (the parts of a DRPlan that decide a transition) and an [`Observed`] snapshot of live state
//! on this cluster (workloads, CronJobs, the plan's MigrationSchedule, Stork's static copies, cluster domains and
//! our ClusterDomainUpdates), of the peer cluster (unreachable, or its DRPlan status and running workloads), and
//! the `status` this cluster's reconciler wrote last, plus the time `now`.
//! Out: an [`Outcome`]: the next [`Action`]s to perform (one step's worth), the `status.role`, `status.phase`,
//! `status.transition` and conditions to write, and the Events to emit.
//!
//! Every step is derived from live state, so running the planner again after a crash never repeats a step with a
//! different outcome: a replica count is recorded and the workload scaled to 0 in one patch, a count of 0 is never
//! recorded, and a workload is scaled up only when it sits at 0 with a positive recorded count. The executor writes
//! the outcome's status *before* performing its actions (so a passed fence is durable before any scale-up), then
//! performs the actions, re-observes and calls [`plan`] again until no action is left.

use std::collections::BTreeMap;
use std::fmt;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use super::types::{self as plan_types, DRPlan, DRPlanStatus};
pub use super::types::{Mode, Role};
use crate::stork::keys;

/// The replica annotation Stork writes on scaled-down workloads (and the one we write).
pub const REPLICAS_ANNOTATION: &str = keys::MIGRATION_REPLICAS;
/// The spelling Stork's docs use; read, never written.
pub const LEGACY_REPLICAS_ANNOTATION: &str = keys::MIGRATION_REPLICAS_DOC_SPELLING;
/// Marks a CronJob this reconciler suspended, so activation un-suspends it even if Stork never migrated it.
pub const SUSPENDED_BY_ANNOTATION: &str = "drgitops.dev/suspended-by";
/// Value of [`SUSPENDED_BY_ANNOTATION`].
pub const SUSPENDED_BY_VALUE: &str = "drgitops";

/// How often to look again while waiting for the peer or for Stork: every second of waiting is a second of
/// outage, and a recheck costs one request to the peer (plus a list when it claims to be standby).
pub const WAIT_RECHECK_SECONDS: u64 = 1;
/// How often to look again while stalled (the way out is a commit, but live state may also change).
pub const STALLED_RECHECK_SECONDS: u64 = 30;

/// Step names, as written to `status.transition.steps[].name`.
pub mod step {
    /// New primary, metro: storage activation made to match `spec.domains`.
    pub const METRO: &str = "metro";
    /// New primary: the old primary no longer runs the applications.
    pub const FENCE: &str = "fence";
    /// New primary: workloads scaled to their recorded counts, CronJobs resumed, static copies activated.
    pub const ACTIVATE: &str = "activate";
    /// New primary: this role's objects applied (migrations towards the old primary).
    pub const PROTECT: &str = "protect";
    /// Old primary: the plan's MigrationSchedule suspended.
    pub const SUSPEND_SCHEDULE: &str = "suspend-schedule";
    /// Old primary: replica counts recorded and workloads scaled to 0.
    pub const SCALE_DOWN: &str = "scale-down";
    /// Old primary: CronJobs suspended.
    pub const SUSPEND_CRONJOBS: &str = "suspend-cronjobs";
    /// Old primary: `status.applicationActivated` cleared on Stork's static copies, so the new primary's
    /// schedule is not auto-suspended by Stork.
    pub const DEACTIVATE_STATIC_COPIES: &str = "deactivate-static-copies";
}

/// One cluster domain of `spec.domains`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DomainSpec {
    pub name: String,
    /// Desired storage activation (metro).
    pub active: bool,
}

/// The parts of a DRPlan that decide a transition.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PlanSpec {
    pub name: String,
    pub namespace: String,
    pub mode: Mode,
    pub primary: String,
    pub domains: Vec<DomainSpec>,
    /// `spec.failover.peerStopTimeoutSeconds`.
    pub peer_stop_timeout_seconds: u64,
}

/// Kinds of workloads a transition scales.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum WorkloadKind {
    Deployment,
    StatefulSet,
    /// Only ReplicaSets without an owner.
    ReplicaSet,
}

impl fmt::Display for WorkloadKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            WorkloadKind::Deployment => "Deployment",
            WorkloadKind::StatefulSet => "StatefulSet",
            WorkloadKind::ReplicaSet => "ReplicaSet",
        })
    }
}

/// Names one workload.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct WorkloadRef {
    pub kind: WorkloadKind,
    pub namespace: String,
    pub name: String,
}

impl fmt::Display for WorkloadRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}/{}", self.kind, self.namespace, self.name)
    }
}

/// A workload in one of the plan's namespaces, as observed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Workload {
    pub workload: WorkloadRef,
    /// `spec.replicas`; `None` means unset (Kubernetes defaults it to 1).
    pub replicas: Option<i32>,
    /// Value of [`REPLICAS_ANNOTATION`], if present.
    pub replicas_annotation: Option<String>,
    /// Value of [`LEGACY_REPLICAS_ANNOTATION`], if present.
    pub legacy_replicas_annotation: Option<String>,
}

impl Workload {
    fn effective_replicas(&self) -> i32 {
        self.replicas.unwrap_or(1)
    }

    /// The recorded replica count: the real spelling first, then the documented one.
    fn recorded(&self) -> Recorded {
        match (&self.replicas_annotation, &self.legacy_replicas_annotation) {
            (Some(v), _) => Recorded::parse(v, REPLICAS_ANNOTATION),
            (None, Some(v)) => Recorded::parse(v, LEGACY_REPLICAS_ANNOTATION),
            (None, None) => Recorded::Absent,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Recorded {
    Absent,
    Count(i32),
    Invalid { key: &'static str, value: String },
}

impl Recorded {
    fn parse(value: &str, key: &'static str) -> Recorded {
        match value.trim().parse::<i32>() {
            Ok(n) if n >= 0 => Recorded::Count(n),
            _ => Recorded::Invalid {
                key,
                value: value.to_string(),
            },
        }
    }
}

/// A CronJob in one of the plan's namespaces.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CronJob {
    pub namespace: String,
    pub name: String,
    pub suspend: bool,
    /// Stork migrated it (`stork.libopenstorage.org/migrated` annotation or label).
    pub migrated: bool,
    /// Carries [`SUSPENDED_BY_ANNOTATION`] = [`SUSPENDED_BY_VALUE`].
    pub suspended_by_us: bool,
}

/// The MigrationSchedule named after the plan in the plan's namespace.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Schedule {
    pub namespace: String,
    pub name: String,
    pub suspend: bool,
    /// Carries `stork.libopenstorage.org/static-copy: "true"`: the standby's form of the plan's schedule, or
    /// Stork's copy of the peer's schedule holding the name. Never executed by Stork.
    pub static_copy: bool,
}

/// A MigrationSchedule whose `status.applicationActivated` the transition manages: every schedule in the plan's
/// namespaces marked static copy (Stork's, or the standby's form of the plan's own), and the plan's own schedule
/// while it still says activated.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StaticCopy {
    pub namespace: String,
    pub name: String,
    pub application_activated: bool,
}

/// One domain as ClusterDomainsStatus reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DomainState {
    pub name: String,
    pub active: bool,
}

/// A ClusterDomainUpdate, as observed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DomainUpdate {
    pub name: String,
    pub domain: String,
    pub active: bool,
    /// `status.status`: `""` (not processed yet), `Successful` or `Failed`.
    pub status: String,
    pub reason: Option<String>,
}

/// The peer's DRPlan status, as read through the peer kubeconfig.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct PeerPlan {
    pub role: Option<Role>,
    pub last_applied_revision: Option<String>,
    pub phase: Option<String>,
}

/// What we know of the peer cluster.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Peer {
    /// Not reached within the short timeout (or no kubeconfig for it).
    Unreachable { error: String },
    Reachable {
        /// The same-named DRPlan on the peer; `None` when it has none.
        plan: Option<PeerPlan>,
        /// Workloads in the plan's namespaces with replicas > 0 on the peer; `None` when they could not be listed.
        running_workloads: Option<u32>,
    },
}

/// A `status.conditions[]` entry (kstatus style).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Condition {
    #[serde(rename = "type")]
    pub type_: String,
    /// `True` or `False`.
    pub status: String,
    pub reason: String,
    pub message: String,
    pub last_transition_time: Timestamp,
}

/// State of one transition step.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum StepState {
    Pending,
    InProgress,
    Waiting,
    Succeeded,
    Stalled,
}

impl fmt::Display for StepState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `status.transition.steps[]`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Step {
    pub name: String,
    pub state: StepState,
    #[serde(default)]
    pub message: String,
    /// When the step entered its current state.
    pub time: Timestamp,
}

/// `status.transition`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Transition {
    pub from: String,
    pub to: String,
    pub revision: String,
    pub started_at: Timestamp,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<Timestamp>,
    #[serde(default)]
    pub steps: Vec<Step>,
}

impl Transition {
    fn step(&self, name: &str) -> Option<&Step> {
        self.steps.iter().find(|s| s.name == name)
    }
}

/// What this cluster's reconciler wrote last into the plan's status.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct PreviousStatus {
    pub role: Option<Role>,
    pub transition: Option<Transition>,
    pub conditions: Vec<Condition>,
}

/// A snapshot of live state, filled by the executor from kube-rs lists.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Observed {
    /// This cluster's cluster domain.
    pub local_domain: String,
    /// The revision (commit) of the plan being reconciled.
    pub revision: String,
    pub now: Timestamp,
    /// Deployments, StatefulSets and owner-less ReplicaSets in the plan's namespaces.
    pub workloads: Vec<Workload>,
    /// CronJobs in the plan's namespaces.
    pub cron_jobs: Vec<CronJob>,
    /// The plan's MigrationSchedule, if it exists here.
    pub schedule: Option<Schedule>,
    /// Stork's static-copy MigrationSchedules in the plan's namespaces.
    pub static_copies: Vec<StaticCopy>,
    /// ClusterDomainsStatus `status.clusterDomainInfos`; `None` when there is none (not a metro cluster).
    pub cluster_domains: Option<Vec<DomainState>>,
    /// ClusterDomainUpdates (those named by [`domain_update_name`] are ours).
    pub domain_updates: Vec<DomainUpdate>,
    pub peer: Peer,
    pub previous: PreviousStatus,
}

/// One thing for the executor to do. Actions within one outcome are independent of each other (the executor may
/// run them with bounded parallelism); the next step's actions come from the next call to [`plan`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "action", rename_all = "camelCase")]
pub enum Action {
    /// Create a cluster-scoped ClusterDomainUpdate `{spec: {clusterdomain, active}}`.
    CreateDomainUpdate {
        name: String,
        domain: String,
        active: bool,
    },
    /// Set `spec.suspend` of the plan's MigrationSchedule.
    SetScheduleSuspend {
        namespace: String,
        name: String,
        suspend: bool,
    },
    /// One patch: annotation [`REPLICAS_ANNOTATION`] = `record` (when `Some`, always > 0) and `spec.replicas: 0`.
    ScaleDown {
        workload: WorkloadRef,
        record: Option<i32>,
    },
    /// Set `spec.replicas` to the recorded count (the annotation stays, as Stork's activate leaves it).
    ScaleUp {
        workload: WorkloadRef,
        replicas: i32,
    },
    /// Set `spec.suspend` of a CronJob; `suspend: true` also sets [`SUSPENDED_BY_ANNOTATION`], `false` removes it.
    SetCronJobSuspend {
        namespace: String,
        name: String,
        suspend: bool,
    },
    /// Set `status.applicationActivated` on a Stork static-copy MigrationSchedule (full-object update: Stork's
    /// CRDs have no status subresource).
    SetApplicationActivated {
        namespace: String,
        name: String,
        activated: bool,
    },
    /// Render and apply this role's objects now (the protect step).
    ApplyRoleObjects,
}

/// `status.phase`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Phase {
    /// In its role, nothing left to do.
    Ready,
    /// Waiting for Stork to (de)activate cluster domains.
    WaitingForStorage,
    /// Waiting for the old primary to stop its applications.
    WaitingForPeer,
    /// Starting the applications here.
    Activating,
    /// Stopping the applications here.
    Deactivating,
    /// Cannot proceed without a change; the Stalled condition says what to commit.
    Stalled,
}

impl fmt::Display for Phase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Phase::Ready => "Ready",
            Phase::WaitingForStorage => "WaitingForStorage",
            Phase::WaitingForPeer => "WaitingForPeer",
            Phase::Activating => "Activating",
            Phase::Deactivating => "Deactivating",
            Phase::Stalled => "Stalled",
        })
    }
}

/// A Kubernetes Event to emit on the DRPlan.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Event {
    /// `Normal` or `Warning`.
    pub type_: &'static str,
    pub reason: String,
    pub message: String,
}

/// Everything the executor needs after one planning pass.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Outcome {
    pub role: Role,
    pub phase: Phase,
    /// `status.transition` to write (the previous one is kept unchanged when no transition is running).
    pub transition: Option<Transition>,
    /// `status.conditions` (Ready, Reconciling, Stalled), keeping `lastTransitionTime` when a status is unchanged.
    pub conditions: Vec<Condition>,
    pub actions: Vec<Action>,
    pub events: Vec<Event>,
    /// While `true`, the executor must not apply this role's rendered objects outside [`Action::ApplyRoleObjects`]
    /// (a new primary must not start migrations before its applications run).
    pub hold_role_objects: bool,
    /// The revision is fully in effect here: the executor may write `status.lastAppliedRevision`.
    pub complete: bool,
    /// When to plan again if nothing changes; `Some(0)` right after performing the actions.
    pub requeue_after_seconds: Option<u64>,
    /// `status.workloads`: workloads running (replicas > 0) out of all protected ones, as observed in this pass.
    pub workloads: (usize, usize),
}

/// The deterministic name of the ClusterDomainUpdate that sets `domain` to `active` for the plan's transition at
/// `revision`: stable across restarts (so it is created once), new for every commit (Stork's updates are one-shot).
pub fn domain_update_name(plan: &str, domain: &str, active: bool, revision: &str) -> String {
    let verb = if active { "activate" } else { "deactivate" };
    let rev: String = revision
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .take(8)
        .collect();
    let raw = format!("drgitops-{plan}-{domain}-{verb}-{rev}");
    let mut name: String = raw
        .to_ascii_lowercase()
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '.' {
                c
            } else {
                '-'
            }
        })
        .collect();
    name.truncate(253);
    while name.ends_with(['-', '.']) {
        name.pop();
    }
    name
}

impl PlanSpec {
    /// The transition-relevant parts of a DRPlan.
    pub fn from_plan(plan: &DRPlan) -> PlanSpec {
        PlanSpec {
            name: plan.metadata.name.clone().unwrap_or_default(),
            namespace: plan.metadata.namespace.clone().unwrap_or_default(),
            mode: plan.spec.mode,
            primary: plan.spec.primary.clone(),
            domains: plan
                .spec
                .domains
                .iter()
                .map(|d| DomainSpec {
                    name: d.name.clone(),
                    active: d.is_active(),
                })
                .collect(),
            peer_stop_timeout_seconds: u64::try_from(plan.spec.peer_stop_timeout_seconds())
                .unwrap_or(0),
        }
    }
}

impl Workload {
    /// Reads a workload's replicas and replica annotations (both spellings).
    pub fn new(
        workload: WorkloadRef,
        replicas: Option<i32>,
        annotations: &BTreeMap<String, String>,
    ) -> Workload {
        Workload {
            workload,
            replicas,
            replicas_annotation: annotations.get(REPLICAS_ANNOTATION).cloned(),
            legacy_replicas_annotation: annotations.get(LEGACY_REPLICAS_ANNOTATION).cloned(),
        }
    }
}

impl PeerPlan {
    /// What the fence reads from the peer's DRPlan status.
    pub fn from_status(status: Option<&DRPlanStatus>) -> PeerPlan {
        PeerPlan {
            role: status.and_then(|s| s.role),
            last_applied_revision: status.and_then(|s| s.last_applied_revision.clone()),
            phase: status.and_then(|s| s.phase.clone()),
        }
    }
}

fn workload_counts(obs: &Observed) -> (usize, usize) {
    let running = obs
        .workloads
        .iter()
        .filter(|w| w.effective_replicas() > 0)
        .count();
    (running, obs.workloads.len())
}

/// RFC 3339 to the second, as Kubernetes writes times (`metav1.Time`).
fn rfc3339(t: Timestamp) -> String {
    Timestamp::from_second(t.as_second())
        .unwrap_or(t)
        .to_string()
}

fn parse_time(value: Option<&str>) -> Option<Timestamp> {
    value.and_then(|v| v.parse().ok())
}

impl PreviousStatus {
    /// Reads what this cluster's reconciler wrote last. A transition or step whose times cannot be read is dropped
    /// (the planner then starts it afresh from live state, which is safe because every step is level-triggered).
    pub fn from_status(status: Option<&DRPlanStatus>) -> PreviousStatus {
        let Some(status) = status else {
            return PreviousStatus::default();
        };
        let transition = status.transition.as_ref().and_then(|t| {
            let steps = t
                .steps
                .iter()
                .map(|s| {
                    Some(Step {
                        name: s.name.clone(),
                        state: StepState::parse(&s.state)?,
                        message: s.message.clone().unwrap_or_default(),
                        time: parse_time(s.time.as_deref())?,
                    })
                })
                .collect::<Option<Vec<Step>>>()?;
            Some(Transition {
                from: t.from.clone()?,
                to: t.to.clone()?,
                revision: t.revision.clone()?,
                started_at: parse_time(t.started_at.as_deref())?,
                finished_at: parse_time(t.finished_at.as_deref()),
                steps,
            })
        });
        let conditions = status
            .conditions
            .iter()
            .filter_map(|c| {
                Some(Condition {
                    type_: c.type_.clone(),
                    status: c.status.clone(),
                    reason: c.reason.clone().unwrap_or_default(),
                    message: c.message.clone().unwrap_or_default(),
                    last_transition_time: parse_time(c.last_transition_time.as_deref())?,
                })
            })
            .collect();
        PreviousStatus {
            role: status.role,
            transition,
            conditions,
        }
    }
}

impl StepState {
    /// The state as written in status.
    pub fn as_str(self) -> &'static str {
        match self {
            StepState::Pending => "Pending",
            StepState::InProgress => "InProgress",
            StepState::Waiting => "Waiting",
            StepState::Succeeded => "Succeeded",
            StepState::Stalled => "Stalled",
        }
    }

    fn parse(value: &str) -> Option<StepState> {
        [
            StepState::Pending,
            StepState::InProgress,
            StepState::Waiting,
            StepState::Succeeded,
            StepState::Stalled,
        ]
        .into_iter()
        .find(|s| s.as_str() == value)
    }
}

impl From<&Transition> for plan_types::Transition {
    fn from(t: &Transition) -> Self {
        plan_types::Transition {
            from: Some(t.from.clone()),
            to: Some(t.to.clone()),
            revision: Some(t.revision.clone()),
            started_at: Some(rfc3339(t.started_at)),
            finished_at: t.finished_at.map(rfc3339),
            steps: t
                .steps
                .iter()
                .map(|s| plan_types::TransitionStep {
                    name: s.name.clone(),
                    state: s.state.as_str().to_string(),
                    message: Some(s.message.clone()).filter(|m| !m.is_empty()),
                    time: Some(rfc3339(s.time)),
                })
                .collect(),
        }
    }
}

impl Outcome {
    /// Writes this outcome into a DRPlan status: local domain, role, phase, conditions, transition, and
    /// `lastAppliedRevision` once the revision is fully in effect. Other fields are left as they are.
    pub fn write_status(&self, status: &mut DRPlanStatus, local_domain: &str, revision: &str) {
        status.local_domain = Some(local_domain.to_string());
        status.role = Some(self.role);
        status.phase = Some(self.phase.to_string());
        status.last_attempted_revision = Some(revision.to_string());
        if self.complete {
            status.last_applied_revision = Some(revision.to_string());
        }
        status.transition = self.transition.as_ref().map(plan_types::Transition::from);
        status.workloads = Some(plan_types::WorkloadCounts {
            activated: i64::try_from(self.workloads.0).unwrap_or(i64::MAX),
            total: i64::try_from(self.workloads.1).unwrap_or(i64::MAX),
        });
        status.conditions = self
            .conditions
            .iter()
            .map(|c| plan_types::Condition {
                type_: c.type_.clone(),
                status: c.status.clone(),
                reason: Some(c.reason.clone()),
                message: Some(c.message.clone()).filter(|m| !m.is_empty()),
                last_transition_time: Some(rfc3339(c.last_transition_time)),
                observed_generation: status.observed_generation,
            })
            .collect();
    }
}

/// Plans the next step of the plan's transition on this cluster. Pure: see the module docs.
pub fn plan(spec: &PlanSpec, obs: &Observed) -> Outcome {
    let local = obs.local_domain.as_str();
    let role = if spec.primary == local {
        Role::Primary
    } else {
        Role::Standby
    };
    if !spec.domains.iter().any(|d| d.name == local) {
        let names: Vec<&str> = spec.domains.iter().map(|d| d.name.as_str()).collect();
        let message = format!(
            "cluster domain {local} is not among spec.domains [{}] of plan {}/{}; add it to spec.domains or run the \
             reconciler with --cluster-domain set to one of them",
            names.join(", "),
            spec.namespace,
            spec.name
        );
        return stalled_outside_transition(role, obs, "UnknownLocalDomain", message);
    }
    let peer_domain = spec
        .domains
        .iter()
        .find(|d| d.name != local)
        .map(|d| d.name.clone());
    match role {
        Role::Primary => plan_primary(spec, obs, peer_domain),
        Role::Standby => plan_standby(spec, obs),
    }
}

/// Result of evaluating one step against live state.
enum Eval {
    Done(String),
    Act(Vec<Action>, String),
    Wait(String),
    Stall {
        reason: &'static str,
        message: String,
    },
}

fn plan_primary(spec: &PlanSpec, obs: &Observed, peer_domain: Option<String>) -> Outcome {
    let local = &obs.local_domain;
    let ongoing = obs
        .previous
        .transition
        .as_ref()
        .filter(|t| t.finished_at.is_none());
    // A transition towards this domain from elsewhere is a role change even after the first pass wrote the new role.
    let role_change = obs.previous.role == Some(Role::Standby)
        || ongoing.is_some_and(|t| t.to == *local && t.from != *local);
    let metro_mismatch = spec.mode == Mode::Metro
        && obs.cluster_domains.is_some()
        && !metro_domains_match(spec, obs);
    if !role_change && !metro_mismatch {
        return steady(Role::Primary, obs, false);
    }
    let mut names = Vec::new();
    if spec.mode == Mode::Metro {
        names.push(step::METRO);
    }
    if role_change {
        names.push(step::FENCE);
        names.push(step::ACTIVATE);
    }
    names.push(step::PROTECT);
    let from = if role_change {
        peer_domain.clone().unwrap_or_else(|| local.clone())
    } else {
        local.clone()
    };
    let current = current_transition(obs, &from, local, &names);
    let peer_domain = peer_domain.unwrap_or_default();
    run_steps(
        spec,
        obs,
        Role::Primary,
        current,
        &names,
        |name, current| match name {
            step::METRO => eval_metro(spec, obs, &current.revision),
            step::FENCE => eval_fence(spec, obs, current, &peer_domain),
            step::ACTIVATE => eval_activate(obs),
            _ => eval_protect(obs, current),
        },
    )
}

fn plan_standby(spec: &PlanSpec, obs: &Observed) -> Outcome {
    let local = &obs.local_domain;
    let ongoing = obs
        .previous
        .transition
        .as_ref()
        .filter(|t| t.finished_at.is_none());
    let role_change = obs.previous.role == Some(Role::Primary)
        || ongoing.is_some_and(|t| t.from == *local && t.to != *local);
    let names = [
        step::SUSPEND_SCHEDULE,
        step::SCALE_DOWN,
        step::SUSPEND_CRONJOBS,
        step::DEACTIVATE_STATIC_COPIES,
    ];
    let evaluate = |name: &str| match name {
        step::SUSPEND_SCHEDULE => eval_suspend_schedule(obs),
        step::SCALE_DOWN => eval_scale_down(obs),
        step::SUSPEND_CRONJOBS => eval_suspend_cronjobs(obs),
        _ => eval_deactivate_static_copies(obs),
    };
    // A standby stops applications whenever it finds them running, even without a recorded role change (the old
    // primary coming back after a disaster may not have written its status before it went down).
    let work = names.iter().any(|n| !matches!(evaluate(n), Eval::Done(_)));
    if !role_change && !work {
        return steady(Role::Standby, obs, false);
    }
    let current = current_transition(obs, local, &spec.primary, &names);
    run_steps(spec, obs, Role::Standby, current, &names, |name, _| {
        evaluate(name)
    })
}

/// The transition to continue (same from/to and unfinished) or a new one.
fn current_transition(obs: &Observed, from: &str, to: &str, names: &[&str]) -> Transition {
    if let Some(t) = &obs.previous.transition
        && t.finished_at.is_none()
        && t.from == from
        && t.to == to
        && t.steps
            .iter()
            .map(|s| s.name.as_str())
            .eq(names.iter().copied())
    {
        return t.clone();
    }
    Transition {
        from: from.to_string(),
        to: to.to_string(),
        revision: obs.revision.clone(),
        started_at: obs.now,
        finished_at: None,
        steps: names
            .iter()
            .map(|n| Step {
                name: n.to_string(),
                state: StepState::Pending,
                message: String::new(),
                time: obs.now,
            })
            .collect(),
    }
}

fn run_steps(
    spec: &PlanSpec,
    obs: &Observed,
    role: Role,
    previous: Transition,
    names: &[&str],
    mut evaluate: impl FnMut(&str, &Transition) -> Eval,
) -> Outcome {
    let is_new = obs.previous.transition.as_ref() != Some(&previous);
    let mut events = Vec::new();
    if is_new {
        events.push(Event {
            type_: "Normal",
            reason: "TransitionStarted".into(),
            message: format!(
                "plan {}/{}: {} -> {} at revision {}; this cluster becomes {}",
                spec.namespace,
                spec.name,
                previous.from,
                previous.to,
                previous.revision,
                role.as_str()
            ),
        });
    }
    let mut next = previous.clone();
    let mut actions = Vec::new();
    let mut blocking: Option<(usize, StepState, Option<&'static str>)> = None;
    for (i, name) in names.iter().enumerate() {
        if blocking.is_some() {
            set_step(
                &mut next.steps[i],
                StepState::Pending,
                String::new(),
                obs.now,
            );
            continue;
        }
        let (state, message, stall_reason) = match evaluate(name, &previous) {
            Eval::Done(m) => (StepState::Succeeded, m, None),
            Eval::Act(a, m) => {
                actions = a;
                (StepState::InProgress, m, None)
            }
            Eval::Wait(m) => (StepState::Waiting, m, None),
            Eval::Stall { reason, message } => (StepState::Stalled, message, Some(reason)),
        };
        set_step(&mut next.steps[i], state, message, obs.now);
        if state != StepState::Succeeded {
            blocking = Some((i, state, stall_reason));
        }
    }
    for (before, after) in previous.steps.iter().zip(&next.steps) {
        let changed = is_new && after.state != StepState::Pending || before.state != after.state;
        if changed && after.state != StepState::Pending {
            events.push(Event {
                type_: if after.state == StepState::Stalled {
                    "Warning"
                } else {
                    "Normal"
                },
                reason: format!("{}{}", camel(&after.name), after.state),
                message: after.message.clone(),
            });
        }
    }
    let (phase, requeue, complete) = match blocking {
        None => {
            next.finished_at = Some(obs.now);
            events.push(Event {
                type_: "Normal",
                reason: "TransitionFinished".into(),
                message: format!(
                    "plan {}/{}: {} -> {} finished; this cluster is {}",
                    spec.namespace,
                    spec.name,
                    next.from,
                    next.to,
                    role.as_str()
                ),
            });
            (Phase::Ready, None, true)
        }
        Some((i, state, _)) => {
            let phase = match (state, names[i]) {
                (StepState::Stalled, _) => Phase::Stalled,
                (_, step::METRO) => Phase::WaitingForStorage,
                (StepState::Waiting, _) if role == Role::Primary => Phase::WaitingForPeer,
                _ if role == Role::Primary => Phase::Activating,
                _ => Phase::Deactivating,
            };
            let requeue = match state {
                StepState::InProgress => 0,
                StepState::Stalled => STALLED_RECHECK_SECONDS,
                _ => WAIT_RECHECK_SECONDS,
            };
            (phase, Some(requeue), false)
        }
    };
    let conditions = match blocking {
        None => conditions_for(
            obs,
            Phase::Ready,
            None,
            "Ready",
            &format!("this cluster is {} and in its role", role.as_str()),
        ),
        Some((i, _, stall_reason)) => {
            let step = &next.steps[i];
            let reason = stall_reason
                .map(str::to_string)
                .unwrap_or_else(|| camel(&step.name));
            conditions_for(
                obs,
                phase,
                stall_reason,
                &reason,
                &format!("{}: {}", step.name, step.message),
            )
        }
    };
    // The new primary's objects wait for the protect step; the standby's (schedule suspended) are safe at once.
    let hold_role_objects = role == Role::Primary
        && blocking.is_some_and(|(i, _, _)| names[i] != step::PROTECT)
        && names.contains(&step::FENCE);
    Outcome {
        role,
        phase,
        transition: Some(next),
        conditions,
        actions,
        events,
        hold_role_objects,
        complete,
        requeue_after_seconds: requeue,
        workloads: workload_counts(obs),
    }
}

fn set_step(step: &mut Step, state: StepState, message: String, now: Timestamp) {
    if step.state != state {
        step.state = state;
        step.time = now;
    }
    step.message = message;
}

/// Steady state: in role, no transition running. The previous transition record is kept as history.
fn steady(role: Role, obs: &Observed, hold_role_objects: bool) -> Outcome {
    Outcome {
        role,
        phase: Phase::Ready,
        transition: obs.previous.transition.clone(),
        conditions: conditions_for(
            obs,
            Phase::Ready,
            None,
            "Ready",
            &format!("this cluster is {} and in its role", role.as_str()),
        ),
        actions: Vec::new(),
        events: Vec::new(),
        hold_role_objects,
        complete: true,
        requeue_after_seconds: None,
        workloads: workload_counts(obs),
    }
}

fn stalled_outside_transition(
    role: Role,
    obs: &Observed,
    reason: &'static str,
    message: String,
) -> Outcome {
    Outcome {
        role,
        phase: Phase::Stalled,
        transition: obs.previous.transition.clone(),
        conditions: conditions_for(obs, Phase::Stalled, Some(reason), reason, &message),
        actions: Vec::new(),
        events: vec![Event {
            type_: "Warning",
            reason: reason.to_string(),
            message,
        }],
        hold_role_objects: true,
        complete: false,
        requeue_after_seconds: Some(STALLED_RECHECK_SECONDS),
        workloads: workload_counts(obs),
    }
}

fn conditions_for(
    obs: &Observed,
    phase: Phase,
    stall: Option<&str>,
    reason: &str,
    message: &str,
) -> Vec<Condition> {
    let ready = phase == Phase::Ready;
    let stalled = stall.is_some();
    let mk = |type_: &str, status: bool, reason: &str, message: &str| {
        let status = if status { "True" } else { "False" }.to_string();
        let last_transition_time = obs
            .previous
            .conditions
            .iter()
            .find(|c| c.type_ == type_ && c.status == status)
            .map(|c| c.last_transition_time)
            .unwrap_or(obs.now);
        Condition {
            type_: type_.to_string(),
            status,
            reason: reason.to_string(),
            message: message.to_string(),
            last_transition_time,
        }
    };
    vec![
        mk(
            "Ready",
            ready,
            if ready { "Ready" } else { reason },
            message,
        ),
        mk(
            "Reconciling",
            !ready && !stalled,
            if ready || stalled { "Idle" } else { reason },
            message,
        ),
        mk(
            "Stalled",
            stalled,
            stall.unwrap_or("NotStalled"),
            if stalled { message } else { "" },
        ),
    ]
}

fn camel(name: &str) -> String {
    name.split('-')
        .map(|part| {
            let mut chars = part.chars();
            match chars.next() {
                Some(c) => c.to_ascii_uppercase().to_string() + chars.as_str(),
                None => String::new(),
            }
        })
        .collect()
}

fn observed_domains(obs: &Observed) -> BTreeMap<&str, bool> {
    obs.cluster_domains
        .iter()
        .flatten()
        .map(|d| (d.name.as_str(), d.active))
        .collect()
}

fn metro_domains_match(spec: &PlanSpec, obs: &Observed) -> bool {
    let observed = observed_domains(obs);
    spec.domains
        .iter()
        .all(|d| observed.get(d.name.as_str()) == Some(&d.active))
}

fn eval_metro(spec: &PlanSpec, obs: &Observed, revision: &str) -> Eval {
    if obs.cluster_domains.is_none() {
        // Without Stork's cluster domains there is nothing to activate or deactivate; the fence still requires a
        // reachable peer in Standby (an unreachable metro peer cannot be proven Inactive).
        return Eval::Done(format!(
            "no ClusterDomainsStatus on this cluster: storage activation of plan {}/{} is left as it is",
            spec.namespace, spec.name
        ));
    }
    let observed = observed_domains(obs);
    // Activations first, so a deactivation never leaves the storage cluster without an active domain.
    let mut pending: Vec<&DomainSpec> = spec
        .domains
        .iter()
        .filter(|d| observed.get(d.name.as_str()) != Some(&d.active))
        .collect();
    if pending.is_empty() {
        let desc: Vec<String> = spec
            .domains
            .iter()
            .map(|d| {
                format!(
                    "{} {}",
                    d.name,
                    if d.active { "Active" } else { "Inactive" }
                )
            })
            .collect();
        return Eval::Done(format!(
            "cluster domains match spec.domains: {}",
            desc.join(", ")
        ));
    }
    if let Some(unknown) = pending
        .iter()
        .find(|d| !observed.contains_key(d.name.as_str()))
    {
        let known: Vec<&str> = observed.keys().copied().collect();
        return Eval::Stall {
            reason: "UnknownDomain",
            message: format!(
                "cluster domain {} of spec.domains is not in ClusterDomainsStatus (known: {}); commit a spec.domains \
                 that names Stork's domains",
                unknown.name,
                known.join(", ")
            ),
        };
    }
    if pending.iter().any(|d| d.active) {
        pending.retain(|d| d.active);
    }
    let mut creates = Vec::new();
    let mut waiting = Vec::new();
    for d in pending {
        let name = domain_update_name(&spec.name, &d.name, d.active, revision);
        let verb = if d.active { "activate" } else { "deactivate" };
        match obs.domain_updates.iter().find(|u| u.name == name) {
            None => creates.push(Action::CreateDomainUpdate { name, domain: d.name.clone(), active: d.active }),
            Some(u) if u.status == "Failed" => {
                return Eval::Stall {
                    reason: "ClusterDomainUpdateFailed",
                    message: format!(
                        "ClusterDomainUpdate {name} failed to {verb} cluster domain {}: {}; fix the cause and delete \
                         {name} to retry, or commit a different spec.domains",
                        d.name,
                        u.reason.as_deref().unwrap_or("Stork gave no reason")
                    ),
                };
            }
            Some(u) if u.status == "Successful" => waiting.push(format!(
                "ClusterDomainUpdate {name} succeeded; waiting for ClusterDomainsStatus to report {} {}",
                d.name,
                if d.active { "Active" } else { "Inactive" }
            )),
            Some(_) => waiting.push(format!("waiting for Stork to {verb} cluster domain {} (ClusterDomainUpdate {name})", d.name)),
        }
    }
    if !creates.is_empty() {
        let names: Vec<String> = creates
            .iter()
            .filter_map(|a| match a {
                Action::CreateDomainUpdate { name, .. } => Some(name.clone()),
                _ => None,
            })
            .collect();
        return Eval::Act(
            creates,
            format!("creating ClusterDomainUpdate {}", names.join(", ")),
        );
    }
    Eval::Wait(waiting.join("; "))
}

fn eval_fence(spec: &PlanSpec, obs: &Observed, current: &Transition, peer_domain: &str) -> Eval {
    if let Some(s) = current.step(step::FENCE)
        && s.state == StepState::Succeeded
    {
        // Fencing is decided once per transition: the decision is written before any workload is scaled up.
        return Eval::Done(s.message.clone());
    }
    let revisions = [current.revision.as_str(), obs.revision.as_str()];
    let blocked = match &obs.peer {
        Peer::Reachable {
            plan,
            running_workloads,
        } => {
            let standby_here = plan.as_ref().is_some_and(|p| {
                p.role == Some(Role::Standby)
                    && p.last_applied_revision
                        .as_deref()
                        .is_some_and(|r| revisions.contains(&r))
            });
            let running = running_workloads.unwrap_or(0);
            if standby_here && running == 0 {
                return Eval::Done(format!(
                    "peer {peer_domain} reports Standby at revision {}",
                    short(&current.revision)
                ));
            }
            let report = match plan {
                None => format!(
                    "peer {peer_domain} has no DRPlan {}/{}",
                    spec.namespace, spec.name
                ),
                Some(p) => format!(
                    "peer {peer_domain} reports role {}, revision {}, phase {}",
                    p.role
                        .map(|r| r.as_str().to_string())
                        .unwrap_or_else(|| "unknown".into()),
                    p.last_applied_revision
                        .as_deref()
                        .map(short)
                        .unwrap_or("none"),
                    p.phase.as_deref().unwrap_or("unknown")
                ),
            };
            let running = if running > 0 {
                format!(" and still runs {running} workload(s)")
            } else {
                String::new()
            };
            let wait =
                format!("waiting for the old primary to stop its applications: {report}{running}");
            let stall = format!(
                "{report}{running} after {}s (spec.failover.peerStopTimeoutSeconds); check the drgitops reconciler \
                 on {peer_domain}, or commit a failback to keep the applications there: drgitops failover --plan {} \
                 --to {peer_domain}",
                spec.peer_stop_timeout_seconds, spec.name
            );
            (wait, "PeerStillRunning", stall)
        }
        Peer::Unreachable { error } => {
            if spec.mode == Mode::Async {
                return Eval::Done(format!(
                    "peer {peer_domain} is unreachable ({error}); the commit declared the disaster"
                ));
            }
            let inactive = obs
                .cluster_domains
                .iter()
                .flatten()
                .any(|d| d.name == peer_domain && !d.active);
            if inactive {
                return Eval::Done(format!(
                    "peer {peer_domain} is unreachable and its cluster domain is Inactive"
                ));
            }
            let wait = format!(
                "peer {peer_domain} is unreachable ({error}) and its cluster domain is still Active; waiting for it to \
                 answer or for the domain to be deactivated"
            );
            let stall = format!(
                "peer {peer_domain} is unreachable ({error}) and its cluster domain is still Active after {}s \
                 (spec.failover.peerStopTimeoutSeconds); commit its deactivation: drgitops failover --plan {} --to {} \
                 --deactivate {peer_domain}",
                spec.peer_stop_timeout_seconds, spec.name, obs.local_domain
            );
            (wait, "PeerDomainActive", stall)
        }
    };
    let (wait, reason, stall) = blocked;
    let waiting_since = current
        .step(step::FENCE)
        .filter(|s| matches!(s.state, StepState::Waiting | StepState::Stalled))
        .map(|s| (s.state, s.time));
    match waiting_since {
        Some((StepState::Stalled, _)) => Eval::Stall {
            reason,
            message: stall,
        },
        Some((_, since))
            if obs.now.duration_since(since).as_secs() >= spec.peer_stop_timeout_seconds as i64 =>
        {
            Eval::Stall {
                reason,
                message: stall,
            }
        }
        _ => Eval::Wait(wait),
    }
}

fn short(revision: &str) -> &str {
    revision.get(..12).unwrap_or(revision)
}

fn eval_activate(obs: &Observed) -> Eval {
    let mut actions = Vec::new();
    let mut invalid = Vec::new();
    for w in &obs.workloads {
        match w.recorded() {
            Recorded::Count(n) if n > 0 && w.effective_replicas() == 0 => {
                actions.push(Action::ScaleUp {
                    workload: w.workload.clone(),
                    replicas: n,
                });
            }
            Recorded::Invalid { key, value } if w.effective_replicas() == 0 => {
                invalid.push(format!("{} has {key}={value:?}", w.workload));
            }
            _ => {}
        }
    }
    let scale_ups = actions.len();
    for c in obs
        .cron_jobs
        .iter()
        .filter(|c| c.suspend && (c.migrated || c.suspended_by_us))
    {
        actions.push(Action::SetCronJobSuspend {
            namespace: c.namespace.clone(),
            name: c.name.clone(),
            suspend: false,
        });
    }
    let cron = actions.len() - scale_ups;
    for s in obs
        .static_copies
        .iter()
        .filter(|s| !s.application_activated)
    {
        actions.push(Action::SetApplicationActivated {
            namespace: s.namespace.clone(),
            name: s.name.clone(),
            activated: true,
        });
    }
    let copies = actions.len() - scale_ups - cron;
    let skipped = if invalid.is_empty() {
        String::new()
    } else {
        format!("; not scaled (no valid count): {}", invalid.join(", "))
    };
    if actions.is_empty() {
        let running = obs
            .workloads
            .iter()
            .filter(|w| w.effective_replicas() > 0)
            .count();
        return Eval::Done(format!(
            "{running} of {} workload(s) running{skipped}",
            obs.workloads.len()
        ));
    }
    Eval::Act(
        actions,
        format!(
            "scaling up {scale_ups} workload(s), resuming {cron} CronJob(s), activating {copies} static cop(ies){skipped}"
        ),
    )
}

fn eval_protect(obs: &Observed, current: &Transition) -> Eval {
    let unreachable = matches!(obs.peer, Peer::Unreachable { .. });
    // Applied once already in this transition: what is live now is what the apply left (it yields `suspend` to
    // Stork when Stork suspended the schedule itself, and never touches Stork's own static copy), so the step is
    // over either way. Should a crash have come between the status write and the apply, the steady-state apply
    // that follows a finished transition does it.
    let applied_before = current
        .step(step::PROTECT)
        .is_some_and(|s| s.state == StepState::InProgress);
    match &obs.schedule {
        Some(s) if !s.static_copy && !s.suspend => Eval::Done(format!(
            "MigrationSchedule {}/{} runs towards the peer",
            s.namespace, s.name
        )),
        Some(s) if !s.static_copy && unreachable => Eval::Done(format!(
            "MigrationSchedule {}/{} applied, suspended while the peer is unreachable",
            s.namespace, s.name
        )),
        Some(s) if applied_before && s.static_copy => Eval::Done(format!(
            "MigrationSchedule {}/{} is still a static copy (Stork's copy of the peer's schedule holds the name), \
             so no migrations run towards the peer until that copy is removed",
            s.namespace, s.name
        )),
        Some(s) if applied_before => Eval::Done(format!(
            "MigrationSchedule {}/{} applied but suspended (Stork suspended it); see the plan's conditions",
            s.namespace, s.name
        )),
        _ => Eval::Act(
            vec![Action::ApplyRoleObjects],
            "applying this cluster's Primary objects".into(),
        ),
    }
}

fn eval_suspend_schedule(obs: &Observed) -> Eval {
    match &obs.schedule {
        Some(s) if !s.suspend => Eval::Act(
            vec![Action::SetScheduleSuspend {
                namespace: s.namespace.clone(),
                name: s.name.clone(),
                suspend: true,
            }],
            format!("suspending MigrationSchedule {}/{}", s.namespace, s.name),
        ),
        Some(s) => Eval::Done(format!(
            "MigrationSchedule {}/{} suspended",
            s.namespace, s.name
        )),
        None => Eval::Done("no MigrationSchedule to suspend".into()),
    }
}

fn eval_scale_down(obs: &Observed) -> Eval {
    let mut actions = Vec::new();
    for w in obs.workloads.iter().filter(|w| w.effective_replicas() > 0) {
        let replicas = w.effective_replicas();
        // The running count is the truth to restore; rewrite the annotation only when it says something else.
        let record = match w
            .replicas_annotation
            .as_deref()
            .map(|v| Recorded::parse(v, REPLICAS_ANNOTATION))
        {
            Some(Recorded::Count(n)) if n == replicas => None,
            _ => Some(replicas),
        };
        actions.push(Action::ScaleDown {
            workload: w.workload.clone(),
            record,
        });
    }
    if actions.is_empty() {
        return Eval::Done(format!("{} workload(s) at 0 replicas", obs.workloads.len()));
    }
    let n = actions.len();
    Eval::Act(
        actions,
        format!("recording replica counts and scaling {n} workload(s) to 0"),
    )
}

fn eval_suspend_cronjobs(obs: &Observed) -> Eval {
    let actions: Vec<Action> = obs
        .cron_jobs
        .iter()
        .filter(|c| !c.suspend)
        .map(|c| Action::SetCronJobSuspend {
            namespace: c.namespace.clone(),
            name: c.name.clone(),
            suspend: true,
        })
        .collect();
    if actions.is_empty() {
        return Eval::Done(format!("{} CronJob(s) suspended", obs.cron_jobs.len()));
    }
    let n = actions.len();
    Eval::Act(actions, format!("suspending {n} CronJob(s)"))
}

fn eval_deactivate_static_copies(obs: &Observed) -> Eval {
    let actions: Vec<Action> = obs
        .static_copies
        .iter()
        .filter(|s| s.application_activated)
        .map(|s| Action::SetApplicationActivated {
            namespace: s.namespace.clone(),
            name: s.name.clone(),
            activated: false,
        })
        .collect();
    if actions.is_empty() {
        return Eval::Done("no static copy marked applicationActivated".into());
    }
    let n = actions.len();
    Eval::Act(
        actions,
        format!("clearing applicationActivated on {n} static cop(ies)"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: &str = "us-east-1a";
    const B: &str = "us-east-1b";

    fn ts(second: i64) -> Timestamp {
        Timestamp::from_second(1_790_000_000 + second).unwrap()
    }

    fn spec(mode: Mode, primary: &str) -> PlanSpec {
        PlanSpec {
            name: "mysql".into(),
            namespace: "mysql".into(),
            mode,
            primary: primary.into(),
            domains: vec![
                DomainSpec {
                    name: A.into(),
                    active: true,
                },
                DomainSpec {
                    name: B.into(),
                    active: true,
                },
            ],
            peer_stop_timeout_seconds: 300,
        }
    }

    fn wref(kind: WorkloadKind, name: &str) -> WorkloadRef {
        WorkloadRef {
            kind,
            namespace: "mysql".into(),
            name: name.into(),
        }
    }

    fn workload(
        kind: WorkloadKind,
        name: &str,
        replicas: Option<i32>,
        annotation: Option<&str>,
    ) -> Workload {
        Workload {
            workload: wref(kind, name),
            replicas,
            replicas_annotation: annotation.map(str::to_string),
            legacy_replicas_annotation: None,
        }
    }

    /// One simulated cluster: what its API server holds plus the status its reconciler wrote.
    #[derive(Clone, Debug, PartialEq)]
    struct Cluster {
        domain: String,
        workloads: Vec<Workload>,
        cron_jobs: Vec<CronJob>,
        schedule: Option<Schedule>,
        static_copies: Vec<StaticCopy>,
        cluster_domains: Option<Vec<DomainState>>,
        domain_updates: Vec<DomainUpdate>,
        status: PreviousStatus,
        last_applied: Option<String>,
        phase: Option<Phase>,
        /// Every (workload, replicas) this reconciler scaled up to, in order.
        scale_ups: Vec<(WorkloadRef, i32)>,
        /// Every count this reconciler recorded into the annotation.
        recorded: Vec<(WorkloadRef, i32)>,
        /// The plan's schedule name is held by Stork's static copy of the peer's schedule.
        foreign_copy_holds_name: bool,
    }

    impl Cluster {
        /// A primary running mysql (3) and web (2) with a CronJob and the plan's schedule.
        fn running(domain: &str, revision: &str) -> Cluster {
            Cluster {
                domain: domain.into(),
                workloads: vec![
                    workload(WorkloadKind::StatefulSet, "mysql", Some(3), None),
                    workload(WorkloadKind::Deployment, "web", Some(2), None),
                ],
                cron_jobs: vec![CronJob {
                    namespace: "mysql".into(),
                    name: "backup".into(),
                    suspend: false,
                    migrated: false,
                    suspended_by_us: false,
                }],
                schedule: Some(Schedule {
                    namespace: "mysql".into(),
                    name: "mysql".into(),
                    suspend: false,
                    static_copy: false,
                }),
                static_copies: vec![],
                cluster_domains: None,
                domain_updates: vec![],
                status: PreviousStatus {
                    role: Some(Role::Primary),
                    transition: None,
                    conditions: vec![],
                },
                last_applied: Some(revision.into()),
                phase: Some(Phase::Ready),
                scale_ups: vec![],
                recorded: vec![],
                foreign_copy_holds_name: false,
            }
        }

        /// A standby holding what Stork migrated: workloads at 0 with counts, a suspended migrated CronJob, a
        /// static copy of the primary's schedule.
        fn standby(domain: &str, revision: &str) -> Cluster {
            Cluster {
                domain: domain.into(),
                workloads: vec![
                    workload(WorkloadKind::StatefulSet, "mysql", Some(0), Some("3")),
                    workload(WorkloadKind::Deployment, "web", Some(0), Some("2")),
                ],
                cron_jobs: vec![CronJob {
                    namespace: "mysql".into(),
                    name: "backup".into(),
                    suspend: true,
                    migrated: true,
                    suspended_by_us: false,
                }],
                schedule: None,
                static_copies: vec![StaticCopy {
                    namespace: "mysql".into(),
                    name: "mysql-nightly".into(),
                    application_activated: false,
                }],
                cluster_domains: None,
                domain_updates: vec![],
                status: PreviousStatus {
                    role: Some(Role::Standby),
                    transition: None,
                    conditions: vec![],
                },
                last_applied: Some(revision.into()),
                phase: Some(Phase::Ready),
                scale_ups: vec![],
                recorded: vec![],
                foreign_copy_holds_name: false,
            }
        }

        fn running_workloads(&self) -> u32 {
            self.workloads
                .iter()
                .filter(|w| w.effective_replicas() > 0)
                .count() as u32
        }

        fn as_peer(&self) -> Peer {
            Peer::Reachable {
                plan: Some(PeerPlan {
                    role: self.status.role,
                    last_applied_revision: self.last_applied.clone(),
                    phase: self.phase.map(|p| p.to_string()),
                }),
                running_workloads: Some(self.running_workloads()),
            }
        }

        fn observe(&self, revision: &str, now: Timestamp, peer: Peer) -> Observed {
            Observed {
                local_domain: self.domain.clone(),
                revision: revision.into(),
                now,
                workloads: self.workloads.clone(),
                cron_jobs: self.cron_jobs.clone(),
                schedule: self.schedule.clone(),
                static_copies: self.static_copies.clone(),
                cluster_domains: self.cluster_domains.clone(),
                domain_updates: self.domain_updates.clone(),
                peer,
                previous: self.status.clone(),
            }
        }

        /// Writes the outcome as the executor does, through the DRPlan status type, and reads it back.
        fn write_status(&mut self, out: &Outcome, revision: &str) {
            let mut raw = DRPlanStatus {
                last_applied_revision: self.last_applied.clone(),
                ..Default::default()
            };
            out.write_status(&mut raw, &self.domain, revision);
            let written = serde_json::to_value(&raw).unwrap();
            let raw: DRPlanStatus = serde_json::from_value(written).unwrap();
            self.status = PreviousStatus::from_status(Some(&raw));
            assert_eq!(
                self.status.transition, out.transition,
                "transition survives the status round trip"
            );
            assert_eq!(self.status.conditions, out.conditions);
            self.phase = Some(out.phase);
            self.last_applied = raw.last_applied_revision.clone();
        }

        fn perform(&mut self, action: &Action, peer_unreachable: bool) {
            match action {
                Action::CreateDomainUpdate {
                    name,
                    domain,
                    active,
                } => self.domain_updates.push(DomainUpdate {
                    name: name.clone(),
                    domain: domain.clone(),
                    active: *active,
                    status: String::new(),
                    reason: None,
                }),
                Action::SetScheduleSuspend { suspend, .. } => {
                    if let Some(s) = self.schedule.as_mut() {
                        s.suspend = *suspend;
                    }
                }
                Action::ScaleDown { workload, record } => {
                    let w = self
                        .workloads
                        .iter_mut()
                        .find(|w| w.workload == *workload)
                        .unwrap();
                    if let Some(n) = record {
                        w.replicas_annotation = Some(n.to_string());
                        self.recorded.push((workload.clone(), *n));
                    }
                    w.replicas = Some(0);
                }
                Action::ScaleUp { workload, replicas } => {
                    let w = self
                        .workloads
                        .iter_mut()
                        .find(|w| w.workload == *workload)
                        .unwrap();
                    w.replicas = Some(*replicas);
                    self.scale_ups.push((workload.clone(), *replicas));
                }
                Action::SetCronJobSuspend { name, suspend, .. } => {
                    let c = self.cron_jobs.iter_mut().find(|c| c.name == *name).unwrap();
                    c.suspend = *suspend;
                    c.suspended_by_us = *suspend;
                }
                Action::SetApplicationActivated {
                    name, activated, ..
                } => {
                    let s = self
                        .static_copies
                        .iter_mut()
                        .find(|s| s.name == *name)
                        .unwrap();
                    s.application_activated = *activated;
                }
                // The apply leaves a schedule that is Stork's own static copy alone, as the plan controller does.
                Action::ApplyRoleObjects if self.foreign_copy_holds_name => {}
                Action::ApplyRoleObjects => {
                    self.schedule = Some(Schedule {
                        namespace: "mysql".into(),
                        name: "mysql".into(),
                        suspend: peer_unreachable,
                        static_copy: false,
                    })
                }
            }
        }

        /// One reconcile pass as the executor runs it: plan, write status, perform the actions.
        fn pass(&mut self, spec: &PlanSpec, revision: &str, now: Timestamp, peer: Peer) -> Outcome {
            let unreachable = matches!(peer, Peer::Unreachable { .. });
            let out = plan(spec, &self.observe(revision, now, peer));
            self.write_status(&out, revision);
            for a in &out.actions {
                self.perform(a, unreachable);
            }
            out
        }

        fn replicas(&self, name: &str) -> Option<i32> {
            self.workloads
                .iter()
                .find(|w| w.workload.name == name)
                .unwrap()
                .replicas
        }

        fn annotation(&self, name: &str) -> Option<&str> {
            self.workloads
                .iter()
                .find(|w| w.workload.name == name)
                .unwrap()
                .replicas_annotation
                .as_deref()
        }

        fn step(&self, name: &str) -> Step {
            self.status
                .transition
                .as_ref()
                .unwrap()
                .step(name)
                .unwrap()
                .clone()
        }
    }

    fn unreachable() -> Peer {
        Peer::Unreachable {
            error: "connection refused".into(),
        }
    }

    /// Runs both reconcilers alternately until both are complete; returns the number of rounds. Asserts at every
    /// moment that the two clusters never both run applications.
    fn converge(
        a: &mut Cluster,
        b: &mut Cluster,
        spec: &PlanSpec,
        revision: &str,
        start: i64,
    ) -> usize {
        for round in 0..20 {
            let now = ts(start + round as i64);
            let oa = a.pass(spec, revision, now, b.as_peer());
            assert!(
                a.running_workloads() == 0 || b.running_workloads() == 0,
                "both sides run: {a:?} {b:?}"
            );
            let ob = b.pass(spec, revision, now, a.as_peer());
            assert!(
                a.running_workloads() == 0 || b.running_workloads() == 0,
                "both sides run: {a:?} {b:?}"
            );
            if oa.complete && ob.complete && oa.actions.is_empty() && ob.actions.is_empty() {
                return round;
            }
        }
        panic!("no convergence: {a:#?} {b:#?}");
    }

    #[test]
    fn planned_async_failover_then_failback() {
        let mut a = Cluster::running(A, "rev1");
        let mut b = Cluster::standby(B, "rev1");
        let to_b = spec(Mode::Async, B);

        // The new primary sees the commit first: it waits for the old one, scaling nothing up.
        let out = b.pass(&to_b, "rev2", ts(0), a.as_peer());
        assert_eq!(out.role, Role::Primary);
        assert_eq!(out.phase, Phase::WaitingForPeer);
        assert!(out.hold_role_objects);
        assert!(out.actions.is_empty());
        assert_eq!(b.step(step::FENCE).state, StepState::Waiting);
        assert!(
            b.step(step::FENCE).message.contains("reports role Primary"),
            "{:?}",
            b.step(step::FENCE)
        );
        assert!(out.events.iter().any(|e| e.reason == "TransitionStarted"));

        converge(&mut a, &mut b, &to_b, "rev2", 1);

        // Applications run only on the new primary, at the recorded counts.
        assert_eq!((b.replicas("mysql"), b.replicas("web")), (Some(3), Some(2)));
        assert_eq!((a.replicas("mysql"), a.replicas("web")), (Some(0), Some(0)));
        assert_eq!(
            (a.annotation("mysql"), a.annotation("web")),
            (Some("3"), Some("2"))
        );
        assert!(
            a.schedule.as_ref().unwrap().suspend,
            "old primary's schedule suspended"
        );
        assert!(a.cron_jobs[0].suspend && a.cron_jobs[0].suspended_by_us);
        assert!(!b.cron_jobs[0].suspend, "migrated CronJob resumed");
        assert!(b.static_copies[0].application_activated);
        assert!(
            !b.schedule.as_ref().unwrap().suspend,
            "new primary protects towards the old one"
        );
        assert_eq!(
            (a.status.role, b.status.role),
            (Some(Role::Standby), Some(Role::Primary))
        );
        let tb = b.status.transition.clone().unwrap();
        assert_eq!(
            (tb.from.as_str(), tb.to.as_str(), tb.revision.as_str()),
            (A, B, "rev2")
        );
        assert!(tb.finished_at.is_some());
        assert!(
            tb.steps.iter().all(|s| s.state == StepState::Succeeded),
            "{tb:?}"
        );
        let names: Vec<&str> = tb.steps.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, [step::FENCE, step::ACTIVATE, step::PROTECT]);
        let ta = a.status.transition.clone().unwrap();
        let names: Vec<&str> = ta.steps.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(
            names,
            [
                step::SUSPEND_SCHEDULE,
                step::SCALE_DOWN,
                step::SUSPEND_CRONJOBS,
                step::DEACTIVATE_STATIC_COPIES
            ]
        );
        assert_eq!(b.phase, Some(Phase::Ready));

        // Failback: the same pair of transitions the other way round.
        let to_a = spec(Mode::Async, A);
        converge(&mut a, &mut b, &to_a, "rev3", 100);
        assert_eq!((a.replicas("mysql"), a.replicas("web")), (Some(3), Some(2)));
        assert_eq!((b.replicas("mysql"), b.replicas("web")), (Some(0), Some(0)));
        assert_eq!(
            (b.annotation("mysql"), b.annotation("web")),
            (Some("3"), Some("2"))
        );
        assert!(
            !a.cron_jobs[0].suspend,
            "CronJob we suspended is resumed on failback"
        );
        assert!(
            !b.static_copies[0].application_activated,
            "the old primary's static copy no longer says active"
        );
        assert!(b.schedule.as_ref().unwrap().suspend);
        assert!(!a.schedule.as_ref().unwrap().suspend);
        assert_eq!(
            (a.status.role, b.status.role),
            (Some(Role::Primary), Some(Role::Standby))
        );
    }

    #[test]
    fn new_primary_never_scales_up_before_peer_reports_standby_at_this_revision() {
        let mut a = Cluster::running(A, "rev1");
        let mut b = Cluster::standby(B, "rev1");
        let to_b = spec(Mode::Async, B);
        // The peer reports Standby, but for an older revision: still waiting.
        a.status.role = Some(Role::Standby);
        a.workloads.iter_mut().for_each(|w| w.replicas = Some(0));
        let out = b.pass(&to_b, "rev2", ts(0), a.as_peer());
        assert_eq!(out.phase, Phase::WaitingForPeer);
        assert!(b.scale_ups.is_empty());
        // At this revision: proceed.
        a.last_applied = Some("rev2".into());
        let out = b.pass(&to_b, "rev2", ts(1), a.as_peer());
        assert_eq!(b.step(step::FENCE).state, StepState::Succeeded);
        assert_eq!(out.phase, Phase::Activating);
        assert_eq!(b.scale_ups.len(), 2);
    }

    #[test]
    fn async_disaster_then_old_primary_returns_and_stops_first() {
        let mut a = Cluster::running(A, "rev1");
        let mut b = Cluster::standby(B, "rev1");
        let to_b = spec(Mode::Async, B);
        for i in 0..5 {
            b.pass(&to_b, "rev2", ts(i), unreachable());
        }
        assert_eq!((b.replicas("mysql"), b.replicas("web")), (Some(3), Some(2)));
        assert!(
            b.step(step::FENCE)
                .message
                .contains("declared the disaster")
        );
        assert!(
            b.schedule.as_ref().unwrap().suspend,
            "no migrations towards an unreachable peer"
        );
        assert_eq!(b.phase, Some(Phase::Ready));

        // The old primary comes back still believing it is primary: its first pass stops the applications.
        let out = a.pass(&to_b, "rev2", ts(10), b.as_peer());
        assert_eq!(out.role, Role::Standby);
        assert!(!out.hold_role_objects);
        assert_eq!(
            out.actions,
            [Action::SetScheduleSuspend {
                namespace: "mysql".into(),
                name: "mysql".into(),
                suspend: true
            }]
        );
        let out = a.pass(&to_b, "rev2", ts(11), b.as_peer());
        assert!(
            out.actions
                .iter()
                .all(|x| matches!(x, Action::ScaleDown { .. }))
        );
        assert_eq!(out.actions.len(), 2);
        converge(&mut a, &mut b, &to_b, "rev2", 12);
        assert_eq!(a.running_workloads(), 0);
        assert_eq!(
            (a.annotation("mysql"), a.annotation("web")),
            (Some("3"), Some("2"))
        );
    }

    fn metro_clusters() -> (Cluster, PlanSpec) {
        let mut b = Cluster::standby(B, "rev1");
        b.cluster_domains = Some(vec![
            DomainState {
                name: A.into(),
                active: true,
            },
            DomainState {
                name: B.into(),
                active: true,
            },
        ]);
        let mut s = spec(Mode::Metro, B);
        s.domains[0].active = false;
        (b, s)
    }

    #[test]
    fn metro_failover_deactivates_the_failed_domain_before_starting_applications() {
        let (mut b, s) = metro_clusters();
        let out = b.pass(&s, "0123456789abcdef", ts(0), unreachable());
        let cdu = domain_update_name("mysql", A, false, "0123456789abcdef");
        assert_eq!(cdu, "drgitops-mysql-us-east-1a-deactivate-01234567");
        assert_eq!(
            out.actions,
            [Action::CreateDomainUpdate {
                name: cdu.clone(),
                domain: A.into(),
                active: false
            }]
        );
        assert_eq!(out.phase, Phase::WaitingForStorage);
        // Stork has not processed it yet: wait, never create it twice.
        let out = b.pass(&s, "0123456789abcdef", ts(1), unreachable());
        assert!(out.actions.is_empty());
        assert_eq!(out.phase, Phase::WaitingForStorage);
        assert!(b.step(step::METRO).message.contains(&cdu));
        assert_eq!(b.domain_updates.len(), 1);
        assert!(b.scale_ups.is_empty());
        // Stork reports Successful and the domain Inactive.
        b.domain_updates[0].status = "Successful".into();
        b.cluster_domains.as_mut().unwrap()[0].active = false;
        for i in 2..6 {
            b.pass(&s, "0123456789abcdef", ts(i), unreachable());
        }
        assert_eq!(b.step(step::METRO).state, StepState::Succeeded);
        assert!(b.step(step::FENCE).message.contains("Inactive"));
        assert_eq!((b.replicas("mysql"), b.replicas("web")), (Some(3), Some(2)));
        assert_eq!(b.phase, Some(Phase::Ready));
    }

    #[test]
    fn metro_domain_update_failed_surfaces_as_stalled_with_storks_reason() {
        let (mut b, s) = metro_clusters();
        b.pass(&s, "rev2", ts(0), unreachable());
        b.domain_updates[0].status = "Failed".into();
        b.domain_updates[0].reason = Some("px cluster domain manager unavailable".into());
        let out = b.pass(&s, "rev2", ts(1), unreachable());
        assert_eq!(out.phase, Phase::Stalled);
        assert!(out.actions.is_empty());
        let stalled = out
            .conditions
            .iter()
            .find(|c| c.type_ == "Stalled")
            .unwrap();
        assert_eq!(
            (stalled.status.as_str(), stalled.reason.as_str()),
            ("True", "ClusterDomainUpdateFailed")
        );
        assert!(
            stalled
                .message
                .contains("px cluster domain manager unavailable"),
            "{}",
            stalled.message
        );
        assert!(
            stalled
                .message
                .contains("delete drgitops-mysql-us-east-1a-deactivate-rev2 to retry")
        );
        assert!(
            out.events
                .iter()
                .any(|e| e.type_ == "Warning" && e.reason == "MetroStalled")
        );
        assert!(b.scale_ups.is_empty());
        // Deleting the failed update (as the message says) retries it.
        b.domain_updates.clear();
        let out = b.pass(&s, "rev2", ts(2), unreachable());
        assert!(matches!(
            out.actions.as_slice(),
            [Action::CreateDomainUpdate { .. }]
        ));
    }

    #[test]
    fn metro_with_unreachable_peer_and_active_domain_waits_then_stalls_naming_the_commit() {
        let mut b = Cluster::standby(B, "rev1");
        b.cluster_domains = Some(vec![
            DomainState {
                name: A.into(),
                active: true,
            },
            DomainState {
                name: B.into(),
                active: true,
            },
        ]);
        let s = spec(Mode::Metro, B);
        let out = b.pass(&s, "rev2", ts(0), unreachable());
        assert_eq!(out.phase, Phase::WaitingForPeer);
        let out = b.pass(&s, "rev2", ts(299), unreachable());
        assert_eq!(out.phase, Phase::WaitingForPeer);
        let out = b.pass(&s, "rev2", ts(300), unreachable());
        assert_eq!(out.phase, Phase::Stalled);
        let stalled = out
            .conditions
            .iter()
            .find(|c| c.type_ == "Stalled")
            .unwrap();
        assert_eq!(stalled.reason, "PeerDomainActive");
        assert!(
            stalled
                .message
                .contains("drgitops failover --plan mysql --to us-east-1b --deactivate us-east-1a"),
            "{}",
            stalled.message
        );
        assert!(b.scale_ups.is_empty());
    }

    #[test]
    fn peer_reachable_but_running_makes_the_new_primary_wait_then_stall_then_recover() {
        let mut a = Cluster::running(A, "rev1");
        let mut b = Cluster::standby(B, "rev1");
        let to_b = spec(Mode::Async, B);
        // The old primary's reconciler says Standby at rev2 but something keeps its workloads running.
        a.status.role = Some(Role::Standby);
        a.last_applied = Some("rev2".into());
        let out = b.pass(&to_b, "rev2", ts(0), a.as_peer());
        assert_eq!(out.phase, Phase::WaitingForPeer);
        assert!(
            b.step(step::FENCE)
                .message
                .contains("still runs 2 workload(s)")
        );
        let out = b.pass(&to_b, "rev2", ts(150), a.as_peer());
        assert_eq!(out.phase, Phase::WaitingForPeer);
        assert_eq!(
            b.step(step::FENCE).time,
            ts(0),
            "waiting since the first pass"
        );
        let out = b.pass(&to_b, "rev2", ts(301), a.as_peer());
        assert_eq!(out.phase, Phase::Stalled);
        let stalled = out
            .conditions
            .iter()
            .find(|c| c.type_ == "Stalled")
            .unwrap();
        assert_eq!(stalled.reason, "PeerStillRunning");
        assert!(stalled.message.contains("after 300s"));
        assert!(
            stalled
                .message
                .contains("drgitops failover --plan mysql --to us-east-1a"),
            "{}",
            stalled.message
        );
        let ready = out.conditions.iter().find(|c| c.type_ == "Ready").unwrap();
        assert_eq!(ready.status, "False");
        assert!(b.scale_ups.is_empty());
        // Still stalled later; once the peer stops, the transition carries on by itself.
        assert_eq!(
            b.pass(&to_b, "rev2", ts(400), a.as_peer()).phase,
            Phase::Stalled
        );
        a.workloads.iter_mut().for_each(|w| w.replicas = Some(0));
        let out = b.pass(&to_b, "rev2", ts(401), a.as_peer());
        assert_eq!(out.phase, Phase::Activating);
        assert_eq!(b.scale_ups.len(), 2);
    }

    #[test]
    fn peer_without_drplan_is_waited_for() {
        let mut b = Cluster::standby(B, "rev1");
        let peer = Peer::Reachable {
            plan: None,
            running_workloads: Some(0),
        };
        let out = b.pass(&spec(Mode::Async, B), "rev2", ts(0), peer);
        assert_eq!(out.phase, Phase::WaitingForPeer);
        assert!(
            b.step(step::FENCE)
                .message
                .contains("has no DRPlan mysql/mysql")
        );
    }

    /// The reference run of a planned failover, then the same run killed after every single operation (a status
    /// write or one action) and restarted: it must end in the same state with every step done exactly once.
    #[test]
    fn crash_between_any_two_steps_finishes_the_transition_exactly_once() {
        let to_b = spec(Mode::Async, B);
        let mut ref_a = Cluster::running(A, "rev1");
        let mut ref_b = Cluster::standby(B, "rev1");
        converge(&mut ref_a, &mut ref_b, &to_b, "rev2", 0);

        let mut crashed_somewhere = false;
        for crash_at in 0..40 {
            for crash_b in [false, true] {
                let mut a = Cluster::running(A, "rev1");
                let mut b = Cluster::standby(B, "rev1");
                let mut ops = 0;
                // Run until the crash point: each pass writes status, then performs actions one by one.
                'run: for round in 0..20 {
                    for on_b in [false, true] {
                        let (me, peer) = if on_b { (&mut b, &a) } else { (&mut a, &b) };
                        let peer = peer.as_peer();
                        let out = plan(&to_b, &me.observe("rev2", ts(round), peer));
                        let crashing = on_b == crash_b;
                        if crashing && ops == crash_at {
                            crashed_somewhere = true;
                            break 'run;
                        }
                        me.write_status(&out, "rev2");
                        if crashing {
                            ops += 1;
                        }
                        for action in &out.actions {
                            if crashing && ops == crash_at {
                                crashed_somewhere = true;
                                break 'run;
                            }
                            me.perform(action, false);
                            if crashing {
                                ops += 1;
                            }
                        }
                    }
                }
                // Restart both reconcilers (status is what was written before the crash) and finish.
                converge(&mut a, &mut b, &to_b, "rev2", 100);
                for (name, want) in [("mysql", Some(3)), ("web", Some(2))] {
                    assert_eq!(b.replicas(name), want, "crash at {crash_at} on b={crash_b}");
                    assert_eq!(
                        a.replicas(name),
                        Some(0),
                        "crash at {crash_at} on b={crash_b}"
                    );
                }
                assert_eq!(a.annotation("mysql"), Some("3"));
                assert_eq!(a.annotation("web"), Some("2"));
                // Each workload was scaled up once, to its count, and each count recorded once, never as 0.
                assert_eq!(
                    b.scale_ups, ref_b.scale_ups,
                    "crash at {crash_at} on b={crash_b}"
                );
                assert_eq!(
                    a.recorded, ref_a.recorded,
                    "crash at {crash_at} on b={crash_b}"
                );
                assert!(a.recorded.iter().all(|(_, n)| *n > 0));
                assert_eq!(a.schedule, ref_a.schedule);
                assert_eq!(b.schedule, ref_b.schedule);
                assert_eq!(a.cron_jobs, ref_a.cron_jobs);
                assert_eq!(b.cron_jobs, ref_b.cron_jobs);
                assert_eq!(b.static_copies, ref_b.static_copies);
                assert_eq!(
                    (a.status.role, b.status.role),
                    (Some(Role::Standby), Some(Role::Primary))
                );
                assert!(b.status.transition.as_ref().unwrap().finished_at.is_some());
                assert_eq!(b.last_applied.as_deref(), Some("rev2"));
            }
        }
        assert!(crashed_somewhere);
    }

    #[test]
    fn protect_finishes_when_stork_keeps_the_schedule_suspended_or_its_static_copy_holds_the_name()
    {
        let to_b = spec(Mode::Async, B);
        let ready_peer = || {
            let mut a = Cluster::running(A, "rev1");
            a.status.role = Some(Role::Standby);
            a.last_applied = Some("rev2".into());
            a.workloads.iter_mut().for_each(|w| w.replicas = Some(0));
            a
        };
        // The apply leaves the schedule suspended (Stork suspended it): done after one apply.
        let a = ready_peer();
        let mut b = Cluster::standby(B, "rev1");
        let out = b.pass(&to_b, "rev2", ts(0), a.as_peer());
        assert!(
            out.actions
                .iter()
                .all(|x| !matches!(x, Action::ApplyRoleObjects)),
            "activation comes first"
        );
        let out = b.pass(&to_b, "rev2", ts(1), a.as_peer());
        assert_eq!(out.actions, [Action::ApplyRoleObjects]);
        b.schedule = Some(Schedule {
            namespace: "mysql".into(),
            name: "mysql".into(),
            suspend: true,
            static_copy: false,
        });
        let out = b.pass(&to_b, "rev2", ts(3), a.as_peer());
        assert!(out.complete && out.actions.is_empty(), "{out:?}");
        assert!(
            b.step(step::PROTECT)
                .message
                .contains("applied but suspended")
        );

        // Stork's static copy of the old primary's schedule holds the name: one apply (which leaves it alone), done.
        let mut b = Cluster::standby(B, "rev1");
        b.foreign_copy_holds_name = true;
        b.schedule = Some(Schedule {
            namespace: "mysql".into(),
            name: "mysql".into(),
            suspend: true,
            static_copy: true,
        });
        let applies = (0..4)
            .map(|i| b.pass(&to_b, "rev2", ts(i), a.as_peer()))
            .filter(|out| out.actions.contains(&Action::ApplyRoleObjects))
            .count();
        assert_eq!(applies, 1);
        assert_eq!(b.phase, Some(Phase::Ready));
        assert!(
            b.step(step::PROTECT).message.contains("static copy"),
            "{:?}",
            b.step(step::PROTECT)
        );
    }

    #[test]
    fn scale_down_records_running_counts_and_never_zero() {
        let mut a = Cluster::running(A, "rev1");
        a.workloads = vec![
            // Running without annotation: record its count.
            workload(WorkloadKind::Deployment, "api", Some(4), None),
            // Unset replicas means 1.
            workload(WorkloadKind::Deployment, "worker", None, None),
            // Already stopped with a count: untouched, the count is kept.
            workload(WorkloadKind::StatefulSet, "db", Some(0), Some("5")),
            // Annotation already right: only scale.
            workload(WorkloadKind::ReplicaSet, "cache", Some(2), Some("2")),
            // Annotation stale: the running count wins.
            workload(WorkloadKind::Deployment, "front", Some(6), Some("1")),
        ];
        a.schedule = None;
        let out = a.pass(&spec(Mode::Async, B), "rev2", ts(0), unreachable());
        assert_eq!(
            out.actions,
            [
                Action::ScaleDown {
                    workload: wref(WorkloadKind::Deployment, "api"),
                    record: Some(4)
                },
                Action::ScaleDown {
                    workload: wref(WorkloadKind::Deployment, "worker"),
                    record: Some(1)
                },
                Action::ScaleDown {
                    workload: wref(WorkloadKind::ReplicaSet, "cache"),
                    record: None
                },
                Action::ScaleDown {
                    workload: wref(WorkloadKind::Deployment, "front"),
                    record: Some(6)
                },
            ]
        );
        assert_eq!(
            a.step(step::SUSPEND_SCHEDULE).message,
            "no MigrationSchedule to suspend"
        );
        assert_eq!(a.annotation("db"), Some("5"));
        assert_eq!(out.phase, Phase::Deactivating);
    }

    #[test]
    fn activation_reads_either_spelling_and_skips_invalid_counts() {
        let mut b = Cluster::standby(B, "rev1");
        b.workloads = vec![
            Workload {
                workload: wref(WorkloadKind::Deployment, "legacy"),
                replicas: Some(0),
                replicas_annotation: None,
                legacy_replicas_annotation: Some("4".into()),
            },
            workload(WorkloadKind::Deployment, "broken", Some(0), Some("three")),
            workload(WorkloadKind::Deployment, "zero", Some(0), Some("0")),
        ];
        let out = b.pass(&spec(Mode::Async, B), "rev2", ts(0), unreachable());
        let scale_ups: Vec<&Action> = out
            .actions
            .iter()
            .filter(|a| matches!(a, Action::ScaleUp { .. }))
            .collect();
        assert_eq!(
            scale_ups,
            [&Action::ScaleUp {
                workload: wref(WorkloadKind::Deployment, "legacy"),
                replicas: 4
            }]
        );
        assert!(
            b.step(step::ACTIVATE)
                .message
                .contains("broken has stork.libopenstorage.org/migrationReplicas")
        );
        assert_eq!(b.replicas("zero"), Some(0));
    }

    #[test]
    fn steady_roles_do_nothing_even_when_a_primary_workload_is_scaled_to_zero_by_hand() {
        let mut a = Cluster::running(A, "rev1");
        // A person scaled web to 0 and the webhook recorded its count: a steady primary leaves it alone.
        a.workloads[1].replicas = Some(0);
        a.workloads[1].replicas_annotation = Some("2".into());
        let b = Cluster::standby(B, "rev1");
        let out = a.pass(&spec(Mode::Async, A), "rev1", ts(0), b.as_peer());
        assert_eq!(
            (
                out.phase,
                out.actions.len(),
                out.complete,
                out.hold_role_objects
            ),
            (Phase::Ready, 0, true, false)
        );
        assert!(out.transition.is_none());
        let mut b = b;
        let out = b.pass(&spec(Mode::Async, A), "rev1", ts(0), a.as_peer());
        assert_eq!(
            (out.phase, out.actions.len(), out.complete),
            (Phase::Ready, 0, true)
        );
        let ready = out.conditions.iter().find(|c| c.type_ == "Ready").unwrap();
        assert_eq!(ready.status, "True");
    }

    #[test]
    fn standby_stops_applications_it_finds_running_without_a_role_change() {
        let mut b = Cluster::standby(B, "rev1");
        b.workloads[1].replicas = Some(2);
        let out = b.pass(&spec(Mode::Async, A), "rev1", ts(0), unreachable());
        assert_eq!(out.phase, Phase::Deactivating);
        assert_eq!(
            out.actions,
            [Action::ScaleDown {
                workload: wref(WorkloadKind::Deployment, "web"),
                record: None
            }]
        );
    }

    #[test]
    fn unknown_local_domain_stalls_with_the_way_out() {
        let mut b = Cluster::standby("eu-west-1a", "rev1");
        let out = b.pass(&spec(Mode::Async, B), "rev2", ts(0), unreachable());
        assert_eq!(out.phase, Phase::Stalled);
        assert!(out.actions.is_empty());
        let stalled = out
            .conditions
            .iter()
            .find(|c| c.type_ == "Stalled")
            .unwrap();
        assert!(
            stalled
                .message
                .contains("eu-west-1a is not among spec.domains [us-east-1a, us-east-1b]")
        );
    }

    #[test]
    fn metro_domain_change_on_a_steady_primary_is_a_transition_without_fencing() {
        let mut a = Cluster::running(A, "rev1");
        a.cluster_domains = Some(vec![
            DomainState {
                name: A.into(),
                active: true,
            },
            DomainState {
                name: B.into(),
                active: true,
            },
        ]);
        let mut s = spec(Mode::Metro, A);
        s.domains[1].active = false;
        let out = a.pass(&s, "rev2", ts(0), unreachable());
        assert!(matches!(
            out.actions.as_slice(),
            [Action::CreateDomainUpdate { active: false, .. }]
        ));
        let names: Vec<String> = out
            .transition
            .unwrap()
            .steps
            .into_iter()
            .map(|s| s.name)
            .collect();
        assert_eq!(names, [step::METRO, step::PROTECT]);
        assert!(!out.hold_role_objects);
    }

    #[test]
    fn conditions_keep_their_last_transition_time_while_unchanged() {
        let mut b = Cluster::standby(B, "rev1");
        let peer = Peer::Reachable {
            plan: None,
            running_workloads: None,
        };
        b.pass(&spec(Mode::Async, B), "rev2", ts(0), peer.clone());
        let out = b.pass(&spec(Mode::Async, B), "rev2", ts(10), peer);
        let reconciling = out
            .conditions
            .iter()
            .find(|c| c.type_ == "Reconciling")
            .unwrap();
        assert_eq!(
            (
                reconciling.status.as_str(),
                reconciling.last_transition_time
            ),
            ("True", ts(0))
        );
        assert_eq!(reconciling.reason, "Fence");
    }

    #[test]
    fn status_serializes_with_the_documented_field_names() {
        let t = Transition {
            from: A.into(),
            to: B.into(),
            revision: "abc".into(),
            started_at: ts(0),
            finished_at: None,
            steps: vec![Step {
                name: "fence".into(),
                state: StepState::Waiting,
                message: "m".into(),
                time: ts(1),
            }],
        };
        let v = serde_json::to_value(&t).unwrap();
        assert_eq!(v["startedAt"], "2026-09-21T14:13:20Z");
        assert!(v.get("finishedAt").is_none());
        assert_eq!(v["steps"][0]["state"], "Waiting");
        let back: Transition = serde_json::from_value(v).unwrap();
        assert_eq!(back, t);
    }

    #[test]
    fn domain_update_names_are_valid_object_names() {
        let name = domain_update_name("My_Plan", "US.East_1a", true, "sha1:ABCDEF0123");
        assert_eq!(name, "drgitops-my-plan-us.east-1a-activate-sha1abcd");
        assert!(name.len() <= 253);
    }
}
