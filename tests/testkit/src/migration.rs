//! A stand-in for Stork's Migration and MigrationSchedule controllers (`pkg/migration/controllers/migration.go`,
//! `migrationschedule.go`, with the object collection of `pkg/resourcecollector`), between two real control
//! planes: a Migration on one cluster copies objects to the other. In: the Migrations and MigrationSchedules of
//! both clusters, the objects of the migrated namespaces, and the test's choices ([`StorkStandIn::fail_migrations`],
//! [`StorkStandIn::hold_migrations`], [`StorkStandIn::trigger_schedules`]). Out: the copied objects, the Stork
//! objects' `status` and finalizers, static copies of schedules, and Events, written as Stork writes them.
//!
//! What it does as Stork does:
//! - Every write of a Stork object is a full-object update (Stork's CRDs have no status subresource) of the
//!   object as Stork's Go types encode it: every spec key present (unset ones `null` or `""`), unknown spec keys
//!   dropped, and from the first status write on, the defaults of `setDefaults` persisted in `spec`. The
//!   finalizer `stork.libopenstorage.org/finalizer-cleanup` is added first; on deletion a schedule deletes the
//!   Migrations in its status, and the finalizer is removed.
//! - A Migration goes `Volumes`/`Pending` → `Volumes`/`InProgress` (with `volumes[]`, one per Bound PVC of its
//!   namespaces) → `Applications`/`InProgress` → `Final` + `Successful` (or `PartialSuccess` when an object
//!   failed); without volumes, `Volumes`/`Pending` → `Applications`/`""` → `Final`. It sets
//!   `volumeMigrationFinishTimestamp`, `resourceMigrationFinishTimestamp`, `finishTimestamp`, `resources[]`
//!   (`{name, namespace, group, version, kind, status, reason, transformedBy}`, the core group as `core`) and
//!   `summary` (elapsed times to the second). A `Final` Migration is never touched again.
//! - Checks, each a Warning Event with reason `Failed` and the Migration left as it is, retried: empty
//!   `clusterPair`, no namespace, a namespace other than its own outside the admin namespace `kube-system`, a
//!   missing ClusterPair (`Error migrating volumes: cluster pair storage status is not ready. Status:  Err: error
//!   getting clusterpair <name> (<ns>): ... not found`, or `Error migrating resources: ... not found` without
//!   volumes; for a schedule's Migration first `error getting clusterpair (<ns>/<name>): ...`). A missing
//!   namespace is skipped with a Warning, or ends the Migration `Failed` with `skipDeletedNamespaces: false`.
//! - Ends a Migration `Final`/`Failed` with a Warning Event `Failed`: "migrated applications are active on remote
//!   cluster" for a schedule's Migration whose remote schedule has `status.applicationActivated: true`; "Failing
//!   migration since local clusterdomain is inactive" with `includeVolumes: false` when the cluster's
//!   ClusterDomainsStatus says its local domain is `Inactive`.
//! - Collects ConfigMaps (not `kube-root-ca.crt`, `openshift-service-ca.crt`), Secrets (not `default-token-...`
//!   and the other auto-created prefixes), Services (not `kubernetes`), Bound PVCs, Deployments, StatefulSets,
//!   ReplicaSets and CronJobs of the namespaces, honouring `selectors` (all must match), `excludeSelectors` (any
//!   match excludes), `excludeResourceTypes`, `includeResources: false` (PVCs only), the `skip-resource`
//!   annotation, and Stork's owner rules: an object owned by a Pod is skipped, a Deployment, StatefulSet,
//!   ReplicaSet or Service owned by a collected object is skipped, anything else is collected without its
//!   owner references (`ignoreOwnerReferencesCheck` collects all but ReplicaSets of collected Deployments).
//!   Metadata is cut to name, namespace, labels and annotations; `status` is kept, as Stork keeps it.
//! - Services get `clusterIP: ""` (unless `None`), `clusterIPs: null`, `loadBalancerIP: ""` unless
//!   `skipServiceUpdate` or the `skip-modify-resource` annotation. With `startApplications` false, Deployments,
//!   StatefulSets and ReplicaSets arrive with `replicas: 0`, annotation `migrationReplicas` (the source's count, 1
//!   if unset, a positive annotation of a source at 0 carried forward) and label `migrated: "true"`; CronJobs
//!   with `suspend: true`. Every copy is annotated `migrated: "true"`, `migrationName`, `migrationNamespace`,
//!   `migrationTime` (`2006-01-02-150405`, UTC) and `resource-hash` (of the prepared object).
//! - On the destination: namespaces created when missing (labels and annotations of the source's); an existing
//!   object with the same `resource-hash` is left alone, any other is deleted (finalizers stripped, except on
//!   PVCs) and created again, for every kind. `purgeDeletedResources` deletes destination objects annotated
//!   `migrated` that the source no longer has, recorded as `Purged` in `resources[]`.
//! - Events as Stork's recorder emits them (source `stork`; repeats counted on one Event): per volume and per
//!   object `Successful` (Normal) or `Failed` (Warning), and the ones named here.
//! - MigrationSchedule: while not suspended, a static copy on the other cluster (namespace created if missing;
//!   same name and namespace, `spec.suspend: true`, empty status, annotations `static-copy: "true"` and
//!   `resource-hash` of `spec.template`), its template updated when a trigger finds the hash changed; a
//!   same-named schedule there without the annotation is a Warning `Failed` ("a non static-copy
//!   migrationSchedule with the same name and namespace found in the remote cluster") and the schedule stalls.
//!   `autoSuspend` with the copy's `status.applicationActivated: true` sets `spec.suspend: true` (Warning
//!   `Suspended`), as does an `Inactive` local domain. `status.items.<Type>[]` (`{name, creationTimestamp,
//!   finishTimestamp, status}`, `""` read as `Pending`) follows each child to its end (Normal `Successful` or
//!   Warning `Failed` "Scheduled migration (<name>) status <status>"). A trigger makes a child Migration
//!   `<schedule>-<type>-<YYYY-MM-DD-HHMMSS>` (type from the NamespacedSchedulePolicy or SchedulePolicy named,
//!   else `interval`) owned by the schedule, with its template's spec and the schedule's annotations plus
//!   `migration-schedule-name`. Pruning keeps per type the newest `Successful`/`PartialSuccess` item and
//!   everything after it, deleting the older Migrations. A schedule annotated `static-copy` never runs.
//!
//! What it leaves out: volume data and Portworx itself (a volume is `Successful` at once, `bytesTotal: 0`, and
//! PersistentVolumes are not copied, so a copied PVC names a volume the destination does not have), the
//! ClusterPair controller (a ClusterPair must exist; its config and statuses are not read: the other cluster is
//! the destination), schedule policies' timing (the test triggers), pre/post exec rules, ResourceTransformations,
//! ApplicationRegistrations and CRs, the admin ClusterPair, Rancher project mappings, kinds other than those
//! listed (ServiceAccounts, RBAC, Ingresses, NetworkPolicies, DaemonSets, Jobs, PVs, ...; Secrets of type
//! `kubernetes.io/service-account-token` are skipped too, since their ServiceAccounts are not copied), Stork's
//! parallel workers (objects are applied one by one), and Stork's exact hash values.
//!
//! Failing on request ([`StorkStandIn::fail_migrations`]): the Migration ends `stage: Final`, `status: Failed`.
//! With volumes, as Portworx's failed transfer: every `status.volumes[].status` is `Failed` with
//! `status.volumes[].reason` = `Migration Backup failed for volume: <reason>`, and a Warning Event with reason
//! `Failed` and message `Error migrating volume <volume>: Migration Backup failed for volume: <reason>` per
//! volume. Without volumes (`includeVolumes: false`, or no Bound PVC), as Stork's other terminal failures: a
//! Warning Event with reason `Failed` and message `<reason>`, and `status.resources` left `null`. Either way the
//! Event's message contains the reason.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use k8s_openapi::api::core::v1::{Event, EventSource, ObjectReference};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
use k8s_openapi::jiff::Timestamp;
use kube::api::{
    ApiResource, DeleteParams, DynamicObject, GroupVersionKind, ListParams, Patch, PatchParams,
    PostParams,
};
use kube::{Api, Client};
use serde_json::{Map, Value, json};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

const STORK: &str = "stork.libopenstorage.org";
const STORK_API_VERSION: &str = "stork.libopenstorage.org/v1alpha1";
const FINALIZER: &str = "stork.libopenstorage.org/finalizer-cleanup";
const MIGRATED: &str = "stork.libopenstorage.org/migrated";
const MIGRATION_NAME: &str = "stork.libopenstorage.org/migrationName";
const MIGRATION_NAMESPACE: &str = "stork.libopenstorage.org/migrationNamespace";
const MIGRATION_TIME: &str = "stork.libopenstorage.org/migrationTime";
const MIGRATION_REPLICAS: &str = "stork.libopenstorage.org/migrationReplicas";
const RESOURCE_HASH: &str = "stork.libopenstorage.org/resource-hash";
const SCHEDULE_NAME: &str = "stork.libopenstorage.org/migration-schedule-name";
const STATIC_COPY: &str = "stork.libopenstorage.org/static-copy";
const SKIP_RESOURCE: [&str; 2] = [
    "stork.libopenstorage.org/skip-resource",
    "stork.libopenstorage.org/skipresource",
];
const SKIP_OWNER_REF_CHECK: &str = "stork.libopenstorage.org/skip-owner-ref-check";
const SKIP_MODIFY: &str = "stork.libopenstorage.org/skip-modify-resource";
const STASH_CR_LABEL: &str = "stash-cr";
/// Stork's default `--admin-namespace`: Migrations there may migrate other namespaces.
const ADMIN_NAMESPACE: &str = "kube-system";
/// Go's `2006-01-02-150405`, Stork's `nameTimeSuffixFormat`.
const TIME_SUFFIX: &str = "%Y-%m-%d-%H%M%S";
const POLL: Duration = Duration::from_millis(200);
/// How long a Migration or schedule that could not proceed waits before the next attempt.
const RETRY: Duration = Duration::from_secs(2);
/// How long a deleted destination object may take to go before the copy is reported failed.
const DELETE_WAIT: Duration = Duration::from_secs(20);
/// Policy types in the order Stork tries them (`GetValidSchedulePolicyTypes`), with their policy section.
const POLICY_TYPES: [(&str, &str); 4] = [
    ("Interval", "interval"),
    ("Daily", "daily"),
    ("Weekly", "weekly"),
    ("Monthly", "monthly"),
];

#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
struct Kind {
    group: &'static str,
    version: &'static str,
    kind: &'static str,
    plural: &'static str,
    namespaced: bool,
}

impl Kind {
    const fn new(
        group: &'static str,
        version: &'static str,
        kind: &'static str,
        plural: &'static str,
        namespaced: bool,
    ) -> Kind {
        Kind {
            group,
            version,
            kind,
            plural,
            namespaced,
        }
    }

    fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.to_string()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }

    fn api(&self, client: &Client, namespace: Option<&str>) -> Api<DynamicObject> {
        let resource = ApiResource::from_gvk_with_plural(
            &GroupVersionKind::gvk(self.group, self.version, self.kind),
            self.plural,
        );
        match namespace {
            Some(ns) if self.namespaced => Api::namespaced_with(client.clone(), ns, &resource),
            _ => Api::all_with(client.clone(), &resource),
        }
    }

    /// `<plural>.<group>` (or the plural alone for the core group), as the API server names it in messages.
    fn qualified(&self) -> String {
        if self.group.is_empty() {
            self.plural.to_string()
        } else {
            format!("{}.{}", self.plural, self.group)
        }
    }
}

const MIGRATION: Kind = Kind::new(STORK, "v1alpha1", "Migration", "migrations", true);
const SCHEDULE: Kind = Kind::new(
    STORK,
    "v1alpha1",
    "MigrationSchedule",
    "migrationschedules",
    true,
);
const CLUSTER_PAIR: Kind = Kind::new(STORK, "v1alpha1", "ClusterPair", "clusterpairs", true);
const SCHEDULE_POLICY: Kind = Kind::new(
    STORK,
    "v1alpha1",
    "SchedulePolicy",
    "schedulepolicies",
    false,
);
const NAMESPACED_SCHEDULE_POLICY: Kind = Kind::new(
    STORK,
    "v1alpha1",
    "NamespacedSchedulePolicy",
    "namespacedschedulepolicies",
    true,
);
const CLUSTER_DOMAINS_STATUS: Kind = Kind::new(
    STORK,
    "v1alpha1",
    "ClusterDomainsStatus",
    "clusterdomainsstatuses",
    false,
);
const NAMESPACE: Kind = Kind::new("", "v1", "Namespace", "namespaces", false);
const PVC: Kind = Kind::new(
    "",
    "v1",
    "PersistentVolumeClaim",
    "persistentvolumeclaims",
    true,
);
/// The kinds a Migration copies, PVCs first as Stork applies them.
const COPIED: [Kind; 8] = [
    PVC,
    Kind::new("", "v1", "ConfigMap", "configmaps", true),
    Kind::new("", "v1", "Secret", "secrets", true),
    Kind::new("", "v1", "Service", "services", true),
    Kind::new("apps", "v1", "Deployment", "deployments", true),
    Kind::new("apps", "v1", "StatefulSet", "statefulsets", true),
    Kind::new("apps", "v1", "ReplicaSet", "replicasets", true),
    Kind::new("batch", "v1", "CronJob", "cronjobs", true),
];

/// What the test chose for Migrations started from now on.
#[derive(Default)]
struct Controls {
    fail: Option<String>,
    hold: bool,
}

/// Stork's Migration and MigrationSchedule controllers on a pair of clusters, run by a tokio task polling both
/// (see the module docs); stopped when dropped.
pub struct StorkStandIn {
    controls: Arc<Mutex<Controls>>,
    triggers: mpsc::UnboundedSender<oneshot::Sender<Vec<String>>>,
    task: JoinHandle<()>,
}

impl StorkStandIn {
    /// Starts the controllers for two clusters (admin clients): a Migration on `a` copies to `b`, and one on
    /// `b` copies to `a` (the ClusterPair named in the Migration must exist in its namespace, as Stork requires;
    /// its contents are not read). Runs as a tokio task polling both clusters; stopped on drop.
    pub fn start(a: Client, b: Client) -> StorkStandIn {
        Self::start_in(a, b, None)
    }

    /// As [`StorkStandIn::start`], acting only on the Migrations and MigrationSchedules of `namespace` (for
    /// tests that share a pair of clusters, each in its own namespace, each with its own stand-in).
    pub fn start_in(a: Client, b: Client, namespace: Option<&str>) -> StorkStandIn {
        let controls = Arc::new(Mutex::new(Controls::default()));
        let (triggers, requests) = mpsc::unbounded_channel();
        let controller = Controller {
            sides: [
                Side {
                    client: a,
                    name: "a",
                },
                Side {
                    client: b,
                    name: "b",
                },
            ],
            namespace: namespace.map(str::to_string),
            controls: controls.clone(),
            fates: HashMap::new(),
            retry_at: HashMap::new(),
            events: HashMap::new(),
        };
        let task = tokio::spawn(controller.run(requests));
        StorkStandIn {
            controls,
            triggers,
            task,
        }
    }

    /// Makes every Migration started from now on end `Failed` with `reason` (None: succeed again). Where the
    /// reason is written: see the module docs.
    pub fn fail_migrations(&self, reason: Option<&str>) {
        self.controls().fail = reason.map(str::to_string);
    }

    /// Holds Migrations in flight until released: with volumes at `stage: Volumes`, `status: InProgress` (the
    /// volumes `InProgress`), without at `stage: Applications`, `status: ""` with `resources[]` listed
    /// `InProgress`, the states Stork shows while it transfers. Held Migrations are still failed by the checks
    /// (an activated remote schedule, an inactive domain).
    pub fn hold_migrations(&self, hold: bool) {
        self.controls().hold = hold;
    }

    /// As if every MigrationSchedule's policy triggered now: one Migration per schedule that Stork would run
    /// (not suspended, not a static copy, no item `Pending`/`InProgress`, its checks passed); returns their
    /// `namespace/name`.
    pub async fn trigger_schedules(&self) -> Vec<String> {
        let (reply, started) = oneshot::channel();
        self.triggers
            .send(reply)
            .expect("the Stork stand-in is running");
        started.await.expect("the Stork stand-in answers")
    }

