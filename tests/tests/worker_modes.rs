//! Worker modes: `--single-task`, `--idle-timeout`, `--drain-file`, fail-over
//! across `--master A,B`, and the master's `--job-wrapper`. Each worker here
//! must leave on its own with status 0, having taken exactly the jobs it
//! should, and with every result delivered.

use pilotq_tests::{
    free_port, run_with_timeout, Cluster, Job, MasterOpts, Worker, COMPLETED, IDLE, RUNNING,
};
use std::collections::BTreeMap;
use std::process::ExitStatus;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

fn short_leases() -> MasterOpts {
    MasterOpts {
        lease: 4.0,
        heartbeat: 1.0,
        ..MasterOpts::default()
    }
}

/// `pilotq worker --master MASTERS --cores N --heartbeat 1 EXTRA…` with its
/// own work dir; kept in the cluster's workers, so it is killed on drop.
fn spawn_worker<'a>(
    c: &'a mut Cluster,
    name: &str,
    cores: u32,
    masters: &str,
    extra: &[&str],
) -> &'a mut Worker {
    let mut cmd = c.command();
    cmd.arg("worker")
        .args(["--master", masters])
        .args(["--cores", &cores.to_string()])
        .arg("--workdir")
        .arg(c.root.join("workers").join(name))
        .args(["--name", name])
        .args(["--heartbeat", "1"])
        .args(extra);
    let proc = c.spawn(&format!("worker-{name}"), cmd);
    c.workers.push(Worker {
        proc,
        name: name.to_string(),
        cores,
    });
    c.workers.last_mut().unwrap()
}

/// Waits for a worker to exit on its own; panics with the logs if it does
/// not within `timeout`.
fn wait_worker_exit(c: &mut Cluster, name: &str, timeout: Duration) -> ExitStatus {
    match c.worker(name).proc.wait_exit(timeout) {
        Some(s) => s,
        None => panic!(
            "worker {name} was still running {timeout:?} later\n{}",
            c.diag()
        ),
    }
}

/// Each line of a runs log (one line per run of a job), counted.
fn runs(c: &Cluster, log: &str) -> BTreeMap<String, usize> {
    let mut m = BTreeMap::new();
    if let Ok(text) = std::fs::read_to_string(c.path(log)) {
        for l in text.lines() {
            *m.entry(l.to_string()).or_insert(0) += 1;
        }
    }
    m
}

fn now_secs() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

fn by_id(jobs: &[Job]) -> BTreeMap<String, Job> {
    jobs.iter().map(|j| (j.id.clone(), j.clone())).collect()
}

