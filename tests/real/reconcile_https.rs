//! `https://` remotes end to end: `drgitops render` and `drgitops reconcile --once` against git's own smart-HTTP
//! backend behind TLS and a token. `reconcile --once` applies to a real cluster (the reconciler's manifests
//! installed, its peer the reconciler tests' shared one) as the shipped `drgitops-reconciler` ServiceAccount.
//! The CA bundle is given to each child process in `SSL_CERT_FILE` (tests run as threads of one process, so its
//! environment is never changed).

#[path = "../git_server/mod.rs"]
pub(crate) mod git_server;

use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::Duration;

use git_server::GitHttpsServer;
use testenv::pki::Pki;
use testkit::reconcile::{commit, plan_repo};
use testkit::{Cluster, EAST, WEST, git};

use crate::reconciler::support::{SYSTEM_NAMESPACE, east, plan, read_data, stork};

const TOKEN: &str = "glpat-correct-horse";

/// A plan repository served over https with [`TOKEN`], and a directory for the CA bundle and token files.
struct Remote {
    server: GitHttpsServer,
    repo: tempfile::TempDir,
    files: tempfile::TempDir,
    ca_file: PathBuf,
}

impl Remote {
    fn start() -> Self {
        let pki = Pki::new("drgitops test git CA").expect("CA");
        let leaf = pki
            .serving(&["git.test", "localhost", "127.0.0.1"])
            .expect("serving certificate");
        let repo = plan_repo();
        let server = GitHttpsServer::start(repo.path(), TOKEN, &leaf.cert_pem, &leaf.key_pem);
        let files = tempfile::tempdir().expect("tempdir");
        let ca_file = files.path().join("ca.pem");
        std::fs::write(&ca_file, pki.ca_pem()).expect("write CA bundle");
        Remote {
            server,
            repo,
            files,
            ca_file,
        }
    }

    /// A token file as a Secret volume would hold it (with a trailing newline).
    fn token_file(&self, token: &str) -> PathBuf {
        let path = self.files.path().join(format!("token-{token}"));
        std::fs::write(&path, format!("{token}\n")).expect("write token");
        path
    }

    /// How many upload-pack requests (the ones that download objects) the server answered.
    fn downloads(&self) -> usize {
        self.server
            .served()
            .iter()
            .filter(|s| s.method == "POST" && s.target.ends_with("/git-upload-pack"))
            .count()
    }

    /// `drgitops reconcile --once` of `cluster` (as the east domain) from this remote with `token`, as the
    /// shipped `drgitops-reconciler` ServiceAccount with the system namespace of the shipped Deployment.
    async fn reconcile_once(&self, cluster: &Cluster, token: &str) -> ReconcileOnce {
        let dir = tempfile::tempdir().expect("tempdir");
        let kubeconfig = cluster
            .service_account_kubeconfig("drgitops-reconciler")
            .await;
        let token_file = self.token_file(token);
        let args = [
            "reconcile",
            "--once",
            "--cluster-domain",
            EAST,
            "--system-namespace",
            SYSTEM_NAMESPACE,
            "--git-url",
            &self.server.url(),
            "--git-path",
            "plans",
            "--git-token-file",
            token_file.to_str().expect("utf-8"),
            "--cache-dir",
            dir.path().join("cache").to_str().expect("utf-8"),
        ]
        .map(String::from)
        .to_vec();
        ReconcileOnce {
            dir,
            kubeconfig,
            args,
        }
    }
}

/// One `reconcile --once` command line; every run shares its kubeconfig and git cache.
struct ReconcileOnce {
    dir: tempfile::TempDir,
    kubeconfig: PathBuf,
    args: Vec<String>,
}

impl ReconcileOnce {
    async fn run(&self, remote: &Remote) -> Output {
        let args: Vec<&str> = self.args.iter().map(String::as_str).collect();
        drgitops(&args, &remote.ca_file, Some(&self.kubeconfig)).await
    }

    fn cache(&self) -> PathBuf {
        self.dir.path().join("cache")
    }
}

