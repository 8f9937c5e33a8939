//! Rules on Deployments, StatefulSets and ReplicaSets (the `migrationReplicas` annotation, the standby guard)
//! and on CronJobs (the standby guard: a standby runs no Job of the plan's namespaces).

use json_patch::{AddOperation, PatchOperation};
use serde_json::{Map, Value, json};

use super::{Ctx, Out, annotation_field};
use crate::plan::transition::{SUSPENDED_BY_ANNOTATION, SUSPENDED_BY_VALUE};
use crate::policy::value::{annotation, get, pointer, replicas, show};
use crate::policy::{Mutation, Operation};
use crate::stork::keys::{MIGRATION_REPLICAS, MIGRATION_REPLICAS_KEYS};

/// Stork reads the annotation with `strconv.Atoi`; a count is plain decimal digits.
fn is_count(value: &str) -> bool {
    !value.is_empty() && value.len() <= 9 && value.bytes().all(|b| b.is_ascii_digit())
}

/// Adds `metadata.annotations[key] = value`, creating the annotations map when absent.
fn add_annotation(object: &Value, key: &str, value: &str) -> PatchOperation {
    if object
        .get("metadata")
        .and_then(|m| m.get("annotations"))
        .is_some_and(Value::is_object)
    {
        PatchOperation::Add(AddOperation {
            path: pointer(&["metadata", "annotations", key]),
            value: Value::String(value.to_string()),
        })
    } else {
        let mut map = Map::new();
        map.insert(key.to_string(), Value::String(value.to_string()));
        PatchOperation::Add(AddOperation {
            path: pointer(&["metadata", "annotations"]),
            value: Value::Object(map),
        })
    }
}

/// `migration-replicas-annotation`: the value Stork (and a failover) scales the workload back to must be a
/// non-negative integer; scaling to 0 records the old count when no annotation holds one.
pub fn replicas_annotation(ctx: &Ctx<'_>, out: &mut Out) {
    // A Scale object carries no annotations of the workload.
    if ctx.req.sub_resource.is_some() {
        return;
    }
    for key in MIGRATION_REPLICAS_KEYS {
        if let Some(value) = annotation(ctx.object, key).filter(|v| !is_count(v)) {
            out.violation(
                annotation_field(key),
                format!(
                    "{value:?} is not a replica count: Stork scales the workload back to this value on failover; \
                     write a non-negative integer such as \"3\""
                ),
            );
        }
    }
    if let Some(v) = get(ctx.object, &["metadata", "annotations"]).and_then(|a| {
        a.as_object().and_then(|m| {
            MIGRATION_REPLICAS_KEYS
                .iter()
                .find_map(|k| m.get(*k).filter(|v| !v.is_string()))
        })
    }) {
        out.violation(
            annotation_field(MIGRATION_REPLICAS),
            format!(
                "{} is not a string: annotations are strings; quote the count",
                show(v)
            ),
        );
    }

    // Rollouts scale old ReplicaSets to 0 all the time; only their Deployment's count matters for a failover.
    if ctx.req.operation != Operation::Update
        || (ctx.req.kind == "ReplicaSet" && has_controller(ctx.object))
    {
        return;
    }
    let Some(old) = ctx.req.old_object else {
        return;
    };
    let (Some(before), Some(after)) = (replicas(old), replicas(ctx.object)) else {
        return;
    };
    let recorded = MIGRATION_REPLICAS_KEYS
        .iter()
        .any(|k| annotation(ctx.object, k).is_some());
    if before > 0 && after == 0 && !recorded {
        out.mutations.push(Mutation {
            rule: "migration-replicas-annotation",
            field: annotation_field(MIGRATION_REPLICAS),
            message: format!(
                "scaled from {before} to 0: the old count is recorded so a failover can restore it"
            ),
            ops: vec![add_annotation(
                ctx.object,
                MIGRATION_REPLICAS,
                &before.to_string(),
            )],
        });
    }
}

