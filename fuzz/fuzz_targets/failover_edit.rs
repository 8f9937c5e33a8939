//! The span editor of `drgitops failover` (`manifest::edit::edit_plan`) on arbitrary plan-file text: for each of
//! the first documents, every change `failover` can ask for (each listed domain as the new primary, an unknown
//! one, a deactivation, a declared disaster or a planned change).
//!
//! Property: the editor either refuses, or returns a file whose other documents are byte-for-byte unchanged, whose
//! edited document re-parses to the original with exactly the intended fields changed (`spec.primary`, the
//! deactivated domain's `active`, `spec.failover.disaster`), and which keeps every comment line of the original
//! (those inside a replaced or removed declaration excepted); a change to an unknown domain is always refused.

#![no_main]

use drgitops::manifest::documents;
use drgitops::manifest::edit::{Declaration, PlanChange, edit_plan};
use drgitops::plan::Disaster;
use libfuzzer_sys::fuzz_target;
use serde_yaml::{Mapping, Value};

fn domain_names(doc: &Value) -> Vec<String> {
    doc.get("spec")
        .and_then(|s| s.get("domains"))
        .and_then(Value::as_sequence)
        .map(|seq| {
            seq.iter()
                .filter_map(|d| d.get("name").and_then(Value::as_str).map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

/// Comment lines of `text`, trimmed, in order.
fn comment_lines(text: &str) -> Vec<&str> {
    text.lines()
        .map(str::trim)
        .filter(|l| l.starts_with('#'))
        .collect()
}

/// Whether `needles` appear in `haystack` in order.
fn in_order(needles: &[&str], haystack: &[&str]) -> bool {
    let mut rest = haystack.iter();
    needles.iter().all(|n| rest.any(|h| h == n))
}

/// `spec.failover` read as its `disaster` and its other keys; a null or empty `failover` reads as absent.
fn normalise_failover(doc: &mut Value) {
    let Some(spec) = doc.get_mut("spec").and_then(Value::as_mapping_mut) else {
        return;
    };
    let empty = match spec.get("failover") {
        Some(Value::Null) => true,
        Some(Value::Mapping(m)) => m.is_empty(),
        _ => false,
    };
    if empty {
        spec.remove("failover");
    }
}

fn check_edit(text: &str, index: usize, change: &PlanChange, original: &Value, names: &[String]) {
    let docs = documents(text);
    let range = docs[index].range.clone();
    let result = edit_plan(text, index, change);
    if !names.iter().any(|n| n == change.to) {
        assert!(
            result.is_err(),
            "an unknown domain {:?} was accepted",
            change.to
        );
        return;
    }
    let Ok(edit) = result else { return };

    // Everything around the document is unchanged.
    assert!(
        edit.text.starts_with(&text[..range.start]),
        "text before the document changed"
    );
    assert!(
        edit.text.ends_with(&text[range.end..]),
        "text after the document changed"
    );
    let new_doc = &edit.text[range.start..edit.text.len() - (text.len() - range.end)];

    // The document differs from the original in exactly the intended fields.
    let mut edited: Value = serde_yaml::from_str(new_doc).expect("the edited document parses");
    assert_eq!(
        edited, edit.document,
        "the returned document is the edited text"
    );
    let mut expected = original.clone();
    let declared_before = original
        .get("spec")
        .and_then(|s| s.get("failover"))
        .and_then(|f| f.get("disaster"))
        .is_some();
    let spec = expected
        .get_mut("spec")
        .and_then(Value::as_mapping_mut)
        .expect("an edited plan has a spec");
    spec.insert("primary".into(), change.to.into());
    if let Some(d) = change.deactivate {
        let domains = spec
            .get_mut("domains")
            .and_then(Value::as_sequence_mut)
            .expect("domains");
        let domain = domains
            .iter_mut()
            .find(|x| x.get("name").and_then(Value::as_str) == Some(d))
            .and_then(Value::as_mapping_mut)
            .expect("the deactivated domain is listed");
        domain.insert("active".into(), false.into());
    }
    match change.disaster {
        Some(disaster) => {
            let failover = spec
                .entry("failover".into())
                .or_insert_with(|| Value::Mapping(Mapping::new()));
            if !failover.is_mapping() {
                *failover = Value::Mapping(Mapping::new());
            }
            let value = serde_yaml::to_value(disaster).expect("a declaration serialises");
            failover
                .as_mapping_mut()
                .expect("mapping")
                .insert("disaster".into(), value);
            assert_eq!(edit.declaration, Declaration::Declared);
        }
        None => {
            if let Some(f) = spec.get_mut("failover").and_then(Value::as_mapping_mut) {
                f.remove("disaster");
            }
            let want = if declared_before {
                Declaration::Cleared
            } else {
                Declaration::Absent
            };
            assert_eq!(edit.declaration, want);
        }
    }
    normalise_failover(&mut expected);
    normalise_failover(&mut edited);
    assert_eq!(
        edited, expected,
        "the edit changed more or less than the intended fields"
    );

    // Comments are kept (a replaced or removed declaration may take its own comments with it).
    if !declared_before {
        let before = comment_lines(&text[range.clone()]);
        let after = comment_lines(new_doc);
        assert!(
            in_order(&before, &after),
            "comments were lost:\n{before:?}\n{after:?}"
        );
    }
}

fuzz_target!(|bytes: &[u8]| {
    let Ok(text) = std::str::from_utf8(bytes) else {
        return;
    };
    let docs = documents(text);
    for (index, doc) in docs.iter().enumerate().take(3) {
        let Ok(original) = serde_yaml::from_str::<Value>(doc.text) else {
            // The editor refuses what does not parse.
            let change = PlanChange {
                to: "east",
                deactivate: None,
                disaster: None,
            };
            assert!(edit_plan(text, index, &change).is_err());
            continue;
        };
        let names = domain_names(&original);
        let from = original
            .get("spec")
            .and_then(|s| s.get("primary"))
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        let disaster = Disaster {
            lost: from.clone(),
            declared_at: Some("2026-01-02T03:04:05Z".to_string()),
            message: Some("fuzz: #not a comment".to_string()),
            data_as_of: None,
        };
        let mut targets: Vec<&str> = names.iter().map(String::as_str).take(3).collect();
        targets.push("nowhere");
        for to in targets {
            let other = names.iter().map(String::as_str).find(|n| *n != to);
            for deactivate in [None, other] {
                for declared in [None, Some(&disaster)] {
                    let change = PlanChange {
                        to,
                        deactivate,
                        disaster: declared,
                    };
                    check_edit(text, index, &change, &original, &names);
                }
            }
        }
    }
});
