//! Failover and failback end to end: two in-memory API servers (two clusters), the transition executor on each,
//! plan commits applied to both as the git source applies them, and a test double playing Stork's part for
//! ClusterDomainUpdates. Asserts what a person would see: replicas, annotations, schedules, roles, phases, steps.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use drgitops::gitops::transition_exec::TransitionExecutor;
use drgitops::plan::transition::{Outcome, Phase};
use drgitops::plan::{DRPlan, Role};
use fake_apiserver::FakeApiServer;
use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};
use k8s_openapi::api::batch::v1::CronJob;
use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{ApiResource, DynamicObject, GroupVersionKind, Patch, PatchParams, PostParams};
use kube::{Api, Client};
use serde_json::{Value, json};

const A: &str = "us-east-1a";
const B: &str = "us-east-1b";
const NS: &str = "mysql";

fn data(name: &str) -> String {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/failover")
        .join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn stork(kind: &str, plural: &str) -> ApiResource {
    ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("stork.libopenstorage.org", "v1alpha1", kind),
        plural,
    )
}

/// One cluster: its API server, a client, and the peer kubeconfig its reconciler uses.
struct Cluster {
    domain: &'static str,
    server: FakeApiServer,
    client: Client,
    peer_kubeconfig: Option<String>,
}

impl Cluster {
    async fn start(domain: &'static str) -> Cluster {
        let server = FakeApiServer::start().await.unwrap();
        let client = server.client();
        let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
        crds.create(&PostParams::default(), &drgitops::plan::crd::crd())
            .await
            .unwrap();
        for doc in serde_yaml::Deserializer::from_str(&data("stork-crds.yaml")) {
            let crd: CustomResourceDefinition = serde::Deserialize::deserialize(doc).unwrap();
            crds.create(&PostParams::default(), &crd).await.unwrap();
        }
        let namespaces: Api<Namespace> = Api::all(client.clone());
        namespaces
            .create(
                &PostParams::default(),
                &serde_json::from_value(json!({"metadata": {"name": NS}})).unwrap(),
            )
            .await
            .unwrap();
        Cluster {
            domain,
            server,
            client,
            peer_kubeconfig: None,
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
        let api: Api<K> = Api::namespaced(self.client.clone(), NS);
        api.create(
            &PostParams::default(),
            &serde_json::from_value(object).unwrap(),
        )
        .await
        .unwrap();
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
            "metadata": {"name": name, "namespace": NS, "annotations": annotations},
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
            "metadata": {"name": "backup", "namespace": NS, "annotations": annotations},
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
        let api: Api<DynamicObject> = Api::namespaced_with(
            self.client.clone(),
            NS,
            &stork("MigrationSchedule", "migrationschedules"),
        );
        let annotations = if static_copy {
            json!({"stork.libopenstorage.org/static-copy": "true"})
        } else {
            json!({})
        };
        let object: DynamicObject = serde_json::from_value(json!({
            "apiVersion": "stork.libopenstorage.org/v1alpha1",
            "kind": "MigrationSchedule",
            "metadata": {"name": name, "namespace": NS, "annotations": annotations},
            "spec": {"schedulePolicyName": "mysql", "suspend": suspend, "template": {"spec": {"clusterPair": "remotecluster", "namespaces": [NS]}}}
        }))
        .unwrap();
        api.create(&PostParams::default(), &object).await.unwrap();
    }

    async fn schedule_value(&self, name: &str) -> Value {
        let api: Api<DynamicObject> = Api::namespaced_with(
            self.client.clone(),
            NS,
            &stork("MigrationSchedule", "migrationschedules"),
        );
        serde_json::to_value(api.get(name).await.unwrap()).unwrap()
    }

    /// The plan as the git source applies it at `revision`, with the status this cluster's reconciler last wrote.
    async fn put_plan(
        &self,
        mode: &str,
        primary: &str,
        domains: Value,
        revision: &str,
        status: Option<Value>,
    ) {
        let api: Api<DRPlan> = Api::namespaced(self.client.clone(), NS);
        let mut pair = json!({"name": "remotecluster", "peerKubeconfigSecret": {"name": "drgitops-peer", "key": "kubeconfig"}});
        if mode == "async" {
            // Async copies volumes through the storage pairing (a transition never reads that Secret).
            pair["storageSecret"] = json!({"name": "drgitops-peer-storage"});
        }
        let plan = json!({
            "apiVersion": "drgitops.dev/v1alpha1",
            "kind": "DRPlan",
            "metadata": {"name": "mysql", "namespace": NS, "annotations": {"drgitops.dev/revision": revision}},
            "spec": {
                "mode": mode,
                "primary": primary,
                "domains": domains,
                "clusterPair": pair,
                "schedule": {"interval": {"intervalMinutes": 15}},
                "failover": {"peerStopTimeoutSeconds": 300}
            }
        });
        api.patch(
            "mysql",
            &PatchParams::apply("git-source").force(),
            &Patch::Apply(&plan),
        )
        .await
        .unwrap();
        if let Some(status) = status {
            api.patch_status(
                "mysql",
                &PatchParams::default(),
                &Patch::Merge(json!({"status": status})),
            )
            .await
            .unwrap();
        }
    }

    async fn plan(&self) -> DRPlan {
        Api::<DRPlan>::namespaced(self.client.clone(), NS)
            .get("mysql")
            .await
            .unwrap()
    }

    async fn replicas(&self, kind: &str, name: &str) -> (i32, Option<String>) {
        let (replicas, annotations) = match kind {
            "Deployment" => {
                let d = Api::<Deployment>::namespaced(self.client.clone(), NS)
                    .get(name)
                    .await
                    .unwrap();
                (
                    d.spec.unwrap().replicas.unwrap_or(1),
                    d.metadata.annotations.unwrap_or_default(),
                )
            }
            _ => {
                let s = Api::<StatefulSet>::namespaced(self.client.clone(), NS)
                    .get(name)
                    .await
                    .unwrap();
                (
                    s.spec.unwrap().replicas.unwrap_or(1),
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

    async fn running(&self) -> i32 {
        self.replicas("Deployment", "web").await.0 + self.replicas("StatefulSet", "db").await.0
    }

    async fn cron_suspended(&self) -> bool {
        let c = Api::<CronJob>::namespaced(self.client.clone(), NS)
            .get("backup")
            .await
            .unwrap();
        c.spec.unwrap().suspend.unwrap_or(false)
    }

    /// One reconcile of the plan on this cluster. The role apply stands in for the plan controller's render and
    /// server-side apply of the MigrationSchedule (suspended while the peer is unreachable).
    async fn reconcile(&self, revision: &str) -> Outcome {
        self.reconcile_with(self.client.clone(), revision)
            .await
            .unwrap()
    }

    /// One reconcile through `client` (which may die part-way, as a killed reconciler's would).
    async fn reconcile_with(&self, client: Client, revision: &str) -> Result<Outcome, String> {
        let plan = self.plan().await;
        let executor =
            TransitionExecutor::new(client.clone(), Duration::from_secs(2)).with_events("test");
        let primary = plan.spec.primary == self.domain;
        executor
            .run(
                &plan,
                self.domain,
                revision,
                self.peer_kubeconfig.as_deref(),
                || apply_schedule(client.clone(), primary),
            )
            .await
            .map_err(|e| e.to_string())
    }
}

/// The plan controller's server-side apply of the role's MigrationSchedule: running on the primary; on the
/// standby suspended and marked as Stork's static copy (so the primary's Stork updates it instead of stalling).
async fn apply_schedule(client: Client, primary: bool) -> Result<(), String> {
    let api: Api<DynamicObject> = Api::namespaced_with(
        client,
        NS,
        &stork("MigrationSchedule", "migrationschedules"),
    );
    let mut desired = json!({
        "apiVersion": "stork.libopenstorage.org/v1alpha1",
        "kind": "MigrationSchedule",
        "metadata": {"name": "mysql", "namespace": NS, "labels": {"app.kubernetes.io/managed-by": "drgitops"}},
        "spec": {"schedulePolicyName": "mysql", "suspend": !primary,
                 "template": {"spec": {"clusterPair": "remotecluster", "namespaces": [NS], "startApplications": false}}}
    });
    if !primary {
        desired["metadata"]["annotations"] =
            json!({"stork.libopenstorage.org/static-copy": "true"});
    }
    api.patch(
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

/// A running primary on A and a standby on B holding what Stork migrated, paired both ways.
async fn async_pair() -> (Cluster, Cluster) {
    let mut a = Cluster::start(A).await;
    let mut b = Cluster::start(B).await;
    a.peer_kubeconfig = Some(b.server.kubeconfig());
    b.peer_kubeconfig = Some(a.server.kubeconfig());
    a.workload("Deployment", "web", 2, None).await;
    a.workload("StatefulSet", "db", 3, None).await;
    a.cron_job(false, false).await;
    a.schedule("mysql", false, false).await;
    b.workload("Deployment", "web", 0, Some("2")).await;
    b.workload("StatefulSet", "db", 0, Some("3")).await;
    b.cron_job(true, true).await;
    b.schedule("mysql-nightly", true, true).await;
    apply_schedule(b.client.clone(), false).await.unwrap();
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
    (a, b)
}

/// Applies a commit to both clusters and reconciles both (new primary first) until both are done; asserts at
/// every step that the applications never run on both sides.
async fn commit_and_converge(a: &Cluster, b: &Cluster, primary: &str, revision: &str) {
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
    for _ in 0..10 {
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
        if o1.complete && o2.complete {
            return;
        }
    }
    panic!("no convergence");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn planned_failover_and_failback_between_two_clusters() {
    let (a, b) = async_pair().await;
    for c in [&a, &b] {
        c.put_plan("async", B, json!([{"name": A}, {"name": B}]), "rev2", None)
            .await;
    }

    // The new primary sees the commit first: it waits for the old one and scales nothing.
    let out = b.reconcile("rev2").await;
    assert_eq!(out.phase, Phase::WaitingForPeer);
    assert_eq!(b.running().await, 0);
    let status = b.plan().await.status.unwrap();
    assert_eq!(status.role, Some(Role::Primary));
    assert_eq!(status.phase.as_deref(), Some("WaitingForPeer"));
    let t = status.transition.unwrap();
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
    assert!(a.cron_suspended().await);
    assert!(!b.cron_suspended().await);
    assert_eq!(a.schedule_value("mysql").await["spec"]["suspend"], true);
    assert_eq!(b.schedule_value("mysql").await["spec"]["suspend"], false);
    assert_eq!(
        b.schedule_value("mysql-nightly").await["status"]["applicationActivated"],
        true
    );
    let (sa, sb) = (
        a.plan().await.status.unwrap(),
        b.plan().await.status.unwrap(),
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
        .unwrap()
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
    let ready = sb.conditions.iter().find(|c| c.type_ == "Ready").unwrap();
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
    assert!(
        !a.cron_suspended().await,
        "the CronJob suspended at failover runs again"
    );
    assert_eq!(
        b.schedule_value("mysql-nightly").await["status"]["applicationActivated"],
        false
    );
    let (sa, sb) = (
        a.plan().await.status.unwrap(),
        b.plan().await.status.unwrap(),
    );
    assert_eq!(
        (sa.role, sb.role),
        (Some(Role::Primary), Some(Role::Standby))
    );
}

/// A kubeconfig for a port nothing listens on.
async fn dead_kubeconfig() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: dead\n  cluster:\n    server: http://127.0.0.1:{port}\nusers:\n- name: dead\n  user: {{}}\ncontexts:\n- name: dead\n  context: {{cluster: dead, user: dead}}\ncurrent-context: dead\n"
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn async_disaster_then_the_old_primary_returns_and_stops_first() {
    let (a, mut b) = async_pair().await;
    b.peer_kubeconfig = Some(dead_kubeconfig().await);
    b.put_plan("async", B, json!([{"name": A}, {"name": B}]), "rev2", None)
        .await;
    let out = b.reconcile("rev2").await;
    assert!(out.complete, "{out:?}");
    assert_eq!(b.running().await, 5);
    let status = b.plan().await.status.unwrap();
    let fence = &status.transition.as_ref().unwrap().steps[0];
    assert!(
        fence
            .message
            .as_deref()
            .unwrap()
            .contains("declared the disaster"),
        "{fence:?}"
    );

    // The old cluster comes back, still recorded as primary; the commit reaches it and it stops first.
    a.put_plan("async", B, json!([{"name": A}, {"name": B}]), "rev2", None)
        .await;
    assert_eq!(a.running().await, 5);
    let out = a.reconcile("rev2").await;
    assert!(out.complete);
    assert_eq!(a.running().await, 0);
    assert_eq!(
        a.replicas("Deployment", "web").await.1.as_deref(),
        Some("2")
    );
    assert_eq!(a.schedule_value("mysql").await["spec"]["suspend"], true);
    assert_eq!(a.plan().await.status.unwrap().role, Some(Role::Standby));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reachable_peer_still_running_keeps_the_new_primary_waiting() {
    let (a, b) = async_pair().await;
    b.put_plan("async", B, json!([{"name": A}, {"name": B}]), "rev2", None)
        .await;
    // A never sees the commit (its git source is stuck): B waits, with a message naming the peer's state.
    for _ in 0..3 {
        let out = b.reconcile("rev2").await;
        assert_eq!(out.phase, Phase::WaitingForPeer);
    }
    assert_eq!(b.running().await, 0);
    assert_eq!(a.running().await, 5);
    let message = || async {
        let status = b.plan().await.status.unwrap();
        status.transition.unwrap().steps[0].message.clone().unwrap()
    };
    let m = message().await;
    assert!(
        m.contains("peer us-east-1a reports role Primary, revision rev1"),
        "{m}"
    );

    // A's DRPlan claims Standby at this revision, but its workloads still run (someone scaled them back up):
    // B keeps waiting.
    let plans: Api<DRPlan> = Api::namespaced(a.client.clone(), NS);
    let claim = json!({"status": {"role": "Standby", "lastAppliedRevision": "rev2"}});
    plans
        .patch_status("mysql", &PatchParams::default(), &Patch::Merge(claim))
        .await
        .unwrap();
    assert_eq!(b.reconcile("rev2").await.phase, Phase::WaitingForPeer);
    let m = message().await;
    assert!(
        m.contains("reports role Standby, revision rev2") && m.contains("still runs 2 workload(s)"),
        "{m}"
    );
    assert_eq!(b.running().await, 0);

    // With a short peerStopTimeoutSeconds the wait turns Stalled, saying what to commit.
    let plans: Api<DRPlan> = Api::namespaced(b.client.clone(), NS);
    let patch = json!({"spec": {"failover": {"peerStopTimeoutSeconds": 1}}});
    plans
        .patch("mysql", &PatchParams::default(), &Patch::Merge(patch))
        .await
        .unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let outcome = loop {
        let outcome = b.reconcile("rev2").await;
        if outcome.phase == Phase::Stalled || std::time::Instant::now() > deadline {
            break outcome;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(outcome.phase, Phase::Stalled);
    assert_eq!(b.running().await, 0);
    let status = b.plan().await.status.unwrap();
    let stalled = status
        .conditions
        .iter()
        .find(|c| c.type_ == "Stalled")
        .unwrap();
    assert_eq!(
        (stalled.status.as_str(), stalled.reason.as_deref()),
        ("True", Some("PeerStillRunning"))
    );
    let message = stalled.message.as_deref().unwrap();
    assert!(
        message.contains("after 1s (spec.failover.peerStopTimeoutSeconds)"),
        "{message}"
    );
    assert!(
        message.contains("drgitops failover --plan mysql --to us-east-1a"),
        "{message}"
    );
}

/// Plays Stork's ClusterDomainUpdate controller once: every unprocessed update gets `outcome`; a successful one
/// also flips the domain's state in ClusterDomainsStatus.
async fn stork_processes_domain_updates(cluster: &Cluster, outcome: Result<(), &str>) -> usize {
    let updates: Api<DynamicObject> = Api::all_with(
        cluster.client.clone(),
        &stork("ClusterDomainUpdate", "clusterdomainupdates"),
    );
    let statuses: Api<DynamicObject> = Api::all_with(
        cluster.client.clone(),
        &stork("ClusterDomainsStatus", "clusterdomainsstatuses"),
    );
    let mut processed = 0;
    for u in updates.list(&Default::default()).await.unwrap().items {
        if u.data
            .pointer("/status/status")
            .and_then(Value::as_str)
            .is_some_and(|s| !s.is_empty())
        {
            continue;
        }
        let name = u.metadata.name.clone().unwrap();
        let status = match outcome {
            Ok(()) => json!({"status": "Successful"}),
            Err(reason) => json!({"status": "Failed", "reason": reason}),
        };
        updates
            .patch(
                &name,
                &PatchParams::default(),
                &Patch::Merge(json!({"status": status})),
            )
            .await
            .unwrap();
        if outcome.is_ok() {
            let domain = u
                .data
                .pointer("/spec/clusterdomain")
                .and_then(Value::as_str)
                .unwrap()
                .to_string();
            let active = u
                .data
                .pointer("/spec/active")
                .and_then(Value::as_bool)
                .unwrap();
            let mut cds = statuses.get("px-cluster").await.unwrap();
            for info in cds.data["status"]["clusterDomainInfos"]
                .as_array_mut()
                .unwrap()
            {
                if info["name"] == domain.as_str() {
                    info["state"] = json!(if active { "Active" } else { "Inactive" });
                }
            }
            statuses
                .replace("px-cluster", &PostParams::default(), &cds)
                .await
                .unwrap();
        }
        processed += 1;
    }
    processed
}

async fn metro_standby() -> Cluster {
    let mut b = Cluster::start(B).await;
    b.peer_kubeconfig = Some(dead_kubeconfig().await);
    b.workload("Deployment", "web", 0, Some("2")).await;
    b.workload("StatefulSet", "db", 0, Some("3")).await;
    b.cron_job(true, true).await;
    let statuses: Api<DynamicObject> = Api::all_with(
        b.client.clone(),
        &stork("ClusterDomainsStatus", "clusterdomainsstatuses"),
    );
    let cds: DynamicObject = serde_json::from_value(json!({
        "apiVersion": "stork.libopenstorage.org/v1alpha1",
        "kind": "ClusterDomainsStatus",
        "metadata": {"name": "px-cluster"},
        "status": {"localDomain": B, "clusterDomainInfos": [
            {"name": A, "state": "Active", "syncStatus": "InSync"},
            {"name": B, "state": "Active", "syncStatus": "InSync"}
        ]}
    }))
    .unwrap();
    statuses.create(&PostParams::default(), &cds).await.unwrap();
    let rest = Some(json!({"role": "Standby", "phase": "Ready", "lastAppliedRevision": "rev1"}));
    b.put_plan("metro", A, domains(true, true), "rev1", rest)
        .await;
    b
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metro_failover_deactivates_the_failed_domain_before_starting_applications() {
    let b = metro_standby().await;
    b.put_plan("metro", B, domains(false, true), "rev2", None)
        .await;
    let out = b.reconcile("rev2").await;
    assert_eq!(out.phase, Phase::WaitingForStorage);
    assert_eq!(
        b.running().await,
        0,
        "nothing starts before the failed domain is inactive"
    );
    let updates: Api<DynamicObject> = Api::all_with(
        b.client.clone(),
        &stork("ClusterDomainUpdate", "clusterdomainupdates"),
    );
    let created = updates.list(&Default::default()).await.unwrap().items;
    assert_eq!(created.len(), 1);
    assert_eq!(
        created[0].data["spec"],
        json!({"clusterdomain": A, "active": false})
    );
    // Reconciling again before Stork acts creates nothing new.
    b.reconcile("rev2").await;
    assert_eq!(
        updates.list(&Default::default()).await.unwrap().items.len(),
        1
    );

    assert_eq!(stork_processes_domain_updates(&b, Ok(())).await, 1);
    let out = b.reconcile("rev2").await;
    assert!(out.complete, "{out:?}");
    assert_eq!(b.running().await, 5);
    let steps = b.plan().await.status.unwrap().transition.unwrap().steps;
    assert_eq!(steps[0].name, "metro");
    assert!(
        steps[1].message.as_deref().unwrap().contains("Inactive"),
        "{:?}",
        steps[1]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metro_domain_update_failure_surfaces_as_stalled_with_storks_reason() {
    let b = metro_standby().await;
    b.put_plan("metro", B, domains(false, true), "rev2", None)
        .await;
    b.reconcile("rev2").await;
    stork_processes_domain_updates(&b, Err("failed to deactivate domain: px quorum lost")).await;
    let out = b.reconcile("rev2").await;
    assert_eq!(out.phase, Phase::Stalled);
    assert_eq!(b.running().await, 0);
    let status = b.plan().await.status.unwrap();
    assert_eq!(status.phase.as_deref(), Some("Stalled"));
    let stalled = status
        .conditions
        .iter()
        .find(|c| c.type_ == "Stalled")
        .unwrap();
    assert_eq!(stalled.status, "True");
    assert_eq!(stalled.reason.as_deref(), Some("ClusterDomainUpdateFailed"));
    assert!(
        stalled
            .message
            .as_deref()
            .unwrap()
            .contains("px quorum lost"),
        "{stalled:?}"
    );
}

/// Every write a client made: (method, path, body).
type WriteLog = Arc<Mutex<Vec<(String, String, Value)>>>;

/// A client for `cluster` that records its writes and, after `limit` of them, fails every further write: the
/// reconciler process is gone from that point on.
fn dying_client(cluster: &Cluster, limit: Option<usize>, log: WriteLog) -> Client {
    let router = cluster.server.router().layer(axum::middleware::from_fn(
        move |req: axum::extract::Request, next: axum::middleware::Next| {
            let log = log.clone();
            async move {
                let method = req.method().clone();
                if method == http::Method::GET {
                    return next.run(req).await;
                }
                let (parts, body) = req.into_parts();
                let bytes = axum::body::to_bytes(body, usize::MAX)
                    .await
                    .unwrap_or_default();
                {
                    let mut log = log.lock().unwrap();
                    if limit.is_some_and(|l| log.len() >= l) {
                        return axum::response::IntoResponse::into_response((
                            http::StatusCode::SERVICE_UNAVAILABLE,
                            "reconciler killed",
                        ));
                    }
                    let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
                    log.push((method.to_string(), parts.uri.path().to_string(), body));
                }
                next.run(axum::extract::Request::from_parts(
                    parts,
                    axum::body::Body::from(bytes),
                ))
                .await
            }
        },
    ));
    Client::new(router, "default")
}

/// The replica counts the reconciler wrote to `workload` (`spec.replicas` of its patches) and the counts it
/// recorded in the annotation.
fn writes_to(log: &WriteLog, workload: &str) -> (Vec<i64>, Vec<String>) {
    let log = log.lock().unwrap();
    let mut replicas = Vec::new();
    let mut recorded = Vec::new();
    for (_, path, body) in log
        .iter()
        .filter(|(_, p, _)| p.ends_with(&format!("/{workload}")))
    {
        assert!(!path.contains("migrationschedules"));
        if let Some(n) = body.pointer("/spec/replicas").and_then(Value::as_i64) {
            replicas.push(n);
        }
        if let Some(v) =
            body.pointer("/metadata/annotations/stork.libopenstorage.org~1migrationReplicas")
        {
            recorded.push(v.as_str().unwrap_or_default().to_string());
        }
    }
    (replicas, recorded)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reconciler_killed_between_any_two_writes_finishes_the_transition_exactly_once() {
    let mut crashed = 0;
    for kill_b in [false, true] {
        for limit in 0..14 {
            let (a, b) = async_pair().await;
            for c in [&a, &b] {
                c.put_plan("async", B, json!([{"name": A}, {"name": B}]), "rev2", None)
                    .await;
            }
            let (log_a, log_b): (WriteLog, WriteLog) = Default::default();
            let mut alive = true;
            for _ in 0..10 {
                let mut done = true;
                for on_b in [true, false] {
                    let (me, log) = if on_b { (&b, &log_b) } else { (&a, &log_a) };
                    let dying = alive && on_b == kill_b;
                    let client =
                        dying_client(me, if dying { Some(limit) } else { None }, log.clone());
                    match me.reconcile_with(client, "rev2").await {
                        Ok(outcome) => done &= outcome.complete,
                        Err(_) => {
                            // Killed: the next reconcile is the restarted process, with a healthy client.
                            assert!(dying);
                            alive = false;
                            crashed += 1;
                            done = false;
                        }
                    }
                    assert!(
                        a.running().await == 0 || b.running().await == 0,
                        "both clusters run"
                    );
                }
                if done {
                    break;
                }
            }
            let context = format!(
                "killed {} after {limit} writes",
                if kill_b { "B" } else { "A" }
            );
            assert_eq!(b.replicas("Deployment", "web").await.0, 2, "{context}");
            assert_eq!(b.replicas("StatefulSet", "db").await.0, 3, "{context}");
            assert_eq!(
                a.replicas("Deployment", "web").await,
                (0, Some("2".into())),
                "{context}"
            );
            assert_eq!(
                a.replicas("StatefulSet", "db").await,
                (0, Some("3".into())),
                "{context}"
            );
            // Every write to a workload had the one right outcome: no scale-up to another count, no count of 0
            // recorded, and each workload scaled on each side exactly once.
            assert_eq!(writes_to(&log_b, "web"), (vec![2], vec![]), "{context}");
            assert_eq!(writes_to(&log_b, "db"), (vec![3], vec![]), "{context}");
            assert_eq!(
                writes_to(&log_a, "web"),
                (vec![0], vec!["2".to_string()]),
                "{context}"
            );
            assert_eq!(
                writes_to(&log_a, "db"),
                (vec![0], vec!["3".to_string()]),
                "{context}"
            );
            assert!(
                !b.cron_suspended().await && a.cron_suspended().await,
                "{context}"
            );
            let (sa, sb) = (
                a.plan().await.status.unwrap(),
                b.plan().await.status.unwrap(),
            );
            assert_eq!(
                (sa.role, sb.role),
                (Some(Role::Standby), Some(Role::Primary)),
                "{context}"
            );
            assert_eq!(sb.phase.as_deref(), Some("Ready"), "{context}");
            assert!(sb.transition.unwrap().finished_at.is_some(), "{context}");
        }
    }
    assert!(crashed > 10, "the kills happened ({crashed})");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dry_run_plans_without_writing() {
    let (a, b) = async_pair().await;
    for c in [&a, &b] {
        c.put_plan("async", B, json!([{"name": A}, {"name": B}]), "rev2", None)
            .await;
    }
    // A (the old primary) would scale down at once; planning only changes nothing.
    let executor = TransitionExecutor::new(a.client.clone(), Duration::from_secs(2));
    let outcome = executor
        .plan_only(&a.plan().await, A, "rev2", None)
        .await
        .unwrap();
    assert_eq!(outcome.phase, Phase::Deactivating);
    assert_eq!(outcome.actions.len(), 1, "{:?}", outcome.actions);
    assert_eq!(a.running().await, 5);
    let status = a.plan().await.status.unwrap();
    assert_eq!(
        (status.role, status.phase.as_deref()),
        (Some(Role::Primary), Some("Ready"))
    );
    assert!(status.transition.is_none());
}
