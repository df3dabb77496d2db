//! The history store: one record per finished job, out of the master's
//! memory, in files beside the journal rotated like HTCondor's history
//! (`MAX_HISTORY_LOG`, `MAX_HISTORY_ROTATIONS`).
//!
//! ## Files
//! `<journal>/history/history` is appended to; when it reaches its share of
//! the size bound it is renamed `history.<UTC time>` (a *rotation*) and a new
//! one begun. Rotations beyond the count, the size or the age bound are
//! deleted, oldest first.
//!
//! A record is framed so that it can be read from either end:
//! `len (u32 LE) | body | crc32 of body (u32 LE) | len (u32 LE)`, the body a
//! [`JobView`] in named msgpack. `condor_history` reads newest first, so
//! `-limit 100` over millions of records reads a few blocks at the end.
//!
//! ## Written with the journal, before it
//! The journal writer thread appends the records of a group and syncs them
//! *before* it flushes the events that made them. So a record can be on disk
//! for events that are not (a crash between the two syncs), never the other
//! way round. Each record carries the sequence of the event that ended its
//! job; at open, records past the journal's last durable event are cut off
//! (their jobs are not finished yet: they finish again, and are recorded
//! again). Readers are given the same bound, so nobody sees a record the
//! journal could still take back.

use crate::error::JournalError;
use pilotq_wire::JobView;
use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

/// The file records are appended to.
const CURRENT: &str = "history";
/// Bytes of framing around a record's body.
const FRAME: u64 = 12;
/// A record larger than this is not one (a corrupt length).
const MAX_RECORD: u32 = 16 << 20;
/// Records waiting for a commit beyond this many bytes are written ahead.
const PENDING_MAX: usize = 8 << 20;
/// Bytes read at a time going backwards.
const BLOCK: u64 = 256 << 10;

/// How much history is kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HistoryLimits {
    /// All files together stay under this many bytes (HTCondor's
    /// `MAX_HISTORY_LOG` × (`MAX_HISTORY_ROTATIONS` + 1)).
    pub max_size: u64,
    /// Rotated files kept besides the current one (HTCondor's
    /// `MAX_HISTORY_ROTATIONS`).
    pub rotations: u32,
    /// Rotated files whose newest record is older than this are deleted.
    pub max_age: Option<Duration>,
}

impl Default for HistoryLimits {
    fn default() -> Self {
        HistoryLimits {
            max_size: 2 << 30,
            rotations: 9,
            max_age: None,
        }
    }
}

impl HistoryLimits {
    /// The size at which the current file is rotated.
    fn file_size(&self) -> u64 {
        (self.max_size / (u64::from(self.rotations) + 1)).max(64 << 10)
    }
}

/// The directory of a journal's history store.
pub fn dir_of(journal: &Path) -> PathBuf {
    journal.join("history")
}

fn storage(path: &Path, e: impl std::fmt::Display) -> JournalError {
    JournalError::Storage(format!("history {}: {e}", path.display()))
}

/// Appends records; owned by the journal writer thread.
pub struct HistoryWriter {
    dir: PathBuf,
    file: File,
    len: u64,
    limits: HistoryLimits,
    /// Records added since the last commit, framed.
    pending: Vec<u8>,
    /// The current file's committed length, for readers in other threads.
    committed: std::sync::Arc<std::sync::atomic::AtomicU64>,
    /// The highest sequence in the current file: a rotated file is named
    /// by it, so names sort in the order the files were written.
    last_seq: u64,
}

