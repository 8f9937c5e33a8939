//! Admission against real HTTPS webhooks: a test webhook server on loopback (its own CA, certificates from
//! rcgen) that denies, patches (base64 and kube-rs byte arrays), warns, hangs, answers with a wrong uid and
//! records what it was sent, called through `Admission` from webhook configurations as the server stores them.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use axum::extract::{Path, State};
use axum::routing::post;
use axum::{Json, Router};
use base64::Engine as _;
use fake_apiserver::admission::{Admission, Attributes, Denied, Operation, UserInfo};
use kube::core::DynamicObject;
use kube::core::admission::{AdmissionRequest, AdmissionResponse, AdmissionReview};
use serde_json::{Value, json};

/// Reviews the `/record/{tag}` endpoint received, with their tag.
type Recorded = Arc<Mutex<Vec<(String, Value)>>>;

struct WebhookServer {
    base: String,
    ca_pem: String,
    recorded: Recorded,
}

impl WebhookServer {
    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    fn ca_bundle(&self) -> String {
        base64::engine::general_purpose::STANDARD.encode(&self.ca_pem)
    }

    fn recorded(&self, tag: &str) -> Vec<Value> {
        self.recorded
            .lock()
            .expect("recorder lock")
            .iter()
            .filter(|(t, _)| t == tag)
            .map(|(_, review)| review.clone())
            .collect()
    }

    /// A webhook entry pointing at `path`, trusting this server's CA, matching everything.
    fn webhook(&self, name: &str, path: &str, extra: Value) -> Value {
        let mut hook = json!({
            "name": name,
            "clientConfig": {"url": self.url(path), "caBundle": self.ca_bundle()},
            "rules": [{"operations": ["*"], "apiGroups": ["*"], "apiVersions": ["*"], "resources": ["*"]}],
            "sideEffects": "None",
            "admissionReviewVersions": ["v1"],
            "timeoutSeconds": 5,
        });
        merge(&mut hook, extra);
        hook
    }
}

fn merge(target: &mut Value, extra: Value) {
    if let (Some(target), Value::Object(extra)) = (target.as_object_mut(), extra) {
        for (k, v) in extra {
            target.insert(k, v);
        }
    }
}

fn config(name: &str, webhooks: Vec<Value>) -> Value {
    json!({
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "ValidatingWebhookConfiguration",
        "metadata": {"name": name},
        "webhooks": webhooks,
    })
}

fn parse(body: &Value) -> AdmissionRequest<DynamicObject> {
    let review: AdmissionReview<DynamicObject> =
        serde_json::from_value(body.clone()).expect("the review parses as kube-rs AdmissionReview");
    review.try_into().expect("the review carries a request")
}

fn answer(response: AdmissionResponse) -> Json<Value> {
    Json(serde_json::to_value(response.into_review()).expect("review serialises"))
}

async fn deny(Json(body): Json<Value>) -> Json<Value> {
    answer(AdmissionResponse::from(&parse(&body)).deny("replicas must be even"))
}

async fn forbid(Json(body): Json<Value>) -> Json<Value> {
    let uid = body["request"]["uid"].clone();
    Json(json!({
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "response": {"uid": uid, "allowed": false,
                     "status": {"code": 403, "reason": "Forbidden", "message": "team b may not write here"}},
    }))
}

/// Adds a label with a base64-encoded patch, as Go webhooks send it.
async fn patch_base64(Json(body): Json<Value>) -> Json<Value> {
    let uid = body["request"]["uid"].clone();
    let patch = json!([{"op": "add", "path": "/metadata/labels/patched-by", "value": "base64"}]);
    let encoded = base64::engine::general_purpose::STANDARD.encode(patch.to_string());
    Json(json!({
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "response": {"uid": uid, "allowed": true, "patchType": "JSONPatch", "patch": encoded,
                     "warnings": ["labelled by the base64 webhook"]},
    }))
}

/// Adds an annotation with kube-rs' `with_patch` (a JSON byte array on the wire), only after the base64
/// webhook ran: the `test` fails otherwise.
async fn patch_kube(Json(body): Json<Value>) -> Json<Value> {
    let request = parse(&body);
    let patch: json_patch::Patch = serde_json::from_value(json!([
        {"op": "test", "path": "/metadata/labels/patched-by", "value": "base64"},
        {"op": "add", "path": "/metadata/annotations", "value": {"example.com/by": "kube-rs"}},
    ]))
    .expect("valid patch");
    answer(
        AdmissionResponse::from(&request)
            .with_patch(patch)
            .expect("patch serialises"),
    )
}

