//! `fake-apiserver --listen 127.0.0.1:PORT --kubeconfig-out FILE [--https]`: serves until killed, writes a
//! kubeconfig kubectl and kube-rs accept, and prints the URL as the first line on stdout.

use std::net::SocketAddr;

use anyhow::{Context, bail};
use fake_apiserver::{FakeApiServer, Options};

const USAGE: &str =
    "usage: fake-apiserver [--listen 127.0.0.1:PORT] [--kubeconfig-out FILE] [--https]";

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut opts = Options::default();
    let mut kubeconfig_out = None;
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
            "-h" | "--help" => {
                println!("{USAGE}");
                return Ok(());
            }
            other => bail!("unknown argument {other}\n{USAGE}"),
        }
    }
    let srv = FakeApiServer::start_with(opts).await?;
    if let Some(path) = &kubeconfig_out {
        srv.write_kubeconfig(path)
            .with_context(|| format!("writing the kubeconfig to {path}"))?;
    }
    println!("{}", srv.url());
    tokio::signal::ctrl_c()
        .await
        .context("waiting for a termination signal")?;
    Ok(())
}
