//! The offline cluster view of `drgitops check`, and the manifest reader it is built from.
//!
//! In: files and directories of manifests (multi-document YAML, JSON, `List` kinds). Out: [`Manifest`]s, each
//! with the file, document number and line it came from, and a [`FileView`] answering the rules' questions from
//! them. The view holds only what it was given, so it is not authoritative: a policy it does not know may still
//! exist in the cluster.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use serde_json::Value;
use thiserror::Error;

use crate::manifest::{MAX_FILE_BYTES, parse_document, value_budget};
use crate::plan::DRPlan;
use crate::policy::value::{annotation, default_class_annotation};
use crate::policy::view::{ClusterView, DomainInfo, PlanGuard, PolicySource};
use crate::stork::keys::STORK_GROUP;
use crate::stork::schedule::is_built_in;

/// One object read from a file.
#[derive(Clone, Debug, PartialEq)]
pub struct Manifest {
    /// The file, as named on the command line (or found under a named directory).
    pub file: PathBuf,
    /// 1-based number of the YAML document in the file (1 for JSON).
    pub document: usize,
    /// 1-based line where the document starts.
    pub line: usize,
    pub object: Value,
}

impl Manifest {
    pub fn api_version(&self) -> &str {
        self.object
            .get("apiVersion")
            .and_then(Value::as_str)
            .unwrap_or("")
    }
    pub fn kind(&self) -> &str {
        self.object
            .get("kind")
            .and_then(Value::as_str)
            .unwrap_or("")
    }
    /// The API group (`""` for the core group).
    pub fn group(&self) -> &str {
        self.api_version().rsplit_once('/').map_or("", |(g, _)| g)
    }
    pub fn name(&self) -> &str {
        self.object
            .get("metadata")
            .and_then(|m| m.get("name"))
            .and_then(Value::as_str)
            .unwrap_or("")
    }
    pub fn namespace(&self) -> Option<&str> {
        self.object
            .get("metadata")
            .and_then(|m| m.get("namespace"))
            .and_then(Value::as_str)
            .filter(|n| !n.is_empty())
    }
}

/// Why manifests could not be read. Every variant names the file, and the line where one is known.
#[derive(Debug, Error)]
pub enum LoadError {
    #[error("{}: cannot read", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{}:{line}: invalid YAML: {message}", path.display())]
    Yaml {
        path: PathBuf,
        line: usize,
        message: String,
    },
    #[error("{}:{line}: invalid JSON: {message}", path.display())]
    Json {
        path: PathBuf,
        line: usize,
        message: String,
    },
    #[error("{}:{line}: document {document} is not a Kubernetes object: {problem}", path.display())]
    NotAnObject {
        path: PathBuf,
        line: usize,
        document: usize,
        problem: String,
    },
    #[error("{}: no manifests: a directory needs *.yaml, *.yml or *.json files", path.display())]
    EmptyDirectory { path: PathBuf },
    #[error(
        "{}: {size} bytes is over the limit of {limit} bytes per manifest file; split it into smaller files",
        path.display()
    )]
    TooLarge {
        path: PathBuf,
        size: u64,
        limit: usize,
    },
}

/// Kinds without a namespace; every other kind is namespaced.
const CLUSTER_SCOPED: &[&str] = &[
    "APIService",
    "CertificateSigningRequest",
    "ClusterDomainUpdate",
    "ClusterDomainsStatus",
    "ClusterRole",
    "ClusterRoleBinding",
    "CSIDriver",
    "CSINode",
    "CustomResourceDefinition",
    "IngressClass",
    "MutatingWebhookConfiguration",
    "Namespace",
    "Node",
    "PersistentVolume",
    "PriorityClass",
    "RuntimeClass",
    "SchedulePolicy",
    "StorageClass",
    "ValidatingAdmissionPolicy",
    "ValidatingAdmissionPolicyBinding",
    "ValidatingWebhookConfiguration",
    "VolumeAttachment",
    "VolumeSnapshotClass",
];

/// Whether objects of `kind` live in a namespace.
pub fn is_namespaced(kind: &str) -> bool {
    !CLUSTER_SCOPED.contains(&kind)
}

