//! The sled store, behind one module so it can be replaced (CRATES.md lists
//! sled's open corruption reports; our crash tests are how we watch them).
//!
//! Trees:
//! - `events`: big-endian u64 sequence → named msgpack [`Envelope`];
//! - `snapshots`: the sequence a snapshot covers → encoded table;
//! - `blobs`: sha256 hex → executable bytes.

use crate::error::JournalError;
use crate::event::{Envelope, Event, FORMAT_VERSION};
use std::path::{Path, PathBuf};

#[derive(Clone)]
pub struct Store {
    pub(crate) db: sled::Db,
    pub(crate) events: sled::Tree,
    pub(crate) snapshots: sled::Tree,
    pub(crate) blobs: sled::Tree,
    path: PathBuf,
}

impl Store {
    /// Opens (creating if needed) the journal at `path`. A second open of the
    /// same path — another master — fails with [`JournalError::Locked`].
    pub fn open(path: &Path) -> Result<Store, JournalError> {
        let p = path.display().to_string();
        std::fs::create_dir_all(path).map_err(|e| JournalError::Open {
            path: p.clone(),
            reason: e.to_string(),
        })?;
        let db = sled::Config::new()
            .path(path)
            // Our writer flushes every group explicitly; sled's own periodic
            // flush would only add I/O.
            .flush_every_ms(None)
            .open()
            .map_err(|e| {
                let reason = e.to_string();
                if reason.contains("could not acquire lock") || reason.contains("WouldBlock") {
                    JournalError::Locked { path: p.clone() }
                } else {
                    JournalError::Open {
                        path: p.clone(),
                        reason,
                    }
                }
            })?;
        Ok(Store {
            events: db.open_tree("events")?,
            snapshots: db.open_tree("snapshots")?,
            blobs: db.open_tree("blobs")?,
            db,
            path: path.to_path_buf(),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The last stored sequence number, 0 for an empty journal (sequences
    /// start at 1).
    pub fn last_seq(&self) -> Result<u64, JournalError> {
        Ok(self.events.last()?.map(|(k, _)| seq_of(&k)).unwrap_or(0))
    }

    pub fn event_count(&self) -> usize {
        self.events.len()
    }

    /// Raw (undecoded) events from `from` on, in order.
    pub fn raw_events_from(
        &self,
        from: u64,
    ) -> impl Iterator<Item = Result<(u64, sled::IVec), JournalError>> {
        self.events
            .range(from.to_be_bytes()..)
            .map(|r| r.map(|(k, v)| (seq_of(&k), v)).map_err(JournalError::from))
    }

    /// Decoded events from `from` on, in order.
    pub fn events_from(
        &self,
        from: u64,
    ) -> impl Iterator<Item = Result<(u64, Envelope), JournalError>> {
        self.raw_events_from(from)
            .map(|r| r.and_then(|(seq, v)| decode_envelope(seq, &v).map(|e| (seq, e))))
    }

    /// The newest snapshot: the sequence it covers and its bytes.
    pub fn latest_snapshot(&self) -> Result<Option<(u64, sled::IVec)>, JournalError> {
        Ok(self.snapshots.last()?.map(|(k, v)| (seq_of(&k), v)))
    }

    /// The newest snapshot that covers no more than the events stored: one
    /// past the last event describes events that never became durable.
    pub(crate) fn snapshot_within_events(&self) -> Result<Option<(u64, sled::IVec)>, JournalError> {
        let last = self.last_seq()?;
        Ok(self
            .snapshots
            .range(..=last.to_be_bytes())
            .next_back()
            .transpose()?
            .map(|(k, v)| (seq_of(&k), v)))
    }

    /// Deletes every snapshot past the last stored event (see
    /// [`Store::snapshot_within_events`]), so that events appended from here
    /// on can never be hidden behind one; returns how many there were.
    /// (This relies on the last event never being deleted: a compaction of
    /// old events must keep it.)
    pub(crate) fn drop_snapshots_past_events(&self) -> Result<usize, JournalError> {
        let first_past = self.last_seq()? + 1;
        let stale: Vec<sled::IVec> = self
            .snapshots
            .range(first_past.to_be_bytes()..)
            .keys()
            .collect::<Result<_, _>>()?;
        for k in &stale {
            self.snapshots.remove(k)?;
        }
        if !stale.is_empty() {
            self.db.flush()?;
        }
        Ok(stale.len())
    }

    pub fn blob(&self, hash: &str) -> Result<Option<Vec<u8>>, JournalError> {
        Ok(self.blobs.get(hash.as_bytes())?.map(|v| v.to_vec()))
    }

    pub fn has_blob(&self, hash: &str) -> Result<bool, JournalError> {
        Ok(self.blobs.contains_key(hash.as_bytes())?)
    }
}

pub(crate) fn seq_of(key: &[u8]) -> u64 {
    let mut b = [0u8; 8];
    let n = key.len().min(8);
    b[8 - n..].copy_from_slice(&key[key.len() - n..]);
    u64::from_be_bytes(b)
}

/// Decodes one stored envelope, refusing a format newer than ours.
pub fn decode_envelope(seq: u64, bytes: &[u8]) -> Result<Envelope, JournalError> {
    match rmp_serde::from_slice::<Envelope>(bytes) {
        Ok(env) if env.v > FORMAT_VERSION => Err(JournalError::TooNew {
            seq,
            found: env.v,
            supported: FORMAT_VERSION,
        }),
        Ok(env) => Ok(env),
        Err(e) => {
            // A newer format may not decode at all: say so rather than
            // "corrupt" when its version can still be read.
            #[derive(serde::Deserialize)]
            struct VersionOnly {
                v: u32,
            }
            match rmp_serde::from_slice::<VersionOnly>(bytes) {
                Ok(VersionOnly { v }) if v > FORMAT_VERSION => Err(JournalError::TooNew {
                    seq,
                    found: v,
                    supported: FORMAT_VERSION,
                }),
                _ => Err(JournalError::Corrupt {
                    seq,
                    reason: e.to_string(),
                }),
            }
        }
    }
}

/// Encodes an event in its envelope, as stored (named msgpack).
pub fn encode_event(t: u64, e: &Event) -> Vec<u8> {
    // Borrowing twin of `Envelope`: the writer encodes without cloning.
    #[derive(serde::Serialize)]
    struct EnvelopeRef<'a> {
        v: u32,
        t: u64,
        e: &'a Event,
    }
    rmp_serde::to_vec_named(&EnvelopeRef {
        v: FORMAT_VERSION,
        t,
        e,
    })
    .expect("events always encode: plain data, no maps with non-string keys")
}
