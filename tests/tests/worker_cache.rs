//! The worker's executable cache is bounded (`--cache-size`). An executable
//! (or job wrapper) evicted while the worker stays connected is not sent
//! again by the master, which ships bytes once per connection: the worker
//! must fetch it, and the job must run, not be held.

use pilotq_tests::*;
use std::time::Duration;

#[test]
fn a_job_runs_after_its_executable_and_wrapper_were_evicted() {
    let mut c = Cluster::new();
    let wrapper = c.path("wrapper.sh");
    write_executable(&wrapper, "#!/bin/sh\necho wrapped >&2\nexec \"$@\"\n");
    c.opts.extra = vec!["--job-wrapper".into(), wrapper.display().to_string()];
    c.start_master();
    // A cache of one byte: whatever no job needs is evicted at once.
    let mut cmd = c.command();
    cmd.arg("worker")
        .args(["--master", &c.addr(), "--cores", "1", "--name", "w1"])
        .args(["--heartbeat", "1", "--cache-size", "1"])
        .arg("--workdir")
        .arg(c.path("workers/w1"));
    let proc = c.spawn("worker-w1", cmd);
    c.workers.push(Worker {
        proc,
        name: "w1".into(),
        cores: 1,
    });
    c.wait_holders(1, Duration::from_secs(30));
    let exe = c.path("job.sh");
    write_executable(&exe, "#!/bin/sh\necho ran-$1\n");
    let exe = exe.display().to_string();
    let out = c.path("out").display().to_string();

    let first = c.submit(
        1,
        &[
            "--output",
            &format!("{out}/first"),
            "--error",
            &format!("{out}/first.err"),
        ],
        &[&exe, "first"],
    );
    c.wait_all_completed(Duration::from_secs(60));
    assert_eq!(c.read_file("out/first"), "ran-first\n");
    // Both were evicted once the job was done.
    let cache = c.path("workers/w1/cache");
    wait_for(
        Duration::from_secs(10),
        "the executable and the wrapper evicted",
        || {
            let left = std::fs::read_dir(&cache).unwrap().count();
            (left == 0).then_some(())
        },
        || {
            format!(
                "cache still holds {:?}",
                std::fs::read_dir(&cache).unwrap().collect::<Vec<_>>()
            )
        },
    );

    // Same executable and wrapper, same connection: the master sends
    // neither again, and the worker fetches both.
    let second = c.submit(
        1,
        &[
            "--output",
            &format!("{out}/second"),
            "--error",
            &format!("{out}/second.err"),
        ],
        &[&exe, "second"],
    );
    assert_ne!(first, second);
    c.wait_all_completed(Duration::from_secs(60));
    assert_eq!(c.read_file("out/second"), "ran-second\n");
    assert_eq!(c.read_file("out/second.err"), "wrapped\n");
    let log = std::fs::read_to_string(c.path("logs/worker-w1.stderr")).unwrap();
    assert_eq!(
        log.matches("not in the cache (evicted): fetching it")
            .count(),
        2,
        "the worker should have fetched the executable and the wrapper:\n{log}"
    );
}
