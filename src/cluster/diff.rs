//! The dry-run diff: live object against what a server-side dry-run apply returned, as unified-style YAML lines.
//! Pure.
//!
//! In: an object key, the live object (if any) and the dry-run result (if any; none means a deletion). Out: text
//! for `--dry-run`, empty when nothing would change. Server-maintained metadata is left out and credentials are
//! redacted: the diff goes to a terminal or a CI log.

use serde_json::Value;

use crate::cluster::apply::ObjectKey;

/// The diff of one object; empty when live and desired agree.
pub fn object_diff(key: &ObjectKey, live: Option<&Value>, desired: Option<&Value>) -> String {
    let before = live
        .map(normalize)
        .map(|v| to_lines(&v))
        .unwrap_or_default();
    let after = desired
        .map(normalize)
        .map(|v| to_lines(&v))
        .unwrap_or_default();
    if before == after {
        return String::new();
    }
    let what = match (live, desired) {
        (None, Some(_)) => " (create)",
        (Some(_), None) => " (delete)",
        _ => "",
    };
    let mut out = format!("--- live {key}\n+++ desired {key}{what}\n");
    for line in line_diff(&before, &after) {
        out.push_str(&line);
        out.push('\n');
    }
    out
}

/// Drops what the server maintains and redacts credentials.
pub fn normalize(object: &Value) -> Value {
    let mut object = object.clone();
    if let Some(meta) = object.get_mut("metadata").and_then(Value::as_object_mut) {
        for key in [
            "managedFields",
            "resourceVersion",
            "uid",
            "creationTimestamp",
            "generation",
            "selfLink",
        ] {
            meta.remove(key);
        }
        if meta
            .get("annotations")
            .and_then(Value::as_object)
            .is_some_and(|a| a.is_empty())
        {
            meta.remove("annotations");
        }
    }
    if let Some(map) = object.as_object_mut() {
        map.remove("status");
    }
    if let Some(token) = object.pointer_mut("/spec/options/token") {
        *token = Value::String("<redacted>".into());
    }
    if let Some(users) = object
        .pointer_mut("/spec/config/users")
        .and_then(Value::as_object_mut)
    {
        for user in users.values_mut().filter_map(Value::as_object_mut) {
            for secret in ["token", "client-key-data", "password"] {
                if let Some(v) = user.get_mut(secret) {
                    *v = Value::String("<redacted>".into());
                }
            }
        }
    }
    if object.get("kind").and_then(Value::as_str) == Some("Secret") {
        for field in ["data", "stringData"] {
            if let Some(values) = object.get_mut(field).and_then(Value::as_object_mut) {
                for v in values.values_mut() {
                    *v = Value::String("<redacted>".into());
                }
            }
        }
    }
    object
}

fn to_lines(value: &Value) -> Vec<String> {
    serde_yaml::to_string(value)
        .unwrap_or_default()
        .lines()
        .map(str::to_string)
        .collect()
}

/// A longest-common-subsequence line diff: ` ` kept, `-` removed, `+` added.
pub fn line_diff(before: &[String], after: &[String]) -> Vec<String> {
    let (n, m) = (before.len(), after.len());
    let mut lcs = vec![vec![0usize; m + 1]; n + 1];
    for i in (0..n).rev() {
        for j in (0..m).rev() {
            lcs[i][j] = if before[i] == after[j] {
                lcs[i + 1][j + 1] + 1
            } else {
                lcs[i + 1][j].max(lcs[i][j + 1])
            };
        }
    }
    let (mut i, mut j) = (0, 0);
    let mut out = Vec::new();
    while i < n || j < m {
        if i < n && j < m && before[i] == after[j] {
            out.push(format!(" {}", before[i]));
            i += 1;
            j += 1;
        } else if i < n && (j == m || lcs[i + 1][j] >= lcs[i][j + 1]) {
            out.push(format!("-{}", before[i]));
            i += 1;
        } else {
            out.push(format!("+{}", after[j]));
            j += 1;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn key() -> ObjectKey {
        ObjectKey {
            api_version: "v".into(),
            kind: "MigrationSchedule".into(),
            namespace: "ns".into(),
            name: "p".into(),
        }
    }

    #[test]
    fn changed_fields_show_as_minus_and_plus() {
        let live = json!({"kind": "MigrationSchedule", "metadata": {"name": "p", "resourceVersion": "7"},
            "spec": {"suspend": true}, "status": {"items": {}}});
        let desired = json!({"kind": "MigrationSchedule", "metadata": {"name": "p", "resourceVersion": "7"},
            "spec": {"suspend": false}});
        let diff = object_diff(&key(), Some(&live), Some(&desired));
        assert!(
            diff.starts_with(
                "--- live MigrationSchedule ns/p\n+++ desired MigrationSchedule ns/p\n"
            ),
            "{diff}"
        );
        assert!(
            diff.contains("-  suspend: true\n+  suspend: false\n"),
            "{diff}"
        );
        assert!(
            !diff.contains("resourceVersion") && !diff.contains("items"),
            "{diff}"
        );
        assert_eq!(object_diff(&key(), Some(&live), Some(&live)), "");
    }

    #[test]
    fn credentials_never_reach_the_diff() {
        let desired = json!({"kind": "ClusterPair", "spec": {"options": {"token": "px-secret"},
            "config": {"users": {"admin": {"token": "kube-secret"}}}}});
        let diff = object_diff(&key(), None, Some(&desired));
        assert!(diff.contains("(create)"));
        assert!(
            !diff.contains("px-secret") && !diff.contains("kube-secret"),
            "{diff}"
        );
    }
}
