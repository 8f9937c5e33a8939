//! Break glass without a cluster: the shipped role grants creating overrides and nothing that edits a DRPlan, the
//! reconciler may read and remove overrides, the admission policy is bound to deny, and the command refuses
//! what it cannot do before it talks to any cluster.

use std::path::PathBuf;
use std::process::Command;

use serde::Deserialize;
use serde_json::{Value, json};

fn build() -> Vec<Value> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("manifests");
    let out = Command::new("kubectl")
        .arg("kustomize")
        .arg(&dir)
        .output()
        .expect("kubectl is installed");
    assert!(
        out.status.success(),
        "kubectl kustomize failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).expect("utf-8");
    serde_yaml::Deserializer::from_str(&text)
        .map(|doc| {
            serde_json::to_value(serde_yaml::Value::deserialize(doc).expect("yaml")).expect("json")
        })
        .collect()
}

fn find<'a>(docs: &'a [Value], kind: &str, name: &str) -> &'a Value {
    docs.iter()
        .find(|d| d["kind"] == kind && d["metadata"]["name"] == name)
        .unwrap_or_else(|| panic!("{kind}/{name} is not in manifests/"))
}

#[test]
fn the_break_glass_role_creates_overrides_and_edits_no_plan() {
    let docs = build();
    let role = find(&docs, "ClusterRole", "drgitops-break-glass");
    assert_eq!(
        role["rules"],
        json!([
            {"apiGroups": ["drgitops.dev"], "resources": ["drplanoverrides"], "verbs": ["create", "get", "list", "watch"]},
            {"apiGroups": ["drgitops.dev"], "resources": ["drplans"], "verbs": ["get", "list", "watch"]},
        ])
    );
    let reconciler = find(&docs, "ClusterRole", "drgitops-reconciler");
    let overrides = reconciler["rules"]
        .as_array()
        .expect("rules")
        .iter()
        .find(|r| r["resources"] == json!(["drplanoverrides"]))
        .expect("the reconciler's rule on drplanoverrides");
    assert_eq!(
        overrides["verbs"],
        json!(["get", "list", "watch", "delete"])
    );
    find(
        &docs,
        "CustomResourceDefinition",
        "drplanoverrides.drgitops.dev",
    );
}

#[test]
fn the_admission_policy_pins_the_requester_and_is_bound_to_deny() {
    let docs = build();
    let policy = find(&docs, "ValidatingAdmissionPolicy", "drgitops-break-glass");
    assert_eq!(policy["spec"]["failurePolicy"], "Fail");
    let expressions: Vec<&str> = policy["spec"]["validations"]
        .as_array()
        .expect("validations")
        .iter()
        .filter_map(|v| v["expression"].as_str())
        .collect();
    assert!(
        expressions
            .iter()
            .any(|e| e.contains("object.spec.requestedBy == request.userInfo.username")),
        "{expressions:?}"
    );
    let binding = find(
        &docs,
        "ValidatingAdmissionPolicyBinding",
        "drgitops-break-glass",
    );
    assert_eq!(binding["spec"]["policyName"], "drgitops-break-glass");
    assert_eq!(binding["spec"]["validationActions"], json!(["Deny"]));
}

fn failover(args: &[&str], kubeconfig: &str) -> (i32, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_drgitops"))
        .arg("failover")
        .args(args)
        .env("KUBECONFIG", kubeconfig)
        .env_remove("KUBERNETES_SERVICE_HOST")
        .output()
        .expect("drgitops runs");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn break_glass_refuses_what_it_cannot_do_before_any_cluster() {
    let missing = "/nonexistent/drgitops-test.kubeconfig";
    let (code, stderr) = failover(
        &["--break-glass", "--plan", "mysql", "--to", "us-east-1b"],
        missing,
    );
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("--reason <REASON>"), "{stderr}");

    let (code, stderr) = failover(
        &[
            "--break-glass",
            "--plan",
            "mysql",
            "--to",
            "us-east-1b",
            "--reason",
            "x",
            "--repo",
            ".",
        ],
        missing,
    );
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("cannot be used with"), "{stderr}");

    let (code, stderr) = failover(
        &[
            "--break-glass",
            "--plan",
            "mysql",
            "--to",
            "us-east-1b",
            "--reason",
            "  ",
        ],
        missing,
    );
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.contains("--reason must say why Git cannot be used"),
        "{stderr}"
    );

    let (code, stderr) = failover(
        &[
            "--break-glass",
            "--plan",
            "mysql",
            "--to",
            "us-east-1b",
            "--reason",
            "east is down",
        ],
        missing,
    );
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.contains("set KUBECONFIG to the surviving cluster's kubeconfig"),
        "{stderr}"
    );

    let (code, stderr) = failover(&["--plan", "mysql", "--to", "us-east-1b"], missing);
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("--repo <REPO>"), "{stderr}");
}
