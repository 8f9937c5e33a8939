//! The live cluster view: kube-rs watchers feeding small in-memory indexes the admission rules read.
//!
//! In: a kube client and the optional `--cluster-domain`. Out: a [`LiveView`] implementing [`ClusterView`],
//! answering from plain structs in microseconds. Each watched kind keeps only the few fields the rules ask about
//! (never whole objects, so `managedFields` and everything else is dropped on arrival): memory stays small with
//! tens of thousands of objects. A kind whose CRD is not installed yet (Stork not deployed, DRPlan CRD not applied)
//! counts as synced and empty, and its watcher keeps retrying quietly so the kind is picked up once the CRD
//! appears. Locks are held only to copy a few values out, never across an `.await`.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use futures::StreamExt as _;
use kube::api::{Api, ApiResource, DynamicObject, GroupVersionKind};
use kube::runtime::watcher;
use serde_json::Value;

use crate::policy::value::default_class_annotation;
use crate::policy::view::{ClusterView, DomainInfo, PlanGuard, PolicySource};
use crate::stork::keys::STORK_GROUP;
use crate::stork::schedule::is_built_in;

/// One watched kind's index: updated by watch events, replaced whole when the watch (re)lists.
trait Index: Default + Send + Sync + 'static {
    fn apply(&mut self, obj: &DynamicObject);
    fn delete(&mut self, obj: &DynamicObject);
}

fn name_of(obj: &DynamicObject) -> String {
    obj.metadata.name.clone().unwrap_or_default()
}

fn key_of(obj: &DynamicObject) -> (String, String) {
    (
        obj.metadata.namespace.clone().unwrap_or_default(),
        name_of(obj),
    )
}

#[derive(Default)]
struct StorageClasses {
    defaults: BTreeSet<String>,
}

impl Index for StorageClasses {
    fn apply(&mut self, obj: &DynamicObject) {
        let is_default =
            obj.metadata.annotations.as_ref().is_some_and(|a| {
                default_class_annotation(|k| a.get(k).map(String::as_str)).is_some()
            });
        if is_default {
            self.defaults.insert(name_of(obj));
        } else {
            self.defaults.remove(&name_of(obj));
        }
    }
    fn delete(&mut self, obj: &DynamicObject) {
        self.defaults.remove(&name_of(obj));
    }
}

#[derive(Default)]
struct ClusterPairs {
    has_options: HashMap<(String, String), bool>,
}

impl Index for ClusterPairs {
    fn apply(&mut self, obj: &DynamicObject) {
        let has = obj
            .data
            .pointer("/spec/options")
            .and_then(Value::as_object)
            .is_some_and(|o| !o.is_empty());
        self.has_options.insert(key_of(obj), has);
    }
    fn delete(&mut self, obj: &DynamicObject) {
        self.has_options.remove(&key_of(obj));
    }
}

/// Names of SchedulePolicies (namespace empty) or NamespacedSchedulePolicies.
#[derive(Default)]
struct Names {
    names: HashSet<(String, String)>,
}

impl Index for Names {
    fn apply(&mut self, obj: &DynamicObject) {
        self.names.insert(key_of(obj));
    }
    fn delete(&mut self, obj: &DynamicObject) {
        self.names.remove(&key_of(obj));
    }
}

#[derive(Clone, Default)]
struct DomainsStatus {
    local: Option<String>,
    domains: Vec<DomainInfo>,
}

#[derive(Default)]
struct ClusterDomains {
    by_name: HashMap<String, DomainsStatus>,
}

impl Index for ClusterDomains {
    fn apply(&mut self, obj: &DynamicObject) {
        let status = obj.data.get("status");
        let local = status
            .and_then(|s| s.get("localDomain"))
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .map(str::to_string);
        let domains = status
            .and_then(|s| s.get("clusterDomainInfos"))
            .and_then(Value::as_array)
            .map(|infos| {
                infos
                    .iter()
                    .filter_map(|i| {
                        Some(DomainInfo {
                            name: i.get("name")?.as_str()?.to_string(),
                            active: i.get("state").and_then(Value::as_str) == Some("Active"),
                        })
                    })
                    .collect()
            })
            .unwrap_or_default();
        self.by_name
            .insert(name_of(obj), DomainsStatus { local, domains });
    }
    fn delete(&mut self, obj: &DynamicObject) {
        self.by_name.remove(&name_of(obj));
    }
}

