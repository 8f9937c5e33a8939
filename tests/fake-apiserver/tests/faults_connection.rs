//! Fault injection as clients meet it: over a real loopback listener (raw HTTP/1.1 and kube-rs) and
//! in-process through `kube::Client::new(router)`. The accept loop here is the one the server's connection
//! layer must mirror: refuse connections while unreachable, serve the rest with `faults::serve_connection`.

use std::time::Duration;

use axum::Router;
use axum::routing::get;
use fake_apiserver::faults::{self, FaultMatch, Faults};
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, ListParams};
use serde_json::json;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

fn router(faults: &Faults) -> Router {
    Router::new()
        .route(
            "/api/v1/namespaces/{namespace}/configmaps",
            get(|| async {
                axum::Json(json!({
                    "kind": "ConfigMapList",
                    "apiVersion": "v1",
                    "metadata": {"resourceVersion": "7"},
                    "items": [{"metadata": {"name": "settings", "namespace": "default"}, "data": {"a": "1"}}],
                }))
            }),
        )
        .layer(axum::middleware::from_fn_with_state(faults.clone(), faults::middleware))
}

/// Serves `router` on a loopback port; returns the address.
async fn serve(faults: Faults) -> std::net::SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let address = listener.local_addr().expect("local addr");
    let router = router(&faults);
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            if faults.is_unreachable() {
                drop(tcp);
                continue;
            }
            let router = router.clone();
            tokio::spawn(async move {
                // Dropped requests end the connection with an error by design.
                let _closed = faults::serve_connection(tcp, router).await;
            });
        }
    });
    address
}

const LIST: &str = "/api/v1/namespaces/default/configmaps";

/// Sends one request on `stream` and reads one response; `None` when the server closed without answering.
async fn exchange(stream: &mut TcpStream, path: &str) -> Option<(u16, String)> {
    let request = format!("GET {path} HTTP/1.1\r\nHost: fake\r\nAccept: application/json\r\n\r\n");
    if stream.write_all(request.as_bytes()).await.is_err() {
        return None;
    }
    let mut received = Vec::new();
    let mut buffer = [0u8; 4096];
    loop {
        let n = stream.read(&mut buffer).await.unwrap_or(0);
        if n == 0 {
            break;
        }
        received.extend_from_slice(&buffer[..n]);
        let text = String::from_utf8_lossy(&received);
        if let Some((head, body)) = text.split_once("\r\n\r\n") {
            let length = head
                .lines()
                .find_map(|line| {
                    let (name, value) = line.split_once(':')?;
                    name.eq_ignore_ascii_case("content-length")
                        .then(|| value.trim().parse::<usize>().ok())
                        .flatten()
                })
                .unwrap_or(0);
            if body.len() >= length {
                let code = head.split(' ').nth(1)?.parse().ok()?;
                return Some((code, body.to_string()));
            }
        }
    }
    if received.is_empty() {
        None
    } else {
        panic!("truncated response: {}", String::from_utf8_lossy(&received));
    }
}

async fn connect(address: std::net::SocketAddr) -> TcpStream {
    TcpStream::connect(address).await.expect("connect")
}

#[tokio::test]
async fn dropped_requests_get_no_response_at_all() {
    let faults = Faults::new();
    let address = serve(faults.clone()).await;
    faults.drop_next(1, FaultMatch::verb_resource("list", "configmaps"));

    let mut stream = connect(address).await;
    assert_eq!(
        exchange(&mut stream, LIST).await,
        None,
        "the connection closes with no bytes sent"
    );

    let mut stream = connect(address).await;
    let (code, body) = exchange(&mut stream, LIST)
        .await
        .expect("the next request is served");
    assert_eq!(code, 200);
    assert!(body.contains("\"settings\""), "{body}");
}

#[tokio::test]
async fn unreachable_refuses_new_connections_and_cuts_open_ones() {
    let faults = Faults::new();
    let address = serve(faults.clone()).await;
    let mut open = connect(address).await;
    assert_eq!(
        exchange(&mut open, LIST).await.map(|(code, _)| code),
        Some(200)
    );

    faults.set_unreachable(true);
    let mut fresh = connect(address).await;
    assert_eq!(
        exchange(&mut fresh, LIST).await,
        None,
        "a new connection is closed at once"
    );
    assert_eq!(
        exchange(&mut open, LIST).await,
        None,
        "a kept-alive connection gets no answer"
    );

    faults.set_unreachable(false);
    let mut again = connect(address).await;
    assert_eq!(
        exchange(&mut again, LIST).await.map(|(code, _)| code),
        Some(200)
    );
}

fn kube_client(address: std::net::SocketAddr) -> kube::Client {
    let url = format!("http://{address}").parse().expect("url");
    let mut config = kube::Config::new(url);
    config.default_namespace = "default".into();
    config.read_timeout = Some(Duration::from_secs(10));
    kube::Client::try_from(config).expect("client")
}

#[tokio::test]
async fn kube_rs_sees_injected_statuses_drops_and_recovery() {
    let faults = Faults::new();
    let address = serve(faults.clone()).await;
    let api: Api<ConfigMap> = Api::default_namespaced(kube_client(address));

    faults.fail_next(1, FaultMatch::verb("list"), 500);
    match api.list(&ListParams::default()).await {
        Err(kube::Error::Api(status)) => {
            assert_eq!(status.code, 500);
            assert_eq!(status.reason, "InternalError");
        }
        other => panic!("expected a 500 Status, got {other:?}"),
    }

    // kube-rs retries 503 (and 429, 504) with backoff on its own: one injected 503 is absorbed.
    faults.fail_next(1, FaultMatch::verb("list"), 503);
    let retried = api
        .list(&ListParams::default())
        .await
        .expect("retried past the 503");
    assert_eq!(retried.items.len(), 1);
    assert_eq!(faults.pending(), 0, "the 503 was served before the retry");

    faults.drop_next(1, FaultMatch::resource("configmaps"));
    let dropped = api.list(&ListParams::default()).await;
    assert!(
        matches!(
            dropped,
            Err(kube::Error::HyperError(_) | kube::Error::Service(_))
        ),
        "a dropped connection is a transport error, got {dropped:?}"
    );

    faults.set_unreachable(true);
    assert!(api.list(&ListParams::default()).await.is_err());
    faults.set_unreachable(false);
    let list = api
        .list(&ListParams::default())
        .await
        .expect("reachable again");
    assert_eq!(list.items[0].metadata.name.as_deref(), Some("settings"));
}

#[tokio::test]
async fn in_process_clients_see_the_same_faults() {
    let faults = Faults::new();
    let api: Api<ConfigMap> =
        Api::default_namespaced(kube::Client::new(router(&faults), "default"));
    faults.fail_next(1, FaultMatch::verb_resource("list", "configmaps"), 429);
    match api.list(&ListParams::default()).await {
        Err(kube::Error::Api(status)) => assert_eq!(status.code, 429),
        other => panic!("expected a 429 Status, got {other:?}"),
    }
    faults.drop_next(1, FaultMatch::any());
    assert!(api.list(&ListParams::default()).await.is_err());
    let list = api
        .list(&ListParams::default())
        .await
        .expect("served after the faults");
    assert_eq!(list.items.len(), 1);
}
