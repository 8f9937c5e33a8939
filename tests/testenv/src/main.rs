//! `testenv`: starts a real single-node control plane on loopback, writes its admin kubeconfig, and serves
//! until SIGTERM or SIGINT, then stops every process and removes its data.
//!
//! ```sh
//! testenv --kubeconfig-out kc.yaml [--nodes 3] [--name east] [--flux] [--argocd [--argocd-plugin plugin.yaml]]
//! kubectl --kubeconfig kc.yaml get nodes
//! ```
//!
//! Missing control-plane assets are built first (progress on stderr). The first stdout line is
//! kube-apiserver's URL, printed once the control plane is ready (a pod can be scheduled and run).
//!
//! `--flux` also installs Flux's CRDs and runs its source-controller and kustomize-controller against the
//! control plane (built first by `assets/build.sh flux` if missing); they stop with it.
//!
//! `--argocd` also installs Argo CD's CRDs and base config into namespace `argocd` and runs redis
//! (`redis-server` from PATH), its repo-server and application controller against the control plane (built first
//! by `assets/build.sh argocd` if missing), with an `argocd-cmp-server` for each `--argocd-plugin` file (a
//! `ConfigManagementPlugin`, whose commands run with testenv's own PATH); they stop with it.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;

#[derive(Parser, Debug)]
#[command(
    name = "testenv",
    about = "A real single-node Kubernetes control plane on loopback"
)]
struct Args {
    /// Where to write the admin kubeconfig once the control plane is ready.
    #[arg(long, value_name = "PATH")]
    kubeconfig_out: PathBuf,
    /// Names the kubeconfig's cluster, user and context.
    #[arg(long, default_value = "testenv")]
    name: String,
    /// How many kwok Nodes to register.
    #[arg(long, default_value_t = 1)]
    nodes: usize,
    /// Also install Flux's CRDs and run its source-controller and kustomize-controller.
    #[arg(long)]
    flux: bool,
    /// Also install Argo CD's CRDs and config and run redis, its repo-server and application controller.
    #[arg(long)]
    argocd: bool,
    /// A config-management plugin file for an argocd-cmp-server next to the repo-server (with --argocd).
    #[arg(long, value_name = "PATH", requires = "argocd")]
    argocd_plugin: Vec<PathBuf>,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("testenv: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(serve(args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("testenv: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn serve(args: Args) -> anyhow::Result<()> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    let options = testenv::Options {
        name: args.name,
        nodes: args.nodes,
    };
    eprintln!(
        "testenv: starting etcd, kube-apiserver, kube-controller-manager, kube-scheduler and kwok"
    );
    let env = tokio::select! {
        env = testenv::TestEnv::start_with(options) => env?,
        _ = term.recv() => return Ok(()),
        _ = int.recv() => return Ok(()),
    };
    let flux = if args.flux {
        eprintln!("testenv: starting Flux's source-controller and kustomize-controller");
        let started = tokio::task::block_in_place(|| testenv::flux::Flux::start(&env));
        Some(started?)
    } else {
        None
    };
    let argocd = if args.argocd {
        eprintln!(
            "testenv: starting Argo CD's redis, repo-server, cmp-servers and application controller"
        );
        let plugins: Vec<_> = args
            .argocd_plugin
            .iter()
            .map(|config| testenv::argocd::Plugin {
                config: config.clone(),
                path: Vec::new(),
            })
            .collect();
        let started =
            tokio::task::block_in_place(|| testenv::argocd::ArgoCd::start(&env, &plugins));
        Some(started?)
    } else {
        None
    };
    env.write_kubeconfig(&args.kubeconfig_out)?;
    println!("{}", env.url());
    eprintln!(
        "testenv: ready; admin kubeconfig in {}, data and logs in {}; stop with Ctrl-C",
        args.kubeconfig_out.display(),
        env.data_dir().display()
    );
    if let Some(flux) = &flux {
        eprintln!(
            "testenv: Flux running, artifacts served on {}; logs in {}",
            flux.storage_addr(),
            env.data_dir().join("flux").display()
        );
    }
    if let Some(argocd) = &argocd {
        eprintln!(
            "testenv: Argo CD running in namespace {}; logs in {}",
            testenv::argocd::NAMESPACE,
            argocd.dir().display()
        );
    }
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
    eprintln!("testenv: stopping");
    drop(argocd);
    drop(flux);
    drop(env);
    Ok(())
}
