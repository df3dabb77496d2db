//! `pilotq journal`: post-mortems on a journal — a stopped master's, a copy,
//! or one a running master holds (`--master`). One verb per file; the
//! analyses themselves are `pilotq_journal::postmortem`'s, pure folds over
//! the event stream that [`source`] provides.
//!
//! | file | verb |
//! |---|---|
//! | `source.rs` | where the events come from: a directory, sealed files, a running master's tail |
//! | `dump.rs` | `dump`: events, filtered by job, time or sequence, kind |
//! | `job.rs` | `job C.P`: one job's life across its attempts |
//! | `at.rs` | `at TIME|SEQ`: the table as it was then |
//! | `stats.rs` | `stats`: waits, run times, rates, requeues, failures, restarts |
//! | `plot.rs` | `plot FILE.svg`: jobs over time, restarts and holder losses marked |
//! | `export.rs` | `export --jsonl|--csv`: one flat row per event |
//! | `verify.rs` | `verify`: replay and check a stopped journal |
//! | `print.rs` | shared printing: JSON, times, broken pipes |

pub mod at;
pub mod dump;
pub mod export;
pub mod job;
pub mod plot;
mod print;
pub mod source;
pub mod stats;
pub mod verify;

use crate::cli::JournalCommand;
use anyhow::Result;

/// Help shared by the verbs that take points in time.
pub const POINT_HELP: &str = "T is a UTC time — 2026-12-03, '2026-12-03 14:42', \
'2026-12-03 14:42:45.123', RFC 3339 such as 2026-12-03T14:42:45Z or 2026-12-03T15:42:45+01:00 — \
compared with the time each event was stored, or an event number: #123 or seq:123. Bounds are inclusive.";

pub fn run(cmd: JournalCommand) -> Result<i32> {
    crate::logging::init("warn");
    match cmd {
        JournalCommand::Dump(a) => dump::run(a),
        JournalCommand::Verify { journal } => verify::verify(&journal),
        JournalCommand::Job(a) => job::run(a),
        JournalCommand::At(a) => at::run(a),
        JournalCommand::Stats(a) => stats::run(a),
        JournalCommand::Plot(a) => plot::run(a),
        JournalCommand::Export(a) => export::run(a),
    }
}
