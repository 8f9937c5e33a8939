//! Writes the seed corpora of the fuzz targets from the project's test fixtures, so the seeds follow the fixtures.
//!
//! `seed FIXTURES CORPUS`: reads every `*.yaml`, `*.yml` and `*.json` file under FIXTURES (the repository's
//! `tests/data`) and writes `CORPUS/<target>/<file>` for each target that takes such text:
//! - `admission_review`: the AdmissionReview fixtures as they are, and every object of the YAML fixtures wrapped
//!   in a CREATE review and an UPDATE review (itself as the old object);
//! - `manifest_check`: every fixture file as it is;
//! - `failover_edit`: every file holding a DRPlan;
//! - `plan_render`: every DRPlan document on its own.
//!
//! `schedule_policy` takes structured input and starts from libFuzzer's own.

use std::path::{Path, PathBuf};

use serde_json::{Value, json};

/// Larger fixtures only slow the fuzzers down.
const MAX_SEED_BYTES: u64 = 64 * 1024;

fn walk(dir: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)?
        .map(|e| e.map(|e| e.path()))
        .collect::<Result<_, _>>()?;
    entries.sort();
    for path in entries {
        if path.is_dir() {
            walk(&path, out)?;
        } else if path
            .extension()
            .is_some_and(|e| e == "yaml" || e == "yml" || e == "json")
            && std::fs::metadata(&path)?.len() <= MAX_SEED_BYTES
        {
            out.push(path);
        }
    }
    Ok(())
}

/// The AdmissionReview kube-apiserver would send for `object`.
fn review(object: &Value, operation: &str, uid: &str) -> Value {
    let api_version = object
        .get("apiVersion")
        .and_then(Value::as_str)
        .unwrap_or("v1");
    let (group, version) = api_version.rsplit_once('/').unwrap_or(("", api_version));
    let kind = object.get("kind").and_then(Value::as_str).unwrap_or("");
    let resource = format!("{}s", kind.to_ascii_lowercase());
    let metadata = object.get("metadata");
    let name = metadata
        .and_then(|m| m.get("name"))
        .cloned()
        .unwrap_or(Value::Null);
    let namespace = metadata
        .and_then(|m| m.get("namespace"))
        .cloned()
        .unwrap_or(Value::Null);
    let old = if operation == "UPDATE" {
        object.clone()
    } else {
        Value::Null
    };
    json!({
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": uid,
            "kind": {"group": group, "version": version, "kind": kind},
            "resource": {"group": group, "version": version, "resource": resource},
            "name": name,
            "namespace": namespace,
            "operation": operation,
            "userInfo": {"username": "alice", "groups": ["system:authenticated"]},
            "object": object,
            "oldObject": old,
            "dryRun": false,
        }
    })
}

fn write(corpus: &Path, target: &str, name: &str, bytes: &[u8]) -> std::io::Result<()> {
    let dir = corpus.join(target);
    std::fs::create_dir_all(&dir)?;
    std::fs::write(dir.join(name), bytes)
}

fn main() -> std::io::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let [_, fixtures, corpus] = args.as_slice() else {
        eprintln!("usage: seed FIXTURES CORPUS");
        std::process::exit(2);
    };
    let (fixtures, corpus) = (Path::new(fixtures), Path::new(corpus));
    let mut files = Vec::new();
    walk(fixtures, &mut files)?;
    let mut counts = std::collections::BTreeMap::<&str, usize>::new();
    for path in &files {
        let bytes = std::fs::read(path)?;
        let rel = path
            .strip_prefix(fixtures)
            .unwrap_or(path)
            .to_string_lossy()
            .replace('/', "__");
        write(corpus, "manifest_check", &rel, &bytes)?;
        *counts.entry("manifest_check").or_default() += 1;
        let Ok(text) = std::str::from_utf8(&bytes) else {
            continue;
        };
        if rel.ends_with(".json") {
            if text.contains("admission.k8s.io/v1") {
                write(corpus, "admission_review", &rel, &bytes)?;
                *counts.entry("admission_review").or_default() += 1;
            }
            continue;
        }
        if text.contains("kind: DRPlan") {
            write(corpus, "failover_edit", &rel, &bytes)?;
            *counts.entry("failover_edit").or_default() += 1;
        }
        for doc in drgitops::manifest::documents(text) {
            let Ok(object) = serde_yaml::from_str::<Value>(doc.text) else {
                continue;
            };
            if !object.get("kind").is_some_and(Value::is_string) {
                continue;
            }
            for operation in ["CREATE", "UPDATE"] {
                let name = format!(
                    "{rel}.{}.{}.json",
                    doc.number,
                    operation.to_ascii_lowercase()
                );
                let body = serde_json::to_vec(&review(
                    &object,
                    operation,
                    &format!("uid-{}", doc.number),
                ))?;
                write(corpus, "admission_review", &name, &body)?;
                *counts.entry("admission_review").or_default() += 1;
            }
            if object.get("kind").and_then(Value::as_str) == Some("DRPlan") {
                write(
                    corpus,
                    "plan_render",
                    &format!("{rel}.{}.yaml", doc.number),
                    doc.text.as_bytes(),
                )?;
                *counts.entry("plan_render").or_default() += 1;
            }
        }
    }
    for (target, n) in counts {
        println!("seeded {target}: {n} inputs");
    }
    Ok(())
}
