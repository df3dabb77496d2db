//! `pilotq journal stats`: what a site's run looked like, in one streaming
//! pass. Nothing here is kept per event; per job only what the [`Tracker`]
//! keeps while the job is live. Counted within the window (`since`..`until`,
//! by each event's stored time or sequence), while the tracker follows every
//! event so that a job's state is right when the window opens.

use super::histogram::{Histogram, Percentiles};
use super::point::Point;
use super::tracker::{Effect, Tracker};
use crate::event::{Envelope, Event};
use pilotq_wire::Outcome;
use serde::Serialize;
use std::collections::BTreeMap;

/// The stream's analysis so far; feed it events in order, then `finish`.
#[derive(Debug, Default)]
pub struct StatsFold {
    tracker: Tracker,
    since: Option<Point>,
    until: Option<Point>,
    queue_wait: Histogram,
    run_time: Histogram,
    /// Completions per minute (unix minute → count), by stored time: a run
    /// of a month is 43,200 entries.
    per_minute: BTreeMap<u64, u64>,
    completed: u64,
    removed: u64,
    requeues: u64,
    holds: u64,
    failures: u64,
    requeues_per_holder: BTreeMap<String, u64>,
    failures_per_holder: BTreeMap<String, u64>,
    failures_per_code: BTreeMap<String, u64>,
    submitted_jobs: u64,
    clusters: u64,
    restarts: Vec<Restart>,
    /// The previous event's (seq, stored time): where an outage begins.
    last: Option<(u64, u64)>,
    events: u64,
    first: Option<(u64, u64)>,
    last_inside: Option<(u64, u64)>,
}

/// A master start found in the journal, and the outage before it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Restart {
    pub seq: u64,
    /// When it started (unix ms).
    pub at: u64,
    pub master: String,
    /// The last event before it (seq, stored time): the old master's last
    /// sign of life. None for the journal's first start.
    pub last_before: Option<(u64, u64)>,
    /// From that event to this start.
    pub outage_ms: Option<u64>,
}

/// The answer.
#[derive(Debug, Clone, Serialize)]
pub struct Stats {
    /// Events read in the window, and the first and last (seq, stored time).
    pub events: u64,
    pub first: Option<(u64, u64)>,
    pub last: Option<(u64, u64)>,
    pub clusters_submitted: u64,
    pub jobs_submitted: u64,
    /// Submission to first start.
    pub queue_wait: Percentiles,
    /// Start to completion of the completing attempt.
    pub run_time: Percentiles,
    pub completed: u64,
    pub removed: u64,
    /// Completions per minute: over the minutes from the first completion
    /// to the last (both included), and the busiest minute.
    pub completions_per_minute_mean: f64,
    pub completions_per_minute_peak: u64,
    /// The busiest minute's start (unix ms).
    pub peak_minute: Option<u64>,
    pub requeues: u64,
    pub requeues_per_holder: BTreeMap<String, u64>,
    pub holds: u64,
    /// Completions with a non-zero exit code or a signal.
    pub failures: u64,
    pub failures_per_holder: BTreeMap<String, u64>,
    /// `exit 3`, `signal 9`, or `failed to start`.
    pub failures_per_code: BTreeMap<String, u64>,
    pub restarts: Vec<Restart>,
    /// The jobs each state held at the window's end (the table's counts).
    pub idle: u64,
    pub running: u64,
    pub held: u64,
    /// The most jobs the fold kept state for at once is not tracked; this
    /// is how many it keeps at the end (live jobs).
    pub live_jobs_tracked: u64,
}

/// How a failed completion is named in `failures_per_code`; `None` for a
/// success.
pub fn failure_code(o: &Outcome) -> Option<String> {
    match o {
        Outcome::Exited { code: 0 } => None,
        Outcome::Exited { code } => Some(format!("exit {code}")),
        Outcome::Signalled { signal } => Some(format!("signal {signal}")),
        Outcome::FailedToStart { .. } => Some("failed to start".into()),
    }
}

impl StatsFold {
    pub fn new(since: Option<Point>, until: Option<Point>) -> StatsFold {
        StatsFold {
            since,
            until,
            ..StatsFold::default()
        }
    }

    /// Whether no later event can fall in the window (a sequence bound).
    pub fn done(&self, next_seq: u64) -> bool {
        matches!(self.until, Some(Point::Seq(s)) if next_seq > s)
    }

    pub fn push(&mut self, seq: u64, env: &Envelope) {
        let t = env.t;
        let inside = self.since.is_none_or(|p| p.reached_by(seq, t))
            && self.until.is_none_or(|p| p.covers(seq, t));
        let prev = self.last.replace((seq, t));
        if let Event::MasterStarted { name, at } = &env.e {
            if inside {
                self.restarts.push(Restart {
                    seq,
                    at: *at,
                    master: name.clone(),
                    last_before: prev,
                    outage_ms: prev.map(|(_, pt)| at.saturating_sub(pt)),
                });
            }
        }
        let effect = self.tracker.apply(&env.e);
        if !inside {
            return;
        }
        self.events += 1;
        self.first.get_or_insert((seq, t));
        self.last_inside = Some((seq, t));
        match effect {
            Effect::Submitted { count } => {
                self.clusters += 1;
                self.submitted_jobs += u64::from(count);
            }
            Effect::Started {
                queue_wait_ms: Some(w),
            } => self.queue_wait.record(w),
            Effect::Completed {
                run_ms,
                holder,
                outcome,
            } => {
                self.completed += 1;
                *self.per_minute.entry(t / 60_000).or_default() += 1;
                if let Some(r) = run_ms {
                    self.run_time.record(r);
                }
                if let Some(code) = failure_code(outcome) {
                    self.failures += 1;
                    *self.failures_per_code.entry(code).or_default() += 1;
                    *self
                        .failures_per_holder
                        .entry(holder.unwrap_or("(none)").to_string())
                        .or_default() += 1;
                }
            }
            Effect::Requeued { holder } => {
                self.requeues += 1;
                *self
                    .requeues_per_holder
                    .entry(holder.unwrap_or("(none)").to_string())
                    .or_default() += 1;
            }
            Effect::Held { .. } => self.holds += 1,
            Effect::Removed { jobs } => self.removed += jobs,
            _ => {}
        }
    }

