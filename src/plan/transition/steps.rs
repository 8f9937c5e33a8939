//! The steps of a transition: their typed names, and how each is judged against live state.
//!
//! New primary: [`StepName::Metro`] (metro only), [`StepName::Fence`], [`StepName::Activate`],
//! [`StepName::Protect`]. Old primary: [`StepName::SuspendSchedule`], [`StepName::ScaleDown`],
//! [`StepName::SuspendCronJobs`], [`StepName::DeactivateStaticCopies`], [`StepName::Drain`], and in a planned
//! failover [`StepName::FinalMigration`]. Each `eval_*` function looks at the
//! [`Observed`] state only, so a step is judged the same after any crash.

use std::fmt;

use super::*;

/// A step of a transition; written to `status.transition.steps[].name` as [`StepName::as_str`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum StepName {
    /// New primary, metro: storage activation made to match `spec.domains`.
    Metro,
    /// New primary: the old primary no longer runs the applications.
    Fence,
    /// New primary: workloads scaled to their recorded counts, CronJobs resumed, static copies activated.
    Activate,
    /// New primary: this role's objects applied (migrations towards the old primary).
    Protect,
    /// Old primary: the plan's MigrationSchedule suspended.
    SuspendSchedule,
    /// Old primary: replica counts recorded and workloads scaled to 0.
    ScaleDown,
    /// Old primary: CronJobs suspended.
    SuspendCronJobs,
    /// Old primary: `status.applicationActivated` cleared on Stork's static copies, so the new primary's
    /// schedule is not auto-suspended by Stork.
    DeactivateStaticCopies,
    /// Old primary: no pod of the plan's namespaces is running any more (bounded by
    /// `spec.failover.drainTimeoutSeconds`).
    Drain,
    /// Old primary, planned failover from a cluster that ran the applications: the last-mile Migration towards
    /// the new primary, Successful.
    FinalMigration,
}

impl StepName {
    /// The name in `status.transition.steps[].name` and in Events.
    pub const fn as_str(self) -> &'static str {
        match self {
            StepName::Metro => "metro",
            StepName::Fence => "fence",
            StepName::Activate => "activate",
            StepName::Protect => "protect",
            StepName::SuspendSchedule => "suspend-schedule",
            StepName::ScaleDown => "scale-down",
            StepName::SuspendCronJobs => "suspend-cronjobs",
            StepName::DeactivateStaticCopies => "deactivate-static-copies",
            StepName::Drain => "drain",
            StepName::FinalMigration => "final-migration",
        }
    }
}

impl fmt::Display for StepName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

