//! The webhook's admin port (plain HTTP, served by [`crate::runtime::admin`]): `/livez`, `/readyz`, `/metrics`.
//!
//! In: the readiness flags and the metrics registry. Out: an axum router. `/readyz` is true only once the TLS
//! certificate is loaded and every cluster cache has synced, and false again from the moment shutdown begins, so
//! the Service stops sending reviews to a pod that is about to leave.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use axum::Router;

use super::metrics::Metrics;

/// Whether the caches behind the cluster view have synced.
pub type SyncedFn = Arc<dyn Fn() -> bool + Send + Sync>;

/// The three facts `/readyz` combines.
pub struct Readiness {
    tls_loaded: AtomicBool,
    shutting_down: AtomicBool,
    caches_synced: SyncedFn,
}

impl std::fmt::Debug for Readiness {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Readiness")
            .field("tls_loaded", &self.tls_loaded)
            .field("shutting_down", &self.shutting_down)
            .finish_non_exhaustive()
    }
}

impl Readiness {
    pub fn new(caches_synced: SyncedFn) -> Self {
        Readiness {
            tls_loaded: AtomicBool::new(false),
            shutting_down: AtomicBool::new(false),
            caches_synced,
        }
    }

    pub fn set_tls_loaded(&self) {
        self.tls_loaded.store(true, Ordering::SeqCst);
    }

    pub fn begin_shutdown(&self) {
        self.shutting_down.store(true, Ordering::SeqCst);
    }

    /// `Err` names what is missing, for the `/readyz` body.
    pub fn check(&self) -> Result<(), &'static str> {
        if self.shutting_down.load(Ordering::SeqCst) {
            return Err("shutting down");
        }
        if !self.tls_loaded.load(Ordering::SeqCst) {
            return Err("TLS certificate not loaded");
        }
        if !(self.caches_synced)() {
            return Err("cluster caches not synced");
        }
        Ok(())
    }
}

/// The admin router of the webhook: ready once TLS and the caches are, metrics from `metrics`.
pub fn router(readiness: Arc<Readiness>, metrics: Arc<Metrics>) -> Router {
    crate::runtime::admin::router(
        Arc::new(move || readiness.check().map_err(String::from)),
        Arc::new(move || metrics.render()),
    )
}
