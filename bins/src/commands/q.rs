//! `pilotq q`: jobs as a `condor_q -nobatch` table, a JSON array (`--json`)
//! or JSON lines (`--jsonl`), streamed as the master's chunks arrive.

use crate::cli::QArgs;
use crate::client_opts::block_on;
use anyhow::Result;
use pilotq_wire::time_format::month_day_time;
use pilotq_wire::{JobStatus, JobView, Selector};
use serde::ser::{SerializeSeq, Serializer};
use std::io::Write;
use std::ops::ControlFlow;

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
    // Each chunk is written as it arrives and dropped: the client holds one
    // chunk of the answer, never the whole (1,000,000 jobs collected first
    // took 3.9 GB and 35.8 s). A plain `stdout()` is line-buffered, a
    // `write` per line: buffer it whole.
    let mut out = std::io::BufWriter::with_capacity(1 << 16, std::io::stdout().lock());
    block_on(async {
        // Connected before anything is written: a master that cannot be
        // reached leaves stdout empty. A connection lost mid-answer leaves
        // what came so far, and the exit status says it failed.
        let mut c = a.client.connect().await?;
        if a.jsonl {
            stream(&mut c, sel, |j| {
                serde_json::to_writer(&mut out, &JobJson::of(j))?;
                out.write_all(b"\n")
            })
            .await?;
        } else if a.json {
            // serde_json's own pretty array, fed one element at a time: the
            // same bytes `to_writer_pretty` wrote for a whole Vec.
            let mut ser = serde_json::Serializer::pretty(&mut out);
            let mut seq = ser.serialize_seq(None)?;
            stream(&mut c, sel, |j| Ok(seq.serialize_element(&JobJson::of(j))?)).await?;
            SerializeSeq::end(seq)?;
            out.write_all(b"\n")?;
        } else {
            let mut t = TableWriter::new();
            t.begin(&mut out)?;
            stream(&mut c, sel, |j| t.row(&mut out, j)).await?;
            t.end(&mut out)?;
        }
        out.flush()?;
        anyhow::Ok(())
    })?;
    Ok(0)
}

/// Queries and hands each job to `write` as its chunk arrives. A write that
/// fails (the reader went away: `pilotq q | head`) stops the query and is
/// the error.
async fn stream(
    c: &mut pilotq_actors::Client,
    sel: Vec<Selector>,
    mut write: impl FnMut(&JobView) -> std::io::Result<()>,
) -> Result<()> {
    let mut written = Ok(());
    c.query_each(sel, |jobs| {
        written = jobs.iter().try_for_each(&mut write);
        match written {
            Ok(()) => ControlFlow::Continue(()),
            Err(_) => ControlFlow::Break(()),
        }
    })
    .await?;
    Ok(written?)
}

/// A job as `pilotq q --json` prints it. The keys are in alphabetical order,
/// as they were when each job was a `serde_json::Value` (a sorted map), so
/// the output is unchanged; it is serialized straight from the `JobView`,
/// without building a value tree.
#[derive(serde::Serialize)]
pub struct JobJson<'a> {
    args: &'a [String],
    attempts: u32,
    cluster: u64,
    cmd: &'a str,
    entered_status_at: u64,
    exit_code: Option<i32>,
    hold_reason: &'a Option<String>,
    holder: &'a Option<String>,
    #[serde(serialize_with = "display")]
    id: pilotq_wire::JobId,
    owner: &'a str,
    priority: i32,
    proc: u32,
    request_cpus: u32,
    request_disk: u64,
    request_memory: u64,
    signal: Option<i32>,
    started_at: Option<u64>,
    status: u8,
    status_name: &'static str,
    submitted_at: u64,
}

fn display<S: serde::Serializer>(v: &impl std::fmt::Display, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(v)
}

impl<'a> JobJson<'a> {
    pub fn of(j: &'a JobView) -> JobJson<'a> {
        JobJson {
            args: &j.arguments,
            attempts: j.attempts,
            cluster: j.id.cluster.0,
            cmd: &j.cmd,
            entered_status_at: j.entered_status_at,
            exit_code: j.exit_code,
            hold_reason: &j.hold_reason,
            holder: &j.holder,
            id: j.id,
            owner: &j.owner,
            priority: j.priority,
            proc: j.id.proc,
            request_cpus: j.request.cores,
            request_disk: j.request.disk_mb,
            request_memory: j.request.memory_mb,
            signal: j.signal,
            started_at: j.started_at,
            status: j.status.number(),
            status_name: j.status.name(),
            submitted_at: j.submitted_at,
        }
    }
}

/// The table, a row at a time; the totals line is counted on the way.
struct TableWriter {
    now: u64,
    total: u64,
    by_status: [u64; 6],
    /// Jobs of a cluster share a submission time: formatted once per run.
    date_of: Option<(u64, String)>,
    cmd: String,
}

impl TableWriter {
    fn new() -> TableWriter {
        TableWriter {
            now: pilotq_journal::now_ms(),
            total: 0,
            by_status: [0; 6],
            date_of: None,
            cmd: String::new(),
        }
    }

    fn begin(&mut self, out: &mut impl Write) -> std::io::Result<()> {
        writeln!(
            out,
            " {:<10} {:<14} {:<11} {:>12} {:<2} {:<3} {:>4} CMD",
            "ID", "OWNER", "SUBMITTED", "RUN_TIME", "ST", "PRI", "SIZE"
        )
    }

