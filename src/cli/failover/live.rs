//! The plan's live status for `drgitops failover`: read from the cluster of the current kubeconfig under a short
//! timeout, it only informs the operator (the preview's live line and the data age a declared disaster records),
//! and never stops a failover.

use jiff::Timestamp;
use kube::api::{ApiResource, DynamicObject};
use kube::{Api, Client, Config};
use std::time::Duration;

use super::to_the_second;
use crate::plan::DRPlan;
use crate::plan::age::human_age;
use crate::plan::types::DRPlanStatus;

/// How long the live lookup may take in all (kubeconfig, connection, the read): it only informs the operator.
const LIVE_TIMEOUT: Duration = Duration::from_secs(5);

/// The plan's live status, as the cluster of the current kubeconfig reports it.
#[derive(Clone, Debug, PartialEq)]
pub enum Live {
    /// The DRPlan was read; its status (empty when it has none yet).
    Read(Box<DRPlanStatus>),
    /// Not read, and why.
    Unknown(String),
    /// Not asked for (`--no-live`).
    Skipped,
}

/// The data the new primary would start from: when the last migration from `from` finished and how old that is
/// at `now`, or why that is not known.
pub(super) fn data_as_of(
    live: &Live,
    from: &str,
    now: Timestamp,
) -> Result<(Timestamp, String), String> {
    const NONE: &str = "no reachable cluster reported a migration";
    let status = match live {
        Live::Read(status) => status,
        Live::Skipped => return Err(format!("{NONE}: the live status was not read (--no-live)")),
        Live::Unknown(_) => return Err(NONE.into()),
    };
    let record = status.last_migration.as_ref().ok_or(NONE)?;
    if let Some(source) = record.from.as_deref().filter(|f| *f != from) {
        return Err(format!(
            "the last migration reported, {}, ran from {source}, not from {from}",
            record.name
        ));
    }
    let finished = record
        .finished_at
        .as_deref()
        .ok_or_else(|| format!("migration {} reports no finish time", record.name))?;
    let at = finished.parse::<Timestamp>().map_err(|e| {
        format!(
            "migration {} reports finish time {finished:?}, not an RFC 3339 time: {e}",
            record.name
        )
    })?;
    let at = to_the_second(at);
    Ok((at, human_age(now.duration_since(at).as_secs())))
}

/// The preview's line about the live plan.
pub(super) fn live_line(live: &Live, now: Timestamp) -> String {
    let status = match live {
        Live::Read(status) => status,
        Live::Unknown(why) => return format!("live state unknown: {why}"),
        Live::Skipped => return "live state unknown: not read (--no-live)".into(),
    };
    let or_unknown = |v: Option<&str>| v.unwrap_or("<unknown>").to_string();
    let last = match &status.last_migration {
        None => "<none>".to_string(),
        Some(m) => {
            let finished = m.finished_at.as_deref();
            let ago = finished
                .and_then(|t| t.parse::<Timestamp>().ok())
                .map(|t| format!(" ({} ago)", human_age(now.duration_since(t).as_secs())))
                .unwrap_or_default();
            format!(
                "{} finished {}{ago}",
                m.name,
                finished.unwrap_or("<unknown>")
            )
        }
    };
    format!(
        "live plan on {}: role {}, phase {}, last migration {last}",
        or_unknown(status.local_domain.as_deref()),
        or_unknown(status.role.map(|r| r.as_str())),
        or_unknown(status.phase.as_deref()),
    )
}

/// Reads DRPlan `plan` in `namespace` (default: the kubeconfig's) from the cluster of the current kubeconfig (or
/// the in-cluster config), within 5 s (`LIVE_TIMEOUT`). Never fails: what could not be read is said in the result.
pub fn read_live(namespace: Option<&str>, plan: &str) -> Live {
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => return Live::Unknown(format!("cannot start the async runtime: {e}")),
    };
    runtime.block_on(async {
        tokio::time::timeout(LIVE_TIMEOUT, fetch_live(namespace, plan))
            .await
            .unwrap_or_else(|_| {
                Live::Unknown(format!(
                    "no answer within {} s (KUBECONFIG or the in-cluster config)",
                    LIVE_TIMEOUT.as_secs()
                ))
            })
    })
}

async fn fetch_live(namespace: Option<&str>, plan: &str) -> Live {
    let mut config = match Config::infer().await {
        Ok(config) => config,
        Err(e) => return Live::Unknown(format!("no cluster configured ({e})")),
    };
    config.connect_timeout = Some(LIVE_TIMEOUT);
    config.read_timeout = Some(LIVE_TIMEOUT);
    let url = config.cluster_url.to_string();
    let namespace = namespace.map_or_else(|| config.default_namespace.clone(), str::to_string);
    let client = match Client::try_from(config) {
        Ok(client) => client,
        Err(e) => return Live::Unknown(format!("no client for {url}: {e}")),
    };
    let api: Api<DynamicObject> =
        Api::namespaced_with(client, &namespace, &ApiResource::erase::<DRPlan>(&()));
    match api.get_opt(plan).await {
        Ok(Some(object)) => match crate::plan::from_stored(&object) {
            Ok(stored) => Live::Read(Box::new(stored.status.unwrap_or_default())),
            Err(problem) => Live::Unknown(format!(
                "DRPlan {namespace}/{plan} on {url} does not read as a DRPlan ({problem})"
            )),
        },
        Ok(None) => Live::Unknown(format!("no DRPlan {namespace}/{plan} on {url}")),
        Err(e) => Live::Unknown(format!(
            "cannot read DRPlan {namespace}/{plan} from {url}: {e}"
        )),
    }
}
