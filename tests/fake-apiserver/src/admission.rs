//! Calling admission webhooks the way kube-apiserver does.
//!
//! In: the `MutatingWebhookConfiguration` / `ValidatingWebhookConfiguration` objects as the server stores them
//! (plain JSON), and the [`Attributes`] of one write (operation, kind, resource, object, old object, namespace
//! labels, dry run, options). Out: the object after every matching mutating webhook's JSON patch and the
//! warnings the webhooks returned, or a [`Denied`] carrying the HTTP code, reason and message the real apiserver
//! would answer with.
//!
//! What is decided here, following `k8s.io/apiserver/pkg/admission/plugin/webhook`:
//! - which webhooks run: `rules` (operations, apiGroups, apiVersions, resources with subresources and `*`,
//!   scope), `namespaceSelector` (cluster-scoped objects always match; a Namespace is judged by its own labels)
//!   and `objectSelector` (object or old object labels), in configuration-name order, then webhook order;
//! - how they are called: an `admission.k8s.io/v1` `AdmissionReview` POSTed to `clientConfig.url` over HTTPS,
//!   the server certificate verified against `caBundle`, `?timeout=Ns` appended, `timeoutSeconds` (default 10,
//!   at most 30) enforced; `clientConfig.service` cannot be resolved by an in-memory server and is reported as a
//!   calling failure;
//! - what the answer means: uid and kind checked, JSON patches (base64 string or byte array) applied in order,
//!   warnings collected, denials turned into `admission webhook "<name>" denied the request: <message>` with
//!   codes below 400 lifted to 400, calling failures into `failed calling webhook ...` (500) unless
//!   `failurePolicy: Ignore`, and dry-run requests refused for webhooks with side effects.
//!
//! `reinvocationPolicy: IfNeeded` webhooks are called a second time when later webhooks changed the object.
//! `matchConditions` (CEL) are not evaluated; `matchPolicy: Equivalent` behaves like `Exact` because the
//! in-memory server serves one version per resource. Writes to admission configuration objects themselves are
//! never sent to webhooks, as in the apiserver.
//!
//! How the server calls it, per write (what kube-apiserver does):
//! 1. decode, apply defaults, then [`Admission::mutate`] with every stored MutatingWebhookConfiguration: for a
//!    create the object has no uid and `creationTimestamp: null`, and `name` is None under `generateName`;
//! 2. assign uid, timestamps and the generated name, then [`Admission::validate`] with the final object and every
//!    stored ValidatingWebhookConfiguration; store only if both succeed;
//! 3. a PATCH (any type, apply included) is `Operation::Update` with `UpdateOptions`, an apply that creates is
//!    `Operation::Create` with `CreateOptions`; DELETE passes the stored object as `old_object` and no object;
//!    `/scale` passes an `autoscaling/v1 Scale` with the parent's resource and `sub_resource: Some("scale")`;
//! 4. `dryRun=All` sets `dry_run`; a [`Denied`] becomes the HTTP answer (`code`, body [`Denied::to_status`]);
//!    each warning of either phase becomes a `Warning` header ([`warning_header`]), on success and failure alike
//!    (the `*_with_warnings` forms keep the warnings of a refused request).

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine as _;
use bytes::Bytes;
use http_body_util::{BodyExt as _, Full};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde_json::{Map, Value, json};

/// The admission operation, as it appears in `AdmissionRequest.operation` and in webhook rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    Create,
    Update,
    Delete,
    Connect,
}

impl Operation {
    /// The wire spelling: `CREATE`, `UPDATE`, `DELETE`, `CONNECT`.
    pub fn as_str(self) -> &'static str {
        match self {
            Operation::Create => "CREATE",
            Operation::Update => "UPDATE",
            Operation::Delete => "DELETE",
            Operation::Connect => "CONNECT",
        }
    }
}

/// The requesting user, sent as `request.userInfo`.
#[derive(Debug, Clone, Default)]
pub struct UserInfo {
    pub username: String,
    pub uid: String,
    pub groups: Vec<String>,
}

/// Everything the webhooks are told about one request.
#[derive(Debug, Clone)]
pub struct Attributes {
    pub operation: Operation,
    /// Group, version and kind of `object` (for `/scale`: `autoscaling`, `v1`, `Scale`).
    pub group: String,
    pub version: String,
    pub kind: String,
    /// Group, version and plural of the parent resource (for `/scale` still e.g. `apps`, `v1`, `deployments`).
    pub resource_group: String,
    pub resource_version: String,
    pub resource: String,
    pub sub_resource: Option<String>,
    /// Absent for a create with `generateName` in the mutating phase.
    pub name: Option<String>,
    /// Absent for cluster-scoped objects.
    pub namespace: Option<String>,
    /// Labels of the object's namespace (for namespaceSelector); None for cluster-scoped objects.
    pub namespace_labels: Option<BTreeMap<String, String>>,
    /// None on DELETE.
    pub object: Option<Value>,
    /// None on CREATE and CONNECT.
    pub old_object: Option<Value>,
    pub dry_run: bool,
    pub user: UserInfo,
    /// `CreateOptions` / `UpdateOptions` / `DeleteOptions`; None for CONNECT.
    pub options: Option<Value>,
}

/// A request refused by admission: the `metav1.Status` the server answers with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Denied {
    pub code: u16,
    /// The `metav1.Status` reason; empty when a denying webhook gave none (the real apiserver passes that on).
    pub reason: String,
    /// Already in the apiserver's words, e.g. `admission webhook "<name>" denied the request: ...`.
    pub message: String,
}

impl Denied {
    /// The `metav1.Status` body for this refusal, ready to serialise as the HTTP response.
    pub fn to_status(&self) -> Value {
        let mut status = json!({
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "code": self.code,
        });
        if !self.reason.is_empty() {
            status["reason"] = Value::String(self.reason.clone());
        }
        status
    }

    fn internal(message: impl std::fmt::Display) -> Denied {
        Denied {
            code: 500,
            reason: "InternalError".to_string(),
            message: format!("Internal error occurred: {message}"),
        }
    }

    fn bad_request(message: String) -> Denied {
        Denied {
            code: 400,
            reason: "BadRequest".to_string(),
            message,
        }
    }
}

impl std::fmt::Display for Denied {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Denied {}

/// The `Warning` header value the apiserver sends for one admission warning: `299 - "<text>"`, quotes and
/// backslashes escaped (`k8s.io/apimachinery/pkg/util/net.NewWarningHeader`). kubectl prints it as
/// `Warning: <text>`. None for text a header cannot carry (control characters).
pub fn warning_header(text: &str) -> Option<http::HeaderValue> {
    if text.chars().any(char::is_control) {
        return None;
    }
    let mut value = String::with_capacity(text.len() + 8);
    value.push_str("299 - \"");
    for c in text.chars() {
        if c == '"' || c == '\\' {
            value.push('\\');
        }
        value.push(c);
    }
    value.push('"');
    http::HeaderValue::from_bytes(value.as_bytes()).ok()
}

/// One invalid field of a webhook configuration, as the apiserver's `field.Error` renders it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    /// Path like `webhooks[0].sideEffects`.
    pub field: String,
    /// `details.causes[].reason`: `FieldValueRequired`, `FieldValueInvalid`, `FieldValueNotSupported`,
    /// `FieldValueDuplicate`.
    pub reason: &'static str,
    /// `details.causes[].message`, e.g. `Required value: must specify one of None, NoneOnDryRun`.
    pub message: String,
}

impl std::fmt::Display for FieldError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.field, self.message)
    }
}

impl FieldError {
    fn required(field: String, detail: &str) -> Self {
        let message = if detail.is_empty() {
            "Required value".to_string()
        } else {
            format!("Required value: {detail}")
        };
        FieldError {
            field,
            reason: "FieldValueRequired",
            message,
        }
    }

    fn invalid(field: String, value: &Value, detail: &str) -> Self {
        FieldError {
            field,
            reason: "FieldValueInvalid",
            message: format!("Invalid value: {value}: {detail}"),
        }
    }

    fn unsupported(field: String, value: &Value, supported: &[&str]) -> Self {
        let supported: Vec<String> = supported.iter().map(|v| format!("\"{v}\"")).collect();
        FieldError {
            field,
            reason: "FieldValueNotSupported",
            message: format!(
                "Unsupported value: {value}: supported values: {}",
                supported.join(", ")
            ),
        }
    }

    fn duplicate(field: String, value: &Value) -> Self {
        FieldError {
            field,
            reason: "FieldValueDuplicate",
            message: format!("Duplicate value: {value}"),
        }
    }
}

