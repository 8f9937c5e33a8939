//! `meta.k8s.io/v1 Table` responses, which `kubectl get` asks for first: the columns kube-apiserver prints for
//! the built-in kinds, a CRD's `additionalPrinterColumns`, and Name/Age for everything else.
//!
//! In: the resource type, objects, and the current time. Out: Table JSON whose rows carry
//! `PartialObjectMetadata`. Pure.

use serde_json::{Value, json};

use crate::resources::ResourceType;
use crate::selectors::LabelSelector;

/// A column: name, type, and how to compute its cell.
struct Column {
    name: String,
    kind: &'static str,
    format: &'static str,
    description: String,
    priority: i64,
    cell: Cell,
}

enum Cell {
    Name,
    Age,
    /// An Event's most recent occurrence.
    LastSeen,
    JsonPath(String, String),
    Builtin(fn(&Value) -> Value),
}

/// Kubernetes' `duration.HumanDuration`: `45s`, `3m20s`, `15m`, `5h3m`, `3d4h`, `200d`, `3y`.
pub fn human_duration(secs: i64) -> String {
    let s = secs.max(0);
    let (m, h, d) = (s / 60, s / 3600, s / 86400);
    if s < 120 {
        format!("{s}s")
    } else if m < 10 {
        if s % 60 == 0 {
            format!("{m}m")
        } else {
            format!("{m}m{}s", s % 60)
        }
    } else if h < 3 {
        format!("{m}m")
    } else if h < 8 {
        if m % 60 == 0 {
            format!("{h}h")
        } else {
            format!("{h}h{}m", m % 60)
        }
    } else if h < 48 {
        format!("{h}h")
    } else if h < 24 * 8 {
        if h % 24 == 0 {
            format!("{d}d")
        } else {
            format!("{d}d{}h", h % 24)
        }
    } else if h < 24 * 365 * 2 {
        format!("{d}d")
    } else if h < 24 * 365 * 8 {
        let y = d / 365;
        if d % 365 == 0 {
            format!("{y}y")
        } else {
            format!("{y}y{}d", d % 365)
        }
    } else {
        format!("{}y", d / 365)
    }
}

fn age_of(ts: Option<&str>, now: jiff::Timestamp) -> Value {
    match ts.and_then(|t| t.parse::<jiff::Timestamp>().ok()) {
        Some(t) => json!(human_duration(now.as_second() - t.as_second())),
        None => json!("<unknown>"),
    }
}

/// Evaluates the JSONPath subset CRD printer columns use: `.a.b`, `.a[0]`, `.a[?(@.type=="Ready")].status`.
pub fn json_path<'a>(obj: &'a Value, path: &str) -> Option<&'a Value> {
    let mut cur = obj;
    let mut rest = path
        .trim()
        .trim_start_matches('{')
        .trim_end_matches('}')
        .trim_start_matches('.');
    while !rest.is_empty() {
        if let Some(after) = rest.strip_prefix('[') {
            let end = after.find(']')?;
            let inner = &after[..end];
            rest = after[end + 1..].trim_start_matches('.');
            if let Some(filter) = inner.strip_prefix("?(@.").and_then(|f| f.strip_suffix(')')) {
                let (field, want) = filter.split_once("==")?;
                let want = want.trim().trim_matches('"').trim_matches('\'');
                cur = cur
                    .as_array()?
                    .iter()
                    .find(|item| item.get(field.trim()).and_then(Value::as_str) == Some(want))?;
            } else {
                cur = cur.as_array()?.get(inner.parse::<usize>().ok()?)?;
            }
            continue;
        }
        let end = rest.find(['.', '[']).unwrap_or(rest.len());
        cur = cur.get(&rest[..end])?;
        rest = rest[end..].trim_start_matches('.');
    }
    Some(cur)
}

fn int_at(obj: &Value, pointer: &str) -> i64 {
    obj.pointer(pointer).and_then(Value::as_i64).unwrap_or(0)
}

fn count_at(obj: &Value, pointer: &str) -> Value {
    let n = obj
        .pointer(pointer)
        .map(|v| match v {
            Value::Object(m) => m.len(),
            Value::Array(a) => a.len(),
            _ => 0,
        })
        .unwrap_or(0);
    json!(n)
}

