//! The in-memory object store: one global increasing resourceVersion, objects keyed by resource and name, a
//! bounded history of changes that watches replay, and continue-token pages.
//!
//! In: fully prepared objects to put or remove. Out: stored objects, lists, and change events. The store knows
//! nothing of HTTP; the REST layer decides what to write. Holds only a std mutex, never across an await.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};

use serde_json::{Value, json};

use crate::resources::{ResourceType, builtin_types, crd_types};

/// The kind of a change, as watch events name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventType {
    Added,
    Modified,
    Deleted,
}

impl EventType {
    pub fn as_str(self) -> &'static str {
        match self {
            EventType::Added => "ADDED",
            EventType::Modified => "MODIFIED",
            EventType::Deleted => "DELETED",
        }
    }
}

/// One stored change, replayed to watches.
#[derive(Debug, Clone)]
pub struct Change {
    pub rv: u64,
    pub group: String,
    pub plural: String,
    pub namespace: String,
    pub kind: EventType,
    /// The new state (for DELETED: the last state stamped with the deletion's resourceVersion).
    pub object: Arc<Value>,
    /// The state before the change (None for ADDED), so selector watches can see objects leave their set.
    pub old: Option<Arc<Value>>,
}

/// A stored snapshot page for `limit`/`continue` listing.
#[derive(Debug, Clone)]
pub struct Page {
    pub rv: u64,
    pub items: Vec<Value>,
}

/// Object map key: (namespace or "", name).
pub type ObjKey = (String, String);

/// Everything the server holds.
#[derive(Debug)]
pub struct State {
    pub rv: u64,
    pub types: Vec<ResourceType>,
    pub objects: BTreeMap<(String, String), BTreeMap<ObjKey, Value>>,
    pub history: VecDeque<Change>,
    /// Watches from a resourceVersion below this get 410 Expired.
    pub compacted_rv: u64,
    /// Bumped by every explicit compaction; open watches that see it change end with 410.
    pub compaction_epoch: u64,
    pub max_history: usize,
    pub pages: HashMap<String, Page>,
    next_page: u64,
    /// Report every Deployment/StatefulSet/ReplicaSet as fully ready (no controller runs otherwise).
    pub simulate_workloads: bool,
}

/// Pages kept for continue tokens before the oldest expire.
const MAX_PAGES: usize = 256;

