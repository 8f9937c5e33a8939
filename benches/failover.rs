//! Commit-to-running for a large plan: 100 namespaces × 10 Deployments, failed over from one cluster to another
//! by both clusters' transition executors running at once. Prints a Markdown table row per run.
//!
//! On the in-memory API servers (the default), beside each run, on fresh clusters seeded the same way, the floor
//! of the same API work without the planner and the executor: the old primary's workloads scaled to 0 and the new
//! primary's to their counts (the same merge patches, 32 at a time per cluster) and the MigrationSchedule applied;
//! once with both clusters written at once, once with the old primary stopped before the new one starts. The
//! ratios say what the safe ordering (record, stop, wait for the peer's Standby, start) costs over the bare writes.
//!
//! With `DRGITOPS_BENCH_SUBSTRATE=real`, on two real control planes (`tests/testenv`: kube-apiserver with RBAC,
//! controller-manager, scheduler, kwok nodes) with the reconciler's shipped RBAC applied by kubectl, the executors
//! acting as the shipped reconciler ServiceAccount and asking the peer as the shipped peer ServiceAccount: the
//! clock stops when every pod of the new primary's workloads is Ready. The floor is the same bare writes (both
//! clusters at once) followed by the wait for the same pods; see `real_main`.
//!
//! `cargo bench --bench failover [-- NAMESPACES WORKLOADS RUNS]`

mod substrate;

use std::collections::HashSet;
use std::time::{Duration, Instant};

use drgitops::plan::DRPlan;
use drgitops::plan::transition::REPLICAS_ANNOTATION;
use drgitops::reconcile::transition::{DEFAULT_PARALLELISM, TransitionExecutor};
use drgitops::stork::keys::FIELD_MANAGER;
use fake_apiserver::FakeApiServer;
use futures::{StreamExt, stream};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Namespace, Pod};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{
    ApiResource, DynamicObject, GroupVersionKind, ListParams, Patch, PatchParams, PostParams,
};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Client, ResourceExt};
use serde_json::json;
use tokio::sync::watch;

const A: &str = "us-east-1a";
const B: &str = "us-east-1b";
const PLAN_NS: &str = "kube-system";
/// On every workload's pods, so a watch can count them.
const POD_LABEL: (&str, &str) = ("drgitops.dev/bench", "failover");

struct Cluster {
    domain: &'static str,
    /// Seeds the cluster and puts the DRPlan (standing in for the git source's apply).
    admin: Client,
    /// What the executor and the bare writes act as: on the in-memory server the same client as `admin`; on a real
    /// control plane the shipped reconciler ServiceAccount.
    actor: Client,
    /// How the other cluster's executor reaches this one: on a real control plane, as the shipped peer
    /// ServiceAccount.
    peer_kubeconfig: String,
    /// Replicas of every workload while it runs.
    replicas: i32,
    /// Keeps the API server running as long as the cluster is used.
    _server: Box<dyn std::any::Any>,
}

/// An in-memory API server holding the DRPlan CRD and the stand-ins for Stork's.
async fn in_memory(domain: &'static str) -> Cluster {
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
    Cluster {
        domain,
        admin: client.clone(),
        actor: client,
        peer_kubeconfig: server.kubeconfig(),
        replicas: REPLICAS,
        _server: Box::new(server),
    }
}

/// A real control plane with `nodes` kwok Nodes, and the DRPlan CRD, the stand-ins for Stork's CRDs, and the
/// reconciler's and the peer's shipped ServiceAccounts and RBAC, applied by kubectl as the README says.
async fn on_real(domain: &'static str, nodes: usize) -> Cluster {
    // A kwok Node takes 250 pods.
    let cluster = testkit::Cluster::start_with(testenv::Options {
        name: domain.into(),
        nodes,
    })
    .await;
    cluster.install_reconciler();
    Cluster {
        domain,
        admin: cluster.client().await,
        actor: cluster.service_account_client("drgitops-reconciler").await,
        peer_kubeconfig: cluster
            .env
            .service_account_kubeconfig("drgitops-system", "drgitops-peer")
            .await
            .expect("peer token"),
        replicas: REAL_REPLICAS,
        _server: Box::new(cluster),
    }
}

