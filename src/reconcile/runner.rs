//! Running the reconciler: passes triggered by the poll interval (with jitter), by `POST /hooks/git`, by DRPlan
//! changes and by retries with backoff; leader election; the admin port; graceful shutdown.
//!
//! In: a kube client and [`ReconcilerOptions`]. Out: passes of the git sync and the plan controller, and the admin
//! HTTP server (`/livez`, `/readyz`, `/metrics`, `POST /hooks/git`).

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::{Body, to_bytes};
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use futures::StreamExt;
use kube::core::PartialObjectMeta;
use kube::runtime::{WatchStreamExt, watcher};
use tokio::sync::{Mutex, Notify, watch};

use std::collections::BTreeMap;

use crate::plan::DRPlan;
use crate::plan::breakglass::{DRPlanOverride, GitVerdict, by_plan, condition_message, judge};
use crate::reconcile::breakglass;
use crate::reconcile::controller::{ControllerConfig, PassReport, PlanController};
use crate::runtime::admin;
use crate::runtime::leader::LeaderElector;
use crate::runtime::metrics::{HookLabels, Metrics, Outcome, PlanLabels, ReconcileLabels};
use crate::source::git::GitSourceConfig;
use crate::source::hooks::{self, HookError, MAX_BODY_BYTES};
use crate::source::sync::SourceState;
use crate::source::sync::{GitSync, SyncError};
use crate::stork::keys::DEFAULT_ADMIN_NAMESPACE;

/// The shortest wait before a pass a plan asked for: a plan that wants to be looked at "at once" must not spin.
const MIN_REQUEUE: Duration = Duration::from_millis(100);

/// Where the shipped manifests install the reconciler, and so the default home of its Lease and inventory.
pub const SYSTEM_NAMESPACE: &str = "drgitops-system";

/// Everything `drgitops reconcile` is configured with.
#[derive(Clone, Debug)]
pub struct ReconcilerOptions {
    pub cluster_domain: Option<String>,
    pub git: Option<GitSourceConfig>,
    pub interval: Duration,
    pub once: bool,
    pub dry_run: bool,
    pub admin_listen: String,
    /// Namespace of the Lease and the inventory ConfigMap.
    pub system_namespace: String,
    /// Stork's admin namespace (only a plan there may protect other namespaces).
    pub admin_namespace: String,
    /// Secret the push receiver checks signatures against; without one, `POST /hooks/git` is refused.
    pub webhook_secret: Option<Vec<u8>>,
    /// This replica's identity in the Lease and in Events.
    pub identity: String,
    pub lease_name: String,
    pub lease_duration: Duration,
    pub peer_timeout: Duration,
    /// A commit without any DRPlan prunes every plan applied before (else it prunes nothing).
    pub allow_empty: bool,
    /// `--verify-signatures`: which commits the git source requires trusted signatures on, and whose keys.
    pub verification: Option<crate::source::verify::Verification>,
    /// `--git-timeout`: the longest one fetch of the git source may take.
    pub git_timeout: Duration,
}

