//! The git source: an incremental fetch of one branch into a bare cache, and reading manifest files at a revision.
//!
//! In: a repository URL (local path, `file://`, `https://` with a token, `ssh://` with a key and a known_hosts we are
//! given), a branch and a directory. Out: the commit the branch points at and the manifest files below that directory
//! at that commit. Every function here blocks (libgit2): async callers run them in `spawn_blocking`.

use std::cell::Cell;
use std::path::{Path, PathBuf};
use std::time::Duration;

use base64::Engine as _;

use crate::source::deadline::Deadline;
use crate::source::limits::{self, Budget};
use git2::{
    AutotagOption, CertificateCheckStatus, Cred, CredentialType, Direction, FetchOptions,
    ObjectType, ProxyOptions, RemoteCallbacks, Repository,
};

/// How to authenticate to the remote.
#[derive(Clone, Default)]
pub enum GitAuth {
    /// Local paths, `file://` and public remotes.
    #[default]
    None,
    /// HTTPS basic auth with a token as the password (GitHub, GitLab, Gitea all accept this).
    Token { username: String, token: String },
    /// SSH with a private key; the server's host key must appear in `known_hosts`.
    Ssh {
        username: String,
        private_key: String,
        passphrase: Option<String>,
        known_hosts: String,
    },
}

impl std::fmt::Debug for GitAuth {
    // Credentials never reach logs.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            GitAuth::None => f.write_str("None"),
            GitAuth::Token { username, .. } => {
                write!(f, "Token {{ username: {username:?}, token: <redacted> }}")
            }
            GitAuth::Ssh { username, .. } => {
                write!(f, "Ssh {{ username: {username:?}, key: <redacted> }}")
            }
        }
    }
}

/// Where to fetch from and where to keep the cache.
#[derive(Clone, Debug)]
pub struct GitSourceConfig {
    pub url: String,
    pub branch: String,
    /// Directory inside the repository that holds the manifests (`.` for the root).
    pub path: String,
    /// Bare repository used as the fetch cache; created on first use.
    pub cache_dir: PathBuf,
    pub auth: GitAuth,
}

/// What one fetch did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FetchOutcome {
    /// The commit the branch points at after the fetch (hex).
    pub revision: String,
    /// Whether the branch moved since the previous fetch into this cache.
    pub changed: bool,
    /// Objects and bytes downloaded from the remote; both 0 when the remote head had not moved.
    pub received_objects: usize,
    pub received_bytes: usize,
}

/// One manifest file read from a revision or a directory.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ManifestFile {
    /// Path relative to the repository root, with `/` separators.
    pub path: String,
    pub contents: String,
}

#[derive(Debug, thiserror::Error)]
/// Each message carries its cause's text followed by what to do, so the cause is a plain field rather than an
/// error source: printed with its chain (`{:#}`) it would otherwise appear twice.
pub enum SourceError {
    #[error(
        "cannot open or create the git cache {path}: {cause}; check that the directory is writable"
    )]
    Cache { path: String, cause: git2::Error },
    #[error("cannot reach {url}: {cause}; check --git-url, the network and the credentials")]
    Connect { url: String, cause: git2::Error },
    #[error(
        "the TLS certificate of {url} was refused: {reason}; if a private CA signed it, point SSL_CERT_FILE at a \
         bundle that holds that CA"
    )]
    Untrusted { url: String, reason: String },
    #[error("{url} refused the credentials: {reason}")]
    Rejected { url: String, reason: String },
    #[error(
        "fetching from {url} did not finish within {seconds}s: the remote stalled or is too slow; nothing was \
         applied from it. Check the remote, or raise --git-timeout"
    )]
    Timeout { url: String, seconds: f64 },
    #[error("branch {branch:?} does not exist in {url}; check --git-branch")]
    NoBranch { url: String, branch: String },
    #[error("fetching {branch:?} from {url} failed: {cause}")]
    Fetch {
        url: String,
        branch: String,
        cause: git2::Error,
    },
    #[error("revision {rev:?} not found in {repo}: {cause}")]
    Revision {
        repo: String,
        rev: String,
        cause: git2::Error,
    },
    #[error("path {path:?} does not exist at revision {rev}; check --git-path")]
    NoPath { path: String, rev: String },
    /// A hostile or oversized tree: a link out of the plans path, a submodule, a cap exceeded.
    #[error("refusing {}: {reason}", refused_at(.rev))]
    Refused {
        path: String,
        rev: String,
        reason: String,
    },
    #[error("cannot read {path} at revision {rev}: {reason}")]
    Read {
        path: String,
        rev: String,
        reason: String,
    },
    #[error("cannot read {path}: {cause}")]
    Io { path: String, cause: std::io::Error },
    #[error("cannot open git repository {path}: {cause}")]
    Open { path: String, cause: git2::Error },
}

