//! Rules on schedule policies: Stork's exact syntax, and that a MigrationSchedule's policy exists.

use serde::Deserialize;

use super::{Ctx, Out, wrong_type};
use crate::policy::value::{Field, get, str_at};
use crate::stork::schedule::{BUILT_IN_POLICIES, validate_policy};
use crate::stork::types::SchedulePolicyItem;

/// `schedule-policy-syntax`: Stork accepts any policy object and only fails the schedules using it, every
/// reconcile, with "Error checking if migration should be triggered"; catch it when the policy is written.
pub fn syntax(ctx: &Ctx<'_>, out: &mut Out) {
    let Some(policy) = get(ctx.object, &["policy"]) else {
        return;
    };
    match SchedulePolicyItem::deserialize(policy) {
        Ok(item) => {
            for e in validate_policy(&item, "policy") {
                out.violation(e.field, e.message);
            }
        }
        Err(e) => out.violation(
            "policy",
            format!("cannot be read as a Stork schedule policy: {e}; see the interval, daily, weekly and monthly sections"),
        ),
    }
}

/// `schedule-policy-exists`: Stork looks the policy up as a NamespacedSchedulePolicy in the schedule's namespace,
/// then a cluster SchedulePolicy, and a missing one fails every trigger ("schedulepolicy X not found in cache").
pub fn exists(ctx: &Ctx<'_>, out: &mut Out) {
    let field = "spec.schedulePolicyName";
    let name = match str_at(ctx.object, &["spec", "schedulePolicyName"]) {
        Field::Present(name) if !name.is_empty() => name,
        Field::WrongType(v) => return wrong_type(out, field.to_string(), "a policy name", v),
        _ => {
            return out.violation(
                field,
                format!(
                    "missing: Stork never triggers the schedule; name a SchedulePolicy, a \
                     NamespacedSchedulePolicy in this namespace, or a built-in ({})",
                    BUILT_IN_POLICIES.join(", ")
                ),
            );
        }
    };
    // Without a namespace only cluster and built-in policies can be found; an offline view then still looks in
    // the namespace-less input.
    let ns = ctx.namespace.unwrap_or("");
    if ctx.view.schedule_policy(ns, name).is_some() {
        return;
    }
    let where_ns = if ns.is_empty() {
        String::new()
    } else {
        format!(" in namespace {ns:?}")
    };
    if ctx.view.authoritative() {
        out.violation(
            field,
            format!(
                "schedule policy {name:?} does not exist: no NamespacedSchedulePolicy{where_ns}, no SchedulePolicy and \
                 no Stork built-in of that name; create the policy first or use a built-in ({})",
                BUILT_IN_POLICIES.join(", ")
            ),
        );
    } else {
        out.uncertain(
            field,
            format!(
                "schedule policy {name:?} is not in the set: no NamespacedSchedulePolicy{where_ns} or SchedulePolicy of \
                 that name in the input or the cluster state, and not a Stork built-in; make sure the cluster has it"
            ),
        );
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use crate::policy::rules::testing::{Case, FakeView};

    fn policy(kind: &str, body: serde_json::Value) -> serde_json::Value {
        json!({"apiVersion": "stork.libopenstorage.org/v1alpha1", "kind": kind,
               "metadata": {"name": "p", "namespace": "mysql"}, "policy": body})
    }

    #[test]
    fn syntax_table() {
        let view = FakeView::default();
        let r = "schedule-policy-syntax";
        let cases = [
            Case::new(
                "interval",
                policy(
                    "SchedulePolicy",
                    json!({"interval": {"intervalMinutes": 5}}),
                ),
            ),
            Case::new(
                "interval 0",
                policy(
                    "SchedulePolicy",
                    json!({"interval": {"intervalMinutes": 0}}),
                ),
            )
            .expect(r, "deny", "policy.interval.intervalMinutes"),
            Case::new(
                "12:xxAM",
                policy("SchedulePolicy", json!({"daily": {"time": "12:15AM"}})),
            ),
            Case::new(
                "0:30AM",
                policy(
                    "NamespacedSchedulePolicy",
                    json!({"daily": {"time": "0:30AM"}}),
                ),
            ),
            Case::new(
                "no AM/PM",
                policy("SchedulePolicy", json!({"daily": {"time": "12:04"}})),
            )
            .expect(r, "deny", "policy.daily.time"),
            Case::new(
                "13:15pm",
                policy("SchedulePolicy", json!({"daily": {"time": "13:15pm"}})),
            )
            .expect(r, "deny", "policy.daily.time"),
            Case::new(
                "Thurs",
                policy(
                    "SchedulePolicy",
                    json!({"weekly": {"day": "Thurs", "time": "2:00AM"}}),
                ),
            ),
            Case::new(
                "MONDAY",
                policy(
                    "NamespacedSchedulePolicy",
                    json!({"weekly": {"day": "MONDAY", "time": "2:00AM"}}),
                ),
            )
            .expect(r, "deny", "policy.weekly.day"),
            Case::new(
                "weekly without day",
                policy("SchedulePolicy", json!({"weekly": {"time": "12:04PM"}})),
            )
            .expect(r, "deny", "policy.weekly.day"),
            Case::new(
                "date 31",
                policy(
                    "SchedulePolicy",
                    json!({"monthly": {"date": 31, "time": "1:00PM"}}),
                ),
            ),
            Case::new(
                "date 32",
                policy(
                    "SchedulePolicy",
                    json!({"monthly": {"date": 32, "time": "1:00PM"}}),
                ),
            )
            .expect(r, "deny", "policy.monthly.date"),
            Case::new(
                "negative retain",
                policy(
                    "SchedulePolicy",
                    json!({"interval": {"intervalMinutes": 5, "retain": -1}}),
                ),
            )
            .expect(r, "deny", "policy.interval.retain"),
            Case::new(
                "date as string",
                policy(
                    "SchedulePolicy",
                    json!({"monthly": {"date": "11", "time": "1:00PM"}}),
                ),
            )
            .expect(r, "deny", "policy"),
            Case::new(
                "explicit nulls",
                policy(
                    "SchedulePolicy",
                    json!({"daily": null, "weekly": {"day": "friday", "time": "2:00AM", "options": null}}),
                ),
            ),
        ];
        for case in cases {
            case.check(&view);
        }
    }

    fn schedule(ns: &str, policy: Option<&str>) -> serde_json::Value {
        let mut s = json!({"apiVersion": "stork.libopenstorage.org/v1alpha1", "kind": "MigrationSchedule",
               "metadata": {"name": "s", "namespace": ns},
               "spec": {"template": {"spec": {"clusterPair": "p", "namespaces": [ns], "startApplications": false}}}});
        if let Some(p) = policy {
            s["spec"]["schedulePolicyName"] = json!(p);
        }
        s
    }

    #[test]
    fn exists_table() {
        let live = FakeView {
            policies: vec![("mysql", "ns-policy"), ("", "cluster-policy")],
            ..Default::default()
        };
        let offline = FakeView {
            offline: true,
            ..Default::default()
        };
        let r = "schedule-policy-exists";
        let cases = [
            (
                Case::new("namespaced", schedule("mysql", Some("ns-policy"))),
                &live,
            ),
            (
                Case::new("cluster", schedule("mysql", Some("cluster-policy"))),
                &live,
            ),
            (
                Case::new("built-in", schedule("mysql", Some("default-daily-policy"))),
                &live,
            ),
            (
                Case::new(
                    "namespaced policy of another namespace",
                    schedule("other", Some("ns-policy")),
                )
                .expect(r, "deny", "spec.schedulePolicyName"),
                &live,
            ),
            (
                Case::new("missing", schedule("mysql", Some("nope"))).expect(
                    r,
                    "deny",
                    "spec.schedulePolicyName",
                ),
                &live,
            ),
            (
                Case::new("no name", schedule("mysql", None)).expect(
                    r,
                    "deny",
                    "spec.schedulePolicyName",
                ),
                &live,
            ),
            (
                Case::new(
                    "offline: not in the set warns",
                    schedule("mysql", Some("nope")),
                )
                .expect(r, "warn", "spec.schedulePolicyName"),
                &offline,
            ),
        ];
        for (case, view) in cases {
            case.check(view);
        }
    }
}
