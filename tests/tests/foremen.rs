//! Foremen: local queues between the master and the workers. Upstream a
//! foreman is one holder (named by `--name`, with its workers' summed cores);
//! downstream it is a master. It keeps the jobs it took in its own journal,
//! goes on starting them and collecting their results while the master is
//! away, and delivers the results when the master is back: nothing is lost,
//! nothing runs twice, and every job keeps the master's first attempt.

use pilotq_tests::logged_jobs::{
    assert_each_completed_once, assert_each_ran_once, lines_counted, logged, logged_job,
};
use pilotq_tests::{free_port, Cluster, Job, MasterOpts, COMPLETED, HELD, REMOVED, RUNNING};
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::{Duration, Instant};

/// A master on a fixed port (so that it can restart on it), 1 s heartbeats,
/// and `lease` seconds for a lost holder (and, after a restart, for the
/// holders to reclaim their jobs).
fn master_opts(lease: f64) -> MasterOpts {
    MasterOpts {
        lease,
        heartbeat: 1.0,
        fixed_port: true,
        ..MasterOpts::default()
    }
}

/// After a master outage of about 8 s, a foreman that reconnects with a
/// backoff doubling from 1 s (±20%, as workers do) may knock up to ~10 s after
/// the restart; the restarted master must give it that long to reclaim.
const LEASE_ACROSS_AN_OUTAGE: f64 = 15.0;

/// Jobs the master shows as out (Assigned or Running) at `holder`.
fn out_at<'a>(jobs: &'a [Job], holder: &str) -> Vec<&'a Job> {
    jobs.iter()
        .filter(|j| j.holder.as_deref() == Some(holder))
        .collect()
}

#[test]
fn jobs_flow_through_two_foremen() {
    let mut c = Cluster::with_master(master_opts(6.0));
    let mut workers_of: BTreeMap<String, &str> = BTreeMap::new();
    for f in ["f1", "f2"] {
        let addr = c.start_foreman(f, free_port(), &[]).addr.clone();
        for (w, cores) in [("a", 1), ("b", 2)] {
            let name = format!("{f}-{w}");
            c.add_worker_to(&name, cores, &addr);
            workers_of.insert(name, f);
        }
    }
    // Two holders, not four: each foreman with its two workers' 1 + 2 cores.
    c.wait_capacity(2, 6, Duration::from_secs(30));

    let log = c.path("runs.log");
    // Each job notes where it ran (its sandbox is inside its worker's
    // work dir) and prints its $0 and process number.
    let script = format!(
        "echo \"$(Cluster).$(Process) $PWD\" >> {}; sleep 0.5; echo \"done $0 $(Process)\"",
        log.display()
    );
    let cl = c.submit(
        40,
        &["--output", "out/$(Cluster).$(Process).out"],
        &["/bin/sh", "-c", &script, "job"],
    );

    let mut holders_seen = BTreeSet::new();
    let jobs = c.wait_until(
        Duration::from_secs(60),
        "40 jobs completed through the foremen",
        |jobs| {
            for j in jobs {
                if j.status == HELD || j.status == REMOVED {
                    panic!(
                        "job {} can no longer complete: {:#}\n{}",
                        j.id,
                        j.raw,
                        c.diag()
                    );
                }
                if let Some(h) = &j.holder {
                    holders_seen.insert(h.clone());
                }
            }
            jobs.len() == 40 && jobs.iter().all(|j| j.status == COMPLETED)
        },
    );
    let want: BTreeSet<String> = ["f1", "f2"].map(String::from).into();
    assert_eq!(
        holders_seen,
        want,
        "while out, a job's holder on the master is the foreman that took it \
         (never a worker behind it), and both foremen took jobs\n{}",
        c.diag()
    );
    for j in &jobs {
        assert_eq!(
            (j.status, j.attempts, j.exit_code, j.holder.as_deref()),
            (COMPLETED, 1, Some(0), None),
            "{:#}\n{}",
            j.raw,
            c.diag()
        );
        let path = c.path(&format!("out/{cl}.{}.out", j.proc));
        let out = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("{}: {e}\n{}", path.display(), c.diag()));
        assert_eq!(out, format!("done job {}\n", j.proc), "{}", path.display());
    }

    // Each job ran once, and every worker behind each foreman ran some.
    let workdirs = c.root.join("workers");
    let mut runs: BTreeMap<String, usize> = BTreeMap::new();
    let mut per_worker: BTreeMap<String, usize> = BTreeMap::new();
    for (line, n) in lines_counted(&log) {
        let (id, pwd) = line
            .split_once(' ')
            .unwrap_or_else(|| panic!("bad runs.log line {line:?}"));
        *runs.entry(id.to_string()).or_default() += n;
        let worker = Path::new(pwd)
            .strip_prefix(&workdirs)
            .ok()
            .and_then(|r| r.components().next())
            .map(|w| w.as_os_str().to_string_lossy().into_owned())
            .unwrap_or_else(|| panic!("job {id} ran outside every worker's work dir: {pwd}"));
        *per_worker.entry(worker).or_default() += n;
    }
    let once: BTreeMap<String, usize> = (0..40).map(|p| (format!("{cl}.{p}"), 1)).collect();
    assert_eq!(runs, once, "each job ran exactly once");
    let all: BTreeSet<&String> = workers_of.keys().collect();
    let ran: BTreeSet<&String> = per_worker.keys().collect();
    assert_eq!(
        ran, all,
        "every worker of both foremen ran jobs: {per_worker:?}"
    );

    let s = c.status_json();
    assert_eq!(
        (s["holders"].as_u64(), s["cores"].as_u64()),
        (Some(2), Some(6)),
        "the master counts the two foremen, not their workers: {s}"
    );
}

