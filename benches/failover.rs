//! Commit-to-running for a large plan: 100 namespaces × 10 Deployments, failed over from one cluster to another
//! by both clusters' transition executors running at once. Prints a Markdown table row per run.
//!
//! On the in-memory API servers (the default), beside each run, on fresh clusters seeded the same way, the floor
//! of the same API work without the planner and the executor: the old primary's workloads scaled to 0 and the new
//! primary's to their counts (the same merge patches, 32 at a time per cluster) and the MigrationSchedule applied;
//! once with both clusters written at once, once with the old primary stopped before the new one starts. The
//! ratios say what the safe ordering (record, stop, drain, final migration, wait for the peer's Standby, start)
//! costs over the bare writes. The hand-over's share is printed beside them: the commit until the old primary
//! reports Standby (its scale-down, drain and final Migration), and the final Migration on its own (from when a
//! watch first sees it until it sees it `Successful`). [`StorkStandIn`] plays Stork's Migration controller on both
//! substrates: it copies the namespaces' objects to the new primary and ends the Migration `Successful`.
//!
//! With `DRGITOPS_BENCH_SUBSTRATE=real`, on two real control planes (`tests/testenv`: kube-apiserver with RBAC,
//! controller-manager, scheduler, kwok nodes) with the reconciler's shipped RBAC applied by kubectl, the executors
//! acting as the shipped reconciler ServiceAccount and asking the peer as the shipped peer ServiceAccount: the
//! clock stops when every pod of the new primary's workloads is Ready. The floor is the same bare writes (both
//! clusters at once) followed by the wait for the same pods; see `real_main`.
//!
//! `cargo bench --bench failover [-- NAMESPACES WORKLOADS RUNS]`; the environment variables
//! `DRGITOPS_BENCH_NAMESPACES`, `DRGITOPS_BENCH_WORKLOADS` and `DRGITOPS_BENCH_RUNS` set the same, for runs where
//! `cargo bench` receives no arguments.

mod substrate;

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use drgitops::plan::DRPlan;
use drgitops::plan::transition::{Phase, REPLICAS_ANNOTATION, final_migration_name};
use drgitops::reconcile::transition::{DEFAULT_PARALLELISM, TransitionExecutor};
use drgitops::stork::keys::{
    FIELD_MANAGER, FINAL_MIGRATION_LABEL, MANAGED_BY, MANAGED_BY_VALUE, PLAN_LABEL, STATIC_COPY,
};
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
use serde_json::{Value, json};
use testkit::migration::StorkStandIn;
use tokio::sync::watch;