impl HistoryWriter {
    /// Opens the store in `dir` (created if missing) for a journal whose
    /// last durable event is `durable_seq`: a torn last record, and records
    /// of events past `durable_seq`, are cut off.
    pub fn open(
        dir: &Path,
        durable_seq: u64,
        limits: HistoryLimits,
    ) -> Result<HistoryWriter, JournalError> {
        std::fs::create_dir_all(dir).map_err(|e| storage(dir, e))?;
        let path = dir.join(CURRENT);
        let mut file = OpenOptions::new()
            .read(true)
            .append(true)
            .create(true)
            .open(&path)
            .map_err(|e| storage(&path, e))?;
        let (keep, last_seq) =
            durable_prefix(&mut file, durable_seq).map_err(|e| storage(&path, e))?;
        let len = file.metadata().map_err(|e| storage(&path, e))?.len();
        if keep < len {
            tracing::warn!(
                file = %path.display(),
                cut = len - keep,
                "history: cutting records of events that did not become durable"
            );
            file.set_len(keep).map_err(|e| storage(&path, e))?;
            file.sync_data().map_err(|e| storage(&path, e))?;
        }
        sync_dir(dir)?;
        Ok(HistoryWriter {
            dir: dir.to_path_buf(),
            file,
            len: keep,
            limits,
            pending: Vec::new(),
            committed: std::sync::Arc::new(std::sync::atomic::AtomicU64::new(keep)),
            last_seq,
        })
    }

    /// Frames `record` for the next commit. Past [`PENDING_MAX`] bytes what
    /// waits is written (not synced) at once, so that a removal of a
    /// million-job cluster does not hold its records in memory: whatever is
    /// in the file but not committed is cut at the next open, and readers
    /// never look past the committed length and sequence.
    pub fn add(&mut self, record: &JobView) -> Result<(), JournalError> {
        let body = rmp_serde::to_vec_named(record).expect("a job view always encodes");
        let len = (body.len() as u32).to_le_bytes();
        self.pending.extend_from_slice(&len);
        self.pending.extend_from_slice(&body);
        self.pending
            .extend_from_slice(&crc32fast::hash(&body).to_le_bytes());
        self.pending.extend_from_slice(&len);
        self.last_seq = self.last_seq.max(record.seq);
        if self.pending.len() >= PENDING_MAX {
            self.write_pending()?;
        }
        Ok(())
    }

    /// Writes what waits, unsynced; rotates first if the current file is
    /// full and holds nothing uncommitted (a rotated file only ever holds
    /// committed records).
    fn write_pending(&mut self) -> Result<(), JournalError> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let committed = self.committed.load(std::sync::atomic::Ordering::Acquire);
        if self.len >= self.limits.file_size() && self.len == committed {
            self.rotate()?;
        }
        let path = self.dir.join(CURRENT);
        self.file
            .write_all(&self.pending)
            .map_err(|e| storage(&path, e))?;
        self.len += self.pending.len() as u64;
        self.pending.clear();
        Ok(())
    }

    /// The current file's committed length, kept up to date by the writer:
    /// a reader's [`ReadBound::current_len`].
    pub fn committed(&self) -> std::sync::Arc<std::sync::atomic::AtomicU64> {
        self.committed.clone()
    }

    /// Whether records wait for a commit.
    pub fn has_pending(&self) -> bool {
        !self.pending.is_empty()
    }

    /// Writes and syncs what was added; rotates first if the current file
    /// is full, so a rotated file only ever holds committed records.
    pub fn commit(&mut self) -> Result<(), JournalError> {
        let committed = self.committed.load(std::sync::atomic::Ordering::Acquire);
        if self.pending.is_empty() && self.len == committed {
            return Ok(());
        }
        self.write_pending()?;
        // Whatever went in is cut at the next open if this fails (its events
        // are not durable either: the writer fails the whole group).
        let path = self.dir.join(CURRENT);
        self.file.sync_data().map_err(|e| storage(&path, e))?;
        self.committed
            .store(self.len, std::sync::atomic::Ordering::Release);
        Ok(())
    }

    fn rotate(&mut self) -> Result<(), JournalError> {
        let current = self.dir.join(CURRENT);
        // `history.<UTC time>.<last sequence>`: the time for people, the
        // sequence for order (two rotations can share a second).
        let stamp = rotation_stamp(SystemTime::now());
        let target = self
            .dir
            .join(format!("{CURRENT}.{stamp}.{:020}", self.last_seq));
        std::fs::rename(&current, &target).map_err(|e| storage(&current, e))?;
        self.file = OpenOptions::new()
            .read(true)
            .append(true)
            .create(true)
            .open(&current)
            .map_err(|e| storage(&current, e))?;
        self.len = 0;
        self.committed
            .store(0, std::sync::atomic::Ordering::Release);
        sync_dir(&self.dir)?;
        self.retain()
    }

    /// Deletes rotated files beyond the bounds, oldest first.
    fn retain(&self) -> Result<(), JournalError> {
        let mut rotated = rotated_files(&self.dir)?;
        let mut total: u64 = self.len
            + rotated
                .iter()
                .map(|p| std::fs::metadata(p).map(|m| m.len()).unwrap_or(0))
                .sum::<u64>();
        let now = SystemTime::now();
        let mut deleted = false;
        while let Some(oldest) = rotated.first().cloned() {
            let meta = std::fs::metadata(&oldest).map_err(|e| storage(&oldest, e))?;
            let too_old = self.limits.max_age.is_some_and(|age| {
                meta.modified()
                    .ok()
                    .and_then(|m| now.duration_since(m).ok())
                    .is_some_and(|d| d > age)
            });
            let too_many = rotated.len() > self.limits.rotations as usize;
            let too_big = total > self.limits.max_size;
            if !(too_old || too_many || too_big) {
                break;
            }
            std::fs::remove_file(&oldest).map_err(|e| storage(&oldest, e))?;
            tracing::info!(file = %oldest.display(), "history: rotated file deleted by retention");
            total = total.saturating_sub(meta.len());
            rotated.remove(0);
            deleted = true;
        }
        if deleted {
            sync_dir(&self.dir)?;
        }
        Ok(())
    }
}

