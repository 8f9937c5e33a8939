//! A failover and a failback you can watch, with no cluster: `cargo run --example failover-demo`.
//!
//! Two in-memory Kubernetes API servers play the clusters of cluster domains `us-east-1a` and `us-east-1b`. A Git
//! repository in a temporary directory holds the DRPlan. `drgitops failover` commits the change of primary; each
//! cluster's reconciler (the same git source, plan controller and transition executor `drgitops reconcile` runs)
//! fetches the commit and carries out its half of the transition. Every step is printed as the clusters' DRPlan
//! status records it, on both sides, and the `drgitops status` table of each cluster at the end.
//!
//! Each cluster also runs the drgitops admission webhook in-process (the same router, TLS server and live cluster
//! view `drgitops webhook` serves), registered with the shipped webhook configurations pointed at a loopback
//! listener. The reconcilers write as their service account, which the standby guard exempts; after the
//! failover, a person scaling a workload up on the new standby is denied, and the denial is printed.
//!
//! Stork's Migration controllers are played by the test kit's stand-in (`testkit::migration`): the old primary's
//! final migration copies the shop's objects to the new primary before it starts.
//!
//! The in-memory servers run no pods: the workloads are shown by their `spec.replicas`, and the `status` tables
//! show `PODS <unknown>`. On real control planes (`cargo run -p testenv -- --kubeconfig-out kc.yaml`, twice)
//! `drgitops status` counts the pods that are Ready; the test suite's failover tests run that way.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine as _;
use drgitops::cli::failover::failover;
use drgitops::cli::status::{render_table, summaries};
use drgitops::cluster::live::LiveView;
use drgitops::plan::DRPlan;
use drgitops::policy::PolicyConfig;
use drgitops::policy::config::RECONCILER_USER;
use drgitops::reconcile::runner::{Reconciler, ReconcilerOptions};
use drgitops::source::git::{GitAuth, GitSourceConfig};
use drgitops::webhook::admission::{self, AdmissionState};
use drgitops::webhook::config::PolicyStore;
use drgitops::webhook::metrics::Metrics;
use drgitops::webhook::{server, tls};
use fake_apiserver::FakeApiServer;
use k8s_openapi::ByteString;
use k8s_openapi::api::admissionregistration::v1::{
    MutatingWebhookConfiguration, ValidatingWebhookConfiguration,
};
use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};
use k8s_openapi::api::core::v1::{Namespace, Secret};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Patch, PatchParams, PostParams};
use kube::{Api, Client};
use serde_json::json;

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
    storageSecret: {name: drgitops-peer-storage}   # the peer's Portworx endpoint: volumes are copied
  schedule:
    interval: {intervalMinutes: 15}
  failover:
    peerStopTimeoutSeconds: 300
"#;

const STORK_CRDS: &str = include_str!("../tests/data/gitops/stork-crds.yaml");
const MUTATING: &str = include_str!("../manifests/webhook/mutatingwebhookconfiguration.yaml");
const VALIDATING: &str = include_str!("../manifests/webhook/validatingwebhookconfiguration.yaml");

/// The person who, after the failover, tries to start the application again on the new standby.
const PERSON: &str = "jane@example.com";

type Error = Box<dyn std::error::Error + Send + Sync>;

struct Cluster {
    domain: &'static str,
    server: FakeApiServer,
    client: Client,
    /// The step states already printed, so each change is printed once.
    seen: Mutex<BTreeMap<String, String>>,
    /// Where the webhook serves (`127.0.0.1:<port>`).
    webhook: String,
    /// The webhook's TLS files; kept for as long as the webhook serves.
    _tls_dir: tempfile::TempDir,
    /// Dropping this would stop the webhook's TLS server.
    _webhook_stop: tokio::sync::watch::Sender<bool>,
}

/// A client for `server` acting as `user` (impersonation), as the admission requests' `userInfo` then shows.
fn client_as(server: &FakeApiServer, user: &str) -> Result<Client, Error> {
    let mut config = server.config();
    config.auth_info.impersonate = Some(user.into());
    Ok(Client::try_from(config)?)
}

