//! The port through which the admission rules see the cluster they guard.
//!
//! Rules never talk to an API server: they ask a [`ClusterView`] narrow questions. The adapters live in
//! the `cluster` module: one backed by kube-rs reflectors (the webhook), one by files and the other input objects
//! (`check`).

/// Where a schedule policy name resolves, in Stork's lookup order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PolicySource {
    /// A NamespacedSchedulePolicy in the schedule's namespace.
    Namespaced,
    /// A cluster-scoped SchedulePolicy.
    Cluster,
    /// One of the policies Stork creates at start-up (`default-migration-policy`, ...).
    BuiltIn,
}

/// One cluster domain as ClusterDomainsStatus reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DomainInfo {
    pub name: String,
    /// `true` when Stork reports the domain `Active`.
    pub active: bool,
}

/// What the standby guard needs to know about a DRPlan that covers a namespace.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PlanGuard {
    pub namespace: String,
    pub name: String,
    pub primary: String,
    /// `status.role` as the local reconciler last wrote it (`Primary` / `Standby`), if any.
    pub role: Option<String>,
}

/// The questions the admission rules may ask about the cluster they guard.
///
/// Each method answers from a snapshot; implementations must not block on IO.
pub trait ClusterView: Send + Sync {
    /// Names of the StorageClasses currently marked default (GA or beta annotation), sorted.
    fn default_storage_classes(&self) -> Vec<String>;
    /// The cluster domains Stork reports, or `None` when no ClusterDomainsStatus is known (not a metro cluster,
    /// or the view does not cover that kind).
    fn cluster_domains(&self) -> Option<Vec<DomainInfo>>;
    /// The local cluster domain (`--cluster-domain`, else ClusterDomainsStatus `status.localDomain`).
    fn local_domain(&self) -> Option<String>;
    /// Whether the ClusterPair `namespace/name` has storage options (`spec.options` non-empty); `None` when the
    /// pair is not known.
    fn cluster_pair_has_storage_options(&self, namespace: &str, name: &str) -> Option<bool>;
    /// Where the schedule policy `name` resolves for a schedule in `namespace`; `None` when it does not.
    fn schedule_policy(&self, namespace: &str, name: &str) -> Option<PolicySource>;
    /// The DRPlans whose namespaces include `namespace`.
    fn plans_covering(&self, namespace: &str) -> Vec<PlanGuard>;
    /// Whether an object missing from this view is missing from the cluster. The file-backed view of `check`
    /// holds only what it was given, so rules that would deny because something is absent only warn there.
    fn authoritative(&self) -> bool {
        true
    }
}
