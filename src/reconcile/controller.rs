//! The plan controller: for every DRPlan on this cluster, decide the role, render what the role holds, apply it
//! with server-side apply, prune what the plan no longer renders, and write a status a person can read.
//!
//! In: the DRPlans in the cluster, their Secrets, the local cluster domain, what the git source last did. Out:
//! ClusterPairs, NamespacedSchedulePolicies and MigrationSchedules (field manager `drgitops`), DRPlan status through
//! the status subresource, and Events. Each plan is reconciled on its own: one failing plan never stalls the rest.
//!
//! The steps of [`PlanController::reconcile_plan`] are separate functions so role transitions (failover and
//! failback) can run between the role decision and the steady-state apply: `decide_role` → `invalid_plan` →
//! `gather_inputs` (`inputs`) → (transition steps) → `apply_role` → `write_success` or `report_problem`
//! (`status`, the only writer of the plan's status besides the transition executor).
//!
//! Every plan is validated here with the function the webhook, `check` and the git source use: plans applied by
//! Argo CD or Flux, admitted with the webhook off, or stored before a rule existed reach the controller unchecked.
//! An invalid plan gets nothing applied, no transition step, and a Stalled condition naming each field.

mod breakglass;
mod inputs;
mod status;

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use k8s_openapi::api::core::v1::{ObjectReference, Secret};
use kube::api::{Api, ApiResource, DynamicObject, ListParams};
use kube::runtime::events::EventType;
use kube::{Resource, ResourceExt};
use serde_json::{Value, json};

use crate::cluster::apply::{
    Applier, ApplyError, ObjectKey, applied_by_us, owned_by_other_manager,
};
use crate::cluster::diff;
use crate::plan::render::{self, RenderInputs, StorageOptions};
use crate::plan::transition::WAIT_RECHECK_SECONDS;
use crate::plan::validate;
use crate::plan::{Condition, DRPlan, DRPlanStatus, Mode, Phase, Role};
use crate::reconcile::transition::{Gate, TransitionExecutor};
use crate::runtime::events::Events;
use crate::source::sync::SourceState;
use crate::stork::keys::{
    MANAGED_BY, MANAGED_BY_VALUE, PLAN_LABEL, REVISION_ANNOTATION, STATIC_COPY, STORK_API_VERSION,
    SUSPEND_ANNOTATION,
};

/// The kinds a plan renders, in apply order.
pub const RENDERED_KINDS: [&str; 3] = [
    "ClusterPair",
    "NamespacedSchedulePolicy",
    "MigrationSchedule",
];

/// Settings of the plan controller.
#[derive(Clone, Debug)]
pub struct ControllerConfig {
    /// `--cluster-domain`; else ClusterDomainsStatus `status.localDomain`.
    pub cluster_domain: Option<String>,
    /// Print the server-side dry-run diff instead of writing.
    pub dry_run: bool,
    /// How long the peer's API server gets to answer before it counts as unreachable.
    pub peer_timeout: Duration,
    /// Reporting instance for Events (pod name).
    pub instance: String,
    /// Stork's admin namespace, for the validation of the plans read from the cluster.
    pub admin_namespace: String,
}

/// How one plan's reconcile ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PlanReport {
    pub plan: String,
    pub role: Option<Role>,
    pub phase: Phase,
    /// `Ready` condition status.
    pub ready: bool,
    /// An error worth retrying with backoff (API errors, throttling); permanent problems are reported in
    /// conditions and wait for a change instead.
    pub retry: bool,
    pub message: String,
    /// When the plan wants to be looked at again even if nothing changes (a transition waiting at the fence, a
    /// stalled transition's re-check); `None` when only a change or the poll interval should bring the next pass.
    pub requeue_after: Option<Duration>,
    /// `status.lastMigration.finishedAt` as Unix seconds: the data age's reference.
    pub last_migration: Option<i64>,
}