    fn controls(&self) -> std::sync::MutexGuard<'_, Controls> {
        // A poisoned lock only means a panic elsewhere; the flags are still meaningful.
        self.controls
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl Drop for StorkStandIn {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The `status` of Migration `namespace/name`, if it exists.
pub async fn migration_status(client: &Client, namespace: &str, name: &str) -> Option<Value> {
    get(client, MIGRATION, Some(namespace), name)
        .await
        .ok()
        .flatten()
        .and_then(|m| m.get("status").cloned())
}

struct Side {
    client: Client,
    name: &'static str,
}

#[derive(PartialEq, Eq, Hash)]
struct EventKey {
    uid: String,
    type_: String,
    reason: String,
    message: String,
}

struct Controller {
    sides: [Side; 2],
    /// Only this namespace's Migrations and schedules, when set (tests sharing a pair of clusters).
    namespace: Option<String>,
    controls: Arc<Mutex<Controls>>,
    /// Per Migration uid, the failure chosen when it started.
    fates: HashMap<String, Option<String>>,
    /// Per object uid, when to look at it again after it could not proceed.
    retry_at: HashMap<String, Instant>,
    /// Events already emitted: name and count, to count repeats as Stork's recorder does.
    events: HashMap<EventKey, (String, String, i32)>,
}

/// Why a step stopped: an API error (retried after [`RETRY`]).
#[derive(Debug)]
struct Error(String);

impl From<kube::Error> for Error {
    fn from(e: kube::Error) -> Error {
        Error(message(&e))
    }
}

impl Controller {
    async fn run(mut self, mut requests: mpsc::UnboundedReceiver<oneshot::Sender<Vec<String>>>) {
        loop {
            for side in 0..2 {
                self.pass(side).await;
            }
            tokio::select! {
                request = requests.recv() => match request {
                    Some(reply) => {
                        let mut started = Vec::new();
                        for side in 0..2 {
                            started.extend(self.trigger(side).await);
                        }
                        let _ = reply.send(started);
                    }
                    None => return,
                },
                () = tokio::time::sleep(POLL) => {}
            }
        }
    }

    fn client(&self, side: usize) -> Client {
        self.sides[side].client.clone()
    }

    fn hold(&self) -> bool {
        self.controls
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .hold
    }

    fn fail_reason(&self) -> Option<String> {
        self.controls
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .fail
            .clone()
    }

    fn waiting(&self, uid: &str) -> bool {
        self.retry_at
            .get(uid)
            .is_some_and(|at| Instant::now() < *at)
    }

    fn retry_later(&mut self, uid: &str) {
        self.retry_at
            .insert(uid.to_string(), Instant::now() + RETRY);
    }

    fn report(&self, side: usize, kind: Kind, object: &Value, error: &Error) {
        eprintln!(
            "stork stand-in ({}): {} {}/{}: {}",
            self.sides[side].name,
            kind.kind,
            namespace_of(object),
            name_of(object),
            error.0
        );
    }

    /// One pass over a cluster's schedules and Migrations.
    async fn pass(&mut self, side: usize) {
        let client = self.client(side);
        // A list fails while the CRDs are not installed yet: nothing to do then.
        let namespace = self.namespace.clone();
        if let Ok(schedules) = list(&client, SCHEDULE, namespace.as_deref(), "").await {
            for schedule in schedules {
                if self.waiting(uid_of(&schedule)) {
                    continue;
                }
                if let Err(e) = self.schedule(side, &schedule, false).await {
                    self.report(side, SCHEDULE, &schedule, &e);
                    self.retry_later(uid_of(&schedule));
                }
            }
        }
        if let Ok(migrations) = list(&client, MIGRATION, namespace.as_deref(), "").await {
            for migration in migrations {
                if self.waiting(uid_of(&migration)) {
                    continue;
                }
                if let Err(e) = self.migration(side, &migration).await {
                    self.report(side, MIGRATION, &migration, &e);
                    self.retry_later(uid_of(&migration));
                }
            }
        }
    }

    async fn trigger(&mut self, side: usize) -> Vec<String> {
        let client = self.client(side);
        let mut started = Vec::new();
        let namespace = self.namespace.clone();
        for schedule in list(&client, SCHEDULE, namespace.as_deref(), "")
            .await
            .unwrap_or_default()
        {
            match self.schedule(side, &schedule, true).await {
                Ok(Some(name)) => started.push(format!("{}/{name}", namespace_of(&schedule))),
                Ok(None) => {}
                Err(e) => {
                    self.report(side, SCHEDULE, &schedule, &e);
                    self.retry_later(uid_of(&schedule));
                }
            }
        }
        started
    }

    /// Emits an Event on `object` as Stork's recorder does: a repeat of the same one raises its count.
    async fn event(
        &mut self,
        client: &Client,
        kind: Kind,
        object: &Value,
        type_: &str,
        reason: &str,
        message: &str,
    ) {
        let namespace = namespace_of(object).to_string();
        let key = EventKey {
            uid: uid_of(object).to_string(),
            type_: type_.to_string(),
            reason: reason.to_string(),
            message: message.to_string(),
        };
        let now = now();
        let events: Api<Event> = Api::namespaced(client.clone(), &namespace);
        if let Some((name, ns, count)) = self.events.get_mut(&key) {
            *count += 1;
            let patch = json!({"count": *count, "lastTimestamp": rfc3339(now)});
            let patched = Api::<Event>::namespaced(client.clone(), ns)
                .patch(name, &PatchParams::default(), &Patch::Merge(&patch))
                .await;
            if patched.is_ok() {
                return;
            }
        }
        let name = format!("{}.{:x}", name_of(object), now.as_nanosecond());
        let event = Event {
            metadata: ObjectMeta {
                name: Some(name.clone()),
                namespace: Some(namespace.clone()),
                ..ObjectMeta::default()
            },
            involved_object: ObjectReference {
                api_version: Some(kind.api_version()),
                kind: Some(kind.kind.to_string()),
                name: Some(name_of(object).to_string()),
                namespace: Some(namespace.clone()),
                uid: Some(uid_of(object).to_string()),
                resource_version: Some(str_at(object, "/metadata/resourceVersion").to_string()),
                ..ObjectReference::default()
            },
            reason: Some(reason.to_string()),
            message: Some(message.to_string()),
            type_: Some(type_.to_string()),
            source: Some(EventSource {
                component: Some("stork".to_string()),
                host: None,
            }),
            first_timestamp: Some(Time(now)),
            last_timestamp: Some(Time(now)),
            count: Some(1),
            reporting_component: Some("stork".to_string()),
            reporting_instance: Some(String::new()),
            ..Event::default()
        };
        if events.create(&PostParams::default(), &event).await.is_ok() {
            self.events.insert(key, (name, namespace, 1));
        }
    }

    // ---- Migration ----

    async fn migration(&mut self, side: usize, object: &Value) -> Result<(), Error> {
        let local = self.client(side);
        let remote = self.client(1 - side);
        if object.pointer("/metadata/deletionTimestamp").is_some() {
            // Stork cancels the volume transfer of an unfinished Migration (nothing to cancel here).
            if finalizers(object).iter().any(|f| f == FINALIZER) {
                let mut m = Migration::read(object);
                remove_finalizer(&mut m.object);
                replace(&local, MIGRATION, &m.encode(false)).await?;
            }
            return Ok(());
        }
        if !finalizers(object).iter().any(|f| f == FINALIZER) {
            let mut m = Migration::read(object);
            add_finalizer(&mut m.object);
            replace(&local, MIGRATION, &m.encode(false)).await?;
            return Ok(());
        }
        let mut m = Migration::read(object);
        if m.status.stage == "Final" {
            return Ok(());
        }
        m.spec = m.spec.with_defaults();
        let uid = uid_of(object).to_string();
        let ns = m.namespace();

        if let Some(schedule) = annotation(object, SCHEDULE_NAME) {
            let pair = m.spec.cluster_pair.clone();
            if let Err(e) = cluster_pair(&local, &ns, &pair).await {
                let message = format!("error getting clusterpair ({ns}/{pair}): {}", e.0);
                return self.stuck(&local, &m, &uid, &message).await;
            }
            let remote_schedule = get(&remote, SCHEDULE, Some(&ns), &schedule).await?;
            let activated = remote_schedule
                .as_ref()
                .and_then(|s| s.pointer("/status/applicationActivated"))
                .and_then(Value::as_bool)
                == Some(true);
            if activated {
                m.status.status = "Failed".into();
                m.status.stage = "Final".into();
                m.status.finish = Some(rfc3339(now()));
                let message = "migrated applications are active on remote cluster";
                self.event(&local, MIGRATION, &m.object, "Warning", "Failed", message)
                    .await;
                return m.write(&local, false).await;
            }
        }
        if m.spec.cluster_pair.is_empty() {
            let message = "clusterPair to migrate to cannot be empty";
            return self.stuck(&local, &m, &uid, message).await;
        }
        let namespaces = m.namespaces(&local).await?;
        if namespaces.is_empty() {
            let message = "no valid namespace found based on the provided 'Namespaces' and 'NamespaceSelectors'";
            return self.stuck(&local, &m, &uid, message).await;
        }
        if ns != ADMIN_NAMESPACE && namespaces.iter().any(|n| *n != ns) {
            let message = "migration namespaces should only contain the current namespace";
            return self.stuck(&local, &m, &uid, message).await;
        }
        if m.spec.include_volumes == Some(false) && local_domain_inactive(&local).await {
            m.status.status = "Failed".into();
            m.status.stage = "Final".into();
            m.status.finish = Some(rfc3339(now()));
            let message = "Failing migration since local clusterdomain is inactive";
            self.event(&local, MIGRATION, &m.object, "Warning", "Failed", message)
                .await;
            return m.write(&local, true).await;
        }

        match m.status.stage.as_str() {
            // Rules are not run: a Migration goes from the initial stage to Volumes.
            "" | "PreExecRule" => {
                for namespace in &namespaces {
                    if get(&local, NAMESPACE, None, namespace).await?.is_some() {
                        continue;
                    }
                    let error = format!("namespaces \"{namespace}\" not found");
                    if m.spec.skip_deleted_namespaces == Some(true) {
                        let reason =
                            format!("namespace  {namespace} was deleted, skipping migration");
                        self.event(&local, MIGRATION, &m.object, "Warning", &reason, &error)
                            .await;
                    } else {
                        m.status.status = "Failed".into();
                        m.status.stage = "Final".into();
                        m.status.finish = Some(rfc3339(now()));
                        let message = format!("error getting namespace {namespace}: {error}");
                        self.event(&local, MIGRATION, &m.object, "Warning", "Failed", &message)
                            .await;
                        return m.write(&local, true).await;
                    }
                }
                let fate = self.fail_reason();
                self.fates.insert(uid.clone(), fate);
                m.status.stage = "Volumes".into();
                m.status.status = "Pending".into();
                m.write(&local, true).await?;
                self.volumes_stage(&local, &remote, &mut m, &namespaces)
                    .await
            }
            "Volumes" => {
                self.volumes_stage(&local, &remote, &mut m, &namespaces)
                    .await
            }
            "Applications" => {
                let volumes_only = m.spec.include_resources == Some(false);
                self.migrate_resources(&local, &remote, &mut m, &namespaces, volumes_only)
                    .await
            }
            _ => Ok(()),
        }
    }

    /// A check failed: a Warning Event `Failed`, the Migration left as it is, and another attempt later.
    async fn stuck(
        &mut self,
        local: &Client,
        m: &Migration,
        uid: &str,
        message: &str,
    ) -> Result<(), Error> {
        self.event(local, MIGRATION, &m.object, "Warning", "Failed", message)
            .await;
        self.retry_later(uid);
        Ok(())
    }

    async fn volumes_stage(
        &mut self,
        local: &Client,
        remote: &Client,
        m: &mut Migration,
        namespaces: &[String],
    ) -> Result<(), Error> {
        if m.spec.include_volumes == Some(true) {
            return self.migrate_volumes(local, remote, m, namespaces).await;
        }
        m.status.stage = "Applications".into();
        m.status.status = String::new();
        m.status.volume_finish = Some(rfc3339(now()));
        m.write(local, true).await?;
        let volumes_only = m.spec.include_resources == Some(false);
        self.migrate_resources(local, remote, m, namespaces, volumes_only)
            .await
    }

    async fn migrate_volumes(
        &mut self,
        local: &Client,
        remote: &Client,
        m: &mut Migration,
        namespaces: &[String],
    ) -> Result<(), Error> {
        let uid = uid_of(&m.object).to_string();
        let ns = m.namespace();
        m.status.stage = "Volumes".into();
        if m.status.volumes.is_none() {
            let pair = m.spec.cluster_pair.clone();
            if let Err(e) = cluster_pair(local, &ns, &pair).await {
                let message = format!(
                    "Error migrating volumes: cluster pair storage status is not ready. Status:  Err: error getting clusterpair {pair} ({ns}): {}",
                    e.0
                );
                return self.stuck(local, m, &uid, &message).await;
            }
            let mut volumes = Vec::new();
            for namespace in namespaces {
                let selector = label_selector(m.spec.selectors.as_ref());
                for pvc in list(local, PVC, Some(namespace), &selector).await? {
                    let excluded = m
                        .spec
                        .exclude_selectors
                        .as_ref()
                        .is_some_and(|ex| matches_any(&pvc, ex));
                    if str_at(&pvc, "/status/phase") != "Bound" || skip_resource(&pvc) || excluded {
                        continue;
                    }
                    volumes.push(VolumeInfo {
                        pvc: name_of(&pvc).to_string(),
                        namespace: namespace.clone(),
                        volume: str_at(&pvc, "/spec/volumeName").to_string(),
                        status: "InProgress".into(),
                        reason: "Volume migration has started. Backup in progress.".into(),
                    });
                }
            }
            m.status.volumes = Some(volumes);
            m.status.status = "InProgress".into();
            m.write(local, true).await?;
        }
        if self.hold() {
            return Ok(());
        }
        let fail = self.fates.get(&uid).cloned().flatten();
        let mut volumes = m.status.volumes.clone().unwrap_or_default();
        if !volumes.is_empty() {
            for volume in &mut volumes {
                match &fail {
                    Some(reason) => {
                        volume.status = "Failed".into();
                        volume.reason = format!("Migration Backup failed for volume: {reason}");
                    }
                    None => {
                        volume.status = "Successful".into();
                        volume.reason = "Migration successful for volume".into();
                    }
                }
            }
            m.status.volumes = Some(volumes.clone());
            m.write(local, true).await?;
            for volume in &volumes {
                if volume.status == "Failed" {
                    let message = format!(
                        "Error migrating volume {}: {}",
                        volume.volume, volume.reason
                    );
                    self.event(local, MIGRATION, &m.object, "Warning", "Failed", &message)
                        .await;
                    m.status.stage = "Final".into();
                    m.status.finish = Some(rfc3339(now()));
                    m.status.status = "Failed".into();
                } else {
                    let message = format!("Volume {} migrated successfully", volume.volume);
                    self.event(
                        local,
                        MIGRATION,
                        &m.object,
                        "Normal",
                        "Successful",
                        &message,
                    )
                    .await;
                }
            }
        }
        m.status.volume_finish = Some(rfc3339(now()));
        if m.status.status != "Failed" {
            if m.spec.include_resources == Some(true) {
                m.status.stage = "Applications".into();
                m.status.status = "InProgress".into();
                m.write(local, true).await?;
                return self
                    .migrate_resources(local, remote, m, namespaces, false)
                    .await;
            }
            // Volumes only: the resources step records the PVCs and ends the Migration, then Stork marks it
            // Successful once more.
            self.migrate_resources(local, remote, m, namespaces, true)
                .await?;
            if m.status.stage != "Final" || m.status.status == "Failed" {
                return Ok(());
            }
            m.status.finish = Some(rfc3339(now()));
            m.status.status = "Successful".into();
        }
        m.write(local, true).await
    }

    async fn migrate_resources(
        &mut self,
        local: &Client,
        remote: &Client,
        m: &mut Migration,
        namespaces: &[String],
        volumes_only: bool,
    ) -> Result<(), Error> {
        let uid = uid_of(&m.object).to_string();
        let ns = m.namespace();
        let pair = m.spec.cluster_pair.clone();
        if let Err(e) = cluster_pair(local, &ns, &pair).await {
            let message = format!("Error migrating resources: {}", e.0);
            return self.stuck(local, m, &uid, &message).await;
        }
        if let Some(Some(reason)) = self.fates.get(&uid).cloned() {
            m.status.stage = "Final".into();
            m.status.status = "Failed".into();
            m.status.finish = Some(rfc3339(now()));
            self.event(local, MIGRATION, &m.object, "Warning", "Failed", &reason)
                .await;
            return m.write(local, true).await;
        }
        if self.hold() && m.status.resources.is_some() {
            return Ok(());
        }
        let no_exclusions = BTreeMap::new();
        let exclude = m.spec.exclude_selectors.as_ref().unwrap_or(&no_exclusions);
        let mut objects = collect(local, namespaces, &m.spec, exclude, volumes_only).await?;
        m.status.resources = Some(
            objects
                .iter()
                .map(|(kind, object)| ResourceInfo::of(*kind, object, "InProgress", ""))
                .collect(),
        );
        m.write(local, true).await?;
        if self.hold() {
            return Ok(());
        }
        for (kind, object) in &mut objects {
            prepare(*kind, object, &m.spec);
        }
        self.apply(local, remote, m, namespaces, &objects).await?;

        m.status.stage = "Final".into();
        let all_done = m
            .status
            .resources
            .iter()
            .flatten()
            .all(|r| r.status == "Successful");
        m.status.status = if all_done {
            "Successful"
        } else {
            "PartialSuccess"
        }
        .into();
        if m.spec.purge_deleted_resources == Some(true)
            && let Err(e) = self.purge(remote, m, namespaces, &objects).await
        {
            let message = format!("Error cleaning up resources: {}", e.0);
            self.event(
                local,
                MIGRATION,
                &m.object,
                "Warning",
                "PartialSuccess",
                &message,
            )
            .await;
            self.retry_later(&uid);
            return Ok(());
        }
        let finished = rfc3339(now());
        m.status.resource_finish = Some(finished.clone());
        m.status.finish = Some(finished);
        m.write(local, true).await
    }

    /// Creates the namespaces and objects on the destination, recording each object's outcome.
    async fn apply(
        &mut self,
        local: &Client,
        remote: &Client,
        m: &mut Migration,
        namespaces: &[String],
        objects: &[(Kind, Value)],
    ) -> Result<(), Error> {
        for namespace in namespaces {
            let Some(source) = get(local, NAMESPACE, None, namespace).await? else {
                continue;
            };
            if get(remote, NAMESPACE, None, namespace).await?.is_some() {
                continue;
            }
            let copy = json!({
                "apiVersion": "v1", "kind": "Namespace",
                "metadata": {
                    "name": namespace,
                    "labels": source.pointer("/metadata/labels").cloned().unwrap_or(json!({})),
                    "annotations": source.pointer("/metadata/annotations").cloned().unwrap_or(json!({})),
                }
            });
            match create(remote, NAMESPACE, &copy).await {
                Ok(_) => {}
                Err(e) if is_already_exists(&e) => {}
                Err(e) => return Err(e.into()),
            }
        }
        let migration_time = now().strftime(TIME_SUFFIX).to_string();
        let (migration_name, migration_namespace) = (m.name(), m.namespace());
        for (kind, object) in objects {
            let hash = hash(object);
            let mut copy = object.clone();
            for (key, value) in [
                (MIGRATED, "true"),
                (MIGRATION_NAME, migration_name.as_str()),
                (MIGRATION_NAMESPACE, migration_namespace.as_str()),
                (MIGRATION_TIME, migration_time.as_str()),
                (RESOURCE_HASH, hash.as_str()),
            ] {
                set_annotation(&mut copy, key, value);
            }
            let outcome = if *kind == PVC {
                apply_pvc(remote, &copy, &hash).await
            } else {
                apply_object(remote, *kind, &copy, &hash).await
            };
            let (status, reason) = match outcome {
                Ok(()) => ("Successful", "Resource migrated successfully".to_string()),
                Err(e) => ("Failed", format!("Error applying resource: {}", e.0)),
            };
            if let Some(info) = m
                .status
                .resources
                .iter_mut()
                .flatten()
                .find(|r| r.matches(*kind, object))
            {
                info.status = status.into();
                info.reason = reason.clone();
            }
            // Go's `%v` of a GroupVersionKind: `apps/v1, Kind=Deployment`, `/v1, Kind=ConfigMap`.
            let message = format!(
                "{}/{}, Kind={} {}/{}: {reason}",
                kind.group,
                kind.version,
                kind.kind,
                namespace_of(object),
                name_of(object)
            );
            let type_ = if status == "Failed" {
                "Warning"
            } else {
                "Normal"
            };
            self.event(local, MIGRATION, &m.object, type_, status, &message)
                .await;
        }
        Ok(())
    }

    /// Deletes destination objects annotated `migrated` that the source no longer has.
    async fn purge(
        &mut self,
        remote: &Client,
        m: &mut Migration,
        namespaces: &[String],
        sources: &[(Kind, Value)],
    ) -> Result<(), Error> {
        let mut exclude = m.spec.exclude_selectors.clone().unwrap_or_default();
        exclude.insert(STASH_CR_LABEL.to_string(), "true".to_string());
        let present: HashSet<(&str, &str, &str)> = sources
            .iter()
            .map(|(kind, o)| (kind.kind, namespace_of(o), name_of(o)))
            .collect();
        let destination = collect(remote, namespaces, &m.spec, &exclude, false).await?;
        for (kind, object) in &destination {
            let migrated = annotation(object, MIGRATED).is_some_and(|v| parse_bool(&v));
            if !migrated || present.contains(&(kind.kind, namespace_of(object), name_of(object))) {
                continue;
            }
            delete_and_wait(remote, *kind, object, false).await?;
            m.status
                .resources
                .get_or_insert_with(Vec::new)
                .push(ResourceInfo {
                    name: name_of(object).to_string(),
                    namespace: namespace_of(object).to_string(),
                    group: String::new(),
                    version: String::new(),
                    kind: kind.kind.to_string(),
                    status: "Purged".into(),
                    reason: String::new(),
                });
        }
        Ok(())
    }

    // ---- MigrationSchedule ----

    /// One reconcile of a schedule; with `trigger`, its policy triggered now. Returns the child Migration started.
    async fn schedule(
        &mut self,
        side: usize,
        object: &Value,
        trigger: bool,
    ) -> Result<Option<String>, Error> {
        let local = self.client(side);
        let remote = self.client(1 - side);
        let ns = namespace_of(object).to_string();
        let name = name_of(object).to_string();
        let uid = uid_of(object).to_string();
        if object.pointer("/metadata/deletionTimestamp").is_some() {
            if finalizers(object).iter().any(|f| f == FINALIZER) {
                let mut s = Schedule::read(object);
                for item in s.items.values().flatten() {
                    delete(&local, MIGRATION, Some(&ns), &item.name).await?;
                }
                remove_finalizer(&mut s.object);
                replace(&local, SCHEDULE, &s.encode()).await?;
            }
            return Ok(None);
        }
        let mut s = Schedule::read(object);
        if !finalizers(object).iter().any(|f| f == FINALIZER) {
            add_finalizer(&mut s.object);
            s.object = replace(&local, SCHEDULE, &s.encode()).await?;
            // Stork reconciles again at once; a trigger goes on with the updated object.
            if !trigger {
                return Ok(None);
            }
        }
        s.suspend = Some(s.suspend.unwrap_or(false));
        if annotation(object, STATIC_COPY).is_some() {
            // A static copy is only kept with its defaults; it never runs.
            let encoded = s.encode();
            if !same(&encoded, &s.object) {
                replace(&local, SCHEDULE, &encoded).await?;
            }
            return Ok(None);
        }
        let mut remote_copy = None;
        if s.suspend != Some(true) {
            let pair = s.template.cluster_pair.clone();
            if let Err(e) = cluster_pair(&local, &ns, &pair).await {
                let message = format!("error getting clusterpair ({ns}/{pair}): {}", e.0);
                self.event(&local, SCHEDULE, object, "Warning", "Failed", &message)
                    .await;
                self.retry_later(&uid);
                return Ok(None);
            }
            let copy = match get(&remote, SCHEDULE, Some(&ns), &name).await? {
                Some(copy) => copy,
                None => self.create_static_copy(&local, &remote, &s).await?,
            };
            if annotation(&copy, STATIC_COPY).as_deref() != Some("true") {
                let message = "a non static-copy migrationSchedule with the same name and namespace found in the remote cluster";
                self.event(&local, SCHEDULE, object, "Warning", "Failed", message)
                    .await;
                self.retry_later(&uid);
                return Ok(None);
            }
            let activated = copy
                .pointer("/status/applicationActivated")
                .and_then(Value::as_bool)
                == Some(true);
            if s.auto_suspend && activated {
                s.suspend = Some(true);
                let message = "Suspending migration schedule since migrated apps on remote cluster are active";
                self.event(&local, SCHEDULE, object, "Warning", "Suspended", message)
                    .await;
                replace(&local, SCHEDULE, &s.encode()).await?;
                return Ok(None);
            }
            remote_copy = Some(copy);
        }

        if self.follow_children(&local, &mut s).await? {
            s.object = replace(&local, SCHEDULE, &s.encode()).await?;
        }

        let mut started = None;
        if s.suspend != Some(true) {
            if local_domain_inactive(&local).await {
                s.suspend = Some(true);
                let message = "Suspending migration schedule since local clusterdomain is inactive";
                self.event(&local, SCHEDULE, &s.object, "Warning", "Suspended", message)
                    .await;
                replace(&local, SCHEDULE, &s.encode()).await?;
                return Ok(None);
            }
            let running = s
                .items
                .values()
                .flatten()
                .any(|item| !complete(&item.status));
            if trigger && !running {
                if let Some(copy) = remote_copy {
                    update_static_copy(&remote, &s, copy).await?;
                }
                started = Some(self.start_child(&local, &mut s).await?);
            }
        }

        self.prune(&local, &mut s).await?;
        Ok(started)
    }

    async fn create_static_copy(
        &mut self,
        local: &Client,
        remote: &Client,
        s: &Schedule,
    ) -> Result<Value, Error> {
        let ns = s.namespace();
        let source = get(local, NAMESPACE, None, &ns)
            .await?
            .ok_or_else(|| Error(format!("namespaces \"{ns}\" not found")))?;
        let namespace = json!({
            "apiVersion": "v1", "kind": "Namespace",
            "metadata": {
                "name": ns,
                "labels": source.pointer("/metadata/labels").cloned().unwrap_or(json!({})),
                "annotations": source.pointer("/metadata/annotations").cloned().unwrap_or(json!({})),
            }
        });
        match create(remote, NAMESPACE, &namespace).await {
            Ok(_) => {}
            Err(e) if is_already_exists(&e) => {}
            Err(e) => return Err(e.into()),
        }
        let mut copy = Schedule {
            object: json!({"metadata": copied_metadata(&s.object)}),
            template: s.template.clone(),
            policy: s.policy.clone(),
            suspend: Some(true),
            auto_suspend: s.auto_suspend,
            items: BTreeMap::new(),
            items_set: false,
            activated: false,
        };
        set_annotation(&mut copy.object, STATIC_COPY, "true");
        set_annotation(&mut copy.object, RESOURCE_HASH, &s.template_hash());
        Ok(create(remote, SCHEDULE, &copy.encode()).await?)
    }

    /// Brings each unfinished item up to date with its Migration; true if any item was looked at (Stork then
    /// writes the schedule).
    async fn follow_children(&mut self, local: &Client, s: &mut Schedule) -> Result<bool, Error> {
        let ns = s.namespace();
        let mut looked = false;
        let mut events = Vec::new();
        for item in s.items.values_mut().flatten() {
            if complete(&item.status) {
                continue;
            }
            let mut status = match get(local, MIGRATION, Some(&ns), &item.name).await? {
                Some(child) => str_at(&child, "/status/status").to_string(),
                None => {
                    events.push((
                        "Warning",
                        "Failed",
                        format!(
                            "Error getting status of migration {}: {} \"{}\" not found",
                            item.name,
                            MIGRATION.qualified(),
                            item.name
                        ),
                    ));
                    "Failed".to_string()
                }
            };
            if status.is_empty() {
                status = "Pending".into();
            }
            item.status = status;
            if complete(&item.status) {
                item.finish = Some(rfc3339(now()));
                if item.status == "Successful" {
                    events.push((
                        "Normal",
                        "Successful",
                        format!("Scheduled migration ({}) completed successfully", item.name),
                    ));
                } else {
                    events.push((
                        "Warning",
                        "Failed",
                        format!("Scheduled migration ({}) status {}", item.name, item.status),
                    ));
                }
            }
            looked = true;
        }
        for (type_, reason, message) in events {
            let object = s.object.clone();
            self.event(local, SCHEDULE, &object, type_, reason, &message)
                .await;
        }
        // Stork writes whenever it looked; writing only on a change spares the API server the same bytes.
        Ok(looked && !same(&s.encode(), &s.object))
    }

    async fn start_child(&mut self, local: &Client, s: &mut Schedule) -> Result<String, Error> {
        let ns = s.namespace();
        let (policy_type, section) = policy_type(local, &ns, &s.policy).await;
        // Names are stamped to the second: two triggers within one second wait for the next one, where Stork
        // would collide.
        let mut name;
        loop {
            let stamp = now().strftime(TIME_SUFFIX).to_string();
            name = format!("{}-{section}-{stamp}", s.name());
            let listed = s.items.values().flatten().any(|item| item.name == name);
            if !listed && get(local, MIGRATION, Some(&ns), &name).await?.is_none() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        s.items
            .entry(policy_type.to_string())
            .or_default()
            .push(Item {
                name: name.clone(),
                creation: Some(rfc3339(now())),
                finish: None,
                status: "Pending".into(),
            });
        s.items_set = true;
        s.object = replace(local, SCHEDULE, &s.encode()).await?;

        let mut annotations = s
            .object
            .pointer("/metadata/annotations")
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default();
        annotations.insert(SCHEDULE_NAME.to_string(), json!(s.name()));
        let child = json!({
            "apiVersion": STORK_API_VERSION,
            "kind": "Migration",
            "metadata": {
                "name": name,
                "namespace": ns,
                "ownerReferences": [{
                    "apiVersion": STORK_API_VERSION,
                    "kind": "MigrationSchedule",
                    "name": s.name(),
                    "uid": uid_of(&s.object),
                }],
                "annotations": annotations,
            },
            "spec": s.template.encode(),
            "status": MigrationStatus::default().encode(None),
        });
        if let Err(e) = create(local, MIGRATION, &child).await {
            let message = format!(
                "Error triggering migration for schedule({policy_type}): {}",
                message(&e)
            );
            let object = s.object.clone();
            self.event(local, SCHEDULE, &object, "Warning", "Failed", &message)
                .await;
            return Err(e.into());
        }
        Ok(name)
    }

    /// Keeps per type the newest `Successful`/`PartialSuccess` item and everything after it.
    async fn prune(&mut self, local: &Client, s: &mut Schedule) -> Result<(), Error> {
        let ns = s.namespace();
        let mut pruned = false;
        for items in s.items.values_mut() {
            let keep_from = items
                .iter()
                .rposition(|item| item.status == "Successful" || item.status == "PartialSuccess")
                .unwrap_or(0);
            if items.len() < 2 || keep_from == 0 {
                continue;
            }
            for item in items.drain(..keep_from) {
                delete(local, MIGRATION, Some(&ns), &item.name).await?;
            }
            pruned = true;
        }
        if pruned {
            s.object = replace(local, SCHEDULE, &s.encode()).await?;
        }
        Ok(())
    }
}

/// The policy type a trigger of `policy` runs: the first section of the NamespacedSchedulePolicy (else the
/// SchedulePolicy) of that name that is set, in Stork's order; `Interval` otherwise.
async fn policy_type(
    client: &Client,
    namespace: &str,
    policy: &str,
) -> (&'static str, &'static str) {
    let mut found = None;
    if !policy.is_empty() {
        found = get(client, NAMESPACED_SCHEDULE_POLICY, Some(namespace), policy)
            .await
            .ok()
            .flatten();
        if found.is_none() {
            found = get(client, SCHEDULE_POLICY, None, policy)
                .await
                .ok()
                .flatten();
        }
    }
    found
        .and_then(|p| {
            POLICY_TYPES.into_iter().find(|(_, section)| {
                p.pointer(&format!("/policy/{section}"))
                    .is_some_and(|s| !s.is_null())
            })
        })
        .unwrap_or(POLICY_TYPES[0])
}

/// Updates the remote static copy's template when its hash differs from the source's (Stork does it on a
/// trigger).
async fn update_static_copy(remote: &Client, s: &Schedule, copy: Value) -> Result<(), Error> {
    let hash = s.template_hash();
    if annotation(&copy, RESOURCE_HASH).as_deref() == Some(hash.as_str()) {
        return Ok(());
    }
    let mut copy = Schedule::read(&copy);
    set_annotation(&mut copy.object, RESOURCE_HASH, &hash);
    copy.template = s.template.clone();
    replace(remote, SCHEDULE, &copy.encode()).await?;
    Ok(())
}

fn complete(status: &str) -> bool {
    status != "Pending" && status != "InProgress"
}

/// The metadata Stork's deep copy keeps for a remote object, without what the API server assigns.
fn copied_metadata(object: &Value) -> Value {
    let mut metadata = Map::new();
    if let Some(source) = object.get("metadata").and_then(Value::as_object) {
        for key in [
            "name",
            "namespace",
            "labels",
            "annotations",
            "finalizers",
            "ownerReferences",
        ] {
            if let Some(value) = source.get(key) {
                metadata.insert(key.to_string(), value.clone());
            }
        }
    }
    Value::Object(metadata)
}

/// Whether the cluster's ClusterDomainsStatus says its local domain is `Inactive` (Portworx's view, which
/// `testkit::stork` keeps). No such object: active.
async fn local_domain_inactive(client: &Client) -> bool {
    let Ok(statuses) = list(client, CLUSTER_DOMAINS_STATUS, None, "").await else {
        return false;
    };
    statuses.first().is_some_and(|cds| {
        let local = str_at(cds, "/status/localDomain");
        cds.pointer("/status/clusterDomainInfos")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .any(|info| str_at(info, "/name") == local && str_at(info, "/state") == "Inactive")
    })
}

/// The ClusterPair `namespace/name`, or the API server's message for its absence.
async fn cluster_pair(client: &Client, namespace: &str, name: &str) -> Result<Value, Error> {
    if name.is_empty() {
        return Err(Error("resource name may not be empty".into()));
    }
    get(client, CLUSTER_PAIR, Some(namespace), name)
        .await?
        .ok_or_else(|| Error(format!("{} \"{name}\" not found", CLUSTER_PAIR.qualified())))
}

// ---- Collection and preparation (pkg/resourcecollector, prepareResources) ----

/// The objects of `namespaces` a Migration with `spec` collects, prepared for collection (metadata cut,
/// Services reset).
async fn collect(
    client: &Client,
    namespaces: &[String],
    spec: &Spec,
    exclude: &BTreeMap<String, String>,
    volumes_only: bool,
) -> Result<Vec<(Kind, Value)>, Error> {
    let selector = label_selector(spec.selectors.as_ref());
    let excluded_types = spec.exclude_resource_types.clone().unwrap_or_default();
    let mut collected: Vec<(Kind, Value)> = Vec::new();
    let mut uids = HashSet::new();
    for kind in COPIED {
        if volumes_only && kind != PVC {
            continue;
        }
        if excluded_types
            .iter()
            .any(|t| t.eq_ignore_ascii_case(kind.kind))
        {
            continue;
        }
        for namespace in namespaces {
            for object in list(client, kind, Some(namespace), &selector).await? {
                if matches_any(&object, exclude)
                    || skip_resource(&object)
                    || uids.contains(uid_of(&object))
                    || !kind_collects(kind, &object)
                {
                    continue;
                }
                uids.insert(uid_of(&object).to_string());
                collected.push((kind, object));
            }
        }
    }
    let ignore_owners = spec.ignore_owner_references_check == Some(true);
    collected.retain(|(kind, object)| owner_rule_collects(*kind, object, &uids, ignore_owners));
    for (kind, object) in &mut collected {
        if kind.kind == "Service"
            && spec.skip_service_update != Some(true)
            && annotation(object, SKIP_MODIFY).is_none()
        {
            reset_service(object);
        }
        cut_metadata(object);
    }
    Ok(collected)
}

/// Stork's per-kind collection rules.
fn kind_collects(kind: Kind, object: &Value) -> bool {
    let name = name_of(object);
    match kind.kind {
        "ConfigMap" => !["kube-root-ca.crt", "openshift-service-ca.crt"].contains(&name),
        "Secret" => {
            const AUTO_CREATED: [&str; 6] = [
                "builder-dockercfg-",
                "builder-token-",
                "default-dockercfg-",
                "default-token-",
                "deployer-dockercfg-",
                "deployer-token-",
            ];
            !AUTO_CREATED.iter().any(|p| name.starts_with(p))
                && str_at(object, "/type") != "kubernetes.io/service-account-token"
        }
        "Service" => name != "kubernetes",
        "PersistentVolumeClaim" => {
            str_at(object, "/status/phase") == "Bound"
                && object.pointer("/metadata/deletionTimestamp").is_none()
        }
        _ => true,
    }
}

/// `pruneOwnedResources`: whether an object with owner references is still collected.
fn owner_rule_collects(
    kind: Kind,
    object: &Value,
    uids: &HashSet<String>,
    ignore_owners: bool,
) -> bool {
    let owners = object
        .pointer("/metadata/ownerReferences")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    if owners.is_empty()
        || kind == PVC
        || annotation(object, SKIP_OWNER_REF_CHECK).is_some_and(|v| parse_bool(&v))
    {
        return true;
    }
    for owner in &owners {
        let owner_collected = uids.contains(str_at(owner, "/uid"));
        if ignore_owners {
            return !(kind.kind == "ReplicaSet"
                && owner_collected
                && str_at(owner, "/kind") == "Deployment");
        }
        if str_at(owner, "/kind") == "Pod" {
            return false;
        }
        if !matches!(
            kind.kind,
            "Deployment" | "StatefulSet" | "ReplicaSet" | "Service"
        ) {
            continue;
        }
        if owner_collected {
            return false;
        }
    }
    true
}

fn reset_service(object: &mut Value) {
    let Some(spec) = object.get_mut("spec").and_then(Value::as_object_mut) else {
        return;
    };
    if spec.get("clusterIP").and_then(Value::as_str) != Some("None") {
        spec.insert("clusterIP".into(), json!(""));
    }
    spec.insert("clusterIPs".into(), Value::Null);
    spec.insert("loadBalancerIP".into(), json!(""));
}

/// Keeps only name, namespace, labels and annotations of the metadata.
fn cut_metadata(object: &mut Value) {
    if let Some(metadata) = object.get_mut("metadata").and_then(Value::as_object_mut) {
        metadata.retain(|key, _| {
            matches!(
                key.as_str(),
                "name" | "namespace" | "labels" | "annotations"
            )
        });
    }
}

/// `prepareResources`: workloads scaled to 0 and CronJobs suspended unless `startApplications`.
fn prepare(kind: Kind, object: &mut Value, spec: &Spec) {
    let start = spec.start_applications == Some(true);
    match kind.kind {
        "Deployment" | "StatefulSet" | "ReplicaSet" => {
            let mut replicas = object
                .pointer("/spec/replicas")
                .and_then(Value::as_i64)
                .unwrap_or(1);
            let recorded =
                annotation(object, MIGRATION_REPLICAS).and_then(|v| v.parse::<i64>().ok());
            if replicas == 0
                && let Some(recorded) = recorded.filter(|n| *n > 0)
            {
                replicas = recorded;
                object["spec"]["replicas"] = json!(replicas);
            }
            if start {
                return;
            }
            object["spec"]["replicas"] = json!(0);
            set_label(object, MIGRATED, "true");
            set_annotation(object, MIGRATION_REPLICAS, &replicas.to_string());
        }
        "CronJob" if !start => object["spec"]["suspend"] = json!(true),
        _ => {}
    }
}

/// Creates a PVC on the destination unless one with the same hash is there; another one is deleted first.
async fn apply_pvc(remote: &Client, copy: &Value, hash: &str) -> Result<(), Error> {
    let (ns, name) = (namespace_of(copy), name_of(copy));
    if let Some(existing) = get(remote, PVC, Some(ns), name).await? {
        if annotation(&existing, RESOURCE_HASH).as_deref() == Some(hash) {
            return Ok(());
        }
        if let Err(e) = delete_and_wait(remote, PVC, &existing, false).await {
            return Err(Error(format!(
                "error in recreating pvc {ns}/{name} during migration: {}",
                e.0
            )));
        }
    }
    create(remote, PVC, copy).await.map_err(|e| {
        Error(format!(
            "error in recreating pvc {ns}/{name} during migration: {}",
            message(&e)
        ))
    })?;
    Ok(())
}

/// Creates an object on the destination; an existing one with another hash is deleted and created again.
async fn apply_object(remote: &Client, kind: Kind, copy: &Value, hash: &str) -> Result<(), Error> {
    match create(remote, kind, copy).await {
        Ok(_) => Ok(()),
        Err(e) if is_already_exists(&e) => {
            let Some(existing) = get(remote, kind, Some(namespace_of(copy)), name_of(copy)).await?
            else {
                create(remote, kind, copy).await?;
                return Ok(());
            };
            if annotation(&existing, RESOURCE_HASH).as_deref() == Some(hash) {
                return Ok(());
            }
            delete_and_wait(remote, kind, &existing, true).await?;
            create(remote, kind, copy).await?;
            Ok(())
        }
        Err(e) => Err(e.into()),
    }
}

/// Deletes `existing` and waits until it is gone (or re-created by someone else), stripping its finalizers
/// while it lingers when `strip_finalizers`.
async fn delete_and_wait(
    client: &Client,
    kind: Kind,
    existing: &Value,
    strip_finalizers: bool,
) -> Result<(), Error> {
    let (ns, name) = (namespace_of(existing), name_of(existing));
    let old_uid = uid_of(existing).to_string();
    delete(client, kind, Some(ns), name).await?;
    let deadline = Instant::now() + DELETE_WAIT;
    loop {
        let Some(current) = get(client, kind, Some(ns), name).await? else {
            return Ok(());
        };
        if uid_of(&current) != old_uid {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(Error(format!("{} {ns}/{name} still present", kind.kind)));
        }
        if strip_finalizers && !finalizers(&current).is_empty() {
            let patch = json!({"metadata": {"finalizers": null}});
            kind.api(client, Some(ns))
                .patch(name, &PatchParams::default(), &Patch::Merge(&patch))
                .await?;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

// ---- Stork's objects as its Go types encode them ----

/// `MigrationSpec`.
#[derive(Clone, Default, PartialEq, Debug)]
struct Spec {
    cluster_pair: String,
    admin_cluster_pair: String,
    namespaces: Option<Vec<String>>,
    namespace_selectors: Option<BTreeMap<String, String>>,
    include_resources: Option<bool>,
    include_volumes: Option<bool>,
    start_applications: Option<bool>,
    purge_deleted_resources: Option<bool>,
    skip_service_update: Option<bool>,
    include_network_policy_with_cidr: Option<bool>,
    selectors: Option<BTreeMap<String, String>>,
    exclude_selectors: Option<BTreeMap<String, String>>,
    pre_exec_rule: String,
    post_exec_rule: String,
    include_optional_resource_types: Option<Vec<String>>,
    skip_deleted_namespaces: Option<bool>,
    transform_specs: Option<Vec<String>>,
    ignore_owner_references_check: Option<bool>,
    exclude_resource_types: Option<Vec<String>>,
}

impl Spec {
    fn read(v: &Value) -> Spec {
        let text = |k: &str| {
            v.get(k)
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string()
        };
        let flag = |k: &str| v.get(k).and_then(Value::as_bool);
        let texts = |k: &str| {
            v.get(k).and_then(Value::as_array).map(|a| {
                a.iter()
                    .filter_map(Value::as_str)
                    .map(str::to_string)
                    .collect()
            })
        };
        let map = |k: &str| {
            v.get(k).and_then(Value::as_object).map(|m| {
                m.iter()
                    .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_string())))
                    .collect()
            })
        };
        Spec {
            cluster_pair: text("clusterPair"),
            admin_cluster_pair: text("adminClusterPair"),
            namespaces: texts("namespaces"),
            namespace_selectors: map("namespaceSelectors"),
            include_resources: flag("includeResources"),
            include_volumes: flag("includeVolumes"),
            start_applications: flag("startApplications"),
            purge_deleted_resources: flag("purgeDeletedResources"),
            skip_service_update: flag("skipServiceUpdate"),
            include_network_policy_with_cidr: flag("includeNetworkPolicyWithCIDR"),
            selectors: map("selectors"),
            exclude_selectors: map("excludeSelectors"),
            pre_exec_rule: text("preExecRule"),
            post_exec_rule: text("postExecRule"),
            include_optional_resource_types: texts("includeOptionalResourceTypes"),
            skip_deleted_namespaces: flag("skipDeletedNamespaces"),
            transform_specs: texts("transformSpecs"),
            ignore_owner_references_check: flag("ignoreOwnerReferencesCheck"),
            exclude_resource_types: texts("excludeResourceTypes"),
        }
    }

    /// Stork's `setDefaults`.
    fn with_defaults(mut self) -> Spec {
        self.include_volumes.get_or_insert(true);
        self.include_resources.get_or_insert(true);
        self.start_applications.get_or_insert(false);
        self.purge_deleted_resources.get_or_insert(false);
        self.skip_service_update.get_or_insert(false);
        self.include_network_policy_with_cidr.get_or_insert(false);
        self.skip_deleted_namespaces.get_or_insert(true);
        self.ignore_owner_references_check.get_or_insert(false);
        self
    }

    fn encode(&self) -> Value {
        json!({
            "clusterPair": self.cluster_pair,
            "adminClusterPair": self.admin_cluster_pair,
            "namespaces": self.namespaces,
            "namespaceSelectors": self.namespace_selectors,
            "includeResources": self.include_resources,
            "includeVolumes": self.include_volumes,
            "startApplications": self.start_applications,
            "purgeDeletedResources": self.purge_deleted_resources,
            "skipServiceUpdate": self.skip_service_update,
            "includeNetworkPolicyWithCIDR": self.include_network_policy_with_cidr,
            "selectors": self.selectors,
            "excludeSelectors": self.exclude_selectors,
            "preExecRule": self.pre_exec_rule,
            "postExecRule": self.post_exec_rule,
            "includeOptionalResourceTypes": self.include_optional_resource_types,
            "skipDeletedNamespaces": self.skip_deleted_namespaces,
            "transformSpecs": self.transform_specs,
            "ignoreOwnerReferencesCheck": self.ignore_owner_references_check,
            "excludeResourceTypes": self.exclude_resource_types,
        })
    }
}

/// `MigrationResourceInfo`.
#[derive(Clone, Debug)]
struct ResourceInfo {
    name: String,
    namespace: String,
    group: String,
    version: String,
    kind: String,
    status: String,
    reason: String,
}

impl ResourceInfo {
    fn of(kind: Kind, object: &Value, status: &str, reason: &str) -> ResourceInfo {
        ResourceInfo {
            name: name_of(object).to_string(),
            namespace: namespace_of(object).to_string(),
            group: if kind.group.is_empty() {
                "core".into()
            } else {
                kind.group.into()
            },
            version: kind.version.into(),
            kind: kind.kind.into(),
            status: status.into(),
            reason: reason.into(),
        }
    }

    fn matches(&self, kind: Kind, object: &Value) -> bool {
        let group = if kind.group.is_empty() {
            "core"
        } else {
            kind.group
        };
        self.name == name_of(object)
            && self.namespace == namespace_of(object)
            && self.kind == kind.kind
            && self.group == group
            && self.version == kind.version
    }

    fn read(v: &Value) -> ResourceInfo {
        ResourceInfo {
            name: str_at(v, "/name").into(),
            namespace: str_at(v, "/namespace").into(),
            group: str_at(v, "/group").into(),
            version: str_at(v, "/version").into(),
            kind: str_at(v, "/kind").into(),
            status: str_at(v, "/status").into(),
            reason: str_at(v, "/reason").into(),
        }
    }

    fn encode(&self) -> Value {
        json!({
            "name": self.name, "namespace": self.namespace, "group": self.group, "version": self.version,
            "kind": self.kind, "status": self.status, "reason": self.reason, "transformedBy": "",
        })
    }
}

/// `MigrationVolumeInfo`.
#[derive(Clone, Debug)]
struct VolumeInfo {
    pvc: String,
    namespace: String,
    volume: String,
    status: String,
    reason: String,
}

impl VolumeInfo {
    fn read(v: &Value) -> VolumeInfo {
        VolumeInfo {
            pvc: str_at(v, "/persistentVolumeClaim").into(),
            namespace: str_at(v, "/namespace").into(),
            volume: str_at(v, "/volume").into(),
            status: str_at(v, "/status").into(),
            reason: str_at(v, "/reason").into(),
        }
    }

    fn encode(&self) -> Value {
        json!({
            "persistentVolumeClaim": self.pvc, "namespace": self.namespace, "volume": self.volume,
            "status": self.status, "bytesTotal": 0, "reason": self.reason,
        })
    }
}

/// `MigrationStatus`.
#[derive(Clone, Default, Debug)]
struct MigrationStatus {
    stage: String,
    status: String,
    resources: Option<Vec<ResourceInfo>>,
    volumes: Option<Vec<VolumeInfo>>,
    finish: Option<String>,
    volume_finish: Option<String>,
    resource_finish: Option<String>,
    summary: Value,
}

impl MigrationStatus {
    fn read(v: Option<&Value>) -> MigrationStatus {
        let Some(v) = v else {
            return MigrationStatus::default();
        };
        let time = |k: &str| v.get(k).and_then(Value::as_str).map(str::to_string);
        MigrationStatus {
            stage: str_at(v, "/stage").into(),
            status: str_at(v, "/status").into(),
            resources: v
                .get("resources")
                .and_then(Value::as_array)
                .map(|a| a.iter().map(ResourceInfo::read).collect()),
            volumes: v
                .get("volumes")
                .and_then(Value::as_array)
                .map(|a| a.iter().map(VolumeInfo::read).collect()),
            finish: time("finishTimestamp"),
            volume_finish: time("volumeMigrationFinishTimestamp"),
            resource_finish: time("resourceMigrationFinishTimestamp"),
            summary: v.get("summary").cloned().unwrap_or(Value::Null),
        }
    }

    /// The status as Stork writes it; with `summary`, recomputed (`getMigrationSummary`), else as it was.
    fn encode(&self, summary: Option<Value>) -> Value {
        json!({
            "stage": self.stage,
            "status": self.status,
            "resources": self.resources.as_ref().map(|r| r.iter().map(ResourceInfo::encode).collect::<Vec<_>>()),
            "volumes": self.volumes.as_ref().map(|v| v.iter().map(VolumeInfo::encode).collect::<Vec<_>>()),
            "finishTimestamp": self.finish,
            "volumeMigrationFinishTimestamp": self.volume_finish,
            "resourceMigrationFinishTimestamp": self.resource_finish,
            "summary": summary.unwrap_or_else(|| self.summary.clone()),
        })
    }
}

struct Migration {
    /// The object as read (its metadata is written back).
    object: Value,
    spec: Spec,
    status: MigrationStatus,
}

impl Migration {
    fn read(object: &Value) -> Migration {
        Migration {
            object: object.clone(),
            spec: Spec::read(object.get("spec").unwrap_or(&Value::Null)),
            status: MigrationStatus::read(object.get("status")),
        }
    }

    fn name(&self) -> String {
        name_of(&self.object).to_string()
    }

    fn namespace(&self) -> String {
        namespace_of(&self.object).to_string()
    }

    /// `spec.namespaces` with the namespaces matching any of `namespaceSelectors`.
    async fn namespaces(&self, client: &Client) -> Result<Vec<String>, Error> {
        let mut namespaces: Vec<String> = self.spec.namespaces.clone().unwrap_or_default();
        for (key, value) in self.spec.namespace_selectors.iter().flatten() {
            for ns in list(client, NAMESPACE, None, &format!("{key}={value}")).await? {
                namespaces.push(name_of(&ns).to_string());
            }
        }
        namespaces.sort();
        namespaces.dedup();
        Ok(namespaces)
    }

    fn encode(&self, summary: bool) -> Value {
        let summary = summary.then(|| self.summary());
        json!({
            "apiVersion": STORK_API_VERSION,
            "kind": "Migration",
            "metadata": self.object.get("metadata").cloned().unwrap_or(json!({})),
            "spec": self.spec.encode(),
            "status": self.status.encode(summary),
        })
    }

    /// Writes the whole object; with `summary`, as Stork's `updateMigrationCR` does.
    async fn write(&mut self, client: &Client, summary: bool) -> Result<(), Error> {
        self.object = replace(client, MIGRATION, &self.encode(summary)).await?;
        Ok(())
    }

    /// Stork's `getMigrationSummary`, with elapsed times to the second.
    fn summary(&self) -> Value {
        let status = &self.status;
        let now = now();
        let created = parse_time(str_at(&self.object, "/metadata/creationTimestamp"));
        let volume_finish = status.volume_finish.as_deref().and_then(parse_time);
        let resource_finish = status.resource_finish.as_deref().and_then(parse_time);
        let mut summary = json!({
            "totalNumberOfVolumes": 0, "numOfMigratedVolumes": 0,
            "totalNumberOfResources": 0, "numOfMigratedResources": 0,
            "totalBytesMigrated": 0,
            "elapsedTimeForVolumeMigration": "", "elapsedTimeForResourceMigration": "",
        });
        if self.spec.include_volumes != Some(false) {
            let volumes = status.volumes.as_deref().unwrap_or_default();
            if !volumes.is_empty() {
                summary["totalNumberOfVolumes"] = json!(volumes.len());
                summary["numOfMigratedVolumes"] =
                    json!(volumes.iter().filter(|v| v.status == "Successful").count());
            }
            let mut elapsed = "NA".to_string();
            if let Some(created) = created {
                if matches!(status.stage.as_str(), "Applications" | "Final") {
                    if let Some(finish) = volume_finish {
                        elapsed = go_duration(finish.as_second() - created.as_second());
                    }
                } else {
                    elapsed = go_duration(now.as_second() - created.as_second());
                }
            }
            summary["elapsedTimeForVolumeMigration"] = json!(elapsed);
        }
        let resources = status.resources.as_deref().unwrap_or_default();
        if !resources.is_empty() {
            summary["totalNumberOfResources"] = json!(resources.len());
            summary["numOfMigratedResources"] = json!(
                resources
                    .iter()
                    .filter(|r| r.status == "Successful")
                    .count()
            );
        }
        let mut elapsed = "NA".to_string();
        if let Some(volume_finish) = volume_finish {
            if status.stage == "Final" {
                if let Some(finish) = resource_finish {
                    elapsed = go_duration(finish.as_second() - volume_finish.as_second());
                }
            } else {
                elapsed = go_duration(now.as_second() - volume_finish.as_second());
            }
        }
        summary["elapsedTimeForResourceMigration"] = json!(elapsed);
        summary
    }
}

/// `ScheduledMigrationStatus`.
#[derive(Clone, Debug)]
struct Item {
    name: String,
    creation: Option<String>,
    finish: Option<String>,
    status: String,
}

/// `MigrationSchedule`.
struct Schedule {
    object: Value,
    template: Spec,
    policy: String,
    suspend: Option<bool>,
    auto_suspend: bool,
    items: BTreeMap<String, Vec<Item>>,
    /// Whether `status.items` is a map (`null` otherwise, as Go encodes a nil map).
    items_set: bool,
    activated: bool,
}

impl Schedule {
    fn read(object: &Value) -> Schedule {
        let items = object.pointer("/status/items").and_then(Value::as_object);
        Schedule {
            object: object.clone(),
            template: Spec::read(
                object
                    .pointer("/spec/template/spec")
                    .unwrap_or(&Value::Null),
            ),
            policy: str_at(object, "/spec/schedulePolicyName").into(),
            suspend: object.pointer("/spec/suspend").and_then(Value::as_bool),
            auto_suspend: object
                .pointer("/spec/autoSuspend")
                .and_then(Value::as_bool)
                .unwrap_or(false),
            items_set: items.is_some(),
            items: items
                .into_iter()
                .flatten()
                .map(|(policy_type, list)| {
                    let list = list
                        .as_array()
                        .into_iter()
                        .flatten()
                        .map(|i| Item {
                            name: str_at(i, "/name").into(),
                            creation: i
                                .get("creationTimestamp")
                                .and_then(Value::as_str)
                                .map(str::to_string),
                            finish: i
                                .get("finishTimestamp")
                                .and_then(Value::as_str)
                                .map(str::to_string),
                            status: str_at(i, "/status").into(),
                        })
                        .collect();
                    (policy_type.clone(), list)
                })
                .collect(),
            activated: object
                .pointer("/status/applicationActivated")
                .and_then(Value::as_bool)
                .unwrap_or(false),
        }
    }

    fn name(&self) -> String {
        name_of(&self.object).to_string()
    }

    fn namespace(&self) -> String {
        namespace_of(&self.object).to_string()
    }

    /// The `resource-hash` of `spec.template` Stork keeps on the static copy.
    fn template_hash(&self) -> String {
        hash(&json!({"spec": self.template.encode()}))
    }

    fn encode(&self) -> Value {
        let items = self.items_set.then(|| {
            self.items
                .iter()
                .map(|(policy_type, list)| {
                    let list: Vec<Value> = list
                        .iter()
                        .map(|i| {
                            json!({"name": i.name, "creationTimestamp": i.creation,
                                   "finishTimestamp": i.finish, "status": i.status})
                        })
                        .collect();
                    (policy_type.clone(), Value::Array(list))
                })
                .collect::<Map<String, Value>>()
        });
        json!({
            "apiVersion": STORK_API_VERSION,
            "kind": "MigrationSchedule",
            "metadata": self.object.get("metadata").cloned().unwrap_or(json!({})),
            "spec": {
                "template": {"spec": self.template.encode()},
                "schedulePolicyName": self.policy,
                "suspend": self.suspend,
                "autoSuspend": self.auto_suspend,
            },
            "status": {"items": items, "applicationActivated": self.activated},
        })
    }
}

// ---- Small helpers ----

fn now() -> Timestamp {
    let since = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    let seconds = i64::try_from(since.as_secs()).unwrap_or(i64::MAX);
    let nanos = i32::try_from(since.subsec_nanos()).unwrap_or(0);
    Timestamp::new(seconds, nanos).unwrap_or(Timestamp::UNIX_EPOCH)
}

/// A `metav1.Time` as Go encodes it: RFC 3339 in UTC, to the second.
fn rfc3339(t: Timestamp) -> String {
    t.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
}

fn parse_time(s: &str) -> Option<Timestamp> {
    s.parse().ok()
}

/// Go's `time.Duration.String()` of whole seconds: `0s`, `42s`, `3m5s`, `1h0m5s`.
fn go_duration(seconds: i64) -> String {
    let seconds = seconds.max(0);
    let (h, m, s) = (seconds / 3600, seconds / 60 % 60, seconds % 60);
    match (h, m) {
        (0, 0) => format!("{s}s"),
        (0, _) => format!("{m}m{s}s"),
        _ => format!("{h}h{m}m{s}s"),
    }
}

/// A stable hash of an object: 64-bit FNV-1a of its JSON with keys sorted, as a decimal string (Stork's
/// `hashstructure` values differ; only equality matters).
fn hash(object: &Value) -> String {
    fn canonical(v: &Value, out: &mut String) {
        match v {
            Value::Object(map) => {
                let mut keys: Vec<&String> = map.keys().collect();
                keys.sort();
                out.push('{');
                for key in keys {
                    out.push_str(&Value::String(key.clone()).to_string());
                    out.push(':');
                    canonical(&map[key], out);
                    out.push(',');
                }
                out.push('}');
            }
            Value::Array(items) => {
                out.push('[');
                for item in items {
                    canonical(item, out);
                    out.push(',');
                }
                out.push(']');
            }
            other => out.push_str(&other.to_string()),
        }
    }
    let mut text = String::new();
    canonical(object, &mut text);
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in text.bytes() {
        h ^= u64::from(byte);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h.to_string()
}

/// Whether two objects are equal once `null` values are taken as absent (the API server may drop them).
fn same(a: &Value, b: &Value) -> bool {
    fn strip(v: &Value) -> Value {
        match v {
            Value::Object(map) => Value::Object(
                map.iter()
                    .filter(|(_, v)| !v.is_null())
                    .map(|(k, v)| (k.clone(), strip(v)))
                    .collect(),
            ),
            Value::Array(items) => Value::Array(items.iter().map(strip).collect()),
            other => other.clone(),
        }
    }
    strip(a) == strip(b)
}

/// `labels.Set(selectors).String()`: `k=v` pairs, sorted, comma-separated.
fn label_selector(selectors: Option<&BTreeMap<String, String>>) -> String {
    selectors
        .into_iter()
        .flatten()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(",")
}

/// Whether any label of `object` is one of `selectors` (Stork's `excludeSelectors` rule).
fn matches_any(object: &Value, selectors: &BTreeMap<String, String>) -> bool {
    object
        .pointer("/metadata/labels")
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
        .any(|(k, v)| {
            selectors
                .get(k)
                .is_some_and(|s| Some(s.as_str()) == v.as_str())
        })
}

fn skip_resource(object: &Value) -> bool {
    // The first annotation present decides, as in Stork's SkipResource.
    SKIP_RESOURCE
        .iter()
        .find_map(|key| annotation(object, key))
        .is_some_and(|v| parse_bool(&v))
}

/// Go's `strconv.ParseBool` for true.
fn parse_bool(v: &str) -> bool {
    matches!(v, "1" | "t" | "T" | "true" | "TRUE" | "True")
}

fn str_at<'a>(v: &'a Value, pointer: &str) -> &'a str {
    v.pointer(pointer)
        .and_then(Value::as_str)
        .unwrap_or_default()
}

fn name_of(v: &Value) -> &str {
    str_at(v, "/metadata/name")
}

fn namespace_of(v: &Value) -> &str {
    str_at(v, "/metadata/namespace")
}

fn uid_of(v: &Value) -> &str {
    str_at(v, "/metadata/uid")
}

fn annotation(v: &Value, key: &str) -> Option<String> {
    v.pointer("/metadata/annotations")
        .and_then(|a| a.get(key))
        .and_then(Value::as_str)
        .map(str::to_string)
}

fn metadata_map<'a>(v: &'a mut Value, field: &str) -> Option<&'a mut Map<String, Value>> {
    let metadata = v.as_object_mut()?.entry("metadata").or_insert(json!({}));
    let map = metadata.as_object_mut()?.entry(field).or_insert(json!({}));
    if map.is_null() {
        *map = json!({});
    }
    map.as_object_mut()
}

