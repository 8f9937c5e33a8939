use super::*;
use crate::plan::DRPlanStatus;

const A: &str = "us-east-1a";
const B: &str = "us-east-1b";

fn ts(second: i64) -> Timestamp {
    Timestamp::from_second(1_790_000_000 + second).unwrap()
}

fn spec(mode: Mode, primary: &str) -> PlanSpec {
    PlanSpec {
        name: "mysql".into(),
        namespace: "mysql".into(),
        mode,
        primary: primary.into(),
        domains: vec![
            DomainSpec {
                name: A.into(),
                active: true,
            },
            DomainSpec {
                name: B.into(),
                active: true,
            },
        ],
        peer_stop_timeout_seconds: 300,
        drain_timeout_seconds: 300,
        final_migration_timeout_seconds: 1800,
        disaster_lost: None,
        migration_template: serde_json::json!({
            "clusterPair": "remotecluster",
            "namespaces": ["mysql"],
            "startApplications": false,
        }),
    }
}

/// What the simulated Stork does with a new Migration.
#[derive(Clone, Debug, PartialEq)]
enum Stork {
    Succeed,
    Fail(&'static str),
    /// Leaves it InProgress.
    Hold,
}

fn wref(kind: WorkloadKind, name: &str) -> WorkloadRef {
    WorkloadRef {
        kind,
        namespace: "mysql".into(),
        name: name.into(),
    }
}

fn workload(
    kind: WorkloadKind,
    name: &str,
    replicas: Option<i32>,
    annotation: Option<&str>,
) -> Workload {
    Workload {
        workload: wref(kind, name),
        replicas,
        replicas_annotation: annotation.map(str::to_string),
        legacy_replicas_annotation: None,
    }
}

/// One simulated cluster: what its API server holds plus the status its reconciler wrote.
#[derive(Clone, Debug, PartialEq)]
struct Cluster {
    domain: String,
    workloads: Vec<Workload>,
    cron_jobs: Vec<CronJob>,
    schedule: Option<Schedule>,
    static_copies: Vec<StaticCopy>,
    cluster_domains: Option<Vec<DomainState>>,
    domain_updates: Vec<DomainUpdate>,
    status: PreviousStatus,
    last_applied: Option<String>,
    phase: Option<Phase>,
    /// Every (workload, replicas) this reconciler scaled up to, in order.
    scale_ups: Vec<(WorkloadRef, i32)>,
    /// Every count this reconciler recorded into the annotation.
    recorded: Vec<(WorkloadRef, i32)>,
    /// The plan's schedule name is held by Stork's static copy of the peer's schedule.
    foreign_copy_holds_name: bool,
    /// Pods still terminating after their workload went to 0 (`namespace/name`).
    lingering_pods: Vec<String>,
    /// Stork Migrations in the plan's namespace.
    migrations: Vec<MigrationRecord>,
    /// `status.finalMigration` as written.
    final_record: Option<crate::plan::types::MigrationRecord>,
    /// Writes the applications made here, or received by migration: the data this cluster holds.
    data: u32,
    /// `data` when this cluster first scaled a workload up.
    data_when_started: Option<u32>,
    stork: Stork,
    /// The newest Successful item of the plan's MigrationSchedule here.
    scheduled_migration: Option<crate::plan::types::MigrationRecord>,
}

impl Cluster {
    /// A primary running mysql (3) and web (2) with a CronJob and the plan's schedule.
    fn running(domain: &str, revision: &str) -> Cluster {
        Cluster {
            domain: domain.into(),
            workloads: vec![
                workload(WorkloadKind::StatefulSet, "mysql", Some(3), None),
                workload(WorkloadKind::Deployment, "web", Some(2), None),
            ],
            cron_jobs: vec![CronJob {
                namespace: "mysql".into(),
                name: "backup".into(),
                suspend: false,
                migrated: false,
                suspended_by_us: false,
            }],
            schedule: Some(Schedule {
                namespace: "mysql".into(),
                name: "mysql".into(),
                suspend: false,
                static_copy: false,
            }),
            static_copies: vec![],
            cluster_domains: None,
            domain_updates: vec![],
            status: PreviousStatus {
                role: Some(Role::Primary),
                ..Default::default()
            },
            last_applied: Some(revision.into()),
            phase: Some(Phase::Ready),
            scale_ups: vec![],
            recorded: vec![],
            foreign_copy_holds_name: false,
            lingering_pods: vec![],
            migrations: vec![],
            final_record: None,
            data: 0,
            data_when_started: None,
            stork: Stork::Succeed,
            scheduled_migration: None,
        }
    }

    /// A standby holding what Stork migrated: workloads at 0 with counts, a suspended migrated CronJob, a
    /// static copy of the primary's schedule.
    fn standby(domain: &str, revision: &str) -> Cluster {
        Cluster {
            domain: domain.into(),
            workloads: vec![
                workload(WorkloadKind::StatefulSet, "mysql", Some(0), Some("3")),
                workload(WorkloadKind::Deployment, "web", Some(0), Some("2")),
            ],
            cron_jobs: vec![CronJob {
                namespace: "mysql".into(),
                name: "backup".into(),
                suspend: true,
                migrated: true,
                suspended_by_us: false,
            }],
            schedule: None,
            static_copies: vec![StaticCopy {
                namespace: "mysql".into(),
                name: "mysql-nightly".into(),
                application_activated: false,
            }],
            cluster_domains: None,
            domain_updates: vec![],
            status: PreviousStatus {
                role: Some(Role::Standby),
                ..Default::default()
            },
            last_applied: Some(revision.into()),
            phase: Some(Phase::Ready),
            scale_ups: vec![],
            recorded: vec![],
            foreign_copy_holds_name: false,
            lingering_pods: vec![],
            migrations: vec![],
            final_record: None,
            data: 0,
            data_when_started: None,
            stork: Stork::Succeed,
            scheduled_migration: None,
        }
    }

    fn running_workloads(&self) -> u32 {
        self.workloads
            .iter()
            .filter(|w| w.effective_replicas() > 0)
            .count() as u32
    }

    /// Pods not finished: one per running workload, plus those lingering.
    fn pods(&self) -> Vec<String> {
        let mut pods: Vec<String> = self
            .workloads
            .iter()
            .filter(|w| w.effective_replicas() > 0)
            .map(|w| format!("mysql/{}-0", w.workload.name))
            .collect();
        pods.extend(self.lingering_pods.iter().cloned());
        pods
    }

    fn as_peer(&self) -> Peer {
        let transition = self.status.transition.as_ref();
        Peer::Reachable {
            plan: Some(PeerPlan {
                role: self.status.role,
                last_applied_revision: self.last_applied.clone(),
                phase: self.phase.map(|p| p.to_string()),
                transition_revision: transition.map(|t| t.revision.clone()),
                final_migration_step: transition
                    .and_then(|t| t.step(step::FINAL_MIGRATION))
                    .map(|s| (s.state, s.message.clone())),
                final_migration: self.final_record.as_ref().map(MigrationRecord::from_status),
                last_migration: self.status.last_migration.clone(),
            }),
            running_workloads: Some(self.running_workloads()),
            running_pods: Some(self.pods()),
        }
    }

    /// The applications write while they run.
    fn write(&mut self) {
        if self.running_workloads() > 0 {
            self.data += 1;
        }
    }

