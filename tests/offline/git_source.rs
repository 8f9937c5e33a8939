//! The git source against real repositories made with the `git` CLI: incremental fetches, revisions, paths.

use std::path::Path;

use drgitops::source::git::{self, GitAuth, GitSourceConfig};
use testkit::git;
use testkit::reconcile::commit;

fn repo_with(files: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    git(dir.path(), &["init", "-q", "-b", "main"]);
    commit(dir.path(), files, "initial");
    dir
}

fn config(url: String, cache: &Path) -> GitSourceConfig {
    GitSourceConfig {
        url,
        branch: "main".into(),
        path: "plans".into(),
        cache_dir: cache.to_path_buf(),
        auth: GitAuth::None,
    }
}

#[test]
fn second_fetch_of_an_unchanged_remote_transfers_nothing() {
    let remote = repo_with(&[("plans/a.yaml", "kind: DRPlan\n")]);
    let cache = tempfile::tempdir().expect("tempdir");
    let cfg = config(format!("file://{}", remote.path().display()), cache.path());

    let first = git::fetch(&cfg).expect("first fetch");
    assert!(first.changed);
    assert!(
        first.received_objects > 0,
        "the first fetch downloads the commit: {first:?}"
    );
    assert_eq!(first.revision, git(remote.path(), &["rev-parse", "HEAD"]));

    let second = git::fetch(&cfg).expect("second fetch");
    assert!(!second.changed);
    assert_eq!(
        (second.received_objects, second.received_bytes),
        (0, 0),
        "{second:?}"
    );
    assert_eq!(second.revision, first.revision);

    let head = commit(
        remote.path(),
        &[("plans/b.yaml", "kind: DRPlan\n")],
        "add b",
    );
    let third = git::fetch(&cfg).expect("third fetch");
    assert!(third.changed);
    assert_eq!(third.revision, head);
    assert!(
        third.received_objects > 0 && third.received_objects < first.received_objects + 4,
        "{third:?}"
    );
}

#[test]
fn local_paths_work_like_file_urls_and_revisions_are_read_from_the_cache() {
    let remote = repo_with(&[
        ("plans/a.yaml", "a: 1\n"),
        ("other/x.yaml", "x: 1\n"),
        ("plans/README.md", "no"),
    ]);
    let first = git(remote.path(), &["rev-parse", "HEAD"]);
    commit(remote.path(), &[("plans/sub/b.yml", "b: 2\n")], "add b");
    let cache = tempfile::tempdir().expect("tempdir");
    let cfg = config(remote.path().display().to_string(), cache.path());
    let fetched = git::fetch(&cfg).expect("fetch");

    let files = git::read_revision(cache.path(), &fetched.revision, "plans").expect("read head");
    let paths: Vec<_> = files.iter().map(|f| f.path.as_str()).collect();
    assert_eq!(paths, ["plans/a.yaml", "plans/sub/b.yml"]);
    assert_eq!(files[1].contents, "b: 2\n");

    let old = git::read_revision(cache.path(), &first, "plans").expect("read first");
    assert_eq!(old.len(), 1);

    let missing =
        git::read_revision(cache.path(), &fetched.revision, "nope").expect_err("no such path");
    assert!(
        missing.to_string().contains("\"nope\" does not exist"),
        "{missing}"
    );
}

#[test]
fn a_missing_branch_is_named() {
    let remote = repo_with(&[("plans/a.yaml", "a: 1\n")]);
    let cache = tempfile::tempdir().expect("tempdir");
    let mut cfg = config(remote.path().display().to_string(), cache.path());
    cfg.branch = "release".into();
    let err = git::fetch(&cfg).expect_err("no branch");
    assert!(
        err.to_string()
            .contains("branch \"release\" does not exist"),
        "{err}"
    );
}

#[test]
fn a_cache_with_too_many_packs_is_rebuilt_by_one_full_fetch() {
    let remote = repo_with(&[("plans/a.yaml", "a: 1\n")]);
    let cache = tempfile::tempdir().expect("tempdir");
    let cfg = config(
        remote.path().display().to_string(),
        &cache.path().join("cache"),
    );
    let full = git::fetch_with_pack_limit(&cfg, 1).expect("first fetch");
    commit(remote.path(), &[("plans/b.yaml", "b: 2\n")], "b");
    let incremental = git::fetch_with_pack_limit(&cfg, 1).expect("second fetch");
    assert!(
        incremental.received_objects < full.received_objects + 3,
        "{incremental:?}"
    );
    assert_eq!(
        git::pack_count(&cfg.cache_dir),
        2,
        "libgit2 adds a pack per fetch"
    );

    let head = commit(remote.path(), &[("plans/c.yaml", "c: 3\n")], "c");
    let rebuilt = git::fetch_with_pack_limit(&cfg, 1).expect("third fetch");
    assert_eq!(rebuilt.revision, head);
    assert_eq!(
        git::pack_count(&cfg.cache_dir),
        1,
        "the cache was rebuilt into one pack"
    );
    let files = git::read_revision(&cfg.cache_dir, &rebuilt.revision, "plans").expect("readable");
    assert_eq!(files.len(), 3);
}
