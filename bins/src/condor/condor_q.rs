//! # `condor_q` — the job queue, as HTCondor's `condor_q` prints it
//!
//! Options (HTCondor's single-dash style; a long option may be shortened to
//! any prefix HTCondor accepts, `--x` works as `-x`):
//!
//! | option | effect |
//! |---|---|
//! | `C`, `C.P` (positional) | only these clusters / jobs (several: any of them) |
//! | `OWNER` (positional), `-submitter OWNER` | only jobs of these owners |
//! | `-constraint EXPR`, `-const EXPR` | only jobs for which EXPR is true; repeated: all must hold |
//! | `-format FMT ATTR` | print ATTR with printf-like FMT (repeatable; see [`super::print_format`]) |
//! | `-af[:jlhVrtn,g] ATTR…`, `-autoformat…` | print attributes/expressions separated by spaces, a line per job |
//! | `-long`, `-l` | whole job ads (`-attributes A,B` limits them) |
//! | `-json`, `-jsonl` | whole job ads as a JSON array / a JSON object per line (see [`super::job_output`]) |
//! | `-totals` | only the summary |
//! | `-nobatch` | a line per job: `ID OWNER SUBMITTED RUN_TIME ST PRI SIZE CMD` |
//! | `-batch` (default) | a line per cluster: `OWNER BATCH_NAME SUBMITTED DONE RUN IDLE [HOLD] TOTAL JOB_IDS` |
//! | `-wide` | do not cut `CMD` at 80 columns |
//! | `-pool HOST:PORT` | the master to ask (else `PILOTQ_MASTER`, else `127.0.0.1:9094`) |
//! | `-name N`, `-allusers`, `-global`, `-debug` | accepted, no effect (one master; every user's jobs) |
//!
//! The shared secret comes from `PILOTQ_PASSWORD_FILE`. The table views
//! start with a blank line and `-- Schedd: NAME : <ADDR> @ MM/DD/YY
//! HH:MM:SS` and end with `Total for query: …` and `Total for all users: …`
//! (the whole queue, from the master's counts); `-format`, `-af` and `-long`
//! print only what they ask for — exactly one line per job for a format
//! ending in `\n` — so `condor_q -constraint 'JobStatus == 1' -format
//! '%d\n' ClusterId | wc -l` counts idle jobs.
//!
//! Failing to reach the master (or being refused by it), an expression that
//! does not parse and an unknown option each print one message on stderr and
//! exit 1: a client must never mistake a failure for an empty queue.
//!
//! Differences from HTCondor, all for want of the data: completed and
//! removed jobs stay listed (pilotq keeps them; constrain on `JobStatus` to
//! leave them out); `RUN_TIME` is the current run only (0 when not running);
//! `SIZE` is the requested memory in MB, not the measured image size; times
//! are the machine's local time as HTCondor prints them.

pub(crate) use super::job_output::{autoformat_args, autoformat_qualifiers, is_option, value_of};
use super::job_output::{JobFilter, JobOutput};
use super::print_format::{local_date, local_tm};
use crate::client_opts::{block_on, ClientOpts};
use crate::commands::q::{run_time, selectors};
use pilotq_journal::Counts;
use pilotq_wire::message::MasterStatus;
use pilotq_wire::{JobStatus, JobView, Selector};
use std::borrow::Borrow;
use std::cell::Cell;
use std::collections::BTreeMap;
use std::io::{BufWriter, Write};
use std::ops::ControlFlow;
use std::sync::mpsc::{sync_channel, SyncSender};

/// What the command line asks for.
#[derive(Debug, Default)]
pub struct Options {
    /// `-pool HOST:PORT`.
    pub pool: Option<String>,
    /// Ids, owners (and `-submitter`), `-constraint`s.
    pub filter: JobFilter,
    /// `-format`, `-af`, `-long`, `-json`, `-jsonl` (and `-attributes`).
    pub output: JobOutput,
    pub totals: bool,
    pub nobatch: bool,
    pub wide: bool,
    pub help: bool,
}