/// The apiserver's validation of a `Mutating/ValidatingWebhookConfiguration` (v1), after defaulting. Empty when
/// valid; otherwise answer 422 with [`invalid_status`].
pub fn validate_configuration(object: &Value) -> Vec<FieldError> {
    let mutating =
        object.get("kind").and_then(Value::as_str) == Some("MutatingWebhookConfiguration");
    let mut errors = Vec::new();
    let webhooks = object
        .get("webhooks")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default();
    let mut seen = Vec::new();
    for (i, webhook) in webhooks.iter().enumerate() {
        let at = |field: &str| format!("webhooks[{i}].{field}");
        match webhook.get("name").and_then(Value::as_str) {
            None | Some("") => errors.push(FieldError::required(at("name"), "")),
            Some(name) => {
                let segments: Vec<&str> = name.split('.').collect();
                let dns_ok = name.len() <= 253
                    && segments.iter().all(|s| {
                        !s.is_empty()
                            && s.len() <= 63
                            && s.bytes()
                                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
                            && !s.starts_with('-')
                            && !s.ends_with('-')
                    });
                if !dns_ok {
                    errors.push(FieldError::invalid(
                        at("name"),
                        &json!(name),
                        "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, \
                         '-' or '.', and must start and end with an alphanumeric character",
                    ));
                } else if segments.len() < 3 {
                    errors.push(FieldError::invalid(
                        at("name"),
                        &json!(name),
                        "should be a domain with at least three segments separated by dots",
                    ));
                }
                if seen.contains(&name) {
                    errors.push(FieldError::duplicate(at("name"), &json!(name)));
                }
                seen.push(name);
            }
        }
        let rules = webhook
            .get("rules")
            .and_then(Value::as_array)
            .map(Vec::as_slice)
            .unwrap_or_default();
        for (j, rule) in rules.iter().enumerate() {
            validate_rule(rule, &format!("webhooks[{i}].rules[{j}]"), &mut errors);
        }
        let check_enum = |errors: &mut Vec<FieldError>, key: &str, supported: &[&str]| {
            if let Some(value) = webhook.get(key).filter(|v| !v.is_null())
                && !value.as_str().is_some_and(|v| supported.contains(&v))
            {
                errors.push(FieldError::unsupported(at(key), value, supported));
            }
        };
        check_enum(&mut errors, "failurePolicy", &["Fail", "Ignore"]);
        check_enum(&mut errors, "matchPolicy", &["Equivalent", "Exact"]);
        if mutating {
            check_enum(&mut errors, "reinvocationPolicy", &["IfNeeded", "Never"]);
        }
        match webhook.get("sideEffects").filter(|v| !v.is_null()) {
            None => errors.push(FieldError::required(
                at("sideEffects"),
                "must specify one of None, NoneOnDryRun",
            )),
            Some(_) => check_enum(&mut errors, "sideEffects", &["None", "NoneOnDryRun"]),
        }
        if let Some(timeout) = webhook.get("timeoutSeconds").filter(|v| !v.is_null())
            && !timeout.as_i64().is_some_and(|t| (1..=30).contains(&t))
        {
            errors.push(FieldError::invalid(
                at("timeoutSeconds"),
                timeout,
                "the timeout value must be between 1 and 30 seconds",
            ));
        }
        let versions = strings(webhook.get("admissionReviewVersions"));
        if versions.is_empty() {
            errors.push(FieldError::required(
                at("admissionReviewVersions"),
                "must specify one of v1, v1beta1",
            ));
        } else if !versions.iter().any(|v| v == "v1" || v == "v1beta1") {
            errors.push(FieldError::invalid(
                at("admissionReviewVersions"),
                &json!(versions),
                "must include at least one of v1, v1beta1",
            ));
        }
        validate_client_config(
            webhook.get("clientConfig"),
            &at("clientConfig"),
            &mut errors,
        );
        for key in ["namespaceSelector", "objectSelector"] {
            if let Some(selector) = webhook.get(key).filter(|v| !v.is_null()) {
                validate_selector(selector, &at(key), &mut errors);
            }
        }
    }
    errors
}

fn validate_rule(rule: &Value, at: &str, errors: &mut Vec<FieldError>) {
    let lists: [(&str, &str, Option<&[&str]>); 4] = [
        (
            "operations",
            "operations",
            Some(&["*", "CONNECT", "CREATE", "DELETE", "UPDATE"]),
        ),
        ("apiGroups", "API groups", None),
        ("apiVersions", "API versions", None),
        ("resources", "resources", None),
    ];
    for (key, noun, supported) in lists {
        let field = format!("{at}.{key}");
        let Some(values) = rule
            .get(key)
            .and_then(Value::as_array)
            .filter(|v| !v.is_empty())
        else {
            errors.push(FieldError::required(field, ""));
            continue;
        };
        let texts: Vec<&str> = values.iter().filter_map(Value::as_str).collect();
        if texts.len() > 1 && texts.contains(&"*") && key != "resources" {
            errors.push(FieldError::invalid(
                field.clone(),
                &Value::Array(values.clone()),
                &format!("if '*' is present, must not specify other {noun}"),
            ));
        }
        for (k, value) in values.iter().enumerate() {
            let item = format!("{field}[{k}]");
            match (value.as_str(), supported) {
                (None, _) => errors.push(FieldError::invalid(item, value, "must be a string")),
                (Some(""), _) if key != "apiGroups" => errors.push(FieldError::required(item, "")),
                (Some(text), Some(supported)) if !supported.contains(&text) => {
                    errors.push(FieldError::unsupported(item, value, supported));
                }
                _ => {}
            }
        }
    }
    if let Some(scope) = rule.get("scope").filter(|v| !v.is_null())
        && !scope
            .as_str()
            .is_some_and(|s| ["*", "Cluster", "Namespaced"].contains(&s))
    {
        errors.push(FieldError::unsupported(
            format!("{at}.scope"),
            scope,
            &["*", "Cluster", "Namespaced"],
        ));
    }
}

fn validate_client_config(config: Option<&Value>, at: &str, errors: &mut Vec<FieldError>) {
    let url = config.and_then(|c| c.get("url")).filter(|v| !v.is_null());
    let service = config
        .and_then(|c| c.get("service"))
        .filter(|v| !v.is_null());
    match (url, service) {
        (Some(url), None) => {
            let field = format!("{at}.url");
            let text = url.as_str().unwrap_or_default();
            let problem = match text.split_once("://") {
                Some(("https", rest)) => {
                    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
                    if authority.is_empty() {
                        Some("host must be specified")
                    } else if authority.contains('@') {
                        Some("user information is not permitted in the URL")
                    } else if text.contains('#') {
                        Some("fragments are not permitted in the URL")
                    } else if text.contains('?') {
                        Some("query parameters are not permitted in the URL")
                    } else {
                        None
                    }
                }
                _ => Some("'https' is the only allowed URL scheme"),
            };
            if let Some(problem) = problem {
                errors.push(FieldError::invalid(field, url, problem));
            }
        }
        (None, Some(service)) => {
            for key in ["namespace", "name"] {
                if service
                    .get(key)
                    .and_then(Value::as_str)
                    .is_none_or(str::is_empty)
                {
                    errors.push(FieldError::required(format!("{at}.service.{key}"), ""));
                }
            }
            if let Some(path) = service.get("path").and_then(Value::as_str)
                && !path.is_empty()
                && !path.starts_with('/')
            {
                errors.push(FieldError::invalid(
                    format!("{at}.service.path"),
                    &json!(path),
                    "must start with a '/'",
                ));
            }
            if let Some(port) = service.get("port").filter(|v| !v.is_null())
                && !port.as_i64().is_some_and(|p| (1..=65535).contains(&p))
            {
                errors.push(FieldError::invalid(
                    format!("{at}.service.port"),
                    port,
                    "port is not valid: must be between 1 and 65535, inclusive",
                ));
            }
        }
        _ => errors.push(FieldError::required(
            at.to_string(),
            "exactly one of url or service is required",
        )),
    }
    if let Some(bundle) = config
        .and_then(|c| c.get("caBundle"))
        .filter(|v| !v.is_null())
    {
        let decodes = bundle
            .as_str()
            .is_some_and(|b| base64::engine::general_purpose::STANDARD.decode(b).is_ok());
        if !decodes {
            errors.push(FieldError::invalid(
                format!("{at}.caBundle"),
                bundle,
                "must be base64-encoded PEM",
            ));
        }
    }
}

fn validate_selector(selector: &Value, at: &str, errors: &mut Vec<FieldError>) {
    let expressions = selector
        .get("matchExpressions")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default();
    for (i, expression) in expressions.iter().enumerate() {
        let field = format!("{at}.matchExpressions[{i}]");
        let operator = expression.get("operator").cloned().unwrap_or(Value::Null);
        let values = strings(expression.get("values"));
        match operator.as_str() {
            Some("In" | "NotIn") if values.is_empty() => errors.push(FieldError::required(
                format!("{field}.values"),
                "must be specified when `operator` is 'In' or 'NotIn'",
            )),
            Some("Exists" | "DoesNotExist") if !values.is_empty() => {
                errors.push(FieldError::invalid(
                    format!("{field}.values"),
                    &json!(values),
                    "may not be specified when `operator` is 'Exists' or 'DoesNotExist'",
                ))
            }
            Some("In" | "NotIn" | "Exists" | "DoesNotExist") => {}
            _ => errors.push(FieldError::unsupported(
                format!("{field}.operator"),
                &operator,
                &["In", "NotIn", "Exists", "DoesNotExist"],
            )),
        }
        if expression
            .get("key")
            .and_then(Value::as_str)
            .is_none_or(str::is_empty)
        {
            errors.push(FieldError::required(format!("{field}.key"), ""));
        }
    }
}

/// The 422 `metav1.Status` for an invalid webhook configuration:
/// `ValidatingWebhookConfiguration.admissionregistration.k8s.io "x" is invalid: <field>: <message>` (several
/// errors in brackets, comma-separated), with `details.causes`.
pub fn invalid_status(kind: &str, name: &str, errors: &[FieldError]) -> Value {
    let listed: Vec<String> = errors.iter().map(ToString::to_string).collect();
    let summary = match listed.as_slice() {
        [one] => one.clone(),
        many => format!("[{}]", many.join(", ")),
    };
    json!({
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": format!("{kind}.admissionregistration.k8s.io \"{name}\" is invalid: {summary}"),
        "reason": "Invalid",
        "details": {
            "name": name,
            "group": "admissionregistration.k8s.io",
            "kind": kind,
            "causes": errors.iter().map(|e| json!({
                "reason": e.reason,
                "message": e.message,
                "field": e.field,
            })).collect::<Vec<_>>(),
        },
        "code": 422,
    })
}

type HttpsClient = Client<HttpsConnector<HttpConnector>, Full<Bytes>>;

/// Calls admission webhooks. Cheap to share; keeps one HTTPS client (and its connection pool) per CA bundle.
#[derive(Clone, Default)]
pub struct Admission {
    clients: Arc<Mutex<HashMap<Vec<u8>, HttpsClient>>>,
}

impl std::fmt::Debug for Admission {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Admission").finish_non_exhaustive()
    }
}

impl Admission {
    pub fn new() -> Self {
        Self::default()
    }

    /// Runs the matching mutating webhooks of the given MutatingWebhookConfigurations (JSON objects as stored) in
    /// order, applying their JSON patches to `attrs.object`; returns the final object and the warnings.
    pub async fn mutate(
        &self,
        configs: &[Value],
        attrs: &Attributes,
    ) -> Result<(Option<Value>, Vec<String>), Denied> {
        let (outcome, warnings) = self.mutate_with_warnings(configs, attrs).await;
        outcome.map(|object| (object, warnings))
    }

    /// Runs the matching validating webhooks; returns warnings, or the first denial.
    pub async fn validate(
        &self,
        configs: &[Value],
        attrs: &Attributes,
    ) -> Result<Vec<String>, Denied> {
        let (outcome, warnings) = self.validate_with_warnings(configs, attrs).await;
        outcome.map(|()| warnings)
    }

