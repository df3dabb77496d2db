//! `condor_q`: the counting idiom of the field (`-constraint` + `-format` or
//! `-af`, lines counted), output formats, job attributes, custom attributes,
//! and failing loudly when the master cannot be asked.

use pilotq_tests::{current_user, free_port, Cluster, MasterOpts, COMPLETED, IDLE, RUNNING};
use std::collections::BTreeSet;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// A 2-core worker and five one-core `sleep 30` jobs: two running, three
/// idle (one of them possibly waiting in the worker's own queue, which
/// counts as idle). Returns the cluster id.
fn two_running_three_idle() -> (Cluster, u64) {
    let mut c = Cluster::with_master(MasterOpts::default());
    let cl = c.condor_submit_ok("executable = /bin/sleep\narguments = 30\nqueue 5\n", 5);
    c.add_worker("w1", 2);
    c.wait_until(
        Duration::from_secs(30),
        "two jobs running and three idle",
        |jobs| {
            jobs.iter().filter(|j| j.status == RUNNING).count() == 2
                && jobs.iter().filter(|j| j.status == IDLE).count() == 3
        },
    );
    (c, cl)
}

/// `C.P` ids of the jobs `pilotq q --json` shows in `status`.
fn ids_in(c: &Cluster, status: u64) -> BTreeSet<String> {
    c.jobs()
        .into_iter()
        .filter(|j| j.status == status)
        .map(|j| j.id)
        .collect()
}

#[test]
fn the_counting_idiom_counts_idle_and_running_jobs() {
    let (c, cl) = two_running_three_idle();
    let count = |args: &[&str]| c.condor_q_lines(args).len();
    // How a site's submit plugin counts idle pilots: condor_q -constraint 'JobStatus == 1' -format '%d\n'
    // ClusterId | wc -l
    let idle = c.condor_q_lines(&[
        "-constraint",
        "JobStatus == 1",
        "-format",
        "%d\\n",
        "ClusterId",
    ]);
    assert_eq!(idle, vec![cl.to_string(); 3], "idle jobs' ClusterId");
    let running = c.condor_q_lines(&["-const", "JobStatus == 2", "-format", "%d\\n", "ClusterId"]);
    assert_eq!(running, vec![cl.to_string(); 2], "running jobs' ClusterId");
    assert_eq!(
        count(&["-constraint", "JobStatus == 1", "-af", "ClusterId"]),
        3
    );
    assert_eq!(
        count(&["-constraint", "JobStatus == 2", "-autoformat", "ClusterId"]),
        2
    );

    // The same jobs as `pilotq q` has, by id, through repeated -format.
    let by_format = |st: &str| -> BTreeSet<String> {
        let constraint = format!("JobStatus == {st}");
        c.condor_q_lines(&[
            "-constraint",
            &constraint,
            "-format",
            "%d.",
            "ClusterId",
            "-format",
            "%d\\n",
            "ProcId",
        ])
        .into_iter()
        .collect()
    };
    let by_af = |st: &str| -> BTreeSet<String> {
        let constraint = format!("JobStatus == {st}");
        c.condor_q_lines(&["-constraint", &constraint, "-af", "ClusterId", "ProcId"])
            .into_iter()
            .map(|l| l.replace(' ', "."))
            .collect()
    };
    // Nothing moves while the jobs sleep 30 s, so pilotq's view is the same.
    let (want_idle, want_running) = (ids_in(&c, IDLE), ids_in(&c, RUNNING));
    assert_eq!(by_format("1"), want_idle);
    assert_eq!(by_af("1"), want_idle);
    assert_eq!(by_format("2"), want_running);
    assert_eq!(by_af("2"), want_running);

    // ClassAd spellings the field uses.
    let cases: &[(&str, usize)] = &[
        ("JobStatus =?= 1", 3),
        ("jobstatus == 1", 3),
        ("JOBSTATUS==2", 2),
        ("JobStatus != 2", 3),
        ("!(JobStatus == 2)", 3),
        ("JobStatus >= 2", 2),
        ("JobStatus < 2", 3),
        ("JobStatus <= 2 && JobStatus > 0", 5),
        (
            "(JobStatus == 1 || JobStatus == 2) && ClusterId == CLUSTER",
            5,
        ),
        ("JobStatus == 1 && ProcId >= 0 && Owner == \"OWNER\"", 3),
        ("JobStatus == 4", 0),
        ("ClusterId != CLUSTER", 0),
    ];
    let user = current_user();
    for (expr, n) in cases {
        let expr = expr
            .replace("CLUSTER", &cl.to_string())
            .replace("OWNER", &user);
        assert_eq!(
            count(&["-constraint", &expr, "-af", "ProcId"]),
            *n,
            "condor_q -constraint '{expr}' -af ProcId"
        );
    }

    // Running jobs say where they run.
    for l in c.condor_q_lines(&["-constraint", "JobStatus == 2", "-af", "RemoteHost"]) {
        assert!(
            !l.is_empty() && l != "undefined",
            "a running job's RemoteHost is {l:?}"
        );
    }

    // Ids as arguments.
    assert_eq!(
        c.condor_q_lines(&[&format!("{cl}.3"), "-af", "ProcId"]),
        ["3"]
    );
    assert_eq!(count(&[&cl.to_string(), "-af", "ProcId"]), 5);
    assert_eq!(
        c.condor_q_lines(&[&format!("{cl}.1"), &format!("{cl}.4"), "-af", "ProcId"]),
        ["1", "4"]
    );
    assert_eq!(count(&[&(cl + 1).to_string(), "-af", "ProcId"]), 0);
}