/// What a refusal is of: a revision, or the working directory `render` reads.
fn refused_at(rev: &str) -> String {
    if rev.starts_with('(') {
        "the working directory".into()
    } else {
        format!("revision {}", rev.get(..12).unwrap_or(rev))
    }
}

/// Fetches `branch` into the bare cache, downloading only when the remote head moved.
///
/// The remote's refs are listed first (one round trip, no objects); when the branch still points at the commit the
/// cache holds, nothing is downloaded. An `http(s)://` fetch that takes longer than [`limits::GIT_TIMEOUT`] is cut.
pub fn fetch(config: &GitSourceConfig) -> Result<FetchOutcome, SourceError> {
    fetch_within(config, limits::GIT_TIMEOUT)
}

/// [`fetch`], cutting an `http(s)://` fetch after `timeout` (`--git-timeout`).
pub fn fetch_within(
    config: &GitSourceConfig,
    timeout: Duration,
) -> Result<FetchOutcome, SourceError> {
    let url = remote_url(&config.url);
    let deadline = bounded(&url, timeout)?;
    fetch_inner(config, MAX_PACKS, deadline.as_ref())
        .map_err(|err| timed_out(err, &url, timeout, &deadline))
}

/// A relay that bounds the fetch in time, for `http://` remotes. Not for `https://`: through a proxy, libgit2 closes
/// the tunnel's socket before its TLS stream when the handshake fails (a refused certificate), then waits for ever
/// to write the TLS close on it, so a certificate error would hang the fetch instead of failing it.
fn bounded(url: &str, timeout: Duration) -> Result<Option<Deadline>, SourceError> {
    if !url.starts_with("http://") {
        return Ok(None);
    }
    Deadline::start(url, timeout)
        .map(Some)
        .map_err(|source| SourceError::Io {
            path: "a loopback port for the fetch's time limit".into(),
            cause: source,
        })
}

/// A failure after the deadline passed is the deadline's doing, whatever libgit2 made of the closed connection.
fn timed_out(
    err: SourceError,
    url: &str,
    timeout: Duration,
    deadline: &Option<Deadline>,
) -> SourceError {
    if deadline.as_ref().is_some_and(Deadline::expired) {
        SourceError::Timeout {
            url: url.to_string(),
            seconds: timeout.as_secs_f64(),
        }
    } else {
        err
    }
}

fn proxy(deadline: Option<&Deadline>) -> ProxyOptions<'static> {
    let mut options = ProxyOptions::new();
    if let Some(proxy) = deadline.and_then(Deadline::proxy_url) {
        options.url(&proxy);
    }
    options
}

/// Packs the cache may hold before it is rebuilt: libgit2 cannot repack, and every fetch that downloads adds a
/// pack, which slowly makes every read slower.
pub const MAX_PACKS: usize = 64;

/// [`fetch`], rebuilding the cache from scratch (one full fetch) once it holds more than `max_packs` packs.
pub fn fetch_with_pack_limit(
    config: &GitSourceConfig,
    max_packs: usize,
) -> Result<FetchOutcome, SourceError> {
    let url = remote_url(&config.url);
    let deadline = bounded(&url, limits::GIT_TIMEOUT)?;
    fetch_inner(config, max_packs, deadline.as_ref())
        .map_err(|err| timed_out(err, &url, limits::GIT_TIMEOUT, &deadline))
}