#[test]
fn a_single_task_worker_runs_exactly_one_job_and_exits_0() {
    let mut c = Cluster::with_master(short_leases());
    let log = c.path("runs.log");
    let script = format!(
        "echo $(Cluster).$(Process) >> {}; sleep 1; echo done $(Process)",
        log.display()
    );
    let cl = c.submit(
        3,
        &["--output", "out/$(Cluster).$(Process).out"],
        &["/bin/sh", "-c", &script],
    );
    let addr = c.addr();
    spawn_worker(&mut c, "once", 2, &addr, &["--single-task"]);
    let status = wait_worker_exit(&mut c, "once", Duration::from_secs(20));
    assert_eq!(status.code(), Some(0), "{status}\n{}", c.diag());

    // It waited for the master's acknowledgement: the result is already in.
    let jobs = c.jobs();
    assert_eq!(jobs.len(), 3, "{jobs:?}");
    let done: Vec<&Job> = jobs.iter().filter(|j| j.status == COMPLETED).collect();
    assert_eq!(
        done.len(),
        1,
        "exactly one job completed when the single-task worker exited: {jobs:#?}\n{}",
        c.diag()
    );
    let first = done[0].clone();
    assert_eq!(
        (first.attempts, first.exit_code, first.holder.as_deref()),
        (1, Some(0), None),
        "{:#}",
        first.raw
    );
    for j in jobs.iter().filter(|j| j.id != first.id) {
        assert_eq!(
            (j.status, j.holder.as_deref(), j.attempts),
            (IDLE, None, 0),
            "job {} was taken by the single-task worker: {:#}",
            j.id,
            j.raw
        );
    }
    let ran = runs(&c, "runs.log");
    assert_eq!(
        ran,
        BTreeMap::from([(first.id.clone(), 1)]),
        "one run, of the completed job"
    );
    c.wait_holders(0, Duration::from_secs(10));

    // The other two wait for another worker.
    let until = Instant::now() + Duration::from_secs(2);
    while Instant::now() < until {
        for j in c.jobs().iter().filter(|j| j.id != first.id) {
            assert_eq!(
                (j.status, j.holder.as_deref(), j.attempts),
                (IDLE, None, 0),
                "job {} changed with no worker connected: {:#}",
                j.id,
                j.raw
            );
        }
        std::thread::sleep(Duration::from_millis(200));
    }

    c.add_worker("after", 2);
    let jobs = c.wait_all_completed(Duration::from_secs(30));
    assert_eq!(jobs.len(), 3);
    for j in &jobs {
        assert_eq!(
            (j.attempts, j.exit_code, j.holder.as_deref()),
            (1, Some(0), None),
            "{:#}",
            j.raw
        );
        let out = std::fs::read_to_string(c.path(&format!("out/{cl}.{}.out", j.proc))).unwrap();
        assert_eq!(out, format!("done {}\n", j.proc));
    }
    assert_eq!(c.job(&first.id), first, "the first job was touched again");
    let ran = runs(&c, "runs.log");
    let want: BTreeMap<String, usize> = (0..3).map(|p| (format!("{cl}.{p}"), 1)).collect();
    assert_eq!(ran, want, "each job ran exactly once");
}

#[test]
fn an_idle_worker_exits_0_after_its_idle_timeout() {
    let mut c = Cluster::with_master(short_leases());
    let addr = c.addr();
    let t0 = Instant::now();
    spawn_worker(&mut c, "idle", 1, &addr, &["--idle-timeout", "2"]);
    let status = wait_worker_exit(&mut c, "idle", Duration::from_secs(10));
    let took = t0.elapsed();
    assert_eq!(status.code(), Some(0), "{status}\n{}", c.diag());
    assert!(
        took >= Duration::from_secs(2) && took <= Duration::from_secs(5),
        "a worker with --idle-timeout 2 and no job exited after {took:?}\n{}",
        c.diag()
    );
    c.wait_holders(0, Duration::from_secs(10));
}

/// A worker with `--idle-timeout TIMEOUT` that gets one job of `job_secs`
/// first: it stays while the job runs, delivers the result, and exits 0 no
/// sooner than TIMEOUT seconds after the job ended (nor much later).
fn idle_timeout_after_a_job(timeout: &str, job_secs: &str) {
    let limit: f64 = timeout.parse().unwrap();
    let mut c = Cluster::with_master(short_leases());
    let end = c.path("job-end");
    // The job notes when it ends, to the nanosecond.
    let script = format!(
        "sleep {job_secs}; date +%s.%N > {}; echo slept",
        end.display()
    );
    let cl = c.submit(
        1,
        &["--output", "out/$(Cluster).$(Process).out"],
        &["/bin/sh", "-c", &script],
    );
    let addr = c.addr();
    spawn_worker(&mut c, "busy", 1, &addr, &["--idle-timeout", timeout]);
    let status = wait_worker_exit(&mut c, "busy", Duration::from_secs(20));
    let exited = now_secs();
    assert_eq!(status.code(), Some(0), "{status}\n{}", c.diag());
    let ended: f64 = std::fs::read_to_string(&end)
        .unwrap_or_else(|e| {
            panic!(
                "the worker exited before its job ended ({}: {e})\n{}",
                end.display(),
                c.diag()
            )
        })
        .trim()
        .parse()
        .expect("date +%s.%N");
    let idle = exited - ended;
    assert!(
        (limit..=limit + 3.0).contains(&idle),
        "with --idle-timeout {timeout} the worker must exit {timeout} s after its job \
         (and its result) are done, not sooner; it exited {idle:.3} s after the job ended\n{}",
        c.diag()
    );
    let j = c.job(&format!("{cl}.0"));
    assert_eq!(
        (j.status, j.attempts, j.exit_code, j.holder.as_deref()),
        (COMPLETED, 1, Some(0), None),
        "{:#}",
        j.raw
    );
    let out = std::fs::read_to_string(c.path(&format!("out/{cl}.0.out"))).unwrap();
    assert_eq!(out, "slept\n");
}

