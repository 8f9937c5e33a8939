//! Reconciler benchmarks: commit-to-applied latency through the push receiver and through polling (against the
//! in-memory API server, real git repositories made with the `git` CLI), and the time to render 1,000 plans.
//!
//! Each figure has a floor measured in the same run: for a commit, the same fetch and read of the repository plus
//! the plan's three objects server-side applied straight through a client, with no reconciler in between; for
//! rendering, reading and YAML-parsing the same 1,000 files with nothing validated or rendered.
//!
//! With `DRGITOPS_BENCH_SUBSTRATE=real`, commit → applied through the push receiver on a real control plane
//! (`tests/testenv`, with the reconciler's shipped RBAC applied by kubectl; the reconciler acting as the shipped
//! reconciler ServiceAccount, its peer a second real control plane reached as the shipped peer ServiceAccount),
//! beside the same floor on that second control plane; rendering and polling, which do not depend on the API
//! server, are left to the default run.
//!
//! `cargo bench --bench reconcile` prints a Markdown table for BENCHMARKS.md.

mod substrate;

use std::path::Path;
use std::time::{Duration, Instant};

use drgitops::cluster::apply::Applier;
use drgitops::plan::render::{RenderInputs, StorageOptions};
use drgitops::plan::{DRPlan, Role};
use drgitops::reconcile::runner::{Reconciler, ReconcilerOptions, serve_admin};
use drgitops::source::git::{self, GitAuth, GitSourceConfig};
use drgitops::source::hooks::sign;
use fake_apiserver::FakeApiServer;
use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::{Namespace, Secret};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, DynamicObject, PostParams};
use kube::runtime::{WatchStreamExt, watcher};
use serde_json::{Value, json};
use testkit::git;
use tokio::sync::watch;

const SECRET: &[u8] = b"bench-secret";

fn data(name: &str) -> String {
    std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/data/gitops")
            .join(name),
    )
    .expect("fixture")
}

fn plan_every(minutes: u32) -> String {
    data("plans/mysql.yaml").replace(
        "intervalMinutes: 15",
        &format!("intervalMinutes: {minutes}"),
    )
}

fn commit_interval(repo: &Path, minutes: u32) {
    std::fs::write(repo.join("plans/mysql.yaml"), plan_every(minutes)).expect("write");
    git(
        repo,
        &["commit", "-q", "-am", &format!("every {minutes} minutes")],
    );
}

/// A cluster the reconciler, or the floor, writes to.
struct Target {
    /// What the reconciler and the floor's applies act as: the in-memory server's client, or the shipped reconciler
    /// ServiceAccount on a real control plane.
    client: kube::Client,
    /// Where a commit is seen applied.
    observer: Observer,
    /// The kubeconfig in the plan's peer Secret (the floor renders its ClusterPair from it).
    peer_kubeconfig: String,
    /// The reconciler's `--system-namespace` (its Lease and inventory).
    system_namespace: &'static str,
    /// Keeps the API server (and on the in-memory substrate its peer) running as long as the target is used.
    _servers: Box<dyn std::any::Any>,
}

/// An in-memory API server with the CRDs, namespace `mysql` and the plan's Secrets; its peer another one.
async fn in_memory() -> Target {
    let east = FakeApiServer::start().await.expect("fake");
    let west = FakeApiServer::start().await.expect("fake");
    let client = east.client();
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    crds.create(&PostParams::default(), &drgitops::plan::crd::crd())
        .await
        .expect("crd");
    for doc in serde_yaml::Deserializer::from_str(&data("stork-crds.yaml")) {
        let value: Value = serde::Deserialize::deserialize(doc).expect("yaml");
        if value.is_null() {
            continue;
        }
        crds.create(
            &PostParams::default(),
            &serde_json::from_value(value).expect("crd"),
        )
        .await
        .expect("crd");
    }
    let peer_kubeconfig = west.kubeconfig_named("us-east-1b");
    plan_namespace(&client, &peer_kubeconfig).await;
    Target {
        // Its own client, as before the substrates: the reads do not queue behind the reconciler's requests.
        observer: Observer::Poll(east.client()),
        client,
        peer_kubeconfig,
        system_namespace: "kube-system",
        _servers: Box::new((east, west)),
    }
}

