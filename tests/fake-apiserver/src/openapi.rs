//! OpenAPI v3 documents: the `/openapi/v3` index and one document per group/version, with the PATCH operations
//! and `fieldValidation`/`dryRun` parameters kubectl's query-parameter verifier looks for before `apply` and
//! `--dry-run=server`.
//!
//! In: the served [`ResourceType`]s. Out: JSON documents. Pure.

use serde_json::{Map, Value, json};

use crate::discovery::hash;
use crate::resources::ResourceType;

fn gv_path(t: &ResourceType) -> String {
    if t.group.is_empty() {
        format!("api/{}", t.version)
    } else {
        format!("apis/{}/{}", t.group, t.version)
    }
}

fn schema_name(t: &ResourceType) -> String {
    if t.custom {
        let rev: Vec<&str> = t.group.split('.').rev().collect();
        format!("{}.{}.{}", rev.join("."), t.version, t.kind)
    } else {
        let g = if t.group.is_empty() {
            "core".to_string()
        } else {
            t.group.trim_end_matches(".k8s.io").replace('.', "")
        };
        format!("io.k8s.api.{g}.{}.{}", t.version, t.kind)
    }
}

/// The group/version paths served, each as `api/v1` or `apis/<g>/<v>`.
fn gv_paths(types: &[ResourceType]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for t in types {
        let p = gv_path(t);
        if !out.contains(&p) {
            out.push(p);
        }
    }
    out
}

/// `GET /openapi/v3`.
pub fn index(types: &[ResourceType]) -> Value {
    let mut paths = Map::new();
    for p in gv_paths(types) {
        let doc = document(types, &p).unwrap_or(Value::Null);
        let h = hash(&doc.to_string());
        paths.insert(
            p.clone(),
            json!({"serverRelativeURL": format!("/openapi/v3/{p}?hash={h:016X}")}),
        );
    }
    json!({"paths": paths})
}

fn param(name: &str) -> Value {
    json!({"name": name, "in": "query", "schema": {"type": "string", "uniqueItems": true}})
}

/// `GET /openapi/v3/<api/v1|apis/g/v>`, or None when that group/version is not served.
pub fn document(types: &[ResourceType], gv: &str) -> Option<Value> {
    let mine: Vec<&ResourceType> = types.iter().filter(|t| gv_path(t) == gv).collect();
    if mine.is_empty() {
        return None;
    }
    let mut paths = Map::new();
    let mut schemas = Map::new();
    for t in mine {
        let gvk = json!({"group": t.group, "version": t.version, "kind": t.kind});
        let name = schema_name(t);
        let reference = json!({"$ref": format!("#/components/schemas/{name}")});
        let ok = json!({"200": {"description": "OK", "content": {"application/json": {"schema": reference}}}});
        let base = if t.namespaced {
            format!("/{gv}/namespaces/{{namespace}}/{}", t.plural)
        } else {
            format!("/{gv}/{}", t.plural)
        };
        let op = |action: &str, params: &[&str]| {
            json!({
                "operationId": format!("{action}{}", t.kind),
                "parameters": params.iter().map(|p| param(p)).collect::<Vec<_>>(),
                "responses": ok,
                "x-kubernetes-action": action,
                "x-kubernetes-group-version-kind": gvk,
            })
        };
        paths.insert(
            base.clone(),
            json!({
                "get": op("list", &["labelSelector", "fieldSelector", "limit", "continue", "resourceVersion", "watch"]),
                "post": op("post", &["dryRun", "fieldManager", "fieldValidation"]),
            }),
        );
        paths.insert(
            format!("{base}/{{name}}"),
            json!({
                "get": op("get", &[]),
                "put": op("put", &["dryRun", "fieldManager", "fieldValidation"]),
                "patch": op("patch", &["dryRun", "fieldManager", "fieldValidation", "force"]),
                "delete": op("delete", &["dryRun", "gracePeriodSeconds", "propagationPolicy"]),
            }),
        );
        let mut schema = t
            .schema
            .clone()
            .unwrap_or_else(|| json!({"type": "object"}));
        if let Some(s) = schema.as_object_mut() {
            s.insert("x-kubernetes-group-version-kind".into(), json!([gvk]));
            s.entry("description").or_insert_with(|| {
                json!(format!("{} is served by the in-memory API server.", t.kind))
            });
        }
        schemas.insert(name, schema);
    }
    Some(json!({
        "openapi": "3.0.0",
        "info": {"title": "Kubernetes", "version": "v1.33.0"},
        "paths": paths,
        "components": {"schemas": schemas}
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resources::builtin_types;

    #[test]
    fn index_lists_core_and_apps() {
        let idx = index(&builtin_types());
        assert!(
            idx["paths"]["api/v1"]["serverRelativeURL"]
                .as_str()
                .unwrap()
                .starts_with("/openapi/v3/api/v1?hash=")
        );
        assert!(idx["paths"].get("apis/apps/v1").is_some());
    }

    #[test]
    fn patch_operations_carry_gvk_and_field_validation() {
        let doc = document(&builtin_types(), "apis/apps/v1").unwrap();
        let patch =
            &doc["paths"]["/apis/apps/v1/namespaces/{namespace}/deployments/{name}"]["patch"];
        assert_eq!(
            patch["x-kubernetes-group-version-kind"]["kind"],
            "Deployment"
        );
        assert!(
            patch["parameters"]
                .as_array()
                .unwrap()
                .iter()
                .any(|p| p["name"] == "fieldValidation")
        );
    }
}