pub fn parse_args(args: &[String]) -> Result<Options, String> {
    let mut o = Options::default();
    let mut i = 0;
    while i < args.len() {
        let arg = args[i].as_str();
        if o.filter.take(args, &mut i)? || o.output.take_option(args, &mut i)? {
        } else if is_option(arg, "totals", 3) {
            o.totals = true;
        } else if is_option(arg, "nobatch", 3) {
            o.nobatch = true;
        } else if is_option(arg, "batch", 2) {
            o.nobatch = false;
        } else if is_option(arg, "wide", 1) || arg.starts_with("-wide:") {
            o.wide = true;
        } else if is_option(arg, "pool", 1) {
            o.pool = Some(value_of(args, &mut i, "HOST:PORT")?.to_string());
        } else if is_option(arg, "name", 1) {
            value_of(args, &mut i, "a schedd name")?;
        } else if is_option(arg, "submitter", 3) {
            o.filter
                .owners
                .push(value_of(args, &mut i, "an owner")?.to_string());
        } else if is_option(arg, "allusers", 3)
            || is_option(arg, "global", 1)
            || is_option(arg, "debug", 1)
        {
        } else if is_option(arg, "help", 1) {
            o.help = true;
        } else {
            return Err(format!(
                "unknown option {arg} (condor_q -help lists the options)"
            ));
        }
        i += 1;
    }
    Ok(o)
}

/// Counts by status from the master's own totals (the all-users line).
fn counts_of(s: &MasterStatus) -> Counts {
    Counts {
        idle: s.idle,
        running: s.running,
        removed: s.removed,
        completed: s.completed,
        held: s.held,
    }
}

/// Who answered, and when: the header and the all-users summary.
#[derive(Debug, Clone)]
pub struct Context {
    pub schedd: String,
    pub addr: String,
    pub now_ms: u64,
    /// The whole queue's counts (`Total for all users`).
    pub all: Counts,
}

impl Options {
    /// Whether a job passes the owner and constraint restrictions (ids were
    /// applied by the master).
    pub fn selects(&self, v: &JobView) -> bool {
        self.filter.passes(v)
    }

    fn has_filters(&self) -> bool {
        !self.filter.is_empty()
    }

    /// A print-only view (`-format`, `-af`, `-long`, `-json`, `-jsonl`): no
    /// header, no summary.
    fn bare(&self) -> bool {
        self.output.is_bare()
    }
}

/// Writes the answer for `jobs` (as the master returned them, before the
/// owner and constraint filters), taking each job as it comes: `main` feeds
/// it the master's chunks while they arrive. Every view streams except two,
/// which need all jobs before their first row: `-af:h` (column widths; it
/// keeps the selected jobs, see [`super::job_output::Printer`]) and the
/// default `-batch` view (a row per cluster, widths from every owner; it
/// keeps a tally per cluster, never the jobs).
pub fn render<J: Borrow<JobView>>(
    o: &Options,
    ctx: &Context,
    jobs: impl IntoIterator<Item = J>,
    out: &mut impl Write,
) -> std::io::Result<()> {
    let selected = jobs.into_iter().filter(|v| o.selects(v.borrow()));
    if o.bare() {
        let mut printer = o.output.printer();
        for v in selected {
            printer.print(v.borrow(), out)?;
        }
        return printer.finish(out);
    }
    write_header(ctx, out)?;
    let query = if o.totals {
        let mut n = Counts::default();
        selected.for_each(|v| n.add(v.borrow().status));
        n
    } else if o.nobatch {
        write_nobatch(selected, ctx.now_ms, o.wide, out)?
    } else {
        write_batch(selected, out)?
    };
    writeln!(out)?;
    write_totals(&query, &ctx.all, out)
}

/// `\n-- Schedd: NAME : <ADDR> @ MM/DD/YY HH:MM:SS`.
fn write_header(ctx: &Context, out: &mut impl Write) -> std::io::Result<()> {
    let tm = local_tm((ctx.now_ms / 1000) as i64);
    writeln!(
        out,
        "\n-- Schedd: {} : <{}> @ {:02}/{:02}/{:02} {:02}:{:02}:{:02}",
        if ctx.schedd.is_empty() {
            &ctx.addr
        } else {
            &ctx.schedd
        },
        ctx.addr,
        tm.tm_mon + 1,
        tm.tm_mday,
        tm.tm_year.rem_euclid(100),
        tm.tm_hour,
        tm.tm_min,
        tm.tm_sec
    )
}

