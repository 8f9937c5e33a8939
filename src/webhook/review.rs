//! AdmissionReview in, AdmissionReview out: the wire shapes of `admission.k8s.io/v1` and the translation to and
//! from the rule engine.
//!
//! In: the raw request body. Out: a parsed [`Review`] the rules can read through [`Review::request`], and the
//! response body built from a [`Decision`]. Nothing here does IO, so every answer shape is unit-testable.

use std::collections::BTreeMap;

use base64::Engine as _;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::policy::{Decision, Operation, Outcome, Request, UserInfo};

/// Kubernetes keeps warnings readable only up to this length (longer ones may be truncated by clients).
pub const MAX_WARNING_CHARS: usize = 120;

/// Why a body is not a usable AdmissionReview.
#[derive(Debug, thiserror::Error)]
pub enum ReviewError {
    #[error("request body is not JSON: {0}")]
    NotJson(#[source] serde_json::Error),
    #[error("request body is not an admission.k8s.io/v1 AdmissionReview: {0}")]
    Shape(#[source] serde_json::Error),
    #[error(
        "AdmissionReview has apiVersion {0:?}; register the webhook with admissionReviewVersions: [\"v1\"]"
    )]
    Version(String),
    #[error("AdmissionReview has no request")]
    NoRequest,
    #[error(
        "AdmissionReview request has operation {0:?}; expected CREATE, UPDATE, DELETE or CONNECT"
    )]
    Operation(String),
}

#[derive(Clone, Debug, Default, Deserialize)]
pub struct GroupVersionKind {
    #[serde(default)]
    pub group: String,
    #[serde(default)]
    pub version: String,
    #[serde(default)]
    pub kind: String,
}

#[derive(Clone, Debug, Default, Deserialize)]
pub struct GroupVersionResource {
    #[serde(default)]
    pub group: String,
    #[serde(default)]
    pub version: String,
    #[serde(default)]
    pub resource: String,
}

#[derive(Clone, Debug, Default, Deserialize)]
struct WireUserInfo {
    #[serde(default)]
    username: String,
    #[serde(default)]
    groups: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct WireRequest {
    uid: String,
    #[serde(default)]
    kind: GroupVersionKind,
    #[serde(default)]
    resource: GroupVersionResource,
    #[serde(default)]
    sub_resource: Option<String>,
    #[serde(default)]
    request_kind: Option<GroupVersionKind>,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    namespace: Option<String>,
    operation: String,
    #[serde(default)]
    user_info: WireUserInfo,
    #[serde(default, deserialize_with = "without_managed_fields")]
    object: Option<Value>,
    #[serde(default, deserialize_with = "without_managed_fields")]
    old_object: Option<Value>,
    #[serde(default)]
    dry_run: Option<bool>,
    /// CreateOptions, UpdateOptions or PatchOptions: only `fieldManager` is read.
    #[serde(default)]
    options: Option<WireOptions>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct WireOptions {
    #[serde(default)]
    field_manager: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct WireReview {
    #[serde(default)]
    api_version: String,
    #[serde(default)]
    request: Option<WireRequest>,
}

/// One parsed admission request, owning what [`Request`] borrows.
#[derive(Debug)]
pub struct Review {
    pub uid: String,
    pub operation: Operation,
    /// The kind of the object as sent (`kind`), e.g. `Scale` for a scale subresource.
    pub kind: GroupVersionKind,
    /// The kind the user asked for (`requestKind`); differs from `kind` under `matchPolicy: Equivalent`.
    pub request_kind: Option<GroupVersionKind>,
    pub resource: GroupVersionResource,
    pub sub_resource: Option<String>,
    pub namespace: Option<String>,
    pub name: Option<String>,
    pub user: UserInfo,
    pub object: Option<Value>,
    pub old_object: Option<Value>,
    pub dry_run: bool,
    /// The write's field manager (`options.fieldManager`).
    pub field_manager: Option<String>,
    /// The parent kind the rules judge: the object's kind, or for `/scale` the kind owning the subresource.
    pub target_kind: String,
}

impl Review {
    /// Parses a request body. The error says what is wrong for the `invalid` answer.
    pub fn parse(body: &[u8]) -> Result<Review, ReviewError> {
        let wire: WireReview = serde_json::from_slice(body).map_err(|err| {
            if err.is_syntax() || err.is_eof() {
                ReviewError::NotJson(err)
            } else {
                ReviewError::Shape(err)
            }
        })?;
        if wire.api_version != "admission.k8s.io/v1" {
            return Err(ReviewError::Version(wire.api_version));
        }
        let req = wire.request.ok_or(ReviewError::NoRequest)?;
        let operation = match req.operation.as_str() {
            "CREATE" => Operation::Create,
            "UPDATE" => Operation::Update,
            "DELETE" => Operation::Delete,
            "CONNECT" => Operation::Connect,
            other => return Err(ReviewError::Operation(other.to_string())),
        };
        let target_kind = parent_kind(&req.kind, &req.resource, req.sub_resource.as_deref());
        Ok(Review {
            uid: req.uid,
            operation,
            kind: req.kind,
            request_kind: req.request_kind,
            resource: req.resource,
            sub_resource: req.sub_resource.filter(|s| !s.is_empty()),
            namespace: req.namespace.filter(|s| !s.is_empty()),
            name: req.name.filter(|s| !s.is_empty()),
            user: UserInfo {
                username: req.user_info.username,
                groups: req.user_info.groups,
            },
            object: req.object,
            old_object: req.old_object,
            dry_run: req.dry_run.unwrap_or(false),
            field_manager: req
                .options
                .and_then(|o| o.field_manager)
                .filter(|m| !m.is_empty()),
            target_kind,
        })
    }

    /// The view of this review the rules read.
    pub fn request(&self) -> Request<'_> {
        Request {
            operation: self.operation,
            group: &self.resource.group,
            kind: &self.target_kind,
            sub_resource: self.sub_resource.as_deref(),
            namespace: self.namespace.as_deref(),
            name: self.name.as_deref().or_else(|| {
                // generateName objects have no name in the mutating phase; the object may still carry one.
                self.object.as_ref()?.pointer("/metadata/name")?.as_str()
            }),
            object: self.object.as_ref(),
            old_object: self.old_object.as_ref(),
            user: &self.user,
            dry_run: self.dry_run,
            field_manager: self.field_manager.as_deref(),
        }
    }

    /// The operation as the API server spells it, for logs and metrics.
    pub fn operation_str(&self) -> &'static str {
        operation_str(self.operation)
    }
}

pub fn operation_str(op: Operation) -> &'static str {
    match op {
        Operation::Create => "CREATE",
        Operation::Update => "UPDATE",
        Operation::Delete => "DELETE",
        Operation::Connect => "CONNECT",
    }
}

