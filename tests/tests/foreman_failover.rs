//! A foreman SIGKILLed: its workers fail over to another foreman with their
//! jobs. The new foreman adopts them from the workers' holdings, the master
//! moves each attempt to it, and every job completes once, with its first
//! attempt.

use pilotq_tests::{free_port, Cluster, MasterOpts, COMPLETED, RUNNING};
use std::time::Duration;

#[test]
fn workers_fail_over_to_another_foreman_with_their_jobs() {
    // A lease long enough that nothing is requeued while the workers move.
    let mut c = Cluster::with_master(MasterOpts {
        lease: 30.0,
        heartbeat: 1.0,
        ..MasterOpts::default()
    });
    let (p1, p2) = (free_port(), free_port());
    c.start_foreman("f1", p1, &[]);
    c.start_foreman("f2", p2, &[]);
    // Both workers know both foremen; f1 first.
    let upstreams = format!("127.0.0.1:{p1},127.0.0.1:{p2}");
    c.add_worker_to("w1", 2, &upstreams);
    c.add_worker_to("w2", 2, &upstreams);
    c.wait_holders(2, Duration::from_secs(20));
    let runs = c.path("runs.log");
    let script = format!(
        "echo \"start $(Cluster).$(Process)\" >> {r}; sleep 4; echo \"done $(Cluster).$(Process)\"; \
         echo \"end $(Cluster).$(Process)\" >> {r}",
        r = runs.display()
    );
    let cl = c.submit(
        4,
        &["--output", "out/$(Cluster).$(Process).out"],
        &["/bin/sh", "-c", &script],
    );
    c.wait_until(
        Duration::from_secs(20),
        "four jobs running through f1",
        |jobs| {
            jobs.iter()
                .filter(|j| j.status == RUNNING && j.holder.as_deref() == Some("f1"))
                .count()
                == 4
        },
    );
    c.kill_foreman("f1");
    let jobs = c.wait_all_completed(Duration::from_secs(40));
    assert_eq!(jobs.len(), 4);
    for j in &jobs {
        assert_eq!(
            (j.status, j.attempts, j.exit_code),
            (COMPLETED, 1, Some(0)),
            "{:#}\n{}",
            j.raw,
            c.diag()
        );
        let out = std::fs::read_to_string(c.path(&format!("out/{cl}.{}.out", j.proc))).unwrap();
        assert_eq!(out, format!("done {cl}.{}\n", j.proc));
    }
    // Each job's process ran once: the move did not start it again.
    let log = std::fs::read_to_string(&runs).unwrap();
    for p in 0..4 {
        for what in ["start", "end"] {
            let n = log
                .lines()
                .filter(|l| *l == format!("{what} {cl}.{p}"))
                .count();
            assert_eq!(n, 1, "{what} {cl}.{p} logged {n} times:\n{log}");
        }
    }
}
