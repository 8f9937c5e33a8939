//! The webhook's load, shared by the benches that drive the real `drgitops webhook` binary (`benches/webhook.rs`,
//! `benches/soak.rs`): the 30,000 objects of its view served by an in-memory API server, the review mix, the
//! HTTPS keep-alive client, and what `/proc` says about a process. Each bench uses part of it.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};

pub const OBJECTS: usize = 10_000;

/// One keep-alive connection of a load generator.
pub type Conn = SendRequest<Full<Bytes>>;

/// The 30,000 objects of the view: StorageClasses (one default), DRPlans making each `app-<i>` namespace standby
/// on this cluster (`us-east-1b`), and a ClusterPair with storage options in each.
pub fn objects_for_view() -> Vec<Value> {
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

// One positional argument per AdmissionRequest field keeps the mix below readable as a table.
#[allow(clippy::too_many_arguments)]
pub fn review(
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
pub fn mix() -> Vec<Bytes> {
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

/// A TLS client trusting `ca_pem`.
pub fn client_config(ca_pem: &str) -> rustls::ClientConfig {
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls_pemfile::certs(&mut ca_pem.as_bytes()) {
        roots.add(cert.expect("pem")).expect("root");
    }
    rustls::ClientConfig::builder()
        .with_root_certificates(roots)
        .with_no_client_auth()
}

/// An HTTPS keep-alive connection to `addr`, trusting `ca_pem`.
pub async fn connect(addr: &str, ca_pem: &str) -> Conn {
    let config = client_config(ca_pem);
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

/// POSTs a review to `/validate`; panics unless the answer is a 200 carrying a review.
pub async fn send(sender: &mut Conn, body: Bytes) -> Bytes {
    let (status, bytes) = try_send(sender, body).await.expect("response");
    assert_eq!(status, 200);
    assert!(
        bytes.starts_with(br#"{"apiVersion":"admission.k8s.io/v1""#),
        "not a review: {bytes:?}"
    );
    bytes
}

/// POSTs a review to `/validate`: the status and the body, or what went wrong on the connection.
pub async fn try_send(sender: &mut Conn, body: Bytes) -> Result<(u16, Bytes), String> {
    sender
        .ready()
        .await
        .map_err(|e| format!("connection: {e}"))?;
    let req = http::Request::post("/validate")
        .header(http::header::HOST, "localhost")
        .header(http::header::CONTENT_TYPE, "application/json")
        .body(Full::new(body))
        .expect("request");
    let resp = sender
        .send_request(req)
        .await
        .map_err(|e| format!("request: {e}"))?;
    let status = resp.status().as_u16();
    let bytes = resp
        .into_body()
        .collect()
        .await
        .map_err(|e| format!("body: {e}"))?
        .to_bytes();
    Ok((status, bytes))
}

/// Whether an answer allows the review.
pub fn allowed(answer: &[u8]) -> bool {
    String::from_utf8_lossy(answer).contains(r#""allowed":true"#)
}

/// A self-signed certificate for `localhost` in `dir` (`tls.crt`, `tls.key`); returns its PEM, the client's CA.
pub fn write_tls(dir: &Path) -> String {
    let key = rcgen::KeyPair::generate().expect("key");
    let cert = rcgen::CertificateParams::new(vec!["localhost".to_string()])
        .expect("params")
        .self_signed(&key)
        .expect("cert");
    std::fs::write(dir.join("tls.crt"), cert.pem()).expect("write");
    std::fs::write(dir.join("tls.key"), key.serialize_pem()).expect("write");
    cert.pem()
}

/// Applies every document of a YAML stream (CRDs) through `client`.
pub async fn apply_yaml(client: &kube::Client, path: &Path) {
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

pub async fn create(client: &kube::Client, obj: kube::api::DynamicObject) {
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
/// the 30,000 objects, its stderr (the JSON log) to `stderr`. Returns the process, its HTTPS and admin addresses, and the API server (keep it alive).
pub fn start_binary(
    runtime: &tokio::runtime::Runtime,
    dir: &Path,
    stderr: Stdio,
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
        .stderr(stderr)
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

pub fn free_addr() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.local_addr().expect("addr").to_string()
}

/// `GET /readyz` answers 200.
pub fn ready(admin: &str) -> bool {
    use std::io::{Read, Write};
    let Ok(mut tcp) = std::net::TcpStream::connect(admin) else {
        return false;
    };
    let _ = tcp.write_all(b"GET /readyz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
    let mut out = String::new();
    let _ = tcp.read_to_string(&mut out);
    out.starts_with("HTTP/1.1 200")
}

pub fn rss_kib(pid: u32) -> u64 {
    ProcStats::read(pid).map_or(0, |s| s.rss_kib)
}

/// What `/proc` says about a process: resident memory, open file descriptors, threads.
#[derive(Clone, Copy, Debug)]
pub struct ProcStats {
    /// `VmRSS` of `/proc/PID/status`, KiB.
    pub rss_kib: u64,
    /// Entries of `/proc/PID/fd`.
    pub fds: u64,
    /// `Threads` of `/proc/PID/status`.
    pub threads: u64,
}

impl ProcStats {
    /// `None` once the process is gone.
    pub fn read(pid: u32) -> Option<ProcStats> {
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
        let field = |name: &str| -> Option<u64> {
            status
                .lines()
                .find(|l| l.starts_with(name))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        };
        let fds = std::fs::read_dir(format!("/proc/{pid}/fd")).ok()?.count() as u64;
        Some(ProcStats {
            rss_kib: field("VmRSS:")?,
            fds,
            threads: field("Threads:")?,
        })
    }
}

/// The soft limit on open files of this process (`/proc/self/limits`).
pub fn open_files_limit() -> Option<u64> {
    let limits = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    line.split_whitespace().nth(3)?.parse().ok()
}
