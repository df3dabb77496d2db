//! The sled store, behind one module so it can be replaced (sled 0.34 has
//! open reports of corruption after unclean shutdown; our crash tests are how
//! we watch them).
//!
//! Trees:
//! - `events`: *segments* of consecutive events. Key: first ‖ last sequence
//!   (two big-endian u64s); value: a named-msgpack array of [`Envelope`]s.
//!   The writer stores one segment per group commit. Format 1 stored one
//!   event per key (key: its sequence; value: one envelope map); such entries
//!   are still read, so old journals open unchanged.
//!   Why segments: with one sled entry per event, a journal of a million
//!   completed jobs (3M events) took 1.1 GB and sled needed 2.4 s to open it;
//!   sled's per-entry costs also bounded durable appends below 100k/s.
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
    /// On a foreman: results not yet acknowledged by its master, by job and
    /// attempt. Written before the completion is journaled, so the flush that
    /// makes the completion durable covers them too.
    forward: sled::Tree,
    /// Operational notes that are not events (see
    /// [`Store::reclaim_spent`]).
    meta: sled::Tree,
    path: PathBuf,
}

/// Key in `meta`: how long (ms of master uptime, big-endian) the holders of
/// orphaned jobs have already had, across restarts, to reclaim them.
const RECLAIM_SPENT: &[u8] = b"reclaim_spent_ms";

