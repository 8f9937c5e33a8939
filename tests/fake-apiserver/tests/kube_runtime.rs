//! kube-rs runtime against the library: watches and their 410 path, watcher + reflector across a compaction,
//! `finalizer()`, a `Controller`, the event `Recorder`, server-side apply conflicts, paging and metadata APIs.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use common::eventually;
use fake_apiserver::FakeApiServer;
use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::ConfigMap;
use k8s_openapi::api::events::v1::Event as K8sEvent;
use kube::api::{
    Api, DeleteParams, ListParams, PartialObjectMeta, Patch, PatchParams, PostParams, WatchEvent,
    WatchParams,
};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::events::{Event, EventType, Recorder, Reporter};
use kube::runtime::finalizer::{Event as Finalizer, finalizer};
use kube::runtime::{WatchStreamExt, reflector, watcher};
use kube::{Resource, ResourceExt};
use serde_json::json;

fn cm(name: &str) -> ConfigMap {
    serde_json::from_value(json!({"metadata": {"name": name}, "data": {"k": "v"}})).unwrap()
}

#[tokio::test]
async fn watch_resumes_exactly_and_expires_after_compaction() {
    let srv = FakeApiServer::start().await.unwrap();
    let cms: Api<ConfigMap> = Api::default_namespaced(srv.client());
    let a = cms.create(&PostParams::default(), &cm("a")).await.unwrap();
    let rv_a = a.resource_version().unwrap();
    cms.create(&PostParams::default(), &cm("b")).await.unwrap();

    // From a's resourceVersion only the later change arrives.
    let mut stream = cms
        .watch(&WatchParams::default().timeout(5), &rv_a)
        .await
        .unwrap()
        .boxed();
    match stream.try_next().await.unwrap() {
        Some(WatchEvent::Added(o)) => assert_eq!(o.name_any(), "b"),
        other => panic!("expected ADDED b, got {other:?}"),
    }

    srv.compact();
    // The open watch ends with a 410 ERROR event...
    match tokio::time::timeout(Duration::from_secs(5), stream.try_next())
        .await
        .unwrap()
        .unwrap()
    {
        Some(WatchEvent::Error(e)) => {
            assert_eq!(e.code, 410);
            assert_eq!(e.reason, "Expired");
        }
        other => panic!("expected a 410 ERROR event, got {other:?}"),
    }
    // ...and so does a new watch from before the compaction.
    let mut stream = cms
        .watch(&WatchParams::default().timeout(5), &rv_a)
        .await
        .unwrap()
        .boxed();
    match stream.try_next().await.unwrap() {
        Some(WatchEvent::Error(e)) => assert_eq!(e.code, 410),
        other => panic!("expected a 410 ERROR event, got {other:?}"),
    }
}

#[tokio::test]
async fn watch_ends_at_its_timeout_with_a_bookmark() {
    let srv = FakeApiServer::start().await.unwrap();
    let cms: Api<ConfigMap> = Api::default_namespaced(srv.client());
    let stream = cms
        .watch(&WatchParams::default().timeout(1), "0")
        .await
        .unwrap();
    let events: Vec<_> =
        tokio::time::timeout(Duration::from_secs(20), stream.try_collect::<Vec<_>>())
            .await
            .expect("the server ends the watch at timeoutSeconds")
            .unwrap();
    let rv = srv.resource_version().to_string();
    match events.last() {
        Some(WatchEvent::Bookmark(b)) => assert_eq!(b.metadata.resource_version, rv),
        other => panic!("expected a closing bookmark, got {other:?}"),
    }
}

#[tokio::test]
async fn reflector_stays_in_sync_across_compaction() {
    let srv = FakeApiServer::start().await.unwrap();
    let cms: Api<ConfigMap> = Api::default_namespaced(srv.client());
    cms.create(&PostParams::default(), &cm("a")).await.unwrap();
    let (reader, writer) = reflector::store();
    let inits = Arc::new(AtomicUsize::new(0));
    let counter = inits.clone();
    let stream = reflector(writer, watcher(cms.clone(), watcher::Config::default()))
        .inspect_ok(move |e| {
            if matches!(e, watcher::Event::Init) {
                counter.fetch_add(1, Ordering::SeqCst);
            }
        })
        .default_backoff()
        .applied_objects();
    let task = tokio::spawn(stream.for_each(|_| async {}));
    reader.wait_until_ready().await.unwrap();
    cms.create(&PostParams::default(), &cm("b")).await.unwrap();
    eventually(10, "b in the store", || async {
        (reader.state().len() == 2).then_some(())
    })
    .await;

    srv.compact();
    eventually(10, "a relist after the 410", || async {
        (inits.load(Ordering::SeqCst) >= 2).then_some(())
    })
    .await;
    cms.delete("a", &DeleteParams::default()).await.unwrap();
    cms.create(&PostParams::default(), &cm("c")).await.unwrap();
    eventually(10, "store = {b, c}", || async {
        let mut names: Vec<String> = reader.state().iter().map(|o| o.name_any()).collect();
        names.sort();
        (names == ["b", "c"]).then_some(())
    })
    .await;
    task.abort();
}

