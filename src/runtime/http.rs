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
//! (body included, answer written) each have a deadline. Each connection is its own task, so a slow one never
//! delays another.

use std::time::Duration;

use axum::Router;
use axum::response::IntoResponse as _;
use http::StatusCode;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch};
use tokio_rustls::TlsAcceptor;
use tower::ServiceExt as _;

/// How long a client may take at each stage.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// A TLS handshake (a client that connects and sends nothing, or plaintext, is dropped after this).
    pub handshake: Duration,
    /// A request's headers, from the first byte (slowloris guard); an idle keep-alive connection is closed after
    /// this too.
    pub header_read: Duration,
    /// A whole request once its headers arrived: reading the body and answering. Past it the client gets
    /// `408 Request Timeout` and the connection is closed.
    pub request: Duration,
}

impl Default for Limits {
    /// 10 s for a handshake and for headers; 30 s for a request, kube-apiserver's longest webhook timeout.
    fn default() -> Self {
        Limits {
            handshake: Duration::from_secs(10),
            header_read: Duration::from_secs(10),
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
    let service = hyper::service::service_fn(move |req: http::Request<Incoming>| {
        let router = router.clone();
        async move {
            match tokio::time::timeout(limits.request, router.oneshot(req)).await {
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
    let conn = hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read)
        .serve_connection(TokioIo::new(stream), service);
    tokio::pin!(conn);
    let result = tokio::select! {
        result = conn.as_mut() => result,
        _ = async { let _ = stop.wait_for(|stop| *stop).await; } => {
            conn.as_mut().graceful_shutdown();
            conn.await
        }
    };
    if let Err(err) = result {
        tracing::debug!(%peer, error = %err, "connection ended with an error");
    }
}
