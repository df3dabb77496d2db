//! The worker's executable cache: blobs (executables and job wrappers) by
//! content hash, written once per hash, verified against it, executable,
//! shared by every job that uses it — and bounded (`--cache-size`).
//!
//! **Eviction.** When the files add up to more than the cache size, the
//! least recently used ones go, except those a job queued or running on
//! this worker still needs: the worker passes that set to [`BlobCache::trim`]
//! each time, so a pin is exactly "some held job names this hash" and can
//! never leak or be released twice. Everything in use may add up to more
//! than the size; the cache is then over it until those jobs are done.
//!
//! **An evicted hash is fetched again.** A connection gets an executable's
//! bytes only with the first `Dispatch` that needs its hash, so after an
//! eviction the next job needing it comes without bytes. The worker then
//! asks for them (`FetchBlob`, as a foreman does) and the job waits in the
//! queue until they come (`Worker::on_blob`). The alternative, never
//! evicting what this connection has been sent, would leave a long-lived
//! worker's cache unbounded, which is what this bound is for.

use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

/// The default `--cache-size`.
pub const DEFAULT_CACHE_SIZE: u64 = 1 << 30;

struct Entry {
    bytes: u64,
    /// When it was last stored or looked up (a counter, not a time).
    used: u64,
}

pub struct BlobCache {
    dir: PathBuf,
    max_bytes: u64,
    /// What is on disk: saves a `stat` per job, and orders eviction.
    entries: HashMap<String, Entry>,
    total: u64,
    clock: u64,
}

impl BlobCache {
    /// Opens (creating) the cache in `dir`. Files left by an earlier run are
    /// kept, least recently modified first in line for eviction, and trimmed
    /// to `max_bytes` at once: a worker starts holding no jobs.
    pub fn open(dir: &Path, max_bytes: u64) -> std::io::Result<BlobCache> {
        std::fs::create_dir_all(dir)?;
        let mut found = Vec::new();
        for e in std::fs::read_dir(dir)? {
            let e = e?;
            let name = e.file_name().to_string_lossy().into_owned();
            let meta = e.metadata()?;
            if name.starts_with('.') && meta.is_file() {
                // A write cut short by a crash (`put`'s temporary name).
                let _ = std::fs::remove_file(e.path());
            } else if valid_hash(&name) && meta.is_file() {
                let mtime = meta.modified().unwrap_or(std::time::UNIX_EPOCH);
                found.push((mtime, name, meta.len()));
            }
        }
        found.sort();
        let mut c = BlobCache {
            dir: dir.to_path_buf(),
            max_bytes,
            entries: HashMap::new(),
            total: 0,
            clock: 0,
        };
        for (_, name, bytes) in found {
            c.insert(name, bytes);
        }
        c.trim(|_| false);
        Ok(c)
    }

    pub fn path(&self, hash: &str) -> PathBuf {
        self.dir.join(hash)
    }

    /// Whether `hash` is cached; a hit counts as a use.
    pub fn has(&mut self, hash: &str) -> bool {
        self.clock += 1;
        match self.entries.get_mut(hash) {
            Some(e) => {
                e.used = self.clock;
                true
            }
            None => false,
        }
    }

    /// Bytes cached.
    pub fn total(&self) -> u64 {
        self.total
    }

    /// Whether the cache holds more than its size.
    pub fn over(&self) -> bool {
        self.total > self.max_bytes
    }

    /// Stores `bytes` under `hash` after checking they match it. Never
    /// evicts: the caller has not yet recorded the job that needs them, so
    /// it calls [`BlobCache::trim`] once it has.
    pub fn put(&mut self, hash: &str, bytes: &[u8]) -> Result<(), String> {
        if !valid_hash(hash) {
            return Err(format!("'{hash}' is not a sha256 hash"));
        }
        if self.has(hash) {
            return Ok(());
        }
        let got = hex::encode(Sha256::digest(bytes));
        if got != hash {
            return Err(format!(
                "executable does not match its hash {hash} (got {got})"
            ));
        }
        let tmp = self.dir.join(format!(".{hash}.{}", std::process::id()));
        let write = || -> std::io::Result<()> {
            let mut f = std::fs::File::create(&tmp)?;
            f.write_all(bytes)?;
            f.set_permissions(std::fs::Permissions::from_mode(0o755))?;
            drop(f);
            std::fs::rename(&tmp, self.path(hash))
        };
        write().map_err(|e| {
            let _ = std::fs::remove_file(&tmp);
            format!("cannot cache executable {hash}: {e}")
        })?;
        self.insert(hash.to_string(), bytes.len() as u64);
        Ok(())
    }

    fn insert(&mut self, hash: String, bytes: u64) {
        self.clock += 1;
        let used = self.clock;
        if let Some(old) = self.entries.insert(hash, Entry { bytes, used }) {
            self.total -= old.bytes;
        }
        self.total += bytes;
    }

