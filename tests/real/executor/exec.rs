//! Failover and failback by the transition executor on two real clusters: the executor runs in-process as each
//! cluster's shipped `drgitops-reconciler` ServiceAccount and asks the peer as its `drgitops-peer`
//! ServiceAccount; plan commits are applied to both as the git source applies them; `testkit::stork` plays
//! Stork's part for ClusterDomainUpdates. Asserts what a person would see: replicas and Ready pods,
//! annotations, schedules, roles, phases, steps.
//!
//! The async tests share one pair of clusters, each test in its own namespace (a plan and everything it
//! protects live in its namespace). The metro tests each start one cluster: ClusterDomainUpdates and
//! ClusterDomainsStatus are cluster-scoped, so two metro tests on one cluster would see each other's.

use std::time::Duration;

use drgitops::plan::transition::{Outcome, Phase};
use drgitops::plan::{DRPlan, Role};
use drgitops::reconcile::transition::TransitionExecutor;
use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};
use k8s_openapi::api::batch::v1::CronJob;
use kube::api::{DynamicObject, Patch, PatchParams, PostParams};
use kube::{Api, Client};
use serde_json::{Value, json};
use testkit::stork::{self, resource};
use testkit::{Cluster, eventually};
use tokio::sync::OnceCell;

use super::support::{await_ready_pods, service_account_kubeconfig};

const A: &str = "us-east-1a";
const B: &str = "us-east-1b";

fn schedules(client: Client, ns: &str) -> Api<DynamicObject> {
    Api::namespaced_with(
        client,
        ns,
        &resource("MigrationSchedule", "migrationschedules"),
    )
}

/// The clusters the async tests share, with the shipped manifests installed, and each one's `drgitops-peer`
/// kubeconfig. Never dropped: testenv's watchdog stops the control planes when the test process exits.
struct Shared {
    a: Cluster,
    b: Cluster,
    a_peer: String,
    b_peer: String,
}

static SHARED: OnceCell<Shared> = OnceCell::const_new();

async fn shared() -> &'static Shared {
    SHARED
        .get_or_init(|| async {
            let (a, b) = tokio::join!(Cluster::start(A), Cluster::start(B));
            for cluster in [&a, &b] {
                cluster.install_reconciler();
            }
            let a_peer = service_account_kubeconfig(&a, "drgitops-peer").await;
            let b_peer = service_account_kubeconfig(&b, "drgitops-peer").await;
            Shared {
                a,
                b,
                a_peer,
                b_peer,
            }
        })
        .await
}

/// One cluster as one test sees it: its namespace, an admin client (for what Stork and people do), the
/// reconciler's client, and the peer kubeconfig the reconciler uses.
struct Side<'a> {
    cluster: &'a Cluster,
    domain: &'static str,
    ns: String,
    admin: Client,
    reconciler: Client,
    peer_kubeconfig: Option<String>,
    /// Stork's Migration controllers for this namespace of the pair (held by one side of it).
    stork: Option<testkit::migration::StorkStandIn>,
}

