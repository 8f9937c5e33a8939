//! The control-plane binaries, built from the Go module proxy by `assets/build.sh` at the versions pinned in
//! `assets/versions.env`, into a cache keyed by those versions.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;

use anyhow::{Context, Result, bail};

/// The build script, in this crate's source tree.
pub fn build_script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("assets/build.sh")
}

/// The directory holding `etcd`, `kube-apiserver`, `kube-controller-manager`, `kube-scheduler`, `kubectl`,
/// `kwok` and `kwok-stages-fast.yaml`, built first if any is missing (progress on stderr). The cache root is
/// `$DRGITOPS_TESTENV_ASSETS`, else the user's cache directory.
pub fn bin_dir() -> Result<PathBuf> {
    static DIR: OnceLock<std::result::Result<PathBuf, String>> = OnceLock::new();
    DIR.get_or_init(|| build().map_err(|e| format!("{e:#}")))
        .clone()
        .map_err(anyhow::Error::msg)
}

/// cert-manager's CRDs (from its module's `deploy/crds`), as one YAML stream.
pub fn cert_manager_crds() -> Result<PathBuf> {
    bin_dir()?;
    run_script("cert-manager-crds")
}

/// cert-manager's controllers and cainjector as one binary (`assets/cert-manager/main.go`), built from its
/// module: `cert-manager controller --kubeconfig PATH` and `cert-manager cainjector --kubeconfig PATH`.
pub fn cert_manager() -> Result<PathBuf> {
    bin_dir()?;
    run_script("cert-manager")
}

fn build() -> Result<PathBuf> {
    let dir = run_script("build")?;
    if !dir.join("kube-apiserver").is_file() {
        bail!(
            "{} printed {}, which holds no kube-apiserver",
            build_script().display(),
            dir.display()
        );
    }
    Ok(dir)
}

/// Runs the build script with `command` (`build`, `cert-manager`, `flux`, ...), which builds what is missing;
/// its stdout is a path.
pub fn run_script(command: &str) -> Result<PathBuf> {
    let script = build_script();
    let out = Command::new("bash")
        .arg(&script)
        .arg(command)
        .stdin(Stdio::null())
        .stderr(Stdio::inherit())
        .output()
        .with_context(|| format!("running {}", script.display()))?;
    if !out.status.success() {
        bail!(
            "{} {command} failed ({}); its output above names the module and the error",
            script.display(),
            out.status
        );
    }
    Ok(PathBuf::from(String::from_utf8(out.stdout)?.trim()))
}

/// The path of one asset.
pub fn binary(name: &str) -> Result<PathBuf> {
    Ok(bin_dir()?.join(name))
}
