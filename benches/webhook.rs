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
#[path = "substrate/webhook_load.rs"]
mod webhook_load;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use k8s_openapi::api::admissionregistration::v1::{
    MutatingWebhookConfiguration, ValidatingWebhookConfiguration,
};
use k8s_openapi::api::apps::v1::Deployment;
use kube::api::{Api, DeleteParams, DynamicObject, Patch, PatchParams, PostParams};
use serde_json::{Value, json};

use webhook_load::{
    Conn, OBJECTS, client_config, connect, mix, objects_for_view, open_files_limit, review,
    rss_kib, send, start_binary, write_tls,
};

const ROLE_ENV: &str = "DRGITOPS_BENCH_ROLE";
const BASELINE_ENV: &str = "DRGITOPS_BENCH_BASELINE";
const DIR_ENV: &str = "DRGITOPS_BENCH_DIR";
/// `DRGITOPS_BENCH_IDLE=N`: the idle-connections run ([`idle_connections`]) with N idle connections.
const IDLE_ENV: &str = "DRGITOPS_BENCH_IDLE";
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
        _ if std::env::var(IDLE_ENV).is_ok() => idle_connections(),
        _ if substrate::real() => api_writes(),
        _ => drive(),
    }
}

// ---------------------------------------------------------------------------------------------------------------
// Server side

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
    let ca = write_tls(dir.path());

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
        let (child, addr, _admin, api) = start_binary(&runtime, dir.path(), Stdio::null());
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

// ---------------------------------------------------------------------------------------------------------------
// Thousands of idle connections (`DRGITOPS_BENCH_IDLE=N`)

/// The steady client's rate beside the idle connections.
const IDLE_RATE: u64 = 500;
/// Keep-alive connections of the steady client.
const IDLE_CLIENT_CONNS: usize = 8;

/// What the idle connections do, by their index modulo 10.
#[derive(Clone, Copy, PartialEq)]
enum Idle {
    /// Index 0: the first 100 bytes of a TLS ClientHello, then nothing: a handshake stalled midway.
    MidHandshake,
    /// Indexes 1–4: a whole TLS handshake, then no request: an idle keep-alive connection.
    AfterHandshake,
    /// Indexes 5–9: a TCP connection that never sends a byte.
    Silent,
}

impl Idle {
    fn of(i: usize) -> Idle {
        match i % 10 {
            0 => Idle::MidHandshake,
            1..=4 => Idle::AfterHandshake,
            _ => Idle::Silent,
        }
    }
}

/// The idle connections' counters: how many are open now, how many were opened, how many attempts failed.
#[derive(Default)]
struct IdleCounters {
    open: std::sync::atomic::AtomicUsize,
    opened: std::sync::atomic::AtomicUsize,
    failed: std::sync::atomic::AtomicUsize,
}

/// Counts a connection as open while it lives.
struct OpenGuard(Arc<IdleCounters>);

impl OpenGuard {
    fn new(counters: &Arc<IdleCounters>) -> OpenGuard {
        counters
            .open
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        OpenGuard(counters.clone())
    }
}

impl Drop for OpenGuard {
    fn drop(&mut self) {
        self.0
            .open
            .fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
    }
}

/// One idle connection's task: while `on` is true, holds a connection of its kind open until the server closes
/// it (it cuts off a handshake and an idle keep-alive connection after 10 s), then opens another.
async fn hold_idle(
    i: usize,
    addr: String,
    tls: Arc<rustls::ClientConfig>,
    hello: Arc<Vec<u8>>,
    mut on: tokio::sync::watch::Receiver<bool>,
    counters: Arc<IdleCounters>,
    stagger: Duration,
) {
    use std::sync::atomic::Ordering::Relaxed;
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let kind = Idle::of(i);
    loop {
        if on.wait_for(|on| *on).await.is_err() {
            return;
        }
        // Spread over the server's 10 s, so that the connections it cuts off are re-opened evenly.
        tokio::time::sleep(stagger).await;
        while *on.borrow() {
            let held = async {
                let mut tcp = tokio::net::TcpStream::connect(&addr).await.ok()?;
                let mut buf = [0u8; 64];
                let _open = match kind {
                    Idle::Silent => OpenGuard::new(&counters),
                    Idle::MidHandshake => {
                        tcp.write_all(&hello[..100.min(hello.len())]).await.ok()?;
                        OpenGuard::new(&counters)
                    }
                    Idle::AfterHandshake => {
                        let name =
                            rustls::pki_types::ServerName::try_from("localhost").expect("name");
                        let mut stream = tokio_rustls::TlsConnector::from(tls.clone())
                            .connect(name, tcp)
                            .await
                            .ok()?;
                        let open = OpenGuard::new(&counters);
                        let _ = stream.read(&mut buf).await;
                        return Some(open);
                    }
                };
                let _ = tcp.read(&mut buf).await;
                Some(_open)
            };
            let outcome = tokio::select! {
                outcome = held => outcome.map(drop),
                // Turned off while held: the connection is dropped.
                _ = on.wait_for(|on| !*on) => Some(()),
            };
            match outcome {
                Some(()) => counters.opened.fetch_add(1, Relaxed),
                None => counters.failed.fetch_add(1, Relaxed),
            };
        }
    }
}

/// The first TLS record a client sends: its ClientHello.
fn client_hello(config: &Arc<rustls::ClientConfig>) -> Vec<u8> {
    let name = rustls::pki_types::ServerName::try_from("localhost").expect("name");
    let mut conn = rustls::ClientConnection::new(config.clone(), name).expect("client");
    let mut hello = Vec::new();
    conn.write_tls(&mut hello).expect("ClientHello");
    hello
}