fn sync_dir(dir: &Path) -> Result<(), JournalError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| storage(dir, e))
}

/// `YYYYMMDDTHHMMSSZ`, UTC, as sealed segment files are named.
fn rotation_stamp(t: SystemTime) -> String {
    let ms = t
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0);
    crate::sealed::utc_stamp(ms)
}

/// Rotated files, oldest first.
fn rotated_files(dir: &Path) -> Result<Vec<PathBuf>, JournalError> {
    let mut out = Vec::new();
    let rd = match std::fs::read_dir(dir) {
        Ok(rd) => rd,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
        Err(e) => return Err(storage(dir, e)),
    };
    for entry in rd {
        let entry = entry.map_err(|e| storage(dir, e))?;
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if name.starts_with("history.") {
            out.push(entry.path());
        }
    }
    // In the order written: by the last sequence in the name.
    out.sort_by_key(|p| {
        let name = p
            .file_name()
            .unwrap_or_default()
            .to_string_lossy()
            .to_string();
        let seq: u64 = name
            .rsplit('.')
            .next()
            .and_then(|n| n.parse().ok())
            .unwrap_or(0);
        (seq, name)
    });
    Ok(out)
}

/// A file of the store as a reader lists it: the current one is opened
/// while listing, so that a rotation meanwhile (a rename) cannot hide it.
struct Listed {
    path: PathBuf,
    file: Option<File>,
    current: bool,
}

/// The store's files, oldest first, the current one last and already open.
/// The current file is opened *before* the rotated ones are listed: if it
/// is rotated in between, it shows in the list too, and that entry (the
/// same inode) is dropped, so each record is read once.
fn listing(dir: &Path) -> Result<Vec<Listed>, JournalError> {
    use std::os::unix::fs::MetadataExt;
    let current_path = dir.join(CURRENT);
    let current = match File::open(&current_path) {
        Ok(f) => Some(f),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Err(storage(&current_path, e)),
    };
    let current_ino = match &current {
        Some(f) => Some(f.metadata().map_err(|e| storage(&current_path, e))?.ino()),
        None => None,
    };
    let mut out: Vec<Listed> = Vec::new();
    for path in rotated_files(dir)? {
        let same = current_ino.is_some()
            && std::fs::metadata(&path).is_ok_and(|m| Some(m.ino()) == current_ino);
        if !same {
            out.push(Listed {
                path,
                file: None,
                current: false,
            });
        }
    }
    if let Some(f) = current {
        out.push(Listed {
            path: current_path,
            file: Some(f),
            current: true,
        });
    }
    Ok(out)
}

/// The files of the store, oldest first (the current one last).
pub fn files(dir: &Path) -> Result<Vec<PathBuf>, JournalError> {
    let mut out = rotated_files(dir)?;
    let current = dir.join(CURRENT);
    if current.exists() {
        out.push(current);
    }
    Ok(out)
}

