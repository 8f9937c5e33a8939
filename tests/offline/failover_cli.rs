//! `drgitops failover` against real Git repositories made with the `git` CLI, running the real binary.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn data(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/failover")
        .join(name)
}

fn git(repo: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .arg("-C")
        .arg(repo)
        .args(args)
        .output()
        .expect("git runs");
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .trim_end()
        .to_string()
}

/// A repository whose first commit holds the given files (name in `tests/data/failover` -> path in the repo).
fn repo(files: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    git(root, &["init", "-q", "-b", "main"]);
    git(root, &["config", "user.name", "Dee Arr"]);
    git(root, &["config", "user.email", "dr@example.com"]);
    git(root, &["config", "commit.gpgsign", "false"]);
    for (source, target) in files {
        let path = root.join(target);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::copy(data(source), &path).unwrap();
    }
    git(root, &["add", "."]);
    git(root, &["commit", "-q", "-m", "plans"]);
    dir
}

/// `drgitops failover --repo <repo> <args>`, with no cluster to read (`DRGITOPS_NO_LIVE`) and none of the
/// caller's `DRGITOPS_*` or kubeconfig settings.
fn failover(repo: &Path, args: &[&str]) -> Output {
    failover_env(repo, args, &[("DRGITOPS_NO_LIVE", "true")])
}

fn failover_env(repo: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_drgitops"));
    command
        .arg("failover")
        .arg("--repo")
        .arg(repo)
        .args(args)
        .env("HOME", repo);
    for (key, _) in std::env::vars() {
        if key.starts_with("DRGITOPS_") || key.starts_with("KUBERNETES_") || key == "KUBECONFIG" {
            command.env_remove(key);
        }
    }
    command.envs(env.iter().copied());
    command.output().expect("drgitops runs")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn failover_edits_the_primary_in_place_and_commits() {
    let dir = repo(&[
        ("async.yaml", "plans/mysql.yaml"),
        ("metro.yaml", "plans/shop.yaml"),
    ]);
    let root = dir.path();
    let before = std::fs::read_to_string(root.join("plans/mysql.yaml")).unwrap();
    let out = failover(root, &["--plan", "mysql", "--to", "us-east-1b"]);
    assert!(out.status.success(), "stderr: {}", text(&out.stderr));
    let stdout = text(&out.stdout);
    let head = git(root, &["rev-parse", "HEAD"]);
    assert!(
        stdout.starts_with("failover mysql: us-east-1a -> us-east-1b\n"),
        "{stdout}"
    );
    assert!(
        stdout.contains("edited plans/mysql.yaml: spec.primary us-east-1a -> us-east-1b"),
        "{stdout}"
    );
    assert!(
        stdout.contains(&format!("committed {head} on main")),
        "{stdout}"
    );

    assert_eq!(
        git(root, &["log", "-1", "--format=%s"]),
        "failover mysql: us-east-1a -> us-east-1b"
    );
    assert_eq!(
        git(root, &["log", "-1", "--format=%an <%ae>|%cn <%ce>"]),
        "Dee Arr <dr@example.com>|Dee Arr <dr@example.com>"
    );
    // Exactly one line changed, comments and layout intact.
    assert_eq!(
        git(root, &["diff", "--numstat", "HEAD~1", "HEAD"]),
        "1\t1\tplans/mysql.yaml"
    );
    let after = std::fs::read_to_string(root.join("plans/mysql.yaml")).unwrap();
    assert_eq!(
        after,
        before.replace(
            "primary: us-east-1a   # runs",
            "primary: us-east-1b   # runs"
        )
    );
    assert_eq!(git(root, &["status", "--porcelain"]), "");

    // Failback with a message: the subject still names plan, from and to.
    let out = failover(
        root,
        &[
            "--plan",
            "mysql",
            "--to",
            "us-east-1a",
            "--message",
            "site A is back",
        ],
    );
    assert!(out.status.success(), "stderr: {}", text(&out.stderr));
    assert_eq!(
        git(root, &["log", "-1", "--format=%B"]),
        "failover mysql: us-east-1b -> us-east-1a\n\nsite A is back"
    );
    assert_eq!(
        std::fs::read_to_string(root.join("plans/mysql.yaml")).unwrap(),
        before
    );
}

#[test]
fn metro_failover_deactivates_the_failed_domain() {
    let dir = repo(&[("metro.yaml", "shop.yaml")]);
    let root = dir.path();
    let out = failover(
        root,
        &[
            "--plan",
            "shop",
            "--to",
            "us-east-1b",
            "--deactivate",
            "us-east-1a",
        ],
    );
    assert!(out.status.success(), "stderr: {}", text(&out.stderr));
    assert_eq!(
        git(root, &["log", "-1", "--format=%s"]),
        "failover shop: us-east-1a -> us-east-1b (deactivate us-east-1a)"
    );
    let after = std::fs::read_to_string(root.join("shop.yaml")).unwrap();
    assert!(after.contains("  primary: us-east-1b\n"));
    assert!(
        after.contains("- {name: us-east-1a, active: false}   # stretched storage, site A\n"),
        "{after}"
    );
    assert!(after.contains("- {name: us-east-1b, active: true}   # site B\n"));
    assert!(text(&out.stdout).contains("spec.domains us-east-1a active: false"));

    // Failing back onto the domain now marked inactive is what validation rejects for metro.
    let head = git(root, &["rev-parse", "HEAD"]);
    let out = failover(root, &["--plan", "shop", "--to", "us-east-1a"]);
    assert!(!out.status.success());
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("spec.primary") && stderr.contains("active: false"),
        "{stderr}"
    );
    assert_eq!(git(root, &["rev-parse", "HEAD"]), head);
    assert_eq!(
        git(root, &["status", "--porcelain"]),
        "",
        "a refused change leaves the file untouched"
    );
}

