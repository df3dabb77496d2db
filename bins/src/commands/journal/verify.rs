//! `pilotq journal verify`: replay a stopped journal and check it.

use anyhow::{bail, Context, Result};
use pilotq_journal::{replay, Store};
use std::path::Path;

fn open(path: &Path) -> Result<Store> {
    Ok(Store::open_existing(path)?)
}

pub fn verify(path: &Path) -> Result<i32> {
    let store = open(path)?;
    // Once retention deleted the oldest sealed files, the "full" replay
    // starts from the oldest snapshot that covers them.
    let first = store.first_seq()?;
    let (full, base, n) = replay::rebuild(&store, false).context("replaying every event")?;
    full.check_indexes()
        .map_err(|e| anyhow::anyhow!("replayed table inconsistent: {e}"))?;
    let (fast, snap, _) = replay::rebuild(&store, true)?;
    if fast != full {
        bail!("the table from snapshot {snap:?} plus tail differs from a full replay");
    }
    // Jobs that finished and left the queue for the history store are
    // counted apart by the table; a post-mortem counts every job.
    let mut c = full.counts();
    let left = full.left();
    c.completed += left.completed;
    c.removed += left.removed;
    if let Some(base) = base.filter(|_| first > 1) {
        println!(
            "note: events 1..={} were retired by retention; the full replay started from snapshot {base}",
            first - 1
        );
    }
    // Every job, then how many of the finished ones left the queue (the
    // rest stay with `leave_in_queue`), so that neither count is lost.
    println!(
        "ok: {n} events; snapshot {}; {} jobs ({} idle, {} running, {} held, {} completed, {} removed); \
         {} left the queue for history ({} completed, {} removed)",
        snap.map(|s| s.to_string()).unwrap_or_else(|| "none".into()),
        c.total(),
        c.idle,
        c.running,
        c.held,
        c.completed,
        c.removed,
        left.completed + left.removed,
        left.completed,
        left.removed
    );
    Ok(0)
}
