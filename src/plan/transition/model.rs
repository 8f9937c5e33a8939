//! What the transition planner reads (a [`PlanSpec`] and an [`Observed`] snapshot) and returns (an [`Outcome`]:
//! actions, status and Events), with the status types it writes.

use std::collections::BTreeMap;
use std::fmt;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use super::super::types::Phase;
use super::super::types::{self as plan_types, DRPlan, DRPlanStatus};
use super::{LEGACY_REPLICAS_ANNOTATION, REPLICAS_ANNOTATION, StepName};
use super::{Mode, Role};

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
    /// `spec.failover.drainTimeoutSeconds`.
    pub drain_timeout_seconds: u64,
    /// `spec.failover.finalMigrationTimeoutSeconds`.
    pub final_migration_timeout_seconds: u64,
    /// `spec.failover.disaster.lost`: the cluster domain a committed disaster declared lost.
    pub disaster_lost: Option<String>,
    /// The Stork `MigrationSpec` of the plan's migrations (the MigrationSchedule's template): the final migration's
    /// spec.
    pub migration_template: serde_json::Value,
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
    pub(super) fn effective_replicas(&self) -> i32 {
        self.replicas.unwrap_or(1)
    }

    /// The recorded replica count: the real spelling first, then the documented one.
    pub(super) fn recorded(&self) -> Recorded {
        match (&self.replicas_annotation, &self.legacy_replicas_annotation) {
            (Some(v), _) => Recorded::parse(v, REPLICAS_ANNOTATION),
            (None, Some(v)) => Recorded::parse(v, LEGACY_REPLICAS_ANNOTATION),
            (None, None) => Recorded::Absent,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum Recorded {
    Absent,
    Count(i32),
    Invalid { key: &'static str, value: String },
}

impl Recorded {
    pub(super) fn parse(value: &str, key: &'static str) -> Recorded {
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
    /// Carries [`SUSPENDED_BY_ANNOTATION`](super::SUSPENDED_BY_ANNOTATION) = [`SUSPENDED_BY_VALUE`](super::SUSPENDED_BY_VALUE).
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
    /// `status.transition.revision`: the revision of the peer's last role change.
    pub transition_revision: Option<String>,
    /// The peer's final-migration step in that transition (state, message); `None` when the transition has no
    /// such step (the peer did not run the applications, or stopped being primary in a declared disaster).
    pub final_migration_step: Option<(StepState, String)>,
    /// `status.finalMigration`.
    pub final_migration: Option<MigrationRecord>,
    /// `status.lastMigration`: the peer's last known migration from primary to standby.
    pub last_migration: Option<plan_types::MigrationRecord>,
}

/// A Stork Migration: observed, or as the plan's status records it.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct MigrationRecord {
    pub name: String,
    /// `status.status` (`""` before Stork picked it up).
    pub status: String,
    /// `status.stage`.
    pub stage: String,
    /// Why it failed, from the failed volumes and resources Stork lists.
    pub reason: Option<String>,
    pub finished_at: Option<Timestamp>,
    /// The transition it belongs to (`drgitops.dev/transition-started-at`); a final migration of another
    /// transition that had the same revision is stale.
    pub transition_started_at: Option<String>,
}

/// What we know of the peer cluster.
// One value per planning pass: boxing the reachable peer would buy nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Peer {
    /// Not reached within the short timeout (or no kubeconfig for it).
    Unreachable { error: String },
    Reachable {
        /// The same-named DRPlan on the peer; `None` when it has none.
        plan: Option<PeerPlan>,
        /// Workloads in the plan's namespaces with replicas > 0 on the peer; `None` when they could not be listed.
        running_workloads: Option<u32>,
        /// Pods in the plan's namespaces on the peer that have not finished (`namespace/name`), terminating ones
        /// included: a workload at 0 replicas may still have pods writing to its volumes. `None` when they could
        /// not be listed.
        running_pods: Option<Vec<String>>,
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
    pub(super) fn step(&self, name: StepName) -> Option<&Step> {
        self.steps.iter().find(|s| s.name == name.as_str())
    }
}

/// What this cluster's reconciler wrote last into the plan's status.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct PreviousStatus {
    pub role: Option<Role>,
    pub transition: Option<Transition>,
    pub conditions: Vec<Condition>,
    /// `status.lastMigration`.
    pub last_migration: Option<plan_types::MigrationRecord>,
    /// `status.finalMigration`.
    pub final_migration: Option<plan_types::MigrationRecord>,
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
    /// ClusterDomainUpdates (those named by [`domain_update_name`](super::domain_update_name) are ours).
    pub domain_updates: Vec<DomainUpdate>,
    pub peer: Peer,
    pub previous: PreviousStatus,
    /// Pods in the plan's namespaces that have not finished (`namespace/name`), terminating ones included;
    /// observed while this cluster is standby (the drain step), else empty.
    pub pods: Vec<String>,
    /// The newest Successful migration of the plan's MigrationSchedule here (`status.items`), if any.
    pub scheduled_migration: Option<plan_types::MigrationRecord>,
    /// The plan's final Migrations (label [`FINAL_MIGRATION_LABEL`](crate::stork::keys::FINAL_MIGRATION_LABEL))
    /// in the plan's namespace, observed while this cluster is standby.
    pub final_migrations: Vec<MigrationRecord>,
}

/// One thing for the executor to do. Actions within one outcome are independent of each other (the executor may
/// run them with bounded parallelism); the next step's actions come from the next call to [`plan`](super::plan).
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
    /// Set `spec.suspend` of a CronJob; `suspend: true` also sets [`SUSPENDED_BY_ANNOTATION`](super::SUSPENDED_BY_ANNOTATION), `false` removes it.
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
    /// Create the final Migration (a complete Stork `Migration` object).
    CreateMigration {
        namespace: String,
        name: String,
        object: serde_json::Value,
    },
    /// Delete a stale final Migration of an earlier transition that had the same name.
    DeleteMigration { namespace: String, name: String },
    /// Render and apply this role's objects now (the protect step).
    ApplyRoleObjects,
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
    /// `status.finalMigration` to write: the final Migration this cluster runs (or ran) in this transition.
    pub final_migration: Option<MigrationRecord>,
    /// `status.lastMigration` to write: the newest point at which the standby's copy was known to equal the
    /// primary's data.
    pub last_migration: Option<plan_types::MigrationRecord>,
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
            drain_timeout_seconds: u64::try_from(plan.spec.drain_timeout_seconds()).unwrap_or(0),
            final_migration_timeout_seconds: u64::try_from(
                plan.spec.final_migration_timeout_seconds(),
            )
            .unwrap_or(0),
            disaster_lost: plan.spec.disaster().map(|d| d.lost.clone()),
            migration_template: serde_json::to_value(
                plan.spec.migration_or_default().to_migration_spec(
                    plan.spec.mode,
                    &plan.spec.cluster_pair.name,
                    &plan.namespaces(),
                ),
            )
            .unwrap_or_default(),
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
        let transition = status.and_then(|s| s.transition.as_ref());
        PeerPlan {
            role: status.and_then(|s| s.role),
            last_applied_revision: status.and_then(|s| s.last_applied_revision.clone()),
            phase: status.and_then(|s| s.phase.clone()),
            transition_revision: transition.and_then(|t| t.revision.clone()),
            final_migration_step: transition
                .and_then(|t| {
                    t.steps
                        .iter()
                        .find(|s| s.name == StepName::FinalMigration.as_str())
                })
                .map(|s| {
                    (
                        StepState::parse(&s.state).unwrap_or(StepState::Pending),
                        s.message.clone().unwrap_or_default(),
                    )
                }),
            final_migration: status
                .and_then(|s| s.final_migration.as_ref())
                .map(MigrationRecord::from_status),
            last_migration: status.and_then(|s| s.last_migration.clone()),
        }
    }
}

