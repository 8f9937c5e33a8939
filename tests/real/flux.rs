//! Flux delivering the DRPlans and the applications to two real clusters: Flux's source-controller and
//! kustomize-controller (built from their modules, `testenv::flux`) fetch `examples/flux/sync.yaml`'s repository
//! from an HTTPS git server on loopback; `drgitops reconcile` runs without `--git-url` as its shipped
//! ServiceAccount; the webhook guards each cluster; Stork's Migration controllers are the test kit's stand-in.
//!
//! What a user would check: a failover and a failback made by commits that Flux fetches, the application (Flux
//! applies it with `replicas` from Git on both clusters) running only on the primary with Git's count, never on
//! both, every Kustomization Ready at the end, and a broken DRPlan commit reported on the Kustomization with our
//! message.

use std::time::Duration;

use drgitops::plan::{DRPlan, Role};
use kube::Api;

use crate::reconcile_https::git_server::GitHttpsServer;
use testenv::flux::Flux;
use testenv::pki::Pki;
use testkit::gitops::{commit_failover, copy_dir, protected_pair, settle_on, spawn_reconciler};
use testkit::gpg::Gpg;
use testkit::reconcile::commit;
use testkit::webhook::Webhook;
use testkit::{Cluster, Drgitops, EAST, WEST, eventually, git, repo_file};

const NS: &str = "mysql";
const TOKEN: &str = "flux-read-token";
const KUSTOMIZATIONS: [&str; 2] = ["drplans", "apps"];

/// One cluster with the webhook, the reconciler (following the DRPlans Flux applies) and Flux.
struct Site {
    cluster: Cluster,
    _webhook: Webhook,
    reconciler: Drgitops,
    _flux: Flux,
}

/// Two sites following one repository served over HTTPS.
struct FluxPair {
    sites: [Site; 2],
    repo: tempfile::TempDir,
    /// The on-call engineer's OpenPGP key, which signs every commit but the last one of the test; Flux trusts it.
    gpg: Gpg,
    _server: GitHttpsServer,
    _stork: testkit::migration::StorkStandIn,
}

/// `examples/flux/sync.yaml` as a user adapts it: the repository's URL, a Secret with the token and the CA,
/// and intervals short enough for a test.
fn sync_yaml(url: &str) -> String {
    let text = std::fs::read_to_string(repo_file("examples/flux/sync.yaml")).expect("sync.yaml");
    let text = text
        .replace("https://git.example.com/platform/dr.git", url)
        .replace("interval: 1m", "interval: 3s")
        .replace("retryInterval: 30s", "retryInterval: 2s")
        .replace("timeout: 5m", "timeout: 30s");
    assert!(
        text.contains(url) && !text.contains("interval: 1m"),
        "{text}"
    );
    text
}

impl FluxPair {
    async fn start() -> FluxPair {
        let ([(east, east_webhook), (west, west_webhook)], stork) =
            protected_pair(crate::DRGITOPS, NS).await;

        // The repository of examples/flux/repo, served over HTTPS with a token, its commits signed.
        let repo = tempfile::tempdir().expect("repo");
        git(repo.path(), &["init", "-q", "-b", "main"]);
        let gpg = Gpg::with_key("On-call <oncall@example.com>");
        gpg.sign_commits_in(repo.path(), "oncall@example.com");
        copy_dir(&repo_file("examples/flux/repo"), repo.path());
        signed_commit(repo.path(), &gpg, &[], "protect mysql");
        let pki = Pki::new("flux test git CA").expect("CA");
        let leaf = pki
            .serving(&["localhost", "127.0.0.1"])
            .expect("serving certificate");
        let server = GitHttpsServer::start(repo.path(), TOKEN, &leaf.cert_pem, &leaf.key_pem);

        let mut sites = Vec::new();
        for (cluster, webhook) in [(east, east_webhook), (west, west_webhook)] {
            let flux = tokio::task::block_in_place(|| Flux::start(&cluster.env))
                .unwrap_or_else(|e| panic!("Flux on {}: {e:#}", cluster.domain));
            cluster.kubectl(&["create", "namespace", "flux-system"]);
            cluster.kubectl(&[
                "-n",
                "flux-system",
                "create",
                "secret",
                "generic",
                "dr-git-auth",
                "--from-literal=username=flux",
                &format!("--from-literal=password={TOKEN}"),
                &format!("--from-literal=ca.crt={}", pki.ca_pem()),
            ]);
            cluster.kubectl(&[
                "-n",
                "flux-system",
                "create",
                "secret",
                "generic",
                "dr-signing-keys",
                &format!(
                    "--from-literal=oncall.asc={}",
                    gpg.public_key("oncall@example.com")
                ),
            ]);
            cluster.apply_yaml(&sync_yaml(&server.url()));
            let reconciler = spawn_reconciler(crate::DRGITOPS, &cluster).await;
            sites.push(Site {
                cluster,
                _webhook: webhook,
                reconciler,
                _flux: flux,
            });
        }
        let Ok(sites) = <[Site; 2]>::try_from(sites) else {
            unreachable!("two sites were pushed")
        };
        FluxPair {
            sites,
            repo,
            gpg,
            _server: server,
            _stork: stork,
        }
    }

