//! The real `pilotq master` and `pilotq foreman` processes the simulation
//! drives: started from the pilotq binary, killed with SIGKILL (a real
//! crash), restarted on the same journal and port, and measured from
//! `/proc` (CPU time and peak RSS, summed and maxed over incarnations).

use anyhow::{bail, Context, Result};
use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

/// A pilotq server process (master or foreman) and its restarts.
#[derive(Debug)]
pub struct ServerProc {
    /// "master" or "foreman".
    role: &'static str,
    bin: PathBuf,
    /// Arguments after the role, without `--listen`.
    args: Vec<String>,
    /// `127.0.0.1:0` until the first start; then the port it got, kept
    /// across restarts so that holders find it again.
    pub addr: String,
    log: PathBuf,
    child: Option<Child>,
    pub restarts: u32,
    /// CPU seconds of incarnations that have ended.
    cpu_done: f64,
    /// Peak RSS (VmHWM) over every incarnation, in kB.
    peak_rss_kb: u64,
    /// CPU seconds of the running incarnation at its last sample.
    last_cpu: f64,
}

impl ServerProc {
    pub fn new(role: &'static str, bin: PathBuf, args: Vec<String>, log: PathBuf) -> ServerProc {
        ServerProc {
            role,
            bin,
            args,
            addr: "127.0.0.1:0".into(),
            log,
            child: None,
            restarts: 0,
            cpu_done: 0.0,
            peak_rss_kb: 0,
            last_cpu: 0.0,
        }
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().and_then(|c| c.id())
    }

    pub fn is_up(&self) -> bool {
        self.child.is_some()
    }

    /// Starts it and waits for its "listening on ADDR" line.
    pub async fn start(&mut self) -> Result<()> {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .with_context(|| format!("opening {}", self.log.display()))?;
        let mut cmd = Command::new(&self.bin);
        cmd.arg(self.role)
            .arg("--listen")
            .arg(&self.addr)
            .args(&self.args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(log)
            .kill_on_drop(true);
        // SAFETY: prctl is async-signal-safe; nothing else runs in the child
        // between fork and exec. A simulation killed outright (SIGKILL, OOM)
        // must not leave a master or foreman running on its journal.
        unsafe {
            cmd.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                Ok(())
            });
        }
        if std::env::var_os("RUST_LOG").is_none() {
            // Ten thousand "holder registered" lines cost the master time the
            // simulation would count against it.
            cmd.env("RUST_LOG", "warn");
        }
        let mut child = cmd
            .spawn()
            .with_context(|| format!("starting {} {}", self.bin.display(), self.role))?;
        let stdout = child.stdout.take().context("no stdout")?;
        let mut lines = BufReader::new(stdout).lines();
        let want = format!("pilotq {} listening on ", self.role);
        let line = tokio::time::timeout(Duration::from_secs(120), lines.next_line()).await;
        let addr = match line {
            Ok(Ok(Some(l))) if l.starts_with(&want) => l[want.len()..].trim().to_string(),
            Ok(Ok(other)) => {
                let _ = child.start_kill();
                bail!(
                    "{} did not start (said {:?}); see {}",
                    self.role,
                    other,
                    self.log.display()
                )
            }
            Ok(Err(e)) => bail!("reading the {}'s output: {e}", self.role),
            Err(_) => {
                let _ = child.start_kill();
                bail!(
                    "{} did not start within 120 s; see {}",
                    self.role,
                    self.log.display()
                )
            }
        };
        // Keep its stdout drained so it never blocks on a full pipe.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        self.addr = addr;
        self.child = Some(child);
        Ok(())
    }

    /// SIGKILL, as a crash: nothing flushed, nothing stored.
    pub async fn kill9(&mut self) {
        self.end(libc::SIGKILL).await;
    }

    /// SIGTERM and wait (the server stores a snapshot and exits); SIGKILL
    /// after `grace`.
    pub async fn stop(&mut self, grace: Duration) -> Result<()> {
        let Some(pid) = self.pid() else {
            return Ok(());
        };
        self.sample();
        // SAFETY: `pid` is our own child, not yet reaped.
        unsafe { libc::kill(pid as i32, libc::SIGTERM) };
        let child = self.child.as_mut().expect("running");
        match tokio::time::timeout(grace, child.wait()).await {
            Ok(Ok(status)) => {
                self.retire_cpu(pid);
                self.child = None;
                if !status.success() {
                    bail!("{} exited with {status} when stopped", self.role);
                }
                Ok(())
            }
            _ => {
                self.kill9().await;
                bail!("{} did not stop within {grace:?} of SIGTERM", self.role)
            }
        }
    }

    async fn end(&mut self, sig: i32) {
        let Some(pid) = self.pid() else {
            return;
        };
        self.sample();
        // SAFETY: `pid` is our own child, not yet reaped.
        unsafe { libc::kill(pid as i32, sig) };
        if let Some(mut c) = self.child.take() {
            let _ = c.wait().await;
        }
        self.retire_cpu(pid);
    }

    fn retire_cpu(&mut self, _pid: u32) {
        self.cpu_done += self.last_cpu;
        self.last_cpu = 0.0;
    }

    /// Reads the running incarnation's CPU time and peak RSS from `/proc`.
    pub fn sample(&mut self) {
        let Some(pid) = self.pid() else {
            return;
        };
        if let Some(cpu) = proc_cpu_s(pid) {
            self.last_cpu = cpu;
        }
        if let Some(hwm) = proc_status_kb(pid, "VmHWM:") {
            self.peak_rss_kb = self.peak_rss_kb.max(hwm);
        }
    }

    /// CPU seconds over every incarnation, as of the last sample.
    pub fn cpu_s(&self) -> f64 {
        self.cpu_done + self.last_cpu
    }

    pub fn peak_rss_mb(&self) -> f64 {
        self.peak_rss_kb as f64 / 1024.0
    }
}

/// utime + stime of `pid`, in seconds.
pub fn proc_cpu_s(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may hold spaces and parentheses: fields start after
    // the last ')'. There, field 0 is the state (field 3 of proc(5)), so
    // utime (14) and stime (15) are 11 and 12.
    let rest = &stat[stat.rfind(')')? + 1..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks: f64 = f.get(11)?.parse::<f64>().ok()? + f.get(12)?.parse::<f64>().ok()?;
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    Some(ticks / if hz > 0 { hz as f64 } else { 100.0 })
}

/// A `kB` line of `/proc/PID/status` (`VmHWM:`, `VmRSS:`).
pub fn proc_status_kb(pid: u32, key: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with(key))?;
    line[key.len()..].split_whitespace().next()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_our_own_cpu_and_memory() {
        let me = std::process::id();
        let spin = std::time::Instant::now();
        let mut x = 0u64;
        while spin.elapsed() < Duration::from_millis(150) {
            x = x.wrapping_add(std::hint::black_box(1));
        }
        assert!(x > 0);
        let cpu = proc_cpu_s(me).expect("cpu");
        assert!(cpu >= 0.1, "{cpu}");
        let hwm = proc_status_kb(me, "VmHWM:").expect("hwm");
        assert!(hwm > 1_000, "{hwm} kB");
        assert_eq!(proc_cpu_s(u32::MAX), None);
    }
}
