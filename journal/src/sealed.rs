//! Sealed segment files: events moved out of sled once snapshots cover them,
//! into immutable, compressed files in `<journal dir>/sealed/` that any tool
//! can read while a master holds the sled database (no lock is taken here).
//!
//! A file's name gives what it holds, so that a listing needs no reads:
//! `events-<first>-<last>-<first time>-<last time>.seg`, sequences zero-padded
//! to 20 digits and times in UTC (`20261203T144245Z`), the envelope times
//! (`Envelope::t`) of its first and last event.
//!
//! Its content (integers little-endian):
//!
//! | bytes | what |
//! |---|---|
//! | 0..8 | magic `PQSEALED` |
//! | 8..12 | this layout's version ([`SEALED_VERSION`]) |
//! | 12..16 | length of the blob list that follows the header |
//! | 16..56 | first, last, event count, first and last event time (unix ms) |
//! | 56..64 | uncompressed body length |
//! | 64..72 | compressed body length |
//! | 72..76 | crc32 of the compressed body |
//! | 76..80 | crc32 of bytes 0..76 and the blob list |
//! | 80.. | the blob list: a msgpack array of the sha256 hashes the events reference |
//! | then | the body: zstd of a named-msgpack array of envelopes, exactly the bytes sled's segments hold, so [`decode_segment`] decodes it |
//!
//! Why a blob list in the header: a blob collector must know which blobs the
//! kept events still reference, and that must not cost decompressing months
//! of events ([`SealedDir::referenced_blobs`]).
//!
//! A file is written under a temporary name (a leading `.`, never listed),
//! synced, renamed into place and its directory synced: a reader sees a whole
//! file or none. A file that fails its checks is an error naming it, never
//! skipped: a silent hole in the record is worse than a refusal.

use crate::error::JournalError;
use crate::event::{Envelope, Event};
use crate::store::decode_segment;
use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The folder, inside the journal directory, that holds sealed files.
pub const SEALED_DIR: &str = "sealed";
/// Version of the file layout above (not of the events: those carry theirs).
pub const SEALED_VERSION: u32 = 1;
/// A file holds about this many uncompressed bytes at most: bigger ranges
/// become several files, so a reader never needs more than one such body and
/// retention frees space in steps of a bounded size.
pub const MAX_FILE_BODY: usize = 64 << 20;

const MAGIC: &[u8; 8] = b"PQSEALED";
const HEADER_LEN: usize = 80;
/// zstd's level: 3, its default. It shrinks a typical journal about 10x, to
/// some 26 bytes a job (`journal/tests/sealed_size.rs`), well under the
/// 100-byte target, at a speed that keeps the sealer far ahead of the
/// writer; the layout does not depend on it.
const ZSTD_LEVEL: i32 = 3;
/// No honest file claims more: a corrupt length is refused before anything
/// is allocated for it.
const MAX_CLAIMED_BODY: u64 = 1 << 32;

/// One sealed file, as its name and size describe it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SegmentFile {
    pub name: String,
    pub path: PathBuf,
    pub first: u64,
    pub last: u64,
    /// Times of its first and last event (unix ms, to the second: from the
    /// name).
    pub first_ms: u64,
    pub last_ms: u64,
    /// Bytes on disk.
    pub bytes: u64,
}

impl SegmentFile {
    pub fn events(&self) -> u64 {
        self.last - self.first + 1
    }
}

/// How long sealed files are kept. Retention deletes the oldest files first,
/// and never one holding events after the oldest kept snapshot (a replay
/// needs them): see [`SealedDir::retire`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Retention {
    /// Files whose last event is older than this go; `None`: kept forever.
    pub keep_age: Option<Duration>,
    /// The oldest files go while all of them together take more bytes than
    /// this; `None`: no bound.
    pub keep_bytes: Option<u64>,
}

/// The default age kept: 30 days of post-mortem record.
pub const DEFAULT_KEEP_AGE: Duration = Duration::from_secs(30 * 24 * 3600);