/// Two real control planes, each with the CRDs and the reconciler's and the peer's shipped ServiceAccounts and
/// RBAC applied by kubectl as the README says, namespace `mysql` and the plan's Secrets; each is the other's peer,
/// reached as the shipped peer ServiceAccount. One for the reconciler, one for the floor.
async fn real_pair() -> (Target, Target) {
    let (east, floor) = tokio::join!(
        testkit::Cluster::start("us-east-1a"),
        testkit::Cluster::start("floor")
    );
    east.install_reconciler();
    floor.install_reconciler();
    let east_peer = service_account_kubeconfig(&east, "drgitops-peer").await;
    let floor_peer = service_account_kubeconfig(&floor, "drgitops-peer").await;
    (
        on_real(east, floor_peer).await,
        on_real(floor, east_peer).await,
    )
}

/// The kubeconfig (YAML) of ServiceAccount `drgitops-system/name` of `cluster`.
async fn service_account_kubeconfig(cluster: &testkit::Cluster, name: &str) -> String {
    cluster
        .env
        .service_account_kubeconfig("drgitops-system", name)
        .await
        .expect("token")
}

async fn on_real(cluster: testkit::Cluster, peer_kubeconfig: String) -> Target {
    let admin = cluster.client().await;
    plan_namespace(&admin, &peer_kubeconfig).await;
    Target {
        client: cluster.service_account_client("drgitops-reconciler").await,
        observer: Observer::watch(admin),
        peer_kubeconfig,
        system_namespace: "drgitops-system",
        _servers: Box::new(cluster),
    }
}

/// Namespace `mysql` with the plan's peer kubeconfig and storage Secrets.
async fn plan_namespace(client: &kube::Client, peer_kubeconfig: &str) {
    let namespaces: Api<Namespace> = Api::all(client.clone());
    namespaces
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({"metadata": {"name": "mysql"}})).expect("ns"),
        )
        .await
        .expect("ns");
    let secrets: Api<Secret> = Api::namespaced(client.clone(), "mysql");
    for (name, pairs) in [
        (
            "drgitops-peer",
            vec![("kubeconfig", peer_kubeconfig.to_string())],
        ),
        (
            "drgitops-peer-storage",
            vec![
                ("ip", "10.0.0.9".to_string()),
                ("port", "9001".into()),
                ("token", "t".into()),
            ],
        ),
    ] {
        let secret = Secret {
            metadata: kube::api::ObjectMeta {
                name: Some(name.into()),
                ..Default::default()
            },
            data: Some(
                pairs
                    .into_iter()
                    .map(|(k, v)| (k.to_string(), ByteString(v.into_bytes())))
                    .collect(),
            ),
            ..Default::default()
        };
        secrets
            .create(&PostParams::default(), &secret)
            .await
            .expect("secret");
    }
}

fn policy_interval(object: DynamicObject) -> Option<u64> {
    serde_json::to_value(object)
        .ok()?
        .pointer("/policy/interval/intervalMinutes")?
        .as_u64()
}

fn policy_resource() -> kube::api::ApiResource {
    drgitops::cluster::apply::api_resource(
        drgitops::stork::keys::STORK_API_VERSION,
        "NamespacedSchedulePolicy",
    )
    .expect("a known kind")
    .0
}

async fn interval_of(client: &kube::Client) -> Option<u64> {
    let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), "mysql", &policy_resource());
    policy_interval(api.get_opt("mysql").await.ok()??)
}

/// Where a commit is seen applied: the NamespacedSchedulePolicy's interval.
enum Observer {
    /// Read every 2 ms (the in-memory server answers a GET in microseconds).
    Poll(kube::Client),
    /// From a watch, each value stamped when its event arrived: on a real control plane 500 GETs a second would
    /// load the kube-apiserver the reconciler is measured against.
    Watch(watch::Receiver<(Option<u64>, Instant)>),
}

impl Observer {
    fn watch(client: kube::Client) -> Observer {
        let (tx, rx) = watch::channel((None, Instant::now()));
        let api: Api<DynamicObject> = Api::namespaced_with(client, "mysql", &policy_resource());
        let config = watcher::Config::default().fields("metadata.name=mysql");
        tokio::spawn(async move {
            let mut events =
                std::pin::pin!(watcher(api, config).default_backoff().applied_objects());
            while let Some(event) = futures::StreamExt::next(&mut events).await {
                if let Ok(object) = event {
                    tx.send_replace((policy_interval(object), Instant::now()));
                }
            }
        });
        Observer::Watch(rx)
    }

