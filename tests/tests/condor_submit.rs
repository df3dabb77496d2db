//! `condor_submit`: submit descriptions from a file or stdin, HTCondor's two
//! quoting syntaxes for arguments and environment, per-job macros, the
//! executable captured at submit, and malformed descriptions that queue
//! nothing.

use pilotq_tests::{current_user, write_executable, Cluster, Input, MasterOpts, Out};
use std::collections::BTreeSet;
use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

/// A job's output as a set of lines (`env` prints in no fixed order).
fn line_set(text: &str) -> BTreeSet<&str> {
    text.lines().collect()
}

#[test]
fn a_submit_file_queues_its_jobs_with_per_job_macros() {
    let mut c = Cluster::with_master(MasterOpts::default());
    // Keys in any case, comments, blank lines, settings HTCondor knows but
    // pilotq has no use for, and keys nobody knows: all accepted.
    let text = "\
# a pilot, the way sites write them
Universe   = vanilla
Executable = /bin/sh
Arguments  = \"-c 'echo $(Cluster).$(Process) $(ClusterId).$(ProcId)'\"

Output     = out/$(Cluster).$(Process).out
ERROR      = out/$(Cluster).$(Process).err
Should_Transfer_Files   = YES
when_to_transfer_output = ON_EXIT
notification = never
some_key_nobody_knows = whatever
queue 3
";
    let cl = c.condor_submit_ok(text, 3);
    let jobs = c.jobs();
    let ids: Vec<&str> = jobs.iter().map(|j| j.id.as_str()).collect();
    assert_eq!(
        ids,
        [format!("{cl}.0"), format!("{cl}.1"), format!("{cl}.2")],
        "{jobs:?}"
    );
    c.add_worker("w1", 2);
    let jobs = c.wait_all_completed(Duration::from_secs(30));
    for j in &jobs {
        assert_eq!(j.exit_code, Some(0), "{:#}", j.raw);
        assert_eq!(j.raw["cmd"], "/bin/sh", "{:#}", j.raw);
        let p = j.proc;
        assert_eq!(
            c.read_file(&format!("out/{cl}.{p}.out")),
            format!("{cl}.{p} {cl}.{p}\n")
        );
        assert_eq!(c.read_file(&format!("out/{cl}.{p}.err")), "");
    }
}

#[test]
fn terse_prints_the_range_of_job_ids() {
    let c = Cluster::with_master(MasterOpts::default());
    let file = c.path("terse.sub");
    // `cmd` is another name of `executable`.
    std::fs::write(&file, "cmd = /bin/true\nqueue 3\n").unwrap();
    let out = c.run_condor("condor_submit", &["-terse", file.to_str().unwrap()], None);
    assert!(out.ok(), "{out}");
    let jobs = c.jobs();
    assert_eq!(jobs.len(), 3, "{jobs:?}");
    let cl = jobs[0].cluster;
    assert_eq!(out.stdout, format!("{cl}.0 - {cl}.2\n"), "{out}");
    assert_eq!(c.condor_q_lines(&["-af", "Cmd"]), ["/bin/true"; 3]);
}

#[test]
fn submitting_with_the_master_down_fails() {
    let mut c = Cluster::new();
    // Nothing listens there.
    c.set_master_port(pilotq_tests::free_port());
    let out = c.condor_submit("executable = /bin/true\nqueue\n");
    assert!(!out.ok(), "condor_submit with no master exited 0\n{out}");
    assert!(
        out.stderr.contains("ERROR"),
        "condor_submit with no master should say ERROR on stderr\n{out}"
    );
    assert!(!out.stdout.contains("submitted to cluster"), "{out}");
}

#[test]
fn request_priority_and_owner_reach_the_job_ad() {
    let c = Cluster::with_master(MasterOpts::default());
    let cl = c.condor_submit_ok(
        "executable = /bin/sleep\narguments = 30\nrequest_cpus = 2\nrequest_memory = 300\n\
         request_disk = 2048\npriority = 7\nqueue\n",
        1,
    );
    let lines = c.condor_q_lines(&[
        &cl.to_string(),
        "-af",
        "Owner",
        "Cmd",
        "RequestCpus",
        "RequestMemory",
        "RequestDisk",
        "JobPriority",
        "JobStatus",
    ]);
    assert_eq!(
        lines,
        [format!("{} /bin/sleep 2 300 2048 7 1", current_user())],
        "Owner Cmd RequestCpus RequestMemory RequestDisk(KB) JobPriority JobStatus"
    );
}

