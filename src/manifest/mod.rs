//! The one reader of YAML streams: where each document of a file starts and ends, so that every error names file,
//! document and line. Pure.
//!
//! `check` (offline view), the git source (DRPlans of a commit) and `failover` (the span editor) all split files
//! with [`documents`], so a file reads the same everywhere: documents are separated by `---` lines (content after
//! the marker, as in `--- {a: 1}`, belongs to the new document), a `...` line ends one, and a document of only
//! comments and blank lines is no document.

pub mod edit;

use std::ops::Range;

use serde::de::{DeserializeSeed, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Deserializer};
use serde_json::{Map, Number, Value};

/// Largest manifest file the reader accepts (8 MiB). Kubernetes stores objects of at most 1.5 MiB; this leaves room
/// for bundles of many documents while keeping one file's parse within a bounded amount of memory.
pub const MAX_FILE_BYTES: usize = 8 * 1024 * 1024;

/// Deepest nesting of sequences and mappings in a document: the YAML parser's own limit (its error says
/// "recursion limit exceeded"); JSON files have the same limit.
pub const MAX_DEPTH: usize = 128;

/// Values (scalars, sequences and mappings, counted after YAML aliases are expanded) that a text of `bytes` bytes
/// may expand to: twice its size plus 10,000. A document without aliases holds fewer values than bytes; aliases
/// may repeat what they name within that allowance, but an alias bomb (aliases of aliases, each doubling the
/// document) is refused instead of filling memory.
pub fn value_budget(bytes: usize) -> usize {
    bytes.saturating_mul(2).saturating_add(10_000)
}

/// Parses one YAML document (the text of a [`Document`]) into a JSON value, exactly as
/// `serde_yaml::from_str::<serde_json::Value>` does, but expanding at most `budget` values (see [`value_budget`];
/// share one budget among the documents of a file). What is expanded is deducted from `budget`; past it, the
/// document is refused with an error that names the cap.
pub fn parse_document(text: &str, budget: &mut usize) -> Result<Value, serde_yaml::Error> {
    let start = *budget;
    let seed = Budgeted {
        remaining: budget,
        start,
    };
    seed.deserialize(serde_yaml::Deserializer::from_str(text))
}

/// A JSON value that draws one unit of `remaining` per value it holds.
struct Budgeted<'b> {
    remaining: &'b mut usize,
    start: usize,
}

impl Budgeted<'_> {
    fn take<E: serde::de::Error>(&mut self) -> Result<(), E> {
        match self.remaining.checked_sub(1) {
            Some(rest) => {
                *self.remaining = rest;
                Ok(())
            }
            None => Err(E::custom(format!(
                "the document expands to more than {} values (YAML aliases repeating large parts of it?); \
                 manifests are limited to twice their size in bytes plus 10000 values",
                self.start
            ))),
        }
    }

    fn reborrow(&mut self) -> Budgeted<'_> {
        Budgeted {
            remaining: self.remaining,
            start: self.start,
        }
    }
}

impl<'de> DeserializeSeed<'de> for Budgeted<'_> {
    type Value = Value;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

