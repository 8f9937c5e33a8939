//! The failover / failback state machine of DESIGN.md's "Transitions", as a pure, level-triggered planner.
//!
//! In: a [`PlanSpec`] (the parts of a DRPlan that decide a transition) and an [`Observed`] snapshot of live state
//! on this cluster (workloads, CronJobs, the plan's MigrationSchedule, Stork's static copies, cluster domains and
//! our ClusterDomainUpdates), of the peer cluster (unreachable, or its DRPlan status and running workloads), and
//! the `status` this cluster's reconciler wrote last, plus the time `now`.
//! Out: an [`Outcome`]: the next [`Action`]s to perform (one step's worth), the `status.role`, `status.phase`,
//! `status.transition` and conditions to write, and the Events to emit.
//!
//! Every step is derived from live state, so running the planner again after a crash never repeats a step with a
//! different outcome: a replica count is recorded and the workload scaled to 0 in one patch, a count of 0 is never
//! recorded, and a workload is scaled up only when it sits at 0 with a positive recorded count. The executor writes
//! the outcome's status *before* performing its actions (so a passed fence is durable before any scale-up), then
//! performs the actions, re-observes and calls [`plan`] again until no action is left.
//!
//! Files: `model` (what the planner reads and returns), `steps` (the typed step names and how each step is
//! judged against live state), and this file (which steps a role runs, in what order, and the status they add up
//! to).

mod model;
mod steps;

use std::collections::BTreeMap;

use jiff::Timestamp;

pub use self::model::*;
pub use self::steps::StepName;
use self::steps::*;
use super::types as plan_types;
pub use super::types::{Mode, Phase, Role};
use crate::stork::keys;

/// The replica annotation Stork writes on scaled-down workloads (and the one we write).
pub const REPLICAS_ANNOTATION: &str = keys::MIGRATION_REPLICAS;
/// The spelling Stork's docs use; read, never written.
pub const LEGACY_REPLICAS_ANNOTATION: &str = keys::MIGRATION_REPLICAS_DOC_SPELLING;
/// Marks a CronJob this reconciler suspended, so activation un-suspends it even if Stork never migrated it.
pub const SUSPENDED_BY_ANNOTATION: &str = "drgitops.dev/suspended-by";
/// Value of [`SUSPENDED_BY_ANNOTATION`].
pub const SUSPENDED_BY_VALUE: &str = "drgitops";

/// How often to look again while waiting for the peer or for Stork: every second of waiting is a second of
/// outage, and a recheck costs one request to the peer (plus a list when it claims to be standby).
pub const WAIT_RECHECK_SECONDS: u64 = 1;
/// How often to look again while stalled (the way out is a commit, but live state may also change).
pub const STALLED_RECHECK_SECONDS: u64 = 30;

/// Step names, as written to `status.transition.steps[].name`.
pub mod step {
    use super::StepName;

    pub const METRO: StepName = StepName::Metro;
    pub const FENCE: StepName = StepName::Fence;
    pub const ACTIVATE: StepName = StepName::Activate;
    pub const PROTECT: StepName = StepName::Protect;
    pub const SUSPEND_SCHEDULE: StepName = StepName::SuspendSchedule;
    pub const SCALE_DOWN: StepName = StepName::ScaleDown;
    pub const SUSPEND_CRONJOBS: StepName = StepName::SuspendCronJobs;
    pub const DEACTIVATE_STATIC_COPIES: StepName = StepName::DeactivateStaticCopies;
    pub const DRAIN: StepName = StepName::Drain;
    pub const FINAL_MIGRATION: StepName = StepName::FinalMigration;
}

/// The deterministic name of the ClusterDomainUpdate that sets `domain` to `active` for the plan's transition at
/// `revision`: stable across restarts (so it is created once), new for every commit (Stork's updates are one-shot).
pub fn domain_update_name(plan: &str, domain: &str, active: bool, revision: &str) -> String {
    let verb = if active { "activate" } else { "deactivate" };
    let rev: String = revision
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .take(8)
        .collect();
    let raw = format!("drgitops-{plan}-{domain}-{verb}-{rev}");
    let mut name: String = raw
        .to_ascii_lowercase()
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '.' {
                c
            } else {
                '-'
            }
        })
        .collect();
    name.truncate(253);
    while name.ends_with(['-', '.']) {
        name.pop();
    }
    name
}