impl Default for Retention {
    fn default() -> Self {
        Retention {
            keep_age: Some(DEFAULT_KEEP_AGE),
            keep_bytes: None,
        }
    }
}

/// The sealed files of a journal, listed once at [`SealedDir::open`].
#[derive(Debug, Clone)]
pub struct SealedDir {
    dir: PathBuf,
    files: Vec<SegmentFile>,
}

impl SealedDir {
    /// Lists the sealed files of the journal at `journal_dir` (none if it has
    /// no `sealed` folder). Opens no database: safe while a master runs.
    /// Two files whose ranges overlap are an error naming both.
    pub fn open(journal_dir: &Path) -> Result<SealedDir, JournalError> {
        let dir = journal_dir.join(SEALED_DIR);
        let mut files = Vec::new();
        let entries = match std::fs::read_dir(&dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Ok(SealedDir { dir, files })
            }
            Err(e) => return Err(io_error(&dir, "cannot list", e)),
        };
        for entry in entries {
            let entry = entry.map_err(|e| io_error(&dir, "cannot list", e))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            // Temporary files (a seal in progress, or one a crash cut
            // short) and anything else are not part of the journal.
            let Some((first, last, first_ms, last_ms)) = parse_name(&name) else {
                continue;
            };
            let bytes = entry
                .metadata()
                .map_err(|e| io_error(&entry.path(), "cannot stat", e))?
                .len();
            files.push(SegmentFile {
                path: entry.path(),
                name,
                first,
                last,
                first_ms,
                last_ms,
                bytes,
            });
        }
        files.sort_by_key(|f| f.first);
        for pair in files.windows(2) {
            if pair[1].first <= pair[0].last {
                return Err(JournalError::Sealed {
                    file: pair[1].path.display().to_string(),
                    reason: format!("its events overlap those of {}", pair[0].name),
                });
            }
        }
        Ok(SealedDir { dir, files })
    }

    /// The folder the files are in.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The files, oldest first.
    pub fn segments(&self) -> &[SegmentFile] {
        &self.files
    }

    /// The first sealed event, if any.
    pub fn first_seq(&self) -> Option<u64> {
        self.files.first().map(|f| f.first)
    }

    /// The last sealed event, if any.
    pub fn last_seq(&self) -> Option<u64> {
        self.files.last().map(|f| f.last)
    }

    /// Sealed events (counted from the names).
    pub fn event_count(&self) -> u64 {
        self.files.iter().map(SegmentFile::events).sum()
    }

    /// Bytes the files take on disk.
    pub fn total_bytes(&self) -> u64 {
        self.files.iter().map(|f| f.bytes).sum()
    }

    /// Every blob hash the sealed events reference (executables, job
    /// wrappers, kept outputs), read from the headers only.
    pub fn referenced_blobs(&self) -> Result<BTreeSet<String>, JournalError> {
        let mut all = BTreeSet::new();
        for f in &self.files {
            let mut file =
                std::fs::File::open(&f.path).map_err(|e| io_error(&f.path, "cannot open", e))?;
            let mut head = [0u8; HEADER_LEN];
            file.read_exact(&mut head)
                .map_err(|e| corrupt(f, format!("cannot read its header: {e}")))?;
            let header = Header::parse(f, &head)?;
            let mut blobs = vec![0u8; header.blobs_len as usize];
            file.read_exact(&mut blobs)
                .map_err(|e| corrupt(f, format!("cannot read its blob list: {e}")))?;
            header.check_head(f, &head, &blobs)?;
            all.extend(decode_blobs(f, &blobs)?);
        }
        Ok(all)
    }

    /// Events from `from` on, in order, each once. Files before `from` are
    /// not opened. A file missing between two others is an error naming the
    /// missing range, and reading stops at any error.
    pub fn events_from(&self, from: u64) -> SealedEvents {
        let files: Vec<SegmentFile> = self
            .files
            .iter()
            .filter(|f| f.last >= from)
            .cloned()
            .collect();
        SealedEvents {
            files: files.into_iter(),
            current: None,
            from,
            next: None,
            done: false,
        }
    }

    /// The whole uncompressed body of each file from `from` on, checked:
    /// `(first, last, bytes)` as sled's segments are (see
    /// [`crate::Store::segments_from`]).
    pub fn bodies_from(
        &self,
        from: u64,
    ) -> impl Iterator<Item = Result<(u64, u64, Vec<u8>), JournalError>> {
        let files: Vec<SegmentFile> = self
            .files
            .iter()
            .filter(|f| f.last >= from)
            .cloned()
            .collect();
        let mut next: Option<u64> = None;
        files.into_iter().map(move |f| {
            if let Some(n) = next {
                if f.first != n {
                    return Err(JournalError::Gap {
                        first: n,
                        last: f.first - 1,
                    });
                }
            }
            next = Some(f.last + 1);
            let (_, mut body) = open_checked(&f)?;
            let mut out = Vec::new();
            body.read_to_end(&mut out)
                .map_err(|e| corrupt(&f, format!("its body does not decompress: {e}")))?;
            Ok((f.first, f.last, out))
        })
    }

    /// Deletes the oldest files that `keep` no longer keeps, but only files
    /// whose events all lie at or before `deletable_through` (the oldest
    /// kept snapshot: a replay needs every event after it). Only a prefix
    /// goes, so what stays has no hole. Returns the files deleted.
    pub fn retire(
        &mut self,
        keep: &Retention,
        now_ms: u64,
        deletable_through: u64,
    ) -> Result<Vec<SegmentFile>, JournalError> {
        let mut total = self.total_bytes();
        let mut n = 0;
        for f in &self.files {
            if f.last > deletable_through {
                break;
            }
            let too_old = keep
                .keep_age
                .is_some_and(|age| now_ms.saturating_sub(f.last_ms) > age.as_millis() as u64);
            let too_big = keep.keep_bytes.is_some_and(|max| total > max);
            if !(too_old || too_big) {
                break;
            }
            total -= f.bytes;
            n += 1;
        }
        let gone: Vec<SegmentFile> = self.files.drain(..n).collect();
        for f in &gone {
            std::fs::remove_file(&f.path).map_err(|e| io_error(&f.path, "cannot delete", e))?;
        }
        if !gone.is_empty() {
            sync_dir(&self.dir)?;
        }
        Ok(gone)
    }

    /// Deletes temporary files left by a seal a crash cut short. Only the
    /// journal's holder may call it (another process could be sealing).
    pub(crate) fn remove_temporaries(&self) -> Result<usize, JournalError> {
        let entries = match std::fs::read_dir(&self.dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
            Err(e) => return Err(io_error(&self.dir, "cannot list", e)),
        };
        let mut n = 0;
        for entry in entries {
            let entry = entry.map_err(|e| io_error(&self.dir, "cannot list", e))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.starts_with(TEMP_PREFIX) {
                std::fs::remove_file(entry.path())
                    .map_err(|e| io_error(&entry.path(), "cannot delete", e))?;
                n += 1;
            }
        }
        Ok(n)
    }
}