#[test]
fn refuses_a_dirty_work_tree() {
    let dir = repo(&[("async.yaml", "mysql.yaml")]);
    let root = dir.path();
    let head = git(root, &["rev-parse", "HEAD"]);
    std::fs::write(root.join("notes.txt"), "wip\n").unwrap();
    let out = failover(root, &["--plan", "mysql", "--to", "us-east-1b"]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("uncommitted changes (notes.txt)"),
        "{stderr}"
    );
    assert_eq!(git(root, &["rev-parse", "HEAD"]), head);
    assert!(
        std::fs::read_to_string(root.join("mysql.yaml"))
            .unwrap()
            .contains("primary: us-east-1a")
    );
}

#[test]
fn refuses_an_unknown_domain_and_an_unknown_or_ambiguous_plan() {
    let dir = repo(&[
        ("async.yaml", "a/mysql.yaml"),
        ("async.yaml", "b/mysql-copy.yml"),
    ]);
    let root = dir.path();
    let out = failover(root, &["--plan", "mysql", "--to", "us-east-1b"]);
    assert!(!out.status.success());
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains(
            "several DRPlans are named mysql (a/mysql.yaml document 1, b/mysql-copy.yml document 1)"
        ),
        "{stderr}"
    );

    let out = failover(root, &["--plan", "nope", "--to", "us-east-1b"]);
    assert!(
        text(&out.stderr).contains("no DRPlan named nope"),
        "{}",
        text(&out.stderr)
    );

    git(root, &["rm", "-q", "b/mysql-copy.yml"]);
    git(root, &["commit", "-q", "-m", "one plan"]);
    let head = git(root, &["rev-parse", "HEAD"]);
    let out = failover(root, &["--plan", "mysql", "--to", "eu-west-1a"]);
    assert!(!out.status.success());
    assert!(
        text(&out.stderr)
            .contains("unknown domain eu-west-1a: spec.domains has [us-east-1a, us-east-1b]"),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(git(root, &["rev-parse", "HEAD"]), head);
}