/// The same visits as `serde_json::Value`'s own visitor (messages included), each value counted.
impl<'de> Visitor<'de> for Budgeted<'_> {
    type Value = Value;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("any valid JSON value")
    }

    fn visit_bool<E: serde::de::Error>(mut self, v: bool) -> Result<Value, E> {
        self.take()?;
        Ok(Value::Bool(v))
    }

    fn visit_i64<E: serde::de::Error>(mut self, v: i64) -> Result<Value, E> {
        self.take()?;
        Ok(Value::Number(v.into()))
    }

    fn visit_i128<E: serde::de::Error>(mut self, v: i128) -> Result<Value, E> {
        self.take()?;
        Number::deserialize(serde::de::value::I128Deserializer::<E>::new(v)).map(Value::Number)
    }

    fn visit_u64<E: serde::de::Error>(mut self, v: u64) -> Result<Value, E> {
        self.take()?;
        Ok(Value::Number(v.into()))
    }

    fn visit_u128<E: serde::de::Error>(mut self, v: u128) -> Result<Value, E> {
        self.take()?;
        Number::deserialize(serde::de::value::U128Deserializer::<E>::new(v)).map(Value::Number)
    }

    fn visit_f64<E: serde::de::Error>(mut self, v: f64) -> Result<Value, E> {
        self.take()?;
        Ok(Number::from_f64(v).map_or(Value::Null, Value::Number))
    }

    fn visit_str<E: serde::de::Error>(mut self, v: &str) -> Result<Value, E> {
        self.take()?;
        Ok(Value::String(v.to_string()))
    }

    fn visit_string<E: serde::de::Error>(mut self, v: String) -> Result<Value, E> {
        self.take()?;
        Ok(Value::String(v))
    }

    fn visit_none<E: serde::de::Error>(mut self) -> Result<Value, E> {
        self.take()?;
        Ok(Value::Null)
    }

    fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        deserializer.deserialize_any(self)
    }

    fn visit_unit<E: serde::de::Error>(mut self) -> Result<Value, E> {
        self.take()?;
        Ok(Value::Null)
    }

    fn visit_seq<A: SeqAccess<'de>>(mut self, mut seq: A) -> Result<Value, A::Error> {
        self.take()?;
        let mut items = Vec::new();
        while let Some(item) = seq.next_element_seed(self.reborrow())? {
            items.push(item);
        }
        Ok(Value::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(mut self, mut map: A) -> Result<Value, A::Error> {
        self.take()?;
        let mut object = Map::new();
        // serde_json reads the first key as "a string key" and the others as plain strings; so do we.
        if let Some(key) = map.next_key_seed(FirstKey)? {
            self.take()?;
            let value = map.next_value_seed(self.reborrow())?;
            object.insert(key, value);
            while let Some(key) = map.next_key::<String>()? {
                self.take()?;
                let value = map.next_value_seed(self.reborrow())?;
                object.insert(key, value);
            }
        }
        Ok(Value::Object(object))
    }
}

/// The first key of a mapping, read as serde_json's own `KeyClassifier` reads it.
struct FirstKey;

impl<'de> DeserializeSeed<'de> for FirstKey {
    type Value = String;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<String, D::Error> {
        deserializer.deserialize_str(self)
    }
}

impl Visitor<'_> for FirstKey {
    type Value = String;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a string key")
    }

    fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<String, E> {
        Ok(v.to_string())
    }

    fn visit_string<E: serde::de::Error>(self, v: String) -> Result<String, E> {
        Ok(v)
    }
}

/// One document of a YAML stream.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Document<'a> {
    /// 1-based position among the stream's documents.
    pub number: usize,
    /// 1-based line of the stream where the document's text starts.
    pub line: usize,
    /// Byte range of the document's text in the stream.
    pub range: Range<usize>,
    /// The document's text.
    pub text: &'a str,
}

impl Document<'_> {
    /// The stream's line of a 1-based line within this document (e.g. from a YAML parser's error location).
    pub fn stream_line(&self, line_in_document: usize) -> usize {
        self.line + line_in_document.saturating_sub(1)
    }
}

/// The documents of `text`, in order.
pub fn documents(text: &str) -> Vec<Document<'_>> {
    let mut spans: Vec<(usize, Range<usize>)> = Vec::new();
    let (mut start, mut start_line, mut offset) = (0, 1, 0);
    for (index, line) in text.split_inclusive('\n').enumerate() {
        let bare = line.trim_end_matches(['\n', '\r']);
        let is_marker = |m: &str| {
            bare == m
                || bare
                    .strip_prefix(m)
                    .is_some_and(|rest| rest.starts_with([' ', '\t']))
        };
        let (opens, closes) = (is_marker("---"), is_marker("..."));
        if opens || closes {
            spans.push((start_line, start..offset));
            let rest = bare[3..].trim();
            // `--- {a: 1}` carries content on the marker line itself; a comment there belongs to no document.
            if opens && !rest.is_empty() && !rest.starts_with('#') {
                (start, start_line) = (offset + 3, index + 1);
            } else {
                (start, start_line) = (offset + line.len(), index + 2);
            }
        }
        offset += line.len();
    }
    spans.push((start_line, start..text.len()));
    spans
        .into_iter()
        .filter(|(_, range)| holds_content(&text[range.clone()]))
        .enumerate()
        .map(|(i, (line, range))| Document {
            number: i + 1,
            line,
            text: &text[range.clone()],
            range,
        })
        .collect()
}