impl Store {
    /// Opens a journal that must already be there (post-mortems, replays,
    /// the sim's checks): a wrong path is [`JournalError::Missing`], never a
    /// new empty journal left behind in whatever directory it named.
    pub fn open_existing(path: &Path) -> Result<Store, JournalError> {
        let missing = |reason| JournalError::Missing {
            path: path.display().to_string(),
            reason,
        };
        if !path.exists() {
            return Err(missing("no such directory"));
        }
        if !path.is_dir() {
            return Err(missing("not a directory"));
        }
        if !path.join("db").is_file() {
            return Err(missing(
                "the directory holds no sled database (no `db` file)",
            ));
        }
        Store::open(path)
    }

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
            // The journal is read once, at start-up; what a master needs in
            // memory is its table, not sled's page cache (default 1 GB).
            .cache_capacity(64 * 1024 * 1024)
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
            forward: db.open_tree("forward")?,
            meta: db.open_tree("meta")?,
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
        Ok(self.events.last()?.map(|(k, _)| span_of(&k).1).unwrap_or(0))
    }

    /// Events stored (counted from the segment keys, without decoding).
    pub fn event_count(&self) -> usize {
        self.events
            .iter()
            .keys()
            .filter_map(Result::ok)
            .map(|k| {
                let (first, last) = span_of(&k);
                span_len(first, last).unwrap_or(0) as usize
            })
            .sum()
    }

    /// Stored segments holding events from `from` on, undecoded:
    /// `(first, last, bytes)`. The first may start before `from`.
    pub fn segments_from(
        &self,
        from: u64,
    ) -> impl Iterator<Item = Result<(u64, u64, sled::IVec), JournalError>> {
        // The segment that holds `from` starts at or before it.
        let start = self
            .events
            .range(..=key_of(from, u64::MAX))
            .next_back()
            .and_then(Result::ok)
            .map(|(k, _)| span_of(&k))
            .filter(|(_, last)| *last >= from)
            .map(|(first, _)| first)
            .unwrap_or(from);
        self.events.range(start.to_be_bytes()..).map(|r| {
            r.map(|(k, v)| {
                let (first, last) = span_of(&k);
                (first, last, v)
            })
            .map_err(JournalError::from)
        })
    }

    /// Decoded events from `from` on, in order.
    pub fn events_from(
        &self,
        from: u64,
    ) -> impl Iterator<Item = Result<(u64, Envelope), JournalError>> {
        self.segments_from(from).flat_map(move |r| {
            let decoded: Vec<Result<(u64, Envelope), JournalError>> = match r {
                Err(e) => vec![Err(e)],
                Ok((first, last, bytes)) => match decode_segment(first, last, &bytes) {
                    Err(e) => vec![Err(e)],
                    Ok(envs) => (first..=last)
                        .zip(envs)
                        .filter(|(seq, _)| *seq >= from)
                        .map(Ok)
                        .collect(),
                },
            };
            decoded
        })
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

    /// Deletes all but the newest `keep` snapshots.
    pub(crate) fn prune_snapshots(&self, keep: usize) -> Result<(), JournalError> {
        let keys: Vec<sled::IVec> = self.snapshots.iter().keys().collect::<Result<_, _>>()?;
        for k in keys.iter().take(keys.len().saturating_sub(keep)) {
            self.snapshots.remove(k)?;
        }
        Ok(())
    }

    /// How much of the reclaim window is spent: the master uptime, summed
    /// over an unbroken run of restarts, during which holders could have
    /// come back for jobs left out on them. `None` when no window is open.
    ///
    /// It is not an event: it changes nothing in the table, only how long a
    /// restarted master waits for holders. It lives beside the journal so
    /// that a master restarted faster than its lease does not give every
    /// holder a fresh lease each time (its dead holders' jobs would wait
    /// forever). Uptime, not wall time: holders cannot come back while the
    /// master is down, so a long outage must not use their window up.
    pub fn reclaim_spent(&self) -> Result<Option<u64>, JournalError> {
        Ok(self.meta.get(RECLAIM_SPENT)?.and_then(|v| {
            let b: [u8; 8] = v.as_ref().try_into().ok()?;
            Some(u64::from_be_bytes(b))
        }))
    }

    /// Records (`Some`) or closes (`None`) the reclaim window, durably.
    pub fn set_reclaim_spent(&self, ms: Option<u64>) -> Result<(), JournalError> {
        self.put_reclaim_spent(ms)?;
        self.meta.flush()?;
        Ok(())
    }

    /// Like [`Store::set_reclaim_spent`], durable with the next flush: the
    /// writer's, so a master's lease tick never flushes on its own thread.
    pub(crate) fn put_reclaim_spent(&self, ms: Option<u64>) -> Result<(), JournalError> {
        match ms {
            Some(t) => self.meta.insert(RECLAIM_SPENT, &t.to_be_bytes())?,
            None => self.meta.remove(RECLAIM_SPENT)?,
        };
        Ok(())
    }

    /// Keeps a result for the master (durable with the next flush).
    pub fn put_forward(&self, r: &pilotq_wire::JobResult) -> Result<(), JournalError> {
        let bytes = rmp_serde::to_vec_named(r).map_err(|e| JournalError::Storage(e.to_string()))?;
        self.forward.insert(forward_key(r.job, r.attempt), bytes)?;
        Ok(())
    }

    /// Forgets a result the master acknowledged.
    pub fn drop_forward(&self, job: pilotq_wire::JobId, attempt: u32) -> Result<(), JournalError> {
        self.forward.remove(forward_key(job, attempt))?;
        Ok(())
    }

    /// Every result still owed to the master, read entry by entry: an entry
    /// that cannot be read or decoded is reported in `bad` (with its key)
    /// and the others are still returned, so one bad entry never costs the
    /// rest their delivery (those jobs would otherwise run again).
    pub fn forwards(&self) -> Forwards {
        let mut out = Forwards::default();
        for entry in self.forward.iter() {
            match entry {
                Err(e) => out.bad.push(format!("unreadable entry: {e}")),
                Ok((k, v)) => match rmp_serde::from_slice(&v) {
                    Ok(r) => out.results.push(r),
                    Err(e) => out
                        .bad
                        .push(format!("entry {} does not decode: {e}", hex_key(&k))),
                },
            }
        }
        out
    }

    pub fn blob(&self, hash: &str) -> Result<Option<Vec<u8>>, JournalError> {
        Ok(self.blobs.get(hash.as_bytes())?.map(|v| v.to_vec()))
    }

    pub fn has_blob(&self, hash: &str) -> Result<bool, JournalError> {
        Ok(self.blobs.contains_key(hash.as_bytes())?)
    }
}

/// The `forward` tree as read: results owed, and what could not be read.
#[derive(Debug, Default)]
pub struct Forwards {
    pub results: Vec<pilotq_wire::JobResult>,
    pub bad: Vec<String>,
}