fn fetch_inner(
    config: &GitSourceConfig,
    max_packs: usize,
    deadline: Option<&Deadline>,
) -> Result<FetchOutcome, SourceError> {
    if pack_count(&config.cache_dir) > max_packs {
        tracing::info!(cache = %config.cache_dir.display(), "git cache holds too many packs: rebuilding it");
        std::fs::remove_dir_all(&config.cache_dir).map_err(|source| SourceError::Io {
            path: config.cache_dir.display().to_string(),
            cause: source,
        })?;
    }
    let repo = open_cache(&config.cache_dir)?;
    let url = remote_url(&config.url);
    let local_ref = format!("refs/heads/{}", config.branch);
    let cached = repo.refname_to_id(&local_ref).ok();

    let fetch_url = deadline.map_or(url.as_str(), |d| d.fetch_url(&url));
    let mut remote = repo
        .remote_anonymous(fetch_url)
        .map_err(connect_error(&url))?;
    let remote_head = {
        let connection = remote
            .connect_auth(
                Direction::Fetch,
                Some(callbacks(&config.auth, &url)),
                Some(proxy(deadline)),
            )
            .map_err(connect_error(&url))?;
        let heads = connection.list().map_err(connect_error(&url))?;
        heads
            .iter()
            .find(|h| h.name() == local_ref)
            .map(|h| h.oid())
    };
    let Some(remote_head) = remote_head else {
        return Err(SourceError::NoBranch {
            url,
            branch: config.branch.clone(),
        });
    };
    if cached == Some(remote_head) {
        return Ok(FetchOutcome {
            revision: remote_head.to_string(),
            changed: false,
            received_objects: 0,
            received_bytes: 0,
        });
    }

    let mut options = FetchOptions::new();
    options.remote_callbacks(callbacks(&config.auth, &url));
    options.proxy_options(proxy(deadline));
    options.download_tags(AutotagOption::None);
    options.update_fetchhead(false);
    let refspec = format!("+{local_ref}:{local_ref}");
    remote
        .fetch(&[refspec.as_str()], Some(&mut options), None)
        .map_err(|source| SourceError::Fetch {
            url: url.clone(),
            branch: config.branch.clone(),
            cause: source,
        })?;
    let stats = remote.stats();
    let (received_objects, received_bytes) = (stats.received_objects(), stats.received_bytes());
    let revision = repo
        .refname_to_id(&local_ref)
        .map_err(|source| SourceError::Fetch {
            url: url.clone(),
            branch: config.branch.clone(),
            cause: source,
        })?;
    Ok(FetchOutcome {
        revision: revision.to_string(),
        changed: cached != Some(revision),
        received_objects,
        received_bytes,
    })
}

/// The manifest files (`*.yaml`, `*.yml`, `*.json`) below `dir` at `rev` in the repository at `repo_path` (bare or
/// not), sorted by path.
pub fn read_revision(
    repo_path: &Path,
    rev: &str,
    dir: &str,
) -> Result<Vec<ManifestFile>, SourceError> {
    let repo = Repository::open(repo_path).map_err(|source| SourceError::Open {
        path: repo_path.display().to_string(),
        cause: source,
    })?;
    read_revision_in(&repo, rev, dir)
}

/// Resolves `rev` to a commit id (hex) in the repository at `repo_path`.
pub fn resolve_revision(repo_path: &Path, rev: &str) -> Result<String, SourceError> {
    let repo = Repository::open(repo_path).map_err(|source| SourceError::Open {
        path: repo_path.display().to_string(),
        cause: source,
    })?;
    let commit = peel_commit(&repo, rev)?;
    Ok(commit.id().to_string())
}

fn peel_commit<'r>(repo: &'r Repository, rev: &str) -> Result<git2::Commit<'r>, SourceError> {
    let repo_name = repo.path().display().to_string();
    repo.revparse_single(rev)
        .and_then(|object| object.peel_to_commit())
        .map_err(|source| SourceError::Revision {
            repo: repo_name,
            rev: rev.to_string(),
            cause: source,
        })
}