/// The outcome of one pass over all plans.
#[derive(Clone, Debug, Default)]
pub struct PassReport {
    pub plans: Vec<PlanReport>,
    /// Problems outside any single plan (listing plans, the local domain, pruning orphans).
    pub errors: Vec<String>,
    /// Whether any error is worth a retry with backoff.
    pub retry: bool,
    /// The dry-run diff, when dry-run.
    pub diff: String,
    /// The earliest [`PlanReport::requeue_after`] of the pass: when the runner should pass again.
    pub requeue_after: Option<Duration>,
}

impl PassReport {
    /// True when every plan is Ready and nothing failed.
    pub fn ok(&self) -> bool {
        self.errors.is_empty() && self.plans.iter().all(|p| p.ready)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ControllerError {
    #[error(
        "cannot tell the local cluster domain: no --cluster-domain and no ClusterDomainsStatus with status.localDomain; \
         set --cluster-domain"
    )]
    UnknownLocalDomain,
    #[error("listing {what} failed: {source}")]
    List {
        what: &'static str,
        #[source]
        source: Box<kube::Error>,
    },
    #[error(transparent)]
    Apply(#[from] ApplyError),
}

/// A problem that stops one plan, with the condition reason it shows as.
struct PlanProblem {
    reason: &'static str,
    message: String,
    /// Stalled problems need a person (a Secret, a commit); the others are retried with backoff.
    stalled: bool,
}

impl PlanProblem {
    fn stalled(reason: &'static str, message: impl Into<String>) -> Self {
        PlanProblem {
            reason,
            message: message.into(),
            stalled: true,
        }
    }
    fn transient(reason: &'static str, message: impl Into<String>) -> Self {
        PlanProblem {
            reason,
            message: message.into(),
            stalled: false,
        }
    }
}

impl From<ApplyError> for PlanProblem {
    fn from(err: ApplyError) -> Self {
        if err.is_transient() {
            PlanProblem::transient("ApplyFailed", err.to_string())
        } else {
            PlanProblem::stalled("ApplyRejected", err.to_string())
        }
    }
}

/// What `apply_role` did.
struct Applied {
    changed: Vec<String>,
    pruned: Vec<String>,
    notes: Vec<String>,
    /// Protection is not running (schedule suspended because the peer is unreachable, or a static copy in the way).
    degraded: Option<(&'static str, String)>,
}

pub struct PlanController {
    applier: Applier,
    config: ControllerConfig,
    events: Events,
    /// Peer probes of the current pass, by kubeconfig: plans sharing a peer wait for one probe, not one each.
    probes: tokio::sync::Mutex<BTreeMap<String, bool>>,
    /// The transition executor of every plan and pass (it keeps the peer clients between passes).
    executor: TransitionExecutor,
}

impl PlanController {
    pub fn new(client: kube::Client, config: ControllerConfig) -> Self {
        PlanController {
            applier: Applier::new(client.clone()),
            executor: TransitionExecutor::new(client.clone(), config.peer_timeout)
                .with_events(&config.instance),
            events: Events::new(client, &config.instance),
            config,
            probes: tokio::sync::Mutex::new(BTreeMap::new()),
        }
    }

    pub fn applier(&self) -> &Applier {
        &self.applier
    }

    /// `--cluster-domain`, else ClusterDomainsStatus `status.localDomain`.
    pub async fn local_domain(&self) -> Result<String, ControllerError> {
        if let Some(domain) = &self.config.cluster_domain {
            return Ok(domain.clone());
        }
        let statuses = self
            .applier
            .list_all(STORK_API_VERSION, "ClusterDomainsStatus")
            .await
            .map_err(ControllerError::Apply)?;
        statuses
            .iter()
            .find_map(|s| {
                s.pointer("/status/localDomain")
                    .and_then(Value::as_str)
                    .filter(|d| !d.is_empty())
            })
            .map(str::to_string)
            .ok_or(ControllerError::UnknownLocalDomain)
    }

