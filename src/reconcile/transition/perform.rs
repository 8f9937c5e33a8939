//! How the transition executor carries out the planner's actions: scale and annotate workloads, suspend or resume
//! CronJobs and schedules, set Stork's `applicationActivated`, create ClusterDomainUpdates; each write as the
//! field manager `drgitops`, with bounded parallelism.

use super::*;

impl TransitionExecutor {
    /// Performs one outcome's actions: object writes with bounded parallelism, the role apply last.
    /// Performs one outcome's object writes with bounded parallelism ([`Action::ApplyRoleObjects`] is the caller's).
    pub(super) async fn perform(&self, actions: &[Action]) -> Result<(), ExecError> {
        // Owned actions: futures that borrow from a closure argument are not provably `Send` for every lifetime,
        // and the plan controller runs this inside a spawned task.
        let writes: Vec<Action> = actions
            .iter()
            .filter(|a| !matches!(a, Action::ApplyRoleObjects))
            .cloned()
            .collect();
        stream::iter(writes)
            .map(|a| async move { self.perform_one(&a).await })
            .buffer_unordered(self.parallelism)
            .try_collect::<Vec<()>>()
            .await?;
        Ok(())
    }

    /// A merge patch on a MigrationSchedule (Stork's own or ours).
    pub(super) async fn merge_patch_schedule(
        &self,
        namespace: &str,
        name: &str,
        params: &PatchParams,
        patch: Value,
    ) -> Result<(), kube::Error> {
        let api: Api<DynamicObject> = Api::namespaced_with(
            self.client.clone(),
            namespace,
            &stork_resource("MigrationSchedule"),
        );
        api.patch(name, params, &Patch::Merge(patch))
            .await
            .map(drop)
    }

    pub(super) async fn perform_one(&self, action: &Action) -> Result<(), ExecError> {
        let params = PatchParams {
            field_manager: Some(FIELD_MANAGER.into()),
            ..Default::default()
        };
        let result = match action {
            Action::CreateDomainUpdate {
                name,
                domain,
                active,
            } => {
                let api: Api<DynamicObject> =
                    Api::all_with(self.client.clone(), &stork_resource("ClusterDomainUpdate"));
                let mut object = DynamicObject::new(name, &stork_resource("ClusterDomainUpdate"));
                object.metadata.labels = Some(BTreeMap::from([(
                    MANAGED_BY.to_string(),
                    MANAGED_BY_VALUE.to_string(),
                )]));
                object.data = json!({"spec": {"clusterdomain": domain, "active": active}});
                match api
                    .create(
                        &PostParams {
                            field_manager: Some(FIELD_MANAGER.into()),
                            ..Default::default()
                        },
                        &object,
                    )
                    .await
                {
                    Err(kube::Error::Api(s)) if s.code == 409 => Ok(()),
                    other => other.map(drop),
                }
            }
            Action::SetScheduleSuspend {
                namespace,
                name,
                suspend,
            } => {
                self.merge_patch_schedule(
                    namespace,
                    name,
                    &params,
                    json!({"spec": {"suspend": suspend}}),
                )
                .await
            }
            Action::ScaleDown { workload, record } => {
                let mut patch = json!({"spec": {"replicas": 0}});
                if let Some(n) = record {
                    patch["metadata"] =
                        json!({"annotations": {transition::REPLICAS_ANNOTATION: n.to_string()}});
                }
                patch_workload(&self.client, workload, &params, patch).await
            }
            Action::ScaleUp { workload, replicas } => {
                patch_workload(
                    &self.client,
                    workload,
                    &params,
                    json!({"spec": {"replicas": replicas}}),
                )
                .await
            }
            Action::SetCronJobSuspend {
                namespace,
                name,
                suspend,
            } => {
                let api: Api<KubeCronJob> = Api::namespaced(self.client.clone(), namespace);
                let mark = if *suspend {
                    Value::from(SUSPENDED_BY_VALUE)
                } else {
                    Value::Null
                };
                let patch = json!({"metadata": {"annotations": {SUSPENDED_BY_ANNOTATION: mark}}, "spec": {"suspend": suspend}});
                api.patch(name, &params, &Patch::Merge(patch))
                    .await
                    .map(drop)
            }
            Action::SetApplicationActivated {
                namespace,
                name,
                activated,
            } => {
                // Stork's CRDs have no status subresource: status is written on the object itself.
                self.merge_patch_schedule(
                    namespace,
                    name,
                    &params,
                    json!({"status": {"applicationActivated": activated}}),
                )
                .await
            }
            Action::CreateMigration {
                namespace,
                name: _,
                object,
            } => {
                let api: Api<DynamicObject> = Api::namespaced_with(
                    self.client.clone(),
                    namespace,
                    &stork_resource("Migration"),
                );
                match serde_json::from_value::<DynamicObject>(object.clone()) {
                    Ok(migration) => match api
                        .create(
                            &PostParams {
                                field_manager: Some(FIELD_MANAGER.into()),
                                ..Default::default()
                            },
                            &migration,
                        )
                        .await
                    {
                        // Created by an earlier pass that crashed before reading it back.
                        Err(kube::Error::Api(s)) if s.code == 409 => Ok(()),
                        other => other.map(drop),
                    },
                    Err(e) => Err(kube::Error::SerdeError(e)),
                }
            }
            Action::DeleteMigration { namespace, name } => {
                let api: Api<DynamicObject> = Api::namespaced_with(
                    self.client.clone(),
                    namespace,
                    &stork_resource("Migration"),
                );
                match api.delete(name, &Default::default()).await {
                    Err(kube::Error::Api(s)) if s.code == 404 => Ok(()),
                    other => other.map(drop),
                }
            }
            Action::ApplyRoleObjects => Ok(()),
        };
        result.map_err(|e| ExecError::Act {
            action: describe(action),
            source: e.into(),
        })
    }
}