impl ReconcilerOptions {
    /// Defaults for everything but the git source and the cluster domain.
    pub fn new(identity: &str) -> Self {
        ReconcilerOptions {
            cluster_domain: None,
            git: None,
            interval: Duration::from_secs(60),
            once: false,
            dry_run: false,
            admin_listen: "0.0.0.0:8080".into(),
            system_namespace: SYSTEM_NAMESPACE.into(),
            admin_namespace: DEFAULT_ADMIN_NAMESPACE.into(),
            webhook_secret: None,
            identity: identity.into(),
            lease_name: "drgitops-reconciler".into(),
            lease_duration: Duration::from_secs(15),
            peer_timeout: Duration::from_secs(3),
            allow_empty: false,
            verification: None,
            git_timeout: crate::source::limits::GIT_TIMEOUT,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("cannot listen on {addr}: {source}; choose another --admin-listen")]
    Listen {
        addr: String,
        #[source]
        source: std::io::Error,
    },
}

/// The outcome of one pass.
#[derive(Debug, Default)]
pub struct PassOutcome {
    /// Every plan ready and nothing went wrong.
    pub ok: bool,
    pub retry: bool,
    /// What went wrong: the source, the API, a plan stalled or degraded.
    pub errors: Vec<String>,
    /// Plans in a transition step (waiting for the peer, for Stork, for pods to stop): not ready, nothing wrong.
    pub waiting: Vec<String>,
    pub diff: String,
    pub plans: PassReport,
}

/// The reconciler's shared state: one pass runs at a time.
pub struct Reconciler {
    controller: PlanController,
    sync: Mutex<Option<GitSync>>,
    state: Mutex<SourceState>,
    pub metrics: Arc<Metrics>,
    pub trigger: Arc<Notify>,
    /// The API server answered the Lease request.
    pub ready: Arc<AtomicBool>,
    /// The DRPlan watch listed every plan once (its cache is synced).
    pub synced: Arc<AtomicBool>,
    pub leader: Arc<AtomicBool>,
    options: ReconcilerOptions,
    client: kube::Client,
    /// Events of the pass itself (break-glass overrides held against or ended by Git).
    events: crate::runtime::events::Events,
    /// Per plan, the git revision last reported as held back by a break-glass override (one Event per revision).
    held_reported: Mutex<BTreeMap<String, String>>,
}

impl Reconciler {
    pub fn new(client: kube::Client, options: ReconcilerOptions) -> Arc<Self> {
        let controller = PlanController::new(
            client.clone(),
            ControllerConfig {
                cluster_domain: options.cluster_domain.clone(),
                dry_run: options.dry_run,
                peer_timeout: options.peer_timeout,
                instance: options.identity.clone(),
                admin_namespace: options.admin_namespace.clone(),
            },
        );
        let sync = options.git.clone().map(|git| {
            GitSync::new(
                git,
                controller.applier().clone(),
                &options.system_namespace,
                &options.admin_namespace,
                options.dry_run,
                options.allow_empty,
            )
            .with_verification(options.verification.clone())
            .with_fetch_timeout(options.git_timeout)
        });
        let state = SourceState {
            git: sync.is_some(),
            ..SourceState::default()
        };
        Arc::new(Reconciler {
            controller,
            sync: Mutex::new(sync),
            state: Mutex::new(state),
            metrics: Arc::new(Metrics::new()),
            trigger: Arc::new(Notify::new()),
            ready: Arc::new(AtomicBool::new(false)),
            synced: Arc::new(AtomicBool::new(false)),
            leader: Arc::new(AtomicBool::new(false)),
            events: crate::runtime::events::Events::new(client.clone(), &options.identity),
            held_reported: Mutex::new(BTreeMap::new()),
            options,
            client,
        })
    }

