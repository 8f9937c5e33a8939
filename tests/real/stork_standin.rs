//! `testkit::migration`, the stand-in of Stork's Migration and MigrationSchedule controllers, on two real
//! clusters: what the planned-failover tests rely on it for, asserted as a person would see it with kubectl on
//! the destination. One pair of control planes for all of it (they are the expensive part).

use std::time::Duration;

use serde_json::Value;
use testkit::migration::{StorkStandIn, migration_status};
use testkit::{Cluster, EAST, WEST, eventually, web_deployment};

const NS: &str = "shop";
const WAIT: Duration = Duration::from_secs(60);

/// The application on the source: configuration, a Service, a CronJob, a Bound volume, and a ConfigMap the
/// migrations exclude by label.
const SOURCE: &str = r#"
apiVersion: stork.libopenstorage.org/v1alpha1
kind: ClusterPair
metadata: {name: remotecluster, namespace: shop}
spec: {options: {}}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: settings, namespace: shop}
data: {colour: blue}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: stable, namespace: shop}
data: {size: large}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: retired, namespace: shop}
data: {old: "true"}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: local-only, namespace: shop, labels: {drtest: skip}}
data: {here: only}
---
apiVersion: v1
kind: Secret
metadata: {name: creds, namespace: shop}
stringData: {password: hunter2}
---
apiVersion: v1
kind: Service
metadata: {name: web, namespace: shop}
spec:
  selector: {app: web}
  ports: [{port: 80}]
---
apiVersion: batch/v1
kind: CronJob
metadata: {name: report, namespace: shop}
spec:
  schedule: "0 * * * *"
  jobTemplate:
    spec:
      template:
        spec:
          restartPolicy: Never
          containers: [{name: report, image: registry.example/report:1}]
---
apiVersion: v1
kind: PersistentVolume
metadata: {name: shop-data}
spec:
  capacity: {storage: 1Gi}
  accessModes: [ReadWriteOnce]
  storageClassName: manual
  hostPath: {path: /tmp/shop-data}
  claimRef: {namespace: shop, name: data}
---
apiVersion: v1
kind: PersistentVolumeClaim
metadata: {name: data, namespace: shop}
spec:
  storageClassName: manual
  volumeName: shop-data
  accessModes: [ReadWriteOnce]
  resources: {requests: {storage: 1Gi}}
"#;

fn migration(name: &str, spec: &str) -> String {
    format!(
        "apiVersion: stork.libopenstorage.org/v1alpha1\nkind: Migration\nmetadata: {{name: {name}, namespace: {NS}}}\nspec:\n  namespaces: [{NS}]\n{spec}"
    )
}

/// `kubectl get ARGS -o json` in the namespace, parsed.
fn json(cluster: &Cluster, args: &[&str]) -> Value {
    let mut all = vec!["-n", NS, "get"];
    all.extend_from_slice(args);
    all.extend_from_slice(&["-o", "json"]);
    serde_json::from_str(&cluster.kubectl(&all)).expect("kubectl prints JSON")
}

fn exists(cluster: &Cluster, kind: &str, name: &str) -> bool {
    cluster
        .kubectl_output(&["-n", NS, "get", kind, name], None)
        .status
        .success()
}

fn annotation<'a>(object: &'a Value, key: &str) -> &'a str {
    object["metadata"]["annotations"][key]
        .as_str()
        .unwrap_or_default()
}

/// The messages of the Events with `reason` on the object named `name`.
fn event_messages(cluster: &Cluster, name: &str, reason: &str) -> String {
    let selector = format!("involvedObject.name={name},reason={reason}");
    cluster.kubectl(&[
        "-n",
        NS,
        "get",
        "events",
        "--field-selector",
        &selector,
        "-o",
        "jsonpath={.items[*].message}",
    ])
}

async fn await_event(cluster: &Cluster, name: &str, reason: &str, text: &str) {
    let found = eventually(WAIT, || async {
        event_messages(cluster, name, reason)
            .contains(text)
            .then_some(())
    })
    .await;
    assert!(
        found.is_some(),
        "no Event {reason} with {text:?} on {name}; its {reason} Events: {:?}",
        event_messages(cluster, name, reason)
    );
}

