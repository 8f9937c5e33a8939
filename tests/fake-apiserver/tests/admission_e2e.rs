//! Admission through the server: webhooks written in this test (one that patches and warns, one that denies),
//! registered with Mutating/ValidatingWebhookConfigurations stored in the fake server, observed via kubectl
//! and kube-rs.

mod common;

use std::sync::Arc;

use axum::Json;
use axum::Router;
use axum::routing::post;
use base64::Engine as _;
use common::Kubectl;
use fake_apiserver::FakeApiServer;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::ResourceExt;
use kube::api::{Api, DynamicObject, Patch, PatchParams, PostParams};
use kube::core::admission::{AdmissionRequest, AdmissionResponse, AdmissionReview};
use serde_json::{Value, json};

fn request(body: &Value) -> AdmissionRequest<DynamicObject> {
    let review: AdmissionReview<DynamicObject> = serde_json::from_value(body.clone()).unwrap();
    review.try_into().unwrap()
}

fn answer(response: AdmissionResponse) -> Json<Value> {
    Json(serde_json::to_value(response.into_review()).unwrap())
}

/// Labels every ConfigMap `patched: "yes"` (kube-rs' byte-array patch) and warns about it.
async fn patcher(Json(body): Json<Value>) -> Json<Value> {
    let req = request(&body);
    let has_labels = req
        .object
        .as_ref()
        .is_some_and(|o| o.metadata.labels.is_some());
    let ops = if has_labels {
        json!([{"op": "add", "path": "/metadata/labels/patched", "value": "yes"}])
    } else {
        json!([{"op": "add", "path": "/metadata/labels", "value": {"patched": "yes"}}])
    };
    let mut resp = AdmissionResponse::from(&req)
        .with_patch(serde_json::from_value(ops).unwrap())
        .unwrap();
    resp.warnings = Some(vec!["configmap labelled by the test webhook".into()]);
    answer(resp)
}

/// Denies objects labelled `deny=yes`, and Scale writes above 5 replicas.
async fn denier(Json(body): Json<Value>) -> Json<Value> {
    let req = request(&body);
    let obj = req.object.clone();
    let resp = AdmissionResponse::from(&req);
    if obj
        .as_ref()
        .is_some_and(|o| o.labels().get("deny").map(String::as_str) == Some("yes"))
    {
        return answer(resp.deny("objects labelled deny=yes are refused"));
    }
    if req.sub_resource.as_deref() == Some("scale")
        && obj
            .as_ref()
            .and_then(|o| o.data["spec"]["replicas"].as_i64())
            .unwrap_or(0)
            > 5
    {
        return answer(resp.deny("at most 5 replicas"));
    }
    answer(resp)
}

struct Hooks {
    base: String,
    ca_bundle: String,
}

async fn start_hooks() -> Hooks {
    start_router(
        Router::new()
            .route("/patch", post(patcher))
            .route("/deny", post(denier)),
    )
    .await
}

async fn start_router(router: Router) -> Hooks {
    let tls = fake_apiserver::tls::generate().unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::clone(&tls.server_config));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            let router = router.clone();
            tokio::spawn(async move {
                if let Ok(tls) = acceptor.accept(tcp).await {
                    let _closed = fake_apiserver::faults::serve_connection(tls, router).await;
                }
            });
        }
    });
    Hooks {
        base: format!("https://127.0.0.1:{port}"),
        ca_bundle: base64::engine::general_purpose::STANDARD.encode(&tls.ca_pem),
    }
}

