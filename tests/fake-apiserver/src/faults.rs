//! Fault injection for reliability tests.
//!
//! In: instructions from a test ([`Faults::fail_next`], [`Faults::delay_next`], [`Faults::drop_next`],
//! [`Faults::set_unreachable`]) and every request the server receives, through [`middleware`]. Out: for a
//! request that matches a pending fault, a `metav1.Status` error, a delay before the real answer, or a dropped
//! connection; other requests pass untouched.
//!
//! Each instruction covers the next `n` matching requests and is used up as they arrive. A request consumes at
//! most one pending delay and at most one pending failure or drop (the oldest matching ones), so "delay the next
//! list, fail the next list" delays and then fails the same request.
//!
//! Dropping a connection needs the connection layer's help, since a handler can only return a response. The
//! middleware answers a request to drop with a response that carries the [`DropConnection`] extension and
//! whose body fails on first read. The server's connection loop hands every response to
//! [`connection_outcome`] (or uses [`serve_connection`], which does), which turns the marker into a service
//! error: hyper then closes the connection without writing a byte, exactly what a client sees when a server
//! dies mid-request. A client driving the router in-process (no socket) sees the failing body instead.
//! While [`Faults::is_unreachable`] is true the accept loop must close every new connection at once, and the
//! middleware drops requests arriving on connections that were already open.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use http::{HeaderValue, Method, StatusCode};
use serde_json::json;

/// Shared fault-injection switchboard: clone it into the server's middleware and keep one in the test.
#[derive(Clone, Default)]
pub struct Faults {
    inner: Arc<Mutex<Switchboard>>,
}

impl std::fmt::Debug for Faults {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let state = self.lock();
        f.debug_struct("Faults")
            .field("pending", &state.pending.len())
            .field("unreachable", &state.unreachable)
            .finish()
    }
}

#[derive(Default)]
struct Switchboard {
    pending: VecDeque<Pending>,
    unreachable: bool,
}

struct Pending {
    remaining: usize,
    matcher: FaultMatch,
    action: Action,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Action {
    Fail(u16),
    Delay(Duration),
    Drop,
}

impl Action {
    fn is_delay(self) -> bool {
        matches!(self, Action::Delay(_))
    }
}

/// Which requests a fault applies to; `None` matches anything.
#[derive(Clone, Debug, Default)]
pub struct FaultMatch {
    /// `get`, `list`, `watch`, `create`, `update`, `patch`, `delete` or `deletecollection`; for non-resource
    /// paths (`/version`, discovery, OpenAPI) the lower-case HTTP method.
    pub verb: Option<String>,
    /// The plural resource (`configmaps`, `deployments`), which also matches its subresources, or
    /// `plural/subresource` (`deployments/scale`) for one subresource only.
    pub resource: Option<String>,
}

impl FaultMatch {
    /// Matches every request.
    pub fn any() -> Self {
        Self::default()
    }

    /// Matches one verb on any resource.
    pub fn verb(verb: &str) -> Self {
        Self {
            verb: Some(verb.to_string()),
            resource: None,
        }
    }

    /// Matches any verb on one resource.
    pub fn resource(resource: &str) -> Self {
        Self {
            verb: None,
            resource: Some(resource.to_string()),
        }
    }

    /// Matches one verb on one resource.
    pub fn verb_resource(verb: &str, resource: &str) -> Self {
        Self {
            verb: Some(verb.to_string()),
            resource: Some(resource.to_string()),
        }
    }

    fn matches(&self, class: &RequestClass) -> bool {
        let verb_ok = self
            .verb
            .as_deref()
            .is_none_or(|verb| verb.eq_ignore_ascii_case(&class.verb));
        let resource_ok = self.resource.as_deref().is_none_or(|wanted| {
            let Some(resource) = class.resource.as_deref() else {
                return false;
            };
            match wanted.split_once('/') {
                Some((plural, sub)) => {
                    plural == resource && class.sub_resource.as_deref() == Some(sub)
                }
                None => wanted == resource,
            }
        });
        verb_ok && resource_ok
    }
}

impl Faults {
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> MutexGuard<'_, Switchboard> {
        // The state stays consistent across a panic (every update is a single push/decrement), so a poisoned
        // lock is still usable.
        self.inner
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn push(&self, n: usize, matcher: FaultMatch, action: Action) {
        if n == 0 {
            return;
        }
        self.lock().pending.push_back(Pending {
            remaining: n,
            matcher,
            action,
        });
    }

