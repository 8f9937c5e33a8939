//! Soak of the webhook and the reconciler (`cargo bench --bench soak`): not a test, never run by `cargo test`.
//!
//! `DRGITOPS_SOAK=webhook|reconciler|all` (default `all`) picks the part, `DRGITOPS_SOAK_MINUTES` (default 30) how
//! long each part runs. Every 10 s the bench samples, for each `drgitops` process, its resident memory (`VmRSS`),
//! its open file descriptors (entries of `/proc/PID/fd`) and its threads (`Threads`), and prints first, last,
//! largest and mean of each with the least-squares slope per hour, over the whole run and after the warm-up (the
//! first 5 minutes, or the first quarter of a shorter run). There is no floor: a slope is read against the mean
//! and the noise of the samples.
//!
//! - **webhook**: the real `drgitops webhook` binary over the in-memory API server of `benches/webhook.rs` (the
//!   same 30,000 objects and review mix), its JSON log to a file, loaded by an open loop at 2,000 reviews/s over
//!   16 HTTPS keep-alive connections; p50/p99 and late sends per 5-minute window, errors (a failed exchange, a
//!   status other than 200, or an answer whose decision differs from the same review's first answer), and the
//!   log's `WARN` and `ERROR` lines.
//! - **reconciler**: two real control planes (`tests/testenv`) with the shipped manifests, the Stork stand-in
//!   and `drgitops reconcile` on each as its ServiceAccount, following a local repository every second
//!   (`testkit::reconcile::Pair`, as the failover tests run it). A commit every 5 s changes an annotation of the
//!   plan; every minute `drgitops failover --plan mysql --to D --no-live` commits a failover, alternately to each
//!   cluster. Each cluster's DRPlan status is read every second: every transition it shows is recorded, and each
//!   failover must be finished exactly once on each cluster (none lost, none started twice); the Events
//!   `TransitionStarted`/`TransitionFinished` are counted too, and the reconcilers' logs scanned.

#[path = "substrate/webhook_load.rs"]
mod webhook_load;

use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::Path;
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use drgitops::plan::Role;
use kube::Api;

use webhook_load::{Conn, ProcStats, allowed, connect, mix, start_binary, try_send, write_tls};

const PART_ENV: &str = "DRGITOPS_SOAK";
const MINUTES_ENV: &str = "DRGITOPS_SOAK_MINUTES";
const SAMPLE_EVERY: Duration = Duration::from_secs(10);
const WINDOW: Duration = Duration::from_secs(300);
const RATE: u64 = 2_000;
const CONNS: usize = 16;
const COMMIT_EVERY: Duration = Duration::from_secs(5);
const FAILOVER_EVERY: Duration = Duration::from_secs(60);
const NS: &str = "mysql";
const TICK_ANNOTATION: &str = "soak.drgitops.dev/tick";

fn main() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let minutes: f64 = std::env::var(MINUTES_ENV)
        .ok()
        .map(|s| {
            s.parse()
                .unwrap_or_else(|_| panic!("{MINUTES_ENV}={s}: not a number"))
        })
        .unwrap_or(30.0);
    let duration = Duration::from_secs_f64(minutes * 60.0);
    match std::env::var(PART_ENV).as_deref() {
        Ok("webhook") => webhook(duration),
        Ok("reconciler") => reconciler(duration),
        Ok("all") | Err(_) => {
            webhook(duration);
            reconciler(duration);
        }
        Ok(other) => panic!("{PART_ENV}={other}: expected webhook, reconciler or all"),
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime")
}

// ---------------------------------------------------------------------------------------------------------------
// Sampling

/// A sampler thread: `/proc` of each process every 10 s until stopped.
struct Sampler {
    stop: Arc<AtomicBool>,
    thread: std::thread::JoinHandle<Vec<Series>>,
}

/// One process's samples: seconds since the start, and what `/proc` said.
struct Series {
    name: String,
    samples: Vec<(f64, ProcStats)>,
}