/// The summary lines. HTCondor ends the first with a space; so do we.
fn write_totals(query: &Counts, all: &Counts, out: &mut impl Write) -> std::io::Result<()> {
    for (who, n, end) in [("query", query, " "), ("all users", all, "")] {
        writeln!(
            out,
            "Total for {who}: {} jobs; {} completed, {} removed, {} idle, {} running, {} held, 0 suspended{end}",
            n.total(),
            n.completed,
            n.removed,
            n.idle,
            n.running,
            n.held
        )?;
    }
    Ok(())
}

/// `CMD` of `-nobatch`: the executable's file name and the arguments.
fn command_line(v: &JobView) -> String {
    let base = v.cmd.rsplit('/').next().unwrap_or(&v.cmd);
    let mut s = base.to_string();
    for a in &v.arguments {
        s.push(' ');
        s.push_str(&pilotq_wire::JobSpec::expand(a, v.id));
    }
    s
}

/// The line prefix before `CMD` is 61 columns; HTCondor cuts `CMD` at 80
/// unless `-wide`.
const CMD_WIDTH: usize = 80 - 61;

fn write_nobatch(
    jobs: impl Iterator<Item = impl Borrow<JobView>>,
    now_ms: u64,
    wide: bool,
    out: &mut impl Write,
) -> std::io::Result<Counts> {
    writeln!(
        out,
        "{:<8} {:<14} {:>11} {:>12} {:<2} {:<3} {:<4} CMD",
        " ID", "OWNER", "SUBMITTED", "RUN_TIME", "ST", "PRI", "SIZE"
    )?;
    let mut n = Counts::default();
    // Jobs of a cluster share a submission time: format it once per cluster.
    let mut date_of: Option<(u64, String)> = None;
    for v in jobs {
        let v = v.borrow();
        n.add(v.status);
        if date_of.as_ref().map(|(t, _)| *t) != Some(v.submitted_at) {
            date_of = Some((v.submitted_at, local_date((v.submitted_at / 1000) as i64)));
        }
        let date = date_of.as_ref().map_or("", |(_, d)| d.as_str());
        let run_ms = match (v.status, v.started_at) {
            (JobStatus::Running, Some(s)) => now_ms.saturating_sub(s),
            _ => 0,
        };
        let mut cmd = command_line(v);
        if !wide {
            if let Some((cut, _)) = cmd.char_indices().nth(CMD_WIDTH) {
                cmd.truncate(cut);
            }
        }
        let owner = match v.owner.char_indices().nth(14) {
            Some((cut, _)) => &v.owner[..cut],
            None => &v.owner,
        };
        writeln!(
            out,
            "{:>4}.{:<3} {:<14} {:>11} {:>12} {:<2} {:<3} {:<4.1} {}",
            v.id.cluster.0,
            v.id.proc,
            owner,
            date,
            run_time(run_ms),
            v.status.letter(),
            v.priority,
            v.request.memory_mb as f64,
            cmd
        )?;
    }
    Ok(n)
}

/// One line of the batch view: a cluster's selected jobs.
struct Batch {
    owner: String,
    submitted_at: u64,
    counts: Counts,
    first: u32,
    last: u32,
}

fn dash_if_zero(n: u64) -> String {
    if n == 0 {
        "_".to_string()
    } else {
        n.to_string()
    }
}

