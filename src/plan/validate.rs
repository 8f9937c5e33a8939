//! DRPlan validation: the one function the `drplan-valid` rule, `check`, the reconciler and `failover` call.
//!
//! In: a DRPlan (typed, or a JSON value still to be read) and the Stork admin namespace. Out: every problem as a
//! field path plus a message saying what is wrong and what to write instead; empty when the plan is valid.

use std::collections::BTreeSet;

use serde_json::Value;
use thiserror::Error;

use super::types::{DRPlan, Mode};
use crate::stork::schedule::validate_policy;

/// One problem in a DRPlan.
#[derive(Clone, Debug, Error, PartialEq, Eq)]
#[error("{field}: {message}")]
pub struct FieldError {
    /// Field path, e.g. `spec.primary`.
    pub field: String,
    pub message: String,
}

impl FieldError {
    fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            message: message.into(),
        }
    }
}

const REQUIRED_SPEC_FIELDS: [&str; 4] = ["mode", "primary", "domains", "clusterPair"];

/// Reads a DRPlan from a JSON value and validates it. A plan that cannot be read at all yields one error at the
/// path serde stopped at (`spec` when it cannot tell).
pub fn parse_and_validate(
    object: &Value,
    admin_namespace: &str,
) -> Result<DRPlan, Vec<FieldError>> {
    let plan = DRPlan::deserialize_value(object).map_err(|e| vec![e])?;
    let errors = validate(&plan, admin_namespace);
    if errors.is_empty() {
        Ok(plan)
    } else {
        Err(errors)
    }
}

impl DRPlan {
    /// Reads a DRPlan from a JSON value; the error names the field when a required one is missing.
    pub fn deserialize_value(object: &Value) -> Result<DRPlan, FieldError> {
        if !object.get("spec").is_some_and(Value::is_object) {
            return Err(FieldError::new(
                "spec",
                "missing spec: a DRPlan needs spec.mode, spec.primary, spec.domains and spec.clusterPair",
            ));
        }
        <DRPlan as serde::Deserialize>::deserialize(object).map_err(|e| {
            let text = e.to_string();
            // serde names a missing field but not its parent: only the required members of spec are certain.
            let field = text
                .split('`')
                .nth(1)
                .filter(|f| text.starts_with("missing field") && REQUIRED_SPEC_FIELDS.contains(f))
                .map_or_else(|| "spec".to_string(), |f| format!("spec.{f}"));
            FieldError::new(field, format!("cannot read the plan: {text}"))
        })
    }
}