    /// One pass over every DRPlan in the cluster, then the removal of objects whose plan is gone.
    pub async fn reconcile_all(&self, source: &SourceState) -> PassReport {
        self.reconcile_plans(source, None).await
    }

    /// Like [`PlanController::reconcile_all`], but over `plans` instead of the cluster's DRPlans when given (a
    /// dry run renders from the commit's plans, which were not stored).
    pub async fn reconcile_plans(
        &self,
        source: &SourceState,
        plans: Option<Vec<DRPlan>>,
    ) -> PassReport {
        let mut report = PassReport::default();
        self.probes.lock().await.clear();
        let listed = match plans {
            Some(plans) => Ok((plans, Vec::new())),
            None => self.list_stored_plans().await.map(read_plans),
        };
        let (plans, unreadable) = match listed {
            Ok(listed) => listed,
            Err(source) => {
                report.errors.push(
                    ControllerError::List {
                        what: "DRPlans",
                        source: Box::new(source),
                    }
                    .to_string(),
                );
                report.retry = true;
                return report;
            }
        };
        let local = self.local_domain().await;
        for plan in &plans {
            // A break-glass override goes into the live plan first: the pass then carries it out like a commit.
            let overridden = match source.overrides.get(&plan_id(plan)) {
                Some(ov) if !self.config.dry_run => {
                    match self.put_override_in_effect(plan, ov).await {
                        Ok(overridden) => Some(overridden),
                        Err(problem) => {
                            let role = local.as_ref().ok().map(|l| decide_role(plan, l));
                            let local = local.as_ref().ok().map(String::as_str);
                            let plan_report = self
                                .report_problem(plan, local, role, source, problem)
                                .await;
                            report.retry |= plan_report.retry;
                            report.plans.push(plan_report);
                            continue;
                        }
                    }
                }
                _ => None,
            };
            let plan = overridden.as_ref().unwrap_or(plan);
            let plan_report = match &local {
                Ok(local) => {
                    self.reconcile_plan(plan, local, source, &mut report.diff)
                        .await
                }
                Err(err) => {
                    let problem = PlanProblem::stalled("UnknownLocalDomain", err.to_string());
                    self.report_problem(plan, None, None, source, problem).await
                }
            };
            let mut plan_report = plan_report;
            if plan_report.last_migration.is_none() {
                plan_report.last_migration =
                    crate::plan::age::last_migration(plan).map(|t| t.as_second());
            }
            report.retry |= plan_report.retry;
            report.requeue_after = match (report.requeue_after, plan_report.requeue_after) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
            report.plans.push(plan_report);
        }
        for plan in &unreadable {
            report.plans.push(self.report_unreadable(plan).await);
        }
        if let Err(err) = &local
            && plans.is_empty()
        {
            report.errors.push(err.to_string());
        }
        // What was rendered from an unreadable plan stays: the plan still exists, it only needs fixing.
        let keep: BTreeSet<(String, String)> = plans
            .iter()
            .map(|p| (p.namespace().unwrap_or_default(), p.name_any()))
            .chain(unreadable.iter().map(|u| u.key.clone()))
            .collect();
        match self.prune_orphans(&keep, &mut report.diff).await {
            Ok(()) => {}
            Err(err) => {
                report.retry |= match &err {
                    ControllerError::Apply(e) => e.is_transient(),
                    _ => true,
                };
                report.errors.push(err.to_string());
            }
        }
        report
    }

