//! The registry of served resource types: the built-in kinds the project needs and every version of every
//! established CustomResourceDefinition.
//!
//! In: CRD objects (JSON, as stored). Out: [`ResourceType`] descriptions that routing, discovery, OpenAPI and
//! defaulting read. Pure: no IO.

use serde_json::{Value, json};

/// Where the replica count and selector of a kind live, for the `scale` subresource.
#[derive(Debug, Clone, PartialEq)]
pub struct ScalePaths {
    /// JSON path like `.spec.replicas`.
    pub spec_replicas: String,
    /// JSON path like `.status.replicas`.
    pub status_replicas: String,
    /// JSON path like `.status.selector` (a string) — `None` when the kind has none.
    pub label_selector: Option<String>,
    /// Built-in workloads keep their selector as a `LabelSelector` under `.spec.selector`.
    pub selector_is_label_selector: bool,
}

/// One served `group/version/plural`.
#[derive(Debug, Clone)]
pub struct ResourceType {
    pub group: String,
    pub version: String,
    pub kind: String,
    pub plural: String,
    pub singular: String,
    pub namespaced: bool,
    pub short_names: Vec<String>,
    pub categories: Vec<String>,
    /// Has a `/status` subresource: main-resource writes keep status, `/status` writes change only status.
    pub status: bool,
    pub scale: Option<ScalePaths>,
    /// Served from a CustomResourceDefinition (PUT needs a resourceVersion, no strategic merge patch).
    pub custom: bool,
    /// Whether objects carry `metadata.generation`.
    pub generation: bool,
    /// Whether this version is the storage version (objects are stored in it).
    pub storage: bool,
    /// CRD `additionalPrinterColumns` (for Table responses).
    pub printer_columns: Vec<Value>,
    /// CRD `openAPIV3Schema` (for OpenAPI documents and schema defaults).
    pub schema: Option<Value>,
    /// Names of fields (besides metadata.name/namespace) usable in field selectors.
    pub selectable_fields: Vec<String>,
}

impl ResourceType {
    /// `apps/v1` or `v1`.
    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.clone()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }

    /// `deployments.apps` or `configmaps`: how error messages name the resource.
    pub fn qualified_plural(&self) -> String {
        if self.group.is_empty() {
            self.plural.clone()
        } else {
            format!("{}.{}", self.plural, self.group)
        }
    }

    /// `Deployment.apps` or `ConfigMap`: how validation errors name the kind.
    pub fn qualified_kind(&self) -> String {
        if self.group.is_empty() {
            self.kind.clone()
        } else {
            format!("{}.{}", self.kind, self.group)
        }
    }

    /// `apps/Deployment` or `/ConfigMap`, the key patch.rs and ssa.rs take.
    pub fn group_kind(&self) -> String {
        format!("{}/{}", self.group, self.kind)
    }

    /// The key objects are stored under: `events.k8s.io` Events share the core Events' storage.
    pub fn store_key(&self) -> (String, String) {
        if self.group == "events.k8s.io" && self.plural == "events" {
            (String::new(), self.plural.clone())
        } else {
            (self.group.clone(), self.plural.clone())
        }
    }

    /// The verbs served on the main resource.
    pub fn verbs(&self) -> Vec<&'static str> {
        vec![
            "create",
            "delete",
            "deletecollection",
            "get",
            "list",
            "patch",
            "update",
            "watch",
        ]
    }
}

struct Builtin {
    group: &'static str,
    version: &'static str,
    kind: &'static str,
    plural: &'static str,
    namespaced: bool,
    short: &'static [&'static str],
    categories: &'static [&'static str],
    status: bool,
    scale: bool,
    generation: bool,
    fields: &'static [&'static str],
}

