//! The DR admission rules: one pure function per rule over (request, cluster view, policy config).
//!
//! In: a [`Request`] (what the API server asked about), a [`ClusterView`] and a [`PolicyConfig`].
//! Out: a [`Decision`]: findings (deny / warn / audit) and the JSON patch the mutating webhook would apply.
//! The webhook, the reconciler and `drgitops check` all call [`evaluate`], so they can never disagree.

pub mod action;
pub mod config;
pub mod rules;
pub mod value;
pub mod view;

use serde_json::Value;

pub use self::config::{Action, ConfigError, PolicyConfig, RuleConfig};
pub use self::rules::RULES;
use crate::policy::view::ClusterView;

/// The admission operation, as `AdmissionRequest.operation` spells it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Operation {
    Create,
    Update,
    Delete,
    Connect,
}

/// The requesting user, from `AdmissionRequest.userInfo`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct UserInfo {
    pub username: String,
    pub groups: Vec<String>,
}

/// What the rules see of one admission request.
#[derive(Clone, Debug)]
pub struct Request<'a> {
    pub operation: Operation,
    /// Group of the resource (`resource.group`), e.g. `apps`, `stork.libopenstorage.org`, `""` for core.
    pub group: &'a str,
    /// Kind of the parent resource, e.g. `Deployment` even for a `/scale` request (whose object is a `Scale`).
    pub kind: &'a str,
    /// `subResource`, e.g. `Some("scale")`.
    pub sub_resource: Option<&'a str>,
    pub namespace: Option<&'a str>,
    pub name: Option<&'a str>,
    pub object: Option<&'a Value>,
    pub old_object: Option<&'a Value>,
    pub user: &'a UserInfo,
    pub dry_run: bool,
    /// The write's `fieldManager` (`request.options.fieldManager`), when it names one.
    pub field_manager: Option<&'a str>,
}

/// What a finding asks of the API server.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Outcome {
    Deny,
    Warn,
    Audit,
}

/// One rule's verdict on one object.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Finding {
    /// The rule id from DESIGN.md's table, e.g. `migration-start-applications`.
    pub rule: &'static str,
    pub outcome: Outcome,
    /// Field path in the object, e.g. `spec.template.spec.startApplications`.
    pub field: String,
    /// The field path, what is wrong, the offending value and what to do instead: it reads on its own, as
    /// kubectl prints only messages (`spec.replicas: ...`, like the API server's own validation errors).
    pub message: String,
}

/// A mutation one rule asks for.
#[derive(Clone, Debug, PartialEq)]
pub struct Mutation {
    pub rule: &'static str,
    /// Field path of what is changed, for reports.
    pub field: String,
    /// The field path and why, for reports (`check` prints it as a `patch` finding).
    pub message: String,
    pub ops: Vec<json_patch::PatchOperation>,
}

/// The verdict of every enabled rule on one request.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Decision {
    pub findings: Vec<Finding>,
    pub mutations: Vec<Mutation>,
}

impl Decision {
    /// Allowed unless some finding denies.
    pub fn allowed(&self) -> bool {
        !self.findings.iter().any(|f| f.outcome == Outcome::Deny)
    }
}

