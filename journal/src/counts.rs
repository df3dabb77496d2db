//! Jobs per HTCondor status, kept incrementally so that `condor_q -totals`
//! and `condor_status -schedd` cost nothing even with a million jobs.

use pilotq_wire::JobStatus;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counts {
    pub idle: u64,
    pub running: u64,
    pub removed: u64,
    pub completed: u64,
    pub held: u64,
}

impl Counts {
    fn slot(&mut self, s: JobStatus) -> &mut u64 {
        match s {
            JobStatus::Idle => &mut self.idle,
            JobStatus::Running => &mut self.running,
            JobStatus::Removed => &mut self.removed,
            JobStatus::Completed => &mut self.completed,
            JobStatus::Held => &mut self.held,
        }
    }

    pub fn add(&mut self, s: JobStatus) {
        *self.slot(s) += 1;
    }

    pub fn sub(&mut self, s: JobStatus) {
        let slot = self.slot(s);
        *slot = slot.saturating_sub(1);
    }

    pub fn total(&self) -> u64 {
        self.idle + self.running + self.removed + self.completed + self.held
    }
}