impl MigrationRecord {
    /// Reads `status.finalMigration` / `status.lastMigration`.
    pub fn from_status(record: &plan_types::MigrationRecord) -> MigrationRecord {
        MigrationRecord {
            name: record.name.clone(),
            status: record.status.clone().unwrap_or_default(),
            stage: String::new(),
            reason: None,
            finished_at: parse_time(record.finished_at.as_deref()),
            transition_started_at: None,
        }
    }

    /// Stork reports the migration `Successful` (every volume and resource copied).
    pub fn successful(&self) -> bool {
        self.status == "Successful"
    }

    /// Stork gave up on it: `Failed`, or `PartialSuccess` (some resources not copied).
    pub fn failed(&self) -> bool {
        matches!(self.status.as_str(), "Failed" | "PartialSuccess")
    }

    /// As `status.finalMigration` records it.
    pub fn to_status(&self, revision: &str, from: &str) -> plan_types::MigrationRecord {
        plan_types::MigrationRecord {
            name: self.name.clone(),
            revision: Some(revision.to_string()),
            status: (!self.status.is_empty()).then(|| self.status.clone()),
            finished_at: self.finished_at.map(rfc3339),
            from: Some(from.to_string()),
        }
    }
}

pub(super) fn workload_counts(obs: &Observed) -> (usize, usize) {
    let running = obs
        .workloads
        .iter()
        .filter(|w| w.effective_replicas() > 0)
        .count();
    (running, obs.workloads.len())
}

/// RFC 3339 to the second, as Kubernetes writes times (`metav1.Time`).
pub(super) fn rfc3339(t: Timestamp) -> String {
    Timestamp::from_second(t.as_second())
        .unwrap_or(t)
        .to_string()
}

pub(super) fn parse_time(value: Option<&str>) -> Option<Timestamp> {
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
            last_migration: status.last_migration.clone(),
            final_migration: status.final_migration.clone(),
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

    pub(super) fn parse(value: &str) -> Option<StepState> {
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
    ///
    /// With nothing left to do and the transition record unchanged, the phase and conditions the plan controller
    /// wrote for the steady state (`Protected`, `Standby`, `Degraded`, its `Ready` condition) stand: writing the
    /// planner's generic `Ready` over them would make every pass flip the status, and every flip wake the pass loop.
    pub fn write_status(&self, status: &mut DRPlanStatus, local_domain: &str, revision: &str) {
        let transition = self.transition.as_ref().map(plan_types::Transition::from);
        let settled = self.complete && status.phase.is_some() && status.transition == transition;
        status.local_domain = Some(local_domain.to_string());
        status.role = Some(self.role);
        status.last_attempted_revision = Some(revision.to_string());
        if self.complete {
            status.last_applied_revision = Some(revision.to_string());
        }
        status.transition = transition;
        if let Some(m) = &self.last_migration {
            status.last_migration = Some(m.clone());
        }
        if let (Some(m), Some(t)) = (&self.final_migration, &self.transition) {
            status.final_migration = Some(m.to_status(&t.revision, local_domain));
        }
        status.workloads = Some(plan_types::WorkloadCounts {
            activated: i64::try_from(self.workloads.0).unwrap_or(i64::MAX),
            total: i64::try_from(self.workloads.1).unwrap_or(i64::MAX),
        });
        if settled {
            return;
        }
        status.phase = Some(self.phase.to_string());
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
