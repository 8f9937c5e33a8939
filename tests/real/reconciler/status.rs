//! `drgitops status` as a person runs it: the real binary with an admin kubeconfig, against a real cluster.

use std::process::Output;

use drgitops::plan::DRPlan;
use kube::api::{Patch, PatchParams, PostParams};
use kube::{Api, ResourceExt};
use serde_json::{Value, json};
use testkit::{Cluster, EAST, repo_file};

use super::support::store_under_older_schema;

fn data(name: &str) -> String {
    let path = repo_file("tests/data/failover").join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Runs `drgitops status ARGS` with `kubeconfig` (off the async runtime).
async fn status(kubeconfig: String, args: &[&str]) -> Output {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("kubeconfig");
    std::fs::write(&path, kubeconfig).unwrap();
    let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
    tokio::task::spawn_blocking(move || {
        let out = std::process::Command::new(crate::DRGITOPS)
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

/// A cluster with the shipped DRPlan CRD, holding the two plans of `status-plans.yaml` with their status, and
/// two ready pods of a Deployment in `shop` (kwok runs them).
async fn cluster_with_plans() -> Cluster {
    let cluster = Cluster::start(EAST).await;
    cluster.kubectl(&[
        "apply",
        "-f",
        &repo_file("manifests/crd/drplan.yaml").display().to_string(),
    ]);
    cluster.kubectl(&[
        "wait",
        "--for=condition=Established",
        "crd/drplans.drgitops.dev",
        "--timeout=60s",
    ]);
    let client = cluster.client().await;
    for doc in serde_yaml::Deserializer::from_str(&data("status-plans.yaml")) {
        let mut plan: Value = serde::Deserialize::deserialize(doc).unwrap();
        let status = plan.as_object_mut().unwrap().remove("status").unwrap();
        plan["metadata"]
            .as_object_mut()
            .unwrap()
            .remove("creationTimestamp");
        let ns = plan["metadata"]["namespace"].as_str().unwrap().to_string();
        let name = plan["metadata"]["name"].as_str().unwrap().to_string();
        testkit::reconcile::create_namespaces(&cluster, &[&ns]);
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
    cluster.apply_yaml(&testkit::web_deployment("shop", 2, None));
    let ready = testkit::eventually(std::time::Duration::from_secs(60), || async {
        (cluster.ready_pods("shop", "web").await == 2).then_some(())
    })
    .await;
    assert!(ready.is_some(), "the shop's pods never became Ready");
    cluster
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_prints_the_plans_and_the_transition_in_progress() {
    let cluster = cluster_with_plans().await;
    let out = status(cluster.env.kubeconfig(), &[]).await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    let mut lines = stdout.lines();
    assert_eq!(
        lines.next().unwrap(),
        "NAMESPACE   NAME    MODE    PRIMARY      LOCAL        ROLE      PHASE            REVISION                                   PODS   DATA-AGE    AGE"
    );
    let row: Vec<&str> = lines.next().unwrap().split_whitespace().collect();
    assert_eq!(
        row[..9],
        [
            "mysql",
            "mysql",
            "async",
            "us-east-1b",
            "us-east-1b",
            "Primary",
            "WaitingForPeer",
            "1111111111111111111111111111111111111111",
            "0/0"
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
    assert_eq!(row[8], "2/2", "the shop's two Ready pods: {row:?}");
    assert!(stdout.contains("mysql/mysql: transition us-east-1a -> us-east-1b at revision 3333333333333333333333333333333333333333"));
    assert!(
        stdout.contains("fence      Waiting   2026-11-22T15:57:00Z   waiting for the old primary"),
        "{stdout}"
    );
    assert!(
        !stdout.contains("shop/shop: transition"),
        "a finished transition is shown only with --plan"
    );

    let out = status(cluster.env.kubeconfig(), &["--plan", "shop", "-n", "shop"]).await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(!stdout.contains("mysql"));
    assert!(stdout.contains("scale-down         Succeeded"), "{stdout}");

    let out = status(cluster.env.kubeconfig(), &["-o", "json"]).await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    let json: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json[0]["name"], "mysql");
    assert_eq!(json[0]["phase"], "WaitingForPeer");
    assert_eq!(json[0]["transition"]["steps"][0]["state"], "Waiting");
    assert_eq!(json[1]["role"], "Standby");
    assert_eq!(
        json[1]["pods"],
        json!({"ready": 2, "total": 2, "terminating": 0})
    );
    assert_eq!(json[1]["namespaces"], json!(["shop"]));

    let out = status(cluster.env.kubeconfig(), &["--plan", "nope"]).await;
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("no DRPlan named nope"),
        "{}",
        text(&out.stderr)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_says_when_the_crd_is_missing_or_the_cluster_is_unreachable() {
    // A cluster without drgitops installed.
    let cluster = Cluster::start(EAST).await;
    let out = status(cluster.env.kubeconfig(), &[]).await;
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

    cluster.env.stop_apiserver();
    let out = status(cluster.env.kubeconfig(), &[]).await;
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains(&format!(
            "cannot reach the cluster at {}",
            cluster.env.url()
        )),
        "{}",
        text(&out.stderr)
    );
    assert!(cluster.env.url().starts_with("https://127.0.0.1:"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plan_that_does_not_read_is_named_and_the_others_listed() {
    let cluster = cluster_with_plans().await;
    // A number where a mode belongs, stored while an older CRD schema let it through.
    store_under_older_schema(&cluster, "shop", "shop", json!({"spec": {"mode": 5}})).await;
    let out = status(cluster.env.kubeconfig(), &[]).await;
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_without_access_to_pods_still_lists_the_plans() {
    let cluster = cluster_with_plans().await;
    // Someone who may read DRPlans and nothing else.
    for args in [
        vec!["create", "namespace", "drgitops-system"],
        vec![
            "-n",
            "drgitops-system",
            "create",
            "serviceaccount",
            "plan-reader",
        ],
        vec![
            "create",
            "clusterrole",
            "plan-reader",
            "--verb=get,list",
            "--resource=drplans.drgitops.dev",
        ],
        vec![
            "create",
            "clusterrolebinding",
            "plan-reader",
            "--clusterrole=plan-reader",
            "--serviceaccount=drgitops-system:plan-reader",
        ],
    ] {
        cluster.kubectl(&args);
    }
    let kubeconfig = cluster
        .env
        .service_account_kubeconfig("drgitops-system", "plan-reader")
        .await
        .unwrap();
    let out = status(kubeconfig, &[]).await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    let row: Vec<&str> = stdout.lines().nth(2).unwrap().split_whitespace().collect();
    assert_eq!((row[0], row[8]), ("shop", "<unknown>"), "{stdout}");
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("warning: cannot list the pods of namespace shop (pods is forbidden: User \"system:serviceaccount:drgitops-system:plan-reader\" cannot list resource \"pods\""),
        "{stderr}"
    );
}