#[tokio::test]
async fn streaming_list_and_metadata_watcher() {
    let srv = FakeApiServer::start().await.unwrap();
    let cms: Api<ConfigMap> = Api::default_namespaced(srv.client());
    cms.create(&PostParams::default(), &cm("a")).await.unwrap();
    let (reader, writer) = reflector::store();
    let stream = reflector(
        writer,
        watcher(cms.clone(), watcher::Config::default().streaming_lists()),
    )
    .default_backoff()
    .applied_objects();
    let task = tokio::spawn(stream.for_each(|_| async {}));
    tokio::time::timeout(Duration::from_secs(10), reader.wait_until_ready())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(reader.state().len(), 1);
    task.abort();

    let metas: Api<PartialObjectMeta<ConfigMap>> = Api::default_namespaced(srv.client());
    let meta = watcher(metas, watcher::Config::default())
        .applied_objects()
        .boxed();
    let first = tokio::time::timeout(Duration::from_secs(10), meta.take(1).collect::<Vec<_>>())
        .await
        .unwrap();
    let obj = first.into_iter().next().unwrap().unwrap();
    assert_eq!(obj.name_any(), "a");
}

#[tokio::test]
async fn list_pages_with_continue_tokens() {
    let srv = FakeApiServer::start().await.unwrap();
    let cms: Api<ConfigMap> = Api::default_namespaced(srv.client());
    for i in 0..5 {
        cms.create(&PostParams::default(), &cm(&format!("c{i}")))
            .await
            .unwrap();
    }
    let first = cms.list(&ListParams::default().limit(2)).await.unwrap();
    assert_eq!(first.items.len(), 2);
    let token = first.metadata.continue_.clone().unwrap();
    let second = cms
        .list(&ListParams::default().limit(2).continue_token(&token))
        .await
        .unwrap();
    let third = cms
        .list(
            &ListParams::default()
                .limit(2)
                .continue_token(second.metadata.continue_.as_deref().unwrap()),
        )
        .await
        .unwrap();
    let names: Vec<String> = first
        .items
        .iter()
        .chain(&second.items)
        .chain(&third.items)
        .map(|o| o.name_any())
        .collect();
    assert_eq!(names, ["c0", "c1", "c2", "c3", "c4"]);
    assert!(
        third
            .metadata
            .continue_
            .as_deref()
            .is_none_or(str::is_empty)
    );

    srv.compact();
    let again = cms.list(&ListParams::default().limit(2)).await.unwrap();
    srv.compact();
    let err = cms
        .list(
            &ListParams::default()
                .limit(2)
                .continue_token(again.metadata.continue_.as_deref().unwrap()),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, kube::Error::Api(s) if s.code == 410 && s.reason == "Expired"));
}

#[tokio::test]
async fn finalizer_helper_adds_and_releases() {
    let srv = FakeApiServer::start().await.unwrap();
    let cms: Api<ConfigMap> = Api::default_namespaced(srv.client());
    cms.create(&PostParams::default(), &cm("f")).await.unwrap();
    let run = |obj: ConfigMap| {
        let cms = cms.clone();
        async move {
            finalizer(
                &cms,
                "example.com/cleanup",
                Arc::new(obj),
                |ev| async move {
                    Ok::<_, std::io::Error>(match ev {
                        Finalizer::Apply(_) | Finalizer::Cleanup(_) => Action::await_change(),
                    })
                },
            )
            .await
        }
    };
    run(cms.get("f").await.unwrap()).await.unwrap();
    let obj = cms.get("f").await.unwrap();
    assert_eq!(obj.finalizers(), ["example.com/cleanup"]);

    cms.delete("f", &DeleteParams::default()).await.unwrap();
    let marked = cms.get("f").await.unwrap();
    assert!(marked.metadata.deletion_timestamp.is_some());
    run(marked).await.unwrap();
    let err = cms.get("f").await.unwrap_err();
    assert!(matches!(err, kube::Error::Api(s) if s.code == 404));
}