impl<'a> Side<'a> {
    async fn new(cluster: &'a Cluster, domain: &'static str, ns: &str) -> Side<'a> {
        cluster.kubectl(&["create", "namespace", ns]);
        Side {
            cluster,
            domain,
            ns: ns.into(),
            admin: cluster.client().await,
            reconciler: cluster.service_account_client("drgitops-reconciler").await,
            peer_kubeconfig: None,
            stork: None,
        }
    }

    async fn create<K>(&self, object: Value)
    where
        K: kube::Resource<DynamicType = (), Scope = k8s_openapi::NamespaceResourceScope>
            + Clone
            + serde::de::DeserializeOwned
            + serde::Serialize
            + std::fmt::Debug,
    {
        let api: Api<K> = Api::namespaced(self.admin.clone(), &self.ns);
        api.create(
            &PostParams::default(),
            &serde_json::from_value(object).expect("object"),
        )
        .await
        .expect("created");
    }

    async fn workload(&self, kind: &str, name: &str, replicas: i32, recorded: Option<&str>) {
        let mut annotations = serde_json::Map::new();
        if let Some(n) = recorded {
            annotations.insert(
                "stork.libopenstorage.org/migrationReplicas".into(),
                n.into(),
            );
        }
        let object = json!({
            "metadata": {"name": name, "namespace": self.ns, "annotations": annotations},
            "spec": {
                "replicas": replicas,
                "serviceName": name,
                "selector": {"matchLabels": {"app": name}},
                "template": {
                    "metadata": {"labels": {"app": name}},
                    "spec": {"containers": [{"name": name, "image": "registry.example/app:1"}]}
                }
            }
        });
        match kind {
            "Deployment" => self.create::<Deployment>(object).await,
            _ => self.create::<StatefulSet>(object).await,
        }
    }

    async fn cron_job(&self, suspend: bool, migrated: bool) {
        let annotations = if migrated {
            json!({"stork.libopenstorage.org/migrated": "true"})
        } else {
            json!({})
        };
        self.create::<CronJob>(json!({
            "metadata": {"name": "backup", "namespace": self.ns, "annotations": annotations},
            "spec": {
                "schedule": "0 * * * *",
                "suspend": suspend,
                "jobTemplate": {"spec": {"template": {"spec": {
                    "restartPolicy": "OnFailure",
                    "containers": [{"name": "backup", "image": "registry.example/backup:1"}]
                }}}}
            }
        }))
        .await;
    }

    async fn schedule(&self, name: &str, suspend: bool, static_copy: bool) {
        let annotations = if static_copy {
            json!({"stork.libopenstorage.org/static-copy": "true"})
        } else {
            json!({})
        };
        let object: DynamicObject = serde_json::from_value(json!({
            "apiVersion": "stork.libopenstorage.org/v1alpha1",
            "kind": "MigrationSchedule",
            "metadata": {"name": name, "namespace": self.ns, "annotations": annotations},
            "spec": {"schedulePolicyName": "mysql", "suspend": suspend, "template": {"spec": {"clusterPair": "remotecluster", "namespaces": [self.ns]}}}
        }))
        .expect("schedule");
        schedules(self.admin.clone(), &self.ns)
            .create(&PostParams::default(), &object)
            .await
            .expect("schedule created");
    }

    async fn schedule_value(&self, name: &str) -> Value {
        let schedule = schedules(self.admin.clone(), &self.ns)
            .get(name)
            .await
            .expect("schedule");
        serde_json::to_value(schedule).expect("json")
    }

    fn plans(&self, client: &Client) -> Api<DRPlan> {
        Api::namespaced(client.clone(), &self.ns)
    }

    /// The plan as the git source applies it at `revision` (as the reconciler's ServiceAccount), with the status
    /// this cluster's reconciler last wrote.
    async fn put_plan(
        &self,
        mode: &str,
        primary: &str,
        domains: Value,
        revision: &str,
        status: Option<Value>,
    ) {
        let failover = json!({"peerStopTimeoutSeconds": 300});
        self.put_plan_with(mode, primary, domains, revision, status, failover)
            .await;
    }

    /// [`Side::put_plan`] with this `spec.failover`.
    async fn put_plan_with(
        &self,
        mode: &str,
        primary: &str,
        domains: Value,
        revision: &str,
        status: Option<Value>,
        failover: Value,
    ) {
        let api = self.plans(&self.reconciler);
        let mut pair = json!({"name": "remotecluster", "peerKubeconfigSecret": {"name": "drgitops-peer", "key": "kubeconfig"}});
        if mode == "async" {
            // Async copies volumes through the storage pairing (a transition never reads that Secret).
            pair["storageSecret"] = json!({"name": "drgitops-peer-storage"});
        }
        let plan = json!({
            "apiVersion": "drgitops.dev/v1alpha1",
            "kind": "DRPlan",
            "metadata": {"name": "mysql", "namespace": self.ns, "annotations": {"drgitops.dev/revision": revision}},
            "spec": {
                "mode": mode,
                "primary": primary,
                "domains": domains,
                "clusterPair": pair,
                "schedule": {"interval": {"intervalMinutes": 15}},
                "failover": failover
            }
        });
        api.patch(
            "mysql",
            &PatchParams::apply("git-source").force(),
            &Patch::Apply(&plan),
        )
        .await
        .expect("plan applied");
        if let Some(status) = status {
            api.patch_status(
                "mysql",
                &PatchParams::default(),
                &Patch::Merge(json!({"status": status})),
            )
            .await
            .expect("plan status written");
        }
    }

    async fn plan(&self) -> DRPlan {
        self.plans(&self.admin).get("mysql").await.expect("plan")
    }

    async fn replicas(&self, kind: &str, name: &str) -> (i32, Option<String>) {
        let (replicas, annotations) = match kind {
            "Deployment" => {
                let d = Api::<Deployment>::namespaced(self.admin.clone(), &self.ns)
                    .get(name)
                    .await
                    .expect("deployment");
                (
                    d.spec.and_then(|s| s.replicas).unwrap_or(1),
                    d.metadata.annotations.unwrap_or_default(),
                )
            }
            _ => {
                let s = Api::<StatefulSet>::namespaced(self.admin.clone(), &self.ns)
                    .get(name)
                    .await
                    .expect("statefulset");
                (
                    s.spec.and_then(|s| s.replicas).unwrap_or(1),
                    s.metadata.annotations.unwrap_or_default(),
                )
            }
        };
        (
            replicas,
            annotations
                .get("stork.libopenstorage.org/migrationReplicas")
                .cloned(),
        )
    }

    /// The replicas the workloads ask for. A workload that is momentarily absent runs nothing: Stork's final
    /// migration deletes and re-creates a standby's changed objects while the old primary hands over.
    async fn running(&self) -> i32 {
        let deployment = Api::<Deployment>::namespaced(self.admin.clone(), &self.ns)
            .get_opt("web")
            .await
            .expect("get deployment")
            .map(|d| d.spec.and_then(|s| s.replicas).unwrap_or(1));
        let stateful_set = Api::<StatefulSet>::namespaced(self.admin.clone(), &self.ns)
            .get_opt("db")
            .await
            .expect("get statefulset")
            .map(|s| s.spec.and_then(|s| s.replicas).unwrap_or(1));
        deployment.unwrap_or(0) + stateful_set.unwrap_or(0)
    }

    /// Waits until the workloads' Ready pods are `web` and `db`.
    async fn await_pods(&self, web: usize, db: usize) {
        await_ready_pods(self.cluster, &self.ns, &[("web", web), ("db", db)]).await;
    }

    async fn cron_suspended(&self) -> bool {
        let c = Api::<CronJob>::namespaced(self.admin.clone(), &self.ns)
            .get("backup")
            .await
            .expect("cronjob");
        c.spec.and_then(|s| s.suspend).unwrap_or(false)
    }

    /// One reconcile of the plan on this cluster, as the reconciler. The role apply stands in for the plan
    /// controller's render and server-side apply of the MigrationSchedule (suspended while the peer is
    /// unreachable).
    async fn reconcile(&self, revision: &str) -> Outcome {
        let plan = self.plan().await;
        let client = self.reconciler.clone();
        let executor =
            TransitionExecutor::new(client.clone(), Duration::from_secs(2)).with_events("test");
        let primary = plan.spec.primary == self.domain;
        let ns = self.ns.clone();
        executor
            .run(
                &plan,
                self.domain,
                revision,
                self.peer_kubeconfig.as_deref(),
                || apply_schedule(client.clone(), ns.clone(), primary),
            )
            .await
            .unwrap_or_else(|e| panic!("reconcile of {} on {}: {e}", self.ns, self.domain))
    }
}

