//! `drgitops status`: the DRPlans on this cluster, their role, phase, revision, the pods that actually run in
//! their namespaces, and the current transition.
//!
//! In: DRPlans and the pods of their namespaces, listed from the cluster of the current kubeconfig (or in-cluster
//! config). Out: a table in the style of storkctl and kubectl (upper-case headers, columns padded by three
//! spaces), followed for each plan in transition by its steps; or with `-o json` an array of plan summaries. The
//! formatting ([`render_table`], [`summaries`], [`PodCounts::of`]) is pure; only [`run`] talks to the API server.
//!
//! "Running" here means pods, not `spec.replicas`: a workload scaled to 0 whose pods are still terminating is still
//! writing to its volumes, and a workload at 3 whose pods cannot be scheduled runs nothing.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::process::ExitCode;
use std::time::Duration;

use jiff::Timestamp;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{ApiResource, DynamicObject, ListParams};
use kube::{Api, Client, Config, ResourceExt};
use serde::Serialize;
use thiserror::Error;

use super::{OutputFormat, StatusArgs};
use crate::cluster::pods;
use crate::plan::types::{Condition, MigrationRecord, Transition};
use crate::plan::{DRPlan, Role};

/// Why the plans could not be shown.
#[derive(Debug, Error)]
pub enum StatusError {
    #[error(
        "no cluster configured: {0}; set KUBECONFIG (or ~/.kube/config), or run inside a cluster"
    )]
    NoConfig(String),
    #[error(
        "cannot reach the cluster at {url}: {message}; check that the API server is up and KUBECONFIG points at it"
    )]
    Unreachable { url: String, message: String },
    #[error(
        "the DRPlan CRD (drplans.drgitops.dev) is not installed on the cluster at {url}; install it with `drgitops crd | kubectl apply -f -`"
    )]
    CrdMissing { url: String },
    #[error("listing DRPlans on {url} failed: {message}")]
    Api { url: String, message: String },
    #[error("no DRPlan named {plan}{scope}; `drgitops status` lists the plans there are")]
    PlanNotFound { plan: String, scope: String },
    #[error("cannot start the async runtime: {0}")]
    Runtime(#[source] std::io::Error),
}

/// One plan as `status -o json` prints it.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PlanSummary {
    pub namespace: String,
    pub name: String,
    pub mode: String,
    pub primary: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub local_domain: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub role: Option<Role>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub phase: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_applied_revision: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_attempted_revision: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub creation_timestamp: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub transition: Option<Transition>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
    /// The namespaces the plan protects.
    pub namespaces: Vec<String>,
    /// The pods of those namespaces on this cluster; absent when they could not be listed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pods: Option<PodCounts>,
    /// `status.lastMigration`: the data age's reference (DATA-AGE is the time since its `finishedAt`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_migration: Option<MigrationRecord>,
}

/// The pods of a plan's namespaces on one cluster, as `status` counts them. Pods that have finished (`Succeeded`
/// or `Failed`, e.g. of a completed Job) are not counted: they hold no volume open.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PodCounts {
    /// Ready and not being deleted: serving.
    pub ready: usize,
    /// Every pod not finished: pending, running, ready or not, terminating.
    pub total: usize,
    /// Being deleted but not finished: may still write to its volumes.
    pub terminating: usize,
}

impl PodCounts {
    /// Counts `pods`.
    pub fn of<'a>(pods: impl IntoIterator<Item = &'a Pod>) -> Self {
        let mut counts = PodCounts::default();
        for pod in pods.into_iter().filter(|p| pods::not_finished(p)) {
            counts.total += 1;
            if pod.metadata.deletion_timestamp.is_some() {
                counts.terminating += 1;
            } else if pods::serving(pod) {
                counts.ready += 1;
            }
        }
        counts
    }

    /// The sum of two counts (a plan over several namespaces).
    fn add(self, other: PodCounts) -> PodCounts {
        PodCounts {
            ready: self.ready + other.ready,
            total: self.total + other.total,
            terminating: self.terminating + other.terminating,
        }
    }

    /// The table cell, like kubectl's READY: `ready/total`, and the terminating ones when there are any.
    fn cell(&self) -> String {
        match self.terminating {
            0 => format!("{}/{}", self.ready, self.total),
            n => format!("{}/{} ({n} terminating)", self.ready, self.total),
        }
    }
}

impl PlanSummary {
    fn in_transition(&self) -> bool {
        self.transition
            .as_ref()
            .is_some_and(|t| t.started_at.is_some() && t.finished_at.is_none())
    }
}

