//! Everything the plan controller writes about a plan: its `status` (role, phase, revisions, conditions, through
//! the status subresource) and its Events. The transition steps' part of the status is written by the
//! transition executor; this file writes the rest, from the outcome of a pass.

use super::*;

impl PlanController {
    pub(super) async fn write_success(
        &self,
        plan: &DRPlan,
        local_domain: &str,
        role: Role,
        source: &SourceState,
        applied: Applied,
    ) -> PlanReport {
        let id = plan_id(plan);
        let revision = plan.annotations().get(REVISION_ANNOTATION).cloned();
        let source_failure = source.failure_for(&id).cloned();
        let (phase, ready, reason, message) = match (&source_failure, &applied.degraded) {
            (Some(failure), _) => (
                Phase::Stalled,
                false,
                "InvalidCommit",
                format!("{failure}; still holding the last good revision"),
            ),
            (None, Some((reason, message))) => (Phase::Degraded, false, *reason, message.clone()),
            (None, None) => {
                let phase = match role {
                    Role::Primary => Phase::Protected,
                    Role::Standby => Phase::Standby,
                };
                let mut message = match role {
                    Role::Primary => {
                        "applications run here; migrations to the peer are scheduled".to_string()
                    }
                    Role::Standby => {
                        "holding the pair and a suspended schedule for failback".to_string()
                    }
                };
                for note in &applied.notes {
                    message.push_str("; ");
                    message.push_str(note);
                }
                (phase, true, "Reconciled", message)
            }
        };
        let mut status = base_status(
            plan,
            Some(local_domain),
            Some(role),
            source,
            revision.clone(),
        );
        if !self.config.dry_run {
            status.last_applied_revision = revision.clone().or(status.last_applied_revision);
        }
        status.phase = Some(phase.to_string());
        let generation = plan.metadata.generation;
        let stalled_reason = if source_failure.is_some() {
            Some(("InvalidCommit", message.clone()))
        } else {
            None
        };
        status.conditions = conditions(
            previous_conditions(plan),
            generation,
            (ready, reason, &message),
            None,
            stalled_reason.as_ref().map(|(r, m)| (*r, m.as_str())),
        );
        status
            .conditions
            .extend(breakglass::override_condition(plan, source));
        let changed = !applied.changed.is_empty() || !applied.pruned.is_empty();
        if changed && !self.config.dry_run {
            let note = [applied.changed.clone(), applied.pruned.clone()]
                .concat()
                .join(", ");
            self.event(plan, EventType::Normal, "Applied", &note).await;
        }
        self.publish_status(plan, status).await;
        PlanReport {
            plan: id,
            role: Some(role),
            phase,
            ready,
            retry: false,
            message,
            requeue_after: None,
            last_migration: crate::plan::age::last_migration(plan).map(|t| t.as_second()),
        }
    }

    pub(super) async fn report_suspended(
        &self,
        plan: &DRPlan,
        local_domain: &str,
        role: Role,
        source: &SourceState,
    ) -> PlanReport {
        let revision = plan.annotations().get(REVISION_ANNOTATION).cloned();
        let mut status = base_status(plan, Some(local_domain), Some(role), source, revision);
        let message = format!(
            "reconciliation suspended by the annotation {SUSPEND_ANNOTATION}: \"true\"; remove it to resume"
        );
        status.phase = Some(Phase::Suspended.to_string());
        status.conditions = conditions(
            previous_conditions(plan),
            plan.metadata.generation,
            (false, "Suspended", &message),
            None,
            None,
        );
        status
            .conditions
            .extend(breakglass::override_condition(plan, source));
        if plan.status.as_ref().and_then(|s| s.phase.as_deref()) != Some(Phase::Suspended.as_str())
            && !self.config.dry_run
        {
            self.event(plan, EventType::Normal, "Suspended", &message)
                .await;
        }
        self.publish_status(plan, status).await;
        // A suspended plan is a deliberate state, not a failure of the pass.
        PlanReport {
            plan: plan_id(plan),
            role: Some(role),
            phase: Phase::Suspended,
            ready: true,
            retry: false,
            message,
            requeue_after: None,
            last_migration: None,
        }
    }

