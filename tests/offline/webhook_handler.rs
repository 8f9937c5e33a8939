//! The admission router driven in-process: what kube-apiserver would read back for each kind of review.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use base64::Engine as _;
use drgitops::cluster::live::LiveView;
use drgitops::policy::view::ClusterView;
use drgitops::policy::{Decision, Finding, Mutation, Outcome, PolicyConfig, Request};
use drgitops::webhook::admission::{self, AdmissionState, Evaluator};
use drgitops::webhook::config::PolicyStore;
use drgitops::webhook::metrics::Metrics;
use http_body_util::BodyExt;
use serde_json::Value;
use tower::ServiceExt;

fn fixture(name: &str) -> Vec<u8> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/webhook")
        .join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("fixture {}: {e}", path.display()))
}

/// Echoes what the rules were shown as an audit annotation, so tests can check the translation.
fn echo(req: &Request<'_>, _view: &dyn ClusterView, _config: &PolicyConfig) -> Decision {
    let seen = format!(
        "op={:?} group={} kind={} sub={:?} ns={:?} name={:?} dry={} user={} object={} old={}",
        req.operation,
        req.group,
        req.kind,
        req.sub_resource,
        req.namespace,
        req.name,
        req.dry_run,
        req.user.username,
        req.object.is_some(),
        req.old_object.is_some()
    );
    Decision {
        findings: vec![Finding {
            rule: "echo",
            outcome: Outcome::Audit,
            field: String::new(),
            message: seen,
        }],
        mutations: vec![],
    }
}

/// Denies `startApplications: true`, warns at length, and patches an absent field: the three answer shapes.
fn judge(req: &Request<'_>, _view: &dyn ClusterView, _config: &PolicyConfig) -> Decision {
    let mut decision = Decision::default();
    let start = req
        .object
        .and_then(|o| o.pointer("/spec/template/spec/startApplications"));
    match start {
        Some(Value::Bool(true)) => decision.findings.push(Finding {
            rule: "migration-start-applications",
            outcome: Outcome::Deny,
            field: "spec.template.spec.startApplications".into(),
            message: "spec.template.spec.startApplications is true; set it to false".into(),
        }),
        Some(_) => {}
        None => decision.mutations.push(Mutation {
            rule: "migration-start-applications",
            field: "spec.template.spec.startApplications".into(),
            message: "defaulted to false".into(),
            ops: serde_json::from_str(
                r#"[{"op":"add","path":"/spec/template/spec/startApplications","value":false}]"#,
            )
            .expect("patch"),
        }),
    }
    decision.findings.push(Finding {
        rule: "long-warning",
        outcome: Outcome::Warn,
        field: "spec".into(),
        message: "w".repeat(400),
    });
    decision
}

fn slow(req: &Request<'_>, view: &dyn ClusterView, config: &PolicyConfig) -> Decision {
    std::thread::sleep(Duration::from_millis(400));
    judge(req, view, config)
}

fn state(evaluate: Evaluator) -> (AdmissionState, Arc<Metrics>) {
    let view = Arc::new(LiveView::new(None));
    let metrics = Arc::new(Metrics::new());
    let mut state = AdmissionState::new(
        view,
        Arc::new(PolicyStore::new(PolicyConfig::default())),
        metrics.clone(),
    );
    state.evaluate = evaluate;
    (state, metrics)
}

