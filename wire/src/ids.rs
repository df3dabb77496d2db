//! Job identifiers. HTCondor names a job `C.P`: cluster `C`, process `P`
//! within it. Clients type these, so parsing gives one clear error.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// A cluster: one submission of `queue N`, numbered from 1 by the master.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ClusterId(pub u64);

/// One job: process `proc` (0-based) of cluster `cluster`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct JobId {
    pub cluster: ClusterId,
    pub proc: u32,
}

impl JobId {
    pub fn new(cluster: u64, proc: u32) -> Self {
        JobId {
            cluster: ClusterId(cluster),
            proc,
        }
    }
}

impl fmt::Display for ClusterId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl fmt::Display for JobId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.cluster.0, self.proc)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("'{0}' is not a job id: expected C or C.P with whole numbers, e.g. 3 or 3.7")]
pub struct ParseIdError(pub String);

impl FromStr for ClusterId {
    type Err = ParseIdError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        s.trim()
            .parse::<u64>()
            .map(ClusterId)
            .map_err(|_| ParseIdError(s.to_string()))
    }
}

impl FromStr for JobId {
    type Err = ParseIdError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || ParseIdError(s.to_string());
        let (c, p) = s.trim().split_once('.').ok_or_else(bad)?;
        Ok(JobId {
            cluster: c.parse().map_err(|_| bad())?,
            proc: p.parse().map_err(|_| bad())?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn job_id_round_trips_through_text() {
        let id = JobId::new(3, 7);
        assert_eq!(id.to_string(), "3.7");
        assert_eq!("3.7".parse::<JobId>().unwrap(), id);
        assert_eq!("12".parse::<ClusterId>().unwrap(), ClusterId(12));
    }

    #[test]
    fn bad_ids_are_refused() {
        assert!("3".parse::<JobId>().is_err());
        assert!("3.x".parse::<JobId>().is_err());
        assert!("-1".parse::<ClusterId>().is_err());
        assert!("".parse::<ClusterId>().is_err());
    }
}
