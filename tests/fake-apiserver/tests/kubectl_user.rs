//! kubectl against the fake server, as a user drives a cluster: each test starts its own server and kubectl
//! with its own kubeconfig and discovery cache.

mod common;

use std::time::Duration;

use common::{Kubectl, eventually};
use fake_apiserver::FakeApiServer;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, Patch, PatchParams};
use serde_json::json;
use tokio::io::AsyncBufReadExt;

fn data(rel: &str) -> String {
    Kubectl::data(rel).display().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn version_namespaces_and_dry_run() {
    let srv = FakeApiServer::start().await.unwrap();
    let k = Kubectl::new(&srv);
    let version = k.ok(&["version"]).await;
    assert!(
        version.contains("Server Version: v1.33.0-fake"),
        "{version}"
    );

    assert_eq!(
        k.ok(&["create", "namespace", "demo"]).await.trim(),
        "namespace/demo created"
    );
    let phase = k
        .ok(&["get", "namespace", "demo", "-o", "jsonpath={.status.phase}"])
        .await;
    assert_eq!(phase, "Active");

    let out = k
        .ok(&[
            "create",
            "--dry-run=server",
            "-f",
            &data("kubectl/deployment.yaml"),
        ])
        .await;
    assert_eq!(out.trim(), "deployment.apps/web created (server dry run)");
    let missing = k.fails(&["-n", "demo", "get", "deployment", "web"]).await;
    assert!(
        missing.contains("deployments.apps \"web\" not found"),
        "{missing}"
    );

    // kubectl's typed create commands send protobuf.
    k.ok(&[
        "-n",
        "demo",
        "create",
        "deployment",
        "api",
        "--image=nginx:1.27",
        "--replicas=3",
        "--port=80",
    ])
    .await;
    let got = k
        .ok(&["-n", "demo", "get", "deploy", "api", "-o", "jsonpath={.spec.replicas} {.spec.template.spec.containers[0].image} {.spec.strategy.type}"])
        .await;
    assert_eq!(got, "3 nginx:1.27 RollingUpdate");
    k.ok(&[
        "-n",
        "demo",
        "create",
        "secret",
        "generic",
        "creds",
        "--from-literal=token=abc",
    ])
    .await;
    let token = k
        .ok(&[
            "-n",
            "demo",
            "get",
            "secret",
            "creds",
            "-o",
            "jsonpath={.data.token} {.type}",
        ])
        .await;
    assert_eq!(token, "YWJj Opaque");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deployment_apply_get_scale_annotate_patch_delete() {
    let srv = FakeApiServer::start().await.unwrap();
    let k = Kubectl::new(&srv);
    k.ok(&["create", "namespace", "demo"]).await;
    let out = k
        .ok(&[
            "apply",
            "--server-side",
            "-f",
            &data("kubectl/deployment.yaml"),
        ])
        .await;
    assert_eq!(out.trim(), "deployment.apps/web serverside-applied");

    let json_out = k
        .ok(&[
            "-n",
            "demo",
            "get",
            "deploy",
            "web",
            "--show-managed-fields",
            "-o",
            "json",
        ])
        .await;
    let d: serde_json::Value = serde_json::from_str(&json_out).unwrap();
    assert_eq!(d["spec"]["replicas"], 2);
    assert_eq!(
        d["spec"]["strategy"]["type"], "RollingUpdate",
        "server defaults applied"
    );
    assert_eq!(d["metadata"]["managedFields"][0]["manager"], "kubectl");
    assert_eq!(d["metadata"]["managedFields"][0]["operation"], "Apply");

    assert_eq!(
        k.ok(&["-n", "demo", "scale", "deploy", "web", "--replicas=3"])
            .await
            .trim(),
        "deployment.apps/web scaled"
    );
    assert_eq!(
        k.ok(&[
            "-n",
            "demo",
            "get",
            "deploy",
            "web",
            "-o",
            "jsonpath={.spec.replicas}"
        ])
        .await,
        "3"
    );

    k.ok(&["-n", "demo", "annotate", "deploy", "web", "team=blue"])
        .await;
    let team = k
        .ok(&[
            "-n",
            "demo",
            "get",
            "deploy",
            "web",
            "-o",
            "jsonpath={.metadata.annotations.team}",
        ])
        .await;
    assert_eq!(team, "blue");

    k.ok(&[
        "-n",
        "demo",
        "patch",
        "deploy",
        "web",
        "--type=merge",
        "-p",
        r#"{"spec":{"replicas":4}}"#,
    ])
    .await;
    k.ok(&[
        "-n",
        "demo",
        "patch",
        "deploy",
        "web",
        "--type=json",
        "-p",
        r#"[{"op":"replace","path":"/metadata/labels/tier","value":"back"}]"#,
    ])
    .await;
    let got = k
        .ok(&[
            "-n",
            "demo",
            "get",
            "deploy",
            "-l",
            "tier=back",
            "-o",
            "jsonpath={.items[*].spec.replicas}",
        ])
        .await;
    assert_eq!(got, "4");
    let none = k
        .ok(&[
            "-n",
            "demo",
            "get",
            "deploy",
            "-l",
            "tier=front",
            "-o",
            "name",
        ])
        .await;
    assert_eq!(none.trim(), "");

    assert_eq!(
        k.ok(&["-n", "demo", "delete", "deploy", "web"])
            .await
            .trim(),
        "deployment.apps \"web\" deleted"
    );
    let gone = k.fails(&["-n", "demo", "get", "deploy", "web"]).await;
    assert!(gone.contains("not found"), "{gone}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crd_established_then_custom_resources_by_short_name_and_selector() {
    let srv = FakeApiServer::start().await.unwrap();
    let k = Kubectl::new(&srv);
    k.ok(&["apply", "--server-side", "-f", &data("kubectl/crd.yaml")])
        .await;
    let waited = k
        .ok(&[
            "wait",
            "--for=condition=Established",
            "crd/widgets.example.com",
            "--timeout=20s",
        ])
        .await;
    assert!(waited.contains("condition met"), "{waited}");
    let out = k
        .ok(&[
            "apply",
            "--server-side",
            "-f",
            &data("kubectl/widgets.yaml"),
        ])
        .await;
    assert!(
        out.contains("widget.example.com/blue serverside-applied"),
        "{out}"
    );

    let names = k.ok(&["get", "wd", "-o", "name"]).await;
    assert_eq!(
        names.lines().collect::<Vec<_>>(),
        ["widget.example.com/blue", "widget.example.com/red"]
    );
    let blue = k
        .ok(&[
            "get",
            "widgets",
            "-l",
            "color=blue",
            "-o",
            "jsonpath={.items[*].metadata.name}",
        ])
        .await;
    assert_eq!(blue, "blue");
    let size = k
        .ok(&["get", "widget", "red", "-o", "jsonpath={.spec.size}"])
        .await;
    assert_eq!(size, "1", "schema default applied");
    // Plain `get` prints the CRD's printer columns from the server's Table.
    let table = k.ok(&["get", "wd"]).await;
    let header: Vec<&str> = table.lines().next().unwrap().split_whitespace().collect();
    assert_eq!(header, ["NAME", "SIZE", "AGE"]);
    assert!(
        table
            .lines()
            .any(|l| l.split_whitespace().take(2).eq(["blue", "3"])),
        "{table}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delete_with_finalizer_waits_until_released() {
    let srv = FakeApiServer::start().await.unwrap();
    let k = Kubectl::new(&srv);
    k.ok(&[
        "apply",
        "--server-side",
        "-f",
        &data("kubectl/configmap-finalizer.yaml"),
    ])
    .await;
    k.ok(&["delete", "configmap", "held", "--wait=false"]).await;
    let ts = k
        .ok(&[
            "get",
            "configmap",
            "held",
            "-o",
            "jsonpath={.metadata.deletionTimestamp}",
        ])
        .await;
    assert!(
        !ts.is_empty(),
        "object stays with a deletionTimestamp while finalizers remain"
    );

    // `delete --wait` returns only once the finalizer is released.
    let mut waiting = k.command(&[
        "delete",
        "configmap",
        "held",
        "--wait=true",
        "--timeout=30s",
    ]);
    let child = waiting.output();
    let release = async {
        eventually(20, "kubectl to watch for the deletion", || async {
            (srv.open_watches() > 0).then_some(())
        })
        .await;
        let cms: Api<ConfigMap> = Api::default_namespaced(srv.client());
        cms.patch(
            "held",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"finalizers": null}})),
        )
        .await
        .unwrap();
    };
    let (out, ()) = tokio::join!(child, release);
    let out = out.unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let gone = k.fails(&["get", "configmap", "held"]).await;
    assert!(gone.contains("configmaps \"held\" not found"), "{gone}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn get_watch_sees_a_later_change() {
    let srv = FakeApiServer::start().await.unwrap();
    let k = Kubectl::new(&srv);
    k.ok(&["create", "configmap", "watched", "--from-literal=k=v1"])
        .await;
    let mut child = k
        .command(&[
            "get",
            "configmap",
            "watched",
            "--watch",
            "-o",
            "jsonpath={.data.k}{\"\\n\"}",
        ])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = tokio::io::BufReader::new(child.stdout.take().unwrap()).lines();
    let first = tokio::time::timeout(Duration::from_secs(20), lines.next_line())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(first.as_deref(), Some("v1"));
    k.ok(&[
        "patch",
        "configmap",
        "watched",
        "--type=merge",
        "-p",
        r#"{"data":{"k":"v2"}}"#,
    ])
    .await;
    let next = tokio::time::timeout(Duration::from_secs(20), lines.next_line())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(next.as_deref(), Some("v2"));
    child.kill().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_side_apply_conflict_between_field_managers() {
    let srv = FakeApiServer::start().await.unwrap();
    let k = Kubectl::new(&srv);
    k.ok(&["create", "namespace", "demo"]).await;
    k.ok(&[
        "apply",
        "--server-side",
        "-f",
        &data("kubectl/deployment.yaml"),
    ])
    .await;
    let other = k.file(
        "other.yaml",
        "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web, namespace: demo}\nspec: {replicas: 5}\n",
    );
    let other = other.display().to_string();
    let err = k
        .fails(&[
            "apply",
            "--server-side",
            "--field-manager=other",
            "-f",
            &other,
        ])
        .await;
    assert!(
        err.contains("Apply failed with 1 conflict: conflict with \"kubectl\": .spec.replicas"),
        "{err}"
    );
    assert_eq!(
        k.ok(&[
            "-n",
            "demo",
            "get",
            "deploy",
            "web",
            "-o",
            "jsonpath={.spec.replicas}"
        ])
        .await,
        "2"
    );

    k.ok(&[
        "apply",
        "--server-side",
        "--field-manager=other",
        "--force-conflicts",
        "-f",
        &other,
    ])
    .await;
    assert_eq!(
        k.ok(&[
            "-n",
            "demo",
            "get",
            "deploy",
            "web",
            "-o",
            "jsonpath={.spec.replicas}"
        ])
        .await,
        "5"
    );
    let owners = k
        .ok(&[
            "-n",
            "demo",
            "get",
            "deploy",
            "web",
            "--show-managed-fields",
            "-o",
            "jsonpath={.metadata.managedFields[*].manager}",
        ])
        .await;
    assert!(
        owners.contains("other") && owners.contains("kubectl"),
        "{owners}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn binary_prints_url_and_writes_a_kubeconfig() {
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = dir.path().join("kc");
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_fake-apiserver"))
        .args([
            "--listen",
            "127.0.0.1:0",
            "--name",
            "east",
            "--kubeconfig-out",
        ])
        .arg(&kubeconfig)
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = tokio::io::BufReader::new(child.stdout.take().unwrap()).lines();
    let url = tokio::time::timeout(Duration::from_secs(20), lines.next_line())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert!(url.starts_with("http://127.0.0.1:"), "{url}");
    let written = std::fs::read_to_string(&kubeconfig).unwrap();
    assert!(written.contains("current-context: east"), "{written}");
    let out = tokio::process::Command::new("kubectl")
        .arg("--kubeconfig")
        .arg(&kubeconfig)
        .arg("--cache-dir")
        .arg(dir.path().join("cache"))
        .args(["get", "namespaces", "-o", "name"])
        .output()
        .await
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("namespace/kube-system"));
    let config = kube::config::Kubeconfig::read_from(&kubeconfig).unwrap();
    let client = kube::Client::try_from(
        kube::Config::from_custom_kubeconfig(config, &Default::default())
            .await
            .unwrap(),
    )
    .unwrap();
    let v = client.apiserver_version().await.unwrap();
    assert_eq!(v.git_version, "v1.33.0-fake");
    child.start_kill().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_verifies_an_https_server_with_the_kubeconfig_ca() {
    let srv = FakeApiServer::start_https().await.unwrap();
    let k = Kubectl::new(&srv);
    let names = k.ok(&["get", "namespaces", "-o", "name"]).await;
    assert!(names.contains("namespace/default"), "{names}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn get_events_shows_what_a_recorder_published() {
    use kube::Resource;
    use kube::runtime::events::{Event, EventType, Recorder, Reporter};
    let srv = FakeApiServer::start().await.unwrap();
    let k = Kubectl::new(&srv);
    k.ok(&["create", "configmap", "subject", "--from-literal=k=v"])
        .await;
    let cms: Api<ConfigMap> = Api::default_namespaced(srv.client());
    let cm = cms.get("subject").await.unwrap();
    let recorder = Recorder::new(
        srv.client(),
        Reporter {
            controller: "tester".into(),
            instance: None,
        },
    );
    let ev = Event {
        type_: EventType::Warning,
        reason: "Drifted".into(),
        note: Some("spec changed outside git".into()),
        action: "Compare".into(),
        secondary: None,
    };
    recorder.publish(&ev, &cm.object_ref(&())).await.unwrap();
    let out = k.ok(&["get", "events"]).await;
    let header: Vec<&str> = out.lines().next().unwrap().split_whitespace().collect();
    assert_eq!(
        header,
        ["LAST", "SEEN", "TYPE", "REASON", "OBJECT", "MESSAGE"]
    );
    let row = out.lines().nth(1).unwrap();
    assert!(
        row.contains("Warning") && row.contains("Drifted") && row.contains("configmap/subject"),
        "{row}"
    );
    assert!(row.ends_with("spec changed outside git"), "{row}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deployment_manifests_with_rbac_and_policy_kinds_apply() {
    let srv = FakeApiServer::start().await.unwrap();
    let k = Kubectl::new(&srv);
    let out = k
        .ok(&[
            "apply",
            "--server-side",
            "-f",
            &data("kubectl/rbac-and-policy.yaml"),
        ])
        .await;
    for applied in [
        "serviceaccount/runner",
        "clusterrole.rbac.authorization.k8s.io/runner",
        "clusterrolebinding.rbac.authorization.k8s.io/runner",
        "poddisruptionbudget.policy/runner",
        "service/runner",
    ] {
        assert!(
            out.contains(&format!("{applied} serverside-applied")),
            "{out}"
        );
    }
    let port = k
        .ok(&[
            "get",
            "service",
            "runner",
            "-o",
            "jsonpath={.spec.ports[0].targetPort} {.spec.type}",
        ])
        .await;
    assert_eq!(port, "443 ClusterIP", "service defaults");
}
