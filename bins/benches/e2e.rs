//! End-to-end benchmarks with the real `pilotq` binary:
//! 1. a master whose journal holds 1,000,000 completed jobs: time from start
//!    to answering a client (after a clean shutdown, and after a crash);
//! 2. master memory with one cluster of 1,000,000 idle jobs, and with 10,000
//!    clusters of 100;
//! 3. real `/bin/true` jobs through 2 workers of 2 cores, end to end
//!    (`throughput`), and the same with an output and an error file per job
//!    (`throughput-files`), and plain TCP beside TLS in one run
//!    (`throughput-tls`);
//! 4. `pilotq q --json`, `--jsonl` and the table, and `condor_q -af` and
//!    `-nobatch`, over one cluster of 1,000,000 idle jobs, to /dev/null:
//!    wall time and the client's peak RSS (`query`).
//!
//! `cargo bench -p pilotq --bench e2e [-- restart|memory|throughput|throughput-tls|throughput-files|query]`

use pilotq_actors::Client;
use pilotq_journal::{snapshot, Event, Store, Table, Writer};
use pilotq_wire::{ClusterId, JobSpec, DEFAULT_MAX_FRAME};
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

mod common;

use common::{free_port, rss_mb, rt, Proc};

/// The binary under test: this build's, or `PILOTQ_BENCH_BIN` (another
/// build's, to compare two in the same run on the same machine).
fn bin() -> String {
    std::env::var("PILOTQ_BENCH_BIN").unwrap_or_else(|_| env!("CARGO_BIN_EXE_pilotq").into())
}

fn master(journal: &Path, addr: &str, extra: &[&str]) -> Proc {
    let mut c = Command::new(bin())
        .args(["master", "--listen", addr, "--journal"])
        .arg(journal)
        .args(extra)
        .env(
            "RUST_LOG",
            std::env::var("RUST_LOG").unwrap_or_else(|_| "warn".into()),
        )
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let out = c.stdout.take().unwrap();
    let mut line = String::new();
    BufReader::new(out).read_line(&mut line).unwrap();
    assert!(
        line.contains("listening on"),
        "master did not start: {line}"
    );
    Proc(c)
}

fn spec(exe: &[u8]) -> JobSpec {
    common::job_spec(exe, "/bin/true", &[])
}

/// Writes a journal of one cluster of `jobs` jobs, each dispatched, started
/// and completed, with a snapshot every 200,000 events as the master takes
/// them, and (if `clean`) a final one as a clean shutdown stores.
fn build_completed_journal(dir: &Path, jobs: u32, clean: bool) {
    let store = Store::open(dir).unwrap();
    let mut w = Writer::start(store, 1, 1024);
    let mut table = Table::new();
    let exe = std::fs::read("/bin/true").unwrap();
    let mut since = 0u64;
    let mut push = |w: &Writer, table: &mut Table, evs: Vec<Event>, blobs| {
        for e in &evs {
            table.apply(e);
        }
        since += evs.len() as u64;
        w.append(evs, blobs, Box::new(|r| r.map(|_| ()).expect("append")));
        if since >= 200_000 {
            since = 0;
            w.snapshot(snapshot::encode(table), Box::new(|_| {}));
        }
    };
    let s = spec(&exe);
    let hash = s.executable.clone();
    let submit = Event::ClusterSubmitted {
        cluster: ClusterId(1),
        count: jobs,
        spec: Box::new(s),
        at: 1,
    };
    push(&w, &mut table, vec![submit], vec![(hash, exe)]);
    for chunk in 0..jobs.div_ceil(1000) {
        let evs = common::finished_jobs(chunk * 1000..((chunk + 1) * 1000).min(jobs));
        push(&w, &mut table, evs, vec![]);
    }
    if clean {
        w.snapshot(snapshot::encode(&table), Box::new(|_| {}));
    }
    w.shutdown();
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let dest = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &dest);
        } else {
            std::fs::copy(e.path(), dest).unwrap();
        }
    }
}