    /// Reconciles one plan: role, inputs, apply, prune, status.
    pub async fn reconcile_plan(
        &self,
        plan: &DRPlan,
        local_domain: &str,
        source: &SourceState,
        diff_out: &mut String,
    ) -> PlanReport {
        let role = decide_role(plan, local_domain);
        if plan
            .annotations()
            .get(SUSPEND_ANNOTATION)
            .is_some_and(|v| v == "true")
        {
            return self
                .report_suspended(plan, local_domain, role, source)
                .await;
        }
        if let Some(problem) = invalid_plan(plan, &self.config.admin_namespace) {
            // The role stays what this cluster last held: nothing of the invalid plan is acted on.
            return self
                .report_problem(plan, Some(local_domain), None, source, problem)
                .await;
        }
        if !plan.spec.domains.iter().any(|d| d.name == local_domain) {
            let names: Vec<&str> = plan.spec.domains.iter().map(|d| d.name.as_str()).collect();
            let problem = PlanProblem::stalled(
                "DomainNotInPlan",
                format!(
                    "this cluster's domain {local_domain:?} is not among spec.domains {names:?}: add it to the plan, \
                     or do not deliver the plan to this cluster"
                ),
            );
            return self
                .report_problem(plan, Some(local_domain), None, source, problem)
                .await;
        }
        let inputs = match self.gather_inputs(plan, role).await {
            Ok(inputs) => inputs,
            Err(problem) => {
                return self
                    .report_problem(plan, Some(local_domain), Some(role), source, problem)
                    .await;
            }
        };
        // Role transitions (failover/failback steps) run here, before the steady-state apply.
        let executor = &self.executor;
        let mut applied_for_transition = 0;
        let fresh = loop {
            let gate = executor
                .gate(
                    plan,
                    local_domain,
                    inputs.peer_kubeconfig.as_deref(),
                    self.config.dry_run,
                )
                .await;
            match gate {
                // The protect step: this role's objects, applied before the transition may finish.
                Ok(Gate::ApplyRole) if applied_for_transition < 3 => {
                    applied_for_transition += 1;
                    if let Err(problem) = self
                        .apply_role(plan, role, &inputs, &mut String::new())
                        .await
                    {
                        return self
                            .report_problem(plan, Some(local_domain), Some(role), source, problem)
                            .await;
                    }
                }
                other => break other,
            }
        };
        let fresh = match fresh {
            Ok(Gate::Proceed(fresh)) => fresh,
            Ok(Gate::ApplyRole) => {
                return self
                    .report_problem(
                        plan,
                        Some(local_domain),
                        Some(role),
                        source,
                        PlanProblem::transient(
                            "TransitionProtect",
                            "the protect step did not finish; retrying",
                        ),
                    )
                    .await;
            }
            Ok(Gate::Hold(outcome)) => {
                let message = outcome
                    .conditions
                    .iter()
                    .find(|c| c.status == "True" && c.type_ != "Ready")
                    .map(|c| c.message.clone())
                    .unwrap_or_default();
                // The transition waits on live state (the peer, Stork), not on a commit: the planner says when to look
                // again. Waiting is not an error, so it does not go through the error backoff.
                return PlanReport {
                    plan: plan_id(plan),
                    role: Some(role),
                    phase: outcome.phase,
                    ready: false,
                    retry: false,
                    message,
                    requeue_after: Some(Duration::from_secs(
                        outcome
                            .requeue_after_seconds
                            .unwrap_or(WAIT_RECHECK_SECONDS),
                    )),
                    last_migration: None,
                };
            }
            Err(err) => {
                let problem = PlanProblem::transient("TransitionFailed", err.to_string());
                return self
                    .report_problem(plan, Some(local_domain), Some(role), source, problem)
                    .await;
            }
        };
        let plan = fresh.as_ref();
        let applied = match self.apply_role(plan, role, &inputs, diff_out).await {
            Ok(applied) => applied,
            Err(problem) => {
                return self
                    .report_problem(plan, Some(local_domain), Some(role), source, problem)
                    .await;
            }
        };
        self.write_success(plan, local_domain, role, source, applied)
            .await
    }

