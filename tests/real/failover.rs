//! The whole loop on two real clusters: the reconciler renders and protects, a failover commit moves the
//! application, a failback brings it home; at every moment at most one cluster runs it, and at the end pods
//! run only on the primary.

use std::time::Duration;

use drgitops::plan::{DRPlan, Role};
use kube::Api;

use testkit::{Cluster, Drgitops, EAST, WEST, eventually};

pub const NS: &str = "mysql";

async fn role(cluster: &Cluster) -> Option<(Role, String)> {
    let plan = Api::<DRPlan>::namespaced(cluster.client().await, NS)
        .get_opt("mysql")
        .await
        .ok()??;
    let status = plan.status?;
    Some((status.role?, status.phase.unwrap_or_default()))
}

/// Waits until `primary` runs 3 ready pods and `standby` none, checking on every poll that the two never run
/// the application at once.
async fn converge(primary: &Cluster, standby: &Cluster, logs: &[&Drgitops]) {
    let done = eventually(Duration::from_secs(120), || async {
        let (p, s) = (
            primary.ready_pods(NS, "web").await,
            standby.ready_pods(NS, "web").await,
        );
        assert!(
            p == 0 || s == 0,
            "the application runs on both clusters: {p} pods on {}, {s} on {}",
            primary.domain,
            standby.domain
        );
        let roles = (role(primary).await, role(standby).await);
        match roles {
            (Some((Role::Primary, pp)), Some((Role::Standby, sp)))
                if p == 3 && s == 0 && pp == "Protected" && sp == "Standby" =>
            {
                Some(())
            }
            _ => None,
        }
    })
    .await;
    if done.is_none() {
        let stork = [primary, standby]
            .map(|c| {
                format!(
                    "{}:\n{}{}",
                    c.domain,
                    c.kubectl(&["-n", NS, "get", "migrations,drplans", "-o", "yaml"]),
                    c.kubectl(&[
                        "-n",
                        NS,
                        "get",
                        "events",
                        "--field-selector",
                        "type=Warning"
                    ])
                )
            })
            .join("\n");
        panic!(
            "{} did not become the only cluster running the application: {} ready pods there, {} on {}; roles {:?} / {:?}\n{stork}\n{}",
            primary.domain,
            primary.ready_pods(NS, "web").await,
            standby.ready_pods(NS, "web").await,
            standby.domain,
            role(primary).await,
            role(standby).await,
            logs.iter()
                .map(|l| l.log())
                .collect::<Vec<_>>()
                .join("\n----\n")
        );
    }
}

/// Two clusters with the reconciler installed from the shipped manifests and running as its ServiceAccount,
/// following a repository whose plan `mysql` makes east the primary; the application as Stork leaves it.
pub struct Pair {
    pub east: Cluster,
    pub west: Cluster,
    pub repo: tempfile::TempDir,
    pub stork: testkit::migration::StorkStandIn,
    pub reconcilers: Vec<Drgitops>,
    /// With [`Pair::start_with_west_proxy`]: the fault proxy between west's reconciler and its kube-apiserver.
    pub west_proxy: Option<testenv::faults::FaultProxy>,
}

impl Pair {
    pub async fn start() -> Pair {
        Self::start_with(false).await
    }

    /// A pair whose west reconciler reaches its own kube-apiserver through a [`testenv::faults::FaultProxy`].
    pub async fn start_with_west_proxy() -> Pair {
        Self::start_with(true).await
    }

    async fn start_with(west_proxy: bool) -> Pair {
        let testkit::reconcile::Pair {
            east,
            west,
            repo,
            stork,
        } = testkit::reconcile::Pair::start(3).await;
        let mut pair = Pair {
            east,
            west,
            repo,
            stork,
            reconcilers: Vec::new(),
            west_proxy: None,
        };
        if west_proxy {
            let target = pair
                .west
                .env
                .url()
                .trim_start_matches("https://")
                .parse()
                .expect("kube-apiserver address");
            pair.west_proxy =
                Some(testenv::faults::FaultProxy::start(target).expect("fault proxy"));
        }
        for i in 0..2 {
            let reconciler = pair.spawn_reconciler(i).await;
            pair.reconcilers.push(reconciler);
        }
        pair
    }

