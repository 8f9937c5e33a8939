//! `clusterpair-options`: storage pairing options Stork and Portworx would reject or silently misread, and
//! placeholders copied from Stork's docs into the pairing options or the remote cluster's kubeconfig.

use serde_json::Value;

use super::{Ctx, Out, wrong_type};
use crate::policy::value::{Field, get, object_at, show};

/// The option `storkctl generate clusterpair` writes when no storage options were given.
const PLACEHOLDER: &str = "insert_storage_options_here";
/// [`PLACEHOLDER`] as Stork's docs print it.
const DOCS_PLACEHOLDER: &str = "<insert_storage_options_here>";
/// Portworx's pair modes; anything else is silently read as `Default`.
const MODES: [&str; 3] = ["Default", "DisasterRecovery", "OneTimeMigration"];
const STORAGE_OPTIONS: &str = "replace it with the destination's storage options (ip, port, token; mode: \
                               DisasterRecovery), or use options: {} for metro DR without storage pairing";

pub fn options(ctx: &Ctx<'_>, out: &mut Out) {
    config_placeholders(ctx.object, out);
    let options = match object_at(ctx.object, &["spec", "options"]) {
        Field::Present(o) => o,
        Field::Absent => return,
        Field::WrongType(Value::String(s)) if is_storage_placeholder(s) => {
            return out.violation(
                "spec.options",
                format!("{s:?} is a placeholder, not a map of options: {STORAGE_OPTIONS}"),
            );
        }
        Field::WrongType(v) => {
            return wrong_type(out, "spec.options".to_string(), "a map of strings", v);
        }
    };
    // `map[string]string` in Go: any other value makes the whole ClusterPair unreadable.
    for (key, value) in options {
        if !value.is_string() {
            out.violation(
                option_field(key),
                format!(
                    "{} is not a string: Stork reads options as strings; quote it (\"{}\")",
                    show(value),
                    value_text(value)
                ),
            );
        }
    }
    for key in options.keys().filter(|k| is_storage_placeholder(k)) {
        let origin = if key == PLACEHOLDER {
            "placeholder left from storkctl generate clusterpair"
        } else {
            "placeholder printed in Stork's docs"
        };
        out.violation(option_field(key), format!("{origin}: {STORAGE_OPTIONS}"));
    }
    let mut placeholders = Vec::new();
    for (key, value) in options.iter().filter(|(k, _)| !is_storage_placeholder(k)) {
        if let Some(value) = value.as_str().filter(|v| is_placeholder(v)) {
            out.violation(
                option_field(key),
                format!(
                    "{value:?} is a placeholder left from Stork's docs: {}",
                    option_hint(key, value)
                ),
            );
            placeholders.push(key.as_str());
        }
    }
    let raw = |key: &str| options.get(key).and_then(Value::as_str);
    // A placeholder is reported once, as a placeholder, not again as a malformed port or mode.
    let text = |key: &str| raw(key).filter(|_| !placeholders.contains(&key));
    if raw("token").is_some_and(|t| !t.is_empty()) {
        if raw("ip").is_none_or(str::is_empty) {
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

/// Every string in `spec.config` (the destination's kubeconfig) that is still a placeholder: Stork would try to
/// reach `<ip_of_remote_px_node>` or present `<CA_DATA>` as a certificate, and the pair stays in Error.
fn config_placeholders(object: &Value, out: &mut Out) {
    if let Some(config) = get(object, &["spec", "config"]) {
        placeholders_under(config, "spec.config".to_string(), "", out);
    }
}

/// Reports each placeholder string under `v`, whose field path is `path` and which sits under `key`.
fn placeholders_under(v: &Value, path: String, key: &str, out: &mut Out) {
    match v {
        Value::String(s) if is_placeholder(s) => out.violation(
            path,
            format!(
                "{s:?} is a placeholder left from Stork's docs: {}; storkctl generate clusterpair on the \
                 destination cluster writes the whole config",
                config_hint(key)
            ),
        ),
        Value::Object(map) => {
            for (k, child) in map {
                placeholders_under(child, format!("{path}{}", segment(k)), k, out);
            }
        }
        Value::Array(items) => {
            for (i, child) in items.iter().enumerate() {
                placeholders_under(child, format!("{path}[{i}]"), key, out);
            }
        }
        _ => {}
    }
}

/// What belongs in a kubeconfig field, by its key.
fn config_hint(key: &str) -> &'static str {
    match key {
        "server" => "set the destination API server's URL (https://host:port)",
        "certificate-authority-data" => {
            "set the destination API server's CA certificate, base64-encoded, from its kubeconfig"
        }
        "client-certificate-data" => {
            "set the client certificate, base64-encoded, from the destination's kubeconfig"
        }
        "client-key-data" => {
            "set the client key, base64-encoded, from the destination's kubeconfig"
        }
        "token" => "set a bearer token of a user of the destination cluster",
        "cluster" => "name an entry of spec.config.clusters",
        "user" => "name an entry of spec.config.users",
        "current-context" => "name an entry of spec.config.contexts",
        _ => "set the value from the destination cluster's kubeconfig",
    }
}

/// What belongs in a storage option, by its key.
fn option_hint(key: &str, value: &str) -> &'static str {
    match key {
        "ip" => "set the address of a Portworx node of the destination cluster",
        "port" => "set the destination's Portworx port, e.g. \"9001\"",
        "token" => {
            "set the destination cluster's token (pxctl cluster token show on a destination node)"
        }
        "mode" => "set DisasterRecovery (OneTimeMigration for a one-time move)",
        "backuplocation" => {
            "set the name of the BackupLocation holding the object store credentials"
        }
        _ if is_storage_placeholder(value) => STORAGE_OPTIONS,
        _ => "set the real value, or remove the option",
    }
}

/// The storage-options placeholder, as storkctl writes it or as the docs print it.
fn is_storage_placeholder(s: &str) -> bool {
    s == PLACEHOLDER || s == DOCS_PLACEHOLDER
}

/// A whole value that is one angle-bracketed placeholder, as Stork's docs print them (`<CA_DATA>`,
/// `<ip_of_remote_px_node>`); a value that merely contains `<` or `>` is not one.
fn is_placeholder(s: &str) -> bool {
    s.strip_prefix('<')
        .and_then(|rest| rest.strip_suffix('>'))
        .is_some_and(|inner| !inner.trim().is_empty() && !inner.contains(['<', '>']))
}

/// `.key`, or `["key"]` when the key is not a plain name (cluster names like `api.example.com:6443`).
fn segment(key: &str) -> String {
    if !key.is_empty()
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    {
        format!(".{key}")
    } else {
        format!("[{key:?}]")
    }
}

fn option_field(key: &str) -> String {
    format!("spec.options{}", segment(key))
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
        pair_with(json!({"clusters": {}, "current-context": "c"}), options)
    }

    fn pair_with(config: serde_json::Value, options: serde_json::Value) -> serde_json::Value {
        json!({"apiVersion": "stork.libopenstorage.org/v1alpha1", "kind": "ClusterPair",
               "metadata": {"name": "remotecluster", "namespace": "mysql"},
               "spec": {"config": config, "options": options}})
    }

    /// The kubeconfig of the ClusterPair printed in Stork's DR docs.
    fn docs_config() -> serde_json::Value {
        json!({
            "clusters": {"kubernetes": {"LocationOfOrigin": "/etc/kubernetes/admin.conf",
                "certificate-authority-data": "<CA_DATA>", "server": "https://192.168.56.74:6443"}},
            "contexts": {"kubernetes-admin@kubernetes": {"LocationOfOrigin": "/etc/kubernetes/admin.conf",
                "cluster": "kubernetes", "user": "kubernetes-admin"}},
            "current-context": "kubernetes-admin@kubernetes",
            "preferences": {},
            "users": {"kubernetes-admin": {"LocationOfOrigin": "/etc/kubernetes/admin.conf",
                "client-certificate-data": "<CLIENT_CERT_DATA>", "client-key-data": "<CLIENT_KEY_DATA>"}}
        })
    }

    fn real_config() -> serde_json::Value {
        json!({
            "clusters": {"api.east.example.com:6443": {"certificate-authority-data": "LS0tLS1CRUdJTg==",
                "server": "https://api.east.example.com:6443"}},
            "contexts": {"east": {"cluster": "api.east.example.com:6443", "user": "stork"}},
            "current-context": "east",
            "users": {"stork": {"token": "eyJhbGciOiJSUzI1NiJ9.e30.sig"}}
        })
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
            Case::new(
                "placeholder key as the docs print it",
                pair(json!({"<insert_storage_options_here>": "", "mode": "DisasterRecovery"})),
            )
            .expect(r, "deny", "spec.options[\"<insert_storage_options_here>\"]"),
            Case::new(
                "docs placeholder as the options themselves",
                pair(json!("<insert_storage_options_here>")),
            )
            .expect(r, "deny", "spec.options"),
            Case::new(
                "docs placeholder as an option value",
                pair(json!({"storage": "<insert_storage_options_here>"})),
            )
            .expect(r, "deny", "spec.options.storage"),
            Case::new(
                "the docs' async options, each still a placeholder",
                pair(json!({"ip": "<ip_of_remote_px_node>",
                            "port": "<port_of_remote_px_node_default_9001>",
                            "token": "<token_from_step_3>", "mode": "DisasterRecovery"})),
            )
            .expect(r, "deny", "spec.options.ip")
            .expect(r, "deny", "spec.options.port")
            .expect(r, "deny", "spec.options.token"),
            Case::new(
                "placeholder mode reported once",
                pair(json!({"ip": "a", "token": "t", "mode": "<mode>", "backuplocation": "<name>"})),
            )
            .expect(r, "deny", "spec.options.mode")
            .expect(r, "deny", "spec.options.backuplocation"),
            Case::new(
                "values that merely contain angle brackets",
                pair(json!({"ip": "10.0.0.1", "port": "9001", "token": "a<b>c",
                            "backuplocation": "<a> and <b>", "note": "<>", "x": "<unclosed"})),
            ),
            Case::new(
                "the docs' kubeconfig placeholders",
                pair_with(docs_config(), json!({"insert_storage_options_here": ""})),
            )
            .expect(r, "deny", "spec.config.clusters.kubernetes.certificate-authority-data")
            .expect(r, "deny", "spec.config.users.kubernetes-admin.client-certificate-data")
            .expect(r, "deny", "spec.config.users.kubernetes-admin.client-key-data")
            .expect(r, "deny", "spec.options.insert_storage_options_here"),
            Case::new("a real kubeconfig", pair_with(real_config(), json!({}))),
            Case::new(
                "server and token placeholders, under names that are not plain",
                pair_with(
                    json!({"clusters": {"api.east.example.com:6443": {"server": "<ip_of_remote_px_node>"}},
                           "contexts": {"east": {"cluster": "api.east.example.com:6443", "user": "<user>"}},
                           "current-context": "east",
                           "users": {"stork@east": {"token": "<token_from_step_3>"}}}),
                    json!({}),
                ),
            )
            .expect(r, "deny", "spec.config.clusters[\"api.east.example.com:6443\"].server")
            .expect(r, "deny", "spec.config.contexts.east.user")
            .expect(r, "deny", "spec.config.users[\"stork@east\"].token"),
            Case::new(
                "kubeconfig as a client-go file, with lists",
                pair_with(
                    json!({"clusters": [{"name": "east", "cluster": {"server": "<server>"}}]}),
                    json!({}),
                ),
            )
            .expect(r, "deny", "spec.config.clusters[0].cluster.server"),
        ];
        for case in cases {
            case.check(&view);
        }
    }

    #[test]
    fn placeholders_are_whole_angle_bracketed_values() {
        for p in [
            "<CA_DATA>",
            "<ip_of_remote_px_node>",
            "<token_from_step_3>",
            "<token from step 3>",
        ] {
            assert!(super::is_placeholder(p), "{p}");
        }
        for v in [
            "",
            "<>",
            "< >",
            "<a",
            "a>",
            "a<b>",
            "<a>b",
            "<a> <b>",
            "<<a>>",
            "https://x:6443",
            "a<b>c",
        ] {
            assert!(!super::is_placeholder(v), "{v}");
        }
    }
}
