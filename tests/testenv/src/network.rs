//! The cluster network, as far as kube-apiserver needs one: kube-apiserver reaches a Service-referenced
//! webhook at the address of the Service's endpoint, which a real cluster routes to a pod. Here there are no
//! pods and nothing may leave loopback, and kube-apiserver refuses an endpoint in the loopback range. So
//! kube-apiserver is given an egress selector for its `cluster` network (the mechanism Konnectivity uses in
//! production): every connection it makes into the cluster goes through an HTTP CONNECT proxy on a Unix
//! socket, and the proxy maps each endpoint address (from a documentation-only range, never routed) to a
//! port on 127.0.0.1. TLS still runs end to end between kube-apiserver and the webhook, with the Service's
//! DNS name as the server name, as in production.

use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use anyhow::{Context, Result};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpStream, UnixListener, UnixStream};

/// The endpoint addresses handed out to Services routed to loopback: TEST-NET-2 (RFC 5737), which no
/// network routes, so a mistake can never reach a real host.
const ENDPOINT_NET: [u8; 3] = [198, 51, 100];

/// The egress proxy of one control plane.
#[derive(Debug)]
pub struct ClusterNetwork {
    socket: PathBuf,
    routes: Arc<Mutex<HashMap<String, SocketAddr>>>,
    next_host: Mutex<u8>,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl ClusterNetwork {
    /// Starts the proxy on a Unix socket at `socket`.
    pub fn start(socket: &Path) -> Result<Self> {
        let routes: Arc<Mutex<HashMap<String, SocketAddr>>> = Arc::default();
        let std_listener = std::os::unix::net::UnixListener::bind(socket)
            .with_context(|| format!("binding the egress proxy socket {}", socket.display()))?;
        std_listener.set_nonblocking(true)?;
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let served = routes.clone();
        let thread = std::thread::Builder::new()
            .name("testenv-egress".into())
            .spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("egress proxy runtime");
                rt.block_on(async move {
                    let listener = UnixListener::from_std(std_listener).expect("egress listener");
                    tokio::select! {
                        _ = rx => {}
                        _ = accept_loop(listener, served) => {}
                    }
                });
            })?;
        Ok(ClusterNetwork {
            socket: socket.to_path_buf(),
            routes,
            next_host: Mutex::new(10),
            shutdown: Some(tx),
            thread: Some(thread),
        })
    }

    /// The Unix socket kube-apiserver's egress selector dials.
    pub fn socket(&self) -> &Path {
        &self.socket
    }

    /// Reserves a new endpoint address whose connections reach `target` (a port on 127.0.0.1).
    /// Returns the endpoint IP to put in an EndpointSlice; the port stays `target`'s.
    pub fn route_to(&self, target: SocketAddr) -> Ipv4Addr {
        let mut next = self.next_host.lock().expect("route counter");
        let ip = Ipv4Addr::new(ENDPOINT_NET[0], ENDPOINT_NET[1], ENDPOINT_NET[2], *next);
        *next = next.wrapping_add(1).max(10);
        self.routes
            .lock()
            .expect("routes")
            .insert(format!("{ip}:{}", target.port()), target);
        ip
    }
}

impl Drop for ClusterNetwork {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
        let _ = std::fs::remove_file(&self.socket);
    }
}

async fn accept_loop(listener: UnixListener, routes: Arc<Mutex<HashMap<String, SocketAddr>>>) {
    loop {
        let Ok((conn, _)) = listener.accept().await else {
            continue;
        };
        let routes = routes.clone();
        tokio::spawn(async move {
            let _ = tunnel(conn, routes).await;
        });
    }
}

/// Answers one `CONNECT host:port` and splices the connection to the route's target.
async fn tunnel(conn: UnixStream, routes: Arc<Mutex<HashMap<String, SocketAddr>>>) -> Result<()> {
    let mut reader = BufReader::new(conn);
    let mut request_line = String::new();
    reader.read_line(&mut request_line).await?;
    loop {
        let mut header = String::new();
        if reader.read_line(&mut header).await? == 0 || header == "\r\n" || header == "\n" {
            break;
        }
    }
    let mut parts = request_line.split_whitespace();
    let (method, authority) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    let target = routes.lock().expect("routes").get(authority).copied();
    let mut conn = reader.into_inner();
    let (Some(target), "CONNECT") = (target, method) else {
        conn.write_all(b"HTTP/1.1 502 Bad Gateway\r\n\r\n").await?;
        return Ok(());
    };
    let Ok(mut upstream) = TcpStream::connect(target).await else {
        conn.write_all(b"HTTP/1.1 503 Service Unavailable\r\n\r\n")
            .await?;
        return Ok(());
    };
    // No Nagle: an answer split over two segments would wait here for a delayed ACK (40 ms), which no pod
    // network adds.
    upstream.set_nodelay(true)?;
    conn.write_all(b"HTTP/1.1 200 Connection established\r\n\r\n")
        .await?;
    tokio::io::copy_bidirectional(&mut conn, &mut upstream).await?;
    Ok(())
}

/// kube-apiserver's egress selector configuration: the `cluster` network through the proxy at `socket`.
pub fn egress_selector_config(socket: &Path) -> String {
    format!(
        "apiVersion: apiserver.k8s.io/v1beta1\nkind: EgressSelectorConfiguration\negressSelections:\n- name: cluster\n  connection:\n    proxyProtocol: HTTPConnect\n    transport:\n      uds:\n        udsName: {}\n",
        socket.display()
    )
}