/// Iterator over sealed events: one file open at a time, its body decoded
/// as it is decompressed (a 64 MiB body is never held whole).
pub struct SealedEvents {
    files: std::vec::IntoIter<SegmentFile>,
    current: Option<FileEvents>,
    from: u64,
    /// The sequence the next event must have (a file must start there).
    next: Option<u64>,
    done: bool,
}

struct FileEvents {
    /// The file's events, decoded in one pass from its body in memory
    /// (msgpack read from a `Read` copies every string through a scratch
    /// buffer; from a slice it does not: `pilotq journal stats` spent a
    /// quarter of its time there).
    envs: std::vec::IntoIter<Envelope>,
    seq: u64,
}

/// The decompressed body, whole (at most `MAX_FILE_BODY`-ish bytes, bounded
/// by the header's checked length): msgpack decoding reads a few bytes at a
/// time, and reading them from a zstd stream cost most of `pilotq journal
/// stats`' time; from memory they are copies.
type Body = std::io::Cursor<Vec<u8>>;

impl Iterator for SealedEvents {
    type Item = Result<(u64, Envelope), JournalError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        let r = self.step();
        match &r {
            Some(Err(_)) => self.done = true,
            None => self.done = true,
            Some(Ok(_)) => {}
        }
        r
    }
}

