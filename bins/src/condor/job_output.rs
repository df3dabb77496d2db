//! # Job ads on stdout: `-long`, `-json`, `-jsonl`, `-format`, `-af`
//!
//! `condor_q` and `condor_history` print chosen jobs the same ways, parsed
//! by the same options; this module holds both halves, so the two commands
//! cannot drift apart:
//!
//! | option | prints |
//! |---|---|
//! | `-long`, `-l` | each whole ad as `Name = value` lines, a blank line after each ([`super::job_ad::long_form`]) |
//! | `-attributes A,B` | (with `-long`, `-json`, `-jsonl`) only these attributes |
//! | `-json` | one JSON array of ads, HTCondor's layout: `[`, each ad as an indented object, `,` on a line of its own between ads, `]` |
//! | `-jsonl` | one compact JSON object per line |
//! | `-format FMT ATTR`, `-af[:jlhVrtn,g] ATTR…` | a print mask ([`super::print_format`]) |
//!
//! When several are given, `-json`/`-jsonl` win over `-long`, which wins
//! over a print mask. In JSON, a built-in attribute is its value; a custom
//! attribute stored as a literal (`+Project = "atlas"`, `+N = 3`) is that
//! literal, any other expression is the string `"\/Expr(TEXT)\/"`, as
//! HTCondor's JSON writer does. `-json` prints a JSON array even when no job
//! matches (`[` and `]`), so that a consumer can always parse the answer.
//!
//! Printing is streamed: [`Printer::print`] writes a job as soon as it
//! comes, except for `-af:h`, whose column widths depend on every row (those
//! jobs are held until [`Printer::finish`]).
//!
//! The HTCondor option-name helpers ([`is_option`], [`value_of`], …) live
//! here too, for every `condor_*` command.

use super::classad::{parse_value, Expr, Value};
use super::job_ad::{ad_entries, long_form, AdEntry, JobAd};
use super::print_format::PrintMask;
use pilotq_wire::JobView;
use std::fmt::Write as _;
use std::io::Write;

/// How HTCondor matches option names: one or two dashes, then any prefix of
/// `name` at least `min` characters long.
pub(crate) fn is_option(arg: &str, name: &str, min: usize) -> bool {
    let Some(body) = arg.strip_prefix('-') else {
        return false;
    };
    let body = body.strip_prefix('-').unwrap_or(body);
    body.len() >= min && name.starts_with(body)
}

/// `-af`, `-af:quals`, `-autoformat[:quals]` (prefix `-autof` or longer):
/// the qualifiers, or `None` if `arg` is not such an option.
pub(crate) fn autoformat_qualifiers(arg: &str) -> Option<&str> {
    let (head, quals) = match arg.split_once(':') {
        Some((h, q)) => (h, q),
        None => (arg, ""),
    };
    let body = head.strip_prefix('-')?;
    let body = body.strip_prefix('-').unwrap_or(body);
    (body == "af" || (body.len() >= 5 && "autoformat".starts_with(body))).then_some(quals)
}

/// The attribute arguments of `-af`: every following argument up to the next
/// one that starts with a dash.
pub(crate) fn autoformat_args(
    args: &[String],
    i: &mut usize,
    opt: &str,
) -> Result<Vec<String>, String> {
    let mut attrs = Vec::new();
    while let Some(a) = args.get(*i + 1).filter(|a| !a.starts_with('-')) {
        attrs.push(a.clone());
        *i += 1;
    }
    if attrs.is_empty() {
        return Err(format!("{opt} requires at least one attribute"));
    }
    Ok(attrs)
}

/// The value after option `args[*i]`, advancing `i`.
pub(crate) fn value_of<'a>(
    args: &'a [String],
    i: &mut usize,
    what: &str,
) -> Result<&'a str, String> {
    *i += 1;
    args.get(*i)
        .map(String::as_str)
        .ok_or_else(|| format!("{} requires {what}", args[*i - 1]))
}

/// `-json` or `-jsonl`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Json {
    /// `-json`: one array, ads pretty-printed.
    Array,
    /// `-jsonl`: one compact object per line.
    Lines,
}

/// Which jobs the command line names: `C`/`C.P` ids (sent to the master as
/// selectors), owners and `-constraint` expressions (applied here to each
/// job as it comes). `condor_q` and `condor_history` take them alike.
#[derive(Debug, Default)]
pub struct JobFilter {
    /// Positional `C` / `C.P` ids.
    pub ids: Vec<String>,
    /// Positional owner names (and `condor_q -submitter`).
    pub owners: Vec<String>,
    /// `-constraint` texts and their parses, all of which must hold.
    pub constraints: Vec<(String, Expr)>,
}

