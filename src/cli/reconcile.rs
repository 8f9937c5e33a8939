//! CLI glue for `drgitops reconcile` and `drgitops render`: flags to options, the runtime, signals, exit codes.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, bail};
use clap::Args;
use tokio::sync::watch;

use super::{ReconcileArgs, RenderArgs};
use crate::plan::DRPlan;
use crate::plan::render::{render_without_credentials, role_of};
use crate::reconcile::runner::SYSTEM_NAMESPACE;
use crate::reconcile::runner::{Reconciler, ReconcilerOptions, parse_duration, serve_admin};
use crate::runtime::signals::Signals;
use crate::source::git::{self, GitAuth, GitSourceConfig};
use crate::source::sync::plans_from_files;
use crate::source::verify::{self, TrustedSigners, Verification, VerifyMode};
use crate::stork::keys::DEFAULT_ADMIN_NAMESPACE;

/// Reconciler flags beyond DESIGN.md's surface: credentials, the push-receiver secret, leader election.
#[derive(Debug, Args)]
pub struct GitopsArgs {
    /// File holding the shared secret of `POST /hooks/git` (GitHub/generic HMAC key, GitLab token).
    #[arg(long, env = "DRGITOPS_WEBHOOK_SECRET_FILE")]
    pub webhook_secret_file: Option<PathBuf>,
    /// The push-receiver secret itself (prefer the file, mounted from a Secret).
    #[arg(long, env = "DRGITOPS_WEBHOOK_SECRET", hide_env_values = true)]
    pub webhook_secret: Option<String>,
    #[command(flatten)]
    pub git_token: GitTokenArgs,
    /// SSH private key for `ssh://` remotes.
    #[arg(long, env = "DRGITOPS_GIT_SSH_KEY_FILE")]
    pub git_ssh_key_file: Option<PathBuf>,
    /// known_hosts with the SSH server's host key; unknown host keys are always refused.
    #[arg(long, env = "DRGITOPS_GIT_KNOWN_HOSTS_FILE")]
    pub git_known_hosts_file: Option<PathBuf>,
    /// The longest one fetch from an `http(s)://` remote may take, e.g. `60s`; a stalled remote is cut off then.
    #[arg(long, env = "DRGITOPS_GIT_TIMEOUT", default_value = "60s")]
    pub git_timeout: String,
    /// Directory of the bare fetch cache.
    #[arg(long, env = "DRGITOPS_CACHE_DIR")]
    pub cache_dir: Option<PathBuf>,
    /// Namespace of the leader Lease and the inventory ConfigMap (the reconciler's own namespace; the shipped
    /// Deployment sets it from the pod's, and its RBAC grants those two objects only there).
    #[arg(long, env = "DRGITOPS_SYSTEM_NAMESPACE", default_value = SYSTEM_NAMESPACE)]
    pub system_namespace: String,
    /// Stork's admin namespace: only a plan there may protect other namespaces.
    #[arg(long, env = "DRGITOPS_ADMIN_NAMESPACE", default_value = DEFAULT_ADMIN_NAMESPACE)]
    pub admin_namespace: String,
    /// This replica's identity in the Lease (default: the host name, i.e. the pod name).
    #[arg(long, env = "DRGITOPS_IDENTITY")]
    pub identity: Option<String>,
    /// How long a leader's Lease lasts without renewal.
    #[arg(long, env = "DRGITOPS_LEASE_DURATION", default_value = "15s")]
    pub lease_duration: String,
}

/// Who may change roles: commit signatures the git source requires, shared by `reconcile` and `render`.
#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// Refuse a revision unless its role changes (`role-changes`: a plan's primary, a domain's `active`, a declared
    /// disaster) or all its commits (`all`) are signed by a trusted key, checked on each commit since the last
    /// applied revision.
    #[arg(long, env = "DRGITOPS_VERIFY_SIGNATURES", value_enum)]
    pub verify_signatures: Option<VerifyMode>,
    /// File of trusted keys: an SSH allowed_signers file (git's gpg.ssh.allowedSignersFile format) or armored
    /// OpenPGP public keys, told apart by content; repeatable, the environment variable takes a comma- or
    /// newline-separated list.
    #[arg(
        long = "trusted-signers",
        env = "DRGITOPS_TRUSTED_SIGNERS",
        value_delimiter = ','
    )]
    pub trusted_signers: Vec<String>,
}