fn write_batch(
    jobs: impl Iterator<Item = impl Borrow<JobView>>,
    out: &mut impl Write,
) -> std::io::Result<Counts> {
    let mut n = Counts::default();
    let mut batches: BTreeMap<u64, Batch> = BTreeMap::new();
    for v in jobs {
        let v = v.borrow();
        n.add(v.status);
        let b = batches.entry(v.id.cluster.0).or_insert_with(|| Batch {
            owner: v.owner.clone(),
            submitted_at: v.submitted_at,
            counts: Counts::default(),
            first: v.id.proc,
            last: v.id.proc,
        });
        b.counts.add(v.status);
        b.first = b.first.min(v.id.proc);
        b.last = b.last.max(v.id.proc);
    }
    let names: Vec<String> = batches.keys().map(|c| format!("ID: {c}")).collect();
    let ow = batches
        .values()
        .map(|b| b.owner.chars().count())
        .fold(5, usize::max);
    let bw = names.iter().map(String::len).fold(10, usize::max);
    // HTCondor shows HOLD when something is held, or when nothing is shown.
    let hold = n.held > 0 || batches.is_empty();
    writeln!(
        out,
        "{:<ow$} {:<bw$} {:>12}   DONE   RUN    IDLE{}  TOTAL JOB_IDS",
        "OWNER",
        "BATCH_NAME",
        "SUBMITTED",
        if hold { "   HOLD" } else { "" }
    )?;
    for ((cluster, b), name) in batches.iter().zip(&names) {
        let c = &b.counts;
        let total = c.total();
        let ids = if total == 1 {
            format!("{cluster}.{}", b.first)
        } else if u64::from(b.last - b.first) + 1 == total {
            format!("{cluster}.{}-{}", b.first, b.last)
        } else {
            format!("{cluster}.{} ... {cluster}.{}", b.first, b.last)
        };
        let held = if hold {
            format!(" {:>6}", dash_if_zero(c.held))
        } else {
            String::new()
        };
        writeln!(
            out,
            "{:<ow$} {:<bw$} {:>12} {:>6} {:>6} {:>6}{held} {:>6} {ids}",
            b.owner,
            name,
            local_date((b.submitted_at / 1000) as i64),
            // Completed and removed jobs have left HTCondor's queue: done.
            dash_if_zero(c.completed + c.removed),
            dash_if_zero(c.running),
            dash_if_zero(c.idle),
            dash_if_zero(total),
        )?;
    }
    Ok(n)
}

const USAGE: &str = "\
Usage: condor_q [options] [C | C.P | OWNER]...
  -constraint EXPR       only jobs for which the ClassAd expression is true (repeatable: all)
  -format FMT ATTR       print ATTR with printf-like FMT (repeatable)
  -af[:jlhVrtn,g] ATTR.. print attributes or expressions, one line per job
  -long, -l              whole job ads (-attributes A,B to limit them)
  -json, -jsonl          whole job ads as a JSON array, or a JSON object per line
  -totals                only the summary
  -nobatch               a line per job;  -batch  a line per cluster (default)
  -wide                  do not cut the command at 80 columns
  -pool HOST:PORT        the pilotq master (default: $PILOTQ_MASTER, else 127.0.0.1:9094)
The shared secret is read from $PILOTQ_PASSWORD_FILE.
";

/// What the fetching thread hands the printing one.
enum Fetched {
    /// First: the master's status (`None` for a bare view).
    Status(Option<MasterStatus>),
    /// A chunk of the answer, as the master sent it.
    Jobs(Vec<JobView>),
    /// Last, once everything came.
    Done,
}

/// Fetches what the view needs and hands it over as it comes: the master's
/// status (for the header and the all-users totals) unless the view is
/// bare; then the jobs, chunk by chunk, unless `counts_suffice` (an
/// unfiltered `-totals`: the master's counts say it all). It runs on a
/// thread of its own with a channel of a few chunks: the answer is never
/// held whole, and decoding the next chunk overlaps printing this one. A
/// printer that stops reading (its receiver dropped) stops the query.
fn fetch(
    client: ClientOpts,
    sel: Vec<Selector>,
    bare: bool,
    counts_suffice: bool,
    tx: SyncSender<Fetched>,
) -> anyhow::Result<()> {
    block_on(async move {
        let mut c = client.connect().await?;
        let status = if bare { None } else { Some(c.status().await?) };
        if tx.send(Fetched::Status(status)).is_err() {
            return Ok(());
        }
        if !counts_suffice {
            c.query_each(sel, |jobs| match tx.send(Fetched::Jobs(jobs)) {
                Ok(()) => ControlFlow::Continue(()),
                Err(_) => ControlFlow::Break(()),
            })
            .await?;
        }
        let _ = tx.send(Fetched::Done);
        Ok(())
    })
}