/// The name of the final Migration of the plan's transition at `revision`: `<plan>-final-<short revision>`. A
/// revision that is not a commit id (plans delivered by Argo CD or Flux) is shortened to a hash of it.
pub fn final_migration_name(plan: &str, revision: &str) -> String {
    format!("{plan}-final-{}", short_token(revision))
}

/// The first 8 hex digits of a commit id, else 8 hex digits of a stable (FNV-1a) hash of the revision.
fn short_token(revision: &str) -> String {
    let hex: String = revision
        .chars()
        .take_while(char::is_ascii_hexdigit)
        .take(8)
        .collect();
    if hex.len() == 8 {
        return hex.to_ascii_lowercase();
    }
    let hash = revision.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    });
    format!("{:08x}", hash >> 32)
}

/// Plans the next step of the plan's transition on this cluster. Pure: see the module docs.
pub fn plan(spec: &PlanSpec, obs: &Observed) -> Outcome {
    let local = obs.local_domain.as_str();
    let role = if spec.primary == local {
        Role::Primary
    } else {
        Role::Standby
    };
    if !spec.domains.iter().any(|d| d.name == local) {
        let names: Vec<&str> = spec.domains.iter().map(|d| d.name.as_str()).collect();
        let message = format!(
            "cluster domain {local} is not among spec.domains [{}] of plan {}/{}; add it to spec.domains or run the \
             reconciler with --cluster-domain set to one of them",
            names.join(", "),
            spec.namespace,
            spec.name
        );
        return stalled_outside_transition(role, obs, "UnknownLocalDomain", message);
    }
    let peer_domain = spec
        .domains
        .iter()
        .find(|d| d.name != local)
        .map(|d| d.name.clone());
    let mut outcome = match role {
        Role::Primary => plan_primary(spec, obs, peer_domain.clone()),
        Role::Standby => plan_standby(spec, obs),
    };
    outcome.last_migration = last_migration(obs, role, peer_domain.as_deref().unwrap_or_default());
    outcome
}

/// The newest migration from the primary to the standby this cluster knows of: on the primary its own
/// schedule's, or the final migration the old primary handed over with; on the standby the primary's record
/// (while it answers), or its own final migration when it handed over. What was recorded before is kept until
/// something newer is seen, so the age stays known while the peer is unreachable.
fn last_migration(
    obs: &Observed,
    role: Role,
    peer_domain: &str,
) -> Option<plan_types::MigrationRecord> {
    let local = obs.local_domain.as_str();
    let peer_plan = match &obs.peer {
        Peer::Reachable { plan: Some(p), .. } => Some(p),
        _ => None,
    };
    let mut candidates: Vec<plan_types::MigrationRecord> = Vec::new();
    candidates.extend(obs.previous.last_migration.clone());
    match role {
        Role::Primary => {
            candidates.extend(obs.scheduled_migration.clone().map(|mut m| {
                m.from = Some(local.to_string());
                m
            }));
            if let Some(m) = peer_plan
                .and_then(|p| p.final_migration.as_ref())
                .filter(|m| m.successful())
            {
                candidates.push(plan_types::MigrationRecord {
                    name: m.name.clone(),
                    revision: None,
                    status: Some(m.status.clone()),
                    finished_at: m.finished_at.map(rfc3339),
                    from: Some(peer_domain.to_string()),
                });
            }
        }
        Role::Standby => {
            candidates.extend(
                peer_plan
                    .filter(|p| p.role == Some(Role::Primary))
                    .and_then(|p| p.last_migration.clone()),
            );
            candidates.extend(
                obs.previous
                    .final_migration
                    .clone()
                    .filter(|m| m.status.as_deref() == Some("Successful")),
            );
        }
    }
    candidates
        .into_iter()
        .filter_map(|m| Some((parse_time(m.finished_at.as_deref())?, m)))
        .max_by_key(|(t, _)| *t)
        .map(|(_, m)| m)
}

/// Result of evaluating one step against live state.
enum Eval {
    Done(String),
    Act(Vec<Action>, String),
    Wait(String),
    Stall {
        reason: &'static str,
        message: String,
    },
}

