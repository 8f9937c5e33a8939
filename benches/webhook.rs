//! Load benchmark of the admission webhook (`cargo bench --bench webhook`): not a test, never run by `cargo test`.
//!
//! Two servers on loopback, behind the same rustls accept loop:
//! - the rules server: the real `drgitops webhook` binary (every rule at its default action, JSON logs at `info`
//!   as deployed, so each denial is logged), whose watchers fill its view from an in-memory API server holding
//!   10,000 StorageClasses, 10,000 DRPlans and 10,000 ClusterPairs; with `DRGITOPS_BENCH_SERVER=inprocess`, the
//!   bench re-executes itself as a server with the admission router over a view filled directly instead;
//! - `baseline`: the bench re-executed as the same TLS accept loop and HTTP stack answering a fixed review (with
//!   `DRGITOPS_BENCH_BASELINE=rules`, the in-process rules router instead: an A/A run showing the method's noise).
//!
//! The parent is the load generator: HTTPS with keep-alive over several connections. It measures, for each server,
//! the throughput of a closed loop and the latency at a fixed 2,000 reviews/s (open loop: one send every 0.5 ms,
//! whatever the answers do), and reads the rules server's resident memory. `DRGITOPS_BENCH_SECONDS`
//! sets the length of each run (default 5), `DRGITOPS_BENCH_ROUNDS` how many times the four runs repeat
//! (default 3): on a shared machine, the spread between rounds shows how much of a tail is the machine's.
//!
//! With `DRGITOPS_BENCH_SUBSTRATE=real`, instead, the latency the webhook adds to API writes through a real
//! kube-apiserver (`tests/testenv`): the shipped webhook configurations registered by Service, the real
//! `drgitops webhook` as its shipped ServiceAccount, and Deployment creates and `/scale` updates sent evenly at
//! 200 writes/s; the same writes with the configurations deleted, in alternating runs of the same invocation.
//! See [`api_writes`].

mod substrate;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use k8s_openapi::api::admissionregistration::v1::{
    MutatingWebhookConfiguration, ValidatingWebhookConfiguration,
};
use k8s_openapi::api::apps::v1::Deployment;
use kube::api::{Api, DeleteParams, DynamicObject, Patch, PatchParams, PostParams};
use serde_json::{Value, json};

const ROLE_ENV: &str = "DRGITOPS_BENCH_ROLE";
const BASELINE_ENV: &str = "DRGITOPS_BENCH_BASELINE";
const DIR_ENV: &str = "DRGITOPS_BENCH_DIR";
const OBJECTS: usize = 10_000;
/// Keep-alive connections of the load generator.
const CONNS: usize = 16;

/// With `DRGITOPS_BENCH_BASELINE=rules` the baseline is a second rules server (the in-process router): the two
/// servers are then the same, and the spread of their p99 ratio is what the method itself adds.
fn rules_as_baseline() -> bool {
    std::env::var(BASELINE_ENV).as_deref() == Ok("rules")
}

fn main() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    match std::env::var(ROLE_ENV).as_deref() {
        Ok("rules") => serve(false),
        Ok("baseline") => serve(true),
        Ok("handler") => handler_cost(),
        _ if substrate::real() => api_writes(),
        _ => drive(),
    }
}

// ---------------------------------------------------------------------------------------------------------------
// Server side

/// The 30,000 objects of the view: StorageClasses (one default), DRPlans making each `app-<i>` namespace standby
/// on this cluster (`us-east-1b`), and a ClusterPair with storage options in each.
fn objects_for_view() -> Vec<Value> {
    let mut out = Vec::with_capacity(3 * OBJECTS);
    for i in 0..OBJECTS {
        let mut annotations = serde_json::Map::new();
        if i == 0 {
            annotations.insert(
                "storageclass.kubernetes.io/is-default-class".into(),
                "true".into(),
            );
        }
        out.push(json!({"apiVersion": "storage.k8s.io/v1", "kind": "StorageClass",
            "metadata": {"name": format!("px-class-{i}"), "annotations": annotations},
            "provisioner": "pxd.portworx.com", "parameters": {"repl": "3", "io_profile": "db_remote"}}));
        out.push(
            json!({"apiVersion": "drgitops.dev/v1alpha1", "kind": "DRPlan",
            "metadata": {"name": format!("app-{i}"), "namespace": format!("app-{i}")},
            "spec": {"mode": "async", "primary": "us-east-1a",
                "domains": [{"name": "us-east-1a"}, {"name": "us-east-1b"}],
                "clusterPair": {"name": "remotecluster",
                    "peerKubeconfigSecret": {"name": "drgitops-peer", "key": "kubeconfig"},
                    "storageSecret": {"name": "drgitops-peer-storage"}},
                "schedule": {"interval": {"intervalMinutes": 15}}}}),
        );
        out.push(json!({"apiVersion": "stork.libopenstorage.org/v1alpha1", "kind": "ClusterPair",
            "metadata": {"name": "remotecluster", "namespace": format!("app-{i}")},
            "spec": {"options": {"ip": "10.0.0.1", "port": "9001", "token": "secret", "mode": "DisasterRecovery"},
                "config": {"clusters": {"remote": {"server": "https://10.0.0.1:6443"}}}}}));
    }
    out
}

fn populate(view: &drgitops::cluster::live::LiveView) {
    for v in objects_for_view() {
        view.apply(&serde_json::from_value(v).expect("object"));
    }
    view.mark_synced();
}

fn serve(baseline: bool) {
    // As deployed: JSON logs at `info`, so every denial is formatted and written (the parent discards stderr).
    drgitops::runtime::logging::init(drgitops::runtime::logging::LogFormat::Json);
    let dir = PathBuf::from(std::env::var(DIR_ENV).expect("bench dir"));
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async move {
        let (tls, _) = drgitops::webhook::tls::server_config(&dir.join("tls.crt"), &dir.join("tls.key"), None)
            .expect("tls");
        // `DRGITOPS_BENCH_BASELINE=rules`: the baseline serves the rules too, to show the method's noise floor.
        let router = if baseline && !rules_as_baseline() {
            let fixed = Bytes::from_static(
                br#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","response":{"uid":"bench","allowed":true}}"#,
            );
            axum::Router::new().route(
                "/validate",
                axum::routing::post(move |body: Bytes| {
                    let fixed = fixed.clone();
                    async move {
                        drop(body);
                        ([(http::header::CONTENT_TYPE, "application/json")], fixed)
                    }
                }),
            )
        } else {
            let view = Arc::new(drgitops::cluster::live::LiveView::new(Some("us-east-1b".to_string())));
            populate(&view);
            let store = Arc::new(drgitops::webhook::config::PolicyStore::new(drgitops::policy::PolicyConfig::default()));
            let metrics = Arc::new(drgitops::webhook::metrics::Metrics::new());
            drgitops::webhook::admission::router(drgitops::webhook::admission::AdmissionState::new(view, store, metrics))
        };
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        println!("{}", listener.local_addr().expect("addr"));
        let (_stop_tx, stop_rx) = tokio::sync::watch::channel(false);
        drgitops::webhook::server::serve_tls(listener, tls, router, stop_rx, Duration::from_secs(1)).await;
    });
}