impl ClusterDomains {
    /// Stork keeps one ClusterDomainsStatus per cluster; with several (a re-created object), the first by name
    /// that reports anything wins, so the answer is stable.
    fn first(&self) -> Option<&DomainsStatus> {
        let mut names: Vec<&String> = self.by_name.keys().collect();
        names.sort();
        names
            .into_iter()
            .filter_map(|n| self.by_name.get(n))
            .find(|s| s.local.is_some() || !s.domains.is_empty())
    }
}

struct PlanEntry {
    namespaces: Vec<String>,
    primary: String,
    role: Option<String>,
}

#[derive(Default)]
struct Plans {
    plans: HashMap<(String, String), PlanEntry>,
    /// covered namespace → plans covering it, so the guard's lookup does not scan every plan.
    by_namespace: HashMap<String, BTreeSet<(String, String)>>,
}

impl Plans {
    fn remove(&mut self, key: &(String, String)) {
        if let Some(old) = self.plans.remove(key) {
            for ns in old.namespaces {
                if let Some(set) = self.by_namespace.get_mut(&ns) {
                    set.remove(key);
                    if set.is_empty() {
                        self.by_namespace.remove(&ns);
                    }
                }
            }
        }
    }
}

impl Index for Plans {
    fn apply(&mut self, obj: &DynamicObject) {
        let key = key_of(obj);
        self.remove(&key);
        let spec = obj.data.get("spec");
        let mut namespaces: Vec<String> = spec
            .and_then(|s| s.get("namespaces"))
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(Value::as_str)
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default();
        if namespaces.is_empty() {
            namespaces.push(key.0.clone());
        }
        namespaces.sort();
        namespaces.dedup();
        let primary = spec
            .and_then(|s| s.get("primary"))
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        let role = obj
            .data
            .pointer("/status/role")
            .and_then(Value::as_str)
            .map(str::to_string);
        for ns in &namespaces {
            self.by_namespace
                .entry(ns.clone())
                .or_default()
                .insert(key.clone());
        }
        self.plans.insert(
            key,
            PlanEntry {
                namespaces,
                primary,
                role,
            },
        );
    }
    fn delete(&mut self, obj: &DynamicObject) {
        self.remove(&key_of(obj));
    }
}

/// One kind's index plus whether its first list has completed.
struct Reflected<I> {
    index: RwLock<I>,
    synced: AtomicBool,
}

impl<I: Index> Reflected<I> {
    fn new() -> Self {
        Reflected {
            index: RwLock::new(I::default()),
            synced: AtomicBool::new(false),
        }
    }

    fn read<R>(&self, f: impl FnOnce(&I) -> R) -> R {
        // Index updates cannot panic half-way through in a way that breaks the maps' invariants for readers:
        // the worst case is one object's entry missing, which the next relist repairs.
        match self.index.read() {
            Ok(guard) => f(&guard),
            Err(poisoned) => f(&poisoned.into_inner()),
        }
    }

    fn write(&self, f: impl FnOnce(&mut I)) {
        match self.index.write() {
            Ok(mut guard) => f(&mut guard),
            Err(poisoned) => f(&mut poisoned.into_inner()),
        }
    }

    fn replace(&self, next: I) {
        self.write(|current| *current = next);
        self.synced.store(true, Ordering::SeqCst);
    }
}