    /// [`Admission::mutate`], but the warnings gathered before a refusal (including the refusing webhook's own)
    /// are returned too: the apiserver sends them as `Warning` headers on the error response as well.
    pub async fn mutate_with_warnings(
        &self,
        configs: &[Value],
        attrs: &Attributes,
    ) -> (Result<Option<Value>, Denied>, Vec<String>) {
        let mut warnings = Vec::new();
        let outcome = self.run(configs, attrs, true, &mut warnings).await;
        (outcome, warnings)
    }

    /// [`Admission::validate`], but the warnings gathered before a refusal are returned too.
    pub async fn validate_with_warnings(
        &self,
        configs: &[Value],
        attrs: &Attributes,
    ) -> (Result<(), Denied>, Vec<String>) {
        let mut warnings = Vec::new();
        let outcome = self.run(configs, attrs, false, &mut warnings).await;
        (outcome.map(|_| ()), warnings)
    }

    /// One admission phase. Mutating webhooks see the object as the previous ones patched it; validating ones
    /// all see `attrs.object`. Mutating webhooks with `reinvocationPolicy: IfNeeded` are called once more, in
    /// order, when a later webhook changed the object after them (the apiserver's single reinvocation).
    async fn run(
        &self,
        configs: &[Value],
        attrs: &Attributes,
        mutating: bool,
        warnings: &mut Vec<String>,
    ) -> Result<Option<Value>, Denied> {
        let mut object = attrs.object.clone();
        if is_exempt(attrs) {
            return Ok(object);
        }
        let hooks = ordered_webhooks(configs);
        // Webhooks that asked to be reinvoked, with the object as they left it.
        let mut reinvocable = Vec::new();
        for (index, hook) in hooks.iter().enumerate() {
            let hook = match hook {
                Ok(hook) => hook,
                Err(failure) => {
                    failure.handle()?;
                    continue;
                }
            };
            let Some(after) = self
                .invoke(hook, attrs, object.clone(), mutating, warnings)
                .await?
            else {
                continue;
            };
            object = after;
            if mutating && hook.reinvoke_if_needed {
                reinvocable.push((index, object.clone()));
            }
        }
        let again: Vec<usize> = reinvocable
            .into_iter()
            .filter(|(_, left)| *left != object)
            .map(|(index, _)| index)
            .collect();
        for index in again {
            if let Some(Ok(hook)) = hooks.get(index)
                && let Some(after) = self
                    .invoke(hook, attrs, object.clone(), mutating, warnings)
                    .await?
            {
                object = after;
            }
        }
        Ok(object)
    }

    /// Calls one webhook if it applies. `Ok(None)` when it was skipped (not matching, or an ignored failure),
    /// `Ok(Some(object))` with the object after its patch.
    async fn invoke(
        &self,
        hook: &Webhook,
        attrs: &Attributes,
        object: Option<Value>,
        mutating: bool,
        warnings: &mut Vec<String>,
    ) -> Result<Option<Option<Value>>, Denied> {
        if !should_call(hook, attrs, object.as_ref())? {
            return Ok(None);
        }
        check_dry_run(hook, attrs)?;
        let reply = match self.call(hook, attrs, object.as_ref(), mutating).await {
            Ok(reply) => reply,
            Err(failure) => {
                failure.handle()?;
                return Ok(None);
            }
        };
        push_warnings(warnings, reply.warnings);
        if !reply.allowed {
            return Err(rejection(&hook.name, reply.status.as_ref()));
        }
        match reply.patch {
            Some(patch) => Ok(Some(Some(apply_webhook_patch(&hook.name, object, &patch)?))),
            None => Ok(Some(object)),
        }
    }

    /// One round trip to one webhook. Every error here is a "calling" failure that `failurePolicy` governs.
    async fn call(
        &self,
        hook: &Webhook,
        attrs: &Attributes,
        object: Option<&Value>,
        mutating: bool,
    ) -> Result<Reply, CallFailure> {
        let url = match &hook.target {
            Target::Url(url) => url.clone(),
            Target::Service {
                namespace,
                name,
                path,
                port,
            } => {
                let url = format!(
                    "https://{name}.{namespace}.svc:{port}{path}?timeout={}s",
                    hook.timeout.as_secs()
                );
                return Err(hook.failure(format!(
                    "failed to call webhook: Post \"{url}\": service \"{name}\" in namespace \"{namespace}\" \
                     cannot be reached from the in-memory API server; register the webhook with clientConfig.url"
                )));
            }
        };
        if !url.starts_with("https://") {
            return Err(hook.failure(format!(
                "failed to call webhook: Post \"{url}\": 'https' is the only allowed URL scheme"
            )));
        }
        let separator = if url.contains('?') { '&' } else { '?' };
        let url = format!("{url}{separator}timeout={}s", hook.timeout.as_secs());
        let uid = uuid::Uuid::new_v4().to_string();
        let review = review_request(hook, attrs, object, &uid);
        let client = self
            .client(hook.ca_bundle.as_deref())
            .map_err(|e| hook.failure(format!("failed to call webhook: Post \"{url}\": {e}")))?;
        let body = serde_json::to_vec(&review).map_err(|e| {
            hook.failure(format!("failed to call webhook: encoding the review: {e}"))
        })?;
        let request = http::Request::post(&url)
            .header(http::header::CONTENT_TYPE, "application/json")
            .header(http::header::ACCEPT, "application/json, */*")
            .body(Full::new(Bytes::from(body)))
            .map_err(|e| hook.failure(format!("failed to call webhook: Post \"{url}\": {e}")))?;

        let exchange = async {
            let response = client.request(request).await.map_err(|e| error_chain(&e))?;
            let status = response.status();
            let body = response
                .into_body()
                .collect()
                .await
                .map_err(|e| error_chain(&e))?
                .to_bytes();
            Ok::<_, String>((status, body))
        };
        let (status, body) = match tokio::time::timeout(hook.timeout, exchange).await {
            Err(_elapsed) => {
                return Err(hook.failure(format!(
                    "failed to call webhook: Post \"{url}\": context deadline exceeded"
                )));
            }
            Ok(Err(e)) => {
                return Err(hook.failure(format!("failed to call webhook: Post \"{url}\": {e}")));
            }
            Ok(Ok(answer)) => answer,
        };
        if !status.is_success() {
            return Err(hook.failure(format!(
                "failed to call webhook: {}",
                unsuccessful_status(status, &body)
            )));
        }
        let review: Value = serde_json::from_slice(&body).map_err(|e| {
            hook.failure(format!(
                "failed to call webhook: the response body is not an AdmissionReview: {e}"
            ))
        })?;
        verify_response(&review, &uid, hook.review_version, mutating)
            .map_err(|e| hook.failure(format!("received invalid webhook response: {e}")))
    }

    fn client(&self, ca_bundle: Option<&[u8]>) -> Result<HttpsClient, String> {
        let key = ca_bundle.unwrap_or_default().to_vec();
        let mut clients = self
            .clients
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(client) = clients.get(&key) {
            return Ok(client.clone());
        }
        let mut roots = rustls::RootCertStore::empty();
        if let Some(pem) = ca_bundle.filter(|pem| !pem.is_empty()) {
            for cert in rustls_pemfile::certs(&mut &pem[..]) {
                let cert = cert.map_err(|e| format!("caBundle is not PEM: {e}"))?;
                roots
                    .add(cert)
                    .map_err(|e| format!("caBundle holds an unusable certificate: {e}"))?;
            }
            if roots.is_empty() {
                return Err("caBundle holds no PEM certificate".to_string());
            }
        }
        // Explicit provider: the process-wide default may be unset (tests) or differ (the binary).
        let tls = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("tls configuration: {e}"))?
        .with_root_certificates(roots)
        .with_no_client_auth();
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls)
            .https_only()
            .enable_http1()
            .build();
        let client: HttpsClient = Client::builder(TokioExecutor::new()).build(connector);
        clients.insert(key, client.clone());
        Ok(client)
    }
}

/// One webhook of a configuration, parsed.
#[derive(Debug)]
struct Webhook {
    name: String,
    target: Target,
    ca_bundle: Option<Vec<u8>>,
    rules: Vec<Rule>,
    ignore_failures: bool,
    namespace_selector: Option<Value>,
    object_selector: Option<Value>,
    side_effects: Option<String>,
    timeout: Duration,
    review_version: &'static str,
    reinvoke_if_needed: bool,
}

#[derive(Debug)]
enum Target {
    Url(String),
    Service {
        namespace: String,
        name: String,
        path: String,
        port: i64,
    },
}

#[derive(Debug, Default)]
struct Rule {
    operations: Vec<String>,
    api_groups: Vec<String>,
    api_versions: Vec<String>,
    resources: Vec<String>,
    scope: Option<String>,
}

/// A failure to get a usable answer from a webhook; `failurePolicy: Ignore` skips the webhook instead.
#[derive(Debug)]
struct CallFailure {
    ignore: bool,
    denied: Denied,
}

impl CallFailure {
    /// `Ok` when the failure is ignored, the 500 otherwise.
    fn handle(&self) -> Result<(), Denied> {
        if self.ignore {
            tracing::warn!(message = %self.denied.message, "failed calling webhook, failing open");
            Ok(())
        } else {
            Err(self.denied.clone())
        }
    }
}

impl Webhook {
    fn failure(&self, reason: String) -> CallFailure {
        CallFailure {
            ignore: self.ignore_failures,
            denied: Denied::internal(format!(
                "failed calling webhook \"{}\": {reason}",
                self.name
            )),
        }
    }
}

/// The webhooks of all configurations in the order the apiserver runs them: configurations sorted by name,
/// webhooks in their listed order. A webhook that cannot be parsed yields its calling failure.
fn ordered_webhooks(configs: &[Value]) -> Vec<Result<Webhook, CallFailure>> {
    let mut sorted: Vec<&Value> = configs.iter().collect();
    sorted.sort_by(|a, b| config_name(a).cmp(config_name(b)));
    sorted
        .into_iter()
        .flat_map(|config| {
            config
                .get("webhooks")
                .and_then(Value::as_array)
                .map(Vec::as_slice)
                .unwrap_or_default()
                .iter()
                .map(parse_webhook)
        })
        .collect()
}

