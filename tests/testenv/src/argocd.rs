//! Argo CD next to a control plane (`testenv --argocd`), built by `assets/build.sh argocd` at the version pinned
//! in `assets/versions.env`, run as Argo CD's local development mode runs it: every component is a local process
//! with the admin kubeconfig and `ARGOCD_FAKE_IN_CLUSTER=true` (so the in-cluster destination,
//! `https://kubernetes.default.svc`, is this control plane), talking to the others on loopback ports.
//!
//! What a non-HA install holds, less the API server, the UI, Dex, the ApplicationSet and notification controllers:
//! Argo CD's CRDs and base config (`argocd-cm`, `argocd-rbac-cm`, `argocd-secret`, ...) in namespace `argocd`,
//! with the `default` AppProject (which argocd-server would create) and a server signing key; redis (Debian's
//! `redis-server`, without persistence); the repo-server; one `argocd-cmp-server` per config-management plugin,
//! with its socket in the directory the repo-server reads (`ARGOCD_PLUGINSOCKFILEPATH`), as the sidecars share a
//! volume in a pod; and the application controller. What a pod would get from mounted ConfigMaps, the repository
//! CAs of `argocd-tls-certs-cm`, [`ArgoCd::add_tls_cert`] writes to the files the repo-server reads.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use crate::TestEnv;
use crate::process::Proc;
use anyhow::{Context, Result, bail};

/// Argo CD's namespace.
pub const NAMESPACE: &str = "argocd";

/// A config-management plugin for [`ArgoCd::start`]: an `argocd-cmp-server` runs `config` (a
/// `ConfigManagementPlugin` file, as the sidecar mounts it) with `path` in front of `PATH`.
#[derive(Debug, Clone)]
pub struct Plugin {
    pub config: PathBuf,
    pub path: Vec<PathBuf>,
}

/// The running components; dropping this stops them.
#[derive(Debug)]
pub struct ArgoCd {
    // Dropped in order: the controller first, redis last.
    procs: Vec<Proc>,
    dir: PathBuf,
    kubeconfig: PathBuf,
}

