//! What the simulated workers observe, shared by all of them: counts for the
//! timeline, dispatch latencies, and every job's runs — so the end check can
//! tell whether a job ever ran on two holders at once, and for how long.

use dashmap::DashMap;
use pilotq_wire::JobId;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Mutex;
use std::time::{Duration, Instant};

#[derive(Debug)]
pub struct Stats {
    pub t0: Instant,
    /// Jobs accepted by the master so far.
    pub submitted: AtomicU64,
    /// Jobs running on a simulated worker now.
    pub running: AtomicU64,
    /// Jobs whose run reached its end at least once (the sim's view; the
    /// master's is checked at the end).
    pub completed: AtomicU64,
    /// Runs that reached their end, counting reruns.
    pub runs_completed: AtomicU64,
    /// Runs cut short: killed by the master, or lost with a dying worker.
    pub runs_cut: AtomicU64,
    /// Results finished but not yet acknowledged when their worker died.
    pub results_died: AtomicU64,
    /// Workers connected and registered now.
    pub connected: AtomicU64,
    /// Dispatch latencies in microseconds (see `Worker::on_dispatch`).
    latencies_us: Mutex<Vec<u32>>,
    /// When each plan of the workload was sent to the master, by plan.
    pub submitted_at: DashMap<usize, Instant>,
    /// `seconds_to_all_running`: this many jobs running at once…
    pub all_running_target: AtomicU64,
    /// … first happened this long after `t0`, in microseconds (0: not yet).
    pub all_running_at_us: AtomicU64,
    /// The most jobs running at once.
    pub peak_running: AtomicU64,
    runs: DashMap<JobId, JobRuns>,
}

/// The runs of one job, as the simulated workers saw them.
#[derive(Debug, Default)]
struct JobRuns {
    /// Runs going on now: (worker, attempt, since).
    live: Vec<(u32, u32, Instant)>,
    /// Runs that reached their end: (worker, attempt).
    completions: Vec<(u32, u32)>,
    /// The longest time two holders ran this job at once.
    max_overlap: Duration,
}

/// How a run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunEnd {
    Completed,
    /// Killed by the master, or lost with its worker.
    Cut,
}

impl Default for Stats {
    fn default() -> Self {
        Stats::new()
    }
}

impl Stats {
    pub fn new() -> Stats {
        Stats {
            t0: Instant::now(),
            submitted: AtomicU64::new(0),
            running: AtomicU64::new(0),
            completed: AtomicU64::new(0),
            runs_completed: AtomicU64::new(0),
            runs_cut: AtomicU64::new(0),
            results_died: AtomicU64::new(0),
            connected: AtomicU64::new(0),
            latencies_us: Mutex::new(Vec::new()),
            submitted_at: DashMap::new(),
            all_running_target: AtomicU64::new(u64::MAX),
            all_running_at_us: AtomicU64::new(0),
            peak_running: AtomicU64::new(0),
            runs: DashMap::new(),
        }
    }

    pub fn record_latencies(&self, l: &[u32]) {
        if !l.is_empty() {
            self.latencies_us
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .extend_from_slice(l);
        }
    }

    /// (p50, p99) in milliseconds, `None` without any dispatch.
    pub fn latency_percentiles(&self) -> Option<(f64, f64)> {
        let mut l = self
            .latencies_us
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        if l.is_empty() {
            return None;
        }
        l.sort_unstable();
        let at = |q: f64| l[((l.len() - 1) as f64 * q).round() as usize] as f64 / 1000.0;
        Some((at(0.50), at(0.99)))
    }

    pub fn run_started(&self, job: JobId, worker: u32, attempt: u32, now: Instant) {
        let running = self.running.fetch_add(1, Relaxed) + 1;
        self.peak_running.fetch_max(running, Relaxed);
        if running >= self.all_running_target.load(Relaxed) {
            let us = now.saturating_duration_since(self.t0).as_micros().max(1) as u64;
            let _ = self
                .all_running_at_us
                .compare_exchange(0, us, Relaxed, Relaxed);
        }
        self.runs
            .entry(job)
            .or_default()
            .live
            .push((worker, attempt, now));
    }

    pub fn run_ended(&self, job: JobId, worker: u32, attempt: u32, now: Instant, end: RunEnd) {
        let Some(mut r) = self.runs.get_mut(&job) else {
            return;
        };
        let Some(i) = r
            .live
            .iter()
            .position(|&(w, a, _)| w == worker && a == attempt)
        else {
            return;
        };
        let (_, _, since) = r.live.swap_remove(i);
        self.running.fetch_sub(1, Relaxed);
        // Overlap with every other holder running the job now: from the later
        // of the two starts until this run's end.
        let mut worst = r.max_overlap;
        for &(w, _, other) in &r.live {
            if w != worker {
                worst = worst.max(now.saturating_duration_since(since.max(other)));
            }
        }
        r.max_overlap = worst;
        match end {
            RunEnd::Completed => {
                r.completions.push((worker, attempt));
                self.runs_completed.fetch_add(1, Relaxed);
                if r.completions.len() == 1 {
                    self.completed.fetch_add(1, Relaxed);
                }
            }
            RunEnd::Cut => {
                self.runs_cut.fetch_add(1, Relaxed);
            }
        }
    }

