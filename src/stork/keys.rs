//! Annotation and label keys Stork and drgitops read and write, in one place.
//!
//! Stork writes `stork.libopenstorage.org/migrationReplicas`; its docs and example comments spell it
//! `stork.openstorage.org/migrationReplicas`. Both spellings are read, only the real one is written.

use std::collections::BTreeMap;

/// Stork's admin namespace unless its deployment says otherwise (`--admin-namespace` of stork): objects there
/// (ClusterPairs, MigrationSchedules, DRPlans) may act on other namespaces.
pub const DEFAULT_ADMIN_NAMESPACE: &str = "kube-system";

/// The API group of every Stork object.
pub const STORK_GROUP: &str = "stork.libopenstorage.org";
/// The `apiVersion` of every Stork object.
pub const STORK_API_VERSION: &str = "stork.libopenstorage.org/v1alpha1";

/// Original `spec.replicas` of a workload Stork (or drgitops) scaled to 0, as a decimal string.
pub const MIGRATION_REPLICAS: &str = "stork.libopenstorage.org/migrationReplicas";
/// The spelling of [`MIGRATION_REPLICAS`] found in Stork's docs and YAML comments; read, never written.
pub const MIGRATION_REPLICAS_DOC_SPELLING: &str = "stork.openstorage.org/migrationReplicas";
/// Both spellings of the replica annotation, the real one first.
pub const MIGRATION_REPLICAS_KEYS: [&str; 2] =
    [MIGRATION_REPLICAS, MIGRATION_REPLICAS_DOC_SPELLING];

/// Annotation (and, on scaled-down workloads, label) `"true"` on every migrated object.
pub const MIGRATED: &str = "stork.libopenstorage.org/migrated";
/// Name of the Migration that brought an object over.
pub const MIGRATION_NAME: &str = "stork.libopenstorage.org/migrationName";
/// Namespace of the Migration that brought an object over.
pub const MIGRATION_NAMESPACE: &str = "stork.libopenstorage.org/migrationNamespace";
/// Time of the migration, `2006-01-02-150405`.
pub const MIGRATION_TIME: &str = "stork.libopenstorage.org/migrationTime";
/// Change detection hash on migrated objects and static-copy schedules.
pub const RESOURCE_HASH: &str = "stork.libopenstorage.org/resource-hash";
/// Original reclaim policy of a migrated PersistentVolume.
pub const RECLAIM_POLICY: &str = "stork.libopenstorage.org/reclaimPolicy";
/// The parent MigrationSchedule of a scheduled Migration.
pub const MIGRATION_SCHEDULE_NAME: &str = "stork.libopenstorage.org/migration-schedule-name";
/// `"true"` on the passive destination copy of a MigrationSchedule; drgitops never touches such schedules.
pub const STATIC_COPY: &str = "stork.libopenstorage.org/static-copy";
/// On storkctl-made BackupLocations and Secrets, deleted together with their ClusterPair.
pub const CREATED_BY_STORK: &str = "stork.libopenstorage.org/created-by-stork";
/// `"true"` on source objects Stork must not migrate.
pub const SKIP_RESOURCE: &str = "stork.libopenstorage.org/skip-resource";
/// Legacy spelling of [`SKIP_RESOURCE`].
pub const SKIP_RESOURCE_LEGACY: &str = "stork.libopenstorage.org/skipresource";
/// Pod annotation that makes Stork's own webhook skip the pod.
pub const DISABLE_ADMISSION_CONTROLLER: &str =
    "stork.libopenstorage.org/disable-admission-controller";
/// Finalizer Stork adds to ClusterPairs, Migrations and MigrationSchedules.
pub const STORK_FINALIZER: &str = "stork.libopenstorage.org/finalizer-cleanup";
/// Name of the Secret holding the PX auth token, on ClusterPairs and ClusterDomainUpdates of secured clusters.
pub const AUTH_SECRET_NAME: &str = "openstorage.io/auth-secret-name";
/// Namespace of [`AUTH_SECRET_NAME`].
pub const AUTH_SECRET_NAMESPACE: &str = "openstorage.io/auth-secret-namespace";

/// The annotation making a StorageClass the default (GA spelling).
pub const DEFAULT_STORAGE_CLASS: &str = "storageclass.kubernetes.io/is-default-class";
/// The beta spelling of [`DEFAULT_STORAGE_CLASS`], still honoured by the API server.
pub const DEFAULT_STORAGE_CLASS_BETA: &str = "storageclass.beta.kubernetes.io/is-default-class";
/// Both default-class annotations, GA first.
pub const DEFAULT_STORAGE_CLASS_KEYS: [&str; 2] =
    [DEFAULT_STORAGE_CLASS, DEFAULT_STORAGE_CLASS_BETA];

/// `app.kubernetes.io/managed-by` on every object drgitops renders or applies.
pub const MANAGED_BY: &str = "app.kubernetes.io/managed-by";
/// The value of [`MANAGED_BY`] on rendered objects.
pub const MANAGED_BY_VALUE: &str = "drgitops";
/// The field manager of every write drgitops makes (server-side apply, patches, status).
pub const FIELD_MANAGER: &str = "drgitops";
/// The DRPlan an object was rendered for.
pub const PLAN_LABEL: &str = "drgitops.dev/plan";
/// The git revision a DRPlan was applied from.
pub const REVISION_ANNOTATION: &str = "drgitops.dev/revision";
/// The file (and document) a DRPlan came from.
pub const SOURCE_ANNOTATION: &str = "drgitops.dev/source";
/// `"true"` suspends reconciliation of one DRPlan, like Flux's `spec.suspend`: its objects are left exactly as they
/// are until it is removed.
pub const SUSPEND_ANNOTATION: &str = "drgitops.dev/suspend";

/// Label on the final Migrations the old primary of a planned failover creates (value `"true"`).
pub const FINAL_MIGRATION_LABEL: &str = "drgitops.dev/final-migration";
/// Annotation on a final Migration: the `startedAt` of the transition that created it, so a Migration of an
/// earlier transition that had the same name is recognised as stale.
pub const TRANSITION_ANNOTATION: &str = "drgitops.dev/transition-started-at";

/// The replica annotation's value under either spelling, the real one winning.
pub fn migration_replicas(annotations: &BTreeMap<String, String>) -> Option<&str> {
    MIGRATION_REPLICAS_KEYS
        .iter()
        .find_map(|k| annotations.get(*k).map(String::as_str))
}

/// Whether an annotation value marks a StorageClass default: the API server accepts exactly `"true"`.
pub fn is_default_class_value(value: &str) -> bool {
    value == "true"
}

#[cfg(test)]
mod tests {
    use super::*;

    fn annotations(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn migration_replicas_reads_both_spellings_real_one_first() {
        assert_eq!(
            migration_replicas(&annotations(&[(MIGRATION_REPLICAS, "3")])),
            Some("3")
        );
        assert_eq!(
            migration_replicas(&annotations(&[(MIGRATION_REPLICAS_DOC_SPELLING, "2")])),
            Some("2")
        );
        let both = annotations(&[
            (MIGRATION_REPLICAS_DOC_SPELLING, "2"),
            (MIGRATION_REPLICAS, "5"),
        ]);
        assert_eq!(migration_replicas(&both), Some("5"));
        assert_eq!(migration_replicas(&annotations(&[])), None);
    }

    #[test]
    fn default_class_value_is_exactly_true() {
        assert!(is_default_class_value("true"));
        for value in ["True", "TRUE", "false", "", "yes"] {
            assert!(!is_default_class_value(value), "{value}");
        }
    }
}
