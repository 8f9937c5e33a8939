//! What drgitops' tests share: a cluster (a `testenv` control plane) with drgitops' shipped manifests applied
//! by kubectl as the README says, kubeconfigs for the shipped ServiceAccounts, the `drgitops` binary run as
//! those ServiceAccounts, git repositories, and condition waits.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

use k8s_openapi::api::core::v1::Pod;
use kube::Api;
use kube::api::ListParams;

pub mod gitops;
pub mod gpg;
pub mod migration;
pub mod reconcile;
pub mod stork;
pub mod webhook;

pub const EAST: &str = "us-east-1a";
pub const WEST: &str = "us-east-1b";

/// A path in this repository.
pub fn repo_file(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .join(path)
}

/// One real cluster, with an admin kubeconfig file for kubectl.
pub struct Cluster {
    pub env: testenv::TestEnv,
    pub domain: String,
    pub dir: tempfile::TempDir,
    pub admin: PathBuf,
}

impl Cluster {
    /// A cluster in `domain` with one kwok Node.
    pub async fn start(domain: &str) -> Cluster {
        Self::start_with(testenv::Options {
            name: domain.into(),
            nodes: 1,
        })
        .await
    }

    /// A cluster as `options` say; its domain is `options.name`.
    pub async fn start_with(options: testenv::Options) -> Cluster {
        let domain = options.name.clone();
        let env = testenv::TestEnv::start_with(options)
            .await
            .unwrap_or_else(|e| panic!("control plane {domain}: {e:#}"));
        // Inside the control plane's own directory, so its watchdog removes it too when a shared cluster in
        // a `static` is never dropped.
        let dir = tempfile::tempdir_in(env.data_dir()).expect("tempdir");
        let admin = dir.path().join("admin.kubeconfig");
        env.write_kubeconfig(&admin).expect("admin kubeconfig");
        Cluster {
            env,
            domain,
            dir,
            admin,
        }
    }

    pub async fn client(&self) -> kube::Client {
        self.env.client().await.expect("admin client")
    }

    /// kubectl as admin; the output whatever the exit status.
    pub fn kubectl_output(&self, args: &[&str], stdin: Option<&str>) -> Output {
        kubectl_with(&self.admin, args, stdin)
    }

    /// `kubectl get OBJECTS -o jsonpath=PATH` as admin, e.g. `get(&["-n", "mysql", "deployment", "web"],
    /// "{.spec.replicas}")`; panics unless kubectl succeeds.
    pub fn get(&self, objects: &[&str], path: &str) -> String {
        let jsonpath = format!("jsonpath={path}");
        let args: Vec<&str> = ["get"]
            .into_iter()
            .chain(objects.iter().copied())
            .chain(["-o", jsonpath.as_str()])
            .collect();
        self.kubectl(&args)
    }