    /// The time from `started` until the policy reads `minutes`.
    async fn wait_for(&self, minutes: u64, started: Instant) -> Duration {
        let timeout = Duration::from_secs(60);
        match self {
            Observer::Poll(client) => loop {
                if interval_of(client).await == Some(minutes) {
                    return started.elapsed();
                }
                assert!(started.elapsed() < timeout, "commit never applied");
                tokio::time::sleep(Duration::from_millis(2)).await;
            },
            Observer::Watch(rx) => {
                let mut rx = rx.clone();
                let seen = tokio::time::timeout(timeout, rx.wait_for(|(m, _)| *m == Some(minutes)))
                    .await
                    .expect("commit never applied")
                    .expect("the watch runs")
                    .1;
                seen - started
            }
        }
    }
}

async fn post_hook(addr: std::net::SocketAddr, body: &[u8]) {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let head = format!(
        "POST /hooks/git HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nX-Hub-Signature-256: {}\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n",
        sign(SECRET, body),
        body.len()
    );
    stream.write_all(head.as_bytes()).await.expect("write");
    stream.write_all(body).await.expect("write");
    let mut response = String::new();
    stream.read_to_string(&mut response).await.expect("read");
    assert!(response.starts_with("HTTP/1.1 202"), "{response}");
}

fn percentile(samples: &mut [Duration], p: f64) -> Duration {
    samples.sort();
    let index = ((samples.len() as f64 - 1.0) * p).round() as usize;
    samples[index]
}

/// A repository holding the plan at `intervalMinutes: 15`, as both the reconciler and the floor start from.
fn plan_repo() -> tempfile::TempDir {
    let repo = tempfile::tempdir().expect("tmp");
    git(repo.path(), &["init", "-q", "-b", "main"]);
    std::fs::create_dir_all(repo.path().join("plans")).expect("mkdir");
    std::fs::write(repo.path().join("plans/mysql.yaml"), plan_every(15)).expect("write");
    git(repo.path(), &["add", "-A"]);
    git(repo.path(), &["commit", "-q", "-m", "init"]);
    repo
}

fn source_config(repo: &Path, cache: &Path) -> GitSourceConfig {
    GitSourceConfig {
        url: repo.display().to_string(),
        branch: "main".into(),
        path: "plans".into(),
        cache_dir: cache.to_path_buf(),
        auth: GitAuth::None,
    }
}

/// The floor of commit → applied: its own cluster and repository set up as the reconciler's, the commit fetched and
/// read with the reconciler's git source functions, and the plan's three objects (rendered before the clock starts)
/// server-side applied through the same client code, one after the other. No reconciler, no DRPlan, no validation,
/// no Secrets read, no peer probe, no prune, no status.
struct Floor {
    target: Target,
    repo: tempfile::TempDir,
    _cache: tempfile::TempDir,
    config: GitSourceConfig,
    applier: Applier,
    inputs: RenderInputs,
}

impl Floor {
    async fn new(target: Target) -> Floor {
        let repo = plan_repo();
        let cache = tempfile::tempdir().expect("tmp");
        let config = source_config(repo.path(), cache.path());
        let inputs = RenderInputs {
            peer_kubeconfig: Some(target.peer_kubeconfig.clone()),
            storage: Some(StorageOptions {
                ip: "10.0.0.9".into(),
                port: "9001".into(),
                token: "t".into(),
                backuplocation: None,
            }),
            peer_reachable: true,
        };
        let floor = Floor {
            applier: Applier::new(target.client.clone()),
            target,
            repo,
            _cache: cache,
            config,
            inputs,
        };
        // As the reconciler's rounds do, start from a filled cache and the objects already in the cluster.
        let objects = floor.objects(15);
        floor.fetch_and_apply(&objects).await;
        floor
    }

    /// The ClusterPair, NamespacedSchedulePolicy and MigrationSchedule a primary holds for the plan.
    fn objects(&self, minutes: u32) -> Vec<Value> {
        let plan: DRPlan = serde_yaml::from_str(&plan_every(minutes)).expect("plan");
        drgitops::plan::render::render(&plan, Role::Primary, &self.inputs).expect("renders")
    }

    async fn fetch_and_apply(&self, objects: &[Value]) {
        let config = self.config.clone();
        let files = tokio::task::spawn_blocking(move || {
            let fetched = git::fetch(&config).expect("fetch");
            git::read_revision(&config.cache_dir, &fetched.revision, &config.path).expect("read")
        })
        .await
        .expect("fetch task");
        assert_eq!(files.len(), 1, "the plan file is read");
        for object in objects {
            self.applier.apply(object, false).await.expect("apply");
        }
    }

