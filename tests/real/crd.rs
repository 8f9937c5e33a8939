//! The DRPlan and DRPlanOverride CRDs from `manifests/crd/` on a real kube-apiserver: accepted and Established, and
//! their schemas enforced by the server itself, with kubectl's usual message.

use testkit::{Cluster, EAST, repo_file};

fn plan(mode: &str, interval: &str) -> String {
    format!(
        "apiVersion: drgitops.dev/v1alpha1\nkind: DRPlan\nmetadata:\n  name: mysql\n  namespace: mysql\nspec:\n  mode: {mode}\n  primary: us-east-1a\n  domains:\n  - name: us-east-1a\n  - name: us-east-1b\n  clusterPair:\n    name: remotecluster\n    peerKubeconfigSecret: {{name: drgitops-peer, key: kubeconfig}}\n    storageSecret: {{name: drgitops-peer-storage}}\n  schedule:\n    interval:\n      intervalMinutes: {interval}\n"
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_crd_is_established_and_its_schema_refuses_an_invalid_plan() {
    let cluster = Cluster::start(EAST).await;
    let crd = repo_file("manifests/crd/drplan.yaml").display().to_string();
    let out = cluster.kubectl(&["apply", "-f", &crd]);
    assert!(out.contains("drplans.drgitops.dev created"), "{out}");
    cluster.kubectl(&[
        "wait",
        "--for=condition=Established",
        "crd/drplans.drgitops.dev",
        "--timeout=60s",
    ]);
    let accepted = cluster.kubectl(&[
        "get",
        "crd",
        "drplans.drgitops.dev",
        "-o",
        "jsonpath={.status.conditions[?(@.type==\"NamesAccepted\")].status}",
    ]);
    assert_eq!(accepted, "True");
    cluster.kubectl(&["create", "namespace", "mysql"]);

    for (mode, interval, field) in [
        ("5", "15", "spec.mode"),
        ("sync", "15", "spec.mode"),
        (
            "async",
            "\"often\"",
            "spec.schedule.interval.intervalMinutes",
        ),
    ] {
        let out = cluster.kubectl_output(&["apply", "-f", "-"], Some(&plan(mode, interval)));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            !out.status.success(),
            "mode {mode}, interval {interval} was stored"
        );
        assert!(
            stderr.starts_with("The DRPlan \"mysql\" is invalid:") && stderr.contains(field),
            "mode {mode}, interval {interval}: {stderr}"
        );
    }
    let out = cluster.kubectl_output(&["apply", "-f", "-"], Some(&plan("async", "15")));
    assert!(
        out.status.success(),
        "a valid plan is stored: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_override_crd_is_established_and_refuses_an_override_without_a_reason() {
    let cluster = Cluster::start(EAST).await;
    let crd = repo_file("manifests/crd/drplanoverride.yaml")
        .display()
        .to_string();
    let out = cluster.kubectl(&["apply", "-f", &crd]);
    assert!(
        out.contains("drplanoverrides.drgitops.dev created"),
        "{out}"
    );
    cluster.kubectl(&[
        "wait",
        "--for=condition=Established",
        "crd/drplanoverrides.drgitops.dev",
        "--timeout=60s",
    ]);
    cluster.kubectl(&["create", "namespace", "mysql"]);
    let with_reason = |reason: &str| {
        format!(
            "apiVersion: drgitops.dev/v1alpha1\nkind: DRPlanOverride\nmetadata: {{name: mysql, namespace: mysql}}\nspec:\n  plan: mysql\n  primary: us-east-1b\n  reason: \"{reason}\"\n  requestedBy: admin\n"
        )
    };
    let out = cluster.kubectl_output(&["apply", "-f", "-"], Some(&with_reason("")));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success(),
        "an override without a reason was stored"
    );
    assert!(
        stderr.starts_with("The DRPlanOverride \"mysql\" is invalid:")
            && stderr.contains("spec.reason"),
        "{stderr}"
    );
    let out = cluster.kubectl_output(&["apply", "-f", "-"], Some(&with_reason("east is down")));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let columns = cluster.kubectl(&["-n", "mysql", "get", "drplanoverrides"]);
    assert!(
        columns.starts_with("NAME    PLAN    PRIMARY      REQUESTED-BY   REASON         AGE"),
        "{columns}"
    );
}
