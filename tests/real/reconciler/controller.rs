//! The plan controller without the git source (DRPlans applied by Argo CD or Flux), and a primary whose peer's
//! API server stops answering. Argo CD applies as admin; the reconciler runs as its shipped ServiceAccount.

use drgitops::reconcile::runner::Reconciler;
use kube::api::{Api, Patch, PatchParams};
use serde_json::Value;
use testkit::{EAST, WEST};

use super::support::*;

async fn apply_plan_as_argocd(client: &kube::Client, file: &str) {
    let object: Value = serde_yaml::from_str(&read_data(file)).expect("plan yaml");
    apply_as_argocd(client, &object).await;
}

/// Server-side applies a DRPlan as Argo CD would, straight through the API (no webhook in front).
async fn apply_as_argocd(client: &kube::Client, object: &Value) {
    let namespace = object["metadata"]["namespace"]
        .as_str()
        .expect("namespace")
        .to_string();
    let name = object["metadata"]["name"]
        .as_str()
        .expect("name")
        .to_string();
    let api: Api<drgitops::plan::DRPlan> = Api::namespaced(client.clone(), &namespace);
    api.patch(
        &name,
        &PatchParams::apply("argocd-controller"),
        &Patch::Apply(object),
    )
    .await
    .expect("applied");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plans_from_argocd_are_reconciled_without_a_git_url() {
    let (east, west) = pair().await;
    let (admin, west_admin) = (east.client().await, west.client().await);
    for client in [&admin, &west_admin] {
        apply_plan_as_argocd(client, "plans/mysql.yaml").await;
    }
    for cluster in [&east, &west] {
        let opts = controller_options(Some(&cluster.domain));
        let outcome = Reconciler::new(reconciler_client(cluster).await, opts)
            .pass(true)
            .await;
        assert!(outcome.ok, "{}: {:?}", cluster.domain, outcome.errors);
    }
    let primary = stork(&admin, "MigrationSchedule", "mysql", "mysql")
        .await
        .expect("schedule");
    assert_eq!(primary["spec"]["suspend"], false);
    let standby = stork(&west_admin, "MigrationSchedule", "mysql", "mysql")
        .await
        .expect("schedule");
    assert_eq!(standby["spec"]["suspend"], true);
    let plan = plan(&west_admin, "mysql", "mysql").await.expect("plan");
    assert_eq!(plan["status"]["role"], "Standby");
    assert_eq!(condition(&plan, "Ready").expect("Ready")["status"], "True");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_primary_suspends_its_schedule_while_the_peer_is_unreachable() {
    // The peer is reached through a proxy that stops letting anything through, as when its API server stops
    // answering.
    let (east, peer) = tokio::join!(testkit::reconcile::reconciler_cluster(EAST), peer());
    let proxy = testenv::faults::FaultProxy::start(
        peer.env
            .url()
            .trim_start_matches("https://")
            .parse()
            .expect("kube-apiserver address"),
    )
    .expect("fault proxy");
    testkit::reconcile::add_peer_secrets(
        &east,
        peer,
        &testkit::reconcile::PLAN_NAMESPACES,
        Some(&format!("https://{}", proxy.addr())),
    )
    .await;
    let admin = east.client().await;
    apply_plan_as_argocd(&admin, "plans/mysql.yaml").await;
    let mut opts = controller_options(Some(EAST));
    opts.peer_timeout = std::time::Duration::from_secs(1);
    let reconciler = Reconciler::new(reconciler_client(&east).await, opts);
    assert!(reconciler.pass(true).await.ok);
    let running = stork(&admin, "MigrationSchedule", "mysql", "mysql")
        .await
        .expect("schedule");
    assert_eq!(running["spec"]["suspend"], false);

    proxy.set_refuse(true);
    proxy.reset_all();
    let outcome = reconciler.pass(true).await;
    assert!(!outcome.ok, "an unreachable peer is reported");
    let suspended = stork(&admin, "MigrationSchedule", "mysql", "mysql")
        .await
        .expect("schedule");
    assert_eq!(suspended["spec"]["suspend"], true);
    let plan = plan(&admin, "mysql", "mysql").await.expect("plan");
    assert_eq!(plan["status"]["role"], "Primary");
    assert_eq!(plan["status"]["phase"], "Degraded");
    let ready = condition(&plan, "Ready").expect("Ready");
    assert_eq!(ready["status"], "False");
    assert_eq!(ready["reason"], "PeerUnreachable");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_suspended_plan_is_left_alone_until_resumed() {
    let east = east().await;
    let admin = east.client().await;
    apply_plan_as_argocd(&admin, "plans/mysql.yaml").await;
    let plans: Api<drgitops::plan::DRPlan> = Api::namespaced(admin.clone(), "mysql");
    let suspend = |value: Option<&str>| serde_json::json!({"metadata": {"annotations": {"drgitops.dev/suspend": value}}});
    plans
        .patch(
            "mysql",
            &PatchParams::default(),
            &Patch::Merge(&suspend(Some("true"))),
        )
        .await
        .expect("suspended");
    let opts = controller_options(Some(EAST));
    let reconciler = Reconciler::new(reconciler_client(&east).await, opts);

    assert!(reconciler.pass(true).await.ok);
    assert!(
        stork(&admin, "MigrationSchedule", "mysql", "mysql")
            .await
            .is_none(),
        "nothing applied"
    );
    let suspended = plan(&admin, "mysql", "mysql").await.expect("plan");
    assert_eq!(suspended["status"]["phase"], "Suspended");
    assert_eq!(
        condition(&suspended, "Ready").expect("Ready")["reason"],
        "Suspended"
    );

    plans
        .patch(
            "mysql",
            &PatchParams::default(),
            &Patch::Merge(&suspend(None)),
        )
        .await
        .expect("resumed");
    assert!(reconciler.pass(true).await.ok);
    assert!(
        stork(&admin, "MigrationSchedule", "mysql", "mysql")
            .await
            .is_some(),
        "applied once resumed"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cluster_outside_the_plan_renders_nothing() {
    let east = east().await;
    let admin = east.client().await;
    apply_plan_as_argocd(&admin, "plans/mysql.yaml").await;
    let opts = controller_options(Some("eu-west-1a"));
    let outcome = Reconciler::new(reconciler_client(&east).await, opts)
        .pass(true)
        .await;
    assert!(!outcome.ok);
    assert!(
        stork(&admin, "ClusterPair", "mysql", "remotecluster")
            .await
            .is_none()
    );
    let plan = plan(&admin, "mysql", "mysql").await.expect("plan");
    let stalled = condition(&plan, "Stalled").expect("Stalled");
    assert_eq!(stalled["reason"], "DomainNotInPlan");
    assert!(
        stalled["message"]
            .as_str()
            .unwrap_or_default()
            .contains("eu-west-1a"),
        "{stalled}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_local_domain_comes_from_stork_when_not_given() {
    let east = east().await;
    let admin = east.client().await;
    apply_plan_as_argocd(&admin, "plans/mysql.yaml").await;
    let (resource, _) = drgitops::cluster::apply::api_resource(
        drgitops::stork::keys::STORK_API_VERSION,
        "ClusterDomainsStatus",
    )
    .expect("known kind");
    let statuses: Api<kube::api::DynamicObject> = Api::all_with(admin.clone(), &resource);
    let status: kube::api::DynamicObject = serde_json::from_value(serde_json::json!({
        "apiVersion": "stork.libopenstorage.org/v1alpha1", "kind": "ClusterDomainsStatus",
        "metadata": {"name": "px-cluster-1"},
        "status": {"localDomain": EAST, "clusterDomainInfos": [
            {"name": EAST, "state": "Active", "syncStatus": "InSync"},
            {"name": WEST, "state": "Active", "syncStatus": "InSync"}]}
    }))
    .expect("object");
    statuses
        .create(&kube::api::PostParams::default(), &status)
        .await
        .expect("created");

    let opts = controller_options(None);
    assert!(opts.cluster_domain.is_none());
    let outcome = Reconciler::new(reconciler_client(&east).await, opts)
        .pass(true)
        .await;
    assert!(outcome.ok, "{:?}", outcome.errors);
    let plan = plan(&admin, "mysql", "mysql").await.expect("plan");
    assert_eq!(plan["status"]["localDomain"], EAST);
    assert_eq!(plan["status"]["role"], "Primary");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fields_stork_owns_are_left_alone() {
    let east = east().await;
    let admin = east.client().await;
    apply_plan_as_argocd(&admin, "plans/mysql.yaml").await;
    let opts = controller_options(Some(EAST));
    let reconciler = Reconciler::new(reconciler_client(&east).await, opts);
    assert!(reconciler.pass(true).await.ok);

    // Stork writes as Stork does: a full-object update with its finalizer, a persisted default, status, and a
    // suspension of its own (autoSuspend).
    let (resource, _) = drgitops::cluster::apply::api_resource(
        drgitops::stork::keys::STORK_API_VERSION,
        "MigrationSchedule",
    )
    .expect("known kind");
    let schedules: Api<kube::api::DynamicObject> =
        Api::namespaced_with(admin.clone(), "mysql", &resource);
    let mut live = schedules.get("mysql").await.expect("schedule");
    live.metadata.finalizers = Some(vec!["stork.libopenstorage.org/finalizer-cleanup".into()]);
    live.data["spec"]["suspend"] = serde_json::json!(true);
    live.data["spec"]["template"]["spec"]["skipDeletedNamespaces"] = serde_json::json!(true);
    live.data["status"] = serde_json::json!({"items": {"Interval": [{"name": "mysql-interval-1", "status": "Successful"}]}});
    schedules
        .replace(
            "mysql",
            &kube::api::PostParams {
                field_manager: Some("stork".into()),
                ..Default::default()
            },
            &live,
        )
        .await
        .expect("stork's update");

    assert!(reconciler.pass(true).await.ok);
    let after = stork(&admin, "MigrationSchedule", "mysql", "mysql")
        .await
        .expect("schedule");
    assert_eq!(
        after["spec"]["suspend"], true,
        "a suspension Stork made is not undone"
    );
    assert_eq!(
        after["metadata"]["finalizers"],
        serde_json::json!(["stork.libopenstorage.org/finalizer-cleanup"])
    );
    assert_eq!(
        after["spec"]["template"]["spec"]["skipDeletedNamespaces"], true,
        "persisted defaults stay"
    );
    assert_eq!(
        after["status"]["items"]["Interval"][0]["status"], "Successful",
        "Stork's status stays"
    );
    assert_eq!(
        after["spec"]["template"]["spec"]["startApplications"],
        false
    );
}

/// The mysql fixture as plan `postgres/postgres`, without `spec.clusterPair.storageSecret`: an async plan that
/// would render a volume-copying MigrationSchedule over a ClusterPair without storage options.
fn plan_without_storage_secret() -> Value {
    let mut object: Value =
        serde_yaml::from_str(&read_data("plans/mysql.yaml")).expect("plan yaml");
    object["metadata"] = serde_json::json!({"name": "postgres", "namespace": "postgres"});
    object["spec"]["clusterPair"]
        .as_object_mut()
        .expect("clusterPair")
        .remove("storageSecret");
    object
}

async fn rendered(client: &kube::Client, namespace: &str, plan: &str) -> Vec<String> {
    let mut found = Vec::new();
    for (kind, name) in [
        ("ClusterPair", "remotecluster"),
        ("NamespacedSchedulePolicy", plan),
        ("MigrationSchedule", plan),
    ] {
        if stork(client, kind, namespace, name).await.is_some() {
            found.push(format!("{kind} {namespace}/{name}"));
        }
    }
    found
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invalid_plan_in_the_cluster_stalls_alone_and_recovers_when_fixed() {
    let east = east().await;
    let admin = east.client().await;
    apply_plan_as_argocd(&admin, "plans/mysql.yaml").await;
    // Stored straight through the API, as with the webhook off or a plan older than the rule.
    apply_as_argocd(&admin, &plan_without_storage_secret()).await;
    let opts = controller_options(Some(EAST));
    let reconciler = Reconciler::new(reconciler_client(&east).await, opts);

    let outcome = reconciler.pass(true).await;
    assert!(!outcome.ok, "the invalid plan is reported");
    assert!(
        outcome
            .errors
            .iter()
            .all(|e| e.starts_with("DRPlan postgres/postgres")),
        "{:?}",
        outcome.errors
    );
    let invalid = plan(&admin, "postgres", "postgres").await.expect("plan");
    assert_eq!(invalid["status"]["phase"], "Stalled");
    let stalled = condition(&invalid, "Stalled").expect("Stalled");
    assert_eq!(stalled["status"], "True");
    assert_eq!(stalled["reason"], "InvalidPlan");
    let message = stalled["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("spec.clusterPair.storageSecret: absent in async mode"),
        "{message}"
    );
    let ready = condition(&invalid, "Ready").expect("Ready");
    assert_eq!(
        (&ready["status"], &ready["reason"]),
        (&"False".into(), &"InvalidPlan".into())
    );
    assert_eq!(
        rendered(&admin, "postgres", "postgres").await,
        Vec::<String>::new(),
        "nothing rendered for the invalid plan"
    );
    assert!(
        warning_names(
            &admin,
            "postgres",
            "InvalidPlan",
            "spec.clusterPair.storageSecret"
        )
        .await,
        "a Warning Event names the field"
    );

    protected_plan(&admin, "mysql", "mysql").await;
    assert_eq!(rendered(&admin, "mysql", "mysql").await.len(), 3);

    // The fix is a new generation of the plan: the Secret named, as the validator asked.
    let plans: Api<drgitops::plan::DRPlan> = Api::namespaced(admin.clone(), "postgres");
    plans
        .patch(
            "postgres",
            &PatchParams::default(),
            &Patch::Merge(serde_json::json!({"spec": {"clusterPair": {
                "storageSecret": {"name": "drgitops-peer-storage"}}}})),
        )
        .await
        .expect("fixed");
    let outcome = reconciler.pass(true).await;
    assert!(outcome.ok, "{:?}", outcome.errors);
    let fixed = protected_plan(&admin, "postgres", "postgres").await;
    assert_eq!(
        condition(&fixed, "Stalled").expect("Stalled")["status"],
        "False"
    );
    assert_eq!(rendered(&admin, "postgres", "postgres").await.len(), 3);
    let schedule = stork(&admin, "MigrationSchedule", "postgres", "postgres")
        .await
        .expect("schedule");
    assert_eq!(schedule["spec"]["suspend"], false);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invalid_plan_starts_no_transition() {
    let east = east().await;
    let admin = east.client().await;
    web_deployment(&admin, 2, None).await;
    apply_plan_as_argocd(&admin, "plans/mysql.yaml").await;
    let opts = controller_options(Some(EAST));
    let reconciler = Reconciler::new(reconciler_client(&east).await, opts);
    assert!(reconciler.pass(true).await.ok);

    // A failover to west in the same change as an invalid field: east must not stand down for it.
    let mut failover: Value =
        serde_yaml::from_str(&read_data("plans/mysql.yaml")).expect("plan yaml");
    failover["spec"]["primary"] = WEST.into();
    failover["spec"]["schedule"]["interval"]["intervalMinutes"] = 0.into();
    apply_as_argocd(&admin, &failover).await;
    assert!(!reconciler.pass(true).await.ok);
    let stalled = plan(&admin, "mysql", "mysql").await.expect("plan");
    assert_eq!(stalled["status"]["phase"], "Stalled");
    assert_eq!(stalled["status"]["role"], "Primary", "the role held stays");
    let message = condition(&stalled, "Stalled").expect("Stalled")["message"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(
        message.contains("spec.schedule.interval.intervalMinutes"),
        "{message}"
    );
    let deployments: Api<k8s_openapi::api::apps::v1::Deployment> =
        Api::namespaced(admin.clone(), "mysql");
    let web = deployments.get("web").await.expect("web");
    assert_eq!(web.spec.and_then(|s| s.replicas), Some(2), "still running");
    let schedule = stork(&admin, "MigrationSchedule", "mysql", "mysql")
        .await
        .expect("schedule");
    assert_eq!(schedule["spec"]["suspend"], false, "still protecting");

    // Fixed, the failover proceeds: east stands down.
    failover["spec"]["schedule"]["interval"]["intervalMinutes"] = 15.into();
    apply_as_argocd(&admin, &failover).await;
    reconciler.pass(true).await;
    let web = deployments.get("web").await.expect("web");
    assert_eq!(web.spec.and_then(|s| s.replicas), Some(0), "stood down");
    let stood_down = plan(&admin, "mysql", "mysql").await.expect("plan");
    assert_eq!(stood_down["status"]["role"], "Standby");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plan_that_does_not_read_stalls_alone_and_keeps_what_it_rendered() {
    let east = east().await;
    let admin = east.client().await;
    apply_plan_as_argocd(&admin, "plans/mysql.yaml").await;
    let mut postgres = plan_without_storage_secret();
    postgres["spec"]["clusterPair"]["storageSecret"] =
        serde_json::json!({"name": "drgitops-peer-storage"});
    apply_as_argocd(&admin, &postgres).await;
    let opts = controller_options(Some(EAST));
    let reconciler = Reconciler::new(reconciler_client(&east).await, opts);
    let outcome = reconciler.pass(true).await;
    assert!(outcome.ok, "{:?}", outcome.errors);
    assert_eq!(rendered(&admin, "postgres", "postgres").await.len(), 3);

    // A string where a number belongs, stored while an older CRD schema let it through: the object no longer
    // reads as a DRPlan.
    store_under_older_schema(
        &east,
        "postgres",
        "postgres",
        serde_json::json!({"spec": {"schedule": {"interval": {"intervalMinutes": "often"}}}}),
    )
    .await;
    let outcome = reconciler.pass(true).await;
    assert!(!outcome.ok, "the unreadable plan is reported");
    let broken = plan(&admin, "postgres", "postgres").await.expect("plan");
    assert_eq!(broken["status"]["phase"], "Stalled");
    let stalled = condition(&broken, "Stalled").expect("Stalled");
    assert_eq!(
        (&stalled["status"], &stalled["reason"]),
        (&"True".into(), &"InvalidPlan".into())
    );
    let message = stalled["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("spec.schedule.interval.intervalMinutes: invalid type: string \"often\""),
        "{message}"
    );
    assert_eq!(broken["status"]["role"], "Primary", "the role held stays");
    assert!(
        warning_names(
            &admin,
            "postgres",
            "InvalidPlan",
            "spec.schedule.interval.intervalMinutes"
        )
        .await,
        "a Warning Event on the unreadable plan names the field"
    );
    assert_eq!(
        rendered(&admin, "postgres", "postgres").await.len(),
        3,
        "what the plan rendered is not pruned while it is being fixed"
    );
    protected_plan(&admin, "mysql", "mysql").await;

    patch_plan(
        &admin,
        "postgres",
        "postgres",
        serde_json::json!({"spec": {"schedule": {"interval": {"intervalMinutes": 15}}}}),
    )
    .await;
    let outcome = reconciler.pass(true).await;
    assert!(outcome.ok, "{:?}", outcome.errors);
    protected_plan(&admin, "postgres", "postgres").await;
}

/// The plan `namespace/name`, after checking that it is Protected and Ready.
async fn protected_plan(client: &kube::Client, namespace: &str, name: &str) -> serde_json::Value {
    let plan = plan(client, namespace, name).await.expect("plan");
    assert_eq!(plan["status"]["phase"], "Protected", "{plan}");
    assert_eq!(
        condition(&plan, "Ready").expect("Ready")["status"],
        "True",
        "{plan}"
    );
    plan
}
