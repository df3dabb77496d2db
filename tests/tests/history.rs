//! `condor_history` and `pilotq history`: finished jobs leave the live queue
//! for the master's history store and are read back from it with every
//! attribute; `leave_in_queue` keeps a finished job in the queue instead;
//! bad options fail loudly.

use pilotq_tests::{current_user, Cluster, MasterOpts, Out};
use serde_json::Value;
use std::cell::RefCell;
use std::collections::BTreeSet;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

fn now_secs() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// `condor_history ARGS` that must succeed: its stdout lines.
fn history_lines(c: &Cluster, args: &[&str]) -> Vec<String> {
    let out = c.run_condor_ok("condor_history", args);
    out.stdout.lines().map(str::to_string).collect()
}

/// Waits until `condor_history -af ClusterId ProcId` lists exactly `ids`
/// (as `C.P`), in any order.
fn wait_in_history(c: &Cluster, ids: &BTreeSet<String>) {
    // The last answer, for the failure message.
    let last = RefCell::new(String::new());
    pilotq_tests::wait_for(
        Duration::from_secs(60),
        &format!("{ids:?} in condor_history"),
        || {
            let out = c.run_condor("condor_history", &["-af", "ClusterId", "ProcId"], None);
            *last.borrow_mut() = out.to_string();
            let got: BTreeSet<String> = out.stdout.lines().map(|l| l.replace(' ', ".")).collect();
            (out.ok() && &got == ids).then_some(())
        },
        || format!("last condor_history:\n{}\n{}", last.borrow(), c.diag()),
    );
}

/// Submit file: three `sh -c 'exit P'` jobs with custom attributes, and a
/// job that kills itself with SIGKILL.
const EXITS: &str = r#"
executable = /bin/sh
arguments = "-c 'exit $(Process)'"
+Project = "atlas"
+Weight = 3
+Pilot = True
queue 3
"#;
const KILLED: &str = r#"
executable = /bin/sh
arguments = "-c 'kill -9 $$'"
+Project = "cms"
queue 1
"#;

