//! How a job ended, what it printed, and what a holder reports it holds.

use crate::JobId;
use serde::{Deserialize, Serialize};

/// How one attempt of a job ended. A job's own exit code is a result, not a
/// failure to retry; only `FailedToStart` (the holder could not run it at all)
/// puts the job on hold.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Outcome {
    Exited { code: i32 },
    Signalled { signal: i32 },
    FailedToStart { reason: String },
}

impl Outcome {
    /// HTCondor's `ExitCode`: only defined for a normal exit.
    pub fn exit_code(&self) -> Option<i32> {
        match self {
            Outcome::Exited { code } => Some(*code),
            _ => None,
        }
    }
}

/// The result of one attempt, as a holder ships it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobResult {
    pub job: JobId,
    pub attempt: u32,
    pub outcome: Outcome,
    /// Unix milliseconds.
    pub started_at: u64,
    pub ended_at: u64,
    /// Captured streams, capped by the holder (with a marker where cut).
    /// `serde_bytes` makes them msgpack `bin`: a 64 MiB stdout must not become
    /// 64 Mi one-byte integers.
    #[serde(with = "serde_bytes", default)]
    pub stdout: Vec<u8>,
    #[serde(with = "serde_bytes", default)]
    pub stderr: Vec<u8>,
    /// The attempt's key (`attempt_key.rs`): needed where the attempt was
    /// dispatched to another holder (fail-over).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<crate::AttemptKey>,
}

/// What a holder reports for each job it holds when it (re)connects.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Holding {
    pub job: JobId,
    pub attempt: u32,
    pub state: HoldingState,
    /// The job's spec, for jobs running or queued: a foreman that did not
    /// hand out the job (its worker failed over to it) adopts it from this.
    #[serde(default)]
    pub spec: Option<Box<crate::JobSpec>>,
    /// The job wrapper it was dispatched with, by hash (with `spec`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wrapper: Option<String>,
    /// The attempt's key, for an upstream that did not dispatch it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<crate::AttemptKey>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum HoldingState {
    /// Assigned and waiting in the holder's queue for free resources.
    Queued,
    Running {
        started_at: u64,
    },
    Finished(JobResult),
    /// Finished; the result follows in `Finished` frames right after the
    /// registration (results carry output and can be large, so they are
    /// never packed into the one `Register` frame).
    ResultFollows,
}
