//! The DRPlan health check for Argo CD (`examples/argocd/health.lua`) run by a real Lua 5.1 on real DRPlan
//! statuses, one case per row of its mapping.
//!
//! Argo CD runs health checks in gopher-lua (Lua 5.1) with only the base, table and package libraries unless
//! `useOpenLibs` is set, with the live object as the global table `obj`, and reads `status` and `message` from the
//! table the script returns. [`health`] does the same with the reference interpreter (mlua, Lua 5.1 compiled from
//! its sources), so a script that reached for `string.format` or `math` would fail here as it fails in Argo CD.
//!
//! The statuses come from what writes them:
//! - the transition planner: a planned failover of the fixture plan between two simulated clusters, each pass
//!   planned by `drgitops::plan::transition::plan` and written by `Outcome::write_status` as the executor does,
//!   with the simulated clusters doing what each pass asked (scaling, suspending, Stork finishing or failing the
//!   final Migration);
//! - the plan controller: `drgitops reconcile`'s pass (without `--git-url`, as beside Argo CD) on two in-memory API
//!   servers, for the steady roles and the problems it reports (Protected, Standby, Degraded, Suspended, Stalled,
//!   Error), read back as Argo CD reads the live object;
//! - the fixture `tests/data/failover/status-plans.yaml` (statuses without conditions).
//!
//! `examples/argocd/argocd-cm.yaml` must embed the script verbatim: checked here too.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use drgitops::plan::DRPlan;
use drgitops::plan::transition::{
    self, Action, DomainState, DomainUpdate, MigrationRecord, Outcome, Peer, PeerPlan, PlanSpec,
    PreviousStatus, Schedule, Workload, WorkloadKind, WorkloadRef,
};
use drgitops::plan::types::DRPlanStatus;
use drgitops::reconcile::runner::{Reconciler, ReconcilerOptions};
use drgitops::reconcile::transition::revision_of;
use drgitops::stork::keys::TRANSITION_ANNOTATION;
use fake_apiserver::FakeApiServer;
use fake_apiserver::faults::FaultMatch;
use jiff::Timestamp;
use k8s_openapi::api::core::v1::{Namespace, Secret};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, ApiResource, DeleteParams, DynamicObject, Patch, PatchParams, PostParams};
use mlua::{Lua, LuaOptions, StdLib};
use serde_json::{Value, json};
use testkit::reconcile::gitops_data;
use testkit::{EAST, WEST, repo_file};

const NS: &str = "mysql";