#[test]
fn both_environment_syntaxes_reach_the_job_exactly() {
    let mut c = Cluster::with_master(MasterOpts::default());
    // The examples of HTCondor's manual, old syntax then new syntax.
    let old = c.condor_submit_ok(
        "executable = /usr/bin/env\n\
         environment = one=1;two=2;three=\"quotes have no 'special' meaning\"\n\
         output = out/env-$(Cluster).out\nqueue\n",
        1,
    );
    let new = c.condor_submit_ok(
        "executable = /usr/bin/env\n\
         environment = \"one=1 two=\"\"2\"\" three='spacey ''quoted'' value' B='x y'\"\n\
         output = out/env-$(Cluster).out\nqueue\n",
        1,
    );
    let per_job = c.condor_submit_ok(
        "executable = /usr/bin/env\n\
         environment = \"JOB=$(Cluster).$(Process)\"\n\
         output = out/env-$(Cluster).$(Process).out\nqueue 2\n",
        2,
    );
    c.add_worker("w1", 2);
    let jobs = c.wait_all_completed(Duration::from_secs(30));
    for j in &jobs {
        assert_eq!(j.exit_code, Some(0), "{:#}", j.raw);
    }
    let got = c.read_file(&format!("out/env-{old}.out"));
    assert_eq!(
        line_set(&got),
        BTreeSet::from([
            "one=1",
            "two=2",
            "three=\"quotes have no 'special' meaning\""
        ]),
        "old syntax: the job's environment must be exactly the submitted one; it was:\n{got}"
    );
    let got = c.read_file(&format!("out/env-{new}.out"));
    assert_eq!(
        line_set(&got),
        BTreeSet::from(["one=1", "two=\"2\"", "three=spacey 'quoted' value", "B=x y"]),
        "new syntax: the job's environment must be exactly the submitted one; it was:\n{got}"
    );
    for p in 0..2 {
        let got = c.read_file(&format!("out/env-{per_job}.{p}.out"));
        assert_eq!(
            got,
            format!("JOB={per_job}.{p}\n"),
            "$(Cluster).$(Process) in the environment"
        );
    }
}

#[test]
fn both_argument_syntaxes_reach_the_job_exactly() {
    let mut c = Cluster::with_master(MasterOpts::default());
    let script = c.path("args.sh");
    write_executable(
        &script,
        "#!/bin/sh\nfor a in \"$@\"; do echo \"[$a]\"; done\n",
    );
    let s = script.display();
    let submit = |args: &str, queue: u32| {
        c.condor_submit_ok(
            &format!(
                "executable = {s}\narguments = {args}\n\
                 output = out/args-$(Cluster).$(Process).out\nqueue {queue}\n"
            ),
            queue,
        )
    };
    let cases = [
        // Old syntax: words separated by blanks, runs of blanks included.
        (submit("one  two\tthree", 1), "[one]\n[two]\n[three]\n"),
        // New syntax, HTCondor manual's example: '' groups words, "" is a
        // literal double quote, '' inside '...' a literal single quote.
        (
            submit("\"one \"\"two\"\" 'spacey ''quoted'' argument'\"", 1),
            "[one]\n[\"two\"]\n[spacey 'quoted' argument]\n",
        ),
        (
            submit("\"one 'two with spaces' 3\"", 1),
            "[one]\n[two with spaces]\n[3]\n",
        ),
    ];
    let macros = submit("\"$(Cluster) $(Process) id=$(ClusterId).$(ProcId)\"", 2);
    c.add_worker("w1", 2);
    let jobs = c.wait_all_completed(Duration::from_secs(30));
    for j in &jobs {
        assert_eq!(j.exit_code, Some(0), "{:#}", j.raw);
    }
    for (cl, want) in cases {
        let got = c.read_file(&format!("out/args-{cl}.0.out"));
        assert_eq!(got, want, "arguments of cluster {cl}");
    }
    for p in 0..2 {
        assert_eq!(
            c.read_file(&format!("out/args-{macros}.{p}.out")),
            format!("[{macros}]\n[{p}]\n[id={macros}.{p}]\n"),
            "macros in arguments"
        );
    }
}