/// Creates the namespaces and `workloads` Deployments in each: running at their replica count, or at 0 with the count
/// recorded as Stork leaves a migrated standby.
async fn seed(c: &Cluster, namespaces: &[String], workloads: usize, running: bool) {
    let ns_api: Api<Namespace> = Api::all(c.admin.clone());
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
                let (replicas, annotations) = if running {
                    (c.replicas, json!({}))
                } else {
                    (0, json!({REPLICAS_ANNOTATION: c.replicas.to_string()}))
                };
                let d = json!({
                    "metadata": {"name": name, "namespace": ns, "annotations": annotations},
                    "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": name}},
                             "template": {"metadata": {"labels": {"app": name, POD_LABEL.0: POD_LABEL.1}},
                                          "spec": {"containers": [{"name": "app", "image": "registry.example/app:1"}]}}}
                });
                (ns.clone(), serde_json::from_value(d).expect("deployment"))
            })
        })
        .collect();
    stream::iter(objects)
        .for_each_concurrent(32, |(ns, d)| {
            let client = c.admin.clone();
            async move {
                Api::<Deployment>::namespaced(client, &ns)
                    .create(&PostParams::default(), &d)
                    .await
                    .expect("deployment created");
            }
        })
        .await;
}

/// Puts the plan as the git source would apply it at `revision`; with `role`, also writes the status this
/// cluster's reconciler leaves when it is done at that revision (and nothing else), as on a fresh plan.
async fn put_plan(
    c: &Cluster,
    namespaces: &[String],
    primary: &str,
    revision: &str,
    role: Option<&str>,
) {
    let api: Api<DRPlan> = Api::namespaced(c.admin.clone(), PLAN_NS);
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
        // The nulls clear what an earlier transition left, so a reset plan reads as a fresh one.
        let status = json!({"status": {"role": role, "phase": "Ready", "lastAppliedRevision": revision,
            "lastAttemptedRevision": null, "transition": null, "conditions": null, "workloads": null,
            "localDomain": null, "observedGeneration": null}});
        api.patch_status("fleet", &PatchParams::default(), &Patch::Merge(status))
            .await
            .expect("status");
    }
}

