//! The HTCondor face's speed, with the real release binaries:
//! 1. `condor_submit` of a 100,000-job cluster, process start to exit;
//! 2. a single-job `condor_submit`, process start to durable (its exit), p50
//!    and p99 over 200 runs;
//! 3. `condor_q` over 100,000 jobs: default view, `-totals`, and the sites'
//!    counting idiom (`-constraint 'JobStatus == 1' -format '%d\n' ClusterId`).
//!
//! `cargo bench -p pilotq --bench condor`

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

mod common;

use common::Proc;

const PILOTQ: &str = env!("CARGO_BIN_EXE_pilotq");
const SUBMIT: &str = env!("CARGO_BIN_EXE_condor_submit");
const Q: &str = env!("CARGO_BIN_EXE_condor_q");

fn run(bin: &str, args: &[&str], addr: &str, dir: &std::path::Path) -> (Duration, usize) {
    let t0 = Instant::now();
    let out = Command::new(bin)
        .args(args)
        .env("PILOTQ_MASTER", addr)
        .current_dir(dir)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let took = t0.elapsed();
    assert!(
        out.status.success(),
        "{bin} {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    (took, out.stdout.len())
}

fn percentile(v: &mut [Duration], p: f64) -> Duration {
    v.sort();
    v[((v.len() as f64 - 1.0) * p).round() as usize]
}

fn main() {
    let dir = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let addr = format!("127.0.0.1:{port}");
    let mut m = Command::new(PILOTQ)
        .args(["master", "--listen", &addr, "--journal"])
        .arg(dir.path().join("journal"))
        // A 100,000-job cluster plus the single-job submissions after it.
        .args(["--max-jobs-per-owner", "0"])
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(m.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let _master = Proc(m);
    std::fs::write(
        dir.path().join("one.sub"),
        "executable = /bin/true\nqueue\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("big.sub"),
        "executable = /bin/true\narguments = $(Process)\nqueue 100000\n",
    )
    .unwrap();

    println!("== condor_submit");
    let mut singles: Vec<Duration> = (0..200)
        .map(|_| run(SUBMIT, &["one.sub"], &addr, dir.path()).0)
        .collect();
    println!(
        "single job, process start to exit (durable): p50 {:.1} ms, p99 {:.1} ms over 200",
        percentile(&mut singles, 0.5).as_secs_f64() * 1e3,
        percentile(&mut singles, 0.99).as_secs_f64() * 1e3
    );
    let (t, _) = run(SUBMIT, &["big.sub"], &addr, dir.path());
    println!("queue 100000: {:.0} ms", t.as_secs_f64() * 1e3);

    println!("== condor_q over 100,200 jobs (no workers: all idle)");
    for args in [
        &["-totals"][..],
        &[
            "-constraint",
            "JobStatus == 1",
            "-format",
            "%d\n",
            "ClusterId",
        ][..],
        &["-nobatch"][..],
        &[][..],
    ] {
        let mut times: Vec<Duration> = Vec::new();
        let mut bytes = 0;
        for _ in 0..5 {
            let (t, b) = run(Q, args, &addr, dir.path());
            times.push(t);
            bytes = b;
        }
        println!(
            "condor_q {:?}: p50 {:.0} ms ({} bytes of output)",
            args.join(" "),
            percentile(&mut times, 0.5).as_secs_f64() * 1e3,
            bytes
        );
    }
    for round in 2..=3 {
        let (t, _) = run(SUBMIT, &["big.sub"], &addr, dir.path());
        println!(
            "queue 100000 again (round {round}): {:.0} ms",
            t.as_secs_f64() * 1e3
        );
    }
}
