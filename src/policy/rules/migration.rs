//! Rules on Migrations and MigrationSchedules: `startApplications`, namespace scope, metro volumes, transform specs.

use json_patch::{AddOperation, PatchOperation};
use serde_json::Value;

use super::{Ctx, Out, dotted, migration_spec_path, wrong_type};
use crate::policy::Mutation;
use crate::policy::value::{Field, array_at, bool_at, get, object_at, pointer, str_at};

/// `migration-start-applications`: `startApplications: true` starts applications on the destination, after which
/// every later migration fails on in-use volumes. Absent ⇒ patched to an explicit `false`.
pub fn start_applications(ctx: &Ctx<'_>, out: &mut Out) {
    let kind = ctx.req.kind;
    let base = migration_spec_path(kind);
    let field = dotted(base, "startApplications");
    match bool_at(ctx.object, &[base, &["startApplications"]].concat()) {
        Field::Present(true) => {
            let message = if kind == "MigrationSchedule" {
                "true starts the applications on the destination at every scheduled migration, and the next \
                 migration fails on volumes in use there; set it to false and start applications with a failover \
                 (a commit changing the DRPlan's primary)"
            } else {
                "true starts the applications on the destination, and later migrations to it fail on volumes in \
                 use; set it to false unless this is a one-time move"
            };
            out.violation(field, message);
        }
        Field::Present(false) => {}
        Field::WrongType(v) => wrong_type(out, field, "a boolean", v),
        Field::Absent => {
            // Only patch where the parent map exists: a JSON patch `add` cannot create intermediate maps, and an
            // object without a spec has bigger problems than this default.
            if get(ctx.object, base).is_some_and(Value::is_object) {
                let mut path: Vec<&str> = base.to_vec();
                path.push("startApplications");
                out.mutations.push(Mutation {
                    rule: "migration-start-applications",
                    field: field.clone(),
                    message: "absent: set to an explicit false (Stork's default), so no tool or \
                              later default can start the applications by accident"
                        .to_string(),
                    ops: vec![PatchOperation::Add(AddOperation {
                        path: pointer(&path),
                        value: Value::Bool(false),
                    })],
                });
            }
        }
    }
}

/// `migration-namespace-scope`: outside the admin namespace, a Migration (or schedule) may migrate only its own
/// namespace; Stork otherwise fails it with "migration namespaces should only contain the current namespace".
pub fn namespace_scope(ctx: &Ctx<'_>, out: &mut Out) {
    let kind = ctx.req.kind;
    let base = migration_spec_path(kind);
    let namespaces = array_at(ctx.object, &[base, &["namespaces"]].concat());
    let selectors = object_at(ctx.object, &[base, &["namespaceSelectors"]].concat());
    let ns_field = dotted(base, "namespaces");
    let sel_field = dotted(base, "namespaceSelectors");

    let list = match namespaces {
        Field::WrongType(v) => return wrong_type(out, ns_field, "a list of namespace names", v),
        Field::Present(list) => list,
        Field::Absent => &[],
    };
    let selector_map = match selectors {
        Field::WrongType(v) => return wrong_type(out, sel_field, "a map of label selectors", v),
        Field::Present(m) => Some(m),
        Field::Absent => None,
    };
    if list.is_empty() && selector_map.is_none_or(|m| m.is_empty()) {
        out.violation(
            ns_field,
            format!(
                "empty, and no namespaceSelectors either: Stork finds no namespace to migrate and fails the {kind}; \
                 list the namespaces to migrate"
            ),
        );
        return;
    }
    // The rule depends on the object's own namespace; offline input without one cannot be judged.
    let Some(own) = ctx.namespace else { return };
    let admin = ctx.admin_namespace;
    if own == admin {
        return;
    }
    for (i, entry) in list.iter().enumerate() {
        match entry.as_str() {
            Some(name) if name == own => {}
            Some(name) => out.violation(
                format!("{ns_field}[{i}]"),
                format!(
                    "namespace {name:?} is not the {kind}'s own namespace {own:?}: outside the admin namespace \
                     {admin:?} a {kind} may migrate only its own namespace; create it in {name:?} (or in {admin:?} \
                     to migrate several namespaces)"
                ),
            ),
            None => wrong_type(out, format!("{ns_field}[{i}]"), "a namespace name", entry),
        }
    }
    // `kubernetes.io/metadata.name` is the one selector whose result is known without the cluster.
    if let Some(name) = selector_map
        .and_then(|m| m.get("kubernetes.io/metadata.name"))
        .and_then(Value::as_str)
        && name != own
    {
        out.violation(
            format!("{sel_field}[\"kubernetes.io/metadata.name\"]"),
            format!(
                "selects namespace {name:?}, not the {kind}'s own namespace {own:?}: outside the admin namespace \
                 {admin:?} a {kind} may migrate only its own namespace; create it in {name:?} or in {admin:?}"
            ),
        );
    }
}