impl VerifyArgs {
    /// The verification to apply, reading every trusted-signers file now so a bad file stops the start.
    pub fn verification(&self) -> anyhow::Result<Option<Verification>> {
        let paths: Vec<PathBuf> = self
            .trusted_signers
            .iter()
            .flat_map(|v| v.split('\n'))
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
            .collect();
        let Some(mode) = self.verify_signatures else {
            if !paths.is_empty() {
                bail!("--trusted-signers needs --verify-signatures role-changes|all");
            }
            return Ok(None);
        };
        let signers = TrustedSigners::load(&paths)?;
        Ok(Some(Verification { mode, signers }))
    }
}

/// HTTPS credentials for the git remote, shared by `reconcile` and `render`.
#[derive(Debug, Args)]
pub struct GitTokenArgs {
    /// HTTPS token for the git remote (set the env from a Secret).
    #[arg(long, env = "DRGITOPS_GIT_TOKEN", hide_env_values = true)]
    pub git_token: Option<String>,
    /// File holding the HTTPS token.
    #[arg(long, env = "DRGITOPS_GIT_TOKEN_FILE")]
    pub git_token_file: Option<PathBuf>,
    /// User name sent with the token (GitHub ignores it; Bitbucket wants `x-token-auth`).
    #[arg(long, env = "DRGITOPS_GIT_USERNAME", default_value = "git")]
    pub git_username: String,
}

impl GitTokenArgs {
    /// Token authentication when a token is given (the file wins over the value).
    pub fn auth(&self) -> anyhow::Result<Option<GitAuth>> {
        let token = match (&self.git_token_file, &self.git_token) {
            (Some(path), _) => Some(read_trimmed(path, "--git-token-file")?),
            (None, token) => token.clone(),
        };
        Ok(token.map(|token| GitAuth::Token {
            username: self.git_username.clone(),
            token,
        }))
    }
}

fn read_trimmed(path: &Path, what: &str) -> anyhow::Result<String> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read {what} {}", path.display()))?;
    Ok(text.trim().to_string())
}

/// Builds the reconciler's options from the command line.
pub fn options_from_args(args: &ReconcileArgs) -> anyhow::Result<ReconcilerOptions> {
    let g = &args.gitops;
    let identity = g
        .identity
        .clone()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| format!("drgitops-{}", random_suffix()));
    let mut options = ReconcilerOptions::new(&identity);
    // An empty variable (as the shipped ConfigMap leaves DRGITOPS_CLUSTER_DOMAIN and may leave DRGITOPS_GIT_URL)
    // means unset.
    options.cluster_domain = non_empty(&args.cluster_domain);
    options.interval = parse_duration(&args.interval)
        .with_context(|| format!("--interval {:?}: use e.g. 30s, 5m or 1h", args.interval))?;
    options.lease_duration = parse_duration(&g.lease_duration)
        .with_context(|| format!("--lease-duration {:?}: use e.g. 15s", g.lease_duration))?;
    options.git_timeout = parse_duration(&g.git_timeout)
        .with_context(|| format!("--git-timeout {:?}: use e.g. 60s or 2m", g.git_timeout))?;
    options.once = args.once;
    options.dry_run = args.dry_run;
    options.allow_empty = args.allow_empty;
    options.verification = args.verify.verification()?;
    if options.verification.is_some() && non_empty(&args.git_url).is_none() {
        bail!(
            "--verify-signatures checks the built-in git source: set --git-url, or verify in Flux (spec.verify) or \
             Argo CD (signatureKeys) when they deliver the plans"
        );
    }
    options.admin_listen = args.admin_listen.clone();
    options.system_namespace = g.system_namespace.clone();
    options.admin_namespace = g.admin_namespace.clone();
    options.webhook_secret = match (&g.webhook_secret_file, &g.webhook_secret) {
        (Some(path), _) => Some(read_trimmed(path, "--webhook-secret-file")?.into_bytes()),
        (None, Some(secret)) => Some(secret.clone().into_bytes()),
        (None, None) => None,
    };
    if let Some(url) = &non_empty(&args.git_url) {
        let auth = if let Some(key_file) = &g.git_ssh_key_file {
            let Some(known_hosts) = &g.git_known_hosts_file else {
                bail!(
                    "--git-ssh-key-file needs --git-known-hosts-file: unknown host keys are never accepted"
                );
            };
            GitAuth::Ssh {
                username: "git".into(),
                private_key: std::fs::read_to_string(key_file).with_context(|| {
                    format!("cannot read --git-ssh-key-file {}", key_file.display())
                })?,
                passphrase: None,
                known_hosts: std::fs::read_to_string(known_hosts).with_context(|| {
                    format!(
                        "cannot read --git-known-hosts-file {}",
                        known_hosts.display()
                    )
                })?,
            }
        } else {
            g.git_token.auth()?.unwrap_or_default()
        };
        if url.starts_with("ssh://") && !matches!(auth, GitAuth::Ssh { .. }) {
            bail!("{url} is an ssh:// remote: set --git-ssh-key-file and --git-known-hosts-file");
        }
        // One cache per remote and branch, so two configurations never share a bare repository.
        let cache_dir = g.cache_dir.clone().unwrap_or_else(|| {
            use sha2::Digest as _;
            let digest = sha2::Sha256::digest(format!("{url}#{}", args.git_branch).as_bytes());
            std::env::temp_dir()
                .join("drgitops-git-cache")
                .join(hex::encode(&digest[..8]))
        });
        options.git = Some(GitSourceConfig {
            url: url.clone(),
            branch: args.git_branch.clone(),
            path: args.git_path.clone(),
            cache_dir,
            auth,
        });
    }
    Ok(options)
}