/// Reads a review's `object` or `oldObject` without `metadata.managedFields`: no rule reads them, and the API
/// server sends them with every object, where they are often most of its bytes. `null` (the API server's absent
/// object) reads as `None`.
fn without_managed_fields<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<Value>, D::Error> {
    deserializer.deserialize_any(ObjectVisitor { skip: None })
}

/// Builds a JSON object, leaving out the key `skip`; under `metadata` at the top, leaves out `managedFields`.
struct ObjectVisitor {
    /// `None` at the top of the object, `Some("managedFields")` inside its `metadata`.
    skip: Option<&'static str>,
}

impl<'de> serde::de::Visitor<'de> for ObjectVisitor {
    type Value = Option<Value>;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a Kubernetes object or null")
    }

    fn visit_unit<E>(self) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_none<E>(self) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut object = serde_json::Map::new();
        while let Some(key) = map.next_key::<String>()? {
            if Some(key.as_str()) == self.skip {
                map.next_value::<serde::de::IgnoredAny>()?;
                continue;
            }
            let value = if self.skip.is_none() && key == "metadata" {
                map.next_value_seed(ObjectVisitor {
                    skip: Some("managedFields"),
                })?
                .unwrap_or(Value::Null)
            } else {
                map.next_value()?
            };
            object.insert(key, value);
        }
        Ok(Some(Value::Object(object)))
    }
}

impl<'de> serde::de::DeserializeSeed<'de> for ObjectVisitor {
    type Value = Option<Value>;

    fn deserialize<D: serde::Deserializer<'de>>(
        self,
        deserializer: D,
    ) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

/// For `/scale` the object is an `autoscaling/v1 Scale`; the rules need the kind of the parent, which only
/// `resource` names.
fn parent_kind(
    kind: &GroupVersionKind,
    resource: &GroupVersionResource,
    sub: Option<&str>,
) -> String {
    if sub == Some("scale") {
        let parent = match (resource.group.as_str(), resource.resource.as_str()) {
            ("apps", "deployments") | ("extensions", "deployments") => Some("Deployment"),
            ("apps", "statefulsets") => Some("StatefulSet"),
            ("apps", "replicasets") | ("extensions", "replicasets") => Some("ReplicaSet"),
            ("", "replicationcontrollers") => Some("ReplicationController"),
            _ => None,
        };
        if let Some(parent) = parent {
            return parent.to_string();
        }
    }
    kind.kind.clone()
}

/// Which endpoint answers: only the mutating one may return a patch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Endpoint {
    Mutate,
    Validate,
}

impl Endpoint {
    pub fn as_str(self) -> &'static str {
        match self {
            Endpoint::Mutate => "mutate",
            Endpoint::Validate => "validate",
        }
    }
}

