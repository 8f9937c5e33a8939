//! Table-test helpers for the rules: a fake cluster view and cases stated as (rule, action, field) triples.

use serde_json::Value;

use crate::policy::view::{ClusterView, DomainInfo, PlanGuard, PolicySource};
use crate::policy::{Decision, Operation, Outcome, PolicyConfig, Request, UserInfo, evaluate};

#[derive(Default)]
pub struct FakeView {
    pub default_classes: Vec<&'static str>,
    pub domains: Option<Vec<(&'static str, bool)>>,
    pub local: Option<&'static str>,
    /// (namespace, name, has storage options)
    pub pairs: Vec<(&'static str, &'static str, bool)>,
    /// (namespace or "" for cluster-scoped, name)
    pub policies: Vec<(&'static str, &'static str)>,
    pub plans: Vec<PlanGuard>,
    pub offline: bool,
}

impl ClusterView for FakeView {
    fn default_storage_classes(&self) -> Vec<String> {
        self.default_classes.iter().map(|s| s.to_string()).collect()
    }
    fn cluster_domains(&self) -> Option<Vec<DomainInfo>> {
        self.domains.as_ref().map(|d| {
            d.iter()
                .map(|(n, a)| DomainInfo {
                    name: n.to_string(),
                    active: *a,
                })
                .collect()
        })
    }
    fn local_domain(&self) -> Option<String> {
        self.local.map(String::from)
    }
    fn cluster_pair_has_storage_options(&self, namespace: &str, name: &str) -> Option<bool> {
        self.pairs
            .iter()
            .find(|(ns, n, _)| *ns == namespace && *n == name)
            .map(|(_, _, o)| *o)
    }
    fn schedule_policy(&self, namespace: &str, name: &str) -> Option<PolicySource> {
        if self
            .policies
            .iter()
            .any(|(ns, n)| !ns.is_empty() && *ns == namespace && *n == name)
        {
            Some(PolicySource::Namespaced)
        } else if self
            .policies
            .iter()
            .any(|(ns, n)| ns.is_empty() && *n == name)
        {
            Some(PolicySource::Cluster)
        } else if crate::stork::schedule::is_built_in(name) {
            Some(PolicySource::BuiltIn)
        } else {
            None
        }
    }
    fn plans_covering(&self, namespace: &str) -> Vec<PlanGuard> {
        self.plans
            .iter()
            .filter(|p| p.namespace == namespace)
            .cloned()
            .collect()
    }
    fn authoritative(&self) -> bool {
        !self.offline
    }
}

pub fn plan(namespace: &str, primary: &str, role: Option<&str>) -> PlanGuard {
    PlanGuard {
        namespace: namespace.to_string(),
        name: "plan".to_string(),
        primary: primary.to_string(),
        role: role.map(String::from),
    }
}

fn group_of(object: &Value) -> &str {
    let api_version = object["apiVersion"].as_str().unwrap_or("v1");
    api_version.rsplit_once('/').map_or("", |(g, _)| g)
}

/// Evaluates `object` as a CREATE by an ordinary user with the default config.
pub fn run(object: &Value, view: &dyn ClusterView, namespace: Option<&str>) -> Decision {
    Case::new("run", object.clone())
        .namespace(namespace)
        .decide(view)
}

pub struct Case {
    name: &'static str,
    object: Value,
    old: Option<Value>,
    namespace: Option<String>,
    user: UserInfo,
    sub_resource: Option<&'static str>,
    kind: Option<&'static str>,
    field_manager: Option<String>,
    config: PolicyConfig,
    expected: Vec<(String, String, String)>,
}

impl Case {
    pub fn new(name: &'static str, object: Value) -> Self {
        let namespace = object["metadata"]["namespace"].as_str().map(String::from);
        Self {
            name,
            object,
            old: None,
            namespace,
            user: UserInfo {
                username: "alice".to_string(),
                groups: vec!["system:authenticated".to_string()],
            },
            sub_resource: None,
            kind: None,
            field_manager: None,
            config: PolicyConfig::default(),
            expected: Vec::new(),
        }
    }

    pub fn expect(mut self, rule: &str, action: &str, field: &str) -> Self {
        self.expected
            .push((rule.to_string(), action.to_string(), field.to_string()));
        self
    }

    pub fn update(mut self, old: Value) -> Self {
        self.old = Some(old);
        self
    }

    pub fn user(mut self, username: &str) -> Self {
        self.user.username = username.to_string();
        self
    }

    /// The write's `fieldManager`, e.g. `kustomize-controller` for Flux.
    pub fn field_manager(mut self, manager: &str) -> Self {
        self.field_manager = Some(manager.to_string());
        self
    }

    pub fn namespace(mut self, namespace: Option<&str>) -> Self {
        self.namespace = namespace.map(String::from);
        self
    }

    /// A `/scale` request on a workload of `kind` (the object is an `autoscaling/v1` Scale).
    pub fn scale(mut self, kind: &'static str) -> Self {
        self.sub_resource = Some("scale");
        self.kind = Some(kind);
        self
    }

    pub fn config(mut self, config: PolicyConfig) -> Self {
        self.config = config;
        self
    }

    pub fn decide(&self, view: &dyn ClusterView) -> Decision {
        let kind = self
            .kind
            .unwrap_or_else(|| self.object["kind"].as_str().unwrap_or(""));
        let group = if self.sub_resource.is_some() {
            "apps"
        } else {
            group_of(&self.object)
        };
        let req = Request {
            operation: if self.old.is_some() {
                Operation::Update
            } else {
                Operation::Create
            },
            group,
            kind,
            sub_resource: self.sub_resource,
            namespace: self.namespace.as_deref(),
            name: self.object["metadata"]["name"].as_str(),
            object: Some(&self.object),
            old_object: self.old.as_ref(),
            user: &self.user,
            dry_run: false,
            field_manager: self.field_manager.as_deref(),
        };
        evaluate(&req, view, &self.config)
    }

    pub fn check(self, view: &dyn ClusterView) {
        let decision = self.decide(view);
        let mut got: Vec<(String, String, String)> = decision
            .findings
            .iter()
            .map(|f| {
                let action = match f.outcome {
                    Outcome::Deny => "deny",
                    Outcome::Warn => "warn",
                    Outcome::Audit => "audit",
                };
                (f.rule.to_string(), action.to_string(), f.field.clone())
            })
            .chain(
                decision
                    .mutations
                    .iter()
                    .map(|m| (m.rule.to_string(), "patch".to_string(), m.field.clone())),
            )
            .collect();
        got.sort();
        let mut want = self.expected.clone();
        want.sort();
        assert_eq!(
            got, want,
            "case {:?}: findings {:#?}",
            self.name, decision.findings
        );
        // Messages read on their own (kubectl shows nothing else): the field path first, then the problem.
        for (field, message) in decision
            .findings
            .iter()
            .map(|f| (&f.field, &f.message))
            .chain(decision.mutations.iter().map(|m| (&m.field, &m.message)))
        {
            let rest = message.strip_prefix(&format!("{field}: ")).unwrap_or("");
            assert!(
                rest.len() > 10,
                "case {:?}: message {message:?} does not start with {field:?}",
                self.name
            );
        }
    }
}
