//! The policy config in force, and its hot reload from a directory (typically a ConfigMap mount).
//!
//! In: `--policies DIR` and a loader (the policy module's parser). Out: a [`PolicyStore`] the handlers read on
//! every review. The directory is polled by content, not watched with inotify: a ConfigMap update swaps the
//! `..data` symlink, which a watch on the old files never sees. A new config that does not load is logged and
//! rejected, and the last good one stays in force.

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use super::metrics::{Metrics, ReloadResult};
use crate::policy::PolicyConfig;

/// The config the handlers read; swapped whole, so a review sees one consistent version.
#[derive(Debug)]
pub struct PolicyStore {
    current: RwLock<Arc<PolicyConfig>>,
}

impl PolicyStore {
    pub fn new(config: PolicyConfig) -> Self {
        PolicyStore {
            current: RwLock::new(Arc::new(config)),
        }
    }

    pub fn current(&self) -> Arc<PolicyConfig> {
        // A poisoned lock means a panic while swapping an Arc; the Arc itself is intact.
        match self.current.read() {
            Ok(guard) => guard.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    pub fn replace(&self, config: PolicyConfig) {
        let next = Arc::new(config);
        match self.current.write() {
            Ok(mut guard) => *guard = next,
            Err(poisoned) => *poisoned.into_inner() = next,
        }
    }
}

/// Parses a policy directory; the error is shown to operators as is.
pub type Loader = fn(&Path) -> Result<PolicyConfig, String>;

/// The names and contents of the config files in `dir`, sorted: equal fingerprints mean nothing changed.
///
/// Entries starting with `.` are skipped (the `..data` and `..<timestamp>` entries of a ConfigMap volume);
/// the visible names are read through their symlinks.
pub fn fingerprint(dir: &Path) -> std::io::Result<Vec<(String, Vec<u8>)>> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with('.') {
            continue;
        }
        let path = entry.path();
        if path.is_file() {
            files.push((name, std::fs::read(&path)?));
        }
    }
    files.sort();
    Ok(files)
}

/// Polls `dir` every `interval` and loads it when its contents change, until `shutdown` fires.
pub async fn watch(
    dir: PathBuf,
    store: Arc<PolicyStore>,
    loader: Loader,
    metrics: Arc<Metrics>,
    interval: Duration,
    mut shutdown: tokio::sync::watch::Receiver<bool>,
) {
    let mut last = fingerprint(&dir).ok();
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = ticker.tick() => {}
            _ = shutdown.changed() => return,
        }
        let now = match fingerprint(&dir) {
            Ok(now) => Some(now),
            Err(err) => {
                tracing::warn!(dir = %dir.display(), error = %err, "cannot read the policy directory; keeping the config in force");
                continue;
            }
        };
        if now == last {
            continue;
        }
        last = now;
        match loader(&dir) {
            Ok(config) => {
                store.replace(config);
                metrics.observe_reload(ReloadResult::applied);
                tracing::info!(dir = %dir.display(), "policy config reloaded");
            }
            Err(err) => {
                metrics.observe_reload(ReloadResult::rejected);
                tracing::error!(dir = %dir.display(), error = %err,
                    "new policy config rejected; the last good config stays in force");
            }
        }
    }
}