/// Consumes one watcher stream into `target` until the stream ends (it does not: the watcher retries).
async fn reflect<I: Index>(api: Api<DynamicObject>, target: Arc<Reflected<I>>, what: &'static str) {
    const MIN_BACKOFF: Duration = Duration::from_millis(250);
    // Short enough that a CRD installed after the webhook starts is picked up within seconds.
    const MAX_BACKOFF: Duration = Duration::from_secs(5);
    // Small list pages: each page is decoded whole before the few fields we keep are taken out, so the page size
    // bounds the transient memory of a (re)list with tens of thousands of objects.
    let mut stream = watcher(api, watcher::Config::default().page_size(100)).boxed();
    let mut building: Option<I> = None;
    let mut backoff = MIN_BACKOFF;
    let mut absent_logged = false;
    while let Some(event) = stream.next().await {
        match event {
            Ok(event) => {
                backoff = MIN_BACKOFF;
                absent_logged = false;
                match event {
                    watcher::Event::Init => building = Some(I::default()),
                    watcher::Event::InitApply(obj) => {
                        building.get_or_insert_with(I::default).apply(&obj)
                    }
                    watcher::Event::InitDone => {
                        target.replace(building.take().unwrap_or_default());
                        tracing::debug!(kind = what, "cache synced");
                    }
                    watcher::Event::Apply(obj) => {
                        tracing::trace!(kind = what, name = ?obj.metadata.name, "applied");
                        target.write(|i| i.apply(&obj))
                    }
                    watcher::Event::Delete(obj) => {
                        tracing::trace!(kind = what, name = ?obj.metadata.name, "deleted");
                        target.write(|i| i.delete(&obj))
                    }
                }
            }
            Err(err) => {
                building = None;
                if is_not_found(&err) {
                    // The CRD is not installed: nothing of this kind exists, which is a complete answer.
                    target.replace(I::default());
                    if !absent_logged {
                        tracing::info!(
                            kind = what,
                            "resource not served (CRD not installed?); treated as empty until it appears"
                        );
                        absent_logged = true;
                    }
                } else {
                    tracing::warn!(kind = what, error = %err, retry_in = ?backoff, "watch failed; retrying");
                }
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(MAX_BACKOFF);
            }
        }
    }
}

fn is_not_found(err: &watcher::Error) -> bool {
    match err {
        watcher::Error::InitialListFailed(kube::Error::Api(status))
        | watcher::Error::WatchStartFailed(kube::Error::Api(status))
        | watcher::Error::WatchFailed(kube::Error::Api(status)) => status.code == 404,
        _ => false,
    }
}

fn resource(group: &str, version: &str, kind: &str, plural: &str) -> ApiResource {
    ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk(group, version, kind), plural)
}

/// The reflector-backed [`ClusterView`] of the webhook.
pub struct LiveView {
    cluster_domain: Option<String>,
    storage_classes: Arc<Reflected<StorageClasses>>,
    cluster_pairs: Arc<Reflected<ClusterPairs>>,
    schedule_policies: Arc<Reflected<Names>>,
    namespaced_policies: Arc<Reflected<Names>>,
    domains: Arc<Reflected<ClusterDomains>>,
    plans: Arc<Reflected<Plans>>,
}

impl std::fmt::Debug for LiveView {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LiveView")
            .field("cluster_domain", &self.cluster_domain)
            .field("synced", &self.has_synced())
            .finish_non_exhaustive()
    }
}

impl LiveView {
    /// An empty view not connected to any cluster; fill it with [`LiveView::apply`].
    pub fn new(cluster_domain: Option<String>) -> Self {
        LiveView {
            cluster_domain: cluster_domain.filter(|d| !d.is_empty()),
            storage_classes: Arc::new(Reflected::new()),
            cluster_pairs: Arc::new(Reflected::new()),
            schedule_policies: Arc::new(Reflected::new()),
            namespaced_policies: Arc::new(Reflected::new()),
            domains: Arc::new(Reflected::new()),
            plans: Arc::new(Reflected::new()),
        }
    }

    /// Starts one watcher per kind on the current tokio runtime; they run until the runtime shuts down.
    pub fn start(client: kube::Client, cluster_domain: Option<String>) -> Arc<Self> {
        let view = Arc::new(LiveView::new(cluster_domain));
        let stork = STORK_GROUP;
        let all = |ar: &ApiResource| Api::<DynamicObject>::all_with(client.clone(), ar);
        let sc = resource("storage.k8s.io", "v1", "StorageClass", "storageclasses");
        tokio::spawn(reflect(
            all(&sc),
            view.storage_classes.clone(),
            "StorageClass",
        ));
        let cp = resource(stork, "v1alpha1", "ClusterPair", "clusterpairs");
        tokio::spawn(reflect(all(&cp), view.cluster_pairs.clone(), "ClusterPair"));
        let sp = resource(stork, "v1alpha1", "SchedulePolicy", "schedulepolicies");
        tokio::spawn(reflect(
            all(&sp),
            view.schedule_policies.clone(),
            "SchedulePolicy",
        ));
        let nsp = resource(
            stork,
            "v1alpha1",
            "NamespacedSchedulePolicy",
            "namespacedschedulepolicies",
        );
        tokio::spawn(reflect(
            all(&nsp),
            view.namespaced_policies.clone(),
            "NamespacedSchedulePolicy",
        ));
        let cds = resource(
            stork,
            "v1alpha1",
            "ClusterDomainsStatus",
            "clusterdomainsstatuses",
        );
        tokio::spawn(reflect(
            all(&cds),
            view.domains.clone(),
            "ClusterDomainsStatus",
        ));
        let plan = resource("drgitops.dev", "v1alpha1", "DRPlan", "drplans");
        tokio::spawn(reflect(all(&plan), view.plans.clone(), "DRPlan"));
        view
    }

