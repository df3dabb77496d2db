//! `pilotq journal export`: one flat row per event, for pandas and
//! spreadsheets. Every row has every column; those that do not apply to an
//! event are empty (CSV) or null (JSON lines).

use super::filter::{attempt_of, holder_of, job_of, kind};
use super::point::utc_ms;
use crate::event::{Envelope, Event};
use pilotq_wire::Outcome;
use serde::Serialize;

/// The columns, in order.
pub const COLUMNS: [&str; 15] = [
    "seq",
    "t_ms",
    "time",
    "kind",
    "at_ms",
    "cluster",
    "proc",
    "job",
    "attempt",
    "holder",
    "exit_code",
    "signal",
    "count",
    "reason",
    "master",
];

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Row {
    pub seq: u64,
    /// When it was stored (unix ms), and as UTC text.
    pub t_ms: u64,
    pub time: String,
    pub kind: &'static str,
    /// When it happened, as the event says.
    pub at_ms: u64,
    pub cluster: Option<u64>,
    pub proc: Option<u32>,
    pub job: Option<String>,
    pub attempt: Option<u32>,
    pub holder: Option<String>,
    pub exit_code: Option<i32>,
    pub signal: Option<i32>,
    /// Jobs in a submitted cluster.
    pub count: Option<u32>,
    /// Why: requeue and hold reasons, a failure to start.
    pub reason: Option<String>,
    /// The master's name, for a start.
    pub master: Option<String>,
}

impl Row {
    pub fn of(seq: u64, env: &Envelope) -> Row {
        let e = &env.e;
        let job = job_of(e);
        let mut row = Row {
            seq,
            t_ms: env.t,
            time: utc_ms(env.t),
            kind: kind(e),
            at_ms: e.at(),
            cluster: super::filter::cluster_of(e).map(|c| c.0),
            proc: job.map(|j| j.proc),
            job: job.map(|j| j.to_string()),
            attempt: attempt_of(e),
            holder: holder_of(e).map(str::to_string),
            exit_code: None,
            signal: None,
            count: None,
            reason: None,
            master: None,
        };
        let outcome = match e {
            Event::JobCompleted { outcome, .. } => Some(outcome),
            Event::JobHeld {
                kept: Some(k),
                reason,
                ..
            } => {
                row.reason = Some(reason.clone());
                Some(&k.outcome)
            }
            _ => None,
        };
        match outcome {
            Some(Outcome::Exited { code }) => row.exit_code = Some(*code),
            Some(Outcome::Signalled { signal }) => row.signal = Some(*signal),
            Some(Outcome::FailedToStart { reason }) => row.reason = Some(reason.clone()),
            None => {}
        }
        match e {
            Event::ClusterSubmitted { count, .. } => row.count = Some(*count),
            Event::JobRequeued { reason, .. } | Event::JobHeld { reason, .. } => {
                row.reason = Some(reason.clone())
            }
            Event::MasterStarted { name, .. } => row.master = Some(name.clone()),
            _ => {}
        }
        row
    }

    /// The row as CSV fields (RFC 4180 quoting), in [`COLUMNS`] order.
    pub fn csv(&self) -> String {
        fn opt<T: ToString>(v: &Option<T>) -> String {
            v.as_ref().map(T::to_string).unwrap_or_default()
        }
        let fields = [
            self.seq.to_string(),
            self.t_ms.to_string(),
            self.time.clone(),
            self.kind.to_string(),
            self.at_ms.to_string(),
            opt(&self.cluster),
            opt(&self.proc),
            opt(&self.job),
            opt(&self.attempt),
            opt(&self.holder),
            opt(&self.exit_code),
            opt(&self.signal),
            opt(&self.count),
            opt(&self.reason),
            opt(&self.master),
        ];
        fields
            .iter()
            .map(|f| csv_field(f))
            .collect::<Vec<_>>()
            .join(",")
    }
}

/// Quotes a field that holds a comma, a quote or a line break.
pub fn csv_field(f: &str) -> String {
    if f.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", f.replace('"', "\"\""))
    } else {
        f.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pilotq_wire::JobId;

    #[test]
    fn rows_are_flat_and_quoted() {
        let env = Envelope {
            v: 2,
            t: 1_796_308_965_123,
            e: Event::JobRequeued {
                job: JobId::new(3, 1),
                attempt: 2,
                reason: "holder \"w1\" lost, lease ran out".into(),
                at: 7,
            },
        };
        let r = Row::of(42, &env);
        assert_eq!(r.job.as_deref(), Some("3.1"));
        assert_eq!(
            r.csv(),
            "42,1796308965123,2026-12-03 14:42:45.123Z,JobRequeued,7,3,1,3.1,2,,,,,\"holder \"\"w1\"\" lost, lease ran out\","
        );
        assert_eq!(r.csv().matches(',').count(), COLUMNS.len() - 1 + 1);
        let done = Row::of(
            43,
            &Envelope {
                v: 2,
                t: 1,
                e: Event::JobCompleted {
                    job: JobId::new(3, 1),
                    attempt: 3,
                    outcome: Outcome::Signalled { signal: 9 },
                    at: 1,
                },
            },
        );
        assert_eq!((done.signal, done.exit_code), (Some(9), None));
    }
}
