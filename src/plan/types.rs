//! The `DRPlan` custom resource (`drgitops.dev/v1alpha1`, namespaced, status subresource).
//!
//! In: DRPlan manifests from Git (or from the cluster). Out: typed plans the renderer, the reconciler, `check` and
//! the `drplan-valid` rule read, and (via `kube::CustomResourceExt`) the CRD with its OpenAPI schema.

use std::collections::BTreeMap;

use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::stork::types::{
    DailyPolicy, IntervalPolicy, MigrationSpec, MonthlyPolicy, SchedulePolicyItem, WeeklyPolicy,
};

/// The API group of DRPlan.
pub const GROUP: &str = "drgitops.dev";
/// The `apiVersion` of DRPlan.
pub const API_VERSION: &str = "drgitops.dev/v1alpha1";

/// What a cluster domain should run and hold for a set of namespaces; a commit that changes `primary` is a
/// failover (or failback).
// Each printer column repeats `type_ = "string"`, which clippy mistakes for a duplicated attribute.
#[allow(clippy::duplicated_attributes)]
#[derive(CustomResource, Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[kube(
    group = "drgitops.dev",
    version = "v1alpha1",
    kind = "DRPlan",
    plural = "drplans",
    singular = "drplan",
    shortname = "drp",
    namespaced,
    status = "DRPlanStatus",
    doc = "A disaster-recovery plan for Stork-protected namespaces: which cluster domain is primary, how the \
           clusters are paired and how often applications are migrated.",
    printcolumn(
        name = "Mode",
        type_ = "string",
        json_path = ".spec.mode",
        description = "async or metro"
    ),
    printcolumn(
        name = "Primary",
        type_ = "string",
        json_path = ".spec.primary",
        description = "cluster domain that runs the applications"
    ),
    printcolumn(
        name = "Role",
        type_ = "string",
        json_path = ".status.role",
        description = "this cluster's role"
    ),
    printcolumn(name = "Phase", type_ = "string", json_path = ".status.phase"),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[serde(rename_all = "camelCase")]
pub struct DRPlanSpec {
    /// `async`: a storage cluster per Kubernetes cluster, volumes migrated. `metro`: one stretched storage
    /// cluster, resources migrated only.
    pub mode: Mode,
    /// The cluster domain that runs the applications; must be one of `domains`.
    pub primary: String,
    /// The cluster domains (one per Kubernetes cluster) taking part.
    pub domains: Vec<Domain>,
    /// Namespaces the plan protects; default `[metadata.namespace]`. Other namespaces only for a plan in the
    /// Stork admin namespace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespaces: Option<Vec<String>>,
    /// The ClusterPair towards the peer cluster.
    pub cluster_pair: PlanClusterPair,
    /// When migrations run: Stork SchedulePolicy sections plus `autoSuspend`. Default: every 15 minutes.
    #[serde(default = "PlanSchedule::every_15_minutes")]
    #[schemars(default = "PlanSchedule::every_15_minutes")]
    pub schedule: PlanSchedule,
    /// Copied into the MigrationSchedule's `spec.template.spec`; `startApplications` is always false.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub migration: Option<PlanMigration>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failover: Option<PlanFailover>,
}

/// DR mode.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    Async,
    Metro,
}

impl Mode {
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Async => "async",
            Mode::Metro => "metro",
        }
    }
}

/// One cluster domain of the plan.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Domain {
    pub name: String,
    /// Metro only: desired storage activation of the domain (ClusterDomainUpdate). Default true.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub active: Option<bool>,
}

impl Domain {
    /// Desired activation, defaulting to active.
    pub fn is_active(&self) -> bool {
        self.active.unwrap_or(true)
    }
}

/// `spec.clusterPair`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PlanClusterPair {
    /// Name of the rendered ClusterPair (in the plan's namespace).
    pub name: String,
    /// Secret (in the plan's namespace, per cluster, never in Git) holding the OTHER cluster's kubeconfig.
    pub peer_kubeconfig_secret: SecretKeyRef,
    /// Async only: Secret with keys `ip`, `port`, `token` and optionally `backuplocation`, the storage pairing
    /// volumes are copied through. Required in async mode unless `spec.migration.includeVolumes` is false.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub storage_secret: Option<SecretRef>,
}