    /// True once every kind has completed its first list (or is known not to be served).
    pub fn has_synced(&self) -> bool {
        [
            self.storage_classes.synced.load(Ordering::SeqCst),
            self.cluster_pairs.synced.load(Ordering::SeqCst),
            self.schedule_policies.synced.load(Ordering::SeqCst),
            self.namespaced_policies.synced.load(Ordering::SeqCst),
            self.domains.synced.load(Ordering::SeqCst),
            self.plans.synced.load(Ordering::SeqCst),
        ]
        .into_iter()
        .all(|s| s)
    }

    /// Records one object as a watch `Apply` event would, dispatching on its kind; other kinds are ignored.
    pub fn apply(&self, obj: &DynamicObject) {
        let kind = obj
            .types
            .as_ref()
            .map(|t| t.kind.as_str())
            .unwrap_or_default();
        match kind {
            "StorageClass" => self.storage_classes.write(|i| i.apply(obj)),
            "ClusterPair" => self.cluster_pairs.write(|i| i.apply(obj)),
            "SchedulePolicy" => self.schedule_policies.write(|i| i.apply(obj)),
            "NamespacedSchedulePolicy" => self.namespaced_policies.write(|i| i.apply(obj)),
            "ClusterDomainsStatus" => self.domains.write(|i| i.apply(obj)),
            "DRPlan" => self.plans.write(|i| i.apply(obj)),
            _ => {}
        }
    }

    /// Marks every kind synced, for a view filled by [`LiveView::apply`] rather than by watchers.
    pub fn mark_synced(&self) {
        for flag in [
            &self.storage_classes.synced,
            &self.cluster_pairs.synced,
            &self.schedule_policies.synced,
            &self.namespaced_policies.synced,
            &self.domains.synced,
            &self.plans.synced,
        ] {
            flag.store(true, Ordering::SeqCst);
        }
    }
}

impl ClusterView for LiveView {
    fn default_storage_classes(&self) -> Vec<String> {
        self.storage_classes
            .read(|i| i.defaults.iter().cloned().collect())
    }

    fn cluster_domains(&self) -> Option<Vec<DomainInfo>> {
        self.domains.read(|i| i.first().map(|s| s.domains.clone()))
    }

    fn local_domain(&self) -> Option<String> {
        if let Some(domain) = &self.cluster_domain {
            return Some(domain.clone());
        }
        self.domains
            .read(|i| i.first().and_then(|s| s.local.clone()))
    }

    fn cluster_pair_has_storage_options(&self, namespace: &str, name: &str) -> Option<bool> {
        self.cluster_pairs.read(|i| {
            i.has_options
                .get(&(namespace.to_string(), name.to_string()))
                .copied()
        })
    }

    fn schedule_policy(&self, namespace: &str, name: &str) -> Option<PolicySource> {
        if self
            .namespaced_policies
            .read(|i| i.names.contains(&(namespace.to_string(), name.to_string())))
        {
            return Some(PolicySource::Namespaced);
        }
        if self
            .schedule_policies
            .read(|i| i.names.contains(&(String::new(), name.to_string())))
        {
            return Some(PolicySource::Cluster);
        }
        is_built_in(name).then_some(PolicySource::BuiltIn)
    }

