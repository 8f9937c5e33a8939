//! The REST semantics of the apiserver over the store: create, get, list, update, the four patch types, delete
//! with finalizers and owner-reference garbage collection, `/status` and `/scale`, dry runs, preconditions.
//!
//! In: parsed requests (resource type, namespace, name, body, options). Out: [`Reply`] values or [`ApiError`]s.
//! HTTP framing lives in `http.rs`; watches in `watch.rs`.

use std::sync::Arc;

use serde_json::{Map, Value, json};

use crate::admit;
use crate::defaults;
use crate::resources::{self, ResourceType};
use crate::selectors::{FieldSelector, LabelSelector};
use crate::status::ApiError;
use crate::store::{Page, State, Store, now_rfc3339};

/// A successful answer: HTTP code, JSON body, and admission warnings for `Warning` headers.
#[derive(Debug, Clone)]
pub struct Reply {
    pub code: u16,
    pub body: Value,
    pub warnings: Vec<String>,
}

impl Reply {
    pub fn ok(body: Value) -> Self {
        Reply {
            code: 200,
            body,
            warnings: Vec::new(),
        }
    }
}

/// Options every write carries.
#[derive(Debug, Clone, Default)]
pub struct WriteOpts {
    pub dry_run: bool,
    /// `fieldManager`, or the User-Agent prefix before `/`.
    pub manager: String,
    /// Whether `manager` came from the `fieldManager` parameter (apply requires it).
    pub explicit_manager: bool,
    pub force: bool,
    pub field_validation: Option<String>,
    pub user: crate::admit::User,
}

/// Tries before a write that keeps racing gives up with 409 Conflict.
const WRITE_ATTEMPTS: usize = 8;

/// Runs a write that reads the object, awaits admission, then commits, until its commit does not race with
/// another write (the object changed after it was read): then it starts again from a fresh read, as the
/// apiserver's optimistic `GuaranteedUpdate` does. Gives up with 409 Conflict after [`WRITE_ATTEMPTS`].
async fn retry_races<F, Fut>(
    rt: &ResourceType,
    name: &str,
    mut attempt: F,
) -> Result<Reply, ApiError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<Reply, ApiError>>,
{
    for _ in 0..WRITE_ATTEMPTS {
        match attempt().await {
            Err(e) if e.raced => continue,
            other => return other,
        }
    }
    Err(ApiError::stale(rt, name))
}

/// How a write's managedFields are maintained.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Create,
    Update,
    Apply,
}

/// The shared server: store plus the admission and fault machinery.
#[derive(Debug)]
pub struct Server {
    pub store: Store,
    pub admission: admit::Admitter,
    pub faults: crate::faults::Faults,
}

pub type Shared = Arc<Server>;

fn name_of(obj: &Value) -> &str {
    obj.pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or_default()
}

fn ns_of(obj: &Value) -> &str {
    obj.pointer("/metadata/namespace")
        .and_then(Value::as_str)
        .unwrap_or_default()
}

fn rv_of(obj: &Value) -> &str {
    obj.pointer("/metadata/resourceVersion")
        .and_then(Value::as_str)
        .unwrap_or_default()
}

fn finalizers(obj: &Value) -> Vec<String> {
    obj.pointer("/metadata/finalizers")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|f| f.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

fn meta_mut(obj: &mut Value) -> &mut Map<String, Value> {
    if !obj.is_object() {
        *obj = Value::Object(Map::new());
    }
    let Value::Object(root) = obj else {
        unreachable!("replaced by an object just above")
    };
    let meta = root
        .entry("metadata")
        .or_insert_with(|| Value::Object(Map::new()));
    if !meta.is_object() {
        *meta = Value::Object(Map::new());
    }
    let Value::Object(m) = meta else {
        unreachable!("replaced by an object just above")
    };
    m
}

/// Objects are served in the version of the request: stored in one, `apiVersion` rewritten (conversion
/// strategy `None`, as CRDs without webhooks do).
pub fn in_version(rt: &ResourceType, mut obj: Value) -> Value {
    if rt.group == "events.k8s.io"
        && obj.get("apiVersion").and_then(Value::as_str) != Some("events.k8s.io/v1")
    {
        return crate::convert::core_event_to_events(&obj);
    }
    obj["apiVersion"] = json!(rt.api_version());
    obj["kind"] = json!(rt.kind);
    obj
}

/// The object with spec-like content only: what generation tracks.
fn generation_view(rt: &ResourceType, obj: &Value) -> Value {
    let mut v = obj.clone();
    if let Some(m) = v.as_object_mut() {
        m.remove("metadata");
        m.remove("apiVersion");
        m.remove("kind");
        if rt.status {
            m.remove("status");
        }
    }
    v
}

/// Comparison view for no-op detection: managedFields timestamps and resourceVersion do not count.
fn noop_view(obj: &Value) -> Value {
    let mut v = obj.clone();
    let meta = meta_mut(&mut v);
    meta.remove("resourceVersion");
    if let Some(Value::Array(mf)) = meta.get_mut("managedFields") {
        for e in mf.iter_mut() {
            if let Some(m) = e.as_object_mut() {
                m.remove("time");
            }
        }
    }
    v
}

const GENERATE_ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";

fn generate_suffix() -> String {
    let bytes = uuid::Uuid::new_v4().into_bytes();
    bytes[..5]
        .iter()
        .map(|b| GENERATE_ALPHABET[usize::from(*b) % GENERATE_ALPHABET.len()] as char)
        .collect()
}

/// Reads a JSON path like `.spec.replicas`.
fn at_path<'a>(obj: &'a Value, path: &str) -> Option<&'a Value> {
    let pointer = format!("/{}", path.trim_start_matches('.').replace('.', "/"));
    obj.pointer(&pointer)
}

fn set_path(obj: &mut Value, path: &str, value: Value) {
    let parts: Vec<&str> = path.trim_start_matches('.').split('.').collect();
    let mut cur = obj;
    for (i, p) in parts.iter().enumerate() {
        if !cur.is_object() {
            *cur = json!({});
        }
        let Some(map) = cur.as_object_mut() else {
            return;
        };
        if i == parts.len() - 1 {
            map.insert((*p).to_string(), value);
            return;
        }
        cur = map
            .entry((*p).to_string())
            .or_insert_with(|| Value::Object(Map::new()));
    }
}