#[test]
fn a_worker_with_an_idle_timeout_stays_while_its_job_runs_and_leaves_2_s_after() {
    // A job of about 3 s; its length is no whole number of seconds, as most
    // jobs' are not.
    idle_timeout_after_a_job("2", "3.6");
}

#[test]
fn a_fractional_idle_timeout_counts_from_the_end_of_the_last_job() {
    idle_timeout_after_a_job("1.5", "3.6");
}

#[test]
fn a_draining_worker_finishes_the_jobs_it_holds_and_exits_0_and_the_rest_run_elsewhere() {
    let mut c = Cluster::with_master(short_leases());
    let log = c.path("runs.log");
    let drain = c.path("drain");
    let script = format!(
        "echo $(Cluster).$(Process) >> {}; sleep 3; echo done $(Process)",
        log.display()
    );
    let cl = c.submit(
        6,
        &["--output", "out/$(Cluster).$(Process).out"],
        &["/bin/sh", "-c", &script],
    );
    let addr = c.addr();
    let drain_s = drain.display().to_string();
    spawn_worker(&mut c, "drainer", 1, &addr, &["--drain-file", &drain_s]);
    // One core, depth 2: one job running and one waiting in the worker.
    let jobs = c.wait_until(
        Duration::from_secs(20),
        "one job running on the drainer and a second one held by it",
        |jobs| {
            let mine: Vec<&Job> = jobs
                .iter()
                .filter(|j| j.holder.as_deref() == Some("drainer"))
                .collect();
            mine.len() == 2 && mine.iter().any(|j| j.status == RUNNING)
        },
    );
    std::fs::write(&drain, "").unwrap();
    let held: Vec<String> = jobs
        .iter()
        .filter(|j| j.holder.as_deref() == Some("drainer"))
        .map(|j| j.id.clone())
        .collect();

    let status = wait_worker_exit(&mut c, "drainer", Duration::from_secs(20));
    assert_eq!(status.code(), Some(0), "{status}\n{}", c.diag());
    let jobs = by_id(&c.jobs());
    assert_eq!(jobs.len(), 6);
    for (id, j) in &jobs {
        if held.contains(id) {
            assert_eq!(
                (j.status, j.attempts, j.exit_code, j.holder.as_deref()),
                (COMPLETED, 1, Some(0), None),
                "job {id}, held by the drainer, was not finished and delivered before it exited: {:#}\n{}",
                j.raw,
                c.diag()
            );
        } else {
            assert_eq!(
                (j.status, j.attempts, j.holder.as_deref()),
                (IDLE, 0, None),
                "job {id} was taken by the draining worker: {:#}\n{}",
                j.raw,
                c.diag()
            );
        }
    }
    let ran = runs(&c, "runs.log");
    let want: BTreeMap<String, usize> = held.iter().map(|id| (id.clone(), 1)).collect();
    assert_eq!(ran, want, "only the held jobs ran, once each");
    c.wait_holders(0, Duration::from_secs(10));

    // The drain file is still there; a worker that does not watch it takes
    // the rest.
    c.add_worker("after", 4);
    let jobs = c.wait_all_completed(Duration::from_secs(30));
    assert_eq!(jobs.len(), 6);
    for j in &jobs {
        assert_eq!(
            (j.attempts, j.exit_code, j.holder.as_deref()),
            (1, Some(0), None),
            "{:#}",
            j.raw
        );
        let out = std::fs::read_to_string(c.path(&format!("out/{cl}.{}.out", j.proc))).unwrap();
        assert_eq!(out, format!("done {}\n", j.proc));
    }
    let ran = runs(&c, "runs.log");
    let want: BTreeMap<String, usize> = (0..6).map(|p| (format!("{cl}.{p}"), 1)).collect();
    assert_eq!(ran, want, "each job ran exactly once");
}