/// The plan controller's server-side apply of the role's MigrationSchedule: running on the primary; on the
/// standby suspended and marked as Stork's static copy (so the primary's Stork updates it instead of stalling).
async fn apply_schedule(client: Client, ns: String, primary: bool) -> Result<(), String> {
    let mut desired = json!({
        "apiVersion": "stork.libopenstorage.org/v1alpha1",
        "kind": "MigrationSchedule",
        "metadata": {"name": "mysql", "namespace": ns, "labels": {"app.kubernetes.io/managed-by": "drgitops"}},
        "spec": {"schedulePolicyName": "mysql", "suspend": !primary,
                 "template": {"spec": {"clusterPair": "remotecluster", "namespaces": [ns], "startApplications": false}}}
    });
    if !primary {
        desired["metadata"]["annotations"] =
            json!({"stork.libopenstorage.org/static-copy": "true"});
    }
    schedules(client, &ns)
        .patch(
            "mysql",
            &PatchParams::apply("drgitops").force(),
            &Patch::Apply(&desired),
        )
        .await
        .map(drop)
        .map_err(|e| e.to_string())
}

fn domains(a_active: bool, b_active: bool) -> Value {
    json!([{"name": A, "active": a_active}, {"name": B, "active": b_active}])
}

/// In namespace `ns` of the shared clusters: a running primary on A and a standby on B holding what Stork
/// migrated, paired both ways.
async fn async_pair(ns: &str) -> (Side<'static>, Side<'static>) {
    let shared = shared().await;
    let mut a = Side::new(&shared.a, A, ns).await;
    let mut b = Side::new(&shared.b, B, ns).await;
    a.peer_kubeconfig = Some(shared.b_peer.clone());
    b.peer_kubeconfig = Some(shared.a_peer.clone());
    // The final migration of a planned failover needs Stork, and Stork the ClusterPair it names.
    for side in [&a, &b] {
        side.cluster.apply_yaml(&format!(
            "apiVersion: stork.libopenstorage.org/v1alpha1\nkind: ClusterPair\nmetadata: {{name: remotecluster, namespace: {ns}}}\nspec: {{}}\n"
        ));
    }
    a.stork = Some(testkit::migration::StorkStandIn::start_in(
        a.admin.clone(),
        b.admin.clone(),
        Some(ns),
    ));
    a.workload("Deployment", "web", 2, None).await;
    a.workload("StatefulSet", "db", 3, None).await;
    a.cron_job(false, false).await;
    a.schedule("mysql", false, false).await;
    b.workload("Deployment", "web", 0, Some("2")).await;
    b.workload("StatefulSet", "db", 0, Some("3")).await;
    b.cron_job(true, true).await;
    b.schedule("mysql-nightly", true, true).await;
    apply_schedule(b.reconciler.clone(), ns.into(), false)
        .await
        .expect("standby schedule");
    let rest = |role: &str| {
        Some(
            json!({"role": role, "phase": "Ready", "localDomain": "", "lastAppliedRevision": "rev1"}),
        )
    };
    a.put_plan(
        "async",
        A,
        json!([{"name": A}, {"name": B}]),
        "rev1",
        rest("Primary"),
    )
    .await;
    b.put_plan(
        "async",
        A,
        json!([{"name": A}, {"name": B}]),
        "rev1",
        rest("Standby"),
    )
    .await;
    a.await_pods(2, 3).await;
    (a, b)
}