fn builtin(name: &str, kind: &'static str, f: fn(&Value) -> Value) -> Column {
    Column {
        name: name.to_string(),
        kind,
        format: "",
        description: name.to_string(),
        priority: 0,
        cell: Cell::Builtin(f),
    }
}

fn name_column() -> Column {
    Column {
        name: "Name".into(),
        kind: "string",
        format: "name",
        description: "Name must be unique within a namespace.".into(),
        priority: 0,
        cell: Cell::Name,
    }
}

fn age_column() -> Column {
    Column {
        name: "Age".into(),
        kind: "string",
        format: "",
        description: "CreationTimestamp is a timestamp representing the server time when this object was created.".into(),
        priority: 0,
        cell: Cell::Age,
    }
}

fn first(o: &Value, fields: &[&str]) -> Value {
    fields
        .iter()
        .find_map(|f| o.get(*f).filter(|v| !v.is_null()).cloned())
        .unwrap_or(json!(""))
}

fn event_columns() -> Vec<Column> {
    vec![
        Column {
            name: "Last Seen".into(),
            kind: "string",
            format: "",
            description: "Time of the last occurrence".into(),
            priority: 0,
            cell: Cell::LastSeen,
        },
        builtin("Type", "string", |o| first(o, &["type"])),
        builtin("Reason", "string", |o| first(o, &["reason"])),
        builtin("Object", "string", |o| {
            let target = o
                .get("involvedObject")
                .or_else(|| o.get("regarding"))
                .cloned()
                .unwrap_or(json!({}));
            let kind = target
                .get("kind")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_lowercase();
            let name = target
                .get("name")
                .and_then(Value::as_str)
                .unwrap_or_default();
            json!(format!("{kind}/{name}"))
        }),
        builtin("Message", "string", |o| first(o, &["message", "note"])),
    ]
}