/// `drgitops reconcile`.
pub fn reconcile(args: ReconcileArgs) -> anyhow::Result<ExitCode> {
    crate::runtime::logging::init(args.log.log_format);
    let options = options_from_args(&args)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the runtime")?;
    runtime.block_on(async move {
        let client = kube::Client::try_default()
            .await
            .context("cannot build a Kubernetes client from the environment")?;
        run_reconciler(client, options).await
    })
}

/// Runs the reconciler with a ready client: one pass for `--once`/`--dry-run`, else until SIGTERM.
pub async fn run_reconciler(
    client: kube::Client,
    options: ReconcilerOptions,
) -> anyhow::Result<ExitCode> {
    let once = options.once || options.dry_run;
    let dry_run = options.dry_run;
    let admin_listen = options.admin_listen.clone();
    let reconciler = Reconciler::new(client, options);
    if once {
        let outcome = reconciler.pass(true).await;
        if dry_run {
            print!("{}", outcome.diff);
        }
        for error in &outcome.errors {
            eprintln!("error: {error}");
        }
        for step in &outcome.waiting {
            eprintln!("waiting: {step}");
        }
        return Ok(if outcome.ok {
            ExitCode::SUCCESS
        } else {
            ExitCode::from(1)
        });
    }
    let (stop, shutdown) = watch::channel(false);
    let (addr, admin) = serve_admin(&reconciler, &admin_listen, shutdown.clone()).await?;
    tracing::info!(%addr, "admin server listening (/livez, /readyz, /metrics, POST /hooks/git)");
    let mut signals = Signals::new().context("cannot install signal handlers")?;
    tokio::spawn(async move {
        signals.next().await;
        tracing::info!("shutting down: finishing the current pass (a second signal aborts)");
        let _ = stop.send(true);
        signals.next().await;
        std::process::exit(130);
    });
    reconciler.run(shutdown).await;
    let _ = admin.await;
    Ok(ExitCode::SUCCESS)
}

/// `drgitops render`: the DRPlans at a revision (or in a directory) and the Stork objects without credentials
/// that `--cluster-domain` holds for them, as one YAML stream. Any problem: nothing on stdout, exit ≠ 0.
pub fn render(args: RenderArgs) -> anyhow::Result<ExitCode> {
    let auth = args.git_token.auth()?.unwrap_or_default();
    let verification = args.verify.verification()?;
    let text = render_stream_verified(
        &args.repo,
        args.rev.as_deref(),
        &args.path,
        &args.cluster_domain,
        &args.admin_namespace,
        &auth,
        verification.as_ref(),
    )?;
    print!("{text}");
    Ok(ExitCode::SUCCESS)
}

/// The YAML stream `drgitops render` prints; `auth` is used only for a remote URL.
pub fn render_stream(
    repo: &str,
    rev: Option<&str>,
    path: &str,
    cluster_domain: &str,
    admin_namespace: &str,
    auth: &GitAuth,
) -> anyhow::Result<String> {
    render_stream_verified(repo, rev, path, cluster_domain, admin_namespace, auth, None)
}