    /// One full pass: sync git (when configured), then reconcile every plan. `force` re-applies an unchanged
    /// commit's plans (the periodic drift repair).
    pub async fn pass(&self, force: bool) -> PassOutcome {
        let started = Instant::now();
        let mut outcome = PassOutcome::default();
        let mut sync = self.sync.lock().await;
        let mut state = self.state.lock().await;
        let mut dry_run_plans = None;
        // Break-glass overrides first: the git source must know which plans it may not apply a revision to. When
        // they cannot be read, no revision is applied this pass (one might go over an override).
        let overrides_read = match breakglass::list(&self.client).await {
            Ok(list) => {
                state.overrides = by_plan(list);
                true
            }
            Err(err) => {
                let forbidden = matches!(&err, kube::Error::Api(s) if s.code == 403);
                let fix = if forbidden {
                    "; apply manifests/reconciler/rbac.yaml, which lets the reconciler list drplanoverrides"
                } else {
                    ""
                };
                let message = format!(
                    "cannot list DRPlanOverrides: {err}; no git revision is applied until they can be read{fix}"
                );
                outcome.retry = true;
                outcome.errors.push(message);
                false
            }
        };
        if let Some(sync) = sync.as_mut().filter(|_| overrides_read) {
            sync.hold(
                state
                    .overrides
                    .iter()
                    .map(|(id, ov)| (id.clone(), ov.spec.primary.clone()))
                    .collect(),
            );
            match sync
                .sync(&mut state, &self.metrics, force, &mut outcome.diff)
                .await
            {
                Ok(report) => {
                    if self.options.dry_run {
                        dry_run_plans = Some(
                            report
                                .dry_run_plans
                                .iter()
                                .filter_map(|p| serde_json::from_value::<DRPlan>(p.clone()).ok())
                                .collect(),
                        );
                    }
                    if !report.pruned.is_empty() {
                        tracing::info!(revision = %report.revision, pruned = ?report.pruned, "pruned DRPlans");
                    }
                }
                Err(err) => {
                    outcome.retry |= err.is_transient();
                    if let SyncError::Invalid { .. } = err {
                        self.controller.report_invalid_commit(&state).await;
                    } else {
                        tracing::warn!("git sync failed: {err}");
                    }
                    outcome.errors.push(err.to_string());
                }
            }
        }
        if overrides_read {
            self.judge_overrides(&mut state).await;
        }
        self.metrics
            .break_glass_overrides
            .set(i64::try_from(state.overrides.len()).unwrap_or(i64::MAX));
        let source = state.clone();
        drop(state);
        drop(sync);
        // Boxed: a pass over every plan nests the transition steps' futures deeply, more than a 2 MiB thread
        // stack holds in a debug build when polled inline.
        let report = Box::pin(self.controller.reconcile_plans(&source, dry_run_plans)).await;
        outcome.retry |= report.retry;
        outcome.errors.extend(report.errors.iter().cloned());
        for plan in report.plans.iter().filter(|p| !p.ready) {
            let line = format!("DRPlan {}: {} ({})", plan.plan, plan.message, plan.phase);
            if plan.phase.in_transition() {
                outcome.waiting.push(line);
            } else {
                outcome.errors.push(line);
            }
        }
        outcome.diff.push_str(&report.diff);
        self.metrics
            .reconcile_plans
            .set(i64::try_from(report.plans.len()).unwrap_or(i64::MAX));
        // Plans gone from the cluster leave no series behind.
        self.metrics.plan_last_migration_timestamp_seconds.clear();
        for plan in &report.plans {
            if let (Some(at), Some((namespace, name))) =
                (plan.last_migration, plan.plan.split_once('/'))
            {
                self.metrics
                    .plan_last_migration_timestamp_seconds
                    .get_or_create(&PlanLabels {
                        namespace: namespace.to_string(),
                        plan: name.to_string(),
                    })
                    .set(at);
            }
        }
        outcome.ok = outcome.errors.is_empty() && outcome.waiting.is_empty();
        outcome.plans = report;
        let result = if outcome.ok {
            Outcome::Success
        } else {
            Outcome::Failure
        };
        self.metrics
            .reconcile_total
            .get_or_create(&ReconcileLabels { result })
            .inc();
        self.metrics
            .reconcile_duration_seconds
            .observe(started.elapsed().as_secs_f64());
        outcome
    }

    /// Compares each standing override with what the git source last read for its plan: an override Git agrees
    /// with is ended; a git revision it holds back is reported once (Event and log line, with the commit to push).
    async fn judge_overrides(&self, state: &mut SourceState) {
        let mut reported = self.held_reported.lock().await;
        reported.retain(|id, _| state.overrides.contains_key(id));
        for (id, ov) in state.overrides.clone() {
            let git = state
                .git_primaries
                .get(&id)
                .map(|(r, p)| (r.as_str(), p.as_str()));
            match judge(&ov.spec.primary, git) {
                GitVerdict::Agrees { revision } if !self.options.dry_run => {
                    match breakglass::end(&self.client, &self.events, &ov, &revision).await {
                        Ok(()) => {
                            state.overrides.remove(&id);
                            reported.remove(&id);
                        }
                        Err(err) => tracing::warn!(
                            plan = %id,
                            "cannot remove DRPlanOverride {}/{} although Git agrees with it: {err}; retrying",
                            ov.namespace,
                            ov.name
                        ),
                    }
                }
                verdict @ GitVerdict::Held { .. } => {
                    let GitVerdict::Held { revision, .. } = &verdict else {
                        continue;
                    };
                    if reported.get(&id) == Some(revision) || self.options.dry_run {
                        continue;
                    }
                    let note = condition_message(
                        &ov.namespace,
                        &ov.name,
                        &ov.spec,
                        &ov.created_at,
                        &verdict,
                    );
                    tracing::warn!(plan = %id, revision = %revision, reason = %ov.spec.reason, "{note}");
                    self.events
                        .publish(
                            &breakglass::plan_reference(&ov.namespace, &ov.spec.plan),
                            kube::runtime::events::EventType::Warning,
                            "BreakGlass",
                            "GitRevisionHeld",
                            &note,
                        )
                        .await;
                    reported.insert(id, revision.clone());
                }
                _ => {}
            }
        }
    }