/// Runs every enabled rule that applies to `req`.
///
/// A rule runs when the request's group and kind are among its own (the `/scale` subresource only for rules
/// that see it), its configured action is not `off`, and neither the namespace nor the user is exempt. DELETE
/// and CONNECT requests, and other subresources (`status`), are not looked at.
pub fn evaluate(req: &Request<'_>, view: &dyn ClusterView, config: &PolicyConfig) -> Decision {
    let mut decision = Decision::default();
    if !matches!(req.operation, Operation::Create | Operation::Update) {
        return decision;
    }
    let is_scale = match req.sub_resource {
        None => false,
        Some("scale") => true,
        Some(_) => return decision,
    };
    let Some(object) = req.object else {
        return decision;
    };
    let namespace = req.namespace.filter(|ns| !ns.is_empty()).or_else(|| {
        object
            .get("metadata")
            .and_then(|m| m.get("namespace"))
            .and_then(Value::as_str)
    });
    let ctx = rules::Ctx {
        req,
        view,
        admin_namespace: &config.admin_namespace,
        gitops_field_managers: &config.gitops_field_managers,
        object,
        namespace,
    };
    for rule in &RULES {
        if rule.group != req.group || !rule.kinds.contains(&req.kind) || (is_scale && !rule.scale) {
            continue;
        }
        let action = config.action(rule.id, req.kind);
        if action == Action::Off
            || config.is_exempt(rule.id, namespace, &req.user.username, &req.user.groups)
        {
            continue;
        }
        let mut out = rules::Out::default();
        (rule.check)(&ctx, &mut out);
        for v in out.violations {
            let outcome = match action {
                Action::Deny if v.at_most_warn => Outcome::Warn,
                Action::Deny => Outcome::Deny,
                Action::Warn => Outcome::Warn,
                Action::Audit | Action::Off => Outcome::Audit,
            };
            let message = format!("{}: {}", v.field, v.message);
            decision.findings.push(Finding {
                rule: rule.id,
                outcome,
                field: v.field,
                message,
            });
        }
        decision
            .mutations
            .extend(out.mutations.into_iter().map(|mut m| {
                m.message = format!("{}: {}", m.field, m.message);
                m
            }));
    }
    decision
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use serde_json::json;

    use super::rules::testing::{Case, FakeView};
    use super::*;

    fn sync_schedule(namespace: &str) -> Value {
        json!({"apiVersion": "stork.libopenstorage.org/v1alpha1", "kind": "MigrationSchedule",
               "metadata": {"name": "s", "namespace": namespace},
               "spec": {"schedulePolicyName": "default-migration-policy",
                        "template": {"spec": {"clusterPair": "p", "namespaces": [namespace], "startApplications": true}}}})
    }

    fn config(text: &str) -> PolicyConfig {
        let mut c = PolicyConfig::default();
        c.merge_yaml(Path::new("test.yaml"), text).unwrap();
        c
    }

    #[test]
    fn actions_and_exemptions_shape_findings() {
        let view = FakeView::default();
        let rule = "migration-start-applications";
        let field = "spec.template.spec.startApplications";
        Case::new("default", sync_schedule("mysql"))
            .expect(rule, "deny", field)
            .check(&view);
        Case::new("audit", sync_schedule("mysql"))
            .config(config(
                "rules:\n  migration-start-applications:\n    action: audit\n",
            ))
            .expect(rule, "audit", field)
            .check(&view);
        Case::new("off", sync_schedule("mysql"))
            .config(config(
                "rules:\n  migration-start-applications:\n    action: off\n",
            ))
            .check(&view);
        Case::new("exempt namespace", sync_schedule("sandbox"))
            .config(config("exemptNamespaces: [sandbox]\n"))
            .check(&view);
        Case::new("exempt group", sync_schedule("mysql"))
            .config(config("rules:\n  migration-start-applications:\n    exemptGroups: [system:authenticated]\n"))
            .check(&view);
    }

    #[test]
    fn other_groups_subresources_and_deletes_are_ignored() {
        let view = FakeView::default();
        let mut other_group = sync_schedule("mysql");
        other_group["apiVersion"] = json!("example.com/v1");
        Case::new("same kind, other group", other_group).check(&view);

        let object = sync_schedule("mysql");
        let user = UserInfo::default();
        let req = Request {
            operation: Operation::Delete,
            group: crate::stork::keys::STORK_GROUP,
            kind: "MigrationSchedule",
            sub_resource: None,
            namespace: Some("mysql"),
            name: Some("s"),
            object: Some(&object),
            old_object: None,
            user: &user,
            dry_run: false,
            field_manager: None,
        };
        assert_eq!(
            evaluate(&req, &view, &PolicyConfig::default()),
            Decision::default()
        );
        let status = Request {
            operation: Operation::Update,
            sub_resource: Some("status"),
            ..req
        };
        assert_eq!(
            evaluate(&status, &view, &PolicyConfig::default()),
            Decision::default()
        );
    }

    #[test]
    fn every_rule_is_in_the_default_config_and_the_shipped_file() {
        let shipped = std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("policies/default.yaml"),
        )
        .unwrap();
        for rule in &RULES {
            assert!(
                PolicyConfig::default().rules.contains_key(rule.id),
                "{}",
                rule.id
            );
            assert!(
                shipped.contains(&format!("  {}:\n", rule.id)),
                "policies/default.yaml lacks {}",
                rule.id
            );
        }
    }
}