#[test]
fn the_master_down_for_a_while_does_not_stop_the_foremen() {
    let mut c = Cluster::with_master(master_opts(LEASE_ACROSS_AN_OUTAGE));
    for f in ["f1", "f2"] {
        let addr = c.start_foreman(f, free_port(), &[]).addr.clone();
        c.add_worker_to(&format!("{f}-a"), 1, &addr);
        c.add_worker_to(&format!("{f}-b"), 1, &addr);
    }
    c.wait_capacity(2, 4, Duration::from_secs(30));

    let log = c.path("runs.log");
    c.submit(
        24,
        &["--output", "out/$(Cluster).$(Process).out"],
        &["/bin/sh", "-c", &logged_job(&log, "3")],
    );
    // Each foreman has 2 cores, and takes up to 2 × depth 2 = 4 jobs: with 3
    // or more out at each and no job ended yet, jobs wait behind the running
    // ones at both foremen.
    let before = c.wait_until(
        Duration::from_secs(30),
        "at least 3 jobs out at each foreman, one running, none ended",
        |jobs| {
            out_at(jobs, "f1").len() >= 3
                && out_at(jobs, "f2").len() >= 3
                && jobs.iter().any(|j| j.status == RUNNING)
                && logged(&log, "end").is_empty()
        },
    );
    c.kill_master();
    let killed = Instant::now();
    let started_at_kill = logged(&log, "start");
    let held: BTreeSet<String> = before
        .iter()
        .filter(|j| j.holder.is_some())
        .map(|j| j.id.clone())
        .collect();
    assert!(
        started_at_kill.len() <= 4,
        "more jobs started than the 4 cores behind the foremen: {started_at_kill:?}\n{}",
        c.diag()
    );

    std::thread::sleep(Duration::from_secs(8).saturating_sub(killed.elapsed()));
    let started = logged(&log, "start");
    let ended = logged(&log, "end");
    let new: BTreeSet<&String> = started.difference(&started_at_kill).collect();
    assert!(
        !new.is_empty(),
        "no job started behind the foremen during an 8 s master outage; at the kill, \
         {started_at_kill:?} had started and {held:?} were out at the foremen\n{}",
        c.diag()
    );
    let never: BTreeSet<&String> = held.difference(&started).collect();
    assert!(
        never.is_empty(),
        "jobs the foremen held when the master died did not start during the 8 s outage: \
         {never:?}\n{}",
        c.diag()
    );
    assert!(
        started.len() <= 8,
        "{} jobs started, though the foremen could hold at most 2 × 2 cores × depth 2 = 8 \
         and the master was down: {started:?}",
        started.len()
    );
    let unfinished: BTreeSet<&String> = started_at_kill.difference(&ended).collect();
    assert!(
        unfinished.is_empty(),
        "jobs of 3 s running at the kill had not ended 8 s later: {unfinished:?}\n{}",
        c.diag()
    );

    c.restart_master();
    let jobs = c.wait_all_completed(Duration::from_secs(60));
    assert_each_completed_once(&c, &jobs, 24);
    assert_each_ran_once(&c, &log, &jobs);
    c.wait_capacity(2, 4, Duration::from_secs(10));
    c.assert_journal_once_each(24, 2);
}

