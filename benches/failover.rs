//! Commit-to-running for a large plan: 100 namespaces × 10 Deployments, failed over from one in-memory cluster to
//! another by both clusters' transition executors running at once. Prints a Markdown table row per run.
//!
//! Beside each run, on fresh clusters seeded the same way, the floor of the same API work without the planner and
//! the executor: the old primary's workloads scaled to 0 and the new primary's to their counts (the same merge
//! patches, 32 at a time per cluster) and the MigrationSchedule applied; once with both clusters written at once,
//! once with the old primary stopped before the new one starts. The ratios say what the safe ordering (record,
//! stop, wait for the peer's Standby, start) costs over the bare writes.
//!
//! `cargo bench --bench failover [-- NAMESPACES WORKLOADS RUNS]`

use std::time::{Duration, Instant};

use drgitops::gitops::transition_exec::{DEFAULT_PARALLELISM, FIELD_MANAGER, TransitionExecutor};
use drgitops::plan::DRPlan;
use drgitops::plan::transition::REPLICAS_ANNOTATION;
use fake_apiserver::FakeApiServer;
use futures::{StreamExt, stream};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{
    ApiResource, DynamicObject, GroupVersionKind, ListParams, Patch, PatchParams, PostParams,
};
use kube::{Api, Client};
use serde_json::json;

const A: &str = "us-east-1a";
const B: &str = "us-east-1b";
const PLAN_NS: &str = "kube-system";

struct Cluster {
    domain: &'static str,
    server: FakeApiServer,
    client: Client,
}

async fn cluster(
    domain: &'static str,
    namespaces: &[String],
    workloads: usize,
    running: bool,
) -> Cluster {
    let server = FakeApiServer::start()
        .await
        .expect("fake API server starts");
    let client = server.client();
    Api::<CustomResourceDefinition>::all(client.clone())
        .create(&PostParams::default(), &drgitops::plan::crd::crd())
        .await
        .expect("DRPlan CRD");
    for doc in
        serde_yaml::Deserializer::from_str(include_str!("../tests/data/failover/stork-crds.yaml"))
    {
        let crd: CustomResourceDefinition =
            serde::Deserialize::deserialize(doc).expect("Stork CRD parses");
        Api::<CustomResourceDefinition>::all(client.clone())
            .create(&PostParams::default(), &crd)
            .await
            .expect("Stork CRD");
    }
    let ns_api: Api<Namespace> = Api::all(client.clone());
    // kube-system, where the plan lives, exists from the start as on a real cluster.
    for ns in namespaces {
        let object = serde_json::from_value(json!({"metadata": {"name": ns}})).expect("namespace");
        ns_api
            .create(&PostParams::default(), &object)
            .await
            .expect("namespace created");
    }
    let objects: Vec<(String, Deployment)> = namespaces
        .iter()
        .flat_map(|ns| {
            (0..workloads).map(move |i| {
                let name = format!("app-{i}");
                let (replicas, annotations) =
                    if running { (2, json!({})) } else { (0, json!({"stork.libopenstorage.org/migrationReplicas": "2"})) };
                let d = json!({
                    "metadata": {"name": name, "namespace": ns, "annotations": annotations},
                    "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": name}},
                             "template": {"metadata": {"labels": {"app": name}},
                                          "spec": {"containers": [{"name": "app", "image": "registry.example/app:1"}]}}}
                });
                (ns.clone(), serde_json::from_value(d).expect("deployment"))
            })
        })
        .collect();
    stream::iter(objects)
        .for_each_concurrent(32, |(ns, d)| {
            let client = client.clone();
            async move {
                Api::<Deployment>::namespaced(client, &ns)
                    .create(&PostParams::default(), &d)
                    .await
                    .expect("deployment created");
            }
        })
        .await;
    Cluster {
        domain,
        server,
        client,
    }
}