/// The length of the longest prefix of whole, intact records of events up to
/// `durable_seq`. Scans forwards: used once, at open.
fn durable_prefix(file: &mut File, durable_seq: u64) -> std::io::Result<(u64, u64)> {
    file.seek(SeekFrom::Start(0))?;
    let len = file.metadata()?.len();
    let mut r = std::io::BufReader::with_capacity(1 << 20, &mut *file);
    let mut pos = 0u64;
    let mut last = 0u64;
    loop {
        match read_frame_forward(&mut r, len - pos, None) {
            Ok(Some((Some(rec), n))) if rec.seq <= durable_seq => {
                pos += n;
                last = last.max(rec.seq);
            }
            _ => return Ok((pos, last)),
        }
    }
}

/// Reads one frame; `None` at a clean end. An error for a torn or corrupt
/// frame.
fn read_frame_forward(
    r: &mut impl Read,
    left: u64,
    want: Option<&Want>,
) -> Result<Option<(Option<JobView>, u64)>, String> {
    if left == 0 {
        return Ok(None);
    }
    if left < FRAME {
        return Err(format!("{left} bytes of a torn record at the end"));
    }
    let mut len = [0u8; 4];
    r.read_exact(&mut len).map_err(|e| e.to_string())?;
    let n = u32::from_le_bytes(len);
    if n > MAX_RECORD || u64::from(n) + FRAME > left {
        return Err(format!("record length {n} does not fit"));
    }
    let mut body = vec![0u8; n as usize + 8];
    r.read_exact(&mut body).map_err(|e| e.to_string())?;
    let (body, tail) = body.split_at(n as usize);
    let crc = u32::from_le_bytes(tail[..4].try_into().expect("4 bytes"));
    let len2 = u32::from_le_bytes(tail[4..].try_into().expect("4 bytes"));
    if len2 != n || crc != crc32fast::hash(body) {
        return Err("record checksum or length does not match".into());
    }
    Ok(Some((decode_body(body, want)?, u64::from(n) + FRAME)))
}

/// Which jobs a reader wants, by id: the others are skipped after decoding
/// only their id (`condor_history 8.319` scans every record).
pub type Want = std::sync::Arc<dyn Fn(pilotq_wire::JobId) -> bool + Send + Sync>;

/// A record's body, or `None` when `want` says to skip it.
fn decode_body(body: &[u8], want: Option<&Want>) -> Result<Option<JobView>, String> {
    if let Some(want) = want {
        /// Just the id: the rest of the map is skipped, nothing allocated.
        #[derive(serde::Deserialize)]
        struct IdOnly {
            id: pilotq_wire::JobId,
        }
        let peek: IdOnly = rmp_serde::from_slice(body).map_err(|e| e.to_string())?;
        if !want(peek.id) {
            return Ok(None);
        }
    }
    rmp_serde::from_slice(body)
        .map(Some)
        .map_err(|e| e.to_string())
}

/// Whether the file's first `end` bytes end with a whole record (its two
/// lengths agree).
fn ends_on_record(file: &mut File, end: u64) -> bool {
    if end == 0 {
        return true;
    }
    if end < FRAME {
        return false;
    }
    let mut read_u32 = |at: u64| -> Option<u32> {
        let mut b = [0u8; 4];
        file.seek(SeekFrom::Start(at)).ok()?;
        file.read_exact(&mut b).ok()?;
        Some(u32::from_le_bytes(b))
    };
    let Some(n) = read_u32(end - 4) else {
        return false;
    };
    if n > MAX_RECORD || u64::from(n) + FRAME > end {
        return false;
    }
    read_u32(end - FRAME - u64::from(n)) == Some(n)
}

/// Which records a reader sees.
#[derive(Debug, Clone, Copy)]
pub struct ReadBound {
    /// Only records of events up to this sequence (durable ones).
    pub max_seq: u64,
    /// The current file is read up to this length (what the writer has
    /// committed); `None`: as far as whole records go.
    pub current_len: Option<u64>,
}

impl ReadBound {
    pub fn everything() -> ReadBound {
        ReadBound {
            max_seq: u64::MAX,
            current_len: None,
        }
    }
}

