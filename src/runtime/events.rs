//! Kubernetes Events drgitops publishes on its DRPlans, reported as controller `drgitops` and the replica's
//! identity. Best effort: the plan's status holds the same facts, so a failed publish is only logged.

use k8s_openapi::api::core::v1::ObjectReference;
use kube::runtime::events::{Event, EventType, Recorder, Reporter};

/// The API server refuses an Event whose note is longer than this many bytes.
const MAX_NOTE_BYTES: usize = 1000;

/// Publishes Events as one reconciler replica.
#[derive(Clone)]
pub struct Events {
    recorder: Recorder,
}

impl Events {
    /// Events reported by `instance` (the replica's identity in the Lease).
    pub fn new(client: kube::Client, instance: &str) -> Self {
        let reporter = Reporter {
            controller: "drgitops".into(),
            instance: Some(instance.into()),
        };
        Events {
            recorder: Recorder::new(client, reporter),
        }
    }

    /// Publishes an Event on `object`. Repeats of the same reason and note are counted as one Event's series,
    /// so a plan that stays Stalled does not add an Event per pass.
    pub async fn publish(
        &self,
        object: &ObjectReference,
        type_: EventType,
        action: &str,
        reason: &str,
        note: &str,
    ) {
        let event = Event {
            type_,
            reason: reason.to_string(),
            note: Some(truncate(note).to_string()),
            action: action.into(),
            secondary: None,
        };
        if let Err(err) = self.recorder.publish(&event, object).await {
            tracing::debug!(%reason, "cannot publish event: {err}");
        }
    }
}

/// `note` cut to [`MAX_NOTE_BYTES`] at a character boundary.
fn truncate(note: &str) -> &str {
    let mut cut = note.len().min(MAX_NOTE_BYTES);
    while !note.is_char_boundary(cut) {
        cut -= 1;
    }
    &note[..cut]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notes_are_cut_to_the_byte_limit_at_a_character_boundary() {
        assert_eq!(truncate("short"), "short");
        let long = "é".repeat(700); // 1,400 bytes, 700 characters
        let cut = truncate(&long);
        assert_eq!(cut.len(), 1000);
        assert!(cut.chars().all(|c| c == 'é'));
        let odd = format!("a{}", "é".repeat(700));
        assert_eq!(truncate(&odd).len(), 999, "never half a character");
    }
}
