//! Every end-to-end behaviour of a job, checked twice with the same
//! assertions: once with the workers attached to the master directly, once
//! with the same workers behind one foreman (`pilotq foreman`).
//!
//! Why: a foreman is a second dispatch path (the master hands jobs to the
//! foreman as one holder; the foreman's own local queue adopts them and
//! dispatches them to its workers), and anything the master attaches to a
//! dispatch can be lost on the way. A master started with `--job-wrapper`
//! and one foreman with one worker completed all its jobs while the wrapper
//! ran 0 times: nothing a direct-only test could see. So each behaviour
//! here is one function taking a [`Topology`], and two `#[test]`s (made by
//! [`both_ways!`]) run it direct and through a foreman:
//!
//! | behaviour | what a user sees |
//! |---|---|
//! | job wrapper | `--job-wrapper` runs once per job, with the job's executable and arguments |
//! | arguments | spaces, quotes, empty arguments reach the job intact (`pilotq submit --` and condor_submit's `arguments =`); the executable stored at submit runs |
//! | environment | exactly what was asked for (`--env`, `environment =`), nothing of the worker's (`PILOTQ_TEST_CANARY`) |
//! | outputs | `--output` / `--error` (and `output =` / `error =`) of several jobs, every file's content |
//! | user log | `log =` gets 000, 001, 005 per job, in order, with the return value (or the signal) |
//! | tags | a tagged job runs only where its tags are offered (a foreman offers them too, as in `tags.rs`) |
//! | exit codes, signals | `exit 3` shows `exit_code` 3; a job killed by SIGKILL / SIGTERM shows `signal` 9 / 15 |
//! | removal | `pilotq rm` of a running job kills its whole process group; status Removed; logged 009 |
//!
//! The only difference between the two topologies is where the workers
//! connect, and what the master therefore counts as holders (the workers,
//! or the one foreman with its workers' summed cores); every assertion
//! about jobs, files and `q --json` is shared.

use pilotq_tests::user_log::{codes_of, wait_log};
use pilotq_tests::{
    alive, wait_for, write_executable, Cluster, Job, MasterOpts, Worker, COMPLETED, IDLE, REMOVED,
    RUNNING,
};
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::Duration;

/// Where the workers connect.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Topology {
    /// Each worker is a holder at the master.
    Direct,
    /// One foreman `f` is the master's only holder; the workers connect to
    /// it. It offers the union of its workers' tags.
    ThroughForeman,
}

/// One worker of a test: its name, cores and the tags it offers.
#[derive(Debug, Clone, Copy)]
struct WorkerSpec {
    name: &'static str,
    cores: u32,
    tags: &'static [&'static str],
}

const fn worker(name: &'static str, cores: u32) -> WorkerSpec {
    WorkerSpec {
        name,
        cores,
        tags: &[],
    }
}

/// The name of the foreman in [`Topology::ThroughForeman`].
const FOREMAN: &str = "f";

/// Builds a cluster in `topo`: a master with the default short lease and
/// heartbeat plus the extra arguments `master_extra` returns (it may write
/// files into the fresh tempdir first, a wrapper say), then the workers,
/// attached to the master or behind one foreman. Returns once the master
/// counts every holder with all the workers' cores.
fn build(
    topo: Topology,
    master_extra: impl FnOnce(&Cluster) -> Vec<String>,
    workers: &[WorkerSpec],
) -> Cluster {
    let mut c = Cluster::new();
    c.opts = MasterOpts {
        extra: master_extra(&c),
        ..MasterOpts::default()
    };
    c.start_master();
    let upstream = match topo {
        Topology::Direct => c.addr(),
        Topology::ThroughForeman => {
            let tags: BTreeSet<&str> = workers.iter().flat_map(|w| w.tags).copied().collect();
            let tags = tags.into_iter().collect::<Vec<_>>().join(",");
            let extra: Vec<&str> = if tags.is_empty() {
                vec![]
            } else {
                vec!["--tags", &tags]
            };
            c.start_foreman(FOREMAN, 0, &extra).addr.clone()
        }
    };
    for w in workers {
        spawn_worker(&mut c, w, &upstream);
    }
    let holders = match topo {
        Topology::Direct => workers.len() as u64,
        Topology::ThroughForeman => 1,
    };
    let cores: u64 = workers.iter().map(|w| u64::from(w.cores)).sum();
    c.wait_capacity(holders, cores, Duration::from_secs(30));
    c
}