/// The `autoscaling/v1 Scale` view of an object.
pub fn scale_of(rt: &ResourceType, obj: &Value) -> Value {
    let Some(paths) = &rt.scale else {
        return Value::Null;
    };
    let spec = at_path(obj, &paths.spec_replicas)
        .cloned()
        .unwrap_or(json!(0));
    let status = at_path(obj, &paths.status_replicas)
        .cloned()
        .unwrap_or(json!(0));
    let selector = paths.label_selector.as_ref().and_then(|p| {
        let v = at_path(obj, p)?;
        if paths.selector_is_label_selector {
            Some(LabelSelector::from_label_selector(v).to_query())
        } else {
            v.as_str().map(str::to_string)
        }
    });
    let m = obj.get("metadata").cloned().unwrap_or(json!({}));
    let mut meta = json!({});
    for k in [
        "name",
        "namespace",
        "uid",
        "resourceVersion",
        "creationTimestamp",
    ] {
        if let Some(v) = m.get(k) {
            meta[k] = v.clone();
        }
    }
    let mut st = json!({"replicas": status});
    if let Some(s) = selector {
        st["selector"] = json!(s);
    }
    json!({"kind": "Scale", "apiVersion": "autoscaling/v1", "metadata": meta,
        "spec": {"replicas": spec}, "status": st})
}

impl Server {
    pub fn new(max_history: usize) -> Self {
        Server {
            store: Store::new(max_history),
            admission: admit::Admitter::new(),
            faults: crate::faults::Faults::default(),
        }
    }

    /// A create needs an existing namespace that is not being deleted (reads do not check).
    fn check_namespace(state: &State, rt: &ResourceType, ns: &str) -> Result<(), ApiError> {
        if !rt.namespaced {
            return Ok(());
        }
        match state.namespace_state(ns) {
            None => Err(ApiError::namespace_not_found(ns)),
            Some(true) => Err(ApiError::new(
                403,
                "Forbidden",
                format!(
                    "{} \"\" is forbidden: unable to create new content in namespace {ns} because it is being terminated",
                    rt.qualified_plural()
                ),
            )
            .with_details(json!({"group": rt.group, "kind": rt.plural, "causes": [{"reason": "NamespaceTerminating", "message": format!("namespace {ns} is being terminated"), "field": "metadata.namespace"}]}))),
            Some(false) => Ok(()),
        }
    }

    /// Checks the body's apiVersion/kind against the URL and fills or checks its namespace.
    fn check_body(rt: &ResourceType, ns: Option<&str>, obj: &mut Value) -> Result<(), ApiError> {
        if !obj.is_object() {
            return Err(ApiError::bad_request(
                "the body of the request must be a JSON object",
            ));
        }
        if let Some(kind) = obj.get("kind").and_then(Value::as_str)
            && kind != rt.kind
        {
            return Err(ApiError::bad_request(format!(
                "the kind of the object ({kind}) does not match the kind of the URL ({})",
                rt.kind
            )));
        }
        if let Some(av) = obj.get("apiVersion").and_then(Value::as_str)
            && av != rt.api_version()
            && !(rt.custom && av.split_once('/').is_some_and(|(g, _)| g == rt.group))
        {
            return Err(ApiError::bad_request(format!(
                "the API version in the data ({av}) does not match the expected API version ({})",
                rt.api_version()
            )));
        }
        let meta = meta_mut(obj);
        if rt.namespaced {
            let url_ns = ns.unwrap_or_default();
            match meta.get("namespace").and_then(Value::as_str) {
                None | Some("") => {
                    meta.insert("namespace".into(), json!(url_ns));
                }
                Some(body_ns) if body_ns != url_ns => {
                    return Err(ApiError::bad_request(
                        "the namespace of the provided object does not match the namespace sent on the request",
                    ));
                }
                Some(_) => {}
            }
        } else {
            meta.remove("namespace");
        }
        obj["apiVersion"] = json!(rt.api_version());
        obj["kind"] = json!(rt.kind);
        Ok(())
    }

    fn invalid(rt: &ResourceType, name: &str, f: defaults::FieldInvalid) -> ApiError {
        ApiError::invalid(rt, name, &f.field, &f.detail, &f.reason)
    }

    /// Prunes fields a custom resource's schema does not declare: an error with `fieldValidation=Strict`,
    /// warnings by default (`Warn`), silently with `Ignore` — as the apiserver does.
    fn prune_unknown(
        rt: &ResourceType,
        obj: &mut Value,
        opts: &WriteOpts,
        warnings: &mut Vec<String>,
    ) -> Result<(), ApiError> {
        let Some(schema) = rt.schema.as_ref().filter(|_| rt.custom) else {
            return Ok(());
        };
        let removed = defaults::prune(schema, obj);
        if removed.is_empty() {
            return Ok(());
        }
        let unknown: Vec<String> = removed
            .iter()
            .map(|p| format!("unknown field \"{p}\""))
            .collect();
        match opts.field_validation.as_deref() {
            Some("Strict") => Err(ApiError::bad_request(format!(
                "strict decoding error: {}",
                unknown.join(", ")
            ))),
            Some("Ignore") => Ok(()),
            _ => {
                warnings.extend(unknown);
                Ok(())
            }
        }
    }

    /// Prepares the CRD status at once (names accepted, established) and validates it.
    fn prepare_special(rt: &ResourceType, obj: &mut Value) -> Result<(), ApiError> {
        if rt.group == "apiextensions.k8s.io" && rt.kind == "CustomResourceDefinition" {
            resources::validate_crd(obj).map_err(|e| {
                let field = e.field().to_string();
                ApiError::invalid(
                    rt,
                    name_of(obj),
                    &field,
                    &e.to_string().replacen(&format!("{field}: "), "", 1),
                    "FieldValueInvalid",
                )
            })?;
            let status = resources::crd_status(obj, &now_rfc3339());
            obj["status"] = status;
        }
        Ok(())
    }

