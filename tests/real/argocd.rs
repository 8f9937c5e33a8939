//! Argo CD delivering the DRPlans and the application to two real clusters: on each cluster Argo CD's
//! application controller, repo-server and `argocd-cmp-server` with `examples/argocd/plugin.yaml` (built from its
//! module, `testenv::argocd`) manage that cluster through `examples/argocd/application.yaml` and
//! `workloads-application.yaml`, fetching from an HTTPS git server on loopback, with the DRPlan health check of
//! `examples/argocd/argocd-cm.yaml`; `drgitops reconcile` runs without `--git-url` as its shipped ServiceAccount;
//! the webhook guards each cluster; Stork's Migration controllers are the test kit's stand-in.
//!
//! What a user would check: every Application Synced and Healthy, the DRPlans rendered by the plugin, a failover
//! and a failback made by commits, the application (which Argo CD applies with `replicas` from Git on both
//! clusters) running only on the primary with Git's count, never on both, and a sync of the standby's workloads
//! (as `argocd app sync` starts one, or self-heal) leaving it scaled down.

use std::path::Path;
use std::time::Duration;

use crate::reconcile_https::git_server::GitHttpsServer;
use testenv::argocd::{ArgoCd, NAMESPACE as ARGOCD, Plugin};
use testenv::pki::Pki;
use testkit::gitops::{
    commit_failover, copy_dir, protected_pair, role, settle_on, spawn_reconciler,
};
use testkit::reconcile::commit;
use testkit::webhook::Webhook;
use testkit::{Cluster, Drgitops, EAST, WEST, eventually, git, repo_file};

const NS: &str = "mysql";
const TOKEN: &str = "argocd-read-token";

/// One cluster with the webhook, the reconciler (following the DRPlans Argo CD applies) and Argo CD.
struct Site {
    cluster: Cluster,
    _webhook: Webhook,
    reconciler: Drgitops,
    argocd: ArgoCd,
}

impl Site {
    /// The Applications on this cluster: the DRPlans' and the workloads'.
    fn applications(&self) -> [String; 2] {
        [
            format!("drplans-{}", self.cluster.domain),
            format!("mysql-{}", self.cluster.domain),
        ]
    }
}

/// Two sites following one repository served over HTTPS.
struct ArgoPair {
    sites: [Site; 2],
    repo: tempfile::TempDir,
    _server: GitHttpsServer,
    _stork: testkit::migration::StorkStandIn,
}

/// The Application named `name` of `examples/argocd/<file>`, as a user adapts it: the repository's URL, and a
/// shorter retry backoff for a test.
fn application(file: &str, name: &str, url: &str) -> String {
    let text = std::fs::read_to_string(repo_file(&format!("examples/argocd/{file}")))
        .unwrap_or_else(|e| panic!("{file}: {e}"));
    let doc = text
        .split("\n---\n")
        .find(|doc| doc.contains(&format!("\n  name: {name}\n")))
        .unwrap_or_else(|| panic!("{file} has no Application {name}"));
    let doc = doc
        .replace("https://git.example.com/dr/plans.git", url)
        .replace("https://git.example.com/dr/apps.git", url)
        .replace("duration: 10s", "duration: 2s");
    assert!(
        doc.contains(url) && !doc.contains("git.example.com"),
        "{doc}"
    );
    doc
}

