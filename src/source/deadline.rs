//! A loopback HTTP proxy that bounds one git fetch in time.
//!
//! libgit2 has no overall timeout (its socket options are process-global, and reaching them needs `unsafe`), so a
//! remote that accepts the connection and then sends nothing, or a byte now and then, would hold a fetch, and with
//! it the reconciler's pass, for ever. `http://` fetches are therefore sent through this relay (`source::git` does
//! not relay `https://` ones: libgit2 hangs in its TLS teardown when it refuses a certificate through a proxy). It
//! can carry https as libgit2's proxy (`CONNECT host:443`, TLS stays end to end); plain http, which libgit2 never sends
//! through a proxy, by fetching from the relay's own address, the relay forwarding to the remote and restoring the
//! remote's name in the `Host` header. In: the time allowed and the remote's URL. Out: the URL and proxy for
//! libgit2 and, once the fetch returns, whether the deadline cut it. At the deadline every connection through the
//! relay is shut down, so libgit2's pending read fails at once.

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream, ToSocketAddrs};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread;
use std::time::{Duration, Instant};

/// The longest request head (request line and headers) the relay reads from libgit2.
const MAX_HEAD: usize = 64 * 1024;

/// The relay for one fetch; dropping it closes every connection it carries.
pub struct Deadline {
    addr: SocketAddr,
    shared: Arc<Shared>,
    /// For an `http://` remote: the URL libgit2 fetches from instead (the relay's address).
    http_url: Option<String>,
}

/// Where a plain-http relay forwards to, and the `Host` header it restores.
#[derive(Clone)]
struct Reverse {
    authority: String,
    relay_host: Vec<u8>,
    remote_host: Vec<u8>,
}

#[derive(Default)]
struct Shared {
    state: Mutex<State>,
    wake: Condvar,
}

#[derive(Default)]
struct State {
    /// The fetch returned, or the deadline passed: no connection is carried any more.
    closed: bool,
    expired: bool,
    /// A handle on every socket the relay holds, to shut them down at the deadline.
    sockets: Vec<TcpStream>,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        // The state stays consistent whatever a panicking holder was doing: flags and a list of handles.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Keeps a handle on `socket`; `false` (and the socket shut down) once the relay is closed.
    fn register(&self, socket: &TcpStream) -> bool {
        let mut state = self.lock();
        match socket.try_clone() {
            Ok(handle) if !state.closed => {
                state.sockets.push(handle);
                true
            }
            _ => {
                let _ = socket.shutdown(Shutdown::Both);
                false
            }
        }
    }

    /// Closes the relay: shuts every socket down and wakes the accept loop.
    fn close(&self, addr: SocketAddr, expired: bool) {
        let sockets = {
            let mut state = self.lock();
            if state.closed {
                return;
            }
            state.closed = true;
            state.expired = expired;
            std::mem::take(&mut state.sockets)
        };
        for socket in sockets {
            let _ = socket.shutdown(Shutdown::Both);
        }
        self.wake.notify_all();
        // The accept loop blocks in accept(): one connection wakes it to see the relay closed.
        let _ = TcpStream::connect_timeout(&addr, Duration::from_secs(1));
    }
}

