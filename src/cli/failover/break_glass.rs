//! `drgitops failover --break-glass`: the failover button for the day Git is down too.
//!
//! In: a plan, its namespace, the domain to make primary and the reason; the cluster of the current kubeconfig (the
//! surviving one). Out: a DRPlanOverride in the plan's namespace, which the reconciler of that cluster carries out as
//! a declared disaster; what happens next and the commit to push once Git is back, printed. Nothing is written to
//! Git, and the live DRPlan itself is not edited here: creating the override is the one permission it takes, and
//! RBAC grants it apart from editing DRPlans (`manifests/break-glass/`).
//!
//! Who asked is the API server's word, not this command's: it asks the API server who the kubeconfig's user is (a
//! SelfSubjectReview) and writes that into `spec.requestedBy`, which the shipped ValidatingAdmissionPolicy checks
//! against the request's authenticated user.

use std::process::ExitCode;
use std::time::Duration;

use jiff::Timestamp;
use k8s_openapi::api::authentication::v1::SelfSubjectReview;
use kube::api::PostParams;
use kube::{Api, Client, Config};
use thiserror::Error;

use super::live::{Live, live_line};
use crate::cli::FailoverArgs;
use crate::plan::DRPlan;
use crate::plan::breakglass::{DRPlanOverride, DRPlanOverrideSpec, commit_command};

/// How long each request to the cluster may take: on the day this runs, a hung connection must not look like work.
const TIMEOUT: Duration = Duration::from_secs(15);

/// Why no override was created.
#[derive(Debug, Error)]
pub enum BreakGlassError {
    #[error(
        "--reason must say why Git cannot be used (it is recorded with the override, in Events and logs)"
    )]
    NoReason,
    #[error("no cluster configured ({0}); set KUBECONFIG to the surviving cluster's kubeconfig")]
    NoConfig(String),
    #[error("cannot start the async runtime: {0}")]
    Runtime(#[source] std::io::Error),
    #[error(
        "{url} did not say who you are (SelfSubjectReview): {source}; check the kubeconfig's credentials for the \
         surviving cluster"
    )]
    WhoAmI {
        url: String,
        #[source]
        source: kube::Error,
    },
    #[error(
        "{user} may not break glass in namespace {namespace} on {url}: {detail}. Ask a cluster admin to bind the \
         ClusterRole drgitops-break-glass to your on-call group in {namespace}: kubectl -n {namespace} create \
         rolebinding drgitops-break-glass --clusterrole=drgitops-break-glass --group=<on-call group>"
    )]
    Forbidden {
        user: String,
        namespace: String,
        url: String,
        detail: String,
    },
    #[error(
        "{url} named no user for the kubeconfig's credentials; use credentials of a person or ServiceAccount, so the \
         override records who broke glass"
    )]
    NoUser { url: String },
    #[error("no DRPlan {namespace}/{plan} on {url}; check --plan and -n against `drgitops status`")]
    PlanNotFound {
        plan: String,
        namespace: String,
        url: String,
    },
    #[error("plan {plan}: {to} is not among its domains [{domains}]; pass --to one of them")]
    UnknownDomain {
        plan: String,
        to: String,
        domains: String,
    },
    #[error(
        "DRPlanOverride {namespace}/{plan} already stands ({existing}); the reconciler removes it once Git holds its \
         primary. See it with: kubectl -n {namespace} get drplanoverride {plan} -o yaml"
    )]
    AlreadyStands {
        namespace: String,
        plan: String,
        existing: String,
    },
    #[error("{url} refused the DRPlanOverride: {detail}")]
    Refused { url: String, detail: String },
    #[error("{what} on {url} failed: {source}")]
    Api {
        what: String,
        url: String,
        #[source]
        source: kube::Error,
    },
}

/// What breaking glass did, for the operator.
#[derive(Debug)]
struct Report {
    url: String,
    namespace: String,
    user: String,
    from: String,
    live: Live,
}

