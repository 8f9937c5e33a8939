//! What the transition executor reads before each planning pass: this cluster's workloads, CronJobs, Stork
//! schedules, cluster domains and ClusterDomainUpdates in the plan's namespaces, and the peer's DRPlan status and
//! running workloads and pods through the peer kubeconfig, as one [`Observed`] snapshot.

use k8s_openapi::api::core::v1::Pod;

use super::*;

impl TransitionExecutor {
    /// A snapshot of live state for the planner.
    pub async fn observe(
        &self,
        plan: &DRPlan,
        spec: &PlanSpec,
        local_domain: &str,
        revision: &str,
        peer_kubeconfig: Option<&str>,
    ) -> Result<Observed, ExecError> {
        let namespaces: BTreeSet<String> = plan.namespaces().into_iter().collect();
        // The plan's schedule lives in the plan's namespace, which (for a plan in the admin namespace) need not be
        // one of the namespaces it protects.
        let mut schedule_namespaces = namespaces.clone();
        schedule_namespaces.insert(spec.namespace.clone());
        let cron_jobs = list_in(&self.client, &namespaces, "CronJobs", |c: KubeCronJob| {
            let annotations = c.annotations().clone();
            let labels = c.labels().clone();
            CronJob {
                namespace: c.namespace().unwrap_or_default(),
                name: c.name_any(),
                suspend: c.spec.as_ref().and_then(|s| s.suspend).unwrap_or(false),
                migrated: annotations.get(MIGRATED).is_some_and(|v| v == "true")
                    || labels.get(MIGRATED).is_some_and(|v| v == "true"),
                suspended_by_us: annotations
                    .get(SUSPENDED_BY_ANNOTATION)
                    .is_some_and(|v| v == SUSPENDED_BY_VALUE),
            }
        });
        let local = async {
            futures::try_join!(
                list_workloads(&self.client, &namespaces),
                cron_jobs,
                list_stork(
                    &self.client,
                    "MigrationSchedule",
                    Some(&schedule_namespaces)
                ),
                list_stork(&self.client, "ClusterDomainsStatus", None),
                list_stork(&self.client, "ClusterDomainUpdate", None),
            )
        };
        // Only a cluster becoming (or being) primary asks the peer anything, at the same time as the local lists.
        // The primary asks the peer for the fence; a standby for the primary's data age.
        let peer = async {
            match peer_kubeconfig {
                Some(kubeconfig) => self.observe_peer(kubeconfig, spec, &namespaces).await,
                None => Peer::Unreachable {
                    error: "no peer kubeconfig".into(),
                },
            }
        };
        // Only a cluster becoming standby drains and hands over. A standby settled in its role (no transition under
        // way) is not asked for its pods and Migrations on every pass: should it find applications running, the
        // transition that stops them starts with the scale-down steps, and the drain is judged on a later pass.
        let previous = PreviousStatus::from_status(plan.status.as_ref());
        let settled_standby = previous.role == Some(crate::plan::Role::Standby)
            && previous
                .transition
                .as_ref()
                .is_none_or(|t| t.finished_at.is_some());
        let hand_over = async {
            if spec.primary == local_domain || settled_standby {
                return Ok((Vec::new(), Vec::new()));
            }
            futures::try_join!(
                list_in(&self.client, &namespaces, "Pods", |p: Pod| p),
                list_final_migrations(&self.client, spec),
            )
        };
        let (local, peer, hand_over) = tokio::join!(local, peer, hand_over);
        let (workloads, cron_jobs, schedules, domain_statuses, domain_updates) = local?;
        let (pods, final_migrations) = hand_over?;
        let mut schedule = None;
        let mut scheduled_migration = None;
        let mut static_copies = Vec::new();
        for s in schedules {
            let namespace = s.namespace().unwrap_or_default();
            let name = s.name_any();
            let is_copy = s
                .annotations()
                .get(STATIC_COPY)
                .is_some_and(|v| v == "true");
            let activated = s
                .data
                .pointer("/status/applicationActivated")
                .and_then(Value::as_bool)
                .unwrap_or(false);
            let is_plans = namespace == spec.namespace && name == spec.name;
            if is_plans {
                scheduled_migration = newest_successful(&s);
                schedule = Some(Schedule {
                    namespace: namespace.clone(),
                    name: name.clone(),
                    suspend: s
                        .data
                        .pointer("/spec/suspend")
                        .and_then(Value::as_bool)
                        .unwrap_or(false),
                    static_copy: is_copy,
                });
            }
            // The plan's own schedule keeps `applicationActivated` from when it was the standby's copy; clearing it
            // on deactivation keeps the peer's Stork from auto-suspending the new primary's schedule.
            if is_copy || (is_plans && activated) {
                static_copies.push(StaticCopy {
                    namespace,
                    name,
                    application_activated: activated,
                });
            }
        }
        let cluster_domains = domain_statuses.first().map(|cds| {
            cds.data
                .pointer("/status/clusterDomainInfos")
                .and_then(Value::as_array)
                .map(|infos| {
                    infos
                        .iter()
                        .filter_map(|i| {
                            Some(DomainState {
                                name: i.get("name")?.as_str()?.to_string(),
                                active: i.get("state").and_then(Value::as_str) == Some("Active"),
                            })
                        })
                        .collect()
                })
                .unwrap_or_default()
        });
        let domain_updates = domain_updates
            .into_iter()
            .map(|u| DomainUpdate {
                name: u.name_any(),
                domain: u
                    .data
                    .pointer("/spec/clusterdomain")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_string(),
                active: u
                    .data
                    .pointer("/spec/active")
                    .and_then(Value::as_bool)
                    .unwrap_or(false),
                status: u
                    .data
                    .pointer("/status/status")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_string(),
                reason: u
                    .data
                    .pointer("/status/reason")
                    .and_then(Value::as_str)
                    .map(str::to_string),
            })
            .collect();
        Ok(Observed {
            local_domain: local_domain.to_string(),
            revision: revision.to_string(),
            now: Timestamp::now(),
            workloads,
            cron_jobs,
            schedule,
            static_copies,
            cluster_domains,
            domain_updates,
            peer,
            previous,
            pods: running_pod_names(&pods),
            final_migrations,
            scheduled_migration,
        })
    }