#[test]
fn a_worker_started_while_the_drain_file_exists_takes_no_job_and_exits_0() {
    let mut c = Cluster::with_master(short_leases());
    let log = c.path("runs.log");
    let drain = c.path("drain");
    std::fs::write(&drain, "").unwrap();
    let script = format!(
        "echo $(Cluster).$(Process) >> {}; sleep 1; echo done",
        log.display()
    );
    let cl = c.submit(
        2,
        &["--output", "out/$(Cluster).$(Process).out"],
        &["/bin/sh", "-c", &script],
    );
    let addr = c.addr();
    let drain_s = drain.display().to_string();
    let t0 = Instant::now();
    spawn_worker(&mut c, "late", 2, &addr, &["--drain-file", &drain_s]);
    let status = wait_worker_exit(&mut c, "late", Duration::from_secs(10));
    let took = t0.elapsed();
    assert_eq!(status.code(), Some(0), "{status}\n{}", c.diag());
    assert!(
        took <= Duration::from_secs(5),
        "a worker started while the drain file exists took {took:?} to exit\n{}",
        c.diag()
    );
    for j in c.jobs() {
        assert_eq!(
            (j.status, j.attempts, j.holder.as_deref()),
            (IDLE, 0, None),
            "job {} was taken by a worker started while the drain file existed: {:#}\n{}",
            j.id,
            j.raw,
            c.diag()
        );
    }
    assert_eq!(runs(&c, "runs.log"), BTreeMap::new(), "no job ran");
    c.wait_holders(0, Duration::from_secs(10));

    // Without the file, the same kind of worker takes them.
    std::fs::remove_file(&drain).unwrap();
    spawn_worker(&mut c, "later", 2, &addr, &["--drain-file", &drain_s]);
    let jobs = c.wait_all_completed(Duration::from_secs(30));
    for j in &jobs {
        assert_eq!((j.attempts, j.exit_code), (1, Some(0)), "{:#}", j.raw);
    }
    let want: BTreeMap<String, usize> = (0..2).map(|p| (format!("{cl}.{p}"), 1)).collect();
    assert_eq!(runs(&c, "runs.log"), want);
}

#[test]
fn a_worker_skips_an_unreachable_master_in_its_list() {
    let mut c = Cluster::with_master(short_leases());
    let dead = free_port();
    let masters = format!("127.0.0.1:{dead},{}", c.addr());
    spawn_worker(&mut c, "fo", 1, &masters, &[]);
    c.wait_holders(1, Duration::from_secs(15));
    let cl = c.submit(
        1,
        &["--output", "out/$(Cluster).$(Process).out"],
        &["/bin/echo", "failed over"],
    );
    let jobs = c.wait_all_completed(Duration::from_secs(20));
    let j = &jobs[0];
    assert_eq!(
        (j.attempts, j.exit_code, j.holder.as_deref()),
        (1, Some(0), None),
        "{:#}",
        j.raw
    );
    let out = std::fs::read_to_string(c.path(&format!("out/{cl}.0.out"))).unwrap();
    assert_eq!(out, "failed over\n");
    assert!(c.worker("fo").proc.running(), "{}", c.diag());
}

#[test]
fn a_worker_fails_over_to_the_next_master_when_its_master_is_lost() {
    let mut a = Cluster::with_master(short_leases());
    let b = Cluster::with_master(short_leases());
    let masters = format!("{},{}", a.addr(), b.addr());
    spawn_worker(&mut a, "fo", 1, &masters, &[]);
    a.wait_holders(1, Duration::from_secs(15));
    a.kill_master();
    b.wait_holders(1, Duration::from_secs(20));
    let cl = b.submit(
        1,
        &["--output", "out/$(Cluster).$(Process).out"],
        &["/bin/echo", "on b"],
    );
    let jobs = b.wait_all_completed(Duration::from_secs(20));
    let j = &jobs[0];
    assert_eq!(
        (j.attempts, j.exit_code, j.holder.as_deref()),
        (1, Some(0), None),
        "{:#}",
        j.raw
    );
    let out = std::fs::read_to_string(b.path(&format!("out/{cl}.0.out"))).unwrap();
    assert_eq!(out, "on b\n");
}