/// Runs the binary with `SSL_CERT_FILE` set to `ca_file` and no ambient `DRGITOPS_*` settings; fails the test if it
/// does not finish within a minute (a credentials loop would hang here).
async fn drgitops(args: &[&str], ca_file: &Path, kubeconfig: Option<&Path>) -> Output {
    let mut command = tokio::process::Command::new(crate::DRGITOPS);
    command
        .args(args)
        .env("SSL_CERT_FILE", ca_file)
        .kill_on_drop(true);
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("DRGITOPS_") {
            command.env_remove(name);
        }
    }
    if let Some(kubeconfig) = kubeconfig {
        command.env("KUBECONFIG", kubeconfig);
    }
    tokio::time::timeout(Duration::from_secs(60), command.output())
        .await
        .expect("drgitops finishes within a minute")
        .expect("drgitops runs")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn render_reads_plans_from_an_https_remote_with_a_token() {
    let remote = Remote::start();
    let url = remote.server.url();
    let token_file = remote.token_file(TOKEN);
    let render = [
        "render",
        "--repo",
        &url,
        "--path",
        "plans",
        "--cluster-domain",
        WEST,
    ];
    let with_token = ["--git-token-file", token_file.to_str().expect("utf-8")];

    let out = drgitops(&[&render[..], &with_token].concat(), &remote.ca_file, None).await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    let docs: Vec<serde_json::Value> = serde_yaml::Deserializer::from_str(&stdout)
        .map(|doc| serde::Deserialize::deserialize(doc).expect("yaml document"))
        .collect();
    assert_eq!(
        docs.len(),
        6,
        "two plans, each with its policy and schedule"
    );
    let schedule = docs
        .iter()
        .find(|d| d["kind"] == "MigrationSchedule" && d["metadata"]["name"] == "mysql")
        .expect("the mysql schedule");
    assert_eq!(schedule["spec"]["suspend"], true, "{WEST} is the standby");

    let anonymous = drgitops(&render, &remote.ca_file, None).await;
    assert!(!anonymous.status.success());
    assert!(anonymous.stdout.is_empty(), "nothing on stdout on error");
    let stderr = text(&anonymous.stderr);
    assert!(
        stderr.contains("the remote asks for credentials; set --git-token"),
        "{stderr}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reconcile_applies_plans_from_an_https_remote_and_refetches_nothing_unchanged() {
    let east = east().await;
    let admin = east.client().await;
    let remote = Remote::start();
    let reconcile = remote.reconcile_once(&east, TOKEN).await;
    let cache = reconcile.cache();

    let first = reconcile.run(&remote).await;
    assert!(first.status.success(), "{}", text(&first.stderr));
    let schedule = stork(&admin, "MigrationSchedule", "mysql", "mysql")
        .await
        .expect("the plan's schedule is applied");
    assert_eq!(schedule["spec"]["suspend"], false, "{EAST} is the primary");
    let applied = plan(&admin, "mysql", "mysql").await.expect("plan");
    assert_eq!(
        applied["status"]["lastAppliedRevision"].as_str(),
        Some(git(remote.repo.path(), &["rev-parse", "HEAD"]).as_str()),
        "{applied}"
    );
    assert_eq!(remote.downloads(), 1, "{:#?}", remote.server.served());
    let packs = drgitops::source::git::pack_count(&cache);

    let second = reconcile.run(&remote).await;
    assert!(second.status.success(), "{}", text(&second.stderr));
    assert_eq!(
        remote.downloads(),
        1,
        "an unchanged remote is only asked for its refs: {:#?}",
        remote.server.served()
    );
    assert_eq!(drgitops::source::git::pack_count(&cache), packs);

    let edited =
        read_data("plans/mysql.yaml").replace("intervalMinutes: 15", "intervalMinutes: 25");
    commit(
        remote.repo.path(),
        &[("plans/mysql.yaml", &edited)],
        "every 25 minutes",
    );
    let third = reconcile.run(&remote).await;
    assert!(third.status.success(), "{}", text(&third.stderr));
    assert_eq!(remote.downloads(), 2);
    let policy = stork(&admin, "NamespacedSchedulePolicy", "mysql", "mysql")
        .await
        .expect("policy");
    assert_eq!(policy["policy"]["interval"]["intervalMinutes"], 25);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_token_is_named_and_asked_for_a_bounded_number_of_times() {
    let east = east().await;
    let remote = Remote::start();
    let out = remote
        .reconcile_once(&east, "expired-token")
        .await
        .run(&remote)
        .await;
    assert_eq!(out.status.code(), Some(1), "--once fails the pass");
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains(
            "refused the credentials: credentials rejected by the remote; check the token"
        ),
        "{stderr}"
    );
    assert!(
        !stderr.contains("check --git-url"),
        "a refused token is not a URL or network problem: {stderr}"
    );
    assert!(
        !stderr.contains("expired-token"),
        "the token is never printed"
    );
    let rejected = remote
        .server
        .served()
        .iter()
        .filter(|s| s.status == 401)
        .count();
    assert!(
        (2..=4).contains(&rejected),
        "one anonymous request, then at most three attempts with the token: {:#?}",
        remote.server.served()
    );
    assert!(plan(&east.client().await, "mysql", "mysql").await.is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_certificate_outside_the_ca_bundle_is_refused() {
    let remote = Remote::start();
    let other_ca = remote.files.path().join("other-ca.pem");
    std::fs::write(&other_ca, Pki::new("some other CA").expect("CA").ca_pem())
        .expect("write bundle");
    let token_file = remote.token_file(TOKEN);
    let url = remote.server.url();
    let out = drgitops(
        &[
            "render",
            "--repo",
            &url,
            "--path",
            "plans",
            "--cluster-domain",
            WEST,
            "--git-token-file",
            token_file.to_str().expect("utf-8"),
        ],
        &other_ca,
        None,
    )
    .await;
    assert!(!out.status.success());
    assert!(out.stdout.is_empty(), "nothing on stdout on error");
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains(&format!("the TLS certificate of {url} was refused"))
            && stderr.contains("SSL_CERT_FILE"),
        "{stderr}"
    );
    assert!(
        remote.server.served().is_empty(),
        "no request is sent to an untrusted server: {:#?}",
        remote.server.served()
    );
}
