//! The DR admission rules: one pure function per rule over (request, cluster view, policy config).
//!
//! In: a [`Request`] (what the API server asked about), a [`ClusterView`] and a [`PolicyConfig`].
//! Out: a [`Decision`]: findings (deny / warn / audit) and the JSON patch the mutating webhook would apply.
//! The webhook, the reconciler and `drgitops check` all call [`evaluate`], so they can never disagree.

use serde_json::Value;

use crate::cluster::ClusterView;

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
    /// What is wrong, the offending value, and what to do instead.
    pub message: String,
}

/// A mutation one rule asks for.
#[derive(Clone, Debug, PartialEq)]
pub struct Mutation {
    pub rule: &'static str,
    /// Field path of what is changed, for reports.
    pub field: String,
    /// Why, for reports (`check` prints it as a `patch` finding).
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

/// Per-rule actions, exemptions and the Stork admin namespace, from `policies/*.yaml`.
#[derive(Clone, Debug, Default)]
pub struct PolicyConfig {}

/// Runs every enabled rule that applies to `req`.
pub fn evaluate(_req: &Request<'_>, _view: &dyn ClusterView, _config: &PolicyConfig) -> Decision {
    Decision::default()
}