// ---------------------------------------------------------------------------------------------------------------
// Load generator

// One positional argument per AdmissionRequest field keeps the mix below readable as a table.
#[allow(clippy::too_many_arguments)]
fn review(
    uid: &str,
    kind: (&str, &str, &str),
    resource: &str,
    sub: Option<&str>,
    ns: Option<&str>,
    name: &str,
    operation: &str,
    user: &str,
    object: Value,
    old: Value,
) -> Bytes {
    let (group, version, k) = kind;
    let resource_group = if sub == Some("scale") { "apps" } else { group };
    let mut request = json!({
        "uid": uid, "kind": {"group": group, "version": version, "kind": k},
        "resource": {"group": resource_group, "version": "v1", "resource": resource},
        "name": name, "operation": operation, "userInfo": {"username": user, "groups": ["system:authenticated"]},
        "object": object, "oldObject": old, "dryRun": false});
    if let Some(ns) = ns {
        request["namespace"] = json!(ns);
    }
    if let Some(sub) = sub {
        request["subResource"] = json!(sub);
    }
    Bytes::from(
        serde_json::to_vec(
            &json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
        "request": request}),
        )
        .expect("json"),
    )
}

/// A mix touching every cluster-view lookup. Of the six reviews two are denied (a second default StorageClass,
/// a scale-up on a standby namespace); the allowed ones come twice, so one review in five is denied and logged,
/// more than a cluster sees outside of a bad day.
fn mix() -> Vec<Bytes> {
    let stork = |k| ("stork.libopenstorage.org", "v1alpha1", k);
    let six = [
        review(
            "b-1",
            stork("MigrationSchedule"),
            "migrationschedules",
            None,
            Some("app-42"),
            "ms",
            "CREATE",
            "alice",
            json!({"apiVersion": "stork.libopenstorage.org/v1alpha1", "kind": "MigrationSchedule",
                "metadata": {"name": "ms", "namespace": "app-42"},
                "spec": {"schedulePolicyName": "default-interval-policy",
                    "template": {"spec": {"clusterPair": "remotecluster", "namespaces": ["app-42"],
                        "includeResources": true, "includeVolumes": true, "startApplications": false}}}}),
            Value::Null,
        ),
        review(
            "b-2",
            ("storage.k8s.io", "v1", "StorageClass"),
            "storageclasses",
            None,
            None,
            "fast",
            "CREATE",
            "alice",
            json!({"apiVersion": "storage.k8s.io/v1", "kind": "StorageClass",
                "metadata": {"name": "fast", "annotations": {"storageclass.kubernetes.io/is-default-class": "true"}},
                "provisioner": "pxd.portworx.com"}),
            Value::Null,
        ),
        review(
            "b-3",
            ("autoscaling", "v1", "Scale"),
            "deployments",
            Some("scale"),
            Some("app-7"),
            "web",
            "UPDATE",
            "bob",
            json!({"apiVersion": "autoscaling/v1", "kind": "Scale", "metadata": {"name": "web", "namespace": "app-7"},
                "spec": {"replicas": 3}}),
            json!({"apiVersion": "autoscaling/v1", "kind": "Scale", "metadata": {"name": "web", "namespace": "app-7"},
                "spec": {"replicas": 0}}),
        ),
        review(
            "b-4",
            ("apps", "v1", "Deployment"),
            "deployments",
            None,
            Some("shop"),
            "cart",
            "UPDATE",
            "carol",
            json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "cart", "namespace": "shop",
                "annotations": {"stork.libopenstorage.org/migrationReplicas": "2"}}, "spec": {"replicas": 2}}),
            json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "cart", "namespace": "shop"},
                "spec": {"replicas": 2}}),
        ),
        review(
            "b-5",
            stork("SchedulePolicy"),
            "schedulepolicies",
            None,
            None,
            "nightly",
            "CREATE",
            "alice",
            json!({"apiVersion": "stork.libopenstorage.org/v1alpha1", "kind": "SchedulePolicy",
                "metadata": {"name": "nightly"}, "policy": {"daily": {"time": "10:14PM", "retain": 3}}}),
            Value::Null,
        ),
        review(
            "b-6",
            ("drgitops.dev", "v1alpha1", "DRPlan"),
            "drplans",
            None,
            Some("app-9"),
            "app-9",
            "UPDATE",
            "alice",
            json!({"apiVersion": "drgitops.dev/v1alpha1", "kind": "DRPlan", "metadata": {"name": "app-9", "namespace": "app-9"},
                "spec": {"mode": "async", "primary": "us-east-1b", "domains": [{"name": "us-east-1a"}, {"name": "us-east-1b"}],
                    "clusterPair": {"name": "remotecluster", "peerKubeconfigSecret": {"name": "p", "key": "kubeconfig"},
                        "storageSecret": {"name": "drgitops-peer-storage"}},
                    "schedule": {"interval": {"intervalMinutes": 15}}}}),
            Value::Null,
        ),
    ];
    [0, 3, 4, 5, 0, 3, 4, 5, 1, 2]
        .iter()
        .map(|&i| six[i].clone())
        .collect()
}

async fn connect(addr: &str, ca_pem: &str) -> SendRequest<Full<Bytes>> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls_pemfile::certs(&mut ca_pem.as_bytes()) {
        roots.add(cert.expect("pem")).expect("root");
    }
    let config = rustls::ClientConfig::builder()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let tcp = tokio::net::TcpStream::connect(addr).await.expect("connect");
    tcp.set_nodelay(true).expect("nodelay");
    let name = rustls::pki_types::ServerName::try_from("localhost").expect("name");
    let tls = tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(name, tcp)
        .await
        .expect("handshake");
    let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
        .await
        .expect("http handshake");
    tokio::spawn(conn);
    sender
}

