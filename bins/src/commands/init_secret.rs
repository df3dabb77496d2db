//! `pilotq init-secret PATH`: a fresh shared secret, readable by its owner
//! only, for `--password-file` on the master, its foremen, workers and
//! clients. What a site runs before listening beyond loopback.

use crate::cli::InitSecretArgs;
use anyhow::{bail, Context, Result};
use rand::RngCore;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;

/// Random bytes in a secret: 256 bits.
const SECRET_BYTES: usize = 32;

pub fn run(a: InitSecretArgs) -> Result<i32> {
    let mut bytes = [0u8; SECRET_BYTES];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    // Created with mode 0600 from the start (never readable by others, not
    // even for a moment), and never over an existing file: a site's secret
    // replaced by mistake would lock every worker out.
    let mut f = match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&a.path)
    {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => bail!(
            "{} already exists; delete it first if you mean to replace the secret (every peer then needs the new one)",
            a.path.display()
        ),
        Err(e) => return Err(e).with_context(|| format!("cannot create {}", a.path.display())),
    };
    writeln!(f, "{}", hex::encode(bytes))
        .and_then(|_| f.sync_all())
        .with_context(|| format!("cannot write {}", a.path.display()))?;
    println!(
        "wrote a new secret to {} (mode 0600); pass --password-file {} to the master, its foremen, workers and clients",
        a.path.display(),
        a.path.display()
    );
    Ok(0)
}
