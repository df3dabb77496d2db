//! `pilotq sim`: the real master driven by simulated workers (see the
//! `pilotq-sim` crate). The exit status tells a CI job which it was: 0 every
//! invariant held, 1 one failed, 2 bad settings, 3 the simulation could not
//! run (a master that would not start, a `--replay` path with no journal).

use anyhow::{Context, Result};
use pilotq_sim::workload::DurationDist;
use pilotq_sim::SimConfig;
use std::path::PathBuf;
use std::time::Duration;

fn duration(s: &str) -> Result<Duration, String> {
    humantime::parse_duration(s).map_err(|e| format!("{e} (write e.g. 500ms, 30s, 2m)"))
}

#[derive(Debug, Clone, clap::Args)]
#[command(after_help = "Examples:\n  \
    pilotq sim --workers 2000 --jobs 20000 --duration uniform:1s..3s --kill-master-every 10s\n  \
    pilotq sim --workers 10000 --jobs 100000 --duration fixed:2s --report-json r.json --plot r.svg\n  \
    pilotq sim --replay ./pilotq-data/master --speed 10 --workers 500\n\n\
    Exit status: 0 every invariant held; 1 one failed; 2 bad settings; 3 the simulation could not\n\
    run (e.g. the master would not start, or --replay names no journal); 130 interrupted.")]
pub struct SimArgs {
    /// Simulated workers (each one TCP connection).
    #[arg(long, default_value_t = 100)]
    pub workers: u32,
    /// Cores each simulated worker offers (jobs ask for one).
    #[arg(long, default_value_t = 1)]
    pub cores_per_worker: u32,
    /// Real `pilotq foreman` processes between the master and the workers
    /// (0: workers connect to the master).
    #[arg(long, default_value_t = 0)]
    pub foremen: u32,
    /// Jobs in the synthetic workload: clusters of 1 to 10,000, priorities 0–9,
    /// all submitted at the start.
    #[arg(long, default_value_t = 10_000)]
    pub jobs: u64,
    /// Each job's run time: fixed:2s, exp:30s (mean) or uniform:1s..10s.
    /// With --replay, used for jobs that never completed in the recording.
    #[arg(long, default_value = "fixed:1s")]
    pub duration: DurationDist,
    /// Time compression: a job of run time T takes T / SPEED (submission
    /// times of --replay too).
    #[arg(long, default_value_t = 1.0)]
    pub speed: f64,
    /// Seeds the workload: the same seed gives the same clusters and run times.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Replay the workload of a recorded master journal: its submissions at
    /// their recorded relative times, each job's recorded run time.
    #[arg(long, value_name = "JOURNAL_DIR")]
    pub replay: Option<PathBuf>,
    /// SIGKILL the master this often and restart it at once on its journal.
    #[arg(long, value_name = "DURATION", value_parser = duration)]
    pub kill_master_every: Option<Duration>,
    /// Workers that die (as if SIGKILLed) per second, each replaced by a new one.
    #[arg(long, value_name = "PER_SECOND", default_value_t = 0.0)]
    pub worker_churn: f64,
    /// Cut foreman 0 off from the master for this long, once, a third of the
    /// way into the run.
    #[arg(long, value_name = "DURATION", value_parser = duration)]
    pub partition_foreman: Option<Duration>,
    /// The master's (and foremen's) lease; heartbeats every fifth of it.
    #[arg(long, value_name = "DURATION", value_parser = duration, default_value = "10s")]
    pub lease: Duration,
    /// Fail if the jobs have not all ended this long after submission began.
    #[arg(long, value_name = "DURATION", value_parser = duration, default_value = "10m")]
    pub timeout: Duration,
    /// End the run this long after submission began: remove the jobs left
    /// (as condor_rm -all) and check the invariants on the rest — to measure
    /// a queue that would take hours to drain.
    #[arg(long, value_name = "DURATION", value_parser = duration)]
    pub stop_after: Option<Duration>,
    /// Keep the master's journal in DIR (must not exist), e.g. to --replay it
    /// later; else it lives in a temporary directory.
    #[arg(long, value_name = "DIR")]
    pub journal: Option<PathBuf>,
    /// Write the report as JSON.
    #[arg(long, value_name = "FILE")]
    pub report_json: Option<PathBuf>,
    /// Write idle, running and completed jobs over time, with faults, as CSV.
    #[arg(long, value_name = "FILE")]
    pub timeline_csv: Option<PathBuf>,
    /// Plot the timeline as SVG, crashes marked.
    #[arg(long, value_name = "FILE.svg")]
    pub plot: Option<PathBuf>,
    /// Jobs a worker holds per core (running plus queued), as real workers.
    #[arg(long, default_value_t = 2)]
    pub depth: u32,
    /// No progress lines on stderr.
    #[arg(long, short)]
    pub quiet: bool,
    /// Every link over TLS, with a CA made for the run: the master's and
    /// foremen's ports, the workers and the submitting clients.
    #[arg(long)]
    pub tls: bool,
}

pub fn run(a: SimArgs) -> Result<i32> {
    crate::logging::init("warn");
    let bin = std::env::current_exe().context("finding the pilotq binary")?;
    let mut cfg = SimConfig::new(bin);
    cfg.workers = a.workers;
    cfg.cores_per_worker = a.cores_per_worker;
    cfg.foremen = a.foremen;
    cfg.jobs = a.jobs;
    cfg.duration = a.duration;
    cfg.speed = a.speed;
    cfg.seed = a.seed;
    cfg.replay = a.replay;
    cfg.kill_master_every = a.kill_master_every;
    cfg.worker_churn = a.worker_churn;
    cfg.partition_foreman = a.partition_foreman;
    cfg.lease = a.lease;
    cfg.timeout = a.timeout;
    cfg.stop_after = a.stop_after;
    cfg.journal = a.journal;
    cfg.report_json = a.report_json.clone();
    cfg.timeline_csv = a.timeline_csv;
    cfg.plot = a.plot;
    cfg.depth = a.depth.max(1);
    cfg.progress = !a.quiet;
    cfg.tls = a.tls;
    if let Err(e) = cfg.check() {
        eprintln!("pilotq: {e}");
        return Ok(2);
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the runtime")?;
    // Ctrl-C drops the simulation, and with it its master and foremen
    // (killed on drop) and its temporary directory.
    let report = rt.block_on(async {
        tokio::select! {
            r = pilotq_sim::run(cfg) => Some(r),
            _ = tokio::signal::ctrl_c() => None,
        }
    });
    let Some(report) = report else {
        eprintln!("pilotq sim: interrupted; the master and foremen are stopped");
        return Ok(130);
    };
    let report = match report {
        Ok(r) => r,
        Err(e) => {
            eprintln!("pilotq sim: the simulation could not run: {e:#}");
            return Ok(3);
        }
    };
    print!("{}", report.render());
    if let Some(p) = &a.report_json {
        let json = serde_json::to_string_pretty(&report)?;
        std::fs::write(p, json + "\n").with_context(|| format!("writing {}", p.display()))?;
    }
    Ok(if report.passed() { 0 } else { 1 })
}
