//! `pilotq supervise` (hidden): keeps one process of a role alive. What
//! `start-workers` leaves behind for each worker, detached in its own
//! session, its stdout and stderr in the worker's log.
//!
//! It runs the command after `--`, writes both pid files, and when the
//! child exits runs it again after a backoff ([`Backoff`]), unless
//! `--no-respawn` was given, the drain file exists, or it was asked to stop.
//! On SIGTERM or SIGINT it forwards SIGTERM to the child, gives it
//! `--grace` seconds, then SIGKILLs it; then it removes its pid files and
//! exits. SIGHUP is ignored: a supervisor outlives the terminal it was
//! started from.

use super::{pid_file, Layout, Role};
use crate::commands::seconds;
use anyhow::{Context, Result};
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicI32, Ordering};
use std::time::{Duration, Instant};

/// Arguments of `pilotq supervise`; `start-workers` writes them.
#[derive(Debug, Clone, clap::Args)]
pub struct SuperviseArgs {
    #[arg(long, value_enum)]
    pub role: Role,
    #[arg(long)]
    pub id: u32,
    /// The work dir (absolute): where the pid files go.
    #[arg(long)]
    pub workdir: PathBuf,
    /// Do not respawn while this file exists.
    #[arg(long)]
    pub drain_file: Option<PathBuf>,
    /// Run the child once.
    #[arg(long)]
    pub no_respawn: bool,
    /// Seconds between forwarding SIGTERM and SIGKILL.
    #[arg(long, default_value_t = DEFAULT_GRACE.as_secs_f64())]
    pub grace: f64,
    /// The child's command line, starting with its executable.
    #[arg(last = true, required = true)]
    pub command: Vec<OsString>,
}

/// How long a supervisor lets its child stop after SIGTERM.
pub const DEFAULT_GRACE: Duration = Duration::from_secs(10);

/// How often the supervisor looks at its child, the stop flag and the
/// drain file.
const POLL: Duration = Duration::from_millis(100);

/// The signal that asked this supervisor to stop, or 0.
static STOP: AtomicI32 = AtomicI32::new(0);

extern "C" fn on_stop_signal(sig: libc::c_int) {
    STOP.store(sig, Ordering::SeqCst);
}

extern "C" fn on_hangup(_: libc::c_int) {}

fn stop_signal() -> Option<&'static str> {
    match STOP.load(Ordering::SeqCst) {
        0 => None,
        libc::SIGINT => Some("SIGINT"),
        _ => Some("SIGTERM"),
    }
}

/// Handlers rather than SIG_IGN for SIGHUP: an ignored signal stays
/// ignored across exec, and the child should get the default.
fn install_signal_handlers() {
    let stop = on_stop_signal as extern "C" fn(libc::c_int) as libc::sighandler_t;
    let hup = on_hangup as extern "C" fn(libc::c_int) as libc::sighandler_t;
    // SAFETY: the handlers only store to an atomic, which is
    // async-signal-safe.
    unsafe {
        libc::signal(libc::SIGTERM, stop);
        libc::signal(libc::SIGINT, stop);
        libc::signal(libc::SIGHUP, hup);
    }
}

/// Respawn delays: 1 s, doubling up to 60 s; back to 1 s once a child has
/// run for 60 s (the worker's own reconnect backoff has the same shape).
#[derive(Debug, Clone)]
pub struct Backoff {
    next: Duration,
}

impl Backoff {
    pub const FIRST: Duration = Duration::from_secs(1);
    pub const MAX: Duration = Duration::from_secs(60);
    /// A child that ran this long was healthy: the next failure starts over.
    pub const RESET_AFTER: Duration = Duration::from_secs(60);

    pub fn new() -> Backoff {
        Backoff { next: Self::FIRST }
    }

    /// The wait before the next start, for a child that ran `ran`.
    pub fn after_exit(&mut self, ran: Duration) -> Duration {
        if ran >= Self::RESET_AFTER {
            self.next = Self::FIRST;
        }
        let wait = self.next;
        self.next = (self.next * 2).min(Self::MAX);
        wait
    }
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff::new()
    }
}

/// Removes the pid files when the supervisor returns, however it returns.
struct PidFiles {
    supervisor: PathBuf,
    child: PathBuf,
}

impl Drop for PidFiles {
    fn drop(&mut self) {
        pid_file::remove(&self.child);
        pid_file::remove(&self.supervisor);
    }
}

