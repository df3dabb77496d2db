//! HTCondor's `JobStatus` numbers, which the site's plugins count by.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[repr(u8)]
pub enum JobStatus {
    Idle = 1,
    Running = 2,
    Removed = 3,
    Completed = 4,
    Held = 5,
}

impl JobStatus {
    pub fn number(self) -> u8 {
        self as u8
    }

    /// The one-letter `ST` column of `condor_q -nobatch`.
    pub fn letter(self) -> char {
        match self {
            JobStatus::Idle => 'I',
            JobStatus::Running => 'R',
            JobStatus::Removed => 'X',
            JobStatus::Completed => 'C',
            JobStatus::Held => 'H',
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            JobStatus::Idle => "Idle",
            JobStatus::Running => "Running",
            JobStatus::Removed => "Removed",
            JobStatus::Completed => "Completed",
            JobStatus::Held => "Held",
        }
    }

    /// Completed and Removed jobs never change again.
    pub fn is_final(self) -> bool {
        matches!(self, JobStatus::Completed | JobStatus::Removed)
    }
}
