//! What the plan controller reads besides the plan before it renders: the Secrets a plan names (the peer's
//! kubeconfig, its Portworx endpoint) and whether the peer cluster answers.

use kube::api::{Patch, PatchParams};

use super::*;
use crate::stork::keys::{FIELD_MANAGER, SKIP_RESOURCE};

impl PlanController {
    /// The cluster's DRPlans as stored, so that one which does not read as a DRPlan cannot fail the list.
    pub(super) async fn list_stored_plans(&self) -> Result<Vec<DynamicObject>, kube::Error> {
        let resource = ApiResource::erase::<DRPlan>(&());
        let api: Api<DynamicObject> = Api::all_with(self.applier.client().clone(), &resource);
        Ok(api.list(&ListParams::default()).await?.items)
    }
    /// Reads the Secrets the plan names and probes the peer. A missing Secret or key is a Stalled condition.
    pub(super) async fn gather_inputs(
        &self,
        plan: &DRPlan,
        role: Role,
    ) -> Result<RenderInputs, PlanProblem> {
        let namespace = plan.namespace().unwrap_or_default();
        let secrets: Api<Secret> = Api::namespaced(self.applier.client().clone(), &namespace);
        let pair = &plan.spec.cluster_pair;
        let kubeconfig_ref = &pair.peer_kubeconfig_secret;
        let kubeconfig = read_secret_key(
            &secrets,
            &namespace,
            &kubeconfig_ref.name,
            &kubeconfig_ref.key,
        )
        .await?;
        self.keep_on_this_cluster(&secrets, &namespace, &kubeconfig_ref.name)
            .await?;
        let storage = match (&plan.spec.mode, &pair.storage_secret) {
            (Mode::Async, Some(secret)) => {
                let Some(found) = read_secret(&secrets, &namespace, &secret.name).await? else {
                    return Err(PlanProblem::stalled(
                        "MissingSecret",
                        format!(
                            "Secret {namespace}/{} not found: create it on this cluster with keys ip, port and token",
                            secret.name
                        ),
                    ));
                };
                self.keep_on_this_cluster(&secrets, &namespace, &secret.name)
                    .await?;
                let mut values = BTreeMap::new();
                for key in ["ip", "port", "token"] {
                    let value = secret_value(&found, key).ok_or_else(|| {
                        PlanProblem::stalled(
                            "MissingSecret",
                            format!(
                                "Secret {namespace}/{} has no key {key:?}: add it",
                                secret.name
                            ),
                        )
                    })?;
                    values.insert(key, value);
                }
                Some(StorageOptions {
                    ip: values.remove("ip").unwrap_or_default(),
                    port: values.remove("port").unwrap_or_default(),
                    token: values.remove("token").unwrap_or_default(),
                    backuplocation: secret_value(&found, "backuplocation"),
                })
            }
            _ => None,
        };
        // A standby suspends its schedule whatever the peer does; only a primary needs to know.
        let peer_reachable = match role {
            Role::Primary => self.probe_peer(&kubeconfig).await,
            Role::Standby => true,
        };
        Ok(RenderInputs {
            peer_kubeconfig: Some(kubeconfig),
            storage,
            peer_reachable,
        })
    }

    /// Marks a per-cluster Secret (the peer's kubeconfig, its storage endpoint) with Stork's `skip-resource`
    /// annotation. Stork migrates every Secret of a migrated namespace: without the mark, the primary's Secret,
    /// which points at the standby, would overwrite the standby's, which points back, and the standby would take
    /// itself for its peer.
    async fn keep_on_this_cluster(
        &self,
        secrets: &Api<Secret>,
        namespace: &str,
        name: &str,
    ) -> Result<(), PlanProblem> {
        let Some(secret) = read_secret(secrets, namespace, name).await? else {
            return Ok(());
        };
        let marked = secret
            .annotations()
            .get(SKIP_RESOURCE)
            .is_some_and(|v| v == "true");
        if marked || self.config.dry_run {
            return Ok(());
        }
        let patch = json!({"metadata": {"annotations": {SKIP_RESOURCE: "true"}}});
        let params = PatchParams {
            field_manager: Some(FIELD_MANAGER.into()),
            ..Default::default()
        };
        match secrets.patch(name, &params, &Patch::Merge(&patch)).await {
            Ok(_) => Ok(()),
            Err(e) => Err(PlanProblem::stalled(
                "SecretNotMarked",
                format!(
                    "cannot annotate Secret {namespace}/{name} so Stork does not migrate it to the peer ({e}); \
                     annotate it yourself: kubectl -n {namespace} annotate secret {name} {SKIP_RESOURCE}=true"
                ),
            )),
        }
    }

    pub(super) async fn probe_peer(&self, kubeconfig: &str) -> bool {
        if let Some(known) = self.probes.lock().await.get(kubeconfig) {
            return *known;
        }
        let reachable = crate::runtime::peer::reachable(kubeconfig, self.config.peer_timeout).await;
        self.probes
            .lock()
            .await
            .insert(kubeconfig.to_string(), reachable);
        reachable
    }
}

pub(super) async fn read_secret(
    api: &Api<Secret>,
    namespace: &str,
    name: &str,
) -> Result<Option<Secret>, PlanProblem> {
    api.get_opt(name).await.map_err(|e| {
        let message = format!("cannot read Secret {namespace}/{name}: {e}");
        match &e {
            kube::Error::Api(status) if status.code == 403 => {
                PlanProblem::stalled("SecretForbidden", message)
            }
            _ => PlanProblem::transient("SecretUnreadable", message),
        }
    })
}

pub(super) async fn read_secret_key(
    api: &Api<Secret>,
    namespace: &str,
    name: &str,
    key: &str,
) -> Result<String, PlanProblem> {
    let Some(secret) = read_secret(api, namespace, name).await? else {
        return Err(PlanProblem::stalled(
            "MissingSecret",
            format!(
                "Secret {namespace}/{name} not found: create it on this cluster (it never lives in git) with key {key:?}"
            ),
        ));
    };
    secret_value(&secret, key).ok_or_else(|| {
        PlanProblem::stalled(
            "MissingSecret",
            format!("Secret {namespace}/{name} has no key {key:?}: add it"),
        )
    })
}

pub(super) fn secret_value(secret: &Secret, key: &str) -> Option<String> {
    if let Some(bytes) = secret.data.as_ref().and_then(|d| d.get(key)) {
        return String::from_utf8(bytes.0.clone()).ok();
    }
    secret
        .string_data
        .as_ref()
        .and_then(|d| d.get(key))
        .cloned()
}