/// Runs `drgitops failover --break-glass`.
pub fn run(args: &FailoverArgs) -> anyhow::Result<ExitCode> {
    let reason = args.reason.as_deref().unwrap_or_default().trim();
    if reason.is_empty() {
        return Err(BreakGlassError::NoReason.into());
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(BreakGlassError::Runtime)?;
    let report = runtime.block_on(create(
        &args.plan,
        args.namespace.as_deref(),
        &args.to,
        reason,
    ))?;
    let plan = &args.plan;
    let to = &args.to;
    let ns = &report.namespace;
    println!(
        "break-glass failover {ns}/{plan}: {} -> {to}, without Git, on {}",
        report.from, report.url
    );
    println!("  requested by {}: {reason}", report.user);
    println!("  {}", live_line(&report.live, Timestamp::now()));
    println!(
        "  created DRPlanOverride {ns}/{plan}: the reconciler on this cluster declares {} lost and starts the \
         applications here from the last migrated copy, without waiting for it",
        report.from
    );
    println!(
        "  until Git holds {to} as the primary, git revisions naming another primary are not applied to this plan; \
         once Git is back, commit and push:"
    );
    println!("    {}", commit_command(plan, to));
    println!(
        "  then the reconciler removes the override. Follow it with: kubectl -n {ns} get drplan {plan} -w"
    );
    Ok(ExitCode::SUCCESS)
}

async fn create(
    plan: &str,
    namespace: Option<&str>,
    to: &str,
    reason: &str,
) -> Result<Report, BreakGlassError> {
    let mut config = Config::infer()
        .await
        .map_err(|e| BreakGlassError::NoConfig(e.to_string()))?;
    config.connect_timeout = Some(TIMEOUT);
    config.read_timeout = Some(TIMEOUT);
    let url = config.cluster_url.to_string();
    let namespace = namespace.map_or_else(|| config.default_namespace.clone(), str::to_string);
    let client = Client::try_from(config).map_err(|e| BreakGlassError::NoConfig(e.to_string()))?;

    let user = who_am_i(&client, &url).await?;
    let forbidden = |detail: String| BreakGlassError::Forbidden {
        user: user.clone(),
        namespace: namespace.clone(),
        url: url.clone(),
        detail,
    };

    let plans: Api<DRPlan> = Api::namespaced(client.clone(), &namespace);
    let live = match plans.get_opt(plan).await {
        Ok(Some(live)) => live,
        Ok(None) => {
            return Err(BreakGlassError::PlanNotFound {
                plan: plan.into(),
                namespace,
                url,
            });
        }
        Err(kube::Error::Api(status)) if status.code == 403 => {
            return Err(forbidden(status.message));
        }
        Err(source) => {
            return Err(BreakGlassError::Api {
                what: format!("reading DRPlan {namespace}/{plan}"),
                url,
                source,
            });
        }
    };
    if !live.spec.domains.iter().any(|d| d.name == to) {
        return Err(BreakGlassError::UnknownDomain {
            plan: plan.into(),
            to: to.into(),
            domains: live
                .spec
                .domains
                .iter()
                .map(|d| d.name.as_str())
                .collect::<Vec<_>>()
                .join(", "),
        });
    }

    let mut ov = DRPlanOverride::new(
        plan,
        DRPlanOverrideSpec {
            plan: plan.into(),
            primary: to.into(),
            reason: reason.into(),
            requested_by: user.clone(),
        },
    );
    ov.metadata.namespace = Some(namespace.clone());
    let overrides: Api<DRPlanOverride> = Api::namespaced(client, &namespace);
    match overrides.create(&PostParams::default(), &ov).await {
        Ok(_) => {}
        Err(kube::Error::Api(status)) if status.code == 403 => {
            return Err(forbidden(status.message));
        }
        Err(kube::Error::Api(status)) if status.code == 409 => {
            let existing = match overrides.get_opt(plan).await {
                Ok(Some(o)) => format!(
                    "primary {}, by {}: {}",
                    o.spec.primary, o.spec.requested_by, o.spec.reason
                ),
                _ => "it could not be read".into(),
            };
            return Err(BreakGlassError::AlreadyStands {
                namespace,
                plan: plan.into(),
                existing,
            });
        }
        Err(kube::Error::Api(status)) if status.code == 404 => {
            return Err(BreakGlassError::Refused {
                url,
                detail: format!(
                    "{}; install the DRPlanOverride CRD (manifests/crd/drplanoverride.yaml, part of kubectl apply -k \
                     manifests/)",
                    status.message
                ),
            });
        }
        Err(kube::Error::Api(status)) if status.code == 400 || status.code == 422 => {
            return Err(BreakGlassError::Refused {
                url,
                detail: status.message,
            });
        }
        Err(source) => {
            return Err(BreakGlassError::Api {
                what: format!("creating DRPlanOverride {namespace}/{plan}"),
                url,
                source,
            });
        }
    }
    Ok(Report {
        from: live.spec.primary.clone(),
        live: Live::Read(Box::new(live.status.unwrap_or_default())),
        url,
        namespace,
        user,
    })
}

/// The user name the API server authenticates the kubeconfig's credentials as.
async fn who_am_i(client: &Client, url: &str) -> Result<String, BreakGlassError> {
    let reviews: Api<SelfSubjectReview> = Api::all(client.clone());
    let review = reviews
        .create(&PostParams::default(), &SelfSubjectReview::default())
        .await
        .map_err(|source| BreakGlassError::WhoAmI {
            url: url.into(),
            source,
        })?;
    review
        .status
        .and_then(|s| s.user_info)
        .and_then(|u| u.username)
        .filter(|u| !u.is_empty())
        .ok_or_else(|| BreakGlassError::NoUser { url: url.into() })
}