pub(super) fn describe(action: &Action) -> String {
    match action {
        Action::CreateDomainUpdate { name, .. } => format!("creating ClusterDomainUpdate {name}"),
        Action::SetScheduleSuspend {
            namespace,
            name,
            suspend,
        } => {
            format!("setting suspend: {suspend} on MigrationSchedule {namespace}/{name}")
        }
        Action::ScaleDown { workload, .. } => format!("scaling {workload} to 0"),
        Action::ScaleUp { workload, replicas } => format!("scaling {workload} to {replicas}"),
        Action::SetCronJobSuspend {
            namespace,
            name,
            suspend,
        } => {
            format!("setting suspend: {suspend} on CronJob {namespace}/{name}")
        }
        Action::SetApplicationActivated {
            namespace,
            name,
            activated,
        } => {
            format!(
                "setting applicationActivated: {activated} on MigrationSchedule {namespace}/{name}"
            )
        }
        Action::CreateMigration {
            namespace, name, ..
        } => format!("creating Migration {namespace}/{name}"),
        Action::DeleteMigration { namespace, name } => {
            format!("deleting Migration {namespace}/{name}")
        }
        Action::ApplyRoleObjects => "applying this cluster's objects".into(),
    }
}

pub(super) async fn patch_workload(
    client: &Client,
    w: &WorkloadRef,
    params: &PatchParams,
    patch: Value,
) -> Result<(), kube::Error> {
    let patch = Patch::Merge(patch);
    match w.kind {
        WorkloadKind::Deployment => Api::<Deployment>::namespaced(client.clone(), &w.namespace)
            .patch(&w.name, params, &patch)
            .await
            .map(drop),
        WorkloadKind::StatefulSet => Api::<StatefulSet>::namespaced(client.clone(), &w.namespace)
            .patch(&w.name, params, &patch)
            .await
            .map(drop),
        WorkloadKind::ReplicaSet => Api::<ReplicaSet>::namespaced(client.clone(), &w.namespace)
            .patch(&w.name, params, &patch)
            .await
            .map(drop),
    }
}