async fn put_plan(
    c: &Cluster,
    namespaces: &[String],
    primary: &str,
    revision: &str,
    role: Option<&str>,
) {
    let api: Api<DRPlan> = Api::namespaced(c.client.clone(), PLAN_NS);
    let plan = json!({
        "apiVersion": "drgitops.dev/v1alpha1",
        "kind": "DRPlan",
        "metadata": {"name": "fleet", "namespace": PLAN_NS, "annotations": {"drgitops.dev/revision": revision}},
        "spec": {
            "mode": "async", "primary": primary, "domains": [{"name": A}, {"name": B}], "namespaces": namespaces,
            "clusterPair": {"name": "remotecluster", "peerKubeconfigSecret": {"name": "drgitops-peer", "key": "kubeconfig"},
                            "storageSecret": {"name": "drgitops-peer-storage"}},
            "schedule": {"interval": {"intervalMinutes": 15}}
        }
    });
    api.patch(
        "fleet",
        &PatchParams::apply("git-source").force(),
        &Patch::Apply(&plan),
    )
    .await
    .expect("plan applied");
    if let Some(role) = role {
        let status =
            json!({"status": {"role": role, "phase": "Ready", "lastAppliedRevision": "rev1"}});
        api.patch_status("fleet", &PatchParams::default(), &Patch::Merge(status))
            .await
            .expect("status");
    }
}

/// Reconciles until the executor reports the revision complete.
async fn reconcile_until_done(c: &Cluster, peer: &str, revision: &str) {
    let executor = TransitionExecutor::new(c.client.clone(), Duration::from_secs(2));
    loop {
        let plan = Api::<DRPlan>::namespaced(c.client.clone(), PLAN_NS)
            .get("fleet")
            .await
            .expect("plan");
        let outcome = executor
            .run(&plan, c.domain, revision, Some(peer), || {
                apply_schedule(c.client.clone())
            })
            .await
            .expect("transition pass");
        if outcome.complete || outcome.phase == drgitops::plan::transition::Phase::Ready {
            return;
        }
        // Waiting for the peer: look again when the planner asks to, as the plan controller's requeue does.
        tokio::time::sleep(Duration::from_secs(
            outcome.requeue_after_seconds.unwrap_or(1),
        ))
        .await;
    }
}

/// Stands in for the plan controller's apply of the primary's MigrationSchedule.
async fn apply_schedule(client: Client) -> Result<(), String> {
    let resource = ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("stork.libopenstorage.org", "v1alpha1", "MigrationSchedule"),
        "migrationschedules",
    );
    let api: Api<DynamicObject> = Api::namespaced_with(client, PLAN_NS, &resource);
    let desired = json!({
        "apiVersion": "stork.libopenstorage.org/v1alpha1", "kind": "MigrationSchedule",
        "metadata": {"name": "fleet", "namespace": PLAN_NS},
        "spec": {"schedulePolicyName": "fleet", "suspend": false, "template": {"spec": {"clusterPair": "remotecluster"}}}
    });
    api.patch(
        "fleet",
        &PatchParams::apply("drgitops").force(),
        &Patch::Apply(&desired),
    )
    .await
    .map(drop)
    .map_err(|e| e.to_string())
}

async fn running(c: &Cluster) -> usize {
    Api::<Deployment>::all(c.client.clone())
        .list(&ListParams::default())
        .await
        .expect("list")
        .items
        .iter()
        .filter(|d| d.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1) > 0)
        .count()
}

/// Replicas every workload runs at on the old primary, and records on the standby.
const REPLICAS: i32 = 2;

/// Scales every workload of `c` with the merge patch the executor sends (scale-down with the recorded count, as
/// its `ScaleDown` action; scale-up to the count, as `ScaleUp`), `DEFAULT_PARALLELISM` at a time.
async fn scale_all(c: &Cluster, namespaces: &[String], workloads: usize, up: bool) {
    let params = PatchParams {
        field_manager: Some(FIELD_MANAGER.into()),
        ..Default::default()
    };
    let patch = if up {
        json!({"spec": {"replicas": REPLICAS}})
    } else {
        json!({"spec": {"replicas": 0}, "metadata": {"annotations": {REPLICAS_ANNOTATION: REPLICAS.to_string()}}})
    };
    let targets = namespaces
        .iter()
        .flat_map(|ns| (0..workloads).map(move |i| (ns, format!("app-{i}"))));
    stream::iter(targets)
        .for_each_concurrent(DEFAULT_PARALLELISM, |(ns, name)| {
            let (client, params, patch) = (c.client.clone(), &params, &patch);
            async move {
                Api::<Deployment>::namespaced(client, ns)
                    .patch(&name, params, &Patch::Merge(patch))
                    .await
                    .expect("workload scaled");
            }
        })
        .await;
}