impl Sampler {
    fn start(processes: Vec<(String, u32)>) -> Sampler {
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = stop.clone();
        let thread = std::thread::spawn(move || {
            let start = Instant::now();
            let mut series: Vec<Series> = processes
                .iter()
                .map(|(name, _)| Series {
                    name: name.clone(),
                    samples: Vec::new(),
                })
                .collect();
            let mut next = start;
            loop {
                for ((_, pid), s) in processes.iter().zip(&mut series) {
                    if let Some(stats) = ProcStats::read(*pid) {
                        s.samples.push((start.elapsed().as_secs_f64(), stats));
                    }
                }
                next += SAMPLE_EVERY;
                // Wakes every 100 ms to notice the stop.
                while Instant::now() < next {
                    if stopped.load(Ordering::Relaxed) {
                        return series;
                    }
                    std::thread::sleep(Duration::from_millis(100));
                }
            }
        });
        Sampler { stop, thread }
    }

    fn finish(self) -> Vec<Series> {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.join().expect("sampler")
    }
}

/// Least-squares slope of `y` over `x` (per unit of `x`); 0 with fewer than two points.
fn slope(points: &[(f64, f64)]) -> f64 {
    let n = points.len() as f64;
    if points.len() < 2 {
        return 0.0;
    }
    let mx = points.iter().map(|p| p.0).sum::<f64>() / n;
    let my = points.iter().map(|p| p.1).sum::<f64>() / n;
    let sxy: f64 = points.iter().map(|p| (p.0 - mx) * (p.1 - my)).sum();
    let sxx: f64 = points.iter().map(|p| (p.0 - mx) * (p.0 - mx)).sum();
    if sxx == 0.0 { 0.0 } else { sxy / sxx }
}