/// A key of a Secret in the plan's namespace.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct SecretKeyRef {
    pub name: String,
    /// Key holding the kubeconfig. Default `kubeconfig`.
    #[serde(default = "default_kubeconfig_key")]
    #[schemars(default = "default_kubeconfig_key")]
    pub key: String,
}

fn default_kubeconfig_key() -> String {
    "kubeconfig".to_string()
}

/// A Secret in the plan's namespace.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct SecretRef {
    pub name: String,
}

/// `spec.schedule`: the sections of a Stork schedule policy plus the MigrationSchedule's `autoSuspend`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PlanSchedule {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interval: Option<PlanInterval>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub daily: Option<PlanDaily>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weekly: Option<PlanWeekly>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub monthly: Option<PlanMonthly>,
    /// Suspend this cluster's schedule once the peer's copy reports its applications activated. Default true.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auto_suspend: Option<bool>,
}

/// `spec.schedule.interval`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PlanInterval {
    /// Minutes between migrations, at least 1.
    pub interval_minutes: i64,
}

/// `spec.schedule.daily`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct PlanDaily {
    /// Stork's `3:04PM` syntax, e.g. `2:00AM`.
    pub time: String,
}

/// `spec.schedule.weekly`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct PlanWeekly {
    /// A weekday as Stork spells it, e.g. `Sunday`, `sun`, `Thurs`.
    pub day: String,
    pub time: String,
}

/// `spec.schedule.monthly`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct PlanMonthly {
    /// Day of the month, 1–31.
    pub date: i64,
    pub time: String,
}

impl PlanSchedule {
    /// The schedule of a plan that names none: an interval of 15 minutes.
    pub fn every_15_minutes() -> Self {
        Self {
            interval: Some(PlanInterval {
                interval_minutes: 15,
            }),
            ..Self::default()
        }
    }