pub(super) fn eval_metro(spec: &PlanSpec, obs: &Observed, revision: &str) -> Eval {
    if obs.cluster_domains.is_none() {
        // Without Stork's cluster domains there is nothing to activate or deactivate; the fence still requires a
        // reachable peer in Standby (an unreachable metro peer cannot be proven Inactive).
        return Eval::Done(format!(
            "no ClusterDomainsStatus on this cluster: storage activation of plan {}/{} is left as it is",
            spec.namespace, spec.name
        ));
    }
    let observed = observed_domains(obs);
    // Activations first, so a deactivation never leaves the storage cluster without an active domain.
    let mut pending: Vec<&DomainSpec> = spec
        .domains
        .iter()
        .filter(|d| observed.get(d.name.as_str()) != Some(&d.active))
        .collect();
    if pending.is_empty() {
        let desc: Vec<String> = spec
            .domains
            .iter()
            .map(|d| {
                format!(
                    "{} {}",
                    d.name,
                    if d.active { "Active" } else { "Inactive" }
                )
            })
            .collect();
        return Eval::Done(format!(
            "cluster domains match spec.domains: {}",
            desc.join(", ")
        ));
    }
    if let Some(unknown) = pending
        .iter()
        .find(|d| !observed.contains_key(d.name.as_str()))
    {
        let known: Vec<&str> = observed.keys().copied().collect();
        return Eval::Stall {
            reason: "UnknownDomain",
            message: format!(
                "cluster domain {} of spec.domains is not in ClusterDomainsStatus (known: {}); commit a spec.domains \
                 that names Stork's domains",
                unknown.name,
                known.join(", ")
            ),
        };
    }
    if pending.iter().any(|d| d.active) {
        pending.retain(|d| d.active);
    }
    let mut creates = Vec::new();
    let mut waiting = Vec::new();
    for d in pending {
        let name = domain_update_name(&spec.name, &d.name, d.active, revision);
        let verb = if d.active { "activate" } else { "deactivate" };
        match obs.domain_updates.iter().find(|u| u.name == name) {
            None => creates.push(Action::CreateDomainUpdate { name, domain: d.name.clone(), active: d.active }),
            Some(u) if u.status == "Failed" => {
                return Eval::Stall {
                    reason: "ClusterDomainUpdateFailed",
                    message: format!(
                        "ClusterDomainUpdate {name} failed to {verb} cluster domain {}: {}; fix the cause and delete \
                         {name} to retry, or commit a different spec.domains",
                        d.name,
                        u.reason.as_deref().unwrap_or("Stork gave no reason")
                    ),
                };
            }
            Some(u) if u.status == "Successful" => waiting.push(format!(
                "ClusterDomainUpdate {name} succeeded; waiting for ClusterDomainsStatus to report {} {}",
                d.name,
                if d.active { "Active" } else { "Inactive" }
            )),
            Some(_) => waiting.push(format!("waiting for Stork to {verb} cluster domain {} (ClusterDomainUpdate {name})", d.name)),
        }
    }
    if !creates.is_empty() {
        let names: Vec<String> = creates
            .iter()
            .filter_map(|a| match a {
                Action::CreateDomainUpdate { name, .. } => Some(name.clone()),
                _ => None,
            })
            .collect();
        return Eval::Act(
            creates,
            format!("creating ClusterDomainUpdate {}", names.join(", ")),
        );
    }
    Eval::Wait(waiting.join("; "))
}