    /// The client for the peer `kubeconfig` names, built once and reused by later passes.
    async fn peer_client(&self, kubeconfig: &str) -> Result<Client, String> {
        let cached = self
            .peers
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(kubeconfig)
            .cloned();
        if let Some(client) = cached {
            return Ok(client);
        }
        let client = crate::runtime::peer::client(kubeconfig, self.peer_timeout).await?;
        let mut peers = self
            .peers
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        // One entry per Secret content: drop those of rotated kubeconfigs.
        if peers.len() > 64 {
            peers.clear();
        }
        peers.insert(kubeconfig.to_string(), client.clone());
        Ok(client)
    }

    /// The peer's DRPlan status and its running workloads, all under one timeout.
    pub(super) async fn observe_peer(
        &self,
        kubeconfig: &str,
        spec: &PlanSpec,
        namespaces: &BTreeSet<String>,
    ) -> Peer {
        let ask = async {
            let client = self.peer_client(kubeconfig).await?;
            let plans: Api<DRPlan> = Api::namespaced(client.clone(), &spec.namespace);
            let plan = match plans.get_opt(&spec.name).await {
                Ok(plan) => plan,
                Err(kube::Error::Api(s)) if s.code == 404 => None,
                Err(e) => return Err(e.to_string()),
            };
            // Only a peer that says it is standby needs its word checked against its workloads (a peer that says
            // primary is waited for anyway), which keeps each recheck of a waiting fence to one request. Listing may
            // be forbidden; the DRPlan status then decides alone.
            let says_standby = plan
                .as_ref()
                .and_then(|p| p.status.as_ref())
                .is_some_and(|s| s.role == Some(crate::plan::Role::Standby));
            let (running, pods) = if says_standby {
                let running = list_workloads(&client, namespaces)
                    .await
                    .ok()
                    .map(|ws| ws.iter().filter(|w| w.replicas.unwrap_or(1) > 0).count() as u32);
                // Workloads at 0 are not enough: their pods may still be terminating, and writing. (A peer still
                // running a workload is waited for anyway; one whose workloads could not be listed is still
                // checked for pods.)
                let pods = if running.unwrap_or(0) == 0 {
                    list_in(&client, namespaces, "Pods", |p: Pod| p)
                        .await
                        .ok()
                        .map(|pods| running_pod_names(&pods))
                } else {
                    None
                };
                (running, pods)
            } else {
                (None, None)
            };
            Ok(Peer::Reachable {
                plan: plan.map(|p| PeerPlan::from_status(p.status.as_ref())),
                running_workloads: running,
                running_pods: pods,
            })
        };
        match tokio::time::timeout(self.peer_timeout, ask).await {
            Ok(Ok(peer)) => peer,
            Ok(Err(error)) => Peer::Unreachable { error },
            Err(_) => Peer::Unreachable {
                error: format!("no answer within {}s", self.peer_timeout.as_secs_f32()),
            },
        }
    }
}