impl ArgoPair {
    async fn start() -> ArgoPair {
        let ([(east, east_webhook), (west, west_webhook)], stork) =
            protected_pair(crate::DRGITOPS, NS).await;

        // One repository for both Applications: the DRPlan in plans/ (application.yaml's path) and the
        // application in mysql/ (workloads-application.yaml's path), served over HTTPS with a token.
        let repo = tempfile::tempdir().expect("repo");
        git(repo.path(), &["init", "-q", "-b", "main"]);
        std::fs::create_dir_all(repo.path().join("plans")).expect("plans/");
        std::fs::create_dir_all(repo.path().join("mysql")).expect("mysql/");
        copy_dir(
            &repo_file("examples/flux/repo/plans"),
            &repo.path().join("plans"),
        );
        copy_dir(
            &repo_file("examples/flux/repo/apps/mysql"),
            &repo.path().join("mysql"),
        );
        git(repo.path(), &["add", "-A"]);
        git(repo.path(), &["commit", "-q", "-m", "protect mysql"]);
        let pki = Pki::new("argocd test git CA").expect("CA");
        let leaf = pki
            .serving(&["localhost", "127.0.0.1"])
            .expect("serving certificate");
        let server = GitHttpsServer::start(repo.path(), TOKEN, &leaf.cert_pem, &leaf.key_pem);
        let url = server.url();

        // The plugin's sidecar image holds drgitops on PATH.
        let plugin = Plugin {
            config: repo_file("examples/argocd/plugin.yaml"),
            path: vec![
                Path::new(crate::DRGITOPS)
                    .parent()
                    .expect("bin dir")
                    .to_path_buf(),
            ],
        };
        let mut sites = Vec::new();
        for (cluster, webhook) in [(east, east_webhook), (west, west_webhook)] {
            let argocd = tokio::task::block_in_place(|| {
                ArgoCd::start(&cluster.env, std::slice::from_ref(&plugin))
            })
            .unwrap_or_else(|e| panic!("Argo CD on {}: {e:#}", cluster.domain));
            // The git server's CA in argocd-tls-certs-cm, the health check, the repository and its token, and
            // this cluster under its domain's name (Argo CD's in-cluster destination: each Argo CD manages the
            // cluster it runs on).
            argocd
                .add_tls_cert("127.0.0.1", &pki.ca_pem())
                .expect("argocd-tls-certs-cm");
            cluster.kubectl(&[
                "-n",
                ARGOCD,
                "patch",
                "configmap",
                "argocd-cm",
                "--type",
                "merge",
                "--patch-file",
                &repo_file("examples/argocd/argocd-cm.yaml")
                    .display()
                    .to_string(),
            ]);
            cluster.apply_yaml(&format!(
                "apiVersion: v1\nkind: Secret\nmetadata:\n  name: dr-repo\n  namespace: {ARGOCD}\n  labels:\n    \
                 argocd.argoproj.io/secret-type: repository\nstringData:\n  type: git\n  url: {url}\n  \
                 username: argocd\n  password: {TOKEN}\n"
            ));
            cluster.apply_yaml(&format!(
                "apiVersion: v1\nkind: Secret\nmetadata:\n  name: cluster-{d}\n  namespace: {ARGOCD}\n  labels:\n    \
                 argocd.argoproj.io/secret-type: cluster\nstringData:\n  name: {d}\n  \
                 server: https://kubernetes.default.svc\n  config: '{{}}'\n",
                d = cluster.domain
            ));
            let reconciler = spawn_reconciler(crate::DRGITOPS, &cluster).await;
            cluster.apply_yaml(&application(
                "application.yaml",
                &format!("drplans-{}", cluster.domain),
                &url,
            ));
            sites.push(Site {
                cluster,
                _webhook: webhook,
                reconciler,
                argocd,
            });
        }
        let Ok(sites) = <[Site; 2]>::try_from(sites) else {
            unreachable!("two sites were pushed")
        };
        let pair = ArgoPair {
            sites,
            repo,
            _server: server,
            _stork: stork,
        };
        // The workloads' Applications once the DRPlans' are Healthy: a cluster knows it stands by only once its
        // plan is there, and until then the webhook lets a Deployment run (Argo CD has no ordering between
        // Applications; Flux's `dependsOn` is what orders them there).
        let head = pair.head();
        for site in &pair.sites {
            pair.wait_synced(site, &format!("drplans-{}", site.cluster.domain), &head)
                .await;
        }
        for site in &pair.sites {
            site.cluster.apply_yaml(&application(
                "workloads-application.yaml",
                &format!("mysql-{}", site.cluster.domain),
                &url,
            ));
        }
        pair
    }

    /// Waits until Application `name` on `site` is Synced to `revision` and Healthy.
    async fn wait_synced(&self, site: &Site, name: &str, revision: &str) {
        let synced = eventually(Duration::from_secs(180), || async {
            let app = app_status(&site.cluster, name);
            (app.sync == "Synced" && app.revision == revision && app.health == "Healthy")
                .then_some(())
        })
        .await;
        assert!(
            synced.is_some(),
            "Application {name} on {} never became Synced at {revision} and Healthy: {:?}\n{}",
            site.cluster.domain,
            app_status(&site.cluster, name),
            self.describe()
        );
    }

    /// The current commit of the repository.
    fn head(&self) -> String {
        git(self.repo.path(), &["rev-parse", "HEAD"])
    }

