//! The admission endpoints: `POST /mutate` and `POST /validate`.
//!
//! In: an AdmissionReview body, the cluster view, the policy config in force. Out: always an HTTP 200 carrying an
//! AdmissionReview that echoes the uid — a malformed body gets an `Invalid` answer, a denial a 403 status with
//! the rules' messages. Two limits keep the webhook from ever being the slow part of a request: a body size limit,
//! and an internal deadline shorter than the webhook's `timeoutSeconds`, after which the review is answered by the
//! failure mode of what it judges (fail closed for Stork, drgitops and StorageClass objects, open with a warning for
//! workloads) instead of letting kube-apiserver time out.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response as HttpResponse};
use axum::routing::post;
use http_body_util::{BodyExt, Limited};

use super::config::PolicyStore;
use super::metrics::{Decided, Metrics};
use super::review::{self, Endpoint, Response, ResponseReview, Review};
use crate::policy::view::ClusterView;
use crate::policy::{Decision, PolicyConfig, Request};

/// Name of the span each review runs in (the log subscriber leaves it out of log lines).
pub use crate::runtime::logging::REVIEW_SPAN;

/// The rule engine entry point; [`crate::policy::evaluate`] in production.
pub type Evaluator = fn(&Request<'_>, &dyn ClusterView, &PolicyConfig) -> Decision;

/// Default largest review body accepted. kube-apiserver caps objects at 1.5 MiB in etcd; a review carries the
/// object and the old object, plus envelope.
pub const DEFAULT_BODY_LIMIT: usize = 4 * 1024 * 1024;

/// Default internal deadline: below the `timeoutSeconds: 3` of the shipped webhook configurations, with room for
/// the network round trip.
pub const DEFAULT_DEADLINE: Duration = Duration::from_millis(2500);

/// What the handlers share.
#[derive(Clone)]
pub struct AdmissionState {
    pub view: Arc<dyn ClusterView>,
    pub policies: Arc<PolicyStore>,
    pub metrics: Arc<Metrics>,
    pub evaluate: Evaluator,
    pub deadline: Duration,
    pub body_limit: usize,
}

impl AdmissionState {
    pub fn new(
        view: Arc<dyn ClusterView>,
        policies: Arc<PolicyStore>,
        metrics: Arc<Metrics>,
    ) -> Self {
        AdmissionState {
            view,
            policies,
            metrics,
            evaluate: crate::policy::evaluate,
            deadline: DEFAULT_DEADLINE,
            body_limit: DEFAULT_BODY_LIMIT,
        }
    }
}

/// The HTTPS router: `POST /mutate`, `POST /validate`.
pub fn router(state: AdmissionState) -> Router {
    Router::new()
        .route("/mutate", post(mutate))
        .route("/validate", post(validate))
        .with_state(state)
}

async fn mutate(State(state): State<AdmissionState>, req: axum::extract::Request) -> HttpResponse {
    let deadline = deadline_for(state.deadline, req.uri().query());
    admit(state, Endpoint::Mutate, req.into_body(), deadline).await
}

async fn validate(
    State(state): State<AdmissionState>,
    req: axum::extract::Request,
) -> HttpResponse {
    let deadline = deadline_for(state.deadline, req.uri().query());
    admit(state, Endpoint::Validate, req.into_body(), deadline).await
}

/// kube-apiserver appends the webhook's `timeoutSeconds` as `?timeout=3s`. Answer well before it: at most the
/// configured deadline, and at most the caller's timeout less a margin for the network (or half of it, for
/// timeouts too short for the margin).
pub fn deadline_for(configured: Duration, query: Option<&str>) -> Duration {
    const MARGIN: Duration = Duration::from_millis(500);
    let timeout = query
        .into_iter()
        .flat_map(|q| q.split('&'))
        .find_map(|pair| pair.strip_prefix("timeout="))
        .and_then(parse_go_duration);
    match timeout {
        Some(t) => configured.min(t.checked_sub(MARGIN).unwrap_or(t / 2).max(t / 2)),
        None => configured,
    }
}

/// Parses the simple Go durations kube-apiserver sends: `3s`, `1.5s`, `500ms`, `1m`.
fn parse_go_duration(text: &str) -> Option<Duration> {
    let split = text.find(|c: char| !(c.is_ascii_digit() || c == '.'))?;
    let (number, unit) = text.split_at(split);
    let value: f64 = number.parse().ok()?;
    let seconds = match unit {
        "ms" => value / 1000.0,
        "s" => value,
        "m" => value * 60.0,
        _ => return None,
    };
    Duration::try_from_secs_f64(seconds).ok()
}

fn answer(response: Response) -> HttpResponse {
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/json")],
        ResponseReview::new(response).to_bytes(),
    )
        .into_response()
}

/// Objects whose webhook fails closed: a review of these that cannot be judged in time is denied.
fn fails_closed(group: &str, kind: &str) -> bool {
    group == crate::stork::keys::STORK_GROUP
        || group == crate::plan::GROUP
        || (group == "storage.k8s.io" && kind == "StorageClass")
}

