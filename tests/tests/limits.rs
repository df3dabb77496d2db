//! Per-owner limits: an owner's live jobs stay under `--max-jobs-per-owner`
//! (HTCondor's MAX_JOBS_PER_OWNER); a submission beyond is refused whole
//! with one clear error, and finished jobs no longer count.

use pilotq_tests::{Cluster, MasterOpts};
use std::time::Duration;

#[test]
fn an_owner_beyond_its_live_job_limit_is_refused_until_its_jobs_finish() {
    let mut c = Cluster::with_master(MasterOpts {
        extra: vec!["--max-jobs-per-owner".into(), "10".into()],
        ..MasterOpts::default()
    });
    c.submit(8, &[], &["/bin/true"]);
    let out = c.run(&["submit", "--count", "3", "--", "/bin/true"]);
    assert!(!out.ok(), "an 11th live job was accepted:\n{out}");
    assert!(
        out.stderr.contains("--max-jobs-per-owner") && out.stderr.contains("10"),
        "says which limit: {out}"
    );
    assert_eq!(
        c.q_json().len(),
        8,
        "nothing of the refused submission applied"
    );
    c.submit(2, &[], &["/bin/true"]);
    // Finished jobs leave the queue and no longer count.
    c.add_worker("w1", 2);
    c.wait_all_completed(Duration::from_secs(30));
    c.submit(10, &[], &["/bin/true"]);
}

mod owners {
    use pilotq_tests::{raw_job_spec, Cluster, MasterOpts, RawConn, TRUE_SH};
    use pilotq_wire::{FromMaster, Selector, ToMaster};
    use std::time::Duration;

    const REPLY: Duration = Duration::from_secs(10);

    fn submit_as(c: &Cluster, owner: &str, count: u32) -> u64 {
        RawConn::client(&c.addr(), None)
            .submit(raw_job_spec(owner, "true.sh", TRUE_SH), count, TRUE_SH)
            .unwrap_or_else(|e| panic!("submission as {owner}: {e}"))
    }

    fn remove_as(c: &Cluster, owner: &str, selectors: Vec<Selector>) -> u64 {
        let mut conn = RawConn::client(&c.addr(), None);
        conn.send_msg(&ToMaster::Remove {
            selectors,
            owner: Some(owner.into()),
        })
        .unwrap();
        match conn.read_msg(REPLY) {
            Ok(FromMaster::Removed { jobs }) => jobs,
            other => panic!("removal as {owner}: {other:?}"),
        }
    }

    fn owners_in_queue(c: &Cluster) -> Vec<(u64, String)> {
        let mut v: Vec<(u64, String)> = c
            .q_json()
            .iter()
            .filter(|j| j["status"] == 1)
            .map(|j| {
                (
                    j["cluster"].as_u64().unwrap(),
                    j["owner"].as_str().unwrap().into(),
                )
            })
            .collect();
        v.dedup();
        v
    }

    /// Another owner's jobs survive `condor_rm -all` from a user who is not
    /// a super user; a super user's removes everyone's.
    #[test]
    fn rm_all_acts_on_the_requesting_owners_jobs_unless_a_super_user() {
        let c = Cluster::with_master(MasterOpts::default());
        let alice = submit_as(&c, "alice", 3);
        let bob = submit_as(&c, "bob", 2);
        // bob: -all, alice's cluster by id, and one of alice's jobs.
        assert_eq!(remove_as(&c, "bob", vec![Selector::All]), 2);
        assert_eq!(
            remove_as(
                &c,
                "bob",
                vec![Selector::Cluster(pilotq_wire::ClusterId(alice))]
            ),
            0
        );
        assert_eq!(
            remove_as(
                &c,
                "bob",
                vec![Selector::Job(pilotq_wire::JobId::new(alice, 1))]
            ),
            0
        );
        assert_eq!(owners_in_queue(&c), [(alice, "alice".to_string())]);
        assert!(c
            .q_json()
            .iter()
            .filter(|j| j["cluster"] == bob)
            .all(|j| j["status"] == 3));
        // No owner named: nothing.
        let mut conn = RawConn::client(&c.addr(), None);
        conn.send_msg(&ToMaster::Remove {
            selectors: vec![Selector::All],
            owner: None,
        })
        .unwrap();
        assert!(matches!(
            conn.read_msg(REPLY),
            Ok(FromMaster::Removed { jobs: 0 })
        ));
        // A super user (root, by default) removes everyone's.
        assert_eq!(remove_as(&c, "root", vec![Selector::All]), 3);
        assert!(owners_in_queue(&c).is_empty());
    }
}

/// A Dispatch frame stays under the frame limit even when it carries
/// executables: three clusters with 400 KB executables of their own go to
/// one worker whose frames are capped at 1 MiB (together they would not
/// fit in one frame, which used to break the connection until the jobs
/// were held). And an executable that can never go out with the job
/// wrapper is refused at submit.
#[test]
fn executables_are_sent_in_frames_the_worker_can_read() {
    let c = Cluster::with_master(MasterOpts {
        max_frame: Some(1 << 20),
        ..MasterOpts::default()
    });
    for i in 0..3 {
        let exe = c.path(&format!("big{i}.sh"));
        let padding = format!("# {}\n", "x".repeat(400_000));
        pilotq_tests::write_executable(&exe, &format!("#!/bin/sh\n{padding}echo big{i}\n"));
        c.submit(
            2,
            &["--output", &format!("out/big{i}.$(Process).out")],
            &[exe.to_str().unwrap()],
        );
    }
    let mut cmd = c.command();
    cmd.arg("worker")
        .args(["--master", &c.addr(), "--cores", "6", "--heartbeat", "1"])
        .arg("--workdir")
        .arg(c.path("workers/w1"))
        .args(["--name", "w1", "--max-frame", "1048576"]);
    let _w = c.spawn("worker-w1", cmd);
    let jobs = c.wait_all_completed(Duration::from_secs(60));
    assert_eq!(jobs.len(), 6);
    for j in &jobs {
        assert_eq!((j.exit_code, j.attempts), (Some(0), 1), "{:#}", j.raw);
    }
    for i in 0..3 {
        for p in 0..2 {
            let out = std::fs::read_to_string(c.path(&format!("out/big{i}.{p}.out"))).unwrap();
            assert_eq!(out, format!("big{i}\n"));
        }
    }
    // An executable that could never go out with the job wrapper in one
    // frame is refused at submit, with the reason (the submission itself
    // fits in a frame).
    let wrapper = c.path("wrapper.sh");
    pilotq_tests::write_executable(
        &wrapper,
        &format!("#!/bin/sh\n# {}\nexec \"$@\"\n", "w".repeat(600_000)),
    );
    let c2 = Cluster::with_master(MasterOpts {
        max_frame: Some(1 << 20),
        extra: vec!["--job-wrapper".into(), wrapper.display().to_string()],
        ..MasterOpts::default()
    });
    let big = c.path("big-500k.sh");
    pilotq_tests::write_executable(
        &big,
        &format!("#!/bin/sh\n# {}\ntrue\n", "b".repeat(500_000)),
    );
    let out = c2.run(&["submit", "--count", "1", "--", big.to_str().unwrap()]);
    assert!(!out.ok(), "{out}");
    assert!(out.stderr.contains("too large to send"), "{out}");
    // A small one still goes.
    c2.submit(1, &[], &["/bin/true"]);
}
