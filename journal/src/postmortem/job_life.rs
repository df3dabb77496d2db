//! `pilotq journal job C.P`: one job's life across its attempts, from the
//! events that concern it (its own, and its cluster's submission and
//! removal). Jobs are created lazily (`ClusterSubmitted { count }` makes
//! them all), and a `ClusterRemoved` removes each job of the cluster not
//! already final: both are steps of the job's life. An event that did not
//! apply (a stale attempt's report) is listed, marked as such.

use super::filter::{cluster_of, job_of};
use super::tracker::{Effect, Tracker};
use crate::event::{Envelope, Event};
use pilotq_wire::{JobId, Outcome};
use serde::Serialize;

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Step {
    pub seq: u64,
    /// When it was stored (unix ms).
    pub t: u64,
    /// When it happened, as the event says (unix ms).
    pub at: u64,
    /// `submitted`, `dispatched`, `started`, `completed`, `requeued`,
    /// `held`, `released`, `removed`, `cluster removed`, `adopted`, `moved`.
    pub what: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub attempt: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub holder: Option<String>,
    /// How it ended (completed), or why (requeued, held).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub signal: Option<i32>,
    /// Since the previous step that applied.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub after_ms: Option<u64>,
    /// False: the event did not fit the job's state and changed nothing.
    pub applied: bool,
}

/// One dispatch and what became of it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Attempt {
    pub attempt: u32,
    pub holder: String,
    pub dispatched_at: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub started_at: Option<u64>,
    /// `completed`, `requeued`, `held`, `removed`, or `out` (still on it).
    pub ended: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ended_at: Option<u64>,
    /// Start to end.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub run_ms: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct JobLife {
    pub job: String,
    pub submitted_at: u64,
    pub steps: Vec<Step>,
    pub attempts: Vec<Attempt>,
    /// `idle`, `assigned`, `running`, `held`, `completed`, `removed`.
    pub state: &'static str,
    /// Submission to first start.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub queue_wait_ms: Option<u64>,
    /// Submission to completion or removal.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub total_ms: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LifeError {
    #[error("job {job}: cluster {cluster} was never submitted in this journal")]
    NoCluster { job: JobId, cluster: u64 },
    #[error("job {job}: cluster {cluster} has only {count} job(s) (0 to {last})", last = count.saturating_sub(1))]
    NoProc {
        job: JobId,
        cluster: u64,
        count: u32,
    },
}

/// Follows one job through a stream of events.
#[derive(Debug)]
pub struct LifeFold {
    job: JobId,
    tracker: Tracker,
    count: Option<u32>,
    adopted: bool,
    submitted_at: u64,
    steps: Vec<Step>,
    attempts: Vec<Attempt>,
    state: &'static str,
    queue_wait_ms: Option<u64>,
    end_at: Option<u64>,
    prev_at: Option<u64>,
}

impl LifeFold {
    pub fn new(job: JobId) -> LifeFold {
        LifeFold {
            job,
            tracker: Tracker::new(),
            count: None,
            adopted: false,
            submitted_at: 0,
            steps: Vec::new(),
            attempts: Vec::new(),
            state: "idle",
            queue_wait_ms: None,
            end_at: None,
            prev_at: None,
        }
    }

    /// Whether an event can concern the job (cheap: read every event).
    pub fn concerns(&self, e: &Event) -> bool {
        match job_of(e) {
            Some(j) => j == self.job,
            None => cluster_of(e) == Some(self.job.cluster),
        }
    }

