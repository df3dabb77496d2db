//! `pilotq drain [--off]`: the drain file. While it exists, workers finish
//! their current jobs and exit, and their (and the foremen's) supervisors
//! do not respawn them (`stop-foremen` then stops the foremen).

use super::settings::Env;
use crate::cli::DrainArgs;
use anyhow::{Context, Result};
use std::path::Path;

pub fn run(a: DrainArgs) -> Result<i32> {
    let path = a.drain.resolve(&Env::process()?)?;
    if a.off {
        if remove(&path)? {
            println!(
                "drain file {} removed; workers that already left stay gone: start new ones with `pilotq start-workers N`",
                path.display()
            );
        } else {
            println!("no drain file at {}", path.display());
        }
    } else {
        let verb = if create(&path)? {
            "created"
        } else {
            "already there"
        };
        println!(
            "drain file {} {verb}: workers finish their current jobs and exit, and are not respawned (`pilotq drain --off` lifts it)",
            path.display()
        );
    }
    Ok(0)
}

/// Creates the drain file (and its folder); false if it was already there.
pub fn create(path: &Path) -> Result<bool> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
    {
        Ok(_) => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(false),
        Err(e) => {
            Err(e).with_context(|| format!("cannot create the drain file {}", path.display()))
        }
    }
}

/// Removes the drain file; false if there was none.
pub fn remove(path: &Path) -> Result<bool> {
    match std::fs::remove_file(path) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
        Err(e) => {
            Err(e).with_context(|| format!("cannot remove the drain file {}", path.display()))
        }
    }
}