    /// The Stork schedule-policy body these sections stand for (what the rendered NamespacedSchedulePolicy holds).
    pub fn to_policy(&self) -> SchedulePolicyItem {
        SchedulePolicyItem {
            interval: self.interval.as_ref().map(|i| IntervalPolicy {
                interval_minutes: Some(i.interval_minutes),
                ..Default::default()
            }),
            daily: self.daily.as_ref().map(|d| DailyPolicy {
                time: Some(d.time.clone()),
                ..Default::default()
            }),
            weekly: self.weekly.as_ref().map(|w| WeeklyPolicy {
                day: Some(w.day.clone()),
                time: Some(w.time.clone()),
                ..Default::default()
            }),
            monthly: self.monthly.as_ref().map(|m| MonthlyPolicy {
                date: Some(m.date),
                time: Some(m.time.clone()),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    /// `autoSuspend`, defaulting to true (as storkctl does).
    pub fn auto_suspend(&self) -> bool {
        self.auto_suspend.unwrap_or(true)
    }
}

/// `spec.migration`: the Stork MigrationSpec fields a plan may set. `clusterPair` and `namespaces` come from the
/// plan itself; `startApplications` is accepted only as `false`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PlanMigration {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub admin_cluster_pair: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub include_resources: Option<bool>,
    /// Must be false in metro mode; defaults to true in async mode and false in metro mode.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub include_volumes: Option<bool>,
    /// Only `false` is accepted: applications are started by a failover, never by a migration.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_applications: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub purge_deleted_resources: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub skip_service_update: Option<bool>,
    #[serde(
        rename = "includeNetworkPolicyWithCIDR",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub include_network_policy_with_cidr: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub selectors: Option<BTreeMap<String, String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exclude_selectors: Option<BTreeMap<String, String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pre_exec_rule: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub post_exec_rule: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub include_optional_resource_types: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub skip_deleted_namespaces: Option<bool>,
    /// At most one ResourceTransformation name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transform_specs: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ignore_owner_references_check: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exclude_resource_types: Option<Vec<String>>,
}

impl PlanMigration {
    /// The Stork MigrationSpec for a schedule template: these fields plus the pair and namespaces, with
    /// `startApplications: false` always, and `includeVolumes: false` forced in metro mode.
    pub fn to_migration_spec(
        &self,
        mode: Mode,
        cluster_pair: &str,
        namespaces: &[String],
    ) -> MigrationSpec {
        MigrationSpec {
            cluster_pair: Some(cluster_pair.to_string()),
            admin_cluster_pair: self.admin_cluster_pair.clone(),
            namespaces: Some(namespaces.to_vec()),
            include_resources: self.include_resources,
            include_volumes: match mode {
                Mode::Metro => Some(false),
                Mode::Async => self.include_volumes,
            },
            start_applications: Some(false),
            purge_deleted_resources: self.purge_deleted_resources,
            skip_service_update: self.skip_service_update,
            include_network_policy_with_cidr: self.include_network_policy_with_cidr,
            selectors: self.selectors.clone(),
            exclude_selectors: self.exclude_selectors.clone(),
            pre_exec_rule: self.pre_exec_rule.clone(),
            post_exec_rule: self.post_exec_rule.clone(),
            include_optional_resource_types: self.include_optional_resource_types.clone(),
            skip_deleted_namespaces: self.skip_deleted_namespaces,
            transform_specs: self.transform_specs.clone(),
            ignore_owner_references_check: self.ignore_owner_references_check,
            exclude_resource_types: self.exclude_resource_types.clone(),
            ..Default::default()
        }
    }
}

/// `spec.failover`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PlanFailover {
    /// How long the new primary waits for the old primary to hand over (stop its applications and finish the
    /// final migration) before reporting Stalled. Default 300.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub peer_stop_timeout_seconds: Option<i64>,
    /// How long the old primary waits for the pods of the plan's namespaces to stop before reporting Stalled,
    /// naming them. Default 300.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub drain_timeout_seconds: Option<i64>,
    /// How long the old primary waits for its final Migration to finish before reporting Stalled. Default 1800:
    /// the last copy of the volumes' changes since the last scheduled migration.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub final_migration_timeout_seconds: Option<i64>,
    /// A declared disaster, written by `drgitops failover --disaster`: the new primary starts without waiting for
    /// the lost cluster and no final migration runs. Cleared by the next planned failover or failback.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disaster: Option<Disaster>,
}

/// `spec.failover.disaster`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Disaster {
    /// The cluster domain declared lost: it will not be waited for, and runs no final migration when it returns.
    pub lost: String,
    /// When the disaster was declared (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub declared_at: Option<String>,
    /// The operator's words.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// The last successful migration towards the surviving cluster known when the disaster was declared
    /// (RFC 3339): the age of the data it starts from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data_as_of: Option<String>,
}

impl DRPlanSpec {
    /// The namespaces the plan protects: `spec.namespaces`, else the plan's own namespace.
    pub fn namespaces_or(&self, plan_namespace: &str) -> Vec<String> {
        match &self.namespaces {
            Some(ns) if !ns.is_empty() => ns.clone(),
            _ => vec![plan_namespace.to_string()],
        }
    }

    /// The migration settings, defaulted when the plan has none.
    pub fn migration_or_default(&self) -> PlanMigration {
        self.migration.clone().unwrap_or_default()
    }

    /// `failover.peerStopTimeoutSeconds`, default 300.
    pub fn peer_stop_timeout_seconds(&self) -> i64 {
        self.failover
            .as_ref()
            .and_then(|f| f.peer_stop_timeout_seconds)
            .unwrap_or(300)
    }

    /// `failover.drainTimeoutSeconds`, default 300.
    pub fn drain_timeout_seconds(&self) -> i64 {
        self.failover
            .as_ref()
            .and_then(|f| f.drain_timeout_seconds)
            .unwrap_or(300)
    }

    /// `failover.finalMigrationTimeoutSeconds`, default 1800.
    pub fn final_migration_timeout_seconds(&self) -> i64 {
        self.failover
            .as_ref()
            .and_then(|f| f.final_migration_timeout_seconds)
            .unwrap_or(1800)
    }