    /// `drgitops failover --plan mysql --to DOMAIN` on the repository, as the on-call engineer runs it, then a
    /// refresh of the DRPlans' Applications (the runbook's `argocd app sync`, or a Git webhook, saves waiting for
    /// Argo CD's next poll).
    fn commit_failover(&self, to: &str) {
        commit_failover(crate::DRGITOPS, self.repo.path(), to, &[]);
        for site in &self.sites {
            refresh(&site.cluster, &format!("drplans-{}", site.cluster.domain));
        }
    }

    /// Everything a failing wait shows: the Applications, the plans, the Deployments and the logs.
    fn describe(&self) -> String {
        self.sites
            .iter()
            .map(|site| {
                let c = &site.cluster;
                format!(
                    "== {}\n{}\n{}\n{}\n--- reconciler log\n{}\n{}",
                    c.domain,
                    show(
                        c,
                        &[
                            "-n",
                            ARGOCD,
                            "get",
                            "applications",
                            "-o",
                            "jsonpath={range .items[*]}{.metadata.name}: {.status.sync} {.status.health} \
                             {.status.operationState.phase} {.status.operationState.message} \
                             {.status.conditions}{\"\\n\"}{end}"
                        ]
                    ),
                    show(
                        c,
                        &[
                            "-n",
                            NS,
                            "get",
                            "drplans,deployments,migrations",
                            "-o",
                            "yaml"
                        ]
                    ),
                    show(c, &["-n", NS, "get", "events"]),
                    site.reconciler.log(),
                    site.argocd.logs_tail(30)
                )
            })
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// Waits until `primary` alone runs `replicas` ready pods, checking on every poll that the two clusters
    /// never run the application at once, and until both plans report their role; then until every Application
    /// on both clusters, refreshed after the plans settled (as `argocd app get --refresh` or a Git webhook asks),
    /// is Synced to `revision` and Healthy.
    async fn converge(&self, primary: usize, replicas: usize, revision: &str) {
        let (p, s) = (
            &self.sites[primary].cluster,
            &self.sites[1 - primary].cluster,
        );
        settle_on(
            p,
            s,
            NS,
            "mysql",
            "web",
            replicas,
            Duration::from_secs(240),
            || self.describe(),
        )
        .await;
        for site in &self.sites {
            for name in site.applications() {
                refresh(&site.cluster, &name);
                self.wait_synced(site, &name, revision).await;
            }
        }
        // Still one cluster running the application, with Git's count, after Argo CD synced it again.
        assert_eq!(p.ready_pods(NS, "web").await, replicas);
        assert_eq!(s.ready_pods(NS, "web").await, 0);
        let standby = s.get(
            &["-n", NS, "deployment", "web"],
            "{.spec.replicas} {.metadata.annotations.stork\\.libopenstorage\\.org/migrationReplicas}",
        );
        assert_eq!(
            standby,
            format!("0 {replicas}"),
            "the standby holds the application at 0 replicas, with Git's count recorded for the next failover"
        );
    }

    /// Syncs the workloads' Application on `site` as `argocd app sync` does (an operation with the Application's
    /// sync options, initiated by a user) and waits until it succeeds.
    async fn sync_workloads(&self, site: usize, revision: &str) {
        let cluster = &self.sites[site].cluster;
        let name = format!("mysql-{}", cluster.domain);
        let options = cluster.get(
            &["-n", ARGOCD, "application", &name],
            "{.spec.syncPolicy.syncOptions}",
        );
        let options: serde_json::Value = serde_json::from_str(&options).expect("syncOptions");
        let patch = serde_json::json!({
            "operation": {
                "initiatedBy": {"username": "on-call"},
                "sync": {"revision": revision, "syncOptions": options},
            }
        });
        cluster.kubectl(&[
            "-n",
            ARGOCD,
            "patch",
            "application",
            &name,
            "--type",
            "merge",
            "-p",
            &patch.to_string(),
        ]);
        let done = eventually(Duration::from_secs(90), || async {
            let state = cluster.get(
                &["-n", ARGOCD, "application", &name],
                "{.status.operationState.operation.initiatedBy.username} {.status.operationState.phase} \
                 {.status.operationState.syncResult.revision}",
            );
            (state == format!("on-call Succeeded {revision}")).then_some(())
        })
        .await;
        assert!(
            done.is_some(),
            "the sync of {name} on {} never succeeded\n{}",
            cluster.domain,
            self.describe()
        );
    }
}

/// kubectl's stdout and stderr, for a failure message.
fn show(cluster: &Cluster, args: &[&str]) -> String {
    let out = cluster.kubectl_output(args, None);
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Asks Argo CD to compare the Application with Git now (`argocd app get --hard-refresh`): a hard refresh, since a
/// normal one takes the branch's commit from the repo-server's cache (kept for up to 3 minutes).
fn refresh(cluster: &Cluster, name: &str) {
    cluster.kubectl(&[
        "-n",
        ARGOCD,
        "annotate",
        "--overwrite",
        "application",
        name,
        "argocd.argoproj.io/refresh=hard",
    ]);
}

/// What `argocd app get` shows of one Application.
#[derive(Debug)]
struct AppStatus {
    sync: String,
    revision: String,
    health: String,
}

fn app_status(cluster: &Cluster, name: &str) -> AppStatus {
    let out = cluster.get(
        &["-n", ARGOCD, "application", name],
        "{.status.sync.status}|{.status.sync.revision}|{.status.health.status}",
    );
    let mut parts = out.splitn(3, '|').map(str::to_string);
    let mut next = || parts.next().unwrap_or_default();
    AppStatus {
        sync: next(),
        revision: next(),
        health: next(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn argocd_delivers_plans_and_applications_through_failover_and_failback() {
    let pair = ArgoPair::start().await;
    let (east, west) = (0, 1);
    pair.converge(east, 3, &pair.head()).await;

    // The plugin rendered the DRPlan for each cluster: Argo CD applied it, and lists it among its resources.
    for site in &pair.sites {
        let name = format!("drplans-{}", site.cluster.domain);
        let kinds = site.cluster.get(
            &["-n", ARGOCD, "application", &name],
            "{.status.resources[*].kind}",
        );
        assert!(kinds.contains("DRPlan"), "{name} manages {kinds}");
        let manager = site.cluster.get(
            &["-n", NS, "drplan", "mysql"],
            "{.metadata.managedFields[*].manager}",
        );
        assert!(manager.contains("argocd-controller"), "{manager}");
    }

    // Failover: a commit Argo CD fetches and syncs on both clusters.
    pair.commit_failover(WEST);
    let revision = pair.head();
    pair.converge(west, 3, &revision).await;

    // A sync of the new standby's workloads, as `argocd app sync` or self-heal runs one: Git says 3 replicas,
    // the standby keeps 0.
    pair.sync_workloads(east, &revision).await;
    assert_eq!(pair.sites[east].cluster.ready_pods(NS, "web").await, 0);
    assert_eq!(
        pair.sites[east]
            .cluster
            .get(&["-n", NS, "deployment", "web"], "{.spec.replicas}"),
        "0"
    );
    assert_eq!(pair.sites[west].cluster.ready_pods(NS, "web").await, 3);

    // Failback.
    pair.commit_failover(EAST);
    pair.converge(east, 3, &pair.head()).await;
    assert_eq!(
        role(&pair.sites[east].cluster, NS, "mysql").as_deref(),
        Some("Primary")
    );
    assert_eq!(
        role(&pair.sites[west].cluster, NS, "mysql").as_deref(),
        Some("Standby")
    );

    // Git changes the count: Argo CD ignores `replicas` on both clusters (workloads-application.yaml), so both
    // Applications are Synced at the commit and Git's new count reaches neither cluster: the primary keeps running
    // 3, and the standby keeps 3 recorded for the next failover (the README says how to change the count).
    let web = std::fs::read_to_string(pair.repo.path().join("mysql/web.yaml")).expect("web.yaml");
    let revision = commit(
        pair.repo.path(),
        &[("mysql/web.yaml", &web.replace("replicas: 3", "replicas: 4"))],
        "web: 4 replicas",
    );
    for site in &pair.sites {
        let name = format!("mysql-{}", site.cluster.domain);
        refresh(&site.cluster, &name);
        pair.wait_synced(site, &name, &revision).await;
    }
    let (e, w) = (&pair.sites[east].cluster, &pair.sites[west].cluster);
    assert_eq!(e.ready_pods(NS, "web").await, 3);
    assert_eq!(
        e.get(&["-n", NS, "deployment", "web"], "{.spec.replicas}"),
        "3"
    );
    assert_eq!(w.ready_pods(NS, "web").await, 0);
    assert_eq!(
        w.get(
            &["-n", NS, "deployment", "web"],
            "{.spec.replicas} {.metadata.annotations.stork\\.libopenstorage\\.org/migrationReplicas}",
        ),
        "0 3"
    );
}