    /// POST: create an object.
    pub async fn create(
        &self,
        rt: &ResourceType,
        ns: Option<&str>,
        mut obj: Value,
        opts: &WriteOpts,
        op: Op,
    ) -> Result<Reply, ApiError> {
        Self::check_body(rt, ns, &mut obj)?;
        let ns = ns_of(&obj).to_string();
        {
            let state = self.store.lock();
            Self::check_namespace(&state, rt, &ns)?;
        }
        let meta = meta_mut(&mut obj);
        for k in [
            "uid",
            "resourceVersion",
            "creationTimestamp",
            "deletionTimestamp",
            "deletionGracePeriodSeconds",
            "generation",
            "selfLink",
        ] {
            meta.remove(k);
        }
        if op != Op::Apply {
            meta.remove("managedFields");
        }
        let unnamed = |meta: &Map<String, Value>, key: &str| {
            meta.get(key)
                .and_then(Value::as_str)
                .unwrap_or_default()
                .is_empty()
        };
        if unnamed(meta, "name") && unnamed(meta, "generateName") {
            return Err(ApiError::invalid(
                rt,
                "",
                "metadata.name",
                "Required value: name or generateName is required",
                "FieldValueRequired",
            ));
        }
        if rt.status
            && rt.kind != "Namespace"
            && rt.kind != "CustomResourceDefinition"
            && let Some(m) = obj.as_object_mut()
        {
            m.remove("status");
        }
        defaults::apply_defaults(rt, &mut obj);
        obj["metadata"]["creationTimestamp"] = Value::Null;
        let mut warnings = Vec::new();
        // Mutating webhooks see no name yet when one is to be generated, as in kube-apiserver.
        let attrs = admit::Request {
            rt: rt.clone(),
            operation: admit::Operation::Create,
            sub_resource: None,
            name: name_of(&obj).to_string(),
            namespace: ns.clone(),
            object: Some(obj.clone()),
            old_object: None,
            dry_run: opts.dry_run,
            options: json!({"kind": "CreateOptions", "apiVersion": "meta.k8s.io/v1", "fieldManager": opts.manager}),
            user: opts.user.clone(),
        };
        let (mutated, w) = self.admission.mutate(&self.store, &attrs).await?;
        warnings.extend(w);
        if let Some(m) = mutated {
            obj = m;
        }
        if name_of(&obj).is_empty() {
            let prefix = obj
                .pointer("/metadata/generateName")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string();
            let state = self.store.lock();
            let generated = loop {
                let candidate = format!("{prefix}{}", generate_suffix());
                if state.get(rt, &ns, &candidate).is_none() {
                    break candidate;
                }
            };
            meta_mut(&mut obj).insert("name".into(), json!(generated));
        }
        let name = name_of(&obj).to_string();
        defaults::apply_defaults(rt, &mut obj);
        Self::prune_unknown(rt, &mut obj, opts, &mut warnings)?;
        defaults::validate(rt, &obj).map_err(|f| Self::invalid(rt, &name, f))?;
        Self::prepare_special(rt, &mut obj)?;
        let meta = meta_mut(&mut obj);
        meta.insert("uid".into(), json!(uuid::Uuid::new_v4().to_string()));
        meta.insert("creationTimestamp".into(), json!(now_rfc3339()));
        if rt.generation {
            meta.insert("generation".into(), json!(1));
        }
        if op != Op::Apply {
            obj = crate::fields::record_update(None, &obj, rt, &opts.manager, None);
        }
        let attrs = admit::Request {
            object: Some(obj.clone()),
            name: name.clone(),
            ..attrs
        };
        let validated = self.admission.validate(&self.store, &attrs).await;
        warnings.extend(validated.map_err(|e| e.with_warnings(&warnings))?);
        let mut state = self.store.lock();
        Self::check_namespace(&state, rt, &ns)?;
        if state.get(rt, &ns, &name).is_some() {
            // An apply that found nothing lost a race with a create: it starts again as an update.
            return Err(if op == Op::Apply {
                ApiError::raced(rt, &name)
            } else {
                ApiError::already_exists(rt, &name)
            });
        }
        if opts.dry_run {
            return Ok(Reply {
                code: 201,
                body: in_version(rt, obj),
                warnings,
            });
        }
        let stored = state.put(rt, obj);
        drop(state);
        self.store.notify();
        Ok(Reply {
            code: 201,
            body: in_version(rt, stored),
            warnings,
        })
    }

    /// GET one object (or its status view, or its Scale).
    pub fn get(
        &self,
        rt: &ResourceType,
        ns: &str,
        name: &str,
        sub: Option<&str>,
    ) -> Result<Value, ApiError> {
        let state = self.store.lock();
        let obj = state
            .get(rt, ns, name)
            .cloned()
            .ok_or_else(|| ApiError::not_found(rt, name))?;
        match sub {
            Some("scale") => Ok(scale_of(rt, &obj)),
            _ => Ok(in_version(rt, obj)),
        }
    }

    /// LIST with selectors, limit/continue paging over one snapshot.
    pub fn list(
        &self,
        rt: &ResourceType,
        ns: Option<&str>,
        labels: &LabelSelector,
        fields: &FieldSelector,
        limit: Option<usize>,
        continue_token: Option<&str>,
    ) -> Result<Value, ApiError> {
        let mut state = self.store.lock();
        let (rv, items) = match continue_token {
            Some(token) => {
                let page = state.pages.remove(token).ok_or_else(|| {
                    ApiError::expired("The provided continue parameter is too old to display a consistent list result. You can start a new list without the continue parameter, or use the continue token in this response to retrieve the remainder of the results. Continuing with the provided token results in an inconsistent list - objects that were created, modified, or deleted between the time the first chunk was returned and now may show up in the list.")
                })?;
                (page.rv, page.items)
            }
            None => {
                let items: Vec<Value> = state
                    .list(rt, ns)
                    .into_iter()
                    .map(|o| in_version(rt, o))
                    .filter(|o| labels.matches(o) && fields.matches(o))
                    .collect();
                (state.rv, items)
            }
        };
        let mut meta = json!({"resourceVersion": rv.to_string()});
        let items = match limit {
            Some(l) if l > 0 && items.len() > l => {
                let mut items = items;
                let rest = items.split_off(l);
                meta["remainingItemCount"] = json!(rest.len());
                meta["continue"] = json!(state.save_page(Page { rv, items: rest }));
                items
            }
            _ => items,
        };
        let list_kind = format!("{}List", rt.kind);
        Ok(
            json!({"kind": list_kind, "apiVersion": rt.api_version(), "metadata": meta, "items": items}),
        )
    }

