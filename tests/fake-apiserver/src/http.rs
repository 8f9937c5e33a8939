//! HTTP framing: parses method, path, query, headers and body into REST calls, and answers with JSON,
//! `metav1.Status` errors, `Warning` headers, and negotiated discovery/metadata formats.
//!
//! In: HTTP requests. Out: HTTP responses. The axum [`router`] is also usable in-process as a tower service.

use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::response::Response;
use http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use serde_json::{Value, json};

use crate::admit::User;
use crate::api::{Op, Reply, Shared, WriteOpts};
use crate::discovery::{self, Format};
use crate::openapi;
use crate::query::Query;
use crate::resources::ResourceType;
use crate::selectors::{FieldSelector, LabelSelector};
use crate::status::ApiError;
use crate::watch::{WatchParams, partial_metadata, watch};

/// Largest request body accepted (the real apiserver's limit is 3 MiB).
const MAX_BODY: usize = 3 * 1024 * 1024;

/// The router serving the whole API.
/// Requests pass the fault-injection middleware first, as if faults happened on the way to the server.
pub fn router(server: Shared) -> Router {
    let faults = server.faults.clone();
    Router::new()
        .fallback(handle)
        .with_state(server)
        .layer(axum::middleware::from_fn_with_state(
            faults,
            crate::faults::middleware,
        ))
}

fn json_response(code: u16, body: &Value, content_type: &str) -> Response {
    let mut resp = Response::new(Body::from(body.to_string()));
    *resp.status_mut() = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    if let Ok(v) = HeaderValue::from_str(content_type) {
        resp.headers_mut().insert(header::CONTENT_TYPE, v);
    }
    resp
}

/// The answer for an API error.
pub fn error_response(e: &ApiError) -> Response {
    let mut resp = json_response(e.code, &e.to_status(), "application/json");
    for w in &e.warnings {
        if let Some(v) = crate::admission::warning_header(w) {
            resp.headers_mut().append(header::WARNING, v);
        }
    }
    resp
}

fn reply_response(r: Reply, accept: &str) -> Response {
    let body = if wants_partial(accept) {
        to_partial(r.body)
    } else {
        r.body
    };
    let mut resp = json_response(r.code, &body, "application/json");
    for w in r.warnings {
        if let Some(v) = crate::admission::warning_header(&w) {
            resp.headers_mut().append(header::WARNING, v);
        }
    }
    resp
}

fn wants_partial(accept: &str) -> bool {
    accept
        .split(',')
        .next()
        .is_some_and(|first| first.contains("as=PartialObjectMetadata"))
}

fn to_partial(body: Value) -> Value {
    if body
        .get("kind")
        .and_then(Value::as_str)
        .is_some_and(|k| k.ends_with("List"))
        && body.get("items").is_some()
    {
        let items: Vec<Value> = body["items"]
            .as_array()
            .map(|a| a.iter().map(partial_metadata).collect())
            .unwrap_or_default();
        json!({"kind": "PartialObjectMetadataList", "apiVersion": "meta.k8s.io/v1",
            "metadata": body.get("metadata").cloned().unwrap_or(json!({})), "items": items})
    } else if body.get("kind").and_then(Value::as_str) == Some("Status") {
        body
    } else {
        partial_metadata(&body)
    }
}

fn header_str(h: &HeaderMap, name: header::HeaderName) -> &str {
    h.get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
}

