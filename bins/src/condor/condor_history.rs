//! # `condor_history` — finished jobs, as HTCondor's `condor_history` prints them
//!
//! A job that completes or is removed (without `leave_in_queue`) leaves the
//! master's live table for its history store; `condor_history` reads that
//! store through the master (`ToMaster::History`), newest first. The answer
//! is streamed: each record is judged and printed as it arrives, and the
//! connection is dropped as soon as `-limit`, `-since`, `-completedsince` or
//! `-scanlimit` is satisfied, which tells the master to stop reading its
//! store (`-limit 100` over millions of records costs a chunk or two).
//!
//! Options (HTCondor's single-dash style, any prefix HTCondor accepts, `--x`
//! as `-x`):
//!
//! | option | effect |
//! |---|---|
//! | `C`, `C.P` (positional) | only these clusters / jobs (the master selects them) |
//! | `OWNER` (positional) | only jobs of these owners |
//! | `-constraint EXPR` | only jobs for which EXPR is true; repeated: all must hold |
//! | `-limit N`, `-match N` | at most N jobs (0: no limit, as HTCondor) |
//! | `-backwards` (default), `-forwards` | newest first / oldest first |
//! | `-since C.P`, `-since C`, `-since EXPR` | only records newer than the first one (newest first) that is job C.P, of cluster C, or for which EXPR is true; that one is not shown. Backwards, reading stops there; forwards, what comes before it and it are skipped |
//! | `-completedsince T` | only jobs with `CompletionDate >= T` (Unix seconds): backwards, reading stops at the first older one |
//! | `-scanlimit N` | read at most N records, matching or not |
//! | `-format`, `-af[:jlhVrtn,g]`, `-long`, `-attributes`, `-json`, `-jsonl` | as `condor_q` (see [`super::job_output`]) |
//! | `-wide`, `-wide:N` | do not cut lines (or cut at N columns) and do not cut `OWNER` |
//! | `-pool HOST:PORT` | the master to ask (else `PILOTQ_MASTER`, else `127.0.0.1:9094`) |
//! | `-name N`, `-schedd`, `-debug` | accepted, no effect (one master, job history only) |
//!
//! Refused, with a reason: `-file`, `-userlog`, `-search`, `-dir`, `-local`,
//! `-extract` (the history is in the master, not in files), `-startd`,
//! `-epochs`, `-transfer-history`, `-daemon` (pilotq keeps job history
//! only), `-xml` (use `-json`), `-print-format` (use `-af` or `-format`).
//! Any other unknown option is an error too. Every error prints one line and
//! the usage on stderr and exits 1: a client must never mistake a failure
//! for an empty history.
//!
//! **The default view** is HTCondor's (`history.cpp`,
//! `init_default_custom_format`): a heading line ` ID OWNER SUBMITTED
//! RUN_TIME ST COMPLETED CMD`, headings left-aligned in their column widths,
//! then a line per job: `%4d.%-3d` id in 7 columns, `OWNER` in 14 (cut to 14
//! unless `-wide`), `SUBMITTED` and `COMPLETED` as `M/D HH:MM` local time
//! right-aligned in 11, `RUN_TIME` (`RemoteWallClockTime` as `D+HH:MM:SS`)
//! in 12, `ST` `C` (completed) or `X` (removed) in 2, and `CMD` (the
//! executable and its arguments) in 15 or more, columns separated by a space.
//! Lines are cut at the width of the terminal on stdin less one (79 when
//! stdin is not a terminal), as HTCondor does, unless `-wide`. No summary.
//!
//! Differences from HTCondor: `RUN_TIME` and `RemoteWallClockTime` are the
//! last run only (pilotq keeps no earlier runs); `-since` and
//! `-completedsince` with `-forwards` skip the older records instead of
//! ending the scan at once (the bound comes first, oldest first); `-since C`
//! (a bare number) means the newest job of cluster C; `-completedsince`
//! takes Unix seconds, not an expression.

use super::classad::{Ad, Expr, Value};
use super::job_ad::JobAd;
use super::job_output::{is_option, value_of, JobFilter, JobOutput, Printer};
use super::print_format::local_date;
use crate::client_opts::{block_on, ClientOpts};
use crate::commands::q::{run_time, selectors};
use pilotq_wire::{JobId, JobView, Selector};
use std::collections::BTreeSet;
use std::io::{BufWriter, Write};
use std::ops::ControlFlow;

/// `-since`: where the newer records end.
#[derive(Debug)]
pub enum Since {
    Job(JobId),
    Cluster(u64),
    Expr(String, Expr),
}

impl Since {
    fn parse(text: &str) -> Result<Since, String> {
        let t = text.trim();
        if !t.is_empty() && t.chars().all(|c| c.is_ascii_digit()) {
            return t
                .parse()
                .map(Since::Cluster)
                .map_err(|_| format!("-since {text}: not a cluster id"));
        }
        if let Ok(id) = t.parse::<JobId>() {
            return Ok(Since::Job(id));
        }
        Expr::parse(t)
            .map(|e| Since::Expr(t.to_string(), e))
            .map_err(|e| {
                format!("-since '{text}' is neither a job id nor a ClassAd expression: {e}")
            })
    }

