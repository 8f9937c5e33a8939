//! A reconciler killed between any two writes of a failover still finishes it exactly once: two in-memory API
//! servers (two clusters), the transition executor on each, and a client that answers 503 to every write after
//! the N-th, for every N.
//!
//! This test stays on the in-memory API server (the other failover tests moved to `tests/real/executor`): it
//! needs an HTTP-level fault a real kube-apiserver cannot produce, a refusal of every write after exactly N
//! writes while reads still pass, and it records each write's body to check what was written.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use drgitops::plan::transition::Outcome;
use drgitops::plan::{DRPlan, Role};
use drgitops::reconcile::transition::TransitionExecutor;
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
        for doc in serde_yaml::Deserializer::from_str(&data("../gitops/stork-crds.yaml")) {
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

    /// One reconcile through `client` (which may die part-way, as a killed reconciler's would). The role apply
    /// stands in for the plan controller's render and server-side apply of the MigrationSchedule.
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

/// A running primary on A and a standby on B holding what Stork migrated, paired both ways.
/// A running primary on A and a standby on B holding what Stork migrated, paired both ways, with Stork's
/// Migration controllers between them (the old primary's final migration).
async fn async_pair() -> (Cluster, Cluster, testkit::migration::StorkStandIn) {
    let mut a = Cluster::start(A).await;
    let mut b = Cluster::start(B).await;
    a.peer_kubeconfig = Some(b.server.kubeconfig());
    b.peer_kubeconfig = Some(a.server.kubeconfig());
    for c in [&a, &b] {
        let pair: DynamicObject = serde_json::from_value(json!({
            "apiVersion": "stork.libopenstorage.org/v1alpha1", "kind": "ClusterPair",
            "metadata": {"name": "remotecluster", "namespace": NS}, "spec": {}
        }))
        .unwrap();
        Api::<DynamicObject>::namespaced_with(
            c.client.clone(),
            NS,
            &stork("ClusterPair", "clusterpairs"),
        )
        .create(&PostParams::default(), &pair)
        .await
        .unwrap();
    }
    let stork_stand_in =
        testkit::migration::StorkStandIn::start(a.client.clone(), b.client.clone());
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
    (a, b, stork_stand_in)
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
        // Up to the last write of the hand-over (the final Migration and the statuses around it) and beyond.
        for limit in 0..20 {
            let (a, b, _stork) = async_pair().await;
            for c in [&a, &b] {
                c.put_plan("async", B, json!([{"name": A}, {"name": B}]), "rev2", None)
                    .await;
            }
            let (log_a, log_b): (WriteLog, WriteLog) = Default::default();
            let mut alive = true;
            // Rounds until both are done; the old primary's final migration is Stork's work in the background.
            let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
            while tokio::time::Instant::now() < deadline {
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
                // Stork's stand-in polls every 200 ms: give it a moment before the next round.
                tokio::time::sleep(Duration::from_millis(50)).await;
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
            // One final migration, Successful, whatever write the old primary died after.
            let finals = Api::<DynamicObject>::namespaced_with(
                a.client.clone(),
                NS,
                &stork("Migration", "migrations"),
            )
            .list(&Default::default())
            .await
            .unwrap()
            .items;
            assert_eq!(finals.len(), 1, "{context}");
            assert_eq!(
                finals[0].data.pointer("/status/status"),
                Some(&json!("Successful")),
                "{context}"
            );
            assert!(sb.transition.unwrap().finished_at.is_some(), "{context}");
        }
    }
    assert!(crashed > 10, "the kills happened ({crashed})");
}