const BUILTINS: &[Builtin] = &[
    Builtin {
        group: "",
        version: "v1",
        kind: "Namespace",
        plural: "namespaces",
        namespaced: false,
        short: &["ns"],
        categories: &[],
        status: true,
        scale: false,
        generation: false,
        fields: &["status.phase"],
    },
    Builtin {
        group: "",
        version: "v1",
        kind: "ConfigMap",
        plural: "configmaps",
        namespaced: true,
        short: &["cm"],
        categories: &[],
        status: false,
        scale: false,
        generation: false,
        fields: &[],
    },
    Builtin {
        group: "",
        version: "v1",
        kind: "Secret",
        plural: "secrets",
        namespaced: true,
        short: &[],
        categories: &[],
        status: false,
        scale: false,
        generation: false,
        fields: &["type"],
    },
    Builtin {
        group: "",
        version: "v1",
        kind: "ServiceAccount",
        plural: "serviceaccounts",
        namespaced: true,
        short: &["sa"],
        categories: &[],
        status: false,
        scale: false,
        generation: false,
        fields: &[],
    },
    Builtin {
        group: "",
        version: "v1",
        kind: "Service",
        plural: "services",
        namespaced: true,
        short: &["svc"],
        categories: &["all"],
        status: true,
        scale: false,
        generation: false,
        fields: &["spec.clusterIP", "spec.type"],
    },
    Builtin {
        group: "",
        version: "v1",
        kind: "Pod",
        plural: "pods",
        namespaced: true,
        short: &["po"],
        categories: &["all"],
        status: true,
        scale: false,
        generation: false,
        fields: &[
            "spec.nodeName",
            "spec.restartPolicy",
            "spec.schedulerName",
            "spec.serviceAccountName",
            "status.phase",
            "status.podIP",
            "status.nominatedNodeName",
        ],
    },
    Builtin {
        group: "",
        version: "v1",
        kind: "PersistentVolumeClaim",
        plural: "persistentvolumeclaims",
        namespaced: true,
        short: &["pvc"],
        categories: &[],
        status: true,
        scale: false,
        generation: false,
        fields: &[],
    },
    Builtin {
        group: "",
        version: "v1",
        kind: "Event",
        plural: "events",
        namespaced: true,
        short: &["ev"],
        categories: &[],
        status: false,
        scale: false,
        generation: false,
        fields: &[
            "involvedObject.kind",
            "involvedObject.namespace",
            "involvedObject.name",
            "involvedObject.uid",
            "involvedObject.apiVersion",
            "involvedObject.resourceVersion",
            "involvedObject.fieldPath",
            "reason",
            "reportingComponent",
            "source",
            "type",
        ],
    },
    Builtin {
        group: "events.k8s.io",
        version: "v1",
        kind: "Event",
        plural: "events",
        namespaced: true,
        short: &["ev"],
        categories: &[],
        status: false,
        scale: false,
        generation: false,
        fields: &[
            "regarding.kind",
            "regarding.namespace",
            "regarding.name",
            "regarding.uid",
            "regarding.apiVersion",
            "reason",
            "reportingController",
            "type",
        ],
    },
    Builtin {
        group: "apps",
        version: "v1",
        kind: "Deployment",
        plural: "deployments",
        namespaced: true,
        short: &["deploy"],
        categories: &["all"],
        status: true,
        scale: true,
        generation: true,
        fields: &[],
    },
    Builtin {
        group: "apps",
        version: "v1",
        kind: "StatefulSet",
        plural: "statefulsets",
        namespaced: true,
        short: &["sts"],
        categories: &["all"],
        status: true,
        scale: true,
        generation: true,
        fields: &[],
    },
    Builtin {
        group: "apps",
        version: "v1",
        kind: "ReplicaSet",
        plural: "replicasets",
        namespaced: true,
        short: &["rs"],
        categories: &["all"],
        status: true,
        scale: true,
        generation: true,
        fields: &[],
    },
    Builtin {
        group: "apps",
        version: "v1",
        kind: "DaemonSet",
        plural: "daemonsets",
        namespaced: true,
        short: &["ds"],
        categories: &["all"],
        status: true,
        scale: false,
        generation: true,
        fields: &[],
    },
    Builtin {
        group: "batch",
        version: "v1",
        kind: "CronJob",
        plural: "cronjobs",
        namespaced: true,
        short: &["cj"],
        categories: &["all"],
        status: true,
        scale: false,
        generation: true,
        fields: &[],
    },
    Builtin {
        group: "batch",
        version: "v1",
        kind: "Job",
        plural: "jobs",
        namespaced: true,
        short: &[],
        categories: &["all"],
        status: true,
        scale: false,
        generation: true,
        fields: &[],
    },
    Builtin {
        group: "storage.k8s.io",
        version: "v1",
        kind: "StorageClass",
        plural: "storageclasses",
        namespaced: false,
        short: &["sc"],
        categories: &[],
        status: false,
        scale: false,
        generation: false,
        fields: &[],
    },
    Builtin {
        group: "coordination.k8s.io",
        version: "v1",
        kind: "Lease",
        plural: "leases",
        namespaced: true,
        short: &[],
        categories: &[],
        status: false,
        scale: false,
        generation: false,
        fields: &[],
    },
    Builtin {
        group: "apiextensions.k8s.io",
        version: "v1",
        kind: "CustomResourceDefinition",
        plural: "customresourcedefinitions",
        namespaced: false,
        short: &["crd", "crds"],
        categories: &["api-extensions"],
        status: true,
        scale: false,
        generation: true,
        fields: &[],
    },
    Builtin {
        group: "admissionregistration.k8s.io",
        version: "v1",
        kind: "MutatingWebhookConfiguration",
        plural: "mutatingwebhookconfigurations",
        namespaced: false,
        short: &[],
        categories: &["api-extensions"],
        status: false,
        scale: false,
        generation: true,
        fields: &[],
    },
    Builtin {
        group: "admissionregistration.k8s.io",
        version: "v1",
        kind: "ValidatingWebhookConfiguration",
        plural: "validatingwebhookconfigurations",
        namespaced: false,
        short: &[],
        categories: &["api-extensions"],
        status: false,
        scale: false,
        generation: true,
        fields: &[],
    },
    Builtin {
        group: "rbac.authorization.k8s.io",
        version: "v1",
        kind: "Role",
        plural: "roles",
        namespaced: true,
        short: &[],
        categories: &[],
        status: false,
        scale: false,
        generation: false,
        fields: &[],
    },
    Builtin {
        group: "rbac.authorization.k8s.io",
        version: "v1",
        kind: "RoleBinding",
        plural: "rolebindings",
        namespaced: true,
        short: &[],
        categories: &[],
        status: false,
        scale: false,
        generation: false,
        fields: &[],
    },
    Builtin {
        group: "rbac.authorization.k8s.io",
        version: "v1",
        kind: "ClusterRole",
        plural: "clusterroles",
        namespaced: false,
        short: &[],
        categories: &[],
        status: false,
        scale: false,
        generation: false,
        fields: &[],
    },
    Builtin {
        group: "rbac.authorization.k8s.io",
        version: "v1",
        kind: "ClusterRoleBinding",
        plural: "clusterrolebindings",
        namespaced: false,
        short: &[],
        categories: &[],
        status: false,
        scale: false,
        generation: false,
        fields: &[],
    },
    Builtin {
        group: "policy",
        version: "v1",
        kind: "PodDisruptionBudget",
        plural: "poddisruptionbudgets",
        namespaced: true,
        short: &["pdb"],
        categories: &[],
        status: true,
        scale: false,
        generation: true,
        fields: &[],
    },
    Builtin {
        group: "networking.k8s.io",
        version: "v1",
        kind: "NetworkPolicy",
        plural: "networkpolicies",
        namespaced: true,
        short: &["netpol"],
        categories: &[],
        status: false,
        scale: false,
        generation: false,
        fields: &[],
    },
    Builtin {
        group: "",
        version: "v1",
        kind: "PersistentVolume",
        plural: "persistentvolumes",
        namespaced: false,
        short: &["pv"],
        categories: &[],
        status: true,
        scale: false,
        generation: false,
        fields: &[],
    },
    Builtin {
        group: "",
        version: "v1",
        kind: "Endpoints",
        plural: "endpoints",
        namespaced: true,
        short: &["ep"],
        categories: &[],
        status: false,
        scale: false,
        generation: false,
        fields: &[],
    },
];