fn set_annotation(v: &mut Value, key: &str, value: &str) {
    if let Some(annotations) = metadata_map(v, "annotations") {
        annotations.insert(key.to_string(), json!(value));
    }
}

fn set_label(v: &mut Value, key: &str, value: &str) {
    if let Some(labels) = metadata_map(v, "labels") {
        labels.insert(key.to_string(), json!(value));
    }
}

fn finalizers(v: &Value) -> Vec<String> {
    v.pointer("/metadata/finalizers")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .map(str::to_string)
        .collect()
}

fn add_finalizer(v: &mut Value) {
    let mut list = finalizers(v);
    list.push(FINALIZER.to_string());
    if let Some(metadata) = v.get_mut("metadata").and_then(Value::as_object_mut) {
        metadata.insert("finalizers".into(), json!(list));
    }
}

fn remove_finalizer(v: &mut Value) {
    let list: Vec<String> = finalizers(v)
        .into_iter()
        .filter(|f| f != FINALIZER)
        .collect();
    if let Some(metadata) = v.get_mut("metadata").and_then(Value::as_object_mut) {
        if list.is_empty() {
            metadata.remove("finalizers");
        } else {
            metadata.insert("finalizers".into(), json!(list));
        }
    }
}

// ---- The API, on JSON values ----