    /// One pass of the simulated Stork on this cluster: new Migrations end as `self.stork` says; a successful one
    /// copies this cluster's data to the peer.
    fn stork_pass(&mut self, peer: &mut Cluster, now: Timestamp) {
        for m in self.migrations.iter_mut().filter(|m| m.status.is_empty()) {
            match self.stork {
                Stork::Succeed => {
                    m.status = "Successful".into();
                    m.stage = "Final".into();
                    m.finished_at = Some(now);
                    peer.data = self.data;
                }
                Stork::Fail(reason) => {
                    m.status = "Failed".into();
                    m.stage = "Final".into();
                    m.reason = Some(reason.into());
                }
                Stork::Hold => {}
            }
        }
    }

    fn observe(&self, revision: &str, now: Timestamp, peer: Peer) -> Observed {
        Observed {
            local_domain: self.domain.clone(),
            revision: revision.into(),
            now,
            workloads: self.workloads.clone(),
            cron_jobs: self.cron_jobs.clone(),
            schedule: self.schedule.clone(),
            static_copies: self.static_copies.clone(),
            cluster_domains: self.cluster_domains.clone(),
            domain_updates: self.domain_updates.clone(),
            peer,
            previous: self.status.clone(),
            pods: self.pods(),
            final_migrations: self.migrations.clone(),
            scheduled_migration: self.scheduled_migration.clone(),
        }
    }

    /// Writes the outcome as the executor does, through the DRPlan status type, and reads it back.
    fn write_status(&mut self, out: &Outcome, revision: &str) {
        let mut raw = DRPlanStatus {
            last_applied_revision: self.last_applied.clone(),
            final_migration: self.final_record.clone(),
            last_migration: self.status.last_migration.clone(),
            ..Default::default()
        };
        out.write_status(&mut raw, &self.domain, revision);
        let written = serde_json::to_value(&raw).unwrap();
        let raw: DRPlanStatus = serde_json::from_value(written).unwrap();
        self.status = PreviousStatus::from_status(Some(&raw));
        assert_eq!(
            self.status.transition, out.transition,
            "transition survives the status round trip"
        );
        assert_eq!(self.status.conditions, out.conditions);
        self.phase = Some(out.phase);
        self.last_applied = raw.last_applied_revision.clone();
        self.final_record = raw.final_migration.clone();
    }

    fn perform(&mut self, action: &Action, peer_unreachable: bool) {
        match action {
            Action::CreateDomainUpdate {
                name,
                domain,
                active,
            } => self.domain_updates.push(DomainUpdate {
                name: name.clone(),
                domain: domain.clone(),
                active: *active,
                status: String::new(),
                reason: None,
            }),
            Action::SetScheduleSuspend { suspend, .. } => {
                if let Some(s) = self.schedule.as_mut() {
                    s.suspend = *suspend;
                }
            }
            Action::ScaleDown { workload, record } => {
                let w = self
                    .workloads
                    .iter_mut()
                    .find(|w| w.workload == *workload)
                    .unwrap();
                if let Some(n) = record {
                    w.replicas_annotation = Some(n.to_string());
                    self.recorded.push((workload.clone(), *n));
                }
                w.replicas = Some(0);
            }
            Action::ScaleUp { workload, replicas } => {
                let w = self
                    .workloads
                    .iter_mut()
                    .find(|w| w.workload == *workload)
                    .unwrap();
                w.replicas = Some(*replicas);
                self.scale_ups.push((workload.clone(), *replicas));
                self.data_when_started.get_or_insert(self.data);
            }
            Action::SetCronJobSuspend { name, suspend, .. } => {
                let c = self.cron_jobs.iter_mut().find(|c| c.name == *name).unwrap();
                c.suspend = *suspend;
                c.suspended_by_us = *suspend;
            }
            Action::SetApplicationActivated {
                name, activated, ..
            } => {
                let s = self
                    .static_copies
                    .iter_mut()
                    .find(|s| s.name == *name)
                    .unwrap();
                s.application_activated = *activated;
            }
            Action::CreateMigration { name, object, .. } => {
                assert_eq!(object["spec"]["startApplications"], false);
                assert_eq!(object["metadata"]["name"], name.as_str());
                self.migrations.push(MigrationRecord {
                    name: name.clone(),
                    transition_started_at: object["metadata"]["annotations"]
                        [keys::TRANSITION_ANNOTATION]
                        .as_str()
                        .map(str::to_string),
                    ..Default::default()
                });
            }
            Action::DeleteMigration { name, .. } => self.migrations.retain(|m| m.name != *name),
            // The apply leaves a schedule that is Stork's own static copy alone, as the plan controller does.
            Action::ApplyRoleObjects if self.foreign_copy_holds_name => {}
            Action::ApplyRoleObjects => {
                self.schedule = Some(Schedule {
                    namespace: "mysql".into(),
                    name: "mysql".into(),
                    suspend: peer_unreachable,
                    static_copy: false,
                })
            }
        }
    }

    /// One reconcile pass as the executor runs it: plan, write status, perform the actions.
    fn pass(&mut self, spec: &PlanSpec, revision: &str, now: Timestamp, peer: Peer) -> Outcome {
        let unreachable = matches!(peer, Peer::Unreachable { .. });
        let out = plan(spec, &self.observe(revision, now, peer));
        self.write_status(&out, revision);
        for a in &out.actions {
            self.perform(a, unreachable);
        }
        out
    }

    fn replicas(&self, name: &str) -> Option<i32> {
        self.workloads
            .iter()
            .find(|w| w.workload.name == name)
            .unwrap()
            .replicas
    }

    fn annotation(&self, name: &str) -> Option<&str> {
        self.workloads
            .iter()
            .find(|w| w.workload.name == name)
            .unwrap()
            .replicas_annotation
            .as_deref()
    }