#[test]
fn finished_jobs_leave_the_queue_for_history_with_every_attribute() {
    let mut c = Cluster::with_master(MasterOpts::default());
    let t0 = now_secs();
    let exits = c.condor_submit_ok(EXITS, 3);
    let killed = c.condor_submit_ok(KILLED, 1);
    c.add_worker("w1", 2);
    let all: BTreeSet<String> = [
        format!("{exits}.0"),
        format!("{exits}.1"),
        format!("{exits}.2"),
        format!("{killed}.0"),
    ]
    .into_iter()
    .collect();
    wait_in_history(&c, &all);
    let t1 = now_secs();

    // Gone from the live queue: condor_q shows nothing of them.
    assert_eq!(
        c.condor_q_lines(&["-af", "ClusterId", "ProcId"]),
        Vec::<String>::new()
    );

    // Exit codes and statuses, by constraint and by id.
    let codes = history_lines(
        &c,
        &[
            "-constraint",
            &format!("ClusterId == {exits}"),
            "-af",
            "ProcId",
            "ExitCode",
        ],
    );
    let codes: BTreeSet<String> = codes.into_iter().collect();
    assert_eq!(
        codes,
        BTreeSet::from(["0 0", "1 1", "2 2"].map(String::from))
    );
    assert_eq!(
        history_lines(&c, &[&format!("{exits}.1"), "-af", "ExitCode"]),
        ["1"]
    );
    assert_eq!(
        history_lines(&c, &["-constraint", "ExitCode == 2", "-af:j", "Project"]),
        [format!("{exits}.2 atlas")]
    );
    assert_eq!(
        history_lines(
            &c,
            &[
                &killed.to_string(),
                "-af",
                "JobStatus",
                "ExitBySignal",
                "ExitSignal",
                "ExitCode"
            ]
        ),
        ["4 true 9 undefined"]
    );
    let owner = current_user();
    assert_eq!(history_lines(&c, &[&owner, "-af", "ProcId"]).len(), 4);
    assert_eq!(
        history_lines(&c, &["nobody-at-all", "-af", "ProcId"]).len(),
        0
    );

    // Every attribute of one record.
    let long = c
        .run_condor_ok("condor_history", &["-long", &format!("{exits}.1")])
        .stdout;
    for want in [
        format!("ClusterId = {exits}\n"),
        "ProcId = 1\n".to_string(),
        "JobStatus = 4\n".to_string(),
        "ExitCode = 1\n".to_string(),
        "ExitBySignal = false\n".to_string(),
        "NumJobStarts = 1\n".to_string(),
        "LastRemoteHost = \"w1\"\n".to_string(),
        format!("Owner = \"{owner}\"\n"),
        "Cmd = \"/bin/sh\"\n".to_string(),
        "Project = \"atlas\"\n".to_string(),
        "Weight = 3\n".to_string(),
        "Pilot = True\n".to_string(),
    ] {
        assert!(long.contains(&want), "{want:?} missing from\n{long}");
    }
    let completion: i64 = long
        .lines()
        .find_map(|l| l.strip_prefix("CompletionDate = "))
        .unwrap_or_else(|| panic!("no CompletionDate in\n{long}"))
        .parse()
        .unwrap();
    assert!(
        (t0..=t1).contains(&completion),
        "{completion} not in {t0}..={t1}"
    );
    assert!(long.ends_with("\n\n"), "{long}");

    // Newest first by default; -forwards reverses; -limit cuts.
    let back = history_lines(&c, &["-af", "ClusterId", "ProcId"]);
    let mut fwd = history_lines(&c, &["-forwards", "-af", "ClusterId", "ProcId"]);
    fwd.reverse();
    assert_eq!(back, fwd);
    assert_eq!(
        history_lines(&c, &["-limit", "2", "-af", "ClusterId", "ProcId"]),
        back[..2]
    );
    assert_eq!(
        history_lines(&c, &["-match", "1", "-af", "ClusterId", "ProcId"]),
        back[..1]
    );
    let dates: Vec<i64> = history_lines(&c, &["-af", "CompletionDate"])
        .iter()
        .map(|l| l.parse().unwrap())
        .collect();
    assert!(
        dates.windows(2).all(|w| w[0] >= w[1]),
        "newest first: {dates:?}"
    );
    // -since the oldest: all but it.
    let oldest = back.last().unwrap().replace(' ', ".");
    assert_eq!(
        history_lines(&c, &["-since", &oldest, "-af", "ClusterId", "ProcId"]),
        back[..3]
    );
    // -completedsince the future: nothing.
    let later = (t1 + 3600).to_string();
    assert_eq!(
        history_lines(&c, &["-completedsince", &later, "-af", "ProcId"]).len(),
        0
    );
    assert_eq!(
        history_lines(&c, &["-completedsince", &t0.to_string(), "-af", "ProcId"]).len(),
        4
    );

    // -format, the counting idiom.
    assert_eq!(
        history_lines(
            &c,
            &[
                "-constraint",
                "ExitCode != 0",
                "-format",
                "%d\\n",
                "ClusterId"
            ]
        )
        .len(),
        2
    );

    // JSON: an array of whole ads.
    let json: Value = serde_json::from_str(&c.run_condor_ok("condor_history", &["-json"]).stdout)
        .expect("condor_history -json prints JSON");
    let ads = json.as_array().expect("an array");
    assert_eq!(ads.len(), 4);
    let ad1 = ads
        .iter()
        .find(|a| a["ClusterId"] == exits && a["ProcId"] == 1)
        .expect("job .1 in -json");
    assert_eq!(ad1["ExitCode"], 1);
    assert_eq!(ad1["JobStatus"], 4);
    assert_eq!(ad1["Project"], "atlas");
    assert_eq!(ad1["Weight"], 3);
    assert_eq!(ad1["Pilot"], true);
    let jsonl = c
        .run_condor_ok("condor_history", &["-jsonl", "-limit", "3"])
        .stdout;
    assert_eq!(jsonl.lines().count(), 3);
    for l in jsonl.lines() {
        let ad: Value = serde_json::from_str(l).expect("a JSON object per line");
        assert!(ad["CompletionDate"].is_i64(), "{ad}");
    }

    // The default view.
    let lines = history_lines(&c, &[]);
    assert!(
        lines[0].starts_with(" ID     OWNER          SUBMITTED   RUN_TIME     ST COMPLETED   CMD"),
        "{lines:?}"
    );
    assert_eq!(lines.len(), 5, "{lines:?}");
    for l in &lines[1..] {
        assert!(l.contains(" C  "), "{l:?}");
        assert!(l.contains("/bin/sh -c"), "{l:?}");
    }

    // pilotq history: the same jobs, with exit codes.
    let out = c.run_ok(&["history", "--json"]);
    let jobs: Value = serde_json::from_str(&out.stdout).expect("pilotq history --json");
    let jobs = jobs.as_array().unwrap();
    assert_eq!(jobs.len(), 4);
    let j1 = jobs
        .iter()
        .find(|j| j["id"] == format!("{exits}.1"))
        .unwrap();
    assert_eq!(j1["exit_code"], 1);
    assert_eq!(j1["status"], 4);
    assert!(
        j1["completed_at"].as_u64().unwrap() >= (t0 as u64) * 1000,
        "{j1}"
    );
    assert_eq!(j1["attributes"]["Project"], "\"atlas\"");
    let k = jobs
        .iter()
        .find(|j| j["id"] == format!("{killed}.0"))
        .unwrap();
    assert_eq!(k["signal"], 9);
    let one = c.run_ok(&["history", "--jsonl", "--limit", "1"]);
    assert_eq!(one.stdout.lines().count(), 1);
    let table = c.run_ok(&["history", &exits.to_string()]);
    assert!(
        table
            .stdout
            .ends_with("Total for query: 3 jobs; 3 completed, 0 removed\n"),
        "{table}"
    );
}