    fn cluster(&self, i: usize) -> &Cluster {
        [&self.east, &self.west][i]
    }

    /// `drgitops reconcile` for cluster `i` (0 east, 1 west), polling the repository every second.
    pub async fn spawn_reconciler(&self, i: usize) -> Drgitops {
        let cluster = self.cluster(i);
        let kubeconfig = cluster
            .service_account_kubeconfig("drgitops-reconciler")
            .await;
        if let (1, Some(proxy)) = (i, &self.west_proxy) {
            let yaml = std::fs::read_to_string(&kubeconfig).expect("kubeconfig");
            let via = yaml.replace(cluster.env.url(), &format!("https://{}", proxy.addr()));
            std::fs::write(&kubeconfig, via).expect("kubeconfig through the proxy");
        }
        let cache = cluster.dir.path().join("cache");
        Drgitops::spawn(
            crate::DRGITOPS,
            &kubeconfig,
            &[
                "reconcile",
                "--cluster-domain",
                &cluster.domain,
                "--git-url",
                &self.repo.path().display().to_string(),
                "--git-path",
                "plans",
                "--interval",
                "1s",
                "--admin-listen",
                "127.0.0.1:0",
                "--system-namespace",
                "drgitops-system",
                "--cache-dir",
                &cache.display().to_string(),
            ],
            cluster.dir.path().join("reconcile.log"),
        )
    }

    /// `drgitops failover --plan mysql --to DOMAIN`, as the on-call engineer runs it.
    pub fn commit_failover(&self, to: &str) {
        self.commit_failover_with(to, &["--no-live"], None);
    }