    fn step(&self, name: StepName) -> Step {
        self.status
            .transition
            .as_ref()
            .unwrap()
            .step(name)
            .unwrap()
            .clone()
    }
}

fn unreachable() -> Peer {
    Peer::Unreachable {
        error: "connection refused".into(),
    }
}

/// Runs both reconcilers alternately until both are complete; returns the number of rounds. Asserts at every
/// moment that the two clusters never both run applications.
fn converge(
    a: &mut Cluster,
    b: &mut Cluster,
    spec: &PlanSpec,
    revision: &str,
    start: i64,
) -> usize {
    for round in 0..20 {
        let now = ts(start + round as i64);
        let oa = a.pass(spec, revision, now, b.as_peer());
        assert!(
            a.pods().is_empty() || b.running_workloads() == 0,
            "both sides run: {a:?} {b:?}"
        );
        a.write();
        a.stork_pass(b, now);
        let ob = b.pass(spec, revision, now, a.as_peer());
        assert!(
            b.pods().is_empty() || a.running_workloads() == 0,
            "both sides run: {a:?} {b:?}"
        );
        b.write();
        b.stork_pass(a, now);
        if oa.complete && ob.complete && oa.actions.is_empty() && ob.actions.is_empty() {
            return round;
        }
    }
    panic!("no convergence: {a:#?} {b:#?}");
}

#[test]
fn planned_async_failover_then_failback() {
    let mut a = Cluster::running(A, "rev1");
    let mut b = Cluster::standby(B, "rev1");
    let to_b = spec(Mode::Async, B);

    // The new primary sees the commit first: it waits for the old one, scaling nothing up.
    let out = b.pass(&to_b, "rev2", ts(0), a.as_peer());
    assert_eq!(out.role, Role::Primary);
    assert_eq!(out.phase, Phase::WaitingForPeer);
    assert!(out.hold_role_objects);
    assert!(out.actions.is_empty());
    assert_eq!(b.step(step::FENCE).state, StepState::Waiting);
    assert!(
        b.step(step::FENCE).message.contains("reports role Primary"),
        "{:?}",
        b.step(step::FENCE)
    );
    assert!(out.events.iter().any(|e| e.reason == "TransitionStarted"));

    converge(&mut a, &mut b, &to_b, "rev2", 1);

    // Applications run only on the new primary, at the recorded counts.
    assert_eq!((b.replicas("mysql"), b.replicas("web")), (Some(3), Some(2)));
    assert_eq!((a.replicas("mysql"), a.replicas("web")), (Some(0), Some(0)));
    assert_eq!(
        (a.annotation("mysql"), a.annotation("web")),
        (Some("3"), Some("2"))
    );
    assert!(
        a.schedule.as_ref().unwrap().suspend,
        "old primary's schedule suspended"
    );
    assert!(a.cron_jobs[0].suspend && a.cron_jobs[0].suspended_by_us);
    assert!(!b.cron_jobs[0].suspend, "migrated CronJob resumed");
    assert!(b.static_copies[0].application_activated);
    assert!(
        !b.schedule.as_ref().unwrap().suspend,
        "new primary protects towards the old one"
    );
    assert_eq!(
        (a.status.role, b.status.role),
        (Some(Role::Standby), Some(Role::Primary))
    );
    let tb = b.status.transition.clone().unwrap();
    assert_eq!(
        (tb.from.as_str(), tb.to.as_str(), tb.revision.as_str()),
        (A, B, "rev2")
    );
    assert!(tb.finished_at.is_some());
    assert!(
        tb.steps.iter().all(|s| s.state == StepState::Succeeded),
        "{tb:?}"
    );
    let names: Vec<&str> = tb.steps.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["fence", "activate", "protect"]);
    let ta = a.status.transition.clone().unwrap();
    let names: Vec<&str> = ta.steps.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "suspend-schedule",
            "scale-down",
            "suspend-cronjobs",
            "deactivate-static-copies",
            "drain",
            "final-migration"
        ]
    );
    assert_eq!(b.phase, Some(Phase::Ready));
    // Every write the old primary made before it stopped was on the new primary when it started.
    assert!(a.data > 0);
    assert_eq!(b.data_when_started, Some(a.data));
    let record = a.final_record.clone().unwrap();
    assert_eq!(record.name, final_migration_name("mysql", "rev2"));
    assert_eq!(
        (
            record.status.as_deref(),
            record.revision.as_deref(),
            record.from.as_deref()
        ),
        (Some("Successful"), Some("rev2"), Some(A))
    );
    assert!(record.finished_at.is_some());
    assert!(
        b.step(step::FENCE)
            .message
            .contains(&format!("with final Migration {} Successful", record.name)),
        "{}",
        b.step(step::FENCE).message
    );

    // Failback: the same pair of transitions the other way round.
    let to_a = spec(Mode::Async, A);
    converge(&mut a, &mut b, &to_a, "rev3", 100);
    assert_eq!((a.replicas("mysql"), a.replicas("web")), (Some(3), Some(2)));
    assert_eq!((b.replicas("mysql"), b.replicas("web")), (Some(0), Some(0)));
    assert_eq!(
        (b.annotation("mysql"), b.annotation("web")),
        (Some("3"), Some("2"))
    );
    assert!(
        !a.cron_jobs[0].suspend,
        "CronJob we suspended is resumed on failback"
    );
    assert!(
        !b.static_copies[0].application_activated,
        "the old primary's static copy no longer says active"
    );
    assert!(b.schedule.as_ref().unwrap().suspend);
    assert!(!a.schedule.as_ref().unwrap().suspend);
    assert_eq!(
        (a.status.role, b.status.role),
        (Some(Role::Primary), Some(Role::Standby))
    );
}

#[test]
fn new_primary_never_scales_up_before_peer_reports_standby_at_this_revision() {
    let mut a = Cluster::running(A, "rev1");
    let mut b = Cluster::standby(B, "rev1");
    let to_b = spec(Mode::Async, B);
    // The peer reports Standby, but for an older revision: still waiting.
    a.status.role = Some(Role::Standby);
    a.workloads.iter_mut().for_each(|w| w.replicas = Some(0));
    let out = b.pass(&to_b, "rev2", ts(0), a.as_peer());
    assert_eq!(out.phase, Phase::WaitingForPeer);
    assert!(b.scale_ups.is_empty());
    // At this revision: proceed.
    a.last_applied = Some("rev2".into());
    let out = b.pass(&to_b, "rev2", ts(1), a.as_peer());
    assert_eq!(b.step(step::FENCE).state, StepState::Succeeded);
    assert_eq!(out.phase, Phase::Activating);
    assert_eq!(b.scale_ups.len(), 2);
}

#[test]
fn async_unreachable_peer_without_a_declared_disaster_is_waited_for_then_stalls_with_the_command() {
    let mut b = Cluster::standby(B, "rev1");
    let to_b = spec(Mode::Async, B);
    let out = b.pass(&to_b, "rev2", ts(0), unreachable());
    assert_eq!(out.phase, Phase::WaitingForPeer);
    let out = b.pass(&to_b, "rev2", ts(299), unreachable());
    assert_eq!(out.phase, Phase::WaitingForPeer);
    assert!(b.scale_ups.is_empty());
    let out = b.pass(&to_b, "rev2", ts(300), unreachable());
    assert_eq!(out.phase, Phase::Stalled);
    let fence = b.step(step::FENCE);
    assert_eq!(fence.state, StepState::Stalled);
    assert!(
        fence
            .message
            .contains("drgitops failover --plan mysql --to us-east-1b --disaster"),
        "{}",
        fence.message
    );
    assert!(b.scale_ups.is_empty(), "nothing started on a partition");
    let stalled = out
        .conditions
        .iter()
        .find(|c| c.type_ == "Stalled")
        .unwrap();
    assert_eq!(
        (stalled.status.as_str(), stalled.reason.as_str()),
        ("True", "PeerUnreachable")
    );

    // The declaration arrives in the next commit: the fence passes at once.
    let mut declared = to_b.clone();
    declared.disaster_lost = Some(A.into());
    b.pass(&declared, "rev3", ts(301), unreachable());
    assert_eq!(b.step(step::FENCE).state, StepState::Succeeded);
    assert!(b.step(step::FENCE).message.contains("disaster declared"));
}

