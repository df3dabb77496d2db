//! `pilotq journal export --jsonl|--csv`: one flat row per event, every row
//! with the same columns, for pandas (`pd.read_json(f, lines=True)` or
//! `pd.read_csv(f)`).

use super::dump::point;
use super::print::with_out;
use super::source::{Source, SourceArgs};
use anyhow::Result;
use pilotq_journal::postmortem::filter::Filter;
use pilotq_journal::postmortem::row::{Row, COLUMNS};
use std::io::Write;

#[derive(Debug, Clone, clap::Args)]
#[command(after_help = super::POINT_HELP)]
#[command(group(clap::ArgGroup::new("format").required(true).args(["jsonl", "csv"])))]
pub struct ExportArgs {
    #[command(flatten)]
    pub source: SourceArgs,
    /// JSON Lines: one object per event.
    #[arg(long)]
    pub jsonl: bool,
    /// CSV with a header row.
    #[arg(long)]
    pub csv: bool,
    /// Only events at or after T.
    #[arg(long, value_name = "T")]
    pub since: Option<String>,
    /// Only events at or before T.
    #[arg(long, value_name = "T")]
    pub until: Option<String>,
}

pub fn run(a: ExportArgs) -> Result<i32> {
    let filter = Filter {
        since: point("since", &a.since)?,
        until: point("until", &a.until)?,
        ..Filter::default()
    };
    let source = Source::open(&a.source)?;
    with_out(|o| {
        if a.csv {
            writeln!(o, "{}", COLUMNS.join(","))?;
        }
        for item in source.events_from(filter.first_seq())? {
            let (seq, env) = item?;
            if filter.past_end(seq) {
                break;
            }
            if !filter.keeps(seq, env.t, &env.e) {
                continue;
            }
            let row = Row::of(seq, &env);
            if a.csv {
                writeln!(o, "{}", row.csv())?;
            } else {
                serde_json::to_writer(&mut *o, &row)?;
                writeln!(o)?;
            }
        }
        Ok(())
    })
}