pub(crate) fn read_revision_in(
    repo: &Repository,
    rev: &str,
    dir: &str,
) -> Result<Vec<ManifestFile>, SourceError> {
    let commit = peel_commit(repo, rev)?;
    let rev_hex = commit.id().to_string();
    let root = commit.tree().map_err(|e| SourceError::Read {
        path: ".".into(),
        rev: rev_hex.clone(),
        reason: e.message().to_string(),
    })?;
    let dir = normalize_dir(dir);
    let tree = if dir.is_empty() {
        root
    } else {
        let entry = root
            .get_path(Path::new(&dir))
            .map_err(|_| SourceError::NoPath {
                path: dir.clone(),
                rev: rev_hex.clone(),
            })?;
        if entry.filemode() == MODE_LINK || entry.filemode() == MODE_GITLINK {
            let reason = if entry.filemode() == MODE_LINK {
                format!(
                    "{dir} is a symbolic link; point --git-path (or --path) at the real directory or file"
                )
            } else {
                limits::submodule(&dir)
            };
            return Err(SourceError::Refused {
                path: dir.clone(),
                rev: rev_hex,
                reason,
            });
        }
        if entry.kind() == Some(ObjectType::Blob) && is_manifest(&dir) {
            // --path may name one manifest file.
            let mut reader = TreeReader::new(repo, &dir, &rev_hex)?;
            let contents = reader.manifest(&dir, entry.id())?;
            return Ok(vec![ManifestFile {
                path: dir.clone(),
                contents,
            }]);
        }
        if entry.kind() != Some(ObjectType::Tree) {
            return Err(SourceError::NoPath {
                path: dir.clone(),
                rev: rev_hex,
            });
        }
        repo.find_tree(entry.id()).map_err(|e| SourceError::Read {
            path: dir.clone(),
            rev: rev_hex.clone(),
            reason: e.message().to_string(),
        })?
    };

    let mut reader = TreeReader::new(repo, &dir, &rev_hex)?;
    reader.walk(&tree, "", 0)?;
    let mut files = reader.files;
    files.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(files)
}

/// Git's file modes of a tree entry.
const MODE_TREE: i32 = 0o040000;
const MODE_LINK: i32 = 0o120000;
const MODE_GITLINK: i32 = 0o160000;

/// Reads the manifests below the plans path at one revision, within the caps of [`crate::source::limits`].
struct TreeReader<'r> {
    repo: &'r Repository,
    odb: git2::Odb<'r>,
    dir: &'r str,
    rev: &'r str,
    budget: Budget,
    files: Vec<ManifestFile>,
}

impl<'r> TreeReader<'r> {
    /// A reader of revision `rev` below `dir`, with a fresh budget.
    fn new(repo: &'r Repository, dir: &'r str, rev: &'r str) -> Result<Self, SourceError> {
        let odb = repo.odb().map_err(|e| SourceError::Read {
            path: dir.to_string(),
            rev: rev.to_string(),
            reason: e.message().to_string(),
        })?;
        Ok(TreeReader {
            repo,
            odb,
            dir,
            rev,
            budget: Budget::default(),
            files: Vec::new(),
        })
    }

    fn full_path(&self, rel: &str) -> String {
        if rel.is_empty() {
            self.dir.to_string()
        } else if self.dir.is_empty() {
            rel.to_string()
        } else {
            format!("{}/{rel}", self.dir)
        }
    }

    fn refuse(&self, path: &str, reason: String) -> SourceError {
        SourceError::Refused {
            path: path.to_string(),
            rev: self.rev.to_string(),
            reason,
        }
    }

    fn read_error(&self, path: &str, reason: &str) -> SourceError {
        SourceError::Read {
            path: path.to_string(),
            rev: self.rev.to_string(),
            reason: reason.to_string(),
        }
    }

