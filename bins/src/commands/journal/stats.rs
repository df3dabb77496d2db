//! `pilotq journal stats`: one streaming pass over the events.

use super::dump::point;
use super::print::{json, with_out};
use super::source::{Source, SourceArgs};
use anyhow::Result;
use pilotq_journal::postmortem::histogram::Percentiles;
use pilotq_journal::postmortem::stats::StatsFold;
use pilotq_journal::postmortem::{human_ms, utc_ms, Point};
use std::collections::BTreeMap;
use std::io::Write;

#[derive(Debug, Clone, clap::Args)]
#[command(after_help = super::POINT_HELP)]
pub struct StatsArgs {
    #[command(flatten)]
    pub source: SourceArgs,
    /// Count only events at or after T (every event is still followed, so
    /// a job submitted before T has its queue wait).
    #[arg(long, value_name = "T")]
    pub since: Option<String>,
    /// Count only events at or before T.
    #[arg(long, value_name = "T")]
    pub until: Option<String>,
    /// One JSON object.
    #[arg(long)]
    pub json: bool,
}

pub fn run(a: StatsArgs) -> Result<i32> {
    let since = point("since", &a.since)?;
    let until = point("until", &a.until)?;
    let source = Source::open(&a.source)?;
    let mut fold = StatsFold::new(since, until);
    for item in source.events_from(1)? {
        let (seq, env) = item?;
        if fold.done(seq) {
            break;
        }
        fold.push(seq, &env);
    }
    let s = fold.finish();
    with_out(|o| {
        if a.json {
            return json(o, &s);
        }
        let span = |p: Option<(u64, u64)>| {
            p.map(|(seq, t)| format!("#{seq} ({})", utc_ms(t)))
                .unwrap_or_else(|| "-".into())
        };
        writeln!(
            o,
            "{} events, {} to {}",
            s.events,
            span(s.first),
            span(s.last)
        )?;
        if since.is_some() || until.is_some() {
            writeln!(o, "window: {} to {}", show(since), show(until))?;
        }
        writeln!(
            o,
            "submitted: {} jobs in {} clusters; completed {}; removed {}",
            s.jobs_submitted, s.clusters_submitted, s.completed, s.removed
        )?;
        writeln!(
            o,
            "queue wait (submit → first start): {}",
            pct(&s.queue_wait)
        )?;
        writeln!(o, "run time (start → completion):     {}", pct(&s.run_time))?;
        writeln!(
            o,
            "completions per minute: mean {:.1}, peak {}{}",
            s.completions_per_minute_mean,
            s.completions_per_minute_peak,
            s.peak_minute
                .map(|m| format!(" (minute from {})", utc_ms(m)))
                .unwrap_or_default()
        )?;
        writeln!(
            o,
            "requeues (holder lost): {}{}",
            s.requeues,
            per(&s.requeues_per_holder)
        )?;
        writeln!(o, "holds: {}", s.holds)?;
        writeln!(
            o,
            "failures (non-zero exit or signal): {}{}",
            s.failures,
            per(&s.failures_per_code)
        )?;
        if !s.failures_per_holder.is_empty() {
            writeln!(o, "  by holder:{}", per(&s.failures_per_holder))?;
        }
        writeln!(o, "master starts: {}", s.restarts.len())?;
        for r in &s.restarts {
            match r.outage_ms {
                Some(ms) => writeln!(
                    o,
                    "  #{:<8} {} {}: down {} (last event before: {})",
                    r.seq,
                    utc_ms(r.at),
                    r.master,
                    human_ms(ms),
                    span(r.last_before)
                )?,
                None => writeln!(
                    o,
                    "  #{:<8} {} {}: first start",
                    r.seq,
                    utc_ms(r.at),
                    r.master
                )?,
            }
        }
        writeln!(
            o,
            "at the end: {} idle, {} running, {} held",
            s.idle, s.running, s.held
        )?;
        Ok(())
    })
}

fn show(p: Option<Point>) -> String {
    p.map(|p| p.to_string()).unwrap_or_else(|| "-".into())
}

fn pct(p: &Percentiles) -> String {
    let f = |v: Option<u64>| v.map(human_ms).unwrap_or_else(|| "-".into());
    format!(
        "p50 {}, p90 {}, p99 {}, max {} ({} jobs)",
        f(p.p50_ms),
        f(p.p90_ms),
        f(p.p99_ms),
        f(p.max_ms),
        p.count
    )
}

/// ` (a: 3, b: 1)`, the largest first, at most 10.
fn per(m: &BTreeMap<String, u64>) -> String {
    if m.is_empty() {
        return String::new();
    }
    let mut v: Vec<(&String, &u64)> = m.iter().collect();
    v.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
    let mut s: Vec<String> = v
        .iter()
        .take(10)
        .map(|(k, n)| format!("{k}: {n}"))
        .collect();
    if v.len() > 10 {
        s.push(format!("… {} more", v.len() - 10));
    }
    format!(" ({})", s.join(", "))
}