    pub fn push(&mut self, seq: u64, env: &Envelope) {
        let e = &env.e;
        if !self.concerns(e) {
            return;
        }
        let was_open = self.tracker_open();
        let effect = self.tracker.apply(e);
        let applied = !matches!(effect, Effect::Nothing);
        let (what, attempt, holder, detail, code, signal) = match e {
            Event::ClusterSubmitted { count, at, .. } => {
                if applied {
                    self.count = Some(*count);
                    self.submitted_at = *at;
                }
                ("submitted", None, None, None, None, None)
            }
            Event::JobDispatched {
                attempt, holder, ..
            } => (
                "dispatched",
                Some(*attempt),
                Some(holder.clone()),
                None,
                None,
                None,
            ),
            Event::JobStarted { attempt, .. } => {
                ("started", Some(*attempt), None, None, None, None)
            }
            Event::JobCompleted {
                attempt, outcome, ..
            } => {
                let (d, c, s) = match outcome {
                    Outcome::Exited { code } => (format!("exit code {code}"), Some(*code), None),
                    Outcome::Signalled { signal } => {
                        (format!("killed by signal {signal}"), None, Some(*signal))
                    }
                    Outcome::FailedToStart { reason } => {
                        (format!("failed to start: {reason}"), None, None)
                    }
                };
                ("completed", Some(*attempt), None, Some(d), c, s)
            }
            Event::JobRequeued {
                attempt, reason, ..
            } => (
                "requeued",
                Some(*attempt),
                None,
                Some(reason.clone()),
                None,
                None,
            ),
            Event::JobHeld { reason, kept, .. } => {
                let d = match kept {
                    Some(k) => format!("{reason} (result of attempt {} kept)", k.attempt),
                    None => reason.clone(),
                };
                (
                    "held",
                    kept.as_ref().map(|k| k.attempt),
                    None,
                    Some(d),
                    None,
                    None,
                )
            }
            Event::JobReleased { .. } => ("released", None, None, None, None, None),
            Event::JobRemoved { .. } => ("removed", None, None, None, None, None),
            Event::ClusterRemoved { .. } => {
                // It concerns this job only if the job was not final yet.
                if !was_open {
                    return;
                }
                ("cluster removed", None, None, None, None, None)
            }
            Event::JobAdopted { attempt, at, .. } => {
                if applied && self.count.is_none() {
                    self.adopted = true;
                    self.submitted_at = *at;
                }
                ("adopted", Some(*attempt), None, None, None, None)
            }
            Event::JobMoved {
                attempt, holder, ..
            } => (
                "moved",
                Some(*attempt),
                Some(holder.clone()),
                None,
                None,
                None,
            ),
            Event::MasterStarted { .. } => return,
        };
        let at = e.at();
        if applied {
            self.track(e, effect_name(what), at);
        }
        let after_ms = if applied {
            self.prev_at.replace(at).map(|p| at.saturating_sub(p))
        } else {
            None
        };
        self.steps.push(Step {
            seq,
            t: env.t,
            at,
            what,
            attempt,
            holder,
            detail,
            exit_code: code,
            signal,
            after_ms,
            applied,
        });
    }

    fn tracker_open(&self) -> bool {
        !matches!(self.state, "completed" | "removed")
    }

    /// Keeps the job's state and its attempts as the applied step says.
    fn track(&mut self, e: &Event, what: &'static str, at: u64) {
        let last = self.attempts.last_mut();
        match (e, what) {
            (
                Event::JobDispatched {
                    attempt, holder, ..
                },
                _,
            ) => {
                self.state = "assigned";
                self.attempts.push(Attempt {
                    attempt: *attempt,
                    holder: holder.clone(),
                    dispatched_at: at,
                    started_at: None,
                    ended: "out",
                    ended_at: None,
                    run_ms: None,
                });
            }
            (Event::JobStarted { .. }, _) => {
                self.state = "running";
                if self.queue_wait_ms.is_none() {
                    self.queue_wait_ms = Some(at.saturating_sub(self.submitted_at));
                }
                if let Some(a) = last {
                    a.started_at = Some(at);
                }
            }
            (Event::JobMoved { holder, .. }, _) => {
                if let Some(a) = last {
                    a.holder = holder.clone();
                }
            }
            (Event::JobAdopted { .. }, _) | (Event::JobReleased { .. }, _) => self.state = "idle",
            (_, end @ ("completed" | "requeued" | "held" | "removed")) => {
                self.state = match end {
                    "requeued" => "idle",
                    other => other,
                };
                if end == "completed" || end == "removed" {
                    self.end_at = Some(at);
                }
                if let Some(a) = last.filter(|a| a.ended == "out") {
                    a.ended = end;
                    a.ended_at = Some(at);
                    a.run_ms = a.started_at.map(|s| at.saturating_sub(s));
                }
            }
            _ => {}
        }
    }

