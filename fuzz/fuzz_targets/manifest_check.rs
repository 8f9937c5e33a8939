//! Arbitrary bytes as a manifest file through `drgitops check`'s reader (`cluster::file::parse_file`, read as
//! both a `.yaml` stream and a `.json` file) and its evaluation (`cli::check::check`, both report formats).
//!
//! Property: the outcome is one of `check`'s exit codes — 2 (the file cannot be read: invalid UTF-8, invalid
//! YAML/JSON, a document that is not an object, over a cap; the error names the file), else 1 when some finding
//! denies and 0 when none does, with the summary counting exactly the findings reported; never a panic, and no
//! allocation beyond libFuzzer's limits (alias bombs, deep nesting and huge scalars must be refused or bounded).

#![no_main]

use std::path::Path;

use drgitops::cli::check::{check, render_text};
use drgitops::cluster::file::parse_file;
use drgitops::policy::PolicyConfig;
use libfuzzer_sys::fuzz_target;

/// `check`'s exit code for one file's bytes, as `drgitops check FILE` would return it.
fn exit_code(name: &str, bytes: &[u8], config: &PolicyConfig) -> u8 {
    // `read_manifests` reads files with `read_to_string`: invalid UTF-8 is a read error.
    let Ok(text) = std::str::from_utf8(bytes) else {
        return 2;
    };
    let manifests = match parse_file(Path::new(name), text) {
        Ok(manifests) => manifests,
        Err(err) => {
            let message = err.to_string();
            assert!(
                message.starts_with(name),
                "the error names the file: {message}"
            );
            return 2;
        }
    };
    for m in &manifests {
        assert!(m.object.is_object(), "every manifest is an object");
        assert!(!m.kind().is_empty(), "every manifest has a kind");
        assert!(m.document >= 1 && m.line >= 1);
    }
    let report = check(&manifests, &[], config, Some("east"), 1);
    let s = &report.summary;
    assert_eq!(s.objects, manifests.len());
    let count = |action: &str| {
        report
            .findings
            .iter()
            .filter(|f| f.action == action)
            .count()
    };
    assert_eq!(s.denied, count("deny"));
    assert_eq!(s.warned, count("warn"));
    assert_eq!(s.patched, count("patch"));
    // Denials come first.
    let first_other = report.findings.iter().position(|f| f.action != "deny");
    assert!(
        report
            .findings
            .iter()
            .skip(first_other.unwrap_or(report.findings.len()))
            .all(|f| f.action != "deny")
    );
    let text = render_text(&report);
    assert!(text.ends_with(&format!(
        "{} denied, {} warned, {} patched\n",
        s.denied, s.warned, s.patched
    )));
    serde_json::to_string_pretty(&report).expect("the JSON report serialises");
    if s.denied > 0 { 1 } else { 0 }
}

fuzz_target!(|bytes: &[u8]| {
    let config = PolicyConfig::default();
    for name in ["input.yaml", "input.json"] {
        let code = exit_code(name, bytes, &config);
        assert!(code <= 2);
    }
});
