//! Every message, one enum per direction. Holders (workers, foremen) and
//! clients share one port and one vocabulary; the role in `Hello` says which
//! messages a session may send.
//!
//! Batches (`Started`, `Finished`, `Dispatch`, `Ack`) are lists so that a busy
//! worker pays one frame and the master one journal append per burst, not per
//! job.

use crate::handshake::{Hello, Welcome};
use crate::outcome::{Holding, JobResult};
use crate::{ClusterId, JobId, JobSpec, JobStatus, Resources};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Peer → master.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum ToMaster {
    Hello(Hello),
    Proof {
        #[serde(with = "serde_bytes", default)]
        proof: Option<Vec<u8>>,
    },

    // --- holders ---
    /// Sent once after `Accepted`: what the holder offers and what it already
    /// holds (after a reconnect: running jobs and unacknowledged results).
    Register {
        resources: Resources,
        holdings: Vec<Holding>,
        /// The holder takes up to `depth × resources` of jobs and queues what
        /// it cannot run yet, so it never idles waiting for a round trip.
        #[serde(default = "one")]
        depth: u32,
        /// At most this many jobs at once, whatever the resources (a
        /// single-task worker says 1); 0 means no limit.
        #[serde(default)]
        max_jobs: u32,
        /// What this holder offers beyond resources: a job with tags goes
        /// only to holders that have them all.
        #[serde(default)]
        tags: Vec<String>,
        /// A random value the holder chose when it started (a foreman keeps
        /// its own beside its journal): on a later connection, the proof
        /// that it is the same holder and may take back its attempts. A
        /// newcomer under a live holder's name is refused; under a name
        /// whose connection is gone, it starts afresh and the attempts of
        /// the holder it replaces are requeued, not handed over.
        #[serde(with = "serde_bytes", default)]
        token: Vec<u8>,
    },
    Heartbeat,
    /// What the holder offers changed (a foreman's workers came or went).
    Capacity {
        resources: Resources,
    },
    /// Send me no more jobs (a draining, single-task or idle worker). The
    /// master answers `Drained` once every dispatch it made to this holder
    /// has been sent ahead of the answer.
    Drain,
    Started(Vec<Started>),
    Finished(Vec<JobResult>),
    /// A foreman now holds these attempts, queued: a worker that failed over
    /// to it brought them from another holder. The master moves them to it
    /// (a running one is moved by its start report).
    Adopted(Vec<Attempt>),
    /// An executable (or job wrapper) by hash: a foreman that adopted a job
    /// from a worker that failed over to it asks its master for the bytes,
    /// and a worker asks its upstream for bytes it evicted from its cache.
    FetchBlob {
        hash: String,
    },

    // --- clients ---
    Submit {
        spec: Box<JobSpec>,
        count: u32,
        /// The executable's bytes; the master checks them against
        /// `spec.executable` before storing.
        #[serde(with = "serde_bytes")]
        executable: Vec<u8>,
    },
    /// Empty selectors: every job.
    Query {
        selectors: Vec<Selector>,
    },
    Remove {
        selectors: Vec<Selector>,
        /// Who asks: only their jobs are removed, unless they are one of
        /// the master's super users. Over TCP with the client secret the
        /// claim is trusted, as HTCondor trusts an authenticated CE.
        #[serde(default)]
        owner: Option<String>,
    },
    Status,
    /// Held jobs go on: one whose result was kept (its output could not be
    /// written) has its files written again and completes; any other is
    /// Idle again.
    Release {
        selectors: Vec<Selector>,
        /// As for `Remove`.
        #[serde(default)]
        owner: Option<String>,
    },
    /// The stdout (or stderr) kept with a held job whose output could not be
    /// written.
    KeptOutput {
        job: JobId,
        #[serde(default)]
        stderr: bool,
    },
    /// Finished jobs from the history store (`condor_history`), newest
    /// first unless `forwards`; empty selectors: every record. Answered in
    /// `History` chunks read as the client takes them, so a client that has
    /// what it wants (`-limit`) simply closes the connection.
    History {
        selectors: Vec<Selector>,
        #[serde(default)]
        forwards: bool,
    },
    /// The journal's events from `from` on that are still in the live
    /// database (not yet sealed into segment files), for post-mortems while
    /// the master runs. Answered in `JournalSegments` chunks.
    JournalTail {
        from: u64,
    },
}

fn one() -> u32 {
    1
}

/// Master → peer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum FromMaster {
    Welcome(Welcome),
    Accepted,
    /// The request was refused; for a handshake error the connection closes.
    Error {
        message: String,
    },

    // --- holders ---
    Dispatch(Vec<Assignment>),
    /// Kill this attempt's process group and drop it (removed, or stale).
    Kill(Vec<Attempt>),
    /// These results are durable: the holder may forget them.
    Ack(Vec<Attempt>),
    /// Answer to `Drain`: no more jobs will come on this connection.
    Drained,

    // --- clients ---
    Submitted {
        cluster: ClusterId,
        count: u32,
    },
    /// A query answer, streamed in chunks so that a million jobs never make
    /// one oversized frame; the last chunk has `last = true`.
    Jobs {
        jobs: Vec<JobView>,
        last: bool,
    },
    Removed {
        jobs: u64,
    },
    Status(MasterStatus),
    /// Answer to `FetchBlob`: `None` if the master does not have it.
    Blob {
        hash: String,
        #[serde(with = "serde_bytes", default)]
        bytes: Option<Vec<u8>>,
    },
    /// Answer to `Release`: how many held jobs went on, and why any selected
    /// job did not (one line each, at most a few).
    Released {
        jobs: u64,
        #[serde(default)]
        problems: Vec<String>,
    },
    /// Answer to `KeptOutput`.
    Output {
        #[serde(with = "serde_bytes")]
        bytes: Vec<u8>,
    },
    /// A chunk of a `History` answer; the last has `last = true`.
    History {
        jobs: Vec<JobView>,
        last: bool,
    },
    /// A chunk of a `JournalTail` answer: stored segments as they are in the
    /// live database (first and last sequence, and the named-msgpack array of
    /// envelopes), durable when sent; the last chunk has `last = true`.
    JournalSegments {
        segments: Vec<TailSegment>,
        last: bool,
    },
}

