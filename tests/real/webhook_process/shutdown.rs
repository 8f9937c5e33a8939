//! The real `drgitops webhook` process: not ready until its caches sync (kube-apiserver out of reach behind a
//! fault proxy that refuses connections, then let through), and SIGTERM draining an in-flight review.

use std::process::{Command, Stdio};
use std::time::Duration;

use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

use super::{
    SCALE_UID, cluster, connector, fixture, http_get, read_response, secret_volume, serving,
    webhook_kubeconfig,
};
use testkit::eventually;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_lets_an_in_flight_review_finish() {
    let cluster = cluster().await;
    let pki = testenv::pki::Pki::new("webhook-ca").expect("CA");
    let dir = tempfile::tempdir().expect("tempdir");
    secret_volume(dir.path(), "v1", &serving(&pki));
    // kube-apiserver out of reach at first: every connection to it is reset.
    let target = cluster
        .env
        .url()
        .trim_start_matches("https://")
        .parse()
        .expect("kube-apiserver address");
    let proxy = testenv::faults::FaultProxy::start(target).expect("fault proxy");
    proxy.set_refuse(true);
    let kubeconfig = webhook_kubeconfig(
        cluster,
        dir.path(),
        Some(&format!("https://{}", proxy.addr())),
    )
    .await;
    let listen = format!("127.0.0.1:{}", testenv::free_port().expect("port"));
    let admin = format!("127.0.0.1:{}", testenv::free_port().expect("port"));
    let mut child = Command::new(crate::DRGITOPS)
        .args([
            "webhook",
            "--listen",
            &listen,
            "--admin-listen",
            &admin,
            "--cluster-domain",
            &cluster.domain,
            "--log-format",
            "json",
        ])
        .arg("--tls-cert")
        .arg(dir.path().join("tls.crt"))
        .arg("--tls-key")
        .arg(dir.path().join("tls.key"))
        .env("KUBECONFIG", kubeconfig)
        .env_remove("KUBERNETES_SERVICE_HOST")
        .env("RUST_LOG", "info,drgitops=debug")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(dir.path().join("stderr.log")).expect("log file"))
        .spawn()
        .expect("start drgitops webhook");
    cluster.env.adopt(child.id()).expect("adopt the webhook");
    let log = dir.path().join("stderr.log");
    let log_text = || std::fs::read_to_string(&log).unwrap_or_default();

    let live = eventually(Duration::from_secs(30), || http_get(&admin, "/livez")).await;
    assert_eq!(
        live.map(|(s, _)| s),
        Some(200),
        "livez must answer once started"
    );
    let (status, body) = http_get(&admin, "/readyz").await.expect("readyz");
    assert_eq!(
        (status, body.as_str()),
        (503, "not ready: cluster caches not synced\n")
    );

    // kube-apiserver in reach: the caches sync as the drgitops-webhook ServiceAccount, and readyz turns true.
    proxy.set_refuse(false);
    let ready = eventually(Duration::from_secs(60), || async {
        http_get(&admin, "/readyz")
            .await
            .filter(|(status, _)| *status == 200)
    })
    .await;
    assert!(
        ready.is_some(),
        "ready once kube-apiserver answers:\n{}",
        log_text()
    );

    // Start a review: headers and half of the body, as a slow apiserver connection would.
    let review = fixture("scale-deployment.json");
    let tcp = TcpStream::connect(&listen).await.expect("connect");
    let name = rustls::pki_types::ServerName::try_from("localhost").expect("name");
    let mut tls = connector(&pki.ca_pem(), None)
        .connect(name, tcp)
        .await
        .expect("handshake");
    let head = format!(
        "POST /validate HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        review.len()
    );
    tls.write_all(head.as_bytes()).await.expect("head");
    tls.write_all(&review[..review.len() / 2])
        .await
        .expect("half body");
    tls.flush().await.expect("flush");
    // Signal only once the server is reading this review: a request whose head it has not read yet arrives on
    // what is still an idle connection, which a draining server closes (as Go's http.Server does).
    assert!(
        eventually(Duration::from_secs(10), || {
            let log = log_text();
            async move { log.contains("receiving admission review").then_some(()) }
        })
        .await
        .is_some(),
        "the webhook never started reading the review"
    );

    let killed = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill");
    assert!(killed.success());
    let draining = eventually(Duration::from_secs(10), || async {
        match http_get(&admin, "/readyz").await {
            Some((503, body)) if body.contains("shutting down") => Some(()),
            _ => None,
        }
    })
    .await;
    assert!(
        draining.is_some(),
        "readyz must turn false as soon as shutdown begins"
    );
    assert!(
        eventually(Duration::from_secs(10), || async {
            TcpStream::connect(&listen).await.is_err().then_some(())
        })
        .await
        .is_some(),
        "no new connections once shutdown begins"
    );

    tls.write_all(&review[review.len() / 2..])
        .await
        .expect("rest of body");
    tls.flush().await.expect("flush");
    let (status, answer) = read_response(&mut tls)
        .await
        .expect("the in-flight review is answered");
    assert_eq!(status, 200);
    assert_eq!(answer["response"]["uid"], SCALE_UID);
    assert_eq!(answer["response"]["allowed"], true);

    let exited = eventually(Duration::from_secs(20), || {
        let status = child.try_wait().ok().flatten();
        async move { status }
    })
    .await;
    assert_eq!(
        exited.and_then(|s| s.code()),
        Some(0),
        "the webhook exits cleanly after draining"
    );

    // One JSON line per review, naming the review and the decision.
    let log = log_text();
    let line = log
        .lines()
        .find(|l| l.contains("review answered"))
        .unwrap_or_else(|| panic!("no review log line in:\n{log}"));
    let line: serde_json::Value = serde_json::from_str(line).expect("a JSON log line");
    assert_eq!(line["name"], "mysql");
    assert_eq!(line["uid"], SCALE_UID);
    assert_eq!(line["kind"], "Deployment");
    assert_eq!(line["namespace"], "mysql");
    assert_eq!(line["operation"], "UPDATE");
    assert_eq!(line["decision"], "allowed");
}
