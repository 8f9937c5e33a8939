//! An in-memory Kubernetes API server that kube-rs and kubectl cannot tell from the real one.
//!
//! It holds state and speaks the Kubernetes REST protocol: discovery (legacy and aggregated), OpenAPI v3, CRUD
//! with the four patch types and server-side apply, watches with bookmarks and 410s, `/status` and `/scale`,
//! CustomResourceDefinitions, finalizers and garbage collection, and admission webhooks registered in it.
//!
//! ```no_run
//! # async fn demo() -> Result<(), fake_apiserver::StartError> {
//! let srv = fake_apiserver::FakeApiServer::start().await?;
//! let client = srv.client();
//! # let _ = client; Ok(()) }
//! ```
//! Several servers are several clusters. Each binds its own loopback port.

pub mod admission;
pub mod admit;
pub mod api;
pub mod convert;
pub mod defaults;
pub mod discovery;
pub mod faults;
pub mod fields;
pub mod http;
pub mod openapi;
pub mod patch;
pub mod protobuf;
pub mod query;
pub mod resources;
pub mod selectors;
pub mod ssa;
pub mod status;
pub mod store;
pub mod table;
pub mod tls;
pub mod watch;

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;

pub use api::Server;
pub use tls::TlsMaterial;

/// Why a fake server could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("binding the fake API server to {addr}: {source}")]
    Bind {
        addr: String,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Tls(#[from] tls::TlsError),
}

/// How to start a server.
#[derive(Debug, Clone)]
pub struct Options {
    /// Address to listen on; port 0 picks a free one.
    pub listen: SocketAddr,
    /// Serve HTTPS with a generated CA (the kubeconfig carries it).
    pub https: bool,
    /// Watch events kept before the oldest expire (410 for watches from before them).
    pub max_history: usize,
    /// Report Deployments, StatefulSets and ReplicaSets as fully ready, as if their controllers and pods ran.
    pub simulate_workloads: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            https: false,
            max_history: 10_000,
            simulate_workloads: false,
        }
    }
}

/// A running fake API server. Dropping it stops serving.
pub struct FakeApiServer {
    server: api::Shared,
    addr: SocketAddr,
    tls: Option<TlsMaterial>,
    accept_task: tokio::task::JoinHandle<()>,
}

impl std::fmt::Debug for FakeApiServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FakeApiServer")
            .field("url", &self.url())
            .finish_non_exhaustive()
    }
}

impl Drop for FakeApiServer {
    fn drop(&mut self) {
        self.accept_task.abort();
    }
}

impl FakeApiServer {
    /// Starts a plain-HTTP server on `127.0.0.1:0`.
    pub async fn start() -> Result<Self, StartError> {
        Self::start_with(Options::default()).await
    }

    /// Starts an HTTPS server on `127.0.0.1:0` with a fresh CA.
    pub async fn start_https() -> Result<Self, StartError> {
        Self::start_with(Options {
            https: true,
            ..Options::default()
        })
        .await
    }

    /// Starts a server with explicit options.
    pub async fn start_with(opts: Options) -> Result<Self, StartError> {
        tls::install_crypto_provider();
        let listener = TcpListener::bind(opts.listen)
            .await
            .map_err(|source| StartError::Bind {
                addr: opts.listen.to_string(),
                source,
            })?;
        let addr = listener.local_addr().map_err(|source| StartError::Bind {
            addr: opts.listen.to_string(),
            source,
        })?;
        let tls = if opts.https {
            Some(tls::generate()?)
        } else {
            None
        };
        let server: api::Shared = Arc::new(api::Server::new(opts.max_history));
        server.store.lock().simulate_workloads = opts.simulate_workloads;
        let router = http::router(server.clone());
        let acceptor = tls
            .as_ref()
            .map(|t| tokio_rustls::TlsAcceptor::from(t.server_config.clone()));
        let accept_task = tokio::spawn(accept_loop(
            listener,
            router,
            acceptor,
            server.faults.clone(),
        ));
        Ok(FakeApiServer {
            server,
            addr,
            tls,
            accept_task,
        })
    }

