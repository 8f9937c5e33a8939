//! Connection-level faults between a client and kube-apiserver: a TCP proxy on loopback that can add latency
//! to every chunk in both directions, reset every open connection (RST, as a dropped NAT entry or a
//! restarted load balancer does), and refuse new ones. TLS passes through untouched, so the client still
//! verifies kube-apiserver's certificate (which names 127.0.0.1).

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Result;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

#[derive(Clone, Copy, Debug, Default)]
struct Settings {
    latency: Duration,
    refuse: bool,
    /// Bumped by [`FaultProxy::reset_all`]: every connection opened before the bump is reset.
    resets: u64,
}

/// A fault-injecting TCP proxy to one target, served from its own thread.
#[derive(Debug)]
pub struct FaultProxy {
    addr: SocketAddr,
    settings: watch::Sender<Settings>,
    connections: Arc<Mutex<u64>>,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl FaultProxy {
    /// Starts a proxy on a free port of 127.0.0.1 that forwards to `target`.
    pub fn start(target: SocketAddr) -> Result<FaultProxy> {
        let listener = std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?;
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        let (settings, watcher) = watch::channel(Settings::default());
        let connections = Arc::new(Mutex::new(0));
        let counted = connections.clone();
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("testenv-fault-proxy".into())
            .spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("fault proxy runtime");
                rt.block_on(async move {
                    let listener = TcpListener::from_std(listener).expect("fault proxy listener");
                    tokio::select! {
                        _ = rx => {}
                        _ = serve(listener, target, watcher, counted) => {}
                    }
                });
            })?;
        Ok(FaultProxy {
            addr,
            settings,
            connections,
            shutdown: Some(tx),
            thread: Some(thread),
        })
    }

    /// The proxy's address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Delays every chunk forwarded, in both directions, by `latency` (zero turns it off).
    pub fn set_latency(&self, latency: Duration) {
        self.settings.send_modify(|s| s.latency = latency);
    }

    /// Resets every open connection (the client sees `connection reset by peer`).
    pub fn reset_all(&self) {
        self.settings.send_modify(|s| s.resets += 1);
    }

    /// Resets new connections as soon as they are accepted, while `refuse` holds.
    pub fn set_refuse(&self, refuse: bool) {
        self.settings.send_modify(|s| s.refuse = refuse);
    }

    /// How many connections the proxy has accepted.
    pub fn connections(&self) -> u64 {
        *self.connections.lock().expect("connection count")
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

async fn serve(
    listener: TcpListener,
    target: SocketAddr,
    settings: watch::Receiver<Settings>,
    connections: Arc<Mutex<u64>>,
) {
    loop {
        let Ok((client, _)) = listener.accept().await else {
            continue;
        };
        *connections.lock().expect("connection count") += 1;
        let settings = settings.clone();
        tokio::spawn(async move {
            let now = *settings.borrow();
            if now.refuse {
                reset(client);
                return;
            }
            let Ok(upstream) = TcpStream::connect(target).await else {
                reset(client);
                return;
            };
            // No Nagle on either side: the latency is what `set_latency` adds, not delayed ACKs.
            let _ = client.set_nodelay(true);
            let _ = upstream.set_nodelay(true);
            splice(client, upstream, settings, now.resets).await;
        });
    }
}

/// Forwards both ways until either side closes or a reset is asked for.
async fn splice(
    client: TcpStream,
    upstream: TcpStream,
    mut settings: watch::Receiver<Settings>,
    resets: u64,
) {
    let (mut client_read, mut client_write) = client.into_split();
    let (mut upstream_read, mut upstream_write) = upstream.into_split();
    let (up_settings, down_settings) = (settings.clone(), settings.clone());
    let reset_asked = async {
        loop {
            if settings.borrow().resets != resets {
                return;
            }
            if settings.changed().await.is_err() {
                std::future::pending::<()>().await;
            }
        }
    };
    let reset_now = tokio::select! {
        _ = async {
            tokio::join!(
                pump(&mut client_read, &mut upstream_write, up_settings),
                pump(&mut upstream_read, &mut client_write, down_settings),
            )
        } => false,
        _ = reset_asked => true,
    };
    // Dropping a write half would send FIN first: reunite the halves, then close with RST.
    if reset_now
        && let (Ok(client), Ok(upstream)) = (
            client_read.reunite(client_write),
            upstream_read.reunite(upstream_write),
        )
    {
        reset(client);
        reset(upstream);
    }
}

async fn pump(
    from: &mut tokio::net::tcp::OwnedReadHalf,
    to: &mut tokio::net::tcp::OwnedWriteHalf,
    settings: watch::Receiver<Settings>,
) {
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = match from.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        let latency = settings.borrow().latency;
        if !latency.is_zero() {
            tokio::time::sleep(latency).await;
        }
        if to.write_all(&buf[..n]).await.is_err() {
            break;
        }
    }
    let _ = to.shutdown().await;
}

/// Closes a connection with RST instead of FIN: linger zero, then close. (Through std, whose close does not
/// block with linger zero; tokio deprecates its own setter for the blocking case.)
fn reset(stream: TcpStream) {
    if let Ok(std) = stream.into_std() {
        let _ = socket2::SockRef::from(&std).set_linger(Some(Duration::ZERO));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An echo server on loopback, served until the runtime ends.
    async fn echo() -> SocketAddr {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        tokio::spawn(async move {
            while let Ok((mut conn, _)) = listener.accept().await {
                tokio::spawn(async move {
                    let (mut r, mut w) = conn.split();
                    let _ = tokio::io::copy(&mut r, &mut w).await;
                });
            }
        });
        addr
    }

    async fn round_trip(conn: &mut TcpStream) -> std::io::Result<()> {
        conn.write_all(b"ping").await?;
        let mut buf = [0u8; 4];
        conn.read_exact(&mut buf).await?;
        assert_eq!(&buf, b"ping");
        Ok(())
    }

    #[tokio::test]
    async fn forwards_delays_and_resets() {
        let proxy = FaultProxy::start(echo().await).expect("proxy");
        let mut conn = TcpStream::connect(proxy.addr()).await.expect("connect");
        round_trip(&mut conn).await.expect("forwarded");
        assert_eq!(proxy.connections(), 1);

        proxy.set_latency(Duration::from_millis(50));
        let started = std::time::Instant::now();
        round_trip(&mut conn).await.expect("forwarded with latency");
        assert!(
            started.elapsed() >= Duration::from_millis(100),
            "both directions delayed"
        );

        proxy.reset_all();
        let mut buf = [0u8; 1];
        let read = tokio::time::timeout(Duration::from_secs(5), conn.read(&mut buf))
            .await
            .expect("the reset arrives");
        assert!(
            matches!(&read, Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset),
            "{read:?}"
        );

        proxy.set_latency(Duration::ZERO);
        let mut again = TcpStream::connect(proxy.addr()).await.expect("connect");
        round_trip(&mut again).await.expect("new connections pass");
        proxy.set_refuse(true);
        // The reset may arrive before connect() returns or on the first read: refused either way.
        let refused = match TcpStream::connect(proxy.addr()).await {
            Ok(mut conn) => round_trip(&mut conn).await.is_err(),
            Err(e) => e.kind() == std::io::ErrorKind::ConnectionReset,
        };
        assert!(refused, "a connection while refusing is reset");
    }
}