    /// `drgitops failover --plan mysql --to DOMAIN ARGS...`, with `KUBECONFIG=kubeconfig` when given; returns
    /// its stdout.
    pub fn commit_failover_with(
        &self,
        to: &str,
        args: &[&str],
        kubeconfig: Option<&std::path::Path>,
    ) -> String {
        let mut command = std::process::Command::new(crate::DRGITOPS);
        if let Some(kubeconfig) = kubeconfig {
            command.env("KUBECONFIG", kubeconfig);
        }
        let out = command
            .args(["failover", "--plan", "mysql", "--to", to])
            .args(args)
            .arg("--repo")
            .arg(self.repo.path())
            .env("GIT_AUTHOR_NAME", "On-call")
            .env("GIT_AUTHOR_EMAIL", "oncall@example.com")
            .env("GIT_COMMITTER_NAME", "On-call")
            .env("GIT_COMMITTER_EMAIL", "oncall@example.com")
            .output()
            .expect("drgitops failover runs");
        assert!(
            out.status.success(),
            "drgitops failover: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Waits until `primary` alone runs the application (see [`converge`]).
    pub async fn converge(&self, primary: &Cluster, standby: &Cluster) {
        let logs: Vec<&Drgitops> = self.reconcilers.iter().collect();
        converge(primary, standby, &logs).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failover_and_failback_as_the_shipped_service_accounts() {
    let pair = Pair::start().await;
    let (east, west) = (&pair.east, &pair.west);
    pair.converge(east, west).await;
    // What each role holds: the primary migrates on a schedule; both hold the pair.
    for cluster in [east, west] {
        cluster.kubectl(&["-n", NS, "get", "clusterpair", "remotecluster"]);
    }
    east.kubectl(&["-n", NS, "get", "migrationschedule", "mysql"]);
    // Logs to a file (as in a pod) carry no terminal colour codes.
    assert!(!pair.reconcilers[0].log().contains('\u{1b}'));

    for (to, from_cluster, to_cluster) in [(WEST, east, west), (EAST, west, east)] {
        pair.commit_failover(to);
        pair.converge(to_cluster, from_cluster).await;
        let schedule =
            from_cluster.get(&["-n", NS, "migrationschedule", "mysql"], "{.spec.suspend}");
        assert_eq!(schedule, "true", "the new standby's schedule is suspended");
        // The new primary's schedule runs, although Stork's static copy held its name while it stood by.
        let schedule = to_cluster.get(
            &["-n", NS, "migrationschedule", "mysql"],
            "{.spec.suspend} {.metadata.annotations}",
        );
        assert!(
            schedule.starts_with("false") && !schedule.contains("static-copy"),
            "{schedule}"
        );
    }
    // `drgitops status` on each cluster counts the pods that run there.
    for (cluster, ready) in [(east, 3), (west, 0)] {
        let kubeconfig = cluster.dir.path().join("admin.kubeconfig");
        std::fs::write(&kubeconfig, cluster.env.kubeconfig()).unwrap();
        let out = std::process::Command::new(crate::DRGITOPS)
            .args(["status", "-o", "json", "-n", NS])
            .env("KUBECONFIG", &kubeconfig)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(
            json[0]["pods"],
            serde_json::json!({"ready": ready, "total": ready, "terminating": 0}),
            "on {}",
            cluster.domain
        );
    }
}

/// Pods that take long to stop: the old primary's workloads are at 0 replicas, its DRPlan says Standby, but its
/// pods are still terminating (held here by a finalizer, as a slow shutdown or a stuck volume would hold them).
/// The new primary must not start the application until they are gone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_new_primary_waits_until_the_old_primarys_pods_are_gone() {
    let pair = Pair::start().await;
    let (east, west) = (&pair.east, &pair.west);
    pair.converge(east, west).await;
    let web_pods = ["-n", NS, "pods", "-l", "app=web"];
    let pods = east.get(&web_pods, "{.items[*].metadata.name}");
    let pods: Vec<&str> = pods.split_whitespace().collect();
    assert_eq!(pods.len(), 3, "{pods:?}");
    let patch_pods = |patch_type: &str, patch: &str| {
        for pod in &pods {
            east.kubectl(&["-n", NS, "patch", "pod", pod, patch_type, "-p", patch]);
        }
    };
    patch_pods(
        "--type=merge",
        r#"{"metadata":{"finalizers":["test.drgitops.dev/hold"]}}"#,
    );

    pair.commit_failover(WEST);
    let fence = || async {
        let plan = Api::<DRPlan>::namespaced(west.client().await, NS)
            .get("mysql")
            .await
            .ok()?;
        let transition = plan.status?.transition?;
        let step = transition.steps.into_iter().find(|s| s.name == "fence")?;
        Some((step.state, step.message.unwrap_or_default()))
    };
    let waiting = eventually(Duration::from_secs(120), || async {
        let (state, message) = fence().await?;
        (state == "Waiting" && message.contains("3 pod(s) running or terminating"))
            .then_some(message)
    })
    .await;
    let Some(message) = waiting else {
        let logs: Vec<String> = pair.reconcilers.iter().map(|r| r.log()).collect();
        panic!(
            "west's fence never waited for east's terminating pods: {:?}\n{}",
            fence().await,
            logs.join("\n----\n")
        )
    };
    for pod in &pods {
        assert!(message.contains(&format!("{NS}/{pod}")), "{message}");
    }
    let terminating = east.get(&web_pods, "{.items[*].metadata.deletionTimestamp}");
    assert_eq!(
        terminating.split_whitespace().count(),
        3,
        "east's pods are terminating"
    );
    assert_eq!(
        west.ready_pods(NS, "web").await,
        0,
        "west started nothing yet"
    );
    let replicas = west.get(&["-n", NS, "deployment", "web"], "{.spec.replicas}");
    assert_eq!(
        replicas, "0",
        "west did not scale up while east's pods remain"
    );

    // The pods finish stopping: the fence passes and west takes over.
    patch_pods(
        "--type=json",
        r#"[{"op":"remove","path":"/metadata/finalizers"}]"#,
    );
    pair.converge(west, east).await;
}