pub fn run(a: SuperviseArgs) -> Result<i32> {
    crate::logging::init("info");
    install_signal_handlers();
    let grace = seconds("grace", a.grace)?;
    let layout = Layout::new(a.role, a.workdir.clone());
    let role = a.role.subcommand();
    let id = a.id;
    std::fs::create_dir_all(layout.pids_dir())
        .with_context(|| format!("cannot create {}", layout.pids_dir().display()))?;
    let files = PidFiles {
        supervisor: layout.supervisor_pid_file(id),
        child: layout.child_pid_file(id),
    };
    pid_file::write(&files.supervisor, std::process::id())
        .with_context(|| format!("cannot write {}", files.supervisor.display()))?;
    tracing::info!(
        "supervisor of {role} {id} started (pid {}); respawn: {}",
        std::process::id(),
        if a.no_respawn { "no" } else { "yes" }
    );
    let draining = || a.drain_file.as_deref().filter(|d| d.exists());
    let mut backoff = Backoff::new();
    loop {
        if let Some(sig) = stop_signal() {
            tracing::info!("{sig}: supervisor of {role} {id} stopping");
            break;
        }
        if let Some(d) = draining() {
            tracing::info!(
                "drain file {} exists: not starting {role} {id}",
                d.display()
            );
            break;
        }
        let started = Instant::now();
        match spawn(&a.command) {
            Ok(mut child) => {
                if let Err(e) = pid_file::write(&files.child, child.id()) {
                    tracing::error!("cannot write {}: {e}", files.child.display());
                }
                tracing::info!("{role} {id} started: pid {}", child.id());
                let status = wait(&mut child, grace);
                pid_file::remove(&files.child);
                match status {
                    Ok(s) => tracing::info!(
                        "{role} {id} (pid {}) exited after {:.1} s: {}",
                        child.id(),
                        started.elapsed().as_secs_f64(),
                        describe(s)
                    ),
                    Err(e) => tracing::error!("waiting for {role} {id}: {e}"),
                }
            }
            Err(e) => tracing::error!("cannot start {role} {id}: {e}"),
        }
        if let Some(sig) = stop_signal() {
            tracing::info!("{sig}: supervisor of {role} {id} stopping");
            break;
        }
        if a.no_respawn {
            tracing::info!("not respawning {role} {id} (no-respawn)");
            break;
        }
        if let Some(d) = draining() {
            tracing::info!(
                "drain file {} exists: not respawning {role} {id}",
                d.display()
            );
            break;
        }
        let wait = backoff.after_exit(started.elapsed());
        tracing::info!("respawning {role} {id} in {} s", wait.as_secs());
        let until = Instant::now() + wait;
        while Instant::now() < until && stop_signal().is_none() && draining().is_none() {
            std::thread::sleep(POLL);
        }
    }
    drop(files);
    tracing::info!("supervisor of {role} {id} exited");
    Ok(0)
}

fn spawn(command: &[OsString]) -> std::io::Result<Child> {
    let (exe, args) = command
        .split_first()
        .ok_or_else(|| std::io::Error::other("no command to supervise"))?;
    Command::new(exe).args(args).stdin(Stdio::null()).spawn()
}

/// Waits for the child; once a stop is asked, forwards SIGTERM, and
/// SIGKILLs it if it is still there `grace` later.
fn wait(child: &mut Child, grace: Duration) -> std::io::Result<ExitStatus> {
    let mut terminated: Option<Instant> = None;
    loop {
        if let Some(s) = child.try_wait()? {
            return Ok(s);
        }
        match terminated {
            None if stop_signal().is_some() => {
                tracing::info!("forwarding SIGTERM to pid {}", child.id());
                pid_file::signal(child.id() as i32, libc::SIGTERM);
                terminated = Some(Instant::now());
            }
            Some(t) if t.elapsed() >= grace => {
                tracing::warn!(
                    "pid {} still running {} s after SIGTERM: SIGKILL",
                    child.id(),
                    grace.as_secs_f64()
                );
                child.kill()?;
                return child.wait();
            }
            _ => {}
        }
        std::thread::sleep(POLL);
    }
}

fn describe(s: ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt;
    match (s.code(), s.signal()) {
        (Some(c), _) => format!("exit code {c}"),
        (None, Some(sig)) => format!("killed by signal {sig}"),
        _ => s.to_string(),
    }
}

/// Starts `pilotq supervise` detached: a new session (no controlling
/// terminal, no SIGHUP when the shell goes, out of the shell's job
/// control), stdin from /dev/null, stdout and stderr appended to `log`,
/// running in `cwd`. Whoever starts it exits soon after and the supervisor
/// is adopted by init, as the scripts' double fork did.
pub fn spawn_detached(exe: &Path, args: &[OsString], log: &Path, cwd: &Path) -> Result<Child> {
    use std::os::unix::process::CommandExt;
    let out = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .with_context(|| format!("cannot open {}", log.display()))?;
    let err = out.try_clone()?;
    let mut cmd = Command::new(exe);
    cmd.arg("supervise")
        .args(args)
        .current_dir(cwd)
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err);
    // SAFETY: setsid is async-signal-safe and touches no memory of ours, as
    // pre_exec requires between fork and exec.
    unsafe {
        cmd.pre_exec(|| {
            if libc::setsid() < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    cmd.spawn()
        .with_context(|| format!("cannot start {} supervise", exe.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_to_a_minute_and_resets_after_a_healthy_run() {
        let mut b = Backoff::new();
        let quick = Duration::from_millis(10);
        let waits: Vec<u64> = (0..9).map(|_| b.after_exit(quick).as_secs()).collect();
        assert_eq!(waits, [1, 2, 4, 8, 16, 32, 60, 60, 60]);
        assert_eq!(b.after_exit(Duration::from_secs(60)).as_secs(), 1);
        assert_eq!(b.after_exit(Duration::from_secs(59)).as_secs(), 2);
        assert_eq!(b.after_exit(Duration::from_secs(3600)).as_secs(), 1);
    }
}
