//! `condor_rm`: the four forms and their messages; removed running jobs die
//! with everything they started; removed idle jobs never start.

use pilotq_tests::{alive, wait_for, Cluster, MasterOpts, COMPLETED, REMOVED, RUNNING};
use std::collections::BTreeSet;
use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

/// A job that starts a background `sleep` and writes "SHELL_PID SLEEP_PID"
/// to the file named by its argument once both run.
const JOB: &str =
    "#!/bin/sh\nsleep 300 &\necho \"$$ $!\" > \"$1.tmp\"\nmv \"$1.tmp\" \"$1\"\nwait\n";

fn pids(c: &Cluster, id: &str) -> Option<Vec<i32>> {
    let text = std::fs::read_to_string(c.path(&format!("pids/{id}"))).ok()?;
    let p: Vec<i32> = text
        .split_whitespace()
        .filter_map(|w| w.parse().ok())
        .collect();
    (p.len() == 2).then_some(p)
}

fn submit_sleepers(c: &Cluster, n: u32, extra: &str) -> u64 {
    let job = c.path("job.sh");
    let pids = c.path("pids");
    c.condor_submit_ok(
        &format!(
            "executable = {}\narguments = {}/$(Cluster).$(Process)\n{extra}queue {n}\n",
            job.display(),
            pids.display()
        ),
        n,
    )
}

/// Which of the 7 jobs are removed, checked every way a user would.
fn check_removed(
    c: &Cluster,
    all: &[String],
    removed: &BTreeSet<String>,
    pids_of: &dyn Fn(&str) -> Vec<i32>,
) {
    c.wait_until(
        Duration::from_secs(15),
        &format!("exactly {removed:?} removed, the rest running"),
        |jobs| {
            jobs.iter().all(|j| {
                let want = if removed.contains(&j.id) {
                    REMOVED
                } else {
                    RUNNING
                };
                j.status == want
            })
        },
    );
    // A removed job leaves the queue for the history store, as in
    // HTCondor's schedd: condor_history shows it as removed (JobStatus 3),
    // and condor_q shows only the others.
    let ids = |lines: Vec<String>| -> BTreeSet<String> {
        lines.into_iter().map(|l| l.replace(' ', ".")).collect()
    };
    let by_history = ids(c
        .run_condor_ok(
            "condor_history",
            &[
                "-constraint",
                "JobStatus == 3",
                "-af",
                "ClusterId",
                "ProcId",
            ],
        )
        .stdout
        .lines()
        .map(str::to_string)
        .collect());
    assert_eq!(&by_history, removed, "condor_history's removed jobs");
    let by_q = ids(c.condor_q_lines(&["-af", "ClusterId", "ProcId"]));
    let kept: BTreeSet<String> = all
        .iter()
        .filter(|id| !removed.contains(*id))
        .cloned()
        .collect();
    assert_eq!(by_q, kept, "condor_q lists exactly the jobs not removed");
    for id in all {
        let p = pids_of(id);
        if removed.contains(id) {
            wait_for(
                Duration::from_secs(15),
                &format!("the processes {p:?} of removed job {id} to be gone"),
                || p.iter().all(|&p| !alive(p)).then_some(()),
                || c.diag(),
            );
        } else {
            for pid in p {
                assert!(
                    alive(pid),
                    "process {pid} of job {id}, not removed, is gone\n{}",
                    c.diag()
                );
            }
        }
    }
}

