//! The data age of a plan: how old the standby's copy is, from `status.lastMigration`, and when that is too old
//! for the plan's schedule.
//!
//! In: a DRPlan (its schedule and status), a fallback start time, `now`. Out: the age, and a message when the
//! migrations are behind (older than twice the schedule's period), which the plan controller reports as
//! `Degraded` with reason `MigrationsBehind`.

use std::time::Duration;

use jiff::Timestamp;

use super::types::{DRPlan, PlanSchedule};

/// How long a schedule may go between two runs: the shortest of its sections (an interval, a day, a week, 31
/// days); 15 minutes when it names none (the plan's default schedule).
pub fn period(schedule: &PlanSchedule) -> Duration {
    const DAY: u64 = 24 * 60 * 60;
    let minutes = schedule
        .interval
        .as_ref()
        .map(|i| u64::try_from(i.interval_minutes).unwrap_or(1).max(1) * 60);
    [
        minutes,
        schedule.daily.as_ref().map(|_| DAY),
        schedule.weekly.as_ref().map(|_| 7 * DAY),
        schedule.monthly.as_ref().map(|_| 31 * DAY),
    ]
    .into_iter()
    .flatten()
    .min()
    .map(Duration::from_secs)
    .unwrap_or(Duration::from_secs(15 * 60))
}

/// When the standby's copy was last known to equal the primary's data (`status.lastMigration.finishedAt`).
pub fn last_migration(plan: &DRPlan) -> Option<Timestamp> {
    plan.status
        .as_ref()?
        .last_migration
        .as_ref()?
        .finished_at
        .as_deref()?
        .parse()
        .ok()
}

/// A message when the last successful migration (or, before the first one, `since`: when the schedule was
/// created) is older than twice the schedule's period; `None` while migrations keep up.
pub fn migrations_behind(
    plan: &DRPlan,
    since: Option<Timestamp>,
    now: Timestamp,
) -> Option<String> {
    let period = period(&plan.spec.schedule);
    let limit = period * 2;
    let last = last_migration(plan);
    let reference = last.or(since)?;
    let age = Duration::try_from(now.duration_since(reference)).ok()?;
    if age <= limit {
        return None;
    }
    let what = match (
        last,
        &plan.status.as_ref().and_then(|s| s.last_migration.as_ref()),
    ) {
        (Some(_), Some(m)) => format!(
            "the last successful migration ({}) finished {} ago",
            m.name,
            human(age)
        ),
        _ => format!(
            "no migration has succeeded in the {} since the schedule was created",
            human(age)
        ),
    };
    Some(format!(
        "{what}, more than twice the schedule's period of {}: the standby's copy is that old; check the \
         MigrationSchedule's Migrations (kubectl -n {} get migrations) and the ClusterPair",
        human(period),
        plan.metadata.namespace.as_deref().unwrap_or_default()
    ))
}

/// A duration the way kubectl prints ages: `45s`, `12m`, `5h`, `3d`.
pub fn human_age(seconds: i64) -> String {
    let s = seconds.max(0);
    match s {
        0..=119 => format!("{s}s"),
        120..=7_199 => format!("{}m", s / 60),
        7_200..=172_799 => format!("{}h", s / 3600),
        _ => format!("{}d", s / 86_400),
    }
}

fn human(d: Duration) -> String {
    human_age(i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::types::{DRPlanStatus, MigrationRecord, PlanDaily, PlanInterval};

    fn plan(schedule: PlanSchedule, last: Option<&str>) -> DRPlan {
        let mut plan: DRPlan = serde_json::from_value(serde_json::json!({
            "apiVersion": "drgitops.dev/v1alpha1", "kind": "DRPlan",
            "metadata": {"name": "mysql", "namespace": "mysql"},
            "spec": {"mode": "async", "primary": "a", "domains": [{"name": "a"}, {"name": "b"}],
                     "clusterPair": {"name": "remotecluster", "peerKubeconfigSecret": {"name": "p", "key": "k"}}}
        }))
        .unwrap();
        plan.spec.schedule = schedule;
        plan.status = Some(DRPlanStatus {
            last_migration: last.map(|t| MigrationRecord {
                name: "mysql-interval-1".into(),
                finished_at: Some(t.into()),
                ..Default::default()
            }),
            ..Default::default()
        });
        plan
    }

    fn t(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    #[test]
    fn the_period_is_the_shortest_section() {
        let mut s = PlanSchedule::every_15_minutes();
        assert_eq!(period(&s), Duration::from_secs(900));
        s.daily = Some(PlanDaily {
            time: "10:00PM".into(),
        });
        assert_eq!(period(&s), Duration::from_secs(900));
        s.interval = None;
        assert_eq!(period(&s), Duration::from_secs(86400));
        assert_eq!(period(&PlanSchedule::default()), Duration::from_secs(900));
        s.interval = Some(PlanInterval {
            interval_minutes: 0,
        });
        assert_eq!(period(&s), Duration::from_secs(60));
    }

    #[test]
    fn behind_only_past_twice_the_period() {
        let p = plan(
            PlanSchedule::every_15_minutes(),
            Some("2026-01-01T10:00:00Z"),
        );
        assert_eq!(migrations_behind(&p, None, t("2026-01-01T10:30:00Z")), None);
        let message = migrations_behind(&p, None, t("2026-01-01T10:31:00Z")).unwrap();
        assert!(message.contains("mysql-interval-1"), "{message}");
        assert!(message.contains("finished 31m ago"), "{message}");
        assert!(message.contains("period of 15m"), "{message}");
        // Never migrated: counted from the schedule's creation; unknown creation: no verdict.
        let never = plan(PlanSchedule::every_15_minutes(), None);
        assert_eq!(
            migrations_behind(&never, None, t("2026-01-02T00:00:00Z")),
            None
        );
        let message = migrations_behind(
            &never,
            Some(t("2026-01-01T00:00:00Z")),
            t("2026-01-01T01:00:00Z"),
        )
        .unwrap();
        assert!(
            message.contains("no migration has succeeded in the 60m"),
            "{message}"
        );
    }

    #[test]
    fn ages_read_like_kubectl() {
        for (secs, text) in [
            (5, "5s"),
            (125, "2m"),
            (3600, "60m"),
            (7200, "2h"),
            (172800, "2d"),
        ] {
            assert_eq!(human_age(secs), text);
        }
    }
}