/// Records newest first, across the current file and its rotations.
pub struct Backwards {
    files: Vec<Listed>,
    bound: ReadBound,
    want: Option<Want>,
    cur: Option<BackFile>,
}

struct BackFile {
    path: PathBuf,
    file: File,
    /// `buf` holds the file's bytes `[buf_start, cursor)`.
    buf: Vec<u8>,
    buf_start: u64,
    cursor: u64,
}

impl Backwards {
    pub fn open(dir: &Path, bound: ReadBound) -> Result<Backwards, JournalError> {
        Ok(Backwards {
            files: listing(dir)?,
            bound,
            want: None,
            cur: None,
        })
    }

    /// Only records of jobs `want` names.
    pub fn only(mut self, want: Want) -> Backwards {
        self.want = Some(want);
        self
    }

    fn next_file(&mut self) -> Result<bool, JournalError> {
        let Some(listed) = self.files.pop() else {
            return Ok(false);
        };
        let (path, is_current) = (listed.path, listed.current);
        let opened = match listed.file {
            Some(f) => Ok(f),
            None => File::open(&path),
        };
        let mut file = match opened {
            Ok(f) => f,
            // Deleted by retention since it was listed: older files go too.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                self.files.clear();
                return Ok(false);
            }
            Err(e) => return Err(storage(&path, e)),
        };
        let len = file.metadata().map_err(|e| storage(&path, e))?.len();
        let end = match (is_current, self.bound.current_len) {
            // The writer's committed length ends on a record, unless the
            // file was rotated since it was read: then look for the end.
            (true, Some(n)) if ends_on_record(&mut file, n.min(len)) => n.min(len),
            (true, _) => {
                durable_prefix(&mut file, u64::MAX)
                    .map_err(|e| storage(&path, e))?
                    .0
            }
            (false, _) => len,
        };
        self.cur = Some(BackFile {
            path,
            file,
            buf: Vec::new(),
            buf_start: end,
            cursor: end,
        });
        Ok(true)
    }
}

impl BackFile {
    /// Makes the `need` bytes before the cursor available in `buf`.
    fn want(&mut self, need: u64) -> std::io::Result<()> {
        if self.cursor - self.buf_start >= need {
            return Ok(());
        }
        let from = self.cursor.saturating_sub(need.max(BLOCK));
        let mut more = vec![0u8; (self.buf_start - from) as usize];
        self.file.seek(SeekFrom::Start(from))?;
        self.file.read_exact(&mut more)?;
        let keep = (self.cursor - self.buf_start) as usize;
        more.extend_from_slice(&self.buf[..keep]);
        self.buf = more;
        self.buf_start = from;
        Ok(())
    }

    /// The record before the cursor: `Some(None)` when `want` skips it.
    fn prev(&mut self, want: Option<&Want>) -> Result<Option<Option<JobView>>, String> {
        if self.cursor == 0 {
            return Ok(None);
        }
        if self.cursor < FRAME {
            return Err(format!("{} stray bytes at the start", self.cursor));
        }
        self.want(8).map_err(|e| e.to_string())?;
        let at = |b: &Vec<u8>, i: usize| u32::from_le_bytes(b[i..i + 4].try_into().expect("4"));
        let end = (self.cursor - self.buf_start) as usize;
        let n = at(&self.buf, end - 4);
        let crc = at(&self.buf, end - 8);
        if n > MAX_RECORD || u64::from(n) + FRAME > self.cursor {
            return Err(format!("record length {n} before offset {}", self.cursor));
        }
        self.want(u64::from(n) + FRAME).map_err(|e| e.to_string())?;
        let end = (self.cursor - self.buf_start) as usize;
        let start = end - n as usize - FRAME as usize;
        let body = &self.buf[start + 4..start + 4 + n as usize];
        if at(&self.buf, start) != n || crc32fast::hash(body) != crc {
            return Err(format!("corrupt record before offset {}", self.cursor));
        }
        let rec = decode_body(body, want)?;
        self.cursor -= u64::from(n) + FRAME;
        // Keep the buffer from growing without end.
        self.buf.truncate(start);
        Ok(Some(rec))
    }
}