fn plan_primary(spec: &PlanSpec, obs: &Observed, peer_domain: Option<String>) -> Outcome {
    let local = &obs.local_domain;
    let ongoing = obs
        .previous
        .transition
        .as_ref()
        .filter(|t| t.finished_at.is_none());
    // A transition towards this domain from elsewhere is a role change even after the first pass wrote the new role.
    let role_change = obs.previous.role == Some(Role::Standby)
        || ongoing.is_some_and(|t| t.to == *local && t.from != *local);
    let metro_mismatch = spec.mode == Mode::Metro
        && obs.cluster_domains.is_some()
        && !metro_domains_match(spec, obs);
    if !role_change && !metro_mismatch {
        return steady(Role::Primary, obs, false);
    }
    let mut names = Vec::new();
    if spec.mode == Mode::Metro {
        names.push(step::METRO);
    }
    if role_change {
        names.push(step::FENCE);
        names.push(step::ACTIVATE);
    }
    names.push(step::PROTECT);
    let from = if role_change {
        peer_domain.clone().unwrap_or_else(|| local.clone())
    } else {
        local.clone()
    };
    let current = current_transition(obs, &from, local, &names);
    let peer_domain = peer_domain.unwrap_or_default();
    run_steps(
        spec,
        obs,
        Role::Primary,
        current,
        &names,
        |name, current| match name {
            StepName::Metro => eval_metro(spec, obs, &current.revision),
            StepName::Fence => eval_fence(spec, obs, current, &peer_domain),
            StepName::Activate => eval_activate(obs),
            StepName::Protect => eval_protect(obs, current),
            old_primary => unreachable!("{old_primary} is not a step of the new primary"),
        },
    )
}

fn plan_standby(spec: &PlanSpec, obs: &Observed) -> Outcome {
    let local = &obs.local_domain;
    let ongoing = obs
        .previous
        .transition
        .as_ref()
        .filter(|t| t.finished_at.is_none());
    let role_change = obs.previous.role == Some(Role::Primary)
        || ongoing.is_some_and(|t| t.from == *local && t.to != *local);
    // Whether this transition ends with a final migration is decided when it starts (and written with its steps
    // before anything is done), so a crash cannot change the answer: only from a cluster whose applications ran,
    // and never from one declared lost (its copy is older than what the new primary runs).
    let resumed = ongoing.filter(|t| t.from == *local && t.to == spec.primary);
    let final_migration = match resumed {
        Some(t) => t.step(step::FINAL_MIGRATION).is_some(),
        None => {
            role_change
                && applications_ran_here(obs)
                && spec.disaster_lost.as_deref() != Some(local.as_str())
        }
    };
    let mut names = vec![
        step::SUSPEND_SCHEDULE,
        step::SCALE_DOWN,
        step::SUSPEND_CRONJOBS,
        step::DEACTIVATE_STATIC_COPIES,
        step::DRAIN,
    ];
    if final_migration {
        names.push(step::FINAL_MIGRATION);
    }
    let stop = |name: StepName| match name {
        StepName::SuspendSchedule => eval_suspend_schedule(obs),
        StepName::ScaleDown => eval_scale_down(obs),
        StepName::SuspendCronJobs => eval_suspend_cronjobs(obs),
        StepName::DeactivateStaticCopies => eval_deactivate_static_copies(obs),
        other => unreachable!("{other} is not a step that stops the applications"),
    };
    // A standby stops applications whenever it finds them running, even without a recorded role change (the old
    // primary coming back after a disaster may not have written its status before it went down).
    let work = names[..4]
        .iter()
        .any(|n| !matches!(stop(*n), Eval::Done(_)));
    if !role_change && !work {
        return steady(Role::Standby, obs, false);
    }
    let current = current_transition(obs, local, &spec.primary, &names);
    let name = final_migration_name(&spec.name, &current.revision);
    let marker = rfc3339(current.started_at);
    let record = obs
        .final_migrations
        .iter()
        .find(|m| m.name == name && m.transition_started_at.as_deref() == Some(marker.as_str()))
        .cloned()
        .filter(|_| final_migration);
    let mut outcome = run_steps(
        spec,
        obs,
        Role::Standby,
        current,
        &names,
        |name, current| match name {
            StepName::Drain => eval_drain(spec, obs, current),
            StepName::FinalMigration => eval_final_migration(spec, obs, current),
            other => stop(other),
        },
    );
    outcome.final_migration = record;
    outcome
}

/// Whether the applications ran on this cluster as the primary: it was primary in role, or it was becoming
/// primary and had begun activating them. A cluster that never got past the fence holds no writes to hand over.
fn applications_ran_here(obs: &Observed) -> bool {
    if obs.previous.role != Some(Role::Primary) {
        return false;
    }
    let local = obs.local_domain.as_str();
    match obs
        .previous
        .transition
        .as_ref()
        .filter(|t| t.finished_at.is_none() && t.to == local && t.from != local)
    {
        Some(becoming) => becoming
            .step(step::ACTIVATE)
            .is_some_and(|s| s.state != StepState::Pending),
        None => true,
    }
}