    pub(super) async fn report_problem(
        &self,
        plan: &DRPlan,
        local_domain: Option<&str>,
        role: Option<Role>,
        source: &SourceState,
        problem: PlanProblem,
    ) -> PlanReport {
        let id = plan_id(plan);
        let revision = plan.annotations().get(REVISION_ANNOTATION).cloned();
        let mut status = base_status(plan, local_domain, role, source, revision);
        let phase = if problem.stalled {
            Phase::Stalled
        } else {
            Phase::Error
        };
        status.phase = Some(phase.to_string());
        let reconciling = if problem.stalled {
            None
        } else {
            Some(("ProgressingWithRetry", problem.message.as_str()))
        };
        let stalled = if problem.stalled {
            Some((problem.reason, problem.message.as_str()))
        } else {
            None
        };
        status.conditions = conditions(
            previous_conditions(plan),
            plan.metadata.generation,
            (false, problem.reason, &problem.message),
            reconciling,
            stalled,
        );
        status
            .conditions
            .extend(breakglass::override_condition(plan, source));
        tracing::warn!(plan = %id, reason = problem.reason, "{}", problem.message);
        if !self.config.dry_run {
            self.event(plan, EventType::Warning, problem.reason, &problem.message)
                .await;
        }
        self.publish_status(plan, status).await;
        PlanReport {
            plan: id,
            role,
            phase,
            ready: false,
            retry: !problem.stalled,
            message: problem.message,
            requeue_after: None,
            last_migration: None,
        }
    }

    /// Marks the plans a refused commit affects (Stalled, with file, line and field) without touching anything
    /// else, and emits a Warning Event on each, whether or not the stored plan still reads.
    pub async fn report_invalid_commit(&self, source: &SourceState) {
        if self.config.dry_run {
            return;
        }
        let Ok(plans) = self.list_stored_plans().await else {
            return;
        };
        let resource = ApiResource::erase::<DRPlan>(&());
        for plan in &plans {
            let Some(message) = source.failure_for(&plan_id(plan)) else {
                continue;
            };
            if source.failures.contains_key("*") && !plan.labels().contains_key(MANAGED_BY) {
                continue;
            }
            self.event_on(
                &plan.object_ref(&resource),
                EventType::Warning,
                "InvalidCommit",
                message,
            )
            .await;
        }
    }

    /// Reports a stored DRPlan that does not read as one on its own status: Stalled, reason `InvalidPlan`, with
    /// the field and what is wrong. Nothing is applied for it.
    pub(super) async fn report_unreadable(&self, plan: &UnreadablePlan) -> PlanReport {
        let (namespace, name) = &plan.key;
        let id = format!("{namespace}/{name}");
        let message = format!(
            "the stored plan cannot be read, nothing is applied for it: {}; fix the field in the plan's source",
            plan.problem
        );
        tracing::warn!(plan = %id, reason = "InvalidPlan", "{message}");
        if !self.config.dry_run {
            self.event_on(&plan.reference, EventType::Warning, "InvalidPlan", &message)
                .await;
        }
        let mut status = plan.previous.clone();
        status.phase = Some(Phase::Stalled.to_string());
        status.observed_generation = plan.generation;
        status.conditions = conditions(
            &plan.previous.conditions,
            plan.generation,
            (false, "InvalidPlan", &message),
            None,
            Some(("InvalidPlan", &message)),
        );
        if !self.config.dry_run && status != plan.previous {
            self.patch_status(namespace, name, &status).await;
        }
        PlanReport {
            plan: id,
            role: plan.previous.role,
            phase: Phase::Stalled,
            ready: false,
            retry: false,
            message,
            requeue_after: None,
            last_migration: None,
        }
    }