const A: &str = "us-east-1a";
const B: &str = "us-east-1b";
const PLAN_NS: &str = "kube-system";
const PLAN: &str = "fleet";
/// The ClusterPair the plan names; Stork requires it in the final Migration's namespace (the plan's).
const CLUSTER_PAIR: &str = "remotecluster";
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
    // The same stand-ins for Stork's CRDs as on a real control plane: with Migration and ClusterPair.
    for doc in
        serde_yaml::Deserializer::from_str(include_str!("../tests/data/gitops/stork-crds.yaml"))
    {
        let value: Value = serde::Deserialize::deserialize(doc).expect("Stork CRD parses");
        if value.is_null() {
            // The comment before the first `---`.
            continue;
        }
        let crd: CustomResourceDefinition = serde_json::from_value(value).expect("Stork CRD");
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

/// The ClusterPair the plan names, in the plan's namespace, as `storkctl create clusterpair` leaves it there. Its
/// contents are not read: the stand-in's destination is the other cluster.
async fn put_cluster_pair(c: &Cluster) {
    let api: Api<DynamicObject> = Api::namespaced_with(
        c.admin.clone(),
        PLAN_NS,
        &stork_resource("ClusterPair", "clusterpairs"),
    );
    let pair = json!({
        "apiVersion": "stork.libopenstorage.org/v1alpha1", "kind": "ClusterPair",
        "metadata": {"name": CLUSTER_PAIR, "namespace": PLAN_NS},
        "spec": {"config": {}, "options": {}}
    });
    api.patch(
        CLUSTER_PAIR,
        &PatchParams::apply("bench").force(),
        &Patch::Apply(&pair),
    )
    .await
    .expect("ClusterPair applied");
}

fn stork_resource(kind: &str, plural: &str) -> ApiResource {
    ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("stork.libopenstorage.org", "v1alpha1", kind),
        plural,
    )
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
    // The waits are raised from their 300 s defaults: on a real control plane on 2 cores the controllers and
    // kwok delete about 3.5 pods a second, so draining 1,000 pods takes close to 300 s, and the new primary waits
    // for that and the final migration. A Stall would measure its 30 s recheck instead of the hand-over.
    let plan = json!({
        "apiVersion": "drgitops.dev/v1alpha1",
        "kind": "DRPlan",
        "metadata": {"name": PLAN, "namespace": PLAN_NS, "annotations": {"drgitops.dev/revision": revision}},
        "spec": {
            "mode": "async", "primary": primary, "domains": [{"name": A}, {"name": B}], "namespaces": namespaces,
            "clusterPair": {"name": CLUSTER_PAIR, "peerKubeconfigSecret": {"name": "drgitops-peer", "key": "kubeconfig"},
                            "storageSecret": {"name": "drgitops-peer-storage"}},
            "schedule": {"interval": {"intervalMinutes": 15}},
            "failover": {"drainTimeoutSeconds": 3600, "peerStopTimeoutSeconds": 3600}
        }
    });
    api.patch(
        PLAN,
        &PatchParams::apply("git-source").force(),
        &Patch::Apply(&plan),
    )
    .await
    .expect("plan applied");
    if let Some(role) = role {
        // The nulls clear what an earlier transition left, so a reset plan reads as a fresh one.
        let status = json!({"status": {"role": role, "phase": "Ready", "lastAppliedRevision": revision,
            "lastAttemptedRevision": null, "transition": null, "conditions": null, "workloads": null,
            "localDomain": null, "observedGeneration": null, "finalMigration": null, "lastMigration": null}});
        api.patch_status(PLAN, &PatchParams::default(), &Patch::Merge(status))
            .await
            .expect("status");
    }
}

/// Reconciles until the executor reports the revision complete.
async fn reconcile_until_done(c: &Cluster, peer: &str, revision: &str) {
    let executor = TransitionExecutor::new(c.actor.clone(), Duration::from_secs(2));
    loop {
        let plan = Api::<DRPlan>::namespaced(c.actor.clone(), PLAN_NS)
            .get(PLAN)
            .await
            .expect("plan");
        let outcome = executor
            .run(&plan, c.domain, revision, Some(peer), || {
                apply_schedule(c.actor.clone())
            })
            .await
            .expect("transition pass");
        if outcome.complete || outcome.phase == Phase::Ready {
            return;
        }
        // A Stalled transition waits for a commit: the bench would measure nothing but its hang.
        if outcome.phase == Phase::Stalled {
            let why: Vec<String> = outcome
                .conditions
                .iter()
                .filter(|c| c.type_ == "Stalled")
                .map(|c| format!("{}: {}", c.reason, c.message))
                .collect();
            panic!("{} stalled at {revision}: {}", c.domain, why.join("; "));
        }
        // Waiting for the peer: look again when the planner asks to, as the plan controller's requeue does.
        tokio::time::sleep(Duration::from_secs(
            outcome.requeue_after_seconds.unwrap_or(1),
        ))
        .await;
    }
}

