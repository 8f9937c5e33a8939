//! Command-line surface: one subcommand per entry point of DESIGN.md. Every flag also reads `DRGITOPS_*`.

pub mod check;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

use crate::stork::keys::DEFAULT_ADMIN_NAMESPACE;

pub mod failover;
pub mod reconcile;
pub mod status;
pub mod webhook;

pub use crate::runtime::logging::LogFormat;

#[derive(Debug, Parser)]
#[command(
    name = "drgitops",
    version,
    about = "Disaster recovery for Stork-protected Kubernetes clusters, driven by Git"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve the DR admission rules to kube-apiserver over HTTPS.
    Webhook(WebhookArgs),
    /// Watch a Git repository of DRPlans and keep this cluster's Stork objects and workloads in its role.
    Reconcile(ReconcileArgs),
    /// Print what a cluster domain should hold for the DRPlans in a repository, as a YAML stream.
    Render(RenderArgs),
    /// Check manifests offline against the DR rules (exit 0 clean, 1 denied, 2 usage or input error).
    Check(CheckArgs),
    /// Edit a DRPlan's primary in a Git work tree and commit it: the failover (or failback) button. With
    /// `--break-glass`, fail over without Git on the cluster of the current kubeconfig.
    Failover(FailoverArgs),
    /// Show the DRPlans on this cluster: role, phase, revision, the pods running, and the current transition.
    Status(StatusArgs),
    /// Print a CustomResourceDefinition: DRPlan (the default) or DRPlanOverride.
    Crd(CrdArgs),
}

