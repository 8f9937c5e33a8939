//! Typed Stork objects (`stork.libopenstorage.org/v1alpha1`), faithful to Stork's Go structs.
//!
//! In: JSON or YAML as Stork and kubectl write it. Out: the same document, field for field.
//! Every struct keeps the fields it does not model in a flattened `extra` map, so an object read and written back
//! loses nothing (explicit `null`s excepted: Go reads them as absent too). Every field Stork may omit is an
//! `Option`, so an absent field stays absent and an explicit empty value (`options: {}`) stays explicit.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use k8s_openapi::{ClusterResourceScope, NamespaceResourceScope};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::keys::STORK_API_VERSION;

/// Fields a struct does not model, kept verbatim for the round trip.
pub type Extra = Map<String, Value>;

/// A `map[string]string` of Stork's API.
pub type StringMap = BTreeMap<String, String>;

/// Declares a top-level Stork object: `apiVersion`, `kind`, `metadata`, the given body fields and `extra`, plus
/// `kube::Resource` so `kube::Api<T>` and reflectors work on it.
macro_rules! stork_object {
    (
        $(#[$doc:meta])*
        $name:ident, kind = $kind:literal, plural = $plural:literal, scope = $scope:ty,
        { $($(#[$fdoc:meta])* $field:ident : $ty:ty),* $(,)? }
    ) => {
        $(#[$doc])*
        #[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
        #[serde(rename_all = "camelCase")]
        pub struct $name {
            #[serde(default, skip_serializing_if = "String::is_empty")]
            pub api_version: String,
            #[serde(default, skip_serializing_if = "String::is_empty")]
            pub kind: String,
            #[serde(default)]
            pub metadata: ObjectMeta,
            $(
                $(#[$fdoc])*
                #[serde(default, skip_serializing_if = "Option::is_none")]
                pub $field: Option<$ty>,
            )*
            #[serde(flatten)]
            pub extra: Extra,
        }

        impl $name {
            /// The object's `kind`.
            pub const KIND: &'static str = $kind;
            /// The resource's plural name in API paths.
            pub const PLURAL: &'static str = $plural;
        }

        impl Default for $name {
            fn default() -> Self {
                Self {
                    api_version: STORK_API_VERSION.to_string(),
                    kind: $kind.to_string(),
                    metadata: ObjectMeta::default(),
                    $($field: None,)*
                    extra: Extra::new(),
                }
            }
        }

        impl kube::core::Resource for $name {
            type DynamicType = ();
            type Scope = $scope;

            fn kind(_: &()) -> std::borrow::Cow<'_, str> {
                $kind.into()
            }
            fn group(_: &()) -> std::borrow::Cow<'_, str> {
                super::keys::STORK_GROUP.into()
            }
            fn version(_: &()) -> std::borrow::Cow<'_, str> {
                "v1alpha1".into()
            }
            fn plural(_: &()) -> std::borrow::Cow<'_, str> {
                $plural.into()
            }
            fn meta(&self) -> &ObjectMeta {
                &self.metadata
            }
            fn meta_mut(&mut self) -> &mut ObjectMeta {
                &mut self.metadata
            }
        }
    };
}

// ---------------------------------------------------------------------------------------------------------------
// ClusterPair

stork_object! {
    /// A pairing with a remote cluster (namespaced): how to reach its API server and, for async DR, its storage.
    ClusterPair, kind = "ClusterPair", plural = "clusterpairs", scope = NamespaceResourceScope,
    {
        spec: ClusterPairSpec,
        status: ClusterPairStatus,
    }
}

/// `ClusterPair.spec`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ClusterPairSpec {
    /// The remote cluster's kubeconfig, in client-go's internal shape (named maps, not lists).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config: Option<KubeConfig>,
    /// Storage pairing options: `ip`, `port`, `token`, `mode`, `backuplocation`. Empty for metro (sync) DR.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub options: Option<StringMap>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform_options: Option<PlatformOptions>,
    #[serde(flatten)]
    pub extra: Extra,
}

impl ClusterPairSpec {
    /// Whether the pair asks for storage pairing (Stork pairs storage only when `token` is present; an empty
    /// options map is the metro case).
    pub fn has_storage_options(&self) -> bool {
        self.options.as_ref().is_some_and(|o| !o.is_empty())
    }
}

/// `ClusterPair.spec.platformOptions`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PlatformOptions {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rancher: Option<RancherOptions>,
    #[serde(flatten)]
    pub extra: Extra,
}

