//! What a pod's status says about the application: whether it may still be writing to its volumes.

use k8s_openapi::api::core::v1::Pod;

/// Whether the pod has not finished: pending, running (Ready or not) or terminating. A pod that `Succeeded` or
/// `Failed` (e.g. of a completed Job) holds no volume open any more.
pub fn not_finished(pod: &Pod) -> bool {
    let phase = pod.status.as_ref().and_then(|s| s.phase.as_deref());
    !matches!(phase, Some("Succeeded" | "Failed"))
}

/// Whether the pod is Ready and not being deleted: serving.
pub fn serving(pod: &Pod) -> bool {
    pod.metadata.deletion_timestamp.is_none()
        && pod
            .status
            .as_ref()
            .and_then(|s| s.conditions.as_ref())
            .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}
