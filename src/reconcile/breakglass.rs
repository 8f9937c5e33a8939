//! Break-glass overrides on this cluster: read them, and remove one once Git holds its primary.
//!
//! In: the DRPlanOverrides of every namespace (`drgitops failover --break-glass` creates them). Out: the override
//! standing for each plan ([`crate::plan::breakglass::by_plan`]), for the git source (which holds back revisions
//! that disagree) and the plan controller (which puts the override into the live plan); the override deleted, its
//! mark taken off the plan, an Event and a log line once Git agrees. The decisions are pure, in
//! [`crate::plan::breakglass`].

use k8s_openapi::api::core::v1::ObjectReference;
use kube::api::{DeleteParams, Patch, PatchParams};
use kube::runtime::events::EventType;
use kube::{Api, ResourceExt};
use serde_json::json;

use crate::plan::DRPlan;
use crate::plan::breakglass::{
    DRPlanOverride, OVERRIDE_ANNOTATION, OVERRIDE_FIELD_MANAGER, Standing,
};
use crate::runtime::events::Events;

/// Every DRPlanOverride of the cluster, as [`Standing`] overrides. A cluster without the DRPlanOverride CRD has none.
pub async fn list(client: &kube::Client) -> Result<Vec<Standing>, kube::Error> {
    let api: Api<DRPlanOverride> = Api::all(client.clone());
    let listed = match api.list(&Default::default()).await {
        Ok(listed) => listed,
        Err(kube::Error::Api(status)) if status.code == 404 => return Ok(Vec::new()),
        Err(err) => return Err(err),
    };
    Ok(listed
        .items
        .into_iter()
        .map(|ov| Standing {
            namespace: ov.namespace().unwrap_or_default(),
            name: ov.name_any(),
            created_at: ov
                .metadata
                .creation_timestamp
                .as_ref()
                .map(|t| t.0.to_string())
                .unwrap_or_default(),
            spec: ov.spec,
        })
        .collect())
}

/// What Events about a plan point at.
pub fn plan_reference(namespace: &str, plan: &str) -> ObjectReference {
    ObjectReference {
        api_version: Some(crate::plan::API_VERSION.into()),
        kind: Some("DRPlan".into()),
        namespace: Some(namespace.into()),
        name: Some(plan.into()),
        ..ObjectReference::default()
    }
}

/// What Events about an override point at.
pub fn override_reference(ov: &Standing) -> ObjectReference {
    ObjectReference {
        api_version: Some(crate::plan::API_VERSION.into()),
        kind: Some("DRPlanOverride".into()),
        namespace: Some(ov.namespace.clone()),
        name: Some(ov.name.clone()),
        ..ObjectReference::default()
    }
}

/// Ends an override Git now agrees with (at `revision`): deletes it and takes its mark off the plan, with an
/// Event on the plan and a log line.
pub async fn end(
    client: &kube::Client,
    events: &Events,
    ov: &Standing,
    revision: &str,
) -> Result<(), kube::Error> {
    let overrides: Api<DRPlanOverride> = Api::namespaced(client.clone(), &ov.namespace);
    match overrides.delete(&ov.name, &DeleteParams::default()).await {
        Ok(_) => {}
        Err(kube::Error::Api(status)) if status.code == 404 => {}
        Err(err) => return Err(err),
    }
    let plans: Api<DRPlan> = Api::namespaced(client.clone(), &ov.namespace);
    let unmark = json!({"metadata": {"annotations": {OVERRIDE_ANNOTATION: null}}});
    let params = PatchParams {
        field_manager: Some(OVERRIDE_FIELD_MANAGER.into()),
        ..PatchParams::default()
    };
    match plans
        .patch(&ov.spec.plan, &params, &Patch::Merge(&unmark))
        .await
    {
        Ok(_) => {}
        Err(kube::Error::Api(status)) if status.code == 404 => {}
        Err(err) => return Err(err),
    }
    let note = format!(
        "Git holds primary {} at revision {}: DRPlanOverride {}/{} (by {}: {}) removed; Git applies to this plan again",
        ov.spec.primary,
        crate::source::sync::short(revision),
        ov.namespace,
        ov.name,
        ov.spec.requested_by,
        ov.spec.reason
    );
    tracing::info!(plan = %ov.plan_id(), revision = %revision, "break-glass override ended: {note}");
    events
        .publish(
            &plan_reference(&ov.namespace, &ov.spec.plan),
            EventType::Normal,
            "BreakGlass",
            "BreakGlassEnded",
            &note,
        )
        .await;
    Ok(())
}
