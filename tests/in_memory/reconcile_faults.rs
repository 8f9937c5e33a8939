//! Transient API errors (injected 500s and 429s, dropped connections, a dropped watch) are retried with backoff
//! and the reconciler ends in the right state.
//!
//! This test stays on the in-memory API server (`tests/fake-apiserver`): it needs HTTP-level faults a real
//! kube-apiserver cannot produce on cue, a 500, 429 or 503 answer to the next N requests of one verb and
//! resource, and a watch ended with 410 by compacting the history. Connection-level faults (resets, refused
//! connections, latency, kube-apiserver or etcd going away) are covered on real control planes in
//! `tests/real/faults.rs` and `tests/real/reconciler`.

use std::path::Path;
use std::time::Duration;

use drgitops::reconcile::runner::{Reconciler, ReconcilerOptions};
use drgitops::source::git::{GitAuth, GitSourceConfig};
use fake_apiserver::FakeApiServer;
use fake_apiserver::faults::FaultMatch;
use k8s_openapi::api::core::v1::{Namespace, Secret};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, DynamicObject, PostParams};
use serde_json::{Value, json};
use testkit::reconcile::{PLAN_NAMESPACES, commit, gitops_data as read_data, plan_repo};
use testkit::{EAST, WEST, eventually};

/// An in-memory cluster in `domain` with the DRPlan and Stork CRDs, the plan namespaces, and `drgitops-system`
/// (the reconciler's Lease and inventory live there).
async fn cluster(domain: &str) -> (FakeApiServer, String) {
    let srv = FakeApiServer::start().await.expect("fake apiserver starts");
    let crds: Api<CustomResourceDefinition> = Api::all(srv.client());
    crds.create(&PostParams::default(), &drgitops::plan::crd::crd())
        .await
        .expect("DRPlan CRD");
    for doc in serde_yaml::Deserializer::from_str(&read_data("stork-crds.yaml")) {
        let value: Value = serde::Deserialize::deserialize(doc).expect("crd yaml");
        if value.is_null() {
            continue;
        }
        let crd: CustomResourceDefinition = serde_json::from_value(value).expect("crd");
        crds.create(&PostParams::default(), &crd)
            .await
            .expect("Stork CRD");
    }
    let namespaces: Api<Namespace> = Api::all(srv.client());
    for ns in PLAN_NAMESPACES.iter().chain(&["drgitops-system"]) {
        let namespace: Namespace =
            serde_json::from_value(json!({"metadata": {"name": ns}})).expect("namespace");
        namespaces
            .create(&PostParams::default(), &namespace)
            .await
            .expect("namespace created");
    }
    (srv, domain.into())
}

/// Puts the peer's kubeconfig and storage Secrets into every plan namespace of `cluster`.
async fn add_peer_secrets(cluster: &FakeApiServer, peer: &(FakeApiServer, String)) {
    for ns in PLAN_NAMESPACES {
        let secrets: Api<Secret> = Api::namespaced(cluster.client(), ns);
        let kubeconfig = peer.0.kubeconfig_named(&peer.1);
        for (name, data) in [
            ("drgitops-peer", json!({"kubeconfig": kubeconfig})),
            (
                "drgitops-peer-storage",
                json!({"ip": "10.0.0.9", "port": "9001", "token": "px-token"}),
            ),
        ] {
            let secret: Secret =
                serde_json::from_value(json!({"metadata": {"name": name}, "stringData": data}))
                    .expect("secret");
            secrets
                .create(&PostParams::default(), &secret)
                .await
                .expect("secret created");
        }
    }
}

/// Options for a reconciler of `domain` following `repo`'s `plans/` on main.
fn options(domain: &str, repo: &Path, cache: &Path) -> ReconcilerOptions {
    let mut options = ReconcilerOptions::new(&format!("test-{domain}"));
    options.cluster_domain = Some(domain.into());
    options.git = Some(GitSourceConfig {
        url: repo.display().to_string(),
        branch: "main".into(),
        path: "plans".into(),
        cache_dir: cache.to_path_buf(),
        auth: GitAuth::None,
    });
    options.admin_listen = "127.0.0.1:0".into();
    options.interval = Duration::from_secs(3600);
    options.lease_duration = Duration::from_secs(3);
    options.peer_timeout = Duration::from_secs(2);
    options
}