impl ArgoCd {
    /// Builds Argo CD if missing, installs its CRDs and config into `env` and starts redis, one cmp-server per
    /// plugin, the repo-server and the application controller; returns once all report healthy.
    pub fn start(env: &TestEnv, plugins: &[Plugin]) -> Result<ArgoCd> {
        let bin = crate::assets::run_script("argocd")?;
        let assets = bin
            .parent()
            .context("the Argo CD bin directory has a parent")?;
        let redis = which("redis-server").context(
            "redis-server is not on PATH; Argo CD needs it (Debian: apt-get install redis-server)",
        )?;
        let dir = env.data_dir().join("argocd");
        for sub in ["plugins", "tls", "ssh", "gpg", "tmp"] {
            std::fs::create_dir_all(dir.join(sub))?;
        }
        let kubeconfig = dir.join("kubeconfig.yaml");
        env.write_kubeconfig(&kubeconfig)?;
        install(
            &kubeconfig,
            &assets.join("crds.yaml"),
            &assets.join("config.yaml"),
        )?;

        let pids = dir.join("pids");
        let path = std::env::var_os("PATH").unwrap_or_default();
        let mut procs = Vec::new();
        let mut health: Vec<Box<dyn Fn() -> bool>> = Vec::new();

        let redis_port = crate::free_port()?;
        procs.push(Proc::start(
            "redis",
            &redis,
            vec![
                "--bind".into(),
                "127.0.0.1".into(),
                "--port".into(),
                redis_port.to_string(),
                "--save".into(),
                String::new(),
                "--appendonly".into(),
                "no".into(),
                "--dir".into(),
                dir.display().to_string(),
            ],
            &dir,
            &pids,
        )?);
        let redis_addr = format!("127.0.0.1:{redis_port}");
        health.push(Box::new({
            let addr = redis_addr.clone();
            move || redis_pong(&addr)
        }));

        // Every component: the admin kubeconfig, the in-cluster destination faked from it, its own temporary
        // directory, and the mounted-ConfigMap directories of a pod.
        let common = |name: &str, extra_path: &[PathBuf]| -> Result<Vec<String>> {
            let tmp = dir.join("tmp").join(name);
            std::fs::create_dir_all(&tmp)?;
            let mut dirs: Vec<PathBuf> = extra_path.to_vec();
            dirs.push(bin.clone());
            dirs.extend(std::env::split_paths(&path));
            Ok(vec![
                format!("KUBECONFIG={}", kubeconfig.display()),
                "ARGOCD_FAKE_IN_CLUSTER=true".into(),
                format!("TMPDIR={}", tmp.display()),
                format!("PATH={}", std::env::join_paths(dirs)?.to_string_lossy()),
                format!(
                    "ARGOCD_PLUGINSOCKFILEPATH={}",
                    dir.join("plugins").display()
                ),
                format!("ARGOCD_TLS_DATA_PATH={}", dir.join("tls").display()),
                format!("ARGOCD_SSH_DATA_PATH={}", dir.join("ssh").display()),
                format!("ARGOCD_GNUPGHOME={}", dir.join("gpg").display()),
                "ARGOCD_GPG_ENABLED=false".into(),
            ])
        };
        let argocd = bin.join("argocd").display().to_string();

        for plugin in plugins {
            let name = plugin_name(&plugin.config)?;
            let config = dir.join("cmp").join(&name);
            std::fs::create_dir_all(&config)?;
            std::fs::copy(&plugin.config, config.join("plugin.yaml"))
                .with_context(|| format!("copying {}", plugin.config.display()))?;
            let mut args = common(&format!("cmp-{name}"), &plugin.path)?;
            args.extend([
                argocd.clone(),
                "argocd-cmp-server".into(),
                format!("--config-dir-path={}", config.display()),
                "--loglevel=debug".into(),
                "--logformat=text".into(),
            ]);
            procs.push(Proc::start(
                &format!("cmp-server-{name}"),
                Path::new("env"),
                args,
                &dir,
                &pids,
            )?);
            let socket = dir.join("plugins").join(format!("{name}.sock"));
            health.push(Box::new(move || socket.exists()));
        }

        let repo_port = crate::free_port()?;
        let repo_metrics = format!("127.0.0.1:{}", crate::free_port()?);
        let mut args = common("repo-server", &[])?;
        args.extend([
            // git's askpass helper talks to the repo-server on this socket (default: one path per machine).
            format!(
                "ARGOCD_ASK_PASS_SOCK={}",
                dir.join("askpass.sock").display()
            ),
            argocd.clone(),
            "argocd-repo-server".into(),
            "--address=127.0.0.1".into(),
            format!("--port={repo_port}"),
            "--metrics-address=127.0.0.1".into(),
            format!("--metrics-port={}", port_of(&repo_metrics)),
            format!("--redis={redis_addr}"),
            "--loglevel=debug".into(),
            "--logformat=text".into(),
        ]);
        procs.push(Proc::start(
            "repo-server",
            Path::new("env"),
            args,
            &dir,
            &pids,
        )?);
        health.push(Box::new(move || healthz(&repo_metrics)));

        let controller_metrics = crate::free_port()?;
        let mut args = common("application-controller", &[])?;
        args.extend([
            argocd.clone(),
            "argocd-application-controller".into(),
            format!("--namespace={NAMESPACE}"),
            format!("--redis={redis_addr}"),
            format!("--repo-server=127.0.0.1:{repo_port}"),
            format!("--metrics-port={controller_metrics}"),
            "--loglevel=debug".into(),
            "--logformat=text".into(),
        ]);
        procs.push(Proc::start(
            "application-controller",
            Path::new("env"),
            args,
            &dir,
            &pids,
        )?);
        health.push(Box::new(move || {
            healthz(&format!("127.0.0.1:{controller_metrics}"))
        }));

        // The watchdog stops them too if this process dies without dropping them.
        for pid in std::fs::read_to_string(&pids)?.split_whitespace() {
            env.adopt(pid.parse().context("a pid in the argocd pid file")?)?;
        }
        procs.reverse();
        let mut argocd = ArgoCd {
            procs,
            dir,
            kubeconfig,
        };
        argocd.wait_healthy(&health)?;
        Ok(argocd)
    }

