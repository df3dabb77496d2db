//! The simulation's report: printed for people, written as JSON for CI and
//! benchmarks. The first eleven keys are the ones the issue names; the rest
//! say what was simulated and what happened on the way.

use serde::Serialize;

#[derive(Debug, Clone, Default, Serialize)]
pub struct Report {
    pub jobs_completed: u64,
    pub jobs_lost: u64,
    pub jobs_duplicated: u64,
    pub completions_per_s_sustained: f64,
    pub completions_per_s_peak: f64,
    pub dispatch_latency_p50_ms: Option<f64>,
    pub dispatch_latency_p99_ms: Option<f64>,
    pub seconds_to_all_running: Option<f64>,
    pub master_cpu_s: f64,
    pub master_peak_rss_mb: f64,
    pub master_restarts: u32,

    /// Peak RSS including the end checks' query of every job (answered in
    /// chunks of 2,000 views, so it costs little more).
    pub master_peak_rss_mb_with_checks: f64,
    pub jobs_submitted: u64,
    pub jobs_held: u64,
    /// Jobs removed at `--stop-after`.
    pub jobs_removed: u64,
    /// Jobs two holders ran at once for longer than a lease.
    pub jobs_overlapping: u64,
    /// Jobs the simulated workers ran to the end more than once (after a
    /// worker death or partition; not an invariant by itself).
    pub jobs_rerun: u64,
    /// A few of them, with the workers and attempts that ran them.
    pub rerun_examples: Vec<String>,
    /// Runs cut short: killed by the master or lost with a dying worker.
    pub runs_cut: u64,
    /// Finished runs whose result died with its worker before the master
    /// acknowledged it. Each may run again, by design (not if the master
    /// had stored it and only the acknowledgement was on its way).
    pub results_died: u64,
    pub workers: u32,
    pub cores_per_worker: u32,
    pub foremen: u32,
    pub worker_deaths: u64,
    pub foreman_partitions: u32,
    pub seconds_to_connect: f64,
    /// The most jobs running at once.
    pub peak_running: u64,
    pub wall_s: f64,
    pub journal_events: u64,
    pub journal_matches_live_table: bool,
    pub journal: String,
    /// Empty when every invariant held.
    pub invariants_failed: Vec<String>,
}

impl Report {
    pub fn passed(&self) -> bool {
        self.invariants_failed.is_empty()
    }

    /// The human summary, a line per figure.
    pub fn render(&self) -> String {
        let ms = |v: Option<f64>| v.map_or("n/a".into(), |v| format!("{v:.1} ms"));
        let s =
            |v: Option<f64>| v.map_or("n/a (never all running)".into(), |v| format!("{v:.2} s"));
        let mut out = format!(
            "pilotq sim: {} workers × {} cores{}, {} jobs, {:.1} s\n\
             \x20 jobs completed           {}\n\
             \x20 jobs held                {}\n\
             \x20 jobs removed             {} (left at --stop-after)\n\
             \x20 jobs lost                {}\n\
             \x20 jobs duplicated          {}\n\
             \x20 jobs on two holders      {} (beyond a lease)\n\
             \x20 jobs rerun               {} ({} runs cut, {} worker deaths, {} results died with them)\n\
             \x20 completions/s            {:.0} sustained, {:.0} peak\n\
             \x20 dispatch latency         p50 {}, p99 {}\n\
             \x20 workers connected in     {:.2} s\n\
             \x20 all running after        {} (peak {} running)\n\
             \x20 master                   {:.1} s CPU, {:.0} MB peak RSS ({:.0} MB with the end checks), {} restarts\n\
             \x20 journal                  {} events, replay {} the live table ({})\n",
            self.workers,
            self.cores_per_worker,
            if self.foremen > 0 {
                format!(" under {} foremen", self.foremen)
            } else {
                String::new()
            },
            self.jobs_submitted,
            self.wall_s,
            self.jobs_completed,
            self.jobs_held,
            self.jobs_removed,
            self.jobs_lost,
            self.jobs_duplicated,
            self.jobs_overlapping,
            self.jobs_rerun,
            self.runs_cut,
            self.worker_deaths,
            self.results_died,
            self.completions_per_s_sustained,
            self.completions_per_s_peak,
            ms(self.dispatch_latency_p50_ms),
            ms(self.dispatch_latency_p99_ms),
            self.seconds_to_connect,
            s(self.seconds_to_all_running),
            self.peak_running,
            self.master_cpu_s,
            self.master_peak_rss_mb,
            self.master_peak_rss_mb_with_checks,
            self.master_restarts,
            self.journal_events,
            if self.journal_matches_live_table {
                "equals"
            } else {
                "DIFFERS FROM"
            },
            self.journal,
        );
        for r in &self.rerun_examples {
            out.push_str(&format!("  rerun                    {r}\n"));
        }
        if self.passed() {
            out.push_str("  invariants               all hold\n");
        } else {
            for f in &self.invariants_failed {
                out.push_str(&format!("  INVARIANT FAILED: {f}\n"));
            }
        }
        out
    }
}