    /// Deletes least recently used entries until the cache fits its size,
    /// skipping every hash `in_use` names (executables and wrappers of jobs
    /// queued or running here). Returns the hashes deleted.
    pub fn trim(&mut self, in_use: impl Fn(&str) -> bool) -> Vec<String> {
        if self.total <= self.max_bytes {
            return Vec::new();
        }
        let mut candidates: Vec<(u64, String)> = self
            .entries
            .iter()
            .filter(|(h, _)| !in_use(h))
            .map(|(h, e)| (e.used, h.clone()))
            .collect();
        candidates.sort_unstable();
        let mut evicted = Vec::new();
        for (_, hash) in candidates {
            if self.total <= self.max_bytes {
                break;
            }
            // Forgotten even if the unlink fails: a later `put` of the same
            // hash writes it again, renamed over whatever is left.
            if let Err(e) = std::fs::remove_file(self.path(&hash)) {
                if e.kind() != std::io::ErrorKind::NotFound {
                    tracing::warn!(%hash, "cannot delete an evicted executable: {e}");
                }
            }
            let e = self.entries.remove(&hash).expect("listed");
            self.total -= e.bytes;
            evicted.push(hash);
        }
        if !evicted.is_empty() {
            tracing::debug!(
                evicted = evicted.len(),
                cached = self.total,
                "executable cache trimmed"
            );
        }
        evicted
    }
}

/// Hashes name files in our cache directory: only 64 hex digits are allowed,
/// so a hostile hash cannot walk out of it.
fn valid_hash(h: &str) -> bool {
    h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn blob(n: usize, fill: u8) -> (String, Vec<u8>) {
        let bytes = vec![fill; n];
        (hex::encode(Sha256::digest(&bytes)), bytes)
    }

    fn on_disk(c: &BlobCache, h: &str) -> bool {
        c.path(h).is_file()
    }

    #[test]
    fn least_recently_used_goes_first() {
        let dir = tempfile::tempdir().unwrap();
        let mut c = BlobCache::open(dir.path(), 250).unwrap();
        let (a, ab) = blob(100, 1);
        let (b, bb) = blob(100, 2);
        let (d, db) = blob(100, 3);
        c.put(&a, &ab).unwrap();
        c.put(&b, &bb).unwrap();
        // `a` is used again: `b` is now the oldest.
        assert!(c.has(&a));
        c.put(&d, &db).unwrap();
        assert_eq!(c.total(), 300, "put alone never evicts");
        assert_eq!(c.trim(|_| false), vec![b.clone()]);
        assert!(!on_disk(&c, &b) && !c.has(&b));
        assert!(on_disk(&c, &a) && on_disk(&c, &d));
        assert_eq!(c.total(), 200);
        // Within the size: nothing goes.
        assert!(c.trim(|_| false).is_empty());
    }

    #[test]
    fn what_a_held_job_needs_is_never_evicted() {
        let dir = tempfile::tempdir().unwrap();
        let mut c = BlobCache::open(dir.path(), 150).unwrap();
        let (a, ab) = blob(100, 1);
        let (b, bb) = blob(100, 2);
        c.put(&a, &ab).unwrap();
        c.put(&b, &bb).unwrap();
        // Both in use: over the size, and it stays so.
        assert!(c.trim(|_| true).is_empty());
        assert_eq!(c.total(), 200);
        // The older one is pinned: the newer goes instead.
        assert_eq!(c.trim(|h| h == a), vec![b.clone()]);
        assert!(on_disk(&c, &a));
        // A single blob larger than the whole cache is kept while in use,
        // and goes once nothing needs it.
        let (big, bigb) = blob(1000, 9);
        c.put(&big, &bigb).unwrap();
        assert!(c.trim(|h| h == big).contains(&a));
        assert!(on_disk(&c, &big));
        assert_eq!(c.trim(|_| false), vec![big.clone()]);
        assert_eq!(c.total(), 0);
        // Stored again after eviction, it is there again.
        c.put(&big, &bigb).unwrap();
        assert!(on_disk(&c, &big) && c.has(&big));
    }

    #[test]
    fn open_keeps_earlier_files_trims_them_and_clears_half_writes() {
        let dir = tempfile::tempdir().unwrap();
        let (a, ab) = blob(100, 1);
        let (b, bb) = blob(100, 2);
        {
            let mut c = BlobCache::open(dir.path(), 1 << 20).unwrap();
            c.put(&a, &ab).unwrap();
            c.put(&b, &bb).unwrap();
        }
        let old = std::time::SystemTime::now() - std::time::Duration::from_secs(3600);
        std::fs::File::options()
            .write(true)
            .open(dir.path().join(&a))
            .unwrap()
            .set_modified(old)
            .unwrap();
        std::fs::write(dir.path().join(format!(".{b}.123")), b"half").unwrap();
        let mut c = BlobCache::open(dir.path(), 150).unwrap();
        // `a` was modified longest ago: it went.
        assert!(!c.has(&a) && !on_disk(&c, &a));
        assert!(c.has(&b));
        assert_eq!(c.total(), 100);
        assert!(!dir.path().join(format!(".{b}.123")).exists());
    }

    #[test]
    fn bad_hashes_and_bytes_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let mut c = BlobCache::open(dir.path(), 1 << 20).unwrap();
        assert!(c.put("../x", b"x").unwrap_err().contains("not a sha256"));
        let (a, _) = blob(10, 1);
        assert!(c.put(&a, b"other").unwrap_err().contains("does not match"));
        assert!(!c.has(&a));
        assert_eq!(c.total(), 0);
    }
}
