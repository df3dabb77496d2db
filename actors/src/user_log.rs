//! HTCondor's job event log (the submit file's `log = path`): one block per
//! event, in HTCondor's text format, appended by the master once the event is
//! durable. Clients such as DAGMan and site plugins tail these files.
//!
//! ```text
//! 005 (012.003.000) 2026-11-22 04:50:14 Job terminated.
//!     (1) Normal termination (return value 3)
//! ...
//! ```
//! The master decides *what* to log (`entries_for`) on its own thread, cheaply;
//! the formatting and file I/O run on the job-file threads, so a `queue
//! 1000000` with a log costs the master one small record.

use pilotq_journal::{Event, JobState, Table};
use pilotq_wire::time_format::iso_time;
use pilotq_wire::{ClusterId, JobId, JobSpec, Outcome};
use std::collections::BTreeMap;
use std::io::Write;

#[derive(Debug, Clone)]
pub enum Entry {
    /// 000
    Submitted { host: String },
    /// 001
    Executing { host: String },
    /// 005 (or, for a job killed by a signal, 005 with abnormal termination)
    Terminated { outcome: Outcome },
    /// 009
    Aborted,
    /// 012
    Held { reason: String },
}

/// One entry for some processes of a cluster, with the log path template.
#[derive(Debug, Clone)]
pub struct Write1 {
    pub template: String,
    pub cluster: ClusterId,
    pub procs: Procs,
    pub at: u64,
    pub entry: Entry,
}

#[derive(Debug, Clone)]
pub enum Procs {
    Range(u32, u32),
    List(Vec<u32>),
}

impl Procs {
    fn iter(&self) -> Box<dyn Iterator<Item = u32> + '_> {
        match self {
            Procs::Range(a, b) => Box::new(*a..*b),
            Procs::List(v) => Box::new(v.iter().copied()),
        }
    }
}

/// What `events` (not yet applied to `table`) put in job event logs.
pub fn entries_for(table: &Table, events: &[Event], master_host: &str) -> Vec<Write1> {
    let mut out = Vec::new();
    let log_of = |c: ClusterId| -> Option<String> { table.cluster(c)?.spec.log.clone() };
    for e in events {
        let w = |job: JobId, entry: Entry, at: u64, template: String| Write1 {
            template,
            cluster: job.cluster,
            procs: Procs::List(vec![job.proc]),
            at,
            entry,
        };
        match e {
            Event::ClusterSubmitted {
                cluster,
                count,
                spec,
                at,
            } => {
                if let Some(template) = &spec.log {
                    out.push(Write1 {
                        template: template.clone(),
                        cluster: *cluster,
                        procs: Procs::Range(0, *count),
                        at: *at,
                        entry: Entry::Submitted {
                            host: master_host.to_string(),
                        },
                    });
                }
            }
            Event::JobStarted { job, at, .. } => {
                if let (Some(t), Some(r)) = (log_of(job.cluster), table.job(*job)) {
                    let host = r
                        .job
                        .state
                        .out_on()
                        .map(|(h, _)| h.to_string())
                        .unwrap_or_default();
                    out.push(w(*job, Entry::Executing { host }, *at, t));
                }
            }
            Event::JobCompleted {
                job, outcome, at, ..
            } => {
                if let Some(t) = log_of(job.cluster) {
                    out.push(w(
                        *job,
                        Entry::Terminated {
                            outcome: outcome.clone(),
                        },
                        *at,
                        t,
                    ));
                }
            }
            Event::JobHeld { job, reason, at } => {
                if let Some(t) = log_of(job.cluster) {
                    out.push(w(
                        *job,
                        Entry::Held {
                            reason: reason.clone(),
                        },
                        *at,
                        t,
                    ));
                }
            }
            Event::JobRemoved { job, at } => {
                if let Some(t) = log_of(job.cluster) {
                    out.push(w(*job, Entry::Aborted, *at, t));
                }
            }
            Event::ClusterRemoved { cluster, at } => {
                let Some(c) = table.cluster(*cluster) else {
                    continue;
                };
                let Some(t) = c.spec.log.clone() else {
                    continue;
                };
                // Every process not already Completed or Removed is aborted.
                let done: Vec<u32> = c
                    .records()
                    .filter(|(_, j)| {
                        matches!(j.state, JobState::Completed { .. } | JobState::Removed)
                    })
                    .map(|(p, _)| p)
                    .collect();
                let procs: Vec<u32> = (0..c.count)
                    .filter(|p| done.binary_search(p).is_err())
                    .collect();
                out.push(Write1 {
                    template: t,
                    cluster: *cluster,
                    procs: Procs::List(procs),
                    at: *at,
                    entry: Entry::Aborted,
                });
            }
            _ => {}
        }
    }
    out
}

