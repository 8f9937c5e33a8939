//! The one reader of YAML streams: where each document of a file starts and ends, so that every error names file,
//! document and line. Pure.
//!
//! `check` (offline view), the git source (DRPlans of a commit) and `failover` (the span editor) all split files
//! with [`documents`], so a file reads the same everywhere: documents are separated by `---` lines (content after
//! the marker, as in `--- {a: 1}`, belongs to the new document), a `...` line ends one, and a document of only
//! comments and blank lines is no document.

pub mod edit;

use std::ops::Range;

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
