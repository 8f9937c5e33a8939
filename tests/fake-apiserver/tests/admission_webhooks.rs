//! Admission against real HTTPS webhooks: a test webhook server on loopback (its own CA, certificates from
//! rcgen) that denies, patches (base64 and kube-rs byte arrays), warns, hangs, answers with a wrong uid and
//! records what it was sent, called through `Admission` from webhook configurations as the server stores them.

mod admission_support;

use std::collections::BTreeMap;

use admission_support::{config, start_webhooks};
use fake_apiserver::admission::{Admission, Attributes, Denied, Operation, UserInfo};
use serde_json::{Value, json};

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
    let ignored = [config(
        "slow",
        vec![server.webhook(
            "slow.example.com",
            "/hang",
            json!({"timeoutSeconds": 1, "failurePolicy": "Ignore"}),
        )],
    )];
    // Both wait out the same one-second timeout, side by side.
    let (failed, passed) = tokio::join!(
        admission.validate(&failing, &attrs),
        admission.mutate(&ignored, &attrs)
    );
    let denied = failed.unwrap_err();
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
    let (object, warnings) = passed.expect("failure ignored");
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

#[tokio::test]
async fn webhooks_that_only_speak_v1beta1_get_a_v1beta1_review() {
    let server = start_webhooks().await;
    let admission = Admission::new();
    let configs = [config(
        "old",
        vec![server.webhook(
            "old.example.com",
            "/record/v1beta1",
            json!({"admissionReviewVersions": ["v1beta1"]}),
        )],
    )];
    admission
        .validate(&configs, &configmap_create())
        .await
        .expect("admitted");
    let reviews = server.recorded("v1beta1");
    assert_eq!(reviews.len(), 1);
    assert_eq!(reviews[0]["apiVersion"], "admission.k8s.io/v1beta1");
}

#[tokio::test]
async fn if_needed_webhooks_are_reinvoked_once_after_later_changes() {
    let server = start_webhooks().await;
    let admission = Admission::new();
    let watcher = |tag: &str, policy: &str| {
        config(
            &format!("a-{tag}"),
            vec![server.webhook(
                &format!("{tag}.example.com"),
                &format!("/record/{tag}"),
                json!({"reinvocationPolicy": policy}),
            )],
        )
    };
    let labeller = config(
        "b-label",
        vec![server.webhook("label.example.com", "/patch-base64", json!({}))],
    );
    let configs = [
        watcher("again", "IfNeeded"),
        watcher("once", "Never"),
        labeller,
    ];
    let (object, _) = admission
        .mutate(&configs, &configmap_create())
        .await
        .expect("admitted");
    assert_eq!(
        object.expect("object")["metadata"]["labels"]["patched-by"],
        "base64"
    );
    let again = server.recorded("again");
    assert_eq!(again.len(), 2, "reinvoked after the label was added");
    assert!(again[0]["request"]["object"]["metadata"]["labels"]["patched-by"].is_null());
    assert_eq!(
        again[1]["request"]["object"]["metadata"]["labels"]["patched-by"],
        "base64"
    );
    assert_eq!(server.recorded("once").len(), 1);

    // Nothing changed after it: no second call.
    let alone = [watcher("alone", "IfNeeded")];
    admission
        .mutate(&alone, &configmap_create())
        .await
        .expect("admitted");
    assert_eq!(server.recorded("alone").len(), 1);
}