/// Formats and appends entries, grouping by file (blocking I/O).
pub fn append(writes: &[Write1]) {
    let mut by_path: BTreeMap<String, Vec<u8>> = BTreeMap::new();
    for w in writes {
        for proc in w.procs.iter() {
            let job = JobId {
                cluster: w.cluster,
                proc,
            };
            let path = JobSpec::expand(&w.template, job);
            let buf = by_path.entry(path).or_default();
            block(buf, job, w.at, &w.entry);
        }
    }
    for (path, bytes) in by_path {
        let r = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .and_then(|mut f| f.write_all(&bytes));
        if let Err(e) = r {
            tracing::warn!("job event log {path} not written: {e}");
        }
    }
}

fn block(buf: &mut Vec<u8>, job: JobId, at: u64, entry: &Entry) {
    let head = |code: &str| {
        format!(
            "{code} ({:03}.{:03}.000) {} ",
            job.cluster.0,
            job.proc,
            iso_time(at)
        )
    };
    let text = match entry {
        Entry::Submitted { host } => format!("{}Job submitted from host: <{host}>\n", head("000")),
        Entry::Executing { host } => format!("{}Job executing on host: <{host}>\n", head("001")),
        Entry::Terminated { outcome } => {
            let how = match outcome {
                Outcome::Exited { code } => {
                    format!("\t(1) Normal termination (return value {code})\n")
                }
                Outcome::Signalled { signal } => {
                    format!("\t(0) Abnormal termination (signal {signal})\n\t(0) No core file\n")
                }
                Outcome::FailedToStart { reason } => {
                    format!("\t(0) Abnormal termination (failed to start: {reason})\n")
                }
            };
            format!(
                "{}Job terminated.\n{how}\t\tUsr 0 00:00:00, Sys 0 00:00:00  -  Run Remote Usage\n\t\tUsr 0 00:00:00, Sys 0 00:00:00  -  Run Local Usage\n\t\tUsr 0 00:00:00, Sys 0 00:00:00  -  Total Remote Usage\n\t\tUsr 0 00:00:00, Sys 0 00:00:00  -  Total Local Usage\n",
                head("005")
            )
        }
        Entry::Aborted => format!("{}Job was aborted.\n\tvia condor_rm\n", head("009")),
        Entry::Held { reason } => format!(
            "{}Job was held.\n\t{reason}\n\tCode 0 Subcode 0\n",
            head("012")
        ),
    };
    buf.extend_from_slice(text.as_bytes());
    buf.extend_from_slice(b"...\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_look_like_htcondors() {
        let mut buf = Vec::new();
        block(
            &mut buf,
            JobId::new(12, 3),
            1_795_319_360_000,
            &Entry::Terminated {
                outcome: Outcome::Exited { code: 3 },
            },
        );
        let s = String::from_utf8(buf).unwrap();
        assert!(s.starts_with("005 (012.003.000) 2026-11-22 03:49:20 Job terminated.\n\t(1) Normal termination (return value 3)\n"), "{s}");
        assert!(s.ends_with("...\n"));
    }
}
