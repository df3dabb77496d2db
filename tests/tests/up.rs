//! `pilotq up`: a master and local workers in one command.

use pilotq_tests::{free_port, read_listen_line, Cluster, COMPLETED};
use std::time::Duration;

#[test]
fn up_runs_jobs_and_stops_cleanly_on_sigint() {
    let mut c = Cluster::new();
    let port = free_port();
    let data = c.path("data");
    let mut cmd = c.command();
    cmd.arg("up")
        .arg("--data")
        .arg(&data)
        .args(["--listen", &format!("127.0.0.1:{port}")])
        .args(["--workers", "2", "--cores-per-worker", "2"]);
    let mut up = c.spawn("up", cmd);
    let line = read_listen_line(&mut up, "pilotq up: master at ");
    assert!(
        line.starts_with(&format!("127.0.0.1:{port}, 2 worker(s) of 2 core(s)")),
        "{line}"
    );
    c.others.push(up);
    c.set_master_port(port);
    c.wait_holders(2, Duration::from_secs(30));

    let cl = c.submit(
        4,
        &["--output", "out/$(Cluster).$(Process).out"],
        &["/bin/sh", "-c", "sleep 1; echo up $0", "job"],
    );
    let jobs = c.wait_all_completed(Duration::from_secs(60));
    assert_eq!(jobs.len(), 4);
    for j in &jobs {
        assert_eq!(j.status, COMPLETED);
        assert_eq!((j.attempts, j.exit_code), (1, Some(0)), "{:#}", j.raw);
        let out = std::fs::read_to_string(c.path(&format!("out/{cl}.{}.out", j.proc))).unwrap();
        assert_eq!(out, "up job\n");
    }

    let up = &mut c.others[0];
    up.signal(libc::SIGINT);
    let status = up.wait_exit(Duration::from_secs(30));
    let Some(status) = status else {
        panic!("pilotq up did not stop within 30 s of SIGINT\n{}", c.diag());
    };
    assert_eq!(
        status.code(),
        Some(0),
        "pilotq up exit after SIGINT\n{}",
        c.diag()
    );
    let stdout = std::fs::read_to_string(&c.others[0].stdout_path).unwrap();
    assert!(stdout.contains("pilotq up: stopped"), "{stdout}");
    // Its master and workers are gone with it.
    std::thread::sleep(Duration::from_millis(300));
    let left = c.stray_pids();
    assert!(
        left.is_empty(),
        "processes left after `up` stopped: {left:?}"
    );

    let j = data.join("master").display().to_string();
    let v = c.run_ok(&["journal", "verify", "--journal", &j]);
    assert!(v.stdout.starts_with("ok:"), "{v}");
    assert!(
        v.stdout
            .contains("4 jobs (0 idle, 0 running, 0 held, 4 completed, 0 removed)"),
        "{v}"
    );
}
