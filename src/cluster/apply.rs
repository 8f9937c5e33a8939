//! Server-side apply and ownership-checked deletion of the objects the reconciler manages.
//!
//! In: desired objects as JSON (`apiVersion`, `kind`, `metadata`, ...). Out: the live objects the API server returns.
//! Every write is a server-side apply under the field manager `drgitops`; `status` is never sent (Stork's CRDs have
//! no status subresource, so a `status` in an apply would overwrite what Stork wrote). Deletion only touches objects
//! that carry our labels *and* whose managed fields show an apply by `drgitops`, so a hand-made object that copied
//! our labels survives.

use kube::api::{
    Api, ApiResource, DeleteParams, DynamicObject, GroupVersionKind, ListParams, Patch, PatchParams,
};
use serde_json::Value;

use crate::plan::API_VERSION as DRPLAN_API_VERSION;
use crate::stork::keys::{FIELD_MANAGER, MANAGED_BY, MANAGED_BY_VALUE, STORK_API_VERSION};

/// The kinds the reconciler reads or writes, with their plural and scope. A fixed table instead of discovery: these
/// are the only kinds it may touch, and the RBAC in `manifests/reconciler/` grants exactly these.
const KINDS: &[(&str, &str, &str, bool)] = &[
    (STORK_API_VERSION, "ClusterPair", "clusterpairs", true),
    (
        STORK_API_VERSION,
        "NamespacedSchedulePolicy",
        "namespacedschedulepolicies",
        true,
    ),
    (
        STORK_API_VERSION,
        "MigrationSchedule",
        "migrationschedules",
        true,
    ),
    (
        STORK_API_VERSION,
        "SchedulePolicy",
        "schedulepolicies",
        false,
    ),
    (
        STORK_API_VERSION,
        "ClusterDomainsStatus",
        "clusterdomainsstatuses",
        false,
    ),
    (
        STORK_API_VERSION,
        "ClusterDomainUpdate",
        "clusterdomainupdates",
        false,
    ),
    (DRPLAN_API_VERSION, "DRPlan", "drplans", true),
    ("v1", "ConfigMap", "configmaps", true),
    ("v1", "Secret", "secrets", true),
];

/// Identifies one object.
#[derive(
    Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
pub struct ObjectKey {
    #[serde(rename = "apiVersion")]
    pub api_version: String,
    pub kind: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub namespace: String,
    pub name: String,
}

impl ObjectKey {
    /// The key of a JSON object, if it has `apiVersion`, `kind` and `metadata.name`.
    pub fn of(object: &Value) -> Option<ObjectKey> {
        Some(ObjectKey {
            api_version: object.get("apiVersion")?.as_str()?.to_string(),
            kind: object.get("kind")?.as_str()?.to_string(),
            namespace: object
                .pointer("/metadata/namespace")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string(),
            name: object.pointer("/metadata/name")?.as_str()?.to_string(),
        })
    }
}

impl std::fmt::Display for ObjectKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.namespace.is_empty() {
            write!(f, "{} {}", self.kind, self.name)
        } else {
            write!(f, "{} {}/{}", self.kind, self.namespace, self.name)
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    #[error("{api_version} {kind} is not a kind the reconciler manages")]
    UnknownKind { api_version: String, kind: String },
    #[error("object has no apiVersion, kind or metadata.name")]
    Unidentified,
    #[error("{verb} {key} failed: {source}")]
    Api {
        verb: &'static str,
        key: ObjectKey,
        #[source]
        source: Box<kube::Error>,
    },
}

impl ApplyError {
    /// Whether retrying may help (server errors, throttling, conflicts, timeouts), as opposed to a request the
    /// server will always refuse.
    pub fn is_transient(&self) -> bool {
        match self {
            ApplyError::Api { source, .. } => match &**source {
                kube::Error::Api(status) => {
                    status.code >= 500 || status.code == 429 || status.code == 409
                }
                _ => true,
            },
            _ => false,
        }
    }

    /// The API status code, when the server answered.
    pub fn status_code(&self) -> Option<u16> {
        match self {
            ApplyError::Api { source, .. } => match &**source {
                kube::Error::Api(status) => Some(status.code),
                _ => None,
            },
            _ => None,
        }
    }
}

/// The plural and scope of a kind the reconciler manages.
pub fn api_resource(api_version: &str, kind: &str) -> Option<(ApiResource, bool)> {
    let &(_, _, plural, namespaced) = KINDS
        .iter()
        .find(|(v, k, _, _)| *v == api_version && *k == kind)?;
    let (group, version) = match api_version.split_once('/') {
        Some((group, version)) => (group, version),
        None => ("", api_version),
    };
    let gvk = GroupVersionKind::gvk(group, version, kind);
    Some((ApiResource::from_gvk_with_plural(&gvk, plural), namespaced))
}

