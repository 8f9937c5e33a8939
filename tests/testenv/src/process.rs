//! The control plane's processes: each one logs to its own file, stops on drop (SIGTERM, then SIGKILL), and
//! a watchdog stops every one of them when the process that started them dies without dropping them (a test
//! binary's shared control plane lives in a `static`, which is never dropped).

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use rustix::process::{Pid, Signal, kill_process};

/// How long a process has to exit after SIGTERM before it gets SIGKILL.
const STOP_GRACE: Duration = Duration::from_secs(10);

/// One running component of the control plane.
#[derive(Debug)]
pub struct Proc {
    name: String,
    program: PathBuf,
    args: Vec<String>,
    log: PathBuf,
    child: Option<Child>,
    pids: PathBuf,
}

impl Proc {
    /// Starts `program` with `args`; stdout and stderr go to `<dir>/<name>.log` (appended across restarts).
    pub fn start(
        name: &str,
        program: &Path,
        args: Vec<String>,
        dir: &Path,
        pids: &Path,
    ) -> Result<Self> {
        let mut proc = Proc {
            name: name.to_string(),
            program: program.to_path_buf(),
            args,
            log: dir.join(format!("{name}.log")),
            child: None,
            pids: pids.to_path_buf(),
        };
        proc.spawn()?;
        Ok(proc)
    }

    fn spawn(&mut self) -> Result<()> {
        let log = File::options()
            .create(true)
            .append(true)
            .open(&self.log)
            .with_context(|| format!("opening {}", self.log.display()))?;
        let child = Command::new(&self.program)
            .args(&self.args)
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .with_context(|| format!("starting {}", self.program.display()))?;
        let mut pids = File::options().create(true).append(true).open(&self.pids)?;
        writeln!(pids, "{}", child.id())?;
        self.child = Some(child);
        Ok(())
    }

    /// The component's name (`etcd`, `kube-apiserver`, ...).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Fails with the log's tail if the process has exited.
    pub fn check_running(&mut self) -> Result<()> {
        if let Some(child) = self.child.as_mut()
            && let Some(status) = child.try_wait()?
        {
            bail!(
                "{} exited ({status}); the last lines of {}:\n{}",
                self.name,
                self.log.display(),
                self.log_tail(40)
            );
        }
        Ok(())
    }

    /// The last `lines` lines of the component's log.
    pub fn log_tail(&self, lines: usize) -> String {
        tail(&self.log, lines)
    }

    /// Stops the process: SIGTERM, then SIGKILL after a grace period. Idempotent.
    pub fn stop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        if let Ok(None) = child.try_wait() {
            signal(child.id(), Signal::TERM);
            let deadline = Instant::now() + STOP_GRACE;
            while Instant::now() < deadline {
                if let Ok(Some(_)) = child.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = child.kill();
        }
        let _ = child.wait();
    }

    /// Starts the process again with the same arguments, after [`Proc::stop`] or [`Proc::kill`].
    pub fn restart(&mut self) -> Result<()> {
        self.stop();
        self.spawn()
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.stop();
    }
}

fn signal(pid: u32, sig: Signal) {
    if let Some(pid) = i32::try_from(pid).ok().and_then(Pid::from_raw) {
        let _ = kill_process(pid, sig);
    }
}

/// The last `lines` lines of a file (empty if it cannot be read).
pub fn tail(path: &Path, lines: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// A shell that waits on a pipe from this process; when the pipe closes (this process exited, however it
/// exited), it stops every process listed in `pids` and removes `dir`. Dropping the guard closes the pipe,
/// so the shell then only removes what is left.
#[derive(Debug)]
pub struct Watchdog {
    stdin: Option<ChildStdin>,
    child: Child,
}

impl Watchdog {
    pub fn start(pids: &Path, dir: &Path) -> Result<Self> {
        let script = r#"
read -r _
for p in $(cat "$1" 2>/dev/null); do kill -TERM "$p" 2>/dev/null; done
i=0
while [ $i -lt 100 ]; do
  alive=0
  for p in $(cat "$1" 2>/dev/null); do kill -0 "$p" 2>/dev/null && alive=1; done
  [ $alive = 0 ] && break
  sleep 0.1; i=$((i+1))
done
for p in $(cat "$1" 2>/dev/null); do kill -KILL "$p" 2>/dev/null; done
rm -rf "$2"
"#;
        let mut child = Command::new("sh")
            .args(["-c", script, "testenv-watchdog"])
            .arg(pids)
            .arg(dir)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("starting the testenv watchdog shell")?;
        let stdin = child.stdin.take();
        Ok(Watchdog { stdin, child })
    }
}

impl Drop for Watchdog {
    fn drop(&mut self) {
        drop(self.stdin.take());
        let _ = self.child.wait();
    }
}