/// `ClusterPair.spec.platformOptions.rancher`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RancherOptions {
    /// Source project id → destination project id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub project_mappings: Option<StringMap>,
    #[serde(flatten)]
    pub extra: Extra,
}

/// client-go's internal `clientcmd/api.Config`: clusters, users and contexts are maps keyed by name.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct KubeConfig {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub clusters: Option<BTreeMap<String, KubeCluster>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub users: Option<BTreeMap<String, KubeUser>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub contexts: Option<BTreeMap<String, KubeContext>>,
    /// The context Stork uses.
    #[serde(
        rename = "current-context",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub current_context: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preferences: Option<Value>,
    #[serde(flatten)]
    pub extra: Extra,
}

/// One cluster of a [`KubeConfig`]. `LocationOfOrigin` and other untagged Go fields land in `extra`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct KubeCluster {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server: Option<String>,
    #[serde(
        rename = "certificate-authority-data",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub certificate_authority_data: Option<String>,
    #[serde(
        rename = "insecure-skip-tls-verify",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub insecure_skip_tls_verify: Option<bool>,
    #[serde(flatten)]
    pub extra: Extra,
}

/// One user of a [`KubeConfig`].
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct KubeUser {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
    #[serde(
        rename = "client-certificate-data",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub client_certificate_data: Option<String>,
    #[serde(
        rename = "client-key-data",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub client_key_data: Option<String>,
    #[serde(flatten)]
    pub extra: Extra,
}

/// One context of a [`KubeConfig`].
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct KubeContext {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    #[serde(flatten)]
    pub extra: Extra,
}

/// `ClusterPair.status`, written by Stork only.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ClusterPairStatus {
    /// `""`, `Pending`, `Ready`, `Error`, `Degraded`, `Deleting`, `NotProvided`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scheduler_status: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub storage_status: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remote_storage_id: Option<String>,
    #[serde(flatten)]
    pub extra: Extra,
}

// ---------------------------------------------------------------------------------------------------------------
// Migration and MigrationSchedule

stork_object! {
    /// A one-shot migration of namespaces to the cluster of a ClusterPair (namespaced).
    Migration, kind = "Migration", plural = "migrations", scope = NamespaceResourceScope,
    {
        spec: MigrationSpec,
        status: MigrationStatus,
    }
}

/// `Migration.spec`, also `MigrationSchedule.spec.template.spec`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MigrationSpec {
    /// The ClusterPair, in the Migration's namespace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster_pair: Option<String>,
    /// A pair in the admin namespace for cluster-scoped objects.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub admin_cluster_pair: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespaces: Option<Vec<String>>,
    /// Each `k=v` queried separately, the results unioned with `namespaces`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace_selectors: Option<StringMap>,
    /// Default true; false migrates volumes only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub include_resources: Option<bool>,
    /// Default true; false for metro (sync) DR.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub include_volumes: Option<bool>,
    /// Default false: workloads are scaled to 0 on the destination, their count kept in `migrationReplicas`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_applications: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub purge_deleted_resources: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub skip_service_update: Option<bool>,
    #[serde(
        rename = "includeNetworkPolicyWithCIDR",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub include_network_policy_with_cidr: Option<bool>,
    /// Resource label selector (all pairs must match).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub selectors: Option<StringMap>,
    /// An object is excluded if any pair matches.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exclude_selectors: Option<StringMap>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pre_exec_rule: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub post_exec_rule: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub include_optional_resource_types: Option<Vec<String>>,
    /// Default true.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub skip_deleted_namespaces: Option<bool>,
    /// At most one ResourceTransformation name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transform_specs: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ignore_owner_references_check: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exclude_resource_types: Option<Vec<String>>,
    #[serde(flatten)]
    pub extra: Extra,
}

/// `Migration.status`, written by Stork only. Resources, volumes and the summary stay in `extra`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MigrationStatus {
    /// `""`, `PreExecRule`, `Volumes`, `Applications`, `Final`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stage: Option<String>,
    /// `""`, `Pending`, `InProgress`, `Failed`, `PartialSuccess`, `Successful`, `Purged`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    #[serde(flatten)]
    pub extra: Extra,
}

