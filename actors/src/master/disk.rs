//! The journal's free space, against `--min-free-disk`.
//!
//! Below the floor a master refuses new submissions (a foreman offers its
//! master no capacity): those are what can grow the journal without bound.
//! Results, dispatches and start reports are small and go on being
//! journaled, so running work finishes. If a write fails all the same, the
//! master stops (its memory would be ahead of its disk), and a master that
//! *starts* below the floor writes nothing at all — not even its start
//! marker — until space returns: it answers queries, refuses submissions and
//! holders with the reason, and resumes by itself. So a restart on a full
//! disk never turns into a crash loop.
//!
//! Opening the journal writes, though: sled zero-fills the tail of its last
//! segment after a crash, and on a disk full to the last byte that fails. So
//! while there is room the master keeps a **reserve** file beside its journal
//! (a quarter of the floor, at most 16 MiB); a start below the floor deletes
//! it first, which gives sled the room to open, and it is made again once the
//! disk is back above the floor with room to spare.

use std::io::Write;
use std::path::{Path, PathBuf};

/// The default floor: 1 GiB, or 5 % of the journal's filesystem when that is
/// smaller (a small dedicated volume must not start out "full").
pub const DEFAULT_MIN_FREE: u64 = 1 << 30;
const DEFAULT_MIN_FREE_PERCENT: u64 = 5;

/// The reserve beside the journal (see the module doc).
pub const RESERVE_FILE: &str = "pilotq-reserve";
const MAX_RESERVE: u64 = 16 << 20;

/// Free and total bytes of the filesystem holding a path.
#[derive(Debug, Clone, Copy)]
pub struct Space {
    /// Free to unprivileged users (`f_bavail`): what the master can count on.
    pub free: u64,
    pub total: u64,
}

pub fn space(path: &Path) -> std::io::Result<Space> {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(path.as_os_str().as_bytes())
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
    // SAFETY: statvfs fills the zeroed struct it is given; `c` is a valid
    // NUL-terminated path for the duration of the call.
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    let rc = unsafe { libc::statvfs(c.as_ptr(), &mut st) };
    if rc != 0 {
        return Err(std::io::Error::last_os_error());
    }
    let unit = st.f_frsize as u64;
    Ok(Space {
        free: (st.f_bavail as u64).saturating_mul(unit),
        total: (st.f_blocks as u64).saturating_mul(unit),
    })
}

/// The floor for one journal.
#[derive(Debug, Clone)]
pub struct DiskFloor {
    path: PathBuf,
    min_free: u64,
}

impl DiskFloor {
    /// `configured`: `--min-free-disk` if given (0 turns the check off),
    /// else the default rule for this filesystem.
    pub fn new(path: &Path, configured: Option<u64>) -> std::io::Result<DiskFloor> {
        let min_free = match configured {
            Some(m) => m,
            None => {
                let s = space(path)?;
                DEFAULT_MIN_FREE.min(s.total / 100 * DEFAULT_MIN_FREE_PERCENT)
            }
        };
        Ok(DiskFloor {
            path: path.to_path_buf(),
            min_free,
        })
    }

    pub fn min_free(&self) -> u64 {
        self.min_free
    }

    fn reserve_path(&self) -> PathBuf {
        self.path.join(RESERVE_FILE)
    }

    fn reserve_size(&self) -> u64 {
        (self.min_free / 4).min(MAX_RESERVE)
    }