    /// PUT: replace an object (or its status, or its scale).
    pub async fn replace(
        &self,
        rt: &ResourceType,
        ns: &str,
        name: &str,
        sub: Option<&str>,
        body: Value,
        opts: &WriteOpts,
    ) -> Result<Reply, ApiError> {
        retry_races(rt, name, || {
            self.replace_once(rt, ns, name, sub, body.clone(), opts)
        })
        .await
    }

    async fn replace_once(
        &self,
        rt: &ResourceType,
        ns: &str,
        name: &str,
        sub: Option<&str>,
        mut body: Value,
        opts: &WriteOpts,
    ) -> Result<Reply, ApiError> {
        let old = match self.get_locked(rt, ns, name) {
            // Leases and Events may be created by PUT (their strategies allow create on update).
            Err(e)
                if e.code == 404
                    && sub.is_none()
                    && matches!(rt.kind.as_str(), "Lease" | "Event") =>
            {
                Self::check_body(rt, Some(ns).filter(|_| rt.namespaced), &mut body)?;
                if name_of(&body) != name {
                    return Err(ApiError::bad_request(format!(
                        "the name of the object ({}) does not match the name on the URL ({name})",
                        name_of(&body)
                    )));
                }
                meta_mut(&mut body).remove("resourceVersion");
                let ns = Some(ns).filter(|_| rt.namespaced);
                return self.create(rt, ns, body, opts, Op::Create).await;
            }
            other => other?,
        };
        if sub == Some("scale") {
            let replicas = body.pointer("/spec/replicas").cloned().unwrap_or(json!(0));
            let body_rv = rv_of(&body).to_string();
            if !body_rv.is_empty() && body_rv != rv_of(&old) {
                return Err(ApiError::stale(rt, name));
            }
            let mut new = old.clone();
            if let Some(p) = &rt.scale {
                set_path(&mut new, &p.spec_replicas, replicas);
            }
            return self
                .update_common(rt, &old, new, Some("scale"), opts, Op::Update)
                .await;
        }
        Self::check_body(rt, Some(ns).filter(|_| rt.namespaced), &mut body)?;
        if name_of(&body) != name {
            return Err(ApiError::bad_request(format!(
                "the name of the object ({}) does not match the name on the URL ({name})",
                name_of(&body)
            )));
        }
        let body_rv = rv_of(&body).to_string();
        if body_rv.is_empty() && rt.custom {
            return Err(ApiError::invalid(
                rt,
                name,
                "metadata.resourceVersion",
                "Invalid value: 0x0: must be specified for an update",
                "FieldValueInvalid",
            ));
        }
        if !body_rv.is_empty() && body_rv != rv_of(&old) {
            return Err(ApiError::stale(rt, name));
        }
        self.update_common(rt, &old, body, sub, opts, Op::Update)
            .await
    }

    fn get_locked(&self, rt: &ResourceType, ns: &str, name: &str) -> Result<Value, ApiError> {
        let state = self.store.lock();
        state
            .get(rt, ns, name)
            .cloned()
            .ok_or_else(|| ApiError::not_found(rt, name))
    }

    /// PATCH with one of the four patch types.
    #[allow(clippy::too_many_arguments)] // mirrors the request: object address, patch type, body, options
    pub async fn patch(
        &self,
        rt: &ResourceType,
        ns: &str,
        name: &str,
        sub: Option<&str>,
        content_type: &str,
        body: &[u8],
        opts: &WriteOpts,
    ) -> Result<Reply, ApiError> {
        let ptype = content_type.split(';').next().unwrap_or_default().trim();
        let is_apply =
            ptype == "application/apply-patch+yaml" || ptype == "application/apply-patch+cbor";
        let patch: Value = if is_apply {
            serde_yaml::from_slice(body)
                .map_err(|e| ApiError::bad_request(format!("error decoding YAML: {e}")))?
        } else {
            serde_json::from_slice(body)
                .map_err(|e| ApiError::bad_request(format!("error decoding patch: {e}")))?
        };
        if is_apply {
            return retry_races(rt, name, || {
                self.apply_once(rt, ns, name, sub, patch.clone(), opts)
            })
            .await;
        }
        retry_races(rt, name, || {
            self.patch_once(rt, ns, name, sub, ptype, &patch, opts)
        })
        .await
    }

    #[allow(clippy::too_many_arguments)] // mirrors the request: object address, patch type, body, options
    async fn patch_once(
        &self,
        rt: &ResourceType,
        ns: &str,
        name: &str,
        sub: Option<&str>,
        ptype: &str,
        patch: &Value,
        opts: &WriteOpts,
    ) -> Result<Reply, ApiError> {
        let old = self.get_locked(rt, ns, name)?;
        let target = if sub == Some("scale") {
            scale_of(rt, &old)
        } else {
            in_version(rt, old.clone())
        };
        let patched = match ptype {
            "application/merge-patch+json" => crate::fields::merge_patch(&target, patch),
            "application/json-patch+json" => crate::fields::json_patch(&target, patch)?,
            "application/strategic-merge-patch+json" => {
                if rt.custom {
                    return Err(ApiError::unsupported_media(
                        "the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml",
                    ));
                }
                crate::fields::strategic_merge_patch(&target, patch, &rt.group_kind())?
            }
            other => {
                return Err(ApiError::unsupported_media(format!(
                    "the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml{}; got {other}",
                    if rt.custom {
                        ""
                    } else {
                        ", application/strategic-merge-patch+json"
                    }
                )));
            }
        };
        let new = if sub == Some("scale") {
            let patched_rv = rv_of(&patched).to_string();
            if !patched_rv.is_empty() && patched_rv != rv_of(&old) {
                return Err(ApiError::stale(rt, name));
            }
            let mut new = old.clone();
            if let Some(p) = &rt.scale {
                set_path(
                    &mut new,
                    &p.spec_replicas,
                    patched
                        .pointer("/spec/replicas")
                        .cloned()
                        .unwrap_or(json!(0)),
                );
            }
            new
        } else {
            let mut patched = patched;
            if name_of(&patched) != name {
                return Err(ApiError::bad_request(
                    "metadata.name: the name of a patched object cannot change",
                ));
            }
            let patched_rv = rv_of(&patched).to_string();
            if !patched_rv.is_empty() && patched_rv != rv_of(&old) {
                return Err(ApiError::stale(rt, name));
            }
            Self::check_body(rt, Some(ns).filter(|_| rt.namespaced), &mut patched)?;
            patched
        };
        self.update_common(rt, &old, new, sub, opts, Op::Update)
            .await
    }