/// [`Cluster::add_worker_to`] with tags: the same command (its own work
/// dir, the cluster's heartbeat, the canary variable a job must never see),
/// plus `--tags` when it offers some. Kept in `c.workers`, so it dies with
/// the cluster.
fn spawn_worker(c: &mut Cluster, w: &WorkerSpec, upstream: &str) {
    if w.tags.is_empty() {
        c.add_worker_to(w.name, w.cores, upstream);
        return;
    }
    let mut cmd = c.command();
    cmd.arg("worker")
        .args(["--master", upstream])
        .args(["--cores", &w.cores.to_string()])
        .arg("--workdir")
        .arg(c.root.join("workers").join(w.name))
        .args(["--name", w.name])
        .args(["--heartbeat", &c.opts.heartbeat.to_string()])
        .args(["--tags", &w.tags.join(",")])
        .env("PILOTQ_TEST_CANARY", "inherited-from-the-worker");
    if let Some(p) = &c.opts.password_file {
        cmd.arg("--password-file").arg(p);
    }
    let proc = c.spawn(&format!("worker-{}", w.name), cmd);
    c.workers.push(Worker {
        proc,
        name: w.name.to_string(),
        cores: w.cores,
    });
}

/// Each job completed once with exit code 0 and no signal.
fn assert_completed_ok(c: &Cluster, jobs: &[Job], n: usize) {
    assert_eq!(jobs.len(), n, "{jobs:#?}");
    for j in jobs {
        assert_eq!(
            (j.status, j.exit_code, j.attempts, j.holder.as_deref()),
            (COMPLETED, Some(0), 1, None),
            "job {}: {:#}\n{}",
            j.id,
            j.raw,
            c.diag()
        );
        assert!(j.raw["signal"].is_null(), "{:#}", j.raw);
    }
}

/// Generates, for each behaviour `f`, the tests `direct` and `foreman`
/// calling `f(Topology::Direct)` and `f(Topology::ThroughForeman)`.
macro_rules! both_ways {
    ($($behaviour:ident => $direct:ident, $foreman:ident;)*) => {
        $(
            #[test]
            fn $direct() {
                $behaviour(Topology::Direct)
            }

            #[test]
            fn $foreman() {
                $behaviour(Topology::ThroughForeman)
            }
        )*
    };
}

both_ways! {
    job_wrapper => wrapper_direct, wrapper_through_foreman;
    arguments => arguments_direct, arguments_through_foreman;
    environment => environment_direct, environment_through_foreman;
    outputs => outputs_direct, outputs_through_foreman;
    user_log => user_log_direct, user_log_through_foreman;
    tags => tags_direct, tags_through_foreman;
    exit_codes_and_signals => exit_codes_and_signals_direct, exit_codes_and_signals_through_foreman;
    removal => removal_direct, removal_through_foreman;
}

// ---------------------------------------------------------------------------
// The job wrapper