    /// kubectl as admin; panics with kubectl's stderr unless it succeeds. Returns stdout.
    pub fn kubectl(&self, args: &[&str]) -> String {
        let out = self.kubectl_output(args, None);
        assert!(
            out.status.success(),
            "kubectl {args:?} on {}: {}",
            self.domain,
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// `kubectl apply -f -` of a YAML document.
    pub fn apply_yaml(&self, yaml: &str) {
        let out = self.kubectl_output(&["apply", "-f", "-"], Some(yaml));
        assert!(
            out.status.success(),
            "kubectl apply on {}: {}\n{yaml}",
            self.domain,
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Installs what the reconciler needs as the README says: the namespace, the DRPlan and DRPlanOverride CRDs,
    /// the reconciler's ServiceAccount and RBAC (and its Deployment, whose pods kwok runs without running drgitops
    /// in them), the peer role, the break-glass role and admission policy, and the stand-in CRDs of Stork. Waits
    /// until every CRD is Established.
    pub fn install_reconciler(&self) {
        let f = |p: &str| repo_file(p).display().to_string();
        self.kubectl(&[
            "apply",
            "-f",
            &f("manifests/namespace.yaml"),
            "-f",
            &f("manifests/crd/drplan.yaml"),
            "-f",
            &f("manifests/crd/drplanoverride.yaml"),
            "-f",
            &f("tests/data/gitops/stork-crds.yaml"),
        ]);
        self.kubectl(&["apply", "-k", &f("manifests/reconciler")]);
        self.kubectl(&["apply", "-k", &f("manifests/peer")]);
        self.kubectl(&["apply", "-k", &f("manifests/break-glass")]);
        self.wait_crds_established();
    }

    /// Waits until every CRD of the cluster is Established (served), for at most a minute.
    pub fn wait_crds_established(&self) {
        self.kubectl(&[
            "wait",
            "--for=condition=Established",
            "crd",
            "--all",
            "--timeout=60s",
        ]);
    }

    /// A kubeconfig file for ServiceAccount `drgitops-system/name`, with a token from the TokenRequest API.
    pub async fn service_account_kubeconfig(&self, name: &str) -> PathBuf {
        let yaml = self
            .env
            .service_account_kubeconfig("drgitops-system", name)
            .await
            .unwrap_or_else(|e| panic!("token for {name} on {}: {e:#}", self.domain));
        let path = self.dir.path().join(format!("{name}.kubeconfig"));
        std::fs::write(&path, yaml).expect("write kubeconfig");
        path
    }

    /// A client that is ServiceAccount `drgitops-system/name`, with a token from the TokenRequest API: code
    /// under test talks to the cluster as the shipped identity, never as admin.
    pub async fn service_account_client(&self, name: &str) -> kube::Client {
        let yaml = self
            .env
            .service_account_kubeconfig("drgitops-system", name)
            .await
            .unwrap_or_else(|e| panic!("token for {name} on {}: {e:#}", self.domain));
        testenv::client_from_kubeconfig(&yaml)
            .await
            .unwrap_or_else(|e| panic!("client for {name} on {}: {e:#}", self.domain))
    }

    /// How many pods of `app` in `namespace` are Ready and not being deleted.
    pub async fn ready_pods(&self, namespace: &str, app: &str) -> usize {
        let pods: Api<Pod> = Api::namespaced(self.client().await, namespace);
        pods.list(&ListParams::default().labels(&format!("app={app}")))
            .await
            .expect("list pods")
            .items
            .iter()
            .filter(|p| p.metadata.deletion_timestamp.is_none() && testenv::pod_ready(p))
            .count()
    }
}

/// Deployment `web` (pods labelled `app: web`) in `namespace` as Stork leaves it: `replicas` running, or
/// migrated with the count to restore in the annotation Stork reads on activation (`recorded`).
pub fn web_deployment(namespace: &str, replicas: u32, recorded: Option<u32>) -> String {
    let annotation = recorded
        .map(|n| {
            format!("\n  annotations:\n    stork.libopenstorage.org/migrationReplicas: \"{n}\"")
        })
        .unwrap_or_default();
    format!(
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\n  namespace: {namespace}{annotation}\nspec:\n  replicas: {replicas}\n  selector:\n    matchLabels: {{app: web}}\n  template:\n    metadata:\n      labels: {{app: web}}\n    spec:\n      containers:\n      - name: web\n        image: registry.example/web:1\n"
    )
}

pub fn kubectl_with(kubeconfig: &Path, args: &[&str], stdin: Option<&str>) -> Output {
    let mut cmd = testenv::TestEnv::kubectl(kubeconfig).expect("kubectl asset");
    cmd.args(args)
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("kubectl runs");
    if let Some(input) = stdin {
        use std::io::Write;
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(input.as_bytes())
            .expect("kubectl stdin");
    }
    child.wait_with_output().expect("kubectl output")
}

/// A `drgitops` process, killed when dropped; its stderr goes to a log file shown by [`Drgitops::log`].
pub struct Drgitops {
    child: Child,
    log: PathBuf,
}

impl Drgitops {
    /// Starts the `drgitops` binary at `program` (an integration test's `env!("CARGO_BIN_EXE_drgitops")`)
    /// with `args` and `KUBECONFIG=kubeconfig`.
    pub fn spawn(program: &str, kubeconfig: &Path, args: &[&str], log: PathBuf) -> Drgitops {
        Self::spawn_with_env(program, kubeconfig, args, &[], log)
    }

    /// As [`Drgitops::spawn`], with `env` set too (what a shipped Deployment sets, say).
    pub fn spawn_with_env(
        program: &str,
        kubeconfig: &Path,
        args: &[&str],
        env: &[(&str, &str)],
        log: PathBuf,
    ) -> Drgitops {
        let file = std::fs::File::create(&log).expect("log file");
        let child = Command::new(program)
            .args(args)
            .envs(env.iter().copied())
            .env("KUBECONFIG", kubeconfig)
            // DRGITOPS_TEST_LOG (a RUST_LOG filter) turns up the logging of every process a test starts.
            .env(
                "RUST_LOG",
                std::env::var("DRGITOPS_TEST_LOG").unwrap_or_else(|_| "info".into()),
            )
            .stdin(Stdio::null())
            .stdout(file.try_clone().expect("log"))
            .stderr(file)
            .spawn()
            .expect("drgitops runs");
        Drgitops { child, log }
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Drgitops {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn git(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .args([
            "-c",
            "user.name=On-call",
            "-c",
            "user.email=oncall@example.com",
            "-c",
            "commit.gpgsign=false",
        ])
        .args(args)
        .current_dir(dir)
        .output()
        .expect("git runs");
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// Polls `check` every 100 ms until it returns Some, for at most `timeout`.
pub async fn eventually<T, F, Fut>(timeout: Duration, mut check: F) -> Option<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if let Some(value) = check().await {
            return Some(value);
        }
        if tokio::time::Instant::now() > deadline {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
