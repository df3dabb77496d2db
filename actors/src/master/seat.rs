//! Where a [`Master`](super::Master) sits: the site's own master, or a
//! foreman's local queue. Both run the same table, journal, sessions,
//! dispatch and leases; what differs is where finished work goes and what
//! comes from upstream. Those differences are decided here, by the seat,
//! rather than by checks spread over the master's files:
//!
//! | | [`Seat::Site`] | [`Seat::Local`] |
//! |---|---|---|
//! | a result's files | put in place here, before the completion (`outputs.rs`) | none: the result goes up (`forward` tree, then its master) |
//! | job event logs | written here once durable | none (its master writes them) |
//! | start reports | — | go up once durable |
//! | a worker bringing jobs it never handed out | refused as stale | adopted (`JobAdopted`) |
//! | an executable or wrapper it lacks | — (it has every one it accepted) | fetched from its master before dispatch |
//! | capacity | — | reported up as its workers come and go |
//! | an attempt's key | derived from its own key (`attempt_key`) | the one its master sent with the job, kept in the table |

use crate::foreman::Up;
use crate::user_log::{AppendUserLog, UserLogWriter, Write1};
use actix::prelude::*;
use pilotq_journal::{Event, Table};
use pilotq_wire::message::Started;
use pilotq_wire::{AttemptKey, JobId};

pub(crate) enum Seat {
    /// The site's master, with the key it derives attempt keys from
    /// (`<journal>/attempt-key`).
    Site { site_key: Vec<u8> },
    /// A foreman's local queue, with its link to the master.
    Local { up: Recipient<Up> },
}

impl Seat {
    /// The link to the master, on a foreman.
    pub fn up(&self) -> Option<&Recipient<Up>> {
        match self {
            Seat::Site { .. } => None,
            Seat::Local { up } => Some(up),
        }
    }

    /// The key of `attempt` of `job`, which a holder must show to take the
    /// attempt over from another (`pilotq_wire::attempt_key`); `None` where
    /// a foreman was sent none (it then lets no other holder take it).
    pub fn attempt_key(&self, table: &Table, job: JobId, attempt: u32) -> Option<AttemptKey> {
        match self {
            Seat::Site { site_key } => Some(AttemptKey::derive(site_key, job, attempt)),
            Seat::Local { .. } => table
                .job(job)
                .filter(|r| r.job.pinned == attempt)
                .and_then(|r| r.job.key),
        }
    }

    /// Whether this is a foreman's local queue.
    pub fn is_local(&self) -> bool {
        matches!(self, Seat::Local { .. })
    }

    /// What happens once `events` are durable, beyond the caller's own
    /// reply: their job event log entries (`logs`) are appended on the
    /// site's master; a foreman reports their starts up.
    pub fn once_durable(
        &self,
        table: &Table,
        events: &[Event],
        logs: Vec<Write1>,
        user_logs: &Addr<UserLogWriter>,
    ) -> Box<dyn FnOnce() + Send> {
        match self {
            Seat::Site { .. } if logs.is_empty() => Box::new(|| {}),
            Seat::Site { .. } => {
                let user_logs = user_logs.clone();
                // One per append, and appends are bounded by the journal's
                // queue, so this mailbox is too.
                Box::new(move || user_logs.do_send(AppendUserLog(logs)))
            }
            Seat::Local { up } => {
                let starts: Vec<Started> = events
                    .iter()
                    .filter_map(|e| match e {
                        Event::JobStarted { job, attempt, at } => Some(Started {
                            job: *job,
                            attempt: *attempt,
                            at: *at,
                            key: self.attempt_key(table, *job, *attempt),
                        }),
                        _ => None,
                    })
                    .collect();
                if starts.is_empty() {
                    return Box::new(|| {});
                }
                let up = up.clone();
                Box::new(move || up.do_send(Up::Started(starts)))
            }
        }
    }
}