#[test]
fn a_removed_job_is_in_history_as_removed() {
    let mut c = Cluster::with_master(MasterOpts::default());
    let cl = c.condor_submit_ok("executable = /bin/sleep\narguments = 300\nqueue 1\n", 1);
    c.add_worker("w1", 1);
    c.wait_until(Duration::from_secs(30), "the job running", |jobs| {
        jobs.iter().any(|j| j.status == pilotq_tests::RUNNING)
    });
    c.run_condor_ok("condor_rm", &[&cl.to_string()]);
    wait_in_history(&c, &BTreeSet::from([format!("{cl}.0")]));
    assert_eq!(
        history_lines(&c, &["-af", "JobStatus", "ExitCode"]),
        ["3 undefined"]
    );
    let lines = history_lines(&c, &[]);
    assert!(lines[1].contains(" X  "), "{lines:?}");
    assert_eq!(
        c.condor_q_lines(&["-af", "ClusterId"]),
        Vec::<String>::new()
    );
}

#[test]
fn leave_in_queue_keeps_a_finished_job_in_the_queue_and_out_of_history() {
    let mut c = Cluster::with_master(MasterOpts::default());
    // A plain job first: once it is in history, the history works, so the
    // kept job's absence below means something.
    let plain = c.condor_submit_ok("executable = /bin/true\nqueue 1\n", 1);
    c.add_worker("w1", 1);
    wait_in_history(&c, &BTreeSet::from([format!("{plain}.0")]));
    let kept = c.condor_submit_ok(
        "executable = /bin/sh\narguments = \"-c 'exit 7'\"\nleave_in_queue = True\nqueue 1\n",
        1,
    );
    let id = format!("{kept}.0");
    let last = RefCell::new(String::new());
    pilotq_tests::wait_for(
        Duration::from_secs(60),
        "the kept job completed in condor_q",
        || {
            let out = c.run_condor("condor_q", &[&id, "-af", "JobStatus", "ExitCode"], None);
            *last.borrow_mut() = out.to_string();
            (out.ok() && out.stdout == "4 7\n").then_some(())
        },
        || format!("last condor_q:\n{}\n{}", last.borrow(), c.diag()),
    );
    // Still there a moment later, and never in history.
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(c.condor_q_lines(&[&id, "-af", "JobStatus"]), ["4"]);
    assert_eq!(
        history_lines(&c, &[&kept.to_string(), "-af", "ProcId"]),
        Vec::<String>::new()
    );
    assert_eq!(
        history_lines(&c, &["-af", "ClusterId", "ProcId"]),
        [format!("{plain} 0")]
    );
}

/// A failure that must not look like an empty history: non-zero, one line
/// saying why, the usage on stderr, nothing on stdout.
fn assert_refused(out: &Out, why: &str) {
    assert!(!out.ok(), "{out}");
    assert!(out.stdout.is_empty(), "{out}");
    assert!(out.stderr.contains(why), "{why:?} not in\n{out}");
    assert!(out.stderr.contains("Usage: condor_history"), "{out}");
}

#[test]
fn bad_options_fail_loudly() {
    let c = Cluster::with_master(MasterOpts::default());
    assert_refused(
        &c.run_condor("condor_history", &["-bogus"], None),
        "unknown option -bogus",
    );
    assert_refused(
        &c.run_condor(
            "condor_history",
            &["-file", "/var/lib/condor/spool/history"],
            None,
        ),
        "-file is not supported",
    );
    assert_refused(
        &c.run_condor("condor_history", &["-limit", "many"], None),
        "requires a number",
    );
    assert_refused(
        &c.run_condor("condor_history", &["-constraint", "ExitCode =="], None),
        "not a ClassAd expression",
    );
    // -help is not a failure.
    let help = c.run_condor("condor_history", &["-help"], None);
    assert!(
        help.ok() && help.stdout.contains("-completedsince"),
        "{help}"
    );
}

#[test]
fn an_unreachable_master_is_an_error_not_an_empty_history() {
    let mut c = Cluster::with_master(MasterOpts::default());
    c.stop_master();
    let out = c.run_condor("condor_history", &["-af", "ClusterId"], None);
    assert!(!out.ok(), "{out}");
    assert!(out.stdout.is_empty(), "{out}");
    assert!(out.stderr.contains("Failed to fetch history"), "{out}");
}
