//! Conversion between the two APIs that serve one stored resource: core `v1` Events and `events.k8s.io/v1`
//! Events are the same objects in the apiserver, so `kubectl get events` shows what kube-rs' `Recorder`
//! published. Objects are stored in the core shape.
//!
//! In: an object in one API's shape. Out: the same object in the other's. Pure.

use serde_json::{Map, Value, json};

/// Field pairs: (core v1 name, events.k8s.io/v1 name).
const EVENT_FIELDS: &[(&str, &str)] = &[
    ("involvedObject", "regarding"),
    ("message", "note"),
    ("reportingComponent", "reportingController"),
    ("reportingInstance", "reportingInstance"),
    ("source", "deprecatedSource"),
    ("firstTimestamp", "deprecatedFirstTimestamp"),
    ("lastTimestamp", "deprecatedLastTimestamp"),
    ("count", "deprecatedCount"),
    ("eventTime", "eventTime"),
    ("series", "series"),
    ("action", "action"),
    ("reason", "reason"),
    ("type", "type"),
    ("related", "related"),
];

fn remap(obj: &Value, api_version: &str, to_events: bool) -> Value {
    let mut out = Map::new();
    out.insert("apiVersion".into(), json!(api_version));
    out.insert("kind".into(), json!("Event"));
    if let Some(m) = obj.get("metadata") {
        out.insert("metadata".into(), m.clone());
    }
    for (core, events) in EVENT_FIELDS {
        let (from, to) = if to_events {
            (core, events)
        } else {
            (events, core)
        };
        if let Some(v) = obj.get(*from).filter(|v| !v.is_null()) {
            out.insert((*to).to_string(), v.clone());
        }
    }
    Value::Object(out)
}

/// A stored (core v1) Event as `events.k8s.io/v1` serves it.
pub fn core_event_to_events(obj: &Value) -> Value {
    remap(obj, "events.k8s.io/v1", true)
}

/// An `events.k8s.io/v1` Event in the stored (core v1) shape.
pub fn events_event_to_core(obj: &Value) -> Value {
    remap(obj, "v1", false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_round_trip_through_the_core_shape() {
        let ev = json!({"apiVersion": "events.k8s.io/v1", "kind": "Event", "metadata": {"name": "e", "namespace": "default"},
            "regarding": {"kind": "ConfigMap", "name": "c"}, "note": "hello", "reason": "Checked", "type": "Normal",
            "reportingController": "tester", "action": "Check", "eventTime": "2026-01-01T00:00:00.000000Z",
            "series": {"count": 2, "lastObservedTime": "2026-01-01T00:00:01.000000Z"}});
        let core = events_event_to_core(&ev);
        assert_eq!(core["involvedObject"]["name"], "c");
        assert_eq!(core["message"], "hello");
        assert_eq!(core["reportingComponent"], "tester");
        assert_eq!(core["apiVersion"], "v1");
        assert_eq!(core_event_to_events(&core), ev);
    }
}