    fn reached(&self, v: &JobView) -> bool {
        match self {
            Since::Job(id) => v.id == *id,
            Since::Cluster(c) => v.id.cluster.0 == *c,
            Since::Expr(_, e) => e.eval(&JobAd(v)).is_true(),
        }
    }
}

/// What the command line asks for.
#[derive(Debug, Default)]
pub struct Options {
    /// `-pool HOST:PORT`.
    pub pool: Option<String>,
    /// Ids, owners, `-constraint`s.
    pub filter: JobFilter,
    /// `-format`, `-af`, `-long`, `-json`, `-jsonl`, `-attributes`.
    pub output: JobOutput,
    /// `-limit` / `-match` (`None`: no limit).
    pub limit: Option<u64>,
    /// `-scanlimit`.
    pub scan_limit: Option<u64>,
    pub forwards: bool,
    pub since: Option<Since>,
    /// `-completedsince`, Unix seconds.
    pub completed_since: Option<i64>,
    /// `-wide` (`Some(None)`) or `-wide:N` (`Some(Some(N))`).
    pub wide: Option<Option<usize>>,
    pub help: bool,
}

/// HTCondor options `condor_history` knows but pilotq cannot honour: name,
/// shortest prefix, why.
const REFUSED: &[(&str, usize, &str)] = &[
    ("file", 2, FILES),
    ("userlog", 1, FILES),
    ("search", 2, FILES),
    ("directory", 3, FILES),
    ("local", 3, FILES),
    ("extract", 2, FILES),
    ("startd", 3, JOBS_ONLY),
    ("epochs", 2, JOBS_ONLY),
    ("transfer-history", 2, JOBS_ONLY),
    ("daemon", 2, JOBS_ONLY),
    ("xml", 1, "use -json or -jsonl"),
    ("print-format", 2, "use -af or -format"),
];
const FILES: &str =
    "pilotq keeps the history in its master, which condor_history asks (-pool HOST:PORT)";
const JOBS_ONLY: &str = "pilotq keeps the history of jobs only";

/// `arg` as one of [`REFUSED`] (a `:suffix` ignored): its name and reason.
fn refused(arg: &str) -> Option<(&'static str, &'static str)> {
    let head = arg.split(':').next().unwrap_or(arg);
    REFUSED
        .iter()
        .find(|(name, min, _)| is_option(head, name, *min))
        .map(|(name, _, why)| (*name, *why))
}

fn count_of(text: &str, opt: &str) -> Result<u64, String> {
    text.trim()
        .parse()
        .map_err(|_| format!("{opt} requires a number, not '{text}'"))
}

pub fn parse_args(args: &[String]) -> Result<Options, String> {
    let mut o = Options::default();
    let mut i = 0;
    while i < args.len() {
        let arg = args[i].as_str();
        if o.filter.take(args, &mut i)? || o.output.take_option(args, &mut i)? {
        } else if is_option(arg, "completedsince", 3) {
            let text = value_of(args, &mut i, "a Unix time in seconds")?;
            let t = text.trim().parse().map_err(|_| {
                format!("-completedsince requires a Unix time in seconds, not '{text}'")
            })?;
            o.completed_since = Some(t);
        } else if is_option(arg, "limit", 3) || is_option(arg, "match", 1) {
            let n = count_of(value_of(args, &mut i, "a number")?, arg)?;
            o.limit = (n > 0).then_some(n);
        } else if is_option(arg, "scanlimit", 2) {
            let n = count_of(value_of(args, &mut i, "a number")?, arg)?;
            o.scan_limit = Some(n);
        } else if is_option(arg, "backwards", 1) {
            o.forwards = false;
        } else if is_option(arg, "forwards", 4) || is_option(arg, "nobackwards", 3) {
            o.forwards = true;
        } else if is_option(arg, "since", 3) {
            o.since = Some(Since::parse(value_of(
                args,
                &mut i,
                "a job id or an expression",
            )?)?);
        } else if let Some(rest) = wide_option(arg) {
            o.wide = Some(match rest {
                None => None,
                Some(n) => Some(
                    n.parse()
                        .map_err(|_| format!("{arg}: the width must be a number"))?,
                ),
            });
        } else if is_option(arg, "pool", 1) {
            o.pool = Some(value_of(args, &mut i, "HOST:PORT")?.to_string());
        } else if is_option(arg, "name", 1) {
            value_of(args, &mut i, "a schedd name")?;
        } else if is_option(arg, "schedd", 3) || is_option(arg, "debug", 2) {
        } else if is_option(arg, "help", 1) {
            o.help = true;
        } else if let Some((name, why)) = refused(arg) {
            return Err(format!("-{name} is not supported: {why}"));
        } else {
            return Err(format!("unknown option {arg}"));
        }
        i += 1;
    }
    Ok(o)
}

