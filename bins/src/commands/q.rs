//! `pilotq q`: jobs as a `condor_q -nobatch` table, or JSON.

use crate::cli::QArgs;
use crate::client_opts::block_on;
use anyhow::Result;
use pilotq_wire::time_format::month_day_time;
use pilotq_wire::{JobStatus, JobView, Selector};
use std::io::Write;

/// Turns `C` and `C.P` arguments into selectors, refusing anything else.
pub fn selectors(ids: &[String]) -> Result<Vec<Selector>> {
    ids.iter()
        .map(|s| {
            if s.contains('.') {
                Ok(Selector::Job(s.parse()?))
            } else {
                Ok(Selector::Cluster(s.parse()?))
            }
        })
        .collect()
}

pub fn run(a: QArgs) -> Result<i32> {
    crate::logging::init("warn");
    let sel = selectors(&a.ids)?;
    let jobs = block_on(async {
        let mut c = a.client.connect().await?;
        anyhow::Ok(c.query(sel).await?)
    })?;
    let mut out = std::io::stdout().lock();
    if a.json {
        let arr: Vec<serde_json::Value> = jobs.iter().map(job_json).collect();
        serde_json::to_writer_pretty(&mut out, &arr)?;
        writeln!(out)?;
    } else {
        print_table(&mut out, &jobs)?;
    }
    Ok(0)
}

pub fn job_json(j: &JobView) -> serde_json::Value {
    serde_json::json!({
        "id": j.id.to_string(),
        "cluster": j.id.cluster.0,
        "proc": j.id.proc,
        "status": j.status.number(),
        "status_name": j.status.name(),
        "attempts": j.attempts,
        "exit_code": j.exit_code,
        "signal": j.signal,
        "holder": j.holder,
        "hold_reason": j.hold_reason,
        "owner": j.owner,
        "cmd": j.cmd,
        "args": j.arguments,
        "priority": j.priority,
        "request_cpus": j.request.cores,
        "request_memory": j.request.memory_mb,
        "request_disk": j.request.disk_mb,
        "submitted_at": j.submitted_at,
        "entered_status_at": j.entered_status_at,
        "started_at": j.started_at,
    })
}

fn print_table(out: &mut impl Write, jobs: &[JobView]) -> std::io::Result<()> {
    let now = pilotq_journal::now_ms();
    writeln!(
        out,
        " {:<10} {:<14} {:<11} {:>12} {:<2} {:<3} {:>4} CMD",
        "ID", "OWNER", "SUBMITTED", "RUN_TIME", "ST", "PRI", "SIZE"
    )?;
    let mut n = [0u64; 6];
    for j in jobs {
        n[j.status.number() as usize] += 1;
        let run_ms = match (j.status, j.started_at) {
            (JobStatus::Running, Some(s)) => now.saturating_sub(s),
            _ => 0,
        };
        let cmd = std::iter::once(j.cmd.as_str())
            .chain(j.arguments.iter().map(String::as_str))
            .collect::<Vec<_>>()
            .join(" ");
        let cmd: String = cmd.chars().take(60).collect();
        writeln!(
            out,
            " {:<10} {:<14} {:<11} {:>12} {:<2} {:<3} {:>4.1} {}",
            j.id.to_string(),
            j.owner.chars().take(14).collect::<String>(),
            month_day_time(j.submitted_at),
            run_time(run_ms),
            j.status.letter(),
            j.priority,
            j.request.memory_mb as f64,
            cmd
        )?;
    }
    writeln!(out)?;
    writeln!(
        out,
        "Total for query: {} jobs; {} completed, {} removed, {} idle, {} running, {} held, 0 suspended",
        jobs.len(),
        n[JobStatus::Completed as usize],
        n[JobStatus::Removed as usize],
        n[JobStatus::Idle as usize],
        n[JobStatus::Running as usize],
        n[JobStatus::Held as usize]
    )
}

/// HTCondor's `D+HH:MM:SS`.
pub fn run_time(ms: u64) -> String {
    let s = ms / 1000;
    format!(
        "{}+{:02}:{:02}:{:02}",
        s / 86400,
        (s / 3600) % 24,
        (s / 60) % 60,
        s % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_and_run_times_format_like_condor_q() {
        // 2026-11-22 03:49:20 UTC
        assert_eq!(month_day_time(1_795_319_360_000), "11/22 03:49");
        assert_eq!(run_time(90_061_000), "1+01:01:01");
        assert_eq!(run_time(0), "0+00:00:00");
    }

    #[test]
    fn ids_become_selectors_and_garbage_is_refused() {
        assert_eq!(selectors(&["3".into(), "4.1".into()]).unwrap().len(), 2);
        assert!(selectors(&["x".into()]).is_err());
        assert!(selectors(&["3.".into()]).is_err());
    }
}
