//! Hostile repositories, made with the `git` CLI: links out of the plans path, files and revisions over the caps,
//! deep trees, non-UTF-8 names, submodules, a remote that stalls. Each is refused with a message that says what to
//! do, by `drgitops render` (nothing on stdout) and by the git source's reader; a stalled fetch is cut at the
//! timeout and leaves the cache at the revision it held.

use std::ffi::OsStr;
use std::io::Read as _;
use std::net::TcpListener;
use std::os::unix::ffi::OsStrExt as _;
use std::path::Path;
use std::process::{Command, Output};
use std::time::Duration;

use drgitops::source::git::{self, GitAuth, GitSourceConfig};
use drgitops::source::limits::{MAX_DEPTH, MAX_FILE_BYTES, MAX_FILES, MAX_REVISION_BYTES};
use testkit::reconcile::{gitops_data, plan_repo};
use testkit::{WEST, git};

/// Commits whatever the work tree holds now.
fn commit_all(repo: &Path, message: &str) -> String {
    git(repo, &["add", "-A"]);
    git(repo, &["commit", "-q", "-m", message]);
    git(repo, &["rev-parse", "HEAD"])
}

fn render(repo: &Path, rev: Option<&str>) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_drgitops"));
    command.arg("render").arg("--repo").arg(repo);
    if let Some(rev) = rev {
        command.args(["--rev", rev]);
    }
    command
        .args(["--path", "plans", "--cluster-domain", WEST])
        .output()
        .expect("drgitops runs")
}

/// `render` at HEAD and in the work tree both refuse, naming `expected`; the git reader does too. Returns the
/// message of the git reader.
fn refused_everywhere(repo: &Path, expected: &[&str]) -> String {
    for rev in [Some("HEAD"), None] {
        let out = render(repo, rev);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "refused ({rev:?}): {out:?}");
        assert!(out.stdout.is_empty(), "nothing rendered ({rev:?}): {out:?}");
        for text in expected {
            assert!(stderr.contains(text), "{text:?} ({rev:?}) in {stderr}");
        }
    }
    let err = git::read_revision(repo, "HEAD", "plans").expect_err("refused");
    let message = err.to_string();
    for text in expected {
        assert!(message.contains(text), "{text:?} in {message}");
    }
    message
}

#[test]
fn a_link_out_of_the_plans_path_is_refused_and_one_inside_is_not_read_twice() {
    let repo = plan_repo();
    let dir = repo.path();
    std::fs::write(dir.join("secrets.yaml"), "token: hunter2\n").expect("write");
    std::os::unix::fs::symlink("mysql.yaml", dir.join("plans/again.yaml")).expect("symlink");
    commit_all(dir, "a link inside the plans path");
    let out = render(dir, Some("HEAD"));
    assert!(out.status.success(), "a link inside is skipped: {out:?}");
    let out = render(dir, None);
    assert!(out.status.success(), "also in a work tree: {out:?}");

    std::os::unix::fs::symlink("../secrets.yaml", dir.join("plans/leak.yaml")).expect("symlink");
    commit_all(dir, "a link out of the plans path");
    refused_everywhere(
        dir,
        &[
            "plans/leak.yaml is a symbolic link to \"../secrets.yaml\", outside the plans path",
            "commit the file itself instead of a link",
        ],
    );
    std::fs::remove_file(dir.join("plans/leak.yaml")).expect("rm");
    std::os::unix::fs::symlink("/etc/hostname", dir.join("plans/host.yaml")).expect("symlink");
    commit_all(dir, "an absolute link");
    refused_everywhere(
        dir,
        &["plans/host.yaml is a symbolic link to \"/etc/hostname\""],
    );
}

#[test]
fn a_manifest_over_the_file_cap_is_refused_before_it_is_read() {
    let repo = plan_repo();
    let dir = repo.path();
    let big = format!(
        "{}# {}\n",
        gitops_data("plans/mysql.yaml"),
        "x".repeat(MAX_FILE_BYTES as usize)
    );
    std::fs::write(dir.join("plans/mysql.yaml"), big).expect("write");
    commit_all(dir, "a big plan file");
    refused_everywhere(
        dir,
        &[
            "plans/mysql.yaml is 10",
            "over the 1 MiB cap for one manifest file; split it into several files",
        ],
    );
}

#[test]
fn manifests_over_the_revision_cap_are_refused() {
    let repo = plan_repo();
    let dir = repo.path();
    let filler = format!("# {}\n", "y".repeat(MAX_FILE_BYTES as usize - 8));
    let count = MAX_REVISION_BYTES / MAX_FILE_BYTES + 1;
    for n in 0..count {
        std::fs::write(dir.join(format!("plans/filler-{n:02}.yaml")), &filler).expect("write");
    }
    commit_all(dir, "many large files");
    refused_everywhere(
        dir,
        &["the manifests below the plans path are over 16 MiB in total"],
    );
}

#[test]
fn too_many_files_are_refused() {
    let repo = plan_repo();
    let dir = repo.path();
    std::fs::create_dir_all(dir.join("plans/notes")).expect("mkdir");
    for n in 0..MAX_FILES {
        std::fs::write(dir.join(format!("plans/notes/{n}.txt")), "").expect("write");
    }
    commit_all(dir, "thousands of files");
    refused_everywhere(
        dir,
        &[
            "the plans path holds more than 5000 files and directories",
            "point --git-path (or --path) at the directory of the DRPlans only",
        ],
    );
}