#[test]
fn totals_and_the_summary_line() {
    let (c, cl) = two_running_three_idle();
    let summary =
        "Total for query: 5 jobs; 0 completed, 0 removed, 3 idle, 2 running, 0 held, 0 suspended";
    let out = c.run_condor_ok("condor_q", &["-totals"]);
    assert!(
        out.stdout.lines().any(|l| l.trim() == summary),
        "condor_q -totals should print\n{summary}\n{out}"
    );
    for args in [&[][..], &["-nobatch"][..]] {
        let out = c.run_condor_ok("condor_q", args);
        assert!(
            out.stdout.lines().any(|l| l.trim() == summary),
            "condor_q {args:?} should end with\n{summary}\n{out}"
        );
    }
    let out = c.run_condor_ok("condor_q", &["-nobatch"]);
    let header = out
        .stdout
        .lines()
        .find(|l| l.contains("OWNER"))
        .unwrap_or_else(|| panic!("condor_q -nobatch printed no header\n{out}"));
    assert_eq!(
        header.split_whitespace().collect::<Vec<_>>(),
        [
            "ID",
            "OWNER",
            "SUBMITTED",
            "RUN_TIME",
            "ST",
            "PRI",
            "SIZE",
            "CMD"
        ],
        "{out}"
    );
    let user = current_user();
    for p in 0..5 {
        let id = format!("{cl}.{p}");
        let row = out
            .stdout
            .lines()
            .find(|l| l.split_whitespace().next() == Some(&id))
            .unwrap_or_else(|| panic!("no row for {id} in condor_q -nobatch\n{out}"));
        let cols: Vec<&str> = row.split_whitespace().collect();
        assert_eq!(cols[1], user, "{row}");
        assert!(
            cols.contains(&"R") || cols.contains(&"I"),
            "row {row:?} has no ST column of R or I"
        );
        assert!(row.contains("sleep 30"), "{row:?} should show the command");
    }
    // A constraint narrows the summary too.
    let out = c.run_condor_ok("condor_q", &["-constraint", "JobStatus == 2", "-totals"]);
    let want =
        "Total for query: 2 jobs; 0 completed, 0 removed, 0 idle, 2 running, 0 held, 0 suspended";
    assert!(
        out.stdout.lines().any(|l| l.trim() == want),
        "wanted {want}\n{out}"
    );
}

fn now_s() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