    /// Jobs that two holders ran at once for longer than `allowed`, with the
    /// longest such overlap, closing the runs still live at `now`.
    pub fn overlaps_beyond(&self, allowed: Duration, now: Instant) -> Vec<(JobId, Duration)> {
        let mut out = Vec::new();
        for e in self.runs.iter() {
            let mut worst = e.max_overlap;
            for (i, &(w1, _, s1)) in e.live.iter().enumerate() {
                for &(w2, _, s2) in &e.live[i + 1..] {
                    if w1 != w2 {
                        worst = worst.max(now.saturating_duration_since(s1.max(s2)));
                    }
                }
            }
            if worst > allowed {
                out.push((*e.key(), worst));
            }
        }
        out.sort();
        out
    }

    /// Jobs the simulated workers ran to the end more than once.
    pub fn reruns(&self) -> u64 {
        self.runs.iter().filter(|r| r.completions.len() > 1).count() as u64
    }

    /// Up to `n` reruns, the lowest job ids first, each as "J ran on worker
    /// W attempt A, then worker W2 attempt A2" in the order its runs ended:
    /// what to look up in the journal.
    pub fn rerun_examples(&self, n: usize) -> Vec<String> {
        let mut out: Vec<(JobId, String)> = self
            .runs
            .iter()
            .filter(|r| r.completions.len() > 1)
            .map(|r| {
                let runs: Vec<String> = r
                    .completions
                    .iter()
                    .map(|(w, a)| format!("worker {w} attempt {a}"))
                    .collect();
                (
                    *r.key(),
                    format!("{} ran on {}", r.key(), runs.join(", then ")),
                )
            })
            .collect();
        out.sort();
        out.into_iter().take(n).map(|(_, s)| s).collect()
    }

    pub fn elapsed_s(&self) -> f64 {
        self.t0.elapsed().as_secs_f64()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overlapping_runs_on_two_holders_are_found() {
        let s = Stats::new();
        let j = JobId::new(1, 0);
        let t = Instant::now();
        s.run_started(j, 1, 1, t);
        s.run_started(j, 2, 2, t + Duration::from_secs(1));
        s.run_ended(j, 2, 2, t + Duration::from_secs(4), RunEnd::Completed);
        s.run_ended(j, 1, 1, t + Duration::from_secs(5), RunEnd::Cut);
        assert_eq!(s.running.load(Relaxed), 0);
        assert_eq!(s.completed.load(Relaxed), 1);
        let o = s.overlaps_beyond(Duration::from_secs(2), t + Duration::from_secs(9));
        assert_eq!(o, vec![(j, Duration::from_secs(3))]);
        assert!(s
            .overlaps_beyond(Duration::from_secs(3), t + Duration::from_secs(9))
            .is_empty());
    }

    #[test]
    fn a_rerun_after_a_cut_is_not_an_overlap_and_counts_once() {
        let s = Stats::new();
        let j = JobId::new(1, 0);
        let t = Instant::now();
        s.run_started(j, 1, 1, t);
        s.run_ended(j, 1, 1, t + Duration::from_secs(1), RunEnd::Cut);
        s.run_started(j, 2, 2, t + Duration::from_secs(2));
        s.run_ended(j, 2, 2, t + Duration::from_secs(3), RunEnd::Completed);
        assert!(s
            .overlaps_beyond(Duration::ZERO, t + Duration::from_secs(9))
            .is_empty());
        assert_eq!(s.reruns(), 0);
        assert!(s.rerun_examples(3).is_empty());
        assert_eq!(s.runs_cut.load(Relaxed), 1);
    }

    #[test]
    fn a_job_run_to_its_end_twice_is_a_rerun_named_with_its_runs() {
        let s = Stats::new();
        let t = Instant::now();
        for (job, worker, attempt) in [(JobId::new(2, 5), 7, 1), (JobId::new(2, 5), 3, 2)] {
            s.run_started(job, worker, attempt, t);
            s.run_ended(job, worker, attempt, t, RunEnd::Completed);
        }
        let once = JobId::new(1, 0);
        s.run_started(once, 1, 1, t);
        s.run_ended(once, 1, 1, t, RunEnd::Completed);
        assert_eq!(s.reruns(), 1);
        assert_eq!(s.completed.load(Relaxed), 2);
        assert_eq!(
            s.rerun_examples(3),
            ["2.5 ran on worker 7 attempt 1, then worker 3 attempt 2"]
        );
    }

    #[test]
    fn latency_percentiles() {
        let s = Stats::new();
        assert_eq!(s.latency_percentiles(), None);
        let l: Vec<u32> = (1..=1000).map(|i| i * 1000).collect();
        s.record_latencies(&l);
        let (p50, p99) = s.latency_percentiles().unwrap();
        assert!((500.0..=501.0).contains(&p50), "{p50}");
        assert!((990.0..=991.0).contains(&p99), "{p99}");
    }
}