    pub(super) async fn publish_status(&self, plan: &DRPlan, status: DRPlanStatus) {
        if self.config.dry_run || plan.status.as_ref() == Some(&status) {
            return;
        }
        let old_role = plan.status.as_ref().and_then(|s| s.role);
        if let (Some(old), Some(new)) = (old_role, status.role)
            && old != new
        {
            let note = format!("role changed from {} to {}", old.as_str(), new.as_str());
            self.event(plan, EventType::Normal, "RoleChanged", &note)
                .await;
        }
        self.patch_status(
            &plan.namespace().unwrap_or_default(),
            &plan.name_any(),
            &status,
        )
        .await;
    }

    /// Writes a DRPlan's status subresource; a failure is logged, and the next pass writes it again.
    pub(super) async fn patch_status(&self, namespace: &str, name: &str, status: &DRPlanStatus) {
        let client = self.applier.client();
        if let Err(err) = crate::reconcile::status::write(client, namespace, name, status).await {
            tracing::warn!(plan = %format!("{namespace}/{name}"), "cannot write status: {err}");
        }
    }

    pub(super) async fn event(&self, plan: &DRPlan, type_: EventType, reason: &str, note: &str) {
        self.event_on(&plan.object_ref(&()), type_, reason, note)
            .await;
    }

    /// Publishes an Event on the object `plan` points at (see [`crate::runtime::events::Events::publish`]).
    pub(super) async fn event_on(
        &self,
        plan: &ObjectReference,
        type_: EventType,
        reason: &str,
        note: &str,
    ) {
        self.events
            .publish(plan, type_, "Reconcile", reason, note)
            .await;
    }
}

pub(super) fn base_status(
    plan: &DRPlan,
    local_domain: Option<&str>,
    role: Option<Role>,
    source: &SourceState,
    revision: Option<String>,
) -> DRPlanStatus {
    let previous = plan.status.clone().unwrap_or_default();
    DRPlanStatus {
        observed_generation: plan.metadata.generation,
        local_domain: local_domain.map(str::to_string).or(previous.local_domain),
        role: role.or(previous.role),
        last_attempted_revision: if source.git {
            source.attempted_revision.clone().or(revision)
        } else {
            revision
        }
        .or(previous.last_attempted_revision),
        ..previous
    }
}

pub(super) fn previous_conditions(plan: &DRPlan) -> &[Condition] {
    plan.status
        .as_ref()
        .map(|s| s.conditions.as_slice())
        .unwrap_or_default()
}

/// The three kstatus conditions, keeping `lastTransitionTime` when a condition's status did not change.
pub(super) fn conditions(
    previous: &[Condition],
    generation: Option<i64>,
    ready: (bool, &str, &str),
    reconciling: Option<(&str, &str)>,
    stalled: Option<(&str, &str)>,
) -> Vec<Condition> {
    let now = jiff::Timestamp::now().to_string();
    let make = |type_: &str, status: bool, reason: &str, message: &str| {
        let status = if status { "True" } else { "False" }.to_string();
        let since = previous
            .iter()
            .find(|c| c.type_ == type_ && c.status == status)
            .and_then(|c| c.last_transition_time.clone())
            .unwrap_or_else(|| now.clone());
        Condition {
            type_: type_.into(),
            status,
            reason: Some(reason.into()),
            message: Some(message.into()),
            last_transition_time: Some(since),
            observed_generation: generation,
        }
    };
    vec![
        make("Ready", ready.0, ready.1, ready.2),
        match reconciling {
            Some((reason, message)) => make("Reconciling", true, reason, message),
            None => make("Reconciling", false, "Idle", "no work pending"),
        },
        match stalled {
            Some((reason, message)) => make("Stalled", true, reason, message),
            None => make("Stalled", false, "Progressing", "nothing blocks the plan"),
        },
    ]
}