#[test]
fn a_finished_jobs_attributes_and_the_output_formats() {
    let t0 = now_s();
    let mut c = Cluster::with_master(MasterOpts::default());
    // A finished job leaves the queue for the history store, as in
    // HTCondor's schedd; `leave_in_queue = True` keeps it where condor_q
    // shows it. The same job without it is checked through condor_history.
    let job = "executable = /bin/sh\narguments = \"-c 'exit 3'\"\npriority = 5\n\
               request_memory = 256\nrequest_disk = 2048\n+Pilot = \"yes\"\n";
    let cl = c.condor_submit_ok(&format!("{job}leave_in_queue = True\nqueue\n"), 1);
    let gone = c.condor_submit_ok(&format!("{job}queue\n"), 1);
    c.add_worker("w1", 1);
    c.wait_until(Duration::from_secs(30), "both jobs completed", |jobs| {
        jobs.len() == 2 && jobs.iter().all(|j| j.status == COMPLETED)
    });
    let user = current_user();
    let id = format!("{cl}.0");
    let gone_id = format!("{gone}.0");
    // Only the job kept in the queue is in condor_q; the other is in
    // condor_history, with the same attributes.
    assert_eq!(
        c.condor_q_lines(&["-af", "ClusterId", "ProcId"]),
        [format!("{cl} 0")]
    );
    let history_af = |attrs: &[&str]| -> String {
        let mut args = vec![gone_id.as_str(), "-af"];
        args.extend_from_slice(attrs);
        c.run_condor_ok("condor_history", &args).stdout
    };
    assert_eq!(
        history_af(&[
            "ClusterId",
            "ProcId",
            "JobStatus",
            "ExitCode",
            "NumJobStarts",
            "Owner",
            "Cmd",
            "JobPriority",
            "RequestCpus",
            "RequestMemory",
            "RequestDisk",
            "pilot"
        ]),
        format!("{gone} 0 4 3 1 {user} /bin/sh 5 1 256 2048 yes\n")
    );
    assert_eq!(
        c.run_condor_ok("condor_history", &[&id, "-af", "ClusterId"])
            .stdout,
        "",
        "a job kept in the queue is not in history"
    );
    let af = |attrs: &[&str]| -> String {
        let mut args = vec![id.as_str(), "-af"];
        args.extend_from_slice(attrs);
        let out = c.run_condor_ok("condor_q", &args);
        out.stdout
    };
    assert_eq!(
        af(&[
            "ClusterId",
            "ProcId",
            "JobStatus",
            "ExitCode",
            "NumJobStarts",
            "Owner",
            "Cmd",
            "JobPriority",
            "RequestCpus",
            "RequestMemory",
            "RequestDisk"
        ]),
        format!("{cl} 0 4 3 1 {user} /bin/sh 5 1 256 2048\n")
    );
    assert_eq!(
        af(&["ClusterId", "NoSuchAttribute"]),
        format!("{cl} undefined\n")
    );
    // Attribute names are case-insensitive.
    assert_eq!(
        af(&["clusterid", "OWNER", "pilot"]),
        format!("{cl} {user} yes\n")
    );
    let times = af(&["QDate", "EnteredCurrentStatus"]);
    let t: Vec<i64> = times
        .split_whitespace()
        .map(|v| {
            v.parse()
                .unwrap_or_else(|_| panic!("QDate/EnteredCurrentStatus {times:?}"))
        })
        .collect();
    let now = now_s();
    assert_eq!(t.len(), 2, "{times:?}");
    assert!(
        t0 - 5 <= t[0] && t[0] <= t[1] && t[1] <= now + 5,
        "QDate {} EnteredCurrentStatus {} outside [{t0}, {now}] (seconds since the epoch)",
        t[0],
        t[1]
    );

    let format = |args: &[&str]| -> String {
        let mut all = vec![id.as_str()];
        all.extend_from_slice(args);
        c.run_condor_ok("condor_q", &all).stdout
    };
    // -format prints no newline of its own.
    assert_eq!(format(&["-format", "%s", "Owner"]), user);
    assert_eq!(format(&["-format", "%d", "ExitCode"]), "3");
    assert_eq!(format(&["-format", "%f\\n", "JobPriority"]), "5.000000\n");
    assert_eq!(format(&["-format", "%v\\n", "ProcId"]), "0\n");
    assert_eq!(
        format(&[
            "-format",
            "owner=%s ",
            "Owner",
            "-format",
            "exit=%d\\n",
            "ExitCode"
        ]),
        format!("owner={user} exit=3\n")
    );
    assert_eq!(
        format(&["-format", "[%s]\\n", "Pilot"]),
        "[yes]\n",
        "a custom string attribute through %s"
    );

    // -af qualifiers: :j job id first, :l labels, :h a header line.
    assert_eq!(af(&["ExitCode"]), "3\n");
    let out = c.run_condor_ok("condor_q", &[&id, "-af:j", "ExitCode", "Owner"]);
    assert_eq!(out.stdout, format!("{cl}.0 3 {user}\n"), "-af:j\n{out}");
    let out = c.run_condor_ok("condor_q", &[&id, "-af:l", "ExitCode", "Owner"]);
    assert_eq!(
        out.stdout,
        format!("ExitCode = 3 Owner = {user}\n"),
        "-af:l\n{out}"
    );
    let out = c.run_condor_ok("condor_q", &[&id, "-af:h", "ExitCode", "ProcId"]);
    let lines: Vec<Vec<&str>> = out
        .stdout
        .lines()
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(
        lines,
        [vec!["ExitCode", "ProcId"], vec!["3", "0"]],
        "-af:h\n{out}"
    );

    // -long: one `Name = value` line per attribute, strings quoted.
    let out = c.run_condor_ok("condor_q", &[&id, "-long"]);
    let lines: BTreeSet<&str> = out.stdout.lines().collect();
    for want in [
        format!("ClusterId = {cl}"),
        "ProcId = 0".to_string(),
        "JobStatus = 4".to_string(),
        "ExitCode = 3".to_string(),
        format!("Owner = \"{user}\""),
        "Cmd = \"/bin/sh\"".to_string(),
        "Pilot = \"yes\"".to_string(),
    ] {
        assert!(
            lines.contains(want.as_str()),
            "condor_q -long has no line {want:?}\n{out}"
        );
    }
}