    fn row(&mut self, out: &mut impl Write, j: &JobView) -> std::io::Result<()> {
        self.total += 1;
        self.by_status[j.status.number() as usize] += 1;
        let run_ms = match (j.status, j.started_at) {
            (JobStatus::Running, Some(s)) => self.now.saturating_sub(s),
            _ => 0,
        };
        // The first 60 characters of `cmd args…`.
        self.cmd.clear();
        self.cmd.push_str(&j.cmd);
        for a in &j.arguments {
            self.cmd.push(' ');
            self.cmd.push_str(a);
        }
        if let Some((cut, _)) = self.cmd.char_indices().nth(60) {
            self.cmd.truncate(cut);
        }
        if self.date_of.as_ref().map(|(t, _)| *t) != Some(j.submitted_at) {
            self.date_of = Some((j.submitted_at, month_day_time(j.submitted_at)));
        }
        let date = self.date_of.as_ref().map_or("", |(_, d)| d.as_str());
        let owner = match j.owner.char_indices().nth(14) {
            Some((cut, _)) => &j.owner[..cut],
            None => &j.owner,
        };
        writeln!(
            out,
            " {:<10} {:<14} {:<11} {:>12} {:<2} {:<3} {:>4.1} {}",
            j.id.to_string(),
            owner,
            date,
            run_time(run_ms),
            j.status.letter(),
            j.priority,
            j.request.memory_mb as f64,
            self.cmd
        )
    }

    fn end(&mut self, out: &mut impl Write) -> std::io::Result<()> {
        let n = &self.by_status;
        writeln!(out)?;
        writeln!(
            out,
            "Total for query: {} jobs; {} completed, {} removed, {} idle, {} running, {} held, 0 suspended",
            self.total,
            n[JobStatus::Completed as usize],
            n[JobStatus::Removed as usize],
            n[JobStatus::Idle as usize],
            n[JobStatus::Running as usize],
            n[JobStatus::Held as usize]
        )
    }
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

    fn view(proc: u32) -> JobView {
        JobView {
            id: pilotq_wire::JobId::new(7, proc),
            status: JobStatus::Held,
            attempts: 2,
            exit_code: None,
            signal: Some(9),
            holder: Some("w\"1".into()),
            hold_reason: Some("disk\nfull".into()),
            owner: "ålice".into(),
            cmd: "/bin/echo".into(),
            arguments: vec!["a b".into(), "$(Process)".into()],
            priority: -3,
            request: pilotq_wire::Resources::new(2, 512, 100),
            submitted_at: 1_700_000_000_000,
            entered_status_at: 1_700_000_001_000,
            started_at: Some(1_700_000_000_500),
            attributes: Default::default(),
            completed_at: None,
            num_starts: 1,
            last_holder: None,
            seq: 0,
        }
    }

    /// What `--json` printed when each job was a `serde_json::Value`.
    fn as_value(j: &JobView) -> serde_json::Value {
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

    #[test]
    fn streamed_json_is_byte_for_byte_the_old_value_array() {
        for n in [0, 1, 3] {
            let jobs: Vec<JobView> = (0..n).map(view).collect();
            let old: Vec<serde_json::Value> = jobs.iter().map(as_value).collect();
            let mut want = serde_json::to_vec_pretty(&old).unwrap();
            want.push(b'\n');
            let mut got = Vec::new();
            let mut ser = serde_json::Serializer::pretty(&mut got);
            let mut seq = ser.serialize_seq(None).unwrap();
            for j in &jobs {
                seq.serialize_element(&JobJson::of(j)).unwrap();
            }
            SerializeSeq::end(seq).unwrap();
            got.push(b'\n');
            assert_eq!(
                String::from_utf8(got).unwrap(),
                String::from_utf8(want).unwrap()
            );
            // And each JSON line is the same object, compact.
            for j in &jobs {
                let line = serde_json::to_string(&JobJson::of(j)).unwrap();
                assert_eq!(line, serde_json::to_string(&as_value(j)).unwrap());
            }
        }
    }

    #[test]
    fn table_counts_while_it_streams() {
        let mut t = TableWriter::new();
        let mut out = Vec::new();
        t.begin(&mut out).unwrap();
        let mut jobs: Vec<JobView> = (0..3).map(view).collect();
        jobs[1].status = JobStatus::Idle;
        for j in &jobs {
            t.row(&mut out, j).unwrap();
        }
        t.end(&mut out).unwrap();
        let out = String::from_utf8(out).unwrap();
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines.len(), 6);
        assert!(lines[1].starts_with(" 7.0        ålice          11/14 22:13"));
        assert!(lines[1].ends_with(" H  -3  512.0 /bin/echo a b $(Process)"));
        assert_eq!(
            lines[5],
            "Total for query: 3 jobs; 0 completed, 0 removed, 1 idle, 0 running, 2 held, 0 suspended"
        );
    }

    #[test]
    fn ids_become_selectors_and_garbage_is_refused() {
        assert_eq!(selectors(&["3".into(), "4.1".into()]).unwrap().len(), 2);
        assert!(selectors(&["x".into()]).is_err());
        assert!(selectors(&["3.".into()]).is_err());
    }
}