async fn register(srv: &FakeApiServer, hooks: &Hooks) {
    let client = srv.client();
    let mutating: Api<DynamicObject> = Api::all_with(
        client.clone(),
        &kube::discovery::ApiResource::from_gvk_with_plural(
            &kube::core::GroupVersionKind::gvk(
                "admissionregistration.k8s.io",
                "v1",
                "MutatingWebhookConfiguration",
            ),
            "mutatingwebhookconfigurations",
        ),
    );
    let validating: Api<DynamicObject> = Api::all_with(
        client,
        &kube::discovery::ApiResource::from_gvk_with_plural(
            &kube::core::GroupVersionKind::gvk(
                "admissionregistration.k8s.io",
                "v1",
                "ValidatingWebhookConfiguration",
            ),
            "validatingwebhookconfigurations",
        ),
    );
    let m = json!({
        "apiVersion": "admissionregistration.k8s.io/v1", "kind": "MutatingWebhookConfiguration",
        "metadata": {"name": "patcher"},
        "webhooks": [{"name": "patch.example.com", "sideEffects": "None", "admissionReviewVersions": ["v1"],
            "clientConfig": {"url": format!("{}/patch", hooks.base), "caBundle": hooks.ca_bundle},
            "rules": [{"apiGroups": [""], "apiVersions": ["v1"], "operations": ["CREATE"], "resources": ["configmaps"]}]}]
    });
    let v = json!({
        "apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingWebhookConfiguration",
        "metadata": {"name": "denier"},
        "webhooks": [{"name": "deny.example.com", "sideEffects": "None", "admissionReviewVersions": ["v1"],
            "clientConfig": {"url": format!("{}/deny", hooks.base), "caBundle": hooks.ca_bundle},
            "rules": [
                {"apiGroups": [""], "apiVersions": ["v1"], "operations": ["CREATE", "UPDATE"], "resources": ["configmaps"]},
                {"apiGroups": ["apps"], "apiVersions": ["v1"], "operations": ["UPDATE"], "resources": ["deployments/scale"]}
            ]}]
    });
    mutating
        .create(&PostParams::default(), &serde_json::from_value(m).unwrap())
        .await
        .unwrap();
    validating
        .create(&PostParams::default(), &serde_json::from_value(v).unwrap())
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_sees_patches_warnings_and_denials() {
    let srv = FakeApiServer::start().await.unwrap();
    let hooks = start_hooks().await;
    register(&srv, &hooks).await;
    let k = Kubectl::new(&srv);

    let created = k
        .run(&["create", "configmap", "plain", "--from-literal=k=v"])
        .await;
    assert!(created.ok, "{}", created.stderr);
    assert!(
        created
            .stderr
            .contains("Warning: configmap labelled by the test webhook"),
        "{}",
        created.stderr
    );
    let label = k
        .ok(&[
            "get",
            "configmap",
            "plain",
            "-o",
            "jsonpath={.metadata.labels.patched}",
        ])
        .await;
    assert_eq!(label, "yes");

    let denied = k
        .fails(&[
            "apply",
            "--server-side",
            "-f",
            &Kubectl::data("admission/denied-configmap.yaml")
                .display()
                .to_string(),
        ])
        .await;
    assert!(
        denied.contains("admission webhook \"deny.example.com\" denied the request: objects labelled deny=yes are refused"),
        "{denied}"
    );
    assert!(
        denied.contains("Warning: configmap labelled by the test webhook"),
        "warnings from before a denial are still shown: {denied}"
    );
    let missing = k.fails(&["get", "configmap", "refused"]).await;
    assert!(missing.contains("not found"), "{missing}");

    // An update is admitted too: labelling an existing object deny=yes is refused.
    let refused = k.fails(&["label", "configmap", "plain", "deny=yes"]).await;
    assert!(
        refused.contains("denied the request: objects labelled deny=yes are refused"),
        "{refused}"
    );
}

#[tokio::test]
async fn kube_rs_sees_patches_denials_and_scale_admission() {
    let srv = FakeApiServer::start().await.unwrap();
    let hooks = start_hooks().await;
    register(&srv, &hooks).await;
    let cms: Api<ConfigMap> = Api::default_namespaced(srv.client());
    let cm: ConfigMap =
        serde_json::from_value(json!({"metadata": {"name": "a", "labels": {"x": "1"}}})).unwrap();
    let created = cms.create(&PostParams::default(), &cm).await.unwrap();
    assert_eq!(
        created.labels().get("patched").map(String::as_str),
        Some("yes")
    );
    assert_eq!(created.labels().get("x").map(String::as_str), Some("1"));

    let bad: ConfigMap =
        serde_json::from_value(json!({"metadata": {"name": "b", "labels": {"deny": "yes"}}}))
            .unwrap();
    match cms.create(&PostParams::default(), &bad).await.unwrap_err() {
        kube::Error::Api(s) => {
            assert_eq!(
                s.code, 400,
                "kube-rs deny() sets no code: the apiserver answers 400"
            );
            assert_eq!(
                s.message,
                "admission webhook \"deny.example.com\" denied the request: objects labelled deny=yes are refused"
            );
        }
        other => panic!("expected a denial, got {other:?}"),
    }
    // A dry run is admitted like a real request and still refused.
    let err = cms
        .create(
            &PostParams {
                dry_run: true,
                ..Default::default()
            },
            &bad,
        )
        .await
        .unwrap_err();
    assert!(matches!(err, kube::Error::Api(s) if s.message.contains("denied the request")));

    let deps: Api<Deployment> = Api::default_namespaced(srv.client());
    let d: Deployment = serde_json::from_value(json!({
        "metadata": {"name": "web"},
        "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "web"}},
            "template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{"name": "c", "image": "nginx"}]}}}
    }))
    .unwrap();
    deps.create(&PostParams::default(), &d).await.unwrap();
    deps.patch_scale(
        "web",
        &PatchParams::default(),
        &Patch::Merge(json!({"spec": {"replicas": 4}})),
    )
    .await
    .unwrap();
    let err = deps
        .patch_scale(
            "web",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"replicas": 9}})),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(err, kube::Error::Api(s) if s.message.ends_with("denied the request: at most 5 replicas"))
    );
    assert_eq!(
        deps.get("web").await.unwrap().spec.unwrap().replicas,
        Some(4)
    );
}