impl JobFilter {
    /// Takes a positional id or owner, or `-constraint EXPR` (leaving `i`
    /// on its value); `Ok(false)` for anything else.
    pub fn take(&mut self, args: &[String], i: &mut usize) -> Result<bool, String> {
        let arg = args[*i].as_str();
        if !arg.starts_with('-') || arg == "-" {
            if arg.starts_with(|c: char| c.is_ascii_digit()) {
                crate::commands::q::selectors(&[arg.to_string()]).map_err(|e| e.to_string())?;
                self.ids.push(arg.to_string());
            } else if arg.is_empty() || arg == "-" {
                return Err(format!("'{arg}' is neither a job id nor an owner"));
            } else {
                self.owners.push(arg.to_string());
            }
        } else if is_option(arg, "constraint", 2) {
            let text = value_of(args, i, "an expression")?;
            let expr = Expr::parse(text)
                .map_err(|e| format!("-constraint '{text}' is not a ClassAd expression: {e}"))?;
            self.constraints.push((text.to_string(), expr));
        } else {
            return Ok(false);
        }
        Ok(true)
    }

    /// Whether a job passes the owner and constraint restrictions (ids are
    /// the master's to apply).
    pub fn passes(&self, v: &JobView) -> bool {
        (self.owners.is_empty() || self.owners.contains(&v.owner))
            && self
                .constraints
                .iter()
                .all(|(_, e)| e.eval(&JobAd(v)).is_true())
    }

    /// Nothing restricts the jobs.
    pub fn is_empty(&self) -> bool {
        self.ids.is_empty() && self.owners.is_empty() && self.constraints.is_empty()
    }
}

/// What the output options asked for.
#[derive(Debug, Default)]
pub struct JobOutput {
    /// `-format` / `-af` columns.
    pub mask: PrintMask,
    pub long: bool,
    /// `-attributes A,B` (for `-long` and JSON).
    pub attributes: Option<Vec<String>>,
    pub json: Option<Json>,
    /// An `-af:h`: rows wait for the column widths.
    headings: bool,
}

impl JobOutput {
    /// Takes the output option at `args[*i]`, with its values (leaving `i`
    /// on the last one); `Ok(false)` if `args[*i]` is not an output option.
    pub fn take_option(&mut self, args: &[String], i: &mut usize) -> Result<bool, String> {
        let arg = args[*i].as_str();
        if let Some(quals) = autoformat_qualifiers(arg) {
            let attrs = autoformat_args(args, i, arg)?;
            self.mask.add_autoformat(quals, &attrs)?;
            self.headings |= quals.contains('h');
        } else if is_option(arg, "format", 1) {
            let fmt = value_of(args, i, "a format and an attribute")?.to_string();
            let attr = value_of(args, i, "a format and an attribute")?;
            self.mask.add_format(&fmt, attr)?;
        } else if is_option(arg, "long", 1) {
            self.long = true;
        } else if is_option(arg, "attributes", 2) {
            let list = value_of(args, i, "a list of attributes")?;
            let names = list
                .split([',', ' '])
                .filter(|s| !s.is_empty())
                .map(str::to_string);
            self.attributes.get_or_insert_with(Vec::new).extend(names);
        } else if is_option(arg, "jsonl", 5) {
            self.json = Some(Json::Lines);
        } else if is_option(arg, "json", 2) {
            self.json = Some(Json::Array);
        } else {
            return Ok(false);
        }
        Ok(true)
    }

    /// Whether only the jobs are printed (no table, no header, no summary).
    pub fn is_bare(&self) -> bool {
        self.json.is_some() || self.long || !self.mask.is_empty()
    }

    /// A printer for one answer.
    pub fn printer(&self) -> Printer<'_> {
        Printer {
            o: self,
            printed: 0,
            held: Vec::new(),
        }
    }
}

/// Prints the jobs of one answer, one at a time.
pub struct Printer<'a> {
    o: &'a JobOutput,
    printed: u64,
    /// Jobs waiting for `-af:h`'s widths.
    held: Vec<JobView>,
}

impl Printer<'_> {
    /// Prints one job (or keeps it for `-af:h`).
    pub fn print(&mut self, v: &JobView, out: &mut impl Write) -> std::io::Result<()> {
        let o = self.o;
        let first = self.printed == 0;
        self.printed += 1;
        match o.json {
            Some(Json::Array) => {
                out.write_all(if first { b"[\n" } else { b",\n" })?;
                out.write_all(json_ad(v, o.attributes.as_deref(), true).as_bytes())
            }
            Some(Json::Lines) => {
                out.write_all(json_ad(v, o.attributes.as_deref(), false).as_bytes())
            }
            None if o.long => {
                out.write_all(long_form(v, o.attributes.as_deref()).as_bytes())?;
                out.write_all(b"\n")
            }
            None if o.headings => {
                self.held.push(v.clone());
                Ok(())
            }
            None => out.write_all(o.mask.render_one(&JobAd(v)).as_bytes()),
        }
    }

    /// Ends the answer: `-json`'s closing bracket, `-af:h`'s table.
    pub fn finish(self, out: &mut impl Write) -> std::io::Result<()> {
        match self.o.json {
            Some(Json::Array) if self.printed == 0 => out.write_all(b"[\n]\n"),
            Some(Json::Array) => out.write_all(b"]\n"),
            Some(Json::Lines) => Ok(()),
            None if self.o.long => Ok(()),
            None => self.o.mask.render(self.held.iter().map(JobAd), out),
        }
    }
}

