//! What a job is: the executable (by content hash: it was captured at submit
//! time, so the submitter may delete it at once), its arguments, exactly the
//! environment it runs with, where its files go, what it asks for.
//!
//! One `JobSpec` describes every job of a cluster; the per-job differences are
//! only the `$(Cluster)` and `$(Process)` macros in file paths, expanded by
//! [`JobSpec::expand`] when a job's files are written.

use crate::{JobId, Resources};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The sha256 of an executable's bytes, in lowercase hex.
pub type BlobHash = String;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobSpec {
    /// Content hash of the executable, stored in the master's `blobs`.
    pub executable: BlobHash,
    /// The executable's name as submitted (HTCondor's `Cmd`), for display and
    /// as `argv[0]`.
    pub cmd: String,
    #[serde(default)]
    pub arguments: Vec<String>,
    /// The job's whole environment: nothing is inherited from the worker.
    #[serde(default)]
    pub environment: BTreeMap<String, String>,
    /// Absolute paths on the submit side, possibly with `$(Cluster)` and
    /// `$(Process)` macros; `None` discards the stream.
    #[serde(default)]
    pub output: Option<String>,
    #[serde(default)]
    pub error: Option<String>,
    #[serde(default)]
    pub log: Option<String>,
    pub request: Resources,
    #[serde(default)]
    pub priority: i32,
    /// Custom ClassAd attributes (`+Name = value`), value kept as ClassAd text.
    #[serde(default)]
    pub attributes: BTreeMap<String, String>,
    /// The submitting Unix user.
    #[serde(default)]
    pub owner: String,
    /// The submitter's working directory (HTCondor's `Iwd`).
    #[serde(default)]
    pub iwd: String,
    /// Only holders that have every one of these tags may take the job
    /// (`pilotq submit --tag`, or `+PilotqTags = "a,b"` in a submit file).
    #[serde(default)]
    pub tags: Vec<String>,
    /// HTCondor's `leave_in_queue`: a finished job stays in the queue (as
    /// Completed or Removed) instead of moving to the history store, until
    /// `condor_rm` removes it again. Last field: snapshots encode specs
    /// positionally.
    #[serde(default)]
    pub leave_in_queue: bool,
}

impl JobSpec {
    /// Expands HTCondor's per-job macros (in paths, arguments, environment
    /// values). Text without a `$(` is returned as is, cheaply.
    pub fn expand(template: &str, job: JobId) -> String {
        if !template.contains("$(") {
            return template.to_string();
        }
        let cluster = job.cluster.0.to_string();
        let proc = job.proc.to_string();
        template
            .replace("$(ClusterId)", &cluster)
            .replace("$(Cluster)", &cluster)
            .replace("$(ProcId)", &proc)
            .replace("$(Process)", &proc)
    }

    pub fn output_path(&self, job: JobId) -> Option<String> {
        self.output.as_deref().map(|t| Self::expand(t, job))
    }

    pub fn error_path(&self, job: JobId) -> Option<String> {
        self.error.as_deref().map(|t| Self::expand(t, job))
    }

    pub fn log_path(&self, job: JobId) -> Option<String> {
        self.log.as_deref().map(|t| Self::expand(t, job))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn macros_expand_per_job() {
        let job = JobId::new(12, 3);
        assert_eq!(
            JobSpec::expand("out/$(Cluster).$(Process).out", job),
            "out/12.3.out"
        );
        assert_eq!(JobSpec::expand("$(ClusterId)_$(ProcId)", job), "12_3");
        assert_eq!(JobSpec::expand("plain", job), "plain");
    }
}