/// `pilotq master --job-wrapper W`: every job runs as `W <executable>
/// <args…>`, once per job, wherever its worker is.
fn job_wrapper(topo: Topology) {
    let c = build(
        topo,
        |c| {
            let wrapper = c.path("wrap.sh");
            // One line per run: `wrapped`, then each argument, tab-separated
            // (no argument here holds a tab), appended in one write.
            write_executable(
                &wrapper,
                &format!(
                    "#!/bin/sh\nline=wrapped\nfor a in \"$@\"; do line=\"$line\t$a\"; done\n\
                     printf '%s\\n' \"$line\" >> {}\nexec \"$@\"\n",
                    c.path("wrapper.runs").display()
                ),
            );
            vec!["--job-wrapper".into(), wrapper.display().to_string()]
        },
        &[worker("w1", 1), worker("w2", 1)],
    );
    let cl = c.submit(
        4,
        &[
            "--output",
            "out/$(Cluster).$(Process).out",
            "--error",
            "out/$(Cluster).$(Process).err",
        ],
        &[
            "/bin/sh",
            "-c",
            "echo \"job $1 ran with [$2]\"",
            "job",
            "$(Process)",
            "two words",
        ],
    );
    let jobs = c.wait_all_completed(Duration::from_secs(30));
    assert_completed_ok(&c, &jobs, 4);
    for p in 0..4 {
        assert_eq!(
            c.read_file(&format!("out/{cl}.{p}.out")),
            format!("job {p} ran with [two words]\n")
        );
        assert_eq!(c.read_file(&format!("out/{cl}.{p}.err")), "");
    }

    let runs_path = c.path("wrapper.runs");
    let runs = std::fs::read_to_string(&runs_path).unwrap_or_default();
    let lines: Vec<&str> = runs.lines().collect();
    assert_eq!(
        lines.len(),
        4,
        "{topo:?}: the job wrapper must run once per job (4 jobs completed); it ran {} \
         time(s); {} holds:\n{runs}\n{}",
        lines.len(),
        runs_path.display(),
        c.diag()
    );
    // Each run: the job's executable (the worker's copy of /bin/sh), then
    // the job's arguments exactly.
    let sh = std::fs::read("/bin/sh").unwrap();
    let mut tails = Vec::new();
    for line in &lines {
        let fields: Vec<&str> = line.split('\t').collect();
        assert!(
            fields.len() >= 2 && fields[0] == "wrapped",
            "a wrapper line without the executable: {line:?}"
        );
        let copy = std::fs::read(fields[1])
            .unwrap_or_else(|e| panic!("the wrapper's $1 {:?} is not a file: {e}", fields[1]));
        assert!(
            copy == sh,
            "the wrapper's $1 {:?} is not a copy of the job's executable /bin/sh",
            fields[1]
        );
        tails.push(fields[2..].join("\t"));
    }
    tails.sort();
    let want: Vec<String> = (0..4)
        .map(|p| format!("-c\techo \"job $1 ran with [$2]\"\tjob\t{p}\ttwo words"))
        .collect();
    assert_eq!(
        tails, want,
        "{topo:?}: the wrapper's arguments after the executable must be each job's arguments"
    );
}

// ---------------------------------------------------------------------------
// Arguments

