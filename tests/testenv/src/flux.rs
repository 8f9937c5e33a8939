//! Flux's source-controller and kustomize-controller next to a control plane (`testenv --flux`), built by
//! `assets/build.sh flux` at the versions pinned in `assets/versions.env`: their CRDs are installed, and both
//! run as local processes with the admin kubeconfig, without leader election, metrics and health probes on
//! loopback ports. source-controller keeps its artifacts under the control plane's data directory and serves
//! them on a loopback port, the address it also advertises, so kustomize-controller fetches them from it.

use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use crate::TestEnv;
use crate::process::Proc;
use anyhow::{Context, Result, bail};

/// The two controllers; dropping this stops them.
#[derive(Debug)]
pub struct Flux {
    // Dropped in order: kustomize-controller first, so it does not fetch from a stopped source-controller.
    procs: Vec<Proc>,
    storage_addr: String,
}

impl Flux {
    /// Builds Flux if missing, installs its CRDs into `env` and starts both controllers; returns once both
    /// report healthy.
    pub fn start(env: &TestEnv) -> Result<Flux> {
        let bin = crate::assets::run_script("flux")?;
        let crds = crate::assets::run_script("flux-crds")?;
        let dir = env.data_dir().join("flux");
        std::fs::create_dir_all(dir.join("storage"))?;
        let kubeconfig = dir.join("kubeconfig.yaml");
        env.write_kubeconfig(&kubeconfig)?;
        install_crds(&kubeconfig, &crds)?;

        let storage_addr = format!("127.0.0.1:{}", crate::free_port()?);
        let pids = dir.join("pids");
        let start = |name: &str, args: Vec<String>| -> Result<(Proc, String)> {
            let health = format!("127.0.0.1:{}", crate::free_port()?);
            // The controllers take their kubeconfig from KUBECONFIG only (their flags are pflag's, without
            // controller-runtime's --kubeconfig).
            let mut full = vec![
                format!("KUBECONFIG={}", kubeconfig.display()),
                bin.join(name).display().to_string(),
                "--enable-leader-election=false".to_string(),
                format!("--metrics-addr=127.0.0.1:{}", crate::free_port()?),
                format!("--health-addr={health}"),
                "--log-level=debug".to_string(),
            ];
            full.extend(args);
            let proc = Proc::start(name, Path::new("env"), full, &dir, &pids)?;
            Ok((proc, health))
        };
        let (source, source_health) = start(
            "source-controller",
            vec![
                format!("--storage-path={}", dir.join("storage").display()),
                format!("--storage-addr={storage_addr}"),
                format!("--storage-adv-addr={storage_addr}"),
            ],
        )?;
        let (kustomize, kustomize_health) = start("kustomize-controller", Vec::new())?;
        // The watchdog stops them too if this process dies without dropping them.
        for pid in std::fs::read_to_string(&pids)?.split_whitespace() {
            env.adopt(pid.parse().context("a pid in the flux pid file")?)?;
        }
        let mut flux = Flux {
            procs: vec![kustomize, source],
            storage_addr,
        };
        flux.wait_healthy(&[source_health, kustomize_health])?;
        Ok(flux)
    }

    /// Where source-controller serves its artifacts (`host:port` on loopback).
    pub fn storage_addr(&self) -> &str {
        &self.storage_addr
    }

    fn wait_healthy(&mut self, health: &[String]) -> Result<()> {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            for proc in &mut self.procs {
                proc.check_running()?;
            }
            if health.iter().all(|addr| healthz(addr)) {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!(
                    "Flux's controllers did not report healthy within 60 s; their logs:\n{}",
                    self.procs
                        .iter()
                        .map(|p| format!("{}:\n{}", p.name(), p.log_tail(20)))
                        .collect::<Vec<_>>()
                        .join("\n")
                );
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

/// `GET /healthz` answers 200.
pub(crate) fn healthz(addr: &str) -> bool {
    use std::io::{Read, Write};
    let Ok(mut stream) = std::net::TcpStream::connect(addr) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
    if stream
        .write_all(format!("GET /healthz HTTP/1.0\r\nHost: {addr}\r\n\r\n").as_bytes())
        .is_err()
    {
        return false;
    }
    let mut response = String::new();
    let _ = stream.read_to_string(&mut response);
    response.starts_with("HTTP/1.0 200") || response.starts_with("HTTP/1.1 200")
}

fn install_crds(kubeconfig: &Path, crds: &Path) -> Result<()> {
    for args in [
        vec!["apply", "--server-side", "--field-manager=testenv", "-f"],
        vec!["wait", "--for=condition=Established", "--timeout=60s", "-f"],
    ] {
        let out = TestEnv::kubectl(kubeconfig)?
            .args(&args)
            .arg(crds)
            .stdin(Stdio::null())
            .output()?;
        if !out.status.success() {
            bail!(
                "kubectl {} of Flux's CRDs failed ({}): {}",
                args[0],
                out.status,
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }
    Ok(())
}