#[test]
fn the_four_forms_remove_what_they_say_and_kill_it() {
    let mut c = Cluster::with_master(MasterOpts::default());
    let job = c.path("job.sh");
    std::fs::write(&job, JOB).unwrap();
    std::fs::set_permissions(&job, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::create_dir(c.path("pids")).unwrap();
    let a = submit_sleepers(&c, 2, "");
    let b = submit_sleepers(&c, 2, "");
    let p = submit_sleepers(&c, 2, "+Pilot = \"yes\"\n");
    let d = submit_sleepers(&c, 1, "+Pilot = \"no\"\n");
    c.add_worker("w1", 7);
    c.wait_until(Duration::from_secs(30), "all seven jobs running", |jobs| {
        jobs.len() == 7 && jobs.iter().all(|j| j.status == RUNNING)
    });
    let all: Vec<String> = [(a, 2), (b, 2), (p, 2), (d, 1)]
        .iter()
        .flat_map(|&(cl, n)| (0..n).map(move |i| format!("{cl}.{i}")))
        .collect();
    let known: std::collections::BTreeMap<String, Vec<i32>> = all
        .iter()
        .map(|id| {
            let p = wait_for(
                Duration::from_secs(20),
                &format!("job {id} to write its pids"),
                || pids(&c, id),
                || c.diag(),
            );
            (id.clone(), p)
        })
        .collect();
    let pids_of = |id: &str| known[id].clone();
    let mut removed = BTreeSet::new();

    let out = c.run_condor_ok("condor_rm", &[&format!("{a}.1")]);
    assert_eq!(
        out.stdout,
        format!("Job {a}.1 marked for removal\n"),
        "{out}"
    );
    removed.insert(format!("{a}.1"));
    check_removed(&c, &all, &removed, &pids_of);

    let out = c.run_condor_ok("condor_rm", &[&b.to_string()]);
    assert_eq!(
        out.stdout,
        format!("All jobs in cluster {b} have been marked for removal\n"),
        "{out}"
    );
    removed.extend([format!("{b}.0"), format!("{b}.1")]);
    check_removed(&c, &all, &removed, &pids_of);

    let out = c.run_condor_ok("condor_rm", &["-constraint", "Pilot == \"yes\""]);
    assert_eq!(
        out.stdout,
        "All jobs matching constraint (Pilot == \"yes\") have been marked for removal\n",
        "{out}"
    );
    removed.extend([format!("{p}.0"), format!("{p}.1")]);
    check_removed(&c, &all, &removed, &pids_of);

    let out = c.run_condor_ok("condor_rm", &["-all"]);
    assert_eq!(
        out.stdout, "All jobs have been marked for removal\n",
        "{out}"
    );
    removed.extend(all.iter().cloned());
    check_removed(&c, &all, &removed, &pids_of);
    wait_for(
        Duration::from_secs(15),
        "no job process left in the worker's dir",
        || c.job_pids().is_empty().then_some(()),
        || format!("still running: {:?}\n{}", c.job_pids(), c.diag()),
    );
}

#[test]
fn a_removed_idle_job_never_starts() {
    let mut c = Cluster::with_master(MasterOpts::default());
    let cl = c.condor_submit_ok(
        "executable = /bin/sh\narguments = \"-c 'echo ran'\"\noutput = out/$(Process).out\nqueue 2\n",
        2,
    );
    let out = c.run_condor_ok("condor_rm", &[&format!("{cl}.1")]);
    assert_eq!(
        out.stdout,
        format!("Job {cl}.1 marked for removal\n"),
        "{out}"
    );
    c.add_worker("w1", 2);
    c.wait_until(Duration::from_secs(30), "job .0 completed", |jobs| {
        jobs.iter().any(|j| j.proc == 0 && j.status == COMPLETED)
    });
    let j = c.job(&format!("{cl}.1"));
    assert_eq!((j.status, j.attempts), (REMOVED, 0), "{:#}", j.raw);
    // The removed job left the queue for the history store (as in
    // HTCondor's schedd): condor_history shows it, condor_q no longer does.
    let id1 = format!("{cl}.1");
    let out = c.run_condor_ok(
        "condor_history",
        &[&id1, "-af", "JobStatus", "NumJobStarts"],
    );
    assert_eq!(out.stdout, "3 0\n", "{out}");
    let out = c.run_condor_ok("condor_history", &[&id1]);
    let row = out
        .stdout
        .lines()
        .find(|l| l.split_whitespace().next() == Some(&id1))
        .unwrap_or_else(|| panic!("no row for {id1} in condor_history\n{out}"));
    assert!(
        row.split_whitespace().any(|w| w == "X"),
        "condor_history's ST of a removed job is X: {row:?}\n{out}"
    );
    assert_eq!(
        c.condor_q_lines(&[&id1, "-af", "JobStatus"]),
        Vec::<String>::new()
    );
    assert!(!c.path("out/1.out").exists(), "the removed job ran");
}

#[test]
fn removing_what_does_not_exist_or_without_a_master_fails() {
    let mut c = Cluster::with_master(MasterOpts::default());
    c.condor_submit_ok("executable = /bin/true\nqueue\n", 1);
    for args in [&["999"][..], &["999.0"][..]] {
        let out = c.run_condor("condor_rm", args, None);
        assert!(!out.ok(), "condor_rm {args:?} of nothing exited 0\n{out}");
        assert!(
            !out.stderr.trim().is_empty(),
            "condor_rm {args:?}: nothing on stderr\n{out}"
        );
        assert!(!out.stdout.contains("marked for removal"), "{out}");
    }
    assert_eq!(c.jobs()[0].status, pilotq_tests::IDLE);
    // Nothing listens on the master's port any more.
    c.kill_master();
    for args in [&["1"][..], &["-all"][..]] {
        let out = c.run_condor("condor_rm", args, None);
        assert!(
            !out.ok(),
            "condor_rm {args:?} with no master exited 0\n{out}"
        );
        assert!(
            !out.stderr.trim().is_empty(),
            "condor_rm {args:?}: nothing on stderr\n{out}"
        );
        assert!(!out.stdout.contains("marked for removal"), "{out}");
    }
}
