//! `pilotq journal plot FILE.svg`: idle, running and completed jobs over
//! time, master restarts (and the outages before them) and holder losses
//! marked, drawn by the simulator's plotter (`pilotq_sim::timeline`).

use super::print::{json, with_out};
use super::source::{Source, SourceArgs};
use anyhow::{Context, Result};
use pilotq_journal::postmortem::curve::CurveFold;
use pilotq_journal::postmortem::utc_ms;
use pilotq_sim::timeline::{Chart, Sample, Timeline};
use std::io::Write;
use std::path::PathBuf;

#[derive(Debug, Clone, clap::Args)]
pub struct PlotArgs {
    /// Where to write the chart (SVG).
    #[arg(value_name = "FILE.svg")]
    pub file: PathBuf,
    #[command(flatten)]
    pub source: SourceArgs,
    /// Print what was drawn as JSON (samples, restarts, holder losses).
    #[arg(long)]
    pub json: bool,
}

pub fn run(a: PlotArgs) -> Result<i32> {
    let source = Source::open(&a.source)?;
    let mut fold = CurveFold::new();
    for item in source.events_from(1)? {
        let (_, env) = item?;
        fold.push(&env);
    }
    let curve = fold.finish();
    let t0 = curve.samples.first().map_or(0, |s| s.t);
    let secs = |t: u64| t.saturating_sub(t0) as f64 / 1000.0;
    let mut samples: Vec<Sample> =
        Vec::with_capacity(curve.samples.len() + 2 * curve.outages.len());
    for r in &curve.samples {
        samples.push(Sample {
            t_s: secs(r.t),
            idle: r.idle,
            running: r.running,
            completed: r.completed,
            master_up: true,
        });
    }
    // Each outage: a "down" reading at its start (the counts of the last
    // event before it) and an "up" one at the restart, so that the chart
    // shades it.
    for &(down, up) in &curve.outages {
        let before = curve.samples.iter().rev().find(|r| r.t <= down);
        if let Some(r) = before {
            samples.push(Sample {
                t_s: secs(down),
                idle: r.idle,
                running: r.running,
                completed: r.completed,
                master_up: false,
            });
            samples.push(Sample {
                t_s: secs(up),
                master_up: true,
                ..*samples.last().expect("just pushed")
            });
        }
    }
    samples.sort_by(|a, b| a.t_s.total_cmp(&b.t_s));
    let timeline = Timeline {
        samples,
        crashes: curve.restarts.iter().map(|&t| secs(t)).collect(),
        partitions: Vec::new(),
    };
    let chart = Chart {
        title: format!("pilotq journal ({}): jobs over time", source.describe()),
        crash_label: "master restarted".into(),
        x_label: format!("seconds since {}", utc_ms(t0)),
        ticks: curve.requeues.iter().map(|&t| secs(t)).collect(),
        ticks_label: "holder lost (requeue)".into(),
    };
    timeline
        .write_svg_chart(&a.file, &chart)
        .with_context(|| format!("cannot write {}", a.file.display()))?;
    with_out(|o| {
        if a.json {
            return json(
                o,
                &serde_json::json!({
                    "file": a.file,
                    "start": t0,
                    "samples": curve.samples.len(),
                    "restarts": curve.restarts,
                    "outages": curve.outages,
                    "requeues": curve.requeues.len(),
                    "last": curve.samples.last(),
                }),
            );
        }
        writeln!(
            o,
            "wrote {}: {} readings, {} restart(s), {} holder loss mark(s)",
            a.file.display(),
            curve.samples.len(),
            curve.restarts.len(),
            curve.requeues.len()
        )?;
        Ok(())
    })
}