impl SealedEvents {
    fn step(&mut self) -> Option<Result<(u64, Envelope), JournalError>> {
        loop {
            if let Some(cur) = &mut self.current {
                if let Some(env) = cur.envs.next() {
                    let seq = cur.seq;
                    cur.seq += 1;
                    if seq < self.from {
                        continue;
                    }
                    return Some(check_version(seq, env).map(|env| (seq, env)));
                }
                self.current = None;
                continue;
            }
            let f = self.files.next()?;
            if let Some(n) = self.next {
                if f.first != n {
                    return Some(Err(JournalError::Gap {
                        first: n,
                        last: f.first - 1,
                    }));
                }
            }
            self.next = Some(f.last + 1);
            match FileEvents::open(f) {
                Ok(fe) => self.current = Some(fe),
                Err(e) => return Some(Err(e)),
            }
        }
    }
}

impl FileEvents {
    fn open(file: SegmentFile) -> Result<FileEvents, JournalError> {
        let (header, body) = open_checked(&file)?;
        let body = body.into_inner();
        if body.len() as u64 != header.body_len {
            return Err(corrupt(
                &file,
                format!(
                    "its body is {} bytes, its header says {}",
                    body.len(),
                    header.body_len
                ),
            ));
        }
        let envs: Vec<Envelope> = rmp_serde::from_slice(&body)
            .map_err(|e| corrupt(&file, format!("its events do not decode: {e}")))?;
        if envs.len() as u64 != header.count {
            return Err(corrupt(
                &file,
                format!(
                    "its body holds {} events, its header says {}",
                    envs.len(),
                    header.count
                ),
            ));
        }
        Ok(FileEvents {
            seq: header.first,
            envs: envs.into_iter(),
        })
    }
}

fn check_version(seq: u64, env: Envelope) -> Result<Envelope, JournalError> {
    if env.v > crate::FORMAT_VERSION {
        return Err(JournalError::TooNew {
            seq,
            found: env.v,
            supported: crate::FORMAT_VERSION,
        });
    }
    Ok(env)
}