/// Waits until Migration `name` is in stage `Final` and returns its status.
async fn finished(client: &kube::Client, name: &str) -> Value {
    let status = eventually(WAIT, || async {
        let status = migration_status(client, NS, name).await?;
        (status["stage"] == "Final").then_some(status)
    })
    .await;
    match status {
        Some(status) => status,
        None => panic!(
            "Migration {name} did not finish: {:#}",
            migration_status(client, NS, name).await.unwrap_or_default()
        ),
    }
}

fn resource<'a>(status: &'a Value, kind: &str, name: &str) -> Option<&'a Value> {
    status["resources"]
        .as_array()?
        .iter()
        .find(|r| r["kind"] == kind && r["name"] == name)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn migrations_and_schedules_copy_the_application_to_the_other_cluster() {
    let (east, west) = tokio::join!(Cluster::start(EAST), Cluster::start(WEST));
    for cluster in [&east, &west] {
        cluster.install_reconciler();
    }
    let client = east.client().await;
    let stork = StorkStandIn::start(client.clone(), west.client().await);
    east.kubectl(&["create", "namespace", NS]);
    east.apply_yaml(SOURCE);
    east.apply_yaml(&web_deployment(NS, 3, None));
    let bound = eventually(WAIT, || async {
        (east.get(&["-n", NS, "pvc", "data"], "{.status.phase}") == "Bound").then_some(())
    })
    .await;
    assert!(bound.is_some(), "the source's PVC never bound");

    // A first migration, volumes included (the default): everything but the excluded ConfigMap arrives, the
    // applications stopped.
    east.apply_yaml(&migration(
        "first",
        "  clusterPair: remotecluster\n  excludeSelectors: {drtest: skip}\n",
    ));
    let first = finished(&client, "first").await;
    assert_eq!(first["status"], "Successful", "{first:#}");
    assert_eq!(first["volumes"][0]["persistentVolumeClaim"], "data");
    assert_eq!(first["volumes"][0]["volume"], "shop-data");
    assert_eq!(first["volumes"][0]["status"], "Successful");
    assert!(first["volumeMigrationFinishTimestamp"].is_string());
    assert!(first["resourceMigrationFinishTimestamp"].is_string());
    let deployment = resource(&first, "Deployment", "web").expect("the Deployment in resources[]");
    assert_eq!(
        (
            &deployment["group"],
            &deployment["version"],
            &deployment["status"]
        ),
        (&"apps".into(), &"v1".into(), &"Successful".into())
    );
    assert_eq!(
        resource(&first, "ConfigMap", "settings").expect("settings")["group"],
        "core"
    );
    assert!(resource(&first, "ConfigMap", "local-only").is_none());
    assert!(resource(&first, "ConfigMap", "kube-root-ca.crt").is_none());
    assert!(resource(&first, "ReplicaSet", "").is_none());
    assert_eq!(
        first["summary"]["numOfMigratedResources"],
        first["summary"]["totalNumberOfResources"]
    );
    // Stork persists its defaults in the spec it writes back.
    let spec = json(&east, &["migration", "first"])["spec"].clone();
    assert_eq!(
        (&spec["includeVolumes"], &spec["startApplications"]),
        (&true.into(), &false.into())
    );

    let web = json(&west, &["deployment", "web"]);
    assert_eq!(web["spec"]["replicas"], 0, "{web:#}");
    assert_eq!(
        annotation(&web, "stork.libopenstorage.org/migrationReplicas"),
        "3"
    );
    assert_eq!(
        web["metadata"]["labels"]["stork.libopenstorage.org/migrated"],
        "true"
    );
    assert_eq!(
        annotation(&web, "stork.libopenstorage.org/migrationName"),
        "first"
    );
    assert_eq!(
        annotation(&web, "stork.libopenstorage.org/migrationNamespace"),
        NS
    );
    let time = annotation(&web, "stork.libopenstorage.org/migrationTime");
    assert!(
        time.len() == 17 && time.as_bytes()[10] == b'-',
        "migrationTime {time:?} is not 2006-01-02-150405"
    );
    assert_eq!(
        west.get(&["-n", NS, "cronjob", "report"], "{.spec.suspend}"),
        "true"
    );
    assert_eq!(
        west.get(&["-n", NS, "secret", "creds"], "{.data.password}"),
        "aHVudGVyMg=="
    );
    let service = json(&west, &["service", "web"]);
    assert_eq!(
        annotation(&service, "stork.libopenstorage.org/migrated"),
        "true"
    );
    assert!(
        service["spec"]["clusterIP"].is_string(),
        "west allocated its own IP"
    );
    let pvc = json(&west, &["pvc", "data"]);
    assert!(!annotation(&pvc, "stork.libopenstorage.org/resource-hash").is_empty());
    assert!(!exists(&west, "configmap", "local-only"));
    let first_version = json(&east, &["migration", "first"])["metadata"]["resourceVersion"].clone();

    // Changes on the source arrive with the next migration: a new ConfigMap, a changed one (re-created), an
    // unchanged one left alone, a deleted one purged.
    let uid = |name: &str| json(&west, &["configmap", name])["metadata"]["uid"].clone();
    let (settings_uid, stable_uid) = (uid("settings"), uid("stable"));
    east.kubectl(&[
        "-n",
        NS,
        "create",
        "configmap",
        "marker",
        "--from-literal=at=second",
    ]);
    east.kubectl(&[
        "-n",
        NS,
        "patch",
        "configmap",
        "settings",
        "--type=merge",
        "-p",
        r#"{"data":{"colour":"green"}}"#,
    ]);
    east.kubectl(&["-n", NS, "delete", "configmap", "retired"]);
    assert!(
        !exists(&west, "configmap", "marker"),
        "nothing arrives without a migration"
    );
    east.apply_yaml(&migration(
        "second",
        "  clusterPair: remotecluster\n  includeVolumes: false\n  purgeDeletedResources: true\n  excludeSelectors: {drtest: skip}\n",
    ));
    let second = finished(&client, "second").await;
    assert_eq!(second["status"], "Successful", "{second:#}");
    assert!(second["volumes"].is_null());
    assert_eq!(
        west.get(&["-n", NS, "configmap", "marker"], "{.data.at}"),
        "second"
    );
    assert_eq!(
        west.get(&["-n", NS, "configmap", "settings"], "{.data.colour}"),
        "green"
    );
    assert_ne!(
        uid("settings"),
        settings_uid,
        "a changed object is re-created"
    );
    assert_eq!(
        uid("stable"),
        stable_uid,
        "an unchanged object is left alone"
    );
    assert!(!exists(&west, "configmap", "retired"), "purged");
    assert_eq!(
        resource(&second, "ConfigMap", "retired").expect("purge recorded")["status"],
        "Purged"
    );

    // Failing on request: with volumes, the reason on each volume and in a Warning Event; without, in the Event.
    stork.fail_migrations(Some("replication link down"));
    east.apply_yaml(&migration("broken", "  clusterPair: remotecluster\n"));
    east.apply_yaml(&migration(
        "broken-metro",
        "  clusterPair: remotecluster\n  includeVolumes: false\n",
    ));
    let broken = finished(&client, "broken").await;
    assert_eq!(broken["status"], "Failed", "{broken:#}");
    assert_eq!(broken["volumes"][0]["status"], "Failed");
    assert!(
        broken["volumes"][0]["reason"]
            .as_str()
            .unwrap_or_default()
            .ends_with("replication link down")
    );
    await_event(&east, "broken", "Failed", "replication link down").await;
    let metro = finished(&client, "broken-metro").await;
    assert_eq!(metro["status"], "Failed", "{metro:#}");
    await_event(&east, "broken-metro", "Failed", "replication link down").await;
    stork.fail_migrations(None);

    // A Migration naming a ClusterPair that does not exist is reported and waits, as Stork's does.
    east.apply_yaml(&migration(
        "unpaired",
        "  clusterPair: nowhere\n  includeVolumes: false\n",
    ));
    await_event(
        &east,
        "unpaired",
        "Failed",
        r#"clusterpairs.stork.libopenstorage.org "nowhere" not found"#,
    )
    .await;
    let unpaired = migration_status(&client, NS, "unpaired")
        .await
        .expect("status");
    assert_ne!(unpaired["stage"], "Final", "{unpaired:#}");

    // A schedule: its static copy on the destination, a triggered child recorded in its status.
    east.apply_yaml(
        r#"
apiVersion: stork.libopenstorage.org/v1alpha1
kind: MigrationSchedule
metadata: {name: shop, namespace: shop}
spec:
  schedulePolicyName: default-migration-policy
  autoSuspend: true
  template:
    spec:
      clusterPair: remotecluster
      namespaces: [shop]
      includeVolumes: false
      excludeSelectors: {drtest: skip}
"#,
    );
    let copy = eventually(WAIT, || async {
        let out = west.kubectl_output(
            &["-n", NS, "get", "migrationschedule", "shop", "-o", "json"],
            None,
        );
        out.status
            .success()
            .then(|| serde_json::from_slice::<Value>(&out.stdout).ok())
            .flatten()
    })
    .await
    .expect("a static copy on the destination");
    assert_eq!(
        annotation(&copy, "stork.libopenstorage.org/static-copy"),
        "true"
    );
    assert!(!annotation(&copy, "stork.libopenstorage.org/resource-hash").is_empty());
    assert_eq!(copy["spec"]["suspend"], true);
    assert_eq!(
        copy["spec"]["template"]["spec"]["clusterPair"],
        "remotecluster"
    );

    let started = stork.trigger_schedules().await;
    assert_eq!(started.len(), 1, "{started:?}");
    let child = started[0]
        .strip_prefix("shop/")
        .expect("namespace/name")
        .to_string();
    assert!(child.starts_with("shop-interval-"), "{child}");
    let object = json(&east, &["migration", &child]);
    assert_eq!(
        object["metadata"]["ownerReferences"][0]["kind"],
        "MigrationSchedule"
    );
    assert_eq!(object["metadata"]["ownerReferences"][0]["name"], "shop");
    assert_eq!(
        annotation(&object, "stork.libopenstorage.org/migration-schedule-name"),
        "shop"
    );
    let recorded = eventually(WAIT, || async {
        let schedule = json(&east, &["migrationschedule", "shop"]);
        let item = schedule["status"]["items"]["Interval"][0].clone();
        (item["status"] == "Successful").then_some(item)
    })
    .await
    .expect("the child recorded Successful in status.items.Interval");
    assert_eq!(recorded["name"], child.as_str());
    assert!(recorded["creationTimestamp"].is_string() && recorded["finishTimestamp"].is_string());

    // A held child keeps the schedule from starting another; once the destination's copy is activated, the
    // child fails and autoSuspend suspends the schedule.
    stork.hold_migrations(true);
    let held = stork.trigger_schedules().await;
    assert_eq!(held.len(), 1, "{held:?}");
    let held = held[0]
        .strip_prefix("shop/")
        .expect("namespace/name")
        .to_string();
    let in_flight = eventually(WAIT, || async {
        let status = migration_status(&client, NS, &held).await?;
        (status["stage"] == "Applications" && status["resources"].is_array()).then_some(status)
    })
    .await
    .expect("the held child in flight");
    assert_eq!(in_flight["resources"][0]["status"], "InProgress");
    assert!(
        stork.trigger_schedules().await.is_empty(),
        "one child at a time"
    );
    west.kubectl(&[
        "-n",
        NS,
        "patch",
        "migrationschedule",
        "shop",
        "--type=merge",
        "-p",
        r#"{"status":{"applicationActivated":true}}"#,
    ]);
    let failed = finished(&client, &held).await;
    assert_eq!(failed["status"], "Failed", "{failed:#}");
    await_event(
        &east,
        &held,
        "Failed",
        "migrated applications are active on remote cluster",
    )
    .await;
    await_event(
        &east,
        "shop",
        "Suspended",
        "Suspending migration schedule since migrated apps on remote cluster are active",
    )
    .await;
    assert_eq!(
        east.get(&["-n", NS, "migrationschedule", "shop"], "{.spec.suspend}"),
        "true"
    );
    stork.hold_migrations(false);
    assert!(
        stork.trigger_schedules().await.is_empty(),
        "a suspended schedule never runs"
    );

    // A finished Migration is never written again.
    assert_eq!(
        json(&east, &["migration", "first"])["metadata"]["resourceVersion"],
        first_version
    );
}
