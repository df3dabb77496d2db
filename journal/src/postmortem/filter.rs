//! Which events a post-mortem shows: by job, by time or sequence, by kind.

use super::point::Point;
use crate::event::Event;
use pilotq_wire::{ClusterId, JobId};

/// Every event kind, as stored (variants are encoded by name).
pub const KINDS: [&str; 12] = [
    "MasterStarted",
    "ClusterSubmitted",
    "JobDispatched",
    "JobStarted",
    "JobCompleted",
    "JobRequeued",
    "JobHeld",
    "JobReleased",
    "JobRemoved",
    "JobAdopted",
    "JobMoved",
    "ClusterRemoved",
];

/// The stored name of an event's variant.
pub fn kind(e: &Event) -> &'static str {
    match e {
        Event::MasterStarted { .. } => KINDS[0],
        Event::ClusterSubmitted { .. } => KINDS[1],
        Event::JobDispatched { .. } => KINDS[2],
        Event::JobStarted { .. } => KINDS[3],
        Event::JobCompleted { .. } => KINDS[4],
        Event::JobRequeued { .. } => KINDS[5],
        Event::JobHeld { .. } => KINDS[6],
        Event::JobReleased { .. } => KINDS[7],
        Event::JobRemoved { .. } => KINDS[8],
        Event::JobAdopted { .. } => KINDS[9],
        Event::JobMoved { .. } => KINDS[10],
        Event::ClusterRemoved { .. } => KINDS[11],
    }
}

/// The job an event is about, if it is about one job.
pub fn job_of(e: &Event) -> Option<JobId> {
    match e {
        Event::JobDispatched { job, .. }
        | Event::JobStarted { job, .. }
        | Event::JobCompleted { job, .. }
        | Event::JobRequeued { job, .. }
        | Event::JobHeld { job, .. }
        | Event::JobReleased { job, .. }
        | Event::JobRemoved { job, .. }
        | Event::JobAdopted { job, .. }
        | Event::JobMoved { job, .. } => Some(*job),
        _ => None,
    }
}

/// The cluster an event concerns: its job's, or the cluster itself.
pub fn cluster_of(e: &Event) -> Option<ClusterId> {
    match e {
        Event::ClusterSubmitted { cluster, .. } | Event::ClusterRemoved { cluster, .. } => {
            Some(*cluster)
        }
        _ => job_of(e).map(|j| j.cluster),
    }
}

/// The attempt an event names.
pub fn attempt_of(e: &Event) -> Option<u32> {
    match e {
        Event::JobDispatched { attempt, .. }
        | Event::JobStarted { attempt, .. }
        | Event::JobCompleted { attempt, .. }
        | Event::JobRequeued { attempt, .. }
        | Event::JobAdopted { attempt, .. }
        | Event::JobMoved { attempt, .. } => Some(*attempt),
        Event::JobHeld { kept: Some(k), .. } => Some(k.attempt),
        _ => None,
    }
}

/// The holder an event names.
pub fn holder_of(e: &Event) -> Option<&str> {
    match e {
        Event::JobDispatched { holder, .. } | Event::JobMoved { holder, .. } => Some(holder),
        _ => None,
    }
}

/// Parses a `--kind` list: names separated by commas, matched without
/// regard to case, with or without their `Job`/`Cluster` prefix
/// (`completed` is `JobCompleted`, `submitted` is `ClusterSubmitted`).
pub fn parse_kinds(s: &str) -> Result<Vec<&'static str>, String> {
    let mut out = Vec::new();
    for word in s.split(',').map(str::trim).filter(|w| !w.is_empty()) {
        let w = word.to_ascii_lowercase();
        let found: Vec<&'static str> = KINDS
            .iter()
            .copied()
            .filter(|k| {
                let k = k.to_ascii_lowercase();
                k == w || k.strip_prefix("job") == Some(&w) || k.strip_prefix("cluster") == Some(&w)
            })
            .collect();
        match found.as_slice() {
            [one] => out.push(*one),
            [] => {
                return Err(format!(
                    "unknown event kind '{word}': expected one of {}",
                    KINDS.join(", ")
                ))
            }
            many => {
                return Err(format!(
                    "event kind '{word}' is ambiguous: {}",
                    many.join(", ")
                ))
            }
        }
    }
    if out.is_empty() {
        return Err(format!(
            "no event kind given: expected one of {}",
            KINDS.join(", ")
        ));
    }
    Ok(out)
}

/// What job a `--job` names: one job, or a whole cluster.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobSel {
    Job(JobId),
    Cluster(ClusterId),
}