fn columns(rt: &ResourceType) -> Vec<Column> {
    if rt.kind == "Event" && (rt.group.is_empty() || rt.group == "events.k8s.io") {
        return event_columns();
    }
    let mut cols = vec![name_column()];
    if rt.custom {
        let mut has_age = false;
        for c in &rt.printer_columns {
            let name = c
                .get("name")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string();
            let path = c
                .get("jsonPath")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string();
            let kind = match c.get("type").and_then(Value::as_str) {
                Some("integer") => "integer",
                Some("number") => "number",
                Some("boolean") => "boolean",
                Some("date") => "date",
                _ => "string",
            };
            has_age |= path == ".metadata.creationTimestamp";
            cols.push(Column {
                name,
                kind: if kind == "date" { "date" } else { kind },
                format: "",
                description: c
                    .get("description")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_string(),
                priority: c.get("priority").and_then(Value::as_i64).unwrap_or(0),
                cell: Cell::JsonPath(path, kind.to_string()),
            });
        }
        if !has_age {
            cols.push(age_column());
        }
        return cols;
    }
    match (rt.group.as_str(), rt.kind.as_str()) {
        ("apps", "Deployment") => {
            cols.push(builtin("Ready", "string", |o| {
                json!(format!(
                    "{}/{}",
                    int_at(o, "/status/readyReplicas"),
                    int_at(o, "/spec/replicas")
                ))
            }));
            cols.push(builtin("Up-to-date", "integer", |o| {
                json!(int_at(o, "/status/updatedReplicas"))
            }));
            cols.push(builtin("Available", "integer", |o| {
                json!(int_at(o, "/status/availableReplicas"))
            }));
        }
        ("apps", "StatefulSet") => cols.push(builtin("Ready", "string", |o| {
            json!(format!(
                "{}/{}",
                int_at(o, "/status/readyReplicas"),
                int_at(o, "/spec/replicas")
            ))
        })),
        ("apps", "ReplicaSet") => {
            cols.push(builtin("Desired", "integer", |o| {
                json!(int_at(o, "/spec/replicas"))
            }));
            cols.push(builtin("Current", "integer", |o| {
                json!(int_at(o, "/status/replicas"))
            }));
            cols.push(builtin("Ready", "integer", |o| {
                json!(int_at(o, "/status/readyReplicas"))
            }));
        }
        ("batch", "CronJob") => {
            cols.push(builtin("Schedule", "string", |o| {
                o.pointer("/spec/schedule").cloned().unwrap_or(json!(""))
            }));
            cols.push(builtin("Suspend", "boolean", |o| {
                o.pointer("/spec/suspend").cloned().unwrap_or(json!(false))
            }));
            cols.push(builtin("Active", "integer", |o| {
                count_at(o, "/status/active")
            }));
        }
        ("", "Namespace") => cols.push(builtin("Status", "string", |o| {
            o.pointer("/status/phase").cloned().unwrap_or(json!(""))
        })),
        ("", "ConfigMap") => cols.push(builtin("Data", "integer", |o| {
            json!(
                count_at(o, "/data").as_u64().unwrap_or(0)
                    + count_at(o, "/binaryData").as_u64().unwrap_or(0)
            )
        })),
        ("", "Secret") => {
            cols.push(builtin("Type", "string", |o| {
                o.get("type").cloned().unwrap_or(json!(""))
            }));
            cols.push(builtin("Data", "integer", |o| count_at(o, "/data")));
        }
        ("storage.k8s.io", "StorageClass") => {
            cols.push(builtin("Provisioner", "string", |o| {
                o.get("provisioner").cloned().unwrap_or(json!(""))
            }));
            cols.push(builtin("ReclaimPolicy", "string", |o| {
                o.get("reclaimPolicy").cloned().unwrap_or(json!(""))
            }));
            cols.push(builtin("VolumeBindingMode", "string", |o| {
                o.get("volumeBindingMode").cloned().unwrap_or(json!(""))
            }));
            cols.push(builtin("AllowVolumeExpansion", "boolean", |o| {
                o.get("allowVolumeExpansion")
                    .cloned()
                    .unwrap_or(json!(false))
            }));
        }
        ("apiextensions.k8s.io", "CustomResourceDefinition") => {
            cols.push(Column {
                name: "Created At".into(),
                kind: "date",
                format: "",
                description: "CreationTimestamp".into(),
                priority: 0,
                cell: Cell::Builtin(|o| {
                    o.pointer("/metadata/creationTimestamp")
                        .cloned()
                        .unwrap_or(Value::Null)
                }),
            });
            return cols;
        }
        ("apps", _) | ("batch", _) => {}
        _ => {}
    }
    if matches!(
        (rt.group.as_str(), rt.kind.as_str()),
        ("apps", "Deployment") | ("apps", "ReplicaSet")
    ) {
        cols.push(age_column());
        cols.push(Column {
            name: "Selector".into(),
            kind: "string",
            format: "",
            description: "Label selector".into(),
            priority: 1,
            cell: Cell::Builtin(|o| {
                json!(
                    o.pointer("/spec/selector")
                        .map(|s| LabelSelector::from_label_selector(s).to_query())
                        .unwrap_or_default()
                )
            }),
        });
        return cols;
    }
    cols.push(age_column());
    cols
}

fn cell(c: &Column, obj: &Value, now: jiff::Timestamp) -> Value {
    match &c.cell {
        Cell::Name => obj.pointer("/metadata/name").cloned().unwrap_or(json!("")),
        Cell::Age => age_of(
            obj.pointer("/metadata/creationTimestamp")
                .and_then(Value::as_str),
            now,
        ),
        Cell::LastSeen => {
            let ts = [
                "/series/lastObservedTime",
                "/lastTimestamp",
                "/deprecatedLastTimestamp",
                "/eventTime",
                "/metadata/creationTimestamp",
            ]
            .iter()
            .find_map(|p| obj.pointer(p).and_then(Value::as_str));
            age_of(ts, now)
        }
        Cell::Builtin(f) => f(obj),
        Cell::JsonPath(path, kind) => match json_path(obj, path) {
            None | Some(Value::Null) => Value::Null,
            Some(v) if kind == "date" => age_of(v.as_str(), now),
            Some(v @ (Value::Object(_) | Value::Array(_))) => json!(v.to_string()),
            Some(v) => v.clone(),
        },
    }
}