/// Arguments with spaces, quotes, shell metacharacters and empty ones reach
/// the job as they were given: `pilotq submit -- cmd args…`, and both of
/// condor_submit's `arguments =` syntaxes. The executable (a script deleted
/// after submitting) is the one stored at submit.
fn arguments(topo: Topology) {
    let c = build(topo, |_| vec![], &[worker("w1", 2)]);
    let script = c.path("args.sh");
    write_executable(
        &script,
        "#!/bin/sh\necho \"$#\"\nfor a in \"$@\"; do echo \"[$a]\"; done\n",
    );
    let s = script.display().to_string();

    let tricky = [
        "plain",
        "two words",
        "  padded  ",
        "it's",
        "say \"hi\"",
        "",
        "$HOME `id` ;|&",
        "*",
        "back\\slash",
        "ünï cødé",
    ];
    let direct_cl = c.submit(1, &["--output", "out/$(Cluster).$(Process).out"], &{
        let mut v = vec![s.as_str()];
        v.extend_from_slice(&tricky);
        v
    });
    let mut want_direct = format!("{}\n", tricky.len());
    for a in tricky {
        want_direct.push_str(&format!("[{a}]\n"));
    }

    let submit = |args: &str| {
        c.condor_submit_ok(
            &format!(
                "executable = {s}\narguments = {args}\n\
                 output = out/$(Cluster).$(Process).out\nqueue\n"
            ),
            1,
        )
    };
    let condor_cases = [
        // Old syntax: words separated by blanks, runs of blanks included.
        (submit("one  two\tthree"), "3\n[one]\n[two]\n[three]\n"),
        // New syntax (HTCondor manual's example): '' groups words, "" is a
        // literal double quote, '' inside '...' a literal single quote.
        (
            submit("\"one \"\"two\"\" 'spacey ''quoted'' argument'\""),
            "3\n[one]\n[\"two\"]\n[spacey 'quoted' argument]\n",
        ),
        (
            submit("\"one 'two with spaces' 3 ''\""),
            "4\n[one]\n[two with spaces]\n[3]\n[]\n",
        ),
    ];

    // The executable was stored when submitted: it must reach the worker
    // (through the foreman too) without this file.
    std::fs::remove_file(&script).unwrap();

    let jobs = c.wait_all_completed(Duration::from_secs(30));
    assert_completed_ok(&c, &jobs, 4);
    // The master shows the arguments as given.
    let j = c.job(&format!("{direct_cl}.0"));
    assert_eq!(j.raw["args"], serde_json::json!(tricky), "{:#}", j.raw);
    assert_eq!(
        c.read_file(&format!("out/{direct_cl}.0.out")),
        want_direct,
        "{topo:?}: the arguments of `pilotq submit --` as the job saw them"
    );
    for (cl, want) in condor_cases {
        assert_eq!(
            c.read_file(&format!("out/{cl}.0.out")),
            want,
            "{topo:?}: condor_submit arguments of cluster {cl} as the job saw them"
        );
    }
}

// ---------------------------------------------------------------------------
// Environment

/// A job's output of `env`, as a set of lines (in no fixed order).
fn line_set(text: &str) -> BTreeSet<&str> {
    text.lines().collect()
}

/// The job's environment is exactly the one submitted: none of the
/// worker's (its canary, HOME, PATH), none of the foreman's.
fn environment(topo: Topology) {
    let c = build(topo, |_| vec![], &[worker("w1", 2)]);
    let given = c.submit(
        1,
        &[
            "--env",
            "FOO=bar baz",
            "--env",
            "ANSWER=42",
            "--env",
            "EQ=a=b",
            "--env",
            "QUOTES=it's \"q\"",
            "--env",
            "EMPTY=",
            "--output",
            "out/$(Cluster).$(Process).env",
        ],
        &["/usr/bin/env"],
    );
    let none = c.submit(
        1,
        &["--output", "out/$(Cluster).$(Process).env"],
        &["/usr/bin/env"],
    );
    let condor = c.condor_submit_ok(
        "executable = /usr/bin/env\n\
         environment = \"one=1 two=\"\"2\"\" three='spacey ''quoted'' value' JOB=$(Cluster).$(Process)\"\n\
         output = out/$(Cluster).$(Process).env\nqueue 2\n",
        2,
    );
    let jobs = c.wait_all_completed(Duration::from_secs(30));
    assert_completed_ok(&c, &jobs, 4);

    let mut outputs = vec![(
        format!("{given}.0"),
        BTreeSet::from([
            "FOO=bar baz".to_string(),
            "ANSWER=42".into(),
            "EQ=a=b".into(),
            "QUOTES=it's \"q\"".into(),
            "EMPTY=".into(),
        ]),
    )];
    outputs.push((format!("{none}.0"), BTreeSet::new()));
    for p in 0..2 {
        outputs.push((
            format!("{condor}.{p}"),
            BTreeSet::from([
                "one=1".to_string(),
                "two=\"2\"".into(),
                "three=spacey 'quoted' value".into(),
                format!("JOB={condor}.{p}"),
            ]),
        ));
    }
    for (id, want) in outputs {
        let text = c.read_file(&format!("out/{id}.env"));
        let got: BTreeSet<String> = line_set(&text).into_iter().map(String::from).collect();
        assert_eq!(
            got, want,
            "{topo:?}: job {id}'s environment must be exactly the submitted one; it was:\n{text}"
        );
        assert!(
            !text.contains("PILOTQ_TEST_CANARY"),
            "{topo:?}: the worker's environment leaked into job {id}:\n{text}"
        );
    }
}

