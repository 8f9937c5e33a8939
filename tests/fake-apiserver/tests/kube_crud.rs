//! kube-rs against the library: CRUD on built-in and custom kinds, patches, errors, status and scale.

use fake_apiserver::FakeApiServer;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::core::{DynamicObject, GroupVersionKind};
use kube::discovery::ApiResource;
use serde_json::json;

fn configmap(name: &str, labels: serde_json::Value) -> ConfigMap {
    serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": name, "labels": labels},
        "data": {"k": "v"}
    }))
    .unwrap()
}

fn deployment(name: &str, replicas: i32) -> Deployment {
    serde_json::from_value(json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": name},
        "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": name}},
            "template": {"metadata": {"labels": {"app": name}},
                "spec": {"containers": [{"name": "c", "image": "nginx:1.27"}]}}}
    }))
    .unwrap()
}

#[tokio::test]
async fn configmap_crud_with_rv_uid_and_errors() {
    let srv = FakeApiServer::start().await.unwrap();
    let cms: Api<ConfigMap> = Api::default_namespaced(srv.client());
    let created = cms
        .create(
            &PostParams::default(),
            &configmap("demo", json!({"app": "a"})),
        )
        .await
        .unwrap();
    let meta = &created.metadata;
    assert!(meta.uid.as_deref().is_some_and(|u| u.len() == 36));
    assert!(meta.creation_timestamp.is_some());
    let rv1: u64 = meta.resource_version.as_deref().unwrap().parse().unwrap();

    let err = cms
        .create(&PostParams::default(), &configmap("demo", json!({})))
        .await
        .unwrap_err();
    match err {
        kube::Error::Api(s) => {
            assert_eq!(s.code, 409);
            assert_eq!(s.reason, "AlreadyExists");
            assert_eq!(s.message, "configmaps \"demo\" already exists");
        }
        other => panic!("expected AlreadyExists, got {other:?}"),
    }

    let mut got = cms.get("demo").await.unwrap();
    got.data.as_mut().unwrap().insert("k".into(), "w".into());
    let replaced = cms
        .replace("demo", &PostParams::default(), &got)
        .await
        .unwrap();
    let rv2: u64 = replaced
        .metadata
        .resource_version
        .as_deref()
        .unwrap()
        .parse()
        .unwrap();
    assert!(rv2 > rv1);

    // A replace with the stale resourceVersion conflicts.
    let stale = cms
        .replace("demo", &PostParams::default(), &got)
        .await
        .unwrap_err();
    assert!(matches!(stale, kube::Error::Api(s) if s.code == 409 && s.reason == "Conflict"));

    cms.create(
        &PostParams::default(),
        &configmap("other", json!({"app": "b"})),
    )
    .await
    .unwrap();
    let selected = cms
        .list(&ListParams::default().labels("app in (a,c)"))
        .await
        .unwrap();
    assert_eq!(selected.items.len(), 1);
    assert_eq!(selected.items[0].metadata.name.as_deref(), Some("demo"));

    let generated: ConfigMap =
        serde_json::from_value(json!({"metadata": {"generateName": "gen-"}})).unwrap();
    let generated = cms
        .create(&PostParams::default(), &generated)
        .await
        .unwrap();
    let name = generated.metadata.name.unwrap();
    assert!(name.starts_with("gen-") && name.len() == 9, "{name}");
    assert!(
        name[4..]
            .chars()
            .all(|c| "bcdfghjklmnpqrstvwxz2456789".contains(c)),
        "{name}"
    );

    cms.delete("demo", &DeleteParams::default()).await.unwrap();
    let missing = cms.get("demo").await.unwrap_err();
    assert!(
        matches!(missing, kube::Error::Api(s) if s.code == 404 && s.message == "configmaps \"demo\" not found")
    );
}

#[tokio::test]
async fn unknown_namespace_is_not_found() {
    let srv = FakeApiServer::start().await.unwrap();
    let cms: Api<ConfigMap> = Api::namespaced(srv.client(), "nope");
    let err = cms
        .create(&PostParams::default(), &configmap("demo", json!({})))
        .await
        .unwrap_err();
    assert!(
        matches!(err, kube::Error::Api(s) if s.code == 404 && s.message == "namespaces \"nope\" not found")
    );
    // Reads do not check the namespace, as in a real cluster: an empty list, and the object is not found.
    assert!(
        cms.list(&ListParams::default())
            .await
            .unwrap()
            .items
            .is_empty()
    );
    let err = cms.get("demo").await.unwrap_err();
    assert!(
        matches!(err, kube::Error::Api(s) if s.code == 404 && s.message == "configmaps \"demo\" not found")
    );
    let nss: Api<Namespace> = Api::all(srv.client());
    let names: Vec<String> = nss
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .filter_map(|n| n.metadata.name)
        .collect();
    assert_eq!(
        names,
        ["default", "kube-node-lease", "kube-public", "kube-system"]
    );
}

