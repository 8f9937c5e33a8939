//! Server-side defaults and the few validations the real apiserver applies to the kinds the fake serves.
//!
//! In: an object about to be stored (JSON) and its [`ResourceType`]. Out: the defaulted object, or the field that
//! is invalid. Pure.

use serde_json::{Map, Value, json};

use crate::resources::ResourceType;

/// A field that fails validation: answered as 422 Invalid.
#[derive(Debug, Clone, PartialEq)]
pub struct FieldInvalid {
    pub field: String,
    /// e.g. `Invalid value: -1: must be greater than or equal to 0`
    pub detail: String,
    pub reason: String,
}

fn set_default(obj: &mut Value, path: &[&str], value: Value) {
    let mut cur = obj;
    for (i, p) in path.iter().enumerate() {
        let Some(map) = cur.as_object_mut() else {
            return;
        };
        if i == path.len() - 1 {
            if !map.contains_key(*p) || map.get(*p) == Some(&Value::Null) {
                map.insert((*p).to_string(), value);
            }
            return;
        }
        cur = map
            .entry((*p).to_string())
            .or_insert_with(|| Value::Object(Map::new()));
    }
}

fn default_pod_spec(spec: &mut Value) {
    if !spec.is_object() {
        return;
    }
    set_default(spec, &["restartPolicy"], json!("Always"));
    set_default(spec, &["terminationGracePeriodSeconds"], json!(30));
    set_default(spec, &["dnsPolicy"], json!("ClusterFirst"));
    set_default(spec, &["schedulerName"], json!("default-scheduler"));
    set_default(spec, &["securityContext"], json!({}));
    for list in ["containers", "initContainers"] {
        if let Some(cs) = spec.get_mut(list).and_then(Value::as_array_mut) {
            for c in cs {
                let image = c.get("image").and_then(Value::as_str).unwrap_or_default();
                let tag_latest = !image.contains('@')
                    && image
                        .rsplit('/')
                        .next()
                        .is_some_and(|last| !last.contains(':') || last.ends_with(":latest"));
                set_default(
                    c,
                    &["imagePullPolicy"],
                    json!(if tag_latest { "Always" } else { "IfNotPresent" }),
                );
                set_default(
                    c,
                    &["terminationMessagePath"],
                    json!("/dev/termination-log"),
                );
                set_default(c, &["terminationMessagePolicy"], json!("File"));
                set_default(c, &["resources"], json!({}));
                if let Some(ports) = c.get_mut("ports").and_then(Value::as_array_mut) {
                    for p in ports {
                        set_default(p, &["protocol"], json!("TCP"));
                    }
                }
            }
        }
    }
}

fn default_template(obj: &mut Value) {
    if let Some(spec) = obj.pointer_mut("/spec/template/spec") {
        default_pod_spec(spec);
    }
    if let Some(meta) = obj.pointer_mut("/spec/template/metadata")
        && meta.get("creationTimestamp").is_none()
        && let Some(m) = meta.as_object_mut()
    {
        m.insert("creationTimestamp".into(), Value::Null);
    }
}

