//! A real single-node Kubernetes control plane on loopback, for drgitops' tests and for trying drgitops by
//! hand: etcd on tmpfs, kube-apiserver with RBAC, ServiceAccount token signing and the default admission
//! plugins, kube-controller-manager, kube-scheduler, and kwok, which makes Nodes and Pods behave as if
//! kubelets ran them (a Deployment's pods are created, scheduled, turn Ready, and go away when scaled down).
//!
//! ```no_run
//! # async fn demo() -> anyhow::Result<()> {
//! let env = testenv::TestEnv::start().await?;          // builds the assets first if they are missing
//! let admin: kube::Client = env.client().await?;
//! let kubeconfig = env.service_account_kubeconfig("drgitops-system", "drgitops-reconciler").await?;
//! env.write_kubeconfig("/tmp/admin.kubeconfig")?;
//! # Ok(()) }
//! ```
//!
//! Several instances are several clusters. Ports are chosen free, data lives in a temporary directory (on
//! tmpfs where there is one), and every process is stopped when the [`TestEnv`] is dropped, or, if the
//! process holding it dies first, by a watchdog shell that notices the closed pipe.

pub mod argocd;
pub mod assets;
pub mod faults;
pub mod flux;
pub mod network;
pub mod pki;
pub mod process;

use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use base64::Engine;
use k8s_openapi::api::authentication::v1::TokenRequest;
use k8s_openapi::api::core::v1::{Node, Pod, ServiceAccount};
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use serde_json::json;

use crate::network::ClusterNetwork;
use crate::pki::{CertPair, Pki};
use crate::process::{Proc, Watchdog};

/// The Service network kube-apiserver allocates ClusterIPs from.
pub const SERVICE_NETWORK: &str = "10.96.0.0/16";
/// The first address of [`SERVICE_NETWORK`]: the `kubernetes` Service.
pub const SERVICE_NETWORK_FIRST_IP: Ipv4Addr = Ipv4Addr::new(10, 96, 0, 1);
/// The annotation that puts a Node under kwok's management.
pub const KWOK_NODE_ANNOTATION: (&str, &str) = ("kwok.x-k8s.io/node", "fake");

/// How long the whole control plane may take to become ready.
const START_TIMEOUT: Duration = Duration::from_secs(120);

/// How a control plane is started.
#[derive(Clone, Debug)]
pub struct Options {
    /// Names the kubeconfig's cluster, user and context.
    pub name: String,
    /// How many kwok Nodes to register.
    pub nodes: usize,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            name: "testenv".into(),
            nodes: 1,
        }
    }
}

/// The component processes, in start order; stopped in the reverse order (kwok first, etcd last), so no
/// component spends its shutdown retrying one already gone.
#[derive(Debug, Default)]
struct Components(Vec<Proc>);

const ETCD: usize = 0;
const APISERVER: usize = 1;

impl Components {
    fn check_running(&mut self) -> Result<()> {
        self.0.iter_mut().try_for_each(Proc::check_running)
    }

    fn stop_all(&mut self) {
        while let Some(mut proc) = self.0.pop() {
            proc.stop();
        }
    }

    fn tails(&self, skip: usize, lines: usize) -> String {
        self.0
            .iter()
            .skip(skip)
            .map(|p| format!("==> {} <==\n{}\n", p.name(), p.log_tail(lines)))
            .collect()
    }
}

impl Drop for Components {
    fn drop(&mut self) {
        self.stop_all();
    }
}

/// One running control plane.
#[derive(Debug)]
pub struct TestEnv {
    name: String,
    url: String,
    ca_pem: String,
    admin: CertPair,
    components: Mutex<Components>,
    network: ClusterNetwork,
    pids: PathBuf,
    watchdog: Option<Watchdog>,
    // Last: removed after every process has stopped.
    dir: tempfile::TempDir,
}

impl TestEnv {
    /// Starts a control plane with one kwok Node and waits until a pod can be scheduled and run.
    pub async fn start() -> Result<TestEnv> {
        Self::start_with(Options::default()).await
    }

