//! Every object in the Stork examples reads into its typed struct and writes back without losing a field.
//! (An explicit `null` reads as absent, as it does in Go, so it is the one thing not written back.)

use std::path::{Path, PathBuf};

use drgitops::stork::{
    ClusterDomainUpdate, ClusterDomainsStatus, ClusterPair, Migration, MigrationSchedule,
    NamespacedSchedulePolicy, SchedulePolicy,
};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The Stork examples: byte-exact copies of Stork's own integration-test specs (see their `INDEX.md`).
fn examples_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/stork-examples")
}

fn without_nulls(v: &Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.iter()
                .filter(|(_, v)| !v.is_null())
                .map(|(k, v)| (k.clone(), without_nulls(v)))
                .collect(),
        ),
        Value::Array(a) => Value::Array(a.iter().map(without_nulls).collect()),
        other => other.clone(),
    }
}

fn round_trip<T: DeserializeOwned + Serialize>(original: &Value) -> Value {
    let typed: T = serde_json::from_value(original.clone()).unwrap();
    serde_json::to_value(&typed).unwrap()
}

fn round_trip_kind(original: &Value) -> Value {
    match original["kind"].as_str().unwrap() {
        "ClusterPair" => round_trip::<ClusterPair>(original),
        "Migration" => round_trip::<Migration>(original),
        "MigrationSchedule" => round_trip::<MigrationSchedule>(original),
        "SchedulePolicy" => round_trip::<SchedulePolicy>(original),
        "NamespacedSchedulePolicy" => round_trip::<NamespacedSchedulePolicy>(original),
        "ClusterDomainUpdate" => round_trip::<ClusterDomainUpdate>(original),
        "ClusterDomainsStatus" => round_trip::<ClusterDomainsStatus>(original),
        other => panic!("no typed struct for kind {other}"),
    }
}

fn yaml_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    files.sort();
    files
}

#[test]
fn every_shared_stork_example_round_trips() {
    let files = yaml_files(&examples_dir());
    assert_eq!(files.len(), 20, "the shared example set has 20 manifests");
    for file in files {
        let original: Value =
            serde_yaml::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
        let back = round_trip_kind(&original);
        assert_eq!(
            back,
            without_nulls(&original),
            "{} lost or changed a field",
            file.display()
        );
    }
}

#[test]
fn hand_written_fixtures_of_the_other_kinds_round_trip() {
    // The Stork repository has no YAML of these kinds; these fixtures follow its Go structs.
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/stork");
    let mut kinds = Vec::new();
    for file in yaml_files(&dir) {
        let text = std::fs::read_to_string(&file).unwrap();
        for doc in serde_yaml::Deserializer::from_str(&text) {
            let original = Value::deserialize(doc).unwrap();
            kinds.push(original["kind"].as_str().unwrap().to_string());
            assert_eq!(
                round_trip_kind(&original),
                without_nulls(&original),
                "{}",
                file.display()
            );
        }
    }
    for kind in [
        "ClusterPair",
        "NamespacedSchedulePolicy",
        "ClusterDomainUpdate",
        "ClusterDomainsStatus",
    ] {
        assert!(
            kinds.iter().any(|k| k == kind),
            "tests/data/stork has no {kind}"
        );
    }
}

#[test]
fn typed_fields_are_read() {
    let text = std::fs::read_to_string(
        examples_dir().join("test__integration_test__specs__storkctl-specs__migrationschedule__custom-sync-migration-schedule.yaml"),
    )
    .unwrap();
    let schedule: MigrationSchedule = serde_yaml::from_str(&text).unwrap();
    let spec = schedule.spec.as_ref().unwrap();
    assert_eq!(
        spec.schedule_policy_name.as_deref(),
        Some("default-daily-policy")
    );
    assert_eq!(spec.suspend, Some(true));
    let template = spec.template.as_ref().unwrap().spec.as_ref().unwrap();
    assert_eq!(template.start_applications, Some(true));
    assert_eq!(template.include_volumes, Some(false));
    assert_eq!(
        template.include_optional_resource_types.as_deref(),
        Some(&["Job".to_string()][..])
    );
    assert!(
        template.extra.is_empty(),
        "every MigrationSpec field is modelled: {:?}",
        template.extra
    );

    let pair_text = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/stork/clusterpair.yaml"),
    )
    .unwrap();
    let pair: ClusterPair = serde_yaml::Deserializer::from_str(&pair_text)
        .next()
        .map(|d| ClusterPair::deserialize(d).unwrap())
        .unwrap();
    let spec = pair.spec.as_ref().unwrap();
    assert!(spec.has_storage_options());
    let config = spec.config.as_ref().unwrap();
    assert_eq!(config.current_context.as_deref(), Some("remote"));
    assert!(config.clusters.as_ref().unwrap()["remote"].server.is_some());
}