/// A Stork object as JSON, or None.
async fn stork(client: &kube::Client, kind: &str, namespace: &str, name: &str) -> Option<Value> {
    let (resource, _) =
        drgitops::cluster::apply::api_resource(drgitops::stork::keys::STORK_API_VERSION, kind)
            .expect("known kind");
    let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), namespace, &resource);
    api.get_opt(name)
        .await
        .expect("get")
        .map(|o| serde_json::to_value(o).expect("json"))
}

/// A DRPlan as JSON, or None.
async fn plan(client: &kube::Client, namespace: &str, name: &str) -> Option<Value> {
    let resource = kube::api::ApiResource::erase::<drgitops::plan::DRPlan>(&());
    let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), namespace, &resource);
    api.get_opt(name)
        .await
        .expect("get plan")
        .map(|p| serde_json::to_value(p).expect("json"))
}

/// The condition `type_` of a plan's status.
fn condition<'a>(plan: &'a Value, type_: &str) -> Option<&'a Value> {
    plan.pointer("/status/conditions")?
        .as_array()?
        .iter()
        .find(|c| c["type"] == type_)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transient_errors_are_retried_until_the_state_is_right() {
    // Two paired clusters: east (primary in the fixtures) and west.
    let (east, west) = (cluster(EAST).await, cluster(WEST).await);
    add_peer_secrets(&east.0, &west).await;
    add_peer_secrets(&west.0, &east).await;
    let east = east.0;
    let repo = plan_repo();
    let cache = tempfile::tempdir().expect("tmp");
    let reconciler = Reconciler::new(east.client(), options(EAST, repo.path(), cache.path()));
    let faults = east.faults();
    faults.fail_next(
        3,
        FaultMatch::verb_resource("patch", "migrationschedules"),
        500,
    );
    faults.fail_next(2, FaultMatch::verb_resource("list", "drplans"), 429);
    faults.fail_next(1, FaultMatch::verb_resource("get", "secrets"), 503);
    faults.drop_next(
        1,
        FaultMatch::verb_resource("patch", "namespacedschedulepolicies"),
    );

    // A single pass meets the faults and asks for a retry instead of giving up.
    let first = reconciler.pass(true).await;
    assert!(!first.ok);
    assert!(
        first.retry,
        "transient errors are retried: {:?}",
        first.errors
    );

    let (stop, shutdown) = tokio::sync::watch::channel(false);
    let runner = tokio::spawn(reconciler.clone().run(shutdown));
    let client = east.client();
    let settled = eventually(Duration::from_secs(30), || async {
        let schedule = stork(&client, "MigrationSchedule", "mysql", "mysql").await?;
        let policy = stork(&client, "NamespacedSchedulePolicy", "mysql", "mysql").await?;
        let plan = plan(&client, "mysql", "mysql").await?;
        let ready = condition(&plan, "Ready")?["status"] == "True";
        (schedule["spec"]["suspend"] == false
            && policy["policy"]["interval"]["intervalMinutes"] == 15
            && ready)
            .then_some(())
    })
    .await;
    assert!(settled.is_some(), "the retries end in the primary's state");

    // A dropped watch (history compacted: the watch ends with 410) is re-listed; a later commit still lands.
    east.compact();
    let edited =
        read_data("plans/mysql.yaml").replace("intervalMinutes: 15", "intervalMinutes: 20");
    commit(
        repo.path(),
        &[("plans/mysql.yaml", &edited)],
        "every 20 minutes",
    );
    faults.fail_next(2, FaultMatch::verb_resource("patch", "drplans"), 500);
    reconciler.trigger.notify_one();
    let updated = eventually(Duration::from_secs(30), || async {
        let policy = stork(&client, "NamespacedSchedulePolicy", "mysql", "mysql").await?;
        (policy["policy"]["interval"]["intervalMinutes"] == 20).then_some(())
    })
    .await;
    assert!(
        updated.is_some(),
        "the commit lands after the injected failures"
    );
    let _ = stop.send(true);
    runner.await.expect("stops");
}