// ---------------------------------------------------------------------------
// Outputs

/// stdout and stderr of several jobs, each in its own files, whole: from
/// `pilotq submit --output/--error` and from a submit file.
fn outputs(topo: Topology) {
    let c = build(topo, |_| vec![], &[worker("w1", 2), worker("w2", 2)]);
    // Each job prints its number on both streams and a long numbered list
    // (about 29 KB) on stdout.
    let cl = c.submit(
        6,
        &[
            "--output",
            "out/job.$(Cluster).$(Process).out",
            "--error",
            "out/job.$(Cluster).$(Process).err",
        ],
        &[
            "/bin/sh",
            "-c",
            "echo \"out $1\"; echo \"err $1\" >&2; i=0; while [ $i -lt 5000 ]; do i=$((i+1)); \
             echo \"$1:$i\"; done; echo \"last $1\" 1>&2",
            "sh",
            "$(Process)",
        ],
    );
    // Nothing on stderr: the error file exists, empty.
    let quiet = c.condor_submit_ok(
        "executable = /bin/echo\narguments = \"quiet $(Process)\"\n\
         output = out/quiet.$(Cluster).$(Process).out\n\
         error = out/quiet.$(Cluster).$(Process).err\nqueue 2\n",
        2,
    );
    let jobs = c.wait_all_completed(Duration::from_secs(30));
    assert_completed_ok(&c, &jobs, 8);
    for p in 0..6 {
        let mut want = format!("out {p}\n");
        for i in 1..=5000 {
            want.push_str(&format!("{p}:{i}\n"));
        }
        let got = c.read_file(&format!("out/job.{cl}.{p}.out"));
        assert!(
            got == want,
            "{topo:?}: out/job.{cl}.{p}.out: {} bytes, expected {}; first difference at \
             byte {:?}",
            got.len(),
            want.len(),
            got.bytes().zip(want.bytes()).position(|(a, b)| a != b)
        );
        assert_eq!(
            c.read_file(&format!("out/job.{cl}.{p}.err")),
            format!("err {p}\nlast {p}\n"),
            "{topo:?}: out/job.{cl}.{p}.err"
        );
    }
    for p in 0..2 {
        assert_eq!(
            c.read_file(&format!("out/quiet.{quiet}.{p}.out")),
            format!("quiet {p}\n")
        );
        assert_eq!(c.read_file(&format!("out/quiet.{quiet}.{p}.err")), "");
    }
}

// ---------------------------------------------------------------------------
// The user log