#[derive(Debug, Args)]
pub struct CrdArgs {
    /// Which CustomResourceDefinition to print.
    #[arg(value_enum, default_value = "drplan")]
    pub kind: CrdKind,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum CrdKind {
    /// `manifests/crd/drplan.yaml`.
    Drplan,
    /// `manifests/crd/drplanoverride.yaml`: break-glass failover without Git.
    Drplanoverride,
}

/// Logging flags shared by the long-running commands.
#[derive(Debug, Args)]
pub struct LogArgs {
    /// Log format.
    #[arg(long, env = "DRGITOPS_LOG_FORMAT", value_enum, default_value = "plain")]
    pub log_format: LogFormat,
}

#[derive(Debug, Args)]
pub struct WebhookArgs {
    /// PEM certificate chain served to kube-apiserver (re-read when the file changes).
    #[arg(long, env = "DRGITOPS_TLS_CERT")]
    pub tls_cert: PathBuf,
    /// PEM private key for `--tls-cert`.
    #[arg(long, env = "DRGITOPS_TLS_KEY")]
    pub tls_key: PathBuf,
    /// PEM CA bundle; when set, clients must present a certificate it signed (re-read when the file changes).
    #[arg(long, env = "DRGITOPS_CLIENT_CA")]
    pub client_ca: Option<PathBuf>,
    /// HTTPS address for `POST /mutate` and `POST /validate`.
    #[arg(long, env = "DRGITOPS_LISTEN", default_value = "0.0.0.0:8443")]
    pub listen: String,
    /// Plain-HTTP address for `/livez`, `/readyz` and `/metrics`.
    #[arg(long, env = "DRGITOPS_ADMIN_LISTEN", default_value = "0.0.0.0:8080")]
    pub admin_listen: String,
    /// Directory of policy config files (`*.yaml`); reloaded when they change.
    #[arg(long, env = "DRGITOPS_POLICIES")]
    pub policies: Option<PathBuf>,
    /// This cluster's Stork cluster domain (default: ClusterDomainsStatus `status.localDomain`).
    #[arg(long, env = "DRGITOPS_CLUSTER_DOMAIN")]
    pub cluster_domain: Option<String>,
    #[command(flatten)]
    pub log: LogArgs,
}

#[derive(Debug, Args)]
pub struct ReconcileArgs {
    /// This cluster's Stork cluster domain (default: ClusterDomainsStatus `status.localDomain`).
    #[arg(long, env = "DRGITOPS_CLUSTER_DOMAIN")]
    pub cluster_domain: Option<String>,
    /// Repository of DRPlan manifests: a local path, file://, https:// or ssh:// URL. Without it, DRPlans are
    /// expected to be applied by Argo CD or Flux and only the plan controller runs.
    #[arg(long, env = "DRGITOPS_GIT_URL")]
    pub git_url: Option<String>,
    /// Branch to follow.
    #[arg(long, env = "DRGITOPS_GIT_BRANCH", default_value = "main")]
    pub git_branch: String,
    /// Directory inside the repository that holds the DRPlans.
    #[arg(long, env = "DRGITOPS_GIT_PATH", default_value = ".")]
    pub git_path: String,
    /// Polling interval (with jitter), e.g. `60s`, `5m`.
    #[arg(long, env = "DRGITOPS_INTERVAL", default_value = "60s")]
    pub interval: String,
    /// Run one full pass and exit (0 on success).
    #[arg(long, env = "DRGITOPS_ONCE")]
    pub once: bool,
    /// Print the server-side dry-run diff and change nothing.
    #[arg(long, env = "DRGITOPS_DRY_RUN")]
    pub dry_run: bool,
    /// Let a commit without any DRPlan delete every plan applied before (without it, such a commit prunes
    /// nothing: a deleted directory or a wrong --git-path must not stop every application's protection).
    #[arg(long, env = "DRGITOPS_ALLOW_EMPTY")]
    pub allow_empty: bool,
    /// Plain-HTTP address for `/livez`, `/readyz`, `/metrics` and `POST /hooks/git`.
    #[arg(long, env = "DRGITOPS_ADMIN_LISTEN", default_value = "0.0.0.0:8080")]
    pub admin_listen: String,
    #[command(flatten)]
    pub verify: reconcile::VerifyArgs,
    #[command(flatten)]
    pub gitops: Box<reconcile::GitopsArgs>,
    #[command(flatten)]
    pub log: LogArgs,
}

#[derive(Debug, Args)]
pub struct RenderArgs {
    /// A git repository (path or URL) or a plain directory.
    #[arg(long, env = "DRGITOPS_REPO")]
    pub repo: String,
    /// Revision to render (default: HEAD; ignored for a plain directory).
    #[arg(long, env = "DRGITOPS_REV")]
    pub rev: Option<String>,
    /// Directory inside the repository that holds the DRPlans.
    #[arg(long, env = "DRGITOPS_PATH", default_value = ".")]
    pub path: String,
    /// The cluster domain to render for.
    #[arg(long, env = "DRGITOPS_CLUSTER_DOMAIN")]
    pub cluster_domain: String,
    /// Stork's admin namespace: only a plan there may protect other namespaces (as `reconcile` takes it).
    #[arg(long, env = "DRGITOPS_ADMIN_NAMESPACE", default_value = DEFAULT_ADMIN_NAMESPACE)]
    pub admin_namespace: String,
    // Credentials for an `https://` repository, as `reconcile` takes them.
    #[command(flatten)]
    pub git_token: reconcile::GitTokenArgs,
    #[command(flatten)]
    pub verify: reconcile::VerifyArgs,
}

#[derive(Debug, Args)]
pub struct CheckArgs {
    /// Directory of policy config files (default: the built-in defaults).
    #[arg(long, env = "DRGITOPS_POLICIES")]
    pub policies: Option<PathBuf>,
    /// Directory of manifests describing the cluster (StorageClasses, ClusterPairs, policies, DRPlans, ...).
    #[arg(long, env = "DRGITOPS_CLUSTER_STATE")]
    pub cluster_state: Option<PathBuf>,
    /// Namespace for objects that have none, as `kubectl -n` would set it.
    #[arg(short = 'n', long = "namespace", env = "DRGITOPS_NAMESPACE")]
    pub namespace: Option<String>,
    /// The local cluster domain, for rules that depend on it.
    #[arg(long, env = "DRGITOPS_CLUSTER_DOMAIN")]
    pub cluster_domain: Option<String>,
    /// Output format.
    #[arg(
        short = 'o',
        long = "output",
        env = "DRGITOPS_OUTPUT",
        value_enum,
        default_value = "text"
    )]
    pub output: OutputFormat,
    /// Files or directories of manifests (YAML streams, JSON, `List` kinds).
    #[arg(required = true)]
    pub paths: Vec<PathBuf>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum OutputFormat {
    Text,
    Json,
}