#[test]
fn custom_attributes_are_shown_and_constrained() {
    let c = Cluster::with_master(MasterOpts::default());
    let pilots = c.condor_submit_ok(
        "executable = /bin/sleep\narguments = 30\n+Pilot = \"yes\"\nMY.Site = \"cern\"\n\
         +Slots = 4\nqueue 2\n",
        2,
    );
    let small = c.condor_submit_ok(
        "executable = /bin/sleep\narguments = 30\n+Pilot = \"yes\"\nMY.Site = \"fnal\"\n\
         +Slots = 2\nqueue\n",
        1,
    );
    let plain = c.condor_submit_ok("executable = /bin/sleep\narguments = 30\nqueue\n", 1);
    let lines = c.condor_q_lines(&[&pilots.to_string(), "-af", "Pilot", "Site", "Slots"]);
    assert_eq!(lines, ["yes cern 4", "yes cern 4"]);
    assert_eq!(
        c.condor_q_lines(&[&plain.to_string(), "-af", "Pilot", "Site", "Slots"]),
        ["undefined undefined undefined"]
    );
    let clusters = |expr: &str| -> Vec<String> {
        c.condor_q_lines(&["-constraint", expr, "-format", "%d\\n", "ClusterId"])
    };
    let (p, s, n) = (pilots.to_string(), small.to_string(), plain.to_string());
    let (p, s, n) = (p.as_str(), s.as_str(), n.as_str());
    assert_eq!(clusters("Slots > 3 && Pilot == \"yes\""), [p, p]);
    assert_eq!(clusters("Pilot == \"yes\""), [p, p, s]);
    assert_eq!(clusters("Site == \"fnal\""), [s]);
    assert_eq!(clusters("Slots <= 2 || Site == \"nowhere\""), [s]);
    assert_eq!(clusters("Slots > 100"), Vec::<String>::new());
    // On the plain job `Pilot == "yes"` is undefined, and so is its
    // negation: neither selects it. `=?=` is never undefined.
    assert_eq!(clusters("!(Pilot == \"yes\")"), Vec::<String>::new());
    assert_eq!(clusters("!(Pilot =?= \"yes\")"), [n]);
}

/// ClassAd `==` on strings ignores case; `=?=` does not.
#[test]
fn string_comparison_follows_classad_rules() {
    let c = Cluster::with_master(MasterOpts::default());
    let cl = c.condor_submit_ok("executable = /bin/true\n+Site = \"cern\"\nqueue\n", 1);
    let n = |expr: &str| {
        c.condor_q_lines(&["-constraint", expr, "-af", "ClusterId"])
            .len()
    };
    assert_eq!(
        n("Site == \"CERN\""),
        1,
        "== on strings is case-insensitive"
    );
    assert_eq!(
        n("Site =?= \"CERN\""),
        0,
        "=?= on strings is case-sensitive"
    );
    assert_eq!(n("Site =?= \"cern\""), 1);
    assert_eq!(n("Site != \"CERN\""), 0);
    assert_eq!(n(&format!("ClusterId == {cl} && site == \"Cern\"")), 1);
}