#[test]
fn a_foreman_restarted_on_its_journal_loses_nothing() {
    let mut c = Cluster::with_master(master_opts(6.0));
    let port = free_port();
    let addr = c.start_foreman("f", port, &[]).addr.clone();
    c.add_worker_to("w1", 1, &addr);
    c.add_worker_to("w2", 1, &addr);
    c.wait_capacity(1, 2, Duration::from_secs(30));

    let log = c.path("runs.log");
    c.submit(
        12,
        &["--output", "out/$(Cluster).$(Process).out"],
        &["/bin/sh", "-c", &logged_job(&log, "2")],
    );
    c.wait_until(
        Duration::from_secs(30),
        "at least 3 jobs out at the foreman and one running",
        |jobs| out_at(jobs, "f").len() >= 3 && jobs.iter().any(|j| j.status == RUNNING),
    );
    c.kill_foreman("f");
    std::thread::sleep(Duration::from_secs(1));
    // Same journal, same port, well within the master's 6 s lease.
    c.start_foreman("f", port, &[]);

    let jobs = c.wait_all_completed(Duration::from_secs(60));
    assert_each_completed_once(&c, &jobs, 12);
    assert_each_ran_once(&c, &log, &jobs);
    // One holder still: the restarted foreman, with both workers back.
    c.wait_capacity(1, 2, Duration::from_secs(10));
    c.assert_journal_once_each(12, 1);
}

#[test]
fn results_made_while_the_master_is_down_reach_it() {
    let mut c = Cluster::with_master(master_opts(LEASE_ACROSS_AN_OUTAGE));
    let addr = c.start_foreman("f", free_port(), &[]).addr.clone();
    c.add_worker_to("w", 1, &addr);
    c.wait_capacity(1, 1, Duration::from_secs(30));

    let log = c.path("runs.log");
    let cl = c.submit(
        1,
        &["--output", "out/$(Cluster).$(Process).out"],
        &["/bin/sh", "-c", &logged_job(&log, "2")],
    );
    let id = format!("{cl}.0");
    c.wait_until(
        Duration::from_secs(20),
        "the job running at the foreman",
        |jobs| {
            jobs.len() == 1 && jobs[0].status == RUNNING && jobs[0].holder.as_deref() == Some("f")
        },
    );
    c.kill_master();

    pilotq_tests::wait_for(
        Duration::from_secs(10),
        "the job to end while the master is down",
        || logged(&log, "end").contains(&id).then_some(()),
        || c.diag(),
    );
    // Time for the result to travel from the worker to the foreman's journal.
    std::thread::sleep(Duration::from_secs(3));
    let out = c.path(&format!("out/{id}.out"));
    assert!(
        !out.exists(),
        "{} was written with the master down: only the master writes outputs",
        out.display()
    );
    // The worker is gone for good: the result can only come from the foreman.
    c.kill_worker("w");

    c.restart_master();
    let jobs = c.wait_all_completed(Duration::from_secs(30));
    assert_each_completed_once(&c, &jobs, 1);
    assert_each_ran_once(&c, &log, &jobs);
    c.assert_journal_once_each(1, 2);
}

/// The scenario: a master, 3 foremen and 6 workers run 300 jobs; the
/// master is SIGKILLed for 10 s mid-run; jobs keep starting behind the
/// foremen during the outage, and all complete exactly once.
#[test]
fn three_foremen_six_workers_300_jobs_through_a_10_s_master_outage() {
    let mut c = Cluster::with_master(master_opts(LEASE_ACROSS_AN_OUTAGE + 5.0));
    for f in ["f1", "f2", "f3"] {
        let addr = c.start_foreman(f, free_port(), &[]).addr.clone();
        for w in ["a", "b"] {
            c.add_worker_to(&format!("{f}-{w}"), 2, &addr);
        }
    }
    c.wait_capacity(3, 12, Duration::from_secs(30));
    let log = c.path("runs.log");
    let cl = c.submit(
        300,
        &["--output", "out/$(Cluster).$(Process).out"],
        &["/bin/sh", "-c", &logged_job(&log, "0.3")],
    );
    // Mid-run: some jobs done, many to go.
    c.wait_until(Duration::from_secs(60), "40 jobs completed", |jobs| {
        jobs.iter().filter(|j| j.status == COMPLETED).count() >= 40
    });
    c.kill_master();
    let started_at_kill = logged(&log, "start").len();
    std::thread::sleep(Duration::from_secs(10));
    let started_in_outage = logged(&log, "start").len() - started_at_kill;
    assert!(
        started_in_outage > 0,
        "no job started behind the foremen during the 10 s outage\n{}",
        c.diag()
    );
    c.restart_master();
    let jobs = c.wait_all_completed(Duration::from_secs(120));
    assert!(jobs.iter().all(|j| j.cluster == cl));
    assert_each_completed_once(&c, &jobs, 300);
    assert_each_ran_once(&c, &log, &jobs);
    c.assert_journal_once_each(300, 2);
}