    /// The admin router: `/livez`, `/readyz`, `/metrics`, `POST /hooks/git`.
    pub fn admin_router(self: &Arc<Self>) -> Router {
        let (ready, metrics) = (self.clone(), self.clone());
        admin::router(
            Arc::new(move || {
                if !ready.ready.load(Ordering::SeqCst) {
                    Err("the API server has not answered yet".into())
                } else if !ready.synced.load(Ordering::SeqCst) {
                    Err("DRPlans not listed yet".into())
                } else {
                    Ok(())
                }
            }),
            Arc::new(move || metrics.metrics.encode()),
        )
        .merge(
            Router::new()
                .route("/hooks/git", post(git_hook))
                .with_state(self.clone()),
        )
    }

    fn elector(&self) -> LeaderElector {
        LeaderElector::new(
            self.client.clone(),
            &self.options.system_namespace,
            &self.options.lease_name,
            &self.options.identity,
            self.options.lease_duration,
        )
    }

    /// Runs until `shutdown` turns true: leader election, the DRPlan watch, and passes.
    pub async fn run(self: Arc<Self>, mut shutdown: watch::Receiver<bool>) {
        let elector = self.elector();
        let leader_task = tokio::spawn(elect(elector.clone(), self.clone(), shutdown.clone()));
        let watch_task = tokio::spawn(watch_plans(
            self.client.clone(),
            self.trigger.clone(),
            self.synced.clone(),
        ));
        let overrides_task =
            tokio::spawn(watch_overrides(self.client.clone(), self.trigger.clone()));

        let mut backoff = Backoff::new(Duration::from_millis(200), Duration::from_secs(30));
        // Three independent wake-ups: the poll (drift repair, forced), the error retry (backoff, forced), and the
        // plans' own re-check times (a transition waiting at the fence). The earliest wins, so one failing plan's
        // growing backoff never delays another plan's re-check, and waiting never grows the error backoff.
        let mut poll_at = tokio::time::Instant::now();
        let mut retry_at: Option<tokio::time::Instant> = None;
        let mut requeue_at: Option<tokio::time::Instant> = None;
        // A reconciler that has just become the leader polls at once: a follower only rechecks the Lease, so its
        // `poll_at` says nothing about when the repository was last looked at.
        let mut was_leader = false;
        loop {
            let wake = [Some(poll_at), retry_at, requeue_at]
                .into_iter()
                .flatten()
                .min()
                .unwrap_or(poll_at);
            tokio::select! {
                _ = shutdown.changed() => break,
                _ = self.trigger.notified() => {}
                _ = tokio::time::sleep_until(wake) => {}
            }
            if *shutdown.borrow() {
                break;
            }
            let now = tokio::time::Instant::now();
            if !self.leader.load(Ordering::SeqCst) {
                poll_at = now + self.options.lease_duration / 3;
                retry_at = None;
                requeue_at = None;
                was_leader = false;
                continue;
            }
            let poll_due = now >= poll_at || !was_leader;
            was_leader = true;
            let force = poll_due || retry_at.is_some_and(|at| now >= at);
            let outcome = self.pass(force).await;
            for error in &outcome.errors {
                tracing::warn!("{error}");
            }
            for step in &outcome.waiting {
                tracing::info!("{step}");
            }
            let done = tokio::time::Instant::now();
            if poll_due {
                poll_at = done + jitter(self.options.interval);
            }
            retry_at = if outcome.retry {
                Some(done + backoff.next_delay())
            } else {
                backoff.reset();
                None
            };
            requeue_at = outcome
                .plans
                .requeue_after
                .map(|after| done + after.max(MIN_REQUEUE));
        }
        watch_task.abort();
        overrides_task.abort();
        leader_task.abort();
        if self.leader.swap(false, Ordering::SeqCst)
            && let Err(err) = elector.release().await
        {
            tracing::warn!("cannot release the lease: {err}");
        }
    }
}

/// Keeps `reconciler.leader` in step with the Lease; a new leader starts a pass at once.
async fn elect(
    elector: LeaderElector,
    reconciler: Arc<Reconciler>,
    mut shutdown: watch::Receiver<bool>,
) {
    loop {
        let held = match elector.try_acquire_or_renew().await {
            Ok((held, refresh)) => {
                reconciler.ready.store(true, Ordering::SeqCst);
                if held && refresh {
                    tracing::info!("a push reached a follower: fetching");
                    reconciler.trigger.notify_one();
                }
                held
            }
            Err(err) => {
                tracing::warn!("lease {}: {err}", elector.identity());
                false
            }
        };
        let was = reconciler.leader.swap(held, Ordering::SeqCst);
        if held && !was {
            tracing::info!(identity = elector.identity(), "became the leader");
            reconciler.trigger.notify_one();
        } else if was && !held {
            tracing::warn!(
                identity = elector.identity(),
                "lost the lease: stopped writing"
            );
        }
        tokio::select! {
            _ = shutdown.changed() => return,
            _ = tokio::time::sleep(elector.renew_interval()) => {}
        }
    }
}

/// Triggers a pass on every DRPlan change (plans applied by Argo CD or Flux, status edits, deletions). The
/// watcher re-lists after a dropped watch or a 410, so no change is missed. It watches metadata only: every change
/// moves the resourceVersion, and a stored plan that does not read as a DRPlan must not stop the watch (the pass
/// reports it on its own status).
async fn watch_plans(client: kube::Client, trigger: Arc<Notify>, synced: Arc<AtomicBool>) {
    let api: kube::Api<PartialObjectMeta<DRPlan>> = kube::Api::all(client);
    let mut stream = watcher(api, watcher::Config::default())
        .default_backoff()
        .boxed();
    while let Some(event) = stream.next().await {
        match event {
            Ok(watcher::Event::InitDone) => {
                synced.store(true, Ordering::SeqCst);
                trigger.notify_one();
            }
            Ok(watcher::Event::Apply(_)) | Ok(watcher::Event::Delete(_)) => {
                trigger.notify_one();
            }
            Ok(_) => {}
            Err(err) => tracing::debug!("DRPlan watch: {err}"),
        }
    }
}

/// Triggers a pass when a break-glass override is created or removed, so breaking glass acts at once rather than at
/// the next poll. Without the DRPlanOverride CRD the watch keeps retrying with backoff, quietly.
async fn watch_overrides(client: kube::Client, trigger: Arc<Notify>) {
    let api: kube::Api<PartialObjectMeta<DRPlanOverride>> = kube::Api::all(client);
    let mut stream = watcher(api, watcher::Config::default())
        .default_backoff()
        .boxed();
    while let Some(event) = stream.next().await {
        match event {
            Ok(watcher::Event::Apply(_)) | Ok(watcher::Event::Delete(_)) => {
                trigger.notify_one();
            }
            Ok(_) => {}
            Err(err) => tracing::debug!("DRPlanOverride watch: {err}"),
        }
    }
}

/// `POST /hooks/git`: checks the signature and triggers a fetch. The payload is never trusted: the branch is
/// re-resolved by the fetch.
async fn git_hook(State(reconciler): State<Arc<Reconciler>>, request: Request<Body>) -> Response {
    let record = |provider: &str, result: &str| {
        reconciler
            .metrics
            .git_hook_requests_total
            .get_or_create(&HookLabels {
                provider: provider.into(),
                result: result.into(),
            })
            .inc();
    };
    let Some(secret) = reconciler.options.webhook_secret.clone() else {
        record("unknown", "disabled");
        return (
            StatusCode::NOT_FOUND,
            "push receiver disabled: set --webhook-secret-file\n",
        )
            .into_response();
    };
    let declared = request
        .headers()
        .get(axum::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|n| n > MAX_BODY_BYTES) {
        record("unknown", "too_large");
        return (StatusCode::PAYLOAD_TOO_LARGE, "payload over 3 MiB\n").into_response();
    }
    let (parts, body) = request.into_parts();
    let Ok(body) = to_bytes(body, MAX_BODY_BYTES).await else {
        record("unknown", "too_large");
        return (StatusCode::PAYLOAD_TOO_LARGE, "payload over 3 MiB\n").into_response();
    };
    let header = |name: &str| parts.headers.get(name).and_then(|v| v.to_str().ok());
    match hooks::verify(&secret, header, &body) {
        Ok(provider) => {
            record(provider.as_str(), "accepted");
            if reconciler.options.once || reconciler.leader.load(Ordering::SeqCst) {
                reconciler.trigger.notify_one();
                return (StatusCode::ACCEPTED, "fetch triggered\n").into_response();
            }
            // A follower: hand the push to the leader through the Lease; it fetches at its next renewal.
            match reconciler.elector().request_refresh().await {
                Ok(()) => {
                    (StatusCode::ACCEPTED, "fetch requested from the leader\n").into_response()
                }
                Err(err) => {
                    // No Lease yet (no leader elected): this replica fetches itself once it leads.
                    reconciler.trigger.notify_one();
                    tracing::debug!("cannot hand the push to the leader: {err}");
                    (StatusCode::ACCEPTED, "fetch triggered\n").into_response()
                }
            }
        }
        Err(err) => {
            let provider = match err {
                HookError::BadSignature(p) | HookError::Malformed(p) => p,
                HookError::Unsigned => "unknown",
            };
            record(provider, "unauthorized");
            (StatusCode::UNAUTHORIZED, format!("{err}\n")).into_response()
        }
    }
}

/// Binds the admin server and serves it until `shutdown` turns true; returns the bound address.
pub async fn serve_admin(
    reconciler: &Arc<Reconciler>,
    addr: &str,
    shutdown: watch::Receiver<bool>,
) -> Result<(SocketAddr, tokio::task::JoinHandle<()>), RunError> {
    let (listener, local) = admin::bind(addr).await.map_err(|source| RunError::Listen {
        addr: addr.into(),
        source,
    })?;
    Ok((
        local,
        admin::serve(listener, reconciler.admin_router(), shutdown),
    ))
}

/// Exponential backoff between retries of a failed pass.
pub struct Backoff {
    base: Duration,
    max: Duration,
    current: Duration,
}

impl Backoff {
    pub fn new(base: Duration, max: Duration) -> Self {
        Backoff {
            base,
            max,
            current: base,
        }
    }
    pub fn next_delay(&mut self) -> Duration {
        let delay = jitter(self.current);
        self.current = (self.current * 2).min(self.max);
        delay
    }
    pub fn reset(&mut self) {
        self.current = self.base;
    }
}

/// `d` ± 10%, so many replicas polling one remote spread out.
pub fn jitter(d: Duration) -> Duration {
    use rand::{Rng as _, SeedableRng as _};
    let factor = rand::rngs::StdRng::from_os_rng().random_range(0.9..=1.1);
    d.mul_f64(factor)
}

/// Parses `60s`, `5m`, `1h`, `500ms` or a plain number of seconds.
pub fn parse_duration(text: &str) -> Option<Duration> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let value: f64 = number.parse().ok()?;
    let seconds = match unit {
        "" | "s" => value,
        "ms" => value / 1000.0,
        "m" => value * 60.0,
        "h" => value * 3600.0,
        _ => return None,
    };
    (seconds > 0.0).then(|| Duration::from_secs_f64(seconds))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse() {
        assert_eq!(parse_duration("60s"), Some(Duration::from_secs(60)));
        assert_eq!(parse_duration("5m"), Some(Duration::from_secs(300)));
        assert_eq!(parse_duration("250ms"), Some(Duration::from_millis(250)));
        assert_eq!(parse_duration("2"), Some(Duration::from_secs(2)));
        assert_eq!(parse_duration("0s"), None);
        assert_eq!(parse_duration("soon"), None);
    }

    #[test]
    fn backoff_doubles_up_to_the_cap() {
        let mut backoff = Backoff::new(Duration::from_millis(100), Duration::from_millis(350));
        let delays: Vec<_> = (0..4).map(|_| backoff.next_delay()).collect();
        assert!(delays[0] >= Duration::from_millis(90) && delays[0] <= Duration::from_millis(110));
        assert!(delays[1] >= Duration::from_millis(180) && delays[1] <= Duration::from_millis(220));
        assert!(delays[3] <= Duration::from_millis(385));
        backoff.reset();
        assert!(backoff.next_delay() <= Duration::from_millis(110));
    }
}