impl Deadline {
    /// Starts a relay on a loopback port that carries connections to `url`'s server for at most `timeout`.
    pub fn start(url: &str, timeout: Duration) -> std::io::Result<Self> {
        let deadline = Instant::now() + timeout;
        let listener = TcpListener::bind(("127.0.0.1", 0))?;
        let addr = listener.local_addr()?;
        let (reverse, http_url) = match url.strip_prefix("http://") {
            Some(rest) => {
                let (host, path) = rest.split_once('/').unwrap_or((rest, ""));
                let host = host.rsplit('@').next().unwrap_or(host);
                let authority = if host.contains(':') {
                    host.to_string()
                } else {
                    format!("{host}:80")
                };
                let reverse = Reverse {
                    authority,
                    relay_host: format!("\r\nHost: {addr}\r\n").into_bytes(),
                    remote_host: format!("\r\nHost: {host}\r\n").into_bytes(),
                };
                (Some(reverse), Some(format!("http://{addr}/{path}")))
            }
            None => (None, None),
        };
        let shared = Arc::new(Shared::default());
        let watchdog = Arc::clone(&shared);
        thread::Builder::new()
            .name("git-deadline".into())
            .spawn(move || {
                let mut state = watchdog.lock();
                loop {
                    if state.closed {
                        return;
                    }
                    let now = Instant::now();
                    if now >= deadline {
                        break;
                    }
                    state = watchdog
                        .wake
                        .wait_timeout(state, deadline - now)
                        .unwrap_or_else(PoisonError::into_inner)
                        .0;
                }
                drop(state);
                watchdog.close(addr, true);
            })?;
        let acceptor = Arc::clone(&shared);
        thread::Builder::new()
            .name("git-relay".into())
            .spawn(move || {
                for client in listener.incoming() {
                    let Ok(client) = client else { continue };
                    if !acceptor.register(&client) {
                        return;
                    }
                    let shared = Arc::clone(&acceptor);
                    let reverse = reverse.clone();
                    let _ = thread::Builder::new()
                        .name("git-relay-conn".into())
                        .spawn(move || match reverse {
                            Some(reverse) => forward(client, &shared, deadline, &reverse),
                            None => relay(client, &shared, deadline),
                        });
                }
            })?;
        Ok(Deadline {
            addr,
            shared,
            http_url,
        })
    }

    /// The URL libgit2 fetches from: the relay's for an `http://` remote, else the remote's own.
    pub fn fetch_url<'u>(&'u self, url: &'u str) -> &'u str {
        self.http_url.as_deref().unwrap_or(url)
    }

    /// The proxy URL to give libgit2 for an `https://` remote.
    pub fn proxy_url(&self) -> Option<String> {
        self.http_url
            .is_none()
            .then(|| format!("http://{}", self.addr))
    }

    /// Whether the deadline passed while the relay was open (the fetch was cut, not refused by the remote).
    pub fn expired(&self) -> bool {
        self.shared.lock().expired
    }
}

impl Drop for Deadline {
    fn drop(&mut self) {
        self.shared.close(self.addr, false);
    }
}

/// Carries one proxy connection from libgit2 to the remote, until either side closes or the relay does.
fn relay(mut client: TcpStream, shared: &Shared, deadline: Instant) {
    let Some((head, rest)) = read_head(&mut client) else {
        return;
    };
    let text = String::from_utf8_lossy(&head);
    let mut words = text.split_whitespace();
    let (Some(method), Some(target)) = (words.next(), words.next()) else {
        return;
    };
    let connect = method.eq_ignore_ascii_case("CONNECT");
    let authority = if connect {
        target.to_string()
    } else {
        // An absolute-form request: http://host[:port]/path.
        let Some(after) = target.strip_prefix("http://") else {
            let _ = client.write_all(b"HTTP/1.1 400 Bad Request\r\n\r\n");
            return;
        };
        let host = after.split('/').next().unwrap_or_default();
        if host.contains(':') {
            host.to_string()
        } else {
            format!("{host}:80")
        }
    };
    let Some(mut upstream) = connect_upstream(&authority, shared, deadline) else {
        let _ = client.write_all(b"HTTP/1.1 502 Bad Gateway\r\n\r\n");
        return;
    };
    let started = if connect {
        client.write_all(b"HTTP/1.1 200 Connection established\r\n\r\n")
    } else {
        upstream.write_all(&head)
    };
    if started.and_then(|()| upstream.write_all(&rest)).is_err() {
        return;
    }
    let (Ok(mut to_upstream), Ok(mut from_client)) = (upstream.try_clone(), client.try_clone())
    else {
        return;
    };
    let forward = thread::spawn(move || {
        let _ = std::io::copy(&mut from_client, &mut to_upstream);
        let _ = to_upstream.shutdown(Shutdown::Write);
    });
    let _ = std::io::copy(&mut upstream, &mut client);
    let _ = client.shutdown(Shutdown::Write);
    let _ = forward.join();
}

fn connect_upstream(authority: &str, shared: &Shared, deadline: Instant) -> Option<TcpStream> {
    let remaining = deadline.saturating_duration_since(Instant::now());
    let upstream = authority
        .to_socket_addrs()
        .ok()
        .and_then(|mut addrs| addrs.next())
        .filter(|_| !remaining.is_zero())
        .and_then(|addr| TcpStream::connect_timeout(&addr, remaining).ok())?;
    shared.register(&upstream).then_some(upstream)
}