/// Reads a file whole, checks its header against its name and both
/// checksums, and returns a reader of its decompressed body.
fn open_checked(f: &SegmentFile) -> Result<(Header, Body), JournalError> {
    let bytes = std::fs::read(&f.path).map_err(|e| io_error(&f.path, "cannot read", e))?;
    if bytes.len() < HEADER_LEN {
        return Err(corrupt(
            f,
            format!("it is {} bytes, shorter than its header", bytes.len()),
        ));
    }
    let header = Header::parse(f, &bytes[..HEADER_LEN])?;
    let blobs_end = HEADER_LEN + header.blobs_len as usize;
    let expected = blobs_end as u64 + header.zbody_len;
    if bytes.len() as u64 != expected {
        return Err(corrupt(
            f,
            format!(
                "it is {} bytes, its header says {expected} (truncated?)",
                bytes.len()
            ),
        ));
    }
    header.check_head(f, &bytes[..HEADER_LEN], &bytes[HEADER_LEN..blobs_end])?;
    if crc32fast::hash(&bytes[blobs_end..]) != header.body_crc {
        return Err(corrupt(f, "its body fails its checksum".into()));
    }
    let mut bytes = bytes;
    let zbody = bytes.split_off(blobs_end);
    // One byte more than the header says: a body that decompresses longer
    // is caught (by `finish`) rather than cut to fit.
    let capacity = usize::try_from(header.body_len)
        .map_err(|_| corrupt(f, "its header claims an impossible size".into()))?
        .saturating_add(1);
    let body = zstd::bulk::decompress(&zbody, capacity)
        .map_err(|e| corrupt(f, format!("its body does not decompress: {e}")))?;
    Ok((header, std::io::Cursor::new(body)))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Header {
    blobs_len: u32,
    first: u64,
    last: u64,
    count: u64,
    first_ms: u64,
    last_ms: u64,
    body_len: u64,
    zbody_len: u64,
    body_crc: u32,
    head_crc: u32,
}

impl Header {
    fn encode(&self, blobs: &[u8]) -> [u8; HEADER_LEN] {
        let mut h = [0u8; HEADER_LEN];
        h[..8].copy_from_slice(MAGIC);
        h[8..12].copy_from_slice(&SEALED_VERSION.to_le_bytes());
        h[12..16].copy_from_slice(&self.blobs_len.to_le_bytes());
        for (i, v) in [
            self.first,
            self.last,
            self.count,
            self.first_ms,
            self.last_ms,
            self.body_len,
            self.zbody_len,
        ]
        .iter()
        .enumerate()
        {
            h[16 + 8 * i..24 + 8 * i].copy_from_slice(&v.to_le_bytes());
        }
        h[72..76].copy_from_slice(&self.body_crc.to_le_bytes());
        let head_crc = head_crc(&h, blobs);
        h[76..80].copy_from_slice(&head_crc.to_le_bytes());
        h
    }

    /// Parses a header and checks what it can without the blob list: the
    /// magic, the version, and that it says what the file's name says.
    fn parse(f: &SegmentFile, h: &[u8]) -> Result<Header, JournalError> {
        if &h[..8] != MAGIC {
            return Err(corrupt(
                f,
                "it is not a sealed journal file (bad magic)".into(),
            ));
        }
        let u32_at = |i: usize| u32::from_le_bytes(h[i..i + 4].try_into().expect("4 bytes"));
        let u64_at = |i: usize| u64::from_le_bytes(h[i..i + 8].try_into().expect("8 bytes"));
        let version = u32_at(8);
        if version != SEALED_VERSION {
            return Err(corrupt(
                f,
                format!("its layout version is {version}; this pilotq reads {SEALED_VERSION}"),
            ));
        }
        let header = Header {
            blobs_len: u32_at(12),
            first: u64_at(16),
            last: u64_at(24),
            count: u64_at(32),
            first_ms: u64_at(40),
            last_ms: u64_at(48),
            body_len: u64_at(56),
            zbody_len: u64_at(64),
            body_crc: u32_at(72),
            head_crc: u32_at(76),
        };
        if (header.first, header.last) != (f.first, f.last)
            || crate::store::span_len(header.first, header.last) != Some(header.count)
        {
            return Err(corrupt(
                f,
                format!(
                    "its header says events {}..={} ({} of them), its name {}..={}",
                    header.first, header.last, header.count, f.first, f.last
                ),
            ));
        }
        if header.body_len > MAX_CLAIMED_BODY || header.zbody_len > MAX_CLAIMED_BODY {
            return Err(corrupt(f, "its header claims an impossible size".into()));
        }
        Ok(header)
    }

    fn check_head(&self, f: &SegmentFile, h: &[u8], blobs: &[u8]) -> Result<(), JournalError> {
        if head_crc(h, blobs) != self.head_crc {
            return Err(corrupt(f, "its header fails its checksum".into()));
        }
        Ok(())
    }
}

fn head_crc(h: &[u8], blobs: &[u8]) -> u32 {
    let mut c = crc32fast::Hasher::new();
    c.update(&h[..76]);
    c.update(blobs);
    c.finalize()
}

fn decode_blobs(f: &SegmentFile, bytes: &[u8]) -> Result<Vec<String>, JournalError> {
    rmp_serde::from_slice(bytes).map_err(|e| corrupt(f, format!("its blob list: {e}")))
}

/// Events gathered for one sealed file: the raw elements of sled's segments,
/// concatenated (never re-encoded: the sealed record is byte for byte what
/// was journaled).
#[derive(Default)]
pub(crate) struct Batch {
    first: u64,
    last: u64,
    first_ms: u64,
    last_ms: u64,
    elements: Vec<u8>,
    blobs: BTreeSet<String>,
}

impl Batch {
    pub(crate) fn is_empty(&self) -> bool {
        self.elements.is_empty()
    }

    /// Uncompressed bytes gathered so far.
    pub(crate) fn len(&self) -> usize {
        self.elements.len()
    }

    pub(crate) fn events(&self) -> u64 {
        if self.is_empty() {
            0
        } else {
            self.last - self.first + 1
        }
    }

    /// The next sequence a segment must start at, if the batch has any.
    pub(crate) fn next_seq(&self) -> Option<u64> {
        (!self.is_empty()).then_some(self.last + 1)
    }

    /// Adds one stored sled entry (already decoded into `envs` by the
    /// caller, which checked that it holds `first..=last`).
    pub(crate) fn push(&mut self, first: u64, last: u64, raw: &[u8], envs: &[Envelope]) {
        if self.is_empty() {
            self.first = first;
            self.first_ms = envs.first().map_or(0, |e| e.t);
        }
        self.last = last;
        self.last_ms = envs.last().map_or(self.last_ms, |e| e.t);
        self.elements.extend_from_slice(array_elements(raw));
        for env in envs {
            referenced_blobs(&env.e, &mut self.blobs);
        }
    }

    /// Writes the batch as a sealed file in `dir` (created if needed):
    /// temporary name, sync, rename, directory sync.
    pub(crate) fn write(self, dir: &Path) -> Result<SegmentFile, JournalError> {
        std::fs::create_dir_all(dir).map_err(|e| io_error(dir, "cannot create", e))?;
        let count = self.last - self.first + 1;
        let mut body = Vec::with_capacity(self.elements.len() + 5);
        write_array_len(&mut body, count)?;
        body.extend_from_slice(&self.elements);
        debug_assert!(decode_segment(self.first, self.last, &body).is_ok());
        let zbody = zstd::bulk::compress(&body, ZSTD_LEVEL)
            .map_err(|e| JournalError::Storage(format!("compressing a sealed segment: {e}")))?;
        let blobs: Vec<&String> = self.blobs.iter().collect();
        let blob_bytes = rmp_serde::to_vec(&blobs).expect("strings always encode");
        let header = Header {
            blobs_len: u32::try_from(blob_bytes.len()).map_err(|_| {
                JournalError::Storage("a sealed segment's blob list is over 4 GiB".into())
            })?,
            first: self.first,
            last: self.last,
            count,
            first_ms: self.first_ms,
            last_ms: self.last_ms,
            body_len: body.len() as u64,
            zbody_len: zbody.len() as u64,
            body_crc: crc32fast::hash(&zbody),
            head_crc: 0,
        };
        let head = header.encode(&blob_bytes);
        let name = file_name(self.first, self.last, self.first_ms, self.last_ms);
        let path = dir.join(&name);
        let tmp = dir.join(format!("{TEMP_PREFIX}{name}.{}", std::process::id()));
        let written = (|| -> std::io::Result<u64> {
            let mut f = std::fs::File::create(&tmp)?;
            f.write_all(&head)?;
            f.write_all(&blob_bytes)?;
            f.write_all(&zbody)?;
            f.sync_all()?;
            Ok((head.len() + blob_bytes.len() + zbody.len()) as u64)
        })();
        let bytes = match written {
            Ok(n) => n,
            Err(e) => {
                // A full disk must not leave a half file behind.
                let _ = std::fs::remove_file(&tmp);
                return Err(io_error(&tmp, "cannot write", e));
            }
        };
        std::fs::rename(&tmp, &path).map_err(|e| {
            let _ = std::fs::remove_file(&tmp);
            io_error(&path, "cannot rename into place", e)
        })?;
        sync_dir(dir)?;
        Ok(SegmentFile {
            name,
            path,
            first: self.first,
            last: self.last,
            first_ms: self.first_ms / 1000 * 1000,
            last_ms: self.last_ms / 1000 * 1000,
            bytes,
        })
    }
}

/// Temporary files start with this: never listed as sealed files.
const TEMP_PREFIX: &str = ".tmp-";

/// The blobs an event references, by hash: what a blob collector must keep
/// while the event is kept.
pub fn referenced_blobs(e: &Event, out: &mut BTreeSet<String>) {
    match e {
        Event::ClusterSubmitted { spec, .. } => {
            out.insert(spec.executable.clone());
        }
        Event::JobAdopted { spec, wrapper, .. } => {
            if let Some(spec) = spec {
                out.insert(spec.executable.clone());
            }
            if let Some(w) = wrapper {
                out.insert(w.clone());
            }
        }
        Event::JobHeld { kept: Some(k), .. } => {
            out.extend(k.stdout.iter().cloned());
            out.extend(k.stderr.iter().cloned());
        }
        _ => {}
    }
}

/// The elements of a stored sled entry as raw bytes: a segment's array
/// without its header, or a format-1 single envelope whole.
fn array_elements(raw: &[u8]) -> &[u8] {
    match raw.first() {
        Some(0x90..=0x9f) => &raw[1..],
        Some(0xdc) => &raw[3.min(raw.len())..],
        Some(0xdd) => &raw[5.min(raw.len())..],
        _ => raw,
    }
}

fn write_array_len(out: &mut Vec<u8>, n: u64) -> Result<(), JournalError> {
    if n < 16 {
        out.push(0x90 | n as u8);
    } else if n <= u64::from(u16::MAX) {
        out.push(0xdc);
        out.extend_from_slice(&(n as u16).to_be_bytes());
    } else if n <= u64::from(u32::MAX) {
        out.push(0xdd);
        out.extend_from_slice(&(n as u32).to_be_bytes());
    } else {
        return Err(JournalError::Storage(format!(
            "{n} events do not fit one sealed segment"
        )));
    }
    Ok(())
}

fn sync_dir(dir: &Path) -> Result<(), JournalError> {
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| io_error(dir, "cannot sync", e))
}