#[test]
fn async_disaster_then_old_primary_returns_and_stops_first() {
    let mut a = Cluster::running(A, "rev1");
    let mut b = Cluster::standby(B, "rev1");
    let mut to_b = spec(Mode::Async, B);
    to_b.disaster_lost = Some(A.into());
    for i in 0..5 {
        b.pass(&to_b, "rev2", ts(i), unreachable());
    }
    assert_eq!((b.replicas("mysql"), b.replicas("web")), (Some(3), Some(2)));
    assert!(
        b.step(step::FENCE)
            .message
            .contains("disaster declared: us-east-1a is lost")
    );
    assert!(
        b.schedule.as_ref().unwrap().suspend,
        "no migrations towards an unreachable peer"
    );
    assert_eq!(b.phase, Some(Phase::Ready));

    // The old primary comes back still believing it is primary: its first pass stops the applications.
    let out = a.pass(&to_b, "rev2", ts(10), b.as_peer());
    assert_eq!(out.role, Role::Standby);
    assert!(!out.hold_role_objects);
    assert_eq!(
        out.actions,
        [Action::SetScheduleSuspend {
            namespace: "mysql".into(),
            name: "mysql".into(),
            suspend: true
        }]
    );
    let out = a.pass(&to_b, "rev2", ts(11), b.as_peer());
    assert!(
        out.actions
            .iter()
            .all(|x| matches!(x, Action::ScaleDown { .. }))
    );
    assert_eq!(out.actions.len(), 2);
    converge(&mut a, &mut b, &to_b, "rev2", 12);
    assert_eq!(a.running_workloads(), 0);
    // The lost cluster's copy is older than what the new primary runs: it migrates nothing back.
    assert!(a.migrations.is_empty());
    let ta = a.status.transition.clone().unwrap();
    assert!(ta.step(step::FINAL_MIGRATION).is_none(), "{ta:?}");
    assert_eq!(
        (a.annotation("mysql"), a.annotation("web")),
        (Some("3"), Some("2"))
    );
}

fn metro_clusters() -> (Cluster, PlanSpec) {
    let mut b = Cluster::standby(B, "rev1");
    b.cluster_domains = Some(vec![
        DomainState {
            name: A.into(),
            active: true,
        },
        DomainState {
            name: B.into(),
            active: true,
        },
    ]);
    let mut s = spec(Mode::Metro, B);
    s.domains[0].active = false;
    (b, s)
}

#[test]
fn metro_failover_deactivates_the_failed_domain_before_starting_applications() {
    let (mut b, s) = metro_clusters();
    let out = b.pass(&s, "0123456789abcdef", ts(0), unreachable());
    let cdu = domain_update_name("mysql", A, false, "0123456789abcdef");
    assert_eq!(cdu, "drgitops-mysql-us-east-1a-deactivate-01234567");
    assert_eq!(
        out.actions,
        [Action::CreateDomainUpdate {
            name: cdu.clone(),
            domain: A.into(),
            active: false
        }]
    );
    assert_eq!(out.phase, Phase::WaitingForStorage);
    // Stork has not processed it yet: wait, never create it twice.
    let out = b.pass(&s, "0123456789abcdef", ts(1), unreachable());
    assert!(out.actions.is_empty());
    assert_eq!(out.phase, Phase::WaitingForStorage);
    assert!(b.step(step::METRO).message.contains(&cdu));
    assert_eq!(b.domain_updates.len(), 1);
    assert!(b.scale_ups.is_empty());
    // Stork reports Successful and the domain Inactive.
    b.domain_updates[0].status = "Successful".into();
    b.cluster_domains.as_mut().unwrap()[0].active = false;
    for i in 2..6 {
        b.pass(&s, "0123456789abcdef", ts(i), unreachable());
    }
    assert_eq!(b.step(step::METRO).state, StepState::Succeeded);
    assert!(b.step(step::FENCE).message.contains("Inactive"));
    assert_eq!((b.replicas("mysql"), b.replicas("web")), (Some(3), Some(2)));
    assert_eq!(b.phase, Some(Phase::Ready));
}

#[test]
fn metro_domain_update_failed_surfaces_as_stalled_with_storks_reason() {
    let (mut b, s) = metro_clusters();
    b.pass(&s, "rev2", ts(0), unreachable());
    b.domain_updates[0].status = "Failed".into();
    b.domain_updates[0].reason = Some("px cluster domain manager unavailable".into());
    let out = b.pass(&s, "rev2", ts(1), unreachable());
    assert_eq!(out.phase, Phase::Stalled);
    assert!(out.actions.is_empty());
    let stalled = out
        .conditions
        .iter()
        .find(|c| c.type_ == "Stalled")
        .unwrap();
    assert_eq!(
        (stalled.status.as_str(), stalled.reason.as_str()),
        ("True", "ClusterDomainUpdateFailed")
    );
    assert!(
        stalled
            .message
            .contains("px cluster domain manager unavailable"),
        "{}",
        stalled.message
    );
    assert!(
        stalled
            .message
            .contains("delete drgitops-mysql-us-east-1a-deactivate-rev2 to retry")
    );
    assert!(
        out.events
            .iter()
            .any(|e| e.type_ == "Warning" && e.reason == "MetroStalled")
    );
    assert!(b.scale_ups.is_empty());
    // Deleting the failed update (as the message says) retries it.
    b.domain_updates.clear();
    let out = b.pass(&s, "rev2", ts(2), unreachable());
    assert!(matches!(
        out.actions.as_slice(),
        [Action::CreateDomainUpdate { .. }]
    ));
}

#[test]
fn metro_with_unreachable_peer_and_active_domain_waits_then_stalls_naming_the_commit() {
    let mut b = Cluster::standby(B, "rev1");
    b.cluster_domains = Some(vec![
        DomainState {
            name: A.into(),
            active: true,
        },
        DomainState {
            name: B.into(),
            active: true,
        },
    ]);
    let s = spec(Mode::Metro, B);
    let out = b.pass(&s, "rev2", ts(0), unreachable());
    assert_eq!(out.phase, Phase::WaitingForPeer);
    let out = b.pass(&s, "rev2", ts(299), unreachable());
    assert_eq!(out.phase, Phase::WaitingForPeer);
    let out = b.pass(&s, "rev2", ts(300), unreachable());
    assert_eq!(out.phase, Phase::Stalled);
    let stalled = out
        .conditions
        .iter()
        .find(|c| c.type_ == "Stalled")
        .unwrap();
    assert_eq!(stalled.reason, "PeerDomainActive");
    assert!(
        stalled
            .message
            .contains("drgitops failover --plan mysql --to us-east-1b --deactivate us-east-1a"),
        "{}",
        stalled.message
    );
    assert!(b.scale_ups.is_empty());
}

#[test]
fn peer_reachable_but_running_makes_the_new_primary_wait_then_stall_then_recover() {
    let mut a = Cluster::running(A, "rev1");
    let mut b = Cluster::standby(B, "rev1");
    let to_b = spec(Mode::Async, B);
    // The old primary's reconciler says Standby at rev2 but something keeps its workloads running.
    a.status.role = Some(Role::Standby);
    a.last_applied = Some("rev2".into());
    let out = b.pass(&to_b, "rev2", ts(0), a.as_peer());
    assert_eq!(out.phase, Phase::WaitingForPeer);
    assert!(
        b.step(step::FENCE)
            .message
            .contains("still runs 2 workload(s)")
    );
    let out = b.pass(&to_b, "rev2", ts(150), a.as_peer());
    assert_eq!(out.phase, Phase::WaitingForPeer);
    assert_eq!(
        b.step(step::FENCE).time,
        ts(0),
        "waiting since the first pass"
    );
    let out = b.pass(&to_b, "rev2", ts(301), a.as_peer());
    assert_eq!(out.phase, Phase::Stalled);
    let stalled = out
        .conditions
        .iter()
        .find(|c| c.type_ == "Stalled")
        .unwrap();
    assert_eq!(stalled.reason, "PeerStillRunning");
    assert!(stalled.message.contains("after 300s"));
    assert!(
        stalled
            .message
            .contains("drgitops failover --plan mysql --to us-east-1a"),
        "{}",
        stalled.message
    );
    let ready = out.conditions.iter().find(|c| c.type_ == "Ready").unwrap();
    assert_eq!(ready.status, "False");
    assert!(b.scale_ups.is_empty());
    // Still stalled later; once the peer stops, the transition carries on by itself.
    assert_eq!(
        b.pass(&to_b, "rev2", ts(400), a.as_peer()).phase,
        Phase::Stalled
    );
    a.workloads.iter_mut().for_each(|w| w.replicas = Some(0));
    let out = b.pass(&to_b, "rev2", ts(401), a.as_peer());
    assert_eq!(out.phase, Phase::Activating);
    assert_eq!(b.scale_ups.len(), 2);
}

