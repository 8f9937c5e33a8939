//! The push receiver: a correctly signed payload triggers a fetch at once, a wrongly signed one gets 401 and
//! triggers nothing; GitLab tokens and generic HMACs; oversized bodies are refused. End to end: a signed push
//! makes a new commit land without waiting for the poll interval.

use std::time::Duration;

use axum::body::Body;
use drgitops::reconcile::runner::{Reconciler, serve_admin};
use drgitops::source::hooks::{MAX_BODY_BYTES, sign};
use futures::FutureExt as _;
use http::{Request, StatusCode};
use testkit::reconcile::{commit, plan_repo};
use testkit::{EAST, eventually};
use tower::ServiceExt as _;

use super::support::*;

const SECRET: &[u8] = b"push-secret";

fn hook(headers: &[(&str, &str)], body: &[u8]) -> Request<Body> {
    let mut request = Request::post("/hooks/git").header("content-type", "application/json");
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    request.body(Body::from(body.to_vec())).expect("request")
}

fn triggered(reconciler: &Reconciler) -> bool {
    reconciler.trigger.notified().now_or_never().is_some()
}

/// The receiver alone, which never reaches the cluster: the shared peer cluster serves as any.
#[tokio::test]
async fn signatures_decide_whether_a_fetch_is_triggered() {
    let cluster = peer().await;
    let repo = plan_repo();
    let cache = tempfile::tempdir().expect("tmp");
    let mut opts = options(EAST, repo.path(), cache.path());
    opts.webhook_secret = Some(SECRET.to_vec());
    let reconciler = Reconciler::new(reconciler_client(cluster).await, opts);
    let router = reconciler.admin_router();
    let payload =
        br#"{"ref":"refs/heads/main","after":"0000000000000000000000000000000000000000"}"#;

    let wrong = sign(b"not-the-secret", payload);
    let response = router
        .clone()
        .oneshot(hook(&[("x-hub-signature-256", &wrong)], payload))
        .await
        .expect("served");
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert!(
        !triggered(&reconciler),
        "a wrongly signed push triggers nothing"
    );

    let unsigned = router
        .clone()
        .oneshot(hook(&[], payload))
        .await
        .expect("served");
    assert_eq!(unsigned.status(), StatusCode::UNAUTHORIZED);
    assert!(!triggered(&reconciler));

    let good = sign(SECRET, payload);
    let response = router
        .clone()
        .oneshot(hook(&[("x-hub-signature-256", &good)], payload))
        .await
        .expect("served");
    assert_eq!(response.status(), StatusCode::ACCEPTED);
    assert!(
        triggered(&reconciler),
        "a correctly signed push triggers a fetch"
    );

    let response = router
        .clone()
        .oneshot(hook(&[("x-gitlab-token", "push-secret")], payload))
        .await
        .expect("served");
    assert_eq!(response.status(), StatusCode::ACCEPTED);
    assert!(triggered(&reconciler));
    let response = router
        .clone()
        .oneshot(hook(&[("x-gitlab-token", "guess")], payload))
        .await
        .expect("served");
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);

    let generic = sign(SECRET, payload);
    let response = router
        .clone()
        .oneshot(hook(&[("x-signature", &generic)], payload))
        .await
        .expect("served");
    assert_eq!(response.status(), StatusCode::ACCEPTED);
    assert!(triggered(&reconciler));

    // Signed bodies just under and at the cap are read whole and accepted.
    for len in [MAX_BODY_BYTES - 1, MAX_BODY_BYTES] {
        let body = vec![b' '; len];
        let response = router
            .clone()
            .oneshot(hook(
                &[("x-hub-signature-256", &sign(SECRET, &body))],
                &body,
            ))
            .await
            .expect("served");
        assert_eq!(response.status(), StatusCode::ACCEPTED, "{len} bytes");
        assert!(triggered(&reconciler), "{len} bytes");
    }
    let huge = vec![b' '; MAX_BODY_BYTES + 1];
    let signed = sign(SECRET, &huge);
    let response = router
        .clone()
        .oneshot(hook(&[("x-hub-signature-256", &signed)], &huge))
        .await
        .expect("served");
    assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
    assert!(
        !triggered(&reconciler),
        "bodies over 3 MiB are refused before any work"
    );

    let metrics = router
        .oneshot(
            Request::get("/metrics")
                .body(Body::empty())
                .expect("request"),
        )
        .await
        .expect("served");
    let text = String::from_utf8(
        axum::body::to_bytes(metrics.into_body(), usize::MAX)
            .await
            .expect("body")
            .to_vec(),
    )
    .expect("utf-8");
    assert!(
        text.contains(
            r#"drgitops_git_hook_requests_total{provider="github",result="unauthorized"} 1"#
        ),
        "{text}"
    );
    assert!(
        text.contains(r#"drgitops_git_hook_requests_total{provider="github",result="accepted"} 3"#),
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_signed_push_applies_a_new_commit_without_waiting_for_the_poll() {
    let east = east().await;
    let repo = plan_repo();
    let cache = tempfile::tempdir().expect("tmp");
    let mut opts = options(EAST, repo.path(), cache.path());
    opts.webhook_secret = Some(SECRET.to_vec());
    opts.interval = Duration::from_secs(3600);
    let reconciler = Reconciler::new(reconciler_client(&east).await, opts);
    let (stop, shutdown) = tokio::sync::watch::channel(false);
    let (addr, admin) = serve_admin(&reconciler, "127.0.0.1:0", shutdown.clone())
        .await
        .expect("admin binds");
    let runner = tokio::spawn(reconciler.clone().run(shutdown));

    let client = east.client().await;
    let applied = eventually(Duration::from_secs(20), || async {
        stork(&client, "NamespacedSchedulePolicy", "mysql", "mysql").await
    })
    .await;
    assert!(applied.is_some(), "the first pass applies the plans");

    let edited = read_data("plans/mysql.yaml").replace("intervalMinutes: 15", "intervalMinutes: 5");
    commit(repo.path(), &[("plans/mysql.yaml", &edited)], "faster");
    let payload = br#"{"ref":"refs/heads/main"}"#;
    let response = post_signed(addr, payload, &sign(SECRET, payload)).await;
    assert!(response.starts_with("HTTP/1.1 202"), "{response}");

    let updated = eventually(Duration::from_secs(20), || async {
        let policy = stork(&client, "NamespacedSchedulePolicy", "mysql", "mysql").await?;
        (policy["policy"]["interval"]["intervalMinutes"] == 5).then_some(())
    })
    .await;
    assert!(
        updated.is_some(),
        "the pushed commit is applied long before the 1h poll"
    );

    let readyz = get(addr, "/readyz").await;
    assert!(readyz.starts_with("HTTP/1.1 200"), "{readyz}");
    let _ = stop.send(true);
    runner.await.expect("runner stops");
    admin.await.expect("admin stops");
}

/// A raw HTTP/1.1 POST over TCP, as a git host sends it.
async fn post_signed(addr: std::net::SocketAddr, body: &[u8], signature: &str) -> String {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let head = format!(
        "POST /hooks/git HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nX-GitHub-Event: push\r\n\
         X-Hub-Signature-256: {signature}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).await.expect("write");
    stream.write_all(body).await.expect("write");
    let mut response = String::new();
    stream.read_to_string(&mut response).await.expect("read");
    response
}

async fn get(addr: std::net::SocketAddr, path: &str) -> String {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let head = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    stream.write_all(head.as_bytes()).await.expect("write");
    let mut response = String::new();
    stream.read_to_string(&mut response).await.expect("read");
    response
}