async fn admit(
    state: AdmissionState,
    endpoint: Endpoint,
    body: Body,
    deadline: Duration,
) -> HttpResponse {
    let start = Instant::now();
    let ep = endpoint.as_str();
    tracing::debug!(endpoint = ep, "receiving admission review");
    let collected =
        tokio::time::timeout(deadline, Limited::new(body, state.body_limit).collect()).await;
    let bytes = match collected {
        Ok(Ok(collected)) => collected.to_bytes(),
        Ok(Err(err)) => {
            let message = if err.is::<http_body_util::LengthLimitError>() {
                format!(
                    "admission review body is larger than {} bytes",
                    state.body_limit
                )
            } else {
                format!("cannot read the admission review body: {err}")
            };
            tracing::warn!(endpoint = ep, %message, "invalid admission review");
            state
                .metrics
                .observe(ep, "", "", Decided::Invalid, start.elapsed().as_secs_f64());
            return answer(Response::invalid("", message));
        }
        Err(_) => {
            let message = format!("admission review body not received within {:?}", deadline);
            tracing::warn!(endpoint = ep, %message, "invalid admission review");
            state
                .metrics
                .observe(ep, "", "", Decided::Invalid, start.elapsed().as_secs_f64());
            return answer(Response::invalid("", message));
        }
    };
    let review = match Review::parse(&bytes) {
        Ok(review) => review,
        Err(err) => {
            let uid = review::salvage_uid(&bytes);
            tracing::warn!(endpoint = ep, uid = %uid, error = %err, "invalid admission review");
            state
                .metrics
                .observe(ep, "", "", Decided::Invalid, start.elapsed().as_secs_f64());
            return answer(Response::invalid(uid, err.to_string()));
        }
    };
    let span = tracing::info_span!(
        REVIEW_SPAN,
        endpoint = ep,
        uid = %review.uid,
        kind = %review.target_kind,
        namespace = review.namespace.as_deref().unwrap_or(""),
        name = review.request().name.unwrap_or(""),
        operation = review.operation_str(),
        dry_run = review.dry_run,
        decision = tracing::field::Empty,
    );
    let uid = review.uid.clone();
    let kind = review.target_kind.clone();
    let namespace = review.namespace.clone().unwrap_or_default();
    let object_name = review.request().name.unwrap_or("").to_string();
    let group = review.resource.group.clone();
    let operation = review.operation_str();

    // The rules are pure and in memory (microseconds), so they run as a plain task rather than on the blocking
    // pool, whose thread hand-off would cost more than the rules do. Being their own task still lets the deadline
    // below fire on another worker if a lock or an overloaded machine holds them up: the runtime always has at
    // least two workers (see `run`).
    let remaining = deadline.saturating_sub(start.elapsed());
    let eval_state = state.clone();
    let task = tokio::spawn(async move {
        let config = eval_state.policies.current();
        (eval_state.evaluate)(&review.request(), eval_state.view.as_ref(), &config)
    });
    let (response, decided) = match tokio::time::timeout(remaining, task).await {
        Ok(Ok(decision)) => {
            state.metrics.observe_rules(&decision);
            let response = review::respond(&uid, &decision, endpoint);
            let decided = if response.allowed {
                Decided::Allowed
            } else {
                Decided::Denied
            };
            (response, decided)
        }
        Ok(Err(join_err)) => {
            // A rule panicked: answer as if it had not finished, per the object's failure mode.
            tracing::error!(parent: &span, error = %join_err, "rule evaluation failed");
            (
                deadline_answer(&uid, &group, &kind, "failed"),
                Decided::DeadlineExceeded,
            )
        }
        Err(_) => (
            deadline_answer(&uid, &group, &kind, "did not finish in time"),
            Decided::DeadlineExceeded,
        ),
    };
    let decision_text = match (&decided, response.allowed) {
        (Decided::DeadlineExceeded, true) => "allowed-unchecked",
        (Decided::DeadlineExceeded, false) => "denied-unchecked",
        (_, true) if response.patch.is_some() => "patched",
        (_, true) => "allowed",
        (_, false) => "denied",
    };
    span.record("decision", decision_text);
    // The span carries the review's identity for plain logs and tracing backends; the event repeats it because
    // JSON lines name the span itself `name`, which would hide the object's name.
    let ns = namespace.as_str();
    let name = object_name.as_str();
    match (&decided, &response.status) {
        (Decided::Allowed, _) => tracing::debug!(
            parent: &span, uid = %uid, kind = %kind, namespace = ns, name, operation, decision = decision_text,
            warnings = response.warnings.len(), "review answered"
        ),
        (_, Some(status)) => tracing::info!(
            parent: &span, uid = %uid, kind = %kind, namespace = ns, name, operation, decision = decision_text,
            reason = %status.message, "review answered"
        ),
        (_, None) => tracing::warn!(
            parent: &span, uid = %uid, kind = %kind, namespace = ns, name, operation, decision = decision_text,
            "review answered without checking"
        ),
    }
    state
        .metrics
        .observe(ep, operation, &kind, decided, start.elapsed().as_secs_f64());
    answer(response)
}

fn deadline_answer(uid: &str, group: &str, kind: &str, what: &str) -> Response {
    if fails_closed(group, kind) {
        Response::deny(
            uid,
            format!(
                "drgitops could not check this {kind}: rule evaluation {what}; retry the request, and if it \
                 persists check the drgitops webhook pods"
            ),
        )
    } else {
        let mut allowed = Response::allow(uid);
        allowed.warnings.push(review::clamp_warning(&format!(
            "drgitops did not check this {kind} (rule evaluation {what}); it was admitted unchecked"
        )));
        allowed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deadline_follows_the_callers_timeout() {
        let configured = Duration::from_millis(2500);
        assert_eq!(deadline_for(configured, None), configured);
        assert_eq!(deadline_for(configured, Some("timeout=10s")), configured);
        assert_eq!(
            deadline_for(configured, Some("timeout=2s")),
            Duration::from_millis(1500)
        );
        assert_eq!(
            deadline_for(configured, Some("x=1&timeout=1s")),
            Duration::from_millis(500)
        );
        assert_eq!(
            deadline_for(configured, Some("timeout=600ms")),
            Duration::from_millis(300)
        );
        assert_eq!(deadline_for(configured, Some("timeout=bogus")), configured);
    }
}
