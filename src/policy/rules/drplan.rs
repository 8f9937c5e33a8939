//! `drplan-valid`: the same validation the reconciler and `failover` run ([`crate::plan::validate`]).

use std::borrow::Cow;

use serde_json::Value;

use super::{Ctx, Out};
use crate::plan::validate::parse_and_validate;

pub fn valid(ctx: &Ctx<'_>, out: &mut Out) {
    // The API server fills metadata.namespace from the request; offline input may lack it (`check` without -n).
    let object: Cow<'_, Value> = match ctx.namespace {
        Some(ns) if ctx.object["metadata"].get("namespace").is_none() => {
            let mut owned = ctx.object.clone();
            if let Some(meta) = owned.get_mut("metadata").and_then(Value::as_object_mut) {
                meta.insert("namespace".to_string(), Value::String(ns.to_string()));
            }
            Cow::Owned(owned)
        }
        _ => Cow::Borrowed(ctx.object),
    };
    if let Err(errors) = parse_and_validate(&object, ctx.admin_namespace) {
        for e in errors {
            out.violation(e.field, e.message);
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use crate::policy::rules::testing::{Case, FakeView};

    fn plan(spec: serde_json::Value) -> serde_json::Value {
        json!({"apiVersion": "drgitops.dev/v1alpha1", "kind": "DRPlan",
               "metadata": {"name": "mysql", "namespace": "mysql"}, "spec": spec})
    }

    #[test]
    fn valid_table() {
        let view = FakeView::default();
        let good = json!({"mode": "metro", "primary": "east", "domains": [{"name": "east"}, {"name": "west"}],
                          "clusterPair": {"name": "remote", "peerKubeconfigSecret": {"name": "peer", "key": "kubeconfig"}},
                          "schedule": {"interval": {"intervalMinutes": 15}},
                          "migration": {"includeVolumes": false}});
        let mut bad = good.clone();
        bad["primary"] = json!("north");
        bad["migration"]["includeVolumes"] = json!(true);
        let mut async_without_storage = good.clone();
        async_without_storage["mode"] = json!("async");
        async_without_storage["migration"] = json!({});
        let mut async_resources_only = async_without_storage.clone();
        async_resources_only["migration"]["includeVolumes"] = json!(false);
        let cases = [
            Case::new("valid metro plan", plan(good)),
            Case::new("async plan without a storage secret", plan(async_without_storage))
                .expect("drplan-valid", "deny", "spec.clusterPair.storageSecret"),
            Case::new("async plan migrating resources only", plan(async_resources_only)),
            Case::new("primary not a domain, volumes in metro", plan(bad))
                .expect("drplan-valid", "deny", "spec.primary")
                .expect("drplan-valid", "deny", "spec.migration.includeVolumes"),
            Case::new("missing spec", json!({"apiVersion": "drgitops.dev/v1alpha1", "kind": "DRPlan", "metadata": {"name": "x"}}))
                .expect("drplan-valid", "deny", "spec"),
        ];
        for case in cases {
            case.check(&view);
        }
    }
}