fn read(path: &str) -> String {
    let path = repo_file(path);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn script() -> String {
    read("examples/argocd/health.lua")
}

/// What Argo CD reads from the script's result.
#[derive(Debug)]
struct Health {
    status: String,
    message: String,
}

/// Runs the health script on `object` as Argo CD does: a fresh Lua 5.1 state with the base, table and package
/// libraries, `obj` set to the object, the returned table's `status` and `message`.
fn health(object: &Value) -> Health {
    let lua = Lua::new_with(StdLib::TABLE | StdLib::PACKAGE, LuaOptions::new()).expect("Lua 5.1");
    let obj = to_lua(&lua, object).expect("object as a Lua table");
    lua.globals().set("obj", obj).expect("set obj");
    let result: mlua::Table = lua
        .load(script())
        .set_name("health.lua")
        .eval()
        .unwrap_or_else(|e| panic!("health.lua failed on {object:#}: {e}"));
    let status: String = result.get("status").expect("status is a string");
    let message: Option<String> = result.get("message").expect("message is a string or nil");
    assert!(
        [
            "Healthy",
            "Progressing",
            "Degraded",
            "Suspended",
            "Missing",
            "Unknown"
        ]
        .contains(&status.as_str()),
        "Argo CD turns an unknown status {status:?} into Unknown"
    );
    Health {
        status,
        message: message.unwrap_or_default(),
    }
}

/// JSON to Lua as Argo CD converts the unstructured object (gopher-lua's `decodeValue`): objects and arrays to
/// tables (arrays 1-based), numbers to Lua numbers, null to nil.
fn to_lua(lua: &Lua, value: &Value) -> mlua::Result<mlua::Value> {
    Ok(match value {
        Value::Null => mlua::Value::Nil,
        Value::Bool(b) => mlua::Value::Boolean(*b),
        Value::Number(n) => mlua::Value::Number(n.as_f64().unwrap_or(f64::NAN)),
        Value::String(s) => mlua::Value::String(lua.create_string(s)?),
        Value::Array(items) => {
            let table = lua.create_table()?;
            for (i, item) in items.iter().enumerate() {
                table.raw_set(i + 1, to_lua(lua, item)?)?;
            }
            mlua::Value::Table(table)
        }
        Value::Object(map) => {
            let table = lua.create_table()?;
            for (key, item) in map {
                table.raw_set(key.as_str(), to_lua(lua, item)?)?;
            }
            mlua::Value::Table(table)
        }
    })
}

/// One status and what Argo CD must show for it.
struct Case {
    source: &'static str,
    name: String,
    object: Value,
    status: &'static str,
    /// A part of the message a person must see (the reason, the phase, what to do).
    message: &'static str,
}

fn case(
    source: &'static str,
    name: &str,
    object: Value,
    status: &'static str,
    message: &'static str,
) -> Case {
    Case {
        source,
        name: name.into(),
        object,
        status,
        message,
    }
}

fn phase_of(object: &Value) -> String {
    object["status"]["phase"]
        .as_str()
        .unwrap_or("(no status)")
        .into()
}

/// Runs every case, prints the table (`--nocapture` shows it) and fails naming every row that does not hold.
fn check(cases: &[Case]) {
    let mut failures = Vec::new();
    for c in cases {
        let got = health(&c.object);
        println!(
            "| {} | {} | {} | {} | {} |",
            c.source,
            c.name,
            phase_of(&c.object),
            got.status,
            got.message
        );
        if got.status != c.status || !got.message.contains(c.message) {
            failures.push(format!(
                "{} / {}: expected {} with a message containing {:?}, got {} {:?}",
                c.source, c.name, c.status, c.message, got.status, got.message
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn argocd_cm_embeds_the_script_verbatim() {
    let cm: Value = serde_yaml::from_str(&read("examples/argocd/argocd-cm.yaml")).expect("yaml");
    assert_eq!(cm["kind"], "ConfigMap");
    assert_eq!(cm["metadata"]["name"], "argocd-cm");
    let embedded = cm["data"]["resource.customizations.health.drgitops.dev_DRPlan"]
        .as_str()
        .expect("the health key for group drgitops.dev, kind DRPlan");
    assert_eq!(embedded, script(), "argocd-cm.yaml and health.lua differ");
}

// ---- statuses the transition planner writes --------------------------------------------------------------------

fn fixture_plan(name: &str, primary: &str, generation: i64) -> DRPlan {
    let mut plan: DRPlan =
        serde_yaml::from_str(&gitops_data(&format!("plans/{name}.yaml"))).expect("fixture plan");
    plan.spec.primary = primary.into();
    plan.metadata.generation = Some(generation);
    plan
}

/// The live object Argo CD sees: the plan with this cluster's status.
fn live(plan: &DRPlan, status: &DRPlanStatus) -> Value {
    let mut plan = plan.clone();
    plan.status = Some(status.clone());
    serde_json::to_value(&plan).expect("plan as JSON")
}

fn at(second: i64) -> Timestamp {
    Timestamp::from_second(1_790_000_000 + second).expect("time")
}

fn workload(kind: WorkloadKind, name: &str, replicas: i32, recorded: Option<&str>) -> Workload {
    let mut annotations = BTreeMap::new();
    if let Some(n) = recorded {
        annotations.insert(transition::REPLICAS_ANNOTATION.to_string(), n.to_string());
    }
    Workload::new(
        WorkloadRef {
            kind,
            namespace: NS.into(),
            name: name.into(),
        },
        Some(replicas),
        &annotations,
    )
}

/// One simulated cluster: what its API server holds for the plan, and the plan's status there.
#[derive(Clone)]
struct Side {
    domain: &'static str,
    workloads: Vec<Workload>,
    schedule: Option<Schedule>,
    migrations: Vec<MigrationRecord>,
    cluster_domains: Option<Vec<DomainState>>,
    domain_updates: Vec<DomainUpdate>,
    status: DRPlanStatus,
}

impl Side {
    /// Running the applications, migrating to the peer.
    fn running(domain: &'static str) -> Side {
        Side {
            domain,
            workloads: vec![
                workload(WorkloadKind::StatefulSet, "mysql", 3, None),
                workload(WorkloadKind::Deployment, "web", 2, None),
            ],
            schedule: Some(Schedule {
                namespace: NS.into(),
                name: NS.into(),
                suspend: false,
                static_copy: false,
            }),
            migrations: Vec::new(),
            cluster_domains: None,
            domain_updates: Vec::new(),
            status: DRPlanStatus::default(),
        }
    }

    /// Holding what Stork migrated: workloads at 0 with their counts, the schedule as a suspended static copy.
    fn standby(domain: &'static str) -> Side {
        Side {
            workloads: vec![
                workload(WorkloadKind::StatefulSet, "mysql", 0, Some("3")),
                workload(WorkloadKind::Deployment, "web", 0, Some("2")),
            ],
            schedule: Some(Schedule {
                namespace: NS.into(),
                name: NS.into(),
                suspend: true,
                static_copy: true,
            }),
            ..Side::running(domain)
        }
    }

    fn pods(&self) -> Vec<String> {
        self.workloads
            .iter()
            .filter(|w| w.replicas.unwrap_or(1) > 0)
            .map(|w| format!("{NS}/{}-0", w.workload.name))
            .collect()
    }

    /// What the other cluster's reconciler reads from this one through the peer kubeconfig.
    fn as_peer(&self) -> Peer {
        let pods = self.pods();
        Peer::Reachable {
            plan: Some(PeerPlan::from_status(Some(&self.status))),
            running_workloads: Some(pods.len() as u32),
            running_pods: Some(pods),
        }
    }

    /// One pass of the transition executor: observe, plan, write the status, perform the actions.
    fn pass(&mut self, plan: &DRPlan, now: Timestamp, peer: Peer) -> Outcome {
        let revision = revision_of(plan);
        let observed = transition::Observed {
            local_domain: self.domain.into(),
            revision: revision.clone(),
            now,
            workloads: self.workloads.clone(),
            cron_jobs: Vec::new(),
            schedule: self.schedule.clone(),
            static_copies: Vec::new(),
            cluster_domains: self.cluster_domains.clone(),
            domain_updates: self.domain_updates.clone(),
            peer,
            previous: PreviousStatus::from_status(Some(&self.status)),
            pods: self.pods(),
            scheduled_migration: None,
            final_migrations: self.migrations.clone(),
        };
        let outcome = transition::plan(&PlanSpec::from_plan(plan), &observed);
        self.status.observed_generation = plan.metadata.generation;
        outcome.write_status(&mut self.status, self.domain, &revision);
        for action in &outcome.actions {
            self.perform(action);
        }
        outcome
    }

    fn workload_mut(&mut self, target: &WorkloadRef) -> &mut Workload {
        self.workloads
            .iter_mut()
            .find(|w| w.workload == *target)
            .expect("a known workload")
    }

    fn perform(&mut self, action: &Action) {
        match action {
            Action::SetScheduleSuspend { suspend, .. } => {
                if let Some(s) = self.schedule.as_mut() {
                    s.suspend = *suspend;
                }
            }
            Action::ScaleDown { workload, record } => {
                let w = self.workload_mut(workload);
                if let Some(n) = record {
                    w.replicas_annotation = Some(n.to_string());
                }
                w.replicas = Some(0);
            }
            Action::ScaleUp { workload, replicas } => {
                self.workload_mut(workload).replicas = Some(*replicas);
            }
            Action::CreateMigration { name, object, .. } => self.migrations.push(MigrationRecord {
                name: name.clone(),
                transition_started_at: object["metadata"]["annotations"][TRANSITION_ANNOTATION]
                    .as_str()
                    .map(str::to_string),
                ..Default::default()
            }),
            Action::DeleteMigration { name, .. } => self.migrations.retain(|m| m.name != *name),
            Action::ApplyRoleObjects => {
                self.schedule = Some(Schedule {
                    namespace: NS.into(),
                    name: NS.into(),
                    suspend: false,
                    static_copy: false,
                })
            }
            Action::CreateDomainUpdate {
                name,
                domain,
                active,
            } => self.domain_updates.push(DomainUpdate {
                name: name.clone(),
                domain: domain.clone(),
                active: *active,
                status: String::new(),
                reason: None,
            }),
            Action::SetCronJobSuspend { .. } | Action::SetApplicationActivated { .. } => {}
        }
    }

    /// Stork finishes the final Migration this cluster created.
    fn stork_finishes(&mut self, status: &str, reason: Option<&str>, now: Timestamp) {
        let migration = self
            .migrations
            .last_mut()
            .expect("a final Migration was created");
        migration.status = status.into();
        migration.stage = "Final".into();
        migration.reason = reason.map(str::to_string);
        migration.finished_at = (status == "Successful").then_some(now);
    }
}

fn planner_cases() -> Vec<Case> {
    const SOURCE: &str = "planner";
    let mut cases = Vec::new();
    let before = fixture_plan("mysql", EAST, 1);
    let mut east = Side::running(EAST);
    let mut west = Side::standby(WEST);
    east.pass(&before, at(0), west.as_peer());
    west.pass(&before, at(0), east.as_peer());
    cases.push(case(
        SOURCE,
        "steady primary",
        live(&before, &east.status),
        "Healthy",
        "this cluster is Primary",
    ));

    // The commit that makes west the primary, as Argo CD applies it (generation 2) on both clusters.
    let failover = fixture_plan("mysql", WEST, 2);
    let stale = live(&failover, &east.status);
    cases.push(case(
        SOURCE,
        "new generation applied, reconciler not yet run",
        stale,
        "Progressing",
        "waiting for the reconciler to observe generation 2",
    ));
    west.pass(&failover, at(10), east.as_peer());
    cases.push(case(
        SOURCE,
        "new primary at the fence, old one still running",
        live(&failover, &west.status),
        "Progressing",
        "WaitingForPeer: fence: waiting for the old primary",
    ));
    let west_at_fence = west.clone();
    east.pass(&failover, at(11), west.as_peer());
    cases.push(case(
        SOURCE,
        "old primary stopping its applications",
        live(&failover, &east.status),
        "Progressing",
        "Deactivating: suspend-schedule",
    ));
    let mut second = 12;
    while east.migrations.is_empty() {
        assert!(
            second < 40,
            "the old primary never created its final Migration"
        );
        east.pass(&failover, at(second), west.as_peer());
        second += 1;
    }

    // The final Migration fails: both sides stall, nothing starts.
    let (mut east_failed, mut west_failed) = (east.clone(), west.clone());
    east_failed.stork_finishes(
        "Failed",
        Some("volume pvc-mysql-data: snapshot failed"),
        at(60),
    );
    east_failed.pass(&failover, at(61), west_failed.as_peer());
    cases.push(case(
        SOURCE,
        "final migration failed (old primary)",
        live(&failover, &east_failed.status),
        "Degraded",
        "FinalMigrationFailed: final-migration: final Migration",
    ));
    west_failed.pass(&failover, at(62), east_failed.as_peer());
    cases.push(case(
        SOURCE,
        "final migration failed (new primary)",
        live(&failover, &west_failed.status),
        "Degraded",
        "PeerHandOverFailed: fence: us-east-1a could not hand over",
    ));

    // The final Migration succeeds: the old primary stands by, the new one starts and protects.
    east.stork_finishes("Successful", None, at(60));
    east.pass(&failover, at(61), west.as_peer());
    cases.push(case(
        SOURCE,
        "old primary handed over",
        live(&failover, &east.status),
        "Healthy",
        "this cluster is Standby",
    ));
    west.pass(&failover, at(62), east.as_peer());
    cases.push(case(
        SOURCE,
        "new primary starting its applications",
        live(&failover, &west.status),
        "Progressing",
        "Activating: activate",
    ));
    let mut second = 63;
    while west
        .status
        .transition
        .as_ref()
        .and_then(|t| t.finished_at.as_ref())
        .is_none()
    {
        assert!(second < 80, "the new primary never finished");
        west.pass(&failover, at(second), east.as_peer());
        second += 1;
    }
    cases.push(case(
        SOURCE,
        "new primary after the failover",
        live(&failover, &west.status),
        "Healthy",
        "Ready: this cluster is Primary",
    ));

    // The old primary does not answer: waited for, then Stalled with the command that declares the disaster.
    let unreachable = || Peer::Unreachable {
        error: "dial tcp 10.0.0.1:6443: connect: connection refused".into(),
    };
    let mut west = west_at_fence;
    west.pass(&failover, at(20), unreachable());
    cases.push(case(
        SOURCE,
        "new primary waiting for an unreachable peer",
        live(&failover, &west.status),
        "Progressing",
        "WaitingForPeer: fence: peer us-east-1a is unreachable",
    ));
    west.pass(&failover, at(20 + 301), unreachable());
    cases.push(case(
        SOURCE,
        "unreachable peer after peerStopTimeoutSeconds",
        live(&failover, &west.status),
        "Degraded",
        "PeerUnreachable: fence: peer us-east-1a is unreachable",
    ));

    // Metro: storage activation first (Stork's ClusterDomainUpdates).
    let metro = fixture_plan("postgres", EAST, 1);
    let mut east = Side::running(EAST);
    east.cluster_domains = Some(vec![
        DomainState {
            name: EAST.into(),
            active: true,
        },
        DomainState {
            name: WEST.into(),
            active: false,
        },
    ]);
    east.status.role = Some(drgitops::plan::Role::Primary);
    east.pass(&metro, at(0), Side::standby(WEST).as_peer());
    cases.push(case(
        SOURCE,
        "metro: waiting for Stork to activate a domain",
        live(&metro, &east.status),
        "Progressing",
        "WaitingForStorage: metro",
    ));
    cases
}

#[test]
fn argocd_health_of_planner_statuses() {
    check(&planner_cases());
}

// ---- statuses the plan controller writes ------------------------------------------------------------------------

/// An in-memory cluster with the DRPlan and Stork CRDs, namespace mysql and the reconciler's namespace.
async fn in_memory_cluster() -> FakeApiServer {
    let server = FakeApiServer::start().await.expect("in-memory API server");
    let crds: Api<CustomResourceDefinition> = Api::all(server.client());
    crds.create(&PostParams::default(), &drgitops::plan::crd::crd())
        .await
        .expect("DRPlan CRD");
    for doc in serde_yaml::Deserializer::from_str(&gitops_data("stork-crds.yaml")) {
        let value: Value = serde::Deserialize::deserialize(doc).expect("CRD yaml");
        if value.is_null() {
            continue;
        }
        let crd: CustomResourceDefinition = serde_json::from_value(value).expect("CRD");
        crds.create(&PostParams::default(), &crd)
            .await
            .expect("Stork CRD");
    }
    let namespaces: Api<Namespace> = Api::all(server.client());
    for name in [NS, "drgitops-system"] {
        let namespace: Namespace =
            serde_json::from_value(json!({"metadata": {"name": name}})).expect("namespace");
        namespaces
            .create(&PostParams::default(), &namespace)
            .await
            .expect("namespace created");
    }
    server
}

/// The Secrets of the fixture plan on `cluster`: the kubeconfig of `peer` (context `peer_name`) and the storage
/// endpoint.
async fn add_peer_secrets(cluster: &FakeApiServer, peer: &FakeApiServer, peer_name: &str) {
    let secrets: Api<Secret> = Api::namespaced(cluster.client(), NS);
    for (name, data) in [
        (
            "drgitops-peer",
            json!({"kubeconfig": peer.kubeconfig_named(peer_name)}),
        ),
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

fn plans(server: &FakeApiServer) -> Api<DynamicObject> {
    Api::namespaced_with(server.client(), NS, &ApiResource::erase::<DRPlan>(&()))
}

/// The DRPlan as Argo CD reads it from the cluster.
async fn live_plan(server: &FakeApiServer) -> Value {
    let plan = plans(server).get(NS).await.expect("plan mysql");
    serde_json::to_value(plan).expect("plan as JSON")
}

async fn patch_plan(server: &FakeApiServer, patch: Value) {
    plans(server)
        .patch(NS, &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .expect("plan patched");
}

fn reconciler(server: &FakeApiServer, domain: &str) -> Arc<Reconciler> {
    let mut options = ReconcilerOptions::new(&format!("argocd-health-{domain}"));
    options.cluster_domain = Some(domain.into());
    options.peer_timeout = Duration::from_secs(1);
    Reconciler::new(server.client(), options)
}

async fn controller_cases() -> Vec<Case> {
    const SOURCE: &str = "controller";
    let mut cases = Vec::new();
    let east = in_memory_cluster().await;
    let west = in_memory_cluster().await;
    add_peer_secrets(&east, &west, WEST).await;
    add_peer_secrets(&west, &east, EAST).await;
    // The plan as Argo CD applies it on both clusters (primary us-east-1a).
    let plan: DynamicObject =
        serde_yaml::from_str(&gitops_data("plans/mysql.yaml")).expect("fixture plan");
    for server in [&east, &west] {
        plans(server)
            .create(&PostParams::default(), &plan)
            .await
            .expect("plan created");
    }
    cases.push(case(
        SOURCE,
        "just applied, never reconciled",
        live_plan(&east).await,
        "Progressing",
        "waiting for the reconciler",
    ));
    let (east_reconciler, west_reconciler) = (reconciler(&east, EAST), reconciler(&west, WEST));
    east_reconciler.pass(false).await;
    west_reconciler.pass(false).await;
    cases.push(case(
        SOURCE,
        "primary in its role",
        live_plan(&east).await,
        "Healthy",
        "Protected: applications run here",
    ));
    cases.push(case(
        SOURCE,
        "standby in its role",
        live_plan(&west).await,
        "Healthy",
        "Standby: holding the pair",
    ));

    // A spec change applied but not yet reconciled, then reconciled.
    patch_plan(
        &east,
        json!({"spec": {"schedule": {"interval": {"intervalMinutes": 10}}}}),
    )
    .await;
    cases.push(case(
        SOURCE,
        "spec changed, not yet reconciled",
        live_plan(&east).await,
        "Progressing",
        "waiting for the reconciler to observe generation 2 (status is of 1)",
    ));
    east_reconciler.pass(false).await;

    // The peer's API server does not answer.
    west.faults().set_unreachable(true);
    east_reconciler.pass(false).await;
    cases.push(case(
        SOURCE,
        "primary whose peer does not answer",
        live_plan(&east).await,
        "Degraded",
        "PeerUnreachable: the peer cluster's API server does not answer",
    ));
    west.faults().set_unreachable(false);

    // The last successful migration is two hours old.
    let two_hours_ago = Timestamp::now() - jiff::SignedDuration::from_hours(2);
    plans(&east)
        .patch_status(
            NS,
            &PatchParams::default(),
            &Patch::Merge(&json!({"status": {"lastMigration": {
                "name": "mysql-interval-2026-11-22-100000",
                "status": "Successful",
                "finishedAt": two_hours_ago.to_string(),
                "from": EAST,
            }}})),
        )
        .await
        .expect("status patched");
    east_reconciler.pass(false).await;
    cases.push(case(
        SOURCE,
        "primary whose migrations are behind",
        live_plan(&east).await,
        "Degraded",
        "MigrationsBehind: the last successful migration",
    ));

    // Suspended by its annotation.
    patch_plan(
        &west,
        json!({"metadata": {"annotations": {"drgitops.dev/suspend": "true"}}}),
    )
    .await;
    west_reconciler.pass(false).await;
    cases.push(case(
        SOURCE,
        "suspended",
        live_plan(&west).await,
        "Suspended",
        "reconciliation suspended",
    ));
    patch_plan(
        &west,
        json!({"metadata": {"annotations": {"drgitops.dev/suspend": null}}}),
    )
    .await;

    // A transient API error: retried with backoff (phase Error, Reconciling=True).
    west.faults().fail_next(
        1,
        FaultMatch::verb_resource("patch", "migrationschedules"),
        500,
    );
    west_reconciler.pass(false).await;
    cases.push(case(
        SOURCE,
        "transient API error, retried",
        live_plan(&west).await,
        "Progressing",
        "Error: ",
    ));

    // A Secret the plan needs is missing.
    Api::<Secret>::namespaced(east.client(), NS)
        .delete("drgitops-peer-storage", &DeleteParams::default())
        .await
        .expect("secret deleted");
    east_reconciler.pass(false).await;
    cases.push(case(
        SOURCE,
        "missing Secret",
        live_plan(&east).await,
        "Degraded",
        "MissingSecret: Secret mysql/drgitops-peer-storage not found",
    ));

    // A plan that does not validate (as delivered by a broken commit).
    patch_plan(&east, json!({"spec": {"primary": "us-west-2a"}})).await;
    east_reconciler.pass(false).await;
    cases.push(case(
        SOURCE,
        "invalid plan",
        live_plan(&east).await,
        "Degraded",
        "InvalidPlan: ",
    ));
    cases
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn argocd_health_of_controller_statuses() {
    check(&controller_cases().await);
}

// ---- the project's status fixtures ---------------------------------------------------------------------------

#[test]
fn argocd_health_of_status_fixtures() {
    let text = read("tests/data/failover/status-plans.yaml");
    let objects: Vec<Value> = serde_yaml::Deserializer::from_str(&text)
        .map(|doc| serde::Deserialize::deserialize(doc).expect("yaml document"))
        .filter(|v: &Value| !v.is_null())
        .collect();
    let find = |name: &str| {
        objects
            .iter()
            .find(|o| o["metadata"]["name"] == name)
            .unwrap_or_else(|| panic!("fixture plan {name}"))
            .clone()
    };
    // The rows for statuses without conditions that no current writer produces, on the fixture with its phase
    // edited: a stall still needs a person, anything unknown is not taken for healthy.
    let with_phase = |phase: &str| {
        let mut object = find("mysql");
        object["status"]["phase"] = phase.into();
        object
    };
    check(&[
        case(
            "fixture",
            "mysql: transition at the fence (no conditions)",
            find("mysql"),
            "Progressing",
            "WaitingForPeer",
        ),
        case(
            "fixture",
            "shop: transition finished (no conditions)",
            find("shop"),
            "Healthy",
            "Ready",
        ),
        case(
            "fixture, edited",
            "mysql: phase Stalled (no conditions)",
            with_phase("Stalled"),
            "Degraded",
            "Stalled",
        ),
        case(
            "fixture, edited",
            "mysql: phase Error (no conditions)",
            with_phase("Error"),
            "Progressing",
            "Error: waiting for the reconciler",
        ),
    ]);
}