pub(super) fn eval_fence(
    spec: &PlanSpec,
    obs: &Observed,
    current: &Transition,
    peer_domain: &str,
) -> Eval {
    if let Some(s) = current.step(step::FENCE)
        && s.state == StepState::Succeeded
    {
        // Fencing is decided once per transition: the decision is written before any workload is scaled up.
        return Eval::Done(s.message.clone());
    }
    let revisions = [current.revision.as_str(), obs.revision.as_str()];
    let declared = spec.disaster_lost.as_deref() == Some(peer_domain);
    let peer_domain_inactive = obs
        .cluster_domains
        .iter()
        .flatten()
        .any(|d| d.name == peer_domain && !d.active);
    // A declared disaster is the operator's decision that the peer is lost: no wait, no final migration. Metro
    // still needs the storage fence (its domain Inactive), since both clusters write to the same volumes.
    if declared && (spec.mode == Mode::Async || peer_domain_inactive) {
        let answered = match &obs.peer {
            Peer::Reachable {
                running_workloads: Some(n),
                ..
            } if *n > 0 => format!(
                "; the peer answered and still runs {n} workload(s): it stops them when it reads this revision"
            ),
            Peer::Reachable { .. } => "; the peer answered".into(),
            Peer::Unreachable { .. } => String::new(),
        };
        return Eval::Done(format!(
            "disaster declared: {peer_domain} is lost; starting without its final migration{answered}"
        ));
    }
    let declare = format!(
        "drgitops failover --plan {} --to {} --disaster",
        spec.name, obs.local_domain
    );
    let revert = format!("drgitops failover --plan {} --to {peer_domain}", spec.name);
    let blocked = match &obs.peer {
        Peer::Reachable {
            plan,
            running_workloads,
            running_pods,
        } => {
            let this_transition = plan.as_ref().filter(|p| {
                p.transition_revision
                    .as_deref()
                    .is_some_and(|r| revisions.contains(&r))
            });
            let final_step = this_transition.and_then(|p| p.final_migration_step.as_ref());
            match final_step {
                Some((StepState::Stalled, message)) => {
                    return Eval::Stall {
                        reason: "PeerHandOverFailed",
                        message: format!(
                            "{peer_domain} could not hand over, nothing was started here: {message}"
                        ),
                    };
                }
                // The old primary's own timeout bounds its final migration.
                Some((StepState::InProgress | StepState::Waiting, message)) => {
                    return Eval::Wait(format!(
                        "waiting for {peer_domain}'s final migration: {message}"
                    ));
                }
                _ => {}
            }
            let standby_here = plan.as_ref().is_some_and(|p| {
                p.role == Some(Role::Standby)
                    && p.last_applied_revision
                        .as_deref()
                        .is_some_and(|r| revisions.contains(&r))
            });
            let running = running_workloads.unwrap_or(0);
            let pods = running_pods.as_deref().unwrap_or_default();
            if standby_here && running == 0 && pods.is_empty() {
                let handed_over = match (
                    final_step,
                    plan.as_ref().and_then(|p| p.final_migration.as_ref()),
                ) {
                    (Some((StepState::Succeeded, _)), Some(m)) => format!(
                        " with final Migration {} Successful{}",
                        m.name,
                        m.finished_at
                            .map(|t| format!(" at {}", rfc3339(t)))
                            .unwrap_or_default()
                    ),
                    (Some((StepState::Succeeded, message)), None) => format!(" ({message})"),
                    _ => "; it did not run the applications, so there is no final migration".into(),
                };
                return Eval::Done(format!(
                    "peer {peer_domain} reports Standby at revision {}{handed_over}",
                    short(&current.revision)
                ));
            }
            let report = match plan {
                None => format!(
                    "peer {peer_domain} has no DRPlan {}/{}",
                    spec.namespace, spec.name
                ),
                Some(p) => format!(
                    "peer {peer_domain} reports role {}, revision {}, phase {}",
                    p.role
                        .map(|r| r.as_str().to_string())
                        .unwrap_or_else(|| "unknown".into()),
                    p.last_applied_revision
                        .as_deref()
                        .map(short)
                        .unwrap_or("none"),
                    p.phase.as_deref().unwrap_or("unknown")
                ),
            };
            let running = if running > 0 {
                format!(" and still runs {running} workload(s)")
            } else if !pods.is_empty() {
                format!(
                    " and still has {} pod(s) running or terminating: {}",
                    pods.len(),
                    name_some(pods)
                )
            } else {
                String::new()
            };
            let wait =
                format!("waiting for the old primary to stop its applications: {report}{running}");
            let stall = format!(
                "{report}{running} after {}s (spec.failover.peerStopTimeoutSeconds); check the drgitops reconciler \
                 on {peer_domain}, or commit a failback to keep the applications there: {revert}",
                spec.peer_stop_timeout_seconds
            );
            (wait, "PeerStillRunning", stall)
        }
        Peer::Unreachable { error } if spec.mode == Mode::Async => {
            let wait = format!(
                "peer {peer_domain} is unreachable ({error}); waiting for it to stop its applications and hand \
                 over its last writes"
            );
            let stall = format!(
                "peer {peer_domain} is unreachable ({error}) after {}s (spec.failover.peerStopTimeoutSeconds); if \
                 it is lost, declare the disaster to start here from the last migrated copy: {declare}",
                spec.peer_stop_timeout_seconds
            );
            (wait, "PeerUnreachable", stall)
        }
        Peer::Unreachable { error } => {
            if peer_domain_inactive {
                return Eval::Done(format!(
                    "peer {peer_domain} is unreachable and its cluster domain is Inactive"
                ));
            }
            let wait = format!(
                "peer {peer_domain} is unreachable ({error}) and its cluster domain is still Active; waiting for it to \
                 answer or for the domain to be deactivated"
            );
            let stall = format!(
                "peer {peer_domain} is unreachable ({error}) and its cluster domain is still Active after {}s \
                 (spec.failover.peerStopTimeoutSeconds); commit its deactivation: drgitops failover --plan {} --to \
                 {} --deactivate {peer_domain}",
                spec.peer_stop_timeout_seconds, spec.name, obs.local_domain
            );
            (wait, "PeerDomainActive", stall)
        }
    };
    let (wait, reason, stall) = blocked;
    bounded_wait(
        current,
        step::FENCE,
        obs.now,
        spec.peer_stop_timeout_seconds,
        wait,
        reason,
        stall,
    )
}