#[test]
fn peer_without_drplan_is_waited_for() {
    let mut b = Cluster::standby(B, "rev1");
    let peer = Peer::Reachable {
        plan: None,
        running_workloads: Some(0),
        running_pods: Some(Vec::new()),
    };
    let out = b.pass(&spec(Mode::Async, B), "rev2", ts(0), peer);
    assert_eq!(out.phase, Phase::WaitingForPeer);
    assert!(
        b.step(step::FENCE)
            .message
            .contains("has no DRPlan mysql/mysql")
    );
}

/// The reference run of a planned failover, then the same run killed after every single operation (a status
/// write or one action) and restarted: it must end in the same state with every step done exactly once.
#[test]
fn crash_between_any_two_steps_finishes_the_transition_exactly_once() {
    let to_b = spec(Mode::Async, B);
    let mut ref_a = Cluster::running(A, "rev1");
    let mut ref_b = Cluster::standby(B, "rev1");
    converge(&mut ref_a, &mut ref_b, &to_b, "rev2", 0);

    let mut crashed_somewhere = false;
    for crash_at in 0..60 {
        for crash_b in [false, true] {
            let mut a = Cluster::running(A, "rev1");
            let mut b = Cluster::standby(B, "rev1");
            let mut ops = 0;
            // Run until the crash point: each pass writes status, then performs actions one by one.
            'run: for round in 0..20 {
                for on_b in [false, true] {
                    let (me, peer) = if on_b { (&mut b, &a) } else { (&mut a, &b) };
                    let peer = peer.as_peer();
                    let out = plan(&to_b, &me.observe("rev2", ts(round), peer));
                    let crashing = on_b == crash_b;
                    if crashing && ops == crash_at {
                        crashed_somewhere = true;
                        break 'run;
                    }
                    me.write_status(&out, "rev2");
                    if crashing {
                        ops += 1;
                    }
                    for action in &out.actions {
                        if crashing && ops == crash_at {
                            crashed_somewhere = true;
                            break 'run;
                        }
                        me.perform(action, false);
                        if crashing {
                            ops += 1;
                        }
                    }
                }
                a.write();
                a.stork_pass(&mut b, ts(round));
            }
            // Restart both reconcilers (status is what was written before the crash) and finish.
            converge(&mut a, &mut b, &to_b, "rev2", 100);
            for (name, want) in [("mysql", Some(3)), ("web", Some(2))] {
                assert_eq!(b.replicas(name), want, "crash at {crash_at} on b={crash_b}");
                assert_eq!(
                    a.replicas(name),
                    Some(0),
                    "crash at {crash_at} on b={crash_b}"
                );
            }
            assert_eq!(a.annotation("mysql"), Some("3"));
            assert_eq!(a.annotation("web"), Some("2"));
            // Each workload was scaled up once, to its count, and each count recorded once, never as 0.
            assert_eq!(
                b.scale_ups, ref_b.scale_ups,
                "crash at {crash_at} on b={crash_b}"
            );
            assert_eq!(
                a.recorded, ref_a.recorded,
                "crash at {crash_at} on b={crash_b}"
            );
            assert!(a.recorded.iter().all(|(_, n)| *n > 0));
            assert_eq!(a.schedule, ref_a.schedule);
            assert_eq!(b.schedule, ref_b.schedule);
            assert_eq!(a.cron_jobs, ref_a.cron_jobs);
            assert_eq!(b.cron_jobs, ref_b.cron_jobs);
            assert_eq!(b.static_copies, ref_b.static_copies);
            assert_eq!(
                (a.status.role, b.status.role),
                (Some(Role::Standby), Some(Role::Primary))
            );
            assert!(b.status.transition.as_ref().unwrap().finished_at.is_some());
            assert_eq!(b.last_applied.as_deref(), Some("rev2"));
            // One final migration, and it carried every write.
            assert_eq!(a.migrations.len(), 1, "crash at {crash_at} on b={crash_b}");
            assert_eq!(
                b.data_when_started,
                Some(a.data),
                "crash at {crash_at} on b={crash_b}"
            );
        }
    }
    assert!(crashed_somewhere);
}

#[test]
fn protect_finishes_when_stork_keeps_the_schedule_suspended_or_its_static_copy_holds_the_name() {
    let to_b = spec(Mode::Async, B);
    let ready_peer = || {
        let mut a = Cluster::running(A, "rev1");
        a.status.role = Some(Role::Standby);
        a.last_applied = Some("rev2".into());
        a.workloads.iter_mut().for_each(|w| w.replicas = Some(0));
        a
    };
    // The apply leaves the schedule suspended (Stork suspended it): done after one apply.
    let a = ready_peer();
    let mut b = Cluster::standby(B, "rev1");
    let out = b.pass(&to_b, "rev2", ts(0), a.as_peer());
    assert!(
        out.actions
            .iter()
            .all(|x| !matches!(x, Action::ApplyRoleObjects)),
        "activation comes first"
    );
    let out = b.pass(&to_b, "rev2", ts(1), a.as_peer());
    assert_eq!(out.actions, [Action::ApplyRoleObjects]);
    b.schedule = Some(Schedule {
        namespace: "mysql".into(),
        name: "mysql".into(),
        suspend: true,
        static_copy: false,
    });
    let out = b.pass(&to_b, "rev2", ts(3), a.as_peer());
    assert!(out.complete && out.actions.is_empty(), "{out:?}");
    assert!(
        b.step(step::PROTECT)
            .message
            .contains("applied but suspended")
    );

    // Stork's static copy of the old primary's schedule holds the name: one apply (which leaves it alone), done.
    let mut b = Cluster::standby(B, "rev1");
    b.foreign_copy_holds_name = true;
    b.schedule = Some(Schedule {
        namespace: "mysql".into(),
        name: "mysql".into(),
        suspend: true,
        static_copy: true,
    });
    let applies = (0..4)
        .map(|i| b.pass(&to_b, "rev2", ts(i), a.as_peer()))
        .filter(|out| out.actions.contains(&Action::ApplyRoleObjects))
        .count();
    assert_eq!(applies, 1);
    assert_eq!(b.phase, Some(Phase::Ready));
    assert!(
        b.step(step::PROTECT).message.contains("static copy"),
        "{:?}",
        b.step(step::PROTECT)
    );
}