fn hex_key(k: &[u8]) -> String {
    k.iter().map(|b| format!("{b:02x}")).collect()
}

fn forward_key(job: pilotq_wire::JobId, attempt: u32) -> [u8; 16] {
    let mut k = [0u8; 16];
    k[..8].copy_from_slice(&job.cluster.0.to_be_bytes());
    k[8..12].copy_from_slice(&job.proc.to_be_bytes());
    k[12..].copy_from_slice(&attempt.to_be_bytes());
    k
}

pub(crate) fn seq_of(key: &[u8]) -> u64 {
    let mut b = [0u8; 8];
    let n = key.len().min(8);
    b[8 - n..].copy_from_slice(&key[..n]);
    u64::from_be_bytes(b)
}

/// The key of a segment holding events `first..=last`.
pub fn key_of(first: u64, last: u64) -> [u8; 16] {
    let mut k = [0u8; 16];
    k[..8].copy_from_slice(&first.to_be_bytes());
    k[8..].copy_from_slice(&last.to_be_bytes());
    k
}

/// First and last sequence of a stored entry: a 16-byte segment key, or a
/// format-1 8-byte single-event key.
pub fn span_of(key: &[u8]) -> (u64, u64) {
    let first = seq_of(key);
    if key.len() >= 16 {
        (first, seq_of(&key[8..]))
    } else {
        (first, first)
    }
}

/// How many events `first..=last` spans; `None` for a key that is not a
/// span (last before first, or all of u64): a corrupt key, never wrapped
/// into a plausible count.
pub fn span_len(first: u64, last: u64) -> Option<u64> {
    last.checked_sub(first)?.checked_add(1)
}

/// Decodes a stored entry into its envelopes: a segment (msgpack array) or a
/// format-1 single envelope (msgpack map). Checks that it holds exactly the
/// events its key says, and refuses a format newer than ours.
pub fn decode_segment(first: u64, last: u64, bytes: &[u8]) -> Result<Vec<Envelope>, JournalError> {
    let is_array = matches!(bytes.first(), Some(0x90..=0x9f | 0xdc | 0xdd));
    if !is_array {
        return Ok(vec![decode_envelope(first, bytes)?]);
    }
    let envs: Vec<Envelope> = rmp_serde::from_slice(bytes).map_err(|e| JournalError::Corrupt {
        seq: first,
        reason: format!("segment {first}..={last}: {e}"),
    })?;
    if Some(envs.len() as u64) != span_len(first, last) {
        return Err(JournalError::Corrupt {
            seq: first,
            reason: format!("segment {first}..={last} holds {} events", envs.len()),
        });
    }
    for (i, env) in envs.iter().enumerate() {
        if env.v > FORMAT_VERSION {
            return Err(JournalError::TooNew {
                seq: first + i as u64,
                found: env.v,
                supported: FORMAT_VERSION,
            });
        }
    }
    Ok(envs)
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

/// Borrowing twin of `Envelope`: the writer encodes without cloning.
#[derive(serde::Serialize)]
struct EnvelopeRef<'a> {
    v: u32,
    t: u64,
    e: &'a Event,
}

/// Encodes one event in its envelope (named msgpack), as format 1 stored it.
pub fn encode_event(t: u64, e: &Event) -> Vec<u8> {
    rmp_serde::to_vec_named(&EnvelopeRef {
        v: FORMAT_VERSION,
        t,
        e,
    })
    .expect("events always encode: plain data, no maps with non-string keys")
}