/// Validates a plan. `admin_namespace` is Stork's admin namespace: only a plan there may protect namespaces other
/// than its own. A plan without `metadata.namespace` (e.g. a manifest checked offline without `-n`) skips that rule.
pub fn validate(plan: &DRPlan, admin_namespace: &str) -> Vec<FieldError> {
    let mut errors = Vec::new();
    let spec = &plan.spec;

    if plan.metadata.name.as_deref().is_none_or(str::is_empty) {
        errors.push(FieldError::new(
            "metadata.name",
            "missing name: name the plan (it names the rendered objects)",
        ));
    }

    // Domains: named, unique, and the primary among them.
    if spec.domains.is_empty() {
        errors.push(FieldError::new(
            "spec.domains",
            "no cluster domains: list every cluster domain taking part, e.g. [{name: us-east-1a}, {name: us-east-1b}]",
        ));
    }
    let mut seen = BTreeSet::new();
    for (i, d) in spec.domains.iter().enumerate() {
        if d.name.is_empty() {
            errors.push(FieldError::new(
                format!("spec.domains[{i}].name"),
                "empty domain name: use the Stork cluster domain name",
            ));
        } else if !seen.insert(d.name.as_str()) {
            errors.push(FieldError::new(
                format!("spec.domains[{i}].name"),
                format!(
                    "domain {:?} is listed twice: list each cluster domain once",
                    d.name
                ),
            ));
        }
    }
    let primary = spec.domains.iter().find(|d| d.name == spec.primary);
    if primary.is_none() {
        let names: Vec<&str> = spec.domains.iter().map(|d| d.name.as_str()).collect();
        errors.push(FieldError::new(
            "spec.primary",
            format!("{:?} is not one of spec.domains {names:?}: set it to one of them or add it to spec.domains", spec.primary),
        ));
    }

    // Metro: one stretched storage cluster, so no volume copies and the primary's storage must be active.
    let migration = spec.migration.clone().unwrap_or_default();
    if spec.mode == Mode::Metro {
        if migration.include_volumes == Some(true) {
            errors.push(FieldError::new(
                "spec.migration.includeVolumes",
                "includeVolumes true in metro mode: the storage cluster is stretched and volumes are already there; set it to false or remove it",
            ));
        }
        if let Some(p) = primary.filter(|d| !d.is_active()) {
            errors.push(FieldError::new(
                "spec.primary",
                format!("{:?} is marked active: false in spec.domains: applications cannot run on an inactive domain; activate it or choose another primary", p.name),
            ));
        }
    } else if spec.domains.iter().any(|d| d.active == Some(false)) {
        let i = spec
            .domains
            .iter()
            .position(|d| d.active == Some(false))
            .unwrap_or(0);
        errors.push(FieldError::new(
            format!("spec.domains[{i}].active"),
            "active: false only applies in metro mode (one stretched storage cluster); remove it or set spec.mode: metro",
        ));
    }

    let pair = &spec.cluster_pair;
    let names = [
        (
            "spec.clusterPair.name",
            pair.name.as_str(),
            "name the ClusterPair to render, e.g. remotecluster",
        ),
        (
            "spec.clusterPair.peerKubeconfigSecret.name",
            pair.peer_kubeconfig_secret.name.as_str(),
            "name the Secret holding the peer's kubeconfig",
        ),
        (
            "spec.clusterPair.peerKubeconfigSecret.key",
            pair.peer_kubeconfig_secret.key.as_str(),
            "name the Secret key holding the kubeconfig (default kubeconfig)",
        ),
    ];
    for (field, value, fix) in names {
        if value.is_empty() {
            errors.push(FieldError::new(field, format!("empty: {fix}")));
        }
    }
    if pair
        .storage_secret
        .as_ref()
        .is_some_and(|s| s.name.is_empty())
    {
        errors.push(FieldError::new(
            "spec.clusterPair.storageSecret.name",
            "empty: name the Secret with ip, port and token, or remove storageSecret",
        ));
    }
    // Async: without storage options the rendered ClusterPair is a metro one, whose migrations cannot copy volumes
    // (the `metro-volumes` rule denies the schedule, and Stork would fail it). Resources only is a valid choice.
    if spec.mode == Mode::Async
        && pair.storage_secret.is_none()
        && migration.include_volumes != Some(false)
    {
        errors.push(FieldError::new(
            "spec.clusterPair.storageSecret",
            "absent in async mode, so volumes cannot be copied: name the Secret with keys ip, port and token, or set spec.migration.includeVolumes: false to migrate resources only",
        ));
    }

    if migration.start_applications == Some(true) {
        errors.push(FieldError::new(
            "spec.migration.startApplications",
            "startApplications true: migrations never start applications (every later migration would fail on in-use volumes); remove it, a failover commit starts them",
        ));
    }
    if let Some(ts) = migration.transform_specs.as_ref().filter(|t| t.len() > 1) {
        errors.push(FieldError::new(
            "spec.migration.transformSpecs",
            format!(
                "{} entries {ts:?}: Stork supports at most one ResourceTransformation; keep one",
                ts.len()
            ),
        ));
    }

    // Schedule: at least one section, each in Stork's exact syntax.
    let policy = spec.schedule.to_policy();
    if policy.interval.is_none()
        && policy.daily.is_none()
        && policy.weekly.is_none()
        && policy.monthly.is_none()
    {
        errors.push(FieldError::new(
            "spec.schedule",
            "no schedule: set interval.intervalMinutes, daily, weekly or monthly so migrations run",
        ));
    }
    errors.extend(
        validate_policy(&policy, "spec.schedule")
            .into_iter()
            .map(|e| FieldError::new(e.field, e.message)),
    );

    // Namespaces: a plan outside the admin namespace protects only its own namespace.
    if let Some(ns) = plan
        .metadata
        .namespace
        .as_deref()
        .filter(|ns| *ns != admin_namespace)
        && let Some(list) = &spec.namespaces
    {
        for (i, other) in list.iter().enumerate().filter(|(_, n)| n.as_str() != ns) {
            errors.push(FieldError::new(
                format!("spec.namespaces[{i}]"),
                format!(
                    "namespace {other:?} is not the plan's own namespace {ns:?}: only a plan in the Stork admin namespace {admin_namespace:?} may protect other namespaces; move the plan there or create one plan per namespace"
                ),
            ));
        }
    }
    if spec
        .namespaces
        .as_ref()
        .is_some_and(|n| n.iter().any(String::is_empty))
    {
        errors.push(FieldError::new(
            "spec.namespaces",
            "empty namespace name: remove it",
        ));
    }

    if let Some(t) = spec
        .failover
        .as_ref()
        .and_then(|f| f.peer_stop_timeout_seconds)
        .filter(|t| *t < 1)
    {
        errors.push(FieldError::new(
            "spec.failover.peerStopTimeoutSeconds",
            format!("{t} is not a timeout: use a positive number of seconds (default 300)"),
        ));
    }
    errors
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn plan(spec: Value) -> Value {
        json!({"apiVersion": "drgitops.dev/v1alpha1", "kind": "DRPlan",
               "metadata": {"name": "mysql", "namespace": "mysql"}, "spec": spec})
    }

    fn base() -> Value {
        json!({
            "mode": "async", "primary": "east",
            "domains": [{"name": "east"}, {"name": "west"}],
            "clusterPair": {"name": "remotecluster", "peerKubeconfigSecret": {"name": "peer"},
                            "storageSecret": {"name": "peer-storage"}},
            "schedule": {"interval": {"intervalMinutes": 15}},
        })
    }

    fn fields(spec: Value) -> Vec<String> {
        match parse_and_validate(&plan(spec), "kube-system") {
            Ok(_) => vec![],
            Err(errs) => errs.into_iter().map(|e| e.field).collect(),
        }
    }

    fn with(mut v: Value, path: &[&str], value: Value) -> Value {
        let mut cur = &mut v;
        for p in &path[..path.len() - 1] {
            cur = cur
                .as_object_mut()
                .unwrap()
                .entry(p.to_string())
                .or_insert(json!({}));
        }
        cur[path[path.len() - 1]] = value;
        v
    }

    fn without(mut v: Value, path: &[&str]) -> Value {
        let mut cur = &mut v;
        for p in &path[..path.len() - 1] {
            cur = &mut cur[*p];
        }
        cur.as_object_mut()
            .unwrap()
            .remove(path[path.len() - 1])
            .expect("field to remove");
        v
    }

    #[test]
    fn valid_plan_reads_with_defaults() {
        let plan = parse_and_validate(&plan(base()), "kube-system").unwrap();
        assert_eq!(plan.namespaces(), ["mysql"]);
        assert_eq!(
            plan.spec.cluster_pair.peer_kubeconfig_secret.key,
            "kubeconfig"
        );
        assert!(plan.spec.schedule.auto_suspend());
        assert_eq!(plan.spec.peer_stop_timeout_seconds(), 300);
    }

    #[test]
    fn validation_table() {
        let cases: Vec<(&str, Value, Vec<&str>)> = vec![
            (
                "primary not a domain",
                with(base(), &["primary"], json!("north")),
                vec!["spec.primary"],
            ),
            (
                "no domains",
                with(
                    with(base(), &["domains"], json!([])),
                    &["primary"],
                    json!("x"),
                ),
                vec!["spec.domains", "spec.primary"],
            ),
            (
                "duplicate domain",
                with(
                    base(),
                    &["domains"],
                    json!([{"name": "east"}, {"name": "east"}]),
                ),
                vec!["spec.domains[1].name"],
            ),
            (
                "metro with volumes",
                with(
                    with(base(), &["mode"], json!("metro")),
                    &["migration", "includeVolumes"],
                    json!(true),
                ),
                vec!["spec.migration.includeVolumes"],
            ),
            (
                "metro primary inactive",
                with(
                    with(base(), &["mode"], json!("metro")),
                    &["domains"],
                    json!([{"name": "east", "active": false}, {"name": "west"}]),
                ),
                vec!["spec.primary"],
            ),
            (
                "metro standby inactive is fine",
                with(
                    with(base(), &["mode"], json!("metro")),
                    &["domains"],
                    json!([{"name": "east"}, {"name": "west", "active": false}]),
                ),
                vec![],
            ),
            (
                "async inactive domain",
                with(
                    base(),
                    &["domains"],
                    json!([{"name": "east"}, {"name": "west", "active": false}]),
                ),
                vec!["spec.domains[1].active"],
            ),
            (
                "start applications",
                with(base(), &["migration", "startApplications"], json!(true)),
                vec!["spec.migration.startApplications"],
            ),
            (
                "two transform specs",
                with(base(), &["migration", "transformSpecs"], json!(["a", "b"])),
                vec!["spec.migration.transformSpecs"],
            ),
            (
                "empty schedule",
                with(base(), &["schedule"], json!({"autoSuspend": true})),
                vec!["spec.schedule"],
            ),
            (
                "bad daily time",
                with(base(), &["schedule"], json!({"daily": {"time": "12:04"}})),
                vec!["spec.schedule.daily.time"],
            ),
            (
                "12:xxAM is fine",
                with(base(), &["schedule"], json!({"daily": {"time": "12:30AM"}})),
                vec![],
            ),
            (
                "bad weekday",
                with(
                    base(),
                    &["schedule"],
                    json!({"weekly": {"day": "MONDAY", "time": "2:00AM"}}),
                ),
                vec!["spec.schedule.weekly.day"],
            ),
            (
                "date 31 is fine",
                with(
                    base(),
                    &["schedule"],
                    json!({"monthly": {"date": 31, "time": "0:30AM"}}),
                ),
                vec![],
            ),
            (
                "date 32",
                with(
                    base(),
                    &["schedule"],
                    json!({"monthly": {"date": 32, "time": "1:00AM"}}),
                ),
                vec!["spec.schedule.monthly.date"],
            ),
            (
                "interval 0",
                with(
                    base(),
                    &["schedule", "interval", "intervalMinutes"],
                    json!(0),
                ),
                vec!["spec.schedule.interval.intervalMinutes"],
            ),
            (
                "foreign namespace",
                with(base(), &["namespaces"], json!(["mysql", "cassandra"])),
                vec!["spec.namespaces[1]"],
            ),
            (
                "bad timeout",
                with(base(), &["failover", "peerStopTimeoutSeconds"], json!(0)),
                vec!["spec.failover.peerStopTimeoutSeconds"],
            ),
            (
                "async without storage secret",
                without(base(), &["clusterPair", "storageSecret"]),
                vec!["spec.clusterPair.storageSecret"],
            ),
            (
                "async without storage secret, volumes asked for",
                with(
                    without(base(), &["clusterPair", "storageSecret"]),
                    &["migration", "includeVolumes"],
                    json!(true),
                ),
                vec!["spec.clusterPair.storageSecret"],
            ),
            (
                "async without storage secret, resources only",
                with(
                    without(base(), &["clusterPair", "storageSecret"]),
                    &["migration", "includeVolumes"],
                    json!(false),
                ),
                vec![],
            ),
            (
                "async with storage secret",
                with(base(), &["migration", "includeVolumes"], json!(true)),
                vec![],
            ),
            (
                "metro without storage secret",
                with(
                    without(base(), &["clusterPair", "storageSecret"]),
                    &["mode"],
                    json!("metro"),
                ),
                vec![],
            ),
            (
                "unknown mode",
                with(base(), &["mode"], json!("sync")),
                vec!["spec"],
            ),
        ];
        for (name, spec, want) in cases {
            assert_eq!(fields(spec), want, "{name}");
        }
    }

    #[test]
    fn schedule_defaults_to_every_15_minutes() {
        let mut spec = base();
        spec.as_object_mut().unwrap().remove("schedule");
        let plan = parse_and_validate(&plan(spec), "kube-system").unwrap();
        assert_eq!(
            plan.spec
                .schedule
                .to_policy()
                .interval
                .unwrap()
                .interval_minutes,
            Some(15)
        );
    }

    #[test]
    fn missing_required_field_is_named() {
        let mut spec = base();
        spec.as_object_mut().unwrap().remove("primary");
        let errs = parse_and_validate(&plan(spec), "kube-system").unwrap_err();
        assert_eq!(errs[0].field, "spec.primary");
        assert!(errs[0].message.contains("primary"), "{}", errs[0].message);
    }

    #[test]
    fn async_without_storage_secret_names_both_fixes() {
        let spec = without(base(), &["clusterPair", "storageSecret"]);
        let errs = parse_and_validate(&plan(spec), "kube-system").unwrap_err();
        assert_eq!(errs.len(), 1, "{errs:?}");
        let text = errs[0].to_string();
        assert!(
            text.starts_with("spec.clusterPair.storageSecret: absent in async mode"),
            "{text}"
        );
        assert!(text.contains("keys ip, port and token"), "{text}");
        assert!(
            text.contains("spec.migration.includeVolumes: false"),
            "{text}"
        );
    }

    #[test]
    fn admin_namespace_plan_may_protect_other_namespaces() {
        let mut v = plan(with(base(), &["namespaces"], json!(["mysql", "cassandra"])));
        v["metadata"]["namespace"] = json!("kube-system");
        assert!(parse_and_validate(&v, "kube-system").is_ok());
        // Without a namespace (checked offline without -n) the namespace rule cannot apply.
        v["metadata"].as_object_mut().unwrap().remove("namespace");
        assert!(parse_and_validate(&v, "kube-system").is_ok());
    }
}
