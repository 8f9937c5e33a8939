//! `drgitops check` as a user runs it: the real binary on files, its exit code, its text and JSON reports.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

/// The Stork examples: byte-exact copies of Stork's own integration-test specs (see their `INDEX.md`).
fn stork_examples() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/stork-examples")
}

fn repo(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(path)
}

fn drgitops(args: &[&str], paths: &[&Path]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_drgitops"))
        .arg("check")
        .args(args)
        .args(paths)
        .output()
        .unwrap()
}

fn json_report(args: &[&str], paths: &[&Path]) -> (i32, Value) {
    let mut all = vec!["-o", "json"];
    all.extend_from_slice(args);
    let out = drgitops(&all, paths);
    let stdout = String::from_utf8(out.stdout).unwrap();
    let report: Value = serde_json::from_str(&stdout)
        .unwrap_or_else(|e| panic!("not one JSON document ({e}): {stdout}"));
    (out.status.code().unwrap(), report)
}

/// (rule, action, file name) of every finding.
fn triples(report: &Value) -> Vec<(String, String, String)> {
    report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            let file = Path::new(f["file"].as_str().unwrap())
                .file_name()
                .unwrap()
                .to_string_lossy()
                .into_owned();
            (
                f["rule"].as_str().unwrap().to_string(),
                f["action"].as_str().unwrap().to_string(),
                file,
            )
        })
        .collect()
}

fn files_with(report: &Value, rule: &str, action: &str) -> Vec<String> {
    let mut files: Vec<String> = triples(report)
        .into_iter()
        .filter(|(r, a, _)| r == rule && a == action)
        .map(|(_, _, f)| f)
        .collect();
    files.sort();
    files
}

const P: &str = "test__integration_test__specs__";

#[test]
fn stork_examples_deny_the_three_invalid_policies_and_the_sync_schedule() {
    let (code, report) = json_report(&[], &[&stork_examples()]);
    assert_eq!(code, 1, "{report:#}");
    assert_eq!(
        files_with(&report, "schedule-policy-syntax", "deny"),
        [
            format!("{P}mysql-migration-schedule-daily-invalid__schedulepolicy.yaml"),
            format!("{P}mysql-migration-schedule-monthly-invalid__schedulepolicy.yaml"),
            format!("{P}mysql-migration-schedule-weekly-invalid__schedulepolicy.yaml"),
        ]
    );
    assert_eq!(
        files_with(&report, "migration-start-applications", "deny"),
        [format!(
            "{P}storkctl-specs__migrationschedule__custom-sync-migration-schedule.yaml"
        )]
    );
    let denied: Vec<_> = triples(&report)
        .into_iter()
        .filter(|(_, a, _)| a == "deny")
        .collect();
    assert_eq!(denied.len(), 4, "nothing else is denied: {denied:#?}");

    // One-shot Migrations that start applications: warnings, not denials.
    assert_eq!(
        files_with(&report, "migration-start-applications", "warn"),
        [
            format!("{P}cassandra-migration-rule__migration.yaml"),
            format!("{P}exclude-multiple-resourcetypes-migration__migration.yaml"),
            format!("{P}mysql-migration-disallowed-ns__migration.yaml"),
            format!("{P}namespace-selector-migration__migration.yaml"),
        ]
    );
    // Schedules whose policy is neither in the set nor built in.
    assert_eq!(
        files_with(&report, "schedule-policy-exists", "warn"),
        [
            format!("{P}mysql-migration-schedule-interval-autosuspend__migrationschedule.yaml"),
            format!("{P}storkctl-specs__migrationschedule__custom-async-migration-schedule.yaml"),
        ]
    );
    assert_eq!(
        report["summary"],
        serde_json::json!({"files": 20, "objects": 20, "denied": 4, "warned": 6, "patched": 0})
    );
}

#[test]
fn invalid_policy_denials_name_field_value_and_fix() {
    let (_, report) = json_report(&[], &[&stork_examples()]);
    let daily = report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["name"] == "migrate-schedule-daily-invalid")
        .unwrap();
    assert_eq!(daily["field"], "policy.daily.time");
    assert_eq!(daily["kind"], "SchedulePolicy");
    assert_eq!(daily["apiVersion"], "stork.libopenstorage.org/v1alpha1");
    assert_eq!(daily["namespace"], Value::Null);
    assert_eq!(daily["document"], 1);
    let message = daily["message"].as_str().unwrap();
    assert!(
        message.contains("\"12:04\"") && message.contains("PM"),
        "{message}"
    );
}