/// The built-in kinds every fake server serves.
pub fn builtin_types() -> Vec<ResourceType> {
    BUILTINS
        .iter()
        .map(|b| ResourceType {
            group: b.group.to_string(),
            version: b.version.to_string(),
            kind: b.kind.to_string(),
            plural: b.plural.to_string(),
            singular: b.kind.to_lowercase(),
            namespaced: b.namespaced,
            short_names: b.short.iter().map(|s| s.to_string()).collect(),
            categories: b.categories.iter().map(|s| s.to_string()).collect(),
            status: b.status,
            scale: b.scale.then(|| ScalePaths {
                spec_replicas: ".spec.replicas".into(),
                status_replicas: ".status.replicas".into(),
                label_selector: Some(".spec.selector".into()),
                selector_is_label_selector: true,
            }),
            custom: false,
            generation: b.generation,
            storage: true,
            printer_columns: Vec::new(),
            schema: None,
            selectable_fields: b.fields.iter().map(|s| s.to_string()).collect(),
        })
        .collect()
}

/// Why a CustomResourceDefinition cannot be served.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum CrdError {
    #[error("{field}: Required value: {what}")]
    Required { field: String, what: String },
    #[error("{field}: Invalid value: {value:?}: {why}")]
    Invalid {
        field: String,
        value: String,
        why: String,
    },
}

