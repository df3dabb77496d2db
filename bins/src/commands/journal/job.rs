//! `pilotq journal job C.P`: one job's life across its attempts.

use super::print::{json, with_out};
use super::source::{Source, SourceArgs};
use anyhow::{anyhow, Result};
use pilotq_journal::postmortem::job_life::LifeFold;
use pilotq_journal::postmortem::{human_ms, utc_ms};
use pilotq_wire::JobId;
use std::io::Write;

#[derive(Debug, Clone, clap::Args)]
pub struct JobArgs {
    /// The job, C.P.
    pub job: String,
    #[command(flatten)]
    pub source: SourceArgs,
    /// One JSON object: the steps, the attempts, the state.
    #[arg(long)]
    pub json: bool,
}

pub fn run(a: JobArgs) -> Result<i32> {
    let id: JobId = a.job.parse().map_err(|e| anyhow!("{e}"))?;
    let source = Source::open(&a.source)?;
    let mut fold = LifeFold::new(id);
    for item in source.events_from(1)? {
        let (seq, env) = item?;
        fold.push(seq, &env);
    }
    let life = fold.finish()?;
    with_out(|o| {
        if a.json {
            return json(o, &life);
        }
        let mut head = format!("job {}: {}", life.job, life.state);
        if let Some(t) = life.total_ms {
            head += &format!(" {} after submission", human_ms(t));
        }
        if let Some(w) = life.queue_wait_ms {
            head += &format!(", queue wait {}", human_ms(w));
        }
        writeln!(o, "{head}")?;
        for s in &life.steps {
            let mut line = format!("  #{:<8} {}  {}", s.seq, utc_ms(s.at), s.what);
            if let Some(h) = &s.holder {
                line += &format!(" to {h}");
            }
            if let Some(a) = s.attempt {
                line += &format!(" (attempt {a})");
            }
            if let Some(d) = &s.detail {
                line += &format!(": {d}");
            }
            if let Some(ms) = s.after_ms {
                line += &format!("  [+{}]", human_ms(ms));
            }
            if !s.applied {
                line += "  (did not apply: the job was not in a state it fits)";
            }
            writeln!(o, "{line}")?;
        }
        if !life.attempts.is_empty() {
            writeln!(o, "attempts:")?;
            for at in &life.attempts {
                let ran = at
                    .run_ms
                    .map(|r| format!(", ran {}", human_ms(r)))
                    .unwrap_or_default();
                writeln!(
                    o,
                    "  {:>3}  on {}  {}{ran}",
                    at.attempt, at.holder, at.ended
                )?;
            }
        }
        Ok(())
    })
}