/// Encodes a segment: the events' envelopes as one named-msgpack array.
pub fn encode_segment<'a>(t: u64, events: impl Iterator<Item = &'a Event>) -> Vec<u8> {
    let envs: Vec<EnvelopeRef<'a>> = events
        .map(|e| EnvelopeRef {
            v: FORMAT_VERSION,
            t,
            e,
        })
        .collect();
    rmp_serde::to_vec_named(&envs)
        .expect("events always encode: plain data, no maps with non-string keys")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_reclaim_window_opens_closes_and_outlives_a_reopen() {
        let dir = tempfile::tempdir().unwrap();
        {
            let s = Store::open(dir.path()).unwrap();
            assert_eq!(s.reclaim_spent().unwrap(), None);
            s.set_reclaim_spent(Some(4_250)).unwrap();
            assert_eq!(s.reclaim_spent().unwrap(), Some(4_250));
        }
        // Reopened (sled releases its lock a moment after the last handle).
        let mut tries = 0;
        let s = loop {
            match Store::open(dir.path()) {
                Ok(s) => break s,
                Err(JournalError::Locked { .. }) if tries < 100 => {
                    tries += 1;
                    std::thread::sleep(std::time::Duration::from_millis(50))
                }
                Err(e) => panic!("{e}"),
            }
        };
        assert_eq!(s.reclaim_spent().unwrap(), Some(4_250));
        s.set_reclaim_spent(None).unwrap();
        assert_eq!(s.reclaim_spent().unwrap(), None);
        // No event was written: the window is not part of the table.
        assert_eq!(s.last_seq().unwrap(), 0);
    }

    #[test]
    fn span_len_refuses_what_is_not_a_span() {
        assert_eq!(span_len(1, 1), Some(1));
        assert_eq!(span_len(5, 9), Some(5));
        assert_eq!(span_len(0, 0), Some(1));
        assert_eq!(span_len(u64::MAX, u64::MAX), Some(1));
        assert_eq!(span_len(1, u64::MAX), Some(u64::MAX));
        assert_eq!(span_len(0, u64::MAX - 1), Some(u64::MAX));
        // Backwards, or all of u64 (one more than a u64 holds).
        assert_eq!(span_len(9, 5), None);
        assert_eq!(span_len(u64::MAX, 0), None);
        assert_eq!(span_len(0, u64::MAX), None);
        // A corrupt key counts no events rather than a wrapped number.
        let dir = tempfile::tempdir().unwrap();
        let s = Store::open(dir.path()).unwrap();
        s.events.insert(key_of(9, 5), &[0x90][..]).unwrap();
        s.events.insert(key_of(0, u64::MAX), &[0x90][..]).unwrap();
        s.events.insert(key_of(20, 21), &[0x92][..]).unwrap();
        assert_eq!(s.event_count(), 2);
    }

    #[test]
    fn a_bad_forward_entry_costs_only_itself() {
        use pilotq_wire::{JobId, JobResult, Outcome};
        let dir = tempfile::tempdir().unwrap();
        let s = Store::open(dir.path()).unwrap();
        assert!(s.forwards().results.is_empty() && s.forwards().bad.is_empty());
        let result = |cluster, attempt| JobResult {
            job: JobId::new(cluster, 4),
            attempt,
            outcome: Outcome::Exited { code: 3 },
            started_at: 10,
            ended_at: 20,
            stdout: b"out\n".to_vec(),
            stderr: vec![0, 255],
        };
        // Keys sort by job then attempt: the bad entry sits between two
        // good ones.
        s.put_forward(&result(1, 1)).unwrap();
        s.put_forward(&result(3, 2)).unwrap();
        let bad_key = forward_key(JobId::new(2, 4), 1);
        s.forward.insert(bad_key, &b"\xc1 not msgpack"[..]).unwrap();

        let f = s.forwards();
        assert_eq!(f.results, [result(1, 1), result(3, 2)]);
        assert_eq!(f.bad.len(), 1, "{:?}", f.bad);
        assert!(
            f.bad[0].contains(&hex_key(&bad_key)),
            "the bad entry is named by its key: {:?}",
            f.bad
        );
        assert_eq!(hex_key(&bad_key), "00000000000000020000000400000001");

        // Acknowledged results go; the bad entry stays until dropped.
        s.drop_forward(JobId::new(1, 4), 1).unwrap();
        let f = s.forwards();
        assert_eq!((f.results, f.bad.len()), (vec![result(3, 2)], 1));
        s.drop_forward(JobId::new(2, 4), 1).unwrap();
        s.drop_forward(JobId::new(3, 4), 2).unwrap();
        let f = s.forwards();
        assert!(f.results.is_empty() && f.bad.is_empty(), "{f:?}");
    }
}