fn config_name(config: &Value) -> &str {
    config
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or_default()
}

fn strings(value: Option<&Value>) -> Vec<String> {
    value
        .and_then(Value::as_array)
        .map(|items| {
            items
                .iter()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default()
}

fn parse_webhook(raw: &Value) -> Result<Webhook, CallFailure> {
    let name = raw
        .get("name")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    let ignore_failures = raw.get("failurePolicy").and_then(Value::as_str) == Some("Ignore");
    let timeout_seconds = raw
        .get("timeoutSeconds")
        .and_then(Value::as_i64)
        .unwrap_or(10)
        .clamp(1, 30);
    let broken = |reason: String| CallFailure {
        ignore: ignore_failures,
        denied: Denied::internal(format!("failed calling webhook \"{name}\": {reason}")),
    };
    let client_config = raw.get("clientConfig").cloned().unwrap_or(Value::Null);
    let target = if let Some(url) = client_config.get("url").and_then(Value::as_str) {
        Target::Url(url.to_string())
    } else if let Some(service) = client_config.get("service") {
        let field = |key: &str| {
            service
                .get(key)
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string()
        };
        Target::Service {
            namespace: field("namespace"),
            name: field("name"),
            path: field("path"),
            port: service.get("port").and_then(Value::as_i64).unwrap_or(443),
        }
    } else {
        return Err(broken(
            "clientConfig has neither url nor service; set clientConfig.url".to_string(),
        ));
    };
    let ca_bundle = match client_config.get("caBundle") {
        None | Some(Value::Null) => None,
        Some(Value::String(encoded)) => Some(
            base64::engine::general_purpose::STANDARD
                .decode(encoded.trim())
                .map_err(|e| broken(format!("clientConfig.caBundle is not base64: {e}")))?,
        ),
        Some(_) => {
            return Err(broken(
                "clientConfig.caBundle must be a base64 string of PEM certificates".to_string(),
            ));
        }
    };
    let versions = strings(raw.get("admissionReviewVersions"));
    let review_version = if versions.is_empty() || versions.iter().any(|v| v == "v1") {
        "v1"
    } else if versions.iter().any(|v| v == "v1beta1") {
        "v1beta1"
    } else {
        return Err(broken(format!(
            "webhook does not accept v1 or v1beta1 AdmissionReview (admissionReviewVersions: {versions:?})"
        )));
    };
    let rules = raw
        .get("rules")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default()
        .iter()
        .map(|rule| Rule {
            operations: strings(rule.get("operations")),
            api_groups: strings(rule.get("apiGroups")),
            api_versions: strings(rule.get("apiVersions")),
            resources: strings(rule.get("resources")),
            scope: rule
                .get("scope")
                .and_then(Value::as_str)
                .map(str::to_string),
        })
        .collect();
    Ok(Webhook {
        name,
        target,
        ca_bundle,
        rules,
        ignore_failures,
        namespace_selector: raw
            .get("namespaceSelector")
            .cloned()
            .filter(|v| !v.is_null()),
        object_selector: raw.get("objectSelector").cloned().filter(|v| !v.is_null()),
        side_effects: raw
            .get("sideEffects")
            .and_then(Value::as_str)
            .map(str::to_string),
        timeout: Duration::from_secs(timeout_seconds.unsigned_abs()),
        review_version,
        reinvoke_if_needed: raw.get("reinvocationPolicy").and_then(Value::as_str)
            == Some("IfNeeded"),
    })
}

/// Webhooks never see writes to admission configuration itself, so a broken webhook cannot lock its own
/// configuration (`IsExemptAdmissionConfigurationResource`).
fn is_exempt(attrs: &Attributes) -> bool {
    attrs.group == "admissionregistration.k8s.io"
        && matches!(
            attrs.kind.as_str(),
            "ValidatingWebhookConfiguration"
                | "MutatingWebhookConfiguration"
                | "ValidatingAdmissionPolicy"
                | "ValidatingAdmissionPolicyBinding"
                | "MutatingAdmissionPolicy"
                | "MutatingAdmissionPolicyBinding"
        )
}

fn is_namespace_object(attrs: &Attributes) -> bool {
    attrs.resource_group.is_empty() && attrs.resource == "namespaces"
}

fn listed(values: &[String], wanted: &str) -> bool {
    values.iter().any(|v| v == "*" || v == wanted)
}

impl Rule {
    /// `k8s.io/apiserver/pkg/admission/plugin/webhook/predicates/rules`: every part must match.
    fn matches(&self, attrs: &Attributes) -> bool {
        listed(&self.operations, attrs.operation.as_str())
            && listed(&self.api_groups, &attrs.resource_group)
            && listed(&self.api_versions, &attrs.resource_version)
            && self.resource_matches(attrs)
            && self.scope_matches(attrs)
    }

    fn resource_matches(&self, attrs: &Attributes) -> bool {
        let sub = attrs.sub_resource.as_deref().unwrap_or_default();
        self.resources.iter().any(|entry| {
            // "*" alone means every resource but no subresource; "*/*" everything; "x/*" all of x's.
            let (res, rule_sub) = entry.split_once('/').unwrap_or((entry.as_str(), ""));
            (res == "*" || res == attrs.resource) && (rule_sub == "*" || rule_sub == sub)
        })
    }

    fn scope_matches(&self, attrs: &Attributes) -> bool {
        // Namespace objects are cluster-scoped even though requests for them carry a namespace.
        let cluster =
            is_namespace_object(attrs) || attrs.namespace.as_deref().unwrap_or_default().is_empty();
        match self.scope.as_deref() {
            None | Some("*") => true,
            Some("Cluster") => cluster,
            Some("Namespaced") => !cluster,
            Some(_) => false,
        }
    }
}

fn labels_of(object: Option<&Value>) -> Option<BTreeMap<String, String>> {
    let labels = object?.get("metadata")?.get("labels");
    Some(
        labels
            .and_then(Value::as_object)
            .map(|map| {
                map.iter()
                    .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_string())))
                    .collect()
            })
            .unwrap_or_default(),
    )
}

/// Whether a `metav1.LabelSelector` matches `labels`. An absent or empty selector matches everything.
fn selector_matches(selector: &Value, labels: &BTreeMap<String, String>) -> Result<bool, String> {
    if let Some(match_labels) = selector.get("matchLabels").and_then(Value::as_object) {
        for (key, value) in match_labels {
            let value = value
                .as_str()
                .ok_or_else(|| format!("matchLabels[{key}] must be a string"))?;
            if labels.get(key).map(String::as_str) != Some(value) {
                return Ok(false);
            }
        }
    }
    let expressions = selector
        .get("matchExpressions")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default();
    for expression in expressions {
        let key = expression
            .get("key")
            .and_then(Value::as_str)
            .ok_or_else(|| "matchExpressions entry without key".to_string())?;
        let values = strings(expression.get("values"));
        let operator = expression
            .get("operator")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let present = labels.get(key);
        let ok = match operator {
            "In" => {
                if values.is_empty() {
                    return Err(format!("matchExpressions[{key}]: operator In needs values"));
                }
                present.is_some_and(|v| values.contains(v))
            }
            "NotIn" => {
                if values.is_empty() {
                    return Err(format!(
                        "matchExpressions[{key}]: operator NotIn needs values"
                    ));
                }
                present.is_none_or(|v| !values.contains(v))
            }
            "Exists" => present.is_some(),
            "DoesNotExist" => present.is_none(),
            other => {
                return Err(format!(
                    "matchExpressions[{key}]: {other:?} is not a valid label selector operator"
                ));
            }
        };
        if !ok {
            return Ok(false);
        }
    }
    Ok(true)
}

/// The apiserver's `ShouldCallHook`: rules, namespaceSelector and objectSelector must all match. `object` is
/// the object as the previous mutating webhooks left it.
fn should_call(hook: &Webhook, attrs: &Attributes, object: Option<&Value>) -> Result<bool, Denied> {
    // Rules first: a webhook whose rules do not match is skipped even if its selectors are broken.
    if !hook.rules.iter().any(|rule| rule.matches(attrs)) {
        return Ok(false);
    }
    let invalid = |what: &str, e: String| {
        Denied::internal(format!("webhook \"{}\": invalid {what}: {e}", hook.name))
    };
    if let Some(selector) = &hook.namespace_selector {
        let namespaced = !attrs.namespace.as_deref().unwrap_or_default().is_empty();
        if namespaced || is_namespace_object(attrs) {
            let labels = if is_namespace_object(attrs)
                && attrs.sub_resource.is_none()
                && matches!(attrs.operation, Operation::Create | Operation::Update)
            {
                // The namespace being written is not stored yet in its new form: judge its new labels.
                labels_of(object).unwrap_or_default()
            } else if is_namespace_object(attrs) {
                attrs
                    .namespace_labels
                    .clone()
                    .or_else(|| labels_of(attrs.old_object.as_ref()))
                    .unwrap_or_default()
            } else {
                attrs.namespace_labels.clone().unwrap_or_default()
            };
            if !selector_matches(selector, &labels).map_err(|e| invalid("namespaceSelector", e))? {
                return Ok(false);
            }
        }
    }
    if let Some(selector) = &hook.object_selector {
        let mut matched = false;
        for candidate in [object, attrs.old_object.as_ref()] {
            if let Some(labels) = labels_of(candidate) {
                matched |= selector_matches(selector, &labels)
                    .map_err(|e| invalid("objectSelector", e))?;
            }
        }
        if !matched && !selector_is_empty(selector) {
            return Ok(false);
        }
    }
    Ok(true)
}

fn selector_is_empty(selector: &Value) -> bool {
    let empty = |key: &str| match selector.get(key) {
        None | Some(Value::Null) => true,
        Some(Value::Object(map)) => map.is_empty(),
        Some(Value::Array(items)) => items.is_empty(),
        Some(_) => false,
    };
    empty("matchLabels") && empty("matchExpressions")
}