#[test]
fn every_job_runs_under_the_masters_job_wrapper_read_at_start() {
    let mut c = Cluster::new();
    let wrapper = c.path("wrapper.sh");
    std::fs::write(
        &wrapper,
        "#!/bin/sh\necho \"wrapped:$1\" >&2\nWRAPPED_BY=wrapper\nexport WRAPPED_BY\nexec \"$@\"\n",
    )
    .unwrap();
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&wrapper, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    c.opts = MasterOpts {
        extra: vec!["--job-wrapper".to_string(), wrapper.display().to_string()],
        ..short_leases()
    };
    c.start_master();
    // Read at start: the file is not needed afterwards.
    std::fs::remove_file(&wrapper).unwrap();

    let echo = c.submit(
        1,
        &[
            "--output",
            "out/$(Cluster).$(Process).out",
            "--error",
            "out/$(Cluster).$(Process).err",
        ],
        &["/bin/echo", "hi"],
    );
    let env = c.submit(
        1,
        &[
            "--env",
            "FOO=bar",
            "--output",
            "out/$(Cluster).$(Process).out",
            "--error",
            "out/$(Cluster).$(Process).err",
        ],
        &["/bin/sh", "-c", "echo \"$FOO $WRAPPED_BY\""],
    );
    c.add_worker("w", 2);
    let jobs = c.wait_all_completed(Duration::from_secs(30));
    assert_eq!(jobs.len(), 2);
    for j in &jobs {
        assert_eq!((j.attempts, j.exit_code), (1, Some(0)), "{:#}", j.raw);
    }

    let read = |rel: String| {
        std::fs::read_to_string(c.path(&rel)).unwrap_or_else(|e| panic!("{rel}: {e}\n{}", c.diag()))
    };
    assert_eq!(read(format!("out/{echo}.0.out")), "hi\n");
    assert_eq!(read(format!("out/{env}.0.out")), "bar wrapper\n");
    for (cl, exe) in [(echo, "/bin/echo"), (env, "/bin/sh")] {
        let err = read(format!("out/{cl}.0.err"));
        let lines: Vec<&str> = err.lines().collect();
        assert_eq!(
            lines.len(),
            1,
            "the wrapper's one line in {cl}.0.err: {err:?}"
        );
        let first = lines[0].strip_prefix("wrapped:").unwrap_or_else(|| {
            panic!(
                "{cl}.0.err does not hold the wrapper's line: {err:?}\n{}",
                c.diag()
            )
        });
        // Its first argument is the job's executable (the worker's copy).
        let copy = std::fs::read(first)
            .unwrap_or_else(|e| panic!("the wrapper's $1 {first:?} is not a file: {e}"));
        assert!(
            copy == std::fs::read(exe).unwrap(),
            "the wrapper's $1 {first:?} is not a copy of {exe}"
        );
    }
}

#[test]
fn a_master_with_a_missing_job_wrapper_fails_at_start() {
    let c = Cluster::new();
    let missing = c.path("no-such-wrapper.sh");
    let mut cmd = c.command();
    cmd.arg("master")
        .args(["--listen", "127.0.0.1:0"])
        .arg("--journal")
        .arg(&c.journal)
        .arg("--job-wrapper")
        .arg(&missing);
    let out = run_with_timeout(
        cmd,
        Duration::from_secs(20),
        "pilotq master --job-wrapper <missing>",
    );
    assert!(!out.ok(), "the master started without its wrapper\n{out}");
    assert!(
        !out.stdout.contains("listening"),
        "the master listened without its wrapper\n{out}"
    );
    assert!(
        out.stderr.contains(&missing.display().to_string()) && out.stderr.contains("wrapper"),
        "the error does not name the missing wrapper\n{out}"
    );
}
