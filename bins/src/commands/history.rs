//! `pilotq history`: finished jobs from the master's history store, newest
//! first (`--forwards`: oldest first), as a table like `pilotq q` with the
//! completion date and the exit code, a JSON array (`--json`) or JSON lines
//! (`--jsonl`). Each chunk is printed as it arrives and dropped, so the
//! client never holds the whole history; `--limit N` stops reading at the
//! Nth job and closes the connection, which stops the master reading its
//! store.
//!
//! A JSON object is `pilotq q --json`'s plus the history fields:
//! `completed_at` (Unix ms), `num_starts`, `last_holder`, `seq` (the
//! journal sequence of the event that ended the job) and `attributes` (the
//! custom `+Attr`s, as ClassAd text).

use crate::cli::HistoryArgs;
use crate::client_opts::block_on;
use crate::commands::q::{run_time, selectors, JobJson};
use anyhow::Result;
use pilotq_wire::time_format::month_day_time;
use pilotq_wire::{JobStatus, JobView};
use std::io::Write;
use std::ops::ControlFlow;

pub fn run(a: HistoryArgs) -> Result<i32> {
    crate::logging::init("warn");
    let sel = selectors(&a.ids)?;
    let style = if a.jsonl {
        Style::Lines
    } else if a.json {
        Style::Array
    } else {
        Style::Table
    };
    let mut out = std::io::BufWriter::with_capacity(1 << 16, std::io::stdout().lock());
    block_on(async {
        // Connected before anything is written: a master that cannot be
        // reached leaves stdout empty.
        let mut c = a.client.connect().await?;
        let mut p = Printer::new(style, a.limit);
        p.begin(&mut out)?;
        let mut written = Ok(());
        c.history_each(sel, a.forwards, |jobs| {
            for j in &jobs {
                match p.print(&mut out, j) {
                    Ok(ControlFlow::Continue(())) => {}
                    Ok(ControlFlow::Break(())) => return ControlFlow::Break(()),
                    Err(e) => {
                        // The reader went away (`pilotq history | head`).
                        written = Err(e);
                        return ControlFlow::Break(());
                    }
                }
            }
            ControlFlow::Continue(())
        })
        .await?;
        // Closing the connection tells the master to stop reading.
        drop(c);
        written?;
        p.end(&mut out)?;
        out.flush()?;
        anyhow::Ok(())
    })?;
    Ok(0)
}

