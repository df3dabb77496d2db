//! `pilotq journal dump|verify`: post-mortems on a journal.

use anyhow::{bail, Context, Result};
use pilotq_journal::{replay, Store};
use std::io::Write;
use std::path::Path;

fn open(path: &Path) -> Result<Store> {
    Ok(Store::open_existing(path)?)
}

pub fn dump(path: &Path, json: bool) -> Result<i32> {
    crate::logging::init("warn");
    let store = open(path)?;
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    for item in store.events_from(1) {
        let (seq, env) = item?;
        let r = if json {
            let v = serde_json::json!({ "seq": seq, "v": env.v, "t": env.t, "e": env.e });
            writeln!(out, "{v}")
        } else {
            writeln!(out, "{seq:>8} {} {:?}", env.t, env.e)
        };
        if let Err(e) = r {
            if e.kind() == std::io::ErrorKind::BrokenPipe {
                return Ok(0);
            }
            return Err(e.into());
        }
    }
    out.flush().ok();
    Ok(0)
}

pub fn verify(path: &Path) -> Result<i32> {
    crate::logging::init("warn");
    let store = open(path)?;
    let (full, _, n) = replay::rebuild(&store, false).context("replaying every event")?;
    full.check_indexes()
        .map_err(|e| anyhow::anyhow!("replayed table inconsistent: {e}"))?;
    let (fast, snap, _) = replay::rebuild(&store, true)?;
    if fast != full {
        bail!("the table from snapshot {snap:?} plus tail differs from a full replay");
    }
    let c = full.counts();
    println!(
        "ok: {n} events; snapshot {}; {} jobs ({} idle, {} running, {} held, {} completed, {} removed)",
        snap.map(|s| s.to_string()).unwrap_or_else(|| "none".into()),
        c.total(),
        c.idle,
        c.running,
        c.held,
        c.completed,
        c.removed
    );
    Ok(0)
}