    /// `http://127.0.0.1:PORT` or `https://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        let scheme = if self.tls.is_some() { "https" } else { "http" };
        format!("{scheme}://{}", self.addr)
    }

    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The CA certificate (PEM) of an HTTPS server.
    pub fn ca_pem(&self) -> Option<&str> {
        self.tls.as_ref().map(|t| t.ca_pem.as_str())
    }

    /// A kube config pointing at this server (default namespace `default`).
    pub fn config(&self) -> kube::Config {
        // The URL is built from a SocketAddr and a fixed scheme, so it always parses.
        let uri: ::http::Uri = match self.url().parse() {
            Ok(u) => u,
            Err(_) => unreachable!("scheme://ip:port always parses as a URI"),
        };
        let mut config = kube::Config::new(uri);
        config.default_namespace = "default".into();
        // Trust exactly this server's CA. For plain HTTP an empty root store also spares every client the
        // platform verifier's loading of the system roots (tens of milliseconds per client).
        config.root_cert = Some(self.tls.iter().map(|t| t.ca_der.clone()).collect());
        config
    }

    /// A kube-rs client for this server.
    pub fn client(&self) -> kube::Client {
        match kube::Client::try_from(self.config()) {
            Ok(c) => c,
            // Client construction fails only on TLS setup of a bad CA; ours is generated and valid.
            Err(e) => unreachable!("a client for a generated config always builds: {e}"),
        }
    }

    /// The in-process router (a tower service), for handler tests that need no socket.
    pub fn router(&self) -> axum::Router {
        http::router(self.server.clone())
    }

    /// The shared server state, for tests that inspect or seed it directly.
    pub fn server(&self) -> &api::Shared {
        &self.server
    }

    /// A kubeconfig (YAML) whose cluster, user and context are all named `context`.
    pub fn kubeconfig_named(&self, context: &str) -> String {
        let ca = self
            .tls
            .as_ref()
            .map(|t| {
                format!(
                    "\n    certificate-authority-data: {}",
                    base64::engine::general_purpose::STANDARD.encode(&t.ca_pem)
                )
            })
            .unwrap_or_default();
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: {context}\n  cluster:\n    server: {url}{ca}\nusers:\n- name: {context}\n  user: {user}\ncontexts:\n- name: {context}\n  context:\n    cluster: {context}\n    user: {context}\n    namespace: default\ncurrent-context: {context}\n",
            url = self.url(),
            // kubectl prompts for a password on HTTPS without credentials; the fake ignores the token.
            user = if self.tls.is_some() {
                "{token: fake-apiserver}"
            } else {
                "{}"
            },
        )
    }

    /// A kubeconfig (YAML) with context `fake`.
    pub fn kubeconfig(&self) -> String {
        self.kubeconfig_named("fake")
    }

    /// Writes [`FakeApiServer::kubeconfig`] to a file.
    pub fn write_kubeconfig(&self, path: impl AsRef<Path>) -> std::io::Result<()> {
        std::fs::write(path, self.kubeconfig())
    }

    /// Drops all watch history and continue tokens: open watches end with a 410 ERROR event and clients relist.
    pub fn compact(&self) {
        self.server.store.lock().compact();
        self.server.store.notify();
    }

    /// The fault-injection switchboard of this server.
    pub fn faults(&self) -> faults::Faults {
        self.server.faults.clone()
    }

    /// How many watches are streaming right now (any resource, any client).
    pub fn open_watches(&self) -> usize {
        self.server
            .store
            .open_watches
            .load(std::sync::atomic::Ordering::SeqCst)
    }

    /// The current global resourceVersion.
    pub fn resource_version(&self) -> u64 {
        self.server.store.lock().rv
    }
}

async fn accept_loop(
    listener: TcpListener,
    router: axum::Router,
    acceptor: Option<tokio_rustls::TlsAcceptor>,
    faults: faults::Faults,
) {
    loop {
        let Ok((stream, _peer)) = listener.accept().await else {
            // Accept errors (e.g. too many open files) are transient; back off briefly and keep serving.
            tokio::time::sleep(Duration::from_millis(5)).await;
            continue;
        };
        if faults.is_unreachable() {
            // An unreachable server: the connection is closed before a byte is read.
            drop(stream);
            continue;
        }
        let router = router.clone();
        let acceptor = acceptor.clone();
        let faults = faults.clone();
        tokio::spawn(async move {
            let _ = stream.set_nodelay(true);
            match acceptor {
                Some(acceptor) => {
                    if let Ok(tls) = acceptor.accept(stream).await {
                        serve_until_unreachable(tls, router, faults).await;
                    }
                }
                None => serve_until_unreachable(stream, router, faults).await,
            }
        });
    }
}

/// How often open connections (watches, keep-alive) check whether the server was made unreachable.
const UNREACHABLE_POLL: Duration = Duration::from_millis(20);

/// Serves a connection until the client closes it, a fault drops it, or the server becomes unreachable (which
/// cuts open watches too, as a dead apiserver would).
async fn serve_until_unreachable<I>(io: I, router: axum::Router, faults: faults::Faults)
where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let conn = faults::serve_connection(io, router);
    let cut = async {
        while !faults.is_unreachable() {
            tokio::time::sleep(UNREACHABLE_POLL).await;
        }
    };
    tokio::select! {
        _ = conn => {}
        _ = cut => {}
    }
}
