//! Leader election through a `coordination.k8s.io/v1` Lease, so two replicas of the reconciler never write at once.
//!
//! In: the Lease's namespace and name, this replica's identity, the lease duration. Out: whether this replica
//! holds the lease right now. Every takeover and renewal is a `replace` carrying the resourceVersion that was read,
//! so two replicas racing for an expired lease cannot both win: the API server rejects the second with 409.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use kube::api::{Api, Patch, PatchParams, PostParams};

/// Annotation a follower sets on the Lease when a push reached it, so the leader fetches at its next renewal.
pub const REFRESH_ANNOTATION: &str = "drgitops.dev/refresh-requested-at";

#[derive(Clone)]
pub struct LeaderElector {
    api: Api<Lease>,
    name: String,
    identity: String,
    lease_duration: Duration,
    /// The refresh annotation seen at the previous renewal.
    last_refresh: Arc<Mutex<Option<String>>>,
}

impl LeaderElector {
    pub fn new(
        client: kube::Client,
        namespace: &str,
        name: &str,
        identity: &str,
        lease_duration: Duration,
    ) -> Self {
        LeaderElector {
            api: Api::namespaced(client, namespace),
            name: name.to_string(),
            identity: identity.to_string(),
            lease_duration,
            last_refresh: Arc::new(Mutex::new(None)),
        }
    }

    /// Asks the leader for a fetch (a push reached this follower): stamps the refresh annotation on the Lease.
    pub async fn request_refresh(&self) -> Result<(), kube::Error> {
        let stamp = format!("{} {}", jiff::Timestamp::now(), self.identity);
        let patch = serde_json::json!({"metadata": {"annotations": {REFRESH_ANNOTATION: stamp}}});
        self.api
            .patch(&self.name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
            .map(|_| ())
    }

    /// Whether a follower asked for a refresh since the last call (read at the last renewal).
    fn note_refresh(&self, lease: &Lease) -> bool {
        let seen = lease
            .metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get(REFRESH_ANNOTATION))
            .cloned();
        let Ok(mut last) = self.last_refresh.lock() else {
            return false;
        };
        let changed = seen.is_some() && *last != seen;
        *last = seen;
        changed
    }

    pub fn identity(&self) -> &str {
        &self.identity
    }

    /// How often a holder should renew: a third of the lease, so two missed renewals still keep it.
    pub fn renew_interval(&self) -> Duration {
        self.lease_duration / 3
    }

    /// Acquires the lease if it is free or expired, renews it if we hold it; returns whether we hold it now and
    /// whether a follower asked for a refresh since the previous call.
    pub async fn try_acquire_or_renew(&self) -> Result<(bool, bool), kube::Error> {
        let now = jiff::Timestamp::now();
        let seconds = i32::try_from(self.lease_duration.as_secs().max(1)).unwrap_or(i32::MAX);
        let Some(mut lease) = self.api.get_opt(&self.name).await? else {
            let lease = Lease {
                metadata: ObjectMeta {
                    name: Some(self.name.clone()),
                    ..ObjectMeta::default()
                },
                spec: Some(LeaseSpec {
                    holder_identity: Some(self.identity.clone()),
                    lease_duration_seconds: Some(seconds),
                    acquire_time: Some(MicroTime(now)),
                    renew_time: Some(MicroTime(now)),
                    lease_transitions: Some(0),
                    ..LeaseSpec::default()
                }),
            };
            return match self.api.create(&PostParams::default(), &lease).await {
                Ok(_) => Ok((true, false)),
                Err(kube::Error::Api(status)) if status.code == 409 => Ok((false, false)),
                Err(err) => Err(err),
            };
        };
        let refresh = self.note_refresh(&lease);
        let spec = lease.spec.get_or_insert_with(LeaseSpec::default);
        let holder = spec.holder_identity.clone().unwrap_or_default();
        let ours = holder == self.identity;
        if !ours && !holder.is_empty() {
            let held_for = Duration::from_secs(
                u64::try_from(spec.lease_duration_seconds.unwrap_or(seconds)).unwrap_or(0),
            );
            let renewed = spec
                .renew_time
                .as_ref()
                .map(|t| t.0)
                .unwrap_or(jiff::Timestamp::UNIX_EPOCH);
            let expires = renewed.checked_add(held_for).unwrap_or(renewed);
            if expires > now {
                return Ok((false, false));
            }
        }
        if !ours {
            spec.holder_identity = Some(self.identity.clone());
            spec.acquire_time = Some(MicroTime(now));
            spec.lease_transitions = Some(spec.lease_transitions.unwrap_or(0) + 1);
        }
        spec.lease_duration_seconds = Some(seconds);
        spec.renew_time = Some(MicroTime(now));
        match self
            .api
            .replace(&self.name, &PostParams::default(), &lease)
            .await
        {
            Ok(_) => Ok((true, refresh)),
            Err(kube::Error::Api(status)) if status.code == 409 => Ok((false, false)),
            Err(err) => Err(err),
        }
    }

    /// Gives the lease up (on graceful shutdown) so a standby replica takes over at once instead of after expiry.
    pub async fn release(&self) -> Result<(), kube::Error> {
        let Some(mut lease) = self.api.get_opt(&self.name).await? else {
            return Ok(());
        };
        let Some(spec) = lease.spec.as_mut() else {
            return Ok(());
        };
        if spec.holder_identity.as_deref() != Some(self.identity.as_str()) {
            return Ok(());
        }
        spec.holder_identity = None;
        spec.renew_time = None;
        match self
            .api
            .replace(&self.name, &PostParams::default(), &lease)
            .await
        {
            Ok(_) => Ok(()),
            Err(kube::Error::Api(status)) if status.code == 409 || status.code == 404 => Ok(()),
            Err(err) => Err(err),
        }
    }
}
