//! Blobs (executables, job wrappers) are collected once nothing kept needs
//! them: their jobs have all left the queue and retention has deleted the
//! events that name them. Never one a live job needs, including across a
//! master restart (the collection runs at every start, after the replay).

use pilotq_tests::{write_executable, Cluster, MasterOpts};
use sha2::{Digest, Sha256};
use std::time::Duration;

fn hash_of(path: &std::path::Path) -> String {
    hex::encode(Sha256::digest(std::fs::read(path).unwrap()))
}

#[test]
fn an_executable_nothing_needs_goes_and_a_live_jobs_stays_across_a_restart() {
    // Snapshots every few events and no age kept: old events are sealed
    // and retired quickly, so only the live table keeps a blob alive.
    let mut c = Cluster::with_master(MasterOpts {
        fixed_port: true,
        extra: ["--snapshot-every", "4", "--journal-keep-age", "0s"]
            .map(String::from)
            .to_vec(),
        ..MasterOpts::default()
    });
    let a = c.path("a.sh");
    let b = c.path("b.sh");
    write_executable(&a, "#!/bin/sh\necho from-a\n");
    write_executable(&b, "#!/bin/sh\necho from-b\n");
    let (ha, hb) = (hash_of(&a), hash_of(&b));

    // Cluster A runs and leaves the queue.
    let ca = c.submit(1, &["--output", "out/a.out"], &[a.to_str().unwrap()]);
    c.add_worker("w1", 1);
    c.wait_all_completed(Duration::from_secs(30));
    c.kill_worker("w1");
    // Cluster B waits, idle: no worker.
    let cb = c.submit(1, &["--output", "out/b.out"], &[b.to_str().unwrap()]);
    // Events enough for snapshots to seal and retire cluster A's.
    for _ in 0..12 {
        let cl = c.submit(1, &[], &[b.to_str().unwrap()]);
        c.run_ok(&["rm", &cl.to_string()]);
    }
    // A restart collects: A's executable goes, B's (live) stays.
    c.kill_master();
    c.restart_master();
    c.add_worker("w2", 1);
    let jobs = c.wait_until(Duration::from_secs(30), "cluster B completed", |jobs| {
        jobs.iter()
            .any(|j| j.cluster == cb && j.status == pilotq_tests::COMPLETED)
    });
    let jb = jobs.iter().find(|j| j.cluster == cb).unwrap();
    assert_eq!(jb.exit_code, Some(0), "{:#}", jb.raw);
    assert_eq!(
        std::fs::read_to_string(c.path("out/b.out")).unwrap(),
        "from-b\n",
        "B ran from its executable, fetched from the master by a fresh worker"
    );
    assert!(jobs.iter().any(|j| j.cluster == ca), "A is in history");
    c.stop_master();
    let store = pilotq_journal::Store::open_existing(&c.journal).unwrap();
    assert!(
        !store.has_blob(&ha).unwrap(),
        "A's executable, needed by nothing kept, was collected"
    );
    // B's cluster has left too by now, but the events naming it are recent:
    // still kept.
    assert!(store.has_blob(&hb).unwrap());
}