async fn send(sender: &mut SendRequest<Full<Bytes>>, body: Bytes) -> Bytes {
    sender.ready().await.expect("connection ready");
    let req = http::Request::post("/validate")
        .header(http::header::HOST, "localhost")
        .header(http::header::CONTENT_TYPE, "application/json")
        .body(Full::new(body))
        .expect("request");
    let resp = sender.send_request(req).await.expect("response");
    assert_eq!(resp.status(), 200);
    let bytes = resp.into_body().collect().await.expect("body").to_bytes();
    assert!(
        bytes.starts_with(br#"{"apiVersion":"admission.k8s.io/v1""#),
        "not a review: {bytes:?}"
    );
    bytes
}

struct Run {
    count: usize,
    seconds: f64,
    latencies_us: Vec<u64>,
    /// Open loop only: sends that started after their slot because the last answer had not come yet.
    late: usize,
}

impl Run {
    fn rate(&self) -> f64 {
        self.count as f64 / self.seconds
    }
    fn pct(&self, p: f64) -> f64 {
        if self.latencies_us.is_empty() {
            return 0.0;
        }
        let idx = ((self.latencies_us.len() as f64 - 1.0) * p).round() as usize;
        self.latencies_us[idx] as f64 / 1000.0
    }

    fn merge(runs: Vec<Run>) -> Run {
        let mut latencies_us: Vec<u64> = runs
            .iter()
            .flat_map(|r| r.latencies_us.iter().copied())
            .collect();
        latencies_us.sort_unstable();
        Run {
            count: runs.iter().map(|r| r.count).sum(),
            seconds: runs.iter().map(|r| r.seconds).sum(),
            late: runs.iter().map(|r| r.late).sum(),
            latencies_us,
        }
    }
}

/// How a server is loaded: as fast as it answers, or at a fixed rate.
#[derive(Clone, Copy)]
enum Load {
    Closed,
    Rate(u64),
}

/// One keep-alive connection of the load generator.
type Conn = SendRequest<Full<Bytes>>;
/// One server's connections, kept open across the measured slices.
type Conns = Vec<Conn>;
/// A connection's task: its latencies in µs, how many of its sends were late, and the connection to hand back.
type ConnTask = tokio::task::JoinHandle<(Vec<u64>, usize, Conn)>;

async fn open_conns(addr: &str, ca: &str) -> Conns {
    let mut conns = Vec::with_capacity(CONNS);
    for _ in 0..CONNS {
        conns.push(connect(addr, ca).await);
    }
    conns
}

/// Measures the baseline and the rules server in alternating one-second slices, `seconds` of each, so that both
/// meet the same machine: on a shared 2-core machine what else runs changes from second to second, and two
/// back-to-back runs of several seconds each would compare two different machines. Each server keeps its
/// connections from slice to slice, as kube-apiserver keeps its own.
async fn alternating(
    baseline: &mut Conns,
    rules: &mut Conns,
    seconds: u64,
    load: Load,
    bodies: &[Bytes],
) -> (Run, Run) {
    let slice = Duration::from_secs(1);
    let (mut base_runs, mut rules_runs) = (Vec::new(), Vec::new());
    for _ in 0..seconds {
        for (conns, runs) in [
            (&mut *baseline, &mut base_runs),
            (&mut *rules, &mut rules_runs),
        ] {
            runs.push(match load {
                Load::Closed => closed_loop(conns, slice, bodies).await,
                Load::Rate(rate) => open_loop(conns, rate, slice, bodies).await,
            });
        }
    }
    (Run::merge(base_runs), Run::merge(rules_runs))
}

/// Closed loop: every connection sends the next review as soon as the last answer arrived.
async fn closed_loop(conns: &mut Conns, duration: Duration, bodies: &[Bytes]) -> Run {
    let start = Instant::now();
    let mut tasks = Vec::new();
    for (c, mut sender) in conns.drain(..).enumerate() {
        let bodies = bodies.to_vec();
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::new();
            let mut i = c;
            while start.elapsed() < duration {
                let t = Instant::now();
                send(&mut sender, bodies[i % bodies.len()].clone()).await;
                lat.push(t.elapsed().as_micros() as u64);
                i += 1;
            }
            (lat, 0, sender)
        }));
    }
    let (latencies_us, late) = join(tasks, conns).await;
    Run {
        count: latencies_us.len(),
        seconds: start.elapsed().as_secs_f64(),
        latencies_us,
        late,
    }
}

/// Open loop: `rate` reviews/s, evenly spaced, handed round-robin to the connections.
///
/// A pacing thread releases each send at its own slot (`1/rate` apart) with `std::thread::sleep`, whose
/// precision is tens of microseconds. Tokio's timer could not pace this: it wakes on millisecond ticks, so
/// connections scheduled half a millisecond apart would fire together, and "2,000 reviews/s" would be 1,000
/// pairs per second arriving at once, which measures how long a second review queues behind the first. Each
/// sample is timed from the actual send; a slot that finds its connection still waiting for the last answer is
/// counted as late (`Run::late`), so a server too slow for the rate cannot hide behind its own backlog.
async fn open_loop(conns: &mut Conns, rate: u64, duration: Duration, bodies: &[Bytes]) -> Run {
    let n = conns.len();
    let gap = Duration::from_nanos(1_000_000_000 / rate);
    let slots = (duration.as_nanos() / gap.as_nanos()) as u32;
    let mut tasks = Vec::new();
    let mut releases = Vec::new();
    for mut sender in conns.drain(..) {
        let bodies = bodies.to_vec();
        let (release, mut released) = tokio::sync::mpsc::unbounded_channel::<usize>();
        releases.push(release);
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::new();
            let mut late = 0;
            // Slot k sends the k-th review of the mix, so the mix arrives in its order.
            while let Some(slot) = released.recv().await {
                let sent = Instant::now();
                send(&mut sender, bodies[slot % bodies.len()].clone()).await;
                lat.push(sent.elapsed().as_micros() as u64);
                // The next slot of this connection already came while it waited for this answer.
                late += usize::from(!released.is_empty());
            }
            (lat, late, sender)
        }));
    }
    let start = Instant::now() + Duration::from_millis(10);
    let pacer = std::thread::spawn(move || {
        for slot in 0..slots {
            let at = start + gap * slot;
            if let Some(wait) = at.checked_duration_since(Instant::now()) {
                std::thread::sleep(wait);
            }
            let _ = releases[slot as usize % n].send(slot as usize);
        }
        // Dropping the senders ends every connection's loop.
    });
    let (latencies_us, late) = join(tasks, conns).await;
    pacer.join().expect("pacer");
    Run {
        count: latencies_us.len(),
        seconds: duration.as_secs_f64(),
        latencies_us,
        late,
    }
}