#[test]
fn scale_down_records_running_counts_and_never_zero() {
    let mut a = Cluster::running(A, "rev1");
    a.workloads = vec![
        // Running without annotation: record its count.
        workload(WorkloadKind::Deployment, "api", Some(4), None),
        // Unset replicas means 1.
        workload(WorkloadKind::Deployment, "worker", None, None),
        // Already stopped with a count: untouched, the count is kept.
        workload(WorkloadKind::StatefulSet, "db", Some(0), Some("5")),
        // Annotation already right: only scale.
        workload(WorkloadKind::ReplicaSet, "cache", Some(2), Some("2")),
        // Annotation stale: the running count wins.
        workload(WorkloadKind::Deployment, "front", Some(6), Some("1")),
    ];
    a.schedule = None;
    let out = a.pass(&spec(Mode::Async, B), "rev2", ts(0), unreachable());
    assert_eq!(
        out.actions,
        [
            Action::ScaleDown {
                workload: wref(WorkloadKind::Deployment, "api"),
                record: Some(4)
            },
            Action::ScaleDown {
                workload: wref(WorkloadKind::Deployment, "worker"),
                record: Some(1)
            },
            Action::ScaleDown {
                workload: wref(WorkloadKind::ReplicaSet, "cache"),
                record: None
            },
            Action::ScaleDown {
                workload: wref(WorkloadKind::Deployment, "front"),
                record: Some(6)
            },
        ]
    );
    assert_eq!(
        a.step(step::SUSPEND_SCHEDULE).message,
        "no MigrationSchedule to suspend"
    );
    assert_eq!(a.annotation("db"), Some("5"));
    assert_eq!(out.phase, Phase::Deactivating);
}

#[test]
fn activation_reads_either_spelling_and_skips_invalid_counts() {
    let mut b = Cluster::standby(B, "rev1");
    b.workloads = vec![
        Workload {
            workload: wref(WorkloadKind::Deployment, "legacy"),
            replicas: Some(0),
            replicas_annotation: None,
            legacy_replicas_annotation: Some("4".into()),
        },
        workload(WorkloadKind::Deployment, "broken", Some(0), Some("three")),
        workload(WorkloadKind::Deployment, "zero", Some(0), Some("0")),
    ];
    let mut s = spec(Mode::Async, B);
    s.disaster_lost = Some(A.into());
    let out = b.pass(&s, "rev2", ts(0), unreachable());
    let scale_ups: Vec<&Action> = out
        .actions
        .iter()
        .filter(|a| matches!(a, Action::ScaleUp { .. }))
        .collect();
    assert_eq!(
        scale_ups,
        [&Action::ScaleUp {
            workload: wref(WorkloadKind::Deployment, "legacy"),
            replicas: 4
        }]
    );
    assert!(
        b.step(step::ACTIVATE)
            .message
            .contains("broken has stork.libopenstorage.org/migrationReplicas")
    );
    assert_eq!(b.replicas("zero"), Some(0));
}

#[test]
fn steady_roles_do_nothing_even_when_a_primary_workload_is_scaled_to_zero_by_hand() {
    let mut a = Cluster::running(A, "rev1");
    // A person scaled web to 0 and the webhook recorded its count: a steady primary leaves it alone.
    a.workloads[1].replicas = Some(0);
    a.workloads[1].replicas_annotation = Some("2".into());
    let b = Cluster::standby(B, "rev1");
    let out = a.pass(&spec(Mode::Async, A), "rev1", ts(0), b.as_peer());
    assert_eq!(
        (
            out.phase,
            out.actions.len(),
            out.complete,
            out.hold_role_objects
        ),
        (Phase::Ready, 0, true, false)
    );
    assert!(out.transition.is_none());
    let mut b = b;
    let out = b.pass(&spec(Mode::Async, A), "rev1", ts(0), a.as_peer());
    assert_eq!(
        (out.phase, out.actions.len(), out.complete),
        (Phase::Ready, 0, true)
    );
    let ready = out.conditions.iter().find(|c| c.type_ == "Ready").unwrap();
    assert_eq!(ready.status, "True");
}

#[test]
fn standby_stops_applications_it_finds_running_without_a_role_change() {
    let mut b = Cluster::standby(B, "rev1");
    b.workloads[1].replicas = Some(2);
    let out = b.pass(&spec(Mode::Async, A), "rev1", ts(0), unreachable());
    assert_eq!(out.phase, Phase::Deactivating);
    assert_eq!(
        out.actions,
        [Action::ScaleDown {
            workload: wref(WorkloadKind::Deployment, "web"),
            record: None
        }]
    );
}

#[test]
fn unknown_local_domain_stalls_with_the_way_out() {
    let mut b = Cluster::standby("eu-west-1a", "rev1");
    let out = b.pass(&spec(Mode::Async, B), "rev2", ts(0), unreachable());
    assert_eq!(out.phase, Phase::Stalled);
    assert!(out.actions.is_empty());
    let stalled = out
        .conditions
        .iter()
        .find(|c| c.type_ == "Stalled")
        .unwrap();
    assert!(
        stalled
            .message
            .contains("eu-west-1a is not among spec.domains [us-east-1a, us-east-1b]")
    );
}

#[test]
fn metro_domain_change_on_a_steady_primary_is_a_transition_without_fencing() {
    let mut a = Cluster::running(A, "rev1");
    a.cluster_domains = Some(vec![
        DomainState {
            name: A.into(),
            active: true,
        },
        DomainState {
            name: B.into(),
            active: true,
        },
    ]);
    let mut s = spec(Mode::Metro, A);
    s.domains[1].active = false;
    let out = a.pass(&s, "rev2", ts(0), unreachable());
    assert!(matches!(
        out.actions.as_slice(),
        [Action::CreateDomainUpdate { active: false, .. }]
    ));
    let names: Vec<String> = out
        .transition
        .unwrap()
        .steps
        .into_iter()
        .map(|s| s.name)
        .collect();
    assert_eq!(names, ["metro", "protect"]);
    assert!(!out.hold_role_objects);
}

#[test]
fn conditions_keep_their_last_transition_time_while_unchanged() {
    let mut b = Cluster::standby(B, "rev1");
    let peer = Peer::Reachable {
        plan: None,
        running_workloads: None,
        running_pods: None,
    };
    b.pass(&spec(Mode::Async, B), "rev2", ts(0), peer.clone());
    let out = b.pass(&spec(Mode::Async, B), "rev2", ts(10), peer);
    let reconciling = out
        .conditions
        .iter()
        .find(|c| c.type_ == "Reconciling")
        .unwrap();
    assert_eq!(
        (
            reconciling.status.as_str(),
            reconciling.last_transition_time
        ),
        ("True", ts(0))
    );
    assert_eq!(reconciling.reason, "Fence");
}

#[test]
fn status_serializes_with_the_documented_field_names() {
    let t = Transition {
        from: A.into(),
        to: B.into(),
        revision: "abc".into(),
        started_at: ts(0),
        finished_at: None,
        steps: vec![Step {
            name: "fence".into(),
            state: StepState::Waiting,
            message: "m".into(),
            time: ts(1),
        }],
    };
    let v = serde_json::to_value(&t).unwrap();
    assert_eq!(v["startedAt"], "2026-09-21T14:13:20Z");
    assert!(v.get("finishedAt").is_none());
    assert_eq!(v["steps"][0]["state"], "Waiting");
    let back: Transition = serde_json::from_value(v).unwrap();
    assert_eq!(back, t);
}