#[test]
fn with_the_master_down_condor_q_fails_loudly() {
    let mut c = Cluster::new();
    // Nothing listens there.
    c.set_master_port(free_port());
    for args in [
        &[
            "-constraint",
            "JobStatus == 1",
            "-format",
            "%d\\n",
            "ClusterId",
        ][..],
        &["-const", "JobStatus == 2", "-af", "ClusterId"][..],
        &["-totals"][..],
        &[][..],
    ] {
        let out = c.run_condor("condor_q", args, None);
        assert!(
            !out.ok(),
            "condor_q {args:?} with no master exited 0\n{out}"
        );
        assert!(
            !out.stderr.trim().is_empty(),
            "condor_q {args:?} with no master said nothing on stderr\n{out}"
        );
        assert_eq!(
            out.stdout.lines().count(),
            0,
            "condor_q {args:?} with no master printed lines a script would count\n{out}"
        );
    }
}

#[test]
fn with_a_wrong_password_condor_q_fails_loudly() {
    let dir = tempfile::tempdir().unwrap();
    let pw = dir.path().join("password");
    std::fs::write(&pw, "correct horse battery staple\n").unwrap();
    let mut c = Cluster::with_master(MasterOpts {
        password_file: Some(pw),
        ..MasterOpts::default()
    });
    c.condor_submit_ok("executable = /bin/true\nqueue 2\n", 2);
    let wrong = c.path("wrong-password");
    std::fs::write(&wrong, "Tr0ub4dor&3\n").unwrap();
    c.client_password = Some(wrong);
    let out = c.run_condor(
        "condor_q",
        &[
            "-constraint",
            "JobStatus == 1",
            "-format",
            "%d\\n",
            "ClusterId",
        ],
        None,
    );
    assert!(!out.ok(), "condor_q with a wrong password exited 0\n{out}");
    assert!(
        out.stderr.to_lowercase().contains("authentication"),
        "the error should say that authentication failed\n{out}"
    );
    assert_eq!(out.stdout.lines().count(), 0, "{out}");
}

/// The site's own shell: `eval "$(pilotq env)"`, then the counting idiom
/// through a pipe, with the `condor_*` commands found on PATH.
#[test]
fn a_shell_set_up_by_pilotq_env_counts_jobs_the_sites_way() {
    let c = Cluster::with_master(MasterOpts::default());
    let cl = c.condor_submit_ok("executable = /bin/true\nqueue 2\n", 2);
    let script = format!(
        "eval \"$('{}' env --master '{}')\" || exit 9\n\
         command -v condor_q\n\
         condor_q -constraint 'JobStatus == 1' -format '%d\\n' ClusterId | wc -l\n\
         condor_q -constraint 'JobStatus == 1' -af ClusterId ProcId\n",
        pilotq_tests::bin().display(),
        c.addr()
    );
    let mut sh = std::process::Command::new("/bin/sh");
    sh.arg("-c")
        .arg(&script)
        .current_dir(&c.root)
        .env_clear()
        .env("PATH", "/usr/bin:/bin")
        .stdin(std::process::Stdio::null());
    let out =
        pilotq_tests::run_with_timeout(sh, Duration::from_secs(60), "a shell after pilotq env");
    assert!(out.ok(), "{out}");
    let lines: Vec<&str> = out.stdout.lines().map(str::trim).collect();
    assert_eq!(lines.len(), 4, "{out}");
    let found =
        std::fs::canonicalize(lines[0]).unwrap_or_else(|e| panic!("{}: {e}\n{out}", lines[0]));
    let want = std::fs::canonicalize(pilotq_tests::condor_bin("condor_q")).unwrap();
    assert_eq!(found, want, "the condor_q on PATH after pilotq env\n{out}");
    assert_eq!(
        lines[1..],
        ["2".to_string(), format!("{cl} 0"), format!("{cl} 1")],
        "{out}"
    );
}
