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
//!   Once snapshots cover them, whole segments move out of sled into sealed
//!   files beside it ([`crate::sealed`], [`Store::seal_through`]); the
//!   readers here ([`Store::events_from`], [`Store::segments_from`],
//!   [`Store::event_count`]) read both as one record: sealed files first,
//!   then the sled entries past the last sealed event, each event once.
//! - `snapshots`: the sequence a snapshot covers → encoded table;
//! - `blobs`: sha256 hex → executable bytes.

use crate::error::JournalError;
use crate::event::{Envelope, Event, FORMAT_VERSION};
use crate::sealed::{Batch, Retention, SealedDir, SegmentFile, MAX_FILE_BODY};
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

/// Keys in `meta`: `wrapper:<hash>`, the job wrappers this master has used.
const WRAPPER_PREFIX: &str = "wrapper:";

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

    /// The sealed files beside this journal, listed now.
    pub fn sealed(&self) -> Result<SealedDir, JournalError> {
        SealedDir::open(&self.path)
    }

    /// The last stored sequence number, 0 for an empty journal (sequences
    /// start at 1). Sealing never takes sled's newest segment, so sled alone
    /// would do; the sealed files are consulted all the same, so that a
    /// journal whose sled lost its events can never reuse their numbers.
    pub fn last_seq(&self) -> Result<u64, JournalError> {
        let in_sled = self.events.last()?.map(|(k, _)| span_of(&k).1).unwrap_or(0);
        Ok(in_sled.max(self.sealed()?.last_seq().unwrap_or(0)))
    }

    /// The first event the journal still holds: 1 for a whole (or empty)
    /// journal, later once retention has deleted the oldest sealed files.
    /// A replay of such a journal starts from a snapshot (see
    /// [`crate::replay::rebuild`]).
    pub fn first_seq(&self) -> Result<u64, JournalError> {
        if let Some(first) = self.sealed()?.first_seq() {
            return Ok(first);
        }
        Ok(self
            .events
            .first()?
            .map(|(k, _)| span_of(&k).0)
            .unwrap_or(1))
    }

    /// Events stored, sealed and in sled (counted from file names and
    /// segment keys, without decoding). A sealed folder that cannot be
    /// listed counts nothing and is logged; readers report it as an error.
    pub fn event_count(&self) -> usize {
        let (sealed, sealed_last) = match self.sealed() {
            Ok(d) => (d.event_count(), d.last_seq().unwrap_or(0)),
            Err(e) => {
                tracing::warn!("counting events: {e}");
                (0, 0)
            }
        };
        let in_sled: u64 = self
            .events
            .iter()
            .keys()
            .filter_map(Result::ok)
            .map(|k| {
                let (first, last) = span_of(&k);
                // A corrupt key counts nothing, whatever was sealed.
                if span_len(first, last).is_none() || last <= sealed_last {
                    return 0;
                }
                span_len(first.max(sealed_last + 1), last).unwrap_or(0)
            })
            .sum();
        (sealed + in_sled) as usize
    }

    /// Segments holding events from `from` on, undecoded: `(first, last,
    /// bytes)`, sealed files (their whole uncompressed body each) then sled
    /// entries. The first may start before `from`. Events before the
    /// journal's first ([`Store::first_seq`]) are simply not there; a hole
    /// after it is a [`JournalError::Gap`].
    pub fn segments_from(
        &self,
        from: u64,
    ) -> impl Iterator<Item = Result<(u64, u64, sled::IVec), JournalError>> {
        let store = self.clone();
        Contiguous::new(
            from,
            |(first, last, _)| (*first, *last),
            move |from| {
                let (first_kept, sealed) = (store.first_seq()?, store.sealed()?);
                let past_sealed = sealed.last_seq().map_or(0, |l| l + 1);
                let sealed_part = sealed
                    .bodies_from(from)
                    .map(|r| r.map(|(first, last, body)| (first, last, sled::IVec::from(body))));
                let sled_part = store.sled_segments_from(from.max(past_sealed));
                // A restart mid-read may begin inside a file: its events before
                // `from` were given already.
                let trimmed = sealed_part.chain(sled_part).map(move |r| {
                    let (first, last, bytes) = r?;
                    if first >= from {
                        return Ok((first, last, bytes));
                    }
                    let envs = decode_segment(first, last, &bytes)?;
                    let kept = &envs[(from - first) as usize..];
                    let bytes = rmp_serde::to_vec_named(kept)
                        .map_err(|e| JournalError::Storage(e.to_string()))?;
                    Ok((from, last, sled::IVec::from(bytes)))
                });
                Ok((first_kept, Box::new(trimmed) as Reader<_>))
            },
        )
    }

    /// Sled's own entries holding events from `from` on.
    fn sled_segments_from(
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

    /// Decoded events from `from` on, in order, each once: sealed files
    /// (decoded as they are decompressed), then sled. As
    /// [`Store::segments_from`] for where the journal starts and for holes.
    pub fn events_from(
        &self,
        from: u64,
    ) -> impl Iterator<Item = Result<(u64, Envelope), JournalError>> {
        let store = self.clone();
        Contiguous::new(
            from,
            |(seq, _)| (*seq, *seq),
            move |from| {
                let (first_kept, sealed) = (store.first_seq()?, store.sealed()?);
                let past_sealed = sealed.last_seq().map_or(0, |l| l + 1);
                let sealed_part = sealed.events_from(from);
                let sled_part = store.sled_events_from(from.max(past_sealed));
                Ok((
                    first_kept,
                    Box::new(sealed_part.chain(sled_part)) as Reader<_>,
                ))
            },
        )
    }

    /// Sled's own events from `from` on.
    fn sled_events_from(
        &self,
        from: u64,
    ) -> impl Iterator<Item = Result<(u64, Envelope), JournalError>> {
        self.sled_segments_from(from).flat_map(move |r| {
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

    /// The sequence the oldest kept snapshot covers.
    pub fn oldest_snapshot_seq(&self) -> Result<Option<u64>, JournalError> {
        Ok(self.snapshots.first()?.map(|(k, _)| seq_of(&k)))
    }

    /// The snapshots that cover no more than the events stored, oldest
    /// first: one past the last event describes events that never became
    /// durable.
    pub(crate) fn snapshots_within_events(&self) -> Result<Vec<(u64, sled::IVec)>, JournalError> {
        let last = self.last_seq()?;
        self.snapshots
            .range(..=last.to_be_bytes())
            .map(|r| r.map(|(k, v)| (seq_of(&k), v)).map_err(JournalError::from))
            .collect()
    }

    /// Moves every whole sled segment whose events all lie at or before
    /// `seq` into sealed files (a new file every [`MAX_FILE_BODY`]
    /// uncompressed bytes), then removes those segments from sled. Sled's
    /// newest segment always stays, so that [`Store::last_seq`] and the
    /// snapshot checks at open never depend on the sealed files.
    ///
    /// Each file is in place, synced, before its segments leave sled, so a
    /// crash in between leaves events in both; readers take the sealed copy,
    /// and the next seal removes the sled one. The master runs this on the
    /// sealer's thread ([`crate::sealer`]), never on its own or the
    /// writer's; it is also safe to call on a journal no master holds.
    pub fn seal_through(&self, seq: u64) -> Result<SealReport, JournalError> {
        self.seal_through_while(seq, MAX_FILE_BODY, &|| true)
    }

    /// [`Store::seal_through`] in files of about `max_body` uncompressed
    /// bytes (tests, and tools that want smaller files).
    pub fn seal_through_in_files_of(
        &self,
        seq: u64,
        max_body: usize,
    ) -> Result<SealReport, JournalError> {
        self.seal_through_while(seq, max_body, &|| true)
    }

    /// [`Store::seal_through`], asking `go_on` between files whether to go
    /// on (a shutdown stops after the file in hand).
    pub(crate) fn seal_through_while(
        &self,
        seq: u64,
        max_body: usize,
        go_on: &dyn Fn() -> bool,
    ) -> Result<SealReport, JournalError> {
        let t0 = std::time::Instant::now();
        let sealed = self.sealed()?;
        let dir = sealed.dir().to_path_buf();
        let mut report = SealReport::default();
        let sealed_last = sealed.last_seq().unwrap_or(0);
        if sealed_last > 0 {
            report.leftovers = self.remove_from_sled_through(sealed_last)?;
        }
        let Some((newest, _)) = self.events.last()? else {
            return Ok(report);
        };
        let mut batch = Batch::default();
        let mut keys = Vec::new();
        // Where the next segment must start: right after the sealed ones.
        let mut next = (sealed_last > 0).then_some(sealed_last + 1);
        for entry in self.events.iter() {
            let (k, v) = entry?;
            let (first, last) = span_of(&k);
            if k == newest || last > seq {
                break;
            }
            if let Some(n) = batch.next_seq().or(next) {
                if first != n {
                    // Never seal across a hole (or an overlap): a sealed
                    // file holds exactly first..=last.
                    return Err(if first > n {
                        JournalError::Gap {
                            first: n,
                            last: first - 1,
                        }
                    } else {
                        JournalError::Corrupt {
                            seq: first,
                            reason: format!("segment {first}..={last} overlaps events before it"),
                        }
                    });
                }
            }
            let envs = decode_segment(first, last, &v)?;
            batch.push(first, last, &v, &envs);
            keys.push(k);
            if batch.len() >= max_body {
                next = batch.next_seq();
                self.seal_batch(&dir, std::mem::take(&mut batch), &mut keys, &mut report)?;
                if !go_on() {
                    break;
                }
            }
        }
        if !batch.is_empty() {
            self.seal_batch(&dir, batch, &mut keys, &mut report)?;
        }
        report.ms = t0.elapsed().as_millis() as u64;
        Ok(report)
    }

    fn seal_batch(
        &self,
        dir: &Path,
        batch: Batch,
        keys: &mut Vec<sled::IVec>,
        report: &mut SealReport,
    ) -> Result<(), JournalError> {
        report.events += batch.events();
        report.raw_bytes += batch.len() as u64;
        let file = batch.write(dir)?;
        // Only now, with the file durable in place, may sled forget them.
        for k in keys.drain(..) {
            self.events.remove(k)?;
        }
        self.db.flush()?;
        report.sealed_bytes += file.bytes;
        report.files.push(file);
        Ok(())
    }

    /// Removes from sled the entries whose events a sealed file holds
    /// (left by a crash between a file's rename and this removal).
    fn remove_from_sled_through(&self, seq: u64) -> Result<usize, JournalError> {
        let stale: Vec<sled::IVec> = self
            .events
            .range(..=key_of(seq, u64::MAX))
            .keys()
            .filter(|k| !matches!(k, Ok(k) if span_of(k).1 > seq))
            .collect::<Result<_, _>>()?;
        for k in &stale {
            self.events.remove(k)?;
        }
        if !stale.is_empty() {
            self.db.flush()?;
        }
        Ok(stale.len())
    }

    /// Deletes the oldest sealed files that `keep` no longer keeps, never
    /// one holding events after the oldest kept snapshot, and nothing while
    /// no kept snapshot is one this pilotq can read (only a full replay
    /// could then rebuild the table). Returns the files deleted.
    pub fn retire_sealed(&self, keep: &Retention) -> Result<Vec<SegmentFile>, JournalError> {
        let snapshots = self.snapshots_within_events()?;
        let readable = |bytes: &[u8]| {
            crate::snapshot::version(bytes) == Some(crate::snapshot::SNAPSHOT_VERSION)
        };
        if !snapshots.iter().any(|(_, bytes)| readable(bytes)) {
            return Ok(Vec::new());
        }
        let bound = snapshots[0].0;
        let mut sealed = self.sealed()?;
        sealed.retire(keep, crate::event::now_ms(), bound)
    }

    /// Deletes every snapshot past the last stored event (see
    /// [`Store::snapshots_within_events`]), so that events appended from
    /// here on can never be hidden behind one; returns how many there were.
    /// (This relies on the last event never being deleted: sealing keeps
    /// sled's newest segment, and retention deletes only sealed files
    /// before the oldest snapshot.)
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

    /// Notes that `hash` was this journal's master's job wrapper (durable
    /// with the next flush). Jobs dispatched wrapped may run for days and
    /// fail over to foremen that fetch the wrapper by hash, and no event
    /// names it; so a wrapper, once used, is never collected (a site has a
    /// handful).
    pub fn note_wrapper(&self, hash: &str) -> Result<(), JournalError> {
        self.meta
            .insert(format!("{WRAPPER_PREFIX}{hash}").as_bytes(), &[][..])?;
        Ok(())
    }

    /// Every job wrapper noted by [`Store::note_wrapper`].
    pub fn noted_wrappers(&self) -> Result<Vec<String>, JournalError> {
        self.meta
            .scan_prefix(WRAPPER_PREFIX.as_bytes())
            .keys()
            .map(|k| {
                let k = k?;
                Ok(String::from_utf8_lossy(&k[WRAPPER_PREFIX.len()..]).into_owned())
            })
            .collect()
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

/// What one [`Store::seal_through`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SealReport {
    /// The files written, oldest first.
    pub files: Vec<SegmentFile>,
    /// Events sealed.
    pub events: u64,
    /// Their bytes as sled held them, and as the files hold them.
    pub raw_bytes: u64,
    pub sealed_bytes: u64,
    /// Sled entries removed because a sealed file already held their events.
    pub leftovers: usize,
    pub ms: u64,
}

type Reader<T> = Box<dyn Iterator<Item = Result<T, JournalError>> + Send>;

/// Opens the sealed files and sled from a sequence on: the journal's first
/// kept event, and a reader of both.
type Open<T> = Box<dyn Fn(u64) -> Result<(u64, Reader<T>), JournalError> + Send>;

/// Checks that items follow one another without a hole, from where the read
/// (or the journal) starts on, and stops at the first error.
///
/// A hole may also be a seal that ran while we read (the master's own
/// readers run beside its sealer): the files were listed before, and sled
/// no longer has the events. So at a hole the reader is opened again where
/// it stands, once per hole; a hole still there is a real one.
struct Contiguous<T> {
    inner: Option<Reader<T>>,
    open: Open<T>,
    next: u64,
    span: fn(&T) -> (u64, u64),
    reopened_at: Option<u64>,
    done: bool,
}

impl<T: Send + 'static> Contiguous<T> {
    fn new(
        from: u64,
        span: fn(&T) -> (u64, u64),
        open: impl Fn(u64) -> Result<(u64, Reader<T>), JournalError> + Send + 'static,
    ) -> Self {
        Contiguous {
            inner: None,
            open: Box::new(open),
            next: from,
            span,
            reopened_at: None,
            done: false,
        }
    }

    fn step(&mut self) -> Option<Result<T, JournalError>> {
        loop {
            let inner = match &mut self.inner {
                Some(inner) => inner,
                None => match (self.open)(self.next) {
                    Err(e) => return Some(Err(e)),
                    Ok((first_kept, inner)) => {
                        // Events before the journal's first are not there
                        // to be read (retired): the read starts with it.
                        if self.reopened_at.is_none() {
                            self.next = self.next.max(first_kept);
                        }
                        self.inner.insert(inner)
                    }
                },
            };
            let item = match inner.next()? {
                Err(e) => return Some(Err(e)),
                Ok(item) => item,
            };
            let (first, last) = (self.span)(&item);
            if first > self.next {
                if self.reopened_at != Some(self.next) {
                    self.reopened_at = Some(self.next);
                    self.inner = None;
                    continue;
                }
                return Some(Err(JournalError::Gap {
                    first: self.next,
                    last: first - 1,
                }));
            }
            if last < self.next {
                return Some(Err(JournalError::Corrupt {
                    seq: first,
                    reason: format!(
                        "events {first}..={last} come again after event {}",
                        self.next - 1
                    ),
                }));
            }
            self.next = last + 1;
            return Some(Ok(item));
        }
    }
}

impl<T: Send + 'static> Iterator for Contiguous<T> {
    type Item = Result<T, JournalError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        let item = self.step();
        self.done = !matches!(item, Some(Ok(_)));
        item
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
            key: None,
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
