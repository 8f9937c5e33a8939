//! The admin port both long-running commands serve on plain HTTP: `/livez`, `/readyz` (with the reason when not
//! ready) and `/metrics` (OpenMetrics text). Each command says what "ready" means and what its metrics are; the
//! reconciler adds its push receiver to the router.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use tokio::net::TcpListener;
use tokio::sync::watch;

/// `Ok` when ready, else what is missing (shown in the `/readyz` body).
pub type ReadyFn = Arc<dyn Fn() -> Result<(), String> + Send + Sync>;
/// The metrics in OpenMetrics text.
pub type MetricsFn = Arc<dyn Fn() -> String + Send + Sync>;

/// `/livez`, `/readyz` and `/metrics`.
pub fn router(ready: ReadyFn, metrics: MetricsFn) -> Router {
    Router::new()
        .route("/livez", get(|| async { "ok\n" }))
        .route(
            "/readyz",
            get(move || {
                let ready = ready.clone();
                async move {
                    match ready() {
                        Ok(()) => (StatusCode::OK, "ok\n".to_string()),
                        Err(why) => (
                            StatusCode::SERVICE_UNAVAILABLE,
                            format!("not ready: {why}\n"),
                        ),
                    }
                }
            }),
        )
        .route(
            "/metrics",
            get(move || {
                let metrics = metrics.clone();
                async move {
                    (
                        [(
                            header::CONTENT_TYPE,
                            "application/openmetrics-text; version=1.0.0; charset=utf-8",
                        )],
                        metrics(),
                    )
                        .into_response()
                }
            }),
        )
}

/// How long a shutdown waits for admin requests in flight (a scrape, a push notification).
const ADMIN_DRAIN_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

/// Serves `router` on `listener` until `shutdown` turns true, with the default [`super::http::Limits`] on every
/// client (the push receiver is reachable from outside the cluster).
pub fn serve(
    listener: TcpListener,
    router: Router,
    shutdown: watch::Receiver<bool>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(super::http::serve(
        listener,
        None,
        router,
        shutdown,
        ADMIN_DRAIN_TIMEOUT,
        super::http::Limits::default(),
    ))
}

/// Binds `addr` for [`serve`], returning the address actually bound (port 0 picks a free one).
pub async fn bind(addr: &str) -> std::io::Result<(TcpListener, SocketAddr)> {
    let listener = TcpListener::bind(addr).await?;
    let local = listener.local_addr()?;
    Ok((listener, local))
}
