//! A smart-HTTP git server over TLS on loopback, for tests of `https://` remotes: git's own `git http-backend` runs
//! as a CGI program for each request, behind HTTP Basic auth with one token.
//!
//! In: a work tree made with the `git` CLI (served as `/plans.git`, so new commits are visible at once), the token
//! and a PEM certificate and key. Out: the remote's URL and the list of requests it answered.
#![allow(dead_code)] // each test binary uses a different subset

use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};

use base64::Engine as _;
use bytes::Bytes;
use http::header::{AUTHORIZATION, WWW_AUTHENTICATE};
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt as _, Full};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use tokio::io::AsyncWriteExt as _;
use tokio::sync::oneshot;

/// The server; it stops when dropped.
pub struct GitHttpsServer {
    addr: SocketAddr,
    backend: Arc<Backend>,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
    _root: tempfile::TempDir,
}

/// One request as the server answered it.
#[derive(Clone, Debug)]
pub struct Served {
    pub method: String,
    /// Path and query.
    pub target: String,
    pub status: u16,
}

struct Backend {
    program: PathBuf,
    project_root: PathBuf,
    token: String,
    served: Mutex<Vec<Served>>,
}

impl GitHttpsServer {
    /// Serves the repository of `work_tree` as `/plans.git` to clients that send `token` as the Basic password.
    /// Runs on its own thread and runtime, so sync and async tests can use it alike.
    pub fn start(work_tree: &Path, token: &str, cert_pem: &str, key_pem: &str) -> Self {
        let root = tempfile::tempdir().expect("tempdir");
        std::os::unix::fs::symlink(work_tree.join(".git"), root.path().join("plans.git"))
            .expect("symlink the repository into the project root");
        let exec_path = std::process::Command::new("git")
            .arg("--exec-path")
            .output()
            .expect("git runs");
        let exec_path = String::from_utf8(exec_path.stdout).expect("utf-8 path");
        let backend = Arc::new(Backend {
            program: Path::new(exec_path.trim()).join("git-http-backend"),
            project_root: root.path().to_path_buf(),
            token: token.to_string(),
            served: Mutex::new(Vec::new()),
        });
        let tls = server_config(cert_pem, key_pem);
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind loopback");
        listener.set_nonblocking(true).expect("non-blocking");
        let addr = listener.local_addr().expect("local addr");
        let (stop, stopped) = oneshot::channel();
        let thread = std::thread::spawn({
            let backend = backend.clone();
            move || {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("runtime");
                runtime.block_on(serve(listener, tls, backend, stopped));
            }
        });
        GitHttpsServer {
            addr,
            backend,
            stop: Some(stop),
            thread: Some(thread),
            _root: root,
        }
    }

    pub fn url(&self) -> String {
        format!("https://{}/plans.git", self.addr)
    }

    pub fn served(&self) -> Vec<Served> {
        self.backend.served.lock().expect("log").clone()
    }
}