    pub fn finish(self) -> Stats {
        let peak = self
            .per_minute
            .iter()
            .max_by_key(|(m, n)| (**n, std::cmp::Reverse(**m)));
        let minutes = match (
            self.per_minute.keys().next(),
            self.per_minute.keys().next_back(),
        ) {
            (Some(a), Some(b)) => b - a + 1,
            _ => 0,
        };
        let c = self.tracker.counts();
        Stats {
            events: self.events,
            first: self.first,
            last: self.last_inside,
            clusters_submitted: self.clusters,
            jobs_submitted: self.submitted_jobs,
            queue_wait: self.queue_wait.summary(),
            run_time: self.run_time.summary(),
            completed: self.completed,
            removed: self.removed,
            completions_per_minute_mean: if minutes > 0 {
                self.completed as f64 / minutes as f64
            } else {
                0.0
            },
            completions_per_minute_peak: peak.map_or(0, |(_, n)| *n),
            peak_minute: peak.map(|(m, _)| m * 60_000),
            requeues: self.requeues,
            requeues_per_holder: self.requeues_per_holder,
            holds: self.holds,
            failures: self.failures,
            failures_per_holder: self.failures_per_holder,
            failures_per_code: self.failures_per_code,
            restarts: self.restarts,
            idle: c.idle,
            running: c.running,
            held: c.held,
            live_jobs_tracked: self.tracker.live_jobs() as u64,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::tracker::tests::story;
    use super::*;

    fn fold(since: Option<Point>, until: Option<Point>) -> Stats {
        let mut f = StatsFold::new(since, until);
        for (i, e) in story().into_iter().enumerate() {
            // Stored a little after the fact.
            let env = Envelope {
                v: 2,
                t: e.at() + 5,
                e,
            };
            f.push(i as u64 + 1, &env);
        }
        f.finish()
    }

    #[test]
    fn the_whole_story() {
        let s = fold(None, None);
        assert_eq!(s.events, 28);
        assert_eq!((s.clusters_submitted, s.jobs_submitted), (2, 8));
        // Starts of 1.0 (2 s after submission), 1.1 (2.5 s), 2.1 (38 s),
        // 1.4 (43 s); 1.1's second start is no queue wait.
        assert_eq!(s.queue_wait.count, 4);
        assert_eq!(s.queue_wait.max_ms, Some(43_000));
        // Run times: 10 s, 3 s, 6 s.
        assert_eq!(s.run_time.count, 3);
        assert_eq!(
            s.run_time.p50_ms.map(|v| (6_000..6_100).contains(&v)),
            Some(true)
        );
        assert_eq!(s.run_time.max_ms, Some(10_000));
        assert_eq!(s.completed, 3);
        // 1.3 alone, then cluster 2's three live and never-dispatched jobs.
        assert_eq!(s.removed, 4);
        assert_eq!(s.requeues, 1);
        assert_eq!(s.requeues_per_holder["w1"], 1);
        assert_eq!(s.holds, 1);
        assert_eq!(s.failures, 2);
        assert_eq!(s.failures_per_code["signal 9"], 1);
        assert_eq!(s.failures_per_code["exit 3"], 1);
        assert_eq!(s.failures_per_holder["w2"], 1);
        assert_eq!(s.failures_per_holder["w1"], 1);
        // Completions at 13 s, 35 s, 50 s: all in the first minute.
        assert_eq!(s.completions_per_minute_peak, 3);
        assert_eq!(s.completions_per_minute_mean, 3.0);
        assert_eq!(s.restarts.len(), 2);
        assert_eq!(s.restarts[0].outage_ms, None);
        // The event before the second start was stored at 20,005.
        assert_eq!(s.restarts[1].last_before, Some((12, 20_005)));
        assert_eq!(s.restarts[1].outage_ms, Some(30_000 - 20_005));
        assert_eq!((s.idle, s.running, s.held), (1, 0, 0));
        assert_eq!(s.first, Some((1, 1_005)));
        assert_eq!(s.last, Some((28, 50_005)));
    }

    #[test]
    fn a_window_counts_only_inside_but_follows_everything() {
        // From the second start on: 1.1's completion still has its run time
        // (its start was inside too) and no submissions are counted.
        let s = fold(Some(Point::Seq(13)), None);
        assert_eq!(s.events, 16);
        assert_eq!(s.jobs_submitted, 0);
        assert_eq!(s.completed, 2);
        assert_eq!(s.restarts.len(), 1);
        assert_eq!(s.requeues, 0);
        // A time window: only the first 20 s.
        let s = fold(None, Some(Point::Time(20_005)));
        assert_eq!((s.completed, s.requeues, s.restarts.len()), (1, 1, 1));
        assert_eq!(s.last, Some((12, 20_005)));
    }
}