/// Whether `object` was applied by this reconciler: it carries our managed-by label and its managed fields
/// record an apply by `drgitops`. Both are needed: labels can be copied by hand, managed fields cannot.
pub fn applied_by_us(object: &Value) -> bool {
    let labelled = object
        .pointer("/metadata/labels")
        .and_then(|l| l.get(MANAGED_BY))
        .and_then(Value::as_str)
        == Some(MANAGED_BY_VALUE);
    let applied = object
        .pointer("/metadata/managedFields")
        .and_then(Value::as_array)
        .is_some_and(|entries| {
            entries.iter().any(|e| {
                e.get("manager").and_then(Value::as_str) == Some(FIELD_MANAGER)
                    && e.get("operation").and_then(Value::as_str) == Some("Apply")
            })
        });
    labelled && applied
}

/// Whether a manager other than `drgitops` owns `path` (FieldsV1 keys such as `["f:spec", "f:suspend"]`).
pub fn owned_by_other_manager(object: &Value, path: &[&str]) -> bool {
    let Some(entries) = object
        .pointer("/metadata/managedFields")
        .and_then(Value::as_array)
    else {
        return false;
    };
    entries.iter().any(|entry| {
        if entry.get("manager").and_then(Value::as_str) == Some(FIELD_MANAGER)
            || entry
                .get("subresource")
                .and_then(Value::as_str)
                .is_some_and(|s| !s.is_empty())
        {
            return false;
        }
        let mut node = entry.get("fieldsV1");
        for key in path {
            node = node.and_then(|n| n.get(*key));
        }
        node.is_some()
    })
}

/// The body of an apply: the object without `status` and without server-owned metadata.
pub fn apply_body(object: &Value) -> Value {
    let mut body = object.clone();
    if let Some(map) = body.as_object_mut() {
        map.remove("status");
    }
    if let Some(meta) = body.get_mut("metadata").and_then(Value::as_object_mut) {
        for key in [
            "managedFields",
            "resourceVersion",
            "uid",
            "creationTimestamp",
            "generation",
        ] {
            meta.remove(key);
        }
    }
    body
}

/// Applies, reads and deletes managed objects through one API client.
#[derive(Clone)]
pub struct Applier {
    client: kube::Client,
}

impl Applier {
    pub fn new(client: kube::Client) -> Self {
        Applier { client }
    }

    pub fn client(&self) -> &kube::Client {
        &self.client
    }

    fn api(&self, key: &ObjectKey) -> Result<Api<DynamicObject>, ApplyError> {
        let (resource, namespaced) =
            api_resource(&key.api_version, &key.kind).ok_or_else(|| ApplyError::UnknownKind {
                api_version: key.api_version.clone(),
                kind: key.kind.clone(),
            })?;
        Ok(if namespaced {
            Api::namespaced_with(self.client.clone(), &key.namespace, &resource)
        } else {
            Api::all_with(self.client.clone(), &resource)
        })
    }

    /// Server-side applies `object` (forcing ownership of the fields we send) and returns the live result. With
    /// `dry_run`, the server computes the result and stores nothing.
    pub async fn apply(&self, object: &Value, dry_run: bool) -> Result<Value, ApplyError> {
        let key = ObjectKey::of(object).ok_or(ApplyError::Unidentified)?;
        let api = self.api(&key)?;
        let mut params = PatchParams::apply(FIELD_MANAGER).force();
        params.dry_run = dry_run;
        let body = apply_body(object);
        let live = api
            .patch(&key.name, &params, &Patch::Apply(&body))
            .await
            .map_err(|source| ApplyError::Api {
                verb: "apply",
                key: key.clone(),
                source: Box::new(source),
            })?;
        serde_json::to_value(live).map_err(|e| ApplyError::Api {
            verb: "apply",
            key,
            source: Box::new(kube::Error::SerdeError(e)),
        })
    }

    /// The live object, or `None` when it does not exist.
    pub async fn get(&self, key: &ObjectKey) -> Result<Option<Value>, ApplyError> {
        let api = self.api(key)?;
        let found = api
            .get_opt(&key.name)
            .await
            .map_err(|source| ApplyError::Api {
                verb: "get",
                key: key.clone(),
                source: Box::new(source),
            })?;
        Ok(found.and_then(|o| serde_json::to_value(o).ok()))
    }

    /// Objects of one kind carrying our managed-by label (and `extra` labels), across all namespaces.
    pub async fn list_labelled(
        &self,
        api_version: &str,
        kind: &str,
        extra: Option<&str>,
    ) -> Result<Vec<Value>, ApplyError> {
        let mut selector = format!("{MANAGED_BY}={MANAGED_BY_VALUE}");
        if let Some(extra) = extra {
            selector.push(',');
            selector.push_str(extra);
        }
        self.list(api_version, kind, Some(&selector)).await
    }

    /// Every object of one kind (all namespaces), whoever made it.
    pub async fn list_all(&self, api_version: &str, kind: &str) -> Result<Vec<Value>, ApplyError> {
        self.list(api_version, kind, None).await
    }