    /// Server-side apply: create when missing, else merge with ownership per field manager.
    async fn apply_once(
        &self,
        rt: &ResourceType,
        ns: &str,
        name: &str,
        sub: Option<&str>,
        mut applied: Value,
        opts: &WriteOpts,
    ) -> Result<Reply, ApiError> {
        if !opts.explicit_manager {
            return Err(ApiError::bad_request(
                "PATCH, application/apply-patch+yaml requests must have a fieldManager query parameter",
            ));
        }
        if !applied.is_object() {
            return Err(ApiError::bad_request(
                "the applied configuration must be an object",
            ));
        }
        if applied
            .get("apiVersion")
            .and_then(Value::as_str)
            .is_none_or(str::is_empty)
            || applied
                .get("kind")
                .and_then(Value::as_str)
                .is_none_or(str::is_empty)
        {
            return Err(ApiError::bad_request(
                "invalid object type: apiVersion and kind must be set in an applied configuration",
            ));
        }
        if applied.pointer("/metadata/managedFields").is_some() {
            return Err(ApiError::bad_request("metadata.managedFields must be nil"));
        }
        if sub != Some("scale") {
            Self::check_body(rt, Some(ns).filter(|_| rt.namespaced), &mut applied)?;
            let applied_name = name_of(&applied);
            if !applied_name.is_empty() && applied_name != name {
                return Err(ApiError::bad_request(format!(
                    "the name of the object ({applied_name}) does not match the name on the URL ({name})"
                )));
            }
            meta_mut(&mut applied).insert("name".into(), json!(name));
        }
        let existing = {
            let state = self.store.lock();
            state.get(rt, ns, name).cloned()
        };
        let body_rv = rv_of(&applied).to_string();
        let Some(old) = existing else {
            if sub.is_some() {
                return Err(ApiError::not_found(rt, name));
            }
            if !body_rv.is_empty() {
                return Err(ApiError::not_found(rt, name));
            }
            let merged = crate::fields::apply(None, &applied, rt, &opts.manager, None, opts.force)?;
            return self
                .create(
                    rt,
                    Some(ns).filter(|_| rt.namespaced),
                    merged,
                    opts,
                    Op::Apply,
                )
                .await;
        };
        if !body_rv.is_empty() && body_rv != rv_of(&old) {
            return Err(ApiError::stale(rt, name));
        }
        let live = if sub == Some("scale") {
            scale_of(rt, &old)
        } else {
            in_version(rt, old.clone())
        };
        let merged =
            crate::fields::apply(Some(&live), &applied, rt, &opts.manager, sub, opts.force)?;
        let new = if sub == Some("scale") {
            let mut new = old.clone();
            if let Some(p) = &rt.scale {
                set_path(
                    &mut new,
                    &p.spec_replicas,
                    merged
                        .pointer("/spec/replicas")
                        .cloned()
                        .unwrap_or(json!(0)),
                );
            }
            new
        } else {
            merged
        };
        self.update_common(rt, &old, new, sub, opts, Op::Apply)
            .await
    }

    /// The shared tail of every update: keeps identity metadata, applies the status/spec split, defaults,
    /// admission, validation, generation, finalizer rules, managedFields and no-op detection, then stores.
    /// Returns [`Attempt::Raced`] when the object changed after `old` was read.
    async fn update_common(
        &self,
        rt: &ResourceType,
        old: &Value,
        mut new: Value,
        sub: Option<&str>,
        opts: &WriteOpts,
        op: Op,
    ) -> Result<Reply, ApiError> {
        // Everything below compares and records in the shape this API serves.
        let old_served = in_version(rt, old.clone());
        let old = &old_served;
        let name = name_of(old).to_string();
        let ns = ns_of(old).to_string();
        match sub {
            Some("status") => {
                let status = new.get("status").cloned();
                let managed = new.pointer("/metadata/managedFields").cloned();
                new = old.clone();
                match status {
                    Some(s) => new["status"] = s,
                    None => {
                        if let Some(m) = new.as_object_mut() {
                            m.remove("status");
                        }
                    }
                }
                if op == Op::Apply
                    && let Some(mf) = managed
                {
                    new["metadata"]["managedFields"] = mf;
                }
            }
            Some("scale") => {}
            _ => {
                if rt.status {
                    match old.get("status") {
                        Some(s) => new["status"] = s.clone(),
                        None => {
                            if let Some(m) = new.as_object_mut() {
                                m.remove("status");
                            }
                        }
                    }
                }
            }
        }
        new = in_version(rt, new);
        {
            let old_meta = old.get("metadata").cloned().unwrap_or(json!({}));
            let meta = meta_mut(&mut new);
            for k in [
                "name",
                "namespace",
                "uid",
                "creationTimestamp",
                "deletionTimestamp",
                "deletionGracePeriodSeconds",
                "generation",
            ] {
                match old_meta.get(k) {
                    Some(v) => {
                        meta.insert(k.into(), v.clone());
                    }
                    None => {
                        meta.remove(k);
                    }
                }
            }
            if op == Op::Update
                && !meta.contains_key("managedFields")
                && let Some(mf) = old_meta.get("managedFields")
            {
                meta.insert("managedFields".into(), mf.clone());
            }
            meta.insert("resourceVersion".into(), json!(rv_of(old)));
        }
        let deleting = old.pointer("/metadata/deletionTimestamp").is_some();
        if deleting {
            let before = finalizers(old);
            if let Some(added) = finalizers(&new).into_iter().find(|f| !before.contains(f)) {
                return Err(ApiError::invalid(
                    rt,
                    &name,
                    "metadata.finalizers",
                    &format!(
                        "Forbidden: no new finalizers can be added if the object is being deleted, found new finalizers []string{{\"{added}\"}}"
                    ),
                    "FieldValueForbidden",
                ));
            }
        }
        let mut warnings = Vec::new();
        let attrs = admit::Request {
            rt: rt.clone(),
            operation: admit::Operation::Update,
            sub_resource: sub.map(str::to_string),
            name: name.clone(),
            namespace: ns.clone(),
            object: Some(if sub == Some("scale") {
                scale_of(rt, &new)
            } else {
                new.clone()
            }),
            old_object: Some(if sub == Some("scale") {
                scale_of(rt, old)
            } else {
                old.clone()
            }),
            dry_run: opts.dry_run,
            options: json!({"kind": "UpdateOptions", "apiVersion": "meta.k8s.io/v1", "fieldManager": opts.manager}),
            user: opts.user.clone(),
        };
        let (mutated, w) = self.admission.mutate(&self.store, &attrs).await?;
        warnings.extend(w);
        if let Some(m) = mutated {
            if sub == Some("scale") {
                if let Some(p) = &rt.scale {
                    set_path(
                        &mut new,
                        &p.spec_replicas,
                        m.pointer("/spec/replicas").cloned().unwrap_or(json!(0)),
                    );
                }
            } else {
                new = m;
            }
        }
        defaults::apply_defaults(rt, &mut new);
        Self::prune_unknown(rt, &mut new, opts, &mut warnings)?;
        defaults::validate(rt, &new).map_err(|f| Self::invalid(rt, &name, f))?;
        Self::prepare_special(rt, &mut new)?;
        if rt.generation {
            let generation = old
                .pointer("/metadata/generation")
                .and_then(Value::as_i64)
                .unwrap_or(1);
            let bump = generation_view(rt, old) != generation_view(rt, &new);
            new["metadata"]["generation"] = json!(if bump { generation + 1 } else { generation });
        }
        if op == Op::Update {
            new = crate::fields::record_update(Some(old), &new, rt, &opts.manager, sub);
        }
        let attrs = admit::Request {
            object: Some(if sub == Some("scale") {
                scale_of(rt, &new)
            } else {
                new.clone()
            }),
            ..attrs
        };
        let validated = self.admission.validate(&self.store, &attrs).await;
        warnings.extend(validated.map_err(|e| e.with_warnings(&warnings))?);
        let respond = |obj: Value| -> Value {
            if sub == Some("scale") {
                scale_of(rt, &obj)
            } else {
                in_version(rt, obj)
            }
        };
        if noop_view(&new) == noop_view(&in_version(rt, old.clone())) {
            return Ok(Reply {
                code: 200,
                body: respond(old.clone()),
                warnings,
            });
        }
        if opts.dry_run {
            return Ok(Reply {
                code: 200,
                body: respond(new),
                warnings,
            });
        }
        let mut state = self.store.lock();
        if state.get(rt, &ns, &name).map(rv_of) != Some(rv_of(old)) {
            return Err(ApiError::raced(rt, &name));
        }
        let stored = if deleting && finalizers(&new).is_empty() {
            let mut last = state.put(rt, new);
            if let Some(gone) = delete_now(&mut state, rt, &ns, &name, Propagation::Background) {
                last = gone;
            }
            last
        } else {
            state.put(rt, new)
        };
        drop(state);
        self.store.notify();
        Ok(Reply {
            code: 200,
            body: respond(stored),
            warnings,
        })
    }