#[test]
fn a_tree_nested_past_the_depth_cap_is_refused() {
    let repo = plan_repo();
    let dir = repo.path();
    let deep: String = (0..=MAX_DEPTH).map(|n| format!("/d{n}")).collect();
    let deep = dir.join(format!("plans{deep}"));
    std::fs::create_dir_all(&deep).expect("mkdir");
    std::fs::write(deep.join("plan.yaml"), "kind: ConfigMap\n").expect("write");
    commit_all(dir, "a deep tree");
    refused_everywhere(
        dir,
        &[
            "directories below the plans path, more than 16",
            "flatten the directory tree of the plans",
        ],
    );
}

#[test]
fn a_file_name_that_is_not_utf8_is_refused() {
    let repo = plan_repo();
    let dir = repo.path();
    let name = OsStr::from_bytes(b"caf\xe9.yaml");
    std::fs::write(dir.join("plans").join(name), "kind: ConfigMap\n").expect("write");
    commit_all(dir, "a Latin-1 name");
    refused_everywhere(
        dir,
        &[
            "a file name in plans is not UTF-8 (\"caf\u{fffd}.yaml\")",
            "rename it in UTF-8",
        ],
    );
}

#[test]
fn a_submodule_under_the_plans_path_is_refused() {
    let repo = plan_repo();
    let dir = repo.path();
    let head = git(dir, &["rev-parse", "HEAD"]);
    // A gitlink, as `git submodule add` records it, pointing at any commit.
    git(
        dir,
        &[
            "update-index",
            "--add",
            "--cacheinfo",
            &format!("160000,{head},plans/vendor"),
        ],
    );
    git(dir, &["commit", "-q", "-m", "a submodule"]);
    let err = git::read_revision(dir, "HEAD", "plans").expect_err("refused");
    assert!(
        err.to_string().contains(
            "plans/vendor is a submodule; drgitops does not read submodules: commit the plans into this repository"
        ),
        "{err}"
    );
    let out = render(dir, Some("HEAD"));
    assert!(!out.status.success() && out.stdout.is_empty(), "{out:?}");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("plans/vendor is a submodule"),
        "{out:?}"
    );

    // A checkout of it, as Argo CD makes one: a nested repository in the work tree.
    let nested = dir.join("plans/vendor");
    std::fs::create_dir_all(&nested).expect("mkdir");
    git(&nested, &["init", "-q"]);
    let out = render(dir, None);
    assert!(!out.status.success() && out.stdout.is_empty(), "{out:?}");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("plans/vendor is a submodule"),
        "{out:?}"
    );
}

#[test]
fn a_remote_that_stalls_is_cut_at_the_timeout_and_the_cache_keeps_its_revision() {
    let repo = plan_repo();
    let cache = tempfile::tempdir().expect("tempdir");
    let mut config = GitSourceConfig {
        url: repo.path().display().to_string(),
        branch: "main".into(),
        path: "plans".into(),
        cache_dir: cache.path().to_path_buf(),
        auth: GitAuth::None,
    };
    let good = git::fetch(&config).expect("fetch").revision;

    // A server that accepts connections and never answers.
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    let server = std::thread::spawn(move || {
        let mut held = Vec::new();
        for stream in listener.incoming().take(2) {
            let mut stream = stream.expect("accept");
            let mut request = [0u8; 1024];
            let _ = stream.read(&mut request);
            held.push(stream);
        }
        held
    });
    config.url = format!("http://{addr}/plans.git");
    let err = git::fetch_within(&config, Duration::from_secs(1)).expect_err("cut");
    assert!(
        err.to_string().contains(&format!(
            "fetching from http://{addr}/plans.git did not finish within 1s: the remote stalled or is too slow"
        )) && err.to_string().contains("raise --git-timeout"),
        "{err}"
    );
    assert_eq!(
        git::resolve_revision(cache.path(), "refs/heads/main").expect("cached"),
        good,
        "the cache keeps the revision it held"
    );
    // Let the server thread end: one more connection past the one the fetch made.
    let _ = std::net::TcpStream::connect(addr);
    drop(server);
}

#[test]
fn whether_a_tip_contains_the_last_applied_revision() {
    let repo = plan_repo();
    let dir = repo.path();
    let first = git(dir, &["rev-parse", "HEAD"]);
    std::fs::write(dir.join("plans/notes.txt"), "one").expect("write");
    let second = commit_all(dir, "second");
    assert_eq!(
        git::contains(dir, &first, &second).expect("walk"),
        Some(true)
    );
    assert_eq!(
        git::contains(dir, &second, &second).expect("walk"),
        Some(true)
    );
    git(dir, &["reset", "-q", "--hard", &first]);
    std::fs::write(dir.join("plans/notes.txt"), "rewritten").expect("write");
    let rewritten = commit_all(dir, "rewritten");
    assert_eq!(
        git::contains(dir, &second, &rewritten).expect("walk"),
        Some(false)
    );
    let unknown = "0123456789abcdef0123456789abcdef01234567";
    assert_eq!(git::contains(dir, unknown, &rewritten).expect("walk"), None);
}
