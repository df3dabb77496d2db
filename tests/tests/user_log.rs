//! The job event log (`log = path` in a submit description): the master
//! appends HTCondor user-log events, one block per event, each opened by
//! `NNN (CCC.PPP.000) ` and closed by a line `...`.

use pilotq_tests::user_log::{codes_of, wait_log};
use pilotq_tests::{
    write_executable, Cluster, MasterOpts, COMPLETED, HELD, IDLE, REMOVED, RUNNING,
};
use std::time::Duration;

#[test]
fn a_job_that_exits_3_is_submitted_executing_and_terminated_with_return_value_3() {
    let mut c = Cluster::with_master(MasterOpts::default());
    let log = c.path("job.log");
    let cl = c.condor_submit_ok(
        &format!(
            "executable = /bin/sh\narguments = \"-c 'exit 3'\"\nlog = {}\nqueue\n",
            log.display()
        ),
        1,
    );
    let id = format!("{cl}.0");
    wait_log(&c, &log, "the submit event (000)", |evs| {
        codes_of(evs, &id) == ["000"]
    });
    c.add_worker("w1", 1);
    let jobs = c.wait_all_completed(Duration::from_secs(30));
    assert_eq!(jobs[0].exit_code, Some(3));
    let evs = wait_log(&c, &log, "the termination event (005)", |evs| {
        codes_of(evs, &id).iter().any(|c| c == "005")
    });
    assert_eq!(codes_of(&evs, &id), ["000", "001", "005"], "{evs:#?}");
    assert_eq!(evs.len(), 3, "only this job's events: {evs:#?}");
    let header = evs[0].text.lines().next().unwrap();
    assert!(
        header.starts_with(&format!("000 ({cl:03}.000.000) ")),
        "cluster and proc zero-padded to 3 digits: {header:?}"
    );
    assert!(
        evs[2].text.contains("(return value 3)"),
        "the termination event should carry the return value:\n{}",
        evs[2].text
    );
}

/// Short jobs queued behind each other on one core (the later ones wait in
/// the worker's own queue and start the moment the previous one ends): each
/// still has its executing event between submission and termination.
#[test]
fn every_job_of_a_cluster_logs_executing_before_terminated() {
    let mut c = Cluster::with_master(MasterOpts::default());
    let log = c.path("many.log");
    let cl = c.condor_submit_ok(
        &format!(
            "executable = /bin/sh\narguments = \"-c 'exit $(Process)'\"\nlog = {}\nqueue 10\n",
            log.display()
        ),
        10,
    );
    c.add_worker("w1", 1);
    c.wait_all_completed(Duration::from_secs(30));
    let evs = wait_log(&c, &log, "a termination event (005) for each job", |evs| {
        evs.iter().filter(|e| e.code == "005").count() >= 10
    });
    // Nothing more comes after the terminations.
    std::thread::sleep(Duration::from_millis(500));
    let evs_now = wait_log(&c, &log, "a well-formed log", |_| true);
    assert_eq!(
        evs_now.len(),
        evs.len(),
        "events after the terminations: {evs_now:#?}"
    );
    let mut wrong = Vec::new();
    for p in 0..10 {
        let id = format!("{cl}.{p}");
        let codes = codes_of(&evs, &id);
        if codes != ["000", "001", "005"] {
            wrong.push(format!("job {id}: {codes:?}"));
        }
        let term = evs.iter().find(|e| e.job == id && e.code == "005");
        if let Some(t) = term {
            if !t.text.contains(&format!("(return value {p})")) {
                wrong.push(format!(
                    "job {id}'s termination lacks (return value {p}):\n{}",
                    t.text
                ));
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "each job should log 000, 001, 005 in that order:\n{}\n\nthe log:\n{}",
        wrong.join("\n"),
        std::fs::read_to_string(&log).unwrap()
    );
}

#[test]
fn removed_jobs_are_aborted_and_a_removed_idle_job_never_executes() {
    let mut c = Cluster::with_master(MasterOpts::default());
    let log = c.path("rm.log");
    let cl = c.condor_submit_ok(
        &format!(
            "executable = /bin/sleep\narguments = 300\nlog = {}\nqueue 2\n",
            log.display()
        ),
        2,
    );
    let (j0, j1) = (format!("{cl}.0"), format!("{cl}.1"));
    // One core: .0 runs, .1 waits.
    c.add_worker("w1", 1);
    c.wait_until(Duration::from_secs(30), "job .0 running", |jobs| {
        jobs.iter().any(|j| j.id == j0 && j.status == RUNNING)
            && jobs.iter().any(|j| j.id == j1 && j.status == IDLE)
    });
    wait_log(&c, &log, "job .0 executing (001)", |evs| {
        codes_of(evs, &j0) == ["000", "001"]
    });
    c.run_condor_ok("condor_rm", &[&j1]);
    c.run_condor_ok("condor_rm", &[&j0]);
    c.wait_until(Duration::from_secs(15), "both removed", |jobs| {
        jobs.iter().all(|j| j.status == REMOVED)
    });
    let evs = wait_log(&c, &log, "both jobs aborted (009)", |evs| {
        codes_of(evs, &j0).last().map(String::as_str) == Some("009")
            && codes_of(evs, &j1).last().map(String::as_str) == Some("009")
    });
    assert_eq!(codes_of(&evs, &j0), ["000", "001", "009"], "{evs:#?}");
    assert_eq!(codes_of(&evs, &j1), ["000", "009"], "{evs:#?}");
    // Nothing more comes (a kill must not also log a termination).
    std::thread::sleep(Duration::from_secs(2));
    let evs = wait_log(&c, &log, "a well-formed log", |_| true);
    assert_eq!(evs.len(), 5, "{evs:#?}");
}

#[test]
fn a_job_that_cannot_start_is_held_and_logged_so() {
    let mut c = Cluster::with_master(MasterOpts::default());
    let log = c.path("held.log");
    let broken = c.path("broken.sh");
    write_executable(&broken, "#!/nonexistent/interpreter\n");
    // A job that runs long enough to be seen running (short jobs' executing
    // events are the subject of the test above).
    let ok = c.condor_submit_ok(
        &format!(
            "executable = /bin/sleep\narguments = 1\nlog = {}\nqueue\n",
            log.display()
        ),
        1,
    );
    let bad = c.condor_submit_ok(
        &format!(
            "executable = {}\nlog = {}\nqueue\n",
            broken.display(),
            log.display()
        ),
        1,
    );
    c.add_worker("w1", 1);
    c.wait_until(Duration::from_secs(30), "one completed, one held", |jobs| {
        jobs.iter()
            .any(|j| j.cluster == ok && j.status == COMPLETED)
            && jobs.iter().any(|j| j.cluster == bad && j.status == HELD)
    });
    let (okid, badid) = (format!("{ok}.0"), format!("{bad}.0"));
    let evs = wait_log(&c, &log, "both jobs' last events", |evs| {
        codes_of(evs, &okid).last().map(String::as_str) == Some("005")
            && codes_of(evs, &badid).last().map(String::as_str) == Some("012")
    });
    assert_eq!(codes_of(&evs, &okid), ["000", "001", "005"], "{evs:#?}");
    let bad_codes = codes_of(&evs, &badid);
    assert_eq!(
        bad_codes.first().map(String::as_str),
        Some("000"),
        "{evs:#?}"
    );
    assert_eq!(
        bad_codes.iter().filter(|c| *c == "012").count(),
        1,
        "one held event: {evs:#?}"
    );
    assert!(
        !bad_codes.iter().any(|c| c == "005"),
        "a job that never ran has no termination event: {evs:#?}"
    );
}