fn message(e: &kube::Error) -> String {
    match e {
        kube::Error::Api(status) => status.message.clone(),
        other => other.to_string(),
    }
}

fn is_already_exists(e: &kube::Error) -> bool {
    matches!(e, kube::Error::Api(status) if status.is_already_exists())
}

fn is_not_found(e: &kube::Error) -> bool {
    matches!(e, kube::Error::Api(status) if status.is_not_found())
}

fn encoded(kind: Kind, object: DynamicObject) -> Value {
    let mut v = serde_json::to_value(object).unwrap_or(Value::Null);
    if let Some(map) = v.as_object_mut() {
        map.insert("apiVersion".into(), json!(kind.api_version()));
        map.insert("kind".into(), json!(kind.kind));
    }
    v
}

fn decoded(v: &Value) -> Result<DynamicObject, kube::Error> {
    serde_json::from_value(v.clone()).map_err(kube::Error::SerdeError)
}

async fn get(
    client: &Client,
    kind: Kind,
    namespace: Option<&str>,
    name: &str,
) -> Result<Option<Value>, kube::Error> {
    Ok(kind
        .api(client, namespace)
        .get_opt(name)
        .await?
        .map(|o| encoded(kind, o)))
}

async fn list(
    client: &Client,
    kind: Kind,
    namespace: Option<&str>,
    selector: &str,
) -> Result<Vec<Value>, kube::Error> {
    let mut params = ListParams::default();
    if !selector.is_empty() {
        params = params.labels(selector);
    }
    Ok(kind
        .api(client, namespace)
        .list(&params)
        .await?
        .items
        .into_iter()
        .map(|o| encoded(kind, o))
        .collect())
}