/// `metro-volumes`: with a ClusterPair without storage options (metro / sync DR) the storage is stretched and
/// there is nothing to copy; `includeVolumes` (default true) must be false or Stork fails the migration.
pub fn metro_volumes(ctx: &Ctx<'_>, out: &mut Out) {
    let kind = ctx.req.kind;
    let base = migration_spec_path(kind);
    let Some(ns) = ctx.namespace else { return };
    let Field::Present(pair) = str_at(ctx.object, &[base, &["clusterPair"]].concat()) else {
        return;
    };
    if ctx.view.cluster_pair_has_storage_options(ns, pair) != Some(false) {
        return;
    }
    let field = dotted(base, "includeVolumes");
    match bool_at(ctx.object, &[base, &["includeVolumes"]].concat()) {
        Field::Present(false) => {}
        Field::WrongType(v) => wrong_type(out, field, "a boolean", v),
        Field::Present(true) => out.violation(
            field,
            format!(
                "true, but ClusterPair {ns}/{pair} has no storage options (metro DR, one stretched \
                 storage cluster): there are no volumes to copy; set includeVolumes: false"
            ),
        ),
        Field::Absent => out.violation(
            field,
            format!(
                "absent, which means true, but ClusterPair {ns}/{pair} has no storage options \
                 (metro DR, one stretched storage cluster): set includeVolumes: false"
            ),
        ),
    }
}