/// Summaries of the plans, sorted by namespace and name, keeping only `plan` when given. Their `pods` are left
/// for [`with_pods`] to fill in.
pub fn summaries(plans: &[DRPlan], plan: Option<&str>) -> Vec<PlanSummary> {
    let mut out: Vec<PlanSummary> = plans
        .iter()
        .filter(|p| plan.is_none_or(|n| p.metadata.name.as_deref() == Some(n)))
        .map(|p| {
            let status = p.status.clone().unwrap_or_default();
            PlanSummary {
                namespace: p.metadata.namespace.clone().unwrap_or_default(),
                name: p.metadata.name.clone().unwrap_or_default(),
                mode: p.spec.mode.as_str().to_string(),
                primary: p.spec.primary.clone(),
                local_domain: status.local_domain,
                role: status.role,
                phase: status.phase,
                last_applied_revision: status.last_applied_revision,
                last_attempted_revision: status.last_attempted_revision,
                creation_timestamp: p
                    .metadata
                    .creation_timestamp
                    .as_ref()
                    .map(|t| t.0.to_string()),
                transition: status.transition,
                conditions: status.conditions,
                namespaces: p.namespaces(),
                pods: None,
                last_migration: status.last_migration,
            }
        })
        .collect();
    out.sort_by(|a, b| (&a.namespace, &a.name).cmp(&(&b.namespace, &b.name)));
    out
}

/// Fills in each summary's pods from the counts per namespace; a plan any of whose namespaces is missing from
/// `by_namespace` (its pods could not be listed) keeps `None`.
pub fn with_pods(summaries: &mut [PlanSummary], by_namespace: &BTreeMap<String, PodCounts>) {
    for summary in summaries {
        summary.pods = summary
            .namespaces
            .iter()
            .try_fold(PodCounts::default(), |sum, ns| {
                by_namespace.get(ns).map(|c| sum.add(*c))
            });
    }
}

