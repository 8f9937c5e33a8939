//! Watches: synthetic ADDED events for the current state (or exact resumption from a resourceVersion),
//! bookmarks, `sendInitialEvents` with the `k8s.io/initial-events-end` bookmark, `timeoutSeconds`, selector
//! transitions (objects entering or leaving a selector show up as ADDED/DELETED), and the 410 ERROR event for an
//! expired resourceVersion or a compaction.
//!
//! In: a watch request. Out: a chunked response with one JSON event per line.

use std::convert::Infallible;
use std::sync::atomic::Ordering;
use std::time::Duration;

use axum::body::{Body, Bytes};
use serde_json::{Value, json};
use tokio::sync::mpsc;
use tokio::time::Instant;

use crate::api::{Shared, in_version};
use crate::resources::ResourceType;
use crate::selectors::{FieldSelector, LabelSelector};
use crate::store::{Change, EventType};

/// What a watch asks for.
#[derive(Debug, Clone)]
pub struct WatchParams {
    pub namespace: Option<String>,
    pub resource_version: Option<String>,
    pub timeout: Duration,
    pub bookmarks: bool,
    pub send_initial_events: bool,
    pub labels: LabelSelector,
    pub fields: FieldSelector,
    /// Answer with `meta.k8s.io/v1 PartialObjectMetadata` objects.
    pub partial: bool,
    /// Answer with one-row `meta.k8s.io/v1 Table` objects (`kubectl get --watch`).
    pub table: bool,
}

/// How long a watch may idle before a bookmark tells the client it is still current.
const BOOKMARK_EVERY: Duration = Duration::from_secs(10);

/// The metadata-only view kube-rs metadata watches ask for.
pub fn partial_metadata(obj: &Value) -> Value {
    json!({"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1",
        "metadata": obj.get("metadata").cloned().unwrap_or(json!({}))})
}

fn line(event_type: &str, object: Value) -> Bytes {
    let mut s = json!({"type": event_type, "object": object}).to_string();
    s.push('\n');
    Bytes::from(s)
}

fn expired_line(message: String) -> Bytes {
    line(
        "ERROR",
        json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
            "message": message, "reason": "Expired", "code": 410}),
    )
}

struct Watcher {
    rt: ResourceType,
    p: WatchParams,
}

impl Watcher {
    /// Selectors see the object as this API serves it (field names differ between the Event APIs).
    fn matches(&self, obj: &Value) -> bool {
        self.p.labels.matches(obj)
            && (self.p.fields.is_empty()
                || self.p.fields.matches(&in_version(&self.rt, obj.clone())))
    }

    fn render(&self, obj: &Value) -> Value {
        let o = in_version(&self.rt, obj.clone());
        if self.p.table {
            let meta = json!({"resourceVersion": o.pointer("/metadata/resourceVersion").cloned().unwrap_or(json!(""))});
            crate::table::table(&self.rt, &[o], meta, jiff::Timestamp::now(), true)
        } else if self.p.partial {
            partial_metadata(&o)
        } else {
            o
        }
    }

    fn bookmark(&self, rv: u64, initial_end: bool) -> Bytes {
        let mut meta = json!({"resourceVersion": rv.to_string()});
        if initial_end {
            meta["annotations"] = json!({"k8s.io/initial-events-end": "true"});
        }
        let (kind, api_version) = if self.p.table {
            ("Table".to_string(), "meta.k8s.io/v1".to_string())
        } else if self.p.partial {
            (
                "PartialObjectMetadata".to_string(),
                "meta.k8s.io/v1".to_string(),
            )
        } else {
            (self.rt.kind.clone(), self.rt.api_version())
        };
        line(
            "BOOKMARK",
            json!({"kind": kind, "apiVersion": api_version, "metadata": meta}),
        )
    }

    /// The event a change produces for this watch, if any.
    fn event_for(&self, c: &Change) -> Option<Bytes> {
        let (group, plural) = self.rt.store_key();
        if c.group != group || c.plural != plural {
            return None;
        }
        if let Some(ns) = &self.p.namespace
            && *ns != c.namespace
        {
            return None;
        }
        let now = self.matches(&c.object);
        let before = c.old.as_deref().is_some_and(|o| self.matches(o));
        let kind = match c.kind {
            EventType::Deleted if before || now => EventType::Deleted,
            EventType::Deleted => return None,
            EventType::Added if now => EventType::Added,
            EventType::Added => return None,
            EventType::Modified => match (before, now) {
                (true, true) => EventType::Modified,
                (false, true) => EventType::Added,
                (true, false) => EventType::Deleted,
                (false, false) => return None,
            },
        };
        Some(line(kind.as_str(), self.render(&c.object)))
    }
}