/// One stored journal segment, undecoded (the wire knows no events).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TailSegment {
    pub first: u64,
    pub last: u64,
    #[serde(with = "serde_bytes")]
    pub bytes: Vec<u8>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attempt {
    pub job: JobId,
    pub attempt: u32,
    /// The attempt's key (`attempt_key.rs`): needed where the attempt was
    /// dispatched to another holder (fail-over).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<crate::AttemptKey>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Started {
    pub job: JobId,
    pub attempt: u32,
    /// Unix milliseconds.
    pub at: u64,
    /// The attempt's key (`attempt_key.rs`): needed where the attempt was
    /// dispatched to another holder (fail-over).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<crate::AttemptKey>,
}

/// One job handed to a holder.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Assignment {
    pub job: JobId,
    pub attempt: u32,
    /// The cluster's spec, sent with the first job of the cluster on this
    /// connection; `None` afterwards (the holder keeps it by cluster). A
    /// cluster of thousands of jobs costs one spec per connection, not one per
    /// job.
    #[serde(default)]
    pub spec: Option<JobSpec>,
    /// The executable's bytes, sent the first time this connection needs this
    /// hash; afterwards the holder's cache serves it.
    #[serde(with = "serde_bytes", default)]
    pub executable: Option<Vec<u8>>,
    /// The master's job wrapper (`--job-wrapper`), by hash: the job runs as
    /// `wrapper <executable> <args…>`. Its bytes come like an executable's.
    #[serde(default)]
    pub wrapper: Option<String>,
    #[serde(with = "serde_bytes", default)]
    pub wrapper_bytes: Option<Vec<u8>>,
    /// The attempt's key: kept by the holder, shown by whoever reports the
    /// attempt after a fail-over (`attempt_key.rs`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<crate::AttemptKey>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Selector {
    All,
    Cluster(ClusterId),
    Job(JobId),
}

impl Selector {
    /// Whether this selector names job `id`.
    pub fn matches(&self, id: JobId) -> bool {
        match self {
            Selector::All => true,
            Selector::Cluster(c) => id.cluster == *c,
            Selector::Job(j) => id == *j,
        }
    }
}

/// One job as `q` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobView {
    pub id: JobId,
    pub status: JobStatus,
    pub attempts: u32,
    pub exit_code: Option<i32>,
    #[serde(default)]
    pub signal: Option<i32>,
    pub holder: Option<String>,
    #[serde(default)]
    pub hold_reason: Option<String>,
    pub owner: String,
    pub cmd: String,
    pub arguments: Vec<String>,
    pub priority: i32,
    pub request: Resources,
    /// Unix milliseconds (HTCondor's `QDate`, in ms).
    pub submitted_at: u64,
    pub entered_status_at: u64,
    #[serde(default)]
    pub started_at: Option<u64>,
    #[serde(default)]
    pub attributes: BTreeMap<String, String>,
    /// Unix ms the job completed or was removed (HTCondor's
    /// `CompletionDate`); set in history records.
    #[serde(default)]
    pub completed_at: Option<u64>,
    /// Times the job started (HTCondor's `NumJobStarts`).
    #[serde(default)]
    pub num_starts: u32,
    /// The holder of its last attempt (HTCondor's `LastRemoteHost`).
    #[serde(default)]
    pub last_holder: Option<String>,
    /// In history records: the journal sequence of the event that ended the
    /// job (its place in the post-mortem record).
    #[serde(default)]
    pub seq: u64,
}

/// Counts for `pilotq status` and `condor_status -schedd`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MasterStatus {
    pub name: String,
    pub idle: u64,
    pub running: u64,
    pub held: u64,
    pub completed: u64,
    pub removed: u64,
    pub holders: u64,
    pub cores: u64,
    pub journal_seq: u64,
    /// Jobs that left the queue for the history store (not in `completed`
    /// and `removed`, which count the queue, as HTCondor's do).
    #[serde(default)]
    pub history_completed: u64,
    #[serde(default)]
    pub history_removed: u64,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::handshake::{fresh_nonce, Role, PROTOCOL_VERSION};

    #[test]
    fn messages_round_trip_with_field_names() {
        let msgs = vec![
            ToMaster::Hello(Hello {
                protocol: PROTOCOL_VERSION,
                role: Role::Client,
                name: "c".into(),
                nonce: fresh_nonce(),
            }),
            ToMaster::Query {
                selectors: vec![Selector::Job(JobId::new(1, 2))],
            },
            ToMaster::Heartbeat,
        ];
        for m in msgs {
            let bytes = rmp_serde::to_vec_named(&m).unwrap();
            let back: ToMaster = rmp_serde::from_slice(&bytes).unwrap();
            assert_eq!(back, m);
        }
    }
}
