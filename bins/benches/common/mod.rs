//! Pieces the benchmarks share: child-process guards, ports, a runtime for
//! the client, memory readings, a job spec. Each benchmark binary uses part
//! of it.
#![allow(dead_code)]

use pilotq_journal::Event;
use pilotq_wire::{JobId, JobSpec, Outcome, Resources};
use sha2::{Digest, Sha256};
use std::process::Child;

/// A child process killed (and reaped) when dropped.
pub struct Proc(pub Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

pub fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// Resident and peak resident memory of `pid`, in MB.
pub fn rss_mb(pid: u32) -> (f64, f64) {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let field = |name: &str| {
        s.lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
            / 1024.0
    };
    (field("VmRSS:"), field("VmHWM:"))
}

/// A one-core job running `cmd args` whose executable is `exe`.
pub fn job_spec(exe: &[u8], cmd: &str, args: &[&str]) -> JobSpec {
    JobSpec {
        executable: hex::encode(Sha256::digest(exe)),
        cmd: cmd.into(),
        arguments: args.iter().map(|a| a.to_string()).collect(),
        environment: Default::default(),
        output: None,
        error: None,
        log: None,
        request: Resources::new(1, 0, 0),
        priority: 0,
        attributes: Default::default(),
        owner: "bench".into(),
        iwd: "/tmp".into(),
        tags: vec![],
        leave_in_queue: false,
    }
}

/// The events of processes `procs` of cluster 1, each dispatched, started and
/// completed: a journal of finished jobs.
pub fn finished_jobs(procs: std::ops::Range<u32>) -> Vec<Event> {
    let mut evs = Vec::with_capacity(3 * procs.len());
    for p in procs {
        let job = JobId::new(1, p);
        evs.push(Event::JobDispatched {
            job,
            attempt: 1,
            holder: "worker-1".into(),
            at: 2,
        });
        evs.push(Event::JobStarted {
            job,
            attempt: 1,
            at: 3,
        });
        evs.push(Event::JobCompleted {
            job,
            attempt: 1,
            outcome: Outcome::Exited { code: 0 },
            at: 4,
        });
    }
    evs
}