    /// DELETE one object: marks it when finalizers remain, else removes it and collects its dependents.
    pub async fn delete(
        &self,
        rt: &ResourceType,
        ns: &str,
        name: &str,
        options: &Value,
        opts: &WriteOpts,
    ) -> Result<Reply, ApiError> {
        retry_races(rt, name, || self.delete_once(rt, ns, name, options, opts)).await
    }

    async fn delete_once(
        &self,
        rt: &ResourceType,
        ns: &str,
        name: &str,
        options: &Value,
        opts: &WriteOpts,
    ) -> Result<Reply, ApiError> {
        let old = self.get_locked(rt, ns, name)?;
        if let Some(uid) = options
            .pointer("/preconditions/uid")
            .and_then(Value::as_str)
            && !uid.is_empty()
            && old.pointer("/metadata/uid").and_then(Value::as_str) != Some(uid)
        {
            return Err(ApiError::new(
                409,
                "Conflict",
                format!(
                    "Operation cannot be fulfilled on {} \"{name}\": Precondition failed: UID in precondition: {uid}, UID in object meta: {}",
                    rt.qualified_plural(),
                    old.pointer("/metadata/uid")
                        .and_then(Value::as_str)
                        .unwrap_or_default()
                ),
            ));
        }
        if let Some(rv) = options
            .pointer("/preconditions/resourceVersion")
            .and_then(Value::as_str)
            && !rv.is_empty()
            && rv != rv_of(&old)
        {
            return Err(ApiError::new(
                409,
                "Conflict",
                format!(
                    "Operation cannot be fulfilled on {} \"{name}\": Precondition failed: ResourceVersion in precondition: {rv}, ResourceVersion in object meta: {}",
                    rt.qualified_plural(),
                    rv_of(&old)
                ),
            ));
        }
        let policy = match options.get("propagationPolicy").and_then(Value::as_str) {
            Some("Orphan") => Propagation::Orphan,
            Some("Foreground") => Propagation::Foreground,
            _ if options.get("orphanDependents").and_then(Value::as_bool) == Some(true) => {
                Propagation::Orphan
            }
            _ => Propagation::Background,
        };
        let attrs = admit::Request {
            rt: rt.clone(),
            operation: admit::Operation::Delete,
            sub_resource: None,
            name: name.to_string(),
            namespace: ns.to_string(),
            object: None,
            old_object: Some(old.clone()),
            dry_run: opts.dry_run,
            options: {
                let mut o = options.clone();
                if !o.is_object() {
                    o = json!({});
                }
                o["kind"] = json!("DeleteOptions");
                o["apiVersion"] = json!("meta.k8s.io/v1");
                o
            },
            user: opts.user.clone(),
        };
        let (_, mut warnings) = self.admission.mutate(&self.store, &attrs).await?;
        let validated = self.admission.validate(&self.store, &attrs).await;
        warnings.extend(validated.map_err(|e| e.with_warnings(&warnings))?);
        let returns_object = rt.custom
            || matches!(
                rt.kind.as_str(),
                "Pod"
                    | "ServiceAccount"
                    | "StorageClass"
                    | "Namespace"
                    | "CustomResourceDefinition"
            );
        let success = |obj: &Value| -> Value {
            json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success",
                "details": {"name": name, "group": rt.group, "kind": rt.plural,
                    "uid": obj.pointer("/metadata/uid").cloned().unwrap_or(Value::Null)}})
        };
        let will_mark = !finalizers(&old).is_empty() || rt.kind == "Namespace";
        if opts.dry_run {
            let mut preview = old.clone();
            if will_mark {
                preview["metadata"]["deletionTimestamp"] = json!(now_rfc3339());
                preview["metadata"]["deletionGracePeriodSeconds"] = json!(0);
            }
            let body = if returns_object || will_mark {
                in_version(rt, preview)
            } else {
                success(&old)
            };
            return Ok(Reply {
                code: 200,
                body,
                warnings,
            });
        }
        let mut state = self.store.lock();
        if state.get(rt, ns, name).map(rv_of) != Some(rv_of(&old)) {
            return Err(ApiError::raced(rt, name));
        }
        let result = if rt.kind == "Namespace" && rt.group.is_empty() {
            delete_namespace(&mut state, name)
        } else {
            delete_or_mark(&mut state, rt, ns, name, policy)
        };
        drop(state);
        self.store.notify();
        let body = match result {
            Deleted::Marked(obj) => in_version(rt, obj),
            Deleted::Removed(obj) if returns_object => in_version(rt, obj),
            Deleted::Removed(obj) => success(&obj),
            Deleted::Missing => return Err(ApiError::not_found(rt, name)),
        };
        warnings.dedup();
        Ok(Reply {
            code: 200,
            body,
            warnings,
        })
    }

    /// DELETE on a collection: deletes every matching object, returns the list of what was deleted.
    pub async fn delete_collection(
        &self,
        rt: &ResourceType,
        ns: Option<&str>,
        labels: &LabelSelector,
        fields: &FieldSelector,
        options: &Value,
        opts: &WriteOpts,
    ) -> Result<Reply, ApiError> {
        let targets: Vec<(String, String)> = {
            let state = self.store.lock();
            state
                .list(rt, ns)
                .into_iter()
                .map(|o| in_version(rt, o))
                .filter(|o| labels.matches(o) && fields.matches(o))
                .map(|o| (ns_of(&o).to_string(), name_of(&o).to_string()))
                .collect()
        };
        let mut items = Vec::new();
        let mut warnings = Vec::new();
        for (ns, name) in targets {
            match self.delete(rt, &ns, &name, options, opts).await {
                Ok(r) => {
                    warnings.extend(r.warnings);
                    if r.body.get("kind") != Some(&json!("Status")) {
                        items.push(r.body);
                    }
                }
                Err(e) if e.code == 404 => {}
                Err(e) => return Err(e),
            }
        }
        let rv = self.store.lock().rv;
        Ok(Reply {
            code: 200,
            body: json!({"kind": format!("{}List", rt.kind), "apiVersion": rt.api_version(),
                "metadata": {"resourceVersion": rv.to_string()}, "items": items}),
            warnings,
        })
    }
}