    pub fn finish(self) -> Result<JobLife, LifeError> {
        let job = self.job;
        match self.count {
            None if !self.adopted => {
                return Err(LifeError::NoCluster {
                    job,
                    cluster: job.cluster.0,
                })
            }
            Some(count) if job.proc >= count => {
                return Err(LifeError::NoProc {
                    job,
                    cluster: job.cluster.0,
                    count,
                })
            }
            _ => {}
        }
        // Steps of processes that do not exist would not be here: only the
        // cluster's own events (and this job's) were taken.
        Ok(JobLife {
            job: job.to_string(),
            submitted_at: self.submitted_at,
            total_ms: self.end_at.map(|e| e.saturating_sub(self.submitted_at)),
            steps: self.steps,
            attempts: self.attempts,
            state: self.state,
            queue_wait_ms: self.queue_wait_ms,
        })
    }
}

/// The word an applied step ends an attempt with.
fn effect_name(what: &'static str) -> &'static str {
    match what {
        "cluster removed" => "removed",
        w => w,
    }
}

#[cfg(test)]
mod tests {
    use super::super::tracker::tests::story;
    use super::*;

    fn life(job: &str) -> Result<JobLife, LifeError> {
        let mut f = LifeFold::new(job.parse().unwrap());
        for (i, e) in story().into_iter().enumerate() {
            let env = Envelope {
                v: 2,
                t: e.at() + 1,
                e,
            };
            f.push(i as u64 + 1, &env);
        }
        f.finish()
    }

    fn whats(l: &JobLife) -> Vec<&str> {
        l.steps.iter().map(|s| s.what).collect()
    }

    #[test]
    fn a_requeued_job_that_then_failed() {
        let l = life("1.1").unwrap();
        assert_eq!(
            whats(&l),
            [
                "submitted",
                "dispatched",
                "started",
                "requeued",
                "dispatched",
                "started",
                "completed"
            ]
        );
        assert_eq!(l.state, "completed");
        assert_eq!(l.queue_wait_ms, Some(2_500));
        assert_eq!(l.total_ms, Some(34_000));
        assert_eq!(l.attempts.len(), 2);
        assert_eq!(
            (l.attempts[0].holder.as_str(), l.attempts[0].ended),
            ("w1", "requeued")
        );
        assert_eq!(l.attempts[0].run_ms, Some(16_500));
        assert_eq!(
            (l.attempts[1].holder.as_str(), l.attempts[1].ended),
            ("w2", "completed")
        );
        assert_eq!(l.attempts[1].run_ms, Some(3_000));
        let done = l.steps.last().unwrap();
        assert_eq!((done.signal, done.exit_code), (Some(9), None));
        assert_eq!(done.detail.as_deref(), Some("killed by signal 9"));
        assert_eq!(l.steps[3].detail.as_deref(), Some("holder w1 lost"));
        assert_eq!(l.steps[4].after_ms, Some(11_000));
    }

    #[test]
    fn cluster_removal_and_stale_reports() {
        // 2.0: dispatched, a stale start, then its cluster removed (twice:
        // the second is no step, the job was already removed).
        let l = life("2.0").unwrap();
        assert_eq!(
            whats(&l),
            ["submitted", "dispatched", "started", "cluster removed"]
        );
        assert!(!l.steps[2].applied);
        assert_eq!(l.steps[2].after_ms, None);
        assert_eq!(l.state, "removed");
        assert_eq!(l.attempts[0].ended, "removed");
        // 2.2 was never dispatched: submitted, removed with its cluster; the
        // dispatch after that did not apply.
        let l = life("2.2").unwrap();
        assert_eq!(whats(&l), ["submitted", "cluster removed", "dispatched"]);
        assert!(!l.steps[2].applied);
        // 1.0 completed; its removal afterwards changed nothing.
        let l = life("1.0").unwrap();
        assert_eq!(l.state, "completed");
        assert_eq!(l.steps.last().unwrap().what, "removed");
        assert!(!l.steps.last().unwrap().applied);
        assert_eq!(l.steps[3].exit_code, Some(0));
        // Held and released: idle again.
        assert_eq!(life("1.2").unwrap().state, "idle");
    }

    #[test]
    fn unknown_jobs_are_errors() {
        assert_eq!(
            life("9.0").unwrap_err().to_string(),
            "job 9.0: cluster 9 was never submitted in this journal"
        );
        assert_eq!(
            life("1.5").unwrap_err().to_string(),
            "job 1.5: cluster 1 has only 5 job(s) (0 to 4)"
        );
    }
}