    /// `tree` is `prefix` (relative to the plans path, ending in `/` unless empty), `depth` directories down.
    fn walk(
        &mut self,
        tree: &git2::Tree<'_>,
        prefix: &str,
        depth: usize,
    ) -> Result<(), SourceError> {
        for entry in tree.iter() {
            let Some(name) = entry.name() else {
                let parent = self.full_path(prefix.trim_end_matches('/'));
                let lossy = String::from_utf8_lossy(entry.name_bytes()).into_owned();
                return Err(self.refuse(&parent, limits::not_utf8_name(&parent, &lossy)));
            };
            let rel = format!("{prefix}{name}");
            let path = self.full_path(&rel);
            match entry.filemode() {
                MODE_TREE => {
                    // Directories count too: a crafted tree of empty directories is bounded as well.
                    self.budget
                        .entry(&path, depth + 1)
                        .map_err(|reason| self.refuse(&path, reason))?;
                    let subtree = self
                        .repo
                        .find_tree(entry.id())
                        .map_err(|e| self.read_error(&path, e.message()))?;
                    self.walk(&subtree, &format!("{rel}/"), depth + 1)?;
                }
                MODE_GITLINK => return Err(self.refuse(&path, limits::submodule(&path))),
                MODE_LINK => {
                    self.budget
                        .entry(&path, depth)
                        .map_err(|reason| self.refuse(&path, reason))?;
                    let target = self.small_blob(&path, entry.id())?;
                    let target = String::from_utf8_lossy(&target);
                    if let Some(reason) = limits::link_outside(&path, &target, self.dir) {
                        return Err(self.refuse(&path, reason));
                    }
                    // A link inside the plans path: its target is read where it is.
                }
                _ => {
                    self.budget
                        .entry(&path, depth)
                        .map_err(|reason| self.refuse(&path, reason))?;
                    if is_manifest(name) {
                        let contents = self.manifest(&path, entry.id())?;
                        self.files.push(ManifestFile { path, contents });
                    }
                }
            }
        }
        Ok(())
    }

    /// A symlink's target, refused past the per-file cap before it is read.
    fn small_blob(&mut self, path: &str, id: git2::Oid) -> Result<Vec<u8>, SourceError> {
        let (size, _) = self
            .odb
            .read_header(id)
            .map_err(|e| self.read_error(path, e.message()))?;
        if size as u64 > limits::MAX_FILE_BYTES {
            return Err(self.refuse(path, format!("symbolic link target of {size} bytes")));
        }
        let blob = self
            .repo
            .find_blob(id)
            .map_err(|e| self.read_error(path, e.message()))?;
        Ok(blob.content().to_vec())
    }

    /// A manifest's text, its size counted against the caps before it is read.
    fn manifest(&mut self, path: &str, id: git2::Oid) -> Result<String, SourceError> {
        let (size, _) = self
            .odb
            .read_header(id)
            .map_err(|e| self.read_error(path, e.message()))?;
        self.budget
            .file(path, size as u64)
            .map_err(|reason| self.refuse(path, reason))?;
        let blob = self
            .repo
            .find_blob(id)
            .map_err(|e| self.read_error(path, e.message()))?;
        String::from_utf8(blob.content().to_vec())
            .map_err(|_| self.read_error(path, "not UTF-8 text"))
    }
}