async fn call(state: AdmissionState, path: &str, body: Vec<u8>) -> (http::StatusCode, Value) {
    let request = http::Request::post(path)
        .header("content-type", "application/json")
        .body(Body::from(body))
        .expect("request");
    let response = admission::router(state)
        .oneshot(request)
        .await
        .expect("infallible");
    let status = response.status();
    let bytes = response
        .into_body()
        .collect()
        .await
        .expect("body")
        .to_bytes();
    let value: Value = serde_json::from_slice(&bytes).expect("the answer is JSON");
    assert_eq!(value["apiVersion"], "admission.k8s.io/v1");
    assert_eq!(value["kind"], "AdmissionReview");
    (status, value)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn denial_echoes_uid_with_403_and_the_rule_message() {
    let (state, _) = state(judge);
    let (status, review) = call(state, "/validate", fixture("create-migrationschedule.json")).await;
    assert_eq!(status, 200);
    let resp = &review["response"];
    assert_eq!(resp["uid"], "705ab4f5-6393-11e8-b7cc-42010a800002");
    assert_eq!(resp["allowed"], false);
    assert_eq!(resp["status"]["code"], 403);
    assert_eq!(
        resp["status"]["message"],
        "spec.template.spec.startApplications is true; set it to false"
    );
    assert!(resp.get("patch").is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn warnings_are_clamped_to_120_characters() {
    let (state, _) = state(judge);
    let (_, review) = call(state, "/validate", fixture("delete-storageclass.json")).await;
    let warnings = review["response"]["warnings"].as_array().expect("warnings");
    assert_eq!(warnings.len(), 1);
    let text = warnings[0].as_str().expect("string");
    assert!(text.starts_with("long-warning: www"));
    assert_eq!(text.chars().count(), 120);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mutate_returns_a_base64_json_patch_and_validate_does_not() {
    let mut body: Value =
        serde_json::from_slice(&fixture("create-migrationschedule.json")).expect("json");
    body["request"]["object"]["spec"]["template"]["spec"]
        .as_object_mut()
        .expect("spec")
        .remove("startApplications");
    let body = serde_json::to_vec(&body).expect("json");
    let (state, _) = state(judge);
    let (_, review) = call(state.clone(), "/mutate", body.clone()).await;
    let resp = &review["response"];
    assert_eq!(resp["allowed"], true);
    assert_eq!(resp["patchType"], "JSONPatch");
    let patch = base64::engine::general_purpose::STANDARD
        .decode(resp["patch"].as_str().expect("patch"))
        .expect("b64");
    let patch: Value = serde_json::from_slice(&patch).expect("patch json");
    assert_eq!(
        patch,
        serde_json::json!([{"op":"add","path":"/spec/template/spec/startApplications","value":false}])
    );
    let (_, review) = call(state, "/validate", body).await;
    assert!(review["response"].get("patch").is_none());
    assert!(review["response"].get("patchType").is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scale_subresource_is_judged_as_its_parent_workload() {
    let (state, _) = state(echo);
    let (_, review) = call(state, "/validate", fixture("scale-deployment.json")).await;
    let seen = review["response"]["auditAnnotations"]["echo"]
        .as_str()
        .expect("echo");
    assert_eq!(
        seen,
        "op=Update group=apps kind=Deployment sub=Some(\"scale\") ns=Some(\"mysql\") name=Some(\"mysql\") \
         dry=false user=bob object=true old=true"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delete_has_only_the_old_object() {
    let (state, _) = state(echo);
    let (_, review) = call(state, "/validate", fixture("delete-storageclass.json")).await;
    let seen = review["response"]["auditAnnotations"]["echo"]
        .as_str()
        .expect("echo");
    assert!(
        seen.starts_with("op=Delete group=storage.k8s.io kind=StorageClass sub=None ns=None"),
        "{seen}"
    );
    assert!(seen.ends_with("object=false old=true"), "{seen}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dry_run_and_user_reach_the_rules() {
    let (state, _) = state(echo);
    let (_, review) = call(state, "/validate", fixture("dryrun-update-deployment.json")).await;
    let seen = review["response"]["auditAnnotations"]["echo"]
        .as_str()
        .expect("echo");
    assert!(
        seen.contains("dry=true user=system:serviceaccount:drgitops:drgitops-reconciler"),
        "{seen}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn equivalent_match_judges_the_sent_kind() {
    let (state, _) = state(echo);
    let (_, review) = call(state, "/validate", fixture("equivalent-kind-drplan.json")).await;
    assert_eq!(
        review["response"]["uid"],
        "3b7c1e9a-0f4d-4a2b-9c6e-1d8f5a2b7c30"
    );
    let seen = review["response"]["auditAnnotations"]["echo"]
        .as_str()
        .expect("echo");
    assert!(seen.contains("group=drgitops.dev kind=DRPlan"), "{seen}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_bodies_get_an_invalid_review_not_an_http_error() {
    let (state, metrics) = state(judge);
    for (body, uid, needle) in [
        (fixture("truncated.json"), "", "not JSON"),
        (
            fixture("wrong-version.json"),
            "11111111-2222-3333-4444-555555555555",
            "admission.k8s.io/v1beta1",
        ),
        (
            br#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview"}"#.to_vec(),
            "",
            "no request",
        ),
        (b"".to_vec(), "", "not JSON"),
        (
            br#"{"apiVersion":"admission.k8s.io/v1","request":{"uid":"u1","operation":"PATCH"}}"#
                .to_vec(),
            "u1",
            "PATCH",
        ),
    ] {
        let (status, review) = call(state.clone(), "/validate", body).await;
        assert_eq!(status, 200);
        let resp = &review["response"];
        assert_eq!(resp["uid"], uid);
        assert_eq!(resp["allowed"], false);
        assert_eq!(resp["status"]["code"], 400);
        assert_eq!(resp["status"]["reason"], "Invalid");
        let message = resp["status"]["message"].as_str().expect("message");
        assert!(
            message.contains(needle),
            "{message:?} should mention {needle:?}"
        );
    }
    assert!(metrics.render().contains("decision=\"Invalid\""));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_bodies_are_refused_as_invalid() {
    let (mut state, _) = state(judge);
    state.body_limit = 1024;
    let (status, review) = call(state, "/validate", fixture("create-migrationschedule.json")).await;
    assert_eq!(status, 200);
    let message = review["response"]["status"]["message"]
        .as_str()
        .expect("message");
    assert_eq!(message, "admission review body is larger than 1024 bytes");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bodies_under_and_at_the_default_cap_are_judged_and_one_byte_over_is_refused() {
    let (state, _) = state(judge);
    let cap = admission::DEFAULT_BODY_LIMIT;
    assert_eq!(state.body_limit, cap);
    // The same review, padded with whitespace (still valid JSON) to the length wanted.
    let padded = |len: usize| {
        let mut body = fixture("create-migrationschedule.json");
        assert!(body.len() < len);
        body.resize(len, b' ');
        body
    };
    for len in [cap - 1, cap] {
        let (status, review) = call(state.clone(), "/validate", padded(len)).await;
        assert_eq!(status, 200);
        let resp = &review["response"];
        assert_eq!(
            resp["uid"], "705ab4f5-6393-11e8-b7cc-42010a800002",
            "{len} bytes"
        );
        assert_ne!(resp["status"]["reason"], "Invalid", "{len} bytes: {resp}");
    }
    let (status, review) = call(state, "/validate", padded(cap + 1)).await;
    assert_eq!(status, 200);
    assert_eq!(review["response"]["allowed"], false);
    assert_eq!(
        review["response"]["status"]["message"],
        format!("admission review body is larger than {cap} bytes").as_str()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn past_the_deadline_stork_objects_fail_closed_and_workloads_fail_open() {
    let (mut state, metrics) = state(slow);
    state.deadline = Duration::from_millis(50);
    let (_, review) = call(
        state.clone(),
        "/validate",
        fixture("create-migrationschedule.json"),
    )
    .await;
    let resp = &review["response"];
    assert_eq!(resp["uid"], "705ab4f5-6393-11e8-b7cc-42010a800002");
    assert_eq!(resp["allowed"], false);
    let message = resp["status"]["message"].as_str().expect("message");
    assert!(
        message.starts_with("drgitops could not check this MigrationSchedule"),
        "{message}"
    );

    let (_, review) = call(state, "/validate", fixture("scale-deployment.json")).await;
    let resp = &review["response"];
    assert_eq!(resp["allowed"], true);
    let warning = resp["warnings"][0].as_str().expect("warning");
    assert!(
        warning.starts_with("drgitops did not check this Deployment"),
        "{warning}"
    );
    assert!(metrics.render().contains("decision=\"DeadlineExceeded\""));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_count_requests_rules_and_durations() {
    let (state, metrics) = state(judge);
    call(
        state.clone(),
        "/validate",
        fixture("create-migrationschedule.json"),
    )
    .await;
    call(state, "/validate", fixture("scale-deployment.json")).await;
    let text = metrics.render();
    assert!(
        text.contains(
            "drgitops_admission_requests_total{endpoint=\"validate\",operation=\"CREATE\",kind=\"MigrationSchedule\",decision=\"Denied\"} 1"
        ),
        "{text}"
    );
    assert!(text.contains(
        "drgitops_rule_results_total{rule=\"migration-start-applications\",action=\"deny\"} 1"
    ));
    assert!(text.contains("drgitops_rule_results_total{rule=\"long-warning\",action=\"warn\"} 2"));
    assert!(
        text.contains(
            "drgitops_admission_duration_seconds_bucket{le=\"30.0\",endpoint=\"validate\"} 2"
        ),
        "{text}"
    );
}
