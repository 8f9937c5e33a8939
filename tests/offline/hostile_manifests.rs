//! `drgitops check` on manifests built to exhaust its reader: YAML alias bombs, nesting past the parser's depth,
//! files over the size cap and invalid UTF-8. Each is refused with exit code 2 and an error naming the file and
//! the limit, before it can take the memory it asks for (cases the `manifest_check` fuzz target found or guards).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn hostile(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/check/hostile")
        .join(name)
}

fn check(path: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_drgitops"))
        .arg("check")
        .arg(path)
        .output()
        .unwrap()
}

/// Exit code 2, nothing on stdout, and stderr naming the file and saying `what`.
fn refused(path: &Path, what: &str) {
    let out = check(path);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{}: {stderr}", path.display());
    assert!(
        out.stdout.is_empty(),
        "nothing is reported for unreadable input"
    );
    let name = path.file_name().unwrap().to_string_lossy();
    assert!(
        stderr.contains(&*name),
        "the error names the file: {stderr}"
    );
    assert!(stderr.contains(what), "expected {what:?} in: {stderr}");
}

#[test]
fn an_alias_repeated_a_thousand_times_is_refused_at_the_value_cap() {
    // 5 KB of text that would expand to a million values.
    refused(
        &hostile("alias-bomb.yaml"),
        "alias-bomb.yaml:7: invalid YAML: data.b[19][315]: the document expands to more than 20350 values",
    );
}

#[test]
fn the_billion_laughs_are_refused() {
    // The value cap stops it long before the parser's own repetition limit would.
    refused(
        &hostile("billion-laughs.yaml"),
        "billion-laughs.yaml:7: invalid YAML: data.e[0][3][2][2][7]: the document expands to more than 10992 values",
    );
}

#[test]
fn nesting_past_the_parsers_depth_is_refused() {
    refused(
        &hostile("deep-nesting.yaml"),
        "invalid YAML: recursion limit exceeded",
    );
}

#[test]
fn a_file_over_the_size_cap_is_refused_before_it_is_read() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("huge.yaml");
    // One scalar just over the cap: the reader must not even load it.
    let mut text =
        String::from("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: huge}\ndata:\n  a: ");
    text.push_str(&"x".repeat(drgitops::manifest::MAX_FILE_BYTES + 1 - text.len()));
    std::fs::write(&path, &text).unwrap();
    refused(
        &path,
        "8388609 bytes is over the limit of 8388608 bytes per manifest file",
    );
}

#[test]
fn invalid_utf8_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("latin1.yaml");
    std::fs::write(
        &path,
        b"apiVersion: v1\nkind: ConfigMap\nmetadata: {name: caf\xe9}\n",
    )
    .unwrap();
    refused(&path, "latin1.yaml: cannot read");
}
