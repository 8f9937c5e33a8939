//! A failover and a failback you can watch, with no cluster: `cargo run --example failover-demo`.
//!
//! Two in-memory Kubernetes API servers play the clusters of cluster domains `us-east-1a` and `us-east-1b`. A Git
//! repository in a temporary directory holds the DRPlan. `drgitops failover` commits the change of primary; each
//! cluster's reconciler picks the commit up and runs its half of the transition. Every step is printed as it
//! happens, on both sides, and the `drgitops status` table of each cluster at the end.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use drgitops::cli::failover::failover;
use drgitops::cli::status::{render_table, summaries};
use drgitops::gitops::transition_exec::TransitionExecutor;
use drgitops::plan::DRPlan;
use fake_apiserver::FakeApiServer;
use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};
use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{ApiResource, DynamicObject, GroupVersionKind, Patch, PatchParams, PostParams};
use kube::{Api, Client};
use serde_json::{Value, json};

const PLAN: &str = r#"# The shop's DR plan. Changing `primary` is the failover button.
apiVersion: drgitops.dev/v1alpha1
kind: DRPlan
metadata:
  name: shop
  namespace: shop
spec:
  mode: async
  primary: us-east-1a          # runs the applications
  domains:
    - {name: us-east-1a}
    - {name: us-east-1b}
  clusterPair:
    name: remotecluster
    peerKubeconfigSecret: {name: drgitops-peer, key: kubeconfig}
  schedule:
    interval: {intervalMinutes: 15}
  failover:
    peerStopTimeoutSeconds: 300
"#;

const STORK_CRDS: &str = include_str!("../tests/data/failover/stork-crds.yaml");

type Error = Box<dyn std::error::Error + Send + Sync>;

struct Cluster {
    domain: &'static str,
    server: FakeApiServer,
    client: Client,
}

fn schedules() -> ApiResource {
    ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("stork.libopenstorage.org", "v1alpha1", "MigrationSchedule"),
        "migrationschedules",
    )
}

impl Cluster {
    /// A cluster with the CRDs, the `shop` namespace, and its workloads: running on the primary, at 0 with their
    /// counts recorded (as Stork's migrations leave them) on the standby.
    async fn start(domain: &'static str, primary: bool) -> Result<Cluster, Error> {
        let server = FakeApiServer::start().await?;
        let client = server.client();
        let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
        crds.create(&PostParams::default(), &drgitops::plan::crd::crd())
            .await?;
        for doc in serde_yaml::Deserializer::from_str(STORK_CRDS) {
            let crd: CustomResourceDefinition = serde::Deserialize::deserialize(doc)?;
            crds.create(&PostParams::default(), &crd).await?;
        }
        let ns: Namespace = serde_json::from_value(json!({"metadata": {"name": "shop"}}))?;
        Api::<Namespace>::all(client.clone())
            .create(&PostParams::default(), &ns)
            .await?;
        for (kind, name, replicas) in [("Deployment", "web", 3), ("StatefulSet", "db", 2)] {
            let annotations = if primary {
                json!({})
            } else {
                json!({"stork.libopenstorage.org/migrationReplicas": replicas.to_string()})
            };
            let object = json!({
                "metadata": {"name": name, "namespace": "shop", "annotations": annotations},
                "spec": {"replicas": if primary { replicas } else { 0 }, "serviceName": name,
                         "selector": {"matchLabels": {"app": name}},
                         "template": {"metadata": {"labels": {"app": name}},
                                      "spec": {"containers": [{"name": name, "image": "registry.example/shop:1"}]}}}
            });
            if kind == "Deployment" {
                let d: Deployment = serde_json::from_value(object)?;
                Api::<Deployment>::namespaced(client.clone(), "shop")
                    .create(&PostParams::default(), &d)
                    .await?;
            } else {
                let s: StatefulSet = serde_json::from_value(object)?;
                Api::<StatefulSet>::namespaced(client.clone(), "shop")
                    .create(&PostParams::default(), &s)
                    .await?;
            }
        }
        Ok(Cluster {
            domain,
            server,
            client,
        })
    }

    /// What the git source does: apply the plan of the checked-out revision.
    async fn sync(&self, repo: &Path, revision: &str) -> Result<DRPlan, Error> {
        let text = std::fs::read_to_string(repo.join("plans/shop.yaml"))?;
        let mut plan: Value = serde_yaml::from_str(&text)?;
        plan["metadata"]["annotations"] = json!({"drgitops.dev/revision": revision});
        let api: Api<DRPlan> = Api::namespaced(self.client.clone(), "shop");
        Ok(api
            .patch(
                "shop",
                &PatchParams::apply("git-source").force(),
                &Patch::Apply(&plan),
            )
            .await?)
    }

