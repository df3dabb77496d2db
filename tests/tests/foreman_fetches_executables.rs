//! A foreman runs a job it adopted on a worker other than the one that
//! brought it: it has the job's executable (and the master's job wrapper)
//! only from its master.
//!
//! Worker w1 (one core, depth 2: one job running, one queued) works behind
//! foreman f1 and knows f2 too. f1 is SIGKILLed; w1 fails over to f2 with its
//! running and queued jobs, and f2 adopts them from w1's holdings: it never
//! got them from the master, so it has no copy of their executable. Then w1
//! is SIGKILLed too, and f2's short lease sends w1's jobs to w2, a worker
//! behind f2 only that has never seen them. f2 must fetch the executable
//! (and the wrapper) from the master (`FetchBlob`) before it dispatches:
//! without them w2 fails the job ("executable … was not sent and is not
//! cached") and it is Held.
//!
//! The executable is a script written in the tempdir and deleted right after
//! `pilotq submit` stored it: only the master's journal has it.

use pilotq_tests::{free_port, write_executable, Cluster, Job, MasterOpts, COMPLETED, RUNNING};
use std::time::Duration;

/// A line naming the worker whose sandbox the shell is in (`w1`, `w2`, or
/// the whole directory if neither).
const WHERE: &str = "case \"$PWD\" in\n  */workers/w1/*) where=w1 ;;\n  \
                     */workers/w2/*) where=w2 ;;\n  *) where=\"$PWD\" ;;\nesac\n";

/// How many lines of `text` are exactly `line`.
fn count(text: &str, line: &str) -> usize {
    text.lines().filter(|l| *l == line).count()
}