/// Starts a watch and returns the streaming body.
pub fn watch(server: Shared, rt: ResourceType, p: WatchParams) -> Body {
    let (tx, rx) = mpsc::channel::<Bytes>(256);
    tokio::spawn(run(server, Watcher { rt, p }, tx));
    let stream = futures::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|b| (Ok::<Bytes, Infallible>(b), rx))
    });
    Body::from_stream(stream)
}

/// Counts a watch as open for as long as it streams.
struct OpenWatch(Shared);

impl OpenWatch {
    fn new(server: Shared) -> Self {
        server.store.open_watches.fetch_add(1, Ordering::SeqCst);
        OpenWatch(server)
    }
}

impl Drop for OpenWatch {
    fn drop(&mut self) {
        self.0.store.open_watches.fetch_sub(1, Ordering::SeqCst);
    }
}

async fn run(server: Shared, w: Watcher, tx: mpsc::Sender<Bytes>) {
    let _open = OpenWatch::new(server.clone());
    let mut notify = server.store.subscribe();
    let deadline = Instant::now() + w.p.timeout;
    let mut out: Vec<Bytes> = Vec::new();
    let (mut last, epoch) = {
        let state = server.store.lock();
        let epoch = state.compaction_epoch;
        let requested = w.p.resource_version.as_deref().filter(|rv| !rv.is_empty());
        let synthetic = w.p.send_initial_events || matches!(requested, None | Some("0"));
        if synthetic {
            let ns = w.p.namespace.as_deref();
            for obj in state.list(&w.rt, ns) {
                if w.matches(&obj) {
                    out.push(line("ADDED", w.render(&obj)));
                }
            }
            if w.p.send_initial_events {
                out.push(w.bookmark(state.rv, true));
            }
            (state.rv, epoch)
        } else {
            let n: u64 = match requested.and_then(|r| r.parse().ok()) {
                Some(n) => n,
                None => {
                    let _ = tx.try_send(expired_line(format!(
                        "invalid resource version: {}",
                        requested.unwrap_or_default()
                    )));
                    return;
                }
            };
            if n < state.compacted_rv {
                let _ = tx.try_send(expired_line(format!(
                    "too old resource version: {n} ({})",
                    state.compacted_rv
                )));
                return;
            }
            (n, epoch)
        }
    };
    for b in out.drain(..) {
        if tx.send(b).await.is_err() {
            return;
        }
    }
    let mut idle_since = Instant::now();
    loop {
        let expired = {
            let state = server.store.lock();
            if state.compaction_epoch != epoch || last < state.compacted_rv {
                Some(format!(
                    "too old resource version: {last} ({})",
                    state.compacted_rv
                ))
            } else {
                // History is ordered by resourceVersion: start right after the last change this watch saw.
                let start = state.history.partition_point(|c| c.rv <= last);
                for c in state.history.range(start..) {
                    if let Some(b) = w.event_for(c) {
                        out.push(b);
                    }
                }
                last = last.max(state.rv);
                None
            }
        };
        if let Some(msg) = expired {
            let _ = tx.send(expired_line(msg)).await;
            return;
        }
        if !out.is_empty() {
            idle_since = Instant::now();
        }
        for b in out.drain(..) {
            if tx.send(b).await.is_err() {
                return;
            }
        }
        let bookmark_at = (idle_since + BOOKMARK_EVERY).min(deadline);
        tokio::select! {
            changed = notify.changed() => {
                if changed.is_err() {
                    return;
                }
            }
            _ = tx.closed() => return,
            _ = tokio::time::sleep_until(bookmark_at) => {
                if w.p.bookmarks && tx.send(w.bookmark(last, false)).await.is_err() {
                    return;
                }
                idle_since = Instant::now();
                if Instant::now() >= deadline {
                    return;
                }
            }
        }
    }
}
