//! The rule table of DESIGN.md: one pure function per rule, registered with the kinds it sees and its default
//! action.
//!
//! In: a [`Ctx`] (the request, the cluster view, the config and the object). Out: violations (a field path and a
//! message saying what is wrong and what to do instead) and JSON patches, collected in an [`Out`]. The engine
//! ([`super::evaluate`]) turns violations into findings with the configured action.

mod clusterdomain;
mod clusterpair;
mod drplan;
mod migration;
mod schedule;
mod storageclass;
mod workload;

use serde_json::Value;

use super::action::Action;
use super::{Mutation, Request};
use crate::policy::view::ClusterView;

/// What a rule reads.
pub struct Ctx<'a> {
    pub req: &'a Request<'a>,
    pub view: &'a dyn ClusterView,
    /// Stork's admin namespace, from the policy config.
    pub admin_namespace: &'a str,
    /// Field managers whose writes apply what Git declares, from the policy config.
    pub gitops_field_managers: &'a [String],
    /// The object being admitted (`request.object`).
    pub object: &'a Value,
    /// The object's namespace: the request's, else `metadata.namespace`; `None` for cluster-scoped objects and
    /// for offline input without one.
    pub namespace: Option<&'a str>,
}

/// One problem a rule found.
#[derive(Debug)]
pub struct Violation {
    pub field: String,
    pub message: String,
    /// At most a warning, whatever the configured action: the rule could not be sure (e.g. an offline view that
    /// may not hold every object of the cluster).
    pub at_most_warn: bool,
}

/// What a rule reports.
#[derive(Debug, Default)]
pub struct Out {
    pub violations: Vec<Violation>,
    pub mutations: Vec<Mutation>,
}

impl Out {
    pub fn violation(&mut self, field: impl Into<String>, message: impl Into<String>) {
        self.violations.push(Violation {
            field: field.into(),
            message: message.into(),
            at_most_warn: false,
        });
    }

    pub fn uncertain(&mut self, field: impl Into<String>, message: impl Into<String>) {
        self.violations.push(Violation {
            field: field.into(),
            message: message.into(),
            at_most_warn: true,
        });
    }
}

/// A registered rule.
pub struct RuleSpec {
    /// The id of DESIGN.md's table, used in findings and in `policies/*.yaml`.
    pub id: &'static str,
    /// The API group of `kinds`.
    pub group: &'static str,
    /// The kinds it sees.
    pub kinds: &'static [&'static str],
    /// Whether it also sees the `/scale` subresource of those kinds.
    pub scale: bool,
    pub default_action: Action,
    pub check: fn(&Ctx<'_>, &mut Out),
}

const STORK: &str = crate::stork::keys::STORK_GROUP;
const WORKLOADS: &[&str] = &["Deployment", "StatefulSet", "ReplicaSet"];
const MIGRATIONS: &[&str] = &["MigrationSchedule", "Migration"];

/// Every rule, in DESIGN.md's order.
pub static RULES: [RuleSpec; 13] = [
    RuleSpec {
        id: "migration-start-applications",
        group: STORK,
        kinds: MIGRATIONS,
        scale: false,
        default_action: Action::Deny,
        check: migration::start_applications,
    },
    RuleSpec {
        id: "single-default-storageclass",
        group: "storage.k8s.io",
        kinds: &["StorageClass"],
        scale: false,
        default_action: Action::Deny,
        check: storageclass::single_default,
    },
    RuleSpec {
        id: "migration-replicas-annotation",
        group: "apps",
        kinds: WORKLOADS,
        scale: false,
        default_action: Action::Deny,
        check: workload::replicas_annotation,
    },
    RuleSpec {
        id: "standby-scale-guard",
        group: "apps",
        kinds: WORKLOADS,
        scale: true,
        default_action: Action::Deny,
        check: workload::standby_scale_guard,
    },
    RuleSpec {
        id: "schedule-policy-syntax",
        group: STORK,
        kinds: &["SchedulePolicy", "NamespacedSchedulePolicy"],
        scale: false,
        default_action: Action::Deny,
        check: schedule::syntax,
    },
    RuleSpec {
        id: "schedule-policy-exists",
        group: STORK,
        kinds: &["MigrationSchedule"],
        scale: false,
        default_action: Action::Deny,
        check: schedule::exists,
    },
    RuleSpec {
        id: "clusterpair-options",
        group: STORK,
        kinds: &["ClusterPair"],
        scale: false,
        default_action: Action::Deny,
        check: clusterpair::options,
    },
    RuleSpec {
        id: "migration-namespace-scope",
        group: STORK,
        kinds: MIGRATIONS,
        scale: false,
        default_action: Action::Deny,
        check: migration::namespace_scope,
    },
    RuleSpec {
        id: "metro-volumes",
        group: STORK,
        kinds: MIGRATIONS,
        scale: false,
        default_action: Action::Deny,
        check: migration::metro_volumes,
    },
    RuleSpec {
        id: "transform-specs",
        group: STORK,
        kinds: MIGRATIONS,
        scale: false,
        default_action: Action::Deny,
        check: migration::transform_specs,
    },
    RuleSpec {
        id: "clusterdomain-update",
        group: STORK,
        kinds: &["ClusterDomainUpdate"],
        scale: false,
        default_action: Action::Deny,
        check: clusterdomain::update,
    },
    RuleSpec {
        id: "drplan-valid",
        group: crate::plan::GROUP,
        kinds: &["DRPlan"],
        scale: false,
        default_action: Action::Deny,
        check: drplan::valid,
    },
    RuleSpec {
        id: "standby-cronjob-guard",
        group: "batch",
        kinds: &["CronJob"],
        scale: false,
        default_action: Action::Deny,
        check: workload::standby_cronjob_guard,
    },
];

/// The path prefix of the MigrationSpec in a Migration (`spec`) or a MigrationSchedule (`spec.template.spec`).
fn migration_spec_path(kind: &str) -> &'static [&'static str] {
    if kind == "MigrationSchedule" {
        &["spec", "template", "spec"]
    } else {
        &["spec"]
    }
}

/// `a.b.c` from path segments, for messages and findings.
fn dotted(path: &[&str], leaf: &str) -> String {
    let mut s = path.join(".");
    if !leaf.is_empty() {
        if !s.is_empty() {
            s.push('.');
        }
        s.push_str(leaf);
    }
    s
}

/// `metadata.annotations["key"]`, the field path of an annotation.
fn annotation_field(key: &str) -> String {
    format!("metadata.annotations[\"{key}\"]")
}

/// `path: must be a <expected>, got <type> <value>`.
fn wrong_type(out: &mut Out, field: String, expected: &str, got: &Value) {
    let message = format!(
        "must be {expected}, got {} {}: Stork cannot read the object; write {expected}",
        super::value::type_name(got),
        super::value::show(got)
    );
    out.violation(field, message);
}

#[cfg(test)]
pub(crate) mod testing;