#[derive(Debug, Serialize, PartialEq)]
pub struct Status {
    pub status: &'static str,
    pub code: u16,
    pub reason: &'static str,
    pub message: String,
}

#[derive(Debug, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Response {
    pub uid: String,
    pub allowed: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<Status>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub patch_type: Option<&'static str>,
    /// Base64 of the JSON Patch array, as `[]byte` is encoded in Go's JSON.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub patch: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub audit_annotations: BTreeMap<String, String>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ResponseReview {
    pub api_version: &'static str,
    pub kind: &'static str,
    pub response: Response,
}

impl ResponseReview {
    pub fn new(response: Response) -> Self {
        ResponseReview {
            api_version: "admission.k8s.io/v1",
            kind: "AdmissionReview",
            response,
        }
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        // Serialising these plain structs of strings cannot fail; fall back to a fixed body rather than panic.
        serde_json::to_vec(self).unwrap_or_else(|_| {
            br#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","response":{"uid":"","allowed":false}}"#
                .to_vec()
        })
    }
}

impl Response {
    pub fn allow(uid: impl Into<String>) -> Self {
        Response {
            uid: uid.into(),
            allowed: true,
            status: None,
            patch_type: None,
            patch: None,
            warnings: Vec::new(),
            audit_annotations: BTreeMap::new(),
        }
    }

    /// A denial as kubectl shows it: `admission webhook "…" denied the request: <message>`, HTTP 403.
    pub fn deny(uid: impl Into<String>, message: String) -> Self {
        Response {
            allowed: false,
            status: Some(Status {
                status: "Failure",
                code: 403,
                reason: "Forbidden",
                message,
            }),
            ..Response::allow(uid)
        }
    }

    /// The answer to a body that is not a usable review: a 400 `Invalid` status, never an HTTP error.
    pub fn invalid(uid: impl Into<String>, message: String) -> Self {
        Response {
            allowed: false,
            status: Some(Status {
                status: "Failure",
                code: 400,
                reason: "Invalid",
                message,
            }),
            ..Response::allow(uid)
        }
    }
}

/// Finds the uid of a body that failed to parse as a review, so even the `invalid` answer echoes it when it can.
pub fn salvage_uid(body: &[u8]) -> String {
    serde_json::from_slice::<Value>(body)
        .ok()
        .and_then(|v| {
            v.pointer("/request/uid")
                .and_then(Value::as_str)
                .map(str::to_string)
        })
        .unwrap_or_default()
}

/// Shortens `text` to at most [`MAX_WARNING_CHARS`] characters, ending in `…` when cut.
pub fn clamp_warning(text: &str) -> String {
    if text.chars().count() <= MAX_WARNING_CHARS {
        return text.to_string();
    }
    let mut out: String = text.chars().take(MAX_WARNING_CHARS - 1).collect();
    out.push('…');
    out
}

/// A finding's message, led by its field path unless the message already names it: every answer says where.
fn located(finding: &crate::policy::Finding) -> String {
    if finding.field.is_empty() || finding.message.contains(&finding.field) {
        finding.message.clone()
    } else {
        format!("{}: {}", finding.field, finding.message)
    }
}