/// How dependents of a deleted owner are treated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Propagation {
    Orphan,
    Background,
    Foreground,
}

/// The outcome of a deletion.
#[derive(Debug)]
pub enum Deleted {
    /// Finalizers remain: the object now carries a deletionTimestamp.
    Marked(Value),
    /// Removed; its last state.
    Removed(Value),
    Missing,
}

fn type_for(state: &State, group: &str, plural: &str) -> Option<ResourceType> {
    let stored_here = |t: &&ResourceType| t.group == group && t.plural == plural;
    state
        .types
        .iter()
        .filter(stored_here)
        .find(|t| t.storage)
        .or_else(|| state.types.iter().find(stored_here))
        .cloned()
}

/// Deletes now when no finalizers remain, else marks the object as being deleted.
pub fn delete_or_mark(
    state: &mut State,
    rt: &ResourceType,
    ns: &str,
    name: &str,
    policy: Propagation,
) -> Deleted {
    let Some(obj) = state.get(rt, ns, name).cloned() else {
        return Deleted::Missing;
    };
    if policy == Propagation::Foreground {
        return delete_foreground(state, rt, obj);
    }
    if !finalizers(&obj).is_empty() {
        if obj.pointer("/metadata/deletionTimestamp").is_some() {
            return Deleted::Marked(obj);
        }
        let mut marked = obj;
        mark_deleting(&mut marked, rt);
        return Deleted::Marked(state.put(rt, marked));
    }
    match delete_now(state, rt, ns, name, policy) {
        Some(obj) => Deleted::Removed(obj),
        None => Deleted::Missing,
    }
}

const FOREGROUND: &str = "foregroundDeletion";

fn uid_of(obj: &Value) -> String {
    obj.pointer("/metadata/uid")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string()
}

/// Every object with an ownerReference to `uid`, as (group, plural, namespace, name) storage keys.
fn dependents_of(state: &State, uid: &str) -> Vec<(String, String, String, String)> {
    let mut out = Vec::new();
    for ((group, plural), objs) in &state.objects {
        for ((dns, dname), obj) in objs {
            let owned = obj
                .pointer("/metadata/ownerReferences")
                .and_then(Value::as_array)
                .is_some_and(|refs| {
                    refs.iter()
                        .any(|r| r.get("uid").and_then(Value::as_str) == Some(uid))
                });
            if owned {
                out.push((group.clone(), plural.clone(), dns.clone(), dname.clone()));
            }
        }
    }
    out
}

/// Marks an object as being deleted, as the API server does when finalizers hold it: the deletion timestamp,
/// a zero grace period, and a new generation for kinds that count them.
fn mark_deleting(object: &mut Value, rt: &ResourceType) {
    object["metadata"]["deletionTimestamp"] = json!(now_rfc3339());
    object["metadata"]["deletionGracePeriodSeconds"] = json!(0);
    if rt.generation {
        let generation = object
            .pointer("/metadata/generation")
            .and_then(Value::as_i64)
            .unwrap_or(1);
        object["metadata"]["generation"] = json!(generation + 1);
    }
}