/// Serves the real admission router over TLS on loopback for cluster domain `domain`, with the built-in policies
/// and a live view of `server`, and registers it there with the shipped webhook configurations (their service
/// reference replaced by the loopback URL, their cert-manager annotation by the test CA).
async fn start_webhook(
    server: &FakeApiServer,
    domain: &str,
) -> Result<(String, tempfile::TempDir, tokio::sync::watch::Sender<bool>), Error> {
    let material = fake_apiserver::tls::generate()?;
    let tls_dir = tempfile::tempdir()?;
    let (cert, key) = (
        tls_dir.path().join("tls.crt"),
        tls_dir.path().join("tls.key"),
    );
    std::fs::write(&cert, &material.cert_pem)?;
    std::fs::write(&key, &material.key_pem)?;
    let (tls_config, _resolver) = tls::server_config(&cert, &key, None)?;
    let view = LiveView::start(server.client(), Some(domain.to_string()));
    let state = AdmissionState::new(
        view.clone(),
        Arc::new(PolicyStore::new(PolicyConfig::default())),
        Arc::new(Metrics::new()),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let listen = listener.local_addr()?.to_string();
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    tokio::spawn(server::serve_tls(
        listener,
        tls_config,
        admission::router(state),
        stop_rx,
        Duration::from_secs(1),
    ));
    // Registered only once its view has listed the cluster, as the shipped deployment's readiness probe ensures.
    let deadline = Instant::now() + Duration::from_secs(10);
    while !view.has_synced() {
        if Instant::now() > deadline {
            return Err(
                format!("the webhook of {domain} never synced its view of the cluster").into(),
            );
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    let ca_bundle = base64::engine::general_purpose::STANDARD.encode(&material.ca_pem);
    for text in [MUTATING, VALIDATING] {
        let mut config: serde_json::Value = serde_yaml::from_str(text)?;
        if let Some(metadata) = config["metadata"].as_object_mut() {
            metadata.remove("annotations");
        }
        for hook in config["webhooks"].as_array_mut().into_iter().flatten() {
            let path = hook["clientConfig"]["service"]["path"]
                .as_str()
                .ok_or("a shipped webhook has no clientConfig.service.path")?
                .to_string();
            hook["clientConfig"] =
                json!({"url": format!("https://{listen}{path}"), "caBundle": ca_bundle});
        }
        if config["kind"] == "MutatingWebhookConfiguration" {
            let c: MutatingWebhookConfiguration = serde_json::from_value(config)?;
            Api::all(server.client())
                .create(&PostParams::default(), &c)
                .await?;
        } else {
            let c: ValidatingWebhookConfiguration = serde_json::from_value(config)?;
            Api::all(server.client())
                .create(&PostParams::default(), &c)
                .await?;
        }
    }
    Ok((listen, tls_dir, stop_tx))
}

impl Cluster {
    /// A cluster with the CRDs, the `shop` namespace, and its workloads: running on the primary, at 0 with their
    /// counts recorded (as Stork's migrations leave them) on the standby.
    async fn start(domain: &'static str, primary: bool) -> Result<Cluster, Error> {
        let server = FakeApiServer::start().await?;
        // Setup runs as the cluster admin, before the webhook is registered; the reconciler gets its own identity.
        let client = server.client();
        let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
        crds.create(&PostParams::default(), &drgitops::plan::crd::crd())
            .await?;
        for doc in serde_yaml::Deserializer::from_str(STORK_CRDS) {
            let value: serde_json::Value = serde::Deserialize::deserialize(doc)?;
            if value.is_null() {
                continue;
            }
            let crd: CustomResourceDefinition = serde_json::from_value(value)?;
            crds.create(&PostParams::default(), &crd).await?;
        }
        // The plan's namespace, and the reconciler's own (its inventory of what it applied from Git lives there).
        for name in ["shop", "drgitops-system"] {
            let ns: Namespace = serde_json::from_value(json!({"metadata": {"name": name}}))?;
            Api::<Namespace>::all(client.clone())
                .create(&PostParams::default(), &ns)
                .await?;
        }
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
        let (webhook, tls_dir, webhook_stop) = start_webhook(&server, domain).await?;
        Ok(Cluster {
            domain,
            server,
            client,
            seen: Mutex::default(),
            webhook,
            _tls_dir: tls_dir,
            _webhook_stop: webhook_stop,
        })
    }

    /// The peer's kubeconfig and its Portworx endpoint, as the Secrets the plan names hold them (never in Git).
    /// The kubeconfig acts as the reconciler's service account there too, as a token for that account would.
    async fn pair_with(&self, peer: &Cluster) -> Result<(), Error> {
        let mut kubeconfig: serde_json::Value =
            serde_yaml::from_str(&peer.server.kubeconfig_named(peer.domain))?;
        for user in kubeconfig["users"].as_array_mut().into_iter().flatten() {
            user["user"] = json!({"as": RECONCILER_USER});
        }
        let storage = [
            ("ip", format!("px.{}.example", peer.domain)),
            ("port", "9001".to_string()),
            ("token", format!("px-token-{}", peer.domain)),
        ];
        for (name, data) in [
            (
                "drgitops-peer",
                vec![(
                    "kubeconfig".to_string(),
                    serde_yaml::to_string(&kubeconfig)?,
                )],
            ),
            (
                "drgitops-peer-storage",
                storage.map(|(k, v)| (k.to_string(), v)).to_vec(),
            ),
        ] {
            let secret = Secret {
                metadata: kube::api::ObjectMeta {
                    name: Some(name.into()),
                    ..Default::default()
                },
                data: Some(
                    data.into_iter()
                        .map(|(k, v)| (k, ByteString(v.into_bytes())))
                        .collect(),
                ),
                ..Default::default()
            };
            Api::<Secret>::namespaced(self.client.clone(), "shop")
                .create(&PostParams::default(), &secret)
                .await?;
        }
        Ok(())
    }

    /// This cluster's reconciler, following `plans/` on `main` of the repository.
    fn reconciler(&self, repo: &Path, cache: &Path) -> Result<Arc<Reconciler>, Error> {
        let mut options = ReconcilerOptions::new(&format!("demo-{}", self.domain));
        options.cluster_domain = Some(self.domain.into());
        options.git = Some(GitSourceConfig {
            url: repo.display().to_string(),
            branch: "main".into(),
            path: "plans".into(),
            cache_dir: cache.to_path_buf(),
            auth: GitAuth::None,
        });
        options.admin_listen = "127.0.0.1:0".into();
        options.peer_timeout = Duration::from_secs(2);
        Ok(Reconciler::new(
            client_as(&self.server, RECONCILER_USER)?,
            options,
        ))
    }

    /// `status.phase` of the shop's plan here.
    async fn phase(&self) -> Result<String, Error> {
        let plan = Api::<DRPlan>::namespaced(self.client.clone(), "shop")
            .get_opt("shop")
            .await?;
        Ok(plan
            .and_then(|p| p.status)
            .and_then(|s| s.phase)
            .unwrap_or_default())
    }

    /// A person scales `web` up to 3 through the `/scale` subresource, as `kubectl scale` does. Returns what
    /// the API server answered: the denial message, or the admitted count.
    async fn person_scales_web(&self) -> Result<String, Error> {
        let api = Api::<Deployment>::namespaced(client_as(&self.server, PERSON)?, "shop");
        let patch = Patch::Merge(json!({"spec": {"replicas": 3}}));
        // The webhook judges with its watch of the DRPlan; wait (dry runs change nothing) until the watch has
        // delivered the plan's new primary, so the printed answer is the settled one.
        let dry_run = PatchParams {
            dry_run: true,
            ..PatchParams::default()
        };
        let deadline = Instant::now() + Duration::from_secs(5);
        while api.patch_scale("web", &dry_run, &patch).await.is_ok() && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        Ok(
            match api
                .patch_scale("web", &PatchParams::default(), &patch)
                .await
            {
                Err(kube::Error::Api(status)) => format!("denied: {}", status.message),
                Err(other) => return Err(other.into()),
                Ok(scale) => format!(
                    "admitted: web scaled to {}",
                    scale.spec.and_then(|s| s.replicas).unwrap_or(1)
                ),
            },
        )
    }

    /// The transition steps whose state changed since last printed, from the plan's status.
    async fn changes(&self) -> Result<Vec<String>, Error> {
        let plan = Api::<DRPlan>::namespaced(self.client.clone(), "shop")
            .get("shop")
            .await?;
        let Some(status) = plan.status else {
            return Ok(Vec::new());
        };
        let mut seen = self.seen.lock().map_err(|_| "state lock poisoned")?;
        let mut lines = Vec::new();
        if let Some(t) = status.transition {
            let id = t.revision.clone().unwrap_or_default();
            for step in t.steps {
                let key = format!("{id}/{}", step.name);
                if seen.get(&key) != Some(&step.state) && step.state != "Pending" {
                    lines.push(format!(
                        "{:<25} {:<10} {}",
                        step.name,
                        step.state,
                        step.message.clone().unwrap_or_default()
                    ));
                    seen.insert(key, step.state);
                }
            }
        }
        let phase = format!(
            "{} {}",
            status.role.map(|r| r.as_str()).unwrap_or("-"),
            status.phase.unwrap_or_default()
        );
        if seen.get("phase") != Some(&phase) {
            lines.push(format!("{:<25} {phase}", "role, phase"));
            seen.insert("phase".into(), phase);
        }
        Ok(lines)
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
            "spec.replicas: web={} db={}",
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

/// One reconcile pass on a cluster, printing what changed in its plan's status.
async fn pass(
    timeline: &Timeline,
    cluster: &Cluster,
    reconciler: &Reconciler,
) -> Result<(), Error> {
    let outcome = reconciler.pass(false).await;
    // A plan in a transition step is waiting, not failing: its steps are printed below.
    for error in &outcome.errors {
        timeline.line(cluster.domain, &format!("error: {error}"));
    }
    for line in cluster.changes().await? {
        timeline.line(cluster.domain, &line);
    }
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
    a.pair_with(&b).await?;
    b.pair_with(&a).await?;
    // Stork's Migration controllers between the two, as the test kit imitates them: the old primary's final
    // migration copies the shop's objects to the new primary before it starts.
    let _stork = testkit::migration::StorkStandIn::start(a.client.clone(), b.client.clone());
    timeline.line(
        a.domain,
        &format!(
            "cluster up at {}, webhook at https://{} ({})",
            a.server.url(),
            a.webhook,
            a.workloads().await?
        ),
    );
    timeline.line(
        b.domain,
        &format!(
            "cluster up at {}, webhook at https://{} ({})",
            b.server.url(),
            b.webhook,
            b.workloads().await?
        ),
    );

    let dir = tempfile::tempdir()?;
    let repo = dir.path().join("plans-repo");
    std::fs::create_dir_all(repo.join("plans"))?;
    std::fs::write(repo.join("plans/shop.yaml"), PLAN)?;
    git(&repo, &["init", "-q", "-b", "main"])?;
    git(&repo, &["config", "user.name", "On-call"])?;
    git(&repo, &["config", "user.email", "oncall@example.com"])?;
    git(&repo, &["config", "commit.gpgsign", "false"])?;
    git(&repo, &["add", "."])?;
    git(
        &repo,
        &["commit", "-q", "-m", "shop: DR plan, primary us-east-1a"],
    )?;
    timeline.line(
        "git",
        &format!(
            "shop: DR plan, primary us-east-1a ({})",
            &git(&repo, &["rev-parse", "HEAD"])?[..12]
        ),
    );
    let (cache_a, cache_b) = (dir.path().join("cache-a"), dir.path().join("cache-b"));
    let (rec_a, rec_b) = (
        a.reconciler(&repo, &cache_a)?,
        b.reconciler(&repo, &cache_b)?,
    );
    for (cluster, reconciler) in [(&a, &rec_a), (&b, &rec_b)] {
        pass(&timeline, cluster, reconciler).await?;
    }

    for (to, message, title) in [
        (
            "us-east-1b",
            "planned maintenance of us-east-1a",
            "failover: us-east-1a goes into maintenance",
        ),
        ("us-east-1a", "maintenance done", "failback"),
    ] {
        println!("\n--- {title} ---");
        let report = failover(&repo, "shop", to, None, Some(message), "kube-system")?;
        timeline.line(
            "git",
            &format!("{} ({})", report.summary, &report.commit[..12]),
        );
        // The new primary's reconciler happens to fetch the commit first: the fence makes it wait for the other.
        let (first, second) = if to == b.domain {
            ((&b, &rec_b), (&a, &rec_a))
        } else {
            ((&a, &rec_a), (&b, &rec_b))
        };
        // Passes until both clusters stand in their new roles (the old primary's final migration is Stork's
        // work, done in the background).
        for _ in 0..40 {
            pass(&timeline, first.0, first.1).await?;
            pass(&timeline, second.0, second.1).await?;
            if first.0.phase().await? == "Protected" && second.0.phase().await? == "Standby" {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        timeline.line(a.domain, &a.workloads().await?);
        timeline.line(b.domain, &b.workloads().await?);
        // After the failover the old primary is the standby: a person starting the application there again would
        // run it on both sides at once. The webhook denies it; the reconcilers, exempt, scaled through it above.
        if to == b.domain {
            let answer = a.person_scales_web().await?;
            timeline.line(a.domain, &format!("{PERSON} scales web to 3: {answer}"));
            timeline.line(a.domain, &a.workloads().await?);
        }
    }

    println!("\n--- git log ---");
    println!("{}", git(&repo, &["log", "--format=%h %an: %s"])?);
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