/// The transition to continue (same from/to and unfinished) or a new one.
fn current_transition(obs: &Observed, from: &str, to: &str, names: &[StepName]) -> Transition {
    if let Some(t) = &obs.previous.transition
        && t.finished_at.is_none()
        && t.from == from
        && t.to == to
        && t.steps
            .iter()
            .map(|s| s.name.as_str())
            .eq(names.iter().map(|n| n.as_str()))
    {
        return t.clone();
    }
    Transition {
        from: from.to_string(),
        to: to.to_string(),
        revision: obs.revision.clone(),
        started_at: obs.now,
        finished_at: None,
        steps: names
            .iter()
            .map(|n| Step {
                name: n.to_string(),
                state: StepState::Pending,
                message: String::new(),
                time: obs.now,
            })
            .collect(),
    }
}

fn run_steps(
    spec: &PlanSpec,
    obs: &Observed,
    role: Role,
    previous: Transition,
    names: &[StepName],
    mut evaluate: impl FnMut(StepName, &Transition) -> Eval,
) -> Outcome {
    let is_new = obs.previous.transition.as_ref() != Some(&previous);
    let mut events = Vec::new();
    if is_new {
        events.push(Event {
            type_: "Normal",
            reason: "TransitionStarted".into(),
            message: format!(
                "plan {}/{}: {} -> {} at revision {}; this cluster becomes {}",
                spec.namespace,
                spec.name,
                previous.from,
                previous.to,
                previous.revision,
                role.as_str()
            ),
        });
    }
    let mut next = previous.clone();
    let mut actions = Vec::new();
    let mut blocking: Option<(usize, StepState, Option<&'static str>)> = None;
    for (i, &name) in names.iter().enumerate() {
        if blocking.is_some() {
            set_step(
                &mut next.steps[i],
                StepState::Pending,
                String::new(),
                obs.now,
            );
            continue;
        }
        let (state, message, stall_reason) = match evaluate(name, &previous) {
            Eval::Done(m) => (StepState::Succeeded, m, None),
            Eval::Act(a, m) => {
                actions = a;
                (StepState::InProgress, m, None)
            }
            Eval::Wait(m) => (StepState::Waiting, m, None),
            Eval::Stall { reason, message } => (StepState::Stalled, message, Some(reason)),
        };
        set_step(&mut next.steps[i], state, message, obs.now);
        if state != StepState::Succeeded {
            blocking = Some((i, state, stall_reason));
        }
    }
    for (before, after) in previous.steps.iter().zip(&next.steps) {
        let changed = is_new && after.state != StepState::Pending || before.state != after.state;
        if changed && after.state != StepState::Pending {
            events.push(Event {
                type_: if after.state == StepState::Stalled {
                    "Warning"
                } else {
                    "Normal"
                },
                reason: format!("{}{}", camel(&after.name), after.state),
                message: after.message.clone(),
            });
        }
    }
    let (phase, requeue, complete) = match blocking {
        None => {
            next.finished_at = Some(obs.now);
            events.push(Event {
                type_: "Normal",
                reason: "TransitionFinished".into(),
                message: format!(
                    "plan {}/{}: {} -> {} finished; this cluster is {}",
                    spec.namespace,
                    spec.name,
                    next.from,
                    next.to,
                    role.as_str()
                ),
            });
            (Phase::Ready, None, true)
        }
        Some((i, state, _)) => {
            let phase = match (state, names[i]) {
                (StepState::Stalled, _) => Phase::Stalled,
                (_, step::METRO) => Phase::WaitingForStorage,
                (StepState::Waiting, _) if role == Role::Primary => Phase::WaitingForPeer,
                _ if role == Role::Primary => Phase::Activating,
                _ => Phase::Deactivating,
            };
            let requeue = match state {
                StepState::InProgress => 0,
                StepState::Stalled => STALLED_RECHECK_SECONDS,
                _ => WAIT_RECHECK_SECONDS,
            };
            (phase, Some(requeue), false)
        }
    };
    let conditions = match blocking {
        None => conditions_for(
            obs,
            Phase::Ready,
            None,
            "Ready",
            &format!("this cluster is {} and in its role", role.as_str()),
        ),
        Some((i, _, stall_reason)) => {
            let step = &next.steps[i];
            let reason = stall_reason
                .map(str::to_string)
                .unwrap_or_else(|| camel(&step.name));
            conditions_for(
                obs,
                phase,
                stall_reason,
                &reason,
                &format!("{}: {}", step.name, step.message),
            )
        }
    };
    // The new primary's objects wait for the protect step; the standby's (schedule suspended) are safe at once.
    let hold_role_objects = role == Role::Primary
        && blocking.is_some_and(|(i, _, _)| names[i] != step::PROTECT)
        && names.contains(&step::FENCE);
    Outcome {
        role,
        phase,
        transition: Some(next),
        conditions,
        actions,
        events,
        hold_role_objects,
        complete,
        requeue_after_seconds: requeue,
        workloads: workload_counts(obs),
        final_migration: None,
        last_migration: None,
    }
}

fn set_step(step: &mut Step, state: StepState, message: String, now: Timestamp) {
    if step.state != state {
        step.state = state;
        step.time = now;
    }
    step.message = message;
}

/// Steady state: in role, no transition running. The previous transition record is kept as history.
fn steady(role: Role, obs: &Observed, hold_role_objects: bool) -> Outcome {
    Outcome {
        role,
        phase: Phase::Ready,
        transition: obs.previous.transition.clone(),
        conditions: conditions_for(
            obs,
            Phase::Ready,
            None,
            "Ready",
            &format!("this cluster is {} and in its role", role.as_str()),
        ),
        actions: Vec::new(),
        events: Vec::new(),
        hold_role_objects,
        complete: true,
        requeue_after_seconds: None,
        workloads: workload_counts(obs),
        final_migration: None,
        last_migration: None,
    }
}

fn stalled_outside_transition(
    role: Role,
    obs: &Observed,
    reason: &'static str,
    message: String,
) -> Outcome {
    Outcome {
        role,
        phase: Phase::Stalled,
        transition: obs.previous.transition.clone(),
        conditions: conditions_for(obs, Phase::Stalled, Some(reason), reason, &message),
        actions: Vec::new(),
        events: vec![Event {
            type_: "Warning",
            reason: reason.to_string(),
            message,
        }],
        hold_role_objects: true,
        complete: false,
        requeue_after_seconds: Some(STALLED_RECHECK_SECONDS),
        workloads: workload_counts(obs),
        final_migration: None,
        last_migration: None,
    }
}

fn conditions_for(
    obs: &Observed,
    phase: Phase,
    stall: Option<&str>,
    reason: &str,
    message: &str,
) -> Vec<Condition> {
    let ready = phase == Phase::Ready;
    let stalled = stall.is_some();
    let mk = |type_: &str, status: bool, reason: &str, message: &str| {
        let status = if status { "True" } else { "False" }.to_string();
        let last_transition_time = obs
            .previous
            .conditions
            .iter()
            .find(|c| c.type_ == type_ && c.status == status)
            .map(|c| c.last_transition_time)
            .unwrap_or(obs.now);
        Condition {
            type_: type_.to_string(),
            status,
            reason: reason.to_string(),
            message: message.to_string(),
            last_transition_time,
        }
    };
    vec![
        mk(
            "Ready",
            ready,
            if ready { "Ready" } else { reason },
            message,
        ),
        mk(
            "Reconciling",
            !ready && !stalled,
            if ready || stalled { "Idle" } else { reason },
            message,
        ),
        mk(
            "Stalled",
            stalled,
            stall.unwrap_or("NotStalled"),
            if stalled { message } else { "" },
        ),
    ]
}

fn camel(name: &str) -> String {
    name.split('-')
        .map(|part| {
            let mut chars = part.chars();
            match chars.next() {
                Some(c) => c.to_ascii_uppercase().to_string() + chars.as_str(),
                None => String::new(),
            }
        })
        .collect()
}

fn observed_domains(obs: &Observed) -> BTreeMap<&str, bool> {
    obs.cluster_domains
        .iter()
        .flatten()
        .map(|d| (d.name.as_str(), d.active))
        .collect()
}

fn metro_domains_match(spec: &PlanSpec, obs: &Observed) -> bool {
    let observed = observed_domains(obs);
    spec.domains
        .iter()
        .all(|d| observed.get(d.name.as_str()) == Some(&d.active))
}

#[cfg(test)]
mod tests;
