//! The master is SIGKILLed while jobs run, and restarted on the same journal
//! and port: nothing is lost, nothing runs twice.

use pilotq_tests::{Cluster, MasterOpts, COMPLETED, RUNNING};
use std::time::Duration;

#[test]
fn master_killed_while_jobs_run_on_two_workers_loses_nothing_and_runs_nothing_twice() {
    let mut c = Cluster::with_master(MasterOpts {
        lease: 8.0,
        heartbeat: 1.0,
        fixed_port: true,
        ..MasterOpts::default()
    });
    // 2 × 12 cores, both connected before anything is submitted: 24 jobs
    // running, twelve on each worker, and the other six waiting in the
    // workers' queues when the master dies.
    c.add_worker("a", 12);
    c.add_worker("b", 12);
    c.wait_holders(2, Duration::from_secs(30));
    let runs = c.path("runs.log");
    // Each job logs its start and end to a shared file (so a second run of
    // any job would show), and prints its batch name: five clusters of six.
    let script = format!(
        "echo \"start $0\" >> {r}; sleep 4; echo \"done $0\"; echo \"end $0\" >> {r}",
        r = runs.display()
    );
    let mut clusters = Vec::new();
    for k in 0..5 {
        let batch = format!("batch-{k}");
        let cl = c.submit(
            6,
            &["--output", "out/$(Cluster).$(Process).out"],
            &["/bin/sh", "-c", &script, &batch],
        );
        clusters.push((cl, batch));
    }
    let before = c.wait_until(
        Duration::from_secs(30),
        "24 jobs running, twelve on each worker",
        |jobs| {
            let on = |w: &str| {
                jobs.iter()
                    .filter(|j| j.status == RUNNING && j.holder.as_deref() == Some(w))
                    .count()
            };
            jobs.len() == 30 && on("a") == 12 && on("b") == 12
        },
    );
    for j in &before {
        assert!(j.attempts <= 1, "{:#}", j.raw);
    }

    c.kill_master();
    std::thread::sleep(Duration::from_secs(1));
    c.restart_master();

    let jobs = c.wait_all_completed(Duration::from_secs(90));
    assert_eq!(jobs.len(), 30);
    for j in &jobs {
        assert_eq!(j.status, COMPLETED, "{:#}", j.raw);
        assert_eq!(
            j.attempts, 1,
            "job {} was dispatched again after the restart: {:#}",
            j.id, j.raw
        );
        assert_eq!(j.exit_code, Some(0), "{:#}", j.raw);
        assert_eq!(j.holder, None, "{:#}", j.raw);
        let batch = &clusters
            .iter()
            .find(|(cl, _)| *cl == j.cluster)
            .unwrap_or_else(|| panic!("unknown cluster {}", j.cluster))
            .1;
        let path = c.path(&format!("out/{}.{}.out", j.cluster, j.proc));
        let out = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("{}: {e}\n{}", path.display(), c.diag()));
        assert_eq!(out, format!("done {batch}\n"), "{}", path.display());
    }
    // Every job's process ran exactly once.
    let log = std::fs::read_to_string(&runs).unwrap();
    for (_, batch) in &clusters {
        for what in ["start", "end"] {
            let n = log
                .lines()
                .filter(|l| *l == format!("{what} {batch}"))
                .count();
            assert_eq!(n, 6, "{what} {batch} logged {n} times:\n{log}");
        }
    }
    assert_eq!(log.lines().count(), 60, "{log}");

    // The journal agrees: two master starts (before and after the kill),
    // one dispatch and one completion per job, and it verifies.
    c.assert_journal_once_each(30, 2);
    c.assert_journal_verified(30);
}

/// The reclaim window counts the master's uptime, not the wall clock: a
/// worker cannot come back while the master is down, so a long outage
/// between two restarts must not use up the time it has to reclaim its job.
/// (Counted in wall time, the window was over before the second start below
/// began, and the running job was requeued and run again.)
#[test]
fn an_outage_between_two_restarts_does_not_cost_a_live_worker_its_job() {
    let mut c = one_long_job_on_w(10.0, 1.0);
    // A crash, a restart that lives 3 s and stops, 12 s with no master.
    c.kill_master();
    c.restart_master();
    std::thread::sleep(Duration::from_secs(3));
    c.stop_master();
    std::thread::sleep(Duration::from_secs(12));
    c.restart_master();
    // 7 s of the window are left. The worker's backoff (at most 4 s: a
    // third of the lease, jittered) brings it back within them. Checked
    // after the window is over, so that a worker that did not come back
    // would have lost the job.
    std::thread::sleep(Duration::from_secs(9));
    assert_still_first_attempt_on_w(&c);
}

/// A worker's reconnect backoff stays well inside the lease the master
/// grants (it learns it in the handshake): after a long outage it must not
/// be sleeping through a whole backoff of 30 s or more when the master comes
/// back, or its jobs would be requeued under it and run again elsewhere.
#[test]
fn after_a_long_outage_a_worker_is_back_within_the_lease() {
    let mut c = one_long_job_on_w(6.0, 1.0);
    // 40 s without a master: a backoff doubling from 1 s to 60 s (jittered
    // ±20%) would have the worker's next try 50.4 – 75.6 s after the crash,
    // over 10 s after the restart. Kept inside the lease it is at most
    // 2.4 s away.
    c.kill_master();
    std::thread::sleep(Duration::from_secs(40));
    c.restart_master();
    // Two leases later the job must still be its first attempt, on "w".
    std::thread::sleep(Duration::from_secs(12));
    assert_still_first_attempt_on_w(&c);
}

/// A master on a fixed port (so that it can restart where its worker looks
/// for it) with the given lease and heartbeat, and one job of 300 s running
/// on its one worker, "w".
fn one_long_job_on_w(lease: f64, heartbeat: f64) -> Cluster {
    let mut c = Cluster::with_master(MasterOpts {
        lease,
        heartbeat,
        fixed_port: true,
        ..MasterOpts::default()
    });
    c.submit(1, &[], &["/bin/sleep", "300"]);
    c.add_worker("w", 1);
    c.wait_until(Duration::from_secs(20), "the job running", |jobs| {
        jobs.len() == 1 && jobs[0].status == RUNNING
    });
    c
}

/// The job of [`one_long_job_on_w`] still runs its first attempt on "w":
/// no restart cost it its holder.
fn assert_still_first_attempt_on_w(c: &Cluster) {
    let jobs = c.jobs();
    assert_eq!(jobs.len(), 1);
    assert_eq!(jobs[0].status, RUNNING, "{:?}\n{}", jobs[0].raw, c.diag());
    assert_eq!(jobs[0].attempts, 1, "{:?}\n{}", jobs[0].raw, c.diag());
    assert_eq!(jobs[0].holder.as_deref(), Some("w"));
}