/// `-wide` → `Some(None)`, `-wide:N` → `Some(Some("N"))`, else `None`.
fn wide_option(arg: &str) -> Option<Option<&str>> {
    let (head, n) = match arg.split_once(':') {
        Some((h, n)) => (h, Some(n)),
        None => (arg, None),
    };
    is_option(head, "wide", 1).then_some(n)
}

/// How the default view's lines are laid out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Layout {
    /// Lines longer than this are cut (`None`: never).
    pub cut: Option<usize>,
    /// `OWNER` is cut to 14 characters (else its column grows to the widest
    /// owner printed so far, as HTCondor's auto-width does).
    pub cut_owner: bool,
}

impl Layout {
    /// HTCondor's: `-wide` cuts nothing; `-wide:N` cuts lines at N (and
    /// owners only when N ≤ 80); otherwise lines are cut at `console - 1`.
    pub fn new(wide: Option<Option<usize>>, console: usize) -> Layout {
        match wide {
            None => Layout {
                cut: Some(console.saturating_sub(1)),
                cut_owner: true,
            },
            Some(None) => Layout {
                cut: None,
                cut_owner: false,
            },
            Some(Some(n)) => Layout {
                cut: Some(n),
                cut_owner: n <= 80,
            },
        }
    }
}

/// The columns of the terminal on stdin, or 80 (HTCondor asks stdin too).
fn console_width() -> usize {
    // SAFETY: TIOCGWINSZ only writes into the winsize we own.
    unsafe {
        let mut ws: libc::winsize = std::mem::zeroed();
        if libc::ioctl(0, libc::TIOCGWINSZ, &mut ws) == 0 && ws.ws_col > 0 {
            return usize::from(ws.ws_col);
        }
    }
    80
}

/// Cuts `line` to `cut` characters.
fn cut_line(mut line: String, cut: Option<usize>) -> String {
    if let Some((at, _)) = cut.and_then(|n| line.char_indices().nth(n)) {
        line.truncate(at);
    }
    line
}

/// The heading line of the default view.
pub fn default_heading(layout: Layout) -> String {
    let head = format!(
        "{:<7} {:<14} {:<11} {:<12} {:<2} {:<11} {:<15}",
        " ID", "OWNER", "SUBMITTED", "RUN_TIME", "ST", "COMPLETED", "CMD"
    );
    cut_line(head, layout.cut) + "\n"
}

/// The default view's rows: the owner column's width carries over.
#[derive(Debug)]
struct Table {
    layout: Layout,
    owner_width: usize,
}

impl Table {
    fn row(&mut self, v: &JobView) -> String {
        let ad = JobAd(v);
        let int = |name: &str| match ad.lookup(name) {
            Some(Value::Int(n)) => Some(n),
            Some(Value::Real(r)) => Some(r as i64),
            _ => None,
        };
        let id = format!("{:>4}.{:<3}", v.id.cluster.0, v.id.proc);
        let owner: String = if self.layout.cut_owner {
            v.owner.chars().take(14).collect()
        } else {
            v.owner.clone()
        };
        let completed = int("completiondate").map(local_date).unwrap_or_default();
        let wall = int("remotewallclocktime").unwrap_or(0).max(0) as u64;
        // C (completed) or X (removed), as HTCondor's.
        let st = v.status.letter();
        let mut cmd = v.cmd.clone();
        let args = [ad.lookup("args"), ad.lookup("arguments")]
            .into_iter()
            .find_map(|a| match a {
                Some(Value::Str(s)) => Some(s),
                _ => None,
            })
            .unwrap_or_default();
        if !args.is_empty() {
            cmd.push(' ');
            cmd.push_str(&args);
        }
        let line = format!(
            "{:<7} {:<ow$} {:>11} {:>12} {:<2} {:>11} {:<15}",
            id,
            owner,
            local_date((v.submitted_at / 1000) as i64),
            run_time(wall * 1000),
            st,
            completed,
            cmd,
            ow = self.owner_width,
        );
        if !self.layout.cut_owner {
            self.owner_width = self.owner_width.max(owner.chars().count());
        }
        cut_line(line, self.layout.cut) + "\n"
    }
}

/// What to do with one record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Not shown; read on.
    Skip,
    /// Shown; `last`: nothing after it can be shown, stop reading.
    Show { last: bool },
    /// Not shown, and stop reading.
    Stop,
}

/// The scan over the history, record by record: the `-since`,
/// `-completedsince`, `-scanlimit` and `-limit` bounds, the owner and
/// constraint filters.
#[derive(Debug)]
pub struct Scan<'a> {
    o: &'a Options,
    scanned: u64,
    shown: u64,
    /// Forwards: the `-since` record has gone by.
    past_since: bool,
    /// The positional ids. The master selects by them; checked again here
    /// so that a record it sends beyond them is never shown.
    ids: Vec<Selector>,
    /// Jobs named by `C.P` not seen yet, when only such ids were given: once
    /// all have come, nothing more can match.
    wanted: Option<BTreeSet<JobId>>,
}