/// Whether an ownerReference marks the object as controlled (`controller: true`).
fn has_controller(object: &Value) -> bool {
    get(object, &["metadata", "ownerReferences"])
        .and_then(Value::as_array)
        .is_some_and(|refs| {
            refs.iter()
                .any(|r| r.get("controller").and_then(Value::as_bool) == Some(true))
        })
}

/// Why the applications of a namespace must not run on this cluster.
enum NotHere {
    /// A plan runs them on another domain.
    Standby,
    /// A commit made this domain the primary, and its reconciler has not started them yet: the old primary may
    /// still be running them, or its last writes are still on their way.
    BecomingPrimary,
}

impl NotHere {
    /// Why, for a message: names the plan and its primary.
    fn describe(&self, ns: &str, plan: &str, primary: &str) -> String {
        match self {
            NotHere::Standby => {
                format!("this cluster is standby for DRPlan {ns}/{plan} (primary {primary:?})")
            }
            NotHere::BecomingPrimary => format!(
                "DRPlan {ns}/{plan} is failing over to this cluster ({primary:?}) and its reconciler has not \
                 started the applications yet"
            ),
        }
    }
}

/// Whether this cluster must not run the applications of `namespace`: why, the plan that says so and its
/// primary.
fn standby_plan(ctx: &Ctx<'_>, namespace: &str) -> Option<(NotHere, String, String)> {
    let local = ctx.view.local_domain();
    ctx.view
        .plans_covering(namespace)
        .into_iter()
        .find_map(|p| {
            // The desired role (primary vs. the local domain) wins over the recorded one: right after a commit moves
            // the primary away, the old primary must stop taking scale-ups before its reconciler catches up. A
            // cluster the commit makes primary still stands by until its reconciler records the role: only the
            // failover starts the applications, after the fence.
            let recorded_standby = p.role.as_deref() == Some("Standby");
            let why = match &local {
                Some(local) if p.primary != *local => Some(NotHere::Standby),
                Some(_) if recorded_standby => Some(NotHere::BecomingPrimary),
                None if recorded_standby => Some(NotHere::Standby),
                _ => None,
            };
            why.map(|why| (why, p.name, p.primary))
        })
}

/// `standby-scale-guard`: on a Standby cluster, applications in a plan namespace stay at 0 replicas; only a
/// failover (the reconciler, an exempt user) starts them. A CREATE, and a write by a GitOps controller (one of
/// the policy's `gitopsFieldManagers`), is patched to 0 with the count recorded in `migrationReplicas`: Git's
/// count is what the failover restores, and the GitOps tool finds what it applied without a refusal to retry.
pub fn standby_scale_guard(ctx: &Ctx<'_>, out: &mut Out) {
    let Some(ns) = ctx.namespace else { return };
    // A ReplicaSet controlled by a Deployment follows the Deployment, which this rule guards itself; judging the
    // ReplicaSet too would only race the deployment controller against the view during a failover.
    if ctx.req.kind == "ReplicaSet" && ctx.req.sub_resource.is_none() && has_controller(ctx.object)
    {
        return;
    }
    let Some(after) = replicas(ctx.object) else {
        return;
    };
    if after <= 0 {
        return;
    }
    let before = match (ctx.req.operation, ctx.req.old_object) {
        (Operation::Update, Some(old)) => replicas(old).unwrap_or(0),
        _ => 0,
    };
    // Updates that do not scale up (a label change on a workload left running) are not this rule's business.
    if ctx.req.operation == Operation::Update && after <= before {
        return;
    }
    let Some((why, plan, primary)) = standby_plan(ctx, ns) else {
        return;
    };
    let standing_by = why.describe(ns, &plan, &primary);
    let kind = ctx.req.kind;
    let what = if ctx.req.sub_resource == Some("scale") {
        format!("{kind}/scale")
    } else {
        kind.to_string()
    };
    // A JSON patch cannot create `spec`; a workload without one is denied below instead of patched.
    let has_spec = ctx.object.get("spec").is_some_and(Value::is_object);
    let gitops = ctx
        .req
        .field_manager
        .is_some_and(|m| ctx.gitops_field_managers.iter().any(|g| g == m));
    if ctx.req.sub_resource.is_none()
        && has_spec
        && (ctx.req.operation == Operation::Create || gitops)
    {
        let mut ops = vec![PatchOperation::Add(AddOperation {
            path: pointer(&["spec", "replicas"]),
            value: json!(0),
        })];
        let recorded = MIGRATION_REPLICAS_KEYS
            .iter()
            .any(|k| annotation(ctx.object, k).is_some());
        // A GitOps write declares the count to restore: it replaces whatever was recorded (under Stork's
        // spelling, which Stork reads first). A user's CREATE keeps a count it brings.
        if gitops || !recorded {
            ops.push(add_annotation(
                ctx.object,
                MIGRATION_REPLICAS,
                &after.to_string(),
            ));
        }
        let how = match (ctx.req.operation, ctx.req.field_manager) {
            (Operation::Create, _) | (_, None) => "created".to_string(),
            (_, Some(manager)) => format!("applied by {manager}"),
        };
        out.mutations.push(Mutation {
            rule: "standby-scale-guard",
            field: "spec.replicas".to_string(),
            message: format!(
                "{standing_by}: {how} with 0 replicas, {after} recorded in {MIGRATION_REPLICAS} for the failover"
            ),
            ops,
        });
        return;
    }
    let name = ctx.req.name.unwrap_or("");
    let message = match why {
        NotHere::Standby => format!(
            "{what} {ns}/{name} scaled to {after} on a standby cluster: DRPlan {ns}/{plan} runs the applications \
             on {primary:?}; to run them here commit a failover (drgitops failover --plan {plan} --to <this domain>)"
        ),
        NotHere::BecomingPrimary => format!(
            "{what} {ns}/{name} scaled to {after} before the failover started it: {standing_by}; it starts them \
             with the recorded counts once the old primary has stopped (watch kubectl -n {ns} get drplan {plan})"
        ),
    };
    out.violation("spec.replicas", message);
}