stork_object! {
    /// Migrations created from a template whenever a schedule policy fires (namespaced).
    MigrationSchedule, kind = "MigrationSchedule", plural = "migrationschedules", scope = NamespaceResourceScope,
    {
        spec: MigrationScheduleSpec,
        status: MigrationScheduleStatus,
    }
}

impl MigrationSchedule {
    /// Whether this is Stork's passive destination copy (never executed, never touched by drgitops).
    pub fn is_static_copy(&self) -> bool {
        self.metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get(super::keys::STATIC_COPY))
            .is_some_and(|v| v == "true")
    }
}

/// `MigrationSchedule.spec`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MigrationScheduleSpec {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub template: Option<MigrationTemplate>,
    /// NamespacedSchedulePolicy in the schedule's namespace, else cluster SchedulePolicy, else a built-in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schedule_policy_name: Option<String>,
    /// Stork flips it itself (autoSuspend, inactive local domain): never fight it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub suspend: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auto_suspend: Option<bool>,
    #[serde(flatten)]
    pub extra: Extra,
}

/// `MigrationSchedule.spec.template`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct MigrationTemplate {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spec: Option<MigrationSpec>,
    #[serde(flatten)]
    pub extra: Extra,
}

/// `MigrationSchedule.status`, written by Stork (and by activation on the destination copy).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MigrationScheduleStatus {
    /// Keyed by policy type: `Interval`, `Daily`, `Weekly`, `Monthly`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub items: Option<BTreeMap<String, Vec<ScheduledMigrationStatus>>>,
    /// Set on the destination copy once its applications were started.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub application_activated: Option<bool>,
    #[serde(flatten)]
    pub extra: Extra,
}

/// One Migration a schedule created.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ScheduledMigrationStatus {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub creation_timestamp: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finish_timestamp: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    #[serde(flatten)]
    pub extra: Extra,
}

// ---------------------------------------------------------------------------------------------------------------
// Schedule policies

stork_object! {
    /// A cluster-scoped schedule policy. Its body is the top-level `policy:`, there is no `spec`.
    SchedulePolicy, kind = "SchedulePolicy", plural = "schedulepolicies", scope = ClusterResourceScope,
    {
        policy: SchedulePolicyItem,
    }
}

stork_object! {
    /// A schedule policy in one namespace; same body as [`SchedulePolicy`], looked up first.
    NamespacedSchedulePolicy, kind = "NamespacedSchedulePolicy", plural = "namespacedschedulepolicies",
    scope = NamespaceResourceScope,
    {
        policy: SchedulePolicyItem,
    }
}

/// The `policy:` body of a (namespaced) schedule policy. Sections coexist and fire independently.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct SchedulePolicyItem {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interval: Option<IntervalPolicy>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub daily: Option<DailyPolicy>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weekly: Option<WeeklyPolicy>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub monthly: Option<MonthlyPolicy>,
    #[serde(flatten)]
    pub extra: Extra,
}

/// `policy.interval`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct IntervalPolicy {
    /// Must be ≥ 1 (absent reads as 0).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interval_minutes: Option<i64>,
    /// Used by snapshot/backup schedules only; 0 means the default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retain: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub options: Option<StringMap>,
    #[serde(flatten)]
    pub extra: Extra,
}

/// `policy.daily`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DailyPolicy {
    /// Go `time.Kitchen` (`3:04PM`) or its lower-case form.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retain: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub options: Option<StringMap>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub force_full_snapshot_day: Option<String>,
    #[serde(flatten)]
    pub extra: Extra,
}

/// `policy.weekly`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WeeklyPolicy {
    /// One of Stork's weekday keys (see [`super::schedule::weekday`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub day: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retain: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub options: Option<StringMap>,
    #[serde(flatten)]
    pub extra: Extra,
}

/// `policy.monthly`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MonthlyPolicy {
    /// Day of the month, 1–31.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub date: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retain: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub options: Option<StringMap>,
    #[serde(flatten)]
    pub extra: Extra,
}

// ---------------------------------------------------------------------------------------------------------------
// Cluster domains