/// Collects the connections' latencies (sorted) and late sends, and gives the connections back.
async fn join(tasks: Vec<ConnTask>, conns: &mut Conns) -> (Vec<u64>, usize) {
    let mut latencies_us = Vec::new();
    let mut late = 0;
    for t in tasks {
        let (lat, conn_late, sender) = t.await.expect("task");
        latencies_us.extend(lat);
        late += conn_late;
        conns.push(sender);
    }
    latencies_us.sort_unstable();
    (latencies_us, late)
}

fn print_row(round: &str, name: &str, run: &Run, open: bool) {
    let late = if open {
        run.late.to_string()
    } else {
        "-".to_string()
    };
    println!(
        "| {round} | {name} | {:.0} | {:.3} | {:.3} | {late} |",
        run.rate(),
        run.pct(0.50),
        run.pct(0.99)
    );
}

fn print_ratio(round: &str, base: &Run, rules: &Run) {
    println!(
        "| {round} | p99 at 2,000/s, rules / baseline | {:.2}x | | | |",
        rules.pct(0.99) / base.pct(0.99).max(0.001)
    );
}

fn spawn_server(role: &str, dir: &Path) -> (Child, String) {
    let mut child = Command::new(std::env::current_exe().expect("exe"))
        .env(ROLE_ENV, role)
        .env(DIR_ENV, dir)
        .env_remove("RUST_LOG")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn server");
    let mut line = String::new();
    BufReader::new(child.stdout.take().expect("stdout"))
        .read_line(&mut line)
        .expect("address");
    (child, line.trim().to_string())
}

/// Applies every document of a YAML stream (CRDs) through `client`.
async fn apply_yaml(client: &kube::Client, path: &Path) {
    let text = std::fs::read_to_string(path).expect("manifest");
    for doc in serde_yaml::Deserializer::from_str(&text) {
        let value = <serde_yaml::Value as serde::Deserialize>::deserialize(doc).expect("yaml");
        if value.is_null() {
            continue;
        }
        let obj: kube::api::DynamicObject = serde_yaml::from_value(value).expect("object");
        create(client, obj).await;
    }
}

async fn create(client: &kube::Client, obj: kube::api::DynamicObject) {
    let types = obj.types.clone().expect("apiVersion and kind");
    let (group, version) = match types.api_version.split_once('/') {
        Some((g, v)) => (g.to_string(), v.to_string()),
        None => (String::new(), types.api_version.clone()),
    };
    let plural = match types.kind.as_str() {
        "CustomResourceDefinition" => "customresourcedefinitions".to_string(),
        "StorageClass" => "storageclasses".to_string(),
        "Namespace" => "namespaces".to_string(),
        "DRPlan" => "drplans".to_string(),
        "ClusterPair" => "clusterpairs".to_string(),
        other => panic!("no plural for {other}"),
    };
    let ar = kube::api::ApiResource::from_gvk_with_plural(
        &kube::api::GroupVersionKind::gvk(&group, &version, &types.kind),
        &plural,
    );
    let api: kube::Api<kube::api::DynamicObject> = match &obj.metadata.namespace {
        Some(ns) => kube::Api::namespaced_with(client.clone(), ns, &ar),
        None => kube::Api::all_with(client.clone(), &ar),
    };
    api.create(&kube::api::PostParams::default(), &obj)
        .await
        .expect("create");
}

