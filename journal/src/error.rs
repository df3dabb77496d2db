//! Journal errors. They carry the journal's path or the sequence number they
//! concern; they are `Clone` because one failed flush fails every waiter of
//! its group.

#[derive(Debug, Clone, thiserror::Error)]
pub enum JournalError {
    #[error("journal {path} is held by another process (is a master already running on it?)")]
    Locked { path: String },
    #[error("cannot open journal {path}: {reason}")]
    Open { path: String, reason: String },
    #[error("no journal at {path}: {reason}")]
    Missing { path: String, reason: &'static str },
    #[error("journal storage error: {0}")]
    Storage(String),
    #[error("journal event {seq} cannot be decoded: {reason}")]
    Corrupt { seq: u64, reason: String },
    #[error("journal event {seq} has format version {found}, newer than this pilotq reads ({supported}); upgrade pilotq")]
    TooNew {
        seq: u64,
        found: u32,
        supported: u32,
    },
    #[error("the journal writer has stopped")]
    Closed,
    /// A sealed segment file that cannot be listed, read or trusted.
    #[error("sealed journal file {file}: {reason}")]
    Sealed { file: String, reason: String },
    /// Events missing between kept ones (a sealed file deleted by hand?).
    #[error(
        "journal events {first}..={last} are missing (no sealed file or sled segment holds them)"
    )]
    Gap { first: u64, last: u64 },
    /// Retention deleted the events before `first`, and no readable snapshot
    /// covers them: the table cannot be rebuilt.
    #[error("the journal starts at event {first} (older events were retired) and no readable snapshot covers the events before it")]
    NoBase { first: u64 },
}

impl From<sled::Error> for JournalError {
    fn from(e: sled::Error) -> Self {
        JournalError::Storage(e.to_string())
    }
}
