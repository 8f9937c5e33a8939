//! `fake-apiserver --listen 127.0.0.1:PORT --kubeconfig-out FILE [--https] [--name NAME]`: serves until killed,
//! writes a kubeconfig kubectl and kube-rs accept (cluster, user and context named NAME, default `fake`, so
//! several servers' kubeconfigs can be merged), and prints the URL as the first line on stdout.
//! `--simulate-workloads` reports every Deployment, StatefulSet and ReplicaSet as fully ready.

use std::net::SocketAddr;
use std::process::ExitCode;

use anyhow::{Context, bail};
use fake_apiserver::{FakeApiServer, Options};

const USAGE: &str = "usage: fake-apiserver [--listen 127.0.0.1:PORT] [--kubeconfig-out FILE] [--https] [--name NAME] [--simulate-workloads]";

/// What the command line asks for.
struct Args {
    opts: Options,
    kubeconfig_out: Option<String>,
    name: String,
}

/// What the command line asks for; None when it asked for help.
fn parse_args() -> anyhow::Result<Option<Args>> {
    let mut opts = Options::default();
    let mut kubeconfig_out = None;
    let mut name = "fake".to_string();
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let (flag, inline) = match arg.split_once('=') {
            Some((f, v)) => (f.to_string(), Some(v.to_string())),
            None => (arg.clone(), None),
        };
        let mut value = |name: &str| -> anyhow::Result<String> {
            inline
                .clone()
                .or_else(|| args.next())
                .with_context(|| format!("{name} needs a value\n{USAGE}"))
        };
        match flag.as_str() {
            "--listen" => {
                let v = value("--listen")?;
                opts.listen = v.parse::<SocketAddr>().with_context(|| {
                    format!("--listen {v}: expected IP:PORT such as 127.0.0.1:0")
                })?;
            }
            "--kubeconfig-out" => kubeconfig_out = Some(value("--kubeconfig-out")?),
            "--https" => opts.https = true,
            "--simulate-workloads" => opts.simulate_workloads = true,
            "--name" => name = value("--name")?,
            "-h" | "--help" => return Ok(None),
            other => bail!("unknown argument {other}\n{USAGE}"),
        }
    }
    Ok(Some(Args {
        opts,
        kubeconfig_out,
        name,
    }))
}

/// Resolves on SIGINT or SIGTERM, so `kill` and Ctrl-C both stop the server cleanly.
async fn terminated() -> anyhow::Result<()> {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .context("installing the SIGTERM handler")?;
    tokio::select! {
        r = tokio::signal::ctrl_c() => r.context("waiting for SIGINT"),
        _ = term.recv() => Ok(()),
    }
}

async fn run(args: Args) -> anyhow::Result<()> {
    let srv = FakeApiServer::start_with(args.opts).await?;
    if let Some(path) = &args.kubeconfig_out {
        std::fs::write(path, srv.kubeconfig_named(&args.name))
            .with_context(|| format!("writing the kubeconfig to {path}"))?;
    }
    println!("{}", srv.url());
    terminated().await
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(Some(parsed)) => parsed,
        Ok(None) => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("error: {e:#}");
            return ExitCode::from(2);
        }
    };
    match run(args).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