/// A wait bounded by `timeout_seconds` from when `step` began waiting; once Stalled it stays Stalled (until what
/// it waits for holds, which the caller checks first).
fn bounded_wait(
    current: &Transition,
    step: StepName,
    now: Timestamp,
    timeout_seconds: u64,
    wait: String,
    reason: &'static str,
    stall: String,
) -> Eval {
    let waiting_since = current
        .step(step)
        .filter(|s| matches!(s.state, StepState::Waiting | StepState::Stalled))
        .map(|s| (s.state, s.time));
    match waiting_since {
        Some((StepState::Stalled, _)) => Eval::Stall {
            reason,
            message: stall,
        },
        Some((_, since)) if now.duration_since(since).as_secs() >= timeout_seconds as i64 => {
            Eval::Stall {
                reason,
                message: stall,
            }
        }
        _ => Eval::Wait(wait),
    }
}

/// At most five names, then how many more.
fn name_some(names: &[String]) -> String {
    const NAMED: usize = 5;
    let more = names.len().saturating_sub(NAMED);
    let mut text = names[..names.len().min(NAMED)].join(", ");
    if more > 0 {
        text.push_str(&format!(" and {more} more"));
    }
    text
}

pub(super) fn short(revision: &str) -> &str {
    revision.get(..12).unwrap_or(revision)
}

pub(super) fn eval_activate(obs: &Observed) -> Eval {
    let mut actions = Vec::new();
    let mut invalid = Vec::new();
    for w in &obs.workloads {
        match w.recorded() {
            Recorded::Count(n) if n > 0 && w.effective_replicas() == 0 => {
                actions.push(Action::ScaleUp {
                    workload: w.workload.clone(),
                    replicas: n,
                });
            }
            Recorded::Invalid { key, value } if w.effective_replicas() == 0 => {
                invalid.push(format!("{} has {key}={value:?}", w.workload));
            }
            _ => {}
        }
    }
    let scale_ups = actions.len();
    for c in obs
        .cron_jobs
        .iter()
        .filter(|c| c.suspend && (c.migrated || c.suspended_by_us))
    {
        actions.push(Action::SetCronJobSuspend {
            namespace: c.namespace.clone(),
            name: c.name.clone(),
            suspend: false,
        });
    }
    let cron = actions.len() - scale_ups;
    for s in obs
        .static_copies
        .iter()
        .filter(|s| !s.application_activated)
    {
        actions.push(Action::SetApplicationActivated {
            namespace: s.namespace.clone(),
            name: s.name.clone(),
            activated: true,
        });
    }
    let copies = actions.len() - scale_ups - cron;
    let skipped = if invalid.is_empty() {
        String::new()
    } else {
        format!("; not scaled (no valid count): {}", invalid.join(", "))
    };
    if actions.is_empty() {
        // Scaled, not yet running: whether the pods start is the cluster's work (`drgitops status` counts them).
        let scaled_up = obs
            .workloads
            .iter()
            .filter(|w| w.effective_replicas() > 0)
            .count();
        return Eval::Done(format!(
            "{scaled_up} of {} workload(s) scaled up{skipped}",
            obs.workloads.len()
        ));
    }
    Eval::Act(
        actions,
        format!(
            "scaling up {scale_ups} workload(s), resuming {cron} CronJob(s), activating {copies} static cop(ies){skipped}"
        ),
    )
}

pub(super) fn eval_protect(obs: &Observed, current: &Transition) -> Eval {
    let unreachable = matches!(obs.peer, Peer::Unreachable { .. });
    // Applied once already in this transition: what is live now is what the apply left (it yields `suspend` to
    // Stork when Stork suspended the schedule itself, and never touches Stork's own static copy), so the step is
    // over either way. Should a crash have come between the status write and the apply, the steady-state apply
    // that follows a finished transition does it.
    let applied_before = current
        .step(step::PROTECT)
        .is_some_and(|s| s.state == StepState::InProgress);
    match &obs.schedule {
        Some(s) if !s.static_copy && !s.suspend => Eval::Done(format!(
            "MigrationSchedule {}/{} runs towards the peer",
            s.namespace, s.name
        )),
        Some(s) if !s.static_copy && unreachable => Eval::Done(format!(
            "MigrationSchedule {}/{} applied, suspended while the peer is unreachable",
            s.namespace, s.name
        )),
        Some(s) if applied_before && s.static_copy => Eval::Done(format!(
            "MigrationSchedule {}/{} is still a static copy (Stork's copy of the peer's schedule holds the name), \
             so no migrations run towards the peer until that copy is removed",
            s.namespace, s.name
        )),
        Some(s) if applied_before => Eval::Done(format!(
            "MigrationSchedule {}/{} applied but suspended (Stork suspended it); see the plan's conditions",
            s.namespace, s.name
        )),
        _ => Eval::Act(
            vec![Action::ApplyRoleObjects],
            "applying this cluster's Primary objects".into(),
        ),
    }
}