/// A webhook with side effects must not see a dry-run request: the whole request fails with 400.
fn check_dry_run(hook: &Webhook, attrs: &Attributes) -> Result<(), Denied> {
    if !attrs.dry_run {
        return Ok(());
    }
    match hook.side_effects.as_deref() {
        Some("None") | Some("NoneOnDryRun") => Ok(()),
        None => Err(Denied::bad_request(
            "Webhook SideEffects is nil".to_string(),
        )),
        Some(_) => Err(Denied::bad_request(format!(
            "admission webhook \"{}\" does not support dry run",
            hook.name
        ))),
    }
}

fn review_request(hook: &Webhook, attrs: &Attributes, object: Option<&Value>, uid: &str) -> Value {
    let kind = json!({"group": attrs.group, "version": attrs.version, "kind": attrs.kind});
    let resource = json!({
        "group": attrs.resource_group,
        "version": attrs.resource_version,
        "resource": attrs.resource,
    });
    let mut user = Map::new();
    if !attrs.user.username.is_empty() {
        user.insert("username".into(), json!(attrs.user.username));
    }
    if !attrs.user.uid.is_empty() {
        user.insert("uid".into(), json!(attrs.user.uid));
    }
    if !attrs.user.groups.is_empty() {
        user.insert("groups".into(), json!(attrs.user.groups));
    }
    let mut request = Map::new();
    request.insert("uid".into(), json!(uid));
    request.insert("kind".into(), kind.clone());
    request.insert("resource".into(), resource.clone());
    if let Some(sub) = &attrs.sub_resource {
        request.insert("subResource".into(), json!(sub));
    }
    request.insert("requestKind".into(), kind);
    request.insert("requestResource".into(), resource);
    if let Some(sub) = &attrs.sub_resource {
        request.insert("requestSubResource".into(), json!(sub));
    }
    if let Some(name) = attrs.name.as_deref().filter(|n| !n.is_empty()) {
        request.insert("name".into(), json!(name));
    }
    if let Some(namespace) = attrs.namespace.as_deref().filter(|n| !n.is_empty()) {
        request.insert("namespace".into(), json!(namespace));
    }
    request.insert("operation".into(), json!(attrs.operation.as_str()));
    request.insert("userInfo".into(), Value::Object(user));
    request.insert("object".into(), object.cloned().unwrap_or(Value::Null));
    request.insert(
        "oldObject".into(),
        attrs.old_object.clone().unwrap_or(Value::Null),
    );
    request.insert("dryRun".into(), json!(attrs.dry_run));
    request.insert(
        "options".into(),
        attrs.options.clone().unwrap_or(Value::Null),
    );
    json!({
        "kind": "AdmissionReview",
        "apiVersion": format!("admission.k8s.io/{}", hook.review_version),
        "request": request,
    })
}

/// A webhook's verdict, checked.
#[derive(Debug)]
struct Reply {
    allowed: bool,
    status: Option<Value>,
    patch: Option<Vec<u8>>,
    warnings: Vec<String>,
}

/// `VerifyAdmissionResponse` of the apiserver's webhook request package, same checks and messages.
fn verify_response(
    review: &Value,
    uid: &str,
    version: &str,
    mutating: bool,
) -> Result<Reply, String> {
    let response = review
        .get("response")
        .filter(|r| r.is_object())
        .ok_or_else(|| "webhook response was absent".to_string())?;
    let got_uid = response
        .get("uid")
        .and_then(Value::as_str)
        .unwrap_or_default();
    if got_uid != uid {
        return Err(format!(
            "expected response.uid=\"{uid}\", got \"{got_uid}\""
        ));
    }
    let api_version = review
        .get("apiVersion")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let kind = review
        .get("kind")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let expected = format!("admission.k8s.io/{version}");
    if api_version != expected || kind != "AdmissionReview" {
        return Err(format!(
            "expected webhook response of {expected}, Kind=AdmissionReview, got {api_version}, Kind={kind}"
        ));
    }
    let patch_type = response
        .get("patchType")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let patch = decode_patch_bytes(response.get("patch"))?;
    if !mutating {
        if !patch_type.is_empty() {
            return Err("validating webhook may not return response.patchType".to_string());
        }
        if patch.is_some() {
            return Err("validating webhook may not return response.patch".to_string());
        }
    }
    match (patch_type.is_empty(), patch.is_some()) {
        (true, true) => {
            return Err("webhook returned response.patch but not response.patchType".to_string());
        }
        (false, false) => {
            return Err("webhook returned response.patchType but not response.patch".to_string());
        }
        (false, true) if patch_type != "JSONPatch" => {
            return Err(format!(
                "webhook returned invalid response.patchType of \"{patch_type}\""
            ));
        }
        _ => {}
    }
    let warnings = strings(response.get("warnings"));
    Ok(Reply {
        allowed: response
            .get("allowed")
            .and_then(Value::as_bool)
            .unwrap_or(false),
        status: response.get("status").cloned().filter(|s| !s.is_null()),
        patch,
        warnings,
    })
}

/// `response.patch` is `[]byte` in Go: a base64 string, or (as kube-rs serialises `Vec<u8>`) an array of bytes.
fn decode_patch_bytes(patch: Option<&Value>) -> Result<Option<Vec<u8>>, String> {
    let bytes = match patch {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::String(encoded)) => {
            base64::engine::general_purpose::STANDARD
                .decode(encoded)
                .map_err(|e| format!("response.patch is not base64: {e}"))?
        }
        Some(Value::Array(items)) => items
            .iter()
            .map(|item| {
                item.as_u64()
                    .and_then(|b| u8::try_from(b).ok())
                    .ok_or_else(|| format!("response.patch byte array holds {item}, not a byte"))
            })
            .collect::<Result<Vec<u8>, String>>()?,
        Some(other) => {
            return Err(format!(
                "response.patch must be base64 or a byte array, got {other}"
            ));
        }
    };
    Ok(if bytes.is_empty() { None } else { Some(bytes) })
}

/// `webhookerrors.ToStatusErr`: the denial in the apiserver's words, code lifted to at least 400.
fn rejection(name: &str, status: Option<&Value>) -> Denied {
    let denied_by = format!("admission webhook \"{name}\" denied the request");
    let field = |key: &str| {
        status
            .and_then(|s| s.get(key))
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string()
    };
    let code = status
        .and_then(|s| s.get("code"))
        .and_then(Value::as_u64)
        .and_then(|c| u16::try_from(c).ok())
        .filter(|c| (400..600).contains(c))
        .unwrap_or(400);
    let (message, reason) = (field("message"), field("reason"));
    let message = if !message.is_empty() {
        format!("{denied_by}: {message}")
    } else if !reason.is_empty() {
        format!("{denied_by}: {reason}")
    } else {
        format!("{denied_by} without explanation")
    };
    Denied {
        code,
        reason,
        message,
    }
}

/// Applies a mutating webhook's JSON patch. Failures here are not calling failures: `failurePolicy` does not
/// soften them (as in the apiserver, they are internal errors).
fn apply_webhook_patch(name: &str, object: Option<Value>, patch: &[u8]) -> Result<Value, Denied> {
    let operations: json_patch::Patch = serde_json::from_slice(patch).map_err(Denied::internal)?;
    let Some(mut object) = object else {
        return Err(Denied::internal(format!(
            "admission webhook \"{name}\" attempted to modify the object, which is not supported for this operation"
        )));
    };
    for operation in operations.0.iter() {
        // evanphx/json-patch (the apiserver's) lets `test` of an absent member against null pass.
        if let json_patch::PatchOperation::Test(test) = operation
            && test.value.is_null()
            && object.pointer(test.path.as_str()).is_none()
        {
            continue;
        }
        json_patch::patch(&mut object, std::slice::from_ref(operation))
            .map_err(Denied::internal)?;
    }
    if !object.is_object() {
        return Err(Denied::internal(format!(
            "admission webhook \"{name}\" patched the object into a non-object JSON value"
        )));
    }
    Ok(object)
}

fn push_warnings(into: &mut Vec<String>, warnings: Vec<String>) {
    for warning in warnings {
        let warning = warning.trim().to_string();
        if !warning.is_empty() && !into.contains(&warning) {
            into.push(warning);
        }
    }
}

/// What client-go says about a non-2xx answer that is not an AdmissionReview.
fn unsuccessful_status(status: http::StatusCode, body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let text = text.trim();
    if let Ok(status_body) = serde_json::from_str::<Value>(text)
        && status_body.get("kind").and_then(Value::as_str) == Some("Status")
        && let Some(message) = status_body.get("message").and_then(Value::as_str)
    {
        return message.to_string();
    }
    match status.as_u16() {
        404 => "the server could not find the requested resource".to_string(),
        code if code >= 500 => {
            format!("an error on the server ({text:?}) has prevented the request from succeeding")
        }
        code => format!(
            "the server responded with the status code {code} but did not return more information"
        ),
    }
}