/// The manifest files below `dir` in a plain directory tree (as Argo CD's config-management plugin sees a checkout),
/// sorted by path; hidden entries (`.git`, ...) are skipped. The same caps and checks as at a git revision: a
/// symbolic link that resolves outside `dir` (the service account's token, another app's secrets) is refused, one
/// inside is skipped (its target is read where it is), and a nested repository counts as a submodule.
pub fn read_directory(root: &Path, dir: &str) -> Result<Vec<ManifestFile>, SourceError> {
    const HERE: &str = "(working directory)";
    let dir = normalize_dir(dir);
    let start = if dir.is_empty() {
        root.to_path_buf()
    } else {
        root.join(&dir)
    };
    let io = |path: &Path| {
        let path = path.display().to_string();
        move |source| SourceError::Io {
            path,
            cause: source,
        }
    };
    let refuse = |path: &str, reason: String| SourceError::Refused {
        path: path.to_string(),
        rev: HERE.into(),
        reason,
    };
    let rel_of = |path: &Path| {
        path.strip_prefix(root)
            .unwrap_or(path)
            .components()
            .map(|c| c.as_os_str().to_string_lossy())
            .collect::<Vec<_>>()
            .join("/")
    };
    if std::fs::symlink_metadata(&start).is_ok_and(|m| m.file_type().is_symlink()) {
        return Err(refuse(
            &dir,
            format!("{dir} is a symbolic link; point --path at the real directory or file"),
        ));
    }
    let mut budget = Budget::default();
    if start.is_file() && is_manifest(&dir) {
        let size = std::fs::metadata(&start).map_err(io(&start))?.len();
        budget
            .file(&dir, size)
            .map_err(|reason| refuse(&dir, reason))?;
        let contents = std::fs::read_to_string(&start).map_err(io(&start))?;
        return Ok(vec![ManifestFile {
            path: dir,
            contents,
        }]);
    }
    if !start.is_dir() {
        return Err(SourceError::NoPath {
            path: start.display().to_string(),
            rev: HERE.into(),
        });
    }
    let real_start = std::fs::canonicalize(&start).map_err(io(&start))?;
    let mut files = Vec::new();
    let mut stack = vec![(start.clone(), 0usize)];
    while let Some((current, depth)) = stack.pop() {
        let entries = std::fs::read_dir(&current).map_err(io(&current))?;
        for entry in entries {
            let entry = entry.map_err(io(&current))?;
            let path = entry.path();
            let Some(name) = entry.file_name().to_str().map(str::to_string) else {
                let parent = rel_of(&current);
                let lossy = entry.file_name().to_string_lossy().into_owned();
                return Err(refuse(&parent, limits::not_utf8_name(&parent, &lossy)));
            };
            if name.starts_with('.') {
                continue;
            }
            let rel = rel_of(&path);
            let kind = entry.file_type().map_err(io(&path))?;
            if kind.is_symlink() {
                budget
                    .entry(&rel, depth)
                    .map_err(|reason| refuse(&rel, reason))?;
                let inside =
                    std::fs::canonicalize(&path).is_ok_and(|real| real.starts_with(&real_start));
                if !inside {
                    let target = std::fs::read_link(&path).map_err(io(&path))?;
                    return Err(refuse(
                        &rel,
                        format!(
                            "{rel} is a symbolic link to {:?}, outside the plans path (or to nothing); commit the \
                             file itself instead of a link",
                            target.display().to_string()
                        ),
                    ));
                }
            } else if kind.is_dir() {
                budget
                    .entry(&rel, depth + 1)
                    .map_err(|reason| refuse(&rel, reason))?;
                if path.join(".git").exists() {
                    return Err(refuse(&rel, limits::submodule(&rel)));
                }
                stack.push((path, depth + 1));
            } else {
                budget
                    .entry(&rel, depth)
                    .map_err(|reason| refuse(&rel, reason))?;
                if is_manifest(&name) {
                    let size = entry.metadata().map_err(io(&path))?.len();
                    budget
                        .file(&rel, size)
                        .map_err(|reason| refuse(&rel, reason))?;
                    let contents = std::fs::read_to_string(&path).map_err(io(&path))?;
                    files.push(ManifestFile {
                        path: rel,
                        contents,
                    });
                }
            }
        }
    }
    files.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(files)
}

/// Clones (bare) a remote into `into` and returns the files at `rev` (default: the remote's HEAD) and the commit.
pub fn clone_and_read(
    url: &str,
    into: &Path,
    rev: Option<&str>,
    dir: &str,
    auth: &GitAuth,
) -> Result<(String, Vec<ManifestFile>), SourceError> {
    let url = remote_url(url);
    let deadline = bounded(&url, limits::GIT_TIMEOUT)?;
    let mut options = FetchOptions::new();
    options.remote_callbacks(callbacks(auth, &url));
    options.proxy_options(proxy(deadline.as_ref()));
    let fetch_url = deadline
        .as_ref()
        .map_or(url.as_str(), |d| d.fetch_url(&url));
    let repo = git2::build::RepoBuilder::new()
        .bare(true)
        .fetch_options(options)
        .clone(fetch_url, into)
        .map_err(connect_error(&url))
        .map_err(|err| timed_out(err, &url, limits::GIT_TIMEOUT, &deadline))?;
    drop(deadline);
    let rev = rev.unwrap_or("HEAD");
    let commit = peel_commit(&repo, rev)?.id().to_string();
    Ok((commit.clone(), read_revision_in(&repo, &commit, dir)?))
}

