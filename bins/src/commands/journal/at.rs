//! `pilotq journal at TIME|SEQ`: the table as it was then.

use super::print::{json, with_out};
use super::source::{Source, SourceArgs};
use anyhow::{anyhow, Result};
use pilotq_journal::postmortem::at::{describe, table_at, Listed};
use pilotq_journal::postmortem::{utc_ms, Point};
use std::io::Write;

/// Jobs listed per state and per holder unless `--all`.
const CAP: usize = 20;

#[derive(Debug, Clone, clap::Args)]
#[command(after_help = super::POINT_HELP)]
pub struct AtArgs {
    /// The point: T (the table after every event stored at or before it)
    /// or #SEQ (after event SEQ).
    #[arg(value_name = "T|#SEQ")]
    pub point: String,
    #[command(flatten)]
    pub source: SourceArgs,
    /// List every job, not the first 20 of each state and holder.
    #[arg(long)]
    pub all: bool,
    /// One JSON object.
    #[arg(long)]
    pub json: bool,
}

pub fn run(a: AtArgs) -> Result<i32> {
    let point: Point = a.point.parse().map_err(|e| anyhow!("{e}"))?;
    let source = Source::open(&a.source)?;
    // A snapshot only matters when the first events are gone; it must
    // cover no more than the point (a time point: no snapshot is known to
    // be early enough, so the oldest kept events are replayed).
    let start = match point {
        Point::Seq(s) => source.snapshot_for(s)?,
        Point::Time(_) => None,
    };
    let snapshot = start.as_ref().map(|(s, _)| *s);
    let from = snapshot.map_or(1, |s| s + 1);
    let (table, last) = table_at(start, source.events_from(from)?, point)?;
    let cap = if a.all { usize::MAX } else { CAP };
    let view = describe(&table, last, snapshot, cap);
    with_out(|o| {
        if a.json {
            return json(o, &view);
        }
        match (view.seq, view.t) {
            (Some(seq), Some(t)) => writeln!(
                o,
                "the table after event #{seq}, stored {} (asked: {point})",
                utc_ms(t)
            )?,
            _ => writeln!(o, "no event at or before {point}: the table was empty")?,
        }
        if let Some(s) = view.snapshot {
            writeln!(
                o,
                "(replayed from the snapshot at #{s}: the journal's earlier events are gone)"
            )?;
        }
        writeln!(
            o,
            "{} idle, {} running, {} held, {} completed, {} removed; {} master start(s)",
            view.idle, view.running, view.held, view.completed, view.removed, view.restarts
        )?;
        if view.holders.is_empty() {
            writeln!(o, "no jobs out on holders")?;
        } else {
            writeln!(o, "holders ({}):", view.holders.len())?;
            for h in view.holders.iter().take(cap) {
                writeln!(o, "  {} ({}): {}", h.holder, h.jobs.count, list(&h.jobs))?;
            }
            if view.holders.len() > cap {
                writeln!(
                    o,
                    "  … and {} more holders (--all)",
                    view.holders.len() - cap
                )?;
            }
        }
        for (state, l) in &view.states {
            writeln!(o, "{state} ({}): {}", l.count, list(l))?;
        }
        Ok(())
    })
}

fn list(l: &Listed) -> String {
    let mut s = l.jobs.join(" ");
    if l.more > 0 {
        s += &format!(" … and {} more (--all)", l.more);
    }
    s
}