/// `log =`: each job logs submitted (000), executing (001) and terminated
/// (005) with its return value, in that order, and nothing else; a job
/// killed by a signal terminates abnormally, with the signal.
fn user_log(topo: Topology) {
    let c = build(topo, |_| vec![], &[worker("w1", 1), worker("w2", 1)]);
    let log = c.path("jobs.log");
    let n = 6;
    let cl = c.condor_submit_ok(
        &format!(
            "executable = /bin/sh\narguments = \"-c 'sleep 0.2; exit $(Process)'\"\n\
             log = {}\nqueue {n}\n",
            log.display()
        ),
        n,
    );
    let killer = c.path("killer.sh");
    write_executable(&killer, "#!/bin/sh\nkill -KILL $$\n");
    let killed = c.condor_submit_ok(
        &format!(
            "executable = {}\nlog = {}\nqueue\n",
            killer.display(),
            log.display()
        ),
        1,
    );
    let killed_id = format!("{killed}.0");
    let jobs = c.wait_all_completed(Duration::from_secs(30));
    assert_eq!(jobs.len(), n as usize + 1);
    for j in jobs.iter().filter(|j| j.cluster == cl) {
        assert_eq!(
            (j.exit_code, j.attempts),
            (Some(j.proc as i64), 1),
            "{:#}",
            j.raw
        );
    }
    wait_log(&c, &log, "a termination event (005) for each job", |evs| {
        evs.iter().filter(|e| e.code == "005").count() > n as usize
    });
    // Nothing more comes after the terminations.
    std::thread::sleep(Duration::from_millis(500));
    let evs = wait_log(&c, &log, "a well-formed log", |_| true);
    let mut wrong = Vec::new();
    let mut expect = |id: &str, termination: &str| {
        let codes = codes_of(&evs, id);
        if codes != ["000", "001", "005"] {
            wrong.push(format!("job {id}: {codes:?}"));
        }
        if let Some(t) = evs.iter().find(|e| e.job == id && e.code == "005") {
            if !t.text.contains(termination) {
                wrong.push(format!(
                    "job {id}'s termination lacks {termination:?}:\n{}",
                    t.text
                ));
            }
        }
    };
    for p in 0..n {
        expect(&format!("{cl}.{p}"), &format!("(return value {p})"));
    }
    expect(&killed_id, "Abnormal termination (signal 9)");
    if evs.len() != 3 * (n as usize + 1) {
        wrong.push(format!("{} events, expected {}", evs.len(), 3 * (n + 1)));
    }
    assert!(
        wrong.is_empty(),
        "{topo:?}: each job should log 000, 001, 005 in that order, and nothing else:\n{}\n\n\
         the log:\n{}",
        wrong.join("\n"),
        std::fs::read_to_string(&log).unwrap()
    );
}

// ---------------------------------------------------------------------------
// Tags

/// A job with tags runs only on a worker offering all of them; one whose
/// tag nobody offers is never dispatched. Through a foreman, the foreman
/// offers its workers' tags upstream (as in `tags.rs`), and must still run
/// the tagged jobs only on its tagged worker.
fn tags(topo: Topology) {
    let c = build(
        topo,
        |_| vec![],
        &[
            worker("plain", 2),
            WorkerSpec {
                name: "gpu",
                cores: 2,
                tags: &["gpu", "cern"],
            },
        ],
    );
    let gpu_jobs = c.submit(
        6,
        &["--tag", "gpu", "--output", "out/gpu.$(Process).out"],
        &["/bin/sh", "-c", "echo $PWD"],
    );
    let both_tags = c.submit(
        2,
        &[
            "--tag",
            "gpu",
            "--tag",
            "cern",
            "--output",
            "out/both.$(Process).out",
        ],
        &["/bin/sh", "-c", "echo $PWD"],
    );
    let untagged = c.submit(
        1,
        &["--output", "out/untagged.$(Process).out"],
        &["/bin/sh", "-c", "echo $PWD"],
    );
    let nowhere = c.submit(1, &["--tag", "tpu"], &["/bin/true"]);
    let jobs = c.wait_until(
        Duration::from_secs(30),
        "the gpu, gpu+cern and untagged jobs completed",
        |jobs| {
            jobs.iter()
                .filter(|j| j.cluster != nowhere && j.status == COMPLETED)
                .count()
                == 9
        },
    );
    for j in jobs.iter().filter(|j| j.cluster != nowhere) {
        assert_eq!(
            (j.exit_code, j.attempts, j.holder.as_deref()),
            (Some(0), 1, None),
            "{:#}",
            j.raw
        );
    }
    let gpu_dir = c.root.join("workers/gpu");
    let workers_dir = c.root.join("workers");
    for (cl, prefix, n) in [(gpu_jobs, "gpu", 6), (both_tags, "both", 2)] {
        for p in 0..n {
            let out = c.read_file(&format!("out/{prefix}.{p}.out"));
            assert!(
                Path::new(out.trim()).starts_with(&gpu_dir),
                "{topo:?}: job {cl}.{p} (tagged) ran outside the gpu worker: {out}\n{}",
                c.diag()
            );
        }
    }
    let out = c.read_file("out/untagged.0.out");
    assert!(
        Path::new(out.trim()).starts_with(&workers_dir),
        "{topo:?}: the untagged job {untagged}.0 ran outside every worker: {out}"
    );
    // Still never dispatched, a while later.
    std::thread::sleep(Duration::from_secs(1));
    let j = c.job(&format!("{nowhere}.0"));
    assert_eq!(
        (j.status, j.attempts, j.holder.as_deref()),
        (IDLE, 0, None),
        "{topo:?}: a job tagged tpu, which nobody offers: {:#}",
        j.raw
    );
}