#[tokio::test]
async fn controller_reconciles_objects() {
    let srv = FakeApiServer::start().await.unwrap();
    let cms: Api<ConfigMap> = Api::default_namespaced(srv.client());
    let ctx = Arc::new(cms.clone());
    let controller = Controller::new(cms.clone(), watcher::Config::default())
        .run(
            |obj: Arc<ConfigMap>, api: Arc<Api<ConfigMap>>| async move {
                let patch = json!({"metadata": {"annotations": {"reconciled": "yes"}}});
                api.patch(
                    &obj.name_any(),
                    &PatchParams::default(),
                    &Patch::Merge(patch),
                )
                .await?;
                Ok::<_, kube::Error>(Action::await_change())
            },
            |_, _, _| Action::requeue(Duration::from_millis(50)),
            ctx,
        )
        .for_each(|_| async {});
    let task = tokio::spawn(controller);
    cms.create(&PostParams::default(), &cm("r")).await.unwrap();
    eventually(10, "the reconciler's annotation", || async {
        let o = cms.get("r").await.ok()?;
        (o.annotations().get("reconciled").map(String::as_str) == Some("yes")).then_some(())
    })
    .await;
    task.abort();
}

#[tokio::test]
async fn recorder_publishes_events() {
    let srv = FakeApiServer::start().await.unwrap();
    let cms: Api<ConfigMap> = Api::default_namespaced(srv.client());
    let obj = cms.create(&PostParams::default(), &cm("e")).await.unwrap();
    let recorder = Recorder::new(
        srv.client(),
        Reporter {
            controller: "tester".into(),
            instance: None,
        },
    );
    let ev = Event {
        type_: EventType::Normal,
        reason: "Checked".into(),
        note: Some("all good".into()),
        action: "Check".into(),
        secondary: None,
    };
    recorder.publish(&ev, &obj.object_ref(&())).await.unwrap();
    recorder.publish(&ev, &obj.object_ref(&())).await.unwrap();
    let events: Api<K8sEvent> = Api::default_namespaced(srv.client());
    let list = events.list(&ListParams::default()).await.unwrap();
    assert_eq!(
        list.items.len(),
        1,
        "the repeat is recorded as a series on the same event"
    );
    let e = &list.items[0];
    assert_eq!(e.reason.as_deref(), Some("Checked"));
    assert_eq!(
        e.regarding.as_ref().and_then(|r| r.name.as_deref()),
        Some("e")
    );
    assert!(e.series.is_some());

    // Both Event APIs serve the same objects, as in a real cluster.
    let core: Api<k8s_openapi::api::core::v1::Event> = Api::default_namespaced(srv.client());
    let core_events = core
        .list(&ListParams::default().fields("involvedObject.name=e"))
        .await
        .unwrap();
    assert_eq!(core_events.items.len(), 1);
    assert_eq!(core_events.items[0].message.as_deref(), Some("all good"));
    assert_eq!(
        core_events.items[0].reporting_component.as_deref(),
        Some("tester")
    );
}

#[tokio::test]
async fn server_side_apply_conflicts_force_and_removal() {
    let srv = FakeApiServer::start().await.unwrap();
    let deps: Api<Deployment> = Api::default_namespaced(srv.client());
    let applied = json!({
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web", "labels": {"a": "1", "b": "2"}},
        "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "web"}},
            "template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{"name": "c", "image": "nginx:1.27"}]}}}
    });
    deps.patch("web", &PatchParams::apply("alpha"), &Patch::Apply(&applied))
        .await
        .unwrap();

    // Same value from another manager: shared ownership, no conflict.
    let same = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"}, "spec": {"replicas": 2}});
    deps.patch("web", &PatchParams::apply("beta"), &Patch::Apply(&same))
        .await
        .unwrap();

    let differ = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"}, "spec": {"replicas": 7}});
    let err = deps
        .patch("web", &PatchParams::apply("gamma"), &Patch::Apply(&differ))
        .await
        .unwrap_err();
    match err {
        kube::Error::Api(s) => {
            assert_eq!(s.code, 409);
            assert!(
                s.message.starts_with("Apply failed with 2 conflicts:"),
                "{}",
                s.message
            );
            assert!(s.message.contains(".spec.replicas"), "{}", s.message);
        }
        other => panic!("expected a conflict, got {other:?}"),
    }
    let d = deps
        .patch(
            "web",
            &PatchParams::apply("gamma").force(),
            &Patch::Apply(&differ),
        )
        .await
        .unwrap();
    assert_eq!(d.spec.unwrap().replicas, Some(7));

    // alpha stops applying label b: it is removed.
    let mut fewer = applied.clone();
    fewer["metadata"]["labels"] = json!({"a": "1"});
    fewer["spec"].as_object_mut().unwrap().remove("replicas");
    let d = deps
        .patch("web", &PatchParams::apply("alpha"), &Patch::Apply(&fewer))
        .await
        .unwrap();
    assert_eq!(d.labels().get("b"), None);
    assert_eq!(d.labels().get("a").map(String::as_str), Some("1"));
    assert_eq!(d.spec.unwrap().replicas, Some(7), "still owned by gamma");
    assert_eq!(Deployment::kind(&()), "Deployment");
}
