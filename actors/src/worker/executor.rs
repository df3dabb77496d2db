//! Runs one job attempt as a child process:
//! - in a sandbox directory of its own (its working directory), emptied
//!   afterwards (see `sandbox.rs`: directories are reused, not re-created);
//! - with exactly the environment the job asked for, nothing inherited;
//! - in its own process group, so a kill reaches everything it started, and
//!   whatever it left behind is killed when it exits;
//! - stdout and stderr captured through pipes (no files to create and delete
//!   per job: on ext4 those dominated the cost of short jobs) and shipped with
//!   the result, each cut at the cap with a marker saying so.
//!
//! No `pre_exec` hook (such as `PR_SET_PDEATHSIG`): without one the standard
//! library spawns with `posix_spawn` (vfork-like) instead of `fork`, which cost
//! a quarter of the throughput of short jobs when measured. A worker that is
//! stopped kills its jobs' groups; one killed with SIGKILL leaves them to
//! finish unsupervised (their results are never reported; the master requeues
//! the jobs after the lease).

use pilotq_wire::{JobId, JobResult, Outcome};
use std::collections::BTreeMap;
use std::future::Future;
use std::os::unix::process::ExitStatusExt;
use std::path::PathBuf;
use std::process::Stdio;
use tokio::io::AsyncReadExt;

pub struct Launch {
    pub job: JobId,
    pub attempt: u32,
    pub executable: PathBuf,
    /// `argv[0]`.
    pub cmd: String,
    pub arguments: Vec<String>,
    pub environment: BTreeMap<String, String>,
    /// The job's sandbox: an existing, empty directory it has to itself.
    pub sandbox: PathBuf,
    pub output_cap: usize,
}

/// Starts the job. Returns its process group id and a future that resolves
/// with its result once it has exited and been cleaned up. A job that cannot
/// be started resolves at once with `FailedToStart`.
pub fn start(l: Launch) -> (Option<i32>, impl Future<Output = JobResult>) {
    let started_at = pilotq_journal::now_ms();
    let sandbox = l.sandbox.clone();
    let mut cmd = tokio::process::Command::new(&l.executable);
    cmd.arg0(&l.cmd)
        .args(&l.arguments)
        .env_clear()
        .envs(&l.environment)
        .current_dir(&sandbox)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(false);
    let spawned = cmd.spawn();
    let (job, attempt, cap) = (l.job, l.attempt, l.output_cap);
    let pgid = spawned.as_ref().ok().and_then(|c| c.id()).map(|p| p as i32);
    let fut = async move {
        let (outcome, stdout, stderr) = match spawned {
            Err(e) => (
                Outcome::FailedToStart {
                    reason: format!("{}: {e}", l.executable.display()),
                },
                vec![],
                vec![],
            ),
            Ok(mut child) => {
                // Drain both pipes while the job runs, so it never blocks on
                // a full pipe.
                let out = child
                    .stdout
                    .take()
                    .map(|p| tokio::task::spawn_local(read_capped(p, cap)));
                let err = child
                    .stderr
                    .take()
                    .map(|p| tokio::task::spawn_local(read_capped(p, cap)));
                let status = child.wait().await;
                if let Some(pg) = pgid {
                    // Whatever the job left running dies with it, which also
                    // closes the pipes it held.
                    kill_group(pg);
                }
                let outcome = match status {
                    Ok(s) => match (s.code(), s.signal()) {
                        (Some(code), _) => Outcome::Exited { code },
                        (None, Some(signal)) => Outcome::Signalled { signal },
                        (None, None) => Outcome::FailedToStart {
                            reason: "no exit status".into(),
                        },
                    },
                    Err(e) => Outcome::FailedToStart {
                        reason: format!("waiting for the job: {e}"),
                    },
                };
                (outcome, collect(out).await, collect(err).await)
            }
        };
        JobResult {
            job,
            attempt,
            outcome,
            started_at,
            ended_at: pilotq_journal::now_ms(),
            stdout,
            stderr,
            key: None,
        }
    };
    (pgid, fut)
}

/// A pipe reader's bytes; a process that escaped the job's group may hold
/// the pipe open, so after a grace period we take what we have... by giving
/// up on the rest.
async fn collect(reader: Option<tokio::task::JoinHandle<Vec<u8>>>) -> Vec<u8> {
    let Some(handle) = reader else {
        return Vec::new();
    };
    match tokio::time::timeout(std::time::Duration::from_secs(5), handle).await {
        Ok(Ok(bytes)) => bytes,
        _ => b"\n[pilotq: output incomplete: a process outside the job's group kept it open]\n"
            .to_vec(),
    }
}

/// SIGKILL to a whole process group.
pub fn kill_group(pgid: i32) {
    if pgid > 1 {
        // SAFETY: kill(2) with a negative pid signals the process group; no
        // memory is involved. ESRCH (already gone) is fine.
        unsafe {
            libc::kill(-pgid, libc::SIGKILL);
        }
    }
}

const CUT_MARKER: &str = "\n[pilotq: output cut here: it exceeded the cap of {cap} bytes]\n";

/// Reads a stream to its end, keeping the first `cap` bytes.
async fn read_capped(mut r: impl tokio::io::AsyncRead + Unpin, cap: usize) -> Vec<u8> {
    let mut kept = Vec::new();
    // Most jobs print little: start small, the reads grow it as needed.
    let mut buf = vec![0u8; 8 * 1024];
    let mut total = 0usize;
    loop {
        match r.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                total += n;
                let room = cap.saturating_sub(kept.len());
                kept.extend_from_slice(&buf[..n.min(room)]);
            }
        }
    }
    if total > cap {
        kept.extend_from_slice(CUT_MARKER.replace("{cap}", &cap.to_string()).as_bytes());
    }
    kept
}