/// The real `drgitops webhook` binary, its view filled by its own watchers from an in-memory API server holding
/// the 30,000 objects. Returns the process, its HTTPS and admin addresses, and the API server (keep it alive).
fn start_binary(
    runtime: &tokio::runtime::Runtime,
    dir: &Path,
) -> (Child, String, String, fake_apiserver::FakeApiServer) {
    let repo = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let api = runtime
        .block_on(fake_apiserver::FakeApiServer::start())
        .expect("fake API server");
    api.write_kubeconfig(dir.join("kubeconfig"))
        .expect("kubeconfig");
    // The client spawns its request buffer onto the current runtime.
    let client = {
        let _runtime = runtime.enter();
        api.client()
    };
    runtime.block_on(async {
        use futures::StreamExt as _;
        apply_yaml(&client, &repo.join("tests/data/webhook/stork-crds.yaml")).await;
        apply_yaml(&client, &repo.join("manifests/crd/drplan.yaml")).await;
        let mut objects: Vec<kube::api::DynamicObject> = Vec::new();
        let mut push = |v: Value| objects.push(serde_json::from_value(v).expect("object"));
        for i in 0..OBJECTS {
            push(json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": format!("app-{i}")}}));
        }
        let namespaces: Vec<_> = std::mem::take(&mut objects);
        futures::stream::iter(namespaces).for_each_concurrent(32, |o| create(&client, o)).await;
        let mut push = |v: Value| objects.push(serde_json::from_value(v).expect("object"));
        for v in objects_for_view() {
            push(v);
        }
        futures::stream::iter(objects).for_each_concurrent(32, |o| create(&client, o)).await;
    });
    let listen = free_addr();
    let admin = free_addr();
    let child = Command::new(env!("CARGO_BIN_EXE_drgitops"))
        .args([
            "webhook",
            "--listen",
            &listen,
            "--admin-listen",
            &admin,
            "--cluster-domain",
            "us-east-1b",
        ])
        .args(["--log-format", "json"])
        .arg("--tls-cert")
        .arg(dir.join("tls.crt"))
        .arg("--tls-key")
        .arg(dir.join("tls.key"))
        .arg("--policies")
        .arg(repo.join("policies"))
        .env("KUBECONFIG", dir.join("kubeconfig"))
        .env_remove("KUBERNETES_SERVICE_HOST")
        .env_remove("RUST_LOG")
        // As the shipped Deployment sets it.
        .env("MALLOC_ARENA_MAX", "2")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start drgitops webhook");
    let deadline = Instant::now() + Duration::from_secs(120);
    while !ready(&admin) {
        assert!(
            Instant::now() < deadline,
            "drgitops webhook did not become ready"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    (child, listen, admin, api)
}

fn free_addr() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.local_addr().expect("addr").to_string()
}

/// `GET /readyz` answers 200.
fn ready(admin: &str) -> bool {
    use std::io::{Read, Write};
    let Ok(mut tcp) = std::net::TcpStream::connect(admin) else {
        return false;
    };
    let _ = tcp.write_all(b"GET /readyz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
    let mut out = String::new();
    let _ = tcp.read_to_string(&mut out);
    out.starts_with("HTTP/1.1 200")
}

fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

/// What the webhook adds per review before HTTP and TLS: parsing the review, every rule against a view of
/// 30,000 objects, and the answer's bytes, on one thread (µs per review, averaged over the mix).
fn rules_path_cost(bodies: &[Bytes]) -> f64 {
    use drgitops::webhook::review::{self, Endpoint, ResponseReview, Review};
    let view = drgitops::cluster::live::LiveView::new(Some("us-east-1b".to_string()));
    populate(&view);
    let config = drgitops::policy::PolicyConfig::default();
    let mut answered = 0usize;
    let mut pass = || {
        for body in bodies {
            let review = Review::parse(body).expect("the mix parses");
            let decision = drgitops::policy::evaluate(&review.request(), &view, &config);
            let response = review::respond(&review.uid, &decision, Endpoint::Validate);
            answered += ResponseReview::new(response).to_bytes().len();
        }
    };
    let per_pass = micros_per_call(&mut pass);
    assert!(answered > 0);
    per_pass / bodies.len() as f64
}

/// µs per call of `f` on one thread, hot: 1,000 calls to warm up, then the mean of 20,000.
fn micros_per_call(mut f: impl FnMut()) -> f64 {
    for _ in 0..1_000 {
        f();
    }
    let calls = 20_000;
    let start = Instant::now();
    for _ in 0..calls {
        f();
    }
    start.elapsed().as_secs_f64() * 1e6 / f64::from(calls)
}

/// A Deployment UPDATE as kube-apiserver sends it: object and old object, each with the `managedFields` of three
/// field managers (as a Deployment edited by kubectl, its controller and an autoscaler carries).
fn deployment_update_review() -> Bytes {
    let managers: Vec<Value> = ["kubectl-client-side-apply", "kube-controller-manager", "hpa-controller"]
        .iter()
        .map(|manager| {
            json!({"manager": manager, "operation": "Update", "apiVersion": "apps/v1",
                "time": "2026-11-22T10:00:00Z", "fieldsType": "FieldsV1", "fieldsV1": {
                "f:metadata": {"f:annotations": {".": {}, "f:deployment.kubernetes.io/revision": {}},
                    "f:labels": {".": {}, "f:app": {}}},
                "f:spec": {"f:progressDeadlineSeconds": {}, "f:replicas": {}, "f:revisionHistoryLimit": {},
                    "f:selector": {}, "f:strategy": {"f:rollingUpdate": {".": {}, "f:maxSurge": {},
                    "f:maxUnavailable": {}}, "f:type": {}},
                    "f:template": {"f:metadata": {"f:labels": {".": {}, "f:app": {}}}, "f:spec": {
                        "f:containers": {"k:{\"name\":\"web\"}": {".": {}, "f:image": {}, "f:name": {},
                            "f:ports": {".": {}, "k:{\"containerPort\":80,\"protocol\":\"TCP\"}": {
                                ".": {}, "f:containerPort": {}, "f:protocol": {}}},
                            "f:resources": {}, "f:terminationMessagePath": {}}},
                        "f:dnsPolicy": {}, "f:restartPolicy": {}, "f:schedulerName": {}}}}}})
        })
        .collect();
    let object = json!({"apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "shop", "uid": "6f1c", "resourceVersion": "1", "generation": 3,
            "labels": {"app": "web"}, "annotations": {"deployment.kubernetes.io/revision": "3"},
            "managedFields": managers},
        "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "web"}},
            "template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{"name": "web",
                "image": "nginx:1.27", "ports": [{"containerPort": 80, "protocol": "TCP"}]}]}}},
        "status": {"replicas": 2, "readyReplicas": 2}});
    review(
        "u",
        ("apps", "v1", "Deployment"),
        "deployments",
        None,
        Some("shop"),
        "web",
        "UPDATE",
        "alice",
        object.clone(),
        object,
    )
}

/// µs to parse `body` with `Review::parse` (which leaves `managedFields` out), and to parse it whole into a
/// `serde_json::Value` as a webhook that keeps every field would.
fn parse_cost(body: &[u8]) -> (f64, f64) {
    let review = micros_per_call(|| {
        std::hint::black_box(drgitops::webhook::review::Review::parse(body).expect("parses"));
    });
    let whole = micros_per_call(|| {
        std::hint::black_box(serde_json::from_slice::<Value>(body).expect("parses"));
    });
    (review, whole)
}

/// The admission handler alone, as the binary runs it (router, rules, metrics, JSON logs of the denials to a
/// discarded stderr, the deadline), driven one review at a time on the binary's runtime: no TLS, no sockets.
/// Prints one line: mean, p50 and p99 in µs.
fn handler_cost() {
    use tower::ServiceExt as _;
    drgitops::runtime::logging::init(drgitops::runtime::logging::LogFormat::Json);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let view = Arc::new(drgitops::cluster::live::LiveView::new(Some(
        "us-east-1b".to_string(),
    )));
    populate(&view);
    let store = Arc::new(drgitops::webhook::config::PolicyStore::new(
        drgitops::policy::PolicyConfig::default(),
    ));
    let metrics = Arc::new(drgitops::webhook::metrics::Metrics::new());
    let router = drgitops::webhook::admission::router(
        drgitops::webhook::admission::AdmissionState::new(view, store, metrics),
    );
    let bodies = mix();
    let ns = runtime.block_on(async move {
        // On a worker, as hyper's connection tasks run.
        tokio::spawn(async move {
            let mut ns = Vec::new();
            for i in 0..110_000 {
                let request = http::Request::post("/validate")
                    .body(axum::body::Body::from(bodies[i % bodies.len()].clone()))
                    .expect("request");
                let t = Instant::now();
                let response = router.clone().oneshot(request).await.expect("infallible");
                let body = http_body_util::BodyExt::collect(response.into_body())
                    .await
                    .expect("body");
                let elapsed = t.elapsed().as_nanos() as u64;
                assert!(!body.to_bytes().is_empty());
                if i >= 10_000 {
                    ns.push(elapsed);
                }
            }
            ns
        })
        .await
        .expect("task")
    });
    let mut ns = ns;
    ns.sort_unstable();
    let at = |p: f64| ns[((ns.len() - 1) as f64 * p) as usize] as f64 / 1000.0;
    let mean = ns.iter().sum::<u64>() as f64 / ns.len() as f64 / 1000.0;
    println!("{mean:.1} {:.1} {:.1}", at(0.5), at(0.99));
}