/// `transform-specs`: Stork supports at most one ResourceTransformation per migration.
pub fn transform_specs(ctx: &Ctx<'_>, out: &mut Out) {
    let base = migration_spec_path(ctx.req.kind);
    let field = dotted(base, "transformSpecs");
    match array_at(ctx.object, &[base, &["transformSpecs"]].concat()) {
        Field::Present(list) if list.len() > 1 => {
            let names: Vec<String> = list
                .iter()
                .map(|v| v.as_str().map_or_else(|| v.to_string(), String::from))
                .collect();
            out.violation(
                field,
                format!(
                    "{} entries {names:?}: Stork supports at most one ResourceTransformation per migration \
                     (\"providing multiple transformation specs is not supported\"); merge them into one",
                    list.len()
                ),
            );
        }
        Field::WrongType(v) => wrong_type(out, field, "a list of ResourceTransformation names", v),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use crate::policy::rules::testing::{Case, FakeView, run};

    fn migration(spec: serde_json::Value) -> serde_json::Value {
        json!({"apiVersion": "stork.libopenstorage.org/v1alpha1", "kind": "Migration",
               "metadata": {"name": "m", "namespace": "mysql"}, "spec": spec})
    }

    fn schedule(spec: serde_json::Value) -> serde_json::Value {
        json!({"apiVersion": "stork.libopenstorage.org/v1alpha1", "kind": "MigrationSchedule",
               "metadata": {"name": "s", "namespace": "mysql"},
               "spec": {"schedulePolicyName": "default-migration-policy", "template": {"spec": spec}}})
    }

    #[test]
    fn start_applications_table() {
        let view = FakeView::default();
        let cases = [
            Case::new("schedule true is denied", schedule(json!({"clusterPair": "p", "namespaces": ["mysql"], "startApplications": true})))
                .expect("migration-start-applications", "deny", "spec.template.spec.startApplications"),
            Case::new("one-shot true warns", migration(json!({"clusterPair": "p", "namespaces": ["mysql"], "startApplications": true})))
                .expect("migration-start-applications", "warn", "spec.startApplications"),
            Case::new("false is allowed", migration(json!({"clusterPair": "p", "namespaces": ["mysql"], "startApplications": false}))),
            Case::new("absent is patched", schedule(json!({"clusterPair": "p", "namespaces": ["mysql"]})))
                .expect("migration-start-applications", "patch", "spec.template.spec.startApplications"),
            Case::new("string on a schedule is denied", schedule(json!({"clusterPair": "p", "namespaces": ["mysql"], "startApplications": "true"})))
                .expect("migration-start-applications", "deny", "spec.template.spec.startApplications"),
        ];
        for case in cases {
            case.check(&view);
        }
    }

    #[test]
    fn absent_start_applications_patch_applies() {
        let view = FakeView::default();
        let obj = schedule(json!({"clusterPair": "p", "namespaces": ["mysql"]}));
        let decision = run(&obj, &view, Some("mysql"));
        let mut patched = obj.clone();
        for m in &decision.mutations {
            json_patch::patch(&mut patched, &m.ops).unwrap();
        }
        assert_eq!(
            patched["spec"]["template"]["spec"]["startApplications"],
            json!(false)
        );
    }

    #[test]
    fn namespace_scope_table() {
        let view = FakeView::default();
        let mut admin = migration(
            json!({"clusterPair": "p", "namespaces": ["a", "b"], "startApplications": false}),
        );
        admin["metadata"]["namespace"] = json!("kube-system");
        let cases = [
            Case::new("own namespace", migration(json!({"clusterPair": "p", "namespaces": ["mysql"], "startApplications": false}))),
            Case::new("foreign namespace", migration(json!({"clusterPair": "p", "namespaces": ["mysql", "cassandra"], "startApplications": false})))
                .expect("migration-namespace-scope", "deny", "spec.namespaces[1]"),
            Case::new("admin namespace may name others", admin),
            Case::new("selector naming another namespace", migration(json!({"clusterPair": "p", "startApplications": false, "namespaceSelectors": {"kubernetes.io/metadata.name": "other"}})))
                .expect("migration-namespace-scope", "deny", "spec.namespaceSelectors[\"kubernetes.io/metadata.name\"]"),
            Case::new("other selectors cannot be judged", migration(json!({"clusterPair": "p", "startApplications": false, "namespaceSelectors": {"team": "db"}}))),
            Case::new("no namespaces at all", schedule(json!({"clusterPair": "p", "startApplications": false})))
                .expect("migration-namespace-scope", "deny", "spec.template.spec.namespaces"),
        ];
        for case in cases {
            case.check(&view);
        }
    }

    #[test]
    fn namespace_scope_is_skipped_without_a_namespace() {
        let view = FakeView::default();
        let mut obj = migration(
            json!({"clusterPair": "p", "namespaces": ["cassandra"], "startApplications": false}),
        );
        obj["metadata"].as_object_mut().unwrap().remove("namespace");
        assert!(run(&obj, &view, None).findings.is_empty());
    }

    #[test]
    fn metro_volumes_table() {
        let view = FakeView {
            pairs: vec![("mysql", "metro", false), ("mysql", "async", true)],
            ..Default::default()
        };
        let cases = [
            Case::new("metro pair, volumes false", migration(json!({"clusterPair": "metro", "namespaces": ["mysql"], "startApplications": false, "includeVolumes": false}))),
            Case::new("metro pair, volumes true", migration(json!({"clusterPair": "metro", "namespaces": ["mysql"], "startApplications": false, "includeVolumes": true})))
                .expect("metro-volumes", "deny", "spec.includeVolumes"),
            Case::new("metro pair, volumes default", schedule(json!({"clusterPair": "metro", "namespaces": ["mysql"], "startApplications": false})))
                .expect("metro-volumes", "deny", "spec.template.spec.includeVolumes"),
            Case::new("async pair", migration(json!({"clusterPair": "async", "namespaces": ["mysql"], "startApplications": false}))),
            Case::new("unknown pair", migration(json!({"clusterPair": "nope", "namespaces": ["mysql"], "startApplications": false}))),
        ];
        for case in cases {
            case.check(&view);
        }
    }

    #[test]
    fn transform_specs_table() {
        let view = FakeView::default();
        let cases = [
            Case::new("one", migration(json!({"clusterPair": "p", "namespaces": ["mysql"], "startApplications": false, "transformSpecs": ["a"]}))),
            Case::new("two", schedule(json!({"clusterPair": "p", "namespaces": ["mysql"], "startApplications": false, "transformSpecs": ["a", "b"]})))
                .expect("transform-specs", "deny", "spec.template.spec.transformSpecs"),
        ];
        for case in cases {
            case.check(&view);
        }
    }
}