/// One job as a JSON object, attributes sorted as `-long` sorts them;
/// `pretty`: HTCondor's `-json` layout (two-space indent, `}` and a newline
/// at the end), else one line (`-jsonl`). Ends with a newline.
pub fn json_ad(v: &JobView, only: Option<&[String]>, pretty: bool) -> String {
    let entries = ad_entries(v, only);
    let mut out = String::with_capacity(entries.len() * 40);
    out.push('{');
    for (n, e) in entries.iter().enumerate() {
        let key = serde_json::to_string(&e.name).unwrap_or_default();
        let value = json_value(e, v);
        match (pretty, n) {
            (true, 0) => out.push_str("\n  "),
            (true, _) => out.push_str(",\n  "),
            (false, 0) => {}
            (false, _) => out.push(','),
        }
        let sep = if pretty { ": " } else { ":" };
        let _ = write!(out, "{key}{sep}{value}");
    }
    out.push_str(if pretty { "\n}\n" } else { "}\n" });
    out
}

/// An attribute's JSON text.
fn json_value(e: &AdEntry, v: &JobView) -> String {
    if let Some(value) = &e.value {
        if let Some(j) = json_literal(value) {
            return j;
        }
        return json_expr(&e.text);
    }
    // A custom attribute: a literal stays a literal, anything else is an
    // expression (unevaluated, as HTCondor stores it).
    if let Ok(expr) = parse_value(&e.text) {
        if expr.references().is_empty() {
            let value = expr.eval(&JobAd(v));
            if value.to_classad_string().eq_ignore_ascii_case(&e.text) {
                if let Some(j) = json_literal(&value) {
                    return j;
                }
            }
        }
    }
    json_expr(&e.text)
}

/// A value as a JSON literal; `None` for what JSON cannot say (`error`,
/// infinities, NaN).
fn json_literal(value: &Value) -> Option<String> {
    Some(match value {
        Value::Int(i) => i.to_string(),
        Value::Real(r) if r.is_finite() => serde_json::to_string(r).ok()?,
        Value::Str(s) => serde_json::to_string(s).ok()?,
        Value::Bool(b) => b.to_string(),
        Value::Undefined => "null".to_string(),
        Value::Real(_) | Value::Error => return None,
    })
}

/// HTCondor's JSON form of an expression: `"\/Expr(TEXT)\/"`.
fn json_expr(text: &str) -> String {
    let quoted = serde_json::to_string(&format!("Expr({text})")).unwrap_or_default();
    format!("\"\\/{}\\/\"", &quoted[1..quoted.len() - 1])
}

#[cfg(test)]
mod tests {
    use super::*;
    use pilotq_wire::{JobId, JobStatus, Resources};

    fn args(s: &[&str]) -> Vec<String> {
        s.iter().map(|a| a.to_string()).collect()
    }

    fn job(cluster: u64, proc: u32) -> JobView {
        JobView {
            id: JobId::new(cluster, proc),
            status: JobStatus::Completed,
            attempts: 1,
            exit_code: Some(3),
            signal: None,
            holder: None,
            hold_reason: None,
            owner: "alice".to_string(),
            cmd: "/bin/sh".to_string(),
            arguments: vec!["-c".to_string(), "exit 3".to_string()],
            priority: 0,
            request: Resources::new(1, 5, 10),
            submitted_at: 1_700_000_000_000,
            entered_status_at: 1_700_000_060_000,
            started_at: Some(1_700_000_030_000),
            attributes: [
                ("Project".to_string(), "\"atlas\"".to_string()),
                ("Weight".to_string(), "RequestCpus * 2".to_string()),
                ("Big".to_string(), "TRUE".to_string()),
            ]
            .into_iter()
            .collect(),
            completed_at: Some(1_700_000_060_000),
            num_starts: 1,
            last_holder: Some("w1".to_string()),
            seq: 9,
        }
    }