async fn handle(State(server): State<Shared>, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    let path = parts.uri.path().to_string();
    let query = Query::parse(parts.uri.query());
    let accept = header_str(&parts.headers, header::ACCEPT).to_string();
    let bytes = match axum::body::to_bytes(body, MAX_BODY).await {
        Ok(b) => b,
        Err(e) => {
            return error_response(&ApiError::new(
                413,
                "RequestEntityTooLarge",
                format!("reading the request body: {e}"),
            ));
        }
    };
    let content_type = header_str(&parts.headers, header::CONTENT_TYPE);
    let bytes = if content_type.starts_with("application/vnd.kubernetes.protobuf") {
        match crate::protobuf::decode(&bytes) {
            Ok(obj) => axum::body::Bytes::from(obj.to_string()),
            Err(e) => return error_response(&ApiError::unsupported_media(e.to_string())),
        }
    } else if content_type.starts_with("application/cbor") {
        return error_response(&ApiError::unsupported_media(format!(
            "the body of the request was in an unknown format - accepted media types include: application/json, application/yaml; got {content_type}"
        )));
    } else {
        bytes
    };
    match route(
        &server,
        &parts.method,
        &path,
        &query,
        &parts.headers,
        &bytes,
    )
    .await
    {
        Ok(Routed::Reply(r)) => reply_response(r, &accept),
        Ok(Routed::Raw(resp)) => resp,
        Err(e) => error_response(&e),
    }
}

enum Routed {
    Reply(Reply),
    Raw(Response),
}

fn discovery_reply(doc: Option<Value>, path: &str) -> Result<Routed, ApiError> {
    doc.map(|d| Routed::Raw(json_response(200, &d, "application/json")))
        .ok_or_else(|| ApiError::no_route(path))
}

/// Where a resource path points.
struct Target {
    rt: ResourceType,
    namespace: Option<String>,
    name: Option<String>,
    sub: Option<String>,
}

fn parse_target(
    server: &Shared,
    group: &str,
    version: &str,
    rest: &[&str],
    path: &str,
) -> Result<Target, ApiError> {
    let (namespace, plural, name, sub) = match rest {
        ["namespaces", ns, "status" | "finalize"] if group.is_empty() => (
            None,
            "namespaces",
            Some(ns.to_string()),
            Some(rest[2].to_string()),
        ),
        ["namespaces", ns, plural, tail @ ..] => (
            Some(ns.to_string()),
            *plural,
            tail.first().map(|s| s.to_string()),
            tail.get(1).map(|s| s.to_string()),
        ),
        [plural, tail @ ..] => (
            None,
            *plural,
            tail.first().map(|s| s.to_string()),
            tail.get(1).map(|s| s.to_string()),
        ),
        [] => return Err(ApiError::no_route(path)),
    };
    let rt = server
        .store
        .lock()
        .lookup(group, version, plural)
        .ok_or_else(|| ApiError::no_route(path))?;
    if namespace.is_some() && !rt.namespaced {
        return Err(ApiError::no_route(path));
    }
    match sub.as_deref() {
        None => {}
        Some("status") if rt.status => {}
        Some("scale") if rt.scale.is_some() => {}
        Some(_) => return Err(ApiError::no_route(path)),
    }
    Ok(Target {
        rt,
        namespace,
        name,
        sub,
    })
}

fn write_opts(query: &Query, headers: &HeaderMap, body_dry_run: bool) -> WriteOpts {
    let explicit = query.non_empty("fieldManager").map(str::to_string);
    let ua = header_str(headers, header::USER_AGENT);
    let ua_manager = ua.split('/').next().unwrap_or_default().trim().to_string();
    let manager = explicit.clone().unwrap_or_else(|| {
        if ua_manager.is_empty() {
            "unknown".to_string()
        } else {
            ua_manager
        }
    });
    let mut user = User::default();
    if let Some(u) = headers
        .get("Impersonate-User")
        .and_then(|v| v.to_str().ok())
    {
        user.username = u.to_string();
        user.groups = headers
            .get_all("Impersonate-Group")
            .iter()
            .filter_map(|v| v.to_str().ok().map(str::to_string))
            .chain(std::iter::once("system:authenticated".to_string()))
            .collect();
    }
    WriteOpts {
        dry_run: query.get("dryRun") == Some("All") || body_dry_run,
        manager,
        explicit_manager: explicit.is_some(),
        force: query.flag("force"),
        field_validation: query.non_empty("fieldValidation").map(str::to_string),
        user,
    }
}

