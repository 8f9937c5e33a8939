//! Fault injection on a running fake server, as reliability tests use it through kube-rs.

use fake_apiserver::FakeApiServer;
use fake_apiserver::faults::FaultMatch;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, ListParams};

#[tokio::test]
async fn injected_failures_and_unreachability_then_recovery() {
    let srv = FakeApiServer::start().await.unwrap();
    let mut config = srv.config();
    // Retries would hide the injected statuses this test wants to see.
    config.default_retry = false;
    let client = kube::Client::try_from(config).unwrap();
    let cms: Api<ConfigMap> = Api::default_namespaced(client);

    srv.faults()
        .fail_next(1, FaultMatch::verb_resource("list", "configmaps"), 503);
    let err = cms.list(&ListParams::default()).await.unwrap_err();
    assert!(matches!(err, kube::Error::Api(s) if s.code == 503));
    assert!(
        cms.list(&ListParams::default()).await.is_ok(),
        "only the next request fails"
    );

    srv.faults().set_unreachable(true);
    assert!(cms.list(&ListParams::default()).await.is_err());
    srv.faults().set_unreachable(false);
    assert!(cms.list(&ListParams::default()).await.is_ok());
}

#[tokio::test]
async fn https_server_is_verified_with_its_ca() {
    let srv = FakeApiServer::start_https().await.unwrap();
    assert!(srv.url().starts_with("https://127.0.0.1:"));
    let cms: Api<ConfigMap> = Api::default_namespaced(srv.client());
    assert!(
        cms.list(&ListParams::default())
            .await
            .unwrap()
            .items
            .is_empty()
    );
    assert!(srv.kubeconfig().contains("certificate-authority-data: "));
}