#[test]
fn disallowed_namespace_migration_is_denied_with_another_namespace() {
    let file = stork_examples().join(format!("{P}mysql-migration-disallowed-ns__migration.yaml"));
    let (code, report) = json_report(&["-n", "mysql"], &[&file]);
    assert_eq!(code, 1);
    let scope: Vec<&Value> = report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["rule"] == "migration-namespace-scope")
        .collect();
    assert_eq!(scope.len(), 1, "{report:#}");
    assert_eq!(scope[0]["action"], "deny");
    assert_eq!(scope[0]["namespace"], "mysql");
    assert_eq!(scope[0]["field"], "spec.namespaces[0]");
    assert!(
        scope[0]["message"]
            .as_str()
            .unwrap()
            .contains("\"cassandra\"")
    );

    // In its own namespace, or without -n (the rule needs the namespace), it is not denied for its scope.
    let (code, report) = json_report(&["-n", "cassandra"], &[&file]);
    assert_eq!(
        (
            code,
            files_with(&report, "migration-namespace-scope", "deny").len()
        ),
        (0, 0)
    );
    let (code, report) = json_report(&[], &[&file]);
    assert_eq!(
        (
            code,
            files_with(&report, "migration-namespace-scope", "deny").len()
        ),
        (0, 0)
    );

    // Over the whole set, the disallowed Migration is among the denied ones.
    let (_, report) = json_report(&["-n", "mysql"], &[&stork_examples()]);
    assert!(
        files_with(&report, "migration-namespace-scope", "deny")
            .contains(&format!("{P}mysql-migration-disallowed-ns__migration.yaml"))
    );
}

#[test]
fn text_output_reads_like_kubectl_denials_first() {
    let out = drgitops(&[], &[&stork_examples()]);
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 11, "ten findings and a summary:\n{text}");
    let daily = lines.iter().find(|l| l.contains("daily-invalid")).unwrap();
    assert!(
        daily.contains("__schedulepolicy.yaml: SchedulePolicy/migrate-schedule-daily-invalid: [schedule-policy-syntax] "),
        "{daily}"
    );
    let first_warning = lines
        .iter()
        .position(|l| l.contains("] warning: "))
        .unwrap();
    assert!(
        lines[..first_warning]
            .iter()
            .all(|l| l.contains("] denied: ")),
        "{text}"
    );
    assert_eq!(
        lines[first_warning..10]
            .iter()
            .filter(|l| l.contains("] denied: "))
            .count(),
        0,
        "{text}"
    );
    assert_eq!(
        lines[10],
        "20 objects in 20 files: 4 denied, 6 warned, 0 patched"
    );
}

#[test]
fn example_setup_reports_its_deliberate_mistakes() {
    let (code, report) = json_report(&[], &[&repo("examples/dr-setup")]);
    assert_eq!(code, 1);
    let mut got = triples(&report);
    got.sort();
    let want = [
        ("clusterpair-options", "deny", "clusterpair.yaml"),
        ("migration-start-applications", "patch", "migrations.yaml"),
        ("migration-start-applications", "warn", "migrations.yaml"),
        ("schedule-policy-exists", "warn", "migrations.yaml"),
        ("schedule-policy-syntax", "deny", "schedule-policies.yaml"),
        ("single-default-storageclass", "deny", "storage.yaml"),
    ];
    let want: Vec<(String, String, String)> = want
        .iter()
        .map(|(r, a, f)| (r.to_string(), a.to_string(), f.to_string()))
        .collect();
    assert_eq!(got, want);
    let second = report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["rule"] == "single-default-storageclass")
        .unwrap();
    assert_eq!(
        second["name"], "px-replicated",
        "the second default is denied, naming the first"
    );
    assert!(second["message"].as_str().unwrap().contains("\"px-db\""));

    // As the standby domain, the application is created scaled to 0 instead.
    let (_, report) = json_report(
        &["--cluster-domain", "us-east-1b"],
        &[&repo("examples/dr-setup")],
    );
    assert_eq!(
        files_with(&report, "standby-scale-guard", "patch"),
        ["app.yaml"]
    );
    let (_, report) = json_report(
        &["--cluster-domain", "us-east-1a"],
        &[&repo("examples/dr-setup")],
    );
    assert!(files_with(&report, "standby-scale-guard", "patch").is_empty());
}

#[test]
fn cluster_state_and_policies_shape_the_result() {
    let schedule = repo("tests/data/check/schedule.yaml");
    // Without the cluster state the policy is not in the set: a warning, exit 0.
    let (code, report) = json_report(&[], &[&schedule]);
    assert_eq!(
        (
            code,
            files_with(&report, "schedule-policy-exists", "warn").len()
        ),
        (0, 1)
    );
    // The cluster state holds the policy and a default StorageClass.
    let state = repo("tests/data/check/state");
    let state_arg = state.to_str().unwrap();
    let (code, report) = json_report(&["--cluster-state", state_arg], &[&schedule]);
    assert_eq!((code, triples(&report).len()), (0, 0), "{report:#}");
    let class = repo("tests/data/check/default-class.yaml");
    let (code, report) = json_report(&["--cluster-state", state_arg], &[&class]);
    assert_eq!(code, 1);
    assert!(
        report["findings"][0]["message"]
            .as_str()
            .unwrap()
            .contains("\"standard\""),
        "{report:#}"
    );
    // A policy directory can turn a denial into a warning.
    let policies = repo("tests/data/check/policies-warn");
    let (code, report) = json_report(
        &[
            "--cluster-state",
            state_arg,
            "--policies",
            policies.to_str().unwrap(),
        ],
        &[&class],
    );
    assert_eq!(
        (
            code,
            files_with(&report, "single-default-storageclass", "warn").len()
        ),
        (0, 1)
    );
}