async fn warn(Json(body): Json<Value>) -> Json<Value> {
    let mut response = AdmissionResponse::from(&parse(&body));
    response.warnings = Some(vec![
        "spec.replicas is odd".into(),
        "spec.replicas is odd".into(),
    ]);
    answer(response)
}

async fn hang() -> Json<Value> {
    std::future::pending::<()>().await;
    Json(Value::Null)
}

async fn bad_uid(Json(_body): Json<Value>) -> Json<Value> {
    Json(json!({
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "response": {"uid": "not-the-request-uid", "allowed": true},
    }))
}

async fn record(
    State(recorded): State<Recorded>,
    Path(tag): Path<String>,
    Json(body): Json<Value>,
) -> Json<Value> {
    let response = AdmissionResponse::from(&parse(&body));
    recorded.lock().expect("recorder lock").push((tag, body));
    answer(response)
}

fn tls_pair() -> (String, rustls::ServerConfig) {
    let ca_key = rcgen::KeyPair::generate().expect("ca key");
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("ca params");
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "test webhook CA");
    let ca_cert = ca_params.self_signed(&ca_key).expect("ca cert");
    let issuer = rcgen::Issuer::new(ca_params, ca_key);
    let leaf_key = rcgen::KeyPair::generate().expect("leaf key");
    let leaf = rcgen::CertificateParams::new(vec!["127.0.0.1".to_string()])
        .expect("leaf params")
        .signed_by(&leaf_key, &issuer)
        .expect("leaf cert");
    let key = rustls::pki_types::PrivateKeyDer::Pkcs8(leaf_key.serialize_der().into());
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("protocol versions")
    .with_no_client_auth()
    .with_single_cert(vec![leaf.der().clone()], key)
    .expect("server certificate");
    (ca_cert.pem(), config)
}

async fn start_webhooks() -> WebhookServer {
    let recorded: Recorded = Arc::default();
    let router = Router::new()
        .route("/deny", post(deny))
        .route("/forbid", post(forbid))
        .route("/patch-base64", post(patch_base64))
        .route("/patch-kube", post(patch_kube))
        .route("/warn", post(warn))
        .route("/hang", post(hang))
        .route("/bad-uid", post(bad_uid))
        .route("/record/{tag}", post(record))
        .with_state(recorded.clone());
    let (ca_pem, tls) = tls_pair();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(tls));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let port = listener.local_addr().expect("local addr").port();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            let router = router.clone();
            tokio::spawn(async move {
                if let Ok(tls) = acceptor.accept(tcp).await {
                    // A connection ending with an error is the client's business (timeouts close it).
                    let _closed = fake_apiserver::faults::serve_connection(tls, router).await;
                }
            });
        }
    });
    WebhookServer {
        base: format!("https://127.0.0.1:{port}"),
        ca_pem,
        recorded,
    }
}

fn configmap_create() -> Attributes {
    Attributes {
        operation: Operation::Create,
        group: String::new(),
        version: "v1".into(),
        kind: "ConfigMap".into(),
        resource_group: String::new(),
        resource_version: "v1".into(),
        resource: "configmaps".into(),
        sub_resource: None,
        name: Some("demo".into()),
        namespace: Some("default".into()),
        namespace_labels: Some(BTreeMap::from([(
            "kubernetes.io/metadata.name".to_string(),
            "default".to_string(),
        )])),
        object: Some(json!({
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "demo", "namespace": "default", "labels": {"app": "demo"}},
            "data": {"replicas": "3"},
        })),
        old_object: None,
        dry_run: false,
        user: UserInfo {
            username: "admin".into(),
            uid: String::new(),
            groups: vec!["system:masters".into(), "system:authenticated".into()],
        },
        options: Some(
            json!({"kind": "CreateOptions", "apiVersion": "meta.k8s.io/v1", "fieldManager": "kubectl-create"}),
        ),
    }
}

