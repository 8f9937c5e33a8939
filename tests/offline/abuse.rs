//! Clients that abuse the servers (`drgitops::runtime::http`, the accept loop of the webhook's HTTPS port and of
//! the admin port with the push receiver): headers or bodies dribbled a byte at a time, plaintext and garbage on
//! the TLS port, connections opened and left idle. Each is cut off after its limit (short ones here, so the test
//! is quick; the defaults are 10 s, 30 s and 120 s idle), and a well-behaved client is served all the while. A
//! keep-alive connection left idle longer than the header limit is still served: only its idle limit closes it.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::routing::{get, post};
use drgitops::runtime::http::{Limits, serve};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;
use tokio::sync::watch;

const LIMITS: Limits = Limits {
    handshake: Duration::from_millis(800),
    header_read: Duration::from_millis(800),
    idle: Duration::from_millis(3000),
    request: Duration::from_millis(1500),
};
/// How long a test waits for the server to cut a client off: far past every limit, so a slow machine is no
/// reason to fail.
const CUT_OFF_WITHIN: Duration = Duration::from_secs(30);

fn router() -> Router {
    Router::new()
        .route("/livez", get(|| async { "ok\n" }))
        .route(
            "/echo",
            post(|body: Bytes| async move { format!("{} bytes\n", body.len()) }),
        )
}

/// A server on loopback (TLS when `tls` is given) and the sender that stops it.
struct Server {
    addr: SocketAddr,
    _stop: watch::Sender<bool>,
}

async fn start(tls: Option<Arc<rustls::ServerConfig>>) -> Server {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = watch::channel(false);
    tokio::spawn(serve(
        listener,
        tls.map(tokio_rustls::TlsAcceptor::from),
        router(),
        stopped,
        Duration::from_secs(1),
        LIMITS,
    ));
    Server { addr, _stop: stop }
}