    /// `failover.disaster`, when declared.
    pub fn disaster(&self) -> Option<&Disaster> {
        self.failover.as_ref().and_then(|f| f.disaster.as_ref())
    }
}

impl DRPlan {
    /// The namespaces the plan protects (see [`DRPlanSpec::namespaces_or`]).
    pub fn namespaces(&self) -> Vec<String> {
        self.spec
            .namespaces_or(self.metadata.namespace.as_deref().unwrap_or("default"))
    }
}

/// `status.phase`: a one-word summary of where a plan stands on this cluster. Written as its name; a stored
/// phase this version does not know is kept as text where it is read ([`DRPlanStatus::phase`] stays a string).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Phase {
    /// Primary, in role: applications run here and migrations to the peer are scheduled.
    Protected,
    /// Standby, in role: applications stopped, receiving migrations.
    Standby,
    /// In its role with nothing left to do in a transition (the planner's view before the controller's apply).
    Ready,
    /// Waiting for Stork to (de)activate cluster domains.
    WaitingForStorage,
    /// Waiting for the old primary to stop its applications.
    WaitingForPeer,
    /// Starting the applications here.
    Activating,
    /// Stopping the applications here.
    Deactivating,
    /// Applied, but something the plan relies on is missing or not ready (the Ready condition says what).
    Degraded,
    /// Cannot proceed without a change; the Stalled condition says what to commit.
    Stalled,
    /// Reconciliation suspended by the plan's suspend annotation.
    Suspended,
    /// A transient error; retried with backoff.
    Error,
}

impl Phase {
    /// A step of a transition under way: not ready yet, but nothing is wrong.
    pub const fn in_transition(self) -> bool {
        matches!(
            self,
            Phase::WaitingForStorage
                | Phase::WaitingForPeer
                | Phase::Activating
                | Phase::Deactivating
        )
    }

    /// The name written to `status.phase`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Phase::Protected => "Protected",
            Phase::Standby => "Standby",
            Phase::Ready => "Ready",
            Phase::WaitingForStorage => "WaitingForStorage",
            Phase::WaitingForPeer => "WaitingForPeer",
            Phase::Activating => "Activating",
            Phase::Deactivating => "Deactivating",
            Phase::Degraded => "Degraded",
            Phase::Stalled => "Stalled",
            Phase::Suspended => "Suspended",
            Phase::Error => "Error",
        }
    }
}

impl std::fmt::Display for Phase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// This cluster's role in a plan.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum Role {
    Primary,
    Standby,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Primary => "Primary",
            Role::Standby => "Standby",
        }
    }
}

/// `DRPlan.status`, written by each cluster's own reconciler for that cluster.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct DRPlanStatus {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// The cluster domain of the cluster that wrote this status.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub local_domain: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<Role>,
    /// A one-word summary, e.g. `Ready`, `Transitioning`, `Stalled`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<String>,
    /// `Ready`, `Reconciling`, `Stalled`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_applied_revision: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_attempted_revision: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transition: Option<Transition>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workloads: Option<WorkloadCounts>,
    /// The final Migration this cluster ran towards the peer when it stopped being primary (planned failover).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub final_migration: Option<MigrationRecord>,
    /// The last successful migration from the primary to the standby that this cluster knows of: the age of the
    /// standby's copy. The primary reads it from its MigrationSchedule (or the final migration it received); the
    /// standby copies the primary's while it can reach it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_migration: Option<MigrationRecord>,
}

/// A Stork Migration as the plan's status records it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct MigrationRecord {
    /// The Migration's name, in the plan's namespace of the cluster it ran from.
    pub name: String,
    /// The revision whose transition ran it (final migrations only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revision: Option<String>,
    /// Stork's `status.status`: `Successful`, `Failed`, ...
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    /// Stork's `status.finishTimestamp` (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<String>,
    /// The cluster domain the migration ran from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
}

/// A status condition, shaped like `metav1.Condition`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Condition {
    #[serde(rename = "type")]
    pub type_: String,
    /// `True`, `False` or `Unknown`.
    pub status: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// RFC 3339.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_transition_time: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
}

/// The current (or last) role change of this cluster.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Transition {
    /// The primary domain before the change.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
    /// The primary domain after the change.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<String>,
    /// The Git revision that asked for it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revision: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub steps: Vec<TransitionStep>,
}

/// One step of a transition.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct TransitionStep {
    /// e.g. `metro`, `fence`, `activate`, `protect`, `suspend`, `scale-down`.
    pub name: String,
    /// e.g. `Pending`, `Running`, `Done`, `Failed`.
    pub state: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// RFC 3339.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time: Option<String>,
}

/// Workloads of the plan's namespaces running at their protected replica count, out of all protected ones.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct WorkloadCounts {
    pub activated: i64,
    pub total: i64,
}