impl Drop for GitHttpsServer {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn server_config(cert_pem: &str, key_pem: &str) -> Arc<rustls::ServerConfig> {
    let certs = rustls_pemfile::certs(&mut cert_pem.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .expect("certificate PEM");
    let key = rustls_pemfile::private_key(&mut key_pem.as_bytes())
        .expect("key PEM")
        .expect("a private key");
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("protocol versions")
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .expect("certificate and key match");
    Arc::new(config)
}

async fn serve(
    listener: std::net::TcpListener,
    tls: Arc<rustls::ServerConfig>,
    backend: Arc<Backend>,
    mut stopped: oneshot::Receiver<()>,
) {
    let listener = tokio::net::TcpListener::from_std(listener).expect("listener");
    let acceptor = tokio_rustls::TlsAcceptor::from(tls);
    loop {
        let tcp = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((tcp, _)) => tcp,
                Err(_) => continue,
            },
            _ = &mut stopped => return,
        };
        let (acceptor, backend) = (acceptor.clone(), backend.clone());
        tokio::spawn(async move {
            // A client that does not trust the certificate hangs up during the handshake.
            let Ok(stream) = acceptor.accept(tcp).await else {
                return;
            };
            let service = hyper::service::service_fn(move |request| {
                let backend = backend.clone();
                async move { Ok::<_, Infallible>(backend.answer(request).await) }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

impl Backend {
    async fn answer(&self, request: Request<Incoming>) -> Response<Full<Bytes>> {
        let method = request.method().to_string();
        let target = request
            .uri()
            .path_and_query()
            .map(|p| p.to_string())
            .unwrap_or_default();
        let response = match self.user(&request) {
            Some(user) => self.cgi(request, &user).await,
            // The challenge is what makes a client (libgit2) ask its credentials callback.
            None => Response::builder()
                .status(StatusCode::UNAUTHORIZED)
                .header(WWW_AUTHENTICATE, r#"Basic realm="git""#)
                .body(Full::default())
                .expect("response"),
        };
        self.served.lock().expect("log").push(Served {
            method,
            target,
            status: response.status().as_u16(),
        });
        response
    }

    /// The Basic user name, when the password is the token.
    fn user(&self, request: &Request<Incoming>) -> Option<String> {
        let header = request.headers().get(AUTHORIZATION)?.to_str().ok()?;
        let encoded = header.strip_prefix("Basic ")?;
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(encoded)
            .ok()?;
        let (user, password) = std::str::from_utf8(&decoded).ok()?.split_once(':')?;
        (password == self.token).then(|| user.to_string())
    }

    async fn cgi(&self, request: Request<Incoming>, user: &str) -> Response<Full<Bytes>> {
        let (parts, mut body) = request.into_parts();
        let mut command = tokio::process::Command::new(&self.program);
        command
            .env("GIT_PROJECT_ROOT", &self.project_root)
            .env("GIT_HTTP_EXPORT_ALL", "1")
            .env("REQUEST_METHOD", parts.method.as_str())
            .env("PATH_INFO", parts.uri.path())
            .env("QUERY_STRING", parts.uri.query().unwrap_or(""))
            .env("REMOTE_USER", user)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        for (header, variable) in [
            ("content-type", "CONTENT_TYPE"),
            ("content-length", "CONTENT_LENGTH"),
            ("content-encoding", "HTTP_CONTENT_ENCODING"),
            ("git-protocol", "HTTP_GIT_PROTOCOL"),
        ] {
            if let Some(value) = parts.headers.get(header).and_then(|v| v.to_str().ok()) {
                command.env(variable, value);
            }
        }
        let mut child = command.spawn().expect("git http-backend starts");
        let mut stdin = child.stdin.take().expect("piped stdin");
        // Fed while stdout is read, so neither side can fill a pipe and block the other.
        let feed = tokio::spawn(async move {
            while let Some(Ok(frame)) = body.frame().await {
                if let Ok(data) = frame.into_data()
                    && stdin.write_all(&data).await.is_err()
                {
                    return;
                }
            }
            // Dropping stdin ends the request body for the backend.
        });
        let output = child
            .wait_with_output()
            .await
            .expect("git http-backend ran");
        let _ = feed.await;
        if !output.status.success() {
            return Response::builder()
                .status(StatusCode::INTERNAL_SERVER_ERROR)
                .body(Full::new(Bytes::from(output.stderr)))
                .expect("response");
        }
        cgi_response(&output.stdout)
    }
}

/// A CGI program's output as an HTTP response: header lines (`Status: 404 Not Found` sets the status), a blank
/// line, the body.
fn cgi_response(stdout: &[u8]) -> Response<Full<Bytes>> {
    let (head, body) = match find(stdout, b"\r\n\r\n") {
        Some(at) => (&stdout[..at], &stdout[at + 4..]),
        None => match find(stdout, b"\n\n") {
            Some(at) => (&stdout[..at], &stdout[at + 2..]),
            None => (stdout, &[][..]),
        },
    };
    let mut response = Response::builder();
    let mut status = StatusCode::OK;
    for line in String::from_utf8_lossy(head).lines() {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        let value = value.trim();
        if name.eq_ignore_ascii_case("status") {
            status = value
                .split(' ')
                .next()
                .and_then(|code| code.parse().ok())
                .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        } else {
            response = response.header(name, value);
        }
    }
    response
        .status(status)
        .body(Full::new(Bytes::copy_from_slice(body)))
        .expect("the backend's headers are valid")
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}