/// Refuses writes once the answer was cut short (the fetch failed midway):
/// the view ends where the jobs stopped, without a summary that would count
/// only some of them.
struct UntilCut<'a, W> {
    out: W,
    cut: &'a Cell<bool>,
}

impl<W: Write> Write for UntilCut<'_, W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if self.cut.get() {
            return Err(std::io::Error::other("the answer was cut short"));
        }
        self.out.write(buf)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.out.flush()
    }
}

/// `condor_q ARGS…`; returns the exit code.
pub fn main(args: Vec<String>) -> i32 {
    let o = match parse_args(&args) {
        Ok(o) => o,
        Err(e) => {
            eprintln!("condor_q: {e}");
            return 1;
        }
    };
    if o.help {
        print!("{USAGE}");
        return 0;
    }
    let client = ClientOpts::from_env(o.pool.clone());
    let failed = |e: anyhow::Error| {
        eprintln!(
            "-- Failed to fetch ads from: <{}> : pilotq master",
            client.master
        );
        eprintln!("{e:#}");
        1
    };
    let sel = match selectors(&o.filter.ids) {
        Ok(s) => s,
        Err(e) => return failed(e),
    };
    let counts_suffice = o.totals && !o.bare() && !o.has_filters();
    let (tx, rx) = sync_channel(4);
    let fetcher = std::thread::spawn({
        let (client, bare) = (client.clone(), o.bare());
        move || fetch(client, sel, bare, counts_suffice, tx)
    });
    let joined = |fetcher: std::thread::JoinHandle<anyhow::Result<()>>| {
        fetcher
            .join()
            .unwrap_or_else(|_| Err(anyhow::anyhow!("fetching the answer panicked")))
    };
    // Nothing is printed before the master has answered.
    let status = match rx.recv() {
        Ok(Fetched::Status(s)) => s,
        _ => {
            let e = joined(fetcher)
                .err()
                .unwrap_or_else(|| anyhow::anyhow!("no answer"));
            return failed(e);
        }
    };
    let ctx = Context {
        schedd: status.as_ref().map(|s| s.name.clone()).unwrap_or_default(),
        addr: client.master.clone(),
        now_ms: pilotq_journal::now_ms(),
        all: status.as_ref().map(counts_of).unwrap_or_default(),
    };
    let cut = Cell::new(false);
    let stdout = std::io::stdout();
    let mut out = UntilCut {
        out: BufWriter::with_capacity(1 << 16, stdout.lock()),
        cut: &cut,
    };
    // The jobs until `Done`; a channel closed before it means the fetch
    // failed.
    let done = Cell::new(false);
    let jobs = rx
        .iter()
        .map_while(|m| match m {
            Fetched::Jobs(jobs) => Some(jobs),
            Fetched::Status(_) => Some(Vec::new()),
            Fetched::Done => {
                done.set(true);
                None
            }
        })
        .flatten()
        .chain(std::iter::from_fn(|| {
            cut.set(!done.get());
            None
        }));
    let written = if counts_suffice {
        // The unfiltered totals are the master's own counts.
        write_header(&ctx, &mut out)
            .and_then(|()| writeln!(out))
            .and_then(|()| write_totals(&ctx.all, &ctx.all, &mut out))
    } else {
        render(&o, &ctx, jobs, &mut out)
    };
    let written = written.and_then(|()| out.flush());
    // A printer that failed must not keep the fetcher waiting to send.
    drop(rx);
    let fetched = joined(fetcher);
    if let Err(e) = fetched {
        return failed(e);
    }
    match written {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("condor_q: writing the answer: {e}");
            1
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pilotq_wire::{JobId, Resources};

    fn args(s: &[&str]) -> Vec<String> {
        s.iter().map(|a| a.to_string()).collect()
    }

    fn job(cluster: u64, proc: u32, status: JobStatus) -> JobView {
        JobView {
            id: JobId::new(cluster, proc),
            status,
            attempts: 0,
            exit_code: None,
            signal: None,
            holder: None,
            hold_reason: None,
            owner: "alice".to_string(),
            cmd: "/bin/sleep".to_string(),
            arguments: vec!["30".to_string()],
            priority: 0,
            request: Resources::new(1, 5, 10),
            submitted_at: 1_700_000_000_000,
            entered_status_at: 1_700_000_000_000,
            started_at: None,
            attributes: Default::default(),
            completed_at: None,
            num_starts: 0,
            last_holder: None,
            seq: 0,
        }
    }

    fn ctx() -> Context {
        Context {
            schedd: "pilotq@host".to_string(),
            addr: "127.0.0.1:9411".to_string(),
            now_ms: 1_700_000_090_000,
            all: Counts {
                idle: 10,
                running: 2,
                removed: 1,
                completed: 3,
                held: 1,
            },
        }
    }

    fn run(argv: &[&str], jobs: &[JobView]) -> String {
        let o = parse_args(&args(argv)).unwrap();
        let mut out = Vec::new();
        render(&o, &ctx(), jobs, &mut out).unwrap();
        String::from_utf8(out).unwrap()
    }

    fn queue() -> Vec<JobView> {
        let mut jobs = vec![
            job(1, 0, JobStatus::Running),
            job(1, 1, JobStatus::Idle),
            job(1, 2, JobStatus::Idle),
            job(2, 0, JobStatus::Completed),
            job(3, 0, JobStatus::Held),
        ];
        jobs[0].started_at = Some(1_700_000_030_000);
        jobs[0].holder = Some("worker-1".into());
        jobs[3].exit_code = Some(0);
        jobs[4].owner = "bob".into();
        jobs
    }

    #[test]
    fn options_parse_like_htcondor() {
        let o = parse_args(&args(&[
            "-const",
            "JobStatus == 1",
            "-constraint",
            "Owner == \"a\"",
            "-nobatch",
            "-pool",
            "h:1",
            "3",
            "4.1",
            "alice",
            "-allusers",
            "-global",
            "-name",
            "x",
            "--totals",
            "-wide",
        ]))
        .unwrap();
        assert_eq!(o.filter.constraints.len(), 2);
        assert!(o.nobatch && o.totals && o.wide);
        assert_eq!(o.pool.as_deref(), Some("h:1"));
        assert_eq!(o.filter.ids, ["3", "4.1"]);
        assert_eq!(o.filter.owners, ["alice"]);
        let o = parse_args(&args(&[
            "-af:jh",
            "ClusterId",
            "Owner",
            "-l",
            "-attributes",
            "A,B",
        ]))
        .unwrap();
        assert!(!o.output.mask.is_empty() && o.output.long);
        assert_eq!(
            o.output.attributes,
            Some(vec!["A".to_string(), "B".to_string()])
        );
        assert!(parse_args(&args(&["-autoformat:t", "x"])).is_ok());
        assert!(parse_args(&args(&["-autof", "x"])).is_ok());
        assert!(parse_args(&args(&["-f", "%d\\n", "ClusterId"])).is_ok());
        assert!(parse_args(&args(&["-help"])).unwrap().help);
    }

    #[test]
    fn bad_arguments_are_clear_errors() {
        let err = |a: &[&str]| parse_args(&args(a)).unwrap_err();
        assert!(err(&["-bogus"]).contains("unknown option -bogus"));
        assert!(err(&["-constraint"]).contains("requires"));
        assert!(err(&["-constraint", "JobStatus =="]).contains("not a ClassAd expression"));
        assert!(err(&["-format", "%d"]).contains("requires"));
        assert!(err(&["-af"]).contains("at least one attribute"));
        assert!(err(&["-af", "-nobatch"]).contains("at least one attribute"));
        assert!(err(&["-af", "f(x)"]).contains("not a ClassAd expression"));
        assert!(err(&["3.x"]).contains("not a job id"));
        assert!(err(&["-pool"]).contains("requires"));
    }

    #[test]
    fn format_prints_one_line_per_matching_job_and_nothing_else() {
        let out = run(
            &[
                "-constraint",
                "JobStatus == 1",
                "-format",
                "%d\\n",
                "ClusterId",
            ],
            &queue(),
        );
        assert_eq!(out, "1\n1\n");
        let out = run(
            &["-format", "%d.", "ClusterId", "-format", "%d\\n", "ProcId"],
            &queue(),
        );
        assert_eq!(out, "1.0\n1.1\n1.2\n2.0\n3.0\n");
        let out = run(
            &[
                "-constraint",
                "JobStatus == 7",
                "-format",
                "%d\\n",
                "ClusterId",
            ],
            &queue(),
        );
        assert_eq!(out, "");
        // Constraints are ANDed.
        let out = run(
            &[
                "-const",
                "JobStatus == 1",
                "-const",
                "ProcId == 2",
                "-format",
                "%d\\n",
                "ProcId",
            ],
            &queue(),
        );
        assert_eq!(out, "2\n");
    }

    #[test]
    fn autoformat_and_owner_restriction() {
        let out = run(
            &["bob", "-af", "ClusterId", "ProcId", "JobStatus", "ExitCode"],
            &queue(),
        );
        assert_eq!(out, "3 0 5 undefined\n");
        // As in HTCondor, -af takes every argument up to the next option.
        let out = run(&["-af", "ClusterId", "bob"], &queue()[4..]);
        assert_eq!(out, "3 undefined\n");
        let out = run(
            &["-af:j", "Owner", "RemoteHost", "-const", "JobStatus == 2"],
            &queue(),
        );
        assert_eq!(out, "1.0 alice worker-1\n");
        let out = run(&["-submitter", "bob", "-af", "Owner"], &queue());
        assert_eq!(out, "bob\n");
    }

    #[test]
    fn long_prints_ads_separated_by_blank_lines() {
        let out = run(&["-l", "-const", "ClusterId == 1 && ProcId < 2"], &queue());
        let ads: Vec<&str> = out.split("\n\n").filter(|s| !s.is_empty()).collect();
        assert_eq!(ads.len(), 2);
        assert!(ads[0].contains("ProcId = 0") && ads[1].contains("ProcId = 1"));
        assert!(out.ends_with("\n\n"));
        let out = run(
            &["-l", "-attributes", "ClusterId,ProcId", "3"],
            &queue()[4..],
        );
        assert_eq!(out, "ClusterId = 3\nProcId = 0\n\n");
    }

    #[test]
    fn totals_view() {
        let out = run(&["-totals", "-const", "JobStatus != 4"], &queue());
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines[0], "");
        assert!(lines[1].starts_with("-- Schedd: pilotq@host : <127.0.0.1:9411> @ "));
        assert_eq!(lines[2], "");
        assert_eq!(
            lines[3],
            "Total for query: 4 jobs; 0 completed, 0 removed, 2 idle, 1 running, 1 held, 0 suspended "
        );
        assert_eq!(
            lines[4],
            "Total for all users: 17 jobs; 3 completed, 1 removed, 10 idle, 2 running, 1 held, 0 suspended"
        );
        assert_eq!(lines.len(), 5);
    }

    #[test]
    fn nobatch_view() {
        let out = run(&["-nobatch"], &queue());
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines[0], "");
        assert!(lines[1].starts_with("-- Schedd: "));
        assert_eq!(
            lines[2],
            " ID      OWNER            SUBMITTED     RUN_TIME ST PRI SIZE CMD"
        );
        let date = local_date(1_700_000_000);
        assert_eq!(
            lines[3],
            format!("   1.0   alice          {date}   0+00:01:00 R  0   5.0  sleep 30")
        );
        assert_eq!(
            lines[4],
            format!("   1.1   alice          {date}   0+00:00:00 I  0   5.0  sleep 30")
        );
        assert_eq!(&lines[7][..8], "   3.0  ");
        assert!(lines[7].contains(" H  "));
        assert_eq!(lines[8], "");
        assert!(lines[9].starts_with(
            "Total for query: 5 jobs; 1 completed, 0 removed, 2 idle, 1 running, 1 held"
        ));
        assert!(lines[10].starts_with("Total for all users: 17 jobs;"));
        assert_eq!(lines.len(), 11);
        // Columns line up with the heading.
        assert_eq!(lines[3].find("alice"), lines[2].find("OWNER"));
        assert_eq!(lines[3].find(" R "), lines[2].find(" ST "));
        assert_eq!(lines[3].find("sleep"), lines[2].find("CMD"));
    }

    #[test]
    fn nobatch_cuts_long_commands_unless_wide() {
        let mut j = job(1, 0, JobStatus::Idle);
        j.arguments = vec!["x".repeat(50)];
        let cut = run(&["-nobatch"], std::slice::from_ref(&j));
        let row = cut.lines().nth(3).unwrap();
        assert_eq!(row.chars().count(), 80);
        let wide = run(&["-nobatch", "-wide"], &[j]);
        assert!(wide.lines().nth(3).unwrap().ends_with(&"x".repeat(50)));
    }

    #[test]
    fn batch_view_groups_clusters() {
        let out = run(&[], &queue());
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines[0], "");
        assert!(lines[1].starts_with("-- Schedd: pilotq@host : <127.0.0.1:9411> @ "));
        assert_eq!(
            lines[2],
            "OWNER BATCH_NAME    SUBMITTED   DONE   RUN    IDLE   HOLD  TOTAL JOB_IDS"
        );
        let date = local_date(1_700_000_000);
        assert_eq!(
            lines[3],
            format!("alice ID: 1      {date:>12}      _      1      2      _      3 1.0-2")
        );
        assert_eq!(
            lines[4],
            format!("alice ID: 2      {date:>12}      1      _      _      _      1 2.0")
        );
        assert_eq!(
            lines[5],
            format!("bob   ID: 3      {date:>12}      _      _      _      1      1 3.0")
        );
        assert_eq!(lines[6], "");
        assert!(lines[7].starts_with("Total for query: 5 jobs;"));
        assert!(lines[8].starts_with("Total for all users: 17 jobs;"));
        // No held job shown: no HOLD column.
        let out = run(&["-const", "JobStatus != 5"], &queue());
        assert!(out.contains("IDLE  TOTAL JOB_IDS"));
        assert!(!out.contains("HOLD"));
        // Gaps in the procs: first ... last.
        let out = run(&["-const", "ProcId != 1"], &queue());
        assert!(out.contains(" 1.0 ... 1.2\n"));
        // Nothing: headings (with HOLD) and the summary.
        let out = run(&["-const", "false"], &queue());
        assert!(out.contains("   HOLD  TOTAL JOB_IDS\n\nTotal for query: 0 jobs;"));
    }

    #[test]
    fn batch_columns_align_with_headings() {
        let mut jobs = queue();
        jobs[0].owner = "averyverylongowner".into();
        let out = run(&[], &jobs);
        let lines: Vec<&str> = out.lines().collect();
        let head = lines[2];
        // Right edges of the numeric columns, and where the ids start.
        let ends: Vec<usize> = ["SUBMITTED", "DONE", "IDLE", "HOLD", "TOTAL"]
            .iter()
            .map(|h| head.find(h).unwrap() + h.len())
            .collect();
        for row in &lines[3..6] {
            assert_eq!(row.find("ID:"), head.find("BATCH_NAME"));
            for &e in &ends {
                assert_ne!(row.as_bytes()[e - 1], b' ', "{row:?} at {e}");
                assert_eq!(row.as_bytes()[e], b' ', "{row:?} at {e}");
            }
            assert_eq!(row.rfind(' ').unwrap() + 1, head.find("JOB_IDS").unwrap());
        }
    }

    #[test]
    fn fetch_failure_exits_nonzero() {
        // Nothing listens on port 1 of loopback.
        let code = main(args(&["-pool", "127.0.0.1:1", "-af", "ClusterId"]));
        assert_eq!(code, 1);
        assert_eq!(main(args(&["-bogus"])), 1);
        assert_eq!(main(args(&["-constraint", "(("])), 1);
    }
}
