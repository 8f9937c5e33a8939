//! Faults on the real thing: the new primary's kube-apiserver, or its etcd, goes away right after a failover
//! commit and comes back; the failover still ends with the application running on the new primary alone, and
//! each side's workloads were changed exactly once (a second scale-down on the old primary would record 0 as
//! the count to restore; a second scale-up would be a second spec change).

use k8s_openapi::api::apps::v1::Deployment;
use kube::Api;

use crate::failover::{NS, Pair};
use testkit::{Cluster, WEST, eventually};

#[derive(Clone, Copy, Debug)]
enum Fault {
    KubeApiserver,
    Etcd,
}

async fn web(cluster: &Cluster) -> (i64, i32, Option<String>) {
    let d = Api::<Deployment>::namespaced(cluster.client().await, NS)
        .get("web")
        .await
        .expect("web");
    (
        d.metadata.generation.unwrap_or_default(),
        d.spec.and_then(|s| s.replicas).unwrap_or(1),
        d.metadata
            .annotations
            .and_then(|a| a.get("stork.libopenstorage.org/migrationReplicas").cloned()),
    )
}

/// The Deployments' generations before a failover from east to west.
async fn generations(pair: &Pair) -> (i64, i64) {
    (web(&pair.east).await.0, web(&pair.west).await.0)
}

/// After the failover: the application runs on west alone, and each side's spec changed exactly once.
async fn exactly_once(pair: &Pair, before: (i64, i64), what: &str) {
    let (east, west) = (&pair.east, &pair.west);
    pair.converge(west, east).await;
    assert_eq!(
        web(east).await,
        (before.0 + 1, 0, Some("3".into())),
        "{what}: east scaled down once, the count to restore kept"
    );
    let (generation, replicas, _) = web(west).await;
    assert_eq!(
        (generation, replicas),
        (before.1 + 1, 3),
        "{what}: west scaled up once"
    );
}

async fn failover_through(fault: Fault) {
    let pair = Pair::start().await;
    let (east, west) = (&pair.east, &pair.west);
    pair.converge(east, west).await;
    let before = generations(&pair).await;

    match fault {
        Fault::KubeApiserver => west.env.stop_apiserver(),
        Fault::Etcd => west.env.stop_etcd(),
    }
    pair.commit_failover(WEST);
    // The old primary stands by on its own; the new primary cannot act while its control plane is down.
    let stood_by = eventually(std::time::Duration::from_secs(60), || async {
        (east.ready_pods(NS, "web").await == 0).then_some(())
    })
    .await;
    assert!(
        stood_by.is_some(),
        "{fault:?}: east never stopped the application"
    );
    match fault {
        Fault::KubeApiserver => west.env.restart_apiserver().await,
        Fault::Etcd => west.env.restart_etcd().await,
    }
    .unwrap_or_else(|e| panic!("{fault:?}: restarting: {e:#}"));

    exactly_once(&pair, before, &format!("{fault:?}")).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_new_primarys_kube_apiserver_restarts_during_a_failover() {
    failover_through(Fault::KubeApiserver).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_new_primarys_etcd_restarts_during_a_failover() {
    failover_through(Fault::Etcd).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn latency_and_connection_resets_between_the_new_primary_and_its_apiserver() {
    let pair = Pair::start_with_west_proxy().await;
    pair.converge(&pair.east, &pair.west).await;
    let before = generations(&pair).await;
    let proxy = pair.west_proxy.as_ref().expect("proxy");
    proxy.set_latency(std::time::Duration::from_millis(100));
    pair.commit_failover(WEST);
    // Reset every connection of west's reconciler five times while the failover runs, each time once the
    // reconciler has connected again.
    for round in 0..5 {
        let seen = proxy.connections();
        proxy.reset_all();
        let reconnected = eventually(std::time::Duration::from_secs(60), || async {
            (proxy.connections() > seen).then_some(())
        })
        .await;
        assert!(
            reconnected.is_some(),
            "round {round}: west's reconciler never reconnected ({} connections so far):\n{}",
            proxy.connections(),
            pair.reconcilers[1].log()
        );
    }
    exactly_once(&pair, before, "latency and resets").await;
}