    async fn round(&self, minutes: u32) -> Duration {
        let objects = self.objects(minutes);
        let started = Instant::now();
        commit_interval(self.repo.path(), minutes);
        self.fetch_and_apply(&objects).await;
        self.target
            .observer
            .wait_for(u64::from(minutes), started)
            .await
    }
}

/// Reconciler samples, and when `floor` is given, a floor sample taken beside each (alternately before and after,
/// so neither always meets the machine first).
async fn latency(
    target: &Target,
    push: bool,
    rounds: u32,
    floor: Option<&Floor>,
) -> (Vec<Duration>, Vec<Duration>) {
    let repo = plan_repo();
    let cache = tempfile::tempdir().expect("tmp");

    let mut options = ReconcilerOptions::new("bench");
    options.cluster_domain = Some("us-east-1a".into());
    options.git = Some(source_config(repo.path(), cache.path()));
    options.webhook_secret = Some(SECRET.to_vec());
    options.interval = if push {
        Duration::from_secs(3600)
    } else {
        Duration::from_secs(1)
    };
    options.system_namespace = target.system_namespace.into();
    let reconciler = Reconciler::new(target.client.clone(), options);
    let (stop, shutdown) = tokio::sync::watch::channel(false);
    let (addr, admin) = serve_admin(&reconciler, "127.0.0.1:0", shutdown.clone())
        .await
        .expect("admin");
    let runner = tokio::spawn(reconciler.clone().run(shutdown));
    target.observer.wait_for(15, Instant::now()).await;

    let mut samples = Vec::new();
    let mut floor_samples = Vec::new();
    for round in 0..rounds {
        let minutes = 16 + round;
        let floor_first = round % 2 == 0;
        if let Some(floor) = floor.filter(|_| floor_first) {
            tokio::time::sleep(Duration::from_millis(50)).await;
            floor_samples.push(floor.round(minutes).await);
        }
        // Let the passes triggered by our own status writes settle, so each round measures a push into a quiet
        // reconciler, as in production.
        tokio::time::sleep(Duration::from_millis(50)).await;
        let started = Instant::now();
        commit_interval(repo.path(), minutes);
        if push {
            post_hook(addr, br#"{"ref":"refs/heads/main"}"#).await;
        }
        samples.push(target.observer.wait_for(u64::from(minutes), started).await);
        if let Some(floor) = floor.filter(|_| !floor_first) {
            tokio::time::sleep(Duration::from_millis(50)).await;
            floor_samples.push(floor.round(minutes).await);
        }
    }
    let _ = stop.send(true);
    let _ = runner.await;
    let _ = admin.await;
    (samples, floor_samples)
}

/// Best-of-5 times for rendering 1,000 plans, and for their floors: the same files read and parsed as YAML.
struct RenderTimes {
    /// `drgitops render`: read + parse + validate + render + YAML.
    cli: Duration,
    /// Parse + validate + render, files already in memory.
    pure: Duration,
    /// Floor of `cli`: read the files (the same reader) and parse every document into `serde_json::Value`.
    read_parse: Duration,
    /// Floor of `pure`: parse every document into `serde_json::Value`, files already in memory.
    parse: Duration,
}

fn parse_yaml(files: &[git::ManifestFile]) -> usize {
    let mut documents = 0;
    for file in files {
        for doc in serde_yaml::Deserializer::from_str(&file.contents) {
            let value: Value = serde::Deserialize::deserialize(doc).expect("yaml");
            documents += usize::from(!value.is_null());
            std::hint::black_box(value);
        }
    }
    documents
}

fn render_thousand() -> RenderTimes {
    let dir = tempfile::tempdir().expect("tmp");
    std::fs::create_dir_all(dir.path().join("plans")).expect("mkdir");
    let template = data("plans/mysql.yaml");
    for i in 0..1000 {
        let plan = template
            .replace("name: mysql", &format!("name: app-{i}"))
            .replace("namespace: mysql", &format!("namespace: app-{i}"));
        std::fs::write(dir.path().join(format!("plans/app-{i}.yaml")), plan).expect("write");
    }
    let repo = dir.path().display().to_string();
    // Warm-up, then the best of five: the figure is the renderer's cost, not the page cache's.
    let mut times = RenderTimes {
        cli: Duration::MAX,
        pure: Duration::MAX,
        read_parse: Duration::MAX,
        parse: Duration::MAX,
    };
    for _ in 0..6 {
        let started = Instant::now();
        let out = drgitops::cli::reconcile::render_stream(
            &repo,
            None,
            "plans",
            "us-east-1a",
            "kube-system",
            &GitAuth::None,
        )
        .expect("renders");
        times.cli = times.cli.min(started.elapsed());
        assert_eq!(out.matches("kind: MigrationSchedule").count(), 1000);

        let started = Instant::now();
        let files = git::read_directory(dir.path(), "plans").expect("read");
        assert_eq!(parse_yaml(&files), 1000);
        times.read_parse = times.read_parse.min(started.elapsed());

        let started = Instant::now();
        let plans = drgitops::source::sync::plans_from_files(&files, "kube-system").expect("valid");
        for doc in &plans {
            let plan: drgitops::plan::DRPlan =
                serde_json::from_value(doc.object.clone()).expect("plan");
            let role = drgitops::plan::render::role_of(&plan, "us-east-1a");
            std::hint::black_box(drgitops::plan::render::render_without_credentials(
                &plan, role, true,
            ));
        }
        times.pure = times.pure.min(started.elapsed());

        let started = Instant::now();
        assert_eq!(parse_yaml(&files), 1000);
        times.parse = times.parse.min(started.elapsed());
    }
    times
}

fn main() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    // Rendering and polling do not depend on the API server: only the default run takes them.
    let (mut push, mut floor_samples, rest) = if substrate::real() {
        let (push, floor) = runtime.block_on(async {
            let (target, floor) = real_pair().await;
            let floor = Floor::new(floor).await;
            latency(&target, true, 30, Some(&floor)).await
        });
        println!(
            "real control planes: the reconciler as the shipped reconciler ServiceAccount, the floor's applies \
             as the same ServiceAccount on a second control plane (each the other's peer)"
        );
        (push, floor, None)
    } else {
        let render = render_thousand();
        let (push, floor) = runtime.block_on(async {
            let floor = Floor::new(in_memory().await).await;
            latency(&in_memory().await, true, 30, Some(&floor)).await
        });
        let (poll, _) =
            runtime.block_on(async { latency(&in_memory().await, false, 10, None).await });
        (push, floor, Some((poll, render)))
    };
    let ms = |d: Duration| format!("{:.1} ms", d.as_secs_f64() * 1000.0);
    let ratio = |a: Duration, b: Duration| format!("{:.2}x", a.as_secs_f64() / b.as_secs_f64());
    println!("| measurement | p50 | p90 | max | samples |");
    println!("|---|---|---|---|---|");
    let row = |label: &str, samples: &mut [Duration]| {
        let (p50, p90, max) = (
            percentile(samples, 0.5),
            percentile(samples, 0.9),
            percentile(samples, 1.0),
        );
        println!(
            "| {label} | {} | {} | {} | {} |",
            ms(p50),
            ms(p90),
            ms(max),
            samples.len()
        );
        p50
    };
    let push_p50 = row("commit → applied, push receiver (interval 1h)", &mut push);
    let poll = rest.map(|(mut poll, render)| {
        (
            row("commit → applied, polling (interval 1s ±10%)", &mut poll),
            render,
        )
    });
    let floor_p50 = row(
        "floor: commit → same fetch + read, 3 server-side applies straight through a client",
        &mut floor_samples,
    );
    println!(
        "| push receiver / floor, at p50 | {} | | | |",
        ratio(push_p50, floor_p50)
    );
    let Some((poll_p50, render)) = poll else {
        return;
    };
    println!(
        "| polling / floor, at p50 | {} | | | |",
        ratio(poll_p50, floor_p50)
    );
    println!(
        "| render 1,000 plans: read + parse + validate + render + YAML (`drgitops render`) | {} | | | best of 5 |",
        ms(render.cli)
    );
    println!(
        "| floor: read + YAML-parse the same 1,000 files into `serde_json::Value` | {} | | | best of 5 |",
        ms(render.read_parse)
    );
    println!(
        "| `drgitops render` / floor | {} | | | |",
        ratio(render.cli, render.read_parse)
    );
    println!(
        "| render 1,000 plans: parse + validate + render only | {} | | | best of 5 |",
        ms(render.pure)
    );
    println!(
        "| floor: YAML-parse only (files in memory) | {} | | | best of 5 |",
        ms(render.parse)
    );
    println!(
        "| parse + validate + render / floor | {} | | | |",
        ratio(render.pure, render.parse)
    );
}