    /// Where the components' logs (`<component>.log`) and data are.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The last `lines` lines of every component's log, for a failing test's message.
    pub fn logs_tail(&self, lines: usize) -> String {
        self.procs
            .iter()
            .map(|p| format!("--- {}:\n{}", p.name(), p.log_tail(lines)))
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// Trusts `ca_pem` for repositories on `server_name` (a host name or address, without the port): the key
    /// of `argocd-tls-certs-cm`, and the file that ConfigMap's volume would hold in the repo-server's pod.
    pub fn add_tls_cert(&self, server_name: &str, ca_pem: &str) -> Result<()> {
        let patch = serde_json::json!({ "data": { server_name: ca_pem } }).to_string();
        kubectl(
            &self.kubeconfig,
            &[
                "-n",
                NAMESPACE,
                "patch",
                "configmap",
                "argocd-tls-certs-cm",
                "--type=merge",
                "-p",
                &patch,
            ],
        )?;
        std::fs::write(self.dir.join("tls").join(server_name), ca_pem)?;
        Ok(())
    }

    fn wait_healthy(&mut self, health: &[Box<dyn Fn() -> bool>]) -> Result<()> {
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            for proc in &mut self.procs {
                proc.check_running()?;
            }
            if health.iter().all(|check| check()) {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!(
                    "Argo CD's components did not report healthy within 120 s; their logs:\n{}",
                    self.logs_tail(20)
                );
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

/// `metadata.name` of a `ConfigManagementPlugin` file, which names its socket.
fn plugin_name(config: &Path) -> Result<String> {
    let text =
        std::fs::read_to_string(config).with_context(|| format!("reading {}", config.display()))?;
    let doc: serde_yaml::Value =
        serde_yaml::from_str(&text).with_context(|| format!("parsing {}", config.display()))?;
    let name = doc["metadata"]["name"]
        .as_str()
        .with_context(|| format!("{} has no metadata.name", config.display()))?;
    let version = doc["spec"]["version"].as_str().unwrap_or_default();
    Ok(if version.is_empty() {
        name.to_string()
    } else {
        format!("{name}-{version}")
    })
}

/// The CRDs (established before anything uses them), namespace `argocd` with the base config, a server
/// signing key and the `default` AppProject.
fn install(kubeconfig: &Path, crds: &Path, config: &Path) -> Result<()> {
    let file = crds.display().to_string();
    kubectl(
        kubeconfig,
        &[
            "apply",
            "--server-side",
            "--field-manager=testenv",
            "-f",
            &file,
        ],
    )?;
    // kubectl wait fails at once on a CRD whose status has no conditions yet; so ask again until the deadline.
    let deadline = Instant::now() + Duration::from_secs(60);
    while let Err(e) = kubectl(
        kubeconfig,
        &[
            "wait",
            "--for=condition=Established",
            "--timeout=10s",
            "-f",
            &file,
        ],
    ) {
        if Instant::now() > deadline {
            return Err(e);
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    kubectl_stdin(
        kubeconfig,
        &[
            "apply",
            "--server-side",
            "--field-manager=testenv",
            "-f",
            "-",
        ],
        &format!("apiVersion: v1\nkind: Namespace\nmetadata:\n  name: {NAMESPACE}\n"),
    )?;
    kubectl(
        kubeconfig,
        &[
            "-n",
            NAMESPACE,
            "apply",
            "--server-side",
            "--field-manager=testenv",
            "-f",
            &config.display().to_string(),
        ],
    )?;
    let key = random_key()?;
    kubectl(
        kubeconfig,
        &[
            "-n",
            NAMESPACE,
            "patch",
            "secret",
            "argocd-secret",
            "--type=merge",
            "-p",
            &serde_json::json!({ "stringData": { "server.secretkey": key } }).to_string(),
        ],
    )?;
    kubectl_stdin(
        kubeconfig,
        &[
            "apply",
            "--server-side",
            "--field-manager=testenv",
            "-f",
            "-",
        ],
        &format!(
            "apiVersion: argoproj.io/v1alpha1\nkind: AppProject\nmetadata:\n  name: default\n  namespace: {NAMESPACE}\n\
             spec:\n  sourceRepos: ['*']\n  destinations: [{{server: '*', namespace: '*'}}]\n\
             \x20 clusterResourceWhitelist: [{{group: '*', kind: '*'}}]\n"
        ),
    )?;
    Ok(())
}

fn kubectl(kubeconfig: &Path, args: &[&str]) -> Result<String> {
    run_kubectl(kubeconfig, args, None)
}

fn kubectl_stdin(kubeconfig: &Path, args: &[&str], stdin: &str) -> Result<String> {
    run_kubectl(kubeconfig, args, Some(stdin))
}

fn run_kubectl(kubeconfig: &Path, args: &[&str], stdin: Option<&str>) -> Result<String> {
    use std::io::Write;
    let mut child = TestEnv::kubectl(kubeconfig)?
        .args(args)
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    if let (Some(text), Some(mut pipe)) = (stdin, child.stdin.take()) {
        pipe.write_all(text.as_bytes())?;
    }
    let out = child.wait_with_output()?;
    if !out.status.success() {
        bail!(
            "kubectl {} failed ({}): {}",
            args.join(" "),
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// 32 random bytes in base64, for argocd-secret's `server.secretkey` (argocd-server would generate it).
fn random_key() -> Result<String> {
    use base64::Engine as _;
    use std::io::Read;
    let mut bytes = [0u8; 32];
    std::fs::File::open("/dev/urandom")?.read_exact(&mut bytes)?;
    Ok(base64::engine::general_purpose::STANDARD.encode(bytes))
}

fn which(program: &str) -> Option<PathBuf> {
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|dir| dir.join(program))
        .find(|p| p.is_file())
}

fn port_of(addr: &str) -> &str {
    addr.rsplit(':').next().unwrap_or_default()
}

/// redis answers `PING`.
fn redis_pong(addr: &str) -> bool {
    use std::io::{Read, Write};
    let Ok(mut stream) = std::net::TcpStream::connect(addr) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
    if stream.write_all(b"PING\r\n").is_err() {
        return false;
    }
    let mut buf = [0u8; 7];
    stream.read_exact(&mut buf).is_ok() && &buf == b"+PONG\r\n"
}

/// `GET /healthz` answers 200.
fn healthz(addr: &str) -> bool {
    crate::flux::healthz(addr)
}