/// The sampling table: one row per process and measure.
fn print_samples(series: &[Series], duration: Duration) {
    let warm_up = (duration.as_secs_f64() / 4.0).min(300.0);
    println!(
        "sampled every {} s; slopes by least squares, per hour; \"after warm-up\" leaves out the first {:.0} s",
        SAMPLE_EVERY.as_secs(),
        warm_up
    );
    println!(
        "| process | measure | samples | first | last | min | max | mean | slope per hour | slope / mean per hour \
         | slope per hour after warm-up |"
    );
    println!("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    type Measure = (&'static str, fn(&ProcStats) -> f64);
    let measures: [Measure; 3] = [
        ("RSS MiB", |s| s.rss_kib as f64 / 1024.0),
        ("open FDs", |s| s.fds as f64),
        ("threads", |s| s.threads as f64),
    ];
    for s in series {
        for (measure, value) in measures {
            let points: Vec<(f64, f64)> = s
                .samples
                .iter()
                .map(|(t, st)| (t / 3600.0, value(st)))
                .collect();
            if points.is_empty() {
                println!("| {} | {measure} | 0 | | | | | | | | |", s.name);
                continue;
            }
            let late: Vec<(f64, f64)> = points
                .iter()
                .copied()
                .filter(|p| p.0 * 3600.0 >= warm_up)
                .collect();
            let ys = points.iter().map(|p| p.1);
            let (min, max) = ys
                .clone()
                .fold((f64::MAX, f64::MIN), |(a, b), y| (a.min(y), b.max(y)));
            let mean = ys.sum::<f64>() / points.len() as f64;
            let whole = slope(&points);
            let digits = usize::from(measure == "RSS MiB");
            println!(
                "| {} | {measure} | {} | {:.d$} | {:.d$} | {:.d$} | {:.d$} | {:.1} | {:+.2} | {:+.2}% | {:+.2} |",
                s.name,
                points.len(),
                points[0].1,
                points[points.len() - 1].1,
                min,
                max,
                mean,
                whole,
                100.0 * whole / mean.max(f64::MIN_POSITIVE),
                slope(&late),
                d = digits,
            );
        }
    }
}

/// The log's `WARN` and `ERROR` lines (JSON or text format): how many, and the first few.
fn scan_log(name: &str, path: &Path) {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines = text.lines().count();
    let bad: Vec<&str> = text
        .lines()
        .filter(|l| {
            l.contains(r#""level":"WARN""#)
                || l.contains(r#""level":"ERROR""#)
                || l.contains(" WARN ")
                || l.contains(" ERROR ")
        })
        .collect();
    let errors = bad.iter().filter(|l| l.contains("ERROR")).count();
    println!(
        "{name} log: {lines} lines, {} WARN or ERROR ({errors} ERROR)",
        bad.len()
    );
    for line in bad.iter().take(5) {
        let line: String = line.chars().take(400).collect();
        println!("    {line}");
    }
}

// ---------------------------------------------------------------------------------------------------------------
// Webhook

/// One connection's record: latencies in µs per 5-minute window, late sends per window, and errors.
#[derive(Default)]
struct Record {
    windows: BTreeMap<usize, (Vec<u32>, usize)>,
    errors: Vec<String>,
    error_count: usize,
    /// The connection, kept open until the last sample is taken.
    conn: Option<Conn>,
}

fn webhook(duration: Duration) {
    let dir = tempfile::tempdir().expect("tempdir");
    let ca = write_tls(dir.path());
    let log = dir.path().join("webhook.log");
    let runtime = runtime();
    let setup = Instant::now();
    let (mut child, addr, _admin, _api) = start_binary(
        &runtime,
        dir.path(),
        Stdio::from(std::fs::File::create(&log).expect("log file")),
    );
    println!(
        "## Soak: drgitops webhook at {RATE} reviews/s for {:.0} s ({CONNS} HTTPS keep-alive connections, open loop); \
         view of {} objects ready in {:.1} s",
        duration.as_secs_f64(),
        3 * webhook_load::OBJECTS,
        setup.elapsed().as_secs_f64()
    );
    let bodies = mix();
    let records = runtime.block_on(async {
        // Each review's first answer is what every later answer to it must say.
        let mut first = connect(&addr, &ca).await;
        let mut expected = Vec::new();
        for body in &bodies {
            let (status, answer) = try_send(&mut first, body.clone()).await.expect("answer");
            assert_eq!(status, 200);
            expected.push(allowed(&answer));
        }
        let denied = expected.iter().filter(|a| !**a).count();
        assert_eq!(denied, 2, "2 of the mix's 10 reviews are denied");
        drop(first);
        let mut conns = Vec::new();
        for _ in 0..CONNS {
            conns.push(connect(&addr, &ca).await);
        }
        let sampler = Sampler::start(vec![("drgitops webhook".into(), child.id())]);
        let records = open_loop(conns, &addr, &ca, duration, &bodies, &expected).await;
        // Sampled with the connections still open.
        let series = sampler.finish();
        (records, series)
    });
    let (records, series) = records;
    let _ = child.kill();
    let _ = child.wait();

    println!("| window | reviews | p50 ms | p99 ms | max ms | late sends |");
    println!("|---|---:|---:|---:|---:|---:|");
    let mut windows: BTreeMap<usize, (Vec<u32>, usize)> = BTreeMap::new();
    let mut errors = Vec::new();
    let mut error_count = 0;
    for r in records {
        for (w, (lat, late)) in r.windows {
            let entry = windows.entry(w).or_default();
            entry.0.extend(lat);
            entry.1 += late;
        }
        error_count += r.error_count;
        errors.extend(r.errors);
    }
    let mut all = Vec::new();
    let mut all_late = 0;
    for (w, (mut lat, late)) in windows {
        lat.sort_unstable();
        let start = w as u64 * WINDOW.as_secs();
        let end = (start + WINDOW.as_secs()).min(duration.as_secs());
        print_latencies(&format!("{}–{} min", start / 60, end / 60), &lat, late);
        all.extend(lat);
        all_late += late;
    }
    all.sort_unstable();
    print_latencies("all", &all, all_late);
    println!(
        "errors: {error_count} (a failed exchange, a status other than 200, or a decision unlike the review's first)"
    );
    for e in errors.iter().take(5) {
        println!("    {e}");
    }
    print_samples(&series, duration);
    scan_log("drgitops webhook", &log);
}

fn pct(sorted: &[u32], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize] as f64 / 1000.0
}

fn print_latencies(name: &str, sorted: &[u32], late: usize) {
    println!(
        "| {name} | {} | {:.3} | {:.3} | {:.3} | {late} |",
        sorted.len(),
        pct(sorted, 0.5),
        pct(sorted, 0.99),
        sorted.last().map_or(0.0, |m| *m as f64 / 1000.0)
    );
}

/// The open loop of `benches/webhook.rs` for `duration`: a pacing thread releases one review every 0.5 ms,
/// round-robin over the connections; each sample is timed from the actual send, and a slot that finds its
/// connection still waiting counts as late. A connection that fails is counted and opened again.
async fn open_loop(
    conns: Vec<Conn>,
    addr: &str,
    ca: &str,
    duration: Duration,
    bodies: &[Bytes],
    expected: &[bool],
) -> Vec<Record> {
    let n = conns.len();
    let gap = Duration::from_nanos(1_000_000_000 / RATE);
    let slots = (duration.as_nanos() / gap.as_nanos()) as u64;
    let per_window = WINDOW.as_secs() * RATE;
    let mut tasks = Vec::new();
    let mut releases = Vec::new();
    for mut sender in conns {
        let bodies = bodies.to_vec();
        let expected = expected.to_vec();
        let (addr, ca) = (addr.to_string(), ca.to_string());
        let (release, mut released) = tokio::sync::mpsc::unbounded_channel::<u64>();
        releases.push(release);
        tasks.push(tokio::spawn(async move {
            let mut record = Record::default();
            while let Some(slot) = released.recv().await {
                let i = slot as usize % bodies.len();
                let sent = Instant::now();
                let outcome = try_send(&mut sender, bodies[i].clone()).await;
                let took = sent.elapsed().as_micros() as u32;
                let window = record
                    .windows
                    .entry((slot / per_window) as usize)
                    .or_default();
                window.0.push(took);
                window.1 += usize::from(!released.is_empty());
                let error = match outcome {
                    Ok((200, answer)) if allowed(&answer) == expected[i] => None,
                    Ok((200, answer)) => Some(format!(
                        "review {i}: decision changed: {}",
                        String::from_utf8_lossy(&answer)
                    )),
                    Ok((status, answer)) => Some(format!(
                        "review {i}: status {status}: {}",
                        String::from_utf8_lossy(&answer)
                    )),
                    Err(e) => {
                        sender = connect(&addr, &ca).await;
                        Some(format!("review {i}: {e}"))
                    }
                };
                if let Some(e) = error {
                    record.error_count += 1;
                    if record.errors.len() < 5 {
                        record.errors.push(e);
                    }
                }
            }
            record.conn = Some(sender);
            record
        }));
    }
    let start = Instant::now() + Duration::from_millis(10);
    let pacer = std::thread::spawn(move || {
        for slot in 0..slots {
            let at = start + gap * slot as u32;
            if let Some(wait) = at.checked_duration_since(Instant::now()) {
                std::thread::sleep(wait);
            }
            let _ = releases[slot as usize % n].send(slot);
        }
    });
    let mut records = Vec::new();
    for t in tasks {
        records.push(t.await.expect("connection task"));
    }
    pacer.join().expect("pacer");
    records
}

// ---------------------------------------------------------------------------------------------------------------
// Reconciler

/// What a cluster's DRPlan status said about one transition, keyed by when it started.
#[derive(Clone, Debug, PartialEq)]
struct Seen {
    to: String,
    revision: String,
    finished: bool,
}

fn reconciler(duration: Duration) {
    let runtime = runtime();
    runtime.block_on(async {
        let setup = Instant::now();
        let testkit::reconcile::Pair {
            east,
            west,
            repo,
            stork,
        } = testkit::reconcile::Pair::start(3).await;
        let plan_path = repo.path().join("plans/mysql.yaml");
        let plan = std::fs::read_to_string(&plan_path).expect("plan");
        let plan = plan.replacen(
            "  namespace: mysql\n",
            &format!("  namespace: mysql\n  annotations:\n    {TICK_ANNOTATION}: \"0\"\n"),
            1,
        );
        std::fs::write(&plan_path, plan).expect("plan");
        testkit::reconcile::commit(repo.path(), &[], "soak: tick 0");
        let mut reconcilers = Vec::new();
        for cluster in [&east, &west] {
            let kubeconfig = cluster
                .service_account_kubeconfig("drgitops-reconciler")
                .await;
            let cache = cluster.dir.path().join("cache");
            reconcilers.push(testkit::Drgitops::spawn(
                env!("CARGO_BIN_EXE_drgitops"),
                &kubeconfig,
                &[
                    "reconcile",
                    "--cluster-domain",
                    &cluster.domain,
                    "--git-url",
                    &repo.path().display().to_string(),
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
            ));
        }
        let clients = [east.client().await, west.client().await];
        let settled = testkit::eventually(Duration::from_secs(180), || async {
            let a = role_phase(&clients[0]).await?;
            let b = role_phase(&clients[1]).await?;
            (a == (Role::Primary, "Protected".into()) && b.0 == Role::Standby).then_some(())
        })
        .await;
        assert!(settled.is_some(), "east never became the protected primary");
        println!(
            "## Soak: drgitops reconcile on two real control planes for {:.0} s: a commit every {} s, a failover \
             every {} s; set up in {:.0} s",
            duration.as_secs_f64(),
            COMMIT_EVERY.as_secs(),
            FAILOVER_EVERY.as_secs(),
            setup.elapsed().as_secs_f64()
        );

        let sampler = Sampler::start(vec![
            (format!("reconcile {}", east.domain), reconcilers[0].pid()),
            (format!("reconcile {}", west.domain), reconcilers[1].pid()),
        ]);
        // Every transition each cluster's status shows, by its start time.
        let seen: Arc<std::sync::Mutex<[BTreeMap<String, Seen>; 2]>> = Arc::default();
        let stop = Arc::new(AtomicBool::new(false));
        let watcher = {
            let (seen, stop, clients) = (seen.clone(), stop.clone(), clients.clone());
            tokio::spawn(async move {
                while !stop.load(Ordering::Relaxed) {
                    for (i, client) in clients.iter().enumerate() {
                        if let Some((started, s)) = transition(client).await {
                            seen.lock().expect("seen")[i].insert(started, s);
                        }
                    }
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            })
        };

        let start = Instant::now();
        let mut tick = 0u64;
        let mut failovers: Vec<(String, String)> = Vec::new();
        let mut waited = Vec::new();
        let mut primary = testkit::EAST;
        let mut next_failover = start + FAILOVER_EVERY;
        while start.elapsed() < duration {
            tokio::time::sleep(COMMIT_EVERY).await;
            if Instant::now() >= next_failover {
                // The next failover waits until the last one finished on both clusters.
                let wait = Instant::now();
                if let Some((revision, _)) = failovers.last() {
                    let done = testkit::eventually(Duration::from_secs(300), || async {
                        let s = seen.lock().expect("seen");
                        s.iter()
                            .all(|c| c.values().any(|t| &t.revision == revision && t.finished))
                            .then_some(())
                    })
                    .await;
                    assert!(
                        done.is_some(),
                        "the failover at {revision} did not finish on both clusters in 5 minutes"
                    );
                }
                waited.push(wait.elapsed().as_secs_f64());
                let to = if primary == testkit::EAST {
                    testkit::WEST
                } else {
                    testkit::EAST
                };
                let revision = failover(repo.path(), to);
                eprintln!(
                    "{:.0} s: failover {} to {to} at {}",
                    start.elapsed().as_secs_f64(),
                    failovers.len() + 1,
                    &revision[..12.min(revision.len())]
                );
                failovers.push((revision, to.to_string()));
                primary = to;
                next_failover = Instant::now() + FAILOVER_EVERY;
            } else {
                tick += 1;
                let plan = std::fs::read_to_string(&plan_path).expect("plan");
                let plan = plan.replacen(
                    &format!("{TICK_ANNOTATION}: \"{}\"", tick - 1),
                    &format!("{TICK_ANNOTATION}: \"{tick}\""),
                    1,
                );
                std::fs::write(&plan_path, plan).expect("plan");
                testkit::reconcile::commit(repo.path(), &[], &format!("soak: tick {tick}"));
            }
        }
        let elapsed = start.elapsed().as_secs_f64();
        // The last failover finishes, and the last tick reaches both clusters.
        let last = failovers.last().map(|f| f.0.clone()).unwrap_or_default();
        let finished = testkit::eventually(Duration::from_secs(300), || async {
            let s = seen.lock().expect("seen");
            (last.is_empty()
                || s.iter()
                    .all(|c| c.values().any(|t| t.revision == last && t.finished)))
            .then_some(())
        })
        .await;
        let mut ticks_applied = Vec::new();
        for client in &clients {
            let applied = testkit::eventually(Duration::from_secs(60), || async {
                let plan = Api::<drgitops::plan::DRPlan>::namespaced(client.clone(), NS)
                    .get("mysql")
                    .await
                    .ok()?;
                let value = plan.metadata.annotations?.get(TICK_ANNOTATION)?.clone();
                (value == tick.to_string()).then_some(value)
            })
            .await;
            ticks_applied.push(applied.is_some());
        }
        stop.store(true, Ordering::Relaxed);
        watcher.await.expect("watcher");
        let series = sampler.finish();

        println!(
            "{} commits changing the plan's annotation and {} failovers in {elapsed:.0} s; the last tick on both \
             clusters' DRPlan: {:?}; the last failover finished on both: {}",
            tick,
            failovers.len(),
            ticks_applied,
            finished.is_some()
        );
        println!(
            "wait for the previous failover to finish before the next: max {:.1} s",
            waited.iter().copied().fold(0.0, f64::max)
        );
        let seen = seen.lock().expect("seen").clone();
        println!(
            "| cluster | failovers committed | transitions seen | finished | for a failover commit | failovers \
             finished exactly once | lost | repeated | TransitionStarted events | TransitionFinished events |"
        );
        println!("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
        for (i, cluster) in [&east, &west].iter().enumerate() {
            let transitions = &seen[i];
            let per_revision = |rev: &str| transitions.values().filter(|t| t.revision == rev).count();
            let once = failovers
                .iter()
                .filter(|(rev, _)| {
                    per_revision(rev) == 1
                        && transitions.values().any(|t| &t.revision == rev && t.finished)
                })
                .count();
            let lost = failovers
                .iter()
                .filter(|(rev, _)| {
                    !transitions.values().any(|t| &t.revision == rev && t.finished)
                })
                .count();
            let repeated = failovers
                .iter()
                .filter(|(rev, _)| per_revision(rev) > 1)
                .count();
            let for_failover = transitions
                .values()
                .filter(|t| failovers.iter().any(|(rev, to)| &t.revision == rev && &t.to == to))
                .count();
            let (started, done) = transition_events(cluster);
            println!(
                "| {} | {} | {} | {} | {for_failover} | {once} | {lost} | {repeated} | {started} | {done} |",
                cluster.domain,
                failovers.len(),
                transitions.len(),
                transitions.values().filter(|t| t.finished).count(),
            );
        }
        print_samples(&series, duration);
        for (cluster, process) in [&east, &west].iter().zip(&reconcilers) {
            // Through the process's own stderr, which is its log file (still readable if the file was removed).
            let log = Path::new("/proc").join(process.pid().to_string()).join("fd/2");
            scan_log(&format!("drgitops reconcile {}", cluster.domain), &log);
        }
        let _ = std::io::stdout().flush();
        drop(reconcilers);
        drop(stork);
    });
}

async fn role_phase(client: &kube::Client) -> Option<(Role, String)> {
    let plan = Api::<drgitops::plan::DRPlan>::namespaced(client.clone(), NS)
        .get_opt("mysql")
        .await
        .ok()??;
    let status = plan.status?;
    Some((status.role?, status.phase.unwrap_or_default()))
}

/// The transition a cluster's DRPlan status shows, keyed by when it started.
async fn transition(client: &kube::Client) -> Option<(String, Seen)> {
    let plan = Api::<drgitops::plan::DRPlan>::namespaced(client.clone(), NS)
        .get_opt("mysql")
        .await
        .ok()??;
    let t = plan.status?.transition?;
    Some((
        t.started_at.clone().unwrap_or_default(),
        Seen {
            to: t.to.unwrap_or_default(),
            revision: t.revision.unwrap_or_default(),
            finished: t.finished_at.is_some(),
        },
    ))
}

/// `drgitops failover --plan mysql --to DOMAIN --no-live`, as the on-call engineer runs it; returns the commit.
fn failover(repo: &Path, to: &str) -> String {
    testkit::gitops::commit_failover(env!("CARGO_BIN_EXE_drgitops"), repo, to, &[]);
    testkit::git(repo, &["rev-parse", "HEAD"])
}

/// How many `TransitionStarted` and `TransitionFinished` Events the cluster holds in the plan's namespace,
/// counting a series (an Event repeated) by its count.
fn transition_events(cluster: &testkit::Cluster) -> (u64, u64) {
    let json = cluster.kubectl(&["-n", NS, "get", "events.events.k8s.io", "-o", "json"]);
    let events: serde_json::Value = serde_json::from_str(&json).expect("events");
    let mut counts = (0, 0);
    for e in events["items"].as_array().into_iter().flatten() {
        let n = e["series"]["count"]
            .as_u64()
            .or(e["deprecatedCount"].as_u64())
            .unwrap_or(1)
            .max(1);
        match e["reason"].as_str() {
            Some("TransitionStarted") => counts.0 += n,
            Some("TransitionFinished") => counts.1 += n,
            _ => {}
        }
    }
    counts
}