#[test]
fn failover_validates_with_the_admin_namespace_it_is_given() {
    let dir = repo(&[("admin-plan.yaml", "plans/shops.yaml")]);
    let root = dir.path();
    let out = failover(root, &["--plan", "shops", "--to", "us-east-1b"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stdout));
    assert!(
        text(&out.stderr).contains(
            "only a plan in the Stork admin namespace \"kube-system\" may protect other namespaces"
        ),
        "{}",
        text(&out.stderr)
    );
    let out = failover(
        root,
        &[
            "--plan",
            "shops",
            "--to",
            "us-east-1b",
            "--admin-namespace",
            "stork-admin",
        ],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let plan = std::fs::read_to_string(root.join("plans/shops.yaml")).unwrap();
    assert!(plan.contains("primary: us-east-1b"), "{plan}");
}

/// The file with `declaredAt` (the time of the run) checked to lie between `before` and `after` and replaced by
/// the fixture's time, so it can be compared with the fixture.
fn with_fixture_declared_at(text: &str, before: jiff::Timestamp, after: jiff::Timestamp) -> String {
    let line = text
        .lines()
        .find(|l| l.trim_start().starts_with("declaredAt: "))
        .unwrap_or_else(|| panic!("no declaredAt in\n{text}"));
    let value = line.trim_start().trim_start_matches("declaredAt: ");
    let at: jiff::Timestamp = value.trim_matches('"').parse().unwrap();
    assert_eq!(
        value,
        format!(
            "\"{}\"",
            jiff::Timestamp::from_second(at.as_second()).unwrap()
        ),
        "RFC 3339 to the second, UTC, quoted"
    );
    assert!(
        jiff::Timestamp::from_second(before.as_second()).unwrap() <= at && at <= after,
        "{at} not within the run"
    );
    text.replacen(value, "\"2026-11-22T16:05:00Z\"", 1)
}

#[test]
fn a_declared_disaster_is_written_in_place_and_cleared_by_the_next_planned_failover() {
    let dir = repo(&[("async.yaml", "plans/mysql.yaml")]);
    let root = dir.path();
    let before = jiff::Timestamp::now();
    let out = failover(
        root,
        &[
            "--plan",
            "mysql",
            "--to",
            "us-east-1b",
            "--disaster",
            "-m",
            "site A lost power: \"no ETA\"",
        ],
    );
    let after = jiff::Timestamp::now();
    assert!(out.status.success(), "stderr: {}", text(&out.stderr));
    let head = git(root, &["rev-parse", "HEAD"]);
    assert_eq!(
        text(&out.stdout),
        format!(
            "failover mysql: us-east-1a -> us-east-1b (disaster declared: us-east-1a lost)\n\
             \x20 us-east-1b starts at once from its last migrated copy (data age unknown); us-east-1a is not waited \
             for and runs no final migration; when it returns it stops its applications\n\
             \x20 live state unknown: not read (--no-live)\n\
             \x20 edited plans/mysql.yaml: spec.primary us-east-1a -> us-east-1b\n\
             \x20 edited plans/mysql.yaml: spec.failover.disaster lost us-east-1a\n\
             \x20 committed {head} on main\n"
        )
    );
    // Comments, quoting and layout kept: the fixture is the expected file (without the data age, which only a
    // live status gives).
    let written = std::fs::read_to_string(root.join("plans/mysql.yaml")).unwrap();
    let expected = std::fs::read_to_string(data("async-disaster.yaml"))
        .unwrap()
        .replace("      dataAsOf: \"2026-11-22T15:53:00Z\"\n", "");
    assert_eq!(with_fixture_declared_at(&written, before, after), expected);
    assert_eq!(
        git(root, &["log", "-1", "--format=%B"]),
        "failover mysql: us-east-1a -> us-east-1b (disaster declared: us-east-1a lost)\n\n\
         site A lost power: \"no ETA\"\n\n\
         Data age: unknown (no reachable cluster reported a migration: the live status was not read (--no-live))"
    );
    assert_eq!(git(root, &["status", "--porcelain"]), "");

    // The failback is planned: the declaration goes, and the file is the original again.
    let out = failover(root, &["--plan", "mysql", "--to", "us-east-1a"]);
    assert!(out.status.success(), "stderr: {}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(
        stdout.contains(
            "\n  us-east-1b stops its applications, waits for its pods to stop, runs a final migration to \
             us-east-1a; us-east-1a starts once it succeeded (nothing is lost)\n"
        ),
        "{stdout}"
    );
    assert!(
        stdout.contains("\n  edited plans/mysql.yaml: spec.failover.disaster removed\n"),
        "{stdout}"
    );
    assert_eq!(
        git(root, &["log", "-1", "--format=%B"]),
        "failover mysql: us-east-1b -> us-east-1a"
    );
    assert_eq!(
        std::fs::read_to_string(root.join("plans/mysql.yaml")).unwrap(),
        std::fs::read_to_string(data("async.yaml")).unwrap()
    );
}

#[test]
fn the_declaration_records_the_data_age_of_the_live_status() {
    use drgitops::cli::failover::{FailoverRequest, Live, failover_with};
    use drgitops::manifest::edit::Declaration;
    use drgitops::plan::types::{DRPlanStatus, MigrationRecord};

    let dir = repo(&[("async.yaml", "plans/mysql.yaml")]);
    let root = dir.path();
    let live = Live::Read(Box::new(DRPlanStatus {
        local_domain: Some("us-east-1b".into()),
        last_migration: Some(MigrationRecord {
            name: "mysql-interval-2026-11-22-154500".into(),
            status: Some("Successful".into()),
            finished_at: Some("2026-11-22T15:53:00.412Z".into()),
            from: Some("us-east-1a".into()),
            ..Default::default()
        }),
        ..Default::default()
    }));
    let request = FailoverRequest {
        plan: "mysql",
        to: "us-east-1b",
        deactivate: None,
        disaster: true,
        message: Some("site A lost power: \"no ETA\""),
        admin_namespace: "kube-system",
    };
    let now: jiff::Timestamp = "2026-11-22T16:05:00.750Z".parse().unwrap();
    let report = failover_with(root, &request, &live, now).unwrap();
    assert_eq!(report.declaration, Declaration::Declared);
    assert_eq!(
        std::fs::read_to_string(root.join("plans/mysql.yaml")).unwrap(),
        std::fs::read_to_string(data("async-disaster.yaml")).unwrap()
    );
    assert_eq!(
        git(root, &["log", "-1", "--format=%B"]),
        "failover mysql: us-east-1a -> us-east-1b (disaster declared: us-east-1a lost)\n\n\
         site A lost power: \"no ETA\"\n\n\
         Data as of: 2026-11-22T15:53:00Z (12m old)"
    );
    assert_eq!(report.message, git(root, &["log", "-1", "--format=%B"]));
}

#[test]
fn metro_disaster_needs_the_lost_domain_deactivated() {
    let dir = repo(&[("metro.yaml", "shop.yaml")]);
    let root = dir.path();
    let head = git(root, &["rev-parse", "HEAD"]);
    let out = failover(
        root,
        &["--plan", "shop", "--to", "us-east-1b", "--disaster"],
    );
    assert_eq!(out.status.code(), Some(2));
    let stderr = text(&out.stderr);
    let command = format!(
        "drgitops failover --repo {} --plan shop --to us-east-1b --deactivate us-east-1a --disaster",
        root.display()
    );
    assert!(
        stderr.contains("metro: --disaster does not fence the stretched storage by itself")
            && stderr.trim_end().ends_with(&command),
        "{stderr}"
    );
    assert_eq!(git(root, &["rev-parse", "HEAD"]), head);
    assert_eq!(git(root, &["status", "--porcelain"]), "");

    // The command it names, with the declaration from the environment.
    let out = failover_env(
        root,
        &[
            "--plan",
            "shop",
            "--to",
            "us-east-1b",
            "--deactivate",
            "us-east-1a",
        ],
        &[("DRGITOPS_NO_LIVE", "true"), ("DRGITOPS_DISASTER", "true")],
    );
    assert!(out.status.success(), "stderr: {}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(
        stdout.starts_with(
            "failover shop: us-east-1a -> us-east-1b (disaster declared: us-east-1a lost; deactivate us-east-1a)\n  \
             storage domain us-east-1a is deactivated; then us-east-1b starts at once from its last migrated copy"
        ),
        "{stdout}"
    );
    let after = std::fs::read_to_string(root.join("shop.yaml")).unwrap();
    assert!(
        after.contains("- {name: us-east-1a, active: false}   # stretched storage, site A\n"),
        "{after}"
    );
    // `spec.failover` did not exist: it is added as the last key of spec, holding the declaration.
    assert!(
        after.contains(
            "    includeVolumes: false   # metro: volumes are already there\n  failover:\n    disaster:\n      \
             lost: us-east-1a\n      declaredAt: \""
        ),
        "{after}"
    );
}

#[test]
fn a_disaster_declared_after_a_planned_failover_names_the_old_primary_lost() {
    // The planned failover is committed, but the old primary never answers: the new primary Stalls and prints
    // `drgitops failover --plan mysql --to us-east-1b --disaster`, which must work as printed.
    let dir = repo(&[("async.yaml", "mysql.yaml")]);
    let root = dir.path();
    let planned = failover(root, &["--plan", "mysql", "--to", "us-east-1b"]);
    assert!(planned.status.success(), "{}", text(&planned.stderr));
    let out = failover(
        root,
        &["--plan", "mysql", "--to", "us-east-1b", "--disaster"],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(
        stdout.starts_with(
            "failover mysql: us-east-1a -> us-east-1b (disaster declared: us-east-1a lost)\n"
        ),
        "{stdout}"
    );
    assert!(
        !stdout.contains("spec.primary"),
        "the primary is unchanged: {stdout}"
    );
    assert!(
        stdout.contains("spec.failover.disaster lost us-east-1a"),
        "{stdout}"
    );
    let after = std::fs::read_to_string(root.join("mysql.yaml")).unwrap();
    assert!(after.contains("primary: us-east-1b"), "{after}");
    assert!(after.contains("      lost: us-east-1a\n"), "{after}");
}

#[test]
fn a_disaster_declaring_the_new_primary_lost_is_refused() {
    let dir = repo(&[("async.yaml", "mysql.yaml")]);
    let root = dir.path();
    let head = git(root, &["rev-parse", "HEAD"]);
    let out = failover(
        root,
        &["--plan", "mysql", "--to", "us-east-1c", "--disaster"],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("unknown domain us-east-1c"),
        "{}",
        text(&out.stderr)
    );
    assert!(
        out.stdout.is_empty(),
        "nothing previewed: {}",
        text(&out.stdout)
    );
    assert_eq!(git(root, &["rev-parse", "HEAD"]), head);
}

#[test]
fn a_flow_style_failover_is_refused_for_a_declaration_and_left_alone_otherwise() {
    let dir = repo(&[("flow-failover.yaml", "mysql.yaml")]);
    let root = dir.path();
    let head = git(root, &["rev-parse", "HEAD"]);
    let out = failover(
        root,
        &["--plan", "mysql", "--to", "us-east-1b", "--disaster"],
    );
    assert_eq!(out.status.code(), Some(2));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains(
            "plan mysql in mysql.yaml: cannot edit in place: spec.failover is written in flow style"
        ) && stderr.contains(
            "edit the plan by hand (spec.primary: us-east-1b, spec.failover.disaster: {lost: us-east-1a, \
             declaredAt: \""
        ),
        "{stderr}"
    );
    assert_eq!(git(root, &["rev-parse", "HEAD"]), head);
    assert_eq!(git(root, &["status", "--porcelain"]), "");

    let out = failover(root, &["--plan", "mysql", "--to", "us-east-1b"]);
    assert!(out.status.success(), "stderr: {}", text(&out.stderr));
    assert_eq!(
        git(root, &["diff", "--numstat", "HEAD~1", "HEAD"]),
        "1\t1\tmysql.yaml"
    );
}

#[test]
fn the_reparse_proof_refuses_an_edit_that_would_change_anything_else() {
    let dir = repo(&[("misleading.yaml", "billing.yaml")]);
    let root = dir.path();
    let head = git(root, &["rev-parse", "HEAD"]);
    let out = failover(
        root,
        &["--plan", "billing", "--to", "us-east-1b", "--disaster"],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains(
            "cannot edit in place: the layout of spec is not one the in-place editor can change safely: the \
             edited text would change more than the intended fields; edit the plan by hand"
        ),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(git(root, &["rev-parse", "HEAD"]), head);
    assert_eq!(
        std::fs::read_to_string(root.join("billing.yaml")).unwrap(),
        std::fs::read_to_string(data("misleading.yaml")).unwrap()
    );
}

#[test]
fn an_unreachable_cluster_does_not_stop_the_failover() {
    let dir = repo(&[("async.yaml", "mysql.yaml")]);
    let root = dir.path();
    // Port 1 on loopback: nothing listens, the connection is refused at once.
    let elsewhere = tempfile::tempdir().unwrap();
    let kubeconfig = elsewhere.path().join("kubeconfig");
    std::fs::write(
        &kubeconfig,
        "apiVersion: v1\nkind: Config\nclusters: [{name: c, cluster: {server: \"https://127.0.0.1:1\"}}]\n\
         users: [{name: u, user: {token: t}}]\ncontexts: [{name: c, context: {cluster: c, user: u}}]\n\
         current-context: c\n",
    )
    .unwrap();
    let out = failover_env(
        root,
        &["--plan", "mysql", "--to", "us-east-1b", "--disaster"],
        &[("KUBECONFIG", kubeconfig.to_str().unwrap())],
    );
    assert!(out.status.success(), "stderr: {}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(
        stdout.contains(
            "\n  live state unknown: cannot read DRPlan mysql/mysql from https://127.0.0.1:1/"
        ),
        "{stdout}"
    );
    assert!(
        git(root, &["log", "-1", "--format=%B"])
            .ends_with("\n\nData age: unknown (no reachable cluster reported a migration)"),
        "{}",
        git(root, &["log", "-1", "--format=%B"])
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_live_plan_is_shown_and_gives_the_data_age() {
    use drgitops::plan::DRPlan;
    use k8s_openapi::api::core::v1::Namespace;
    use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
    use kube::Api;
    use kube::api::{Patch, PatchParams, PostParams};

    // The in-memory API server holds the plan as the standby's reconciler reports it.
    let server = fake_apiserver::FakeApiServer::start().await.unwrap();
    let client = server.client();
    Api::<CustomResourceDefinition>::all(client.clone())
        .create(&PostParams::default(), &drgitops::plan::crd::crd())
        .await
        .unwrap();
    let namespace: Namespace =
        serde_json::from_value(serde_json::json!({"metadata": {"name": "mysql"}})).unwrap();
    Api::<Namespace>::all(client.clone())
        .create(&PostParams::default(), &namespace)
        .await
        .unwrap();
    let plan: DRPlan =
        serde_yaml::from_str(&std::fs::read_to_string(data("async.yaml")).unwrap()).unwrap();
    let plans: Api<DRPlan> = Api::namespaced(client, "mysql");
    plans.create(&PostParams::default(), &plan).await.unwrap();
    // 12 minutes and 5 seconds ago: the test has 55 s before the age reads 13m.
    let finished = jiff::Timestamp::from_second(jiff::Timestamp::now().as_second() - 725).unwrap();
    plans
        .patch_status(
            "mysql",
            &PatchParams::default(),
            &Patch::Merge(serde_json::json!({"status": {
                "localDomain": "us-east-1b",
                "role": "Standby",
                "phase": "Standby",
                "lastMigration": {
                    "name": "mysql-interval-2026-11-22-154500",
                    "status": "Successful",
                    "finishedAt": finished.to_string(),
                    "from": "us-east-1a",
                },
            }})),
        )
        .await
        .unwrap();

    let dir = repo(&[("async.yaml", "plans/mysql.yaml")]);
    let root = dir.path().to_path_buf();
    let kubeconfig = tempfile::tempdir().unwrap();
    let kubeconfig_path = kubeconfig.path().join("config");
    server.write_kubeconfig(&kubeconfig_path).unwrap();
    let run_root = root.clone();
    let out = tokio::task::spawn_blocking(move || {
        failover_env(
            &run_root,
            &["--plan", "mysql", "--to", "us-east-1b", "--disaster"],
            &[("KUBECONFIG", kubeconfig_path.to_str().unwrap())],
        )
    })
    .await
    .unwrap();
    assert!(out.status.success(), "stderr: {}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(
        stdout.contains(&format!(
            "\n  us-east-1b starts at once from its last migrated copy (data as of {finished}, 12m old); \
             us-east-1a is not waited for"
        )),
        "{stdout}"
    );
    assert!(
        stdout.contains(&format!(
            "\n  live plan on us-east-1b: role Standby, phase Standby, last migration \
             mysql-interval-2026-11-22-154500 finished {finished} (12m ago)\n"
        )),
        "{stdout}"
    );
    let written = std::fs::read_to_string(root.join("plans/mysql.yaml")).unwrap();
    assert!(
        written.ends_with(&format!("      dataAsOf: \"{finished}\"\n")),
        "{written}"
    );
    assert!(
        git(&root, &["log", "-1", "--format=%B"])
            .ends_with(&format!("\n\nData as of: {finished} (12m old)")),
        "{}",
        git(&root, &["log", "-1", "--format=%B"])
    );
}

#[test]
fn the_failover_commit_is_signed_as_git_config_asks_and_verifies() {
    let dir = repo(&[("async.yaml", "plans/mysql.yaml")]);
    let root = dir.path();
    let keys = tempfile::tempdir().unwrap();
    let key = keys.path().join("oncall");
    let made = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C", "oncall", "-f"])
        .arg(&key)
        .output()
        .expect("ssh-keygen runs");
    assert!(made.status.success(), "{}", text(&made.stderr));
    let public = std::fs::read_to_string(key.with_extension("pub")).unwrap();
    let signers = keys.path().join("allowed_signers");
    std::fs::write(&signers, format!("dr@example.com {public}")).unwrap();
    git(root, &["config", "gpg.format", "ssh"]);
    git(
        root,
        &["config", "user.signingkey", &key.display().to_string()],
    );
    git(root, &["config", "commit.gpgsign", "true"]);
    git(
        root,
        &[
            "config",
            "gpg.ssh.allowedSignersFile",
            &signers.display().to_string(),
        ],
    );

    // The plan's first commit, signed by git (the whole history is checked when nothing was applied yet).
    git(root, &["commit", "-q", "--amend", "--no-edit", "-S"]);
    let out = failover(root, &["--plan", "mysql", "--to", "us-east-1b"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("  committed signed "),
        "{}",
        text(&out.stdout)
    );
    assert!(
        !text(&out.stderr).contains("not signed"),
        "{}",
        text(&out.stderr)
    );
    // git itself verifies it, and so does the reconciler's check of role changes.
    git(root, &["verify-commit", "HEAD"]);
    let render = Command::new(env!("CARGO_BIN_EXE_drgitops"))
        .args(["render", "--repo"])
        .arg(root)
        .args(["--path", "plans", "--cluster-domain", "us-east-1b"])
        .args(["--verify-signatures", "role-changes", "--trusted-signers"])
        .arg(&signers)
        .output()
        .expect("drgitops runs");
    assert!(render.status.success(), "{}", text(&render.stderr));
    assert!(text(&render.stdout).contains("primary: us-east-1b"));

    // Without commit.gpgsign the commit is made unsigned, with a warning that says how to sign.
    git(root, &["config", "commit.gpgsign", "false"]);
    let out = failover(root, &["--plan", "mysql", "--to", "us-east-1a"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("warning: the failover commit is not signed")
            && stderr.contains("git config commit.gpgsign true"),
        "{stderr}"
    );
    let verify = Command::new("git")
        .arg("-C")
        .arg(root)
        .args(["verify-commit", "HEAD"])
        .output()
        .unwrap();
    assert!(!verify.status.success(), "the second commit is unsigned");
}