    /// Renders and applies the role's objects, then prunes the plan's objects it no longer renders.
    async fn apply_role(
        &self,
        plan: &DRPlan,
        role: Role,
        inputs: &RenderInputs,
        diff_out: &mut String,
    ) -> Result<Applied, PlanProblem> {
        let desired = render::render(plan, role, inputs).map_err(|e| {
            PlanProblem::stalled(
                "InvalidSecret",
                format!("cannot render the ClusterPair: {e}"),
            )
        })?;
        let mut applied = Applied {
            changed: Vec::new(),
            pruned: Vec::new(),
            notes: Vec::new(),
            degraded: None,
        };
        if role == Role::Primary && !inputs.peer_reachable {
            applied.degraded = Some((
                "PeerUnreachable",
                "the peer cluster's API server does not answer: MigrationSchedule suspended until it does".into(),
            ));
        }
        let mut desired_keys = BTreeSet::new();
        let mut schedule_created = None;
        for mut object in desired {
            let Some(key) = ObjectKey::of(&object) else {
                continue;
            };
            desired_keys.insert(key.clone());
            let mut live = self.applier.get(&key).await?;
            if let Some(standby_form) = live.as_ref().filter(|l| {
                role == Role::Primary
                    && !self.config.dry_run
                    && is_static_copy(l)
                    && !is_foreign_static_copy(l, &plan.name_any())
            }) {
                // This plan's schedule still in its standby form: Stork's static copy of the peer's schedule, or
                // ours after Stork updated it. Stork owns the copy's annotation and `suspend` by then, so the
                // apply alone would leave both; the primary takes them back first.
                let suspend = object
                    .pointer("/spec/suspend")
                    .cloned()
                    .unwrap_or(Value::Null);
                let patch = json!({"metadata": {"annotations": {STATIC_COPY: null}}, "spec": {"suspend": suspend}});
                let name = standby_form.pointer("/metadata/name").cloned();
                live = Some(self.applier.merge_patch(&key, &patch).await?);
                applied.notes.push(format!(
                    "{key}: took over {} from its standby form (static copy)",
                    name.and_then(|n| n.as_str().map(str::to_string))
                        .unwrap_or_default()
                ));
            }
            if key.kind == "MigrationSchedule" {
                schedule_created = live
                    .as_ref()
                    .and_then(|l| l.pointer("/metadata/creationTimestamp"))
                    .and_then(Value::as_str)
                    .and_then(|t| t.parse::<jiff::Timestamp>().ok());
            }
            if let Some(live) = &live {
                if is_foreign_static_copy(live, &plan.name_any()) {
                    // Stork's passive copy of the peer's schedule: never touched.
                    let note =
                        format!("{key} is Stork's static copy of the peer's schedule; left alone");
                    if role == Role::Primary {
                        applied.degraded = Some(("StaticCopyInTheWay", note.clone()));
                    }
                    applied.notes.push(note);
                    continue;
                }
                if let Some(note) = yield_to_stork(&mut object, live) {
                    applied.notes.push(format!("{key}: {note}"));
                }
            }
            if self.config.dry_run {
                let result = self.applier.apply(&object, true).await?;
                diff_out.push_str(&diff::object_diff(&key, live.as_ref(), Some(&result)));
                continue;
            }
            let result = self.applier.apply(&object, false).await?;
            let before = live
                .as_ref()
                .and_then(|l| l.pointer("/metadata/resourceVersion").cloned());
            let after = result.pointer("/metadata/resourceVersion").cloned();
            if before.is_none() {
                applied.changed.push(format!("created {key}"));
            } else if before != after {
                applied.changed.push(format!("updated {key}"));
            }
        }
        // A primary whose migrations fall behind its schedule leaves the standby's copy ageing: Degraded, with the
        // age (a newly created schedule counts from its creation).
        if role == Role::Primary
            && applied.degraded.is_none()
            && let Some(message) =
                crate::plan::age::migrations_behind(plan, schedule_created, jiff::Timestamp::now())
        {
            applied.degraded = Some(("MigrationsBehind", message));
        }
        let name = plan.name_any();
        let namespace = plan.namespace().unwrap_or_default();
        for kind in RENDERED_KINDS {
            let labelled = self
                .applier
                .list_labelled(
                    STORK_API_VERSION,
                    kind,
                    Some(&format!("{PLAN_LABEL}={name}")),
                )
                .await?;
            for object in labelled {
                let Some(key) = ObjectKey::of(&object) else {
                    continue;
                };
                if key.namespace != namespace
                    || desired_keys.contains(&key)
                    || !applied_by_us(&object)
                {
                    continue;
                }
                if self.config.dry_run {
                    diff_out.push_str(&diff::object_diff(&key, Some(&object), None));
                } else if self.applier.delete_if_ours(&key, false).await? {
                    applied.pruned.push(format!("deleted {key}"));
                }
            }
        }
        Ok(applied)
    }