const STDIN_JOB: &str = "\
executable = /bin/echo
arguments = from stdin
output = out/stdin-$(Cluster).out
queue
";

#[test]
fn the_description_is_read_from_stdin_without_a_file_or_with_dash() {
    let mut c = Cluster::with_master(MasterOpts::default());
    let parse = |out: Out| {
        assert!(out.ok(), "{out}");
        pilotq_tests::parse_submit(&out.stdout, 1).unwrap_or_else(|e| panic!("{e}\n{out}"))
    };
    let a = parse(c.run_condor("condor_submit", &[], Some(STDIN_JOB)));
    let b = parse(c.run_condor("condor_submit", &["-"], Some(STDIN_JOB)));
    assert_ne!(a, b);
    assert_eq!(c.jobs().len(), 2);
    c.add_worker("w1", 1);
    c.wait_all_completed(Duration::from_secs(30));
    for cl in [a, b] {
        assert_eq!(c.read_file(&format!("out/stdin-{cl}.out")), "from stdin\n");
    }
}

#[test]
fn given_a_file_it_never_reads_stdin() {
    let mut c = Cluster::with_master(MasterOpts::default());
    let file = c.path("from-file.sub");
    std::fs::write(&file, STDIN_JOB.replace("from stdin", "from a file")).unwrap();
    // stdin is a pipe nobody writes nor closes: reading it would hang.
    let out = c.run_condor_with(
        "condor_submit",
        &[file.to_str().unwrap()],
        Input::OpenPipe,
        None,
        Duration::from_secs(20),
    );
    assert!(out.ok(), "{out}");
    let cl = pilotq_tests::parse_submit(&out.stdout, 1).unwrap_or_else(|e| panic!("{e}\n{out}"));
    c.add_worker("w1", 1);
    c.wait_all_completed(Duration::from_secs(30));
    assert_eq!(c.read_file(&format!("out/stdin-{cl}.out")), "from a file\n");
}

/// HTCondor's initial directory is where condor_submit runs: relative
/// executable, output, error and log paths are relative to it.
#[test]
fn relative_paths_are_relative_to_the_submit_directory() {
    let mut c = Cluster::with_master(MasterOpts::default());
    let sub = c.path("submitdir");
    std::fs::create_dir(&sub).unwrap();
    write_executable(&sub.join("hello.sh"), "#!/bin/sh\necho \"hello $1\"\n");
    std::fs::write(
        sub.join("hello.sub"),
        "executable = hello.sh\narguments = world\noutput = hello.out\nerror = hello.err\n\
         log = hello.log\nqueue\n",
    )
    .unwrap();
    let out = c.run_condor_with(
        "condor_submit",
        &["hello.sub"],
        Input::Null,
        Some(&sub),
        Duration::from_secs(60),
    );
    assert!(out.ok(), "{out}");
    pilotq_tests::parse_submit(&out.stdout, 1).unwrap_or_else(|e| panic!("{e}\n{out}"));
    c.add_worker("w1", 1);
    c.wait_all_completed(Duration::from_secs(30));
    assert_eq!(c.read_file("submitdir/hello.out"), "hello world\n");
    assert_eq!(c.read_file("submitdir/hello.err"), "");
    pilotq_tests::wait_for(
        Duration::from_secs(10),
        "submitdir/hello.log to record the termination (005)",
        || {
            std::fs::read_to_string(sub.join("hello.log"))
                .ok()
                .filter(|t| t.lines().any(|l| l.starts_with("005 (")))
        },
        || c.diag(),
    );
}