// ---------------------------------------------------------------------------
// Exit codes and signals

/// `q --json` shows how each job ended: its exit code, or the signal that
/// killed it (and then no exit code).
fn exit_codes_and_signals(topo: Topology) {
    let c = build(topo, |_| vec![], &[worker("w1", 2), worker("w2", 2)]);
    let cases: [(&str, Option<i64>, Option<i64>); 5] = [
        ("exit 0", Some(0), None),
        ("exit 3", Some(3), None),
        ("exit 255", Some(255), None),
        ("kill -KILL $$", None, Some(9)),
        ("kill -TERM $$", None, Some(15)),
    ];
    let ids: Vec<(u64, &str, Option<i64>, Option<i64>)> = cases
        .iter()
        .map(|&(script, code, signal)| {
            let cl = c.submit(1, &[], &["/bin/sh", "-c", script]);
            (cl, script, code, signal)
        })
        .collect();
    let jobs = c.wait_all_completed(Duration::from_secs(30));
    assert_eq!(jobs.len(), cases.len());
    let mut wrong = Vec::new();
    for (cl, script, code, signal) in ids {
        let j = c.job(&format!("{cl}.0"));
        let got = (
            j.status,
            j.exit_code,
            j.raw["signal"].as_i64(),
            j.attempts,
            j.holder.clone(),
        );
        if got != (COMPLETED, code, signal, 1, None) {
            wrong.push(format!(
                "`{script}`: expected status {COMPLETED}, exit_code {code:?}, signal \
                 {signal:?}, attempts 1, no holder; q --json: {}",
                j.raw
            ));
        }
    }
    assert!(
        wrong.is_empty(),
        "{topo:?}: how jobs ended, as `q --json` shows it:\n{}\n{}",
        wrong.join("\n"),
        c.diag()
    );
}

// ---------------------------------------------------------------------------
// Removal

/// Processes of this cluster ([`Cluster::stray_pids`]) other than its
/// master, foremen and workers: what jobs left running.
fn strays(c: &Cluster) -> Vec<i32> {
    let services: BTreeSet<i32> = c
        .master
        .iter()
        .map(|m| m.proc.pid())
        .chain(c.foremen.iter().map(|f| f.proc.pid()))
        .chain(c.workers.iter().map(|w| w.proc.pid()))
        .map(|p| p as i32)
        .collect();
    c.stray_pids()
        .into_iter()
        .filter(|p| !services.contains(p))
        .collect()
}