/// Turns the rules' decision into the response for `endpoint`.
///
/// `/mutate` only repairs: it answers with the JSON Patch of every mutation and leaves judging to the validating
/// phase, which sees the object after every mutating webhook ran and reports each finding once (kubectl would
/// otherwise print a warning twice). `/validate` joins every denying finding's message into a 403, turns warnings
/// into one clamped warning each, prefixed with the rule id, and audit findings into audit annotations.
pub fn respond(uid: &str, decision: &Decision, endpoint: Endpoint) -> Response {
    let mut resp = Response::allow(uid);
    if endpoint == Endpoint::Mutate {
        let ops: Vec<json_patch::PatchOperation> = decision
            .mutations
            .iter()
            .flat_map(|m| m.ops.iter().cloned())
            .collect();
        if !ops.is_empty() {
            // A Vec of serde-derived patch operations always serialises.
            if let Ok(bytes) = serde_json::to_vec(&json_patch::Patch(ops)) {
                resp.patch_type = Some("JSONPatch");
                resp.patch = Some(base64::engine::general_purpose::STANDARD.encode(bytes));
            }
        }
        return resp;
    }
    let denials: Vec<String> = decision
        .findings
        .iter()
        .filter(|f| f.outcome == Outcome::Deny)
        .map(located)
        .collect();
    if !denials.is_empty() {
        resp = Response::deny(uid, denials.join("; "));
    }
    for finding in &decision.findings {
        match finding.outcome {
            Outcome::Deny => {}
            Outcome::Warn => resp.warnings.push(clamp_warning(&format!(
                "{}: {}",
                finding.rule, finding.message
            ))),
            Outcome::Audit => {
                resp.audit_annotations
                    .insert(finding.rule.to_string(), located(finding));
            }
        }
    }
    resp
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::{Finding, Mutation};

    #[test]
    fn clamps_long_warnings_to_120_chars() {
        let long = "x".repeat(300);
        let w = clamp_warning(&long);
        assert_eq!(w.chars().count(), MAX_WARNING_CHARS);
        assert!(w.ends_with('…'));
        assert_eq!(clamp_warning("short"), "short");
    }

    #[test]
    fn scale_requests_are_judged_as_their_parent() {
        let body = br#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"u",
            "kind":{"group":"autoscaling","version":"v1","kind":"Scale"},
            "resource":{"group":"apps","version":"v1","resource":"statefulsets"},"subResource":"scale",
            "operation":"UPDATE","userInfo":{"username":"alice"},"object":{"spec":{"replicas":2}},"oldObject":null}}"#;
        let review = Review::parse(body).expect("valid review");
        assert_eq!(review.request().kind, "StatefulSet");
        assert_eq!(review.request().sub_resource, Some("scale"));
        assert!(review.old_object.is_none());
    }

    fn update_of(object: &str, old: &str) -> Vec<u8> {
        format!(
            r#"{{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{{"uid":"u",
            "kind":{{"group":"apps","version":"v1","kind":"Deployment"}},
            "resource":{{"group":"apps","version":"v1","resource":"deployments"}},"namespace":"shop",
            "operation":"UPDATE","userInfo":{{"username":"alice"}},"object":{object},"oldObject":{old}}}}}"#
        )
        .into_bytes()
    }

    #[test]
    fn objects_are_read_without_their_managed_fields() {
        let object = r#"{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"cart","managedFields":
            [{"manager":"kubectl","operation":"Apply","fieldsV1":{"f:spec":{"f:replicas":{}}}}],
            "annotations":{"a":"b"}},"spec":{"replicas":2,"managedFields":"kept: only metadata's are dropped"}}"#;
        let old = r#"{"metadata":{"managedFields":[],"name":"cart"},"spec":{"replicas":0}}"#;
        let review = Review::parse(&update_of(object, old)).expect("valid review");
        assert_eq!(
            review.object,
            Some(
                serde_json::json!({"apiVersion": "apps/v1", "kind": "Deployment",
                "metadata": {"name": "cart", "annotations": {"a": "b"}},
                "spec": {"replicas": 2, "managedFields": "kept: only metadata's are dropped"}})
            )
        );
        let keys: Vec<&String> = review
            .object
            .as_ref()
            .and_then(Value::as_object)
            .expect("object")
            .keys()
            .collect();
        assert_eq!(
            keys,
            ["apiVersion", "kind", "metadata", "spec"],
            "order is kept"
        );
        assert_eq!(
            review.old_object,
            Some(serde_json::json!({"metadata": {"name": "cart"}, "spec": {"replicas": 0}}))
        );
        assert_eq!(
            review.request().name,
            Some("cart"),
            "the name still reads from the object"
        );
    }

    #[test]
    fn absent_objects_read_as_none_and_non_objects_are_refused() {
        let review = Review::parse(&update_of("null", "null")).expect("valid review");
        assert!(review.object.is_none() && review.old_object.is_none());
        let err = Review::parse(&update_of(r#""a string""#, "null")).expect_err("not an object");
        assert!(matches!(err, ReviewError::Shape(_)), "{err}");
        assert!(
            err.to_string()
                .contains("expected a Kubernetes object or null"),
            "{err}"
        );
    }

    #[test]
    fn mutate_patches_and_validate_judges() {
        let decision = Decision {
            findings: vec![],
            mutations: vec![Mutation {
                rule: "r",
                field: "spec.x".into(),
                message: "m".into(),
                ops: serde_json::from_str(r#"[{"op":"add","path":"/spec/x","value":false}]"#)
                    .expect("patch"),
            }],
        };
        let m = respond("u", &decision, Endpoint::Mutate);
        let patch = base64::engine::general_purpose::STANDARD
            .decode(m.patch.expect("patch"))
            .expect("base64");
        assert_eq!(patch, br#"[{"op":"add","path":"/spec/x","value":false}]"#);
        assert!(respond("u", &decision, Endpoint::Validate).patch.is_none());
        let denied = Decision {
            findings: vec![Finding {
                rule: "r",
                outcome: Outcome::Deny,
                field: "f".into(),
                message: "no".into(),
            }],
            ..decision
        };
        let d = respond("u", &denied, Endpoint::Validate);
        assert!(!d.allowed && d.patch.is_none());
        assert_eq!(d.status.expect("status").code, 403);
        assert!(
            respond("u", &denied, Endpoint::Mutate).allowed,
            "the validating phase denies"
        );
    }
}