/// Stands in for the plan controller's apply of the primary's MigrationSchedule. As the controller does, a
/// schedule still in its standby form (Stork's static copy of the peer's, which Stork's writes leave owning the
/// annotation and `suspend`) is taken back first, so the schedule runs.
async fn apply_schedule(client: Client) -> Result<(), String> {
    let api: Api<DynamicObject> = Api::namespaced_with(
        client,
        PLAN_NS,
        &stork_resource("MigrationSchedule", "migrationschedules"),
    );
    let live = api.get_opt(PLAN).await.map_err(|e| e.to_string())?;
    if live.is_some_and(|l| {
        l.annotations()
            .get(STATIC_COPY)
            .is_some_and(|v| v == "true")
    }) {
        let patch =
            json!({"metadata": {"annotations": {STATIC_COPY: null}}, "spec": {"suspend": false}});
        let params = PatchParams {
            field_manager: Some(FIELD_MANAGER.into()),
            ..Default::default()
        };
        api.patch(PLAN, &params, &Patch::Merge(&patch))
            .await
            .map_err(|e| e.to_string())?;
    }
    let desired = json!({
        "apiVersion": "stork.libopenstorage.org/v1alpha1", "kind": "MigrationSchedule",
        "metadata": {"name": PLAN, "namespace": PLAN_NS,
                     "labels": {MANAGED_BY: MANAGED_BY_VALUE, PLAN_LABEL: PLAN}},
        "spec": {"schedulePolicyName": PLAN, "suspend": false, "template": {"spec": {"clusterPair": CLUSTER_PAIR}}}
    });
    api.patch(
        PLAN,
        &PatchParams::apply(FIELD_MANAGER).force(),
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

/// A final Migration as a watch on the old primary saw it: when it first appeared and when it was first
/// `Successful`. Watched rather than read from its `creationTimestamp` and `finishTimestamp`, which are to the
/// second.
#[derive(Clone, Copy)]
struct FinalMigration {
    seen: Instant,
    successful: Option<Instant>,
}

impl FinalMigration {
    fn took(&self) -> Option<Duration> {
        self.successful.map(|s| s - self.seen)
    }
}

/// The plan's final Migrations on one cluster, by name, from a watch; `None` until the watch has listed them
/// once, so a caller can wait for it before the clock starts.
type FinalMigrations = watch::Receiver<Option<HashMap<String, FinalMigration>>>;

fn watch_final_migrations(client: Client) -> FinalMigrations {
    let (tx, rx) = watch::channel(None::<HashMap<String, FinalMigration>>);
    let api: Api<DynamicObject> =
        Api::namespaced_with(client, PLAN_NS, &stork_resource("Migration", "migrations"));
    let config = watcher::Config::default().labels(&format!("{FINAL_MIGRATION_LABEL}=true"));
    tokio::spawn(async move {
        let mut events = std::pin::pin!(watcher(api, config).default_backoff());
        while let Some(event) = events.next().await {
            let at = Instant::now();
            match event {
                Ok(watcher::Event::InitDone) => {
                    tx.send_modify(|m| {
                        m.get_or_insert_default();
                    });
                }
                Ok(watcher::Event::Apply(m) | watcher::Event::InitApply(m)) => {
                    let successful = m.data.pointer("/status/status").and_then(Value::as_str)
                        == Some("Successful");
                    tx.send_modify(|seen| {
                        let entry = seen.get_or_insert_default().entry(m.name_any()).or_insert(
                            FinalMigration {
                                seen: at,
                                successful: None,
                            },
                        );
                        if successful && entry.successful.is_none() {
                            entry.successful = Some(at);
                        }
                    });
                }
                Ok(_) | Err(_) => {}
            }
        }
    });
    rx
}

/// Waits until the watch has listed the Migrations once.
async fn final_migrations_ready(migrations: &FinalMigrations) {
    migrations
        .clone()
        .wait_for(Option::is_some)
        .await
        .expect("the Migration watch runs");
}

/// The final Migration of the transition to `revision`, as the watch saw it.
fn final_migration(migrations: &FinalMigrations, revision: &str) -> Option<FinalMigration> {
    migrations
        .borrow()
        .as_ref()?
        .get(&final_migration_name(PLAN, revision))
        .copied()
}

/// What one way of one run measured, with the workloads running on the new primary and on the old one afterwards.
struct Measured {
    elapsed: Duration,
    new_running: usize,
    old_running: usize,
    /// The executors only: the commit until the old primary reported Standby (scale-down, drain, final migration).
    hand_over: Option<Duration>,
    /// The executors only: the final Migration, from its creation until Stork reported it `Successful`.
    final_migration: Option<Duration>,
}

/// Seeds two fresh clusters, measures one way, and returns its time and how many workloads run on the new primary
/// and on the old one afterwards.
async fn measure(way: Way, namespaces: &[String], workloads: usize) -> Measured {
    let a = in_memory(A).await;
    seed(&a, namespaces, workloads, true).await;
    let b = in_memory(B).await;
    seed(&b, namespaces, workloads, false).await;
    put_plan(&a, namespaces, A, "rev1", Some("Primary")).await;
    put_plan(&b, namespaces, A, "rev1", Some("Standby")).await;
    for c in [&a, &b] {
        put_cluster_pair(c).await;
    }
    // Stork's Migration controller on both clusters, for the executors' final migration; not started for the bare
    // writes, which run none.
    let stork = matches!(way, Way::Executor)
        .then(|| StorkStandIn::start_in(a.admin.clone(), b.admin.clone(), Some(PLAN_NS)));
    let migrations = watch_final_migrations(a.admin.clone());
    final_migrations_ready(&migrations).await;

    let start = Instant::now();
    let mut hand_over = None;
    match way {
        Way::Executor => {
            // The commit reaches both clusters; both reconcilers run at once.
            put_plan(&a, namespaces, B, "rev2", None).await;
            put_plan(&b, namespaces, B, "rev2", None).await;
            let old = async {
                reconcile_until_done(&a, &b.peer_kubeconfig, "rev2").await;
                start.elapsed()
            };
            let (old, ()) = tokio::join!(old, reconcile_until_done(&b, &a.peer_kubeconfig, "rev2"));
            hand_over = Some(old);
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
    drop(stork);
    Measured {
        elapsed,
        new_running: running(&b).await,
        old_running: running(&a).await,
        hand_over,
        final_migration: final_migration(&migrations, "rev2").and_then(|m| m.took()),
    }
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
    migrations: FinalMigrations,
}

/// One failover on the real pair, timed from its first write.
struct Failover {
    /// Until every pod of the new primary's workloads is Ready.
    pods_ready: Duration,
    /// Until the writes are done: both executors report the revision complete, or the bare writes have returned.
    writes: Duration,
    /// The old primary's pods still Ready (not yet being deleted) when the new primary's were all Ready.
    old_ready: usize,
    /// The executors only: until the old primary reported Standby (scale-down, drain, final migration).
    hand_over: Option<Duration>,
}

/// Runs `writes` and times it and the new primary's pods becoming Ready; then waits until the old primary's pods
/// are gone and the controllers have settled, so the next failover starts from a quiet pair.
async fn failover(
    old: &Side,
    new: &Side,
    pods: usize,
    writes: impl Future<Output = Option<Instant>>,
) -> Failover {
    let (mut old_pods, mut new_pods) = (old.pods.clone(), new.pods.clone());
    let start = Instant::now();
    let writes = async {
        let standby = writes.await;
        (start.elapsed(), standby.map(|at| at - start))
    };
    let ready = async {
        let done = pods_until(&mut new_pods, |p| p.ready == pods).await;
        (done.at - start, old_pods.borrow().ready)
    };
    let ((writes, hand_over), (pods_ready, old_ready)) = tokio::join!(writes, ready);
    pods_until(&mut old_pods, |p| p.present == 0).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    Failover {
        pods_ready,
        writes,
        old_ready,
        hand_over,
    }
}

/// The commit reaches both clusters; both executors run at once until the revision is complete. Returns when
/// the old primary reported Standby.
async fn by_executors(
    old: &Cluster,
    new: &Cluster,
    namespaces: &[String],
    revision: &str,
) -> Option<Instant> {
    put_plan(old, namespaces, new.domain, revision, None).await;
    put_plan(new, namespaces, new.domain, revision, None).await;
    let old_done = async {
        reconcile_until_done(old, &new.peer_kubeconfig, revision).await;
        Instant::now()
    };
    let (standby, ()) = tokio::join!(
        old_done,
        reconcile_until_done(new, &old.peer_kubeconfig, revision)
    );
    Some(standby)
}

/// The floor: the same scale writes, both clusters at once, as the plain reconciler ServiceAccount.
async fn by_bare_writes(
    old: &Cluster,
    new: &Cluster,
    namespaces: &[String],
    workloads: usize,
) -> Option<Instant> {
    tokio::join!(
        scale_all(old, namespaces, workloads, false),
        start_workloads(new, namespaces, workloads)
    );
    None
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
        seed(&b, namespaces, workloads, false),
        put_cluster_pair(&a),
        put_cluster_pair(&b)
    );
    // Stork's Migration and MigrationSchedule controllers between the two, for the whole invocation (stopped
    // before the clusters are).
    let stork = StorkStandIn::start_in(a.admin.clone(), b.admin.clone(), Some(PLAN_NS));
    let a = Side {
        pods: watch_pods(a.admin.clone()),
        migrations: watch_final_migrations(a.admin.clone()),
        cluster: a,
    };
    let b = Side {
        pods: watch_pods(b.admin.clone()),
        migrations: watch_final_migrations(b.admin.clone()),
        cluster: b,
    };
    pods_until(&mut a.pods.clone(), |p| p.ready == pods).await;
    final_migrations_ready(&a.migrations).await;
    final_migrations_ready(&b.migrations).await;
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
         | commit → Ready / bare → Ready | commit → old primary Standby (s) | Standby / bare → Ready \
         | final migration (s) | final migration / bare → Ready |"
    );
    println!("|---:|---:|---:|---:|---|---:|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|");
    let mut revision = 1;
    let mut next = || {
        revision += 1;
        format!("rev{revision}")
    };
    let direction =
        |old: &Side, new: &Side| format!("{} → {}", old.cluster.domain, new.cluster.domain);
    let took =
        |side: &Side, rev: &str| final_migration(&side.migrations, rev).and_then(|m| m.took());
    for run in 0..runs {
        let ((executors, forward, final_migration), (bare, back)) = if run % 2 == 0 {
            let rev = next();
            let executors = failover(
                &a,
                &b,
                pods,
                by_executors(&a.cluster, &b.cluster, namespaces, &rev),
            )
            .await;
            let final_migration = took(&a, &rev);
            let bare = failover(
                &b,
                &a,
                pods,
                by_bare_writes(&b.cluster, &a.cluster, namespaces, workloads),
            )
            .await;
            reset_plans(&a.cluster, &b.cluster, namespaces, &next()).await;
            (
                (executors, direction(&a, &b), final_migration),
                (bare, direction(&b, &a)),
            )
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
            let final_migration = took(&b, &rev);
            (
                (executors, direction(&b, &a), final_migration),
                (bare, direction(&a, &b)),
            )
        };
        let secs = |d: Duration| d.as_secs_f64();
        let floor = secs(bare.pods_ready);
        let hand_over = executors.hand_over.map_or(f64::NAN, secs);
        let final_migration = final_migration.map_or(f64::NAN, secs);
        println!(
            "| {} | {} | {} | {pods} | {forward} | {:.1} | {:.1} | {} | {back} | {floor:.1} | {:.1} | {:.2}x \
             | {hand_over:.1} | {:.2}x | {final_migration:.1} | {:.2}x |",
            run + 1,
            namespaces.len(),
            namespaces.len() * workloads,
            secs(executors.pods_ready),
            secs(executors.writes),
            executors.old_ready,
            secs(bare.writes),
            secs(executors.pods_ready) / floor,
            hand_over / floor,
            final_migration / floor,
        );
    }
    drop(stork);
}

/// The size of an invocation: `-- NAMESPACES WORKLOADS RUNS`, each also read from `DRGITOPS_BENCH_NAMESPACES`,
/// `DRGITOPS_BENCH_WORKLOADS` and `DRGITOPS_BENCH_RUNS` (an argument wins); unset, the substrate's default.
struct Size {
    namespaces: Option<usize>,
    workloads: Option<usize>,
    runs: Option<usize>,
}

impl Size {
    fn from_args_and_env() -> Size {
        let args: Vec<usize> = std::env::args()
            .skip(1)
            .filter_map(|a| a.parse().ok())
            .collect();
        let pick = |i: usize, var: &str| {
            args.get(i).copied().or_else(|| {
                std::env::var(var).ok().map(|v| {
                    v.parse()
                        .unwrap_or_else(|_| panic!("{var}={v}: expected a number"))
                })
            })
        };
        Size {
            namespaces: pick(0, "DRGITOPS_BENCH_NAMESPACES"),
            workloads: pick(1, "DRGITOPS_BENCH_WORKLOADS"),
            runs: pick(2, "DRGITOPS_BENCH_RUNS"),
        }
    }
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let size = Size::from_args_and_env();
    let namespaces_n = size.namespaces.unwrap_or(100);
    let workloads = size.workloads.unwrap_or(10);
    let namespaces: Vec<String> = (0..namespaces_n).map(|i| format!("app-{i:03}")).collect();
    if substrate::real() {
        // One run on real control planes is two failovers of every pod, minutes on 2 cores.
        let runs = size.runs.unwrap_or(1);
        real_main(&namespaces, workloads, runs).await;
        return;
    }
    let runs = size.runs.unwrap_or(3);
    let total = namespaces_n * workloads;
    println!(
        "| namespaces | workloads | commit-to-running (s) | new primary running | old primary running \
         | bare writes, both at once (s) | commit-to-running / bare | bare writes, stop then start (s) | commit-to-running / bare ordered \
         | commit → old primary Standby (s) | Standby / bare | final migration (s) | final migration / bare |"
    );
    println!("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    let ways = [Way::Executor, Way::BareAtOnce, Way::BareStopThenStart];
    for run in 0..runs {
        // Each run takes the three in a different order, so none always meets the machine first.
        let mut times = [Duration::ZERO; 3];
        let mut executor = None;
        for k in 0..ways.len() {
            let index = (run + k) % ways.len();
            let measured = measure(ways[index], &namespaces, workloads).await;
            times[index] = measured.elapsed;
            if index == 0 {
                executor = Some(measured);
            } else {
                assert_eq!(
                    (measured.new_running, measured.old_running),
                    (total, 0),
                    "the bare writes reach the same end state"
                );
            }
        }
        let executor = executor.expect("the executors were measured");
        let secs = |d: Option<Duration>| d.map_or(f64::NAN, |d| d.as_secs_f64());
        let (hand_over, final_migration) =
            (secs(executor.hand_over), secs(executor.final_migration));
        let [commit, at_once, ordered] = times.map(|t| t.as_secs_f64());
        println!(
            "| {namespaces_n} | {total} | {commit:.2} | {} | {} | {at_once:.2} | {:.1}x | {ordered:.2} | {:.1}x \
             | {hand_over:.2} | {:.1}x | {final_migration:.2} | {:.1}x |",
            executor.new_running,
            executor.old_running,
            commit / at_once,
            commit / ordered,
            hand_over / at_once,
            final_migration / at_once,
        );
    }
}