impl Iterator for Backwards {
    type Item = Result<JobView, JournalError>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if self.cur.is_none() {
                match self.next_file() {
                    Ok(true) => {}
                    Ok(false) => return None,
                    Err(e) => return Some(Err(e)),
                }
            }
            let f = self.cur.as_mut().expect("just opened");
            match f.prev(self.want.as_ref()) {
                Ok(Some(None)) => continue,
                Ok(Some(Some(rec))) if rec.seq > self.bound.max_seq => continue,
                Ok(Some(Some(rec))) => return Some(Ok(rec)),
                Ok(None) => self.cur = None,
                Err(e) => {
                    let path = f.path.clone();
                    self.cur = None;
                    self.files.clear();
                    return Some(Err(storage(&path, e)));
                }
            }
        }
    }
}

/// Records oldest first.
pub struct Forwards {
    files: std::vec::IntoIter<Listed>,
    bound: ReadBound,
    want: Option<Want>,
    /// The file being read, whether it is the current one, what is left.
    cur: Option<(PathBuf, bool, std::io::BufReader<File>, u64)>,
}

impl Forwards {
    pub fn open(dir: &Path, bound: ReadBound) -> Result<Forwards, JournalError> {
        Ok(Forwards {
            files: listing(dir)?.into_iter(),
            bound,
            want: None,
            cur: None,
        })
    }

    /// Only records of jobs `want` names.
    pub fn only(mut self, want: Want) -> Forwards {
        self.want = Some(want);
        self
    }
}