fn selectors(rt: &ResourceType, query: &Query) -> Result<(LabelSelector, FieldSelector), ApiError> {
    let labels = LabelSelector::parse(query.get("labelSelector").unwrap_or_default())
        .map_err(|e| ApiError::bad_request(e.to_string()))?;
    let fields = FieldSelector::parse(
        query.get("fieldSelector").unwrap_or_default(),
        &rt.selectable_fields,
    )
    .map_err(|e| ApiError::bad_request(e.to_string()))?;
    Ok((labels, fields))
}

fn parse_body(bytes: &[u8]) -> Result<Value, ApiError> {
    if bytes.is_empty() {
        return Ok(json!({}));
    }
    serde_json::from_slice(bytes)
        .or_else(|_| serde_yaml::from_slice(bytes))
        .map_err(|e| {
            ApiError::bad_request(format!("the body of the request could not be decoded: {e}"))
        })
}

async fn route(
    server: &Shared,
    method: &Method,
    path: &str,
    query: &Query,
    headers: &HeaderMap,
    bytes: &[u8],
) -> Result<Routed, ApiError> {
    let accept = header_str(headers, header::ACCEPT);
    let segs: Vec<&str> = path
        .trim_matches('/')
        .split('/')
        .filter(|s| !s.is_empty())
        .collect();
    let types = || server.store.lock().types.clone();
    match segs.as_slice() {
        ["version"] => return discovery_reply(Some(discovery::version()), path),
        ["healthz" | "livez" | "readyz", ..] => {
            return Ok(Routed::Raw(
                Response::builder()
                    .header(header::CONTENT_TYPE, "text/plain")
                    .body(Body::from("ok"))
                    .unwrap_or_default(),
            ));
        }
        ["api"] | ["apis"] => {
            let format = Format::negotiate(accept);
            let doc = match (format, segs[0]) {
                (Format::Legacy, "api") => discovery::api_versions(),
                (Format::Legacy, _) => discovery::api_group_list(&types()),
                (f, which) => discovery::aggregated(&types(), which == "api", f),
            };
            return Ok(Routed::Raw(json_response(200, &doc, format.content_type())));
        }
        ["api", "v1"] => {
            return discovery_reply(discovery::resource_list(&types(), "", "v1"), path);
        }
        ["apis", group] => return discovery_reply(discovery::api_group_doc(&types(), group), path),
        ["apis", group, version] => {
            return discovery_reply(discovery::resource_list(&types(), group, version), path);
        }
        ["openapi", "v3"] => return discovery_reply(Some(openapi::index(&types())), path),
        ["openapi", "v3", rest @ ..] => {
            return discovery_reply(openapi::document(&types(), &rest.join("/")), path);
        }
        _ => {}
    }
    let target = match segs.as_slice() {
        ["api", "v1", rest @ ..] => parse_target(server, "", "v1", rest, path)?,
        ["apis", group, version, rest @ ..] => parse_target(server, group, version, rest, path)?,
        _ => return Err(ApiError::no_route(path)),
    };
    let rt = &target.rt;
    let ns = target.namespace.as_deref();
    let sub = target.sub.as_deref();
    if rt.namespaced && target.name.is_some() && ns.is_none() {
        return Err(ApiError::no_route(path));
    }
    let ns_or_empty = ns.unwrap_or_default();
    match (method.clone(), target.name.as_deref()) {
        (Method::GET, None) => {
            let (labels, fields) = selectors(rt, query)?;
            if query.flag("watch") {
                let timeout = query
                    .get("timeoutSeconds")
                    .and_then(|t| t.parse::<u64>().ok())
                    .filter(|t| *t > 0)
                    .unwrap_or(1800);
                let params = WatchParams {
                    namespace: ns.map(str::to_string),
                    resource_version: query.get("resourceVersion").map(str::to_string),
                    timeout: Duration::from_secs(timeout),
                    bookmarks: query.flag("allowWatchBookmarks"),
                    send_initial_events: query.flag("sendInitialEvents"),
                    labels,
                    fields,
                    partial: wants_partial(accept),
                    table: crate::table::wants_table(accept),
                };
                let body = watch(server.clone(), rt.clone(), params);
                let resp = Response::builder()
                    .header(header::CONTENT_TYPE, "application/json")
                    .header(header::CACHE_CONTROL, "no-cache, private")
                    .body(body)
                    .map_err(|e| ApiError::internal(e.to_string()))?;
                return Ok(Routed::Raw(resp));
            }
            let limit = query.get("limit").and_then(|l| l.parse::<usize>().ok());
            let list = server.list(rt, ns, &labels, &fields, limit, query.non_empty("continue"))?;
            if crate::table::wants_table(accept) {
                let items = list["items"].as_array().cloned().unwrap_or_default();
                let meta = list.get("metadata").cloned().unwrap_or(json!({}));
                let t = crate::table::table(rt, &items, meta, jiff::Timestamp::now(), true);
                return Ok(Routed::Reply(Reply::ok(t)));
            }
            Ok(Routed::Reply(Reply::ok(list)))
        }
        (Method::GET, Some(name)) => {
            let obj = server.get(rt, ns_or_empty, name, sub)?;
            if sub.is_none() && crate::table::wants_table(accept) {
                let rv = obj
                    .pointer("/metadata/resourceVersion")
                    .cloned()
                    .unwrap_or(json!(""));
                let t = crate::table::table(
                    rt,
                    &[obj],
                    json!({"resourceVersion": rv}),
                    jiff::Timestamp::now(),
                    true,
                );
                return Ok(Routed::Reply(Reply::ok(t)));
            }
            Ok(Routed::Reply(Reply::ok(obj)))
        }
        (Method::POST, None) => {
            let body = parse_body(bytes)?;
            let opts = write_opts(query, headers, false);
            Ok(Routed::Reply(
                server.create(rt, ns, body, &opts, Op::Create).await?,
            ))
        }
        (Method::PUT, Some(name)) => {
            let body = parse_body(bytes)?;
            let opts = write_opts(query, headers, false);
            Ok(Routed::Reply(
                server
                    .replace(rt, ns_or_empty, name, sub, body, &opts)
                    .await?,
            ))
        }
        (Method::PATCH, Some(name)) => {
            let ct = header_str(headers, header::CONTENT_TYPE);
            let opts = write_opts(query, headers, false);
            Ok(Routed::Reply(
                server
                    .patch(rt, ns_or_empty, name, sub, ct, bytes, &opts)
                    .await?,
            ))
        }
        (Method::DELETE, name) => {
            let mut options = parse_body(bytes)?;
            if let Some(p) = query.non_empty("propagationPolicy") {
                options["propagationPolicy"] = json!(p);
            }
            let body_dry = options
                .get("dryRun")
                .and_then(Value::as_array)
                .is_some_and(|a| a.iter().any(|v| v == "All"));
            let opts = write_opts(query, headers, body_dry);
            match name {
                Some(name) if sub.is_none() => Ok(Routed::Reply(
                    server
                        .delete(rt, ns_or_empty, name, &options, &opts)
                        .await?,
                )),
                Some(_) => Err(ApiError::method_not_allowed(format!(
                    "DELETE is not supported on {path}"
                ))),
                None => {
                    let (labels, fields) = selectors(rt, query)?;
                    Ok(Routed::Reply(
                        server
                            .delete_collection(rt, ns, &labels, &fields, &options, &opts)
                            .await?,
                    ))
                }
            }
        }
        (m, _) => Err(ApiError::method_not_allowed(format!(
            "the server does not allow this method on the requested resource ({m} {path})"
        ))),
    }
}