    fn east(&self) -> &Cluster {
        &self.sites[0].cluster
    }

    fn west(&self) -> &Cluster {
        &self.sites[1].cluster
    }

    /// The current commit of the repository.
    fn head(&self) -> String {
        git(self.repo.path(), &["rev-parse", "HEAD"])
    }

    /// `drgitops failover --plan mysql --to DOMAIN` on the repository, as the on-call engineer runs it.
    fn commit_failover(&self, to: &str) {
        commit_failover(
            crate::DRGITOPS,
            self.repo.path(),
            to,
            &[("GNUPGHOME", self.gpg.home())],
        );
    }

    /// Everything a failing wait shows: the Kustomizations, the plans, the Deployments and the logs.
    fn describe(&self) -> String {
        self.sites
            .iter()
            .map(|site| {
                let c = &site.cluster;
                format!(
                    "== {}\n{}\n{}\n{}\n--- reconciler log\n{}",
                    c.domain,
                    show(
                        c,
                        &[
                            "-n",
                            "flux-system",
                            "get",
                            "gitrepositories,kustomizations",
                            "-o",
                            "yaml"
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
                    site.reconciler.log()
                )
            })
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// Waits until `primary` alone runs `replicas` ready pods, checking on every poll that the two clusters
    /// never run the application at once, and until both plans report their role and every Kustomization on
    /// both clusters is Ready at `revision`, having applied it after the plans settled.
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
            Duration::from_secs(180),
            || self.describe(),
        )
        .await;
        // Flux re-applies the applications after the hand-over (a reconcile requested now), and is content with
        // what it finds on both clusters.
        for site in &self.sites {
            for name in KUSTOMIZATIONS {
                let requested = format!("{revision}-{name}");
                site.cluster.kubectl(&[
                    "-n",
                    "flux-system",
                    "annotate",
                    "--overwrite",
                    "kustomization",
                    name,
                    &format!("reconcile.fluxcd.io/requestedAt={requested}"),
                ]);
                let ready = eventually(Duration::from_secs(90), || async {
                    let k = kustomization(&site.cluster, name);
                    (k.handled == requested
                        && k.ready == "True"
                        && k.applied.ends_with(&format!("sha1:{revision}")))
                    .then_some(())
                })
                .await;
                assert!(
                    ready.is_some(),
                    "Kustomization {name} on {} never became Ready at {revision}: {:?}\n{}",
                    site.cluster.domain,
                    kustomization(&site.cluster, name),
                    self.describe()
                );
            }
        }
        // Still one cluster running the application, with Git's count, after Flux applied it again.
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
        // Git says `suspend: false`: the primary runs the CronJob, the standby keeps it suspended.
        for (cluster, suspended) in [(p, "false"), (s, "true")] {
            let suspend = cluster.get(&["-n", NS, "cronjob", "backup"], "{.spec.suspend}");
            assert_eq!(suspend, suspended, "CronJob backup on {}", cluster.domain);
        }
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

/// The plan's role on `cluster`, as its reconciler reports it.
async fn role(cluster: &Cluster) -> Option<Role> {
    Api::<DRPlan>::namespaced(cluster.client().await, NS)
        .get_opt("mysql")
        .await
        .ok()??
        .status?
        .role
}

/// What `flux get kustomizations` shows of one.
#[derive(Debug)]
struct KustomizationStatus {
    ready: String,
    message: String,
    applied: String,
    handled: String,
}

fn kustomization(cluster: &Cluster, name: &str) -> KustomizationStatus {
    let out = cluster.get(
        &["-n", "flux-system", "kustomization", name],
        "{.status.conditions[?(@.type==\"Ready\")].status}|{.status.lastAppliedRevision}|{.status.lastHandledReconcileAt}|{.status.conditions[?(@.type==\"Ready\")].message}",
    );
    let mut parts = out.splitn(4, '|').map(str::to_string);
    let mut next = || parts.next().unwrap_or_default();
    KustomizationStatus {
        ready: next(),
        applied: next(),
        handled: next(),
        message: next(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flux_delivers_plans_and_applications_through_failover_and_failback() {
    let pair = FluxPair::start().await;
    let (east, west) = (0, 1);
    pair.converge(east, 3, &pair.head()).await;

    // Failover: a commit Flux fetches and applies on both clusters.
    pair.commit_failover(WEST);
    pair.converge(west, 3, &pair.head()).await;

    // Git changes the count while west is primary: west runs it, east records it for the failback.
    let web =
        std::fs::read_to_string(pair.repo.path().join("apps/mysql/web.yaml")).expect("web.yaml");
    let revision = signed_commit(
        pair.repo.path(),
        &pair.gpg,
        &[(
            "apps/mysql/web.yaml",
            &web.replace("replicas: 3", "replicas: 4"),
        )],
        "web: 4 replicas",
    );
    pair.converge(west, 4, &revision).await;

    // Failback.
    pair.commit_failover(EAST);
    pair.converge(east, 4, &pair.head()).await;

    // A broken DRPlan commit: Flux reports our validation message on the Kustomization, nothing changes.
    let plan = std::fs::read_to_string(pair.repo.path().join("plans/mysql.yaml")).expect("plan");
    let broken = signed_commit(
        pair.repo.path(),
        &pair.gpg,
        &[(
            "plans/mysql.yaml",
            &plan.replace("primary: us-east-1a", "primary: us-east-1z"),
        )],
        "mysql: a primary that is not a domain",
    );
    for site in &pair.sites {
        let reported = eventually(Duration::from_secs(60), || async {
            let k = kustomization(&site.cluster, "drplans");
            (k.ready == "False" && k.message.contains("us-east-1z")).then_some(k.message)
        })
        .await;
        let message = reported.unwrap_or_else(|| {
            panic!(
                "Kustomization drplans on {} never reported the broken plan {broken}: {:?}",
                site.cluster.domain,
                kustomization(&site.cluster, "drplans")
            )
        });
        assert!(message.contains("denied the request"), "{message}");
    }
    assert_eq!(role(pair.east()).await, Some(Role::Primary));
    assert_eq!(role(pair.west()).await, Some(Role::Standby));
    assert_eq!(pair.east().ready_pods(NS, "web").await, 4);
    assert_eq!(pair.west().ready_pods(NS, "web").await, 0);

    // An unsigned role change (moving the primary to west) is not fetched: Flux's signature check refuses it,
    // and neither cluster changes.
    let unsigned = commit(
        pair.repo.path(),
        &[(
            "plans/mysql.yaml",
            &plan.replace("primary: us-east-1a", "primary: us-east-1b"),
        )],
        "mysql: to us-east-1b, unsigned",
    );
    for site in &pair.sites {
        let refused = eventually(Duration::from_secs(60), || async {
            let verified = site.cluster.get(
                &["-n", "flux-system", "gitrepository", "dr"],
                "{.status.conditions[?(@.type==\"SourceVerified\")].status}|{.status.conditions[?(@.type==\"SourceVerified\")].message}",
            );
            (verified.starts_with("False|") && verified.contains(&unsigned[..7])).then_some(verified)
        })
        .await;
        assert!(
            refused.is_some(),
            "Flux on {} did not refuse the unsigned commit {unsigned}\n{}",
            site.cluster.domain,
            pair.describe()
        );
        let primary = site
            .cluster
            .get(&["-n", NS, "drplan", "mysql"], "{.spec.primary}");
        assert_eq!(
            primary, EAST,
            "the unsigned role change reached {}",
            site.cluster.domain
        );
    }
    assert_eq!(role(pair.east()).await, Some(Role::Primary));
    assert_eq!(pair.east().ready_pods(NS, "web").await, 4);
    assert_eq!(pair.west().ready_pods(NS, "web").await, 0);
}

/// Writes `files` into `repo` and commits them signed with the repository's signing key; returns the commit id.
fn signed_commit(
    repo: &std::path::Path,
    gpg: &Gpg,
    files: &[(&str, &str)],
    message: &str,
) -> String {
    for (path, contents) in files {
        std::fs::write(repo.join(path), contents).expect("write");
    }
    for args in [
        &["add", "-A"][..],
        &[
            "-c",
            "user.name=On-call",
            "-c",
            "user.email=oncall@example.com",
            "commit",
            "-q",
            "-m",
            message,
        ],
    ] {
        let out = std::process::Command::new("git")
            .args(args)
            .current_dir(repo)
            .env("GNUPGHOME", gpg.home())
            .output()
            .expect("git runs");
        assert!(out.status.success(), "git {args:?}: {out:?}");
    }
    git(repo, &["rev-parse", "HEAD"])
}