fn restart() {
    println!("== restart: a journal holding 1,000,000 completed jobs");
    for clean in [true, false] {
        // PILOTQ_BENCH_KEEP=DIR keeps the (slow to build) journals there and
        // reuses them on the next run; a master writes to a copy.
        let keep = std::env::var_os("PILOTQ_BENCH_KEEP").map(std::path::PathBuf::from);
        let tmp = tempfile::tempdir().unwrap();
        let src = match &keep {
            Some(k) => k.join(if clean { "clean" } else { "crash" }),
            None => tmp.path().join("journal"),
        };
        let t0 = Instant::now();
        if !src.exists() {
            build_completed_journal(&src, 1_000_000, clean);
        }
        let built = t0.elapsed();
        let dir = tempfile::tempdir().unwrap();
        copy_dir(&src, dir.path());
        let port = free_port();
        let addr = format!("127.0.0.1:{port}");
        let t0 = Instant::now();
        let m = master(dir.path(), &addr, &[]);
        let status = rt().block_on(async {
            loop {
                if let Ok(mut c) = Client::connect(&addr, None, None, DEFAULT_MAX_FRAME).await {
                    if let Ok(s) = c.status().await {
                        return s;
                    }
                }
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        });
        let serving = t0.elapsed();
        assert_eq!(status.completed + status.history_completed, 1_000_000);
        let (rss, _) = rss_mb(m.0.id());
        println!(
            "{}: start to first answer {:.0} ms (journal built in {:.1} s; master RSS {:.0} MB)",
            if clean {
                "after clean shutdown (final snapshot)"
            } else {
                "after a crash (tail since last periodic snapshot)"
            },
            serving.as_secs_f64() * 1000.0,
            built.as_secs_f64(),
            rss
        );
    }
}

fn memory() {
    println!("== master memory, idle jobs (no workers)");
    let exe = std::fs::read("/bin/true").unwrap();
    for (clusters, per) in [(1u32, 1_000_000u32), (10_000, 100)] {
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let addr = format!("127.0.0.1:{port}");
        let m = master(dir.path(), &addr, &["--max-jobs-per-owner", "0"]);
        let (before, _) = rss_mb(m.0.id());
        let t0 = Instant::now();
        rt().block_on(async {
            let mut c = Client::connect(&addr, None, None, DEFAULT_MAX_FRAME)
                .await
                .unwrap();
            for _ in 0..clusters {
                c.submit(spec(&exe), per, exe.clone()).await.unwrap();
            }
            let s = c.status().await.unwrap();
            assert_eq!(s.idle, u64::from(clusters) * u64::from(per));
        });
        let took = t0.elapsed();
        std::thread::sleep(Duration::from_millis(300));
        let (rss, peak) = rss_mb(m.0.id());
        println!(
            "{clusters} cluster(s) of {per}: RSS {rss:.1} MB (peak {peak:.1} MB; empty master {before:.1} MB); submitted in {:.2} s",
            took.as_secs_f64()
        );
    }
}

/// `files`: every job has an output and an error file, so each completion
/// also costs two files put in place (synced, renamed, directory synced).
fn throughput_with(files: bool, tls: bool) {
    let what = if files {
        "with output and error files"
    } else {
        "without output files"
    };
    let link = if tls { "TLS" } else { "plain TCP" };
    println!("== /bin/true jobs through 2 workers of 2 cores, {what}, over {link}");
    let jobs: u32 = 20_000;
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let addr = format!("127.0.0.1:{port}");
    let pki =
        tls.then(|| pilotq_sim::certs::Pki::generate(&dir.path().join("tls"), "bench").unwrap());
    let (cert, key) = match &pki {
        Some(p) => (
            p.server_cert.display().to_string(),
            p.server_key.display().to_string(),
        ),
        None => (String::new(), String::new()),
    };
    let server_tls: Vec<&str> = if tls {
        vec!["--tls-cert", &cert, "--tls-key", &key]
    } else {
        vec![]
    };
    let m = master(&dir.path().join("master"), &addr, &server_tls);
    let workers: Vec<Proc> = (0..2)
        .map(|i| {
            let mut w = Command::new(bin());
            w.args([
                "worker",
                "--master",
                &addr,
                "--cores",
                "2",
                "--name",
                &format!("w{i}"),
                "--workdir",
            ])
            .arg(dir.path().join(format!("w{i}")))
            .env("RUST_LOG", "warn");
            if let Some(p) = &pki {
                w.arg("--tls-ca").arg(&p.ca);
            }
            Proc(w.spawn().unwrap())
        })
        .collect();
    let exe = std::fs::read("/bin/true").unwrap();
    let client_tls = pki
        .as_ref()
        .map(|p| pilotq_actors::tls::ClientTls::load(&p.ca, None).unwrap());
    rt().block_on(async {
        let mut c = Client::connect(&addr, None, client_tls.as_ref(), DEFAULT_MAX_FRAME)
            .await
            .unwrap();
        while c.status().await.unwrap().holders < 2 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let mut spec = spec(&exe);
        if files {
            let out = dir.path().join("out");
            spec.output = Some(out.join("o.$(Process)").display().to_string());
            spec.error = Some(out.join("e.$(Process)").display().to_string());
        }
        let t0 = Instant::now();
        c.submit(spec, jobs, exe.clone()).await.unwrap();
        loop {
            let s = c.status().await.unwrap();
            if s.completed + s.history_completed == u64::from(jobs) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let secs = t0.elapsed().as_secs_f64();
        println!("{jobs} jobs in {secs:.2} s -> {:.0} jobs/s end to end (submit to last completion durable)", f64::from(jobs) / secs);
    });
    let cpu = |pid: u32| {
        let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
        let f: Vec<&str> = s.rsplit_once(')').unwrap().1.split_whitespace().collect();
        let t = |i: usize| f[i].parse::<f64>().unwrap() / 100.0;
        (t(11) + t(12), t(13) + t(14))
    };
    let (mc, _) = cpu(m.0.id());
    println!("master CPU {mc:.2} s");
    for w in &workers {
        let (own, children) = cpu(w.0.id());
        println!("worker CPU {own:.2} s, its jobs {children:.2} s");
    }
}

/// Runs `PROGRAM ARGS` with stdout to /dev/null; its wall time and peak
/// RSS in MB (from `wait4`'s rusage: the kernel's high-water mark, so
/// nothing between two samples is missed).
// Reaped by `wait4`, which clippy cannot see.
#[allow(clippy::zombie_processes)]
fn client_run(program: &str, args: &[&str]) -> (Duration, f64) {
    let t0 = Instant::now();
    let child = Command::new(program)
        .args(args)
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let mut status = 0;
    // SAFETY: a zeroed rusage is valid, and `wait4` reaps only our child.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let pid = unsafe { libc::wait4(child.id() as i32, &mut status, 0, &mut usage) };
    let took = t0.elapsed();
    assert_eq!(pid, child.id() as i32, "wait4 failed");
    assert!(
        libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
        "{program} {args:?} failed: status {status}"
    );
    (took, usage.ru_maxrss as f64 / 1024.0)
}

fn query() {
    println!("== pilotq q over one cluster of 1,000,000 idle jobs, to /dev/null");
    let exe = std::fs::read("/bin/true").unwrap();
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let addr = format!("127.0.0.1:{port}");
    let m = master(dir.path(), &addr, &["--max-jobs-per-owner", "0"]);
    rt().block_on(async {
        let mut c = Client::connect(&addr, None, None, DEFAULT_MAX_FRAME)
            .await
            .unwrap();
        c.submit(spec(&exe), 1_000_000, exe.clone()).await.unwrap();
    });
    for (what, flags) in [
        ("--json", &["--json"][..]),
        ("--jsonl", &["--jsonl"][..]),
        ("table", &[][..]),
    ] {
        let mut args = vec!["q", "--master", &addr];
        args.extend_from_slice(flags);
        let (took, peak) = client_run(&bin(), &args);
        println!(
            "pilotq q {what}: {:.2} s, client peak RSS {peak:.1} MB",
            took.as_secs_f64()
        );
    }
    let condor_q = env!("CARGO_BIN_EXE_condor_q");
    for flags in [&["-af", "ClusterId", "ProcId"][..], &["-nobatch"][..]] {
        let mut args = vec!["-pool", &addr];
        args.extend_from_slice(flags);
        let (took, peak) = client_run(condor_q, &args);
        println!(
            "condor_q {}: {:.2} s, client peak RSS {peak:.1} MB",
            flags.join(" "),
            took.as_secs_f64()
        );
    }
    let (_, peak) = rss_mb(m.0.id());
    println!("master peak RSS {peak:.1} MB");
}

fn main() {
    let which: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    let want = |n: &str| which.is_empty() || which.iter().any(|w| w == n);
    if want("restart") {
        restart();
    }
    if want("memory") {
        memory();
    }
    if want("query") {
        query();
    }
    if want("throughput") {
        throughput_with(false, false);
    }
    // Plain and TLS in the same run, for their ratio (issue 7).
    if want("throughput-tls") {
        throughput_with(false, false);
        throughput_with(false, true);
    }
    // Apart, and last: its 40,000 files deleted at the end slow the next
    // runs' file creation on ext4 (see BENCHMARKS.md, issue 5).
    if want("throughput-files") {
        throughput_with(true, false);
    }
}
