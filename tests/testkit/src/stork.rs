//! A stand-in for Stork's cluster-domain controllers (`pkg/clusterdomains/controllers`), for tests of metro
//! failover on a real cluster. In: the cluster's ClusterDomainUpdates, and the outcome the test chooses for
//! Portworx's Activate/Deactivate call. Out: each update's `status`, and the domain's `state` in every
//! ClusterDomainsStatus, written the way Stork writes them (`/work/shared/reference/stork-api.md` §7).
//!
//! What it does as Stork does: acts only on updates whose `status.status` is empty, sets `Successful`, or
//! `Failed` with the reason, by a full-object update (Stork's CRDs have no status subresource), and on success
//! sets the domain `Active`/`InSync` or `Inactive`/`NotInSync` in every ClusterDomainsStatus. An update is
//! terminal afterwards.
//!
//! What it leaves out: Portworx itself (the outcome is the test's), the auth-token annotations, Warning Events,
//! re-creating a deleted ClusterDomainsStatus, `SyncInProgress` while a replica resyncs, and every other Stork
//! controller (ClusterPair, Migration, MigrationSchedule static copies, autoSuspend, activation).

use kube::api::{ApiResource, DynamicObject, GroupVersionKind, ListParams, PostParams};
use kube::{Api, Client};
use serde_json::{Value, json};

/// The name of the one ClusterDomainsStatus of a test cluster (Stork names it after the Portworx cluster id).
pub const CLUSTER_DOMAINS_STATUS: &str = "px-cluster";

pub fn resource(kind: &str, plural: &str) -> ApiResource {
    ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("stork.libopenstorage.org", "v1alpha1", kind),
        plural,
    )
}

fn updates(client: &Client) -> Api<DynamicObject> {
    Api::all_with(
        client.clone(),
        &resource("ClusterDomainUpdate", "clusterdomainupdates"),
    )
}

fn statuses(client: &Client) -> Api<DynamicObject> {
    Api::all_with(
        client.clone(),
        &resource("ClusterDomainsStatus", "clusterdomainsstatuses"),
    )
}

/// Creates the ClusterDomainsStatus Stork keeps for a Portworx cluster spanning `domains` (name, active), seen
/// from `local`.
pub async fn create_cluster_domains_status(client: &Client, local: &str, domains: &[(&str, bool)]) {
    let infos: Vec<Value> = domains
        .iter()
        .map(|(name, active)| domain_info(name, *active))
        .collect();
    let cds: DynamicObject = serde_json::from_value(json!({
        "apiVersion": "stork.libopenstorage.org/v1alpha1",
        "kind": "ClusterDomainsStatus",
        "metadata": {"name": CLUSTER_DOMAINS_STATUS},
        "status": {"localDomain": local, "clusterDomainInfos": infos}
    }))
    .expect("ClusterDomainsStatus");
    statuses(client)
        .create(&PostParams::default(), &cds)
        .await
        .expect("ClusterDomainsStatus created");
}

fn domain_info(name: &str, active: bool) -> Value {
    json!({
        "name": name,
        "state": if active { "Active" } else { "Inactive" },
        "syncStatus": if active { "InSync" } else { "NotInSync" },
    })
}

/// The ClusterDomainUpdates of the cluster.
pub async fn cluster_domain_updates(client: &Client) -> Vec<DynamicObject> {
    updates(client)
        .list(&ListParams::default())
        .await
        .expect("list ClusterDomainUpdates")
        .items
}

/// One pass of Stork's ClusterDomainUpdate controller: every unprocessed update gets `outcome` (Portworx's
/// answer); a successful one also flips the domain in every ClusterDomainsStatus. Returns how many it processed.
pub async fn process_cluster_domain_updates(client: &Client, outcome: Result<(), &str>) -> usize {
    let mut processed = 0;
    for mut update in cluster_domain_updates(client).await {
        let done = update
            .data
            .pointer("/status/status")
            .and_then(Value::as_str)
            .is_some_and(|s| !s.is_empty());
        if done {
            continue;
        }
        let name = update.metadata.name.clone().expect("name");
        update.data["status"] = match outcome {
            Ok(()) => json!({"status": "Successful"}),
            Err(reason) => json!({"status": "Failed", "reason": reason}),
        };
        updates(client)
            .replace(&name, &PostParams::default(), &update)
            .await
            .expect("ClusterDomainUpdate status written");
        if outcome.is_ok() {
            let domain = update
                .data
                .pointer("/spec/clusterdomain")
                .and_then(Value::as_str);
            let active = update.data.pointer("/spec/active").and_then(Value::as_bool);
            if let (Some(domain), Some(active)) = (domain, active) {
                set_domain_state(client, domain, active).await;
            }
        }
        processed += 1;
    }
    processed
}

async fn set_domain_state(client: &Client, domain: &str, active: bool) {
    let api = statuses(client);
    for mut cds in api
        .list(&ListParams::default())
        .await
        .expect("list ClusterDomainsStatus")
        .items
    {
        let name = cds.metadata.name.clone().expect("name");
        if let Some(infos) = cds
            .data
            .pointer_mut("/status/clusterDomainInfos")
            .and_then(Value::as_array_mut)
        {
            for info in infos.iter_mut().filter(|i| i["name"] == domain) {
                *info = domain_info(domain, active);
            }
        }
        api.replace(&name, &PostParams::default(), &cds)
            .await
            .expect("ClusterDomainsStatus written");
    }
}