impl CrdError {
    /// The field path the error is about.
    pub fn field(&self) -> &str {
        match self {
            CrdError::Required { field, .. } | CrdError::Invalid { field, .. } => field,
        }
    }
}

fn str_at<'a>(v: &'a Value, path: &[&str]) -> Option<&'a str> {
    let mut cur = v;
    for p in path {
        cur = cur.get(p)?;
    }
    cur.as_str()
}

/// Checks a CRD the way the apiserver's validation does for the parts the fake relies on.
pub fn validate_crd(crd: &Value) -> Result<(), CrdError> {
    let name = str_at(crd, &["metadata", "name"]).unwrap_or_default();
    let group = str_at(crd, &["spec", "group"]).unwrap_or_default();
    let plural = str_at(crd, &["spec", "names", "plural"]).unwrap_or_default();
    if group.is_empty() {
        return Err(CrdError::Required {
            field: "spec.group".into(),
            what: "the API group of the custom resources".into(),
        });
    }
    if plural.is_empty() {
        return Err(CrdError::Required {
            field: "spec.names.plural".into(),
            what: "the plural resource name".into(),
        });
    }
    if str_at(crd, &["spec", "names", "kind"])
        .unwrap_or_default()
        .is_empty()
    {
        return Err(CrdError::Required {
            field: "spec.names.kind".into(),
            what: "the kind of the custom resources".into(),
        });
    }
    if name != format!("{plural}.{group}") {
        return Err(CrdError::Invalid {
            field: "metadata.name".into(),
            value: name.to_string(),
            why: "must be spec.names.plural+\".\"+spec.group".into(),
        });
    }
    match str_at(crd, &["spec", "scope"]) {
        Some("Namespaced") | Some("Cluster") => {}
        other => {
            return Err(CrdError::Invalid {
                field: "spec.scope".into(),
                value: other.unwrap_or_default().to_string(),
                why: "supported values: \"Cluster\", \"Namespaced\"".into(),
            });
        }
    }
    let versions = crd
        .pointer("/spec/versions")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    if versions.is_empty() {
        return Err(CrdError::Required {
            field: "spec.versions".into(),
            what: "must have exactly one version marked as storage version".into(),
        });
    }
    let storage = versions
        .iter()
        .filter(|v| v.get("storage").and_then(Value::as_bool) == Some(true))
        .count();
    if storage != 1 {
        return Err(CrdError::Invalid {
            field: "spec.versions".into(),
            value: format!("{storage} storage versions"),
            why: "must have exactly one version marked as storage version".into(),
        });
    }
    Ok(())
}

