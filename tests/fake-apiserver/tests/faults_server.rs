//! Fault injection on a running fake API server, as its users meet it: kubectl printing the injected error and
//! recovering, kube-rs watchers riding out dropped watches and an unreachable server.

mod common;

use std::collections::BTreeSet;
use std::time::Duration;

use common::Kubectl;
use fake_apiserver::FakeApiServer;
use fake_apiserver::faults::FaultMatch;
use futures::StreamExt as _;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, PostParams};
use kube::runtime::{WatchStreamExt as _, watcher};

fn configmap(name: &str) -> ConfigMap {
    let mut cm = ConfigMap::default();
    cm.metadata.name = Some(name.into());
    cm
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_prints_injected_errors_and_recovers() {
    let srv = FakeApiServer::start().await.expect("server starts");
    let kubectl = Kubectl::new(&srv);
    kubectl
        .ok(&["create", "configmap", "settings", "--from-literal=a=1"])
        .await;
    let faults = srv.faults();

    faults.fail_next(1, FaultMatch::verb_resource("list", "configmaps"), 500);
    let stderr = kubectl.fails(&["get", "configmaps"]).await;
    assert!(
        stderr.contains("Error from server (InternalError)"),
        "{stderr}"
    );
    assert!(
        stderr.contains("injected fault on list configmaps"),
        "{stderr}"
    );
    assert!(
        kubectl
            .ok(&["get", "configmaps"])
            .await
            .contains("settings")
    );

    // Only the matching verb fails: a get by name is untouched while a list is pending failure.
    faults.fail_next(1, FaultMatch::verb_resource("list", "configmaps"), 403);
    kubectl.ok(&["get", "configmap", "settings"]).await;
    let stderr = kubectl.fails(&["get", "configmaps"]).await;
    assert!(stderr.contains("Error from server (Forbidden)"), "{stderr}");

    faults.set_unreachable(true);
    let stderr = kubectl
        .fails(&["get", "configmap", "settings", "--request-timeout=1s"])
        .await;
    // The server closes connections without a byte; kubectl retries until its timeout and reports that it
    // could not connect. Which transport error it names (EOF, a reset, or a closed idle connection) depends on
    // how the close races its write, so only the user-facing part is asserted.
    assert!(
        stderr.contains("Unable to connect to the server")
            || stderr.contains("EOF")
            || stderr.contains("connection reset"),
        "an unreachable server answers nothing: {stderr}"
    );
    faults.set_unreachable(false);
    kubectl.ok(&["get", "configmap", "settings"]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropped_requests_fail_kube_rs_writes_without_storing_them() {
    let srv = FakeApiServer::start().await.expect("server starts");
    let api: Api<ConfigMap> = Api::default_namespaced(srv.client());
    srv.faults()
        .drop_next(1, FaultMatch::verb_resource("create", "configmaps"));
    let dropped = api.create(&PostParams::default(), &configmap("lost")).await;
    assert!(
        matches!(
            dropped,
            Err(kube::Error::HyperError(_) | kube::Error::Service(_))
        ),
        "a dropped request is a transport error, got {dropped:?}"
    );
    // The fault fires before the handler: nothing was stored, and a retry succeeds.
    assert!(api.get_opt("lost").await.expect("get").is_none());
    api.create(&PostParams::default(), &configmap("lost"))
        .await
        .expect("the retry is served");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watchers_ride_out_dropped_watches_and_an_unreachable_server() {
    let srv = FakeApiServer::start().await.expect("server starts");
    let api: Api<ConfigMap> = Api::default_namespaced(srv.client());
    api.create(&PostParams::default(), &configmap("before"))
        .await
        .expect("create");
    let faults = srv.faults();
    // The watcher's first watch request is cut: it must come back and still see everything.
    faults.drop_next(1, FaultMatch::verb_resource("watch", "configmaps"));

    let (seen_tx, mut seen_rx) = tokio::sync::mpsc::unbounded_channel();
    let stream = watcher(api.clone(), watcher::Config::default())
        .default_backoff()
        .applied_objects();
    let watch_task = tokio::spawn(async move {
        let mut stream = std::pin::pin!(stream);
        while let Some(event) = stream.next().await {
            if let Ok(cm) = event
                && seen_tx.send(cm.metadata.name.unwrap_or_default()).is_err()
            {
                break;
            }
        }
    });
    let mut seen = BTreeSet::new();
    let mut wait_for = async |name: &str, seen: &mut BTreeSet<String>| {
        let found = tokio::time::timeout(Duration::from_secs(30), async {
            while !seen.contains(name) {
                match seen_rx.recv().await {
                    Some(next) => {
                        seen.insert(next);
                    }
                    None => return false,
                }
            }
            true
        })
        .await;
        assert_eq!(found, Ok(true), "the watcher never saw {name}");
    };
    wait_for("before", &mut seen).await;
    api.create(&PostParams::default(), &configmap("after-drop"))
        .await
        .expect("create");
    wait_for("after-drop", &mut seen).await;
    assert_eq!(faults.pending(), 0, "the dropped watch was attempted");

    faults.set_unreachable(true);
    // The open watch is cut; every request, the watcher's retries included, is refused.
    assert!(api.list(&Default::default()).await.is_err());
    faults.set_unreachable(false);
    api.create(&PostParams::default(), &configmap("after-outage"))
        .await
        .expect("create once reachable");
    wait_for("after-outage", &mut seen).await;
    watch_task.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn faults_apply_over_https_and_delays_trip_client_timeouts() {
    let srv = FakeApiServer::start_https().await.expect("server starts");
    let mut config = srv.config();
    config.read_timeout = Some(Duration::from_secs(1));
    let client = kube::Client::try_from(config).expect("client");
    let api: Api<ConfigMap> = Api::default_namespaced(client);
    api.create(&PostParams::default(), &configmap("settings"))
        .await
        .expect("create over https");
    let faults = srv.faults();

    faults.drop_next(1, FaultMatch::verb_resource("get", "configmaps"));
    assert!(api.get("settings").await.is_err(), "dropped over TLS");
    api.get("settings").await.expect("served after the drop");

    // Held far longer than the client waits: the client gives up, the next request is served at once.
    faults.delay_next(1, FaultMatch::verb("get"), Duration::from_secs(300));
    let timed_out = api.get("settings").await;
    assert!(
        timed_out.is_err(),
        "expected a client timeout, got {timed_out:?}"
    );
    api.get("settings").await.expect("served after the delay");
    assert_eq!(faults.pending(), 0);
}