    /// The next `n` matching requests are answered with a `metav1.Status` of that code (429 and 503 with
    /// `Retry-After: 1`, as the apiserver sends them).
    pub fn fail_next(&self, n: usize, m: FaultMatch, status: u16) {
        self.push(n, m, Action::Fail(status));
    }

    /// The next `n` matching requests are held for `delay` before being served normally.
    pub fn delay_next(&self, n: usize, m: FaultMatch, delay: Duration) {
        self.push(n, m, Action::Delay(delay));
    }

    /// The next `n` matching requests get no response: their connection is closed.
    pub fn drop_next(&self, n: usize, m: FaultMatch) {
        self.push(n, m, Action::Drop);
    }

    /// While true, every connection is refused (closed at once) and every request on an open one dropped.
    pub fn set_unreachable(&self, unreachable: bool) {
        self.lock().unreachable = unreachable;
    }

    pub fn is_unreachable(&self) -> bool {
        self.lock().unreachable
    }

    /// Forgets every pending fault and makes the server reachable.
    pub fn clear(&self) {
        let mut state = self.lock();
        state.pending.clear();
        state.unreachable = false;
    }

    /// How many injected faults are still waiting for requests (a test can await this reaching zero).
    pub fn pending(&self) -> usize {
        self.lock().pending.iter().map(|p| p.remaining).sum()
    }

    /// Consumes the faults this request triggers: at most one delay and at most one fail/drop.
    fn take(&self, class: &RequestClass) -> (Option<Duration>, Option<Action>) {
        let mut state = self.lock();
        let mut delay = None;
        let mut outcome = None;
        for pending in state.pending.iter_mut() {
            if pending.remaining == 0 || !pending.matcher.matches(class) {
                continue;
            }
            let slot_free = if pending.action.is_delay() {
                delay.is_none()
            } else {
                outcome.is_none()
            };
            if !slot_free {
                continue;
            }
            pending.remaining -= 1;
            match pending.action {
                Action::Delay(d) => delay = Some(d),
                other => outcome = Some(other),
            }
            if delay.is_some() && outcome.is_some() {
                break;
            }
        }
        state.pending.retain(|p| p.remaining > 0);
        (delay, outcome)
    }
}

/// A request as fault matching sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RequestClass {
    /// Kubernetes verb (`get`, `list`, `watch`, `create`, `update`, `patch`, `delete`, `deletecollection`), or the
    /// lower-case HTTP method for non-resource paths.
    pub verb: String,
    /// Plural resource; None for non-resource paths.
    pub resource: Option<String>,
    pub sub_resource: Option<String>,
    pub namespace: Option<String>,
    pub name: Option<String>,
}

/// Classifies a request the way the apiserver's `RequestInfoFactory` does, from method, path and query.
pub fn classify(method: &Method, path: &str, query: Option<&str>) -> RequestClass {
    let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    let rest: &[&str] = match segments.as_slice() {
        ["api", _version, rest @ ..] => rest,
        ["apis", _group, _version, rest @ ..] => rest,
        _ => &[],
    };
    let non_resource = || RequestClass {
        verb: method.as_str().to_ascii_lowercase(),
        resource: None,
        sub_resource: None,
        namespace: None,
        name: None,
    };
    if rest.is_empty() {
        return non_resource();
    }
    let (legacy_watch, rest) = match rest {
        ["watch", rest @ ..] if !rest.is_empty() => (true, rest),
        _ => (false, rest),
    };
    let mut namespace = None;
    let rest = match rest {
        // `/namespaces/{name}[/status|/finalize]` is the Namespace object itself.
        ["namespaces", ns, tail @ ..]
            if !tail.is_empty() && !matches!(tail[0], "status" | "finalize") =>
        {
            namespace = Some((*ns).to_string());
            tail
        }
        other => other,
    };
    let resource = rest[0].to_string();
    let name = rest.get(1).map(|s| (*s).to_string());
    let sub_resource = rest.get(2).map(|s| (*s).to_string());
    if resource == "namespaces" && namespace.is_none() {
        namespace = name.clone();
    }
    let watch_param = query.unwrap_or_default().split('&').any(|pair| {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        key == "watch" && matches!(value, "true" | "1")
    });
    let verb = if legacy_watch || (watch_param && matches!(*method, Method::GET)) {
        "watch"
    } else {
        match *method {
            Method::GET | Method::HEAD if name.is_some() => "get",
            Method::GET | Method::HEAD => "list",
            Method::POST => "create",
            Method::PUT => "update",
            Method::PATCH => "patch",
            Method::DELETE if name.is_some() => "delete",
            Method::DELETE => "deletecollection",
            _ => return non_resource(),
        }
    };
    RequestClass {
        verb: verb.to_string(),
        resource: Some(resource),
        sub_resource,
        namespace,
        name,
    }
}