/// The resource types a (validated) CRD serves, one per served version.
pub fn crd_types(crd: &Value) -> Vec<ResourceType> {
    let group = str_at(crd, &["spec", "group"])
        .unwrap_or_default()
        .to_string();
    let names = crd.pointer("/spec/names").cloned().unwrap_or(Value::Null);
    let kind = str_at(&names, &["kind"]).unwrap_or_default().to_string();
    let plural = str_at(&names, &["plural"]).unwrap_or_default().to_string();
    let singular = str_at(&names, &["singular"])
        .map(str::to_string)
        .unwrap_or_else(|| kind.to_lowercase());
    let list_strings = |key: &str| -> Vec<String> {
        names
            .get(key)
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(|s| s.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default()
    };
    let namespaced = str_at(crd, &["spec", "scope"]) != Some("Cluster");
    let versions = crd
        .pointer("/spec/versions")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    versions
        .iter()
        .filter(|v| v.get("served").and_then(Value::as_bool) != Some(false))
        .map(|v| {
            let sub = v.get("subresources");
            let scale = sub.and_then(|s| s.get("scale")).map(|s| ScalePaths {
                spec_replicas: str_at(s, &["specReplicasPath"])
                    .unwrap_or(".spec.replicas")
                    .to_string(),
                status_replicas: str_at(s, &["statusReplicasPath"])
                    .unwrap_or(".status.replicas")
                    .to_string(),
                label_selector: str_at(s, &["labelSelectorPath"]).map(str::to_string),
                selector_is_label_selector: false,
            });
            ResourceType {
                group: group.clone(),
                version: str_at(v, &["name"]).unwrap_or_default().to_string(),
                kind: kind.clone(),
                plural: plural.clone(),
                singular: singular.clone(),
                namespaced,
                short_names: list_strings("shortNames"),
                categories: list_strings("categories"),
                status: sub.and_then(|s| s.get("status")).is_some(),
                scale,
                custom: true,
                generation: true,
                storage: v.get("storage").and_then(Value::as_bool) == Some(true),
                printer_columns: v
                    .get("additionalPrinterColumns")
                    .and_then(Value::as_array)
                    .cloned()
                    .unwrap_or_default(),
                schema: v.pointer("/schema/openAPIV3Schema").cloned(),
                selectable_fields: v
                    .get("selectableFields")
                    .and_then(Value::as_array)
                    .map(|a| {
                        a.iter()
                            .filter_map(|f| f.get("jsonPath").and_then(Value::as_str))
                            .map(|p| p.trim_start_matches('.').to_string())
                            .collect()
                    })
                    .unwrap_or_default(),
            }
        })
        .collect()
}

/// The status a CRD gets at once on creation/update: names accepted, established, stored versions.
pub fn crd_status(crd: &Value, now: &str) -> Value {
    let mut accepted = crd
        .pointer("/spec/names")
        .cloned()
        .unwrap_or_else(|| json!({}));
    if accepted.get("singular").is_none() {
        let kind = str_at(&accepted, &["kind"])
            .unwrap_or_default()
            .to_lowercase();
        accepted["singular"] = json!(kind);
    }
    if accepted.get("listKind").is_none() {
        let kind = str_at(&accepted, &["kind"]).unwrap_or_default().to_string();
        accepted["listKind"] = json!(format!("{kind}List"));
    }
    let mut stored: Vec<Value> = crd
        .pointer("/status/storedVersions")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    if let Some(v) = crd
        .pointer("/spec/versions")
        .and_then(Value::as_array)
        .and_then(|vs| {
            vs.iter()
                .find(|v| v.get("storage").and_then(Value::as_bool) == Some(true))
        })
        .and_then(|v| v.get("name"))
        && !stored.contains(v)
    {
        stored.push(v.clone());
    }
    json!({
        "acceptedNames": accepted,
        "conditions": [
            {"type": "NamesAccepted", "status": "True", "lastTransitionTime": now,
             "reason": "NoConflicts", "message": "no conflicts found"},
            {"type": "Established", "status": "True", "lastTransitionTime": now,
             "reason": "InitialNamesAccepted", "message": "the initial names have been accepted"}
        ],
        "storedVersions": stored
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn crd() -> Value {
        json!({
            "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
            "metadata": {"name": "widgets.example.com"},
            "spec": {"group": "example.com", "scope": "Namespaced",
                "names": {"kind": "Widget", "plural": "widgets", "shortNames": ["wd"]},
                "versions": [{"name": "v1", "served": true, "storage": true,
                    "subresources": {"status": {}, "scale": {"specReplicasPath": ".spec.size", "statusReplicasPath": ".status.size"}},
                    "schema": {"openAPIV3Schema": {"type": "object"}}}]}
        })
    }

    #[test]
    fn crd_serves_its_versions_with_subresources() {
        let types = crd_types(&crd());
        assert_eq!(types.len(), 1);
        assert_eq!(types[0].api_version(), "example.com/v1");
        assert!(types[0].status);
        assert_eq!(
            types[0].scale.as_ref().map(|s| s.spec_replicas.as_str()),
            Some(".spec.size")
        );
        assert_eq!(types[0].short_names, vec!["wd"]);
    }

    #[test]
    fn crd_name_must_be_plural_dot_group() {
        let mut c = crd();
        c["metadata"]["name"] = json!("widget.example.com");
        assert_eq!(
            validate_crd(&c).map_err(|e| e.field().to_string()),
            Err("metadata.name".into())
        );
        assert_eq!(validate_crd(&crd()), Ok(()));
    }

    #[test]
    fn crd_status_is_established_with_list_kind() {
        let s = crd_status(&crd(), "2026-01-01T00:00:00Z");
        assert_eq!(s["acceptedNames"]["listKind"], "WidgetList");
        assert_eq!(s["conditions"][1]["type"], "Established");
        assert_eq!(s["storedVersions"], json!(["v1"]));
    }
}