stork_object! {
    /// A request to activate or deactivate one cluster domain of a stretched (metro) storage cluster.
    /// Cluster-scoped, terminal once its status is set.
    ClusterDomainUpdate, kind = "ClusterDomainUpdate", plural = "clusterdomainupdates", scope = ClusterResourceScope,
    {
        spec: ClusterDomainUpdateSpec,
        status: ClusterDomainUpdateStatus,
    }
}

/// `ClusterDomainUpdate.spec`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ClusterDomainUpdateSpec {
    /// The domain name (all-lowercase key, as Stork spells it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub clusterdomain: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub active: Option<bool>,
    #[serde(flatten)]
    pub extra: Extra,
}

/// `ClusterDomainUpdate.status`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ClusterDomainUpdateStatus {
    /// `""`, `Pending`, `Failed`, `Successful`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(flatten)]
    pub extra: Extra,
}

stork_object! {
    /// Stork's report of the cluster domains of the storage cluster (cluster-scoped, status only, one per cluster).
    ClusterDomainsStatus, kind = "ClusterDomainsStatus", plural = "clusterdomainsstatuses",
    scope = ClusterResourceScope,
    {
        status: ClusterDomainsStatusStatus,
    }
}

/// `ClusterDomainsStatus.status`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ClusterDomainsStatusStatus {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub local_domain: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster_domain_infos: Option<Vec<ClusterDomainInfo>>,
    #[serde(flatten)]
    pub extra: Extra,
}

/// One domain of [`ClusterDomainsStatusStatus`].
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ClusterDomainInfo {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// `Active` or `Inactive`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<String>,
    /// `InSync`, `SyncInProgress`, `NotInSync`, `SyncStatusUnknown`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sync_status: Option<String>,
    #[serde(flatten)]
    pub extra: Extra,
}

impl ClusterDomainInfo {
    /// Whether Stork reports the domain `Active`.
    pub fn is_active(&self) -> bool {
        self.state.as_deref() == Some("Active")
    }
}

#[cfg(test)]
mod tests {
    use kube::core::Resource;

    use super::*;

    #[test]
    fn resources_address_the_stork_api_with_their_scope() {
        assert_eq!(
            ClusterPair::url_path(&(), Some("mysql")),
            "/apis/stork.libopenstorage.org/v1alpha1/namespaces/mysql/clusterpairs"
        );
        assert_eq!(
            MigrationSchedule::url_path(&(), Some("mysql")),
            "/apis/stork.libopenstorage.org/v1alpha1/namespaces/mysql/migrationschedules"
        );
        assert_eq!(
            SchedulePolicy::url_path(&(), None),
            "/apis/stork.libopenstorage.org/v1alpha1/schedulepolicies"
        );
        assert_eq!(
            ClusterDomainsStatus::url_path(&(), None),
            "/apis/stork.libopenstorage.org/v1alpha1/clusterdomainsstatuses"
        );
        fn namespaced<K: Resource<Scope = NamespaceResourceScope>>() {}
        fn cluster<K: Resource<Scope = ClusterResourceScope>>() {}
        namespaced::<ClusterPair>();
        namespaced::<Migration>();
        namespaced::<MigrationSchedule>();
        namespaced::<NamespacedSchedulePolicy>();
        cluster::<SchedulePolicy>();
        cluster::<ClusterDomainUpdate>();
        cluster::<ClusterDomainsStatus>();
    }

    #[test]
    fn default_objects_carry_api_version_and_kind() {
        let v = serde_json::to_value(MigrationSchedule::default()).unwrap();
        assert_eq!(v["apiVersion"], "stork.libopenstorage.org/v1alpha1");
        assert_eq!(v["kind"], "MigrationSchedule");
        assert!(
            v.get("spec").is_none() && v.get("status").is_none(),
            "absent parts stay absent: {v}"
        );
    }

    #[test]
    fn static_copies_are_recognised() {
        let mut s = MigrationSchedule::default();
        assert!(!s.is_static_copy());
        s.metadata.annotations = Some(
            [(
                crate::stork::keys::STATIC_COPY.to_string(),
                "true".to_string(),
            )]
            .into_iter()
            .collect(),
        );
        assert!(s.is_static_copy());
    }
}
