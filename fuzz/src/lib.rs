//! What the fuzz targets share: a fixed cluster view for the admission rules, and the checks of a rule decision.

use drgitops::policy::view::{ClusterView, DomainInfo, PlanGuard, PolicySource};
use drgitops::policy::{Decision, Outcome};
use drgitops::stork::schedule::is_built_in;

/// A small metro-and-async cluster, so that every rule has something to look at: two default StorageClasses
/// (one too many), domains `east` (active, local) and `west` (inactive), ClusterPairs `remote` (storage options)
/// and `metro` (none), a cluster SchedulePolicy `daily`, a NamespacedSchedulePolicy `shop/hourly`, and a
/// DRPlan covering `mysql` whose primary is `west` (so this cluster is its standby).
pub struct FixedView;

impl ClusterView for FixedView {
    fn default_storage_classes(&self) -> Vec<String> {
        vec!["px-db".to_string(), "standard".to_string()]
    }

    fn cluster_domains(&self) -> Option<Vec<DomainInfo>> {
        Some(vec![
            DomainInfo {
                name: "east".to_string(),
                active: true,
            },
            DomainInfo {
                name: "west".to_string(),
                active: false,
            },
        ])
    }

    fn local_domain(&self) -> Option<String> {
        Some("east".to_string())
    }

    fn cluster_pair_has_storage_options(&self, _namespace: &str, name: &str) -> Option<bool> {
        match name {
            "remote" => Some(true),
            "metro" => Some(false),
            _ => None,
        }
    }

    fn schedule_policy(&self, namespace: &str, name: &str) -> Option<PolicySource> {
        if namespace == "shop" && name == "hourly" {
            Some(PolicySource::Namespaced)
        } else if name == "daily" {
            Some(PolicySource::Cluster)
        } else if is_built_in(name) {
            Some(PolicySource::BuiltIn)
        } else {
            None
        }
    }

    fn plans_covering(&self, namespace: &str) -> Vec<PlanGuard> {
        if namespace == "mysql" {
            vec![PlanGuard {
                namespace: "mysql".to_string(),
                name: "mysql".to_string(),
                primary: "west".to_string(),
                role: Some("Standby".to_string()),
            }]
        } else {
            Vec::new()
        }
    }
}

/// The denying findings of a decision, as `rule: message` lines.
pub fn denials(decision: &Decision) -> Vec<String> {
    decision
        .findings
        .iter()
        .filter(|f| f.outcome == Outcome::Deny)
        .map(|f| format!("{}: {}", f.rule, f.message))
        .collect()
}