    /// Deletes the reserve file, if there is one (a start below the floor);
    /// returns how many bytes that freed.
    pub fn release_reserve(&self) -> std::io::Result<u64> {
        let p = self.reserve_path();
        match std::fs::metadata(&p) {
            Ok(m) => {
                std::fs::remove_file(&p)?;
                Ok(m.len())
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(0),
            Err(e) => Err(e),
        }
    }

    /// Makes the reserve file if it is missing and the disk has room for it
    /// above the floor; returns whether it made one.
    pub fn ensure_reserve(&self) -> std::io::Result<bool> {
        let size = self.reserve_size();
        let p = self.reserve_path();
        if size == 0 || p.exists() {
            return Ok(false);
        }
        if space(&self.path)?.free < self.min_free.saturating_add(size) {
            return Ok(false);
        }
        // Written under another name and renamed, so that a crash midway
        // never leaves a short reserve that looks whole.
        let tmp = self.path.join(format!("{RESERVE_FILE}.tmp"));
        let made = (|| {
            let mut f = std::fs::File::create(&tmp)?;
            let chunk = vec![0u8; 1 << 20];
            let mut left = size;
            while left > 0 {
                let n = left.min(chunk.len() as u64) as usize;
                f.write_all(&chunk[..n])?;
                left -= n as u64;
            }
            f.sync_all()?;
            std::fs::rename(&tmp, &p)
        })();
        if let Err(e) = made {
            let _ = std::fs::remove_file(&tmp);
            return Err(e);
        }
        Ok(true)
    }

    /// `Err(why)` while the journal's filesystem is below the floor (or its
    /// free space cannot be read, which is treated as below: better refuse a
    /// submission than fill a disk).
    pub fn check(&self) -> Result<(), String> {
        if self.min_free == 0 {
            return Ok(());
        }
        match space(&self.path) {
            Ok(s) if s.free >= self.min_free => Ok(()),
            Ok(s) => Err(format!(
                "the journal's filesystem at {} has {} free, below --min-free-disk {}",
                self.path.display(),
                human_bytes(s.free),
                human_bytes(self.min_free)
            )),
            Err(e) => Err(format!(
                "cannot read the free space of {}: {e}",
                self.path.display()
            )),
        }
    }
}

/// Takes the journal directory's own lock (`pilotq.lock`, `flock`), held for
/// as long as the returned file is open. Taken before anything beside the
/// journal is touched: a second master started on the same journal must fail
/// before it could delete the running one's reserve (sled's own lock is
/// only taken when the journal is opened, after that).
pub fn lock_journal_dir(dir: &Path) -> std::io::Result<std::fs::File> {
    use std::os::fd::AsRawFd;
    let f = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(dir.join(LOCK_FILE))?;
    // SAFETY: flock on a descriptor we own.
    if unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(f)
}

/// The journal directory's lock file (see [`lock_journal_dir`]).
pub const LOCK_FILE: &str = "pilotq.lock";

/// `1.5 GiB`, `512 KiB`, `37 B`.
pub fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1024.0 && u + 1 < UNITS.len() {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

/// Parses `--min-free-disk`: bytes, or a number with K, M, G or T (KiB, MiB,
/// GiB, TiB; `KiB`/`KB` spellings too).
pub fn parse_size(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let shift = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 0,
        "k" | "kb" | "kib" => 10,
        "m" | "mb" | "mib" => 20,
        "g" | "gb" | "gib" => 30,
        "t" | "tb" | "tib" => 40,
        other => {
            return Err(format!(
                "unknown size unit {other:?} in {s:?} (use K, M, G or T)"
            ))
        }
    };
    let v: f64 = num
        .parse()
        .map_err(|_| format!("{s:?} is not a size (e.g. 512M, 2G, 0)"))?;
    let bytes = v * (1u64 << shift) as f64;
    if !bytes.is_finite() || bytes < 0.0 || bytes > u64::MAX as f64 {
        return Err(format!("{s:?} is out of range"));
    }
    Ok(bytes as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse_with_binary_units() {
        assert_eq!(parse_size("0"), Ok(0));
        assert_eq!(parse_size("4096"), Ok(4096));
        assert_eq!(parse_size("8M"), Ok(8 << 20));
        assert_eq!(parse_size("1GiB"), Ok(1 << 30));
        assert_eq!(parse_size("1.5K"), Ok(1536));
        assert!(parse_size("ten").is_err());
        assert!(parse_size("5X").is_err());
        assert!(parse_size("").is_err());
    }

    #[test]
    fn the_reserve_is_made_once_and_released_on_demand() {
        let d = tempfile::tempdir().unwrap();
        let f = DiskFloor::new(d.path(), Some(8 << 20)).unwrap();
        assert_eq!(f.release_reserve().unwrap(), 0);
        assert!(f.ensure_reserve().unwrap());
        let len = std::fs::metadata(d.path().join(RESERVE_FILE))
            .unwrap()
            .len();
        assert_eq!(len, 2 << 20, "a quarter of the floor");
        assert!(!f.ensure_reserve().unwrap(), "already there");
        assert_eq!(f.release_reserve().unwrap(), 2 << 20);
        assert!(!d.path().join(RESERVE_FILE).exists());
        // No floor, no reserve.
        let none = DiskFloor::new(d.path(), Some(0)).unwrap();
        assert!(!none.ensure_reserve().unwrap());
    }

    #[test]
    fn the_default_floor_is_the_smaller_of_1_gib_and_5_percent() {
        let d = tempfile::tempdir().unwrap();
        let s = space(d.path()).unwrap();
        let f = DiskFloor::new(d.path(), None).unwrap();
        assert_eq!(f.min_free(), DEFAULT_MIN_FREE.min(s.total / 100 * 5));
        assert_eq!(DiskFloor::new(d.path(), Some(0)).unwrap().check(), Ok(()));
        let never = DiskFloor::new(d.path(), Some(u64::MAX)).unwrap();
        let e = never.check().unwrap_err();
        assert!(
            e.contains(&d.path().display().to_string()) && e.contains("free"),
            "{e}"
        );
    }
}