/// [`render_stream`], refusing a revision whose history lacks the signatures `verification` requires (every
/// commit reachable from the revision is checked: render knows no last applied revision).
pub fn render_stream_verified(
    repo: &str,
    rev: Option<&str>,
    path: &str,
    cluster_domain: &str,
    admin_namespace: &str,
    auth: &GitAuth,
    verification: Option<&Verification>,
) -> anyhow::Result<String> {
    let (files, origin) = read_render_input(repo, rev, path, auth, verification)?;
    let plans = plans_from_files(&files, admin_namespace).map_err(|errors| {
        let lines: Vec<String> = errors.iter().map(|e| format!("  {e}")).collect();
        anyhow::anyhow!(
            "{origin} has invalid plans, nothing rendered:\n{}",
            lines.join("\n")
        )
    })?;
    if plans.is_empty() {
        bail!(
            "no DRPlan under {path:?} in {origin}: refusing to print an empty render (a pruning consumer would delete everything)"
        );
    }
    let mut out = String::new();
    for doc in &plans {
        let plan: DRPlan = serde_json::from_value(doc.object.clone())
            .with_context(|| format!("{}:{}: cannot read the plan", doc.file, doc.line))?;
        let role = role_of(&plan, cluster_domain);
        let mut objects = vec![strip_status(doc.object.clone())];
        objects.extend(render_without_credentials(&plan, role, true));
        for object in objects {
            out.push_str("---\n");
            out.push_str(&serde_yaml::to_string(&object).context("cannot print YAML")?);
        }
    }
    Ok(out)
}

fn strip_status(mut object: serde_json::Value) -> serde_json::Value {
    if let Some(map) = object.as_object_mut() {
        map.remove("status");
    }
    object
}

fn is_remote(repo: &str) -> bool {
    repo.contains("://") || (repo.contains('@') && repo.contains(':') && !Path::new(repo).exists())
}

fn read_render_input(
    repo: &str,
    rev: Option<&str>,
    path: &str,
    auth: &GitAuth,
    verification: Option<&Verification>,
) -> anyhow::Result<(Vec<git::ManifestFile>, String)> {
    let check = |repo_path: &Path, commit: &str, origin: &str| -> anyhow::Result<()> {
        let Some(verification) = verification else {
            return Ok(());
        };
        verify::verify_range(repo_path, None, commit, path, verification).with_context(|| {
            format!(
                "{origin} refused by --verify-signatures {}, nothing rendered",
                verification.mode.as_str()
            )
        })
    };
    if is_remote(repo) && !repo.starts_with("file://") {
        let scratch = std::env::temp_dir().join(format!(
            "drgitops-render-{}-{}",
            std::process::id(),
            random_suffix()
        ));
        let result =
            git::clone_and_read(repo, &scratch, rev, path, auth).map_err(anyhow::Error::from);
        let result = result.and_then(|(commit, files)| {
            let origin = format!("{repo}@{}", crate::source::sync::short(&commit));
            check(&scratch, &commit, &origin)?;
            Ok((files, origin))
        });
        let _ = std::fs::remove_dir_all(&scratch);
        return result;
    }
    let local = PathBuf::from(repo.strip_prefix("file://").unwrap_or(repo));
    if !local.exists() {
        bail!("--repo {repo}: no such directory or repository");
    }
    let bare = git2::Repository::open(&local)
        .map(|r| r.is_bare())
        .unwrap_or(false);
    if rev.is_some() || bare || verification.is_some() {
        // Signatures belong to commits: with --verify-signatures a work tree renders its HEAD, never its files.
        let rev = rev.unwrap_or("HEAD");
        let commit = git::resolve_revision(&local, rev)?;
        let origin = format!("{repo}@{}", crate::source::sync::short(&commit));
        check(&local, &commit, &origin)?;
        let files = git::read_revision(&local, &commit, path)?;
        return Ok((files, origin));
    }
    Ok((git::read_directory(&local, path)?, repo.to_string()))
}

fn random_suffix() -> String {
    use rand::{Rng as _, SeedableRng as _};
    format!("{:016x}", rand::rngs::StdRng::from_os_rng().random::<u64>())
}

/// `None` for an absent or blank value.
fn non_empty(value: &Option<String>) -> Option<String> {
    value
        .as_deref()
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .map(str::to_string)
}