/// Applies the defaults the apiserver sets for built-in kinds and the `default`s of a CRD schema.
pub fn apply_defaults(rt: &ResourceType, obj: &mut Value) {
    if let Some(schema) = &rt.schema {
        schema_defaults(schema, obj);
    }
    if rt.custom {
        return;
    }
    match (rt.group.as_str(), rt.kind.as_str()) {
        ("apps", "Deployment") => {
            set_default(obj, &["spec", "replicas"], json!(1));
            set_default(obj, &["spec", "strategy", "type"], json!("RollingUpdate"));
            if obj.pointer("/spec/strategy/type") == Some(&json!("RollingUpdate")) {
                set_default(
                    obj,
                    &["spec", "strategy", "rollingUpdate", "maxUnavailable"],
                    json!("25%"),
                );
                set_default(
                    obj,
                    &["spec", "strategy", "rollingUpdate", "maxSurge"],
                    json!("25%"),
                );
            }
            set_default(obj, &["spec", "revisionHistoryLimit"], json!(10));
            set_default(obj, &["spec", "progressDeadlineSeconds"], json!(600));
            default_template(obj);
        }
        ("apps", "StatefulSet") => {
            set_default(obj, &["spec", "replicas"], json!(1));
            set_default(obj, &["spec", "podManagementPolicy"], json!("OrderedReady"));
            set_default(
                obj,
                &["spec", "updateStrategy", "type"],
                json!("RollingUpdate"),
            );
            if obj.pointer("/spec/updateStrategy/type") == Some(&json!("RollingUpdate")) {
                set_default(
                    obj,
                    &["spec", "updateStrategy", "rollingUpdate", "partition"],
                    json!(0),
                );
            }
            set_default(obj, &["spec", "revisionHistoryLimit"], json!(10));
            set_default(
                obj,
                &["spec", "persistentVolumeClaimRetentionPolicy"],
                json!({"whenDeleted": "Retain", "whenScaled": "Retain"}),
            );
            default_template(obj);
        }
        ("apps", "ReplicaSet") => {
            set_default(obj, &["spec", "replicas"], json!(1));
            default_template(obj);
        }
        ("apps", "DaemonSet") => {
            set_default(obj, &["spec", "revisionHistoryLimit"], json!(10));
            default_template(obj);
        }
        ("batch", "CronJob") => {
            set_default(obj, &["spec", "concurrencyPolicy"], json!("Allow"));
            set_default(obj, &["spec", "suspend"], json!(false));
            set_default(obj, &["spec", "successfulJobsHistoryLimit"], json!(3));
            set_default(obj, &["spec", "failedJobsHistoryLimit"], json!(1));
            if let Some(spec) = obj.pointer_mut("/spec/jobTemplate/spec/template/spec") {
                default_pod_spec(spec);
            }
        }
        ("batch", "Job") => {
            if let Some(spec) = obj.pointer_mut("/spec/template/spec") {
                default_pod_spec(spec);
            }
        }
        ("", "Pod") => {
            if let Some(spec) = obj.get_mut("spec") {
                default_pod_spec(spec);
            }
        }
        ("", "Secret") => set_default(obj, &["type"], json!("Opaque")),
        ("", "Service") => {
            set_default(obj, &["spec", "type"], json!("ClusterIP"));
            set_default(obj, &["spec", "sessionAffinity"], json!("None"));
            if let Some(ports) = obj.pointer_mut("/spec/ports").and_then(Value::as_array_mut) {
                for p in ports {
                    set_default(p, &["protocol"], json!("TCP"));
                    if let Some(port) = p.get("port").cloned() {
                        set_default(p, &["targetPort"], port);
                    }
                }
            }
        }
        ("", "Namespace") => {
            let name = obj
                .pointer("/metadata/name")
                .cloned()
                .unwrap_or(Value::Null);
            set_default(
                obj,
                &["metadata", "labels", "kubernetes.io/metadata.name"],
                name,
            );
            set_default(obj, &["spec", "finalizers"], json!(["kubernetes"]));
            set_default(obj, &["status", "phase"], json!("Active"));
        }
        ("storage.k8s.io", "StorageClass") => {
            set_default(obj, &["reclaimPolicy"], json!("Delete"));
            set_default(obj, &["volumeBindingMode"], json!("Immediate"));
        }
        ("admissionregistration.k8s.io", kind) => {
            let mutating = kind == "MutatingWebhookConfiguration";
            if let Some(hooks) = obj.get_mut("webhooks").and_then(Value::as_array_mut) {
                for h in hooks {
                    set_default(h, &["failurePolicy"], json!("Fail"));
                    set_default(h, &["matchPolicy"], json!("Equivalent"));
                    set_default(h, &["namespaceSelector"], json!({}));
                    set_default(h, &["objectSelector"], json!({}));
                    set_default(h, &["timeoutSeconds"], json!(10));
                    if mutating {
                        set_default(h, &["reinvocationPolicy"], json!("Never"));
                    }
                    if let Some(port) = h.pointer_mut("/clientConfig/service") {
                        set_default(port, &["port"], json!(443));
                    }
                    if let Some(rules) = h.get_mut("rules").and_then(Value::as_array_mut) {
                        for r in rules {
                            set_default(r, &["scope"], json!("*"));
                        }
                    }
                }
            }
        }
        ("apiextensions.k8s.io", "CustomResourceDefinition") => {
            let kind = obj
                .pointer("/spec/names/kind")
                .and_then(Value::as_str)
                .map(str::to_lowercase);
            if let Some(k) = kind {
                set_default(obj, &["spec", "names", "singular"], json!(k));
            }
            let list = obj
                .pointer("/spec/names/kind")
                .and_then(Value::as_str)
                .map(|k| format!("{k}List"));
            if let Some(l) = list {
                set_default(obj, &["spec", "names", "listKind"], json!(l));
            }
            set_default(obj, &["spec", "conversion"], json!({"strategy": "None"}));
        }
        _ => {}
    }
}

