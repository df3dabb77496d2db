//! A job leaving the live table for the history store: what the table knew
//! of it at that moment, turned into its history record (a [`JobView`] with
//! `CompletionDate`, `NumJobStarts`, `LastRemoteHost` and the journal
//! sequence of the event that ended it).
//!
//! The table hands these out as it applies events (only when asked, see
//! `Table::keep_departures`): the master passes them to the journal writer
//! with the events, and the writer turns them into records on its own
//! thread, so a removal of a million-job cluster costs the master one small
//! value, not a million records.

use crate::table::JobState;
use pilotq_wire::{ClusterId, JobId, JobSpec, JobView};
use std::sync::Arc;

#[derive(Debug, Clone, PartialEq)]
pub struct Departure {
    pub cluster: ClusterId,
    pub spec: Arc<JobSpec>,
    pub submitted_at: u64,
    /// Unix ms the job completed or was removed.
    pub at: u64,
    pub jobs: Departed,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Departed {
    /// A job with a record: completed, or removed after it had one.
    One {
        proc: u32,
        state: JobState,
        attempts: u32,
        last_holder: Option<Arc<str>>,
        started_at: Option<u64>,
    },
    /// Jobs that never ran, removed with their cluster: `start..end` ranges.
    NeverRan { procs: Vec<(u32, u32)> },
}

impl Departure {
    /// How many history records it makes.
    pub fn len(&self) -> u64 {
        match &self.jobs {
            Departed::One { .. } => 1,
            Departed::NeverRan { procs } => procs.iter().map(|(s, e)| u64::from(e - s)).sum(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Its history records, stamped with `seq`.
    pub fn records(&self, seq: u64) -> Box<dyn Iterator<Item = JobView> + '_> {
        match &self.jobs {
            Departed::One {
                proc,
                state,
                attempts,
                last_holder,
                started_at,
            } => Box::new(std::iter::once(self.record(
                *proc,
                state,
                *attempts,
                last_holder.as_deref(),
                *started_at,
                seq,
            ))),
            Departed::NeverRan { procs } => Box::new(
                procs
                    .iter()
                    .flat_map(|(s, e)| *s..*e)
                    .map(move |p| self.record(p, &JobState::Removed, 0, None, None, seq)),
            ),
        }
    }

    fn record(
        &self,
        proc: u32,
        state: &JobState,
        attempts: u32,
        last_holder: Option<&str>,
        started_at: Option<u64>,
        seq: u64,
    ) -> JobView {
        let spec = &self.spec;
        let (exit_code, signal) = state.exit();
        JobView {
            id: JobId {
                cluster: self.cluster,
                proc,
            },
            status: state.status(),
            attempts,
            exit_code,
            signal,
            holder: None,
            hold_reason: None,
            owner: spec.owner.clone(),
            cmd: spec.cmd.clone(),
            arguments: spec.arguments.clone(),
            priority: spec.priority,
            request: spec.request,
            submitted_at: self.submitted_at,
            entered_status_at: self.at,
            started_at,
            attributes: spec.attributes.clone(),
            completed_at: Some(self.at),
            num_starts: attempts,
            last_holder: last_holder.map(str::to_string),
            seq,
        }
    }
}