impl<'a> Scan<'a> {
    pub fn new(o: &'a Options) -> Scan<'a> {
        let ids: Option<BTreeSet<JobId>> = o.filter.ids.iter().map(|s| s.parse().ok()).collect();
        Scan {
            o,
            scanned: 0,
            shown: 0,
            past_since: false,
            // parse_args checked them.
            ids: selectors(&o.filter.ids).unwrap_or_default(),
            wanted: ids.filter(|w| !w.is_empty()),
        }
    }

    pub fn step(&mut self, v: &JobView) -> Step {
        let o = self.o;
        if o.scan_limit.is_some_and(|n| self.scanned >= n) {
            return Step::Stop;
        }
        self.scanned += 1;
        let completed_before = o.completed_since.is_some_and(
            |t| matches!(JobAd(v).lookup("completiondate"), Some(Value::Int(c)) if c < t),
        );
        let at_since = o.since.as_ref().is_some_and(|s| s.reached(v));
        if o.forwards {
            // Oldest first: the records not newer than the bounds come first.
            if o.since.is_some() && !self.past_since {
                self.past_since = at_since;
                return Step::Skip;
            }
            if completed_before {
                return Step::Skip;
            }
        } else if at_since || completed_before {
            return Step::Stop;
        }
        let named = self.ids.is_empty() || self.ids.iter().any(|s| s.matches(v.id));
        let selected = named && o.filter.passes(v);
        if let Some(w) = &mut self.wanted {
            w.remove(&v.id);
        }
        let all_seen = self.wanted.as_ref().is_some_and(BTreeSet::is_empty);
        if !selected {
            return if all_seen { Step::Stop } else { Step::Skip };
        }
        self.shown += 1;
        let last = all_seen
            || o.limit.is_some_and(|n| self.shown >= n)
            || o.scan_limit.is_some_and(|n| self.scanned >= n);
        Step::Show { last }
    }
}

/// One answer being printed: the scan, and either the default table or the
/// `-long`/`-json`/`-af`… printer. An error writing stdout stops the scan
/// and is reported by [`Session::finish`].
pub struct Session<'a, W: Write> {
    scan: Scan<'a>,
    printer: Printer<'a>,
    table: Option<Table>,
    out: W,
    error: Option<std::io::Error>,
}

