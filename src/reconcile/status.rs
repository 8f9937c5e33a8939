//! The one writer of DRPlan status: a merge patch of the status subresource, as the field manager `drgitops`.
//!
//! In: the status to write, composed by the plan controller (steady state, problems) or by the transition
//! planner's [`Outcome::write_status`](crate::plan::transition::Outcome::write_status) (a transition under way).
//! Out: one PATCH. Both callers skip the write when the status is unchanged, so a pass that changes nothing wakes
//! no watcher.

use kube::api::{Patch, PatchParams};
use kube::{Api, Client};
use serde_json::{Value, json};

use crate::plan::{DRPlan, DRPlanStatus};
use crate::stork::keys::FIELD_MANAGER;

/// Merge-patches `status` onto DRPlan `namespace/name`.
pub async fn write(
    client: &Client,
    namespace: &str,
    name: &str,
    status: &DRPlanStatus,
) -> Result<(), kube::Error> {
    let plans: Api<DRPlan> = Api::namespaced(client.clone(), namespace);
    plans
        .patch_status(
            name,
            &PatchParams {
                field_manager: Some(FIELD_MANAGER.into()),
                ..Default::default()
            },
            &Patch::Merge(&patch(status)),
        )
        .await
        .map(drop)
}

/// The status as a merge patch: a transition's `finishedAt` the planner cleared is sent as `null`, so a finished
/// transition's time never survives into the next one.
fn patch(status: &DRPlanStatus) -> Value {
    let mut value = serde_json::to_value(status).unwrap_or_else(|_| json!({}));
    if let Some(t) = value.get_mut("transition").and_then(Value::as_object_mut)
        && !t.contains_key("finishedAt")
    {
        t.insert("finishedAt".into(), Value::Null);
    }
    json!({"status": value})
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_previous_finished_at_is_cleared() {
        let status = DRPlanStatus {
            transition: Some(crate::plan::types::Transition {
                from: Some("a".into()),
                ..Default::default()
            }),
            ..Default::default()
        };
        let patch = patch(&status);
        assert_eq!(patch["status"]["transition"]["finishedAt"], Value::Null);
        assert!(
            patch["status"]["transition"]
                .as_object()
                .unwrap()
                .contains_key("finishedAt")
        );
        let steady = patch_of_default();
        assert!(steady["status"].get("transition").is_none());
    }

    fn patch_of_default() -> Value {
        patch(&DRPlanStatus::default())
    }
}