/// Reads every manifest under `paths`, in order: files as given, directories recursively (only `*.yaml`,
/// `*.yml`, `*.json`, sorted by name). `default_namespace` is set on namespaced objects that have none, as
/// `kubectl -n` would.
pub fn read_manifests(
    paths: &[PathBuf],
    default_namespace: Option<&str>,
) -> Result<(Vec<Manifest>, usize), LoadError> {
    let mut files = Vec::new();
    for path in paths {
        let meta = std::fs::metadata(path).map_err(|source| LoadError::Read {
            path: path.clone(),
            source,
        })?;
        if meta.is_dir() {
            let before = files.len();
            walk(path, &mut files)?;
            if files.len() == before {
                return Err(LoadError::EmptyDirectory { path: path.clone() });
            }
        } else {
            files.push(path.clone());
        }
    }
    let mut manifests = Vec::new();
    for file in &files {
        let too_large = |size: u64| LoadError::TooLarge {
            path: file.clone(),
            size,
            limit: MAX_FILE_BYTES,
        };
        let size = std::fs::metadata(file)
            .map_err(|source| LoadError::Read {
                path: file.clone(),
                source,
            })?
            .len();
        if size > MAX_FILE_BYTES as u64 {
            return Err(too_large(size));
        }
        let text = std::fs::read_to_string(file).map_err(|source| LoadError::Read {
            path: file.clone(),
            source,
        })?;
        manifests.extend(parse_file(file, &text)?);
    }
    if let Some(ns) = default_namespace {
        for m in &mut manifests {
            if m.namespace().is_none()
                && is_namespaced(m.kind())
                && let Some(meta) = m.object.get_mut("metadata").and_then(Value::as_object_mut)
            {
                meta.insert("namespace".to_string(), Value::String(ns.to_string()));
            }
        }
    }
    Ok((manifests, files.len()))
}

fn walk(dir: &Path, files: &mut Vec<PathBuf>) -> Result<(), LoadError> {
    let read_err = |source| LoadError::Read {
        path: dir.to_path_buf(),
        source,
    };
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(read_err)?
        .map(|e| e.map(|e| e.path()))
        .collect::<Result<_, _>>()
        .map_err(read_err)?;
    entries.sort();
    for path in entries {
        if path.is_dir() {
            walk(&path, files)?;
        } else if path
            .extension()
            .is_some_and(|e| e == "yaml" || e == "yml" || e == "json")
        {
            files.push(path);
        }
    }
    Ok(())
}

/// Parses one file's text: JSON when it ends in `.json`, else a YAML stream. Refuses a text over
/// [`MAX_FILE_BYTES`], and YAML whose aliases expand past [`value_budget`] of its size.
pub fn parse_file(path: &Path, text: &str) -> Result<Vec<Manifest>, LoadError> {
    let mut out = Vec::new();
    if text.len() > MAX_FILE_BYTES {
        return Err(LoadError::TooLarge {
            path: path.to_path_buf(),
            size: text.len() as u64,
            limit: MAX_FILE_BYTES,
        });
    }
    if path.extension().is_some_and(|e| e == "json") {
        let value: Value = serde_json::from_str(text).map_err(|e| LoadError::Json {
            path: path.to_path_buf(),
            line: e.line(),
            message: e.to_string(),
        })?;
        push_object(path, 1, 1, value, &mut out)?;
        return Ok(out);
    }
    let mut budget = value_budget(text.len());
    for doc in crate::manifest::documents(text) {
        let (document, line) = (doc.number, doc.line);
        let value: Value = parse_document(doc.text, &mut budget).map_err(|e| {
            let at = e.location().map_or(line, |l| doc.stream_line(l.line()));
            // serde_yaml repeats the location at the end of its message; the file:line prefix already says it.
            let message = e.to_string();
            let message = message
                .split(" at line ")
                .next()
                .unwrap_or(&message)
                .to_string();
            LoadError::Yaml {
                path: path.to_path_buf(),
                line: at,
                message,
            }
        })?;
        if value.is_null() {
            continue;
        }
        push_object(path, document, line, value, &mut out)?;
    }
    Ok(out)
}

fn push_object(
    path: &Path,
    document: usize,
    line: usize,
    value: Value,
    out: &mut Vec<Manifest>,
) -> Result<(), LoadError> {
    let not_object = |problem: String| LoadError::NotAnObject {
        path: path.to_path_buf(),
        line,
        document,
        problem,
    };
    let Value::Object(map) = &value else {
        return Err(not_object(format!(
            "expected a map with apiVersion and kind, found {}",
            crate::policy::value::type_name(&value)
        )));
    };
    let kind = map.get("kind").and_then(Value::as_str).unwrap_or("");
    if kind.is_empty() {
        return Err(not_object(
            "it has no kind: add apiVersion and kind".to_string(),
        ));
    }
    if map
        .get("apiVersion")
        .and_then(Value::as_str)
        .is_none_or(str::is_empty)
    {
        return Err(not_object(format!(
            "the {kind} has no apiVersion: add one, e.g. stork.libopenstorage.org/v1alpha1"
        )));
    }
    if let (Some(item_kind), Some(Value::Array(items))) =
        (kind.strip_suffix("List"), map.get("items"))
    {
        let api_version = map.get("apiVersion").cloned().unwrap_or(Value::Null);
        for item in items {
            let mut item = item.clone();
            // Typed lists (`SchedulePolicyList`) may leave apiVersion and kind off their items.
            if let Some(obj) = item.as_object_mut()
                && !item_kind.is_empty()
            {
                obj.entry("kind")
                    .or_insert_with(|| Value::String(item_kind.to_string()));
                obj.entry("apiVersion")
                    .or_insert_with(|| api_version.clone());
            }
            push_object(path, document, line, item, out)?;
        }
        return Ok(());
    }
    let mut value = value;
    if let Some(obj) = value.as_object_mut() {
        obj.entry("metadata")
            .or_insert_with(|| Value::Object(serde_json::Map::new()));
    }
    out.push(Manifest {
        file: path.to_path_buf(),
        document,
        line,
        object: value,
    });
    Ok(())
}

