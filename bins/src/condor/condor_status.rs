//! # `condor_status` — the pool, as far as pilotq has one
//!
//! HTCondor's `condor_status` asks the collector for ads. pilotq's master is
//! the one scheduler and knows its holders only as counts, so:
//!
//! - `condor_status -schedd` shows one scheduler ad, the master's:
//!   `MyType = "Scheduler"`, `Name` (the master's name), `Machine` (the host
//!   of its address), `MyAddress`, `TotalRunningJobs`, `TotalIdleJobs`,
//!   `TotalHeldJobs`, `TotalRemovedJobs`, `TotalCompletedJobs` and
//!   `TotalJobAds` (all of them: pilotq keeps finished jobs). With `-af` /
//!   `-format` (see [`super::print_format`]; names case-insensitive, any
//!   ClassAd expression), `-long`, `-constraint EXPR`, or as HTCondor's table
//!   `Name Machine RunningJobs IdleJobs HeldJobs` with a totals block
//!   (`-total`: the totals block only).
//! - Without `-schedd` there are no per-slot ads to show: the view is the
//!   summary block of HTCondor's slot view, with every core a holder offers
//!   counted as a slot, `Claimed` the running jobs (at most the cores) and
//!   `Unclaimed` the rest. `-af`, `-format` and `-long` need `-schedd`.
//!
//! `-pool HOST:PORT` names the master (else `PILOTQ_MASTER`, else
//! `127.0.0.1:9094`); the secret comes from `PILOTQ_PASSWORD_FILE`. A master
//! that cannot be reached, an unknown option or an expression that does not
//! parse: a message on stderr and exit 1.

use super::classad::{Expr, Value};
use super::condor_q::{autoformat_args, autoformat_qualifiers, is_option, value_of};
use super::print_format::PrintMask;
use crate::client_opts::{block_on, ClientOpts};
use pilotq_wire::message::MasterStatus;
use std::collections::HashMap;
use std::io::{BufWriter, Write};

#[derive(Debug, Default)]
pub struct Options {
    pub pool: Option<String>,
    pub schedd: bool,
    pub total: bool,
    pub long: bool,
    pub constraints: Vec<(String, Expr)>,
    pub mask: PrintMask,
    pub help: bool,
}

pub fn parse_args(args: &[String]) -> Result<Options, String> {
    let mut o = Options::default();
    let mut i = 0;
    while i < args.len() {
        let arg = args[i].as_str();
        if let Some(quals) = autoformat_qualifiers(arg) {
            let attrs = autoformat_args(args, &mut i, arg)?;
            o.mask.add_autoformat(quals, &attrs)?;
        } else if is_option(arg, "schedd", 2) {
            o.schedd = true;
        } else if is_option(arg, "total", 3) || is_option(arg, "totals", 6) {
            o.total = true;
        } else if is_option(arg, "long", 1) {
            o.long = true;
        } else if is_option(arg, "constraint", 2) {
            let text = value_of(args, &mut i, "an expression")?;
            let expr = Expr::parse(text)
                .map_err(|e| format!("-constraint '{text}' is not a ClassAd expression: {e}"))?;
            o.constraints.push((text.to_string(), expr));
        } else if is_option(arg, "format", 1) {
            let fmt = value_of(args, &mut i, "a format and an attribute")?.to_string();
            let attr = value_of(args, &mut i, "a format and an attribute")?;
            o.mask.add_format(&fmt, attr)?;
        } else if is_option(arg, "pool", 1) {
            o.pool = Some(value_of(args, &mut i, "HOST:PORT")?.to_string());
        } else if is_option(arg, "debug", 1) {
        } else if is_option(arg, "help", 1) {
            o.help = true;
        } else if arg.starts_with('-') {
            return Err(format!(
                "unknown option {arg} (condor_status -help lists the options)"
            ));
        } else {
            return Err(format!(
                "'{arg}': pilotq has no machine ads to select by name; try condor_status -schedd"
            ));
        }
        i += 1;
    }
    if !o.schedd && (o.long || !o.mask.is_empty()) {
        return Err("pilotq has no machine ads: -af, -format and -long need -schedd".to_string());
    }
    Ok(o)
}

/// The master's scheduler ad: (name as HTCondor spells it, value), sorted.
pub fn schedd_ad(s: &MasterStatus, addr: &str) -> Vec<(&'static str, Value)> {
    let host = addr
        .rsplit_once(':')
        .map_or(addr, |(h, _)| h)
        .trim_matches(['[', ']']);
    let int = |n: u64| Value::Int(n as i64);
    let total = s.idle + s.running + s.held + s.removed + s.completed;
    vec![
        ("Machine", Value::Str(host.to_string())),
        ("MyAddress", Value::Str(format!("<{addr}>"))),
        ("MyType", Value::Str("Scheduler".to_string())),
        (
            "Name",
            Value::Str(if s.name.is_empty() {
                addr.to_string()
            } else {
                s.name.clone()
            }),
        ),
        ("TotalCompletedJobs", int(s.completed)),
        ("TotalHeldJobs", int(s.held)),
        ("TotalIdleJobs", int(s.idle)),
        ("TotalJobAds", int(total)),
        ("TotalRemovedJobs", int(s.removed)),
        ("TotalRunningJobs", int(s.running)),
    ]
}