/// Applies a commit to both clusters and reconciles both (new primary first) until both are done; asserts at
/// every step that the applications never run on both sides.
async fn commit_and_converge(a: &Side<'_>, b: &Side<'_>, primary: &str, revision: &str) {
    for c in [a, b] {
        c.put_plan(
            "async",
            primary,
            json!([{"name": A}, {"name": B}]),
            revision,
            None,
        )
        .await;
    }
    let (first, second) = if primary == B { (b, a) } else { (a, b) };
    // The old primary's drain and final migration take the cluster's and Stork's time.
    let converged = eventually(Duration::from_secs(120), || async {
        let o1 = first.reconcile(revision).await;
        assert!(
            first.running().await == 0 || second.running().await == 0,
            "both clusters run the applications"
        );
        let o2 = second.reconcile(revision).await;
        assert!(
            first.running().await == 0 || second.running().await == 0,
            "both clusters run the applications"
        );
        (o1.complete && o2.complete).then_some(())
    })
    .await;
    assert!(converged.is_some(), "no convergence");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn planned_failover_and_failback_between_two_clusters() {
    let (a, b) = async_pair("planned").await;
    for c in [&a, &b] {
        c.put_plan("async", B, json!([{"name": A}, {"name": B}]), "rev2", None)
            .await;
    }

    // The new primary sees the commit first: it waits for the old one and scales nothing.
    let out = b.reconcile("rev2").await;
    assert_eq!(out.phase, Phase::WaitingForPeer);
    assert_eq!(b.running().await, 0);
    let status = b.plan().await.status.expect("status");
    assert_eq!(status.role, Some(Role::Primary));
    assert_eq!(status.phase.as_deref(), Some("WaitingForPeer"));
    let t = status.transition.expect("transition");
    assert_eq!(
        (t.from.as_deref(), t.to.as_deref(), t.revision.as_deref()),
        (Some(A), Some(B), Some("rev2"))
    );
    assert_eq!(t.steps[0].name, "fence");
    assert_eq!(t.steps[0].state, "Waiting");

    commit_and_converge(&a, &b, B, "rev2").await;
    assert_eq!(b.replicas("Deployment", "web").await.0, 2);
    assert_eq!(b.replicas("StatefulSet", "db").await.0, 3);
    assert_eq!(a.replicas("Deployment", "web").await, (0, Some("2".into())));
    assert_eq!(a.replicas("StatefulSet", "db").await, (0, Some("3".into())));
    b.await_pods(2, 3).await;
    a.await_pods(0, 0).await;
    assert!(a.cron_suspended().await);
    assert!(!b.cron_suspended().await);
    assert_eq!(a.schedule_value("mysql").await["spec"]["suspend"], true);
    assert_eq!(b.schedule_value("mysql").await["spec"]["suspend"], false);
    assert_eq!(
        b.schedule_value("mysql-nightly").await["status"]["applicationActivated"],
        true
    );
    let (sa, sb) = (
        a.plan().await.status.expect("status"),
        b.plan().await.status.expect("status"),
    );
    assert_eq!(
        (sa.role, sb.role),
        (Some(Role::Standby), Some(Role::Primary))
    );
    assert_eq!(
        (
            sa.last_applied_revision.as_deref(),
            sb.last_applied_revision.as_deref()
        ),
        (Some("rev2"), Some("rev2"))
    );
    let steps: Vec<(String, String)> = sb
        .transition
        .clone()
        .expect("transition")
        .steps
        .into_iter()
        .map(|s| (s.name, s.state))
        .collect();
    assert_eq!(
        steps,
        [
            ("fence", "Succeeded"),
            ("activate", "Succeeded"),
            ("protect", "Succeeded")
        ]
        .map(|(n, s)| (n.to_string(), s.to_string()))
    );
    let ready = sb
        .conditions
        .iter()
        .find(|c| c.type_ == "Ready")
        .expect("Ready");
    assert_eq!(ready.status, "True");
    let counts =
        |s: &drgitops::plan::DRPlanStatus| s.workloads.as_ref().map(|w| (w.activated, w.total));
    assert_eq!((counts(&sa), counts(&sb)), (Some((0, 2)), Some((2, 2))));

    // Failback.
    commit_and_converge(&a, &b, A, "rev3").await;
    assert_eq!(a.replicas("Deployment", "web").await.0, 2);
    assert_eq!(a.replicas("StatefulSet", "db").await.0, 3);
    assert_eq!(b.replicas("Deployment", "web").await, (0, Some("2".into())));
    assert_eq!(b.replicas("StatefulSet", "db").await, (0, Some("3".into())));
    a.await_pods(2, 3).await;
    b.await_pods(0, 0).await;
    assert!(
        !a.cron_suspended().await,
        "the CronJob suspended at failover runs again"
    );
    assert_eq!(
        b.schedule_value("mysql-nightly").await["status"]["applicationActivated"],
        false
    );
    let (sa, sb) = (
        a.plan().await.status.expect("status"),
        b.plan().await.status.expect("status"),
    );
    assert_eq!(
        (sa.role, sb.role),
        (Some(Role::Primary), Some(Role::Standby))
    );
}

/// A kubeconfig for a port nothing listens on.
async fn dead_kubeconfig() -> String {
    let port = testenv::free_port().expect("port");
    format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: dead\n  cluster:\n    server: http://127.0.0.1:{port}\nusers:\n- name: dead\n  user: {{}}\ncontexts:\n- name: dead\n  context: {{cluster: dead, user: dead}}\ncurrent-context: dead\n"
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn async_disaster_then_the_old_primary_returns_and_stops_first() {
    let (a, mut b) = async_pair("disaster").await;
    b.peer_kubeconfig = Some(dead_kubeconfig().await);
    let declared = json!({"disaster": {"lost": A, "declaredAt": "2026-12-04T10:00:00Z"}});
    // Without the declaration an unreachable peer is waited for.
    b.put_plan("async", B, json!([{"name": A}, {"name": B}]), "rev2", None)
        .await;
    let out = b.reconcile("rev2").await;
    assert_eq!(out.phase, Phase::WaitingForPeer);
    assert_eq!(b.running().await, 0);
    b.put_plan_with(
        "async",
        B,
        json!([{"name": A}, {"name": B}]),
        "rev3",
        None,
        declared.clone(),
    )
    .await;
    let out = b.reconcile("rev3").await;
    assert!(out.complete, "{out:?}");
    assert_eq!(b.running().await, 5);
    b.await_pods(2, 3).await;
    let status = b.plan().await.status.expect("status");
    let fence = &status.transition.as_ref().expect("transition").steps[0];
    assert!(
        fence
            .message
            .as_deref()
            .unwrap_or_default()
            .contains("disaster declared: us-east-1a is lost"),
        "{fence:?}"
    );

    // The old cluster comes back, still recorded as primary; the commit reaches it and it stops first, then
    // waits for its pods to go, and migrates nothing back (its copy is the older one).
    a.put_plan_with(
        "async",
        B,
        json!([{"name": A}, {"name": B}]),
        "rev3",
        None,
        declared,
    )
    .await;
    assert_eq!(a.running().await, 5);
    let out = a.reconcile("rev3").await;
    assert_eq!(a.running().await, 0, "{out:?}");
    let done = eventually(Duration::from_secs(60), || async {
        a.reconcile("rev3").await.complete.then_some(())
    })
    .await;
    assert!(done.is_some(), "the old primary never finished standing by");
    let steps: Vec<String> = a
        .plan()
        .await
        .status
        .and_then(|s| s.transition)
        .map(|t| t.steps.into_iter().map(|s| s.name).collect())
        .unwrap_or_default();
    assert!(!steps.contains(&"final-migration".to_string()), "{steps:?}");
    a.await_pods(0, 0).await;
    assert_eq!(
        a.replicas("Deployment", "web").await.1.as_deref(),
        Some("2")
    );
    assert_eq!(a.schedule_value("mysql").await["spec"]["suspend"], true);
    assert_eq!(
        a.plan().await.status.expect("status").role,
        Some(Role::Standby)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reachable_peer_still_running_keeps_the_new_primary_waiting() {
    let (a, b) = async_pair("still-running").await;
    b.put_plan("async", B, json!([{"name": A}, {"name": B}]), "rev2", None)
        .await;
    // A never sees the commit (its git source is stuck): B waits, with a message naming the peer's state.
    for _ in 0..3 {
        let out = b.reconcile("rev2").await;
        assert_eq!(out.phase, Phase::WaitingForPeer);
    }
    assert_eq!(b.running().await, 0);
    assert_eq!(a.running().await, 5);
    b.await_pods(0, 0).await;
    a.await_pods(2, 3).await;
    let message = || async {
        let status = b.plan().await.status.expect("status");
        status.transition.expect("transition").steps[0]
            .message
            .clone()
            .unwrap_or_default()
    };
    let m = message().await;
    assert!(
        m.contains("peer us-east-1a reports role Primary, revision rev1"),
        "{m}"
    );

    // A's DRPlan claims Standby at this revision, but its workloads still run (someone scaled them back up):
    // B keeps waiting.
    let claim = json!({"status": {"role": "Standby", "lastAppliedRevision": "rev2"}});
    a.plans(&a.admin)
        .patch_status("mysql", &PatchParams::default(), &Patch::Merge(claim))
        .await
        .expect("status claimed");
    assert_eq!(b.reconcile("rev2").await.phase, Phase::WaitingForPeer);
    let m = message().await;
    assert!(
        m.contains("reports role Standby, revision rev2") && m.contains("still runs 2 workload(s)"),
        "{m}"
    );
    assert_eq!(b.running().await, 0);
    assert_eq!(b.cluster.ready_pods(&b.ns, "web").await, 0);

    // With a short peerStopTimeoutSeconds the wait turns Stalled, saying what to commit.
    let patch = json!({"spec": {"failover": {"peerStopTimeoutSeconds": 1}}});
    b.plans(&b.admin)
        .patch("mysql", &PatchParams::default(), &Patch::Merge(patch))
        .await
        .expect("timeout shortened");
    let stalled = eventually(Duration::from_secs(30), || async {
        let outcome = b.reconcile("rev2").await;
        (outcome.phase == Phase::Stalled).then_some(outcome)
    })
    .await;
    assert!(stalled.is_some(), "the wait never turned Stalled");
    assert_eq!(b.running().await, 0);
    assert_eq!(b.cluster.ready_pods(&b.ns, "web").await, 0);
    let status = b.plan().await.status.expect("status");
    let stalled = status
        .conditions
        .iter()
        .find(|c| c.type_ == "Stalled")
        .expect("Stalled");
    assert_eq!(
        (stalled.status.as_str(), stalled.reason.as_deref()),
        ("True", Some("PeerStillRunning"))
    );
    let message = stalled.message.as_deref().unwrap_or_default();
    assert!(
        message.contains("after 1s (spec.failover.peerStopTimeoutSeconds)"),
        "{message}"
    );
    assert!(
        message.contains("drgitops failover --plan mysql --to us-east-1a"),
        "{message}"
    );
}

/// A standby on B in namespace `mysql` of its own cluster, whose peer (A) is gone, in a metro Portworx cluster
/// whose two domains are Active.
async fn metro_standby(cluster: &Cluster) -> Side<'_> {
    let mut b = Side::new(cluster, B, "mysql").await;
    b.peer_kubeconfig = Some(dead_kubeconfig().await);
    b.workload("Deployment", "web", 0, Some("2")).await;
    b.workload("StatefulSet", "db", 0, Some("3")).await;
    b.cron_job(true, true).await;
    stork::create_cluster_domains_status(&b.admin, B, &[(A, true), (B, true)]).await;
    let rest = Some(json!({"role": "Standby", "phase": "Ready", "lastAppliedRevision": "rev1"}));
    b.put_plan("metro", A, domains(true, true), "rev1", rest)
        .await;
    b
}

async fn metro_cluster() -> Cluster {
    let cluster = Cluster::start(B).await;
    cluster.install_reconciler();
    cluster
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metro_failover_deactivates_the_failed_domain_before_starting_applications() {
    let cluster = metro_cluster().await;
    let b = metro_standby(&cluster).await;
    b.put_plan("metro", B, domains(false, true), "rev2", None)
        .await;
    let out = b.reconcile("rev2").await;
    assert_eq!(out.phase, Phase::WaitingForStorage);
    assert_eq!(
        b.running().await,
        0,
        "nothing starts before the failed domain is inactive"
    );
    let created = stork::cluster_domain_updates(&b.admin).await;
    assert_eq!(created.len(), 1);
    assert_eq!(
        created[0].data["spec"],
        json!({"clusterdomain": A, "active": false})
    );
    // Reconciling again before Stork acts creates nothing new.
    b.reconcile("rev2").await;
    assert_eq!(stork::cluster_domain_updates(&b.admin).await.len(), 1);
    b.await_pods(0, 0).await;

    assert_eq!(
        stork::process_cluster_domain_updates(&b.admin, Ok(())).await,
        1
    );
    let out = b.reconcile("rev2").await;
    assert!(out.complete, "{out:?}");
    assert_eq!(b.running().await, 5);
    b.await_pods(2, 3).await;
    let steps = b
        .plan()
        .await
        .status
        .expect("status")
        .transition
        .expect("transition")
        .steps;
    assert_eq!(steps[0].name, "metro");
    assert!(
        steps[1]
            .message
            .as_deref()
            .unwrap_or_default()
            .contains("Inactive"),
        "{:?}",
        steps[1]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metro_domain_update_failure_surfaces_as_stalled_with_storks_reason() {
    let cluster = metro_cluster().await;
    let b = metro_standby(&cluster).await;
    b.put_plan("metro", B, domains(false, true), "rev2", None)
        .await;
    b.reconcile("rev2").await;
    stork::process_cluster_domain_updates(
        &b.admin,
        Err("failed to deactivate domain: px quorum lost"),
    )
    .await;
    let out = b.reconcile("rev2").await;
    assert_eq!(out.phase, Phase::Stalled);
    assert_eq!(b.running().await, 0);
    b.await_pods(0, 0).await;
    let status = b.plan().await.status.expect("status");
    assert_eq!(status.phase.as_deref(), Some("Stalled"));
    let stalled = status
        .conditions
        .iter()
        .find(|c| c.type_ == "Stalled")
        .expect("Stalled");
    assert_eq!(stalled.status, "True");
    assert_eq!(stalled.reason.as_deref(), Some("ClusterDomainUpdateFailed"));
    assert!(
        stalled
            .message
            .as_deref()
            .unwrap_or_default()
            .contains("px quorum lost"),
        "{stalled:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dry_run_plans_without_writing() {
    let (a, b) = async_pair("dry-run").await;
    for c in [&a, &b] {
        c.put_plan("async", B, json!([{"name": A}, {"name": B}]), "rev2", None)
            .await;
    }
    // A (the old primary) would scale down at once; planning only changes nothing.
    let executor = TransitionExecutor::new(a.reconciler.clone(), Duration::from_secs(2));
    let outcome = executor
        .plan_only(&a.plan().await, A, "rev2", None)
        .await
        .expect("plan only");
    assert_eq!(outcome.phase, Phase::Deactivating);
    assert_eq!(outcome.actions.len(), 1, "{:?}", outcome.actions);
    assert_eq!(a.running().await, 5);
    a.await_pods(2, 3).await;
    let status = a.plan().await.status.expect("status");
    assert_eq!(
        (status.role, status.phase.as_deref()),
        (Some(Role::Primary), Some("Ready"))
    );
    assert!(status.transition.is_none());
}