#[tokio::test]
async fn denials_reach_the_user_in_apiserver_words() {
    let server = start_webhooks().await;
    let admission = Admission::new();
    let attrs = configmap_create();

    let kube_rs = [config(
        "deny",
        vec![server.webhook("deny.example.com", "/deny", json!({}))],
    )];
    let denied = admission.validate(&kube_rs, &attrs).await.unwrap_err();
    // kube-rs `deny()` sets no code: the apiserver lifts it to 400.
    assert_eq!(
        denied,
        Denied {
            code: 400,
            reason: String::new(),
            message:
                "admission webhook \"deny.example.com\" denied the request: replicas must be even"
                    .into(),
        }
    );

    let explicit = [config(
        "forbid",
        vec![server.webhook("forbid.example.com", "/forbid", json!({}))],
    )];
    let denied = admission.validate(&explicit, &attrs).await.unwrap_err();
    assert_eq!(denied.code, 403);
    assert_eq!(denied.reason, "Forbidden");
    assert_eq!(
        denied.message,
        "admission webhook \"forbid.example.com\" denied the request: team b may not write here"
    );
    assert_eq!(denied.to_status()["reason"], "Forbidden");

    // A mutating webhook can deny too, and the object is then never returned.
    let denied = admission.mutate(&kube_rs, &attrs).await.unwrap_err();
    assert_eq!(denied.code, 400);
}

#[tokio::test]
async fn mutating_webhooks_patch_in_configuration_order_and_warnings_are_collected() {
    let server = start_webhooks().await;
    let admission = Admission::new();
    // Listed out of order: configurations run sorted by name, so "a-label" patches before "b-annotate".
    let mutating = [
        config(
            "b-annotate",
            vec![server.webhook("annotate.example.com", "/patch-kube", json!({}))],
        ),
        config(
            "a-label",
            vec![server.webhook("label.example.com", "/patch-base64", json!({}))],
        ),
    ];
    let (object, warnings) = admission
        .mutate(&mutating, &configmap_create())
        .await
        .expect("admitted");
    let object = object.expect("an object after mutation");
    assert_eq!(object["metadata"]["labels"]["patched-by"], "base64");
    assert_eq!(object["metadata"]["labels"]["app"], "demo");
    assert_eq!(
        object["metadata"]["annotations"]["example.com/by"],
        "kube-rs"
    );
    assert_eq!(warnings, ["labelled by the base64 webhook"]);

    let validating = [config(
        "warn",
        vec![server.webhook("warn.example.com", "/warn", json!({}))],
    )];
    let warnings = admission
        .validate(&validating, &configmap_create())
        .await
        .expect("admitted");
    assert_eq!(
        warnings,
        ["spec.replicas is odd"],
        "identical warnings are reported once"
    );
}

#[tokio::test]
async fn webhooks_receive_the_documented_review() {
    let server = start_webhooks().await;
    let admission = Admission::new();
    let validating = [config(
        "rec",
        vec![server.webhook("rec.example.com", "/record/create", json!({}))],
    )];
    let mut attrs = configmap_create();
    attrs.dry_run = true;
    admission
        .validate(&validating, &attrs)
        .await
        .expect("admitted");
    let reviews = server.recorded("create");
    assert_eq!(reviews.len(), 1);
    let review = &reviews[0];
    assert_eq!(review["apiVersion"], "admission.k8s.io/v1");
    assert_eq!(review["kind"], "AdmissionReview");
    let request = &review["request"];
    assert!(
        request["uid"].as_str().is_some_and(|uid| uid.len() == 36),
        "{request}"
    );
    assert_eq!(
        request["kind"],
        json!({"group": "", "version": "v1", "kind": "ConfigMap"})
    );
    assert_eq!(
        request["resource"],
        json!({"group": "", "version": "v1", "resource": "configmaps"})
    );
    assert_eq!(request["requestKind"], request["kind"]);
    assert_eq!(request["requestResource"], request["resource"]);
    assert_eq!(request["name"], "demo");
    assert_eq!(request["namespace"], "default");
    assert_eq!(request["operation"], "CREATE");
    assert_eq!(request["userInfo"]["username"], "admin");
    assert_eq!(request["object"]["data"]["replicas"], "3");
    assert_eq!(request["oldObject"], Value::Null);
    assert_eq!(request["dryRun"], true);
    assert_eq!(request["options"]["fieldManager"], "kubectl-create");

    // DELETE: no object, the stored one as oldObject, DeleteOptions.
    let mut delete = configmap_create();
    delete.operation = Operation::Delete;
    delete.old_object = delete.object.take();
    delete.options = Some(json!({"kind": "DeleteOptions", "apiVersion": "meta.k8s.io/v1"}));
    let validating = [config(
        "rec",
        vec![server.webhook("rec.example.com", "/record/delete", json!({}))],
    )];
    admission
        .validate(&validating, &delete)
        .await
        .expect("admitted");
    let request = &server.recorded("delete")[0]["request"];
    assert_eq!(request["operation"], "DELETE");
    assert_eq!(request["object"], Value::Null);
    assert_eq!(request["oldObject"]["metadata"]["name"], "demo");
    assert_eq!(request["options"]["kind"], "DeleteOptions");
}