impl Iterator for Forwards {
    type Item = Result<JobView, JournalError>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if self.cur.is_none() {
                let listed = self.files.next()?;
                let (path, is_current) = (listed.path, listed.current);
                let opened = match listed.file {
                    Some(f) => Ok(f),
                    None => File::open(&path),
                };
                let file = match opened {
                    Ok(f) => f,
                    // Deleted by retention since it was listed.
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                    Err(e) => return Some(Err(storage(&path, e))),
                };
                let len = match file.metadata() {
                    Ok(m) => m.len(),
                    Err(e) => return Some(Err(storage(&path, e))),
                };
                let left = match (is_current, self.bound.current_len) {
                    (true, Some(n)) => n.min(len),
                    _ => len,
                };
                self.cur = Some((
                    path,
                    is_current,
                    std::io::BufReader::with_capacity(1 << 20, file),
                    left,
                ));
            }
            let (path, is_current, r, left) = self.cur.as_mut().expect("just opened");
            let is_current = *is_current;
            match read_frame_forward(r, *left, self.want.as_ref()) {
                Ok(Some((None, n))) => *left -= n,
                Ok(Some((Some(rec), n))) => {
                    *left -= n;
                    if rec.seq > self.bound.max_seq {
                        continue;
                    }
                    return Some(Ok(rec));
                }
                Ok(None) => self.cur = None,
                // The current file's end may be a record being written (or,
                // rotated since the bound was read, a shorter new file):
                // nothing committed within the bound is there.
                Err(_) if is_current => self.cur = None,
                Err(e) => {
                    let path = path.clone();
                    self.cur = None;
                    return Some(Err(storage(&path, e)));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pilotq_wire::{JobId, JobStatus, Resources};

    fn rec(cluster: u64, proc: u32, seq: u64) -> JobView {
        JobView {
            id: JobId::new(cluster, proc),
            status: JobStatus::Completed,
            attempts: 1,
            exit_code: Some(proc as i32 % 7),
            signal: None,
            holder: None,
            hold_reason: None,
            owner: "alice".into(),
            cmd: "/home/alice/pilot.sh".into(),
            arguments: vec!["--queue".into(), "alice".into()],
            priority: 0,
            request: Resources::new(1, 2000, 1000),
            submitted_at: 1_700_000_000_000,
            entered_status_at: 1_700_000_100_000,
            started_at: Some(1_700_000_050_000),
            attributes: [("GridResource".to_string(), "\"batch pilotq\"".to_string())]
                .into_iter()
                .collect(),
            completed_at: Some(1_700_000_100_000),
            num_starts: 1,
            last_holder: Some("worker-0042".into()),
            seq,
        }
    }

    /// A writer whose store holds `files` files of 64 KiB: the current one
    /// and `files - 1` rotated.
    fn writer_of_files(dir: &Path, files: u64) -> (HistoryWriter, HistoryLimits) {
        let limits = HistoryLimits {
            max_size: files * (64 << 10),
            rotations: files as u32 - 1,
            max_age: None,
        };
        (HistoryWriter::open(dir, u64::MAX, limits).unwrap(), limits)
    }

    fn ids(it: impl Iterator<Item = Result<JobView, JournalError>>) -> Vec<u32> {
        it.map(|r| r.unwrap().id.proc).collect()
    }

    #[test]
    fn records_read_back_newest_first_and_oldest_first_across_rotations() {
        let dir = tempfile::tempdir().unwrap();
        let (mut w, _) = writer_of_files(dir.path(), 40);
        for p in 0..3000u32 {
            w.add(&rec(1, p, u64::from(p) + 1)).unwrap();
            if p % 100 == 99 {
                w.commit().unwrap();
            }
        }
        w.commit().unwrap();
        assert!(rotated_files(dir.path()).unwrap().len() >= 2, "it rotated");
        let back = ids(Backwards::open(dir.path(), ReadBound::everything()).unwrap());
        assert_eq!(back, (0..3000).rev().collect::<Vec<_>>());
        let fwd = ids(Forwards::open(dir.path(), ReadBound::everything()).unwrap());
        assert_eq!(fwd, (0..3000).collect::<Vec<_>>());
        assert_eq!(
            Backwards::open(dir.path(), ReadBound::everything())
                .unwrap()
                .next()
                .unwrap()
                .unwrap(),
            rec(1, 2999, 3000)
        );
    }

    #[test]
    fn retention_deletes_the_oldest_rotations_first() {
        let dir = tempfile::tempdir().unwrap();
        let (mut w, limits) = writer_of_files(dir.path(), 3);
        for p in 0..5000u32 {
            w.add(&rec(1, p, u64::from(p) + 1)).unwrap();
            if p % 50 == 49 {
                w.commit().unwrap();
            }
        }
        w.commit().unwrap();
        let rotated = rotated_files(dir.path()).unwrap();
        assert!(rotated.len() <= 2, "{rotated:?}");
        let total: u64 = files(dir.path())
            .unwrap()
            .iter()
            .map(|p| std::fs::metadata(p).unwrap().len())
            .sum();
        // The bound, plus at most one commit past a full current file.
        assert!(total <= limits.max_size + (64 << 10), "{total}");
        let back = ids(Backwards::open(dir.path(), ReadBound::everything()).unwrap());
        // The newest are kept, contiguous, down to where deletion cut.
        assert_eq!(back[0], 4999);
        assert!(back.windows(2).all(|w| w[0] == w[1] + 1));
        assert!(*back.last().unwrap() > 0, "the oldest went");
    }

    #[test]
    fn open_cuts_a_torn_tail_and_records_past_the_durable_journal() {
        let dir = tempfile::tempdir().unwrap();
        let mut w = HistoryWriter::open(dir.path(), u64::MAX, HistoryLimits::default()).unwrap();
        for p in 0..10u32 {
            w.add(&rec(1, p, u64::from(p) + 1)).unwrap();
        }
        w.commit().unwrap();
        drop(w);
        // Half a record, as a crash mid-write leaves it.
        let path = dir.path().join(CURRENT);
        let mut f = OpenOptions::new().append(true).open(&path).unwrap();
        f.write_all(&[200, 0, 0, 0, 1, 2, 3]).unwrap();
        drop(f);
        // A reader stops at whole records.
        assert_eq!(
            ids(Forwards::open(dir.path(), ReadBound::everything()).unwrap()).len(),
            10
        );
        assert_eq!(
            ids(Backwards::open(dir.path(), ReadBound::everything()).unwrap()).len(),
            10
        );
        // The journal's last durable event is 7: records 8..10 go.
        let mut w = HistoryWriter::open(dir.path(), 7, HistoryLimits::default()).unwrap();
        assert_eq!(
            ids(Backwards::open(dir.path(), ReadBound::everything()).unwrap()),
            [6, 5, 4, 3, 2, 1, 0]
        );
        w.add(&rec(2, 0, 8)).unwrap();
        w.commit().unwrap();
        let fwd: Vec<_> = Forwards::open(dir.path(), ReadBound::everything())
            .unwrap()
            .map(|r| r.unwrap().id)
            .collect();
        assert_eq!(fwd.len(), 8);
        assert_eq!(fwd[7], JobId::new(2, 0));
        // A bound hides records of events not yet durable.
        let bound = ReadBound {
            max_seq: 5,
            current_len: None,
        };
        assert_eq!(ids(Backwards::open(dir.path(), bound).unwrap()).len(), 5);
    }

    #[test]
    fn a_corrupt_record_is_an_error_naming_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let (mut w, _) = writer_of_files(dir.path(), 2);
        for p in 0..600u32 {
            w.add(&rec(1, p, u64::from(p) + 1)).unwrap();
            w.commit().unwrap();
        }
        let rotated = rotated_files(dir.path()).unwrap();
        let victim = rotated.last().unwrap().clone();
        let mut bytes = std::fs::read(&victim).unwrap();
        let mid = bytes.len() / 2;
        bytes[mid] ^= 0xff;
        std::fs::write(&victim, bytes).unwrap();
        let errs: Vec<String> = Backwards::open(dir.path(), ReadBound::everything())
            .unwrap()
            .filter_map(|r| r.err().map(|e| e.to_string()))
            .collect();
        assert_eq!(errs.len(), 1, "{errs:?}");
        assert!(errs[0].contains(&victim.display().to_string()), "{errs:?}");
    }

    #[test]
    fn a_reader_listed_before_a_rotation_reads_every_record_once() {
        let dir = tempfile::tempdir().unwrap();
        let (mut w, limits) = writer_of_files(dir.path(), 40);
        let mut p = 0u32;
        // Fill the current file to its share, committed.
        while w.len < limits.file_size() {
            w.add(&rec(1, p, u64::from(p) + 1)).unwrap();
            w.commit().unwrap();
            p += 1;
        }
        let before = p;
        let fwd = Forwards::open(dir.path(), ReadBound::everything()).unwrap();
        let back = Backwards::open(dir.path(), ReadBound::everything()).unwrap();
        // The next commit rotates: the file the readers hold is renamed.
        w.add(&rec(1, p, u64::from(p) + 1)).unwrap();
        w.commit().unwrap();
        assert!(!rotated_files(dir.path()).unwrap().is_empty());
        assert_eq!(ids(fwd), (0..before).collect::<Vec<_>>());
        assert_eq!(ids(back), (0..before).rev().collect::<Vec<_>>());
        // Listed afresh: the rotated file and the new one, each once.
        let all = ids(Forwards::open(dir.path(), ReadBound::everything()).unwrap());
        assert_eq!(all, (0..=before).collect::<Vec<_>>());
    }

    #[test]
    fn only_the_wanted_jobs_are_read() {
        let dir = tempfile::tempdir().unwrap();
        let mut w = HistoryWriter::open(dir.path(), u64::MAX, HistoryLimits::default()).unwrap();
        for p in 0..100u32 {
            w.add(&rec(1 + u64::from(p % 3), p, u64::from(p) + 1))
                .unwrap();
        }
        w.commit().unwrap();
        let want: Want = std::sync::Arc::new(|id: JobId| id.cluster.0 == 2 && id.proc < 50);
        let back = ids(Backwards::open(dir.path(), ReadBound::everything())
            .unwrap()
            .only(want.clone()));
        let expect: Vec<u32> = (0..50).filter(|p| p % 3 == 1).collect();
        assert_eq!(back, expect.iter().rev().copied().collect::<Vec<_>>());
        let fwd = ids(Forwards::open(dir.path(), ReadBound::everything())
            .unwrap()
            .only(want));
        assert_eq!(fwd, expect);
    }

    #[test]
    fn rotation_names_sort_by_time() {
        assert_eq!(
            rotation_stamp(SystemTime::UNIX_EPOCH + Duration::from_secs(1_795_319_360)),
            "20261122T034920Z"
        );
    }
}
