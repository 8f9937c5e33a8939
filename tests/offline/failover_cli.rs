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

fn failover(repo: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_drgitops"))
        .arg("failover")
        .arg("--repo")
        .arg(repo)
        .args(args)
        .env("HOME", repo)
        .output()
        .expect("drgitops runs")
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