pub(super) fn empty_observation(local_domain: &str, revision: &str) -> Observed {
    Observed {
        local_domain: local_domain.to_string(),
        revision: revision.to_string(),
        now: Timestamp::now(),
        workloads: Vec::new(),
        cron_jobs: Vec::new(),
        schedule: None,
        static_copies: Vec::new(),
        cluster_domains: None,
        domain_updates: Vec::new(),
        peer: Peer::Unreachable {
            error: "not observed".into(),
        },
        previous: PreviousStatus::default(),
        pods: Vec::new(),
        final_migrations: Vec::new(),
        scheduled_migration: None,
    }
}

/// The newest `Successful` run a MigrationSchedule records in `status.items` (every policy type).
fn newest_successful(schedule: &DynamicObject) -> Option<crate::plan::types::MigrationRecord> {
    let items = schedule.data.pointer("/status/items")?.as_object()?;
    items
        .values()
        .filter_map(Value::as_array)
        .flatten()
        .filter(|item| item.get("status").and_then(Value::as_str) == Some("Successful"))
        .filter_map(|item| {
            let finished = item.get("finishTimestamp")?.as_str()?;
            let at: Timestamp = finished.parse().ok()?;
            Some((at, item))
        })
        .max_by_key(|(at, _)| *at)
        .map(|(at, item)| crate::plan::types::MigrationRecord {
            name: item
                .get("name")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string(),
            revision: None,
            status: Some("Successful".into()),
            finished_at: Some(
                Timestamp::from_second(at.as_second())
                    .unwrap_or(at)
                    .to_string(),
            ),
            from: None,
        })
}

/// `namespace/name` of the pods that have not finished (running, pending or terminating; completed Job pods
/// excluded).
fn running_pod_names(pods: &[Pod]) -> Vec<String> {
    let mut names: Vec<String> = pods
        .iter()
        .filter(|p| crate::cluster::pods::not_finished(p))
        .map(|p| format!("{}/{}", p.namespace().unwrap_or_default(), p.name_any()))
        .collect();
    names.sort();
    names
}

/// The plan's final Migrations in its namespace (by label), with what Stork reports of each.
async fn list_final_migrations(
    client: &Client,
    spec: &PlanSpec,
) -> Result<Vec<MigrationRecord>, ExecError> {
    let api: Api<DynamicObject> = Api::namespaced_with(
        client.clone(),
        &spec.namespace,
        &stork_resource("Migration"),
    );
    let selector = format!("{PLAN_LABEL}={},{FINAL_MIGRATION_LABEL}=true", spec.name);
    let list = match api.list(&ListParams::default().labels(&selector)).await {
        Ok(list) => list.items,
        Err(kube::Error::Api(s)) if s.code == 404 => Vec::new(),
        Err(e) => {
            return Err(ExecError::List {
                what: "Migrations".into(),
                source: e.into(),
            });
        }
    };
    let mut records: Vec<MigrationRecord> = list.iter().map(migration_record).collect();
    for record in records
        .iter_mut()
        .filter(|r| r.failed() && r.reason.is_none())
    {
        record.reason = warning_event(client, &spec.namespace, &record.name).await;
    }
    Ok(records)
}

/// The newest Warning Event Stork recorded on a Migration: where it says why a Migration without volumes failed.
/// Unreadable Events leave the reason unknown (the status says to describe the Migration).
async fn warning_event(client: &Client, namespace: &str, name: &str) -> Option<String> {
    use k8s_openapi::api::core::v1::Event;
    let api: Api<Event> = Api::namespaced(client.clone(), namespace);
    let selector = format!("involvedObject.kind=Migration,involvedObject.name={name},type=Warning");
    let events = api
        .list(&ListParams::default().fields(&selector))
        .await
        .ok()?;
    events
        .items
        .into_iter()
        .max_by_key(|e| {
            e.last_timestamp
                .as_ref()
                .map(|t| t.0)
                .or(e.event_time.as_ref().map(|t| t.0))
        })
        .and_then(|e| e.message)
}

/// What the planner reads of a Stork Migration. Stork writes no reason on the Migration itself: a failure's
/// reasons are on the volumes and resources it could not migrate.
pub(super) fn migration_record(m: &DynamicObject) -> MigrationRecord {
    let text = |path: &str| {
        m.data
            .pointer(path)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string()
    };
    let mut reasons: Vec<String> = Vec::new();
    for list in ["/status/volumes", "/status/resources"] {
        for item in m
            .data
            .pointer(list)
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let failed = item.get("status").and_then(Value::as_str) == Some("Failed");
            if let (true, Some(reason)) = (failed, item.get("reason").and_then(Value::as_str)) {
                let what = item
                    .get("persistentVolumeClaim")
                    .or_else(|| item.get("name"))
                    .and_then(Value::as_str)
                    .unwrap_or("?");
                reasons.push(format!("{what}: {reason}"));
            }
        }
    }
    MigrationRecord {
        name: m.name_any(),
        status: text("/status/status"),
        stage: text("/status/stage"),
        reason: (!reasons.is_empty()).then(|| reasons.join("; ")),
        finished_at: m
            .data
            .pointer("/status/finishTimestamp")
            .and_then(Value::as_str)
            .and_then(|t| t.parse().ok()),
        transition_started_at: m.annotations().get(TRANSITION_ANNOTATION).cloned(),
    }
}

