//! Reconciler benchmarks: commit-to-applied latency through the push receiver and through polling (against the
//! in-memory API server, real git repositories made with the `git` CLI), and the time to render 1,000 plans.
//!
//! Each figure has a floor measured in the same run: for a commit, the same fetch and read of the repository plus
//! the plan's three objects server-side applied straight through a client, with no reconciler in between; for
//! rendering, reading and YAML-parsing the same 1,000 files with nothing validated or rendered.
//!
//! `cargo bench --bench reconcile` prints a Markdown table for BENCHMARKS.md.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use drgitops::gitops::apply::Applier;
use drgitops::gitops::hooks::sign;
use drgitops::gitops::runner::{Reconciler, ReconcilerOptions, serve_admin};
use drgitops::gitops::source::{self, GitAuth, GitSourceConfig};
use drgitops::plan::render::{RenderInputs, StorageOptions};
use drgitops::plan::{DRPlan, Role};
use fake_apiserver::FakeApiServer;
use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::{Namespace, Secret};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, DynamicObject, PostParams};
use serde_json::{Value, json};

const SECRET: &[u8] = b"bench-secret";

fn data(name: &str) -> String {
    std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/data/gitops")
            .join(name),
    )
    .expect("fixture")
}

fn git(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .args([
            "-c",
            "user.name=Bench",
            "-c",
            "user.email=bench@example.com",
            "-c",
            "commit.gpgsign=false",
        ])
        .args(args)
        .current_dir(dir)
        .output()
        .expect("git runs");
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
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

async fn cluster() -> (FakeApiServer, FakeApiServer) {
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
    let namespaces: Api<Namespace> = Api::all(client.clone());
    namespaces
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({"metadata": {"name": "mysql"}})).expect("ns"),
        )
        .await
        .expect("ns");
    let secrets: Api<Secret> = Api::namespaced(client, "mysql");
    for (name, pairs) in [
        (
            "drgitops-peer",
            vec![("kubeconfig", west.kubeconfig_named("us-east-1b"))],
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
    (east, west)
}

async fn interval_of(client: &kube::Client) -> Option<u64> {
    let (resource, _) = drgitops::gitops::apply::api_resource(
        drgitops::gitops::apply::STORK_API_VERSION,
        "NamespacedSchedulePolicy",
    )?;
    let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), "mysql", &resource);
    let object = api.get_opt("mysql").await.ok()??;
    serde_json::to_value(object)
        .ok()?
        .pointer("/policy/interval/intervalMinutes")?
        .as_u64()
}

async fn wait_for(client: &kube::Client, minutes: u64, started: Instant) -> Duration {
    loop {
        if interval_of(client).await == Some(minutes) {
            return started.elapsed();
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "commit never applied"
        );
        tokio::time::sleep(Duration::from_millis(2)).await;
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
    _east: FakeApiServer,
    _west: FakeApiServer,
    /// Reads the NamespacedSchedulePolicy, as the reconciler rounds' own client does.
    reader: kube::Client,
    repo: tempfile::TempDir,
    _cache: tempfile::TempDir,
    config: GitSourceConfig,
    applier: Applier,
    inputs: RenderInputs,
}

impl Floor {
    async fn new() -> Floor {
        let (east, west) = cluster().await;
        let repo = plan_repo();
        let cache = tempfile::tempdir().expect("tmp");
        let config = source_config(repo.path(), cache.path());
        let inputs = RenderInputs {
            peer_kubeconfig: Some(west.kubeconfig_named("us-east-1b")),
            storage: Some(StorageOptions {
                ip: "10.0.0.9".into(),
                port: "9001".into(),
                token: "t".into(),
                backuplocation: None,
            }),
            peer_reachable: true,
        };
        let floor = Floor {
            applier: Applier::new(east.client()),
            reader: east.client(),
            _east: east,
            _west: west,
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
            let fetched = source::fetch(&config).expect("fetch");
            source::read_revision(&config.cache_dir, &fetched.revision, &config.path).expect("read")
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
        wait_for(&self.reader, u64::from(minutes), started).await
    }
}

/// Reconciler samples, and when `floor` is given, a floor sample taken beside each (alternately before and after,
/// so neither always meets the machine first).
async fn latency(push: bool, rounds: u32, floor: Option<&Floor>) -> (Vec<Duration>, Vec<Duration>) {
    let (east, _west) = cluster().await;
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
    let reconciler = Reconciler::new(east.client(), options);
    let (stop, shutdown) = tokio::sync::watch::channel(false);
    let (addr, admin) = serve_admin(&reconciler, "127.0.0.1:0", shutdown.clone())
        .await
        .expect("admin");
    let runner = tokio::spawn(reconciler.clone().run(shutdown));
    let client = east.client();
    wait_for(&client, 15, Instant::now()).await;

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
        samples.push(wait_for(&client, u64::from(minutes), started).await);
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

fn parse_yaml(files: &[source::ManifestFile]) -> usize {
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
        let out = drgitops::gitops::cli::render_stream(
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
        let files = source::read_directory(dir.path(), "plans").expect("read");
        assert_eq!(parse_yaml(&files), 1000);
        times.read_parse = times.read_parse.min(started.elapsed());

        let started = Instant::now();
        let plans = drgitops::gitops::sync::plans_from_files(&files, "kube-system").expect("valid");
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
    let render = render_thousand();
    let floor = runtime.block_on(Floor::new());
    let (mut push, mut floor_samples) = runtime.block_on(latency(true, 30, Some(&floor)));
    drop(floor);
    let (mut poll, _) = runtime.block_on(latency(false, 10, None));
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
    let poll_p50 = row("commit → applied, polling (interval 1s ±10%)", &mut poll);
    let floor_p50 = row(
        "floor: commit → same fetch + read, 3 server-side applies straight through a client",
        &mut floor_samples,
    );
    println!(
        "| push receiver / floor, at p50 | {} | | | |",
        ratio(push_p50, floor_p50)
    );
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
