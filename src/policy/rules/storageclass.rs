//! `single-default-storageclass`: two default StorageClasses make every PVC without a class ambiguous (the API
//! server picks the newest), so a migrated PVC may land on the wrong storage.

use super::{Ctx, Out, annotation_field};
use crate::policy::Operation;
use crate::policy::value::{annotation, default_class_annotation};

/// The default-class annotation that makes `object` default, if any (GA first).
fn default_key(object: &serde_json::Value) -> Option<&'static str> {
    default_class_annotation(|k| annotation(object, k))
}

pub fn single_default(ctx: &Ctx<'_>, out: &mut Out) {
    let Some(key) = default_key(ctx.object) else {
        return;
    };
    // An update of a class that already was default does not make a new default (and must stay possible when
    // two defaults exist from before).
    if ctx.req.operation == Operation::Update && ctx.req.old_object.and_then(default_key).is_some()
    {
        return;
    }
    let name = ctx
        .req
        .name
        .or_else(|| ctx.object["metadata"]["name"].as_str())
        .unwrap_or("");
    let others: Vec<String> = ctx
        .view
        .default_storage_classes()
        .into_iter()
        .filter(|c| c != name)
        .collect();
    if others.is_empty() {
        return;
    }
    let list = others
        .iter()
        .map(|c| format!("{c:?}"))
        .collect::<Vec<_>>()
        .join(", ");
    out.violation(
        annotation_field(key),
        format!(
            "StorageClass {name:?} would be a second default: {list} {} already the default; remove this annotation \
             (or set it to \"false\"), or first unset it on {list}",
            if others.len() == 1 { "is" } else { "are" }
        ),
    );
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use crate::policy::rules::testing::{Case, FakeView};

    fn class(name: &str, annotations: serde_json::Value) -> serde_json::Value {
        json!({"apiVersion": "storage.k8s.io/v1", "kind": "StorageClass",
               "metadata": {"name": name, "annotations": annotations}, "provisioner": "pxd.portworx.com"})
    }

    #[test]
    fn single_default_table() {
        let view = FakeView {
            default_classes: vec!["px-db"],
            ..Default::default()
        };
        let empty = FakeView::default();
        let ga = json!({"storageclass.kubernetes.io/is-default-class": "true"});
        let beta = json!({"storageclass.beta.kubernetes.io/is-default-class": "true"});
        let field_ga = "metadata.annotations[\"storageclass.kubernetes.io/is-default-class\"]";
        let field_beta =
            "metadata.annotations[\"storageclass.beta.kubernetes.io/is-default-class\"]";
        let cases = [
            (
                Case::new("second default (GA)", class("fast", ga.clone())).expect(
                    "single-default-storageclass",
                    "deny",
                    field_ga,
                ),
                &view,
            ),
            (
                Case::new("second default (beta)", class("fast", beta.clone())).expect(
                    "single-default-storageclass",
                    "deny",
                    field_beta,
                ),
                &view,
            ),
            (
                Case::new("first default", class("fast", ga.clone())),
                &empty,
            ),
            (
                Case::new("re-applying the default itself", class("px-db", ga.clone())),
                &view,
            ),
            (
                Case::new(
                    "not default",
                    class(
                        "fast",
                        json!({"storageclass.kubernetes.io/is-default-class": "false"}),
                    ),
                ),
                &view,
            ),
            (
                Case::new("update of an existing default", class("fast", ga.clone()))
                    .update(class("fast", ga.clone())),
                &view,
            ),
            (
                Case::new("update making it default", class("fast", beta.clone()))
                    .update(class("fast", json!({})))
                    .expect("single-default-storageclass", "deny", field_beta),
                &view,
            ),
        ];
        for (case, view) in cases {
            case.check(view);
        }
    }

    #[test]
    fn denial_names_the_existing_default() {
        let view = FakeView {
            default_classes: vec!["px-db"],
            ..Default::default()
        };
        let decision = Case::new(
            "x",
            class(
                "fast",
                json!({"storageclass.kubernetes.io/is-default-class": "true"}),
            ),
        )
        .decide(&view);
        assert!(
            decision.findings[0].message.contains("\"px-db\""),
            "{}",
            decision.findings[0].message
        );
    }
}