pub(super) fn eval_suspend_schedule(obs: &Observed) -> Eval {
    match &obs.schedule {
        Some(s) if !s.suspend => Eval::Act(
            vec![Action::SetScheduleSuspend {
                namespace: s.namespace.clone(),
                name: s.name.clone(),
                suspend: true,
            }],
            format!("suspending MigrationSchedule {}/{}", s.namespace, s.name),
        ),
        Some(s) => Eval::Done(format!(
            "MigrationSchedule {}/{} suspended",
            s.namespace, s.name
        )),
        None => Eval::Done("no MigrationSchedule to suspend".into()),
    }
}

pub(super) fn eval_scale_down(obs: &Observed) -> Eval {
    let mut actions = Vec::new();
    for w in obs.workloads.iter().filter(|w| w.effective_replicas() > 0) {
        let replicas = w.effective_replicas();
        // The running count is the truth to restore; rewrite the annotation only when it says something else.
        let record = match w
            .replicas_annotation
            .as_deref()
            .map(|v| Recorded::parse(v, REPLICAS_ANNOTATION))
        {
            Some(Recorded::Count(n)) if n == replicas => None,
            _ => Some(replicas),
        };
        actions.push(Action::ScaleDown {
            workload: w.workload.clone(),
            record,
        });
    }
    if actions.is_empty() {
        return Eval::Done(format!("{} workload(s) at 0 replicas", obs.workloads.len()));
    }
    let n = actions.len();
    Eval::Act(
        actions,
        format!("recording replica counts and scaling {n} workload(s) to 0"),
    )
}

pub(super) fn eval_suspend_cronjobs(obs: &Observed) -> Eval {
    let actions: Vec<Action> = obs
        .cron_jobs
        .iter()
        .filter(|c| !c.suspend)
        .map(|c| Action::SetCronJobSuspend {
            namespace: c.namespace.clone(),
            name: c.name.clone(),
            suspend: true,
        })
        .collect();
    if actions.is_empty() {
        return Eval::Done(format!("{} CronJob(s) suspended", obs.cron_jobs.len()));
    }
    let n = actions.len();
    Eval::Act(actions, format!("suspending {n} CronJob(s)"))
}

pub(super) fn eval_deactivate_static_copies(obs: &Observed) -> Eval {
    let actions: Vec<Action> = obs
        .static_copies
        .iter()
        .filter(|s| s.application_activated)
        .map(|s| Action::SetApplicationActivated {
            namespace: s.namespace.clone(),
            name: s.name.clone(),
            activated: false,
        })
        .collect();
    if actions.is_empty() {
        return Eval::Done("no static copy marked applicationActivated".into());
    }
    let n = actions.len();
    Eval::Act(
        actions,
        format!("clearing applicationActivated on {n} static cop(ies)"),
    )
}

pub(super) fn eval_drain(spec: &PlanSpec, obs: &Observed, current: &Transition) -> Eval {
    if obs.pods.is_empty() {
        return Eval::Done("no pod of the plan's namespaces is running".into());
    }
    let n = obs.pods.len();
    let names = name_some(&obs.pods);
    bounded_wait(
        current,
        step::DRAIN,
        obs.now,
        spec.drain_timeout_seconds,
        format!("waiting for {n} pod(s) to stop: {names}"),
        "DrainTimeout",
        format!(
            "{n} pod(s) still running or terminating after {}s (spec.failover.drainTimeoutSeconds): {names}; find \
             what holds them (kubectl describe pod: finalizers, a volume that does not detach) and delete them, or \
             revert the commit to keep the applications here: drgitops failover --plan {} --to {}",
            spec.drain_timeout_seconds, spec.name, obs.local_domain
        ),
    )
}

