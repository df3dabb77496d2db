//! Events: the only way the pilot table changes. Each is a fact that already
//! happened, decided by the master against the table it had; `Table::apply`
//! folds them. Variants are encoded by *name* (rmp-serde): never rename one;
//! add new ones, and new fields with `#[serde(default)]`.

use pilotq_wire::{ClusterId, JobId, JobSpec, Outcome};
use serde::{Deserialize, Serialize};

/// The journal's format version, written in every envelope. Bump it when an
/// event changes in a way old readers cannot follow, keep reading the old one,
/// and check in a fixture journal of the old format (tests/fixtures).
///
/// - 1: one event per sled entry.
/// - 2: events stored in segments (see `store.rs`); envelopes unchanged.
pub const FORMAT_VERSION: u32 = 2;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Event {
    /// A master opened the journal (a post-mortem marker; the table ignores
    /// it except for counting restarts).
    MasterStarted {
        name: String,
        at: u64,
    },
    /// `queue N`: one event for the whole cluster (lazy materialisation).
    ClusterSubmitted {
        cluster: ClusterId,
        count: u32,
        spec: Box<JobSpec>,
        at: u64,
    },
    /// A new attempt handed to a holder.
    JobDispatched {
        job: JobId,
        attempt: u32,
        holder: String,
        at: u64,
    },
    JobStarted {
        job: JobId,
        attempt: u32,
        at: u64,
    },
    JobCompleted {
        job: JobId,
        attempt: u32,
        outcome: Outcome,
        at: u64,
    },
    /// The holder of `attempt` was lost: the job is Idle again.
    JobRequeued {
        job: JobId,
        attempt: u32,
        reason: String,
        at: u64,
    },
    /// The job is Held. When the job had finished but its output could not
    /// be put in place, `kept` holds its result (its output in `blobs`) until
    /// the job is released (the files are written again, and it completes
    /// with that result) or removed.
    JobHeld {
        job: JobId,
        reason: String,
        at: u64,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        kept: Option<Box<KeptOutput>>,
    },
    /// A held job without a kept result is Idle again (`pilotq release`).
    JobReleased {
        job: JobId,
        at: u64,
    },
    JobRemoved {
        job: JobId,
        at: u64,
    },
    /// A foreman took job `job`, attempt `attempt`, from its master: the job
    /// is Idle in the foreman's table, pinned to that attempt (attempts hold
    /// end to end). `spec` comes with the first job of a cluster.
    JobAdopted {
        job: JobId,
        attempt: u32,
        spec: Option<Box<JobSpec>>,
        at: u64,
        /// The master's job wrapper for it, by hash: the foreman's workers
        /// run it wrapped, exactly as the master's own would.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        wrapper: Option<String>,
        /// The master's key for the attempt, passed down to the worker that
        /// runs it (`pilotq_wire::attempt_key`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        key: Option<pilotq_wire::AttemptKey>,
    },
    /// Attempt `attempt` of `job` is now held by `holder`: its first holder
    /// was lost and another (a foreman its worker failed over to) reported
    /// it. The attempt, and the job's state, are unchanged.
    JobMoved {
        job: JobId,
        attempt: u32,
        holder: String,
        at: u64,
    },
    /// Every job of the cluster not already Completed or Removed is Removed,
    /// including the ones never materialised: O(1) for a million idle jobs.
    ClusterRemoved {
        cluster: ClusterId,
        at: u64,
    },
}

impl Event {
    /// Unix milliseconds of the fact.
    pub fn at(&self) -> u64 {
        match self {
            Event::MasterStarted { at, .. }
            | Event::ClusterSubmitted { at, .. }
            | Event::JobDispatched { at, .. }
            | Event::JobStarted { at, .. }
            | Event::JobCompleted { at, .. }
            | Event::JobRequeued { at, .. }
            | Event::JobHeld { at, .. }
            | Event::JobReleased { at, .. }
            | Event::JobRemoved { at, .. }
            | Event::JobAdopted { at, .. }
            | Event::JobMoved { at, .. }
            | Event::ClusterRemoved { at, .. } => *at,
        }
    }
}

/// A finished job's result that could not be put in place (its output file
/// could not be written): kept until the job is released or removed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeptOutput {
    /// The attempt that produced it.
    pub attempt: u32,
    pub outcome: Outcome,
    /// The job's stdout and stderr, by sha256 in the journal's `blobs` (absent
    /// when the job has no such file).
    pub stdout: Option<String>,
    pub stderr: Option<String>,
}

/// What is stored under each sequence number.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Envelope {
    /// Format version ([`FORMAT_VERSION`] when written).
    pub v: u32,
    /// Unix milliseconds when the writer stored it.
    pub t: u64,
    pub e: Event,
}

/// Unix milliseconds now.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}
