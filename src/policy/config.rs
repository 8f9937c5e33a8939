//! The policy config: per-rule actions, exemptions and Stork's admin namespace, from `policies/*.yaml`.
//!
//! In: a directory of YAML files (merged in file-name order: later files override a rule's action and add to
//! exemption lists). Out: a [`PolicyConfig`] the rules consult. [`PolicyConfig::default`] equals the shipped
//! `policies/default.yaml` (a test keeps them equal).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use thiserror::Error;

pub use super::action::Action;
use super::rules::RULES;

/// Settings of one rule.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RuleConfig {
    pub action: Action,
    /// Overrides of `action` for some kinds, e.g. one-shot `Migration`s only warn about `startApplications`.
    pub kind_actions: BTreeMap<String, Action>,
    pub exempt_namespaces: Vec<String>,
    pub exempt_users: Vec<String>,
    pub exempt_groups: Vec<String>,
}

impl RuleConfig {
    fn with_action(action: Action) -> Self {
        Self {
            action,
            kind_actions: BTreeMap::new(),
            exempt_namespaces: Vec::new(),
            exempt_users: Vec::new(),
            exempt_groups: Vec::new(),
        }
    }
}

/// The service account the reconciler runs as in the shipped deployment: it scales workloads on failover, so
/// the standby guard must let it through.
pub const RECONCILER_USER: &str = "system:serviceaccount:drgitops-system:drgitops-reconciler";

/// The field managers of the GitOps controllers users run beside drgitops: Flux's kustomize-controller and
/// helm-controller, Argo CD's application controller (server-side apply). Their writes re-apply what Git
/// declares; the standby guard stores them at 0 replicas instead of refusing them (see `standby-scale-guard`).
pub const DEFAULT_GITOPS_FIELD_MANAGERS: [&str; 3] = [
    "kustomize-controller",
    "helm-controller",
    "argocd-controller",
];

/// Per-rule actions, exemptions and the Stork admin namespace.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PolicyConfig {
    /// Stork's admin namespace (`--admin-namespace`, default `kube-system`): Migrations there may name any namespace.
    pub admin_namespace: String,
    /// Namespaces no rule looks at.
    pub exempt_namespaces: Vec<String>,
    /// Users no rule looks at.
    pub exempt_users: Vec<String>,
    /// Groups no rule looks at.
    pub exempt_groups: Vec<String>,
    /// Field managers (`fieldManager` of a write) whose writes apply what Git declares.
    pub gitops_field_managers: Vec<String>,
    /// Settings per rule id; every rule of [`RULES`] has an entry.
    pub rules: BTreeMap<&'static str, RuleConfig>,
}

impl Default for PolicyConfig {
    fn default() -> Self {
        let mut rules: BTreeMap<&'static str, RuleConfig> = RULES
            .iter()
            .map(|r| (r.id, RuleConfig::with_action(r.default_action)))
            .collect();
        if let Some(r) = rules.get_mut("migration-start-applications") {
            r.kind_actions.insert("Migration".to_string(), Action::Warn);
        }
        // The reconciler starts applications (and resumes their CronJobs) on failover, and applies a plan's
        // schedule right after the policy it rendered with it, before the webhook's cache may have seen that
        // policy.
        for id in [
            "standby-scale-guard",
            "standby-cronjob-guard",
            "schedule-policy-exists",
        ] {
            if let Some(r) = rules.get_mut(id) {
                r.exempt_users.push(RECONCILER_USER.to_string());
            }
        }
        Self {
            admin_namespace: crate::stork::keys::DEFAULT_ADMIN_NAMESPACE.to_string(),
            exempt_namespaces: Vec::new(),
            exempt_users: Vec::new(),
            exempt_groups: Vec::new(),
            gitops_field_managers: DEFAULT_GITOPS_FIELD_MANAGERS
                .iter()
                .map(|m| m.to_string())
                .collect(),
            rules,
        }
    }
}