    /// Parses `argv` as output options only, then prints `jobs`.
    fn run(argv: &[&str], jobs: &[JobView]) -> String {
        let a = args(argv);
        let mut o = JobOutput::default();
        let mut i = 0;
        while i < a.len() {
            assert!(o.take_option(&a, &mut i).unwrap(), "{}", a[i]);
            i += 1;
        }
        let mut out = Vec::new();
        let mut p = o.printer();
        for j in jobs {
            p.print(j, &mut out).unwrap();
        }
        p.finish(&mut out).unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn options_are_taken_with_their_values() {
        let a = args(&["-af:jh", "A", "B", "-long"]);
        let mut o = JobOutput::default();
        let mut i = 0;
        assert!(o.take_option(&a, &mut i).unwrap());
        assert_eq!(i, 2, "left on the last attribute");
        i += 1;
        assert!(o.take_option(&a, &mut i).unwrap());
        assert!(o.long && !o.mask.is_empty() && o.headings);
        let other = args(&["-constraint"]);
        assert!(!o.take_option(&other, &mut 0).unwrap());
        let bad = |a: &[&str]| JobOutput::default().take_option(&args(a), &mut 0);
        assert!(bad(&["-format", "%d"]).unwrap_err().contains("requires"));
        assert!(bad(&["-af"]).unwrap_err().contains("at least one"));
        assert!(bad(&["-attributes"]).unwrap_err().contains("requires"));
        for (opt, want) in [
            ("-json", Json::Array),
            ("-js", Json::Array),
            ("--json", Json::Array),
            ("-jsonl", Json::Lines),
        ] {
            let mut o = JobOutput::default();
            assert!(o.take_option(&args(&[opt]), &mut 0).unwrap(), "{opt}");
            assert_eq!(o.json, Some(want), "{opt}");
        }
        // `-j` alone is no option of ours.
        assert!(!JobOutput::default()
            .take_option(&args(&["-j"]), &mut 0)
            .unwrap());
    }

    #[test]
    fn json_array_in_htcondor_layout_and_parseable() {
        let out = run(
            &["-json", "-attributes", "ClusterId,Owner,Project"],
            &[job(1, 0), job(1, 1)],
        );
        assert_eq!(
            out,
            "[\n{\n  \"ClusterId\": 1,\n  \"Owner\": \"alice\",\n  \"Project\": \"atlas\"\n}\n\
             ,\n{\n  \"ClusterId\": 1,\n  \"Owner\": \"alice\",\n  \"Project\": \"atlas\"\n}\n]\n"
        );
        let whole = run(&["-json"], &[job(7, 2)]);
        let parsed: serde_json::Value = serde_json::from_str(&whole).unwrap();
        let ad = &parsed[0];
        assert_eq!(ad["ClusterId"], 7);
        assert_eq!(ad["ProcId"], 2);
        assert_eq!(ad["ExitCode"], 3);
        assert_eq!(ad["JobStatus"], 4);
        assert_eq!(ad["ExitBySignal"], false);
        assert_eq!(ad["RemoteWallClockTime"], 30.0);
        assert_eq!(ad["LastRemoteHost"], "w1");
        assert_eq!(ad["Project"], "atlas");
        assert_eq!(ad["Big"], true);
        // An expression stays one, in HTCondor's marker.
        assert_eq!(ad["Weight"], "/Expr(RequestCpus * 2)/");
        assert!(whole.contains("\"Weight\": \"\\/Expr(RequestCpus * 2)\\/\""));
        // Nothing matched: still an array.
        let none = run(&["-json"], &[]);
        assert_eq!(none, "[\n]\n");
        assert_eq!(
            serde_json::from_str::<serde_json::Value>(&none).unwrap(),
            serde_json::json!([])
        );
    }

    #[test]
    fn jsonl_is_one_object_per_line() {
        let out = run(&["-jsonl"], &[job(1, 0), job(2, 0)]);
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines.len(), 2);
        for (l, c) in lines.iter().zip([1, 2]) {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            assert_eq!(v["ClusterId"], c);
        }
        assert_eq!(run(&["-jsonl"], &[]), "");
        let some = run(&["-jsonl", "-attributes", "procid,exitcode"], &[job(1, 4)]);
        assert_eq!(some, "{\"ExitCode\":3,\"ProcId\":4}\n");
    }

    #[test]
    fn json_wins_over_long_which_wins_over_a_mask() {
        let jobs = [job(1, 0)];
        let json = run(&["-af", "ClusterId", "-long", "-jsonl"], &jobs);
        assert!(json.starts_with('{'));
        let long = run(&["-af", "ClusterId", "-long"], &jobs);
        assert!(long.contains("ClusterId = 1\n") && long.ends_with("\n\n"));
        assert_eq!(run(&["-af", "ClusterId", "ExitCode"], &jobs), "1 3\n");
    }

    #[test]
    fn headings_wait_for_every_row() {
        let mut wide = job(1, 1);
        wide.owner = "averyverylongowner".into();
        let out = run(&["-af:h", "Owner", "ProcId"], &[job(1, 0), wide]);
        assert_eq!(
            out,
            "Owner              ProcId\nalice              0     \naveryverylongowner 1     \n"
        );
    }
}