#[test]
fn clean_input_exits_zero() {
    let file = stork_examples().join(format!(
        "{P}mysql-migration-schedule-interval__schedulepolicy.yaml"
    ));
    let out = drgitops(&[], &[&file]);
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(
        String::from_utf8(out.stdout).unwrap(),
        "1 object in 1 file: 0 denied, 0 warned, 0 patched\n"
    );
}

#[test]
fn unreadable_input_exits_two_naming_file_and_line() {
    let broken = repo("tests/data/check/broken.yaml");
    for output in [&[][..], &["-o", "json"][..]] {
        let out = drgitops(output, &[&repo("examples/dr-setup"), &broken]);
        assert_eq!(out.status.code(), Some(2));
        assert!(
            out.stdout.is_empty(),
            "nothing is reported when input could not be read"
        );
        let stderr = String::from_utf8(out.stderr).unwrap();
        assert!(
            stderr.contains("tests/data/check/broken.yaml:10: invalid YAML"),
            "{stderr}"
        );
    }
    let out = drgitops(&[], &[&repo("tests/data/check/no-such-file.yaml")]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8(out.stderr)
            .unwrap()
            .contains("no-such-file.yaml: cannot read")
    );

    let out = drgitops(&[], &[&repo("tests/data/check/no-kind.yaml")]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(
        stderr.contains("no-kind.yaml:5: document 2 is not a Kubernetes object"),
        "{stderr}"
    );

    let out = drgitops(&["-o", "yaml"], &[&repo("examples/dr-setup")]);
    assert_eq!(out.status.code(), Some(2), "a usage error");
    let out = Command::new(env!("CARGO_BIN_EXE_drgitops"))
        .arg("check")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "no path is a usage error");
}

#[test]
fn json_lists_and_lists_kinds_are_read() {
    let (code, report) = json_report(&[], &[&repo("tests/data/check/list.json")]);
    assert_eq!(code, 1);
    assert_eq!(report["summary"]["objects"], 2);
    assert_eq!(
        files_with(&report, "schedule-policy-syntax", "deny"),
        ["list.json"]
    );
    assert_eq!(report["findings"][0]["name"], "thursday-late");
    assert_eq!(report["findings"][0]["field"], "policy.weekly.time");
}

#[test]
fn clusterpair_placeholders_from_storks_docs_are_denied_where_they_are() {
    let (code, report) = json_report(&[], &[&repo("tests/data/check/clusterpair-docs.yaml")]);
    assert_eq!(code, 1);
    let mut got: Vec<String> = report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            assert_eq!(
                (&f["rule"], &f["action"]),
                (&"clusterpair-options".into(), &"deny".into())
            );
            format!(
                "{} {}",
                f["name"].as_str().unwrap(),
                f["field"].as_str().unwrap()
            )
        })
        .collect();
    got.sort();
    let want = [
        "remotecluster spec.config.clusters.kubernetes.certificate-authority-data",
        "remotecluster spec.config.users.kubernetes-admin.client-certificate-data",
        "remotecluster spec.config.users.kubernetes-admin.client-key-data",
        "remotecluster spec.options[\"<insert_storage_options_here>\"]",
        "remotecluster-dr spec.config.users.kubernetes-admin.token",
        "remotecluster-dr spec.options.ip",
        "remotecluster-dr spec.options.port",
        "remotecluster-dr spec.options.token",
    ];
    assert_eq!(got, want, "{report:#}");

    // Each line names the field and what to put there, as kubectl would print the denial.
    let out = drgitops(&[], &[&repo("tests/data/check/clusterpair-docs.yaml")]);
    let text = String::from_utf8(out.stdout).unwrap();
    for expected in [
        "denied: spec.options.ip: \"<ip_of_remote_px_node>\" is a placeholder left from Stork's docs: set the \
         address of a Portworx node of the destination cluster",
        "denied: spec.config.clusters.kubernetes.certificate-authority-data: \"<CA_DATA>\" is a placeholder left \
         from Stork's docs: set the destination API server's CA certificate",
        "denied: spec.options[\"<insert_storage_options_here>\"]: placeholder printed in Stork's docs: replace it \
         with the destination's storage options",
    ] {
        assert!(text.contains(expected), "{expected}\n{text}");
    }
}