/// The RFC 3339 timestamp (second precision) the apiserver writes.
pub fn now_rfc3339() -> String {
    jiff::Timestamp::now()
        .strftime("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
}

impl State {
    fn new(max_history: usize) -> Self {
        let mut s = State {
            rv: 1,
            types: builtin_types(),
            objects: BTreeMap::new(),
            history: VecDeque::new(),
            compacted_rv: 0,
            compaction_epoch: 0,
            max_history,
            pages: HashMap::new(),
            next_page: 0,
            simulate_workloads: false,
        };
        let now = now_rfc3339();
        for ns in ["default", "kube-system", "kube-public", "kube-node-lease"] {
            s.rv += 1;
            let obj = json!({
                "apiVersion": "v1", "kind": "Namespace",
                "metadata": {"name": ns, "uid": uuid::Uuid::new_v4().to_string(),
                    "resourceVersion": s.rv.to_string(), "creationTimestamp": now,
                    "labels": {"kubernetes.io/metadata.name": ns}},
                "spec": {"finalizers": ["kubernetes"]},
                "status": {"phase": "Active"}
            });
            s.objects
                .entry((String::new(), "namespaces".into()))
                .or_default()
                .insert((String::new(), ns.into()), obj);
        }
        s
    }

    /// The served type for `group/version/plural`.
    pub fn lookup(&self, group: &str, version: &str, plural: &str) -> Option<ResourceType> {
        self.types
            .iter()
            .find(|t| t.group == group && t.version == version && t.plural == plural)
            .cloned()
    }

    /// The served type for an `apiVersion` + `kind` (admission configs, owner references).
    pub fn lookup_kind(&self, api_version: &str, kind: &str) -> Option<ResourceType> {
        let (group, version) = api_version.split_once('/').unwrap_or(("", api_version));
        self.types
            .iter()
            .find(|t| t.group == group && t.version == version && t.kind == kind)
            .cloned()
    }

    /// One stored object.
    pub fn get(&self, rt: &ResourceType, ns: &str, name: &str) -> Option<&Value> {
        self.objects
            .get(&rt.store_key())?
            .get(&(ns.to_string(), name.to_string()))
    }

    /// All stored objects of a resource, in one namespace or all (`None`), ordered by namespace then name.
    pub fn list(&self, rt: &ResourceType, ns: Option<&str>) -> Vec<Value> {
        self.objects
            .get(&rt.store_key())
            .map(|m| {
                m.iter()
                    .filter(|((n, _), _)| ns.is_none_or(|want| want == n))
                    .map(|(_, v)| v.clone())
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Whether a namespace exists, and whether it is being deleted.
    pub fn namespace_state(&self, ns: &str) -> Option<bool> {
        self.objects
            .get(&(String::new(), "namespaces".into()))
            .and_then(|m| m.get(&(String::new(), ns.to_string())))
            .map(|n| n.pointer("/metadata/deletionTimestamp").is_some())
    }

    /// Labels of a namespace (for admission namespaceSelector).
    pub fn namespace_labels(&self, ns: &str) -> Option<BTreeMap<String, String>> {
        self.objects
            .get(&(String::new(), "namespaces".into()))
            .and_then(|m| m.get(&(String::new(), ns.to_string())))
            .map(crate::selectors::labels_of)
    }

    fn push_change(&mut self, change: Change) {
        self.history.push_back(change);
        while self.history.len() > self.max_history {
            if let Some(old) = self.history.pop_front() {
                self.compacted_rv = self.compacted_rv.max(old.rv);
            }
        }
    }

    /// Stores `obj` (metadata already complete except resourceVersion), stamps a new resourceVersion and records
    /// the change. Returns the stored object.
    pub fn put(&mut self, rt: &ResourceType, mut obj: Value) -> Value {
        if rt.group == "events.k8s.io"
            && obj.get("apiVersion").and_then(Value::as_str) == Some("events.k8s.io/v1")
        {
            obj = crate::convert::events_event_to_core(&obj);
        }
        if self.simulate_workloads
            && rt.group == "apps"
            && matches!(
                rt.kind.as_str(),
                "Deployment" | "StatefulSet" | "ReplicaSet"
            )
        {
            let status = crate::defaults::simulated_workload_status(&rt.kind, &obj, &now_rfc3339());
            obj["status"] = status;
        }
        let (group, plural) = rt.store_key();
        self.rv += 1;
        obj["metadata"]["resourceVersion"] = json!(self.rv.to_string());
        let ns = obj
            .pointer("/metadata/namespace")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        let name = obj
            .pointer("/metadata/name")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        let map = self
            .objects
            .entry((group.clone(), plural.clone()))
            .or_default();
        let old = map.insert((ns.clone(), name), obj.clone());
        let kind = if old.is_some() {
            EventType::Modified
        } else {
            EventType::Added
        };
        self.push_change(Change {
            rv: self.rv,
            group,
            plural,
            namespace: ns,
            kind,
            object: Arc::new(obj.clone()),
            old: old.map(Arc::new),
        });
        if rt.group == "apiextensions.k8s.io" && rt.plural == "customresourcedefinitions" {
            self.register_crd(&obj);
        }
        obj
    }

    /// Removes an object, recording a DELETED change with a new resourceVersion. Returns its last state.
    pub fn remove(&mut self, rt: &ResourceType, ns: &str, name: &str) -> Option<Value> {
        let key = rt.store_key();
        let mut obj = self
            .objects
            .get_mut(&key)?
            .remove(&(ns.to_string(), name.to_string()))?;
        self.rv += 1;
        let old = obj.clone();
        obj["metadata"]["resourceVersion"] = json!(self.rv.to_string());
        self.push_change(Change {
            rv: self.rv,
            group: key.0,
            plural: key.1,
            namespace: ns.to_string(),
            kind: EventType::Deleted,
            object: Arc::new(obj.clone()),
            old: Some(Arc::new(old)),
        });
        if rt.group == "apiextensions.k8s.io" && rt.plural == "customresourcedefinitions" {
            self.unregister_crd(&obj);
        }
        Some(obj)
    }

    /// Serves (or re-serves, after an update) the versions of a CRD.
    fn register_crd(&mut self, crd: &Value) {
        self.unregister_types_of(crd);
        self.types.extend(crd_types(crd));
    }

    fn unregister_types_of(&mut self, crd: &Value) {
        let group = crd
            .pointer("/spec/group")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let plural = crd
            .pointer("/spec/names/plural")
            .and_then(Value::as_str)
            .unwrap_or_default();
        self.types
            .retain(|t| !(t.custom && t.group == group && t.plural == plural));
    }

    fn unregister_crd(&mut self, crd: &Value) {
        self.unregister_types_of(crd);
        let group = crd
            .pointer("/spec/group")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let plural = crd
            .pointer("/spec/names/plural")
            .and_then(Value::as_str)
            .unwrap_or_default();
        self.objects
            .remove(&(group.to_string(), plural.to_string()));
    }

    /// Keeps a snapshot page for a continue token and returns the token.
    pub fn save_page(&mut self, page: Page) -> String {
        if self.pages.len() >= MAX_PAGES {
            // Expire the oldest token: tokens are numbered in order.
            if let Some(oldest) = self
                .pages
                .keys()
                .min_by_key(|k| k.parse::<u64>().unwrap_or(0))
                .cloned()
            {
                self.pages.remove(&oldest);
            }
        }
        self.next_page += 1;
        let token = self.next_page.to_string();
        self.pages.insert(token.clone(), page);
        token
    }

    /// Drops all watch history and continue tokens: later watches from an older resourceVersion, open watches and
    /// continued lists get 410 Expired.
    pub fn compact(&mut self) {
        self.history.clear();
        self.compacted_rv = self.rv;
        self.compaction_epoch += 1;
        self.pages.clear();
    }
}

/// The shared store: state behind a std mutex plus a notifier that wakes watches on every change. Writes hold
/// no lock while admission webhooks run; they re-check the object's resourceVersion when they commit.
#[derive(Debug)]
pub struct Store {
    state: Mutex<State>,
    notify: tokio::sync::watch::Sender<u64>,
    /// Watches currently streaming, so tests can wait for a client to be watching instead of sleeping.
    pub open_watches: std::sync::atomic::AtomicUsize,
}

impl Store {
    pub fn new(max_history: usize) -> Self {
        let (notify, _) = tokio::sync::watch::channel(0);
        Store {
            state: Mutex::new(State::new(max_history)),
            notify,
            open_watches: std::sync::atomic::AtomicUsize::new(0),
        }
    }

    /// Locks the state. Poisoning only follows a panic in another request; the state is still consistent
    /// because every mutation completes before the guard drops, so keep serving.
    pub fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Wakes every watch after a change.
    pub fn notify(&self) {
        self.notify.send_modify(|n| *n += 1);
    }

    /// A receiver that changes whenever [`Store::notify`] runs.
    pub fn subscribe(&self) -> tokio::sync::watch::Receiver<u64> {
        self.notify.subscribe()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_namespaces_exist() {
        let s = State::new(100);
        for ns in ["default", "kube-system", "kube-public", "kube-node-lease"] {
            assert_eq!(s.namespace_state(ns), Some(false), "{ns}");
        }
    }

    #[test]
    fn bounded_history_raises_compacted_rv() {
        let mut s = State::new(2);
        let rt = s.lookup("", "v1", "configmaps").unwrap();
        for i in 0..4 {
            s.put(
                &rt,
                json!({"metadata": {"name": format!("c{i}"), "namespace": "default"}}),
            );
        }
        assert_eq!(s.history.len(), 2);
        assert_eq!(s.compacted_rv, s.rv - 2);
    }

    #[test]
    fn crd_put_serves_its_types_and_remove_drops_them() {
        let mut s = State::new(100);
        let rt = s
            .lookup("apiextensions.k8s.io", "v1", "customresourcedefinitions")
            .unwrap();
        let crd = json!({"metadata": {"name": "widgets.example.com"},
            "spec": {"group": "example.com", "scope": "Namespaced", "names": {"kind": "Widget", "plural": "widgets"},
                "versions": [{"name": "v1", "served": true, "storage": true}]}});
        s.put(&rt, crd);
        assert!(s.lookup("example.com", "v1", "widgets").is_some());
        s.remove(&rt, "", "widgets.example.com");
        assert!(s.lookup("example.com", "v1", "widgets").is_none());
    }
}