/// Response extension asking the connection layer to close the connection instead of answering.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DropConnection;

/// Returned by [`connection_outcome`] for a response that must not be sent; hyper closes the connection when a
/// service fails.
#[derive(Debug, thiserror::Error)]
#[error("connection dropped by fault injection")]
pub struct ConnectionDropped;

/// Turns a response marked with [`DropConnection`] into an error, for the connection loop's hyper service.
pub fn connection_outcome(response: Response) -> Result<Response, ConnectionDropped> {
    if response.extensions().get::<DropConnection>().is_some() {
        Err(ConnectionDropped)
    } else {
        Ok(response)
    }
}

/// Serves one accepted connection (plain TCP or TLS stream) with `router` over HTTP/1.1, honouring
/// [`DropConnection`]. Returns when the client or a dropped request closes the connection.
pub async fn serve_connection<I>(io: I, router: axum::Router) -> Result<(), hyper::Error>
where
    I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    use tower::ServiceExt as _;
    let service =
        hyper::service::service_fn(move |request: http::Request<hyper::body::Incoming>| {
            let router = router.clone();
            async move {
                let response = match router.oneshot(request.map(Body::new)).await {
                    Ok(response) => response,
                    Err(never) => match never {},
                };
                connection_outcome(response)
            }
        });
    hyper::server::conn::http1::Builder::new()
        .serve_connection(hyper_util::rt::TokioIo::new(io), service)
        .with_upgrades()
        .await
}

fn dropped_response() -> Response {
    let body = Body::from_stream(futures::stream::once(async {
        Err::<Bytes, std::io::Error>(std::io::Error::new(
            std::io::ErrorKind::ConnectionReset,
            "connection dropped by fault injection",
        ))
    }));
    let mut response = Response::new(body);
    response.extensions_mut().insert(DropConnection);
    response
}

/// The reason and message the apiserver uses for a status code.
fn status_words(code: u16) -> (&'static str, &'static str) {
    match code {
        400 => (
            "BadRequest",
            "the server rejected our request for an unknown reason",
        ),
        401 => (
            "Unauthorized",
            "the server has asked for the client to provide credentials",
        ),
        403 => (
            "Forbidden",
            "the server does not allow access to the requested resource",
        ),
        404 => (
            "NotFound",
            "the server could not find the requested resource",
        ),
        405 => (
            "MethodNotAllowed",
            "the server does not allow this method on the requested resource",
        ),
        409 => ("Conflict", "the server reported a conflict"),
        410 => ("Expired", "the resource version requested is too old"),
        415 => (
            "UnsupportedMediaType",
            "the server does not support the media type sent",
        ),
        422 => (
            "Invalid",
            "the server rejected our request due to an error in our request",
        ),
        429 => (
            "TooManyRequests",
            "the server has received too many requests and has asked us to try again later",
        ),
        500 => (
            "InternalError",
            "an error on the server has prevented the request from succeeding",
        ),
        503 => (
            "ServiceUnavailable",
            "the server is currently unable to handle the request",
        ),
        504 => (
            "Timeout",
            "the server was unable to return a response in the time allotted, but may still be processing the request",
        ),
        _ => ("", "the server responded with an injected error"),
    }
}

