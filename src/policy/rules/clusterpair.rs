//! `clusterpair-options`: storage pairing options Stork and Portworx would reject or silently misread.

use serde_json::Value;

use super::{Ctx, Out, wrong_type};
use crate::policy::value::{Field, object_at, show};

/// The option `storkctl generate clusterpair` writes when no storage options were given.
const PLACEHOLDER: &str = "insert_storage_options_here";
/// Portworx's pair modes; anything else is silently read as `Default`.
const MODES: [&str; 3] = ["Default", "DisasterRecovery", "OneTimeMigration"];

pub fn options(ctx: &Ctx<'_>, out: &mut Out) {
    let options = match object_at(ctx.object, &["spec", "options"]) {
        Field::Present(o) => o,
        Field::Absent => return,
        Field::WrongType(v) => {
            return wrong_type(out, "spec.options".to_string(), "a map of strings", v);
        }
    };
    // `map[string]string` in Go: any other value makes the whole ClusterPair unreadable.
    for (key, value) in options {
        if !value.is_string() {
            out.violation(
                format!("spec.options.{key}"),
                format!(
                    "{} is not a string: Stork reads options as strings; quote it (\"{}\")",
                    show(value),
                    value_text(value)
                ),
            );
        }
    }
    let text = |key: &str| options.get(key).and_then(Value::as_str);
    if options.contains_key(PLACEHOLDER) {
        out.violation(
            format!("spec.options.{PLACEHOLDER}"),
            "placeholder left from storkctl generate clusterpair: replace it with the destination's storage options \
             (ip, port, token; mode: DisasterRecovery), or use options: {} for metro DR without storage pairing",
        );
    }
    if text("token").is_some_and(|t| !t.is_empty()) {
        if text("ip").is_none_or(str::is_empty) {
            out.violation(
                "spec.options.ip",
                "missing while token is set: Portworx pairs with the destination's storage endpoint; add ip \
                 (the destination Portworx address) or drop token for metro DR",
            );
        }
    } else if options.contains_key("token") {
        out.violation(
            "spec.options.token",
            "empty: set the destination cluster's Portworx token, or remove it for metro DR",
        );
    }
    if let Some(port) = text("port")
        && !port.parse::<u16>().is_ok_and(|p| p > 0)
    {
        out.violation(
            "spec.options.port",
            format!(
                "{port:?} is not a port number: use the destination's Portworx port, e.g. \"9001\""
            ),
        );
    }
    if let Some(mode) = text("mode")
        && !MODES.contains(&mode)
    {
        out.violation(
            "spec.options.mode",
            format!(
                "{mode:?} is not a Portworx pair mode (it would silently become Default): use one of {}",
                MODES.join(", ")
            ),
        );
    }
}

fn value_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use crate::policy::rules::testing::{Case, FakeView};

    fn pair(options: serde_json::Value) -> serde_json::Value {
        json!({"apiVersion": "stork.libopenstorage.org/v1alpha1", "kind": "ClusterPair",
               "metadata": {"name": "remotecluster", "namespace": "mysql"},
               "spec": {"config": {"clusters": {}, "current-context": "c"}, "options": options}})
    }

    #[test]
    fn options_table() {
        let view = FakeView::default();
        let r = "clusterpair-options";
        let cases = [
            Case::new(
                "async",
                pair(
                    json!({"ip": "10.0.0.1", "port": "9001", "token": "t", "mode": "DisasterRecovery"}),
                ),
            ),
            Case::new("empty options (metro)", pair(json!({}))),
            Case::new("no options", pair(serde_json::Value::Null)),
            Case::new(
                "placeholder",
                pair(json!({"insert_storage_options_here": ""})),
            )
            .expect(r, "deny", "spec.options.insert_storage_options_here"),
            Case::new(
                "token without ip",
                pair(json!({"token": "t", "port": "9001"})),
            )
            .expect(r, "deny", "spec.options.ip"),
            Case::new(
                "port not numeric",
                pair(json!({"ip": "a", "token": "t", "port": "px"})),
            )
            .expect(r, "deny", "spec.options.port"),
            Case::new(
                "port as number",
                pair(json!({"ip": "a", "token": "t", "port": 9001})),
            )
            .expect(r, "deny", "spec.options.port"),
            Case::new(
                "unknown mode",
                pair(json!({"ip": "a", "token": "t", "mode": "async-dr"})),
            )
            .expect(r, "deny", "spec.options.mode"),
            Case::new(
                "one-time migration",
                pair(json!({"ip": "a", "token": "t", "mode": "OneTimeMigration"})),
            ),
        ];
        for case in cases {
            case.check(&view);
        }
    }
}