/// A finished job as `pilotq history --json` prints it: `q --json`'s
/// object and the history fields, keys sorted.
pub fn history_json(j: &JobView) -> serde_json::Value {
    let mut v = serde_json::to_value(JobJson::of(j)).unwrap_or_default();
    if let Some(m) = v.as_object_mut() {
        m.insert("completed_at".into(), j.completed_at.into());
        m.insert("num_starts".into(), j.num_starts.into());
        m.insert("last_holder".into(), j.last_holder.clone().into());
        m.insert("seq".into(), j.seq.into());
        m.insert(
            "attributes".into(),
            serde_json::to_value(&j.attributes).unwrap_or_default(),
        );
    }
    v
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Style {
    Table,
    /// serde_json's pretty array, written an element at a time.
    Array,
    Lines,
}

/// Prints one answer a job at a time, counting on the way.
struct Printer {
    style: Style,
    limit: Option<u64>,
    printed: u64,
    completed: u64,
    removed: u64,
}

impl Printer {
    fn new(style: Style, limit: Option<u64>) -> Printer {
        Printer {
            style,
            limit,
            printed: 0,
            completed: 0,
            removed: 0,
        }
    }

    fn begin(&mut self, out: &mut impl Write) -> std::io::Result<()> {
        if self.style != Style::Table {
            return Ok(());
        }
        writeln!(
            out,
            " {:<10} {:<14} {:<11} {:>12} {:<2} {:<11} {:>5} CMD",
            "ID", "OWNER", "SUBMITTED", "RUN_TIME", "ST", "COMPLETED", "EXIT"
        )
    }

    /// Prints `j`; `Break` once `--limit` jobs are out.
    fn print(&mut self, out: &mut impl Write, j: &JobView) -> std::io::Result<ControlFlow<()>> {
        if self.limit.is_some_and(|n| self.printed >= n) {
            return Ok(ControlFlow::Break(()));
        }
        let first = self.printed == 0;
        self.printed += 1;
        match j.status {
            JobStatus::Completed => self.completed += 1,
            JobStatus::Removed => self.removed += 1,
            _ => {}
        }
        match self.style {
            Style::Table => table_row(out, j)?,
            Style::Lines => {
                serde_json::to_writer(&mut *out, &history_json(j))?;
                out.write_all(b"\n")?;
            }
            Style::Array => {
                out.write_all(if first { b"[\n  " } else { b",\n  " })?;
                let text = serde_json::to_string_pretty(&history_json(j))?;
                out.write_all(text.replace('\n', "\n  ").as_bytes())?;
            }
        }
        Ok(if self.limit.is_some_and(|n| self.printed >= n) {
            ControlFlow::Break(())
        } else {
            ControlFlow::Continue(())
        })
    }

    fn end(&mut self, out: &mut impl Write) -> std::io::Result<()> {
        match self.style {
            Style::Table => {
                writeln!(out)?;
                writeln!(
                    out,
                    "Total for query: {} jobs; {} completed, {} removed",
                    self.printed, self.completed, self.removed
                )
            }
            Style::Array if self.printed == 0 => out.write_all(b"[]\n"),
            Style::Array => out.write_all(b"\n]\n"),
            Style::Lines => Ok(()),
        }
    }
}

/// When the job ended: the record's completion time, else (a job that
/// never reached the store) when it entered its status.
fn ended_at(j: &JobView) -> u64 {
    j.completed_at.unwrap_or(j.entered_status_at)
}

fn table_row(out: &mut impl Write, j: &JobView) -> std::io::Result<()> {
    let run_ms = j.started_at.map_or(0, |s| ended_at(j).saturating_sub(s));
    let exit = match (j.status, j.exit_code, j.signal) {
        (JobStatus::Completed, Some(c), _) => c.to_string(),
        (JobStatus::Completed, None, Some(s)) => format!("sig{s}"),
        _ => "-".to_string(),
    };
    // The first 60 characters of `cmd args…`, as `pilotq q`.
    let mut cmd = j.cmd.clone();
    for a in &j.arguments {
        cmd.push(' ');
        cmd.push_str(a);
    }
    if let Some((cut, _)) = cmd.char_indices().nth(60) {
        cmd.truncate(cut);
    }
    let owner: String = j.owner.chars().take(14).collect();
    writeln!(
        out,
        " {:<10} {:<14} {:<11} {:>12} {:<2} {:<11} {:>5} {}",
        j.id.to_string(),
        owner,
        month_day_time(j.submitted_at),
        run_time(run_ms),
        j.status.letter(),
        month_day_time(ended_at(j)),
        exit,
        cmd
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use pilotq_wire::{JobId, Resources};

    /// A record of job 7.P: exit code P, or killed by signal 9 for P = 2,
    /// removed for P = 3.
    fn record(proc: u32) -> JobView {
        let mut j = JobView {
            id: JobId::new(7, proc),
            status: JobStatus::Completed,
            attempts: 1,
            exit_code: Some(proc as i32),
            signal: None,
            holder: None,
            hold_reason: None,
            owner: "alice".into(),
            cmd: "/bin/sh".into(),
            arguments: vec!["-c".into(), format!("exit {proc}")],
            priority: 0,
            request: Resources::new(1, 512, 100),
            // 2023-11-14 22:13:20 UTC
            submitted_at: 1_700_000_000_000,
            entered_status_at: 1_700_000_090_000,
            started_at: Some(1_700_000_010_000),
            attributes: [("Project".to_string(), "\"atlas\"".to_string())]
                .into_iter()
                .collect(),
            completed_at: Some(1_700_000_090_000),
            num_starts: 1,
            last_holder: Some("w1".into()),
            seq: 40 + u64::from(proc),
        };
        if proc == 2 {
            j.exit_code = None;
            j.signal = Some(9);
        }
        if proc == 3 {
            j.status = JobStatus::Removed;
            j.exit_code = None;
        }
        j
    }

    fn render(style: Style, limit: Option<u64>, jobs: &[JobView]) -> (String, usize) {
        let mut p = Printer::new(style, limit);
        let mut out = Vec::new();
        p.begin(&mut out).unwrap();
        let mut taken = 0;
        for j in jobs {
            taken += 1;
            if p.print(&mut out, j).unwrap().is_break() {
                break;
            }
        }
        p.end(&mut out).unwrap();
        (String::from_utf8(out).unwrap(), taken)
    }

    #[test]
    fn table_shows_completion_and_exit() {
        let jobs: Vec<JobView> = (0..4).map(record).collect();
        let (out, _) = render(Style::Table, None, &jobs);
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(
            lines[0],
            " ID         OWNER          SUBMITTED       RUN_TIME ST COMPLETED    EXIT CMD"
        );
        assert_eq!(
            lines[2],
            " 7.1        alice          11/14 22:13   0+00:01:20 C  11/14 22:14     1 /bin/sh -c exit 1"
        );
        assert!(lines[3].contains(" C  11/14 22:14  sig9 "), "{}", lines[3]);
        assert!(lines[4].contains(" X  11/14 22:14     - "), "{}", lines[4]);
        assert_eq!(lines[5], "");
        assert_eq!(lines[6], "Total for query: 4 jobs; 3 completed, 1 removed");
        assert_eq!(lines.len(), 7);
    }

    #[test]
    fn json_is_q_json_plus_the_history_fields() {
        let jobs: Vec<JobView> = (0..3).map(record).collect();
        let (out, _) = render(Style::Array, None, &jobs);
        // Byte for byte serde_json's pretty array of the same objects.
        let whole: Vec<serde_json::Value> = jobs.iter().map(history_json).collect();
        assert_eq!(out, serde_json::to_string_pretty(&whole).unwrap() + "\n");
        let v: serde_json::Value = serde_json::from_str(&out).unwrap();
        let j = &v[1];
        let q = serde_json::to_value(JobJson::of(&jobs[1])).unwrap();
        for (k, want) in q.as_object().unwrap() {
            assert_eq!(&j[k], want, "{k}");
        }
        assert_eq!(j["exit_code"], 1);
        assert_eq!(j["completed_at"], 1_700_000_090_000u64);
        assert_eq!(j["num_starts"], 1);
        assert_eq!(j["last_holder"], "w1");
        assert_eq!(j["seq"], 41);
        assert_eq!(j["attributes"]["Project"], "\"atlas\"");
        assert_eq!(v[2]["signal"], 9);
        // Nothing: still an array.
        assert_eq!(render(Style::Array, None, &[]).0, "[]\n");
    }

    #[test]
    fn jsonl_and_the_limit() {
        let jobs: Vec<JobView> = (0..4).map(record).collect();
        let (out, taken) = render(Style::Lines, Some(2), &jobs);
        assert_eq!(taken, 2, "reading stops at the limit");
        let lines: Vec<serde_json::Value> = out
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[1]["id"], "7.1");
        let (out, taken) = render(Style::Table, Some(1), &jobs);
        assert_eq!(taken, 1);
        assert!(out.ends_with("Total for query: 1 jobs; 1 completed, 0 removed\n"));
    }
}