    /// Objects of one kind across all namespaces, optionally filtered by a label selector.
    async fn list(
        &self,
        api_version: &str,
        kind: &str,
        selector: Option<&str>,
    ) -> Result<Vec<Value>, ApplyError> {
        let key = ObjectKey {
            api_version: api_version.into(),
            kind: kind.into(),
            namespace: String::new(),
            name: "*".into(),
        };
        let (resource, _) =
            api_resource(api_version, kind).ok_or_else(|| ApplyError::UnknownKind {
                api_version: api_version.into(),
                kind: kind.into(),
            })?;
        let api: Api<DynamicObject> = Api::all_with(self.client.clone(), &resource);
        let mut params = ListParams::default();
        if let Some(selector) = selector {
            params = params.labels(selector);
        }
        let list = api.list(&params).await.map_err(|source| ApplyError::Api {
            verb: "list",
            key,
            source: Box::new(source),
        })?;
        Ok(list
            .items
            .into_iter()
            .filter_map(|mut o| {
                // List items may omit apiVersion/kind; fill them in so keys can be derived.
                o.types = Some(kube::api::TypeMeta {
                    api_version: api_version.into(),
                    kind: kind.into(),
                });
                serde_json::to_value(o).ok()
            })
            .collect())
    }

    /// Deletes the object if it exists and [`applied_by_us`]; returns whether a delete was sent.
    pub async fn delete_if_ours(&self, key: &ObjectKey, dry_run: bool) -> Result<bool, ApplyError> {
        let Some(live) = self.get(key).await? else {
            return Ok(false);
        };
        if !applied_by_us(&live) {
            return Ok(false);
        }
        let api = self.api(key)?;
        let params = DeleteParams {
            dry_run,
            ..DeleteParams::background()
        };
        match api.delete(&key.name, &params).await {
            Ok(_) => Ok(true),
            Err(kube::Error::Api(status)) if status.code == 404 => Ok(false),
            Err(source) => Err(ApplyError::Api {
                verb: "delete",
                key: key.clone(),
                source: Box::new(source),
            }),
        }
    }

    /// Merge-patches the object itself (as the field manager `drgitops`) and returns the live result.
    pub async fn merge_patch(&self, key: &ObjectKey, patch: &Value) -> Result<Value, ApplyError> {
        let api = self.api(key)?;
        let params = PatchParams {
            field_manager: Some(FIELD_MANAGER.into()),
            ..PatchParams::default()
        };
        let live = api
            .patch(&key.name, &params, &Patch::Merge(patch))
            .await
            .map_err(|source| ApplyError::Api {
                verb: "patch",
                key: key.clone(),
                source: Box::new(source),
            })?;
        serde_json::to_value(live).map_err(|e| ApplyError::Api {
            verb: "patch",
            key: key.clone(),
            source: Box::new(kube::Error::SerdeError(e)),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn ownership_needs_label_and_apply_entry() {
        let ours = json!({"metadata": {"labels": {MANAGED_BY: "drgitops"},
            "managedFields": [{"manager": "drgitops", "operation": "Apply", "fieldsV1": {}}]}});
        assert!(applied_by_us(&ours));
        let copied_label = json!({"metadata": {"labels": {MANAGED_BY: "drgitops"},
            "managedFields": [{"manager": "kubectl-client-side-apply", "operation": "Update"}]}});
        assert!(!applied_by_us(&copied_label));
        let unlabelled =
            json!({"metadata": {"managedFields": [{"manager": "drgitops", "operation": "Apply"}]}});
        assert!(!applied_by_us(&unlabelled));
    }

    #[test]
    fn field_ownership_by_others_is_found() {
        let live = json!({"metadata": {"managedFields": [
            {"manager": "drgitops", "operation": "Apply", "fieldsV1": {"f:spec": {"f:suspend": {}}}},
            {"manager": "stork", "operation": "Update", "fieldsV1": {"f:spec": {"f:suspend": {}}}},
            {"manager": "stork", "operation": "Update", "subresource": "status", "fieldsV1": {"f:status": {}}}
        ]}});
        assert!(owned_by_other_manager(&live, &["f:spec", "f:suspend"]));
        assert!(!owned_by_other_manager(&live, &["f:spec", "f:template"]));
        assert!(!owned_by_other_manager(&live, &["f:status"]));
    }

    #[test]
    fn apply_body_never_carries_status_or_server_metadata() {
        let body = apply_body(
            &json!({"kind": "ClusterPair", "metadata": {"name": "a", "resourceVersion": "3",
            "managedFields": []}, "spec": {}, "status": {"schedulerStatus": "Ready"}}),
        );
        assert_eq!(
            body,
            json!({"kind": "ClusterPair", "metadata": {"name": "a"}, "spec": {}})
        );
    }

    #[test]
    fn kinds_resolve_to_plurals() {
        let (resource, namespaced) =
            api_resource(STORK_API_VERSION, "MigrationSchedule").expect("known");
        assert_eq!(resource.plural, "migrationschedules");
        assert!(namespaced);
        assert!(api_resource("apps/v1", "Deployment").is_none());
    }
}