/// Fills `default`s from an OpenAPI v3 schema into absent fields, recursing into present objects and arrays.
pub fn schema_defaults(schema: &Value, obj: &mut Value) {
    if let (Some(props), Some(map)) = (
        schema.get("properties").and_then(Value::as_object),
        obj.as_object_mut(),
    ) {
        for (name, sub) in props {
            if !map.contains_key(name)
                && let Some(d) = sub.get("default")
            {
                map.insert(name.clone(), d.clone());
            }
            if let Some(child) = map.get_mut(name) {
                schema_defaults(sub, child);
            }
        }
    }
    if let (Some(items), Some(arr)) = (schema.get("items"), obj.as_array_mut()) {
        for el in arr {
            schema_defaults(items, el);
        }
    }
    if let (Some(extra), Some(map)) = (
        schema.get("additionalProperties").filter(|a| a.is_object()),
        obj.as_object_mut(),
    ) {
        for v in map.values_mut() {
            schema_defaults(extra, v);
        }
    }
}

/// Removes fields a structural CRD schema does not declare, as the apiserver prunes custom resources; returns
/// the removed paths (`spec.foo`) for `fieldValidation` warnings or errors. `x-kubernetes-preserve-unknown-fields`
/// and `additionalProperties` keep unknown members; `apiVersion`, `kind` and `metadata` are never pruned at the
/// root or in `x-kubernetes-embedded-resource` objects.
pub fn prune(schema: &Value, obj: &mut Value) -> Vec<String> {
    let mut removed = Vec::new();
    prune_at(schema, obj, "", true, &mut removed);
    removed
}

fn prune_at(schema: &Value, obj: &mut Value, path: &str, root: bool, removed: &mut Vec<String>) {
    let preserve = schema
        .get("x-kubernetes-preserve-unknown-fields")
        .and_then(Value::as_bool)
        == Some(true);
    let join = |k: &str| {
        if path.is_empty() {
            k.to_string()
        } else {
            format!("{path}.{k}")
        }
    };
    match obj {
        Value::Object(map) => {
            let props = schema.get("properties").and_then(Value::as_object);
            let additional = schema.get("additionalProperties").filter(|a| a.is_object());
            let keys: Vec<String> = map.keys().cloned().collect();
            for k in keys {
                if root && matches!(k.as_str(), "apiVersion" | "kind" | "metadata") {
                    continue;
                }
                let sub = props.and_then(|p| p.get(&k)).or(additional);
                match sub {
                    Some(sub) => {
                        // Embedded objects keep apiVersion, kind and metadata like the root does.
                        let embedded = sub
                            .get("x-kubernetes-embedded-resource")
                            .and_then(Value::as_bool)
                            == Some(true);
                        if let Some(child) = map.get_mut(&k) {
                            prune_at(sub, child, &join(&k), embedded, removed);
                        }
                    }
                    None if preserve
                        || schema.get("additionalProperties") == Some(&Value::Bool(true)) => {}
                    None => {
                        map.remove(&k);
                        removed.push(join(&k));
                    }
                }
            }
        }
        Value::Array(items) => {
            if let Some(item_schema) = schema.get("items") {
                for (i, item) in items.iter_mut().enumerate() {
                    prune_at(item_schema, item, &format!("{path}[{i}]"), false, removed);
                }
            }
        }
        _ => {}
    }
}

/// The status a workload controller would report once every replica is ready: for servers started with
/// `simulate_workloads`, where no controller runs but tools wait on readiness (`kubectl rollout status`,
/// `kubectl wait --for=condition=Available`). Zero counts are left out, as Go's JSON does.
pub fn simulated_workload_status(kind: &str, obj: &Value, now: &str) -> Value {
    let replicas = obj
        .pointer("/spec/replicas")
        .and_then(Value::as_i64)
        .unwrap_or(1);
    let mut status = Map::new();
    if let Some(g) = obj.pointer("/metadata/generation") {
        status.insert("observedGeneration".into(), g.clone());
    }
    if replicas > 0 {
        let mut counts = vec!["replicas", "readyReplicas", "availableReplicas"];
        match kind {
            "Deployment" => counts.push("updatedReplicas"),
            "StatefulSet" => counts.extend(["currentReplicas", "updatedReplicas"]),
            _ => counts.push("fullyLabeledReplicas"),
        }
        for c in counts {
            status.insert(c.into(), json!(replicas));
        }
    }
    if kind == "Deployment" {
        status.insert(
            "conditions".into(),
            json!([
                {"type": "Available", "status": "True", "reason": "MinimumReplicasAvailable",
                 "message": "Deployment has minimum availability.", "lastUpdateTime": now, "lastTransitionTime": now},
                {"type": "Progressing", "status": "True", "reason": "NewReplicaSetAvailable",
                 "message": "ReplicaSet has successfully progressed.", "lastUpdateTime": now, "lastTransitionTime": now}
            ]),
        );
    }
    Value::Object(status)
}

fn is_dns_subdomain(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 253
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '.')
        && name.starts_with(|c: char| c.is_ascii_alphanumeric())
        && name.ends_with(|c: char| c.is_ascii_alphanumeric())
}