/// Foreground cascading deletion: the owner is marked with the `foregroundDeletion` finalizer, its dependents
/// are deleted (foreground too), and the finalizer goes once none remain — at once, or when the last dependent's
/// own finalizers are released. The answer is the marked owner, as the apiserver returns it.
fn delete_foreground(state: &mut State, rt: &ResourceType, obj: Value) -> Deleted {
    let uid = uid_of(&obj);
    let mut marked = obj;
    if !finalizers(&marked).iter().any(|f| f == FOREGROUND) {
        let meta = meta_mut(&mut marked);
        let list = meta.entry("finalizers").or_insert_with(|| json!([]));
        if let Some(l) = list.as_array_mut() {
            l.push(json!(FOREGROUND));
        }
    }
    if marked.pointer("/metadata/deletionTimestamp").is_none() {
        mark_deleting(&mut marked, rt);
    }
    let marked = state.put(rt, marked);
    for (group, plural, dns, dname) in dependents_of(state, &uid) {
        if let Some(dt) = type_for(state, &group, &plural) {
            delete_or_mark(state, &dt, &dns, &dname, Propagation::Foreground);
        }
    }
    release_foreground(state, &uid);
    Deleted::Marked(marked)
}

/// Drops the `foregroundDeletion` finalizer of the object with `uid` once it has no dependents left, deleting
/// it when no other finalizers remain.
fn release_foreground(state: &mut State, uid: &str) {
    if uid.is_empty() || !dependents_of(state, uid).is_empty() {
        return;
    }
    let found = state.objects.iter().find_map(|((group, plural), objs)| {
        objs.values()
            .find(|o| uid_of(o) == uid && finalizers(o).iter().any(|f| f == FOREGROUND))
            .map(|o| (group.clone(), plural.clone(), o.clone()))
    });
    let Some((group, plural, mut owner)) = found else {
        return;
    };
    let Some(ot) = type_for(state, &group, &plural) else {
        return;
    };
    if let Some(list) = owner
        .pointer_mut("/metadata/finalizers")
        .and_then(Value::as_array_mut)
    {
        list.retain(|f| f != FOREGROUND);
    }
    let (ons, oname) = (ns_of(&owner).to_string(), name_of(&owner).to_string());
    if finalizers(&owner).is_empty() {
        delete_now(state, &ot, &ons, &oname, Propagation::Background);
    } else {
        state.put(&ot, owner);
    }
}

/// Removes an object and collects its dependents (ownerReferences by uid); finishes a terminating namespace
/// that became empty; deleting a CRD deletes its custom resources.
pub fn delete_now(
    state: &mut State,
    rt: &ResourceType,
    ns: &str,
    name: &str,
    policy: Propagation,
) -> Option<Value> {
    if rt.group == "apiextensions.k8s.io"
        && rt.kind == "CustomResourceDefinition"
        && let Some(crd) = state.get(rt, ns, name).cloned()
    {
        let group = crd
            .pointer("/spec/group")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        let plural = crd
            .pointer("/spec/names/plural")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        if let Some(cr_type) = type_for(state, &group, &plural) {
            for obj in state.list(&cr_type, None) {
                let (n, m) = (ns_of(&obj).to_string(), name_of(&obj).to_string());
                delete_now(state, &cr_type, &n, &m, Propagation::Background);
            }
        }
    }
    let gone = state.remove(rt, ns, name)?;
    let uid = uid_of(&gone);
    for (group, plural, dns, dname) in dependents_of(state, &uid) {
        let Some(dt) = type_for(state, &group, &plural) else {
            continue;
        };
        if policy == Propagation::Orphan {
            if let Some(mut dep) = state.get(&dt, &dns, &dname).cloned() {
                if let Some(refs) = dep
                    .pointer_mut("/metadata/ownerReferences")
                    .and_then(Value::as_array_mut)
                {
                    refs.retain(|r| r.get("uid").and_then(Value::as_str) != Some(uid.as_str()));
                    if refs.is_empty()
                        && let Some(m) = dep.get_mut("metadata").and_then(Value::as_object_mut)
                    {
                        m.remove("ownerReferences");
                    }
                }
                state.put(&dt, dep);
            }
        } else {
            delete_or_mark(state, &dt, &dns, &dname, Propagation::Background);
        }
    }
    // An owner waiting in foreground deletion may have lost its last dependent.
    let owners: Vec<String> = gone
        .pointer("/metadata/ownerReferences")
        .and_then(Value::as_array)
        .map(|refs| {
            refs.iter()
                .filter_map(|r| r.get("uid").and_then(Value::as_str).map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    for owner in owners {
        release_foreground(state, &owner);
    }
    if rt.namespaced {
        finish_namespace_if_empty(state, ns);
    }
    Some(gone)
}

fn namespace_type(state: &State) -> Option<ResourceType> {
    state.lookup("", "v1", "namespaces")
}

fn finish_namespace_if_empty(state: &mut State, ns: &str) {
    if state.namespace_state(ns) != Some(true) {
        return;
    }
    let empty = state
        .objects
        .iter()
        .filter(|((g, p), _)| !(g.is_empty() && p == "namespaces"))
        .all(|(_, objs)| !objs.keys().any(|(n, _)| n == ns));
    if empty && let Some(nt) = namespace_type(state) {
        state.remove(&nt, "", ns);
    }
}

/// Deletes a namespace as the namespace controller would: marks it Terminating, deletes its content, and
/// removes it once empty.
pub fn delete_namespace(state: &mut State, name: &str) -> Deleted {
    let Some(nt) = namespace_type(state) else {
        return Deleted::Missing;
    };
    let Some(mut ns_obj) = state.get(&nt, "", name).cloned() else {
        return Deleted::Missing;
    };
    if ns_obj.pointer("/metadata/deletionTimestamp").is_none() {
        ns_obj["metadata"]["deletionTimestamp"] = json!(now_rfc3339());
        ns_obj["metadata"]["deletionGracePeriodSeconds"] = json!(0);
        ns_obj["status"]["phase"] = json!("Terminating");
        ns_obj = state.put(&nt, ns_obj);
    }
    let mut content = Vec::new();
    for ((group, plural), objs) in &state.objects {
        for (dns, dname) in objs.keys() {
            if dns == name {
                content.push((group.clone(), plural.clone(), dname.clone()));
            }
        }
    }
    for (group, plural, dname) in content {
        if let Some(t) = type_for(state, &group, &plural) {
            delete_or_mark(state, &t, name, &dname, Propagation::Background);
        }
    }
    finish_namespace_if_empty(state, name);
    match state.get(&nt, "", name).cloned() {
        Some(still) => Deleted::Marked(still),
        None => Deleted::Marked(ns_obj),
    }
}
