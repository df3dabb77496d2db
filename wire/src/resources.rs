//! What a job asks for and what a holder offers. Dispatch places a job on a
//! holder only when the job's request fits in the holder's free resources, so
//! a 4-core worker runs four 1-core jobs at once.

use serde::{Deserialize, Serialize};
use std::fmt;

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Resources {
    pub cores: u32,
    /// Megabytes.
    pub memory_mb: u64,
    /// Megabytes.
    pub disk_mb: u64,
}

impl Resources {
    pub const fn new(cores: u32, memory_mb: u64, disk_mb: u64) -> Self {
        Resources {
            cores,
            memory_mb,
            disk_mb,
        }
    }

    /// Whether `request` can run inside `self`.
    pub fn fits(&self, request: &Resources) -> bool {
        request.cores <= self.cores
            && request.memory_mb <= self.memory_mb
            && request.disk_mb <= self.disk_mb
    }

    /// `self - used`, never below zero.
    pub fn minus(&self, used: &Resources) -> Resources {
        Resources {
            cores: self.cores.saturating_sub(used.cores),
            memory_mb: self.memory_mb.saturating_sub(used.memory_mb),
            disk_mb: self.disk_mb.saturating_sub(used.disk_mb),
        }
    }

    /// `self` scaled by `n` (a holder's capacity at queue depth `n`).
    pub fn times(&self, n: u32) -> Resources {
        Resources {
            cores: self.cores.saturating_mul(n),
            memory_mb: self.memory_mb.saturating_mul(u64::from(n)),
            disk_mb: self.disk_mb.saturating_mul(u64::from(n)),
        }
    }

    pub fn plus(&self, other: &Resources) -> Resources {
        Resources {
            cores: self.cores.saturating_add(other.cores),
            memory_mb: self.memory_mb.saturating_add(other.memory_mb),
            disk_mb: self.disk_mb.saturating_add(other.disk_mb),
        }
    }
}

impl fmt::Display for Resources {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} cores, {} MB memory, {} MB disk",
            self.cores, self.memory_mb, self.disk_mb
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn four_one_core_jobs_fit_a_four_core_worker() {
        let worker = Resources::new(4, 8000, 10000);
        let job = Resources::new(1, 1000, 100);
        let mut free = worker;
        for _ in 0..4 {
            assert!(free.fits(&job));
            free = free.minus(&job);
        }
        assert!(!free.fits(&job));
        assert_eq!(free.plus(&job).cores, 1);
    }
}