    /// Deletes rendered objects whose DRPlan no longer exists. Never when no DRPlan exists at all: an empty
    /// cluster view (a reinstalled CRD, an empty render upstream) must not wipe every pairing.
    async fn prune_orphans(
        &self,
        existing: &BTreeSet<(String, String)>,
        diff_out: &mut String,
    ) -> Result<(), ControllerError> {
        if existing.is_empty() {
            return Ok(());
        }
        for kind in RENDERED_KINDS {
            for object in self
                .applier
                .list_labelled(STORK_API_VERSION, kind, Some(PLAN_LABEL))
                .await?
            {
                let Some(key) = ObjectKey::of(&object) else {
                    continue;
                };
                let plan = object
                    .pointer("/metadata/labels")
                    .and_then(|l| l.get(PLAN_LABEL))
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_string();
                if existing.contains(&(key.namespace.clone(), plan)) || !applied_by_us(&object) {
                    continue;
                }
                if self.config.dry_run {
                    diff_out.push_str(&diff::object_diff(&key, Some(&object), None));
                } else if self.applier.delete_if_ours(&key, false).await? {
                    tracing::info!(object = %key, "deleted: its DRPlan is gone");
                }
            }
        }
        Ok(())
    }
}

/// Role = primary when `spec.primary` is the local cluster domain.
pub fn decide_role(plan: &DRPlan, local_domain: &str) -> Role {
    render::role_of(plan, local_domain)
}

/// The problem of a plan that fails validation, or `None` for a valid plan. A transition under way is paused where
/// it is rather than finished or undone: its steps are level-triggered, so a valid generation resumes it, while
/// running more steps of a plan whose fields are wrong (a primary outside `spec.domains`, a schedule Stork refuses)
/// could start applications, or stop them, on a plan nobody meant.
fn invalid_plan(plan: &DRPlan, admin_namespace: &str) -> Option<PlanProblem> {
    let errors = validate::validate(plan, admin_namespace);
    if errors.is_empty() {
        return None;
    }
    let problems: Vec<String> = errors.iter().map(ToString::to_string).collect();
    let mut message = format!(
        "the plan is invalid, nothing is applied for it: {}; fix the plan (drgitops check and the webhook's \
         drplan-valid rule report the same)",
        problems.join("; ")
    );
    if let Some(transition) = plan
        .status
        .as_ref()
        .and_then(|s| s.transition.as_ref())
        .filter(|t| t.started_at.is_some() && t.finished_at.is_none())
    {
        let side = |d: &Option<String>| d.clone().unwrap_or_else(|| "?".into());
        message.push_str(&format!(
            "; the transition {} -> {} is paused: the steps done stay done and no further step runs until the plan \
             is valid",
            side(&transition.from),
            side(&transition.to)
        ));
    }
    Some(PlanProblem::stalled("InvalidPlan", message))
}

fn plan_id(plan: &impl ResourceExt) -> String {
    format!(
        "{}/{}",
        plan.namespace().unwrap_or_default(),
        plan.name_any()
    )
}

/// Whether `live` carries Stork's static-copy annotation (a passive schedule Stork never runs).
fn is_static_copy(live: &Value) -> bool {
    live.pointer("/metadata/annotations")
        .and_then(|a| a.get(STATIC_COPY))
        .and_then(Value::as_str)
        == Some("true")
}

/// Whether `live` is a schedule Stork created as the passive copy of someone else's (never ours to touch).
///
/// A static copy of this plan's own schedule is not foreign, whoever wrote it last: the standby renders its
/// schedule as that copy, Stork updates it with full-object writes (which may leave none of our applied fields
/// recorded under our field manager), and Stork's copy of the peer's schedule carries the labels the peer's
/// reconciler rendered. Taking it over is safe once this cluster is primary: the peer then stands by with its
/// schedule suspended, and Stork keeps no static copy of a suspended schedule.
fn is_foreign_static_copy(live: &Value, plan: &str) -> bool {
    let label = |key: &str| {
        live.pointer("/metadata/labels")
            .and_then(|l| l.get(key))
            .and_then(Value::as_str)
    };
    let this_plans = label(MANAGED_BY) == Some(MANAGED_BY_VALUE) && label(PLAN_LABEL) == Some(plan);
    is_static_copy(live) && !applied_by_us(live) && !this_plans
}

/// Leaves fields Stork owns alone: when Stork itself suspended a schedule (autoSuspend, an inactive local domain,
/// a failover action) the apply does not resume it. Returns a note when it yielded.
pub fn yield_to_stork(desired: &mut Value, live: &Value) -> Option<String> {
    if desired.get("kind").and_then(Value::as_str) != Some("MigrationSchedule") {
        return None;
    }
    let wants_running = desired.pointer("/spec/suspend") == Some(&Value::Bool(false));
    let live_suspended = live.pointer("/spec/suspend") == Some(&Value::Bool(true));
    if wants_running && live_suspended && owned_by_other_manager(live, &["f:spec", "f:suspend"]) {
        if let Some(spec) = desired.get_mut("spec").and_then(Value::as_object_mut) {
            spec.remove("suspend");
        }
        return Some(
            "suspended by Stork itself (autoSuspend or an inactive domain); not resumed".into(),
        );
    }
    None
}

/// A stored DRPlan that does not read as one: a field of the wrong type, stored where no CRD schema checked it.
struct UnreadablePlan {
    /// Namespace and name.
    key: (String, String),
    /// What its Events point at.
    reference: ObjectReference,
    generation: Option<i64>,
    /// The status as far as it reads, so the report keeps the role and revision it had.
    previous: DRPlanStatus,
    /// `field: what is wrong`.
    problem: String,
}

/// Reads each listed object as a DRPlan; the ones that do not read are set aside, so one bad plan never hides
/// the others.
fn read_plans(items: Vec<DynamicObject>) -> (Vec<DRPlan>, Vec<UnreadablePlan>) {
    let mut plans = Vec::new();
    let mut unreadable = Vec::new();
    let resource = ApiResource::erase::<DRPlan>(&());
    for item in items {
        let reference = item.object_ref(&resource);
        let key = (item.namespace().unwrap_or_default(), item.name_any());
        let generation = item.metadata.generation;
        let previous = item
            .data
            .get("status")
            .cloned()
            .and_then(|s| serde_json::from_value(s).ok())
            .unwrap_or_default();
        match crate::plan::from_stored(&item) {
            Ok(plan) => plans.push(plan),
            Err(problem) => unreadable.push(UnreadablePlan {
                key,
                reference,
                generation,
                previous,
                problem,
            }),
        }
    }
    (plans, unreadable)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stork_suspension_is_not_overridden() {
        let mut desired =
            json!({"kind": "MigrationSchedule", "spec": {"suspend": false, "autoSuspend": true}});
        let live = json!({"metadata": {"managedFields": [
            {"manager": "drgitops", "operation": "Apply", "fieldsV1": {"f:spec": {"f:autoSuspend": {}}}},
            {"manager": "stork", "operation": "Update", "fieldsV1": {"f:spec": {"f:suspend": {}}}}]},
            "spec": {"suspend": true}});
        assert!(yield_to_stork(&mut desired, &live).is_some());
        assert_eq!(
            desired,
            json!({"kind": "MigrationSchedule", "spec": {"autoSuspend": true}})
        );

        let mut ours = json!({"kind": "MigrationSchedule", "spec": {"suspend": false}});
        let suspended_by_us = json!({"metadata": {"managedFields": [
            {"manager": "drgitops", "operation": "Apply", "fieldsV1": {"f:spec": {"f:suspend": {}}}}]},
            "spec": {"suspend": true}});
        assert!(yield_to_stork(&mut ours, &suspended_by_us).is_none());
        assert_eq!(
            ours["spec"]["suspend"], false,
            "our own earlier suspension (e.g. standby) is lifted"
        );
    }

    fn async_plan(storage_secret: bool, status: Value) -> DRPlan {
        let mut pair = json!({"name": "remotecluster", "peerKubeconfigSecret": {"name": "peer"}});
        if storage_secret {
            pair["storageSecret"] = json!({"name": "peer-storage"});
        }
        serde_json::from_value(json!({
            "apiVersion": "drgitops.dev/v1alpha1", "kind": "DRPlan",
            "metadata": {"name": "mysql", "namespace": "mysql"},
            "spec": {"mode": "async", "primary": "east", "domains": [{"name": "east"}, {"name": "west"}],
                     "clusterPair": pair, "migration": {"includeVolumes": true}},
            "status": status,
        }))
        .unwrap()
    }

    #[test]
    fn invalid_plans_stall_with_every_field_the_validator_names() {
        assert!(invalid_plan(&async_plan(true, json!({})), "kube-system").is_none());

        let problem = invalid_plan(&async_plan(false, json!({})), "kube-system").unwrap();
        assert!(problem.stalled);
        assert_eq!(problem.reason, "InvalidPlan");
        assert!(
            problem
                .message
                .contains("spec.clusterPair.storageSecret: absent in async mode"),
            "{}",
            problem.message
        );
        assert!(!problem.message.contains("paused"), "{}", problem.message);

        let running = json!({"transition": {"from": "west", "to": "east", "startedAt": "2026-01-01T00:00:00Z",
                                            "steps": [{"name": "fence", "state": "Succeeded"}]}});
        let problem = invalid_plan(&async_plan(false, running), "kube-system").unwrap();
        assert!(
            problem
                .message
                .contains("the transition west -> east is paused"),
            "{}",
            problem.message
        );

        let finished = json!({"transition": {"from": "west", "to": "east", "startedAt": "2026-01-01T00:00:00Z",
                                             "finishedAt": "2026-01-01T00:01:00Z"}});
        let problem = invalid_plan(&async_plan(false, finished), "kube-system").unwrap();
        assert!(!problem.message.contains("paused"), "{}", problem.message);
    }

    #[test]
    fn static_copies_are_recognised() {
        let copy = json!({"metadata": {"annotations": {STATIC_COPY: "true"}}});
        assert!(is_foreign_static_copy(&copy, "mysql"));
        assert!(!is_foreign_static_copy(&json!({"metadata": {}}), "mysql"));
        // Stork's copy of the peer's schedule of this plan, or ours after Stork's full-object update.
        let ours = json!({"metadata": {"annotations": {STATIC_COPY: "true"},
                                       "labels": {MANAGED_BY: MANAGED_BY_VALUE, PLAN_LABEL: "mysql"}}});
        assert!(!is_foreign_static_copy(&ours, "mysql"));
        assert!(is_foreign_static_copy(&ours, "postgres"));
    }
}