fn io_error(path: &Path, what: &str, e: std::io::Error) -> JournalError {
    JournalError::Sealed {
        file: path.display().to_string(),
        reason: format!("{what}: {e}"),
    }
}

fn corrupt(f: &SegmentFile, reason: String) -> JournalError {
    JournalError::Sealed {
        file: f.path.display().to_string(),
        reason,
    }
}

/// `events-<first>-<last>-<t0>-<t1>.seg`.
pub fn file_name(first: u64, last: u64, first_ms: u64, last_ms: u64) -> String {
    format!(
        "events-{first:020}-{last:020}-{}-{}.seg",
        utc_stamp(first_ms),
        utc_stamp(last_ms)
    )
}

/// The sequences and times (ms, to the second) a file's name gives; `None`
/// for any other name.
pub fn parse_name(name: &str) -> Option<(u64, u64, u64, u64)> {
    let rest = name.strip_prefix("events-")?.strip_suffix(".seg")?;
    let mut parts = rest.split('-');
    let (a, b, c, d) = (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() || a.len() != 20 || b.len() != 20 {
        return None;
    }
    let digits = |s: &str| s.bytes().all(|c| c.is_ascii_digit());
    if !digits(a) || !digits(b) {
        return None;
    }
    let (first, last) = (a.parse().ok()?, b.parse().ok()?);
    if last < first {
        return None;
    }
    Some((first, last, parse_utc_stamp(c)?, parse_utc_stamp(d)?))
}

/// `YYYYMMDDTHHMMSSZ` of unix milliseconds.
pub fn utc_stamp(ms: u64) -> String {
    let secs = ms / 1000;
    let (days, rem) = (secs / 86_400, secs % 86_400);
    let (y, m, d) = pilotq_wire::time_format::civil_from_days(days as i64);
    format!(
        "{y:04}{m:02}{d:02}T{:02}{:02}{:02}Z",
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    )
}

fn parse_utc_stamp(s: &str) -> Option<u64> {
    let b = s.as_bytes();
    if b.len() != 16 || b[8] != b'T' || b[15] != b'Z' {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<u64> {
        let t = &s[r];
        t.bytes()
            .all(|c| c.is_ascii_digit())
            .then(|| t.parse().ok())?
    };
    let (y, mo, d) = (num(0..4)?, num(4..6)?, num(6..8)?);
    let (h, mi, se) = (num(9..11)?, num(11..13)?, num(13..15)?);
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || se > 60 {
        return None;
    }
    let days = days_from_civil(y as i64, mo as u32, d as u32);
    let secs = u64::try_from(days).ok()? * 86_400 + h * 3600 + mi * 60 + se;
    Some(secs * 1000)
}

fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let m = i64::from(m);
    let mp = if m > 2 { m - 3 } else { m + 9 };
    let doy = (153 * mp + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Reads a msgpack array's length (the tests' check of `write_array_len`).
#[cfg(test)]
fn read_array_len(r: &mut impl Read) -> std::io::Result<u64> {
    let mut b = [0u8; 1];
    r.read_exact(&mut b)?;
    Ok(match b[0] {
        m @ 0x90..=0x9f => u64::from(m & 0x0f),
        0xdc => {
            let mut n = [0u8; 2];
            r.read_exact(&mut n)?;
            u64::from(u16::from_be_bytes(n))
        }
        0xdd => {
            let mut n = [0u8; 4];
            r.read_exact(&mut n)?;
            u64::from(u32::from_be_bytes(n))
        }
        m => {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!("marker {m:#04x}"),
            ))
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_say_range_and_utc_times() {
        // 2026-12-03T14:42:45Z and 15:01:02Z.
        let (t0, t1) = (1_796_308_965_123, 1_796_310_062_999);
        let name = file_name(1, 200_000, t0, t1);
        assert_eq!(
            name,
            "events-00000000000000000001-00000000000000200000-20261203T144245Z-20261203T150102Z.seg"
        );
        assert_eq!(
            parse_name(&name),
            Some((1, 200_000, 1_796_308_965_000, 1_796_310_062_000))
        );
        assert_eq!(utc_stamp(0), "19700101T000000Z");
        // A leap day, and the turn of a century that is a leap year.
        assert_eq!(utc_stamp(951_782_400_000), "20000229T000000Z");
        assert_eq!(utc_stamp(4_102_444_799_000), "20991231T235959Z");
        for ms in [0, 951_782_400_000, 4_102_444_799_000, 1_709_164_800_000] {
            assert_eq!(parse_utc_stamp(&utc_stamp(ms)), Some(ms));
        }
    }

    #[test]
    fn other_names_are_not_sealed_files() {
        let good = file_name(5, 9, 0, 0);
        assert!(parse_name(&good).is_some());
        for bad in [
            format!("{TEMP_PREFIX}{good}.42"),
            format!("{good}.tmp"),
            good.replace("-00000000000000000005-", "-5-"),
            file_name(9, 5, 0, 0),
            good.replace("19700101T000000Z", "19701301T000000Z"),
            "events-.seg".into(),
            "pilotq.lock".into(),
        ] {
            assert_eq!(parse_name(&bad), None, "{bad}");
        }
    }

    #[test]
    fn array_headers_of_every_width_are_stripped_and_written() {
        for n in [0u64, 1, 15, 16, 65_535, 65_536, 1 << 20] {
            let mut v = Vec::new();
            write_array_len(&mut v, n).unwrap();
            assert_eq!(read_array_len(&mut v.as_slice()).unwrap(), n);
            v.push(0xc0);
            assert_eq!(array_elements(&v), [0xc0]);
        }
        // A format-1 entry is one envelope, a map: kept whole.
        assert_eq!(array_elements(&[0x83, 1]), [0x83, 1]);
    }
}
