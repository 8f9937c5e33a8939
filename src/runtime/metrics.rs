//! Prometheus metrics of the reconciler: `drgitops_reconcile_*` for plan passes, `drgitops_git_*` for the git
//! source and the push receiver. Handlers record into them; `/metrics` encodes the registry.

use prometheus_client::encoding::{EncodeLabelSet, EncodeLabelValue};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq)]
pub enum Outcome {
    Success,
    Failure,
}

// Label values are lower-case, as Prometheus conventions (and the documented series) have them.
impl EncodeLabelValue for Outcome {
    fn encode(
        &self,
        encoder: &mut prometheus_client::encoding::LabelValueEncoder<'_>,
    ) -> Result<(), std::fmt::Error> {
        use std::fmt::Write as _;
        encoder.write_str(match self {
            Outcome::Success => "success",
            Outcome::Failure => "failure",
        })
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReconcileLabels {
    pub result: Outcome,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct FetchLabels {
    pub result: Outcome,
    /// `true` when the remote head had moved and objects were downloaded.
    pub changed: bool,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct HookLabels {
    pub provider: String,
    /// `accepted`, `unauthorized`, `too_large`, `disabled`.
    pub result: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PlanLabels {
    pub namespace: String,
    pub plan: String,
}

/// Every metric the reconciler exports.
pub struct Metrics {
    pub registry: Registry,
    pub reconcile_total: Family<ReconcileLabels, Counter>,
    pub reconcile_duration_seconds: Histogram,
    pub reconcile_plans: Gauge,
    pub git_fetch_total: Family<FetchLabels, Counter>,
    pub git_fetch_duration_seconds: Histogram,
    pub git_received_bytes_total: Counter,
    pub git_hook_requests_total: Family<HookLabels, Counter>,
    pub git_commit_invalid_total: Counter,
    pub git_verification_failures_total: Counter,
    pub plan_last_migration_timestamp_seconds: Family<PlanLabels, Gauge>,
    pub break_glass_overrides: Gauge,
}

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("drgitops");
        let reconcile_total = Family::<ReconcileLabels, Counter>::default();
        // 1 ms .. ~65 s: a pass can wait on a slow API server far longer than the webhook timeout.
        let reconcile_duration_seconds = Histogram::new(exponential_buckets(0.001, 2.0, 17));
        let reconcile_plans = Gauge::default();
        let git_fetch_total = Family::<FetchLabels, Counter>::default();
        let git_fetch_duration_seconds = Histogram::new(exponential_buckets(0.001, 2.0, 17));
        let git_received_bytes_total = Counter::default();
        let git_hook_requests_total = Family::<HookLabels, Counter>::default();
        let git_commit_invalid_total = Counter::default();
        let git_verification_failures_total = Counter::default();
        let plan_last_migration_timestamp_seconds = Family::<PlanLabels, Gauge>::default();
        let break_glass_overrides = Gauge::default();
        registry.register(
            "reconcile",
            "Reconcile passes over all DRPlans, by result",
            reconcile_total.clone(),
        );
        registry.register(
            "reconcile_duration_seconds",
            "Duration of one reconcile pass",
            reconcile_duration_seconds.clone(),
        );
        registry.register(
            "reconcile_plans",
            "DRPlans seen in the last pass",
            reconcile_plans.clone(),
        );
        registry.register(
            "git_fetch",
            "Fetches of the git source, by result",
            git_fetch_total.clone(),
        );
        registry.register(
            "git_fetch_duration_seconds",
            "Duration of one fetch",
            git_fetch_duration_seconds.clone(),
        );
        registry.register(
            "git_received_bytes",
            "Bytes downloaded from the git remote",
            git_received_bytes_total.clone(),
        );
        registry.register(
            "git_hook_requests",
            "Requests to POST /hooks/git, by provider and result",
            git_hook_requests_total.clone(),
        );
        registry.register(
            "git_commit_invalid",
            "Commits refused because a plan in them was invalid",
            git_commit_invalid_total.clone(),
        );
        registry.register(
            "git_verification_failures",
            "Revisions refused because a commit in them lacked a good signature by a trusted key \
             (--verify-signatures)",
            git_verification_failures_total.clone(),
        );
        registry.register(
            "plan_last_migration_timestamp_seconds",
            "When the last successful migration from the primary to the standby finished (status.lastMigration), \
             per DRPlan: time() minus it is the age of the standby's copy",
            plan_last_migration_timestamp_seconds.clone(),
        );
        registry.register(
            "break_glass_overrides",
            "Break-glass DRPlanOverrides standing on this cluster: failovers made without Git that Git does not \
             hold yet",
            break_glass_overrides.clone(),
        );
        Metrics {
            registry,
            reconcile_total,
            reconcile_duration_seconds,
            reconcile_plans,
            git_fetch_total,
            git_fetch_duration_seconds,
            git_received_bytes_total,
            git_hook_requests_total,
            git_commit_invalid_total,
            git_verification_failures_total,
            plan_last_migration_timestamp_seconds,
            break_glass_overrides,
        }
    }

    /// The registry in Prometheus text format.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn series_carry_the_documented_names_and_lower_case_values() {
        let metrics = Metrics::new();
        metrics
            .reconcile_total
            .get_or_create(&ReconcileLabels {
                result: Outcome::Success,
            })
            .inc();
        metrics
            .git_fetch_total
            .get_or_create(&FetchLabels {
                result: Outcome::Failure,
                changed: false,
            })
            .inc();
        metrics.git_received_bytes_total.inc_by(42);
        metrics
            .plan_last_migration_timestamp_seconds
            .get_or_create(&PlanLabels {
                namespace: "mysql".into(),
                plan: "mysql".into(),
            })
            .set(1_790_000_000);
        let text = metrics.encode();
        assert!(
            text.contains(
                "drgitops_plan_last_migration_timestamp_seconds{namespace=\"mysql\",plan=\"mysql\"} 1790000000"
            ),
            "{text}"
        );
        assert!(
            text.contains("drgitops_reconcile_total{result=\"success\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("drgitops_git_fetch_total{result=\"failure\",changed=\"false\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("drgitops_git_received_bytes_total 42"),
            "{text}"
        );
        assert!(
            text.contains("# TYPE drgitops_reconcile_duration_seconds histogram"),
            "{text}"
        );
    }
}