    /// One reconcile of the plan; returns the step changes it made and whether it is done.
    async fn reconcile(
        &self,
        peer: &Cluster,
        revision: &str,
    ) -> Result<(Vec<String>, bool), Error> {
        let plan = Api::<DRPlan>::namespaced(self.client.clone(), "shop")
            .get("shop")
            .await?;
        let primary = plan.spec.primary == self.domain;
        let client = self.client.clone();
        let executor = TransitionExecutor::new(self.client.clone(), Duration::from_secs(2));
        let outcome = executor
            .run(&plan, self.domain, revision, Some(&peer.server.kubeconfig()), || {
                // The plan controller's apply of this role's MigrationSchedule.
                let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), "shop", &schedules());
                let desired = json!({
                    "apiVersion": "stork.libopenstorage.org/v1alpha1", "kind": "MigrationSchedule",
                    "metadata": {"name": "shop", "namespace": "shop"},
                    "spec": {"schedulePolicyName": "shop", "suspend": !primary,
                             "template": {"spec": {"clusterPair": "remotecluster", "namespaces": ["shop"],
                                                   "startApplications": false}}}
                });
                async move {
                    api.patch("shop", &PatchParams::apply("drgitops").force(), &Patch::Apply(&desired))
                        .await
                        .map(drop)
                        .map_err(|e| e.to_string())
                }
            })
            .await?;
        let lines = outcome
            .events
            .iter()
            .map(|e| format!("{:<30} {}", e.reason, e.message))
            .collect();
        Ok((lines, outcome.complete))
    }

    async fn workloads(&self) -> Result<String, Error> {
        let d = Api::<Deployment>::namespaced(self.client.clone(), "shop")
            .get("web")
            .await?;
        let s = Api::<StatefulSet>::namespaced(self.client.clone(), "shop")
            .get("db")
            .await?;
        let count = |r: Option<i32>| r.unwrap_or(1);
        Ok(format!(
            "web={} db={}",
            count(d.spec.and_then(|s| s.replicas)),
            count(s.spec.and_then(|s| s.replicas))
        ))
    }
}

fn git(repo: &Path, args: &[&str]) -> Result<String, Error> {
    let out = Command::new("git")
        .arg("-C")
        .arg(repo)
        .args(args)
        .output()?;
    if !out.status.success() {
        return Err(format!("git {args:?}: {}", String::from_utf8_lossy(&out.stderr)).into());
    }
    Ok(String::from_utf8(out.stdout)?.trim().to_string())
}

struct Timeline {
    start: Instant,
}

impl Timeline {
    fn line(&self, who: &str, what: &str) {
        println!(
            "{:>7.3}s  {who:<11} {what}",
            self.start.elapsed().as_secs_f64()
        );
    }
}

/// Commits a change of primary, lets both clusters pick it up and reconcile until both are done.
async fn transition(
    timeline: &Timeline,
    repo: &Path,
    clusters: (&Cluster, &Cluster),
    to: &str,
    message: &str,
) -> Result<(), Error> {
    let report = failover(repo, "shop", to, None, Some(message))?;
    timeline.line(
        "git",
        &format!("{} ({})", report.summary, &report.commit[..12]),
    );
    let (a, b) = clusters;
    // The new primary's reconciler happens to see the commit first: the fence makes it wait for the other.
    let (first, second) = if to == b.domain { (b, a) } else { (a, b) };
    for c in [first, second] {
        c.sync(repo, &report.commit).await?;
    }
    for _ in 0..10 {
        let mut done = true;
        for (me, peer) in [(first, second), (second, first)] {
            let (lines, complete) = me.reconcile(peer, &report.commit).await?;
            for line in lines {
                timeline.line(me.domain, &line);
            }
            done &= complete;
        }
        if done {
            break;
        }
    }
    timeline.line(a.domain, &a.workloads().await?);
    timeline.line(b.domain, &b.workloads().await?);
    Ok(())
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<(), Error> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let timeline = Timeline {
        start: Instant::now(),
    };
    let a = Cluster::start("us-east-1a", true).await?;
    let b = Cluster::start("us-east-1b", false).await?;
    timeline.line(
        "us-east-1a",
        &format!(
            "cluster up at {} (primary: {})",
            a.server.url(),
            a.workloads().await?
        ),
    );
    timeline.line(
        "us-east-1b",
        &format!(
            "cluster up at {} (standby: {})",
            b.server.url(),
            b.workloads().await?
        ),
    );

    let dir = tempfile::tempdir()?;
    let repo = dir.path();
    std::fs::create_dir_all(repo.join("plans"))?;
    std::fs::write(repo.join("plans/shop.yaml"), PLAN)?;
    git(repo, &["init", "-q", "-b", "main"])?;
    git(repo, &["config", "user.name", "On-call"])?;
    git(repo, &["config", "user.email", "oncall@example.com"])?;
    git(repo, &["config", "commit.gpgsign", "false"])?;
    git(repo, &["add", "."])?;
    git(
        repo,
        &["commit", "-q", "-m", "shop: DR plan, primary us-east-1a"],
    )?;
    let first = git(repo, &["rev-parse", "HEAD"])?;
    timeline.line(
        "git",
        &format!("shop: DR plan, primary us-east-1a ({})", &first[..12]),
    );
    for c in [&a, &b] {
        c.sync(repo, &first).await?;
    }
    for (me, peer) in [(&a, &b), (&b, &a)] {
        me.reconcile(peer, &first).await?;
        timeline.line(me.domain, "in role, nothing to do");
    }

    println!("\n--- failover: us-east-1a goes into maintenance ---");
    transition(
        &timeline,
        repo,
        (&a, &b),
        "us-east-1b",
        "planned maintenance of us-east-1a",
    )
    .await?;
    println!("\n--- failback ---");
    transition(&timeline, repo, (&a, &b), "us-east-1a", "maintenance done").await?;

    println!("\n--- git log ---");
    println!("{}", git(repo, &["log", "--format=%h %an: %s"])?);
    for c in [&a, &b] {
        let plans = Api::<DRPlan>::all(c.client.clone())
            .list(&Default::default())
            .await?
            .items;
        println!("\n--- drgitops status on {} ---", c.domain);
        print!(
            "{}",
            render_table(&summaries(&plans, None), jiff::Timestamp::now(), true)
        );
    }
    Ok(())
}
