//! Captured output is capped, with a marker where it was cut, and a result
//! with a lot of output still reaches the master: it never exceeds a frame
//! (which would cut the connection, and the resent result with it, for ever).

use pilotq_tests::{Cluster, MasterOpts, Proc};
use std::time::Duration;

/// A worker with extra arguments, kept alive by the returned guard.
fn worker(c: &Cluster, name: &str, extra: &[&str]) -> Proc {
    let mut cmd = c.command();
    cmd.arg("worker")
        .args(["--master", &c.addr(), "--cores", "1", "--heartbeat", "1"])
        .arg("--workdir")
        .arg(c.path(&format!("workers/{name}")))
        .args(["--name", name])
        .args(extra);
    c.spawn(&format!("worker-{name}"), cmd)
}

#[test]
fn output_beyond_the_cap_is_cut_with_a_marker() {
    let c = Cluster::with_master(MasterOpts::default());
    let _w = worker(&c, "w1", &["--output-cap", "1000"]);
    c.submit(
        1,
        &["--output", "out.txt", "--error", "err.txt"],
        &[
            "/bin/sh",
            "-c",
            "head -c 5000 /dev/zero | tr '\\0' x; echo oops >&2",
        ],
    );
    let jobs = c.wait_all_completed(Duration::from_secs(30));
    assert_eq!(jobs[0].exit_code, Some(0), "{:#}", jobs[0].raw);
    let out = std::fs::read_to_string(c.path("out.txt")).unwrap();
    let (kept, marker) = out.split_at(1000);
    assert_eq!(kept, "x".repeat(1000));
    assert!(
        marker.contains("output cut here") && marker.contains("1000 bytes"),
        "marker: {marker:?}"
    );
    assert_eq!(
        std::fs::read_to_string(c.path("err.txt")).unwrap(),
        "oops\n"
    );
}

#[test]
fn a_result_larger_than_a_frame_is_capped_to_fit_and_delivered() {
    // Frames of 1 MiB on both sides: 3 MiB of stdout must be cut to what
    // fits, not wedge the worker's connection.
    let c = Cluster::with_master(MasterOpts {
        max_frame: Some(1 << 20),
        ..MasterOpts::default()
    });
    let _w = worker(&c, "w1", &["--max-frame", "1048576"]);
    c.submit(
        2,
        &["--output", "out.$(Process)"],
        &["/bin/sh", "-c", "head -c 3145728 /dev/zero | tr '\\0' y"],
    );
    let jobs = c.wait_all_completed(Duration::from_secs(60));
    for j in &jobs {
        assert_eq!((j.exit_code, j.attempts), (Some(0), 1), "{:#}", j.raw);
        let out = std::fs::read(c.path(&format!("out.{}", j.proc))).unwrap();
        assert!(out.len() < 1 << 20, "{} bytes kept", out.len());
        assert!(out.len() > 400_000, "{} bytes kept", out.len());
        let text = String::from_utf8_lossy(&out);
        assert!(text.starts_with("yyyy"));
        assert!(text.contains("output cut here"), "no marker");
    }
}