async fn create(client: &Client, kind: Kind, object: &Value) -> Result<Value, kube::Error> {
    let created = kind
        .api(client, Some(namespace_of(object)))
        .create(&PostParams::default(), &decoded(object)?)
        .await?;
    Ok(encoded(kind, created))
}

async fn replace(client: &Client, kind: Kind, object: &Value) -> Result<Value, kube::Error> {
    let replaced = kind
        .api(client, Some(namespace_of(object)))
        .replace(name_of(object), &PostParams::default(), &decoded(object)?)
        .await?;
    Ok(encoded(kind, replaced))
}

async fn delete(
    client: &Client,
    kind: Kind,
    namespace: Option<&str>,
    name: &str,
) -> Result<(), kube::Error> {
    match kind
        .api(client, namespace)
        .delete(name, &DeleteParams::default())
        .await
    {
        Ok(_) => Ok(()),
        Err(e) if is_not_found(&e) => Ok(()),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_durations() {
        assert_eq!(go_duration(0), "0s");
        assert_eq!(go_duration(42), "42s");
        assert_eq!(go_duration(185), "3m5s");
        assert_eq!(go_duration(3605), "1h0m5s");
    }

    #[test]
    fn the_hash_ignores_key_order_only() {
        let a = json!({"a": 1, "b": {"c": [1, 2]}});
        let b = json!({"b": {"c": [1, 2]}, "a": 1});
        assert_eq!(hash(&a), hash(&b));
        assert_ne!(hash(&a), hash(&json!({"a": 1, "b": {"c": [2, 1]}})));
    }

    #[test]
    fn workloads_are_scaled_down_with_the_count_recorded() {
        let spec = Spec::default().with_defaults();
        let deployment = Kind::new("apps", "v1", "Deployment", "deployments", true);
        let mut unset = json!({"metadata": {"name": "web"}, "spec": {}});
        prepare(deployment, &mut unset, &spec);
        assert_eq!(unset["spec"]["replicas"], 0);
        assert_eq!(unset["metadata"]["annotations"][MIGRATION_REPLICAS], "1");
        assert_eq!(unset["metadata"]["labels"][MIGRATED], "true");
        // A standby's workload at 0 with a recorded count carries the count forward.
        let mut standby = json!({"metadata": {"name": "web", "annotations": {MIGRATION_REPLICAS: "3"}},
                                 "spec": {"replicas": 0}});
        prepare(deployment, &mut standby, &spec);
        assert_eq!(standby["metadata"]["annotations"][MIGRATION_REPLICAS], "3");
        let cron = Kind::new("batch", "v1", "CronJob", "cronjobs", true);
        let mut job = json!({"metadata": {"name": "report"}, "spec": {"schedule": "* * * * *"}});
        prepare(cron, &mut job, &spec);
        assert_eq!(job["spec"]["suspend"], true);
    }

    #[test]
    fn owner_rules_follow_stork() {
        let rs = Kind::new("apps", "v1", "ReplicaSet", "replicasets", true);
        let cm = Kind::new("", "v1", "ConfigMap", "configmaps", true);
        let owned = |kind: &str, uid: &str| json!({"metadata": {"name": "x", "ownerReferences": [{"kind": kind, "uid": uid}]}});
        let uids: HashSet<String> = ["d1".to_string()].into();
        assert!(!owner_rule_collects(
            rs,
            &owned("Deployment", "d1"),
            &uids,
            false
        ));
        assert!(owner_rule_collects(
            rs,
            &owned("Deployment", "other"),
            &uids,
            false
        ));
        assert!(owner_rule_collects(
            cm,
            &owned("Deployment", "d1"),
            &uids,
            false
        ));
        assert!(!owner_rule_collects(cm, &owned("Pod", "p"), &uids, false));
        assert!(!owner_rule_collects(
            rs,
            &owned("Deployment", "d1"),
            &uids,
            true
        ));
        assert!(owner_rule_collects(cm, &owned("Pod", "p"), &uids, true));
    }

    #[test]
    fn specs_are_written_with_every_key() {
        let spec =
            Spec::read(&json!({"clusterPair": "remote", "namespaces": ["shop"], "unknown": 1}));
        let encoded = spec.clone().with_defaults().encode();
        assert_eq!(encoded["includeVolumes"], true);
        assert_eq!(encoded["startApplications"], false);
        assert_eq!(encoded["selectors"], Value::Null);
        assert_eq!(encoded["preExecRule"], "");
        assert!(encoded.get("unknown").is_none());
        assert_eq!(spec.encode()["includeVolumes"], Value::Null);
    }
}