/// `pilotq rm` of a running job kills it and everything it started (its
/// process group), shows it Removed, logs it aborted (009, never 005), and
/// frees its core for the next job.
fn removal(topo: Topology) {
    let c = build(topo, |_| vec![], &[worker("w", 1)]);
    let pidfile = c.path("job.pids");
    // The shell and two background sleeps: three processes, one group.
    let script = format!(
        "echo $$ > {p}; sleep 300 & echo $! >> {p}; sleep 300 & echo $! >> {p}; wait",
        p = pidfile.display()
    );
    let log = c.path("rm.log");
    let log_arg = log.display().to_string();
    let cl = c.submit(1, &["--log", &log_arg], &["/bin/sh", "-c", &script]);
    let id = format!("{cl}.0");
    c.wait_until(Duration::from_secs(20), "the job running", |jobs| {
        jobs.len() == 1 && jobs[0].status == RUNNING
    });
    let pids = c.wait_pids(&pidfile, 3, Duration::from_secs(20));
    for &p in &pids {
        assert!(alive(p), "job process {p} is not running before rm");
    }
    let job_pids: BTreeSet<i32> = c.job_pids().into_iter().collect();
    assert!(
        pids.iter().all(|p| job_pids.contains(p)),
        "the job's processes {pids:?} are not all in the worker's dir: {job_pids:?}"
    );
    let before: BTreeSet<i32> = strays(&c).into_iter().collect();
    assert!(
        pids.iter().all(|p| before.contains(p)),
        "the job's processes {pids:?} are not all seen as the cluster's: {before:?}"
    );

    let out = c.run_ok(&["rm", &id]);
    assert_eq!(
        out.stdout,
        format!("Job {id} marked for removal\n"),
        "{out}"
    );
    wait_for(
        Duration::from_secs(15),
        "every process of the removed job to be gone",
        || {
            (pids.iter().all(|&p| !alive(p)) && c.job_pids().is_empty() && strays(&c).is_empty())
                .then_some(())
        },
        || {
            let left: Vec<_> = pids.iter().filter(|&&p| alive(p)).collect();
            format!(
                "{topo:?}: still alive: {left:?}; in the workers' dirs: {:?}; other \
                 processes of the cluster: {:?}\n{}",
                c.job_pids(),
                strays(&c),
                c.diag()
            )
        },
    );
    let j = c.job(&id);
    assert_eq!(
        (j.status, j.holder.as_deref(), j.exit_code),
        (REMOVED, None, None),
        "{topo:?}: {:#}",
        j.raw
    );

    // The user log: submitted, executing, aborted; never terminated.
    let evs = wait_log(&c, &log, "the removed job aborted (009)", |evs| {
        codes_of(evs, &id).last().map(String::as_str) == Some("009")
    });
    assert_eq!(
        codes_of(&evs, &id),
        ["000", "001", "009"],
        "{topo:?}: {evs:#?}"
    );

    // Its core is free again: the next job runs on the same 1-core worker.
    let next = c.submit(
        1,
        &["--output", "out/next.out"],
        &["/bin/sh", "-c", "echo next"],
    );
    let jobs = c.wait_until(Duration::from_secs(20), "the next job completed", |jobs| {
        jobs.iter()
            .any(|j| j.cluster == next && j.status == COMPLETED)
    });
    let by_id: BTreeMap<&str, &Job> = jobs.iter().map(|j| (j.id.as_str(), j)).collect();
    assert_eq!(c.read_file("out/next.out"), "next\n");
    assert_eq!(
        by_id[id.as_str()].status,
        REMOVED,
        "{topo:?}: the removed job came back: {:#}",
        by_id[id.as_str()].raw
    );
    assert!(
        c.job_pids().is_empty() && strays(&c).is_empty(),
        "{topo:?}: job processes left: {:?}, {:?}",
        c.job_pids(),
        strays(&c)
    );
    // A kill must not also log a termination.
    let evs = wait_log(&c, &log, "a well-formed log", |_| true);
    assert_eq!(
        codes_of(&evs, &id),
        ["000", "001", "009"],
        "{topo:?}: {evs:#?}"
    );
}