/// The validations the fake enforces: object names and non-negative replica counts.
pub fn validate(rt: &ResourceType, obj: &Value) -> Result<(), FieldInvalid> {
    let name = obj
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or_default();
    // Events are named `<object>.<hex>`; every other kind must be a DNS subdomain.
    if !is_dns_subdomain(name) {
        return Err(FieldInvalid {
            field: "metadata.name".into(),
            detail: format!(
                "Invalid value: {name:?}: a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character"
            ),
            reason: "FieldValueInvalid".into(),
        });
    }
    if let Some(scale) = &rt.scale {
        let pointer = format!(
            "/{}",
            scale
                .spec_replicas
                .trim_start_matches('.')
                .replace('.', "/")
        );
        if let Some(r) = obj.pointer(&pointer).and_then(Value::as_i64)
            && r < 0
        {
            return Err(FieldInvalid {
                field: scale.spec_replicas.trim_start_matches('.').to_string(),
                detail: format!("Invalid value: {r}: must be greater than or equal to 0"),
                reason: "FieldValueInvalid".into(),
            });
        }
    }
    if !rt.custom
        && rt.group == "apps"
        && rt.kind != "DaemonSet"
        && obj.pointer("/spec/selector").is_none()
    {
        return Err(FieldInvalid {
            field: "spec.selector".into(),
            detail: "Required value".into(),
            reason: "FieldValueRequired".into(),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resources::builtin_types;

    fn rt(kind: &str) -> ResourceType {
        builtin_types()
            .into_iter()
            .find(|t| t.kind == kind)
            .unwrap()
    }

    #[test]
    fn deployment_defaults_match_a_real_cluster() {
        let mut d = json!({"metadata": {"name": "web"}, "spec": {"selector": {}, "template": {"spec": {"containers": [{"name": "c", "image": "nginx:1.27", "ports": [{"containerPort": 80}]}]}}}});
        apply_defaults(&rt("Deployment"), &mut d);
        assert_eq!(d["spec"]["replicas"], 1);
        assert_eq!(d["spec"]["strategy"]["rollingUpdate"]["maxSurge"], "25%");
        assert_eq!(d["spec"]["revisionHistoryLimit"], 10);
        assert_eq!(d["spec"]["progressDeadlineSeconds"], 600);
        let c = &d["spec"]["template"]["spec"]["containers"][0];
        assert_eq!(c["imagePullPolicy"], "IfNotPresent");
        assert_eq!(c["ports"][0]["protocol"], "TCP");
    }

    #[test]
    fn storageclass_defaults() {
        let mut s = json!({"metadata": {"name": "fast"}, "provisioner": "x"});
        apply_defaults(&rt("StorageClass"), &mut s);
        assert_eq!(s["reclaimPolicy"], "Delete");
        assert_eq!(s["volumeBindingMode"], "Immediate");
    }

    #[test]
    fn negative_replicas_are_invalid() {
        let d = json!({"metadata": {"name": "web"}, "spec": {"replicas": -1, "selector": {}}});
        let e = validate(&rt("Deployment"), &d).unwrap_err();
        assert_eq!(e.field, "spec.replicas");
        assert_eq!(
            e.detail,
            "Invalid value: -1: must be greater than or equal to 0"
        );
    }

    #[test]
    fn pruning_drops_undeclared_fields_unless_preserved() {
        let schema = json!({"type": "object", "properties": {
            "spec": {"type": "object", "properties": {"size": {"type": "integer"},
                "free": {"type": "object", "x-kubernetes-preserve-unknown-fields": true},
                "labels": {"type": "object", "additionalProperties": {"type": "string"}},
                "items": {"type": "array", "items": {"type": "object", "properties": {"n": {"type": "string"}}}}}}}});
        let mut o = json!({"apiVersion": "x/v1", "kind": "X", "metadata": {"name": "a"},
            "spec": {"size": 1, "extra": true, "free": {"anything": 1}, "labels": {"a": "b"}, "items": [{"n": "x", "m": 1}]},
            "other": 1});
        let removed = prune(&schema, &mut o);
        assert_eq!(removed, ["spec.extra", "spec.items[0].m", "other"]);
        assert_eq!(o["spec"]["free"]["anything"], 1);
        assert_eq!(o["spec"]["labels"]["a"], "b");
        assert_eq!(o["metadata"]["name"], "a");
    }

    #[test]
    fn schema_defaults_fill_nested_fields() {
        let schema = json!({"type": "object", "properties": {"spec": {"type": "object", "properties": {"size": {"type": "integer", "default": 3}}}}});
        let mut o = json!({"spec": {}});
        schema_defaults(&schema, &mut o);
        assert_eq!(o["spec"]["size"], 3);
    }
}