/// Carries one plain-http connection from libgit2 to the remote, with the remote's name in every `Host` header.
fn forward(client: TcpStream, shared: &Shared, deadline: Instant, reverse: &Reverse) {
    let Some(upstream) = connect_upstream(&reverse.authority, shared, deadline) else {
        return;
    };
    let (Ok(mut to_upstream), Ok(mut from_client)) = (upstream.try_clone(), client.try_clone())
    else {
        return;
    };
    let (pattern, replacement) = (reverse.relay_host.clone(), reverse.remote_host.clone());
    let requests = thread::spawn(move || {
        let _ = copy_replacing(&mut from_client, &mut to_upstream, &pattern, &replacement);
        let _ = to_upstream.shutdown(Shutdown::Write);
    });
    let (mut upstream, mut client) = (upstream, client);
    let _ = std::io::copy(&mut upstream, &mut client);
    let _ = client.shutdown(Shutdown::Write);
    let _ = requests.join();
}

/// Copies `from` to `to`, replacing every `pattern` (even one split across reads) with `replacement`.
fn copy_replacing(
    from: &mut impl Read,
    to: &mut impl Write,
    pattern: &[u8],
    replacement: &[u8],
) -> std::io::Result<()> {
    let mut pending: Vec<u8> = Vec::new();
    let mut chunk = [0u8; 16 * 1024];
    loop {
        let read = from.read(&mut chunk)?;
        if read == 0 {
            return to.write_all(&pending);
        }
        pending.extend_from_slice(&chunk[..read]);
        let mut out = Vec::with_capacity(pending.len());
        let mut start = 0;
        while let Some(at) = pending[start..]
            .windows(pattern.len())
            .position(|w| w == pattern)
        {
            out.extend_from_slice(&pending[start..start + at]);
            out.extend_from_slice(replacement);
            start += at + pattern.len();
        }
        // Keep what could be the start of a pattern that the next read completes.
        let keep = (pending.len() - start).min(pattern.len() - 1);
        let flush_to = pending.len() - keep;
        out.extend_from_slice(&pending[start..flush_to]);
        pending.drain(..flush_to);
        to.write_all(&out)?;
    }
}

/// The request head (through the blank line) and any bytes read past it.
fn read_head(client: &mut TcpStream) -> Option<(Vec<u8>, Vec<u8>)> {
    let mut buffer = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let read = client.read(&mut chunk).ok().filter(|&n| n > 0)?;
        buffer.extend_from_slice(&chunk[..read]);
        if let Some(end) = buffer.windows(4).position(|w| w == b"\r\n\r\n") {
            let rest = buffer.split_off(end + 4);
            return Some((buffer, rest));
        }
        if buffer.len() > MAX_HEAD {
            return None;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_headers_are_replaced_even_across_reads() {
        let input = b"GET / HTTP/1.1\r\nHost: 127.0.0.1:9\r\nX: 1\r\n\r\nPOST / HTTP/1.1\r\nHost: 127.0.0.1:9\r\n\r\n";
        for chunk in [1, 3, 7, 1024] {
            let mut from = Chunked(input.chunks(chunk).collect());
            let mut out = Vec::new();
            copy_replacing(
                &mut from,
                &mut out,
                b"\r\nHost: 127.0.0.1:9\r\n",
                b"\r\nHost: git.example\r\n",
            )
            .expect("copies");
            assert_eq!(
                String::from_utf8_lossy(&out),
                "GET / HTTP/1.1\r\nHost: git.example\r\nX: 1\r\n\r\nPOST / HTTP/1.1\r\nHost: git.example\r\n\r\n",
                "chunks of {chunk}"
            );
        }
    }

    /// A reader that returns its chunks one per read.
    struct Chunked<'a>(std::collections::VecDeque<&'a [u8]>);

    impl Read for Chunked<'_> {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            let Some(chunk) = self.0.pop_front() else {
                return Ok(0);
            };
            buf[..chunk.len()].copy_from_slice(chunk);
            Ok(chunk.len())
        }
    }
}