/// Whether `ancestor` is `tip` or in its history, in the repository at `repo_path`; `None` when the repository does
/// not hold `ancestor` (the history that held it was rewritten and it was never fetched into this cache).
pub fn contains(repo_path: &Path, ancestor: &str, tip: &str) -> Result<Option<bool>, SourceError> {
    let repo = Repository::open(repo_path).map_err(|source| SourceError::Open {
        path: repo_path.display().to_string(),
        cause: source,
    })?;
    let revision = |rev: &str| {
        git2::Oid::from_str(rev).map_err(|source| SourceError::Revision {
            repo: repo_path.display().to_string(),
            rev: rev.to_string(),
            cause: source,
        })
    };
    let (ancestor, tip) = (revision(ancestor)?, revision(tip)?);
    if ancestor == tip {
        return Ok(Some(true));
    }
    if repo.find_commit(ancestor).is_err() {
        return Ok(None);
    }
    repo.graph_descendant_of(tip, ancestor)
        .map(Some)
        .map_err(|source| SourceError::Revision {
            repo: repo_path.display().to_string(),
            rev: tip.to_string(),
            cause: source,
        })
}

/// Number of pack files in a bare repository.
pub fn pack_count(repo: &Path) -> usize {
    std::fs::read_dir(repo.join("objects/pack"))
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .filter(|e| e.path().extension().is_some_and(|x| x == "pack"))
                .count()
        })
        .unwrap_or(0)
}

/// A failure to connect to `url`. A refused https certificate and refused credentials get their own messages:
/// the fix is the CA bundle or the token, not the URL or the network.
fn connect_error(url: &str) -> impl FnOnce(git2::Error) -> SourceError + '_ {
    move |source| {
        if url.starts_with("https://") && source.code() == git2::ErrorCode::Certificate {
            SourceError::Untrusted {
                url: url.to_string(),
                reason: source.message().to_string(),
            }
        } else if source.message().starts_with(CREDENTIALS_REJECTED) {
            SourceError::Rejected {
                url: url.to_string(),
                reason: source.message().to_string(),
            }
        } else {
            SourceError::Connect {
                url: url.to_string(),
                cause: source,
            }
        }
    }
}

fn open_cache(path: &Path) -> Result<Repository, SourceError> {
    let cache_err = |source| SourceError::Cache {
        path: path.display().to_string(),
        cause: source,
    };
    match Repository::open_bare(path) {
        Ok(repo) => Ok(repo),
        Err(_) => {
            std::fs::create_dir_all(path)
                .map_err(|e| cache_err(git2::Error::from_str(&e.to_string())))?;
            Repository::init_bare(path).map_err(cache_err)
        }
    }
}

fn is_manifest(name: &str) -> bool {
    name.ends_with(".yaml") || name.ends_with(".yml") || name.ends_with(".json")
}

fn normalize_dir(dir: &str) -> String {
    let trimmed = dir.trim_start_matches("./").trim_matches('/');
    if trimmed == "." {
        String::new()
    } else {
        trimmed.to_string()
    }
}

/// libgit2 takes local paths and URLs alike; a relative local path is made absolute so the cache's working
/// directory does not matter.
fn remote_url(url: &str) -> String {
    if url.contains("://") || url.contains('@') {
        return url.to_string();
    }
    std::path::absolute(url)
        .map(|p| p.display().to_string())
        .unwrap_or_else(|_| url.to_string())
}

/// What the credentials callback answers once the remote has refused every attempt.
const CREDENTIALS_REJECTED: &str = "credentials rejected by the remote; check the token or key";

/// Callbacks for one connection: credentials (tried at most three times: libgit2 asks again after every rejection
/// and would loop forever) and, for SSH, host-key checking against the known_hosts we were given.
fn callbacks<'a>(auth: &'a GitAuth, url: &str) -> RemoteCallbacks<'a> {
    let mut callbacks = RemoteCallbacks::new();
    let attempts = Cell::new(0u32);
    callbacks.credentials(move |_url, username_from_url, allowed| {
        attempts.set(attempts.get() + 1);
        if attempts.get() > 3 {
            return Err(git2::Error::from_str(CREDENTIALS_REJECTED));
        }
        match auth {
            GitAuth::Token { username, token }
                if allowed.contains(CredentialType::USER_PASS_PLAINTEXT) =>
            {
                Cred::userpass_plaintext(username, token)
            }
            GitAuth::Ssh {
                username,
                private_key,
                passphrase,
                ..
            } => {
                if allowed.contains(CredentialType::USERNAME) {
                    return Cred::username(username_from_url.unwrap_or(username));
                }
                Cred::ssh_key_from_memory(
                    username_from_url.unwrap_or(username),
                    None,
                    private_key,
                    passphrase.as_deref(),
                )
            }
            _ => Err(git2::Error::from_str(
                "the remote asks for credentials; set --git-token or --git-ssh-key-file",
            )),
        }
    });
    if let GitAuth::Ssh { known_hosts, .. } = auth {
        let host = ssh_host(url);
        callbacks.certificate_check(move |cert, hostname| {
            let Some(hostkey) = cert.as_hostkey().and_then(|k| k.hostkey()) else {
                return Err(git2::Error::from_str("the ssh server presented no host key"));
            };
            let name = host.clone().unwrap_or_else(|| hostname.to_string());
            if known_hosts_accepts(known_hosts, &name, hostkey) {
                Ok(CertificateCheckStatus::CertificateOk)
            } else {
                Err(git2::Error::from_str(&format!(
                    "host key of {name} is not in the configured known_hosts; add the server's key to \
                     --git-known-hosts-file"
                )))
            }
        });
    }
    callbacks
}