    /// Starts a control plane as `options` say.
    pub async fn start_with(options: Options) -> Result<TestEnv> {
        let bin = assets::bin_dir()?;
        let dir = tempfile::Builder::new()
            .prefix(&format!("drgitops-testenv-{}-", std::process::id()))
            .tempdir_in(data_root())
            .context("creating the control plane's data directory")?;
        let d = dir.path().to_path_buf();
        let pids = d.join("pids");
        let watchdog = Watchdog::start(&pids, &d)?;
        let network = ClusterNetwork::start(&d.join("egress.sock"))?;

        let pki = Pki::new(&format!("{} CA", options.name))?;
        let ca_pem = pki.ca_pem();
        let names = pki::apiserver_names();
        let names: Vec<&str> = names.iter().map(String::as_str).collect();
        let serving = pki.serving(&names)?;
        let admin = pki.client("admin", &["system:masters"])?;
        let (sa_key, sa_pub) = pki::service_account_key()?;
        write(&d, "ca.crt", &ca_pem)?;
        write(&d, "apiserver.crt", &serving.cert_pem)?;
        write(&d, "apiserver.key", &serving.key_pem)?;
        let front_proxy = pki.client("front-proxy-client", &[])?;
        write(&d, "front-proxy-client.crt", &front_proxy.cert_pem)?;
        write(&d, "front-proxy-client.key", &front_proxy.key_pem)?;
        write(&d, "sa.key", &sa_key)?;
        write(&d, "sa.pub", &sa_pub)?;
        write(
            &d,
            "egress-selector.yaml",
            &network::egress_selector_config(network.socket()),
        )?;

        let etcd_port = free_port()?;
        let etcd_peer_port = free_port()?;
        let api_port = free_port()?;
        let url = format!("https://127.0.0.1:{api_port}");

        let kubeconfig_for = |user: &str, pair: &CertPair| {
            client_cert_kubeconfig(&options.name, &url, &ca_pem, user, pair)
        };
        write(&d, "admin.kubeconfig", &kubeconfig_for("admin", &admin))?;
        let kcm = pki.client("system:kube-controller-manager", &[])?;
        write(
            &d,
            "controller-manager.kubeconfig",
            &kubeconfig_for("system:kube-controller-manager", &kcm),
        )?;
        let scheduler = pki.client("system:kube-scheduler", &[])?;
        write(
            &d,
            "scheduler.kubeconfig",
            &kubeconfig_for("system:kube-scheduler", &scheduler),
        )?;
        std::fs::copy(bin.join("kwok-stages-fast.yaml"), d.join("kwok.yaml"))?;

        let p = |name: &str| d.join(name).display().to_string();
        let etcd_data = d.join("etcd");
        let etcd = Proc::start(
            "etcd",
            &bin.join("etcd"),
            vec![
                "--name=default".into(),
                format!("--data-dir={}", etcd_data.display()),
                format!("--listen-client-urls=http://127.0.0.1:{etcd_port}"),
                format!("--advertise-client-urls=http://127.0.0.1:{etcd_port}"),
                format!("--listen-peer-urls=http://127.0.0.1:{etcd_peer_port}"),
                format!("--initial-advertise-peer-urls=http://127.0.0.1:{etcd_peer_port}"),
                format!("--initial-cluster=default=http://127.0.0.1:{etcd_peer_port}"),
                // Data on tmpfs and thrown away: durability buys nothing here.
                "--unsafe-no-fsync".into(),
                "--log-level=warn".into(),
            ],
            &d,
            &pids,
        )?;
        let apiserver = Proc::start(
            "kube-apiserver",
            &bin.join("kube-apiserver"),
            vec![
                format!("--etcd-servers=http://127.0.0.1:{etcd_port}"),
                "--bind-address=127.0.0.1".into(),
                format!("--secure-port={api_port}"),
                format!("--cert-dir={}", p("apiserver-certs")),
                format!("--tls-cert-file={}", p("apiserver.crt")),
                format!("--tls-private-key-file={}", p("apiserver.key")),
                format!("--client-ca-file={}", p("ca.crt")),
                "--authorization-mode=RBAC".into(),
                "--service-account-issuer=https://kubernetes.default.svc.cluster.local".into(),
                format!("--service-account-key-file={}", p("sa.pub")),
                format!("--service-account-signing-key-file={}", p("sa.key")),
                format!("--service-cluster-ip-range={SERVICE_NETWORK}"),
                "--allow-privileged=true".into(),
                // Webhooks referenced by Service are called at the Service's endpoints, through the
                // egress proxy (see `network`).
                "--enable-aggregator-routing=true".into(),
                format!(
                    "--egress-selector-config-file={}",
                    p("egress-selector.yaml")
                ),
                // The front-proxy CA that the aggregation layer and delegated authentication read.
                format!("--requestheader-client-ca-file={}", p("ca.crt")),
                "--requestheader-allowed-names=front-proxy-client".into(),
                "--requestheader-username-headers=X-Remote-User".into(),
                "--requestheader-group-headers=X-Remote-Group".into(),
                "--requestheader-extra-headers-prefix=X-Remote-Extra-".into(),
                format!("--proxy-client-cert-file={}", p("front-proxy-client.crt")),
                format!("--proxy-client-key-file={}", p("front-proxy-client.key")),
                // The `kubernetes` Service's endpoint would be 127.0.0.1, which Endpoints refuse.
                "--endpoint-reconciler-type=none".into(),
                "--v=1".into(),
            ],
            &d,
            &pids,
        )?;
        let env = TestEnv {
            name: options.name.clone(),
            url: url.clone(),
            ca_pem: ca_pem.clone(),
            admin,
            components: Mutex::default(),
            network,
            pids: pids.clone(),
            watchdog: Some(watchdog),
            dir,
        };
        let deadline = Instant::now() + START_TIMEOUT;
        let mut starting = Components(vec![etcd, apiserver]);
        env.wait_ready(&mut starting, deadline).await?;

        let kcm_port = free_port()?;
        let controller_manager = Proc::start(
            "kube-controller-manager",
            &bin.join("kube-controller-manager"),
            vec![
                format!("--kubeconfig={}", p("controller-manager.kubeconfig")),
                format!(
                    "--authentication-kubeconfig={}",
                    p("controller-manager.kubeconfig")
                ),
                format!(
                    "--authorization-kubeconfig={}",
                    p("controller-manager.kubeconfig")
                ),
                "--bind-address=127.0.0.1".into(),
                format!("--secure-port={kcm_port}"),
                format!("--cert-dir={}", p("controller-manager-certs")),
                "--leader-elect=false".into(),
                // Each controller acts as its own ServiceAccount (system:controller:*), as in production:
                // the controller-manager's own user may do little more than mint their tokens.
                "--use-service-account-credentials=true".into(),
                format!("--service-account-private-key-file={}", p("sa.key")),
                format!("--root-ca-file={}", p("ca.crt")),
                format!("--service-cluster-ip-range={SERVICE_NETWORK}"),
                "--v=1".into(),
            ],
            &d,
            &pids,
        )?;
        let scheduler_port = free_port()?;
        let scheduler = Proc::start(
            "kube-scheduler",
            &bin.join("kube-scheduler"),
            vec![
                format!("--kubeconfig={}", p("scheduler.kubeconfig")),
                format!("--authentication-kubeconfig={}", p("scheduler.kubeconfig")),
                format!("--authorization-kubeconfig={}", p("scheduler.kubeconfig")),
                "--bind-address=127.0.0.1".into(),
                format!("--secure-port={scheduler_port}"),
                format!("--cert-dir={}", p("scheduler-certs")),
                "--leader-elect=false".into(),
                "--v=1".into(),
            ],
            &d,
            &pids,
        )?;
        let kwok = Proc::start(
            "kwok",
            &bin.join("kwok"),
            vec![
                format!("--kubeconfig={}", p("admin.kubeconfig")),
                format!("--config={}", p("kwok.yaml")),
                "--manage-all-nodes=false".into(),
                format!(
                    "--manage-nodes-with-annotation-selector={}={}",
                    KWOK_NODE_ANNOTATION.0, KWOK_NODE_ANNOTATION.1
                ),
                // Node Leases renewed as a kubelet would (with the heartbeat stage), so the node lifecycle
                // controller never finds a Node Unknown and marks its pods NotReady.
                "--node-lease-duration-seconds=40".into(),
                "--cidr=10.244.0.0/16".into(),
                "--node-ip=10.244.0.1".into(),
            ],
            &d,
            &pids,
        )?;
        starting.0.extend([controller_manager, scheduler, kwok]);
        env.register_nodes(options.nodes).await?;
        env.wait_schedulable(&mut starting, deadline).await?;
        *env.components.lock().expect("components") = starting;
        Ok(env)
    }

