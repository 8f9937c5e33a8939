//! The webhook's HTTPS port: the shared accept loop of [`crate::runtime::http`] over TLS.
//!
//! In: a bound listener, the rustls config, the admission router and a shutdown signal. Out: a future that ends
//! once shutdown was signalled and every open connection has finished its in-flight request (or the drain
//! timeout passed), so a review that was already received is always answered.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use rustls::ServerConfig;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio_rustls::TlsAcceptor;

use crate::runtime::http::{self, Limits};

/// Serves `router` over TLS on `listener` until `shutdown` turns true, then drains for at most `drain_timeout`,
/// with the default [`Limits`] on every client.
pub async fn serve_tls(
    listener: TcpListener,
    tls: Arc<ServerConfig>,
    router: Router,
    shutdown: watch::Receiver<bool>,
    drain_timeout: Duration,
) {
    http::serve(
        listener,
        Some(TlsAcceptor::from(tls)),
        router,
        shutdown,
        drain_timeout,
        Limits::default(),
    )
    .await
}
