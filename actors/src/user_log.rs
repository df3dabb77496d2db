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
//!
//! The path is the submitter's choice and the master usually root, so a log
//! is opened as the cluster's owner and never through a symbolic link
//! (`crate::owner_files`); a log that cannot be opened so is retried and
//! reported like any other that cannot be written.

use crate::owner_files::{split, Acting, Dir, WriteAs};
use pilotq_journal::{Event, JobState, Table};
use pilotq_wire::time_format::iso_time;
use pilotq_wire::{ClusterId, JobId, JobSpec, Outcome};
use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;

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
    /// 013
    Released,
}

/// One entry for some processes of a cluster, with the log path template
/// and the cluster's owner (as whom the log is written).
#[derive(Debug, Clone)]
pub struct Write1 {
    pub template: String,
    pub owner: String,
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
    // The log's template and the cluster's owner.
    let log_of = |c: ClusterId| -> Option<(String, String)> {
        let spec = &table.cluster(c)?.spec;
        Some((spec.log.clone()?, spec.owner.clone()))
    };
    for e in events {
        let w = |job: JobId, entry: Entry, at: u64, (template, owner): (String, String)| Write1 {
            template,
            owner,
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
                        owner: spec.owner.clone(),
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
            Event::JobReleased { job, at } => {
                if let Some(t) = log_of(job.cluster) {
                    out.push(w(*job, Entry::Released, *at, t));
                }
            }
            Event::JobHeld {
                job, reason, at, ..
            } => {
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
                let owner = c.spec.owner.clone();
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
                    owner,
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

/// Appends job event logs, on a thread of its own (a job's events must reach
/// its log in order). An append is synced before the writer moves on. One
/// that fails (a full disk, a missing directory) is not dropped: it is kept,
/// in order, ahead of later entries for the same file, retried with every
/// later append and on the master's periodic [`RetryUserLogs`], and reported
/// at error level until it is written. Only past [`MAX_PENDING`] bytes does
/// the oldest file's backlog go, with an error naming it.
#[derive(Default)]
pub struct UserLogWriter {
    /// Formatted bytes not yet written, per log file.
    pending: BTreeMap<LogFile, Vec<u8>>,
}

/// One job event log: its path, and the owner it is written as (a log two
/// owners' clusters name is appended by each as themselves).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct LogFile {
    pub path: String,
    pub owner: String,
}

/// Bytes of job event logs kept for retry at most.
pub const MAX_PENDING: usize = 64 * 1024 * 1024;

impl actix::Actor for UserLogWriter {
    type Context = actix::SyncContext<Self>;
}

/// Job event log entries to append, once their events are durable.
#[derive(actix::Message)]
#[rtype(result = "()")]
pub struct AppendUserLog(pub Vec<Write1>);

/// Try again what could not be written.
#[derive(actix::Message)]
#[rtype(result = "()")]
pub struct RetryUserLogs;

impl actix::Handler<AppendUserLog> for UserLogWriter {
    type Result = ();

    fn handle(&mut self, m: AppendUserLog, _ctx: &mut actix::SyncContext<Self>) {
        for (path, bytes) in format_all(&m.0) {
            self.pending.entry(path).or_default().extend(bytes);
        }
        self.write_pending();
    }
}

impl actix::Handler<RetryUserLogs> for UserLogWriter {
    type Result = ();

    fn handle(&mut self, _m: RetryUserLogs, _ctx: &mut actix::SyncContext<Self>) {
        if !self.pending.is_empty() {
            self.write_pending();
        }
    }
}

impl UserLogWriter {
    fn write_pending(&mut self) {
        self.pending.retain(|file, bytes| {
            let path = &file.path;
            let (written, r) = append_synced(file, bytes);
            // What reached the file is not written twice.
            bytes.drain(..written);
            match r {
                Ok(()) => false,
                Err(e) if bytes.is_empty() => {
                    tracing::error!("job event log {path} written but not synced: {e}");
                    false
                }
                Err(e) => {
                    tracing::error!(
                        "job event log {path} not written ({} bytes waiting): {e}; retrying",
                        bytes.len()
                    );
                    true
                }
            }
        });
        let mut total: usize = self.pending.values().map(Vec::len).sum();
        while total > MAX_PENDING {
            let Some((file, bytes)) = self.pending.pop_first() else {
                break;
            };
            total -= bytes.len();
            tracing::error!(
                "job event log {}: {} bytes of events dropped, more than {MAX_PENDING} bytes of logs could not be written",
                file.path,
                bytes.len()
            );
        }
    }
}

/// Formats entries, grouped by file, in order.
pub fn format_all(writes: &[Write1]) -> BTreeMap<LogFile, Vec<u8>> {
    let mut by_path: BTreeMap<LogFile, Vec<u8>> = BTreeMap::new();
    for w in writes {
        for proc in w.procs.iter() {
            let job = JobId {
                cluster: w.cluster,
                proc,
            };
            let file = LogFile {
                path: JobSpec::expand(&w.template, job),
                owner: w.owner.clone(),
            };
            let buf = by_path.entry(file).or_default();
            block(buf, job, w.at, &w.entry);
        }
    }
    by_path
}

/// Appends and syncs, as the log's owner and without following a symbolic
/// link (`crate::owner_files`: the path is the submitter's, the master
/// usually root); returns how many bytes reached the file, with the first
/// error. The log's directory is never made.
fn append_synced(file: &LogFile, bytes: &[u8]) -> (usize, std::io::Result<()>) {
    let opened = (|| {
        let (dir, name) = split(Path::new(&file.path))?;
        let who = WriteAs::for_owner(&file.owner)?;
        let acting = Acting::begin(&who)?;
        let f = Dir::open(&dir, false)?.open_append(&name)?;
        // Written as whoever opened it: the ids are given back at once.
        drop(acting);
        Ok::<_, std::io::Error>(f)
    })();
    let mut f = match opened {
        Ok(f) => f,
        Err(e) => return (0, Err(e)),
    };
    let mut written = 0;
    while written < bytes.len() {
        match f.write(&bytes[written..]) {
            Ok(0) => return (written, Err(std::io::ErrorKind::WriteZero.into())),
            Ok(n) => written += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return (written, Err(e)),
        }
    }
    (written, f.sync_data())
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
        Entry::Released => format!("{}Job was released.\n\tvia pilotq release\n", head("013")),
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

    fn terminated(cluster: u64, proc: u32, template: &str) -> Write1 {
        Write1 {
            template: template.to_string(),
            owner: crate::owner_files::master_user().to_string(),
            cluster: ClusterId(cluster),
            procs: Procs::List(vec![proc]),
            at: 1_795_319_360_000,
            entry: Entry::Terminated {
                outcome: Outcome::Exited { code: proc as i32 },
            },
        }
    }

    #[test]
    fn an_append_that_fails_is_kept_in_order_and_written_once_it_can_be() {
        let d = tempfile::tempdir().unwrap();
        // The log's directory does not exist yet: the append fails.
        let log = d.path().join("later/job.log");
        let template = log.display().to_string();
        let mut w = UserLogWriter::default();
        for (path, bytes) in format_all(&[terminated(1, 0, &template)]) {
            w.pending.entry(path).or_default().extend(bytes);
        }
        w.write_pending();
        assert!(!log.exists());
        assert_eq!(w.pending.len(), 1, "the failed append must be kept");
        // A later entry for the same log queues behind it.
        for (path, bytes) in format_all(&[terminated(1, 1, &template)]) {
            w.pending.entry(path).or_default().extend(bytes);
        }
        std::fs::create_dir_all(log.parent().unwrap()).unwrap();
        w.write_pending();
        assert!(w.pending.is_empty());
        let text = std::fs::read_to_string(&log).unwrap();
        let heads: Vec<&str> = text.lines().filter(|l| l.starts_with("005")).collect();
        assert_eq!(heads.len(), 2, "{text}");
        assert!(heads[0].contains("(001.000.000)") && heads[1].contains("(001.001.000)"));
    }

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