pub(super) fn stork_resource(kind: &str) -> ApiResource {
    let plural = match kind {
        "ClusterDomainsStatus" => "clusterdomainsstatuses".to_string(),
        other => format!("{}s", other.to_ascii_lowercase()),
    };
    ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("stork.libopenstorage.org", "v1alpha1", kind),
        &plural,
    )
}

/// Lists a Stork kind (in `namespaces`, or cluster-wide); a kind whose CRD is not installed lists as empty.
pub(super) async fn list_stork(
    client: &Client,
    kind: &str,
    namespaces: Option<&BTreeSet<String>>,
) -> Result<Vec<DynamicObject>, ExecError> {
    let resource = stork_resource(kind);
    let api: Api<DynamicObject> = Api::all_with(client.clone(), &resource);
    match api.list(&ListParams::default()).await {
        Ok(list) => Ok(list
            .items
            .into_iter()
            .filter(|o| namespaces.is_none_or(|ns| o.namespace().is_some_and(|n| ns.contains(&n))))
            .collect()),
        Err(kube::Error::Api(s)) if s.code == 404 => Ok(Vec::new()),
        Err(e) => Err(ExecError::List {
            what: format!("{kind}s"),
            source: e.into(),
        }),
    }
}

/// Lists a namespaced kind in the plan's namespaces (per namespace for few, cluster-wide and filtered for many).
pub(super) async fn list_in<K, T>(
    client: &Client,
    namespaces: &BTreeSet<String>,
    what: &str,
    map: impl Fn(K) -> T,
) -> Result<Vec<T>, ExecError>
where
    K: Resource<DynamicType = (), Scope = k8s_openapi::NamespaceResourceScope>
        + Clone
        + serde::de::DeserializeOwned
        + std::fmt::Debug,
{
    let err = |e: kube::Error| ExecError::List {
        what: what.to_string(),
        source: e.into(),
    };
    let mut items = Vec::new();
    if namespaces.len() > PER_NAMESPACE_LIST_LIMIT {
        let api: Api<K> = Api::all(client.clone());
        let list = api.list(&ListParams::default()).await.map_err(err)?;
        items.extend(list.items.into_iter().filter(|o| {
            o.meta()
                .namespace
                .as_ref()
                .is_some_and(|n| namespaces.contains(n))
        }));
    } else {
        for ns in namespaces {
            let api: Api<K> = Api::namespaced(client.clone(), ns);
            items.extend(api.list(&ListParams::default()).await.map_err(err)?.items);
        }
    }
    Ok(items.into_iter().map(map).collect())
}

/// Deployments, StatefulSets and owner-less ReplicaSets in the plan's namespaces.
pub(super) async fn list_workloads(
    client: &Client,
    namespaces: &BTreeSet<String>,
) -> Result<Vec<Workload>, ExecError> {
    let reference = |kind, namespace: Option<String>, name: String| WorkloadRef {
        kind,
        namespace: namespace.unwrap_or_default(),
        name,
    };
    let deployments = list_in(client, namespaces, "Deployments", |d: Deployment| {
        Workload::new(
            reference(WorkloadKind::Deployment, d.namespace(), d.name_any()),
            d.spec.as_ref().and_then(|s| s.replicas),
            d.annotations(),
        )
    });
    let stateful_sets = list_in(client, namespaces, "StatefulSets", |s: StatefulSet| {
        Workload::new(
            reference(WorkloadKind::StatefulSet, s.namespace(), s.name_any()),
            s.spec.as_ref().and_then(|s| s.replicas),
            s.annotations(),
        )
    });
    let replica_sets = list_in(client, namespaces, "ReplicaSets", |r: ReplicaSet| {
        let owned = r
            .metadata
            .owner_references
            .as_ref()
            .is_some_and(|o| !o.is_empty());
        (!owned).then(|| {
            Workload::new(
                reference(WorkloadKind::ReplicaSet, r.namespace(), r.name_any()),
                r.spec.as_ref().and_then(|s| s.replicas),
                r.annotations(),
            )
        })
    });
    let (mut out, stateful_sets, replica_sets) =
        futures::try_join!(deployments, stateful_sets, replica_sets)?;
    out.extend(stateful_sets);
    out.extend(replica_sets.into_iter().flatten());
    out.sort_by(|a, b| a.workload.cmp(&b.workload));
    Ok(out)
}