/// The Table for `objects`; `with_headers` false leaves out column definitions (later watch events).
pub fn table(
    rt: &ResourceType,
    objects: &[Value],
    list_meta: Value,
    now: jiff::Timestamp,
    with_headers: bool,
) -> Value {
    let cols = columns(rt);
    let defs: Vec<Value> = if with_headers {
        cols.iter()
            .map(|c| json!({"name": c.name, "type": c.kind, "format": c.format, "description": c.description, "priority": c.priority}))
            .collect()
    } else {
        Vec::new()
    };
    let rows: Vec<Value> = objects
        .iter()
        .map(|o| {
            json!({
                "cells": cols.iter().map(|c| cell(c, o, now)).collect::<Vec<_>>(),
                "object": {"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1",
                    "metadata": o.get("metadata").cloned().unwrap_or(json!({}))}
            })
        })
        .collect();
    json!({"kind": "Table", "apiVersion": "meta.k8s.io/v1", "metadata": list_meta,
        "columnDefinitions": defs, "rows": rows})
}

/// Whether the Accept header asks for a Table first.
pub fn wants_table(accept: &str) -> bool {
    accept
        .split(',')
        .next()
        .is_some_and(|first| first.contains("as=Table") && first.contains("g=meta.k8s.io"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resources::{builtin_types, crd_types};

    #[test]
    fn human_durations_match_kubectl() {
        for (secs, want) in [
            (5, "5s"),
            (119, "119s"),
            (200, "3m20s"),
            (600, "10m"),
            (3 * 3600 + 120, "3h2m"),
            (86400 * 3, "3d"),
        ] {
            assert_eq!(human_duration(secs), want);
        }
    }

    #[test]
    fn deployment_table_shows_ready_counts() {
        let rt = builtin_types()
            .into_iter()
            .find(|t| t.kind == "Deployment")
            .unwrap();
        let now: jiff::Timestamp = "2026-01-01T00:01:00Z".parse().unwrap();
        let d = json!({"metadata": {"name": "web", "creationTimestamp": "2026-01-01T00:00:00Z"},
            "spec": {"replicas": 3}, "status": {"readyReplicas": 1}});
        let t = table(&rt, &[d], json!({}), now, true);
        let names: Vec<&str> = t["columnDefinitions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["name"].as_str().unwrap())
            .collect();
        assert_eq!(
            names,
            [
                "Name",
                "Ready",
                "Up-to-date",
                "Available",
                "Age",
                "Selector"
            ]
        );
        assert_eq!(
            t["rows"][0]["cells"],
            json!(["web", "1/3", 0, 0, "60s", ""])
        );
    }

    #[test]
    fn events_print_like_kubectl_get_events() {
        let rt = builtin_types()
            .into_iter()
            .find(|t| t.kind == "Event" && t.group.is_empty())
            .unwrap();
        let e = json!({"metadata": {"name": "e"}, "type": "Normal", "reason": "Checked", "message": "fine",
            "involvedObject": {"kind": "ConfigMap", "name": "c"}, "eventTime": "2026-01-01T00:00:00.000000Z"});
        let t = table(
            &rt,
            &[e],
            json!({}),
            "2026-01-01T00:00:10Z".parse().unwrap(),
            true,
        );
        assert_eq!(
            t["rows"][0]["cells"],
            json!(["10s", "Normal", "Checked", "configmap/c", "fine"])
        );
    }

    #[test]
    fn crd_printer_columns_use_json_paths() {
        let crd = json!({"spec": {"group": "example.com", "scope": "Namespaced", "names": {"kind": "Widget", "plural": "widgets"},
            "versions": [{"name": "v1", "served": true, "storage": true, "additionalPrinterColumns": [
                {"name": "Size", "type": "integer", "jsonPath": ".spec.size"},
                {"name": "Ready", "type": "string", "jsonPath": ".status.conditions[?(@.type==\"Ready\")].status"}]}]}});
        let rt = crd_types(&crd).remove(0);
        let w = json!({"metadata": {"name": "w", "creationTimestamp": "2026-01-01T00:00:00Z"}, "spec": {"size": 4},
            "status": {"conditions": [{"type": "Other", "status": "False"}, {"type": "Ready", "status": "True"}]}});
        let t = table(
            &rt,
            &[w],
            json!({}),
            "2026-01-01T00:00:30Z".parse().unwrap(),
            true,
        );
        assert_eq!(t["rows"][0]["cells"], json!(["w", 4, "True", "30s"]));
    }
}
