//! A break-glass override in the plan controller: put into the live plan before the plan is reconciled (so the
//! transition runs as the declared disaster it amounts to, and the webhook, `drgitops status` and the peer read the
//! same primary), and reported on the plan's status as the `BreakGlass` condition.

use kube::api::{Patch, PatchParams};

use super::status::previous_conditions;
use super::*;
use crate::plan::breakglass::{
    self, GitVerdict, OVERRIDE_ANNOTATION, OVERRIDE_CONDITION, OVERRIDE_FIELD_MANAGER, Standing,
};
use crate::reconcile::breakglass::override_reference;

impl PlanController {
    /// The plan with `ov` in effect: written into the live plan (field manager `drgitops-break-glass`) unless it
    /// already is, with a Warning Event on the plan and on the override and a log line naming who and why.
    pub(super) async fn put_override_in_effect(
        &self,
        plan: &DRPlan,
        ov: &Standing,
    ) -> Result<DRPlan, PlanProblem> {
        if breakglass::in_effect(&plan.spec, &ov.spec) {
            return Ok(plan.clone());
        }
        let data_as_of = plan
            .status
            .as_ref()
            .and_then(|s| s.last_migration.as_ref())
            .and_then(|m| m.finished_at.as_deref());
        let spec = breakglass::overridden_spec(&plan.spec, &ov.spec, &ov.created_at, data_as_of)
            .map_err(|e| {
                PlanProblem::stalled(
                    "BreakGlassRefused",
                    format!("DRPlanOverride {}/{}: {e}", ov.namespace, ov.name),
                )
            })?;
        let mut candidate = plan.clone();
        candidate.spec = spec.clone();
        let errors = validate::validate(&candidate, &self.config.admin_namespace);
        if !errors.is_empty() {
            let problems: Vec<String> = errors.iter().map(ToString::to_string).collect();
            return Err(PlanProblem::stalled(
                "BreakGlassRefused",
                format!(
                    "DRPlanOverride {}/{} would make the plan invalid: {}; delete the override and fix the plan",
                    ov.namespace,
                    ov.name,
                    problems.join("; ")
                ),
            ));
        }
        let patch = json!({
            "metadata": {"annotations": {
                REVISION_ANNOTATION: ov.revision(),
                OVERRIDE_ANNOTATION: ov.name,
            }},
            "spec": {
                "primary": spec.primary,
                "domains": spec.domains,
                "failover": {"disaster": spec.disaster()},
            },
        });
        let params = PatchParams {
            field_manager: Some(OVERRIDE_FIELD_MANAGER.into()),
            ..PatchParams::default()
        };
        let api: Api<DRPlan> = Api::namespaced(self.applier.client().clone(), &ov.namespace);
        let patched = api
            .patch(&plan.name_any(), &params, &Patch::Merge(&patch))
            .await
            .map_err(|e| {
                PlanProblem::from(ApplyError::Api {
                    verb: "patch",
                    key: ObjectKey {
                        api_version: crate::plan::API_VERSION.into(),
                        kind: "DRPlan".into(),
                        namespace: ov.namespace.clone(),
                        name: plan.name_any(),
                    },
                    source: Box::new(e),
                })
            })?;
        let lost = spec.disaster().map(|d| d.lost.clone()).unwrap_or_default();
        let note = format!(
            "break-glass failover to {} by {} ({}): DRPlanOverride {}/{} created {}; {lost} is declared lost and \
             not waited for; git revisions naming another primary are not applied until Git holds {}",
            ov.spec.primary,
            ov.spec.requested_by,
            ov.spec.reason,
            ov.namespace,
            ov.name,
            ov.created_at,
            ov.spec.primary
        );
        tracing::warn!(
            plan = %plan_id(plan),
            requested_by = %ov.spec.requested_by,
            reason = %ov.spec.reason,
            "{note}"
        );
        self.event(&patched, EventType::Warning, "BreakGlass", &note)
            .await;
        self.events
            .publish(
                &override_reference(ov),
                EventType::Warning,
                "BreakGlass",
                "BreakGlass",
                &note,
            )
            .await;
        Ok(patched)
    }
}

/// The `BreakGlass` condition of a plan an override stands on, keeping `lastTransitionTime` while it stands.
pub(super) fn override_condition(plan: &DRPlan, source: &SourceState) -> Option<Condition> {
    let id = plan_id(plan);
    let ov = source.overrides.get(&id)?;
    let verdict = breakglass::judge(
        &ov.spec.primary,
        source
            .git_primaries
            .get(&id)
            .map(|(r, p)| (r.as_str(), p.as_str())),
    );
    let message =
        breakglass::condition_message(&ov.namespace, &ov.name, &ov.spec, &ov.created_at, &verdict);
    let since = previous_conditions(plan)
        .iter()
        .find(|c| c.type_ == OVERRIDE_CONDITION && c.status == "True")
        .and_then(|c| c.last_transition_time.clone())
        .unwrap_or_else(|| jiff::Timestamp::now().to_string());
    let reason = match verdict {
        GitVerdict::Held { .. } => "GitRevisionHeld",
        GitVerdict::Unknown => "GitUnreachable",
        GitVerdict::Agrees { .. } => "GitAgrees",
    };
    Some(Condition {
        type_: OVERRIDE_CONDITION.into(),
        status: "True".into(),
        reason: Some(reason.into()),
        message: Some(message),
        last_transition_time: Some(since),
        observed_generation: plan.metadata.generation,
    })
}