/// The known_hosts name of an `ssh://` URL's host (`[host]:port` when the port is not 22) or of scp-like
/// `user@host:path`.
pub fn ssh_host(url: &str) -> Option<String> {
    if let Some(rest) = url.strip_prefix("ssh://") {
        let authority = rest.split('/').next()?;
        let hostport = authority.rsplit('@').next()?;
        return Some(match hostport.rsplit_once(':') {
            Some((host, port)) if port != "22" => format!("[{host}]:{port}"),
            Some((host, _)) => host.to_string(),
            None => hostport.to_string(),
        });
    }
    let (before, _) = url.split_once(':')?;
    before.rsplit('@').next().map(str::to_string)
}

/// Whether a known_hosts text lists `key` (raw SSH wire-format public key) for `host`. Hashed (`|1|`) entries,
/// `@revoked` and `@cert-authority` markers are not accepted: an unknown key is always refused.
pub fn known_hosts_accepts(known_hosts: &str, host: &str, key: &[u8]) -> bool {
    known_hosts.lines().any(|line| {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with('@') {
            return false;
        }
        let mut fields = line.split_whitespace();
        let (Some(hosts), Some(_kind), Some(encoded)) =
            (fields.next(), fields.next(), fields.next())
        else {
            return false;
        };
        let host_listed = hosts.split(',').any(|h| h == host);
        host_listed
            && base64::engine::general_purpose::STANDARD
                .decode(encoded)
                .map(|decoded| decoded == key)
                .unwrap_or(false)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ssh_host_names_follow_known_hosts_conventions() {
        assert_eq!(
            ssh_host("ssh://git@github.com/org/repo.git").as_deref(),
            Some("github.com")
        );
        assert_eq!(
            ssh_host("ssh://git@git.example:2222/org/repo.git").as_deref(),
            Some("[git.example]:2222")
        );
        assert_eq!(
            ssh_host("git@gitlab.com:org/repo.git").as_deref(),
            Some("gitlab.com")
        );
    }

    #[test]
    fn known_hosts_accepts_only_listed_keys_for_listed_hosts() {
        let key = b"\0\0\0\x0bssh-ed25519\0\0\0\x20abcdefghijklmnopqrstuvwxyz012345";
        let encoded = base64::engine::general_purpose::STANDARD.encode(key);
        let file = format!(
            "# comment\nother.example ssh-ed25519 {encoded}\ngit.example,10.0.0.1 ssh-ed25519 {encoded}\n"
        );
        assert!(known_hosts_accepts(&file, "git.example", key));
        assert!(known_hosts_accepts(&file, "10.0.0.1", key));
        assert!(!known_hosts_accepts(&file, "evil.example", key));
        assert!(!known_hosts_accepts(&file, "git.example", b"another key"));
        assert!(!known_hosts_accepts("", "git.example", key));
        let revoked = format!("@revoked git.example ssh-ed25519 {encoded}\n");
        assert!(!known_hosts_accepts(&revoked, "git.example", key));
    }

    #[test]
    fn directories_are_normalized() {
        assert_eq!(normalize_dir("."), "");
        assert_eq!(normalize_dir("./plans/"), "plans");
        assert_eq!(normalize_dir("/plans/prod"), "plans/prod");
    }
}