    /// The name of the kubeconfig's cluster, user and context.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// kube-apiserver's URL, `https://127.0.0.1:PORT`.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The CA that signed kube-apiserver's serving certificate, PEM-encoded.
    pub fn ca_pem(&self) -> &str {
        &self.ca_pem
    }

    /// The directory holding the control plane's data, certificates and logs.
    pub fn data_dir(&self) -> &Path {
        self.dir.path()
    }

    /// The admin kubeconfig (user `admin` in `system:masters`), context named [`TestEnv::name`].
    pub fn kubeconfig(&self) -> String {
        client_cert_kubeconfig(&self.name, &self.url, &self.ca_pem, "admin", &self.admin)
    }

    /// Writes [`TestEnv::kubeconfig`] to `path`.
    pub fn write_kubeconfig(&self, path: impl AsRef<Path>) -> Result<()> {
        let path = path.as_ref();
        std::fs::write(path, self.kubeconfig())
            .with_context(|| format!("writing {}", path.display()))
    }

    /// A kubeconfig for a bearer token, context named [`TestEnv::name`].
    pub fn token_kubeconfig(&self, user: &str, token: &str) -> String {
        let ca = base64::engine::general_purpose::STANDARD.encode(&self.ca_pem);
        let name = &self.name;
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: {name}\n  cluster:\n    server: {url}\n    certificate-authority-data: {ca}\nusers:\n- name: {user}\n  user:\n    token: {token}\ncontexts:\n- name: {name}\n  context:\n    cluster: {name}\n    user: {user}\ncurrent-context: {name}\n",
            url = self.url,
        )
    }

    /// A kubeconfig that authenticates as ServiceAccount `namespace/name`, with a one-hour token from the
    /// TokenRequest API (the ServiceAccount must exist).
    pub async fn service_account_kubeconfig(&self, namespace: &str, name: &str) -> Result<String> {
        let token = self.service_account_token(namespace, name).await?;
        Ok(self.token_kubeconfig(&format!("system:serviceaccount:{namespace}:{name}"), &token))
    }

    /// A one-hour token for ServiceAccount `namespace/name` from the TokenRequest API.
    pub async fn service_account_token(&self, namespace: &str, name: &str) -> Result<String> {
        let accounts: Api<ServiceAccount> = Api::namespaced(self.client().await?, namespace);
        let request: TokenRequest = serde_json::from_value(json!({
            "apiVersion": "authentication.k8s.io/v1",
            "kind": "TokenRequest",
            "spec": {"expirationSeconds": 3600},
        }))?;
        let answer = accounts
            .create_token_request(name, &PostParams::default(), &request)
            .await
            .with_context(|| format!("requesting a token for ServiceAccount {namespace}/{name}"))?;
        answer.status.map(|s| s.token).ok_or_else(|| {
            anyhow!("the TokenRequest for {namespace}/{name} came back without a token")
        })
    }

    /// A new admin client.
    pub async fn client(&self) -> Result<kube::Client> {
        client_from_kubeconfig(&self.kubeconfig()).await
    }

    /// Makes Service `namespace/name` a selector-less Service whose one endpoint reaches `target` on
    /// loopback, as a pod behind the Service would be reached: kube-apiserver resolves the endpoint from the
    /// EndpointSlice and dials it through the egress proxy. An existing Service is replaced by a selector-less
    /// one with the same ports (foreground deletion, so the EndpointSlices the controller made for its pods
    /// are gone first: removing only the selector races the controller, which may recreate a slice for the
    /// pods from a view that still has the selector). A new Service gets port `port`, named `port_name`.
    pub async fn route_service(
        &self,
        namespace: &str,
        name: &str,
        port_name: &str,
        port: u16,
        target: SocketAddr,
    ) -> Result<()> {
        use k8s_openapi::api::core::v1::Service;
        use k8s_openapi::api::discovery::v1::EndpointSlice;
        let client = self.client().await?;
        let services: Api<Service> = Api::namespaced(client.clone(), namespace);
        let slices: Api<EndpointSlice> = Api::namespaced(client, namespace);
        let default_ports = json!([{"name": port_name, "port": port, "targetPort": target.port()}]);
        let ports = match services.get_opt(name).await? {
            Some(old) => {
                services.delete(name, &DeleteParams::foreground()).await?;
                let deadline = Instant::now() + Duration::from_secs(60);
                while services.get_opt(name).await?.is_some() {
                    if Instant::now() > deadline {
                        bail!("Service {namespace}/{name} was not deleted within 60 s");
                    }
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                serde_json::to_value(old.spec.and_then(|s| s.ports))?
            }
            None => default_ports,
        };
        let service: Service = serde_json::from_value(json!({
            "apiVersion": "v1", "kind": "Service",
            "metadata": {"name": name, "namespace": namespace},
            "spec": {"ports": ports},
        }))?;
        let service = services.create(&PostParams::default(), &service).await?;
        let service_port = service
            .spec
            .as_ref()
            .and_then(|s| s.ports.as_ref())
            .and_then(|ports| ports.iter().find(|p| p.name.as_deref() == Some(port_name)))
            .ok_or_else(|| anyhow!("Service {namespace}/{name} has no port named {port_name}"))?;
        let ip = self.network.route_to(target);
        slices
            .patch(
                &format!("{name}-testenv"),
                &PatchParams::apply("testenv").force(),
                &Patch::Apply(json!({
                    "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
                    "metadata": {
                        "name": format!("{name}-testenv"), "namespace": namespace,
                        "labels": {
                            "kubernetes.io/service-name": name,
                            "endpointslice.kubernetes.io/managed-by": "testenv",
                        },
                    },
                    "addressType": "IPv4",
                    "endpoints": [{"addresses": [ip.to_string()], "conditions": {"ready": true}}],
                    "ports": [{"name": service_port.name, "port": target.port(), "protocol": "TCP"}],
                })),
            )
            .await?;
        let others: Vec<String> = slices
            .list(
                &kube::api::ListParams::default()
                    .labels(&format!("kubernetes.io/service-name={name}")),
            )
            .await?
            .items
            .into_iter()
            .filter_map(|s| s.metadata.name)
            .filter(|n| *n != format!("{name}-testenv"))
            .collect();
        if !others.is_empty() {
            bail!("Service {namespace}/{name} still has the EndpointSlices {others:?}");
        }
        Ok(())
    }

    /// Makes the watchdog stop process `pid` too if the process holding this control plane dies without
    /// dropping it (a test binary's shared control plane in a `static` is never dropped): for a process a
    /// test started next to the control plane, such as the webhook it registers.
    pub fn adopt(&self, pid: u32) -> Result<()> {
        use std::io::Write;
        let mut pids = std::fs::File::options()
            .create(true)
            .append(true)
            .open(&self.pids)?;
        writeln!(pids, "{pid}")?;
        Ok(())
    }

    /// A `kubectl` command (the assets' kubectl) with `--kubeconfig` set to `kubeconfig`.
    pub fn kubectl(kubeconfig: &Path) -> Result<std::process::Command> {
        let mut cmd = std::process::Command::new(assets::binary("kubectl")?);
        cmd.arg("--kubeconfig").arg(kubeconfig);
        Ok(cmd)
    }

    /// Stops kube-apiserver (SIGTERM), as a control-plane outage would. Clients see refused connections.
    pub fn stop_apiserver(&self) {
        self.with_components(|c| c.0[APISERVER].stop());
    }

    /// Starts kube-apiserver again and waits until it is ready.
    pub async fn restart_apiserver(&self) -> Result<()> {
        self.with_components(|c| c.0[APISERVER].restart())?;
        self.wait_apiserver_ready().await
    }

    /// Stops etcd (SIGTERM). kube-apiserver stays up and answers errors.
    pub fn stop_etcd(&self) {
        self.with_components(|c| c.0[ETCD].stop());
    }

    /// Starts etcd again on the same data and waits until kube-apiserver is ready again.
    pub async fn restart_etcd(&self) -> Result<()> {
        self.with_components(|c| c.0[ETCD].restart())?;
        self.wait_apiserver_ready().await
    }

    /// The last lines of every component's log, for a failing test's message.
    pub fn logs_tail(&self, lines: usize) -> String {
        self.with_components(|c| c.tails(0, lines))
    }

    fn with_components<T>(&self, f: impl FnOnce(&mut Components) -> T) -> T {
        let mut guard = self.components.lock().expect("components");
        f(&mut guard)
    }

    async fn wait_apiserver_ready(&self) -> Result<()> {
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if let Ok(client) = self.client().await
                && readyz(&client).await
            {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!(
                    "kube-apiserver did not become ready again within {START_TIMEOUT:?}\n{}",
                    self.logs_tail(30)
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn wait_ready(&self, procs: &mut Components, deadline: Instant) -> Result<()> {
        let client = self.client().await?;
        loop {
            procs.check_running()?;
            if readyz(&client).await {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!(
                    "kube-apiserver did not become ready within {START_TIMEOUT:?}; the last lines of its log:\n{}",
                    procs.0[APISERVER].log_tail(40)
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn register_nodes(&self, count: usize) -> Result<()> {
        let nodes: Api<Node> = Api::all(self.client().await?);
        for i in 0..count {
            let name = format!("kwok-node-{i}");
            let node: Node = serde_json::from_value(json!({
                "apiVersion": "v1", "kind": "Node",
                "metadata": {
                    "name": name,
                    "annotations": {KWOK_NODE_ANNOTATION.0: KWOK_NODE_ANNOTATION.1},
                    "labels": {
                        "kubernetes.io/hostname": name, "kubernetes.io/os": "linux",
                        "kubernetes.io/arch": "amd64", "type": "kwok",
                    },
                },
                "status": {
                    "allocatable": {"cpu": "32", "memory": "256Gi", "pods": "250"},
                    "capacity": {"cpu": "32", "memory": "256Gi", "pods": "250"},
                },
            }))?;
            nodes
                .create(&PostParams::default(), &node)
                .await
                .with_context(|| format!("registering Node {name}"))?;
        }
        Ok(())
    }

    /// Waits until a probe pod is scheduled onto a kwok Node and reported Ready, then deletes it.
    async fn wait_schedulable(&self, procs: &mut Components, deadline: Instant) -> Result<()> {
        let client = self.client().await?;
        let pods: Api<Pod> = Api::namespaced(client, "default");
        let probe: Pod = serde_json::from_value(json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "testenv-probe"},
            "spec": {"containers": [{"name": "probe", "image": "testenv/probe"}]},
        }))?;
        let mut created = false;
        let mut last = String::from("not created yet");
        loop {
            procs.check_running()?;
            if !created {
                // Refused until the controller-manager has created the `default` ServiceAccount.
                match pods.create(&PostParams::default(), &probe).await {
                    Ok(_) => created = true,
                    Err(e) => last = format!("creating the probe pod: {e}"),
                }
            }
            if created && let Some(pod) = pods.get_opt("testenv-probe").await? {
                if pod_ready(&pod) {
                    pods.delete("testenv-probe", &DeleteParams::default().grace_period(0))
                        .await?;
                    return Ok(());
                }
                last = format!(
                    "probe pod on node {:?}, phase {:?}",
                    pod.spec.as_ref().and_then(|s| s.node_name.clone()),
                    pod.status.as_ref().and_then(|s| s.phase.clone())
                );
            }
            if Instant::now() > deadline {
                bail!(
                    "no pod could be scheduled and run within {START_TIMEOUT:?} ({last})\n{}",
                    procs.tails(2, 20)
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

impl Drop for TestEnv {
    fn drop(&mut self) {
        if let Ok(mut components) = self.components.lock() {
            components.stop_all();
        }
        // Everything listed has stopped: the watchdog must not signal those pids again.
        let _ = std::fs::remove_file(&self.pids);
        drop(self.watchdog.take());
    }
}

/// Whether a pod reports the `Ready` condition `True`.
pub fn pod_ready(pod: &Pod) -> bool {
    pod.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

/// A kube client for a kubeconfig (YAML).
pub async fn client_from_kubeconfig(kubeconfig: &str) -> Result<kube::Client> {
    let kubeconfig = kube::config::Kubeconfig::from_yaml(kubeconfig)?;
    let config = kube::Config::from_custom_kubeconfig(
        kubeconfig,
        &kube::config::KubeConfigOptions::default(),
    )
    .await?;
    Ok(kube::Client::try_from(config)?)
}

async fn readyz(client: &kube::Client) -> bool {
    let request = http::Request::get("/readyz").body(Vec::new());
    match request {
        Ok(request) => {
            matches!(client.request_text(request).await, Ok(body) if body.trim() == "ok")
        }
        Err(_) => false,
    }
}

fn client_cert_kubeconfig(
    name: &str,
    url: &str,
    ca_pem: &str,
    user: &str,
    pair: &CertPair,
) -> String {
    let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
    format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: {name}\n  cluster:\n    server: {url}\n    certificate-authority-data: {ca}\nusers:\n- name: {user}\n  user:\n    client-certificate-data: {cert}\n    client-key-data: {key}\ncontexts:\n- name: {name}\n  context:\n    cluster: {name}\n    user: {user}\ncurrent-context: {name}\n",
        ca = b64(ca_pem),
        cert = b64(&pair.cert_pem),
        key = b64(&pair.key_pem),
    )
}

fn write(dir: &Path, name: &str, contents: &str) -> Result<()> {
    let path = dir.join(name);
    std::fs::write(&path, contents).with_context(|| format!("writing {}", path.display()))
}

/// A TCP port free on 127.0.0.1 at the time of asking, for a component to listen on.
///
/// Taken below the kernel's ephemeral range (`ip_local_port_range`, 32768 and up by default): a port from
/// that range, free when asked, can be taken a moment later as the source port of any outgoing connection
/// (the control planes make thousands), and the component then fails with "address already in use". Ports are
/// handed out from a cursor that starts at a random place per process, so two threads (or two test processes)
/// do not pick the same one.
pub fn free_port() -> Result<u16> {
    use std::sync::atomic::{AtomicU32, Ordering};
    const FIRST: u32 = 10_000;
    static CURSOR: AtomicU32 = AtomicU32::new(0);
    let below = ephemeral_start().unwrap_or(32_768).max(FIRST + 1_000);
    let span = below - FIRST;
    if CURSOR.load(Ordering::SeqCst) == 0 {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let seed = (std::process::id().wrapping_mul(7_919) ^ nanos) % span + 1;
        let _ = CURSOR.compare_exchange(0, seed, Ordering::SeqCst, Ordering::SeqCst);
    }
    for _ in 0..span {
        let port = FIRST + CURSOR.fetch_add(1, Ordering::SeqCst) % span;
        let port = u16::try_from(port)?;
        if TcpListener::bind((Ipv4Addr::LOCALHOST, port)).is_ok() {
            return Ok(port);
        }
    }
    // Nothing free below the ephemeral range: let the kernel choose.
    Ok(TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?
        .local_addr()?
        .port())
}

/// The first port of the kernel's ephemeral range, where it has one.
fn ephemeral_start() -> Option<u32> {
    let range = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range").ok()?;
    range.split_whitespace().next()?.parse().ok()
}

/// Where control-plane data lives: tmpfs (`/dev/shm`) when it is there, else the temporary directory.
fn data_root() -> PathBuf {
    let shm = Path::new("/dev/shm");
    if shm.is_dir()
        && tempfile::Builder::new()
            .prefix("drgitops-probe-")
            .tempfile_in(shm)
            .is_ok()
    {
        shm.to_path_buf()
    } else {
        std::env::temp_dir()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn free_ports_are_distinct_listenable_and_below_the_ephemeral_range() {
        let below = ephemeral_start().unwrap_or(32_768);
        let ports: Vec<u16> = (0..50).map(|_| free_port().expect("port")).collect();
        let distinct: std::collections::BTreeSet<_> = ports.iter().collect();
        assert_eq!(distinct.len(), ports.len(), "{ports:?}");
        for port in ports {
            assert!(u32::from(port) < below, "{port} is in the ephemeral range");
            TcpListener::bind((Ipv4Addr::LOCALHOST, port)).expect("still free");
        }
    }
}
