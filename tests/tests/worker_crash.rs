//! Workers and masters lost mid-job: a lost worker's jobs run again
//! elsewhere after the lease; a result made while the master was down is
//! delivered when it is back.

use pilotq_tests::{event_job, event_kind, Cluster, MasterOpts, COMPLETED, RUNNING};
use std::time::{Duration, Instant};

#[test]
fn a_killed_workers_jobs_go_back_to_idle_after_the_lease_and_run_elsewhere() {
    let lease = 4.0;
    let mut c = Cluster::with_master(MasterOpts {
        lease,
        heartbeat: 1.0,
        ..MasterOpts::default()
    });
    let runs = c.path("runs.log");
    let script = format!(
        "echo \"start $$\" >> {}; sleep 3; echo finished",
        runs.display()
    );
    let cl = c.submit(
        2,
        &["--output", "out/$(Cluster).$(Process).out"],
        &["/bin/sh", "-c", &script],
    );
    c.add_worker("doomed", 2);
    c.wait_until(
        Duration::from_secs(20),
        "both jobs running on the doomed worker",
        |jobs| {
            jobs.len() == 2
                && jobs
                    .iter()
                    .all(|j| j.status == RUNNING && j.holder.as_deref() == Some("doomed"))
        },
    );
    c.add_worker("spare", 2);
    c.wait_holders(2, Duration::from_secs(20));

    c.kill_worker("doomed");
    let killed = Instant::now();
    // Until the lease runs out, the jobs stay with the silent holder: it may
    // come back and reclaim them.
    while killed.elapsed() < Duration::from_secs_f64(lease - 1.5) {
        for j in c.jobs() {
            assert_eq!(
                (j.status, j.attempts, j.holder.as_deref()),
                (RUNNING, 1, Some("doomed")),
                "job {} changed {:?} after its worker was killed, before the {lease} s lease ran out: {:#}",
                j.id,
                killed.elapsed(),
                j.raw
            );
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    let jobs = c.wait_all_completed(Duration::from_secs(40));
    assert_eq!(jobs.len(), 2);
    for j in &jobs {
        assert_eq!(j.attempts, 2, "{:#}", j.raw);
        assert_eq!(j.exit_code, Some(0), "{:#}", j.raw);
        assert_eq!(j.holder, None, "{:#}", j.raw);
        let out = std::fs::read_to_string(c.path(&format!("out/{cl}.{}.out", j.proc))).unwrap();
        assert_eq!(out, "finished\n");
    }
    let log = std::fs::read_to_string(&runs).unwrap();
    assert_eq!(log.lines().count(), 4, "two runs of each job:\n{log}");

    // The journal tells the same story, job by job.
    let status = c.stop_master();
    assert!(status.success(), "{status}");
    let events = c.journal_events();
    for p in 0..2 {
        let id = format!("{cl}.{p}");
        let story: Vec<(String, Option<u64>, Option<String>)> = events
            .iter()
            .map(event_kind)
            .filter(|(_, b)| event_job(b).as_deref() == Some(id.as_str()))
            .filter(|(k, _)| *k != "JobStarted")
            .map(|(k, b)| {
                (
                    k.to_string(),
                    b["attempt"].as_u64(),
                    b["holder"].as_str().map(str::to_string),
                )
            })
            .collect();
        let want = vec![
            ("JobDispatched".to_string(), Some(1), Some("doomed".into())),
            ("JobRequeued".to_string(), Some(1), None),
            ("JobDispatched".to_string(), Some(2), Some("spare".into())),
            ("JobCompleted".to_string(), Some(2), None),
        ];
        assert_eq!(story, want, "journal story of job {id}");
    }
}

#[test]
fn a_result_made_while_the_master_was_down_is_delivered_when_it_is_back() {
    let mut c = Cluster::with_master(MasterOpts {
        lease: 10.0,
        heartbeat: 1.0,
        fixed_port: true,
        ..MasterOpts::default()
    });
    let cl = c.submit(
        1,
        &["--output", "out/$(Cluster).$(Process).out"],
        &["/bin/sh", "-c", "sleep 2; echo x"],
    );
    c.add_worker("w", 1);
    c.wait_until(Duration::from_secs(20), "the job running", |jobs| {
        jobs.len() == 1 && jobs[0].status == RUNNING
    });
    c.kill_master();
    // The job finishes while nobody is there to take its result.
    std::thread::sleep(Duration::from_secs(4));
    assert!(
        !c.path(&format!("out/{cl}.0.out")).exists(),
        "an output file appeared while the master was down"
    );
    c.restart_master();
    let jobs = c.wait_all_completed(Duration::from_secs(30));
    let j = &jobs[0];
    assert_eq!(
        (j.status, j.attempts, j.exit_code),
        (COMPLETED, 1, Some(0)),
        "{:#}",
        j.raw
    );
    let out = std::fs::read_to_string(c.path(&format!("out/{cl}.0.out")))
        .unwrap_or_else(|e| panic!("output file: {e}\n{}", c.diag()));
    assert_eq!(out, "x\n");
    let status = c.stop_master();
    assert!(status.success(), "{status}");
    let kinds: Vec<String> = c
        .journal_events()
        .iter()
        .map(event_kind)
        .filter(|(k, _)| *k == "JobDispatched" || *k == "JobCompleted" || *k == "JobRequeued")
        .map(|(k, _)| k.to_string())
        .collect();
    assert_eq!(kinds, vec!["JobDispatched", "JobCompleted"]);
}
