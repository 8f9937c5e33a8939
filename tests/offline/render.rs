//! `drgitops render` as Argo CD's config-management plugin runs it: a YAML stream on stdout from a git revision or
//! a plain directory; on any error nothing on stdout, the reason on stderr, a non-zero exit.

use std::process::{Command, Output};

use serde_json::Value;
use testkit::reconcile::{commit, gitops_data as read_data, plan_repo};
use testkit::{EAST, WEST, git, repo_file};

fn render(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_drgitops"))
        .arg("render")
        .args(args)
        .output()
        .expect("drgitops runs")
}

fn documents(stdout: &[u8]) -> Vec<Value> {
    let text = std::str::from_utf8(stdout).expect("utf-8");
    serde_yaml::Deserializer::from_str(text)
        .map(|doc| serde::Deserialize::deserialize(doc).expect("yaml document"))
        .filter(|v: &Value| !v.is_null())
        .collect()
}

fn find<'a>(docs: &'a [Value], kind: &str, name: &str) -> &'a Value {
    docs.iter()
        .find(|d| d["kind"] == kind && d["metadata"]["name"] == name)
        .unwrap_or_else(|| panic!("{kind} {name} in {docs:#?}"))
}

#[test]
fn renders_plans_and_credential_free_objects_for_a_domain() {
    let repo = plan_repo();
    let path = repo.path().display().to_string();
    let out = render(&[
        "--repo",
        &path,
        "--rev",
        "HEAD",
        "--path",
        "plans",
        "--cluster-domain",
        WEST,
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let docs = documents(&out.stdout);
    assert_eq!(
        docs.len(),
        6,
        "two plans, each with its policy and schedule"
    );
    assert!(
        docs.iter().all(|d| d["kind"] != "ClusterPair"),
        "ClusterPairs carry credentials and are never printed"
    );
    let schedule = find(&docs, "MigrationSchedule", "mysql");
    assert_eq!(schedule["spec"]["suspend"], true, "{WEST} is the standby");
    assert_eq!(
        schedule["spec"]["template"]["spec"]["startApplications"],
        false
    );
    assert_eq!(schedule["metadata"]["labels"]["drgitops.dev/plan"], "mysql");
    assert_eq!(find(&docs, "DRPlan", "postgres")["spec"]["mode"], "metro");

    let primary = render(&["--repo", &path, "--path", "plans", "--cluster-domain", EAST]);
    assert!(primary.status.success());
    assert_eq!(
        find(&documents(&primary.stdout), "MigrationSchedule", "mysql")["spec"]["suspend"],
        false
    );
}

#[test]
fn renders_an_older_revision() {
    let repo = plan_repo();
    let first = git(repo.path(), &["rev-parse", "HEAD"]);
    let edited =
        read_data("plans/mysql.yaml").replace("intervalMinutes: 15", "intervalMinutes: 60");
    commit(repo.path(), &[("plans/mysql.yaml", &edited)], "hourly");
    let path = repo.path().display().to_string();
    let old = render(&[
        "--repo",
        &path,
        "--rev",
        &first,
        "--path",
        "plans",
        "--cluster-domain",
        EAST,
    ]);
    assert!(
        old.status.success(),
        "{}",
        String::from_utf8_lossy(&old.stderr)
    );
    assert_eq!(
        find(&documents(&old.stdout), "NamespacedSchedulePolicy", "mysql")["policy"]["interval"]["intervalMinutes"],
        15
    );
    let url = format!("file://{path}");
    let new = render(&["--repo", &url, "--path", "plans", "--cluster-domain", EAST]);
    assert!(
        new.status.success(),
        "{}",
        String::from_utf8_lossy(&new.stderr)
    );
    assert_eq!(
        find(&documents(&new.stdout), "NamespacedSchedulePolicy", "mysql")["policy"]["interval"]["intervalMinutes"],
        60
    );
}

#[test]
fn errors_print_nothing_on_stdout() {
    let repo = plan_repo();
    let broken = read_data("plans/mysql.yaml").replace("primary: us-east-1a", "primary: us-west-2");
    commit(repo.path(), &[("plans/mysql.yaml", &broken)], "typo");
    let path = repo.path().display().to_string();
    let out = render(&[
        "--repo",
        &path,
        "--rev",
        "HEAD",
        "--path",
        "plans",
        "--cluster-domain",
        EAST,
    ]);
    assert!(!out.status.success());
    assert!(
        out.stdout.is_empty(),
        "nothing on stdout: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("plans/mysql.yaml:8: spec.primary"),
        "{stderr}"
    );

    let empty = tempfile::tempdir().expect("tmp");
    std::fs::create_dir(empty.path().join("plans")).expect("mkdir");
    let out = render(&[
        "--repo",
        &empty.path().display().to_string(),
        "--path",
        "plans",
        "--cluster-domain",
        EAST,
    ]);
    assert!(
        !out.status.success(),
        "an empty render is an error, never an empty stream"
    );
    assert!(out.stdout.is_empty());
    assert!(String::from_utf8_lossy(&out.stderr).contains("no DRPlan"));

    let out = render(&[
        "--repo",
        &path,
        "--rev",
        "no-such-rev",
        "--cluster-domain",
        EAST,
    ]);
    assert!(!out.status.success());
    assert!(out.stdout.is_empty());
}

#[test]
fn renders_a_single_file() {
    let repo = plan_repo();
    let path = repo.path().display().to_string();
    for rev in [None, Some("HEAD")] {
        let mut args = vec![
            "--repo",
            path.as_str(),
            "--path",
            "plans/mysql.yaml",
            "--cluster-domain",
            EAST,
        ];
        if let Some(rev) = rev {
            args.extend(["--rev", rev]);
        }
        let out = render(&args);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(
            documents(&out.stdout).len(),
            3,
            "one plan, its policy and its schedule"
        );
    }
}

#[test]
fn renders_a_plain_directory() {
    let out = render(&[
        "--repo",
        &repo_file("tests/data/gitops").display().to_string(),
        "--path",
        "plans",
        "--cluster-domain",
        EAST,
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(documents(&out.stdout).len(), 6);
}

#[test]
fn renders_with_the_admin_namespace_it_is_given() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(
        repo_file("tests/data/failover/admin-plan.yaml"),
        dir.path().join("shops.yaml"),
    )
    .unwrap();
    let repo = dir.path().display().to_string();
    let out = render(&["--repo", &repo, "--cluster-domain", EAST]);
    assert!(!out.status.success());
    assert!(out.stdout.is_empty());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("Stork admin namespace \"kube-system\""),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = render(&[
        "--repo",
        &repo,
        "--cluster-domain",
        EAST,
        "--admin-namespace",
        "stork-admin",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let docs = documents(&out.stdout);
    assert_eq!(find(&docs, "DRPlan", "shops")["spec"]["primary"], EAST);
}
