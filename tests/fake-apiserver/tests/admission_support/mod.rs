//! A real HTTPS admission webhook server for tests: its own CA and a certificate for 127.0.0.1 (rcgen), served
//! with tokio-rustls. Endpoints: `/deny` (kube-rs `deny`), `/forbid` (403 Forbidden), `/patch-base64` (adds
//! label `patched-by: base64`, base64 patch, one warning), `/patch-kube` (adds an annotation with kube-rs'
//! byte-array patch, only after `/patch-base64`), `/warn` (two identical warnings), `/hang` (never answers),
//! `/bad-uid` (wrong response uid) and `/record/{tag}` (allows, keeps the review under `tag`).

// Each test crate uses a different part of this support module.
#![allow(dead_code)]

use std::sync::{Arc, Mutex};

use axum::extract::{Path, State};
use axum::routing::post;
use axum::{Json, Router};
use base64::Engine as _;
use kube::core::DynamicObject;
use kube::core::admission::{AdmissionRequest, AdmissionResponse, AdmissionReview};
use serde_json::{Value, json};

/// Reviews the `/record/{tag}` endpoint received, with their tag.
type Recorded = Arc<Mutex<Vec<(String, Value)>>>;

pub struct WebhookServer {
    pub base: String,
    pub ca_pem: String,
    recorded: Recorded,
}

impl WebhookServer {
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub fn ca_bundle(&self) -> String {
        base64::engine::general_purpose::STANDARD.encode(&self.ca_pem)
    }

    pub fn recorded(&self, tag: &str) -> Vec<Value> {
        self.recorded
            .lock()
            .expect("recorder lock")
            .iter()
            .filter(|(t, _)| t == tag)
            .map(|(_, review)| review.clone())
            .collect()
    }

    /// A webhook entry pointing at `path`, trusting this server's CA, matching everything.
    pub fn webhook(&self, name: &str, path: &str, extra: Value) -> Value {
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

pub fn merge(target: &mut Value, extra: Value) {
    if let (Some(target), Value::Object(extra)) = (target.as_object_mut(), extra) {
        for (k, v) in extra {
            target.insert(k, v);
        }
    }
}

pub fn config(name: &str, webhooks: Vec<Value>) -> Value {
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
    let has_labels = body["request"]["object"]["metadata"]["labels"].is_object();
    let patch = if has_labels {
        json!([{"op": "add", "path": "/metadata/labels/patched-by", "value": "base64"}])
    } else {
        json!([{"op": "add", "path": "/metadata/labels", "value": {"patched-by": "base64"}}])
    };
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

pub async fn start_webhooks() -> WebhookServer {
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
