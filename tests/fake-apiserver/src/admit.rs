//! Admission as the apiserver runs it around every write: the Mutating/ValidatingWebhookConfigurations stored in
//! this server are read at call time and handed to the webhook caller (`admission.rs`).
//!
//! In: a write about to happen ([`Request`]). Out: the (possibly mutated) object and warnings, or the denial as
//! an API error.

use serde_json::Value;

use crate::admission::{Admission, Attributes, Denied, UserInfo};
use crate::resources::ResourceType;
use crate::status::ApiError;
use crate::store::Store;

pub use crate::admission::Operation;

/// Who makes the request (the fake authenticates nobody; clients may name a user with impersonation headers).
#[derive(Debug, Clone)]
pub struct User {
    pub username: String,
    pub groups: Vec<String>,
}

impl Default for User {
    fn default() -> Self {
        User {
            username: "system:admin".into(),
            groups: vec!["system:masters".into(), "system:authenticated".into()],
        }
    }
}

/// A write as admission sees it.
#[derive(Debug, Clone)]
pub struct Request {
    pub rt: ResourceType,
    pub operation: Operation,
    pub sub_resource: Option<String>,
    pub name: String,
    pub namespace: String,
    pub object: Option<Value>,
    pub old_object: Option<Value>,
    pub dry_run: bool,
    pub options: Value,
    pub user: User,
}

/// Calls the webhooks registered in the server.
#[derive(Debug, Default)]
pub struct Admitter {
    admission: Admission,
}

fn denied(d: Denied) -> ApiError {
    let reason = if d.reason.is_empty() {
        crate::status::reason_for_code(d.code).to_string()
    } else {
        d.reason
    };
    ApiError {
        code: d.code,
        reason,
        message: d.message,
        details: None,
        raced: false,
        warnings: Vec::new(),
    }
}

impl Admitter {
    pub fn new() -> Self {
        Admitter {
            admission: Admission::new(),
        }
    }

    /// The stored configurations of one kind, or None when there are none (the common, fast case).
    fn configs(store: &Store, plural: &str) -> Option<Vec<Value>> {
        let state = store.lock();
        let rt = state.lookup("admissionregistration.k8s.io", "v1", plural)?;
        let configs = state.list(&rt, None);
        (!configs.is_empty()).then_some(configs)
    }

    fn attributes(store: &Store, req: &Request) -> Attributes {
        let scale = req.sub_resource.as_deref() == Some("scale");
        let (group, version, kind) = if scale {
            (
                "autoscaling".to_string(),
                "v1".to_string(),
                "Scale".to_string(),
            )
        } else {
            (
                req.rt.group.clone(),
                req.rt.version.clone(),
                req.rt.kind.clone(),
            )
        };
        let namespace_labels = if req.rt.namespaced {
            store.lock().namespace_labels(&req.namespace)
        } else if req.rt.group.is_empty() && req.rt.kind == "Namespace" {
            req.object
                .as_ref()
                .or(req.old_object.as_ref())
                .map(crate::selectors::labels_of)
        } else {
            None
        };
        Attributes {
            operation: req.operation,
            group,
            version,
            kind,
            resource_group: req.rt.group.clone(),
            resource_version: req.rt.version.clone(),
            resource: req.rt.plural.clone(),
            sub_resource: req.sub_resource.clone(),
            name: (!req.name.is_empty()).then(|| req.name.clone()),
            namespace: req.rt.namespaced.then(|| req.namespace.clone()),
            namespace_labels,
            object: req.object.clone(),
            old_object: req.old_object.clone(),
            dry_run: req.dry_run,
            user: UserInfo {
                username: req.user.username.clone(),
                uid: String::new(),
                groups: req.user.groups.clone(),
            },
            options: Some(req.options.clone()),
        }
    }

    /// Runs the matching mutating webhooks; returns the mutated object (None = unchanged) and warnings.
    pub async fn mutate(
        &self,
        store: &Store,
        req: &Request,
    ) -> Result<(Option<Value>, Vec<String>), ApiError> {
        let Some(configs) = Self::configs(store, "mutatingwebhookconfigurations") else {
            return Ok((None, Vec::new()));
        };
        let attrs = Self::attributes(store, req);
        let (outcome, warnings) = self.admission.mutate_with_warnings(&configs, &attrs).await;
        match outcome {
            Ok(object) => Ok((object, warnings)),
            Err(d) => Err(denied(d).with_warnings(&warnings)),
        }
    }

    /// Runs the matching validating webhooks; returns warnings or the first denial.
    pub async fn validate(&self, store: &Store, req: &Request) -> Result<Vec<String>, ApiError> {
        let Some(configs) = Self::configs(store, "validatingwebhookconfigurations") else {
            return Ok(Vec::new());
        };
        let attrs = Self::attributes(store, req);
        let (outcome, warnings) = self
            .admission
            .validate_with_warnings(&configs, &attrs)
            .await;
        match outcome {
            Ok(()) => Ok(warnings),
            Err(d) => Err(denied(d).with_warnings(&warnings)),
        }
    }
}
