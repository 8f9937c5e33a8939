//! The accept loop both servers share (the webhook's HTTPS port, the admin port with the push receiver): TLS
//! handshakes when given an acceptor, HTTP/1.1 keep-alive connections, bounded lifetimes for every client, and a
//! drain on shutdown.
//!
//! In: a bound listener, an optional TLS acceptor, a router, a shutdown signal and [`Limits`]. Out: a future that
//! ends once shutdown was signalled and every open connection has finished its in-flight request (or the drain
//! timeout passed). New connections are refused from the moment shutdown begins; open ones are told to close
//! after their current request, so a request that was already received is always answered.
//!
//! A client cannot hold a connection open for free: a TLS handshake, a request's headers, and a whole request
//! (body included, answer written) each have a deadline, and so has a keep-alive connection waiting for its next
//! request. Each connection is its own task, so a slow one never delays another.
//!
//! The header deadline runs from the first byte of a request, not from the end of the previous one: hyper's own
//! header timeout covers both, and a keep-alive connection closed after a few idle seconds races the client's
//! next request (kube-apiserver would see `EOF` on a webhook call). Idle connections get [`Limits::idle`],
//! longer than the 90 s a Go client keeps one, so the client is the one to close it.

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::Router;
use axum::response::IntoResponse as _;
use http::StatusCode;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpListener;
use tokio::sync::{Notify, mpsc, watch};
use tokio_rustls::TlsAcceptor;
use tower::ServiceExt as _;

/// How long a client may take at each stage.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// A TLS handshake (a client that connects and sends nothing, or plaintext, is dropped after this).
    pub handshake: Duration,
    /// A request's headers, from their first byte (slowloris guard); the first request's, from the connection's
    /// start.
    pub header_read: Duration,
    /// A keep-alive connection waiting for its next request.
    pub idle: Duration,
    /// A whole request once its headers arrived: reading the body and answering. Past it the client gets
    /// `408 Request Timeout` and the connection is closed.
    pub request: Duration,
}

impl Default for Limits {
    /// 10 s for a handshake and for headers; 30 s for a request, kube-apiserver's longest webhook timeout; 120 s
    /// idle, past the 90 s Go's HTTP clients keep an idle connection.
    fn default() -> Self {
        Limits {
            handshake: Duration::from_secs(10),
            header_read: Duration::from_secs(10),
            idle: Duration::from_secs(120),
            request: Duration::from_secs(30),
        }
    }
}