#[tokio::test]
async fn calling_failures_follow_the_failure_policy() {
    let server = start_webhooks().await;
    let admission = Admission::new();
    let attrs = configmap_create();
    let failing = [config(
        "slow",
        vec![server.webhook("slow.example.com", "/hang", json!({"timeoutSeconds": 1}))],
    )];
    let denied = admission.validate(&failing, &attrs).await.unwrap_err();
    assert_eq!(denied.code, 500);
    assert_eq!(denied.reason, "InternalError");
    assert_eq!(
        denied.message,
        format!(
            "Internal error occurred: failed calling webhook \"slow.example.com\": failed to call webhook: \
             Post \"{}?timeout=1s\": context deadline exceeded",
            server.url("/hang")
        )
    );

    let ignored = [config(
        "slow",
        vec![server.webhook(
            "slow.example.com",
            "/hang",
            json!({"timeoutSeconds": 1, "failurePolicy": "Ignore"}),
        )],
    )];
    let (object, warnings) = admission
        .mutate(&ignored, &attrs)
        .await
        .expect("failure ignored");
    assert_eq!(object, attrs.object);
    assert!(warnings.is_empty());
}

#[tokio::test]
async fn a_mismatched_uid_is_an_invalid_response() {
    let server = start_webhooks().await;
    let admission = Admission::new();
    let configs = [config(
        "uid",
        vec![server.webhook("uid.example.com", "/bad-uid", json!({}))],
    )];
    let denied = admission
        .validate(&configs, &configmap_create())
        .await
        .unwrap_err();
    assert_eq!(denied.code, 500);
    assert!(
        denied.message.starts_with(
            "Internal error occurred: failed calling webhook \"uid.example.com\": received invalid webhook \
             response: expected response.uid=\""
        ),
        "{}",
        denied.message
    );
    assert!(
        denied.message.ends_with("got \"not-the-request-uid\""),
        "{}",
        denied.message
    );
    let ignored = [config(
        "uid",
        vec![server.webhook(
            "uid.example.com",
            "/bad-uid",
            json!({"failurePolicy": "Ignore"}),
        )],
    )];
    assert!(
        admission
            .validate(&ignored, &configmap_create())
            .await
            .is_ok()
    );
}

#[tokio::test]
async fn the_server_certificate_must_chain_to_the_ca_bundle() {
    let server = start_webhooks().await;
    let other = start_webhooks().await;
    let admission = Admission::new();
    let attrs = configmap_create();
    let mut wrong_ca = server.webhook("tls.example.com", "/record/tls", json!({}));
    wrong_ca["clientConfig"]["caBundle"] = json!(other.ca_bundle());
    let denied = admission
        .validate(&[config("tls", vec![wrong_ca])], &attrs)
        .await
        .unwrap_err();
    assert_eq!(denied.code, 500);
    assert!(
        denied.message.contains("failed to call webhook: Post \""),
        "{}",
        denied.message
    );
    assert!(
        denied.message.to_lowercase().contains("certificate"),
        "{}",
        denied.message
    );

    let mut no_ca = server.webhook("tls.example.com", "/record/tls", json!({}));
    no_ca["clientConfig"]
        .as_object_mut()
        .expect("clientConfig object")
        .remove("caBundle");
    assert!(
        admission
            .validate(&[config("tls", vec![no_ca])], &attrs)
            .await
            .is_err()
    );
    assert!(
        server.recorded("tls").is_empty(),
        "an untrusted server is never sent the review"
    );

    let trusted = server.webhook("tls.example.com", "/record/tls", json!({}));
    admission
        .validate(&[config("tls", vec![trusted])], &attrs)
        .await
        .expect("trusted server admits");
    assert_eq!(server.recorded("tls").len(), 1);
}