/// What the offline view knows, from cluster-state files plus the checked input.
#[derive(Debug, Default)]
pub struct FileView {
    /// Default StorageClasses with their position: cluster state first (position 0), then input order.
    default_classes: Vec<(usize, String)>,
    domains: Option<Vec<DomainInfo>>,
    local_domain: Option<String>,
    /// (namespace, name) → has storage options.
    pairs: BTreeMap<(String, String), bool>,
    namespaced_policies: BTreeSet<(String, String)>,
    cluster_policies: BTreeSet<String>,
    plans: Vec<PlanGuard>,
}

impl FileView {
    /// Builds the view. `state` is what the cluster already holds; `input` is what is being checked, in the
    /// order it would be applied. `cluster_domain` overrides ClusterDomainsStatus `status.localDomain`.
    pub fn new(state: &[Manifest], input: &[Manifest], cluster_domain: Option<&str>) -> Self {
        let mut view = FileView::default();
        for m in state {
            view.add(m, 0);
        }
        for (i, m) in input.iter().enumerate() {
            view.add(m, i + 1);
        }
        if let Some(d) = cluster_domain {
            view.local_domain = Some(d.to_string());
        }
        view
    }

    fn add(&mut self, m: &Manifest, position: usize) {
        let ns = m.namespace().unwrap_or("").to_string();
        let name = m.name().to_string();
        match (m.group(), m.kind()) {
            ("storage.k8s.io", "StorageClass") => {
                let is_default = default_class_annotation(|k| annotation(&m.object, k)).is_some();
                if is_default && !self.default_classes.iter().any(|(_, n)| *n == name) {
                    self.default_classes.push((position, name));
                }
            }
            (STORK_GROUP, "ClusterPair") => {
                let has_options = m
                    .object
                    .get("spec")
                    .and_then(|s| s.get("options"))
                    .and_then(Value::as_object)
                    .is_some_and(|o| !o.is_empty());
                self.pairs.insert((ns, name), has_options);
            }
            (STORK_GROUP, "SchedulePolicy") => {
                self.cluster_policies.insert(name);
            }
            (STORK_GROUP, "NamespacedSchedulePolicy") => {
                self.namespaced_policies.insert((ns, name));
            }
            (STORK_GROUP, "ClusterDomainsStatus") => {
                let status = m.object.get("status");
                if let Some(local) = status
                    .and_then(|s| s.get("localDomain"))
                    .and_then(Value::as_str)
                {
                    self.local_domain = Some(local.to_string());
                }
                let infos = status
                    .and_then(|s| s.get("clusterDomainInfos"))
                    .and_then(Value::as_array);
                let domains = infos
                    .into_iter()
                    .flatten()
                    .filter_map(|d| {
                        Some(DomainInfo {
                            name: d.get("name")?.as_str()?.to_string(),
                            active: d.get("state").and_then(Value::as_str) == Some("Active"),
                        })
                    })
                    .collect();
                self.domains = Some(domains);
            }
            (crate::plan::GROUP, "DRPlan") => {
                // A plan that cannot be read guards nothing; `drplan-valid` reports it.
                if let Ok(plan) = DRPlan::deserialize_value(&m.object) {
                    let role = plan
                        .status
                        .as_ref()
                        .and_then(|s| s.role)
                        .map(|r| r.as_str().to_string());
                    for namespace in plan.spec.namespaces_or(&ns) {
                        self.plans.push(PlanGuard {
                            namespace,
                            name: name.clone(),
                            primary: plan.spec.primary.clone(),
                            role: role.clone(),
                        });
                    }
                }
            }
            _ => {}
        }
    }