fn failure_response(code: u16, class: &RequestClass) -> Response {
    let status = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let (reason, words) = status_words(status.as_u16());
    let target = match &class.resource {
        Some(resource) => format!("{} {resource}", class.verb),
        None => class.verb.clone(),
    };
    let mut body = json!({
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": format!("{words} (injected fault on {target})"),
        "code": status.as_u16(),
    });
    if !reason.is_empty() {
        body["reason"] = json!(reason);
    }
    let retry = matches!(status.as_u16(), 429 | 503);
    if retry {
        body["details"] = json!({"retryAfterSeconds": 1});
    }
    let mut response = (status, axum::Json(body)).into_response();
    if retry {
        response
            .headers_mut()
            .insert(http::header::RETRY_AFTER, HeaderValue::from_static("1"));
    }
    response
}

/// axum middleware applying the faults (`axum::middleware::from_fn_with_state(faults, faults::middleware)`).
/// It classifies the request's verb/resource itself from method + path + query (watch=true ⇒ watch, etc.).
pub async fn middleware(State(faults): State<Faults>, req: Request, next: Next) -> Response {
    if faults.is_unreachable() {
        return dropped_response();
    }
    let class = classify(req.method(), req.uri().path(), req.uri().query());
    let (delay, outcome) = faults.take(&class);
    if let Some(delay) = delay {
        tokio::time::sleep(delay).await;
    }
    match outcome {
        Some(Action::Fail(code)) => failure_response(code, &class),
        Some(Action::Drop) => dropped_response(),
        Some(Action::Delay(_)) | None => next.run(req).await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::Router;
    use axum::routing::any;
    use http_body_util::BodyExt as _;
    use tower::ServiceExt as _;

    fn router(faults: &Faults) -> Router {
        Router::new().fallback(any(|| async { "served" })).layer(
            axum::middleware::from_fn_with_state(faults.clone(), middleware),
        )
    }

    async fn send(router: &Router, method: Method, uri: &str) -> Response {
        let request = http::Request::builder()
            .method(method)
            .uri(uri)
            .body(Body::empty())
            .expect("valid request");
        match router.clone().oneshot(request).await {
            Ok(response) => response,
            Err(never) => match never {},
        }
    }

    async fn body_text(response: Response) -> Result<String, String> {
        let bytes = response
            .into_body()
            .collect()
            .await
            .map_err(|e| e.to_string())?
            .to_bytes();
        Ok(String::from_utf8_lossy(&bytes).into_owned())
    }

    #[test]
    fn requests_are_classified_like_request_info() {
        let get = Method::GET;
        let cases = [
            (
                &get,
                "/api/v1/namespaces/default/configmaps",
                None,
                "list",
                Some("configmaps"),
                None,
                Some("default"),
                None,
            ),
            (
                &get,
                "/api/v1/namespaces/default/configmaps/a",
                None,
                "get",
                Some("configmaps"),
                None,
                Some("default"),
                Some("a"),
            ),
            (
                &get,
                "/api/v1/namespaces/default/configmaps",
                Some("watch=true&resourceVersion=5"),
                "watch",
                Some("configmaps"),
                None,
                Some("default"),
                None,
            ),
            (
                &get,
                "/api/v1/watch/namespaces/default/configmaps",
                None,
                "watch",
                Some("configmaps"),
                None,
                Some("default"),
                None,
            ),
            (
                &get,
                "/apis/apps/v1/deployments",
                Some("watch=1"),
                "watch",
                Some("deployments"),
                None,
                None,
                None,
            ),
            (
                &get,
                "/apis/apps/v1/deployments",
                Some("watch=false"),
                "list",
                Some("deployments"),
                None,
                None,
                None,
            ),
            (
                &Method::PUT,
                "/apis/apps/v1/namespaces/x/deployments/web/scale",
                None,
                "update",
                Some("deployments"),
                Some("scale"),
                Some("x"),
                Some("web"),
            ),
            (
                &Method::PATCH,
                "/apis/apps/v1/namespaces/x/deployments/web/status",
                None,
                "patch",
                Some("deployments"),
                Some("status"),
                Some("x"),
                Some("web"),
            ),
            (
                &Method::POST,
                "/apis/stork.libopenstorage.org/v1alpha1/namespaces/x/migrations",
                None,
                "create",
                Some("migrations"),
                None,
                Some("x"),
                None,
            ),
            (
                &Method::DELETE,
                "/api/v1/namespaces/x/secrets/s",
                None,
                "delete",
                Some("secrets"),
                None,
                Some("x"),
                Some("s"),
            ),
            (
                &Method::DELETE,
                "/api/v1/namespaces/x/secrets",
                None,
                "deletecollection",
                Some("secrets"),
                None,
                Some("x"),
                None,
            ),
            (
                &get,
                "/api/v1/namespaces",
                None,
                "list",
                Some("namespaces"),
                None,
                None,
                None,
            ),
            (
                &get,
                "/api/v1/namespaces/team",
                None,
                "get",
                Some("namespaces"),
                None,
                Some("team"),
                Some("team"),
            ),
            (
                &Method::PUT,
                "/api/v1/namespaces/team/finalize",
                None,
                "update",
                Some("namespaces"),
                Some("finalize"),
                Some("team"),
                Some("team"),
            ),
            (
                &get,
                "/apis/storage.k8s.io/v1/storageclasses/fast",
                None,
                "get",
                Some("storageclasses"),
                None,
                None,
                Some("fast"),
            ),
            (&get, "/version", None, "get", None, None, None, None),
            (&get, "/apis", None, "get", None, None, None, None),
            (&get, "/apis/apps/v1", None, "get", None, None, None, None),
            (
                &get,
                "/openapi/v3/apis/apps/v1",
                Some("hash=1"),
                "get",
                None,
                None,
                None,
                None,
            ),
        ];
        for (method, path, query, verb, resource, sub, namespace, name) in cases {
            let class = classify(method, path, query);
            let expected = RequestClass {
                verb: verb.to_string(),
                resource: resource.map(str::to_string),
                sub_resource: sub.map(str::to_string),
                namespace: namespace.map(str::to_string),
                name: name.map(str::to_string),
            };
            assert_eq!(class, expected, "{method} {path}?{query:?}");
        }
    }

    #[tokio::test]
    async fn fail_next_answers_a_status_for_matching_requests_only() {
        let faults = Faults::new();
        let app = router(&faults);
        faults.fail_next(2, FaultMatch::verb_resource("list", "configmaps"), 503);
        let other = send(&app, Method::GET, "/api/v1/namespaces/d/secrets").await;
        assert_eq!(other.status(), StatusCode::OK);
        let get = send(&app, Method::GET, "/api/v1/namespaces/d/configmaps/a").await;
        assert_eq!(get.status(), StatusCode::OK);
        for _ in 0..2 {
            let failed = send(&app, Method::GET, "/api/v1/namespaces/d/configmaps").await;
            assert_eq!(failed.status(), StatusCode::SERVICE_UNAVAILABLE);
            assert_eq!(failed.headers()[http::header::RETRY_AFTER], "1");
            let status: serde_json::Value =
                serde_json::from_str(&body_text(failed).await.expect("status body"))
                    .expect("status is JSON");
            assert_eq!(status["kind"], "Status");
            assert_eq!(status["code"], 503);
            assert_eq!(status["reason"], "ServiceUnavailable");
            assert!(
                status["message"]
                    .as_str()
                    .is_some_and(|m| m.contains("list configmaps"))
            );
        }
        let after = send(&app, Method::GET, "/api/v1/namespaces/d/configmaps").await;
        assert_eq!(after.status(), StatusCode::OK);
        assert_eq!(body_text(after).await.as_deref(), Ok("served"));
        assert_eq!(faults.pending(), 0);
    }

    #[tokio::test]
    async fn subresource_matches_are_exact_and_plural_matches_cover_them() {
        let faults = Faults::new();
        let app = router(&faults);
        faults.fail_next(1, FaultMatch::resource("deployments/scale"), 409);
        let main = send(
            &app,
            Method::PUT,
            "/apis/apps/v1/namespaces/d/deployments/web",
        )
        .await;
        assert_eq!(main.status(), StatusCode::OK);
        let scale = send(
            &app,
            Method::PUT,
            "/apis/apps/v1/namespaces/d/deployments/web/scale",
        )
        .await;
        assert_eq!(scale.status(), StatusCode::CONFLICT);
        faults.fail_next(1, FaultMatch::resource("deployments"), 500);
        let status = send(
            &app,
            Method::PATCH,
            "/apis/apps/v1/namespaces/d/deployments/web/status",
        )
        .await;
        assert_eq!(status.status(), StatusCode::INTERNAL_SERVER_ERROR);
        faults.fail_next(1, FaultMatch::any(), 404);
        let version = send(&app, Method::GET, "/version").await;
        assert_eq!(version.status(), StatusCode::NOT_FOUND);
    }

    #[tokio::test(start_paused = true)]
    async fn delay_holds_the_request_then_serves_it() {
        let faults = Faults::new();
        let app = router(&faults);
        faults.delay_next(1, FaultMatch::verb("get"), Duration::from_secs(5));
        let started = tokio::time::Instant::now();
        let delayed = send(&app, Method::GET, "/api/v1/namespaces/d/configmaps/a").await;
        assert_eq!(delayed.status(), StatusCode::OK);
        // Paused clock: the elapsed time is exactly the virtual time the middleware slept.
        assert!(started.elapsed() >= Duration::from_secs(5));
        let started = tokio::time::Instant::now();
        send(&app, Method::GET, "/api/v1/namespaces/d/configmaps/a").await;
        assert!(started.elapsed() < Duration::from_secs(5));
    }

    #[tokio::test(start_paused = true)]
    async fn a_request_takes_one_delay_and_one_failure() {
        let faults = Faults::new();
        let app = router(&faults);
        faults.delay_next(1, FaultMatch::verb("list"), Duration::from_secs(2));
        faults.fail_next(1, FaultMatch::verb("list"), 429);
        faults.fail_next(1, FaultMatch::verb("list"), 500);
        let started = tokio::time::Instant::now();
        let first = send(&app, Method::GET, "/api/v1/namespaces/d/pods").await;
        assert_eq!(first.status(), StatusCode::TOO_MANY_REQUESTS);
        assert!(started.elapsed() >= Duration::from_secs(2));
        let second = send(&app, Method::GET, "/api/v1/namespaces/d/pods").await;
        assert_eq!(second.status(), StatusCode::INTERNAL_SERVER_ERROR);
        let third = send(&app, Method::GET, "/api/v1/namespaces/d/pods").await;
        assert_eq!(third.status(), StatusCode::OK);
    }

    #[tokio::test]
    async fn dropped_requests_are_marked_and_their_body_fails() {
        let faults = Faults::new();
        let app = router(&faults);
        faults.drop_next(1, FaultMatch::verb("watch"));
        let list = send(&app, Method::GET, "/api/v1/namespaces/d/configmaps").await;
        assert!(connection_outcome(list).is_ok());
        let watch = send(
            &app,
            Method::GET,
            "/api/v1/namespaces/d/configmaps?watch=true",
        )
        .await;
        assert_eq!(
            watch.extensions().get::<DropConnection>(),
            Some(&DropConnection)
        );
        assert!(body_text(watch).await.is_err());
        let watch = send(
            &app,
            Method::GET,
            "/api/v1/namespaces/d/configmaps?watch=true",
        )
        .await;
        assert!(connection_outcome(watch).is_ok());
    }

    #[tokio::test]
    async fn unreachable_drops_everything_until_cleared() {
        let faults = Faults::new();
        let app = router(&faults);
        faults.set_unreachable(true);
        assert!(faults.is_unreachable());
        let response = send(&app, Method::GET, "/version").await;
        assert!(connection_outcome(response).is_err());
        faults.fail_next(3, FaultMatch::any(), 500);
        faults.clear();
        assert!(!faults.is_unreachable());
        assert_eq!(faults.pending(), 0);
        let response = send(&app, Method::GET, "/version").await;
        assert_eq!(response.status(), StatusCode::OK);
    }

    #[test]
    fn zero_count_faults_are_not_recorded() {
        let faults = Faults::new();
        faults.fail_next(0, FaultMatch::any(), 500);
        faults.drop_next(0, FaultMatch::any());
        assert_eq!(faults.pending(), 0);
    }
}