#[tokio::test]
async fn service_references_fail_clearly_and_respect_ignore() {
    let admission = Admission::new();
    let attrs = configmap_create();
    let hook = |policy: &str| {
        json!({
            "name": "svc.example.com",
            "clientConfig": {"service": {"namespace": "drgitops", "name": "drgitops-webhook", "path": "/validate"}},
            "rules": [{"operations": ["CREATE"], "apiGroups": [""], "apiVersions": ["v1"], "resources": ["configmaps"]}],
            "failurePolicy": policy,
            "sideEffects": "None",
            "admissionReviewVersions": ["v1"],
        })
    };
    let denied = admission
        .validate(&[config("svc", vec![hook("Fail")])], &attrs)
        .await
        .unwrap_err();
    assert_eq!(denied.code, 500);
    assert!(
        denied.message.starts_with(
            "Internal error occurred: failed calling webhook \"svc.example.com\": failed to call webhook: \
             Post \"https://drgitops-webhook.drgitops.svc:443/validate?timeout=10s\": service \"drgitops-webhook\""
        ),
        "{}",
        denied.message
    );
    assert!(
        denied.message.contains("clientConfig.url"),
        "{}",
        denied.message
    );
    assert_eq!(
        admission
            .validate(&[config("svc", vec![hook("Ignore")])], &attrs)
            .await,
        Ok(vec![])
    );
}

#[tokio::test]
async fn dry_run_refuses_webhooks_with_side_effects_without_calling_them() {
    let server = start_webhooks().await;
    let admission = Admission::new();
    let mut attrs = configmap_create();
    attrs.dry_run = true;
    let configs = [config(
        "effects",
        vec![server.webhook(
            "effects.example.com",
            "/record/effects",
            json!({"sideEffects": "Some"}),
        )],
    )];
    let denied = admission.mutate(&configs, &attrs).await.unwrap_err();
    assert_eq!(denied.code, 400);
    assert_eq!(denied.reason, "BadRequest");
    assert_eq!(
        denied.message,
        "admission webhook \"effects.example.com\" does not support dry run"
    );
    assert!(server.recorded("effects").is_empty());
    attrs.dry_run = false;
    admission
        .mutate(&configs, &attrs)
        .await
        .expect("no dry run, no objection");
    assert_eq!(server.recorded("effects").len(), 1);
}

#[tokio::test]
async fn rules_and_selectors_decide_which_webhooks_are_called() {
    let server = start_webhooks().await;
    let admission = Admission::new();
    let attrs = configmap_create();
    let deployments_only = json!({"rules": [{"operations": ["CREATE"], "apiGroups": ["apps"],
                                             "apiVersions": ["v1"], "resources": ["deployments"]}]});
    let updates_only = json!({"rules": [{"operations": ["UPDATE"], "apiGroups": [""],
                                         "apiVersions": ["v1"], "resources": ["configmaps"]}]});
    let other_namespace = json!({"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "kube-system"}}});
    let not_demo = json!({"objectSelector": {"matchExpressions": [{"key": "app", "operator": "NotIn", "values": ["demo"]}]}});
    let this_namespace = json!({"namespaceSelector": {"matchExpressions": [
        {"key": "kubernetes.io/metadata.name", "operator": "In", "values": ["default"]}]}});
    let configs = [config(
        "selective",
        vec![
            server.webhook("a.example.com", "/record/skipped", deployments_only),
            server.webhook("b.example.com", "/record/skipped", updates_only),
            server.webhook("c.example.com", "/record/skipped", other_namespace),
            server.webhook("d.example.com", "/record/skipped", not_demo),
            server.webhook("e.example.com", "/record/called", this_namespace),
        ],
    )];
    admission
        .validate(&configs, &attrs)
        .await
        .expect("admitted");
    assert!(server.recorded("skipped").is_empty());
    assert_eq!(server.recorded("called").len(), 1);
}

#[tokio::test]
async fn warnings_gathered_before_a_denial_are_kept() {
    let server = start_webhooks().await;
    let admission = Admission::new();
    let configs = [config(
        "warn-then-deny",
        vec![
            server.webhook("warn.example.com", "/warn", json!({})),
            server.webhook("deny.example.com", "/deny", json!({})),
        ],
    )];
    let (outcome, warnings) = admission
        .validate_with_warnings(&configs, &configmap_create())
        .await;
    assert_eq!(outcome.unwrap_err().code, 400);
    assert_eq!(warnings, ["spec.replicas is odd"]);
    let (outcome, warnings) = admission
        .mutate_with_warnings(&configs, &configmap_create())
        .await;
    assert!(outcome.is_err());
    assert_eq!(warnings, ["spec.replicas is odd"]);
}