#[test]
fn final_migration_names_carry_the_short_commit_or_a_hash_of_another_revision() {
    assert_eq!(
        final_migration_name("mysql", "0123456789ABCDEF0123456789abcdef01234567"),
        "mysql-final-01234567"
    );
    let token = final_migration_name(
        "mysql",
        "primary=us-east-1b;us-east-1a=true,us-east-1b=true",
    );
    assert_eq!(token.len(), "mysql-final-".len() + 8);
    assert!(
        token
            .trim_start_matches("mysql-final-")
            .chars()
            .all(|c| c.is_ascii_hexdigit())
    );
    assert_ne!(
        token,
        final_migration_name(
            "mysql",
            "primary=us-east-1a;us-east-1a=true,us-east-1b=true"
        )
    );
}

#[test]
fn domain_update_names_are_valid_object_names() {
    let name = domain_update_name("My_Plan", "US.East_1a", true, "sha1:ABCDEF0123");
    assert_eq!(name, "drgitops-my-plan-us.east-1a-activate-sha1abcd");
    assert!(name.len() <= 253);
}

#[test]
fn step_names_are_written_as_the_status_has_always_named_them() {
    use StepName::*;
    let written = [
        Metro,
        Fence,
        Activate,
        Protect,
        SuspendSchedule,
        ScaleDown,
        SuspendCronJobs,
        DeactivateStaticCopies,
    ]
    .map(StepName::as_str);
    assert_eq!(
        written,
        [
            "metro",
            "fence",
            "activate",
            "protect",
            "suspend-schedule",
            "scale-down",
            "suspend-cronjobs",
            "deactivate-static-copies"
        ]
    );
}

#[test]
fn the_fence_waits_for_the_old_primarys_pods_not_only_its_replicas() {
    let mut b = Cluster::standby(B, "rev1");
    let standby_at = |pods: Vec<String>| Peer::Reachable {
        plan: Some(PeerPlan {
            role: Some(Role::Standby),
            last_applied_revision: Some("rev2".into()),
            phase: Some("Standby".into()),
            ..Default::default()
        }),
        running_workloads: Some(0),
        running_pods: Some(pods),
    };
    let terminating = vec!["mysql/web-0".to_string(), "mysql/web-1".to_string()];
    let out = b.pass(
        &spec(Mode::Async, B),
        "rev2",
        ts(0),
        standby_at(terminating),
    );
    assert_eq!(out.phase, Phase::WaitingForPeer);
    let fence = b.step(step::FENCE);
    assert_eq!(fence.state, StepState::Waiting);
    assert!(
        fence
            .message
            .ends_with("still has 2 pod(s) running or terminating: mysql/web-0, mysql/web-1"),
        "{}",
        fence.message
    );
    assert_eq!(
        b.running_workloads(),
        0,
        "nothing started while pods remain"
    );

    let out = b.pass(&spec(Mode::Async, B), "rev2", ts(5), standby_at(Vec::new()));
    assert_eq!(b.step(step::FENCE).state, StepState::Succeeded);
    assert!(out.phase != Phase::WaitingForPeer, "{:?}", out.phase);
}

/// Runs both reconcilers (and Stork) for `rounds` rounds from `start`, without requiring convergence.
fn run(a: &mut Cluster, b: &mut Cluster, spec: &PlanSpec, revision: &str, start: i64, rounds: i64) {
    for round in 0..rounds {
        let now = ts(start + round);
        a.pass(spec, revision, now, b.as_peer());
        a.write();
        a.stork_pass(b, now);
        b.pass(spec, revision, now, a.as_peer());
        b.write();
        b.stork_pass(a, now);
        assert!(
            a.running_workloads() == 0 || b.running_workloads() == 0,
            "both sides run: {a:?} {b:?}"
        );
    }
}

fn stalled_reason(out_conditions: &[Condition]) -> Option<String> {
    out_conditions
        .iter()
        .find(|c| c.type_ == "Stalled" && c.status == "True")
        .map(|c| c.reason.clone())
}

#[test]
fn a_failed_final_migration_starts_nothing_anywhere_and_a_revert_restarts_the_old_primary() {
    let mut a = Cluster::running(A, "rev1");
    let mut b = Cluster::standby(B, "rev1");
    a.stork = Stork::Fail("volume pvc-1: cloud snapshot failed");
    let to_b = spec(Mode::Async, B);
    run(&mut a, &mut b, &to_b, "rev2", 0, 10);
    assert_eq!(a.running_workloads() + b.running_workloads(), 0);
    assert!(b.scale_ups.is_empty());
    let final_step = a.step(step::FINAL_MIGRATION);
    assert_eq!(final_step.state, StepState::Stalled);
    for part in [
        "volume pvc-1: cloud snapshot failed",
        "nothing was started anywhere",
        "drgitops failover --plan mysql --to us-east-1a;",
        "drgitops failover --plan mysql --to us-east-1b --disaster",
    ] {
        assert!(
            final_step.message.contains(part),
            "{part}: {}",
            final_step.message
        );
    }
    assert_eq!(
        stalled_reason(&a.status.conditions).as_deref(),
        Some("FinalMigrationFailed")
    );
    // The new primary shows the same reason, Stalled at once (not after its own timeout).
    let fence = b.step(step::FENCE);
    assert_eq!(fence.state, StepState::Stalled);
    assert!(
        fence
            .message
            .contains("volume pvc-1: cloud snapshot failed"),
        "{}",
        fence.message
    );
    assert_eq!(
        stalled_reason(&b.status.conditions).as_deref(),
        Some("PeerHandOverFailed")
    );
    assert_eq!(
        a.final_record.as_ref().unwrap().status.as_deref(),
        Some("Failed")
    );

    // Reverting the commit: the applications come back on the old primary, and B, which never ran them,
    // migrates nothing (its copy is older than A's).
    let back = spec(Mode::Async, A);
    converge(&mut a, &mut b, &back, "rev3", 20);
    assert_eq!((a.replicas("mysql"), a.replicas("web")), (Some(3), Some(2)));
    assert_eq!(b.running_workloads(), 0);
    assert!(b.migrations.is_empty());
    let tb = b.status.transition.clone().unwrap();
    assert!(tb.step(step::FINAL_MIGRATION).is_none(), "{tb:?}");
    assert!(
        a.step(step::FENCE)
            .message
            .contains("it did not run the applications"),
        "{}",
        a.step(step::FENCE).message
    );
}