/// Pads columns like kubectl's printer: each column as wide as its widest cell, three spaces between columns, no
/// trailing blanks.
fn columns(rows: &[Vec<String>]) -> String {
    let n = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..n)
        .map(|i| {
            rows.iter()
                .filter_map(|r| r.get(i))
                .map(|c| c.chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    for row in rows {
        let mut line = String::new();
        for (i, cell) in row.iter().enumerate() {
            if i + 1 == row.len() {
                line.push_str(cell);
            } else {
                let _ = write!(line, "{cell:<width$}   ", width = widths[i]);
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

pub use crate::plan::age::human_age;

fn age(since: Option<&str>, now: Timestamp) -> String {
    since
        .and_then(|t| t.parse::<Timestamp>().ok())
        .map(|t| human_age(now.duration_since(t).as_secs()))
        .unwrap_or_else(|| "<unknown>".into())
}

fn or_none(value: Option<&str>) -> String {
    value
        .filter(|v| !v.is_empty())
        .unwrap_or("<none>")
        .to_string()
}

/// The text output: the plans table, then for each plan in transition (or every plan with a transition when
/// `show_last_transition`) its steps, and the Stalled condition's message when there is one.
pub fn render_table(plans: &[PlanSummary], now: Timestamp, show_last_transition: bool) -> String {
    let mut rows = vec![
        [
            "NAMESPACE",
            "NAME",
            "MODE",
            "PRIMARY",
            "LOCAL",
            "ROLE",
            "PHASE",
            "REVISION",
            "PODS",
            "DATA-AGE",
            "AGE",
        ]
        .map(String::from)
        .to_vec(),
    ];
    for p in plans {
        rows.push(vec![
            p.namespace.clone(),
            p.name.clone(),
            p.mode.clone(),
            p.primary.clone(),
            or_none(p.local_domain.as_deref()),
            or_none(p.role.map(Role::as_str)),
            or_none(p.phase.as_deref()),
            or_none(p.last_applied_revision.as_deref()),
            p.pods
                .map(|c| c.cell())
                .unwrap_or_else(|| "<unknown>".to_string()),
            age(
                p.last_migration
                    .as_ref()
                    .and_then(|m| m.finished_at.as_deref()),
                now,
            ),
            age(p.creation_timestamp.as_deref(), now),
        ]);
    }
    let mut out = columns(&rows);
    for p in plans {
        let stalled = p
            .conditions
            .iter()
            .find(|c| c.type_ == "Stalled" && c.status == "True");
        let break_glass = p
            .conditions
            .iter()
            .find(|c| c.type_ == crate::plan::breakglass::OVERRIDE_CONDITION && c.status == "True");
        let transition = p
            .transition
            .as_ref()
            .filter(|_| p.in_transition() || show_last_transition);
        if transition.is_none() && stalled.is_none() && break_glass.is_none() {
            continue;
        }
        out.push('\n');
        if let Some(t) = transition {
            let state = if t.finished_at.is_some() {
                format!("finished {} ago", age(t.finished_at.as_deref(), now))
            } else {
                format!("started {} ago", age(t.started_at.as_deref(), now))
            };
            let _ = writeln!(
                out,
                "{}/{}: transition {} -> {} at revision {} ({state})",
                p.namespace,
                p.name,
                or_none(t.from.as_deref()),
                or_none(t.to.as_deref()),
                or_none(t.revision.as_deref()),
            );
            let mut steps = vec![
                ["STEP", "STATE", "TIME", "MESSAGE"]
                    .map(String::from)
                    .to_vec(),
            ];
            for s in &t.steps {
                steps.push(vec![
                    s.name.clone(),
                    s.state.clone(),
                    or_none(s.time.as_deref()),
                    s.message.clone().unwrap_or_default(),
                ]);
            }
            out.push_str(&columns(&steps));
        }
        if let Some(c) = stalled {
            let _ = writeln!(
                out,
                "{}/{}: Stalled ({}): {}",
                p.namespace,
                p.name,
                c.reason.as_deref().unwrap_or("Stalled"),
                c.message.as_deref().unwrap_or("")
            );
        }
        if let Some(c) = break_glass {
            let _ = writeln!(
                out,
                "{}/{}: BreakGlass ({}): {}",
                p.namespace,
                p.name,
                c.reason.as_deref().unwrap_or("BreakGlass"),
                c.message.as_deref().unwrap_or("")
            );
        }
    }
    out
}

/// Runs `drgitops status`.
pub fn run(args: &StatusArgs) -> anyhow::Result<ExitCode> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(StatusError::Runtime)?;
    let summaries = runtime.block_on(async {
        let (client, url) = connect().await?;
        let plans = list_plans(&client, &url, args.namespace.as_deref()).await?;
        let mut summaries = summaries(&plans, args.plan.as_deref());
        let namespaces: Vec<&str> = summaries
            .iter()
            .flat_map(|s| s.namespaces.iter().map(String::as_str))
            .collect();
        let counts = count_pods(&client, &namespaces).await;
        with_pods(&mut summaries, &counts);
        Ok::<_, StatusError>(summaries)
    })?;
    if let Some(plan) = &args.plan
        && summaries.is_empty()
    {
        let scope = args
            .namespace
            .as_ref()
            .map(|n| format!(" in namespace {n}"))
            .unwrap_or_default();
        return Err(StatusError::PlanNotFound {
            plan: plan.clone(),
            scope,
        }
        .into());
    }
    match args.output {
        OutputFormat::Json => println!("{}", serde_json::to_string_pretty(&summaries)?),
        OutputFormat::Text if summaries.is_empty() => match &args.namespace {
            Some(n) => eprintln!("No DRPlans found in namespace {n}."),
            None => eprintln!("No DRPlans found."),
        },
        OutputFormat::Text => print!(
            "{}",
            render_table(&summaries, Timestamp::now(), args.plan.is_some())
        ),
    }
    Ok(ExitCode::SUCCESS)
}

/// A client from the ambient kube config, with short timeouts so an unreachable cluster fails fast, and the
/// cluster's URL for messages.
async fn connect() -> Result<(Client, String), StatusError> {
    let mut config = Config::infer()
        .await
        .map_err(|e| StatusError::NoConfig(e.to_string()))?;
    config.connect_timeout = Some(Duration::from_secs(5));
    config.read_timeout = Some(Duration::from_secs(15));
    let url = config.cluster_url.to_string();
    let client = Client::try_from(config).map_err(|e| StatusError::NoConfig(e.to_string()))?;
    Ok((client, url))
}

/// Lists the DRPlans of `namespace` (all namespaces when `None`).
async fn list_plans(
    client: &Client,
    url: &str,
    namespace: Option<&str>,
) -> Result<Vec<DRPlan>, StatusError> {
    let url = url.to_string();
    let resource = ApiResource::erase::<DRPlan>(&());
    let api: Api<DynamicObject> = match namespace {
        Some(ns) => Api::namespaced_with(client.clone(), ns, &resource),
        None => Api::all_with(client.clone(), &resource),
    };
    match api.list(&ListParams::default()).await {
        Ok(list) => Ok(list
            .items
            .iter()
            .filter_map(|object| match crate::plan::from_stored(object) {
                Ok(plan) => Some(plan),
                Err(problem) => {
                    // One unreadable plan must not hide the others; the reconciler reports it on its status.
                    eprintln!(
                        "warning: DRPlan {}/{} does not read as a DRPlan ({problem}); not listed",
                        object.namespace().unwrap_or_default(),
                        object.name_any()
                    );
                    None
                }
            })
            .collect()),
        Err(kube::Error::Api(status)) if status.code == 404 => Err(StatusError::CrdMissing { url }),
        Err(kube::Error::Api(status)) => Err(StatusError::Api {
            url,
            message: status.message,
        }),
        Err(e @ (kube::Error::HyperError(_) | kube::Error::Service(_))) => {
            Err(StatusError::Unreachable {
                url,
                message: error_chain(&e),
            })
        }
        Err(e) => Err(StatusError::Api {
            url,
            message: error_chain(&e),
        }),
    }
}

/// Counts the pods of each namespace. A namespace whose pods cannot be listed (typically RBAC: the plans are
/// readable but the pods are not) is left out with a warning, and its plans show `<unknown>`: the plans table is
/// still worth printing.
async fn count_pods(client: &Client, namespaces: &[&str]) -> BTreeMap<String, PodCounts> {
    let mut counts = BTreeMap::new();
    for &ns in namespaces {
        if counts.contains_key(ns) {
            continue;
        }
        let pods: Api<Pod> = Api::namespaced(client.clone(), ns);
        match pods.list(&ListParams::default()).await {
            Ok(list) => {
                counts.insert(ns.to_string(), PodCounts::of(&list.items));
            }
            Err(e) => eprintln!(
                "warning: cannot list the pods of namespace {ns} ({}); PODS shows <unknown>",
                match &e {
                    kube::Error::Api(status) => status.message.clone(),
                    other => error_chain(other),
                }
            ),
        }
    }
    counts
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut message = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        // Many layers repeat their source in their own message; print each cause once.
        let text = s.to_string();
        if !message.contains(&text) {
            let _ = write!(message, ": {text}");
        }
        source = s.source();
    }
    message
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plans() -> Vec<DRPlan> {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/data/failover/status-plans.yaml");
        let text = std::fs::read_to_string(path).unwrap();
        serde_yaml::Deserializer::from_str(&text)
            .map(|d| serde::Deserialize::deserialize(d).unwrap())
            .collect()
    }

    fn now() -> Timestamp {
        "2026-11-22T16:00:00Z".parse().unwrap()
    }

    #[test]
    fn table_lists_plans_and_the_steps_of_the_one_in_transition() {
        let mut all = summaries(&plans(), None);
        let counts = BTreeMap::from([
            (
                "mysql".to_string(),
                PodCounts {
                    ready: 1,
                    total: 3,
                    terminating: 2,
                },
            ),
            ("shop".to_string(), PodCounts::default()),
        ]);
        with_pods(&mut all, &counts);
        let text = render_table(&all, now(), false);
        let expected = "\
NAMESPACE   NAME    MODE    PRIMARY      LOCAL        ROLE      PHASE            REVISION                                   PODS                  DATA-AGE    AGE
mysql       mysql   async   us-east-1b   us-east-1b   Primary   WaitingForPeer   1111111111111111111111111111111111111111   1/3 (2 terminating)   14m         2d
shop        shop    metro   us-east-1a   us-east-1b   Standby   Ready            2222222222222222222222222222222222222222   0/0                   <unknown>   5h

mysql/mysql: transition us-east-1a -> us-east-1b at revision 3333333333333333333333333333333333333333 (started 3m ago)
STEP       STATE     TIME                   MESSAGE
fence      Waiting   2026-11-22T15:57:00Z   waiting for the old primary to stop its applications: peer us-east-1a reports role Primary
activate   Pending   2026-11-22T15:57:00Z
protect    Pending   2026-11-22T15:57:00Z
";
        assert_eq!(text, expected);
    }

    #[test]
    fn one_plan_shows_its_last_transition_and_a_stall() {
        let mut all = plans();
        all[1].status.as_mut().unwrap().conditions.push(Condition {
            type_: "Stalled".into(),
            status: "True".into(),
            reason: Some("PeerStillRunning".into()),
            message: Some("commit a failback".into()),
            ..Default::default()
        });
        let text = render_table(&summaries(&all, Some("shop")), now(), true);
        assert!(
            text.starts_with("NAMESPACE   NAME   MODE    PRIMARY"),
            "{text}"
        );
        assert!(!text.contains("mysql"));
        assert!(text.contains("shop/shop: transition us-east-1b -> us-east-1a at revision 2222222222222222222222222222222222222222 (finished 5h ago)\n"), "{text}");
        assert!(text.contains("scale-down         Succeeded   2026-11-22T11:00:00Z   2 workload(s) at 0 replicas\n"), "{text}");
        assert!(
            text.ends_with("shop/shop: Stalled (PeerStillRunning): commit a failback\n"),
            "{text}"
        );
    }

    #[test]
    fn a_break_glass_override_is_shown_with_the_commit_to_push() {
        let mut all = plans();
        all[1].status.as_mut().unwrap().conditions.push(Condition {
            type_: "BreakGlass".into(),
            status: "True".into(),
            reason: Some("GitRevisionHeld".into()),
            message: Some(
                "... commit and push `drgitops failover --plan shop --to us-east-1a --disaster` ...".into(),
            ),
            ..Default::default()
        });
        let text = render_table(&summaries(&all, Some("shop")), now(), false);
        assert!(
            text.ends_with(
                "shop/shop: BreakGlass (GitRevisionHeld): ... commit and push `drgitops failover --plan shop --to \
                 us-east-1a --disaster` ...\n"
            ),
            "{text}"
        );
    }

    #[test]
    fn json_summaries_carry_status_fields() {
        let json = serde_json::to_value(summaries(&plans(), None)).unwrap();
        assert_eq!(json[0]["name"], "mysql");
        assert_eq!(json[0]["role"], "Primary");
        assert_eq!(json[0]["localDomain"], "us-east-1b");
        assert_eq!(json[0]["transition"]["steps"][0]["name"], "fence");
        assert_eq!(
            json[0]["lastMigration"]["finishedAt"],
            "2026-11-22T15:45:10Z"
        );
        assert!(json[1].get("lastMigration").is_none());
        assert_eq!(
            json[1]["lastAppliedRevision"],
            "2222222222222222222222222222222222222222"
        );
    }

    #[test]
    fn plans_without_status_show_none() {
        let mut all = plans();
        all[0].status = None;
        all[0].metadata.creation_timestamp = None;
        let text = render_table(&summaries(&all, Some("mysql")), now(), false);
        assert_eq!(
            text.lines().nth(1).unwrap(),
            "mysql       mysql   async   us-east-1b   <none>   <none>   <none>   <none>     <unknown>   <unknown>   <unknown>"
        );
    }

    fn pod(phase: &str, ready: bool, deleting: bool) -> Pod {
        serde_json::from_value(serde_json::json!({
            "metadata": {"name": "p", "deletionTimestamp": deleting.then_some("2026-11-22T16:00:00Z")},
            "status": {"phase": phase, "conditions": [{"type": "Ready", "status": if ready { "True" } else { "False" }}]},
        }))
        .unwrap()
    }

    #[test]
    fn pods_count_what_runs_not_what_finished() {
        let pods = [
            pod("Running", true, false),
            pod("Running", true, false),
            pod("Running", false, false),
            pod("Pending", false, false),
            pod("Running", true, true),
            pod("Succeeded", false, false),
            pod("Failed", false, true),
        ];
        let counts = PodCounts::of(&pods);
        assert_eq!(
            counts,
            PodCounts {
                ready: 2,
                total: 5,
                terminating: 1
            }
        );
        assert_eq!(counts.cell(), "2/5 (1 terminating)");
    }

    #[test]
    fn a_plan_over_several_namespaces_sums_them_and_one_unlisted_makes_it_unknown() {
        let mut all = summaries(&plans(), None);
        all[0].namespaces = vec!["a".into(), "b".into()];
        let one = PodCounts {
            ready: 1,
            total: 1,
            terminating: 0,
        };
        with_pods(
            &mut all,
            &BTreeMap::from([("a".to_string(), one), ("b".to_string(), one)]),
        );
        assert_eq!(all[0].pods.map(|c| c.cell()).as_deref(), Some("2/2"));
        assert_eq!(all[1].pods, None, "shop's pods were not listed");
        let json = serde_json::to_value(&all).unwrap();
        assert_eq!(
            json[0]["pods"],
            serde_json::json!({"ready": 2, "total": 2, "terminating": 0})
        );
        assert_eq!(json[0]["namespaces"], serde_json::json!(["a", "b"]));
        assert!(json[1].get("pods").is_none());
    }

    #[test]
    fn ages_read_like_kubectl() {
        assert_eq!(
            [
                human_age(5),
                human_age(119),
                human_age(120),
                human_age(7_199)
            ],
            ["5s", "119s", "2m", "119m"]
        );
        assert_eq!(
            [human_age(7_200), human_age(172_800), human_age(-3)],
            ["2h", "2d", "0s"]
        );
    }
}
