//! `pilotq journal dump`: the events, in order, optionally filtered.

use super::print::with_out;
use super::source::{Source, SourceArgs};
use anyhow::{anyhow, Result};
use pilotq_journal::postmortem::filter::{parse_kinds, Filter, JobSel};
use pilotq_journal::postmortem::{utc_ms, Point};
use std::io::Write;

#[derive(Debug, Clone, clap::Args)]
#[command(after_help = super::POINT_HELP)]
pub struct DumpArgs {
    #[command(flatten)]
    pub source: SourceArgs,
    /// One JSON object per line: {seq, v, t, time, e}.
    #[arg(long)]
    pub json: bool,
    /// Only this job's events (C.P) and its cluster's, or a whole cluster's (C).
    #[arg(long, value_name = "C.P")]
    pub job: Option<String>,
    /// Only events at or after T.
    #[arg(long, value_name = "T")]
    pub since: Option<String>,
    /// Only events at or before T.
    #[arg(long, value_name = "T")]
    pub until: Option<String>,
    /// Only these kinds, comma-separated: JobCompleted, completed,
    /// requeued, submitted, MasterStarted, ...
    #[arg(long, value_name = "K[,K...]")]
    pub kind: Option<String>,
}

/// Parses `--since`/`--until` into one clear error naming the flag.
pub fn point(flag: &str, v: &Option<String>) -> Result<Option<Point>> {
    v.as_deref()
        .map(|s| s.parse::<Point>().map_err(|e| anyhow!("--{flag}: {e}")))
        .transpose()
}

pub fn run(a: DumpArgs) -> Result<i32> {
    let filter = Filter {
        job: a
            .job
            .as_deref()
            .map(|s| s.parse::<JobSel>().map_err(|e| anyhow!("--job: {e}")))
            .transpose()?,
        since: point("since", &a.since)?,
        until: point("until", &a.until)?,
        kinds: a
            .kind
            .as_deref()
            .map(|k| parse_kinds(k).map_err(|e| anyhow!("--kind: {e}")))
            .transpose()?,
    };
    let source = Source::open(&a.source)?;
    with_out(|o| {
        for item in source.events_from(filter.first_seq())? {
            let (seq, env) = item?;
            if filter.past_end(seq) {
                break;
            }
            if !filter.keeps(seq, env.t, &env.e) {
                continue;
            }
            if a.json {
                let v = serde_json::json!({
                    "seq": seq, "v": env.v, "t": env.t, "time": utc_ms(env.t), "e": env.e
                });
                writeln!(o, "{v}")?;
            } else {
                writeln!(o, "{seq:>8} {} {:?}", utc_ms(env.t), env.e)?;
            }
        }
        Ok(())
    })
}