    fn plans_covering(&self, namespace: &str) -> Vec<PlanGuard> {
        self.plans.read(|i| {
            let Some(keys) = i.by_namespace.get(namespace) else {
                return Vec::new();
            };
            keys.iter()
                .filter_map(|key| {
                    let plan = i.plans.get(key)?;
                    Some(PlanGuard {
                        namespace: key.0.clone(),
                        name: key.1.clone(),
                        primary: plan.primary.clone(),
                        role: plan.role.clone(),
                    })
                })
                .collect()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn obj(json: serde_json::Value) -> DynamicObject {
        serde_json::from_value(json).expect("object")
    }

    #[test]
    fn answers_from_applied_objects() {
        let view = LiveView::new(None);
        view.apply(&obj(serde_json::json!({"apiVersion":"storage.k8s.io/v1","kind":"StorageClass",
            "metadata":{"name":"fast","annotations":{"storageclass.kubernetes.io/is-default-class":"true"}}})));
        view.apply(&obj(
            serde_json::json!({"apiVersion":"storage.k8s.io/v1","kind":"StorageClass",
            "metadata":{"name":"slow"}}),
        ));
        assert_eq!(view.default_storage_classes(), vec!["fast".to_string()]);
        view.apply(&obj(
            serde_json::json!({"apiVersion":"storage.k8s.io/v1","kind":"StorageClass",
            "metadata":{"name":"fast"}}),
        ));
        assert!(view.default_storage_classes().is_empty());

        view.apply(&obj(serde_json::json!({"apiVersion":"drgitops.dev/v1alpha1","kind":"DRPlan",
            "metadata":{"name":"p","namespace":"admin"},"spec":{"primary":"a","namespaces":["app1","app2"]},
            "status":{"role":"Standby"}})));
        let guards = view.plans_covering("app2");
        assert_eq!(guards.len(), 1);
        assert_eq!(guards[0].role.as_deref(), Some("Standby"));
        assert!(view.plans_covering("admin").is_empty());
        view.apply(&obj(serde_json::json!({"apiVersion":"drgitops.dev/v1alpha1","kind":"DRPlan",
            "metadata":{"name":"p","namespace":"admin"},"spec":{"primary":"a","namespaces":["app1"]}})));
        assert!(view.plans_covering("app2").is_empty());

        assert_eq!(
            view.schedule_policy("x", "default-daily-policy"),
            Some(PolicySource::BuiltIn)
        );
        assert_eq!(view.schedule_policy("x", "mine"), None);
        view.apply(&obj(
            serde_json::json!({"apiVersion":"stork.libopenstorage.org/v1alpha1",
            "kind":"NamespacedSchedulePolicy","metadata":{"name":"mine","namespace":"x"}}),
        ));
        assert_eq!(
            view.schedule_policy("x", "mine"),
            Some(PolicySource::Namespaced)
        );
        assert_eq!(view.schedule_policy("y", "mine"), None);

        view.apply(&obj(
            serde_json::json!({"apiVersion":"stork.libopenstorage.org/v1alpha1",
            "kind":"ClusterDomainsStatus","metadata":{"name":"px"},
            "status":{"localDomain":"east","clusterDomainInfos":[{"name":"east","state":"Active"},
            {"name":"west","state":"Inactive"}]}}),
        ));
        assert_eq!(view.local_domain().as_deref(), Some("east"));
        assert_eq!(
            view.cluster_domains()
                .map(|d| d.iter().filter(|d| d.active).count()),
            Some(1)
        );
        assert_eq!(
            LiveView::new(Some("west".into())).local_domain().as_deref(),
            Some("west")
        );
    }

    /// The webhook's view and `check`'s view count the same classes default: only `"true"`, as kube-apiserver's
    /// DefaultStorageClass admission does, under either annotation.
    #[test]
    fn live_and_file_views_agree_on_default_classes() {
        use crate::cluster::file::{FileView, Manifest};
        use crate::stork::keys::DEFAULT_STORAGE_CLASS_KEYS;

        let values = [
            Some("true"),
            Some("True"),
            Some("TRUE"),
            Some("false"),
            None,
        ];
        let mut classes = Vec::new();
        for key in DEFAULT_STORAGE_CLASS_KEYS {
            for (i, value) in values.iter().enumerate() {
                let name = format!("{}-{i}", if key.contains(".beta.") { "beta" } else { "ga" });
                let annotations = match value {
                    Some(v) => serde_json::json!({ key: v }),
                    None => serde_json::json!({}),
                };
                classes.push(
                    serde_json::json!({"apiVersion": "storage.k8s.io/v1", "kind": "StorageClass",
                    "metadata": {"name": name, "annotations": annotations}}),
                );
            }
        }
        let live = LiveView::new(None);
        for class in &classes {
            live.apply(&obj(class.clone()));
        }
        let state: Vec<Manifest> = classes
            .iter()
            .map(|object| Manifest {
                file: "state.yaml".into(),
                document: 1,
                line: 1,
                object: object.clone(),
            })
            .collect();
        let file = FileView::new(&state, &[], None);
        assert_eq!(live.default_storage_classes(), ["beta-0", "ga-0"]);
        assert_eq!(
            file.at(0).default_storage_classes(),
            live.default_storage_classes()
        );
    }
}