fn drive() {
    let seconds: u64 = std::env::var("DRGITOPS_BENCH_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(5);
    let dir = tempfile::tempdir().expect("tempdir");
    let key = rcgen::KeyPair::generate().expect("key");
    let cert = rcgen::CertificateParams::new(vec!["localhost".to_string()])
        .expect("params")
        .self_signed(&key)
        .expect("cert");
    std::fs::write(dir.path().join("tls.crt"), cert.pem()).expect("write");
    std::fs::write(dir.path().join("tls.key"), key.serialize_pem()).expect("write");
    let ca = cert.pem();

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    // The rules server is the real binary watching an in-memory API server, unless told to use the in-process
    // router over a view filled directly (`DRGITOPS_BENCH_SERVER=inprocess`, no API server needed).
    let in_process = std::env::var("DRGITOPS_BENCH_SERVER").as_deref() == Ok("inprocess");
    let load_start = Instant::now();
    let (mut rules, rules_addr, _api) = if in_process {
        let (child, addr) = spawn_server("rules", dir.path());
        (child, addr, None)
    } else {
        let (child, addr, _admin, api) = start_binary(&runtime, dir.path());
        (child, addr, Some(api))
    };
    let load_secs = load_start.elapsed().as_secs_f64();
    let (mut baseline, baseline_addr) = spawn_server("baseline", dir.path());
    let rss_idle = rss_kib(rules.id());

    let bodies = mix();
    let path_us = rules_path_cost(&bodies);
    let update = deployment_update_review();
    let (parse_us, whole_us) = parse_cost(&update);
    let (mut handler, handler_us) = spawn_server("handler", dir.path());
    let _ = handler.wait();
    let rounds: usize = std::env::var("DRGITOPS_BENCH_ROUNDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(3);
    println!(
        "drgitops webhook benchmark: HTTPS keep-alive, {CONNS} connections, {seconds}s per run in one-second slices alternating with the baseline, review mix of {}",
        bodies.len()
    );
    println!(
        "rules server: {}; view of {OBJECTS} StorageClasses, {OBJECTS} DRPlans, {OBJECTS} ClusterPairs ready in {load_secs:.1}s",
        if in_process {
            "in-process router, view filled directly"
        } else {
            "drgitops webhook binary, view filled by its watchers from an in-memory API server"
        }
    );
    if rules_as_baseline() {
        println!(
            "baseline: a second rules server (in-process router over the same view), {BASELINE_ENV}=rules: both \
             servers are the same, so the p99 ratio shows the method's own spread"
        );
    }
    println!(
        "rules path without HTTP and TLS (parse, all rules, answer body), one thread: {path_us:.1} µs per review"
    );
    println!(
        "parse of a {:.1} KB Deployment UPDATE with managedFields, one thread: {parse_us:.1} µs (the whole review \
         into a serde_json::Value: {whole_us:.1} µs)",
        update.len() as f64 / 1000.0
    );
    let handler_us: Vec<&str> = handler_us.split(' ').collect();
    println!(
        "admission handler without TLS and sockets (router, rules, metrics, logs, deadline), one review at a time: \
         mean {} µs, p50 {} µs, p99 {} µs",
        handler_us[0], handler_us[1], handler_us[2]
    );
    println!("| round | run | reviews/s | p50 ms | p99 ms | late sends |");
    println!("|---|---|---|---|---|---|");
    runtime.block_on(async {
        let mut sender = connect(&rules_addr, &ca).await;
        let mut denied = 0;
        for body in &bodies {
            let answer = send(&mut sender, body.clone()).await;
            if !String::from_utf8_lossy(&answer).contains(r#""allowed":true"#) {
                denied += 1;
            }
        }
        println!(
            "rules server: {denied} of the {} reviews in the mix are denied",
            bodies.len()
        );
        // Warm both servers and every connection up (allocator, caches, TLS sessions) before measuring.
        let mut base_conns = open_conns(&baseline_addr, &ca).await;
        let mut rules_conns = open_conns(&rules_addr, &ca).await;
        alternating(&mut base_conns, &mut rules_conns, 1, Load::Closed, &bodies).await;
        let (mut base_all, mut rules_all) = (Vec::new(), Vec::new());
        for round in 1..=rounds {
            let (base_max, rules_max) = alternating(
                &mut base_conns,
                &mut rules_conns,
                seconds,
                Load::Closed,
                &bodies,
            )
            .await;
            let (base_2k, rules_2k) = alternating(
                &mut base_conns,
                &mut rules_conns,
                seconds,
                Load::Rate(2_000),
                &bodies,
            )
            .await;
            for (name, run, open) in [
                ("baseline, closed loop", &base_max, false),
                ("all rules, closed loop", &rules_max, false),
                ("baseline at 2,000/s", &base_2k, true),
                ("all rules at 2,000/s", &rules_2k, true),
            ] {
                print_row(&round.to_string(), name, run, open);
            }
            print_ratio(&round.to_string(), &base_2k, &rules_2k);
            base_all.push(base_2k);
            rules_all.push(rules_2k);
        }
        // Every round's samples together: one p99 over `rounds × seconds` seconds of each server, steadier than
        // any single round's.
        let (base_all, rules_all) = (Run::merge(base_all), Run::merge(rules_all));
        print_row("all", "baseline at 2,000/s", &base_all, true);
        print_row("all", "all rules at 2,000/s", &rules_all, true);
        print_ratio("all", &base_all, &rules_all);
    });
    let rss_loaded = rss_kib(rules.id());
    println!(
        "rules server RSS: {:.1} MiB after loading the view, {:.1} MiB after the runs",
        rss_idle as f64 / 1024.0,
        rss_loaded as f64 / 1024.0
    );
    let _ = rules.kill();
    let _ = baseline.kill();
    let _ = rules.wait();
    let _ = baseline.wait();
}

// ---------------------------------------------------------------------------------------------------------------
// API writes through a real kube-apiserver (`DRGITOPS_BENCH_SUBSTRATE=real`)

/// Where the writes go: a plain namespace (no DRPlan), so the webhooks are called and allow every write.
const WRITES_NS: &str = "bench";
/// Writes per second, evenly paced; creates and `/scale` updates alternate.
const WRITE_RATE: u64 = 200;
/// The Deployments the `/scale` updates go round.
const SCALE_POOL: usize = 100;

/// The latency the webhook adds to API writes, as a user of the cluster sees it: one real control plane, the
/// shipped webhook configurations (mutating and validating, each with the fail-closed and the fail-open webhook)
/// registered by Service with only `caBundle` filled in, and `drgitops webhook` running as its shipped
/// ServiceAccount, reached by kube-apiserver at the Service's endpoint. The load is an open loop of admin writes
/// in a plain namespace, evenly paced at 200/s from a thread: Deployment creates (matched by both
/// configurations) alternating with `/scale` updates of 100 existing Deployments (matched by the validating one),
/// each changing the count between 0 and 1, so the controllers answer them as they would a person's scale.
/// Each round takes a run with the configurations registered and one with them deleted (the order alternating),
/// so both meet the same machine; the switch is confirmed by a server-side dry run before the clock starts.
fn api_writes() {
    let env_number = |name: &str, default: u64| {
        std::env::var(name)
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(default)
    };
    let seconds = env_number("DRGITOPS_BENCH_SECONDS", 5);
    let rounds = env_number("DRGITOPS_BENCH_ROUNDS", 3);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let setup = Instant::now();
        let cluster = testkit::Cluster::start("webhook").await;
        let webhook = testkit::webhook::install(
            env!("CARGO_BIN_EXE_drgitops"),
            &cluster,
            &testkit::webhook::SERVICE_NAMES,
            testkit::webhook::Install::WithoutCertManager,
        )
        .await;
        let admin = webhook.admin.clone();
        let client = cluster.client().await;
        let mut load = Writes::prepare(client.clone()).await;
        let registration = Registration::new(client).await;
        registration.set(true).await;
        println!(
            "drgitops webhook on a real control plane: registered by Service, ready and reached {:.0} s after \
             the start; {WRITE_RATE} writes/s (creates and /scale updates alternating), {seconds} s per run",
            setup.elapsed().as_secs_f64()
        );
        // Warm-up: connections, caches, the webhook's and kube-apiserver's.
        load.run(2).await;
        println!(
            "| round | webhook configurations | writes/s | creates p50 ms | creates p99 ms | /scale p50 ms \
             | /scale p99 ms | failed |"
        );
        println!("|---|---|---|---|---|---|---|---|");
        let (mut with, mut without) = (Vec::new(), Vec::new());
        let mut reviews = 0;
        for round in 1..=rounds {
            let order = if round % 2 == 1 {
                [true, false]
            } else {
                [false, true]
            };
            for registered in order {
                registration.set(registered).await;
                let before = admission_requests(&admin);
                let run = load.run(seconds).await;
                if registered {
                    reviews += admission_requests(&admin) - before;
                }
                run.print_row(&round.to_string(), registered);
                if registered { &mut with } else { &mut without }.push(run);
            }
        }
        let (with, without) = (Latencies::merge(with), Latencies::merge(without));
        with.print_row("all", true);
        without.print_row("all", false);
        let ms = |run: &Latencies, creates: bool, p: f64| {
            let samples = if creates { &run.creates_us } else { &run.scales_us };
            pct_ms(samples, p)
        };
        let cells = |f: &dyn Fn(f64, f64) -> String| {
            [(true, 0.5), (true, 0.99), (false, 0.5), (false, 0.99)]
                .map(|(creates, p)| f(ms(&with, creates, p), ms(&without, creates, p)))
                .join(" | ")
        };
        println!(
            "| all | added by the webhook (registered − deleted), ms | | {} | |",
            cells(&|a, b| format!("{:+.3}", a - b))
        );
        println!(
            "| all | registered / deleted | | {} | |",
            cells(&|a, b| format!("{:.2}x", a / b.max(0.001)))
        );
        println!(
            "reviews answered by drgitops webhook during the registered runs: {reviews} ({:.1} per write)",
            reviews as f64 / with.count() as f64
        );
        drop(webhook);
    });
}