impl<'a, W: Write> Session<'a, W> {
    /// Starts the answer (the default view's heading line).
    pub fn new(o: &'a Options, layout: Layout, mut out: W) -> Session<'a, W> {
        let table = (!o.output.is_bare()).then_some(Table {
            layout,
            owner_width: 14,
        });
        let error = match table {
            Some(_) => out.write_all(default_heading(layout).as_bytes()).err(),
            None => None,
        };
        Session {
            scan: Scan::new(o),
            printer: o.output.printer(),
            table,
            out,
            error,
        }
    }

    /// Judges and prints one record; `Break` once nothing more is wanted.
    pub fn take(&mut self, v: JobView) -> ControlFlow<()> {
        if self.error.is_some() {
            return ControlFlow::Break(());
        }
        let last = match self.scan.step(&v) {
            Step::Skip => return ControlFlow::Continue(()),
            Step::Stop => return ControlFlow::Break(()),
            Step::Show { last } => last,
        };
        let written = match &mut self.table {
            Some(t) => self.out.write_all(t.row(&v).as_bytes()),
            None => self.printer.print(&v, &mut self.out),
        };
        if let Err(e) = written {
            self.error = Some(e);
            return ControlFlow::Break(());
        }
        if last {
            ControlFlow::Break(())
        } else {
            ControlFlow::Continue(())
        }
    }

    /// Records read so far.
    pub fn scanned(&self) -> u64 {
        self.scan.scanned
    }

    /// Ends the answer and flushes it.
    pub fn finish(mut self) -> std::io::Result<()> {
        if let Some(e) = self.error.take() {
            return Err(e);
        }
        if self.table.is_none() {
            self.printer.finish(&mut self.out)?;
        }
        self.out.flush()
    }
}

const USAGE: &str = "\
Usage: condor_history [options] [C | C.P | OWNER]...
  -constraint EXPR       only jobs for which the ClassAd expression is true (repeatable: all)
  -limit N, -match N     at most N jobs
  -backwards             newest first (default);  -forwards  oldest first
  -since C.P|C|EXPR      only jobs newer than this job, cluster, or first job matching EXPR
  -completedsince T      only jobs completed at or after T (Unix seconds)
  -scanlimit N           read at most N records
  -format FMT ATTR       print ATTR with printf-like FMT (repeatable)
  -af[:jlhVrtn,g] ATTR.. print attributes or expressions, one line per job
  -long, -l              whole job ads (-attributes A,B to limit them)
  -json, -jsonl          whole job ads as a JSON array, or a JSON object per line
  -wide[:N]              do not cut lines at the terminal width (or cut at N)
  -pool HOST:PORT        the pilotq master (default: $PILOTQ_MASTER, else 127.0.0.1:9094)
The shared secret is read from $PILOTQ_PASSWORD_FILE.
";

/// Reads the history and prints it as it comes.
async fn fetch_and_print(
    client: &ClientOpts,
    o: &Options,
    layout: Layout,
    out: impl Write,
) -> anyhow::Result<std::io::Result<()>> {
    let sel: Vec<Selector> = selectors(&o.filter.ids)?;
    let mut c = client.connect().await?;
    let mut session = Session::new(o, layout, out);
    c.history_each(sel, o.forwards, |jobs| {
        jobs.into_iter().try_for_each(|v| session.take(v))
    })
    .await?;
    // Dropping `c` closes the connection: the master stops reading.
    drop(c);
    Ok(session.finish())
}

/// `condor_history ARGS…`; returns the exit code.
pub fn main(args: Vec<String>) -> i32 {
    let o = match parse_args(&args) {
        Ok(o) => o,
        Err(e) => {
            eprintln!("condor_history: {e}");
            eprint!("{USAGE}");
            return 1;
        }
    };
    if o.help {
        print!("{USAGE}");
        return 0;
    }
    let client = ClientOpts::from_env(o.pool.clone());
    let layout = Layout::new(o.wide, console_width());
    let stdout = std::io::stdout();
    let out = BufWriter::with_capacity(1 << 16, stdout.lock());
    match block_on(fetch_and_print(&client, &o, layout, out)) {
        Ok(Ok(())) => 0,
        Ok(Err(e)) => {
            eprintln!("condor_history: writing the answer: {e}");
            1
        }
        Err(e) => {
            eprintln!(
                "-- Failed to fetch history from: <{}> : pilotq master",
                client.master
            );
            eprintln!("{e:#}");
            1
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pilotq_wire::{JobStatus, Resources, ToMaster};

    fn args(s: &[&str]) -> Vec<String> {
        s.iter().map(|a| a.to_string()).collect()
    }

    const T0: u64 = 1_700_000_000_000;

    /// A history record: job C.P finished `seq` minutes after T0, having run
    /// 65 s; exit code `P`.
    fn record(cluster: u64, proc: u32, seq: u64) -> JobView {
        JobView {
            id: JobId::new(cluster, proc),
            status: JobStatus::Completed,
            attempts: 1,
            exit_code: Some(proc as i32),
            signal: None,
            holder: None,
            hold_reason: None,
            owner: "alice".to_string(),
            cmd: "/bin/sh".to_string(),
            arguments: vec!["-c".to_string(), "exit $(Process)".to_string()],
            priority: 0,
            request: Resources::new(1, 5, 10),
            submitted_at: T0,
            entered_status_at: T0 + seq * 60_000,
            started_at: Some(T0 + seq * 60_000 - 65_000),
            attributes: [("Project".to_string(), "\"atlas\"".to_string())]
                .into_iter()
                .collect(),
            completed_at: Some(T0 + seq * 60_000),
            num_starts: 1,
            last_holder: Some("w1".to_string()),
            seq,
        }
    }

    /// Ten records, newest first (as the master sends them backwards):
    /// cluster 1 procs 0-4 (seq 1-5), cluster 2 procs 0-4 (seq 6-10).
    fn newest_first() -> Vec<JobView> {
        let mut v: Vec<JobView> = (0..10)
            .map(|n| record(1 + n / 5, (n % 5) as u32, n + 1))
            .collect();
        v.reverse();
        v
    }

    const NARROW: Layout = Layout {
        cut: Some(79),
        cut_owner: true,
    };

    /// Runs `argv` over `records` (in the order the master would send them);
    /// returns the output and how many records were read.
    fn run(argv: &[&str], records: Vec<JobView>) -> (String, u64) {
        let o = parse_args(&args(argv)).unwrap();
        let mut out = Vec::new();
        let mut s = Session::new(&o, NARROW, &mut out);
        for r in records {
            if s.take(r).is_break() {
                break;
            }
        }
        let read = s.scanned();
        s.finish().unwrap();
        (String::from_utf8(out).unwrap(), read)
    }

    fn ids(out: &str) -> Vec<&str> {
        out.lines().collect()
    }

    #[test]
    fn options_parse_like_htcondor() {
        let o = parse_args(&args(&[
            "-const",
            "ExitCode == 0",
            "-constraint",
            "Owner == \"a\"",
            "-limit",
            "5",
            "-forwards",
            "-since",
            "3.1",
            "-completedsince",
            "1700000000",
            "-scanlimit",
            "100",
            "-pool",
            "h:1",
            "-name",
            "x",
            "-debug",
            "-schedd",
            "3",
            "4.1",
            "alice",
            "-wide:120",
            "-af:j",
            "ExitCode",
        ]))
        .unwrap();
        assert_eq!(o.filter.constraints.len(), 2);
        assert_eq!(o.limit, Some(5));
        assert!(o.forwards);
        assert!(matches!(o.since, Some(Since::Job(id)) if id == JobId::new(3, 1)));
        assert_eq!(o.completed_since, Some(1_700_000_000));
        assert_eq!(o.scan_limit, Some(100));
        assert_eq!(o.pool.as_deref(), Some("h:1"));
        assert_eq!(o.filter.ids, ["3", "4.1"]);
        assert_eq!(o.filter.owners, ["alice"]);
        assert_eq!(o.wide, Some(Some(120)));
        assert!(o.output.is_bare());
        // Old and short spellings.
        let o = parse_args(&args(&["-match", "2", "-b", "-wide", "-since", "7"])).unwrap();
        assert_eq!(o.limit, Some(2));
        assert!(!o.forwards);
        assert_eq!(o.wide, Some(None));
        assert!(matches!(o.since, Some(Since::Cluster(7))));
        let o = parse_args(&args(&[
            "-since",
            "ExitCode == 3",
            "-nobackwards",
            "-m",
            "0",
        ]))
        .unwrap();
        assert!(matches!(o.since, Some(Since::Expr(..))));
        assert!(o.forwards);
        assert_eq!(o.limit, None, "-limit 0 is no limit, as in HTCondor");
        let o = parse_args(&args(&["-l", "-attributes", "A,B", "--json", "-jsonl"])).unwrap();
        assert!(o.output.long && o.output.json.is_some());
        assert!(parse_args(&args(&["-help"])).unwrap().help);
        assert!(parse_args(&args(&["-f", "%d\\n", "ClusterId"])).is_ok());
    }

    #[test]
    fn bad_and_unsupported_arguments_are_clear_errors() {
        let err = |a: &[&str]| parse_args(&args(a)).unwrap_err();
        assert!(err(&["-bogus"]).contains("unknown option -bogus"));
        assert!(err(&["-limit"]).contains("requires"));
        assert!(err(&["-limit", "ten"]).contains("requires a number"));
        assert!(err(&["-limit", "-3"]).contains("requires a number"));
        assert!(err(&["-completedsince", "yesterday"]).contains("Unix time"));
        assert!(err(&["-since", "ExitCode =="]).contains("neither a job id"));
        assert!(err(&["-constraint", "(("]).contains("not a ClassAd expression"));
        assert!(err(&["-af"]).contains("at least one attribute"));
        assert!(err(&["3.x"]).contains("not a job id"));
        assert!(err(&["-wide:x"]).contains("width"));
        assert!(err(&["-file", "/var/lib/condor/spool/history"]).contains("-file is not supported"));
        assert!(err(&["-userlog", "x.log"]).contains("in its master"));
        assert!(err(&["-epochs"]).contains("jobs only"));
        assert!(err(&["-transfer-history:io"]).contains("jobs only"));
        assert!(err(&["-xml"]).contains("use -json"));
        assert!(err(&["-print-format", "f"]).contains("use -af"));
        // Exit status and no attempt to connect.
        assert_eq!(main(args(&["-bogus"])), 1);
        assert_eq!(main(args(&["-file", "h"])), 1);
    }

    #[test]
    fn default_view_is_htcondors() {
        let (out, _) = run(&[], newest_first()[..2].to_vec());
        let lines = ids(&out);
        assert_eq!(
            lines[0],
            " ID     OWNER          SUBMITTED   RUN_TIME     ST COMPLETED   CMD            "
        );
        let sub = local_date((T0 / 1000) as i64);
        let done = local_date((T0 / 1000 + 600) as i64);
        let full =
            format!("   2.4   alice          {sub}   0+00:01:05 C  {done} /bin/sh -c 'exit 4'");
        // Cut at 79 columns (stdin not a terminal).
        assert_eq!(lines[1], &full[..79]);
        assert_eq!(lines.len(), 3);
        // The id (`%4d.%-3d`, 8 wide) overflows its 7-column heading, so in
        // HTCondor every later column starts one place right of its heading.
        for h in ["OWNER", "ST", "CMD"] {
            let at = lines[0].find(h).unwrap() + 1;
            assert_ne!(lines[1].as_bytes()[at], b' ', "{h}");
            assert_eq!(lines[1].as_bytes()[at - 1], b' ', "{h}");
        }
        // A removed job: X, no exit; a short command is padded to 15.
        let mut x = record(5, 0, 1);
        x.status = JobStatus::Removed;
        x.exit_code = None;
        x.started_at = None;
        x.arguments.clear();
        x.cmd = "/bin/true".into();
        let (out, _) = run(&[], vec![x]);
        let row = ids(&out)[1];
        assert!(row.contains(" 0+00:00:00 X  "), "{row:?}");
        assert!(row.ends_with(" /bin/true      "), "{row:?}");
    }

    #[test]
    fn lines_are_cut_unless_wide() {
        let mut long = record(1, 0, 1);
        long.owner = "a-very-long-owner-name".into();
        long.arguments = vec!["x".repeat(60)];
        let (out, _) = run(&[], vec![long.clone()]);
        let row = ids(&out)[1];
        assert_eq!(row.chars().count(), 79);
        assert!(row.contains(" a-very-long-ow "));
        let o = parse_args(&args(&["-wide"])).unwrap();
        let mut buf = Vec::new();
        let mut s = Session::new(&o, Layout::new(o.wide, 80), &mut buf);
        let _ = s.take(long.clone());
        let mut short = record(1, 1, 2);
        short.arguments.clear();
        let _ = s.take(short);
        s.finish().unwrap();
        let out = String::from_utf8(buf).unwrap();
        let rows = ids(&out);
        assert!(rows[1].ends_with(&"x".repeat(60)));
        assert!(rows[1].contains(" a-very-long-owner-name "));
        // The owner column grew to the widest owner so far.
        let grown = format!("   1.1   {:<22} ", "alice");
        assert!(rows[2].starts_with(&grown), "{:?}", rows[2]);
        assert_eq!(Layout::new(Some(Some(100)), 80).cut, Some(100));
        assert!(!Layout::new(Some(Some(100)), 80).cut_owner);
        assert!(Layout::new(Some(Some(60)), 80).cut_owner);
        assert_eq!(Layout::new(None, 132).cut, Some(131));
    }

    #[test]
    fn autoformat_and_format_print_only_what_they_ask() {
        let (out, _) = run(
            &["-af", "ClusterId", "ProcId", "ExitCode", "Project"],
            newest_first(),
        );
        assert_eq!(ids(&out)[0], "2 4 4 atlas");
        assert_eq!(ids(&out).len(), 10);
        let (out, _) = run(
            &[
                "-constraint",
                "ExitCode == 3",
                "-af:j",
                "ExitCode",
                "JobStatus",
                "CompletionDate",
            ],
            newest_first(),
        );
        let t = T0 / 1000;
        assert_eq!(out, format!("2.3 3 4 {}\n1.3 3 4 {}\n", t + 540, t + 240));
        let (out, _) = run(
            &[
                "-format",
                "%d.",
                "ClusterId",
                "-format",
                "%d\\n",
                "ProcId",
                "-limit",
                "3",
            ],
            newest_first(),
        );
        assert_eq!(out, "2.4\n2.3\n2.2\n");
        let (out, _) = run(
            &[
                "-af",
                "NumJobStarts",
                "LastRemoteHost",
                "RemoteWallClockTime",
            ],
            newest_first(),
        );
        assert_eq!(ids(&out)[0], "1 w1 65.0");
        let (out, _) = run(&["bob", "-af", "ClusterId"], newest_first());
        assert_eq!(out, "");
    }

    #[test]
    fn long_and_json_show_every_attribute() {
        let (out, _) = run(&["-l", "-limit", "1"], newest_first());
        for want in [
            "ClusterId = 2\n",
            "ProcId = 4\n",
            "ExitCode = 4\n",
            "ExitBySignal = false\n",
            "JobStatus = 4\n",
            "NumJobStarts = 1\n",
            "LastRemoteHost = \"w1\"\n",
            "RemoteWallClockTime = 65.0\n",
            "Project = \"atlas\"\n",
            "Owner = \"alice\"\n",
        ] {
            assert!(out.contains(want), "{want:?} in\n{out}");
        }
        assert!(out.ends_with("\n\n"));
        let (out, _) = run(&["-json", "-limit", "2"], newest_first());
        let v: serde_json::Value = serde_json::from_str(&out).unwrap();
        assert_eq!(v.as_array().unwrap().len(), 2);
        assert_eq!(v[1]["ProcId"], 3);
        assert_eq!(v[1]["ExitCode"], 3);
        assert_eq!(v[1]["Project"], "atlas");
        let (out, _) = run(&["-jsonl", "-const", "ClusterId == 1"], newest_first());
        assert_eq!(out.lines().count(), 5);
    }

    #[test]
    fn reading_stops_as_soon_as_the_bounds_are_met() {
        // -limit: the third match ends the scan.
        let (out, read) = run(&["-af", "ProcId", "-limit", "3"], newest_first());
        assert_eq!((ids(&out), read), (vec!["4", "3", "2"], 3));
        // With a constraint, only matches count.
        let (out, read) = run(
            &[
                "-af",
                "ClusterId",
                "ProcId",
                "-limit",
                "1",
                "-const",
                "ProcId == 1",
            ],
            newest_first(),
        );
        assert_eq!((out.as_str(), read), ("2 1\n", 4));
        // -since a job: newer ones only, reading stops at it.
        let (out, read) = run(
            &["-af", "ClusterId", "ProcId", "-since", "2.2"],
            newest_first(),
        );
        assert_eq!((ids(&out), read), (vec!["2 4", "2 3"], 3));
        // -since a cluster, and an expression.
        let (out, _) = run(&["-af", "ProcId", "-since", "1"], newest_first());
        assert_eq!(ids(&out).len(), 5);
        let (out, _) = run(
            &["-af", "ProcId", "-since", "ExitCode == 2"],
            newest_first(),
        );
        assert_eq!(ids(&out), ["4", "3"]);
        // -completedsince: seq 8 completed at T0 + 480 s; older ones stop it.
        let t = (T0 / 1000 + 480).to_string();
        let (out, read) = run(&["-af", "ProcId", "-completedsince", &t], newest_first());
        assert_eq!((ids(&out), read), (vec!["4", "3", "2"], 4));
        // -scanlimit counts records read, matching or not.
        let (out, read) = run(
            &["-af", "ProcId", "-scanlimit", "4", "-const", "ProcId > 2"],
            newest_first(),
        );
        assert_eq!((ids(&out), read), (vec!["4", "3"], 4));
        // Named jobs: once each has come, nothing more can match.
        let (out, read) = run(&["2.3", "2.1", "-af", "ProcId"], newest_first());
        assert_eq!((ids(&out), read), (vec!["3", "1"], 4));
        // Without bounds, everything is read.
        let (_, read) = run(&["-af", "ProcId", "bob"], newest_first());
        assert_eq!(read, 10);
    }

    #[test]
    fn forwards_skips_what_is_not_newer_than_the_bounds() {
        let mut oldest_first = newest_first();
        oldest_first.reverse();
        let (out, _) = run(
            &["-af", "ClusterId", "ProcId", "-forwards", "-limit", "2"],
            oldest_first.clone(),
        );
        assert_eq!(ids(&out), ["1 0", "1 1"]);
        let (out, _) = run(
            &["-af", "ClusterId", "ProcId", "-forwards", "-since", "2.2"],
            oldest_first.clone(),
        );
        assert_eq!(ids(&out), ["2 3", "2 4"]);
        let t = (T0 / 1000 + 480).to_string();
        let (out, _) = run(
            &["-af", "ProcId", "-forwards", "-completedsince", &t],
            oldest_first,
        );
        assert_eq!(ids(&out), ["2", "3", "4"]);
    }

    /// A master that serves 5,000,000 history records in chunks of 1,000
    /// for as long as its client reads; returns the request it got and how
    /// many chunks it managed to send.
    async fn endless_master(listener: tokio::net::TcpListener) -> (ToMaster, u64) {
        use futures::{SinkExt, StreamExt};
        use pilotq_wire::handshake::Welcome;
        use pilotq_wire::{FrameCodec, FromMaster, PROTOCOL_VERSION};
        let (stream, _) = listener.accept().await.unwrap();
        let mut f = tokio_util::codec::Framed::new(
            stream,
            FrameCodec::<ToMaster, FromMaster>::new(pilotq_wire::DEFAULT_MAX_FRAME),
        );
        let Some(Ok(ToMaster::Hello(_))) = f.next().await else {
            panic!("no Hello")
        };
        f.send(FromMaster::Welcome(Welcome {
            protocol: PROTOCOL_VERSION,
            name: "fake".into(),
            nonce: vec![0; 32],
            proof: None,
            lease_ms: None,
        }))
        .await
        .unwrap();
        let Some(Ok(ToMaster::Proof { .. })) = f.next().await else {
            panic!("no Proof")
        };
        f.send(FromMaster::Accepted).await.unwrap();
        let request = f.next().await.unwrap().unwrap();
        let mut sent = 0;
        for n in 0..5_000u64 {
            let jobs = (0..1_000u64)
                .map(|k| record(5_000 - n, k as u32, 5_000_000 - n * 1_000 - k))
                .collect();
            let last = n == 4_999;
            if f.send(FromMaster::History { jobs, last }).await.is_err() {
                break;
            }
            sent += 1;
        }
        (request, sent)
    }

    #[test]
    fn a_limit_closes_the_connection_after_a_chunk_or_two() {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let listener = rt
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let master = rt.spawn(endless_master(listener));
        let o = parse_args(&args(&["-limit", "100", "-af", "ClusterId", "ProcId"])).unwrap();
        let mut out = Vec::new();
        let client = ClientOpts::from_env(Some(addr));
        block_on(fetch_and_print(&client, &o, NARROW, &mut out))
            .unwrap()
            .unwrap();
        let out = String::from_utf8(out).unwrap();
        assert_eq!(out.lines().count(), 100);
        assert!(out.starts_with("5000 0\n5000 1\n"), "{out:.40}");
        let (request, sent) = rt.block_on(master).unwrap();
        assert_eq!(
            request,
            ToMaster::History {
                selectors: vec![],
                forwards: false
            }
        );
        // What the socket buffers held when the client closed, not the
        // 5,000 chunks a client reading to the end would have cost.
        assert!(sent < 20, "the master sent {sent} chunks");
    }

    #[test]
    fn failing_to_reach_the_master_exits_nonzero() {
        // Nothing listens on port 1 of loopback.
        assert_eq!(main(args(&["-pool", "127.0.0.1:1", "-af", "ClusterId"])), 1);
    }
}
