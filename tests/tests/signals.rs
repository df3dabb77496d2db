//! SIGPIPE, process by process. Services (master, worker, foreman) ignore
//! it: they write their sockets with `writev`, which cannot ask for
//! MSG_NOSIGNAL, so with SIGPIPE at its default a write to a peer that had
//! just died killed the writer (a load simulation died with status 141 the
//! moment its master was SIGKILLed; a worker could die the same way, its
//! jobs with it). Jobs start with SIGPIPE at its default, as under any batch
//! system, and the short commands that print die quietly on a closed pipe
//! like other Unix tools.

use pilotq_tests::{Cluster, MasterOpts};
use std::time::Duration;

/// SIGPIPE's bit in the `SigIgn` mask of `/proc/<pid>/status` (signal 13).
const SIGPIPE_BIT: u64 = 1 << (libc::SIGPIPE - 1);

/// The set of signals `status` (a `/proc/<pid>/status` text) ignores.
fn ignored(status: &str) -> u64 {
    let line = status
        .lines()
        .find_map(|l| l.strip_prefix("SigIgn:"))
        .unwrap_or_else(|| panic!("no SigIgn line in {status}"));
    u64::from_str_radix(line.trim(), 16).expect("a hex mask")
}

fn ignores_sigpipe(pid: u32) -> bool {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("/proc status");
    ignored(&status) & SIGPIPE_BIT != 0
}

#[test]
fn services_ignore_sigpipe_and_their_jobs_do_not() {
    let mut c = Cluster::with_master(MasterOpts::default());
    let foreman_addr = c.start_foreman("f", 0, &[]).addr.clone();
    c.add_worker("w", 1);
    c.add_worker_to("wf", 1, &foreman_addr);
    // Two jobs report the signals they ignore, wherever they run.
    c.submit(
        2,
        &["--output", "out/$(Process).out"],
        &["/bin/grep", "SigIgn", "/proc/self/status"],
    );
    c.wait_all_completed(Duration::from_secs(60));
    for p in 0..2 {
        let out = std::fs::read_to_string(c.path(&format!("out/{p}.out"))).unwrap();
        assert_eq!(ignored(&out) & SIGPIPE_BIT, 0, "job {p}: {out}");
    }
    // Checked once they have run jobs: a process just spawned may not have
    // reached `main` yet.
    let master = c.master.as_ref().unwrap().proc.pid();
    assert!(ignores_sigpipe(master), "the master");
    for w in &c.workers {
        assert!(ignores_sigpipe(w.proc.pid()), "worker {}", w.name);
    }
    assert!(ignores_sigpipe(c.foremen[0].proc.pid()), "the foreman");
}

#[test]
fn a_listing_into_a_closed_pipe_ends_quietly() {
    let c = Cluster::with_master(MasterOpts::default());
    c.submit(2_000, &[], &["/bin/true"]);
    // The reader closes its end at once: `pilotq q` meets a closed pipe at
    // its first write and must die of it, not print an error about it.
    let out = std::process::Command::new("/bin/sh")
        .arg("-c")
        .arg(r#""$0" q 2>"$1" | (exec <&-; sleep 1)"#)
        .arg(pilotq_tests::bin())
        .arg(c.path("q.err"))
        .env("PILOTQ_MASTER", c.addr())
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let err = std::fs::read_to_string(c.path("q.err")).unwrap();
    assert_eq!(err, "", "pilotq q complained about the closed pipe");
}
