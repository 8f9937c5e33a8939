//! `manifests/` builds offline with `kubectl kustomize` and deploys the webhook the way the README promises.

use std::path::PathBuf;
use std::process::Command;

use serde::Deserialize;
use serde_json::Value;

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
            let yaml = serde_yaml::Value::deserialize(doc).expect("yaml document");
            serde_json::to_value(yaml).expect("json")
        })
        .collect()
}

fn find<'a>(docs: &'a [Value], kind: &str, name: &str) -> &'a Value {
    docs.iter()
        .find(|d| d["kind"] == kind && d["metadata"]["name"] == name)
        .unwrap_or_else(|| panic!("{kind}/{name} is not in manifests/"))
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .map(|a| {
            a.iter()
                .filter_map(|s| s.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn webhook_configurations_fail_closed_only_for_dr_objects() {
    let docs = build();
    for kind in [
        "MutatingWebhookConfiguration",
        "ValidatingWebhookConfiguration",
    ] {
        let config = find(&docs, kind, "drgitops");
        assert_eq!(
            config["metadata"]["annotations"]["cert-manager.io/inject-ca-from"],
            "drgitops-system/drgitops-webhook"
        );
        let hooks = config["webhooks"].as_array().expect("webhooks");
        assert_eq!(hooks.len(), 2, "{kind}");
        for hook in hooks {
            let name = hook["name"].as_str().expect("name");
            assert!(
                hook["timeoutSeconds"].as_u64().expect("timeoutSeconds") <= 5,
                "{name}"
            );
            assert_eq!(hook["sideEffects"], "None", "{name}");
            assert_eq!(hook["matchPolicy"], "Equivalent", "{name}");
            assert_eq!(strings(&hook["admissionReviewVersions"]), ["v1"], "{name}");
            let excluded = hook["namespaceSelector"]["matchExpressions"]
                .as_array()
                .expect("namespaceSelector")
                .iter()
                .find(|e| e["key"] == "kubernetes.io/metadata.name")
                .expect("a selector on the namespace name");
            assert_eq!(excluded["operator"], "NotIn");
            assert_eq!(
                strings(&excluded["values"]),
                ["kube-system", "drgitops-system"]
            );
            let groups: Vec<String> = hook["rules"]
                .as_array()
                .expect("rules")
                .iter()
                .flat_map(|r| strings(&r["apiGroups"]))
                .collect();
            let resources: Vec<String> = hook["rules"]
                .as_array()
                .expect("rules")
                .iter()
                .flat_map(|r| strings(&r["resources"]))
                .collect();
            assert!(
                !resources
                    .iter()
                    .any(|r| r == "*" || r.starts_with("nodes") || r.starts_with("leases"))
            );
            match hook["failurePolicy"].as_str().expect("failurePolicy") {
                "Fail" => {
                    assert_eq!(name, "dr-objects.drgitops.dev");
                    for g in &groups {
                        assert!(
                            ["stork.libopenstorage.org", "drgitops.dev", "storage.k8s.io"]
                                .contains(&g.as_str()),
                            "fail-closed webhook {name} must not match group {g}"
                        );
                    }
                    if kind == "ValidatingWebhookConfiguration" {
                        assert!(resources.contains(&"storageclasses".to_string()));
                        assert!(resources.contains(&"drplans".to_string()));
                        assert!(resources.contains(&"migrationschedules".to_string()));
                    }
                }
                "Ignore" => {
                    assert_eq!(name, "workloads.drgitops.dev");
                    assert_eq!(groups, ["apps", "batch"]);
                    if kind == "ValidatingWebhookConfiguration" {
                        assert!(resources.contains(&"deployments/scale".to_string()));
                    }
                    assert!(resources.contains(&"cronjobs".to_string()));
                }
                other => panic!("unexpected failurePolicy {other}"),
            }
        }
    }
}

#[test]
fn deployment_is_highly_available_and_locked_down() {
    let docs = build();
    let deploy = find(&docs, "Deployment", "drgitops-webhook");
    assert_eq!(deploy["metadata"]["namespace"], "drgitops-system");
    assert_eq!(deploy["spec"]["replicas"], 3);
    let pod = &deploy["spec"]["template"]["spec"];
    assert!(pod["affinity"]["podAntiAffinity"].is_object());
    assert_eq!(pod["securityContext"]["runAsNonRoot"], true);
    let container = &pod["containers"][0];
    assert_eq!(container["securityContext"]["readOnlyRootFilesystem"], true);
    assert_eq!(
        container["securityContext"]["allowPrivilegeEscalation"],
        false
    );
    assert_eq!(container["readinessProbe"]["httpGet"]["path"], "/readyz");
    assert_eq!(container["livenessProbe"]["httpGet"]["path"], "/livez");
    assert!(container["resources"]["requests"]["memory"].is_string());
    assert!(container["resources"]["limits"]["memory"].is_string());
    let args = strings(&container["args"]);
    assert_eq!(args[0], "webhook");
    assert!(args.contains(&"--policies=/etc/drgitops/policies".to_string()));

    let pdb = find(&docs, "PodDisruptionBudget", "drgitops-webhook");
    assert_eq!(pdb["spec"]["maxUnavailable"], 1);
    let cert = find(&docs, "Certificate", "drgitops-webhook");
    assert_eq!(cert["spec"]["secretName"], "drgitops-webhook-tls");
    assert!(
        strings(&cert["spec"]["dnsNames"])
            .contains(&"drgitops-webhook.drgitops-system.svc".to_string())
    );
}

#[test]
fn rbac_only_reads_what_the_rules_read() {
    let docs = build();
    let role = find(&docs, "ClusterRole", "drgitops-webhook");
    for rule in role["rules"].as_array().expect("rules") {
        assert_eq!(strings(&rule["verbs"]), ["get", "list", "watch"]);
        for r in strings(&rule["resources"]) {
            assert!(
                [
                    "storageclasses",
                    "clusterpairs",
                    "schedulepolicies",
                    "namespacedschedulepolicies",
                    "clusterdomainsstatuses",
                    "drplans"
                ]
                .contains(&r.as_str()),
                "unexpected resource {r}"
            );
        }
    }
}

#[test]
fn the_shipped_policy_config_loads() {
    let docs = build();
    let cm = find(&docs, "ConfigMap", "drgitops-policies");
    let dir = tempfile::tempdir().expect("tempdir");
    for (name, text) in cm["data"].as_object().expect("data") {
        std::fs::write(dir.path().join(name), text.as_str().expect("text")).expect("write");
    }
    drgitops::webhook::load_policies(dir.path()).expect("the shipped policy config is valid");
}

#[test]
fn the_warn_mode_config_in_the_readme_loads_and_warns_for_every_rule() {
    let doc = std::fs::read_to_string(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("README.md"))
        .expect("docs");
    let start = doc
        .find("  policies.yaml: |\n")
        .expect("the warn-mode example")
        + "  policies.yaml: |\n".len();
    let block: String = doc[start..]
        .lines()
        .take_while(|l| l.starts_with("    "))
        .map(|l| format!("{}\n", &l[4..]))
        .collect();
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("policies.yaml"), block).expect("write");
    let config = drgitops::webhook::load_policies(dir.path()).expect("the documented config loads");
    for rule in drgitops::policy::RULES.iter() {
        assert_eq!(
            config.rules[rule.id].action,
            drgitops::policy::Action::Warn,
            "{}",
            rule.id
        );
    }
}