/// A validating webhook that writes to the API server while it admits a ConfigMap update: it records an audit
/// ConfigMap and annotates the very object being updated, so the admitted write finds it changed and starts
/// again (as kube-apiserver's optimistic updates do) instead of losing either write or waiting on a lock.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhooks_may_write_to_the_server_while_admitting() {
    let srv = FakeApiServer::start().await.unwrap();
    let client = srv.client();
    let router = Router::new().route(
        "/audit",
        post(move |Json(body): Json<Value>| {
            let client = client.clone();
            async move {
                let req = request(&body);
                let audited = req
                    .object
                    .as_ref()
                    .is_some_and(|o| o.annotations().contains_key("audited"));
                if audited {
                    // Its own annotation comes back through admission too: nothing more to write.
                    return answer(AdmissionResponse::from(&req));
                }
                let name = req.name.clone();
                let cms: Api<ConfigMap> = Api::default_namespaced(client);
                let audit: ConfigMap =
                    serde_json::from_value(json!({"metadata": {"name": format!("audit-{name}")}}))
                        .unwrap();
                match cms.create(&PostParams::default(), &audit).await {
                    Ok(_) | Err(kube::Error::Api(_)) => {}
                    Err(e) => panic!("audit write failed: {e}"),
                }
                let mark = json!({"metadata": {"annotations": {"audited": "yes"}}});
                cms.patch(&name, &PatchParams::default(), &Patch::Merge(mark))
                    .await
                    .unwrap();
                answer(AdmissionResponse::from(&req))
            }
        }),
    );
    let hooks = start_router(router).await;
    let validating: Api<DynamicObject> = Api::all_with(
        srv.client(),
        &kube::discovery::ApiResource::from_gvk_with_plural(
            &kube::core::GroupVersionKind::gvk(
                "admissionregistration.k8s.io",
                "v1",
                "ValidatingWebhookConfiguration",
            ),
            "validatingwebhookconfigurations",
        ),
    );
    let config = json!({
        "apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingWebhookConfiguration",
        "metadata": {"name": "audit"},
        "webhooks": [{"name": "audit.example.com", "sideEffects": "NoneOnDryRun", "admissionReviewVersions": ["v1"],
            "clientConfig": {"url": format!("{}/audit", hooks.base), "caBundle": hooks.ca_bundle},
            "objectSelector": {"matchLabels": {"audit": "on"}},
            "rules": [{"apiGroups": [""], "apiVersions": ["v1"], "operations": ["UPDATE"], "resources": ["configmaps"]}]}]
    });
    let cms: Api<ConfigMap> = Api::default_namespaced(srv.client());
    let cm: ConfigMap =
        serde_json::from_value(json!({"metadata": {"name": "c", "labels": {"audit": "on"}}}))
            .unwrap();
    cms.create(&PostParams::default(), &cm).await.unwrap();
    validating
        .create(
            &PostParams::default(),
            &serde_json::from_value(config).unwrap(),
        )
        .await
        .unwrap();

    let updated = cms
        .patch(
            "c",
            &PatchParams::default(),
            &Patch::Merge(json!({"data": {"k": "v"}})),
        )
        .await
        .unwrap();
    assert_eq!(
        updated.data.as_ref().unwrap().get("k").map(String::as_str),
        Some("v")
    );
    assert_eq!(
        updated.annotations().get("audited").map(String::as_str),
        Some("yes")
    );
    assert!(cms.get_opt("audit-c").await.unwrap().is_some());
}