#[test]
fn the_executable_is_captured_at_submit() {
    let mut c = Cluster::with_master(MasterOpts::default());
    let exe = c.path("my-echo");
    std::fs::copy("/bin/echo", &exe).unwrap();
    std::fs::set_permissions(&exe, std::fs::Permissions::from_mode(0o755)).unwrap();
    let cl = c.condor_submit_ok(
        &format!(
            "executable = {}\narguments = deleted but still here\noutput = out/$(Cluster).out\nqueue\n",
            exe.display()
        ),
        1,
    );
    std::fs::remove_file(&exe).unwrap();
    c.add_worker("w1", 1);
    let jobs = c.wait_all_completed(Duration::from_secs(30));
    assert_eq!(jobs[0].exit_code, Some(0), "{:#}", jobs[0].raw);
    assert_eq!(
        c.read_file(&format!("out/{cl}.out")),
        "deleted but still here\n"
    );
}

/// One malformed description: what is wrong, and what the error must name.
struct Bad {
    what: &'static str,
    text: String,
    /// Text the error must contain (case-insensitive), e.g. `line 3`.
    names: String,
}

#[test]
fn a_malformed_description_queues_nothing() {
    let c = Cluster::with_master(MasterOpts::default());
    // One job already queued: each case must leave the count where it was.
    c.condor_submit_ok("executable = /bin/true\nqueue\n", 1);
    std::fs::write(c.path("names.txt"), "alpha\nbeta\n").unwrap();
    let missing = c.path("no-such-dir/pilot.sh").display().to_string();
    let bad = |what, text: &str, names: &str| Bad {
        what,
        text: text.to_string(),
        names: names.to_string(),
    };
    let cases = [
        bad(
            "unterminated single quote in new-syntax arguments",
            "executable = /bin/echo\narguments = \"one 'two\"\nqueue\n",
            "line 2",
        ),
        bad(
            "unterminated double quote in arguments",
            "# comment\nexecutable = /bin/echo\narguments = \"one two\nqueue\n",
            "line 3",
        ),
        bad(
            "old-syntax environment entry without =",
            "executable = /bin/echo\nenvironment = A=1;JUSTNAME;B=2\nqueue\n",
            "line 2",
        ),
        bad(
            "new-syntax environment entry without =",
            "# comment\n\nexecutable = /bin/echo\nenvironment = \"A=1 NOVALUE\"\nqueue\n",
            "line 4",
        ),
        bad(
            "no executable",
            "arguments = x\noutput = o.out\nqueue\n",
            "executable",
        ),
        bad(
            "an executable that does not exist",
            &format!("executable = {missing}\nqueue\n"),
            &missing,
        ),
        bad(
            "queue ... from (not supported: must not queue one job instead)",
            "executable = /bin/echo\narguments = $(name)\nqueue name from names.txt\n",
            "line 3",
        ),
        bad(
            "an error after a valid queue statement",
            "executable = /bin/echo\nqueue 2\narguments = \"oops\nqueue\n",
            "line 3",
        ),
        bad(
            "request_cpus that is not a number",
            "executable = /bin/echo\nrequest_cpus = many\nqueue\n",
            "line 2",
        ),
        bad(
            "no queue statement",
            "executable = /bin/echo\narguments = x\n",
            "queue",
        ),
    ];
    let mut failures = Vec::new();
    for case in &cases {
        let before = c.jobs().len();
        let out = c.condor_submit(&case.text);
        let all = format!("{}{}", out.stdout, out.stderr);
        let count = c.jobs().len();
        let mut wrong = Vec::new();
        if out.ok() {
            wrong.push("exit status 0".to_string());
        }
        if !all.contains("ERROR:") {
            wrong.push("no `ERROR:`".to_string());
        }
        if !all.to_lowercase().contains(&case.names.to_lowercase()) {
            wrong.push(format!("the error does not name {:?}", case.names));
        }
        if out.stdout.contains("submitted to cluster") {
            wrong.push("it claims a submission".to_string());
        }
        if count != before {
            wrong.push(format!(
                "{} job(s) queued by it",
                count as i64 - before as i64
            ));
        }
        if !wrong.is_empty() {
            failures.push(format!(
                "{}: {}\nsubmit file:\n{}{out}\n",
                case.what,
                wrong.join("; "),
                case.text
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} malformed descriptions were mishandled:\n\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}