/// The scenario; with `wrapped`, the master runs every job under a
/// `--job-wrapper` that logs `wrapped <job> <worker>` before it execs the job.
fn adopted_jobs_run_on_another_worker(wrapped: bool) {
    let mut c = Cluster::new();
    let wrap_log = c.path("wrapper.log");
    let mut extra = Vec::new();
    if wrapped {
        let wrapper = c.path("wrapper.sh");
        // `$1` is the worker's copy of the executable, `$2` the job's id.
        write_executable(
            &wrapper,
            &format!(
                "#!/bin/sh\n{WHERE}echo \"wrapped $2 $where\" >> {}\nexec \"$@\"\n",
                wrap_log.display()
            ),
        );
        extra = vec!["--job-wrapper".into(), wrapper.display().to_string()];
    }
    // A master lease far longer than the test: nothing is requeued at the
    // master (which would hand f2 a new attempt, with the executable and
    // the wrapper), so the jobs complete only if f2 fetched what they need.
    c.opts = MasterOpts {
        lease: 300.0,
        heartbeat: 1.0,
        extra,
        ..MasterOpts::default()
    };
    c.start_master();

    let (p1, p2) = (free_port(), free_port());
    c.start_foreman("f1", p1, &[]);
    // A short lease: w1's jobs go back to f2's queue soon after w1 dies.
    c.start_foreman("f2", p2, &["--lease", "3"]);
    c.add_worker_to("w1", 1, &format!("127.0.0.1:{p1},127.0.0.1:{p2}"));
    c.wait_holders(2, Duration::from_secs(20));

    // On w1 a job starts and never ends (so the other stays queued there);
    // elsewhere it prints its output and ends.
    let marker = c.path("runs.log");
    let script = c.path("job.sh");
    write_executable(
        &script,
        &format!(
            "#!/bin/sh\n{WHERE}echo \"start $1 $where\" >> {m}\n\
             if [ \"$where\" = w1 ]; then sleep 600; fi\n\
             echo \"output of $1\"\necho \"end $1 $where\" >> {m}\n",
            m = marker.display()
        ),
    );
    let script_arg = script.display().to_string();
    let cl = c.submit(
        2,
        &["--output", "out/$(Cluster).$(Process).out"],
        &[&script_arg, "$(Cluster).$(Process)"],
    );
    // Stored by submit: from here on only the master's journal has it.
    std::fs::remove_file(&script).unwrap();

    let on = |jobs: &[Job], holder: &str| {
        jobs.len() == 2
            && jobs
                .iter()
                .all(|j| j.holder.as_deref() == Some(holder) && j.attempts == 1)
    };
    c.wait_until(
        Duration::from_secs(30),
        "both jobs on f1, one of them running",
        |jobs| on(jobs, "f1") && jobs.iter().filter(|j| j.status == RUNNING).count() == 1,
    );
    // The running one started on w1 (its sandbox is there).
    let started = |c: &Cluster| {
        let log = std::fs::read_to_string(&marker).unwrap_or_default();
        let w1: Vec<String> = log
            .lines()
            .filter(|l| l.starts_with("start ") && l.ends_with(" w1"))
            .map(str::to_string)
            .collect();
        assert!(
            w1.len() <= 1,
            "more than one job started on w1:\n{log}\n{}",
            c.diag()
        );
        w1.first().cloned()
    };
    pilotq_tests::wait_for(
        Duration::from_secs(20),
        "a job started on w1",
        || started(&c),
        || c.diag(),
    );
    // w1 holds both (depth 2): the second is in its queue behind the first.
    // Give f1's dispatch of it a moment to reach w1.
    std::thread::sleep(Duration::from_secs(2));

    c.kill_foreman("f1");
    // w1 fails over to f2, which adopts both jobs from its holdings.
    let f2_log = c.root.join("logs").join("foreman-f2-1.stderr");
    pilotq_tests::wait_for(
        Duration::from_secs(30),
        "f2 adopting both jobs from w1",
        || {
            let log = std::fs::read_to_string(&f2_log).unwrap_or_default();
            (0..2)
                .all(|p| {
                    log.lines().any(|l| {
                        l.contains("adopted a job its worker brought")
                            && l.contains(&format!(" job={cl}.{p} "))
                            && l.ends_with(" worker=w1")
                    })
                })
                .then_some(())
        },
        || c.diag(),
    );
    // The running one is reported to the master (it moves it to f2).
    c.wait_until(
        Duration::from_secs(30),
        "the running job moved to f2",
        |jobs| {
            jobs.iter()
                .any(|j| j.status == RUNNING && j.holder.as_deref() == Some("f2"))
        },
    );
    let ran_on_w1 = started(&c).expect("a job started on w1");
    c.kill_worker("w1");
    // w2 has never seen these jobs, and knows only f2.
    c.add_worker_to("w2", 2, &format!("127.0.0.1:{p2}"));

    let jobs = c.wait_all_completed(Duration::from_secs(60));
    let f2 = std::fs::read_to_string(&f2_log).unwrap_or_default();
    if let Some(l) = f2
        .lines()
        .find(|l| l.contains("does not have an executable"))
    {
        panic!(
            "f2 could not fetch what an adopted job needs:\n{l}\n{}",
            c.diag()
        );
    }
    let log = std::fs::read_to_string(&marker).unwrap_or_default();
    assert_eq!(jobs.len(), 2);
    for j in &jobs {
        let id = format!("{cl}.{}", j.proc);
        assert_eq!(
            (j.status, j.attempts, j.exit_code),
            (COMPLETED, 1, Some(0)),
            "{:#}\nruns:\n{log}\n{}",
            j.raw,
            c.diag()
        );
        let out = std::fs::read_to_string(c.path(&format!("out/{id}.out")))
            .unwrap_or_else(|e| panic!("out/{id}.out: {e}\n{}", c.diag()));
        assert_eq!(out, format!("output of {id}\n"));
        // It ran to its end once, on w2.
        assert_eq!(
            (
                count(&log, &format!("start {id} w2")),
                count(&log, &format!("end {id} w2"))
            ),
            (1, 1),
            "job {id} must run once on w2; runs:\n{log}\n{}",
            c.diag()
        );
        assert_eq!(
            log.lines()
                .filter(|l| l.starts_with(&format!("end {id} ")))
                .count(),
            1,
            "job {id} ended more than once; runs:\n{log}"
        );
        // The queued job never started on w1; the running one once.
        let w1_starts = count(&log, &format!("start {id} w1"));
        let want = usize::from(ran_on_w1 == format!("start {id} w1"));
        assert_eq!(w1_starts, want, "job {id} on w1; runs:\n{log}");
    }
    assert_eq!(
        log.lines().count(),
        5,
        "one start on w1, two starts and two ends on w2:\n{log}"
    );

    if wrapped {
        let wraps = std::fs::read_to_string(&wrap_log).unwrap_or_default();
        for j in &jobs {
            let id = format!("{cl}.{}", j.proc);
            assert_eq!(
                count(&wraps, &format!("wrapped {id} w2")),
                1,
                "job {id} ran on w2 without the master's job wrapper; wrapper log:\n{wraps}\n\
                 runs:\n{log}\n{}",
                c.diag()
            );
        }
    }
}