/// A serving certificate for 127.0.0.1 and a client config trusting its CA.
fn tls_pair() -> (Arc<rustls::ServerConfig>, Arc<rustls::ClientConfig>) {
    let pki = testenv::pki::Pki::new("abuse test CA").unwrap();
    let leaf = pki.serving(&["127.0.0.1", "localhost"]).unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let certs = rustls_pemfile::certs(&mut leaf.cert_pem.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .unwrap();
    let key = rustls_pemfile::private_key(&mut leaf.key_pem.as_bytes())
        .unwrap()
        .unwrap();
    let server = rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .unwrap();
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls_pemfile::certs(&mut pki.ca_pem().as_bytes()) {
        roots.add(cert.unwrap()).unwrap();
    }
    let client = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    (Arc::new(server), Arc::new(client))
}

const GET: &[u8] = b"GET /livez HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n";

/// One well-behaved request; the status line of the answer.
async fn get_livez(addr: SocketAddr, tls: Option<&Arc<rustls::ClientConfig>>) -> String {
    let tcp = TcpStream::connect(addr).await.unwrap();
    let mut answer = Vec::new();
    match tls {
        Some(config) => {
            let name = rustls::pki_types::ServerName::try_from("127.0.0.1").unwrap();
            let mut stream = tokio_rustls::TlsConnector::from(config.clone())
                .connect(name, tcp)
                .await
                .unwrap();
            stream.write_all(GET).await.unwrap();
            let _ = stream.read_to_end(&mut answer).await;
        }
        None => {
            let mut stream = tcp;
            stream.write_all(GET).await.unwrap();
            stream.read_to_end(&mut answer).await.unwrap();
        }
    }
    String::from_utf8_lossy(&answer)
        .lines()
        .next()
        .unwrap_or_default()
        .to_string()
}

/// Reads until the server closes the connection (or resets it); what it sent, or `None` if it kept the
/// connection open past [`CUT_OFF_WITHIN`].
async fn until_closed(stream: &mut TcpStream) -> Option<String> {
    let mut seen = Vec::new();
    let read = tokio::time::timeout(CUT_OFF_WITHIN, async {
        let mut buf = [0u8; 1024];
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => seen.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await;
    read.ok()
        .map(|()| String::from_utf8_lossy(&seen).into_owned())
}

/// Sends `head` at once, then `dribble` one byte every 100 ms until the server closes the connection or the
/// bytes run out; what the server sent before closing, or `None` if it never did.
async fn dribble(addr: SocketAddr, head: &[u8], dribble: &[u8]) -> Option<String> {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream.write_all(head).await.unwrap();
    for byte in dribble {
        tokio::time::sleep(Duration::from_millis(100)).await;
        if stream.write_all(&[*byte]).await.is_err() {
            break;
        }
        // The server may already have answered and closed.
        let mut probe = [0u8; 1];
        if let Ok(Ok(0)) =
            tokio::time::timeout(Duration::from_millis(1), stream.peek(&mut probe)).await
        {
            break;
        }
    }
    until_closed(&mut stream).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dribbled_headers_are_cut_off_while_other_clients_are_served() {
    let server = start(None).await;
    // Twenty clients dribbling one header line a byte every 100 ms: far slower than the header limit allows.
    let endless = vec![b'x'; 600];
    let slow: Vec<_> = (0..20)
        .map(|_| {
            let endless = endless.clone();
            tokio::spawn(async move {
                dribble(server.addr, b"GET /livez HTTP/1.1\r\nX-Slow: ", &endless).await
            })
        })
        .collect();
    // Meanwhile a well-behaved client is answered, request after request.
    for _ in 0..20 {
        assert_eq!(get_livez(server.addr, None).await, "HTTP/1.1 200 OK");
    }
    for client in slow {
        let answer = client.await.unwrap();
        let answer = answer.expect("a client dribbling its headers was never cut off");
        // hyper closes without an answer, or with 408, when headers do not arrive in time.
        assert!(
            answer.is_empty() || answer.starts_with("HTTP/1.1 408"),
            "{answer}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dribbled_body_gets_408_and_the_connection_closed() {
    let server = start(None).await;
    let body = vec![b'{'; 600];
    let answer = dribble(
        server.addr,
        b"POST /echo HTTP/1.1\r\nHost: test\r\nContent-Length: 600\r\n\r\n",
        &body,
    )
    .await
    .expect("a client dribbling its body was never cut off");
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("request not completed within"), "{answer}");
    // The same request sent at once is answered.
    let mut stream = TcpStream::connect(server.addr).await.unwrap();
    stream
        .write_all(b"POST /echo HTTP/1.1\r\nHost: test\r\nContent-Length: 3\r\nConnection: close\r\n\r\n{}\n")
        .await
        .unwrap();
    let answer = until_closed(&mut stream).await.unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(answer.ends_with("3 bytes\n"), "{answer}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plaintext_garbage_and_silence_on_the_tls_port_are_dropped_and_tls_clients_still_served() {
    let (server_tls, client_tls) = tls_pair();
    let server = start(Some(server_tls)).await;
    let inputs: [(&str, &[u8]); 4] = [
        ("plaintext HTTP", GET),
        (
            "garbage",
            &[0x16, 0x03, 0x01, 0xff, 0xff, 0xde, 0xad, 0xbe, 0xef],
        ),
        (
            "random bytes",
            b"\x00\x01\x02 not a handshake at all \xff\xfe",
        ),
        ("nothing", b""),
    ];
    for (what, bytes) in inputs {
        let mut stream = TcpStream::connect(server.addr).await.unwrap();
        stream.write_all(bytes).await.unwrap();
        let answer = until_closed(&mut stream).await;
        let answer = answer.unwrap_or_else(|| panic!("{what} on the TLS port kept its connection"));
        // At most a TLS alert; never an HTTP answer.
        assert!(!answer.contains("HTTP/"), "{what}: {answer}");
        assert_eq!(
            get_livez(server.addr, Some(&client_tls)).await,
            "HTTP/1.1 200 OK",
            "after {what}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_connections_are_closed_and_never_block_a_client() {
    let (server_tls, client_tls) = tls_pair();
    let server = start(Some(server_tls)).await;
    let mut idle = Vec::new();
    for _ in 0..300 {
        idle.push(TcpStream::connect(server.addr).await.unwrap());
    }
    for _ in 0..20 {
        assert_eq!(
            get_livez(server.addr, Some(&client_tls)).await,
            "HTTP/1.1 200 OK"
        );
    }
    for stream in &mut idle {
        assert!(
            until_closed(stream).await.is_some(),
            "an idle connection was kept open"
        );
    }
}

/// Sends one request on `stream` and reads its whole answer (the routes answer with a `Content-Length`).
async fn exchange(stream: &mut TcpStream, request: &[u8]) -> String {
    stream.write_all(request).await.unwrap();
    let mut seen = Vec::new();
    let mut buf = [0u8; 1024];
    tokio::time::timeout(CUT_OFF_WITHIN, async {
        while !String::from_utf8_lossy(&seen).ends_with("ok\n") {
            let n = stream.read(&mut buf).await.unwrap();
            assert!(n > 0, "closed after {:?}", String::from_utf8_lossy(&seen));
            seen.extend_from_slice(&buf[..n]);
        }
    })
    .await
    .expect("an answer");
    String::from_utf8_lossy(&seen).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_keep_alive_connection_idle_past_the_header_limit_is_served_and_a_dribbled_next_request_cut_off()
 {
    let server = start(None).await;
    let mut stream = TcpStream::connect(server.addr).await.unwrap();
    let request = b"GET /livez HTTP/1.1\r\nHost: test\r\n\r\n";
    assert!(
        exchange(&mut stream, request)
            .await
            .starts_with("HTTP/1.1 200")
    );
    // Idle for twice the header limit, well within the idle limit: a client reusing its connection, as
    // kube-apiserver does, is answered instead of finding it closed.
    tokio::time::sleep(LIMITS.header_read * 2).await;
    assert!(
        exchange(&mut stream, request)
            .await
            .starts_with("HTTP/1.1 200")
    );
    // The next request's headers dribbled: cut off by the header limit, counted from their first byte.
    stream
        .write_all(b"GET /livez HTTP/1.1\r\nX-Slow: ")
        .await
        .unwrap();
    let mut cut = false;
    for _ in 0..300 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        if stream.write_all(b"x").await.is_err() {
            cut = true;
            break;
        }
        let mut probe = [0u8; 1];
        if let Ok(Ok(0)) =
            tokio::time::timeout(Duration::from_millis(1), stream.peek(&mut probe)).await
        {
            cut = true;
            break;
        }
    }
    assert!(cut, "a dribbled second request was never cut off");
    // A connection left idle after a request is closed by the idle limit.
    let mut idle = TcpStream::connect(server.addr).await.unwrap();
    assert!(
        exchange(&mut idle, request)
            .await
            .starts_with("HTTP/1.1 200")
    );
    assert_eq!(
        until_closed(&mut idle).await.as_deref(),
        Some(""),
        "an idle keep-alive connection was kept open"
    );
}
