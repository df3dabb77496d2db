//! Runs one job attempt as a child process:
//! - in its own sandbox directory (its working directory), removed afterwards;
//! - with exactly the environment the job asked for, nothing inherited;
//! - in its own process group, so a kill reaches everything it started, and
//!   whatever it left behind is killed when it exits;
//! - stdout and stderr captured to files and shipped with the result, each cut
//!   at the cap with a marker saying so.

use pilotq_wire::{JobId, JobResult, Outcome};
use std::collections::BTreeMap;
use std::future::Future;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
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
    /// This attempt's directory; the sandbox is made inside it.
    pub dir: PathBuf,
    pub output_cap: usize,
}

/// Starts the job. Returns its process group id and a future that resolves
/// with its result once it has exited and been cleaned up. A job that cannot
/// be started resolves at once with `FailedToStart`.
pub fn start(l: Launch) -> (Option<i32>, impl Future<Output = JobResult>) {
    let started_at = pilotq_journal::now_ms();
    let sandbox = l.dir.join("sandbox");
    let out_path = l.dir.join("stdout");
    let err_path = l.dir.join("stderr");
    let spawned = (|| -> std::io::Result<tokio::process::Child> {
        std::fs::create_dir_all(&sandbox)?;
        let out = std::fs::File::create(&out_path)?;
        let err = std::fs::File::create(&err_path)?;
        let mut cmd = tokio::process::Command::new(&l.executable);
        cmd.arg0(&l.cmd)
            .args(&l.arguments)
            .env_clear()
            .envs(&l.environment)
            .current_dir(&sandbox)
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .process_group(0)
            .kill_on_drop(false);
        // SAFETY: prctl is async-signal-safe; nothing else runs between fork
        // and exec. If the worker dies (even by SIGKILL) its jobs die with it
        // rather than run on unsupervised.
        unsafe {
            cmd.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                Ok(())
            });
        }
        cmd.spawn()
    })();
    let (job, attempt, cap, dir) = (l.job, l.attempt, l.output_cap, l.dir);
    let pgid = spawned.as_ref().ok().and_then(|c| c.id()).map(|p| p as i32);
    let fut = async move {
        let outcome = match spawned {
            Err(e) => Outcome::FailedToStart {
                reason: format!("{}: {e}", l.executable.display()),
            },
            Ok(mut child) => {
                let status = child.wait().await;
                if let Some(pg) = pgid {
                    // Whatever the job left running dies with it.
                    kill_group(pg);
                }
                match status {
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
                }
            }
        };
        let stdout = read_capped(&out_path, cap).await;
        let stderr = read_capped(&err_path, cap).await;
        let _ = tokio::fs::remove_dir_all(&dir).await;
        JobResult {
            job,
            attempt,
            outcome,
            started_at,
            ended_at: pilotq_journal::now_ms(),
            stdout,
            stderr,
        }
    };
    (pgid, fut)
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

async fn read_capped(path: &Path, cap: usize) -> Vec<u8> {
    let Ok(f) = tokio::fs::File::open(path).await else {
        return Vec::new();
    };
    let len = f.metadata().await.map(|m| m.len() as usize).unwrap_or(0);
    let mut buf = Vec::with_capacity(len.min(cap));
    let _ = f.take(cap as u64).read_to_end(&mut buf).await;
    if len > cap {
        buf.extend_from_slice(CUT_MARKER.replace("{cap}", &cap.to_string()).as_bytes());
    }
    buf
}