/// The webhook's `drgitops_admission_requests_total`, summed over its labels, from its admin port.
fn admission_requests(admin: &str) -> u64 {
    use std::io::{Read, Write};
    let mut tcp = std::net::TcpStream::connect(admin).expect("admin port");
    tcp.write_all(b"GET /metrics HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .expect("write");
    let mut out = String::new();
    tcp.read_to_string(&mut out).expect("read");
    out.lines()
        .filter(|l| l.starts_with("drgitops_admission_requests_total"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum::<f64>() as u64
}

/// The two webhook configurations as installed (with `caBundle`), deleted and re-created between runs.
struct Registration {
    mutating: Api<MutatingWebhookConfiguration>,
    validating: Api<ValidatingWebhookConfiguration>,
    installed: (MutatingWebhookConfiguration, ValidatingWebhookConfiguration),
    probe: Api<DynamicObject>,
}

impl Registration {
    async fn new(client: kube::Client) -> Registration {
        let mutating: Api<MutatingWebhookConfiguration> = Api::all(client.clone());
        let validating: Api<ValidatingWebhookConfiguration> = Api::all(client.clone());
        let mut installed = (
            mutating.get("drgitops").await.expect("mutating"),
            validating.get("drgitops").await.expect("validating"),
        );
        // Re-created as new objects.
        installed.0.metadata = kube::api::ObjectMeta {
            name: installed.0.metadata.name.take(),
            labels: installed.0.metadata.labels.take(),
            ..Default::default()
        };
        installed.1.metadata = kube::api::ObjectMeta {
            name: installed.1.metadata.name.take(),
            labels: installed.1.metadata.labels.take(),
            ..Default::default()
        };
        let resource = kube::api::ApiResource::from_gvk_with_plural(
            &kube::api::GroupVersionKind::gvk(
                "stork.libopenstorage.org",
                "v1alpha1",
                "MigrationSchedule",
            ),
            "migrationschedules",
        );
        Registration {
            mutating,
            validating,
            installed,
            probe: Api::namespaced_with(client, WRITES_NS, &resource),
        }
    }

    /// Registers or deletes both configurations, then waits until kube-apiserver acts on it: a server-side dry
    /// run of a MigrationSchedule the webhook denies (`startApplications: true`) is denied, or stored.
    async fn set(&self, registered: bool) {
        let exists = self
            .validating
            .get_opt("drgitops")
            .await
            .expect("get")
            .is_some();
        if registered && !exists {
            let post = PostParams::default();
            self.mutating
                .create(&post, &self.installed.0)
                .await
                .expect("create");
            self.validating
                .create(&post, &self.installed.1)
                .await
                .expect("create");
        } else if !registered && exists {
            let delete = DeleteParams::default();
            self.mutating
                .delete("drgitops", &delete)
                .await
                .expect("delete");
            self.validating
                .delete("drgitops", &delete)
                .await
                .expect("delete");
        }
        let schedule: DynamicObject = serde_json::from_value(json!({
            "apiVersion": "stork.libopenstorage.org/v1alpha1", "kind": "MigrationSchedule",
            "metadata": {"name": "probe", "namespace": WRITES_NS},
            "spec": {"schedulePolicyName": "default-interval-policy", "template": {"spec": {
                "clusterPair": "remotecluster", "namespaces": [WRITES_NS], "includeResources": true,
                "includeVolumes": false, "startApplications": true}}}
        }))
        .expect("MigrationSchedule");
        let dry_run = PostParams {
            dry_run: true,
            ..Default::default()
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let denied = match self.probe.create(&dry_run, &schedule).await {
                Ok(_) => false,
                Err(e) if e.to_string().contains("denied the request") => true,
                Err(e) => panic!("the probe's dry run failed: {e}"),
            };
            if denied == registered {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "kube-apiserver did not act on the webhook configurations being {}",
                if registered { "registered" } else { "deleted" }
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        // The mutating configuration is watched apart from the validating one: let it catch up too.
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

/// The writes of the load, kept across runs: names of the created Deployments and the counts of the scaled ones
/// go on from run to run, so every write changes something.
struct Writes {
    client: kube::Client,
    creates: usize,
    scales: usize,
}

/// One run's latencies, each in µs from the request's start to its answer.
struct Latencies {
    creates_us: Vec<u64>,
    scales_us: Vec<u64>,
    failed: usize,
    seconds: f64,
}

fn deployment(name: &str, replicas: i32) -> Deployment {
    serde_json::from_value(json!({
        "metadata": {"name": name, "namespace": WRITES_NS},
        "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": name}},
                 "template": {"metadata": {"labels": {"app": name}},
                              "spec": {"containers": [{"name": "app", "image": "registry.example/app:1"}]}}}
    }))
    .expect("deployment")
}

impl Writes {
    /// Creates the namespace and the Deployments the `/scale` updates go round (at 0 replicas).
    async fn prepare(client: kube::Client) -> Writes {
        let namespaces: Api<k8s_openapi::api::core::v1::Namespace> = Api::all(client.clone());
        namespaces
            .create(
                &PostParams::default(),
                &serde_json::from_value(json!({"metadata": {"name": WRITES_NS}})).expect("ns"),
            )
            .await
            .expect("namespace");
        let api: Api<Deployment> = Api::namespaced(client.clone(), WRITES_NS);
        for i in 0..SCALE_POOL {
            api.create(
                &PostParams::default(),
                &deployment(&format!("scale-{i}"), 0),
            )
            .await
            .expect("deployment");
        }
        Writes {
            client,
            creates: 0,
            scales: 0,
        }
    }

    /// `seconds` of writes at [`WRITE_RATE`], released by a pacing thread (as the review load's open loop, and
    /// for the same reason); each write on its own task, so a slow answer never delays the next write.
    async fn run(&mut self, seconds: u64) -> Latencies {
        let gap = Duration::from_nanos(1_000_000_000 / WRITE_RATE);
        let slots = seconds * WRITE_RATE;
        let (release, mut released) = tokio::sync::mpsc::unbounded_channel::<u64>();
        let start = Instant::now() + Duration::from_millis(10);
        let pacer = std::thread::spawn(move || {
            for slot in 0..slots {
                if let Some(wait) =
                    (start + gap * slot as u32).checked_duration_since(Instant::now())
                {
                    std::thread::sleep(wait);
                }
                let _ = release.send(slot);
            }
        });
        let mut tasks = Vec::new();
        while let Some(slot) = released.recv().await {
            let api: Api<Deployment> = Api::namespaced(self.client.clone(), WRITES_NS);
            let create = slot % 2 == 0;
            let task = if create {
                let object = deployment(&format!("w-{}", self.creates), 0);
                self.creates += 1;
                tokio::spawn(async move {
                    let sent = Instant::now();
                    let ok = api.create(&PostParams::default(), &object).await.is_ok();
                    (true, sent.elapsed(), ok)
                })
            } else {
                let name = format!("scale-{}", self.scales % SCALE_POOL);
                let replicas = i32::from((self.scales / SCALE_POOL).is_multiple_of(2));
                self.scales += 1;
                tokio::spawn(async move {
                    let sent = Instant::now();
                    let patch = Patch::Merge(json!({"spec": {"replicas": replicas}}));
                    let ok = api
                        .patch_scale(&name, &PatchParams::default(), &patch)
                        .await
                        .is_ok();
                    (false, sent.elapsed(), ok)
                })
            };
            tasks.push(task);
        }
        pacer.join().expect("pacer");
        let mut run = Latencies {
            creates_us: Vec::new(),
            scales_us: Vec::new(),
            failed: 0,
            seconds: seconds as f64,
        };
        for task in tasks {
            let (create, took, ok) = task.await.expect("write task");
            if !ok {
                run.failed += 1;
                continue;
            }
            let us = took.as_micros() as u64;
            if create {
                &mut run.creates_us
            } else {
                &mut run.scales_us
            }
            .push(us);
        }
        run.creates_us.sort_unstable();
        run.scales_us.sort_unstable();
        run
    }
}

fn pct_ms(sorted_us: &[u64], p: f64) -> f64 {
    if sorted_us.is_empty() {
        return 0.0;
    }
    let index = ((sorted_us.len() as f64 - 1.0) * p).round() as usize;
    sorted_us[index] as f64 / 1000.0
}

impl Latencies {
    fn count(&self) -> usize {
        self.creates_us.len() + self.scales_us.len() + self.failed
    }

    fn merge(runs: Vec<Latencies>) -> Latencies {
        let mut all = Latencies {
            creates_us: runs
                .iter()
                .flat_map(|r| r.creates_us.iter().copied())
                .collect(),
            scales_us: runs
                .iter()
                .flat_map(|r| r.scales_us.iter().copied())
                .collect(),
            failed: runs.iter().map(|r| r.failed).sum(),
            seconds: runs.iter().map(|r| r.seconds).sum(),
        };
        all.creates_us.sort_unstable();
        all.scales_us.sort_unstable();
        all
    }

    fn print_row(&self, round: &str, registered: bool) {
        println!(
            "| {round} | {} | {:.0} | {:.3} | {:.3} | {:.3} | {:.3} | {} |",
            if registered { "registered" } else { "deleted" },
            self.count() as f64 / self.seconds,
            pct_ms(&self.creates_us, 0.5),
            pct_ms(&self.creates_us, 0.99),
            pct_ms(&self.scales_us, 0.5),
            pct_ms(&self.scales_us, 0.99),
            self.failed
        );
    }
}