/// The latency of a steady client beside thousands of idle connections: the real `drgitops webhook` (as in the
/// default run, over the in-memory API server), a client sending 500 reviews/s (the open loop of the default run,
/// over 8 keep-alive connections), and N idle connections held by the bench (`DRGITOPS_BENCH_IDLE=N`): a tenth
/// stalled in the middle of a TLS handshake, four tenths idle after a whole handshake, half TCP connections that
/// never send a byte. The server cuts each off after 10 s, so the bench opens them again at once, N/10 a second.
/// Each round measures the client without the idle connections (the floor) and with them, in alternating order,
/// `DRGITOPS_BENCH_SECONDS` (default 20) each.
fn idle_connections() {
    let env_number = |name: &str, default: u64| {
        std::env::var(name)
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(default)
    };
    let idle = env_number(IDLE_ENV, 5_000) as usize;
    let seconds = env_number("DRGITOPS_BENCH_SECONDS", 20);
    let rounds = env_number("DRGITOPS_BENCH_ROUNDS", 3);
    let limit = open_files_limit().unwrap_or(0);
    assert!(
        limit >= idle as u64 + 1_000,
        "the limit on open files ({limit}) is too low for {idle} idle connections: raise it (`ulimit -n`)"
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let ca = write_tls(dir.path());
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let (mut child, addr, _admin, _api) = start_binary(&runtime, dir.path(), Stdio::null());
    let pid = child.id();
    let bodies = mix();
    println!(
        "drgitops webhook beside {idle} idle connections (a tenth mid-handshake, four tenths after the handshake,          half silent TCP; each re-opened when the server cuts it off): a client at {IDLE_RATE} reviews/s over          {IDLE_CLIENT_CONNS} keep-alive connections, {seconds} s per run, {rounds} rounds; open files limit {limit}"
    );
    println!(
        "| round | idle connections | open during the run (min–max) | re-opened/s | reviews/s | p50 ms | p99 ms | \
         late sends | webhook FDs | webhook threads | webhook RSS MiB |"
    );
    println!("|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|");
    runtime.block_on(async {
        use std::sync::atomic::Ordering::Relaxed;
        let mut conns = Vec::new();
        for _ in 0..IDLE_CLIENT_CONNS {
            conns.push(connect(&addr, &ca).await);
        }
        let tls = Arc::new(client_config(&ca));
        let hello = Arc::new(client_hello(&tls));
        let (on_tx, on_rx) = tokio::sync::watch::channel(false);
        let counters = Arc::new(IdleCounters::default());
        for i in 0..idle {
            let stagger = Duration::from_secs(10) * i as u32 / idle as u32;
            tokio::spawn(hold_idle(
                i,
                addr.clone(),
                tls.clone(),
                hello.clone(),
                on_rx.clone(),
                counters.clone(),
                stagger,
            ));
        }
        open_loop(&mut conns, IDLE_RATE, Duration::from_secs(2), &bodies).await;
        let (mut floor_all, mut idle_all) = (Vec::new(), Vec::new());
        for round in 1..=rounds {
            let order = if round % 2 == 1 {
                [false, true]
            } else {
                [true, false]
            };
            for on in order {
                on_tx.send_replace(on);
                // Idle connections: all opened (staggered over 10 s) and the first cut off and re-opened;
                // none: the server has seen every close.
                tokio::time::sleep(Duration::from_secs(if on { 15 } else { 3 })).await;
                let opened = counters.opened.load(Relaxed);
                let watching = Arc::new(std::sync::atomic::AtomicBool::new(true));
                let watch = {
                    let (counters, watching) = (counters.clone(), watching.clone());
                    tokio::spawn(async move {
                        let (mut min, mut max) = (usize::MAX, 0);
                        while watching.load(Relaxed) {
                            let open = counters.open.load(Relaxed);
                            (min, max) = (min.min(open), max.max(open));
                            tokio::time::sleep(Duration::from_millis(250)).await;
                        }
                        (min, max)
                    })
                };
                let run = open_loop(&mut conns, IDLE_RATE, Duration::from_secs(seconds), &bodies).await;
                watching.store(false, Relaxed);
                let (min, max) = watch.await.expect("watch");
                let reopened = (counters.opened.load(Relaxed) - opened) as f64 / seconds as f64;
                let stats = webhook_load::ProcStats::read(pid).expect("webhook running");
                println!(
                    "| {round} | {} | {min}–{max} | {reopened:.0} | {:.0} | {:.3} | {:.3} | {} | {} | {} | {:.1} |",
                    if on { idle } else { 0 },
                    run.rate(),
                    run.pct(0.5),
                    run.pct(0.99),
                    run.late,
                    stats.fds,
                    stats.threads,
                    stats.rss_kib as f64 / 1024.0
                );
                if on { &mut idle_all } else { &mut floor_all }.push(run);
            }
        }
        on_tx.send_replace(false);
        let (floor, with) = (Run::merge(floor_all), Run::merge(idle_all));
        for (name, run) in [("0 (floor)", &floor), (&idle.to_string()[..], &with)] {
            println!(
                "| all | {name} | | | {:.0} | {:.3} | {:.3} | {} | | | |",
                run.rate(),
                run.pct(0.5),
                run.pct(0.99),
                run.late
            );
        }
        println!(
            "| all | with / without, p50 and p99 | | | | {:.2}x | {:.2}x | | | | |",
            with.pct(0.5) / floor.pct(0.5).max(0.001),
            with.pct(0.99) / floor.pct(0.99).max(0.001)
        );
        println!(
            "idle connections that could not be opened (connect or handshake failed): {}",
            counters.failed.load(Relaxed)
        );
    });
    let _ = child.kill();
    let _ = child.wait();
}