#[test]
fn a_final_migration_that_does_not_finish_stalls_after_its_timeout_and_a_retry_is_a_delete() {
    let mut a = Cluster::running(A, "rev1");
    let mut b = Cluster::standby(B, "rev1");
    a.stork = Stork::Hold;
    let mut to_b = spec(Mode::Async, B);
    to_b.final_migration_timeout_seconds = 60;
    run(&mut a, &mut b, &to_b, "rev2", 0, 10);
    let waiting = a.step(step::FINAL_MIGRATION);
    assert_eq!(waiting.state, StepState::Waiting);
    assert!(
        waiting
            .message
            .contains("waiting for Stork to finish final Migration"),
        "{}",
        waiting.message
    );
    // The new primary waits for the hand-over beyond its own peerStopTimeoutSeconds: the old primary's
    // timeout bounds it.
    run(&mut a, &mut b, &to_b, "rev2", 40, 1);
    assert_eq!(b.step(step::FENCE).state, StepState::Waiting);
    run(&mut a, &mut b, &to_b, "rev2", 70, 1);
    let stalled = a.step(step::FINAL_MIGRATION);
    assert_eq!(stalled.state, StepState::Stalled);
    assert!(
        stalled.message.contains("not finished after 60s"),
        "{}",
        stalled.message
    );
    assert_eq!(
        stalled_reason(&a.status.conditions).as_deref(),
        Some("FinalMigrationTimeout")
    );
    run(&mut a, &mut b, &to_b, "rev2", 71, 1);
    assert_eq!(b.step(step::FENCE).state, StepState::Stalled);
    assert!(b.scale_ups.is_empty());

    // Deleting the Migration retries it; this time Stork finishes and B takes over with every write.
    a.migrations.clear();
    a.stork = Stork::Succeed;
    run(&mut a, &mut b, &to_b, "rev2", 80, 6);
    assert_eq!(a.step(step::FINAL_MIGRATION).state, StepState::Succeeded);
    assert_eq!((b.replicas("mysql"), b.replicas("web")), (Some(3), Some(2)));
    assert_eq!(b.data_when_started, Some(a.data));
}

#[test]
fn the_old_primary_drains_its_pods_before_the_final_migration_and_stalls_naming_them() {
    let mut a = Cluster::running(A, "rev1");
    let mut b = Cluster::standby(B, "rev1");
    a.lingering_pods = vec!["mysql/mysql-0".into(), "mysql/job-x".into()];
    let mut to_b = spec(Mode::Async, B);
    to_b.drain_timeout_seconds = 30;
    run(&mut a, &mut b, &to_b, "rev2", 0, 5);
    let drain = a.step(step::DRAIN);
    assert_eq!(drain.state, StepState::Waiting);
    assert!(drain.message.contains("2 pod(s)"), "{}", drain.message);
    assert!(
        a.migrations.is_empty(),
        "no final migration while pods still write"
    );
    assert_eq!(a.phase, Some(Phase::Deactivating));
    run(&mut a, &mut b, &to_b, "rev2", 40, 1);
    let drain = a.step(step::DRAIN);
    assert_eq!(drain.state, StepState::Stalled);
    assert!(
        drain.message.contains("mysql/mysql-0, mysql/job-x"),
        "{}",
        drain.message
    );
    assert!(drain.message.contains("spec.failover.drainTimeoutSeconds"));
    assert_eq!(
        stalled_reason(&a.status.conditions).as_deref(),
        Some("DrainTimeout")
    );
    assert!(b.scale_ups.is_empty());
    // The pods go: the hand-over finishes.
    a.lingering_pods.clear();
    converge(&mut a, &mut b, &to_b, "rev2", 50);
    assert_eq!(a.step(step::DRAIN).state, StepState::Succeeded);
    assert_eq!(b.data_when_started, Some(a.data));
}

#[test]
fn a_stale_final_migration_of_an_earlier_transition_is_replaced() {
    let mut a = Cluster::running(A, "rev1");
    let mut b = Cluster::standby(B, "rev1");
    let to_b = spec(Mode::Async, B);
    // Left by an earlier failover at the same revision (a force-pushed branch, or the same Flux token).
    a.migrations.push(MigrationRecord {
        name: final_migration_name("mysql", "rev2"),
        status: "Successful".into(),
        finished_at: Some(ts(-1000)),
        transition_started_at: Some("2020-01-01T00:00:00Z".into()),
        ..Default::default()
    });
    let stale_data = a.data;
    a.data += 5;
    converge(&mut a, &mut b, &to_b, "rev2", 0);
    assert_eq!(a.migrations.len(), 1);
    assert_ne!(
        a.migrations[0].transition_started_at.as_deref(),
        Some("2020-01-01T00:00:00Z")
    );
    assert_ne!(b.data_when_started, Some(stale_data));
    assert_eq!(b.data_when_started, Some(a.data));
}

#[test]
fn a_disaster_declared_during_the_hand_over_cancels_the_final_migration() {
    let mut a = Cluster::running(A, "rev1");
    let mut b = Cluster::standby(B, "rev1");
    a.stork = Stork::Hold;
    let to_b = spec(Mode::Async, B);
    run(&mut a, &mut b, &to_b, "rev2", 0, 8);
    assert_eq!(a.migrations.len(), 1);
    let mut declared = to_b.clone();
    declared.disaster_lost = Some(A.into());
    // B starts at once; A cancels its final migration (it would overwrite B's newer writes).
    run(&mut a, &mut b, &declared, "rev3", 10, 6);
    assert_eq!((b.replicas("mysql"), b.replicas("web")), (Some(3), Some(2)));
    assert!(a.migrations.is_empty(), "{:?}", a.migrations);
    assert_eq!(a.status.role, Some(Role::Standby));
}

#[test]
fn the_data_age_follows_the_migrations_from_primary_to_standby_on_both_sides() {
    let mut a = Cluster::running(A, "rev1");
    let mut b = Cluster::standby(B, "rev1");
    let to_a = spec(Mode::Async, A);
    let scheduled = |name: &str, at: i64| crate::plan::types::MigrationRecord {
        name: name.into(),
        status: Some("Successful".into()),
        finished_at: Some(rfc3339(ts(at))),
        ..Default::default()
    };
    a.scheduled_migration = Some(scheduled("mysql-interval-1", 5));
    run(&mut a, &mut b, &to_a, "rev1", 10, 2);
    let on_a = a.status.last_migration.clone().unwrap();
    assert_eq!(
        (on_a.name.as_str(), on_a.from.as_deref()),
        ("mysql-interval-1", Some(A))
    );
    assert_eq!(
        b.status.last_migration,
        Some(on_a.clone()),
        "the standby shows the primary's"
    );
    // The primary becomes unreachable: the standby keeps what it last saw.
    b.pass(&to_a, "rev1", ts(20), unreachable());
    assert_eq!(b.status.last_migration, Some(on_a));
    // A newer scheduled run replaces it; an older one never does.
    a.scheduled_migration = Some(scheduled("mysql-interval-2", 30));
    run(&mut a, &mut b, &to_a, "rev1", 31, 1);
    assert_eq!(
        b.status.last_migration.as_ref().unwrap().name,
        "mysql-interval-2"
    );
    a.scheduled_migration = Some(scheduled("mysql-interval-0", 1));
    run(&mut a, &mut b, &to_a, "rev1", 32, 1);
    assert_eq!(
        a.status.last_migration.as_ref().unwrap().name,
        "mysql-interval-2"
    );

    // A planned failover: the final migration is the newest point both sides agree on.
    a.scheduled_migration = None;
    let to_b = spec(Mode::Async, B);
    converge(&mut a, &mut b, &to_b, "rev2", 40);
    let final_name = final_migration_name("mysql", "rev2");
    for cluster in [&a, &b] {
        let m = cluster.status.last_migration.clone().unwrap();
        assert_eq!(
            (m.name.as_str(), m.from.as_deref()),
            (final_name.as_str(), Some(A)),
            "{}",
            cluster.domain
        );
    }
}