/// The three ways one run measures.
#[derive(Clone, Copy)]
enum Way {
    /// Both clusters' transition executors, from the commit.
    Executor,
    /// The bare writes, both clusters at once.
    BareAtOnce,
    /// The bare writes, the old primary's scale-down finished before the new primary's scale-up starts.
    BareStopThenStart,
}

/// Seeds two fresh clusters, measures one way, and returns its time and how many workloads run on the new primary
/// and on the old one afterwards.
async fn measure(way: Way, namespaces: &[String], workloads: usize) -> (Duration, usize, usize) {
    let a = cluster(A, namespaces, workloads, true).await;
    let b = cluster(B, namespaces, workloads, false).await;
    put_plan(&a, namespaces, A, "rev1", Some("Primary")).await;
    put_plan(&b, namespaces, A, "rev1", Some("Standby")).await;
    let (ka, kb) = (a.server.kubeconfig(), b.server.kubeconfig());
    let start_new_primary = || async {
        scale_all(&b, namespaces, workloads, true).await;
        apply_schedule(b.client.clone())
            .await
            .expect("schedule applied");
    };

    let start = Instant::now();
    match way {
        Way::Executor => {
            // The commit reaches both clusters; both reconcilers run at once.
            put_plan(&a, namespaces, B, "rev2", None).await;
            put_plan(&b, namespaces, B, "rev2", None).await;
            tokio::join!(
                reconcile_until_done(&a, &kb, "rev2"),
                reconcile_until_done(&b, &ka, "rev2")
            );
        }
        Way::BareAtOnce => {
            tokio::join!(
                scale_all(&a, namespaces, workloads, false),
                start_new_primary()
            );
        }
        Way::BareStopThenStart => {
            scale_all(&a, namespaces, workloads, false).await;
            start_new_primary().await;
        }
    }
    let elapsed = start.elapsed();
    (elapsed, running(&b).await, running(&a).await)
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let args: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let namespaces_n = args.first().copied().unwrap_or(100);
    let workloads = args.get(1).copied().unwrap_or(10);
    let runs = args.get(2).copied().unwrap_or(3);
    let namespaces: Vec<String> = (0..namespaces_n).map(|i| format!("app-{i:03}")).collect();
    let total = namespaces_n * workloads;
    println!(
        "| namespaces | workloads | commit-to-running (s) | new primary running | old primary running \
         | bare writes, both at once (s) | commit-to-running / bare | bare writes, stop then start (s) | commit-to-running / bare ordered |"
    );
    println!("|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    let ways = [Way::Executor, Way::BareAtOnce, Way::BareStopThenStart];
    for run in 0..runs {
        // Each run takes the three in a different order, so none always meets the machine first.
        let mut times = [Duration::ZERO; 3];
        let mut executor_running = (0, 0);
        for k in 0..ways.len() {
            let index = (run + k) % ways.len();
            let (elapsed, new_running, old_running) =
                measure(ways[index], &namespaces, workloads).await;
            times[index] = elapsed;
            if index == 0 {
                executor_running = (new_running, old_running);
            } else {
                assert_eq!(
                    (new_running, old_running),
                    (total, 0),
                    "the bare writes reach the same end state"
                );
            }
        }
        let [executor, at_once, ordered] = times.map(|t| t.as_secs_f64());
        println!(
            "| {namespaces_n} | {total} | {executor:.2} | {} | {} | {at_once:.2} | {:.1}x | {ordered:.2} | {:.1}x |",
            executor_running.0,
            executor_running.1,
            executor / at_once,
            executor / ordered
        );
    }
}