/// Serves `router` on `listener` (over TLS when `tls` is given) until `shutdown` turns true, then drains for at
/// most `drain_timeout`.
pub async fn serve(
    listener: TcpListener,
    tls: Option<TlsAcceptor>,
    router: Router,
    mut shutdown: watch::Receiver<bool>,
    drain_timeout: Duration,
    limits: Limits,
) {
    // Every connection task holds a sender; when all are dropped, `recv` returns `None`: the drain is complete.
    let (conn_tx, mut conn_rx) = mpsc::channel::<()>(1);
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            _ = async { let _ = shutdown.wait_for(|stop| *stop).await; } => break,
        };
        let (tcp, peer) = match accepted {
            Ok(conn) => conn,
            Err(err) => {
                // Usually EMFILE or a reset before accept; back off briefly instead of spinning.
                tracing::warn!(error = %err, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let _ = tcp.set_nodelay(true);
        let tls = tls.clone();
        let router = router.clone();
        let stop = shutdown.clone();
        let guard = conn_tx.clone();
        tokio::spawn(async move {
            let _guard = guard;
            let Some(tls) = tls else {
                serve_connection(tcp, router, stop, limits, peer).await;
                return;
            };
            match tokio::time::timeout(limits.handshake, tls.accept(tcp)).await {
                Ok(Ok(stream)) => serve_connection(stream, router, stop, limits, peer).await,
                Ok(Err(err)) => tracing::debug!(%peer, error = %err, "TLS handshake failed"),
                Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
            }
        });
    }
    drop(listener);
    drop(conn_tx);
    if tokio::time::timeout(drain_timeout, conn_rx.recv())
        .await
        .is_err()
    {
        tracing::warn!(
            ?drain_timeout,
            "connections still open after the drain timeout; closing them"
        );
    }
}

async fn serve_connection<S>(
    stream: S,
    router: Router,
    mut stop: watch::Receiver<bool>,
    limits: Limits,
    peer: std::net::SocketAddr,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let clock = Arc::new(HeaderClock::new());
    let in_service = clock.clone();
    let service = hyper::service::service_fn(move |req: http::Request<Incoming>| {
        let router = router.clone();
        let clock = in_service.clone();
        async move {
            clock.request_started();
            let answered = tokio::time::timeout(limits.request, router.oneshot(req)).await;
            clock.request_answered();
            match answered {
                Ok(answered) => answered,
                Err(_) => {
                    tracing::debug!(%peer, "request not completed in time");
                    let mut response = (
                        StatusCode::REQUEST_TIMEOUT,
                        format!("request not completed within {:?}\n", limits.request),
                    )
                        .into_response();
                    response.headers_mut().insert(
                        http::header::CONNECTION,
                        http::HeaderValue::from_static("close"),
                    );
                    Ok(response)
                }
            }
        }
    });
    // hyper's header timeout, which also runs while a keep-alive connection waits, bounds the idle time; the
    // clock bounds the headers themselves.
    let stream = Clocked {
        inner: stream,
        clock: clock.clone(),
    };
    let conn = hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.idle.max(limits.header_read))
        .serve_connection(TokioIo::new(stream), service);
    tokio::pin!(conn);
    let result = tokio::select! {
        result = conn.as_mut() => result,
        () = clock.expired(limits.header_read) => {
            tracing::debug!(%peer, "request headers not received in time");
            return;
        }
        _ = async { let _ = stop.wait_for(|stop| *stop).await; } => {
            conn.as_mut().graceful_shutdown();
            conn.await
        }
    };
    if let Err(err) = result {
        tracing::debug!(%peer, error = %err, "connection ended with an error");
    }
}

/// When the request being received started to arrive: the header deadline of [`serve_connection`].
struct HeaderClock {
    epoch: Instant,
    /// [`WAITING`] between requests, [`IN_REQUEST`] while one is served, else 1 + the milliseconds from `epoch`
    /// to the first byte of the request being received.
    started: AtomicU64,
    /// Told when a request starts to arrive.
    arrived: Notify,
}

const WAITING: u64 = 0;
const IN_REQUEST: u64 = u64::MAX;

impl HeaderClock {
    /// A clock already running: a new connection's first request is due from the connection's start.
    fn new() -> Self {
        HeaderClock {
            epoch: Instant::now(),
            started: AtomicU64::new(1),
            arrived: Notify::new(),
        }
    }

    /// Bytes arrived: the first of a request starts its clock; bytes of a request being served do not.
    fn bytes_arrived(&self) {
        let now = 1 + self.epoch.elapsed().as_millis() as u64;
        if self
            .started
            .compare_exchange(WAITING, now, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
        {
            self.arrived.notify_one();
        }
    }

    fn request_started(&self) {
        self.started.store(IN_REQUEST, Ordering::Release);
    }

    fn request_answered(&self) {
        self.started.store(WAITING, Ordering::Release);
    }

    /// Ends once a request's headers have taken longer than `limit` from their first byte.
    async fn expired(&self, limit: Duration) {
        loop {
            let arrived = self.arrived.notified();
            tokio::pin!(arrived);
            arrived.as_mut().enable();
            let started = self.started.load(Ordering::Acquire);
            if started == WAITING || started == IN_REQUEST {
                arrived.await;
                continue;
            }
            let deadline = self.epoch + Duration::from_millis(started - 1) + limit;
            tokio::time::sleep_until(deadline.into()).await;
            if self.started.load(Ordering::Acquire) == started {
                return;
            }
        }
    }
}

/// A connection's stream, telling its [`HeaderClock`] when bytes arrive.
struct Clocked<S> {
    inner: S,
    clock: Arc<HeaderClock>,
}

impl<S: AsyncRead + Unpin> AsyncRead for Clocked<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        if buf.filled().len() > before {
            self.clock.bytes_arrived();
        }
        polled
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Clocked<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}
