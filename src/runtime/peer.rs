//! The client for the peer cluster, built from the kubeconfig a plan's Secret holds, with short timeouts: every
//! second spent on an unreachable peer is a second of outage at the fence.

use std::time::Duration;

use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Client, Config};

/// A client for the peer, connecting and reading with `timeout`.
pub async fn client(kubeconfig: &str, timeout: Duration) -> Result<Client, String> {
    let kubeconfig =
        Kubeconfig::from_yaml(kubeconfig).map_err(|e| format!("invalid peer kubeconfig: {e}"))?;
    let mut config = Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
        .await
        .map_err(|e| format!("invalid peer kubeconfig: {e}"))?;
    config.connect_timeout = Some(timeout);
    config.read_timeout = Some(timeout);
    Client::try_from(config).map_err(|e| format!("cannot build a client for the peer: {e}"))
}

/// Whether the peer's kube-apiserver answers `GET /version` within `timeout`.
pub async fn reachable(kubeconfig: &str, timeout: Duration) -> bool {
    let probe = async {
        client(kubeconfig, timeout)
            .await
            .ok()?
            .apiserver_version()
            .await
            .ok()
    };
    matches!(tokio::time::timeout(timeout, probe).await, Ok(Some(_)))
}
