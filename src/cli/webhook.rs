//! `drgitops webhook`: serves the admission webhook until SIGTERM.
//!
//! In: the `webhook` flags, a kubeconfig found the way kube-rs finds it (in-cluster or `KUBECONFIG`), the policy
//! directory. Out: `POST /mutate` and `POST /validate` over HTTPS answering AdmissionReviews from the rule engine,
//! and `/livez`, `/readyz`, `/metrics` on the plain-HTTP admin port. SIGTERM (or Ctrl-C) marks the pod unready,
//! stops accepting connections and lets in-flight reviews finish; a second signal exits at once.

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use tokio::net::TcpListener;
use tokio::sync::watch;

use super::WebhookArgs;
use crate::cluster::live::LiveView;
use crate::policy::PolicyConfig;
use crate::runtime::{logging, signals::Signals};
use crate::webhook::{admin, admission, config, load_policies, metrics, server, tls};

/// How often the policy directory is compared with what was loaded.
const POLICY_POLL: Duration = Duration::from_secs(2);
/// Longest wait for in-flight reviews after SIGTERM; below the pod's default 30 s grace period.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(20);

/// `drgitops webhook`.
pub fn run(args: WebhookArgs) -> anyhow::Result<ExitCode> {
    logging::init(args.log.log_format);
    // At least two workers, so that a review's deadline can fire while another review's rules hold a worker.
    let workers = std::thread::available_parallelism()
        .map_or(2, |n| n.get())
        .max(2);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers)
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(serve(args))
}

async fn serve(args: WebhookArgs) -> anyhow::Result<ExitCode> {
    let (tls_config, _resolver) =
        tls::server_config(&args.tls_cert, &args.tls_key, args.client_ca.as_deref())
            .context("cannot load the webhook's TLS files (--tls-cert, --tls-key, --client-ca)")?;
    let policy_config = match &args.policies {
        Some(dir) => load_policies(dir)
            .map_err(|err| anyhow::anyhow!("{err}"))
            .with_context(|| format!("cannot load the policy config in {}", dir.display()))?,
        None => PolicyConfig::default(),
    };
    let policies = Arc::new(config::PolicyStore::new(policy_config));
    let client = kube::Client::try_default()
        .await
        .context("cannot build a Kubernetes client (run in-cluster or set KUBECONFIG)")?;
    let view = LiveView::start(client, args.cluster_domain.clone());
    let metrics = Arc::new(metrics::Metrics::new());
    let synced_view = view.clone();
    let readiness = Arc::new(admin::Readiness::new(Arc::new(move || {
        synced_view.has_synced()
    })));
    readiness.set_tls_loaded();

    let listener = TcpListener::bind(&args.listen)
        .await
        .with_context(|| format!("cannot listen on {} (--listen)", args.listen))?;
    let admin_listener = TcpListener::bind(&args.admin_listen)
        .await
        .with_context(|| format!("cannot listen on {} (--admin-listen)", args.admin_listen))?;
    tracing::info!(
        listen = %listener.local_addr().map(|a| a.to_string()).unwrap_or_default(),
        admin = %admin_listener.local_addr().map(|a| a.to_string()).unwrap_or_default(),
        "serving admission reviews"
    );

    let (stop_tx, stop_rx) = watch::channel(false);
    let (admin_stop_tx, admin_stop_rx) = watch::channel(false);
    let admin_task = crate::runtime::admin::serve(
        admin_listener,
        admin::router(readiness.clone(), metrics.clone()),
        admin_stop_rx,
    );
    if let Some(dir) = args.policies.clone() {
        tokio::spawn(config::watch(
            dir,
            policies.clone(),
            load_policies,
            metrics.clone(),
            POLICY_POLL,
            stop_rx.clone(),
        ));
    }
    let state = admission::AdmissionState::new(view, policies, metrics);
    let mut https = tokio::spawn(server::serve_tls(
        listener,
        tls_config,
        admission::router(state),
        stop_rx,
        DRAIN_TIMEOUT,
    ));

    let mut signals = Signals::new().context("cannot install signal handlers")?;
    tokio::select! {
        _ = signals.next() => {}
        result = &mut https => {
            // The accept loop only returns after a shutdown signal; ending earlier is a bug worth exiting on.
            anyhow::bail!("the HTTPS server stopped unexpectedly: {result:?}");
        }
    }
    tracing::info!("shutting down: draining in-flight reviews");
    readiness.begin_shutdown();
    let _ = stop_tx.send(true);
    tokio::select! {
        _ = &mut https => {}
        _ = signals.next() => {
            tracing::warn!("second signal: exiting without waiting for in-flight reviews");
            return Ok(ExitCode::from(1));
        }
    }
    let _ = admin_stop_tx.send(true);
    let _ = admin_task.await;
    tracing::info!("stopped");
    Ok(ExitCode::SUCCESS)
}