#[derive(Debug, Args)]
pub struct FailoverArgs {
    /// Git work tree that holds the plan (not with `--break-glass`).
    #[arg(long, env = "DRGITOPS_REPO", required_unless_present = "break_glass")]
    pub repo: Option<PathBuf>,
    /// Fail over without Git, on the cluster of the current kubeconfig (the surviving one): creates a
    /// DRPlanOverride that the reconciler there carries out as a declared disaster. Needs `-n` and `--reason`.
    #[arg(
        long,
        env = "DRGITOPS_BREAK_GLASS",
        requires = "reason",
        conflicts_with_all = ["repo", "deactivate", "disaster", "message", "no_live"]
    )]
    pub break_glass: bool,
    /// With `--break-glass`: the plan's namespace (default: the kubeconfig context's).
    #[arg(short = 'n', long = "namespace", env = "DRGITOPS_NAMESPACE")]
    pub namespace: Option<String>,
    /// With `--break-glass`: why Git cannot be used, recorded in the override, the plan's status and its Events.
    #[arg(long, env = "DRGITOPS_REASON")]
    pub reason: Option<String>,
    /// Name of the DRPlan (`metadata.name`).
    #[arg(long, env = "DRGITOPS_PLAN")]
    pub plan: String,
    /// The cluster domain that becomes primary.
    #[arg(long, env = "DRGITOPS_TO")]
    pub to: String,
    /// Also mark this domain inactive (metro: deactivate the failed domain).
    #[arg(long, env = "DRGITOPS_DEACTIVATE")]
    pub deactivate: Option<String>,
    /// Declare the current primary lost: `--to` starts from its last migrated copy without waiting for it and
    /// without a final migration (written as `spec.failover.disaster`). Without it, a planned failover waits for
    /// the old primary's final migration and clears an earlier declaration.
    #[arg(long, env = "DRGITOPS_DISASTER")]
    pub disaster: bool,
    /// Commit message body (the summary line names plan, from and to); with `--disaster` also the declaration's
    /// message.
    #[arg(long, short = 'm', env = "DRGITOPS_MESSAGE")]
    pub message: Option<String>,
    /// Do not read the plan's live status from the cluster of the current kubeconfig (role, phase, data age).
    #[arg(long, env = "DRGITOPS_NO_LIVE")]
    pub no_live: bool,
    /// Stork's admin namespace: only a plan there may protect other namespaces (as `reconcile` takes it).
    #[arg(long, env = "DRGITOPS_ADMIN_NAMESPACE", default_value = DEFAULT_ADMIN_NAMESPACE)]
    pub admin_namespace: String,
}

#[derive(Debug, Args)]
pub struct StatusArgs {
    /// Only this plan.
    #[arg(long, env = "DRGITOPS_PLAN")]
    pub plan: Option<String>,
    /// Only this namespace (default: all namespaces).
    #[arg(short = 'n', long = "namespace", env = "DRGITOPS_NAMESPACE")]
    pub namespace: Option<String>,
    /// Output format.
    #[arg(
        short = 'o',
        long = "output",
        env = "DRGITOPS_OUTPUT",
        value_enum,
        default_value = "text"
    )]
    pub output: OutputFormat,
}

/// Runs the parsed command and maps its result to the process exit code.
pub fn run(cli: Cli) -> ExitCode {
    let result = match cli.command {
        Command::Crd(args) => print_crd(args.kind),
        Command::Check(args) => check::run(args),
        Command::Render(args) => reconcile::render(args),
        Command::Failover(args) => failover::run(&args),
        Command::Status(args) => status::run(&args),
        Command::Webhook(args) => webhook::run(args),
        Command::Reconcile(args) => reconcile::reconcile(args),
    };
    match result {
        Ok(code) => code,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::from(2)
        }
    }
}

fn print_crd(kind: CrdKind) -> anyhow::Result<ExitCode> {
    let yaml = match kind {
        CrdKind::Drplan => crate::plan::crd::crd_yaml()?,
        CrdKind::Drplanoverride => crate::plan::crd::override_crd_yaml()?,
    };
    print!("{yaml}");
    Ok(ExitCode::SUCCESS)
}