/// `a: b: c` from an error and its sources, the way Go wraps errors.
fn error_chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut parts = vec![error.to_string()];
    let mut source = error.source();
    while let Some(next) = source {
        let text = next.to_string();
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        source = next.source();
    }
    parts.join(": ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attrs(resource: &str, sub: Option<&str>, namespace: Option<&str>) -> Attributes {
        Attributes {
            operation: Operation::Create,
            group: "apps".into(),
            version: "v1".into(),
            kind: "Deployment".into(),
            resource_group: "apps".into(),
            resource_version: "v1".into(),
            resource: resource.into(),
            sub_resource: sub.map(str::to_string),
            name: Some("web".into()),
            namespace: namespace.map(str::to_string),
            namespace_labels: namespace
                .map(|_| BTreeMap::from([("team".to_string(), "a".to_string())])),
            object: Some(json!({"metadata": {"name": "web", "labels": {"app": "web"}}})),
            old_object: None,
            dry_run: false,
            user: UserInfo::default(),
            options: None,
        }
    }

    fn rule(
        operations: &[&str],
        groups: &[&str],
        versions: &[&str],
        resources: &[&str],
        scope: Option<&str>,
    ) -> Rule {
        let own = |v: &[&str]| v.iter().map(|s| s.to_string()).collect();
        Rule {
            operations: own(operations),
            api_groups: own(groups),
            api_versions: own(versions),
            resources: own(resources),
            scope: scope.map(str::to_string),
        }
    }

    #[test]
    fn rules_match_like_the_apiserver() {
        let main = attrs("deployments", None, Some("default"));
        let scale = attrs("deployments", Some("scale"), Some("default"));
        let cases = [
            (
                rule(&["CREATE"], &["apps"], &["v1"], &["deployments"], None),
                &main,
                true,
            ),
            (rule(&["*"], &["*"], &["*"], &["*"], None), &main, true),
            (
                rule(&["UPDATE"], &["apps"], &["v1"], &["deployments"], None),
                &main,
                false,
            ),
            (
                rule(&["CREATE"], &[""], &["v1"], &["deployments"], None),
                &main,
                false,
            ),
            (
                rule(&["CREATE"], &["apps"], &["v1beta1"], &["deployments"], None),
                &main,
                false,
            ),
            (
                rule(&["CREATE"], &["apps"], &["v1"], &["statefulsets"], None),
                &main,
                false,
            ),
            // "*" never covers subresources; "*/scale", "deployments/*", "*/*" do.
            (rule(&["*"], &["*"], &["*"], &["*"], None), &scale, false),
            (
                rule(&["*"], &["*"], &["*"], &["deployments"], None),
                &scale,
                false,
            ),
            (
                rule(&["*"], &["*"], &["*"], &["*/scale"], None),
                &scale,
                true,
            ),
            (
                rule(&["*"], &["*"], &["*"], &["deployments/scale"], None),
                &scale,
                true,
            ),
            (
                rule(&["*"], &["*"], &["*"], &["deployments/*"], None),
                &scale,
                true,
            ),
            (rule(&["*"], &["*"], &["*"], &["*/*"], None), &scale, true),
            (
                rule(&["*"], &["*"], &["*"], &["*/status"], None),
                &scale,
                false,
            ),
            (
                rule(&["*"], &["*"], &["*"], &["deployments/scale"], None),
                &main,
                false,
            ),
            (rule(&["*"], &["*"], &["*"], &["*/*"], None), &main, true),
            (
                rule(&["*"], &["*"], &["*"], &["*"], Some("Namespaced")),
                &main,
                true,
            ),
            (
                rule(&["*"], &["*"], &["*"], &["*"], Some("Cluster")),
                &main,
                false,
            ),
            (rule(&["*"], &["*"], &["*"], &["*"], Some("*")), &main, true),
        ];
        for (index, (rule, attrs, expected)) in cases.iter().enumerate() {
            assert_eq!(rule.matches(attrs), *expected, "case {index}: {rule:?}");
        }
    }

    #[test]
    fn namespaces_are_cluster_scoped_for_rules() {
        let mut ns = attrs("namespaces", None, Some("team-a"));
        ns.resource_group = String::new();
        let cluster = rule(&["*"], &[""], &["v1"], &["namespaces"], Some("Cluster"));
        let namespaced = rule(&["*"], &[""], &["v1"], &["namespaces"], Some("Namespaced"));
        assert!(cluster.matches(&ns));
        assert!(!namespaced.matches(&ns));
        let mut class = attrs("storageclasses", None, None);
        class.resource_group = "storage.k8s.io".into();
        assert!(rule(&["*"], &["*"], &["*"], &["*"], Some("Cluster")).matches(&class));
        assert!(!rule(&["*"], &["*"], &["*"], &["*"], Some("Namespaced")).matches(&class));
    }

    #[test]
    fn label_selectors_follow_metav1_semantics() {
        let labels = BTreeMap::from([
            ("env".to_string(), "prod".to_string()),
            ("tier".to_string(), "db".to_string()),
        ]);
        let cases = [
            (json!({}), true),
            (json!({"matchLabels": {"env": "prod"}}), true),
            (json!({"matchLabels": {"env": "dev"}}), false),
            (json!({"matchLabels": {"missing": "x"}}), false),
            (
                json!({"matchExpressions": [{"key": "env", "operator": "In", "values": ["prod", "dev"]}]}),
                true,
            ),
            (
                json!({"matchExpressions": [{"key": "env", "operator": "In", "values": ["dev"]}]}),
                false,
            ),
            (
                json!({"matchExpressions": [{"key": "env", "operator": "NotIn", "values": ["dev"]}]}),
                true,
            ),
            (
                json!({"matchExpressions": [{"key": "gone", "operator": "NotIn", "values": ["dev"]}]}),
                true,
            ),
            (
                json!({"matchExpressions": [{"key": "env", "operator": "NotIn", "values": ["prod"]}]}),
                false,
            ),
            (
                json!({"matchExpressions": [{"key": "tier", "operator": "Exists"}]}),
                true,
            ),
            (
                json!({"matchExpressions": [{"key": "gone", "operator": "Exists"}]}),
                false,
            ),
            (
                json!({"matchExpressions": [{"key": "gone", "operator": "DoesNotExist"}]}),
                true,
            ),
            (
                json!({"matchExpressions": [{"key": "tier", "operator": "DoesNotExist"}]}),
                false,
            ),
            (
                json!({"matchLabels": {"env": "prod"}, "matchExpressions": [{"key": "tier", "operator": "In", "values": ["web"]}]}),
                false,
            ),
        ];
        for (selector, expected) in cases {
            assert_eq!(
                selector_matches(&selector, &labels),
                Ok(expected),
                "{selector}"
            );
        }
        let bad =
            json!({"matchExpressions": [{"key": "env", "operator": "Like", "values": ["p"]}]});
        assert!(
            selector_matches(&bad, &labels)
                .unwrap_err()
                .contains("\"Like\" is not a valid")
        );
        let empty_in = json!({"matchExpressions": [{"key": "env", "operator": "In"}]});
        assert!(selector_matches(&empty_in, &labels).is_err());
    }

    fn hook(extra: Value) -> Webhook {
        let mut raw = json!({
            "name": "check.example.com",
            "clientConfig": {"url": "https://127.0.0.1:1/validate"},
            "rules": [{"operations": ["*"], "apiGroups": ["*"], "apiVersions": ["*"], "resources": ["*"]}],
            "sideEffects": "None",
            "admissionReviewVersions": ["v1"],
        });
        if let (Some(raw), Some(extra)) = (raw.as_object_mut(), extra.as_object()) {
            for (k, v) in extra {
                raw.insert(k.clone(), v.clone());
            }
        }
        parse_webhook(&raw).expect("test webhook parses")
    }

    #[test]
    fn namespace_selector_uses_namespace_labels_and_skips_cluster_scope() {
        let team_b = hook(json!({"namespaceSelector": {"matchLabels": {"team": "b"}}}));
        let team_a = hook(json!({"namespaceSelector": {"matchLabels": {"team": "a"}}}));
        let in_ns = attrs("deployments", None, Some("default"));
        assert_eq!(
            should_call(&team_a, &in_ns, in_ns.object.as_ref()),
            Ok(true)
        );
        assert_eq!(
            should_call(&team_b, &in_ns, in_ns.object.as_ref()),
            Ok(false)
        );
        // Cluster-scoped objects other than namespaces are never exempted by a namespaceSelector.
        let cluster = attrs("storageclasses", None, None);
        assert_eq!(
            should_call(&team_b, &cluster, cluster.object.as_ref()),
            Ok(true)
        );
        // A Namespace being created is judged by its own labels.
        let mut ns = attrs("namespaces", None, None);
        ns.resource_group = String::new();
        ns.object = Some(json!({"metadata": {"name": "x", "labels": {"team": "b"}}}));
        assert_eq!(should_call(&team_b, &ns, ns.object.as_ref()), Ok(true));
        assert_eq!(should_call(&team_a, &ns, ns.object.as_ref()), Ok(false));
        // Deleting it: the stored labels (old object) count.
        ns.operation = Operation::Delete;
        ns.old_object = ns.object.take();
        assert_eq!(should_call(&team_b, &ns, None), Ok(true));
    }

    #[test]
    fn object_selector_matches_object_or_old_object() {
        let web = hook(json!({"objectSelector": {"matchLabels": {"app": "web"}}}));
        let db = hook(json!({"objectSelector": {"matchLabels": {"app": "db"}}}));
        let mut update = attrs("deployments", None, Some("default"));
        update.operation = Operation::Update;
        update.old_object = Some(json!({"metadata": {"labels": {"app": "db"}}}));
        assert_eq!(should_call(&web, &update, update.object.as_ref()), Ok(true));
        assert_eq!(should_call(&db, &update, update.object.as_ref()), Ok(true));
        let create = attrs("deployments", None, Some("default"));
        assert_eq!(should_call(&db, &create, create.object.as_ref()), Ok(false));
        // Labels a previous mutating webhook added count.
        let patched = json!({"metadata": {"labels": {"app": "db"}}});
        assert_eq!(should_call(&db, &create, Some(&patched)), Ok(true));
        let empty = hook(json!({"objectSelector": {}}));
        let mut delete = attrs("deployments", None, Some("default"));
        delete.object = None;
        assert_eq!(should_call(&empty, &delete, None), Ok(true));
        let broken = hook(
            json!({"objectSelector": {"matchExpressions": [{"key": "a", "operator": "Nope"}]}}),
        );
        let err = should_call(&broken, &create, create.object.as_ref()).unwrap_err();
        assert_eq!(err.code, 500);
        assert!(
            err.message.contains("invalid objectSelector"),
            "{}",
            err.message
        );
    }

    #[test]
    fn webhook_settings_are_parsed_with_apiserver_defaults() {
        let plain = hook(json!({}));
        assert_eq!(plain.timeout, Duration::from_secs(10));
        assert!(!plain.ignore_failures);
        assert_eq!(plain.review_version, "v1");
        assert_eq!(
            hook(json!({"timeoutSeconds": 90})).timeout,
            Duration::from_secs(30)
        );
        assert_eq!(
            hook(json!({"timeoutSeconds": 2})).timeout,
            Duration::from_secs(2)
        );
        assert!(hook(json!({"failurePolicy": "Ignore"})).ignore_failures);
        assert_eq!(
            hook(json!({"admissionReviewVersions": ["v1beta1"]})).review_version,
            "v1beta1"
        );
        let raw = json!({"name": "x", "clientConfig": {"url": "https://h/", "caBundle": "%%%"}});
        let failure = parse_webhook(&raw).unwrap_err();
        assert!(
            failure.denied.message.contains("caBundle is not base64"),
            "{}",
            failure.denied.message
        );
        let raw = json!({"name": "x", "clientConfig": {}, "failurePolicy": "Ignore"});
        let failure = parse_webhook(&raw).unwrap_err();
        assert!(failure.ignore);
        assert!(failure.denied.message.contains("neither url nor service"));
    }

    #[test]
    fn dry_run_needs_side_effect_free_webhooks() {
        let mut dry = attrs("deployments", None, Some("default"));
        dry.dry_run = true;
        assert_eq!(
            check_dry_run(&hook(json!({"sideEffects": "None"})), &dry),
            Ok(())
        );
        assert_eq!(
            check_dry_run(&hook(json!({"sideEffects": "NoneOnDryRun"})), &dry),
            Ok(())
        );
        let err = check_dry_run(&hook(json!({"sideEffects": "Some"})), &dry).unwrap_err();
        assert_eq!(err.code, 400);
        assert_eq!(
            err.message,
            "admission webhook \"check.example.com\" does not support dry run"
        );
        dry.dry_run = false;
        assert_eq!(
            check_dry_run(&hook(json!({"sideEffects": "Some"})), &dry),
            Ok(())
        );
    }

    #[test]
    fn review_request_carries_the_documented_fields() {
        let mut scale = attrs("deployments", Some("scale"), Some("default"));
        scale.group = "autoscaling".into();
        scale.kind = "Scale".into();
        scale.operation = Operation::Update;
        scale.user = UserInfo {
            username: "alice".into(),
            uid: "u-1".into(),
            groups: vec!["system:authenticated".into()],
        };
        scale.options = Some(json!({"kind": "UpdateOptions", "apiVersion": "meta.k8s.io/v1"}));
        let review = review_request(&hook(json!({})), &scale, scale.object.as_ref(), "abc");
        assert_eq!(review["apiVersion"], "admission.k8s.io/v1");
        assert_eq!(review["kind"], "AdmissionReview");
        let request = &review["request"];
        assert_eq!(request["uid"], "abc");
        assert_eq!(
            request["kind"],
            json!({"group": "autoscaling", "version": "v1", "kind": "Scale"})
        );
        assert_eq!(request["requestKind"], request["kind"]);
        assert_eq!(
            request["resource"],
            json!({"group": "apps", "version": "v1", "resource": "deployments"})
        );
        assert_eq!(request["subResource"], "scale");
        assert_eq!(request["requestSubResource"], "scale");
        assert_eq!(request["operation"], "UPDATE");
        assert_eq!(request["name"], "web");
        assert_eq!(request["namespace"], "default");
        assert_eq!(request["userInfo"]["username"], "alice");
        assert_eq!(request["userInfo"]["groups"][0], "system:authenticated");
        assert_eq!(request["oldObject"], Value::Null);
        assert_eq!(request["dryRun"], false);
        assert_eq!(request["options"]["kind"], "UpdateOptions");

        let mut generated = attrs("storageclasses", None, None);
        generated.name = None;
        let review = review_request(&hook(json!({})), &generated, None, "u");
        let request = review["request"].as_object().expect("request is an object");
        assert!(!request.contains_key("name"));
        assert!(!request.contains_key("namespace"));
        assert!(!request.contains_key("subResource"));
        assert_eq!(request["object"], Value::Null);
    }

    fn review(response: Value) -> Value {
        json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "response": response})
    }

    #[test]
    fn responses_are_verified_like_the_apiserver() {
        let ok = verify_response(
            &review(json!({"uid": "u", "allowed": true})),
            "u",
            "v1",
            false,
        );
        assert!(ok.is_ok_and(|r| r.allowed && r.patch.is_none()));
        let cases = [
            (
                json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview"}),
                false,
                "webhook response was absent",
            ),
            (
                review(json!({"uid": "other", "allowed": true})),
                false,
                "expected response.uid=\"u\", got \"other\"",
            ),
            (
                json!({"apiVersion": "admission.k8s.io/v1beta1", "kind": "AdmissionReview", "response": {"uid": "u"}}),
                false,
                "expected webhook response of admission.k8s.io/v1, Kind=AdmissionReview, got admission.k8s.io/v1beta1, Kind=AdmissionReview",
            ),
            (
                review(
                    json!({"uid": "u", "allowed": true, "patchType": "JSONPatch", "patch": "W10="}),
                ),
                false,
                "validating webhook may not return response.patchType",
            ),
            (
                review(json!({"uid": "u", "allowed": true, "patch": "W3t9XQ=="})),
                true,
                "webhook returned response.patch but not response.patchType",
            ),
            (
                review(json!({"uid": "u", "allowed": true, "patchType": "JSONPatch"})),
                true,
                "webhook returned response.patchType but not response.patch",
            ),
            (
                review(
                    json!({"uid": "u", "allowed": true, "patchType": "MergePatch", "patch": "e30="}),
                ),
                true,
                "webhook returned invalid response.patchType of \"MergePatch\"",
            ),
        ];
        for (body, mutating, expected) in cases {
            let err = verify_response(&body, "u", "v1", mutating).unwrap_err();
            assert_eq!(err, expected);
        }
    }

    #[test]
    fn patches_arrive_as_base64_or_byte_arrays() {
        let text = br#"[{"op":"add","path":"/x","value":1}]"#;
        let encoded = base64::engine::general_purpose::STANDARD.encode(text);
        assert_eq!(
            decode_patch_bytes(Some(&json!(encoded))),
            Ok(Some(text.to_vec()))
        );
        let array: Vec<Value> = text.iter().map(|b| json!(b)).collect();
        assert_eq!(
            decode_patch_bytes(Some(&Value::Array(array))),
            Ok(Some(text.to_vec()))
        );
        assert_eq!(decode_patch_bytes(Some(&json!(""))), Ok(None));
        assert_eq!(decode_patch_bytes(None), Ok(None));
        assert!(decode_patch_bytes(Some(&json!([300]))).is_err());
        assert!(decode_patch_bytes(Some(&json!({"op": "add"}))).is_err());
    }

    #[test]
    fn denials_use_the_apiserver_wording_and_codes() {
        let cases = [
            (
                Some(json!({"code": 403, "reason": "Forbidden", "message": "no"})),
                403,
                "Forbidden",
                "admission webhook \"w\" denied the request: no",
            ),
            (
                Some(json!({"message": "no"})),
                400,
                "",
                "admission webhook \"w\" denied the request: no",
            ),
            (
                Some(json!({"code": 200, "message": "no"})),
                400,
                "",
                "admission webhook \"w\" denied the request: no",
            ),
            (
                Some(json!({"reason": "NotAllowed"})),
                400,
                "NotAllowed",
                "admission webhook \"w\" denied the request: NotAllowed",
            ),
            (
                None,
                400,
                "",
                "admission webhook \"w\" denied the request without explanation",
            ),
        ];
        for (status, code, reason, message) in cases {
            let denied = rejection("w", status.as_ref());
            assert_eq!(
                denied,
                Denied {
                    code,
                    reason: reason.into(),
                    message: message.into()
                }
            );
        }
        let status = rejection("w", None).to_status();
        assert_eq!(status["kind"], "Status");
        assert_eq!(status["status"], "Failure");
        assert_eq!(status["code"], 400);
        assert!(status.get("reason").is_none());
    }

    #[test]
    fn webhook_patches_apply_with_the_evanphx_null_test_rule() {
        let object = json!({"metadata": {"name": "a"}});
        let patch = br#"[{"op":"test","path":"/metadata/finalizers","value":null},
                         {"op":"add","path":"/metadata/finalizers","value":["f"]}]"#;
        let patched = apply_webhook_patch("w", Some(object.clone()), patch).expect("patch applies");
        assert_eq!(patched["metadata"]["finalizers"], json!(["f"]));
        let failing = br#"[{"op":"test","path":"/metadata/name","value":"b"}]"#;
        let err = apply_webhook_patch("w", Some(object.clone()), failing).unwrap_err();
        assert_eq!((err.code, err.reason.as_str()), (500, "InternalError"));
        let err =
            apply_webhook_patch("w", None, br#"[{"op":"add","path":"/x","value":1}]"#).unwrap_err();
        assert!(
            err.message.contains("attempted to modify the object"),
            "{}",
            err.message
        );
        let err = apply_webhook_patch("w", Some(object), b"{}").unwrap_err();
        assert_eq!(err.code, 500);
    }

    #[test]
    fn configurations_run_in_name_order() {
        let config = |name: &str, hooks: &[&str]| {
            json!({
                "metadata": {"name": name},
                "webhooks": hooks.iter().map(|h| json!({"name": h, "clientConfig": {"url": "https://x/"}})).collect::<Vec<_>>(),
            })
        };
        let configs = [config("zeta", &["z1"]), config("alpha", &["a1", "a2"])];
        let names: Vec<String> = ordered_webhooks(&configs)
            .into_iter()
            .map(|h| h.map(|h| h.name).unwrap_or_default())
            .collect();
        assert_eq!(names, ["a1", "a2", "z1"]);
    }

    #[test]
    fn warning_headers_are_quoted_like_the_apiserver() {
        let header = warning_header(r#"field "x" uses \ escapes"#).expect("printable text");
        assert_eq!(header.as_bytes(), br#"299 - "field \"x\" uses \\ escapes""#);
        let header = warning_header("réplicas impaires").expect("utf-8 text");
        assert_eq!(header.as_bytes(), "299 - \"réplicas impaires\"".as_bytes());
        assert!(warning_header("line\nbreak").is_none());
    }

    #[tokio::test]
    async fn admission_configuration_objects_are_exempt() {
        let mut attrs = attrs("validatingwebhookconfigurations", None, None);
        attrs.group = "admissionregistration.k8s.io".into();
        attrs.resource_group = "admissionregistration.k8s.io".into();
        attrs.kind = "ValidatingWebhookConfiguration".into();
        assert!(is_exempt(&attrs));
        // A webhook that could only fail (nothing listens on port 1) is not consulted.
        let configs = [json!({"metadata": {"name": "all"}, "webhooks": [{
            "name": "all.example.com",
            "clientConfig": {"url": "https://127.0.0.1:1/"},
            "rules": [{"operations": ["*"], "apiGroups": ["*"], "apiVersions": ["*"], "resources": ["*"]}],
        }]})];
        let admission = Admission::new();
        assert_eq!(admission.validate(&configs, &attrs).await, Ok(vec![]));
        let (object, _) = admission.mutate(&configs, &attrs).await.expect("exempt");
        assert_eq!(object, attrs.object);
        attrs.kind = "Deployment".into();
        assert!(!is_exempt(&attrs));
        let refused = admission.validate(&configs, &attrs).await.unwrap_err();
        assert!(
            refused
                .message
                .contains("failed calling webhook \"all.example.com\""),
            "{}",
            refused.message
        );
    }

    #[test]
    fn a_patch_must_leave_an_object() {
        let err = apply_webhook_patch(
            "w",
            Some(json!({"a": 1})),
            br#"[{"op":"replace","path":"","value":3}]"#,
        )
        .unwrap_err();
        assert!(err.message.contains("non-object"), "{}", err.message);
    }

    #[tokio::test]
    async fn unusable_client_configs_are_calling_failures() {
        let admission = Admission::new();
        let attrs = attrs("deployments", None, Some("default"));
        let call = |client_config: Value, policy: &str| {
            [json!({"metadata": {"name": "c"}, "webhooks": [{
                "name": "c.example.com",
                "clientConfig": client_config,
                "failurePolicy": policy,
                "rules": [{"operations": ["*"], "apiGroups": ["*"], "apiVersions": ["*"], "resources": ["*"]}],
            }]})]
        };
        let plain = call(json!({"url": "http://127.0.0.1:1/v"}), "Fail");
        let err = admission.validate(&plain, &attrs).await.unwrap_err();
        assert_eq!(err.code, 500);
        assert!(
            err.message
                .ends_with("'https' is the only allowed URL scheme"),
            "{}",
            err.message
        );
        let not_pem = base64::engine::general_purpose::STANDARD.encode("not a certificate");
        let garbage = call(
            json!({"url": "https://127.0.0.1:1/v", "caBundle": not_pem}),
            "Fail",
        );
        let err = admission.validate(&garbage, &attrs).await.unwrap_err();
        assert!(
            err.message.ends_with("caBundle holds no PEM certificate"),
            "{}",
            err.message
        );
        let ignored = call(json!({"url": "http://127.0.0.1:1/v"}), "Ignore");
        assert_eq!(admission.validate(&ignored, &attrs).await, Ok(vec![]));
    }

    #[test]
    fn broken_selectors_only_matter_when_the_rules_match() {
        let broken = json!({"matchExpressions": [{"key": "a", "operator": "Nope"}]});
        let mut hook = hook(json!({"namespaceSelector": broken}));
        let attrs = attrs("deployments", None, Some("default"));
        assert!(should_call(&hook, &attrs, attrs.object.as_ref()).is_err());
        hook.rules = vec![rule(&["DELETE"], &["*"], &["*"], &["*"], None)];
        assert_eq!(should_call(&hook, &attrs, attrs.object.as_ref()), Ok(false));
    }

    fn stored_config(kind: &str, webhook: Value) -> Value {
        json!({
            "apiVersion": "admissionregistration.k8s.io/v1",
            "kind": kind,
            "metadata": {"name": "drgitops"},
            "webhooks": [webhook],
        })
    }

    fn valid_webhook() -> Value {
        json!({
            "name": "validate.drgitops.io",
            "clientConfig": {"service": {"namespace": "drgitops", "name": "drgitops-webhook", "path": "/validate"}},
            "rules": [{"operations": ["CREATE", "UPDATE"], "apiGroups": ["stork.libopenstorage.org"],
                       "apiVersions": ["v1alpha1"], "resources": ["migrationschedules", "migrations"]}],
            "sideEffects": "None",
            "admissionReviewVersions": ["v1"],
        })
    }

    #[test]
    fn invalid_configurations_are_reported_field_by_field() {
        for kind in [
            "ValidatingWebhookConfiguration",
            "MutatingWebhookConfiguration",
        ] {
            assert_eq!(
                validate_configuration(&stored_config(kind, valid_webhook())),
                vec![]
            );
        }
        let mut defaulted = valid_webhook();
        merge_into(
            &mut defaulted,
            json!({"failurePolicy": "Fail", "matchPolicy": "Equivalent", "namespaceSelector": {},
                   "objectSelector": {}, "timeoutSeconds": 10, "reinvocationPolicy": "Never"}),
        );
        let defaulted = stored_config("MutatingWebhookConfiguration", defaulted);
        assert_eq!(validate_configuration(&defaulted), vec![]);
        let cases: Vec<(Value, &str)> = vec![
            (
                json!({"sideEffects": null}),
                "webhooks[0].sideEffects: Required value: must specify one of None, NoneOnDryRun",
            ),
            (
                json!({"sideEffects": "Some"}),
                "webhooks[0].sideEffects: Unsupported value: \"Some\": supported values: \"None\", \"NoneOnDryRun\"",
            ),
            (
                json!({"admissionReviewVersions": []}),
                "webhooks[0].admissionReviewVersions: Required value: must specify one of v1, v1beta1",
            ),
            (
                json!({"admissionReviewVersions": ["v2"]}),
                "webhooks[0].admissionReviewVersions: Invalid value: [\"v2\"]: must include at least one of v1, v1beta1",
            ),
            (
                json!({"name": "validate"}),
                "webhooks[0].name: Invalid value: \"validate\": should be a domain with at least three segments separated by dots",
            ),
            (
                json!({"timeoutSeconds": 31}),
                "webhooks[0].timeoutSeconds: Invalid value: 31: the timeout value must be between 1 and 30 seconds",
            ),
            (
                json!({"failurePolicy": "Maybe"}),
                "webhooks[0].failurePolicy: Unsupported value: \"Maybe\": supported values: \"Fail\", \"Ignore\"",
            ),
            (
                json!({"clientConfig": {}}),
                "webhooks[0].clientConfig: Required value: exactly one of url or service is required",
            ),
            (
                json!({"clientConfig": {"url": "http://example.com/v"}}),
                "webhooks[0].clientConfig.url: Invalid value: \"http://example.com/v\": 'https' is the only allowed URL scheme",
            ),
            (
                json!({"clientConfig": {"url": "https://example.com/v?x=1"}}),
                "webhooks[0].clientConfig.url: Invalid value: \"https://example.com/v?x=1\": query parameters are not permitted in the URL",
            ),
            (
                json!({"clientConfig": {"service": {"namespace": "d", "name": "w", "port": 0}}}),
                "webhooks[0].clientConfig.service.port: Invalid value: 0: port is not valid: must be between 1 and 65535, inclusive",
            ),
            (
                json!({"rules": [{"operations": ["CREATE", "PATCH"], "apiGroups": [""], "apiVersions": ["v1"], "resources": ["configmaps"]}]}),
                "webhooks[0].rules[0].operations[1]: Unsupported value: \"PATCH\": supported values: \"*\", \"CONNECT\", \"CREATE\", \"DELETE\", \"UPDATE\"",
            ),
            (
                json!({"rules": [{"operations": ["*", "CREATE"], "apiGroups": [""], "apiVersions": ["v1"], "resources": ["configmaps"]}]}),
                "webhooks[0].rules[0].operations: Invalid value: [\"*\",\"CREATE\"]: if '*' is present, must not specify other operations",
            ),
            (
                json!({"rules": [{"operations": ["CREATE"], "apiVersions": ["v1"], "resources": ["configmaps"]}]}),
                "webhooks[0].rules[0].apiGroups: Required value",
            ),
            (
                json!({"rules": [{"operations": ["CREATE"], "apiGroups": [""], "apiVersions": ["v1"], "resources": ["configmaps"], "scope": "Global"}]}),
                "webhooks[0].rules[0].scope: Unsupported value: \"Global\": supported values: \"*\", \"Cluster\", \"Namespaced\"",
            ),
            (
                json!({"objectSelector": {"matchExpressions": [{"key": "a", "operator": "In"}]}}),
                "webhooks[0].objectSelector.matchExpressions[0].values: Required value: must be specified when `operator` is 'In' or 'NotIn'",
            ),
        ];
        for (change, expected) in cases {
            let mut webhook = valid_webhook();
            merge_into(&mut webhook, change.clone());
            let errors =
                validate_configuration(&stored_config("ValidatingWebhookConfiguration", webhook));
            let rendered: Vec<String> = errors.iter().map(ToString::to_string).collect();
            assert_eq!(rendered, [expected], "{change}");
        }
    }

    fn merge_into(target: &mut Value, change: Value) {
        if let (Some(target), Value::Object(change)) = (target.as_object_mut(), change) {
            for (k, v) in change {
                target.insert(k, v);
            }
        }
    }

    #[test]
    fn duplicate_webhook_names_and_the_422_status() {
        let mut config = stored_config("ValidatingWebhookConfiguration", valid_webhook());
        let mut second = valid_webhook();
        second["sideEffects"] = Value::Null;
        config["webhooks"]
            .as_array_mut()
            .expect("webhooks")
            .push(second);
        let errors = validate_configuration(&config);
        assert_eq!(errors.len(), 2);
        assert_eq!(
            errors[0].to_string(),
            "webhooks[1].name: Duplicate value: \"validate.drgitops.io\""
        );
        let status = invalid_status("ValidatingWebhookConfiguration", "drgitops", &errors);
        assert_eq!(status["code"], 422);
        assert_eq!(status["reason"], "Invalid");
        assert_eq!(
            status["message"],
            "ValidatingWebhookConfiguration.admissionregistration.k8s.io \"drgitops\" is invalid: \
             [webhooks[1].name: Duplicate value: \"validate.drgitops.io\", \
             webhooks[1].sideEffects: Required value: must specify one of None, NoneOnDryRun]"
        );
        assert_eq!(
            status["details"]["causes"][1]["reason"],
            "FieldValueRequired"
        );
        assert_eq!(
            status["details"]["causes"][1]["field"],
            "webhooks[1].sideEffects"
        );
        let one = invalid_status("ValidatingWebhookConfiguration", "drgitops", &errors[..1]);
        assert_eq!(
            one["message"],
            "ValidatingWebhookConfiguration.admissionregistration.k8s.io \"drgitops\" is invalid: \
             webhooks[1].name: Duplicate value: \"validate.drgitops.io\""
        );
    }
}
