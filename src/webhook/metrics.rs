//! Prometheus metrics of the admission webhook, with typed label sets.
//!
//! In: one call per answered review ([`Metrics::observe`]). Out: the text exposition served on the admin port's
//! `/metrics`. The duration histogram's buckets reach past the longest webhook timeout Kubernetes allows (30 s),
//! so a slow answer is counted in a real bucket rather than only in `+Inf`.

use prometheus_client::encoding::{EncodeLabelSet, EncodeLabelValue};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

use crate::policy::{Decision, Outcome};

/// Upper bounds in seconds: fine below a millisecond where answers live, then up to and past 30 s.
const DURATION_BUCKETS: [f64; 16] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
    60.0,
];

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelValue)]
pub enum Decided {
    Allowed,
    Denied,
    Invalid,
    DeadlineExceeded,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    /// `mutate` or `validate`.
    pub endpoint: &'static str,
    pub operation: &'static str,
    pub kind: String,
    pub decision: Decided,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct DurationLabels {
    pub endpoint: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelValue)]
#[allow(non_camel_case_types)] // label values are spelled as the policy config spells actions
pub enum Action {
    deny,
    warn,
    audit,
    patch,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RuleLabels {
    pub rule: &'static str,
    pub action: Action,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelValue)]
#[allow(non_camel_case_types)] // label values read as lower-case words
pub enum ReloadResult {
    applied,
    rejected,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReloadLabels {
    pub result: ReloadResult,
}

/// The webhook's metric families and the registry that renders them.
pub struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    duration: Family<DurationLabels, Histogram>,
    rules: Family<RuleLabels, Counter>,
    reloads: Family<ReloadLabels, Counter>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::default();
        let requests = Family::<RequestLabels, Counter>::default();
        let duration = Family::<DurationLabels, Histogram>::new_with_constructor(
            (|| Histogram::new(DURATION_BUCKETS)) as fn() -> Histogram,
        );
        let rules = Family::<RuleLabels, Counter>::default();
        // The client library appends `_total` to counters.
        registry.register(
            "drgitops_admission_requests",
            "Admission reviews answered",
            requests.clone(),
        );
        registry.register(
            "drgitops_admission_duration_seconds",
            "Time from receiving an admission review to answering it",
            duration.clone(),
        );
        registry.register(
            "drgitops_rule_results",
            "Rule findings and patches, by rule and action",
            rules.clone(),
        );
        let reloads = Family::<ReloadLabels, Counter>::default();
        registry.register(
            "drgitops_policy_reloads",
            "Policy config changes seen on disk, applied or rejected",
            reloads.clone(),
        );
        Metrics {
            reloads,
            registry,
            requests,
            duration,
            rules,
        }
    }

    /// Records one answered review.
    pub fn observe(
        &self,
        endpoint: &'static str,
        operation: &'static str,
        kind: &str,
        decision: Decided,
        seconds: f64,
    ) {
        self.requests
            .get_or_create(&RequestLabels {
                endpoint,
                operation,
                kind: kind.to_string(),
                decision,
            })
            .inc();
        self.duration
            .get_or_create(&DurationLabels { endpoint })
            .observe(seconds);
    }

    /// Counts each finding and mutation of a decision once.
    pub fn observe_rules(&self, decision: &Decision) {
        for f in &decision.findings {
            let action = match f.outcome {
                Outcome::Deny => Action::deny,
                Outcome::Warn => Action::warn,
                Outcome::Audit => Action::audit,
            };
            self.rules
                .get_or_create(&RuleLabels {
                    rule: f.rule,
                    action,
                })
                .inc();
        }
        for m in &decision.mutations {
            self.rules
                .get_or_create(&RuleLabels {
                    rule: m.rule,
                    action: Action::patch,
                })
                .inc();
        }
    }

    /// Counts one policy config change seen on disk.
    pub fn observe_reload(&self, result: ReloadResult) {
        self.reloads.get_or_create(&ReloadLabels { result }).inc();
    }

    /// How many policy config changes ended with `result`.
    pub fn reloads(&self, result: ReloadResult) -> u64 {
        self.reloads.get_or_create(&ReloadLabels { result }).get()
    }

    /// The OpenMetrics text exposition.
    pub fn render(&self) -> String {
        let mut out = String::new();
        // Encoding into a String only fails if a label value's Display fails, which ours never do.
        if prometheus_client::encoding::text::encode(&mut out, &self.registry).is_err() {
            out.clear();
        }
        out
    }
}