impl std::str::FromStr for JobSel {
    type Err = pilotq_wire::ParseIdError;
    fn from_str(s: &str) -> Result<JobSel, Self::Err> {
        if s.contains('.') {
            s.parse().map(JobSel::Job)
        } else {
            s.parse().map(JobSel::Cluster)
        }
    }
}

/// A dump's filter. Every part given must hold.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    /// A job: its own events and its cluster's (submission, removal).
    pub job: Option<JobSel>,
    /// At or after.
    pub since: Option<Point>,
    /// At or before.
    pub until: Option<Point>,
    pub kinds: Option<Vec<&'static str>>,
}

impl Filter {
    /// Whether event `seq`, stored at `t`, is shown.
    pub fn keeps(&self, seq: u64, t: u64, e: &Event) -> bool {
        if self.since.is_some_and(|p| !p.reached_by(seq, t)) {
            return false;
        }
        if self.until.is_some_and(|p| !p.covers(seq, t)) {
            return false;
        }
        if let Some(ks) = &self.kinds {
            if !ks.contains(&kind(e)) {
                return false;
            }
        }
        match self.job {
            None => true,
            Some(JobSel::Cluster(c)) => cluster_of(e) == Some(c),
            Some(JobSel::Job(j)) => match job_of(e) {
                Some(of) => of == j,
                // The cluster's own events concern each of its jobs.
                None => cluster_of(e) == Some(j.cluster),
            },
        }
    }

    /// Whether no event after `(seq, t)` can be shown: a sequence bound is
    /// exact; a time bound is not (the stored times of a journal can step
    /// back with the clock), so only sequence bounds end a scan early.
    pub fn past_end(&self, seq: u64) -> bool {
        matches!(self.until, Some(Point::Seq(s)) if seq > s)
    }

    /// The first sequence worth reading.
    pub fn first_seq(&self) -> u64 {
        match self.since {
            Some(Point::Seq(s)) => s.max(1),
            _ => 1,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn done(c: u64, p: u32) -> Event {
        Event::JobCompleted {
            job: JobId::new(c, p),
            attempt: 1,
            outcome: pilotq_wire::Outcome::Exited { code: 0 },
            at: 5,
        }
    }

    #[test]
    fn kinds_by_any_reasonable_name() {
        assert_eq!(parse_kinds("completed"), Ok(vec!["JobCompleted"]));
        assert_eq!(
            parse_kinds("JobRequeued, submitted,MASTERSTARTED"),
            Ok(vec!["JobRequeued", "ClusterSubmitted", "MasterStarted"])
        );
        assert_eq!(parse_kinds("started"), Ok(vec!["JobStarted"]));
        // `removed` is both JobRemoved and ClusterRemoved.
        assert!(parse_kinds("removed").unwrap_err().contains("ambiguous"));
        assert!(parse_kinds("exploded").unwrap_err().contains("unknown"));
        assert!(parse_kinds(" , ").is_err());
        for k in KINDS {
            assert_eq!(parse_kinds(k), Ok(vec![k]));
        }
    }

    #[test]
    fn a_job_filter_keeps_its_cluster_events_and_no_other_job() {
        let f = Filter {
            job: Some("3.1".parse().unwrap()),
            ..Filter::default()
        };
        assert!(f.keeps(1, 0, &done(3, 1)));
        assert!(!f.keeps(1, 0, &done(3, 2)));
        assert!(!f.keeps(1, 0, &done(4, 1)));
        assert!(f.keeps(
            1,
            0,
            &Event::ClusterRemoved {
                cluster: ClusterId(3),
                at: 0
            }
        ));
        assert!(!f.keeps(
            1,
            0,
            &Event::MasterStarted {
                name: "m".into(),
                at: 0
            }
        ));
        let whole = Filter {
            job: Some("3".parse().unwrap()),
            ..Filter::default()
        };
        assert!(whole.keeps(1, 0, &done(3, 2)) && !whole.keeps(1, 0, &done(4, 2)));
    }

    #[test]
    fn bounds_are_inclusive() {
        let f = Filter {
            since: Some(Point::Seq(3)),
            until: Some(Point::Time(100)),
            kinds: Some(vec!["JobCompleted"]),
            ..Filter::default()
        };
        assert!(!f.keeps(2, 50, &done(1, 0)));
        assert!(f.keeps(3, 100, &done(1, 0)));
        assert!(!f.keeps(4, 101, &done(1, 0)));
        assert!(!f.past_end(1_000_000), "time bounds never end a scan");
        assert!(Filter {
            until: Some(Point::Seq(9)),
            ..Filter::default()
        }
        .past_end(10));
        assert_eq!(f.first_seq(), 3);
    }
}
