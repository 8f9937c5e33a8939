//! The HTTPS accept loop: TLS handshakes, HTTP/1.1 keep-alive connections, and a drain on shutdown.
//!
//! In: a bound listener, the rustls config, the admission router and a shutdown signal. Out: a future that ends
//! once shutdown was signalled and every open connection has finished its in-flight request (or the drain
//! timeout passed). New connections are refused from the moment shutdown begins; open ones are told to close
//! after their current request, so a review that was already received is always answered.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use rustls::ServerConfig;
use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch};
use tokio_rustls::TlsAcceptor;
use tower::ServiceExt as _;

/// A client that opens a connection but never finishes the handshake is dropped after this long.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Request headers must arrive within this long (slowloris guard).
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);

/// Serves `router` over TLS on `listener` until `shutdown` turns true, then drains for at most `drain_timeout`.
pub async fn serve_tls(
    listener: TcpListener,
    tls: Arc<ServerConfig>,
    router: Router,
    mut shutdown: watch::Receiver<bool>,
    drain_timeout: Duration,
) {
    let acceptor = TlsAcceptor::from(tls);
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
        let acceptor = acceptor.clone();
        let router = router.clone();
        let mut stop = shutdown.clone();
        let guard = conn_tx.clone();
        tokio::spawn(async move {
            let _guard = guard;
            let tls_stream =
                match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
                    Ok(Ok(stream)) => stream,
                    Ok(Err(err)) => {
                        tracing::debug!(%peer, error = %err, "TLS handshake failed");
                        return;
                    }
                    Err(_) => {
                        tracing::debug!(%peer, "TLS handshake timed out");
                        return;
                    }
                };
            let service = hyper::service::service_fn(move |req: http::Request<Incoming>| {
                router.clone().oneshot(req)
            });
            let conn = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(HEADER_READ_TIMEOUT)
                .serve_connection(TokioIo::new(tls_stream), service);
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
