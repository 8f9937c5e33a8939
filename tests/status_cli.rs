//! `drgitops status` against an in-memory API server, run as the real binary with a kubeconfig.

use std::process::Output;

use drgitops::plan::DRPlan;
use fake_apiserver::FakeApiServer;
use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Patch, PatchParams, PostParams};
use kube::{Api, ResourceExt};
use serde_json::{Value, json};

fn data(name: &str) -> String {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/failover")
        .join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Runs `drgitops status ARGS` with a kubeconfig for `server` (off the async runtime: the server serves meanwhile).
async fn status(kubeconfig: String, args: &[&str]) -> Output {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("kubeconfig");
    std::fs::write(&path, kubeconfig).unwrap();
    let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
    tokio::task::spawn_blocking(move || {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_drgitops"))
            .arg("status")
            .args(&args)
            .env("KUBECONFIG", &path)
            .env_remove("DRGITOPS_OUTPUT")
            .output()
            .unwrap();
        drop(dir);
        out
    })
    .await
    .unwrap()
}

/// A cluster holding the two plans of `status-plans.yaml`, with their status.
async fn cluster_with_plans() -> FakeApiServer {
    let server = FakeApiServer::start().await.unwrap();
    let client = server.client();
    Api::<CustomResourceDefinition>::all(client.clone())
        .create(&PostParams::default(), &drgitops::plan::crd::crd())
        .await
        .unwrap();
    for doc in serde_yaml::Deserializer::from_str(&data("status-plans.yaml")) {
        let mut plan: Value = serde::Deserialize::deserialize(doc).unwrap();
        let status = plan.as_object_mut().unwrap().remove("status").unwrap();
        plan["metadata"]
            .as_object_mut()
            .unwrap()
            .remove("creationTimestamp");
        let ns = plan["metadata"]["namespace"].as_str().unwrap().to_string();
        let name = plan["metadata"]["name"].as_str().unwrap().to_string();
        let namespace: Namespace =
            serde_json::from_value(json!({"metadata": {"name": ns}})).unwrap();
        Api::<Namespace>::all(client.clone())
            .create(&PostParams::default(), &namespace)
            .await
            .unwrap();
        let api: Api<DRPlan> = Api::namespaced(client.clone(), &ns);
        let typed: DRPlan = serde_json::from_value(plan).unwrap();
        api.create(&PostParams::default(), &typed).await.unwrap();
        api.patch_status(
            &name,
            &PatchParams::default(),
            &Patch::Merge(json!({"status": status})),
        )
        .await
        .unwrap();
        assert!(
            api.get(&name).await.unwrap().status.is_some(),
            "{}",
            typed.name_any()
        );
    }
    server
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_prints_the_plans_and_the_transition_in_progress() {
    let server = cluster_with_plans().await;
    let out = status(server.kubeconfig(), &[]).await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    let mut lines = stdout.lines();
    assert_eq!(
        lines.next().unwrap(),
        "NAMESPACE   NAME    MODE    PRIMARY      LOCAL        ROLE      PHASE            REVISION                                   AGE"
    );
    let row: Vec<&str> = lines.next().unwrap().split_whitespace().collect();
    assert_eq!(
        row[..8],
        [
            "mysql",
            "mysql",
            "async",
            "us-east-1b",
            "us-east-1b",
            "Primary",
            "WaitingForPeer",
            "1111111111111111111111111111111111111111"
        ]
    );
    let row: Vec<&str> = lines.next().unwrap().split_whitespace().collect();
    assert_eq!(
        row[..7],
        [
            "shop",
            "shop",
            "metro",
            "us-east-1a",
            "us-east-1b",
            "Standby",
            "Ready"
        ]
    );
    assert!(stdout.contains("mysql/mysql: transition us-east-1a -> us-east-1b at revision 3333333333333333333333333333333333333333"));
    assert!(
        stdout.contains("fence      Waiting   2026-11-22T15:57:00Z   waiting for the old primary"),
        "{stdout}"
    );
    assert!(
        !stdout.contains("shop/shop: transition"),
        "a finished transition is shown only with --plan"
    );

    let out = status(server.kubeconfig(), &["--plan", "shop", "-n", "shop"]).await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(!stdout.contains("mysql"));
    assert!(stdout.contains("scale-down         Succeeded"), "{stdout}");

    let out = status(server.kubeconfig(), &["-o", "json"]).await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    let json: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json[0]["name"], "mysql");
    assert_eq!(json[0]["phase"], "WaitingForPeer");
    assert_eq!(json[0]["transition"]["steps"][0]["state"], "Waiting");
    assert_eq!(json[1]["role"], "Standby");

    let out = status(server.kubeconfig(), &["--plan", "nope"]).await;
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("no DRPlan named nope"),
        "{}",
        text(&out.stderr)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_says_when_the_crd_is_missing_or_the_cluster_is_unreachable() {
    let server = FakeApiServer::start().await.unwrap();
    let out = status(server.kubeconfig(), &[]).await;
    assert_eq!(out.status.code(), Some(2));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("the DRPlan CRD (drplans.drgitops.dev) is not installed"),
        "{stderr}"
    );
    assert!(
        stderr.contains("drgitops crd | kubectl apply -f -"),
        "{stderr}"
    );

    let kubeconfig = server.kubeconfig();
    drop(server);
    let out = status(kubeconfig, &[]).await;
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("cannot reach the cluster at http://127.0.0.1:"),
        "{}",
        text(&out.stderr)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plan_that_does_not_read_is_named_and_the_others_listed() {
    let server = cluster_with_plans().await;
    // A number where a mode belongs, stored where no schema checks it.
    let resource = kube::api::ApiResource::erase::<DRPlan>(&());
    let api: Api<kube::api::DynamicObject> =
        Api::namespaced_with(server.client(), "shop", &resource);
    api.patch(
        "shop",
        &PatchParams::default(),
        &Patch::Merge(json!({"spec": {"mode": 5}})),
    )
    .await
    .unwrap();
    let out = status(server.kubeconfig(), &[]).await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(
        stdout.contains("WaitingForPeer"),
        "mysql is listed: {stdout}"
    );
    assert!(!stdout.contains("shop"), "shop is not: {stdout}");
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("DRPlan shop/shop does not read as a DRPlan (spec.mode: invalid type"),
        "{stderr}"
    );
}