    /// The view as seen by the input object at `index` (0-based): default StorageClasses count only when they
    /// are in the cluster state or come earlier in the input, so a second default is denied naming the first.
    pub fn at(&self, index: usize) -> ViewAt<'_> {
        ViewAt {
            view: self,
            position: index + 1,
        }
    }
}

/// [`FileView`] from one input object's point of view.
pub struct ViewAt<'a> {
    view: &'a FileView,
    position: usize,
}

impl ClusterView for ViewAt<'_> {
    fn default_storage_classes(&self) -> Vec<String> {
        let mut names: Vec<String> = self
            .view
            .default_classes
            .iter()
            .filter(|(p, _)| *p < self.position)
            .map(|(_, n)| n.clone())
            .collect();
        names.sort();
        names
    }
    fn cluster_domains(&self) -> Option<Vec<DomainInfo>> {
        self.view.domains.clone()
    }
    fn local_domain(&self) -> Option<String> {
        self.view.local_domain.clone()
    }
    fn cluster_pair_has_storage_options(&self, namespace: &str, name: &str) -> Option<bool> {
        self.view
            .pairs
            .get(&(namespace.to_string(), name.to_string()))
            .copied()
    }
    fn schedule_policy(&self, namespace: &str, name: &str) -> Option<PolicySource> {
        if self
            .view
            .namespaced_policies
            .contains(&(namespace.to_string(), name.to_string()))
        {
            Some(PolicySource::Namespaced)
        } else if self.view.cluster_policies.contains(name) {
            Some(PolicySource::Cluster)
        } else if is_built_in(name) {
            Some(PolicySource::BuiltIn)
        } else {
            None
        }
    }
    fn plans_covering(&self, namespace: &str) -> Vec<PlanGuard> {
        self.view
            .plans
            .iter()
            .filter(|p| p.namespace == namespace)
            .cloned()
            .collect()
    }
    fn authoritative(&self) -> bool {
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn yaml_stream_documents_and_lines() {
        let text = "# leading comment\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n---\n# only a comment\n---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: b}\n...\n";
        let ms = parse_file(Path::new("x.yaml"), text).unwrap();
        assert_eq!(ms.len(), 2);
        assert_eq!((ms[0].document, ms[0].line, ms[0].name()), (1, 1, "a"));
        assert_eq!((ms[1].document, ms[1].line, ms[1].name()), (2, 8, "b"));
    }

    #[test]
    fn yaml_error_names_file_and_line() {
        let text = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n---\napiVersion: v1\nkind: ConfigMap\ndata:\n  a: [unclosed\n";
        let err = parse_file(Path::new("bad.yaml"), text)
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("bad.yaml:8: invalid YAML")
                || err.starts_with("bad.yaml:9: invalid YAML"),
            "{err}"
        );
    }

    #[test]
    fn lists_expand_and_typed_list_items_get_their_kind() {
        let text = "apiVersion: stork.libopenstorage.org/v1alpha1\nkind: SchedulePolicyList\nitems:\n- metadata: {name: p1}\n  policy: {interval: {intervalMinutes: 5}}\n- apiVersion: v1\n  kind: ConfigMap\n  metadata: {name: c}\n";
        let ms = parse_file(Path::new("l.yaml"), text).unwrap();
        assert_eq!(ms.len(), 2);
        assert_eq!(
            (ms[0].kind(), ms[0].api_version()),
            ("SchedulePolicy", "stork.libopenstorage.org/v1alpha1")
        );
        assert_eq!(ms[1].kind(), "ConfigMap");
    }

    #[test]
    fn objects_without_kind_are_errors() {
        let err = parse_file(Path::new("k.yaml"), "apiVersion: v1\nmetadata: {name: a}\n")
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("k.yaml:1: document 1 is not a Kubernetes object"),
            "{err}"
        );
        let err = parse_file(
            Path::new("j.json"),
            "{\"kind\": \"ConfigMap\",\n \"apiVersion\": }",
        )
        .unwrap_err()
        .to_string();
        assert!(err.starts_with("j.json:2: invalid JSON"), "{err}");
    }

    #[test]
    fn default_classes_count_only_earlier_input() {
        let class = |name: &str| Manifest {
            file: PathBuf::from("s.yaml"),
            document: 1,
            line: 1,
            object: serde_json::json!({"apiVersion": "storage.k8s.io/v1", "kind": "StorageClass",
                "metadata": {"name": name, "annotations": {"storageclass.kubernetes.io/is-default-class": "true"}}}),
        };
        let view = FileView::new(&[class("state")], &[class("a"), class("b")], None);
        assert_eq!(view.at(0).default_storage_classes(), ["state"]);
        assert_eq!(view.at(1).default_storage_classes(), ["a", "state"]);
    }
}