pub(super) fn eval_final_migration(spec: &PlanSpec, obs: &Observed, current: &Transition) -> Eval {
    let namespace = &spec.namespace;
    let name = final_migration_name(&spec.name, &current.revision);
    let marker = rfc3339(current.started_at);
    let peer = &current.to;
    if spec.disaster_lost.as_deref() == Some(obs.local_domain.as_str()) {
        // Declared lost: the new primary started from its last copy; a final migration now would overwrite
        // newer data there. One still running is cancelled.
        let running: Vec<Action> = obs
            .final_migrations
            .iter()
            .filter(|m| !m.successful() && !m.failed())
            .map(|m| Action::DeleteMigration {
                namespace: namespace.clone(),
                name: m.name.clone(),
            })
            .collect();
        if !running.is_empty() {
            return Eval::Act(
                running,
                "cancelling the final migration: this cluster was declared lost".into(),
            );
        }
        return Eval::Done(
            "not run: this cluster was declared lost, the new primary started without it".into(),
        );
    }
    let Some(found) = obs.final_migrations.iter().find(|m| m.name == name) else {
        let mut object = serde_json::json!({
            "apiVersion": keys::STORK_API_VERSION,
            "kind": "Migration",
            "metadata": {
                "name": name,
                "namespace": namespace,
                "labels": {
                    keys::MANAGED_BY: keys::MANAGED_BY_VALUE,
                    keys::PLAN_LABEL: spec.name,
                    keys::FINAL_MIGRATION_LABEL: "true",
                },
                "annotations": {
                    keys::TRANSITION_ANNOTATION: marker,
                    keys::REVISION_ANNOTATION: current.revision,
                },
            },
            "spec": spec.migration_template,
        });
        object["spec"]["startApplications"] = false.into();
        return Eval::Act(
            vec![Action::CreateMigration {
                namespace: namespace.clone(),
                name: name.clone(),
                object,
            }],
            format!("creating final Migration {namespace}/{name} towards {peer}"),
        );
    };
    if found.transition_started_at.as_deref() != Some(marker.as_str()) {
        return Eval::Act(
            vec![Action::DeleteMigration {
                namespace: namespace.clone(),
                name: name.clone(),
            }],
            format!(
                "deleting Migration {namespace}/{name}, left by an earlier transition at the same revision"
            ),
        );
    }
    if found.successful() {
        return Eval::Done(format!(
            "final Migration {namespace}/{name} Successful{}",
            found
                .finished_at
                .map(|t| format!(" at {}", rfc3339(t)))
                .unwrap_or_default()
        ));
    }
    let what_to_do = format!(
        "nothing was started anywhere. Revert the commit to run the applications here again: drgitops failover \
         --plan {plan} --to {local}; or declare the disaster to start them on {peer} from its last migrated copy: \
         drgitops failover --plan {plan} --to {peer} --disaster; or delete Migration {namespace}/{name} to retry it",
        plan = spec.name,
        local = obs.local_domain,
    );
    if found.failed() {
        return Eval::Stall {
            reason: "FinalMigrationFailed",
            message: format!(
                "final Migration {namespace}/{name} {}: {}; {what_to_do}",
                found.status,
                found
                    .reason
                    .as_deref()
                    .unwrap_or("Stork gave no reason (kubectl describe migration)")
            ),
        };
    }
    let stage = if found.stage.is_empty() {
        String::new()
    } else {
        format!(", stage {}", found.stage)
    };
    let state = if found.status.is_empty() {
        "not picked up by Stork yet".to_string()
    } else {
        found.status.clone()
    };
    bounded_wait(
        current,
        step::FINAL_MIGRATION,
        obs.now,
        spec.final_migration_timeout_seconds,
        format!("waiting for Stork to finish final Migration {namespace}/{name} ({state}{stage})"),
        "FinalMigrationTimeout",
        format!(
            "final Migration {namespace}/{name} not finished after {}s (spec.failover.finalMigrationTimeoutSeconds; \
             {state}{stage}); {what_to_do}",
            spec.final_migration_timeout_seconds
        ),
    )
}
