//! `pilotq rm`: running jobs are killed with everything they started; the
//! three forms print condor_rm's messages.

use pilotq_tests::{
    alive, wait_for, Cluster, Finished, MasterOpts, COMPLETED, IDLE, REMOVED, RUNNING,
};
use std::time::Duration;

#[test]
fn removing_a_running_job_kills_its_whole_process_group() {
    let mut c = Cluster::with_master(MasterOpts::default());
    let pidfile = c.path("job.pids");
    // The shell and two background sleeps: three processes, one group.
    let script = format!(
        "echo $$ > {p}; sleep 300 & echo $! >> {p}; sleep 300 & echo $! >> {p}; wait",
        p = pidfile.display()
    );
    let cl = c.submit(1, &[], &["/bin/sh", "-c", &script]);
    c.add_worker("w", 1);
    c.wait_until(Duration::from_secs(20), "the job running", |jobs| {
        jobs.len() == 1 && jobs[0].status == RUNNING
    });
    let pids = c.wait_pids(&pidfile, 3, Duration::from_secs(20));
    for &p in &pids {
        assert!(alive(p), "job process {p} is not running before rm");
    }

    let out = c.run_ok(&["rm", &format!("{cl}.0")]);
    assert_eq!(
        out.stdout,
        format!("Job {cl}.0 marked for removal\n"),
        "{out}"
    );

    wait_for(
        Duration::from_secs(15),
        "every process of the removed job to be gone",
        || pids.iter().all(|&p| !alive(p)).then_some(()),
        || {
            let left: Vec<_> = pids.iter().filter(|&&p| alive(p)).collect();
            format!("still alive: {left:?}\n{}", c.diag())
        },
    );
    let j = c.job(&format!("{cl}.0"));
    assert_eq!(j.status, REMOVED, "{:#}", j.raw);
    assert_eq!(j.holder, None, "{:#}", j.raw);
    assert_eq!(j.exit_code, None, "{:#}", j.raw);

    // Its core is free again: the next job runs on the same 1-core worker.
    let next = c.submit(
        1,
        &["--output", "out/next.out"],
        &["/bin/sh", "-c", "echo next"],
    );
    c.wait_until(Duration::from_secs(20), "the next job completed", |jobs| {
        jobs.iter()
            .any(|j| j.cluster == next && j.status == COMPLETED)
    });
    assert_eq!(
        std::fs::read_to_string(c.path("out/next.out")).unwrap(),
        "next\n"
    );
    assert_eq!(c.job(&format!("{cl}.0")).status, REMOVED);
}

#[test]
fn rm_by_job_by_cluster_and_all_print_condor_rm_messages() {
    let mut c = Cluster::with_master(MasterOpts::default());
    let a = c.submit(3, &[], &["/bin/sh", "-c", "sleep 300"]);
    let b = c.submit(2, &[], &["/bin/sh", "-c", "sleep 300"]);
    let d = c.submit(2, &[], &["/bin/sh", "-c", "sleep 300"]);
    // One core: a.0 runs, the rest wait.
    c.add_worker("w", 1);
    c.wait_until(Duration::from_secs(20), "job a.0 running", |jobs| {
        jobs.iter()
            .any(|j| j.id == format!("{a}.0") && j.status == RUNNING)
    });

    let out = c.run_ok(&["rm", &format!("{a}.1")]);
    assert_eq!(
        out.stdout,
        format!("Job {a}.1 marked for removal\n"),
        "{out}"
    );
    let st = |id: String| c.job(&id).status;
    assert_eq!(st(format!("{a}.1")), REMOVED);
    assert_eq!(st(format!("{a}.0")), RUNNING);
    assert_eq!(st(format!("{a}.2")), IDLE);

    let out = c.run_ok(&["rm", &b.to_string()]);
    assert_eq!(
        out.stdout,
        format!("All jobs in cluster {b} have been marked for removal\n"),
        "{out}"
    );
    for p in 0..2 {
        assert_eq!(st(format!("{b}.{p}")), REMOVED);
    }
    assert_eq!(st(format!("{a}.0")), RUNNING);
    assert_eq!(st(format!("{d}.0")), IDLE);
    assert!(
        !c.job_pids().is_empty(),
        "job {a}.0 shows as running but no job process runs in the worker's dir"
    );

    // Nothing to remove: condor_rm's complaint and a failure exit.
    let out = c.run(&["rm", "999"]);
    assert!(!out.ok(), "rm of a cluster that does not exist: {out}");
    assert!(
        out.stderr
            .contains("Couldn't find/remove all jobs matching 999"),
        "{out}"
    );

    let out = c.run_ok(&["rm", "--all"]);
    assert_eq!(
        out.stdout, "All jobs have been marked for removal\n",
        "{out}"
    );
    let jobs = c.wait_until(Duration::from_secs(15), "every job removed", |jobs| {
        jobs.iter().all(|j| j.status == REMOVED)
    });
    assert_eq!(jobs.len(), 7);
    for j in &jobs {
        assert_eq!(j.holder, None, "{:#}", j.raw);
    }
    wait_for(
        Duration::from_secs(15),
        "the running job's processes to be killed",
        || c.job_pids().is_empty().then_some(()),
        || format!("still running: {:?}\n{}", c.job_pids(), c.diag()),
    );
    // Removed jobs leave the queue for the history store (as in HTCondor's
    // schedd): status counts them under `history_removed`.
    assert_eq!(
        c.finished_counts(),
        Finished {
            completed: 0,
            removed: 7
        }
    );
    let s = c.status_json();
    assert_eq!(s["removed"], 0, "the removed jobs left the queue: {s}");
    assert_eq!(s["running"], 0, "{s}");
    assert_eq!(s["idle"], 0, "{s}");
}