fn as_map(ad: &[(&'static str, Value)]) -> HashMap<String, Value> {
    ad.iter()
        .map(|(k, v)| (k.to_ascii_lowercase(), v.clone()))
        .collect()
}

fn plain(v: &Value) -> String {
    v.to_plain_string()
}

/// Writes the answer for the master's `status`, reached at `addr`.
pub fn render(
    o: &Options,
    s: &MasterStatus,
    addr: &str,
    out: &mut impl Write,
) -> std::io::Result<()> {
    if !o.schedd {
        return write_slot_summary(s, out);
    }
    let ad = schedd_ad(s, addr);
    let map = as_map(&ad);
    let selected = o.constraints.iter().all(|(_, e)| e.eval(&map).is_true());
    if o.long {
        if selected {
            for (name, value) in &ad {
                writeln!(out, "{name} = {}", value.to_classad_string())?;
            }
            writeln!(out)?;
        }
        return Ok(());
    }
    if !o.mask.is_empty() {
        return o.mask.render(selected.then_some(map), out);
    }
    let get = |k: &str| map.get(k).map(plain).unwrap_or_default();
    if !o.total {
        let (name, machine) = (get("name"), get("machine"));
        let nw = name.len().max(4);
        let mw = machine.len().max(7);
        writeln!(
            out,
            "{:<nw$} {:<mw$} {:>11} {:>10} {:>10}\n",
            "Name", "Machine", "RunningJobs", "IdleJobs", "HeldJobs"
        )?;
        if selected {
            writeln!(
                out,
                "{name:<nw$} {machine:<mw$} {:>11} {:>10} {:>10}",
                s.running, s.idle, s.held
            )?;
        }
        writeln!(out)?;
    }
    let (r, i, h) = if selected {
        (s.running, s.idle, s.held)
    } else {
        (0, 0, 0)
    };
    writeln!(
        out,
        "{:>38} {:>18} {:>18}\n",
        "TotalRunningJobs", "TotalIdleJobs", "TotalHeldJobs"
    )?;
    writeln!(out, "{:>21} {r:>16} {i:>18} {h:>18}", "Total")
}

/// HTCondor's slot-summary block, with the holders' cores as the slots.
fn write_slot_summary(s: &MasterStatus, out: &mut impl Write) -> std::io::Result<()> {
    let claimed = s.running.min(s.cores);
    writeln!(
        out,
        "{:>13} {:>5} {:>5} {:>7} {:>9} {:>7} {:>10} {:>8} {:>6}\n",
        "", "Total", "Owner", "Claimed", "Unclaimed", "Matched", "Preempting", "Backfill", "Drain"
    )?;
    writeln!(
        out,
        "{:>13} {:>5} {:>5} {:>7} {:>9} {:>7} {:>10} {:>8} {:>6}",
        "Total",
        s.cores,
        0,
        claimed,
        s.cores - claimed,
        0,
        0,
        0,
        0
    )
}

const USAGE: &str = "\
Usage: condor_status [options]
  -schedd                the master's scheduler ad (job counts)
  -af[:jlhVrtn,g] ATTR.. print attributes or expressions of the ad (with -schedd)
  -format FMT ATTR       print ATTR with printf-like FMT (with -schedd; repeatable)
  -long, -l              the whole ad (with -schedd)
  -constraint EXPR       only if the ClassAd expression is true
  -total                 only the totals
  -pool HOST:PORT        the pilotq master (default: $PILOTQ_MASTER, else 127.0.0.1:9094)
Without -schedd: the holders' cores as slots, summarized.
The shared secret is read from $PILOTQ_PASSWORD_FILE.
";

/// `condor_status ARGS…`; returns the exit code.
pub fn main(args: Vec<String>) -> i32 {
    let o = match parse_args(&args) {
        Ok(o) => o,
        Err(e) => {
            eprintln!("condor_status: {e}");
            return 1;
        }
    };
    if o.help {
        print!("{USAGE}");
        return 0;
    }
    let client = ClientOpts::from_env(o.pool.clone());
    let status = block_on(async {
        let mut c = client.connect().await?;
        anyhow::Ok(c.status().await?)
    });
    let status = match status {
        Ok(s) => s,
        Err(e) => {
            eprintln!(
                "Error: couldn't contact the condor_collector (the pilotq master) on {}",
                client.master
            );
            eprintln!("{e:#}");
            return 1;
        }
    };
    let stdout = std::io::stdout();
    let mut out = BufWriter::new(stdout.lock());
    match render(&o, &status, &client.master, &mut out).and_then(|()| out.flush()) {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("condor_status: writing the answer: {e}");
            1
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status() -> MasterStatus {
        MasterStatus {
            name: "pilotq@head".to_string(),
            idle: 10,
            running: 3,
            held: 1,
            completed: 5,
            removed: 2,
            holders: 2,
            cores: 8,
            journal_seq: 0,
            history_completed: 40,
            history_removed: 1,
        }
    }

    fn run(argv: &[&str]) -> String {
        let args: Vec<String> = argv.iter().map(|a| a.to_string()).collect();
        let o = parse_args(&args).unwrap();
        let mut out = Vec::new();
        render(&o, &status(), "head.example:9094", &mut out).unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn schedd_autoformat_reads_the_counts_case_insensitively() {
        assert_eq!(
            run(&["-schedd", "-af", "totalRunningJobs", "totalIdleJobs"]),
            "3 10\n"
        );
        assert_eq!(
            run(&[
                "-schedd",
                "-af",
                "TotalHeldJobs",
                "TotalJobAds",
                "Name",
                "MyType"
            ]),
            "1 21 pilotq@head Scheduler\n"
        );
        assert_eq!(
            run(&["-schedd", "-format", "%d idle\\n", "TotalIdleJobs"]),
            "10 idle\n"
        );
        assert_eq!(
            run(&["-schedd", "-af", "TotalIdleJobs + TotalRunningJobs"]),
            "13\n"
        );
        assert_eq!(
            run(&["-schedd", "-af", "Machine", "MyAddress"]),
            "head.example <head.example:9094>\n"
        );
        assert_eq!(run(&["-schedd", "-af", "NoSuch"]), "undefined\n");
    }

    #[test]
    fn constraint_selects_the_ad_or_not() {
        assert_eq!(
            run(&["-schedd", "-const", "TotalIdleJobs > 5", "-af", "Name"]),
            "pilotq@head\n"
        );
        assert_eq!(
            run(&["-schedd", "-const", "TotalIdleJobs > 50", "-af", "Name"]),
            ""
        );
    }

    #[test]
    fn schedd_table_and_totals() {
        let out = run(&["-schedd"]);
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(
            lines[0],
            "Name        Machine      RunningJobs   IdleJobs   HeldJobs"
        );
        assert_eq!(lines[1], "");
        assert_eq!(
            lines[2],
            "pilotq@head head.example           3         10          1"
        );
        assert_eq!(lines[3], "");
        assert_eq!(
            lines[4],
            "                      TotalRunningJobs      TotalIdleJobs      TotalHeldJobs"
        );
        assert_eq!(lines[5], "");
        assert_eq!(
            lines[6],
            "                Total                3                 10                  1"
        );
        // Numbers end under their headings.
        assert_eq!(lines[6].len(), lines[4].len());
        let total = run(&["-schedd", "-total"]);
        assert_eq!(total, lines[4..].join("\n") + "\n");
    }

    #[test]
    fn long_lists_the_ad() {
        let out = run(&["-schedd", "-long"]);
        assert!(out.contains("MyType = \"Scheduler\"\n"));
        assert!(out.contains("TotalRunningJobs = 3\n"));
        assert!(out.ends_with("\n\n"));
    }

    #[test]
    fn slot_summary_without_schedd() {
        let out = run(&[]);
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines.len(), 3);
        assert!(
            lines[0].contains("Total Owner Claimed Unclaimed Matched Preempting Backfill  Drain")
        );
        let fields: Vec<&str> = lines[2].split_whitespace().collect();
        assert_eq!(fields, ["Total", "8", "0", "3", "5", "0", "0", "0", "0"]);
        assert_eq!(run(&["-total"]), out);
    }

    #[test]
    fn bad_arguments() {
        let err = |a: &[&str]| {
            let args: Vec<String> = a.iter().map(|s| s.to_string()).collect();
            parse_args(&args).unwrap_err()
        };
        assert!(err(&["-bogus"]).contains("unknown option"));
        assert!(err(&["-af", "Name"]).contains("need -schedd"));
        assert!(err(&["-schedd", "-af"]).contains("at least one attribute"));
        assert!(err(&["-schedd", "-const", "1 +"]).contains("not a ClassAd expression"));
        assert!(err(&["slot1@host"]).contains("no machine ads"));
        assert_eq!(
            main(vec!["-pool".into(), "127.0.0.1:1".into(), "-schedd".into()]),
            1
        );
    }
}