/// Whether a document's text holds anything but comments and blank lines.
fn holds_content(text: &str) -> bool {
    text.lines().any(|l| {
        let l = l.trim();
        !l.is_empty() && !l.starts_with('#')
    })
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    fn texts(text: &str) -> Vec<(usize, usize, &str)> {
        documents(text)
            .into_iter()
            .map(|d| (d.number, d.line, d.text))
            .collect()
    }

    #[test]
    fn splits_at_markers_and_skips_documents_of_only_comments() {
        let text = "# leading comment\na: 1\n---\n# only a comment\n---\nb: 2\n...\n";
        assert_eq!(
            texts(text),
            [(1, 1, "# leading comment\na: 1\n"), (2, 6, "b: 2\n")]
        );
    }

    #[test]
    fn content_on_the_marker_line_belongs_to_the_new_document() {
        let text = "---\na: 1\n--- # two\nb: 2\n--- {c: 3}\n...\n";
        assert_eq!(
            texts(text),
            [(1, 2, "a: 1\n"), (2, 4, "b: 2\n"), (3, 5, " {c: 3}\n")]
        );
    }

    /// What `serde_yaml::from_str` makes of `text`, as `parse_document` returns it.
    fn plain(text: &str) -> Result<Value, String> {
        serde_yaml::from_str::<Value>(text).map_err(|e| e.to_string())
    }

    fn bounded(text: &str) -> Result<Value, String> {
        parse_document(text, &mut value_budget(text.len())).map_err(|e| e.to_string())
    }

    #[test]
    fn parse_document_reads_as_serde_yaml_does() {
        let cases = [
            "a: 1\nb: [x, 2.5, -3, 18446744073709551615, 1e400, .nan, ~, true]\nc: {d: null}\n",
            "a: 1\na: 2\n",
            "170141183460469231731687303715884105727\n",
            "? [a]\n: 1\n",
            "a: 1\n? [b]\n: 2\n",
            "!tag x\n",
            "base: &b {x: 1}\nother: *b\n",
            "",
            "- a\n- b: [c]\n",
            "key: value\n  bad indent: 1\n",
            "a: b\n---\nc: d\n",
        ];
        for text in cases {
            assert_eq!(bounded(text), plain(text), "{text:?}");
        }
        let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/stork-examples");
        for entry in std::fs::read_dir(fixtures).unwrap() {
            let text = std::fs::read_to_string(entry.unwrap().path()).unwrap();
            for doc in documents(&text) {
                assert_eq!(bounded(doc.text), plain(doc.text));
            }
        }
    }

    #[test]
    fn aliases_expand_only_within_the_budget() {
        let n = 300;
        let text = format!(
            "a: &a [{}]\nb: [{}]\n",
            vec!["x"; n].join(","),
            vec!["*a"; n].join(",")
        );
        assert!(plain(&text).is_ok(), "serde_yaml alone expands it");
        let mut budget = 1000;
        let err = parse_document(&text, &mut budget).unwrap_err().to_string();
        assert!(
            err.contains("the document expands to more than 1000 values"),
            "{err}"
        );
        // Modest aliasing fits, and the budget is shared: what one document used is gone for the next.
        let mut budget = value_budget(text.len());
        assert!(parse_document("base: &b {x: 1, y: 2}\nother: *b\n", &mut budget).is_ok());
        assert_eq!(budget, value_budget(text.len()) - 13);
    }

    #[test]
    fn markers_need_a_separator_and_ranges_index_the_stream() {
        let text = "a: ---x\n----\nb: 1\r\n---\r\nc: 2";
        let docs = documents(text);
        assert_eq!(docs.len(), 2);
        assert_eq!(&text[docs[1].range.clone()], "c: 2");
        assert_eq!(docs[1].line, 5);
        assert_eq!(docs[1].stream_line(1), 5);
        assert_eq!(documents("a: 1\n").len(), 1);
        assert!(documents("").is_empty());
    }
}
