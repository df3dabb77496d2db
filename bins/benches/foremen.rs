//! Foremen at scale, with the real release binary:
//! 1. from the submission of 1,000 jobs that each sleep 60 s to all 1,000
//!    running, through 12 foremen (24 workers of 42 cores: cores are only
//!    numbers here, and sleeping jobs cost no CPU);
//! 2. a foreman's resident memory with 1,000 connected workers (simulated
//!    over loopback with the real handshake and registration).
//!
//! `cargo bench -p pilotq --bench foremen [-- running|memory]`

use futures::SinkExt;
use pilotq_actors::connect::connect;
use pilotq_actors::Client;
use pilotq_wire::{Resources, Role, ToMaster, DEFAULT_MAX_FRAME};
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

mod common;

use common::{free_port, rss_mb, rt, Proc};

const BIN: &str = env!("CARGO_BIN_EXE_pilotq");

/// Starts `pilotq ARGS` and waits for its "listening on" line.
fn daemon(args: &[&str]) -> (Proc, String) {
    let mut c = Command::new(BIN)
        .args(args)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(c.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let addr = line.rsplit(' ').next().unwrap().trim().to_string();
    assert!(
        line.contains("listening on"),
        "{args:?} did not start: {line}"
    );
    (Proc(c), addr)
}

fn running() {
    let dir = tempfile::tempdir().unwrap();
    let (_m, maddr) = daemon(&[
        "master",
        "--listen",
        "127.0.0.1:0",
        "--journal",
        &dir.path().join("m").display().to_string(),
    ]);
    let mut procs = Vec::new();
    let mut foremen = Vec::new();
    for i in 0..12 {
        let j = dir.path().join(format!("f{i}")).display().to_string();
        let (p, a) = daemon(&[
            "foreman",
            "--master",
            &maddr,
            "--listen",
            "127.0.0.1:0",
            "--journal",
            &j,
            "--name",
            &format!("f{i}"),
        ]);
        procs.push(p);
        foremen.push(a);
    }
    for i in 0..24 {
        let w = dir.path().join(format!("w{i}")).display().to_string();
        let c = Command::new(BIN)
            .args([
                "worker",
                "--master",
                &foremen[i % 12],
                "--cores",
                "42",
                "--workdir",
                &w,
                "--name",
                &format!("w{i}"),
            ])
            .env("RUST_LOG", "warn")
            .spawn()
            .unwrap();
        procs.push(Proc(c));
    }
    let exe = std::fs::read("/bin/sleep").unwrap();
    let spec = common::job_spec(&exe, "/bin/sleep", &["60"]);
    rt().block_on(async {
        let mut c = Client::connect(&maddr, None, None, DEFAULT_MAX_FRAME).await.unwrap();
        // Every foreman registered with all its workers' cores.
        let t = Instant::now();
        while c.status().await.unwrap().cores < 24 * 42 {
            assert!(t.elapsed() < Duration::from_secs(60), "workers and foremen did not all come up");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let t0 = Instant::now();
        c.submit(spec, 1000, exe).await.unwrap();
        loop {
            let s = c.status().await.unwrap();
            if s.running == 1000 {
                break;
            }
            assert!(t0.elapsed() < Duration::from_secs(120), "stuck at {} running", s.running);
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        println!(
            "1,000 jobs of `sleep 60` through 12 foremen and 24 workers: all running {:.2} s after the submission",
            t0.elapsed().as_secs_f64()
        );
        c.remove(vec![pilotq_wire::Selector::All]).await.unwrap();
    });
    // Give the removals a moment to kill the sleeps before everything stops.
    std::thread::sleep(Duration::from_secs(2));
}

fn memory() {
    let dir = tempfile::tempdir().unwrap();
    let (_m, maddr) = daemon(&[
        "master",
        "--listen",
        "127.0.0.1:0",
        "--journal",
        &dir.path().join("m").display().to_string(),
    ]);
    let j = dir.path().join("f").display().to_string();
    let (f, faddr) = daemon(&[
        "foreman",
        "--master",
        &maddr,
        "--listen",
        "127.0.0.1:0",
        "--journal",
        &j,
        "--name",
        "f",
    ]);
    let before = rss_mb(f.0.id()).0;
    let _ = free_port();
    rt().block_on(async {
        let mut links = Vec::new();
        for i in 0..1000 {
            let mut l = connect(&faddr, Role::Worker, &format!("sim-{i}"), None, None, DEFAULT_MAX_FRAME, Duration::from_secs(20))
                .await
                .unwrap();
            l.send(ToMaster::Register { resources: Resources::new(1, 1000, 1000), holdings: vec![], depth: 2, max_jobs: 0, tags: vec![], token: vec![] })
                .await
                .unwrap();
            links.push(l);
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
        let mut c = Client::connect(&maddr, None, None, DEFAULT_MAX_FRAME).await.unwrap();
        let s = c.status().await.unwrap();
        println!(
            "a foreman with 1,000 connected workers: RSS {:.1} MB (with none: {:.1} MB); the master sees it offer {} cores",
            rss_mb(f.0.id()).0,
            before,
            s.cores
        );
        drop(links);
    });
}

fn main() {
    let which: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    let want = |n: &str| which.is_empty() || which.iter().any(|w| w == n);
    if want("running") {
        running();
    }
    if want("memory") {
        memory();
    }
}