#[tokio::test]
async fn deployment_defaults_generation_and_scale() {
    let srv = FakeApiServer::start().await.unwrap();
    let deps: Api<Deployment> = Api::default_namespaced(srv.client());
    let d = deps
        .create(&PostParams::default(), &deployment("web", 2))
        .await
        .unwrap();
    assert_eq!(d.metadata.generation, Some(1));
    let spec = d.spec.unwrap();
    assert_eq!(spec.revision_history_limit, Some(10));
    assert_eq!(spec.progress_deadline_seconds, Some(600));

    // Metadata-only changes keep the generation; spec changes bump it.
    let pp = PatchParams::default();
    let d = deps
        .patch(
            "web",
            &pp,
            &Patch::Merge(json!({"metadata": {"labels": {"x": "y"}}})),
        )
        .await
        .unwrap();
    assert_eq!(d.metadata.generation, Some(1));
    let scale = deps
        .patch_scale("web", &pp, &Patch::Merge(json!({"spec": {"replicas": 5}})))
        .await
        .unwrap();
    assert_eq!(scale.spec.unwrap().replicas, Some(5));
    assert_eq!(scale.status.unwrap().selector.as_deref(), Some("app=web"));
    let d = deps.get("web").await.unwrap();
    assert_eq!(d.spec.unwrap().replicas, Some(5));
    assert_eq!(d.metadata.generation, Some(2));

    // Status writes change only status.
    let st = deps
        .patch_status(
            "web",
            &pp,
            &Patch::Merge(
                json!({"spec": {"replicas": 9}, "status": {"replicas": 5, "readyReplicas": 5}}),
            ),
        )
        .await
        .unwrap();
    assert_eq!(st.spec.unwrap().replicas, Some(5));
    assert_eq!(st.status.unwrap().ready_replicas, Some(5));

    // Strategic merge keys containers by name: the image stays, the env var is added.
    let d = deps
        .patch(
            "web",
            &pp,
            &Patch::Strategic(json!({"spec": {"template": {"spec": {"containers": [{"name": "c", "env": [{"name": "MODE", "value": "dr"}]}]}}}})),
        )
        .await
        .unwrap();
    let c = &d.spec.unwrap().template.spec.unwrap().containers[0];
    assert_eq!(c.image.as_deref(), Some("nginx:1.27"));
    assert_eq!(c.env.as_ref().unwrap()[0].name, "MODE");
    // A JSON patch whose test fails is 422 Invalid and changes nothing.
    let err = deps
        .patch(
            "web",
            &pp,
            &Patch::Json::<()>(
                serde_json::from_value(
                    json!([{"op": "test", "path": "/spec/replicas", "value": 99}]),
                )
                .unwrap(),
            ),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, kube::Error::Api(s) if s.code == 422));

    let bad = deps
        .patch("web", &pp, &Patch::Merge(json!({"spec": {"replicas": -1}})))
        .await
        .unwrap_err();
    match bad {
        kube::Error::Api(s) => {
            assert_eq!(s.code, 422);
            assert_eq!(
                s.message,
                "Deployment.apps \"web\" is invalid: spec.replicas: Invalid value: -1: must be greater than or equal to 0"
            );
        }
        other => panic!("expected Invalid, got {other:?}"),
    }
}

