//! Reconciler benchmarks: commit-to-applied latency through the push receiver and through polling (against the
//! in-memory API server, real git repositories made with the `git` CLI), and the time to render 1,000 plans.
//!
//! `cargo bench --bench reconcile` prints a Markdown table for BENCHMARKS.md.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use drgitops::gitops::hooks::sign;
use drgitops::gitops::runner::{Reconciler, ReconcilerOptions, serve_admin};
use drgitops::gitops::source::{GitAuth, GitSourceConfig};
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

fn commit_interval(repo: &Path, minutes: u32) {
    let plan = data("plans/mysql.yaml").replace(
        "intervalMinutes: 15",
        &format!("intervalMinutes: {minutes}"),
    );
    std::fs::write(repo.join("plans/mysql.yaml"), plan).expect("write");
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

async fn latency(push: bool, rounds: u32) -> Vec<Duration> {
    let (east, _west) = cluster().await;
    let repo = tempfile::tempdir().expect("tmp");
    let cache = tempfile::tempdir().expect("tmp");
    git(repo.path(), &["init", "-q", "-b", "main"]);
    std::fs::create_dir_all(repo.path().join("plans")).expect("mkdir");
    std::fs::write(
        repo.path().join("plans/mysql.yaml"),
        data("plans/mysql.yaml"),
    )
    .expect("write");
    git(repo.path(), &["add", "-A"]);
    git(repo.path(), &["commit", "-q", "-m", "init"]);

    let mut options = ReconcilerOptions::new("bench");
    options.cluster_domain = Some("us-east-1a".into());
    options.git = Some(GitSourceConfig {
        url: repo.path().display().to_string(),
        branch: "main".into(),
        path: "plans".into(),
        cache_dir: cache.path().to_path_buf(),
        auth: GitAuth::None,
    });
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
    for round in 0..rounds {
        let minutes = 16 + round;
        // Let the passes triggered by our own status writes settle, so each round measures a push into a quiet
        // reconciler, as in production.
        tokio::time::sleep(Duration::from_millis(50)).await;
        let started = Instant::now();
        commit_interval(repo.path(), minutes);
        if push {
            post_hook(addr, br#"{"ref":"refs/heads/main"}"#).await;
        }
        samples.push(wait_for(&client, u64::from(minutes), started).await);
    }
    let _ = stop.send(true);
    let _ = runner.await;
    let _ = admin.await;
    samples
}

fn render_thousand() -> (Duration, Duration) {
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
    let mut best = Duration::MAX;
    let mut pure_best = Duration::MAX;
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
        best = best.min(started.elapsed());
        assert_eq!(out.matches("kind: MigrationSchedule").count(), 1000);

        let files = drgitops::gitops::source::read_directory(dir.path(), "plans").expect("read");
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
        pure_best = pure_best.min(started.elapsed());
    }
    (best, pure_best)
}

fn main() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let (render_cli, render_pure) = render_thousand();
    let mut push = runtime.block_on(latency(true, 30));
    let mut poll = runtime.block_on(latency(false, 10));
    let ms = |d: Duration| format!("{:.1} ms", d.as_secs_f64() * 1000.0);
    println!("| measurement | p50 | p90 | max | samples |");
    println!("|---|---|---|---|---|");
    let (p50, p90, max) = (
        percentile(&mut push, 0.5),
        percentile(&mut push, 0.9),
        percentile(&mut push, 1.0),
    );
    println!(
        "| commit → applied, push receiver (interval 1h) | {} | {} | {} | {} |",
        ms(p50),
        ms(p90),
        ms(max),
        push.len()
    );
    let (p50, p90, max) = (
        percentile(&mut poll, 0.5),
        percentile(&mut poll, 0.9),
        percentile(&mut poll, 1.0),
    );
    println!(
        "| commit → applied, polling (interval 1s ±10%) | {} | {} | {} | {} |",
        ms(p50),
        ms(p90),
        ms(max),
        poll.len()
    );
    println!(
        "| render 1,000 plans: read + parse + validate + render + YAML (`drgitops render`) | {} | | | best of 5 |",
        ms(render_cli)
    );
    println!(
        "| render 1,000 plans: parse + validate + render only | {} | | | best of 5 |",
        ms(render_pure)
    );
}