/// Reconciles until the executor reports the revision complete.
async fn reconcile_until_done(c: &Cluster, peer: &str, revision: &str) {
    let executor = TransitionExecutor::new(c.actor.clone(), Duration::from_secs(2));
    loop {
        let plan = Api::<DRPlan>::namespaced(c.actor.clone(), PLAN_NS)
            .get("fleet")
            .await
            .expect("plan");
        let outcome = executor
            .run(&plan, c.domain, revision, Some(peer), || {
                apply_schedule(c.actor.clone())
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
    Api::<Deployment>::all(c.admin.clone())
        .list(&ListParams::default())
        .await
        .expect("list")
        .items
        .iter()
        .filter(|d| d.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1) > 0)
        .count()
}

/// Replicas every workload runs at on the old primary, and records on the standby, on the in-memory API server.
const REPLICAS: i32 = 2;
/// On a real control plane, where every replica is a pod the controllers, the scheduler and kwok create and
/// delete at about 10 a second on 2 cores: 1,000 pods a failover rather than 2,000 keeps a run to minutes.
const REAL_REPLICAS: i32 = 1;

/// Scales every workload of `c` with the merge patch the executor sends (scale-down with the recorded count, as
/// its `ScaleDown` action; scale-up to the count, as `ScaleUp`), `DEFAULT_PARALLELISM` at a time.
async fn scale_all(c: &Cluster, namespaces: &[String], workloads: usize, up: bool) {
    let params = PatchParams {
        field_manager: Some(FIELD_MANAGER.into()),
        ..Default::default()
    };
    let patch = if up {
        json!({"spec": {"replicas": c.replicas}})
    } else {
        json!({"spec": {"replicas": 0}, "metadata": {"annotations": {REPLICAS_ANNOTATION: c.replicas.to_string()}}})
    };
    let targets = namespaces
        .iter()
        .flat_map(|ns| (0..workloads).map(move |i| (ns, format!("app-{i}"))));
    stream::iter(targets)
        .for_each_concurrent(DEFAULT_PARALLELISM, |(ns, name)| {
            let (client, params, patch) = (c.actor.clone(), &params, &patch);
            async move {
                Api::<Deployment>::namespaced(client, ns)
                    .patch(&name, params, &Patch::Merge(patch))
                    .await
                    .expect("workload scaled");
            }
        })
        .await;
}

/// The new primary's bare writes: every workload scaled to its count, then the MigrationSchedule applied.
async fn start_workloads(c: &Cluster, namespaces: &[String], workloads: usize) {
    scale_all(c, namespaces, workloads, true).await;
    apply_schedule(c.actor.clone())
        .await
        .expect("schedule applied");
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
    let a = in_memory(A).await;
    seed(&a, namespaces, workloads, true).await;
    let b = in_memory(B).await;
    seed(&b, namespaces, workloads, false).await;
    put_plan(&a, namespaces, A, "rev1", Some("Primary")).await;
    put_plan(&b, namespaces, A, "rev1", Some("Standby")).await;

    let start = Instant::now();
    match way {
        Way::Executor => {
            // The commit reaches both clusters; both reconcilers run at once.
            put_plan(&a, namespaces, B, "rev2", None).await;
            put_plan(&b, namespaces, B, "rev2", None).await;
            tokio::join!(
                reconcile_until_done(&a, &b.peer_kubeconfig, "rev2"),
                reconcile_until_done(&b, &a.peer_kubeconfig, "rev2")
            );
        }
        Way::BareAtOnce => {
            tokio::join!(
                scale_all(&a, namespaces, workloads, false),
                start_workloads(&b, namespaces, workloads)
            );
        }
        Way::BareStopThenStart => {
            scale_all(&a, namespaces, workloads, false).await;
            start_workloads(&b, namespaces, workloads).await;
        }
    }
    let elapsed = start.elapsed();
    (elapsed, running(&b).await, running(&a).await)
}

// ---------------------------------------------------------------------------------------------------------------
// Real control planes (`DRGITOPS_BENCH_SUBSTRATE=real`)

/// The bench's pods on one real cluster, counted from a watch: how many are Ready (and not being deleted), how
/// many exist at all, and when the event that set the counts arrived, so a wait ends at the event, not at a poll.
#[derive(Clone, Copy)]
struct Pods {
    ready: usize,
    present: usize,
    at: Instant,
}

fn watch_pods(client: Client) -> watch::Receiver<Pods> {
    let (tx, rx) = watch::channel(Pods {
        ready: 0,
        present: 0,
        at: Instant::now(),
    });
    let api: Api<Pod> = Api::all(client);
    let config = watcher::Config::default().labels(&format!("{}={}", POD_LABEL.0, POD_LABEL.1));
    tokio::spawn(async move {
        let (mut present, mut ready) = (HashSet::new(), HashSet::new());
        let mut events = std::pin::pin!(watcher(api, config).default_backoff());
        while let Some(event) = events.next().await {
            let key = |pod: &Pod| (pod.namespace().unwrap_or_default(), pod.name_any());
            match event {
                // A re-list: the objects follow as `InitApply`.
                Ok(watcher::Event::Init) => {
                    present.clear();
                    ready.clear();
                }
                Ok(watcher::Event::Apply(pod) | watcher::Event::InitApply(pod)) => {
                    present.insert(key(&pod));
                    if pod.metadata.deletion_timestamp.is_none() && testenv::pod_ready(&pod) {
                        ready.insert(key(&pod));
                    } else {
                        ready.remove(&key(&pod));
                    }
                }
                Ok(watcher::Event::Delete(pod)) => {
                    present.remove(&key(&pod));
                    ready.remove(&key(&pod));
                }
                Ok(watcher::Event::InitDone) | Err(_) => continue,
            }
            tx.send_replace(Pods {
                ready: ready.len(),
                present: present.len(),
                at: Instant::now(),
            });
        }
    });
    rx
}

/// Waits until `pods` satisfies `done`; returns the counts then.
async fn pods_until(pods: &mut watch::Receiver<Pods>, done: impl Fn(&Pods) -> bool) -> Pods {
    *pods
        .wait_for(|p| done(p))
        .await
        .expect("the pod watch runs")
}

/// One cluster of the real pair and its pod counts.
struct Side {
    cluster: Cluster,
    pods: watch::Receiver<Pods>,
}

/// One failover on the real pair, timed from its first write.
struct Failover {
    /// Until every pod of the new primary's workloads is Ready.
    pods_ready: Duration,
    /// Until the writes are done: both executors report the revision complete, or the bare writes have returned.
    writes: Duration,
    /// The old primary's pods still Ready (not yet being deleted) when the new primary's were all Ready.
    old_ready: usize,
}

/// Runs `writes` and times it and the new primary's pods becoming Ready; then waits until the old primary's pods
/// are gone and the controllers have settled, so the next failover starts from a quiet pair.
async fn failover(
    old: &Side,
    new: &Side,
    pods: usize,
    writes: impl Future<Output = ()>,
) -> Failover {
    let (mut old_pods, mut new_pods) = (old.pods.clone(), new.pods.clone());
    let start = Instant::now();
    let writes = async {
        writes.await;
        start.elapsed()
    };
    let ready = async {
        let done = pods_until(&mut new_pods, |p| p.ready == pods).await;
        (done.at - start, old_pods.borrow().ready)
    };
    let (writes, (pods_ready, old_ready)) = tokio::join!(writes, ready);
    pods_until(&mut old_pods, |p| p.present == 0).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    Failover {
        pods_ready,
        writes,
        old_ready,
    }
}

/// The commit reaches both clusters; both executors run at once until the revision is complete.
async fn by_executors(old: &Cluster, new: &Cluster, namespaces: &[String], revision: &str) {
    put_plan(old, namespaces, new.domain, revision, None).await;
    put_plan(new, namespaces, new.domain, revision, None).await;
    tokio::join!(
        reconcile_until_done(old, &new.peer_kubeconfig, revision),
        reconcile_until_done(new, &old.peer_kubeconfig, revision)
    );
}

/// The floor: the same scale writes, both clusters at once, as the plain reconciler ServiceAccount.
async fn by_bare_writes(old: &Cluster, new: &Cluster, namespaces: &[String], workloads: usize) {
    tokio::join!(
        scale_all(old, namespaces, workloads, false),
        start_workloads(new, namespaces, workloads)
    );
}

/// Both plans say `primary` at `revision`, each cluster's status done at it, as after a finished failover.
async fn reset_plans(primary: &Cluster, standby: &Cluster, namespaces: &[String], revision: &str) {
    put_plan(
        primary,
        namespaces,
        primary.domain,
        revision,
        Some("Primary"),
    )
    .await;
    put_plan(
        standby,
        namespaces,
        primary.domain,
        revision,
        Some("Standby"),
    )
    .await;
}

/// Two real control planes for the whole invocation. Each run fails over once by the executors and once by the
/// bare writes, in opposite directions, so it ends where it began (running on A, both plans saying so); odd runs
/// take the bare writes first. The two clusters are set up alike, so either direction costs the same.
async fn real_main(namespaces: &[String], workloads: usize, runs: usize) {
    let pods = namespaces.len() * workloads * REAL_REPLICAS as usize;
    // A kwok Node takes 250 pods (its capacity); leave room.
    let nodes = pods / 200 + 1;
    let setup = Instant::now();
    let (a, b) = tokio::join!(on_real(A, nodes), on_real(B, nodes));
    tokio::join!(
        seed(&a, namespaces, workloads, true),
        seed(&b, namespaces, workloads, false)
    );
    let a = Side {
        pods: watch_pods(a.admin.clone()),
        cluster: a,
    };
    let b = Side {
        pods: watch_pods(b.admin.clone()),
        cluster: b,
    };
    pods_until(&mut a.pods.clone(), |p| p.ready == pods).await;
    reset_plans(&a.cluster, &b.cluster, namespaces, "rev1").await;
    println!(
        "two real control planes, {nodes} kwok nodes each; {} Deployments each, {pods} pods Ready on {A} \
         {:.0} s after the start",
        namespaces.len() * workloads,
        setup.elapsed().as_secs_f64()
    );
    println!(
        "| run | namespaces | workloads | pods | executors | commit → pods Ready (s) | executors done (s) \
         | old primary's pods Ready then | bare writes | bare writes → pods Ready (s) | bare writes done (s) \
         | commit → Ready / bare → Ready |"
    );
    println!("|---:|---:|---:|---:|---|---:|---:|---:|---|---:|---:|---:|");
    let mut revision = 1;
    let mut next = || {
        revision += 1;
        format!("rev{revision}")
    };
    let direction =
        |old: &Side, new: &Side| format!("{} → {}", old.cluster.domain, new.cluster.domain);
    for run in 0..runs {
        let ((executors, forward), (bare, back)) = if run % 2 == 0 {
            let rev = next();
            let executors = failover(
                &a,
                &b,
                pods,
                by_executors(&a.cluster, &b.cluster, namespaces, &rev),
            )
            .await;
            let bare = failover(
                &b,
                &a,
                pods,
                by_bare_writes(&b.cluster, &a.cluster, namespaces, workloads),
            )
            .await;
            reset_plans(&a.cluster, &b.cluster, namespaces, &next()).await;
            ((executors, direction(&a, &b)), (bare, direction(&b, &a)))
        } else {
            let bare = failover(
                &a,
                &b,
                pods,
                by_bare_writes(&a.cluster, &b.cluster, namespaces, workloads),
            )
            .await;
            reset_plans(&b.cluster, &a.cluster, namespaces, &next()).await;
            let rev = next();
            let executors = failover(
                &b,
                &a,
                pods,
                by_executors(&b.cluster, &a.cluster, namespaces, &rev),
            )
            .await;
            ((executors, direction(&b, &a)), (bare, direction(&a, &b)))
        };
        let secs = |d: Duration| d.as_secs_f64();
        println!(
            "| {} | {} | {} | {pods} | {forward} | {:.1} | {:.1} | {} | {back} | {:.1} | {:.1} | {:.2}x |",
            run + 1,
            namespaces.len(),
            namespaces.len() * workloads,
            secs(executors.pods_ready),
            secs(executors.writes),
            executors.old_ready,
            secs(bare.pods_ready),
            secs(bare.writes),
            secs(executors.pods_ready) / secs(bare.pods_ready)
        );
    }
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let args: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let namespaces_n = args.first().copied().unwrap_or(100);
    let workloads = args.get(1).copied().unwrap_or(10);
    let namespaces: Vec<String> = (0..namespaces_n).map(|i| format!("app-{i:03}")).collect();
    if substrate::real() {
        // One run on real control planes is two failovers of every pod, minutes on 2 cores.
        let runs = args.get(2).copied().unwrap_or(1);
        real_main(&namespaces, workloads, runs).await;
        return;
    }
    let runs = args.get(2).copied().unwrap_or(3);
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
