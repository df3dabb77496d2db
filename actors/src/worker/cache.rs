//! The worker's executable cache: blobs by content hash, written once per
//! hash, verified against it, executable, shared by every job that uses it.

use sha2::{Digest, Sha256};
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

pub struct BlobCache {
    dir: PathBuf,
    /// Hashes known to be on disk: saves a `stat` per job.
    known: std::cell::RefCell<std::collections::HashSet<String>>,
}

impl BlobCache {
    pub fn open(dir: &Path) -> std::io::Result<BlobCache> {
        std::fs::create_dir_all(dir)?;
        Ok(BlobCache {
            dir: dir.to_path_buf(),
            known: Default::default(),
        })
    }

    pub fn path(&self, hash: &str) -> PathBuf {
        self.dir.join(hash)
    }

    pub fn has(&self, hash: &str) -> bool {
        if self.known.borrow().contains(hash) {
            return true;
        }
        let there = valid_hash(hash) && self.path(hash).is_file();
        if there {
            self.known.borrow_mut().insert(hash.to_string());
        }
        there
    }

    /// Stores `bytes` under `hash` after checking they match it.
    pub fn put(&self, hash: &str, bytes: &[u8]) -> Result<(), String> {
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
        write().map_err(|e| format!("cannot cache executable {hash}: {e}"))
    }
}

/// Hashes name files in our cache directory: only 64 hex digits are allowed,
/// so a hostile hash cannot walk out of it.
fn valid_hash(h: &str) -> bool {
    h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit())
}