#[tokio::test]
async fn crd_becomes_served_and_custom_resources_work() {
    let srv = FakeApiServer::start().await.unwrap();
    let crds: Api<CustomResourceDefinition> = Api::all(srv.client());
    let crd: CustomResourceDefinition = serde_json::from_value(json!({
        "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": "widgets.example.com"},
        "spec": {"group": "example.com", "scope": "Namespaced",
            "names": {"kind": "Widget", "plural": "widgets", "singular": "widget", "shortNames": ["wd"]},
            "versions": [{"name": "v1", "served": true, "storage": true,
                "subresources": {"status": {}},
                "schema": {"openAPIV3Schema": {"type": "object",
                    "properties": {"spec": {"type": "object", "properties": {"size": {"type": "integer", "default": 3}}},
                        "status": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}}}}}]}
    }))
    .unwrap();
    let created = crds.create(&PostParams::default(), &crd).await.unwrap();
    let conds = created.status.unwrap().conditions.unwrap();
    assert!(
        conds
            .iter()
            .any(|c| c.type_ == "Established" && c.status == "True")
    );

    let gvk = GroupVersionKind::gvk("example.com", "v1", "Widget");
    let ar = ApiResource::from_gvk_with_plural(&gvk, "widgets");
    let widgets: Api<DynamicObject> = Api::default_namespaced_with(srv.client(), &ar);
    let w: DynamicObject = serde_json::from_value(json!({
        "apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w1"}, "spec": {}
    }))
    .unwrap();
    let w = widgets.create(&PostParams::default(), &w).await.unwrap();
    assert_eq!(w.data["spec"]["size"], 3, "schema default applied");
    assert_eq!(w.metadata.generation, Some(1));

    // Status is written only through /status; a server-side apply there records a status-subresource owner.
    let status_apply = json!({"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w1"},
        "status": {"phase": "Ready"}});
    let st = widgets
        .patch_status(
            "w1",
            &PatchParams::apply("status-writer"),
            &Patch::Apply(&status_apply),
        )
        .await
        .unwrap();
    assert_eq!(st.data["status"]["phase"], "Ready");
    assert_eq!(
        st.metadata.generation,
        Some(1),
        "status writes keep the generation"
    );
    let entry = st
        .metadata
        .managed_fields
        .as_ref()
        .unwrap()
        .iter()
        .find(|e| e.manager.as_deref() == Some("status-writer"))
        .unwrap();
    assert_eq!(entry.subresource.as_deref(), Some("status"));
    let main = widgets
        .patch(
            "w1",
            &PatchParams::default(),
            &Patch::Merge(json!({"status": {"phase": "Lost"}, "spec": {"size": 2}})),
        )
        .await
        .unwrap();
    assert_eq!(
        main.data["status"]["phase"], "Ready",
        "main-resource writes ignore status"
    );
    assert_eq!(main.metadata.generation, Some(2));
    let w = main;

    // Custom resources need a resourceVersion on PUT.
    let mut no_rv = w.clone();
    no_rv.metadata.resource_version = None;
    let err = widgets
        .replace("w1", &PostParams::default(), &no_rv)
        .await
        .unwrap_err();
    assert!(matches!(err, kube::Error::Api(s) if s.code == 422));

    // Strategic merge is not supported for custom resources.
    let err = widgets
        .patch(
            "w1",
            &PatchParams::default(),
            &Patch::Strategic(json!({"spec": {"size": 4}})),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, kube::Error::Api(s) if s.code == 415));

    crds.delete("widgets.example.com", &DeleteParams::default())
        .await
        .unwrap();
    let err = widgets.get("w1").await.unwrap_err();
    assert!(matches!(err, kube::Error::Api(s) if s.code == 404));
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

#[tokio::test]
async fn leases_may_be_created_by_put_but_configmaps_may_not() {
    let srv = FakeApiServer::start().await.unwrap();
    let leases: Api<k8s_openapi::api::coordination::v1::Lease> =
        Api::default_namespaced(srv.client());
    let lease: k8s_openapi::api::coordination::v1::Lease = serde_json::from_value(json!({
        "metadata": {"name": "leader"}, "spec": {"holderIdentity": "a", "leaseDurationSeconds": 15}
    }))
    .unwrap();
    let created = leases
        .replace("leader", &PostParams::default(), &lease)
        .await
        .unwrap();
    assert_eq!(created.spec.unwrap().holder_identity.as_deref(), Some("a"));
    let cms: Api<ConfigMap> = Api::default_namespaced(srv.client());
    let err = cms
        .replace(
            "absent",
            &PostParams::default(),
            &configmap("absent", json!({})),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, kube::Error::Api(s) if s.code == 404));
}

#[tokio::test]
async fn simulated_workloads_report_ready_replicas() {
    let srv = FakeApiServer::start_with(fake_apiserver::Options {
        simulate_workloads: true,
        ..Default::default()
    })
    .await
    .unwrap();
    let deps: Api<Deployment> = Api::default_namespaced(srv.client());
    let d = deps
        .create(&PostParams::default(), &deployment("web", 3))
        .await
        .unwrap();
    let status = d.status.unwrap();
    assert_eq!(status.ready_replicas, Some(3));
    assert_eq!(status.observed_generation, Some(1));
    assert!(
        status
            .conditions
            .unwrap()
            .iter()
            .any(|c| c.type_ == "Available" && c.status == "True")
    );
    let scale = deps
        .patch_scale(
            "web",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"replicas": 0}})),
        )
        .await
        .unwrap();
    assert_eq!(scale.status.unwrap().replicas, 0);
    assert_eq!(
        deps.get("web")
            .await
            .unwrap()
            .status
            .unwrap()
            .ready_replicas,
        None
    );

    // Without the option nothing reports readiness.
    let plain = FakeApiServer::start().await.unwrap();
    let deps: Api<Deployment> = Api::default_namespaced(plain.client());
    let d = deps
        .create(&PostParams::default(), &deployment("web", 3))
        .await
        .unwrap();
    assert!(d.status.is_none_or(|s| s.ready_replicas.is_none()));
}
