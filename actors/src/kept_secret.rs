//! Random secrets kept beside a journal, made at the first start and read
//! at every later one:
//!
//! - `holder-token`, a foreman's: a master hands a holder's attempts back
//!   only to a connection that shows the token the holder registered with
//!   (`master/holders.rs`). A worker's lives as long as its process, and so
//!   do its jobs; a foreman's jobs outlive its process (it replays its
//!   journal), so its token must too.
//! - `attempt-key`, a master's: the key its attempt keys are derived from
//!   (`pilotq_wire::attempt_key`), the same across restarts so that a
//!   worker's key still proves its attempt after the master comes back.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

pub const HOLDER_TOKEN: &str = "holder-token";
pub const ATTEMPT_KEY: &str = "attempt-key";

/// The secret `file` in `dir`, made (random, mode 0600, synced) if there is
/// none.
pub fn load_or_create(dir: &Path, file: &str) -> std::io::Result<Vec<u8>> {
    let path = dir.join(file);
    match std::fs::read_to_string(&path) {
        Ok(s) => {
            return hex::decode(s.trim()).map_err(|e| {
                std::io::Error::new(
                    std::io::ErrorKind::InvalidData,
                    format!("{}: not a secret in hex ({e})", path.display()),
                )
            })
        }
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e),
        Err(_) => {}
    }
    let token = pilotq_wire::handshake::fresh_nonce();
    let tmp = dir.join(format!(".{file}.{}.tmp", std::process::id()));
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&tmp)?;
    f.write_all(hex::encode(&token).as_bytes())?;
    f.sync_all()?;
    std::fs::rename(&tmp, &path)?;
    std::fs::File::open(dir)?.sync_all()?;
    Ok(token)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_secret_outlives_the_process_that_made_it() {
        let dir = tempfile::tempdir().unwrap();
        let t = load_or_create(dir.path(), HOLDER_TOKEN).unwrap();
        assert!(t.len() >= 16);
        assert_eq!(load_or_create(dir.path(), HOLDER_TOKEN).unwrap(), t);
        let k = load_or_create(dir.path(), ATTEMPT_KEY).unwrap();
        assert_ne!(k, t, "each file its own secret");
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir.path().join(ATTEMPT_KEY))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        std::fs::write(dir.path().join(HOLDER_TOKEN), "not hex").unwrap();
        let e = load_or_create(dir.path(), HOLDER_TOKEN)
            .unwrap_err()
            .to_string();
        assert!(e.contains("not a secret in hex"), "{e}");
    }
}