/// `standby-cronjob-guard`: on a Standby cluster, CronJobs in a plan namespace stay suspended; only a failover
/// (the reconciler, an exempt user) resumes them. A CREATE, and a write by a GitOps controller, is patched to
/// `suspend: true` with the reconciler's `drgitops.dev/suspended-by` mark, so the failover resumes it; a user
/// resuming one is refused.
pub fn standby_cronjob_guard(ctx: &Ctx<'_>, out: &mut Out) {
    let Some(ns) = ctx.namespace else { return };
    let suspended = |o: &Value| get(o, &["spec", "suspend"]).and_then(Value::as_bool) == Some(true);
    if suspended(ctx.object) {
        return;
    }
    // An update that leaves a running CronJob running is not a resume: the failover's own step suspends it.
    if ctx.req.operation == Operation::Update
        && ctx.req.old_object.is_some_and(|old| !suspended(old))
    {
        return;
    }
    let Some((why, plan, primary)) = standby_plan(ctx, ns) else {
        return;
    };
    let gitops = ctx
        .req
        .field_manager
        .is_some_and(|m| ctx.gitops_field_managers.iter().any(|g| g == m));
    let has_spec = ctx.object.get("spec").is_some_and(Value::is_object);
    if has_spec && (ctx.req.operation == Operation::Create || gitops) {
        out.mutations.push(Mutation {
            rule: "standby-cronjob-guard",
            field: "spec.suspend".to_string(),
            message: format!(
                "{}: stored suspended; the failover resumes it",
                why.describe(ns, &plan, &primary)
            ),
            ops: vec![
                PatchOperation::Add(AddOperation {
                    path: pointer(&["spec", "suspend"]),
                    value: json!(true),
                }),
                add_annotation(ctx.object, SUSPENDED_BY_ANNOTATION, SUSPENDED_BY_VALUE),
            ],
        });
        return;
    }
    let name = ctx.req.name.unwrap_or("");
    out.violation(
        "spec.suspend",
        format!(
            "CronJob {ns}/{name} resumed on a cluster that must not run it: {}; its Jobs would write to volumes \
             that migrations overwrite; a failover (drgitops failover --plan {plan} --to <this domain>) resumes it",
            why.describe(ns, &plan, &primary)
        ),
    );
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use crate::policy::config::RECONCILER_USER;
    use crate::policy::rules::testing::{Case, FakeView, plan};

    fn deploy(replicas: Option<i64>, annotations: serde_json::Value) -> serde_json::Value {
        let mut d = json!({"apiVersion": "apps/v1", "kind": "Deployment",
               "metadata": {"name": "web", "namespace": "mysql", "annotations": annotations},
               "spec": {"template": {}}});
        if let Some(r) = replicas {
            d["spec"]["replicas"] = json!(r);
        }
        d
    }

    fn scale(replicas: i64) -> serde_json::Value {
        json!({"apiVersion": "autoscaling/v1", "kind": "Scale",
               "metadata": {"name": "web", "namespace": "mysql"}, "spec": {"replicas": replicas}})
    }

    fn owned_rs(controlled: bool, replicas: i64) -> serde_json::Value {
        let mut rs = json!({"apiVersion": "apps/v1", "kind": "ReplicaSet",
               "metadata": {"name": "web-5d8f", "namespace": "mysql"}, "spec": {"replicas": replicas}});
        if controlled {
            rs["metadata"]["ownerReferences"] = json!([{"apiVersion": "apps/v1", "kind": "Deployment", "name": "web", "uid": "u", "controller": true}]);
        }
        rs
    }

    const REAL: &str = "metadata.annotations[\"stork.libopenstorage.org/migrationReplicas\"]";
    const DOC: &str = "metadata.annotations[\"stork.openstorage.org/migrationReplicas\"]";

    #[test]
    fn replicas_annotation_table() {
        let view = FakeView::default();
        let cases = [
            Case::new(
                "valid count",
                deploy(
                    Some(0),
                    json!({"stork.libopenstorage.org/migrationReplicas": "3"}),
                ),
            ),
            Case::new(
                "zero is a count",
                deploy(
                    Some(0),
                    json!({"stork.libopenstorage.org/migrationReplicas": "0"}),
                ),
            ),
            Case::new(
                "negative",
                deploy(
                    Some(0),
                    json!({"stork.libopenstorage.org/migrationReplicas": "-1"}),
                ),
            )
            .expect("migration-replicas-annotation", "deny", REAL),
            Case::new(
                "not a number, doc spelling",
                deploy(
                    Some(0),
                    json!({"stork.openstorage.org/migrationReplicas": "three"}),
                ),
            )
            .expect("migration-replicas-annotation", "deny", DOC),
            Case::new(
                "empty",
                deploy(
                    Some(0),
                    json!({"stork.libopenstorage.org/migrationReplicas": ""}),
                ),
            )
            .expect("migration-replicas-annotation", "deny", REAL),
            Case::new("scale to 0 records the count", deploy(Some(0), json!({})))
                .update(deploy(Some(4), json!({})))
                .expect("migration-replicas-annotation", "patch", REAL),
            Case::new(
                "scale to 0 from the default 1",
                deploy(Some(0), json!(null)),
            )
            .update(deploy(None, json!(null)))
            .expect("migration-replicas-annotation", "patch", REAL),
            Case::new(
                "scale to 0 with a count kept",
                deploy(
                    Some(0),
                    json!({"stork.openstorage.org/migrationReplicas": "2"}),
                ),
            )
            .update(deploy(Some(2), json!({}))),
            Case::new("scale up", deploy(Some(3), json!({}))).update(deploy(Some(1), json!({}))),
            Case::new("rollout scales an owned ReplicaSet to 0", owned_rs(true, 0))
                .update(owned_rs(true, 3)),
            Case::new("owner-less ReplicaSet scaled to 0", owned_rs(false, 0))
                .update(owned_rs(false, 3))
                .expect("migration-replicas-annotation", "patch", REAL),
        ];
        for case in cases {
            case.check(&view);
        }
    }

    #[test]
    fn scale_to_zero_patch_records_old_count() {
        let view = FakeView::default();
        let obj = deploy(Some(0), json!(null));
        let decision = Case::new("x", obj.clone())
            .update(deploy(Some(5), json!(null)))
            .decide(&view);
        let mut patched = obj;
        for m in &decision.mutations {
            json_patch::patch(&mut patched, &m.ops).unwrap();
        }
        assert_eq!(
            patched["metadata"]["annotations"]["stork.libopenstorage.org/migrationReplicas"],
            json!("5")
        );
    }

    #[test]
    fn standby_scale_guard_table() {
        let standby = FakeView {
            local: Some("west"),
            plans: vec![plan("mysql", "east", None)],
            ..Default::default()
        };
        let primary = FakeView {
            local: Some("east"),
            plans: vec![plan("mysql", "east", Some("Primary"))],
            ..Default::default()
        };
        let by_role = FakeView {
            plans: vec![plan("mysql", "east", Some("Standby"))],
            ..Default::default()
        };
        let uncovered = FakeView {
            local: Some("west"),
            plans: vec![plan("other", "east", None)],
            ..Default::default()
        };
        let becoming_primary = FakeView {
            local: Some("east"),
            plans: vec![plan("mysql", "east", Some("Standby"))],
            ..Default::default()
        };
        let fresh_primary = FakeView {
            local: Some("east"),
            plans: vec![plan("mysql", "east", None)],
            ..Default::default()
        };
        let cases = [
            (
                Case::new(
                    "Flux re-applies Git's count on standby",
                    deploy(Some(3), json!({})),
                )
                .update(deploy(Some(0), json!({})))
                .field_manager("kustomize-controller")
                .expect("standby-scale-guard", "patch", "spec.replicas"),
                &standby,
            ),
            (
                Case::new(
                    "Argo CD's server-side apply on standby",
                    deploy(Some(3), json!({})),
                )
                .update(deploy(Some(0), json!({})))
                .field_manager("argocd-controller")
                .expect("standby-scale-guard", "patch", "spec.replicas"),
                &standby,
            ),
            (
                Case::new(
                    "another field manager is refused",
                    deploy(Some(3), json!({})),
                )
                .update(deploy(Some(0), json!({})))
                .field_manager("kubectl-edit")
                .expect("standby-scale-guard", "deny", "spec.replicas"),
                &standby,
            ),
            (
                Case::new("Flux's /scale is still refused", scale(2))
                    .scale("Deployment")
                    .update(scale(0))
                    .field_manager("kustomize-controller")
                    .expect("standby-scale-guard", "deny", "spec.replicas"),
                &standby,
            ),
            (
                Case::new("Flux applies on the primary", deploy(Some(3), json!({})))
                    .update(deploy(Some(0), json!({})))
                    .field_manager("kustomize-controller"),
                &primary,
            ),
            (
                Case::new(
                    "scale-up before the failover started them",
                    deploy(Some(3), json!({})),
                )
                .update(deploy(Some(0), json!({})))
                .expect("standby-scale-guard", "deny", "spec.replicas"),
                &becoming_primary,
            ),
            (
                Case::new(
                    "Flux before the failover started them",
                    deploy(Some(3), json!({})),
                )
                .update(deploy(Some(0), json!({})))
                .field_manager("kustomize-controller")
                .expect("standby-scale-guard", "patch", "spec.replicas"),
                &becoming_primary,
            ),
            (
                Case::new(
                    "reconciler starts them on the new primary",
                    deploy(Some(3), json!({})),
                )
                .update(deploy(Some(0), json!({})))
                .user(RECONCILER_USER),
                &becoming_primary,
            ),
            (
                Case::new(
                    "a plan not yet reconciled on its primary",
                    deploy(Some(3), json!({})),
                )
                .update(deploy(Some(0), json!({}))),
                &fresh_primary,
            ),
            (
                Case::new("scale-up on standby", deploy(Some(3), json!({})))
                    .update(deploy(Some(0), json!({})))
                    .expect("standby-scale-guard", "deny", "spec.replicas"),
                &standby,
            ),
            (
                Case::new("/scale on standby", scale(2))
                    .scale("Deployment")
                    .update(scale(0))
                    .expect("standby-scale-guard", "deny", "spec.replicas"),
                &standby,
            ),
            (
                // kube-apiserver sends a Scale at 0 replicas as `spec: {}` (omitempty), and 0 -> 1 is a scale-up.
                Case::new("/scale from 0 as kube-apiserver sends it", scale(1))
                    .scale("Deployment")
                    .update(json!({"apiVersion": "autoscaling/v1", "kind": "Scale",
                                   "metadata": {"name": "web", "namespace": "mysql"}, "spec": {}}))
                    .expect("standby-scale-guard", "deny", "spec.replicas"),
                &standby,
            ),
            (
                Case::new("/scale on StatefulSet", scale(1))
                    .scale("StatefulSet")
                    .update(scale(0))
                    .expect("standby-scale-guard", "deny", "spec.replicas"),
                &standby,
            ),
            (
                Case::new(
                    "role Standby without local domain",
                    deploy(Some(1), json!({})),
                )
                .update(deploy(Some(0), json!({})))
                .expect("standby-scale-guard", "deny", "spec.replicas"),
                &by_role,
            ),
            (
                Case::new(
                    "create on standby is patched to 0",
                    deploy(Some(2), json!({})),
                )
                .expect("standby-scale-guard", "patch", "spec.replicas"),
                &standby,
            ),
            (
                Case::new(
                    "create without replicas defaults to 1 and is patched",
                    deploy(None, json!({})),
                )
                .expect("standby-scale-guard", "patch", "spec.replicas"),
                &standby,
            ),
            (
                Case::new("reconciler is exempt", deploy(Some(3), json!({})))
                    .update(deploy(Some(0), json!({})))
                    .user(RECONCILER_USER),
                &standby,
            ),
            (
                Case::new("primary may scale", deploy(Some(3), json!({})))
                    .update(deploy(Some(0), json!({}))),
                &primary,
            ),
            (
                Case::new("namespace without plan", deploy(Some(3), json!({})))
                    .update(deploy(Some(0), json!({}))),
                &uncovered,
            ),
            (
                Case::new("scale-down on standby", deploy(Some(1), json!({})))
                    .update(deploy(Some(3), json!({}))),
                &standby,
            ),
            (
                Case::new("scale to 0 on standby", scale(0))
                    .scale("Deployment")
                    .update(scale(2)),
                &standby,
            ),
            (
                Case::new("ReplicaSet owned by a Deployment", owned_rs(true, 2))
                    .update(owned_rs(true, 0)),
                &standby,
            ),
            (
                Case::new("owner-less ReplicaSet", owned_rs(false, 2))
                    .update(owned_rs(false, 0))
                    .expect("standby-scale-guard", "deny", "spec.replicas"),
                &standby,
            ),
        ];
        for (case, view) in cases {
            case.check(view);
        }
    }

    #[test]
    fn gitops_write_on_standby_records_gits_count_over_the_old_one() {
        let view = FakeView {
            local: Some("west"),
            plans: vec![plan("mysql", "east", Some("Standby"))],
            ..Default::default()
        };
        let recorded = json!({"stork.libopenstorage.org/migrationReplicas": "3"});
        let obj = deploy(Some(5), recorded.clone());
        let decision = Case::new("x", obj.clone())
            .update(deploy(Some(0), recorded))
            .field_manager("kustomize-controller")
            .decide(&view);
        assert!(decision.allowed(), "{decision:?}");
        let mut patched = obj;
        for m in &decision.mutations {
            json_patch::patch(&mut patched, &m.ops).unwrap();
        }
        assert_eq!(patched["spec"]["replicas"], json!(0));
        assert_eq!(
            patched["metadata"]["annotations"]["stork.libopenstorage.org/migrationReplicas"],
            json!("5")
        );
        let message = &decision.mutations[0].message;
        assert!(
            message.contains("applied by kustomize-controller with 0 replicas, 5 recorded"),
            "{message}"
        );
    }

    #[test]
    fn standby_create_patch_sets_zero_and_records_count() {
        let view = FakeView {
            local: Some("west"),
            plans: vec![plan("mysql", "east", None)],
            ..Default::default()
        };
        let obj = deploy(Some(2), json!({"team": "db"}));
        let decision = Case::new("x", obj.clone()).decide(&view);
        let mut patched = obj;
        for m in &decision.mutations {
            json_patch::patch(&mut patched, &m.ops).unwrap();
        }
        assert_eq!(patched["spec"]["replicas"], json!(0));
        assert_eq!(
            patched["metadata"]["annotations"]["stork.libopenstorage.org/migrationReplicas"],
            json!("2")
        );
        assert_eq!(patched["metadata"]["annotations"]["team"], json!("db"));
        assert!(decision.allowed());
    }

    fn cronjob(suspend: Option<bool>) -> serde_json::Value {
        let mut c = json!({"apiVersion": "batch/v1", "kind": "CronJob",
               "metadata": {"name": "backup", "namespace": "mysql"},
               "spec": {"schedule": "*/5 * * * *", "jobTemplate": {}}});
        if let Some(s) = suspend {
            c["spec"]["suspend"] = json!(s);
        }
        c
    }

    #[test]
    fn standby_cronjob_guard_table() {
        let standby = FakeView {
            local: Some("west"),
            plans: vec![plan("mysql", "east", Some("Standby"))],
            ..Default::default()
        };
        let primary = FakeView {
            local: Some("east"),
            plans: vec![plan("mysql", "east", Some("Primary"))],
            ..Default::default()
        };
        let becoming_primary = FakeView {
            local: Some("east"),
            plans: vec![plan("mysql", "east", Some("Standby"))],
            ..Default::default()
        };
        let cases = [
            (
                Case::new("created running on standby", cronjob(None)).expect(
                    "standby-cronjob-guard",
                    "patch",
                    "spec.suspend",
                ),
                &standby,
            ),
            (
                Case::new("created suspended on standby", cronjob(Some(true))),
                &standby,
            ),
            (
                Case::new("resumed by a user on standby", cronjob(Some(false)))
                    .update(cronjob(Some(true)))
                    .expect("standby-cronjob-guard", "deny", "spec.suspend"),
                &standby,
            ),
            (
                Case::new("resumed by Flux on standby", cronjob(Some(false)))
                    .update(cronjob(Some(true)))
                    .field_manager("kustomize-controller")
                    .expect("standby-cronjob-guard", "patch", "spec.suspend"),
                &standby,
            ),
            (
                Case::new("resumed by the reconciler", cronjob(Some(false)))
                    .update(cronjob(Some(true)))
                    .user(RECONCILER_USER),
                &becoming_primary,
            ),
            (
                Case::new(
                    "resumed before the failover started the apps",
                    cronjob(None),
                )
                .update(cronjob(Some(true)))
                .expect("standby-cronjob-guard", "deny", "spec.suspend"),
                &becoming_primary,
            ),
            (
                Case::new("resumed on the primary", cronjob(Some(false)))
                    .update(cronjob(Some(true))),
                &primary,
            ),
            (
                Case::new("a running one edited on standby", cronjob(Some(false)))
                    .update(cronjob(None)),
                &standby,
            ),
        ];
        for (case, view) in cases {
            case.check(view);
        }
    }

    #[test]
    fn gitops_cronjob_on_standby_is_stored_suspended_and_marked_for_the_failover() {
        let view = FakeView {
            local: Some("west"),
            plans: vec![plan("mysql", "east", Some("Standby"))],
            ..Default::default()
        };
        let obj = cronjob(Some(false));
        let decision = Case::new("x", obj.clone())
            .update(cronjob(Some(true)))
            .field_manager("kustomize-controller")
            .decide(&view);
        assert!(decision.allowed(), "{decision:?}");
        let mut patched = obj;
        for m in &decision.mutations {
            json_patch::patch(&mut patched, &m.ops).unwrap();
        }
        assert_eq!(patched["spec"]["suspend"], json!(true));
        assert_eq!(
            patched["metadata"]["annotations"]["drgitops.dev/suspended-by"],
            json!("drgitops")
        );
    }
}