/// Why a policy directory could not be loaded.
#[derive(Debug, Error)]
pub enum ConfigError {
    #[error("cannot read policy directory {}", path.display())]
    ReadDir {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot read policy file {}", path.display())]
    ReadFile {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{}: not a valid policy config (policies/default.yaml shows the format)", path.display())]
    Parse {
        path: PathBuf,
        #[source]
        source: serde_yaml::Error,
    },
    #[error("{}: unknown rule {rule:?}: known rules are {}", path.display(), RULES.iter().map(|r| r.id).collect::<Vec<_>>().join(", "))]
    UnknownRule { path: PathBuf, rule: String },
    #[error("{}: kind {kind:?} in rules.{rule}.kindActions is not a kind the rule sees ({})", path.display(), kinds.join(", "))]
    UnknownKind {
        path: PathBuf,
        rule: String,
        kind: String,
        kinds: Vec<&'static str>,
    },
    #[error("{}: apiVersion is {api_version:?}; a policy file has apiVersion drgitops.dev/v1alpha1", path.display())]
    WrongApiVersion { path: PathBuf, api_version: String },
    #[error("{}: kind is {kind:?}; a policy file has kind PolicyConfig", path.display())]
    WrongKind { path: PathBuf, kind: String },
}

/// One policy file as written.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct PolicyFile {
    #[serde(default)]
    api_version: Option<String>,
    #[serde(default)]
    kind: Option<String>,
    #[serde(default)]
    admin_namespace: Option<String>,
    #[serde(default)]
    exempt_namespaces: Vec<String>,
    #[serde(default)]
    exempt_users: Vec<String>,
    #[serde(default)]
    exempt_groups: Vec<String>,
    #[serde(default)]
    gitops_field_managers: Vec<String>,
    #[serde(default)]
    rules: BTreeMap<String, RuleFile>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RuleFile {
    #[serde(default)]
    action: Option<Action>,
    #[serde(default)]
    kind_actions: BTreeMap<String, Action>,
    #[serde(default)]
    exempt_namespaces: Vec<String>,
    #[serde(default)]
    exempt_users: Vec<String>,
    #[serde(default)]
    exempt_groups: Vec<String>,
}

impl PolicyConfig {
    /// Loads every `*.yaml` / `*.yml` file of `dir` in file-name order over the built-in defaults.
    pub fn load_dir(dir: &Path) -> Result<PolicyConfig, ConfigError> {
        let entries = std::fs::read_dir(dir).map_err(|source| ConfigError::ReadDir {
            path: dir.to_path_buf(),
            source,
        })?;
        let mut files = Vec::new();
        for entry in entries {
            let path = entry
                .map_err(|source| ConfigError::ReadDir {
                    path: dir.to_path_buf(),
                    source,
                })?
                .path();
            let is_yaml = path.extension().is_some_and(|e| e == "yaml" || e == "yml");
            if is_yaml && path.is_file() {
                files.push(path);
            }
        }
        files.sort();
        let mut config = PolicyConfig::default();
        for path in files {
            let text = std::fs::read_to_string(&path).map_err(|source| ConfigError::ReadFile {
                path: path.clone(),
                source,
            })?;
            config.merge_yaml(&path, &text)?;
        }
        Ok(config)
    }

    /// Merges one policy file's text (named `path` in errors) into this config.
    pub fn merge_yaml(&mut self, path: &Path, text: &str) -> Result<(), ConfigError> {
        // An empty file (or one of only comments) changes nothing.
        if text
            .lines()
            .all(|l| l.trim().is_empty() || l.trim_start().starts_with('#'))
        {
            return Ok(());
        }
        let file: PolicyFile = serde_yaml::from_str(text).map_err(|source| ConfigError::Parse {
            path: path.to_path_buf(),
            source,
        })?;
        if let Some(kind) = file.kind.filter(|k| k != "PolicyConfig") {
            return Err(ConfigError::WrongKind {
                path: path.to_path_buf(),
                kind,
            });
        }
        if let Some(api_version) = file.api_version.filter(|v| v != "drgitops.dev/v1alpha1") {
            return Err(ConfigError::WrongApiVersion {
                path: path.to_path_buf(),
                api_version,
            });
        }
        if let Some(ns) = file.admin_namespace {
            self.admin_namespace = ns;
        }
        union(&mut self.exempt_namespaces, file.exempt_namespaces);
        union(&mut self.exempt_users, file.exempt_users);
        union(&mut self.exempt_groups, file.exempt_groups);
        union(&mut self.gitops_field_managers, file.gitops_field_managers);
        for (id, rule_file) in file.rules {
            let Some(spec) = RULES.iter().find(|r| r.id == id) else {
                return Err(ConfigError::UnknownRule {
                    path: path.to_path_buf(),
                    rule: id,
                });
            };
            let rule = self
                .rules
                .entry(spec.id)
                .or_insert_with(|| RuleConfig::with_action(spec.default_action));
            if let Some(action) = rule_file.action {
                rule.action = action;
            }
            for (kind, action) in rule_file.kind_actions {
                if !spec.kinds.contains(&kind.as_str()) {
                    return Err(ConfigError::UnknownKind {
                        path: path.to_path_buf(),
                        rule: id,
                        kind,
                        kinds: spec.kinds.to_vec(),
                    });
                }
                rule.kind_actions.insert(kind, action);
            }
            union(&mut rule.exempt_namespaces, rule_file.exempt_namespaces);
            union(&mut rule.exempt_users, rule_file.exempt_users);
            union(&mut rule.exempt_groups, rule_file.exempt_groups);
        }
        Ok(())
    }

    /// The action of `rule` for an object of `kind`.
    pub fn action(&self, rule: &str, kind: &str) -> Action {
        match self.rules.get(rule) {
            Some(r) => r.kind_actions.get(kind).copied().unwrap_or(r.action),
            None => Action::Off,
        }
    }

    /// Whether `rule` must skip a request in `namespace` by `user` with `groups` (global or per-rule exemption).
    pub fn is_exempt(
        &self,
        rule: &str,
        namespace: Option<&str>,
        user: &str,
        groups: &[String],
    ) -> bool {
        let hit = |namespaces: &[String], users: &[String], exempt_groups: &[String]| {
            namespace.is_some_and(|ns| namespaces.iter().any(|n| n == ns))
                || users.iter().any(|u| u == user)
                || groups.iter().any(|g| exempt_groups.contains(g))
        };
        hit(
            &self.exempt_namespaces,
            &self.exempt_users,
            &self.exempt_groups,
        ) || self
            .rules
            .get(rule)
            .is_some_and(|r| hit(&r.exempt_namespaces, &r.exempt_users, &r.exempt_groups))
    }
}

/// Adds the entries of `more` not yet in `list`, keeping order.
fn union(list: &mut Vec<String>, more: Vec<String>) {
    for entry in more {
        if !list.contains(&entry) {
            list.push(entry);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shipped_default_file_equals_the_built_in_default() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("policies");
        assert_eq!(
            PolicyConfig::load_dir(&dir).unwrap(),
            PolicyConfig::default()
        );
    }

    #[test]
    fn later_files_override_actions_and_add_exemptions() {
        let mut config = PolicyConfig::default();
        let text = "kind: PolicyConfig\nadminNamespace: stork-admin\nexemptNamespaces: [sandbox]\nrules:\n  \
                    transform-specs:\n    action: warn\n  migration-start-applications:\n    kindActions:\n      \
                    Migration: deny\n    exemptUsers: [alice]\n";
        config.merge_yaml(Path::new("10-site.yaml"), text).unwrap();
        assert_eq!(config.admin_namespace, "stork-admin");
        assert_eq!(config.action("transform-specs", "Migration"), Action::Warn);
        assert_eq!(
            config.action("migration-start-applications", "Migration"),
            Action::Deny
        );
        assert_eq!(
            config.action("migration-start-applications", "MigrationSchedule"),
            Action::Deny
        );
        assert!(config.is_exempt("transform-specs", Some("sandbox"), "bob", &[]));
        assert!(config.is_exempt("migration-start-applications", Some("apps"), "alice", &[]));
        assert!(!config.is_exempt("transform-specs", Some("apps"), "alice", &[]));
    }

    #[test]
    fn default_actions() {
        let config = PolicyConfig::default();
        assert_eq!(
            config.action("migration-start-applications", "Migration"),
            Action::Warn
        );
        assert_eq!(
            config.action("migration-start-applications", "MigrationSchedule"),
            Action::Deny
        );
        assert!(config.is_exempt("standby-scale-guard", Some("mysql"), RECONCILER_USER, &[]));
        assert!(config.is_exempt(
            "schedule-policy-exists",
            Some("mysql"),
            RECONCILER_USER,
            &[]
        ));
        assert!(!config.is_exempt("single-default-storageclass", None, RECONCILER_USER, &[]));
    }

    #[test]
    fn bad_files_are_rejected_with_the_file_name() {
        let mut config = PolicyConfig::default();
        let err = config
            .merge_yaml(
                Path::new("a.yaml"),
                "rules:\n  no-such-rule:\n    action: deny\n",
            )
            .unwrap_err();
        assert!(
            err.to_string()
                .starts_with("a.yaml: unknown rule \"no-such-rule\""),
            "{err}"
        );
        let err = config
            .merge_yaml(
                Path::new("b.yaml"),
                "rules:\n  transform-specs:\n    action: block\n",
            )
            .unwrap_err();
        assert!(err.to_string().starts_with("b.yaml:"), "{err}");
        let cause = std::error::Error::source(&err).unwrap().to_string();
        assert!(cause.contains("block"), "{cause}");
        let err = config
            .merge_yaml(
                Path::new("c.yaml"),
                "rules:\n  transform-specs:\n    kindActions: {Deployment: warn}\n",
            )
            .unwrap_err();
        assert!(err.to_string().contains("Deployment"), "{err}");
        let err = config
            .merge_yaml(Path::new("d.yaml"), "adminNamspace: x\n")
            .unwrap_err();
        let cause = std::error::Error::source(&err).unwrap().to_string();
        assert!(cause.contains("adminNamspace"), "{cause}");
    }
}
