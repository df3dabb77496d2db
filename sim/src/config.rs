//! The simulation's settings (the flags of `pilotq sim`).

use crate::workload::DurationDist;
use std::path::PathBuf;
use std::time::Duration;

#[derive(Debug, Clone)]
pub struct SimConfig {
    /// The pilotq binary whose `master` and `foreman` are started.
    pub pilotq_bin: PathBuf,
    pub workers: u32,
    pub cores_per_worker: u32,
    /// Jobs a worker holds per core (running plus queued), as real workers.
    pub depth: u32,
    pub foremen: u32,
    pub jobs: u64,
    pub duration: DurationDist,
    pub speed: f64,
    pub seed: u64,
    /// Take the workload from this recorded journal instead.
    pub replay: Option<PathBuf>,
    pub kill_master_every: Option<Duration>,
    /// Workers killed (and as many new ones started) per second.
    pub worker_churn: f64,
    /// Cut foreman 0 off from the master for this long, once, a third of
    /// the way into the expected run.
    pub partition_foreman: Option<Duration>,
    /// The master's lease (and, at a fifth of it, the heartbeat).
    pub lease: Duration,
    /// Give up (and fail) after this long.
    pub timeout: Duration,
    /// End the run this long after submission began: remove the jobs left
    /// (as `condor_rm -all` would) and check the invariants on the rest.
    /// For measuring a queue that would take hours to drain.
    pub stop_after: Option<Duration>,
    /// Keep the master's journal here (must not exist yet); else a
    /// temporary directory, deleted at the end unless the run failed.
    pub journal: Option<PathBuf>,
    pub report_json: Option<PathBuf>,
    pub timeline_csv: Option<PathBuf>,
    pub plot: Option<PathBuf>,
    /// Timeline sampling period.
    pub sample_every: Duration,
    /// Handshakes in flight at once while the fleet connects.
    pub connect_parallelism: usize,
    /// Print progress lines on stderr.
    pub progress: bool,
    /// Every link over TLS (a CA made for the run), to measure its cost.
    pub tls: bool,
}

impl SimConfig {
    pub fn new(pilotq_bin: PathBuf) -> SimConfig {
        SimConfig {
            pilotq_bin,
            workers: 100,
            cores_per_worker: 1,
            depth: 2,
            foremen: 0,
            jobs: 10_000,
            duration: DurationDist::Fixed(Duration::from_secs(1)),
            speed: 1.0,
            seed: 1,
            replay: None,
            kill_master_every: None,
            worker_churn: 0.0,
            partition_foreman: None,
            lease: Duration::from_secs(10),
            timeout: Duration::from_secs(600),
            stop_after: None,
            tls: false,
            journal: None,
            report_json: None,
            timeline_csv: None,
            plot: None,
            sample_every: Duration::from_millis(250),
            connect_parallelism: 512,
            progress: true,
        }
    }

    /// One clear message for settings that cannot work.
    pub fn check(&self) -> Result<(), String> {
        if self.workers == 0 {
            return Err("--workers must be at least 1".into());
        }
        if self.cores_per_worker == 0 {
            return Err("--cores-per-worker must be at least 1".into());
        }
        if !(self.speed.is_finite() && (0.001..=1_000_000.0).contains(&self.speed)) {
            return Err("--speed must be a number above 0, from 0.001 to 1000000".into());
        }
        if !(self.worker_churn.is_finite()
            && (self.worker_churn == 0.0 || (0.001..=100_000.0).contains(&self.worker_churn)))
        {
            return Err(
                "--worker-churn must be 0, or from 0.001 to 100000 workers per second".into(),
            );
        }
        if self.replay.is_none() && self.jobs == 0 {
            return Err("--jobs must be at least 1".into());
        }
        if self.partition_foreman.is_some() && self.foremen == 0 {
            return Err("--partition-foreman needs --foremen 1 or more".into());
        }
        if self
            .kill_master_every
            .is_some_and(|d| d < Duration::from_millis(500))
        {
            return Err("--kill-master-every must be at least 500ms".into());
        }
        if self.lease < Duration::from_secs(1) {
            return Err("--lease must be at least 1s".into());
        }
        if let Some(j) = &self.journal {
            if j.exists() {
                return Err(format!(
                    "--journal {}: already exists; the simulation needs a fresh journal",
                    j.display()
                ));
            }
        }
        Ok(())
    }
}