#[test]
fn a_foreman_fetches_the_executable_of_a_job_it_adopted() {
    adopted_jobs_run_on_another_worker(false);
}

#[test]
fn a_job_adopted_by_a_foreman_still_runs_under_the_masters_job_wrapper() {
    adopted_jobs_run_on_another_worker(true);
}

/// The queued job w1 brought to f2 is f2's at the master too, before the
/// master's lease on the dead f1 runs out: otherwise the master requeues an
/// attempt that is alive in w1's queue, hands out a second one, and the job
/// can run twice.
#[test]
fn a_queued_job_a_foreman_adopted_is_moved_to_it_at_the_master() {
    let lease = 6.0;
    let c = &mut Cluster::with_master(MasterOpts {
        lease,
        heartbeat: 1.0,
        ..MasterOpts::default()
    });
    let (p1, p2) = (free_port(), free_port());
    c.start_foreman("f1", p1, &[]);
    c.start_foreman("f2", p2, &[]);
    c.add_worker_to("w1", 1, &format!("127.0.0.1:{p1},127.0.0.1:{p2}"));
    c.wait_holders(2, Duration::from_secs(20));
    let runs = c.path("runs.log");
    let go = c.path("go");
    // Each job waits for `go`: the first holds w1's one core, the second
    // waits in w1's queue.
    let script = format!(
        "echo \"start $1\" >> {r}; while [ ! -e {g} ]; do sleep 0.2; done; echo \"output of $1\"",
        r = runs.display(),
        g = go.display()
    );
    let cl = c.submit(
        2,
        &["--output", "out/$(Cluster).$(Process).out"],
        &["/bin/sh", "-c", &script, "job", "$(Cluster).$(Process)"],
    );
    c.wait_until(
        Duration::from_secs(30),
        "both jobs on f1, one of them running",
        |jobs| {
            jobs.len() == 2
                && jobs.iter().all(|j| j.holder.as_deref() == Some("f1"))
                && jobs.iter().filter(|j| j.status == RUNNING).count() == 1
        },
    );
    std::thread::sleep(Duration::from_secs(2));
    c.kill_foreman("f1");
    let f2_log = c.root.join("logs").join("foreman-f2-1.stderr");
    pilotq_tests::wait_for(
        Duration::from_secs(30),
        "f2 adopting both jobs from w1",
        || {
            let log = std::fs::read_to_string(&f2_log).unwrap_or_default();
            (log.matches("adopted a job its worker brought").count() == 2).then_some(())
        },
        || c.diag(),
    );
    // Past the master's lease on f1: nothing of f1's may be left to requeue.
    std::thread::sleep(Duration::from_secs_f64(lease + 4.0));
    let jobs = c.jobs();
    for j in &jobs {
        assert_eq!(
            (j.holder.as_deref(), j.attempts),
            (Some("f2"), 1),
            "job {} is alive on w1 (through f2) with attempt 1, but the master has:\n{:#}\n{}",
            j.id,
            j.raw,
            c.diag()
        );
    }

    std::fs::write(&go, "").unwrap();
    let jobs = c.wait_all_completed(Duration::from_secs(60));
    let log = std::fs::read_to_string(&runs).unwrap_or_default();
    for j in &jobs {
        let id = format!("{cl}.{}", j.proc);
        assert_eq!(
            (j.status, j.attempts, j.exit_code),
            (COMPLETED, 1, Some(0)),
            "{:#}\n{}",
            j.raw,
            c.diag()
        );
        assert_eq!(
            count(&log, &format!("start {id}")),
            1,
            "job {id} started more than once:\n{log}"
        );
        let out = std::fs::read_to_string(c.path(&format!("out/{id}.out"))).unwrap();
        assert_eq!(out, format!("output of {id}\n"));
    }
}
