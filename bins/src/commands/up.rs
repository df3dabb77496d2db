//! `pilotq up`: a master, optionally foremen (`--foremen F`), and local
//! workers as child processes of this one, data under one directory.
//! Foreman i keeps its journal in `<data>/foreman-<i>` and listens on a free
//! loopback port; workers are spread over the foremen round-robin, or
//! connect straight to the master when there are none. Ctrl-C (or SIGTERM)
//! drains: the workers take no new jobs and finish theirs, for up to
//! `--grace` seconds (a second Ctrl-C cuts it short); then the workers, the
//! foremen and the master (which stores a snapshot and flushes its journal)
//! are stopped with SIGTERM, in that order, waiting for each.

use crate::cli::UpArgs;
use crate::machine;
use anyhow::{bail, Context, Result};
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub fn run(a: UpArgs) -> Result<i32> {
    crate::logging::init("info");
    let me = std::env::current_exe().context("cannot find the pilotq executable")?;
    std::fs::create_dir_all(&a.data)
        .with_context(|| format!("cannot create {}", a.data.display()))?;
    let secret_args: Vec<String> = match &a.secret.password_file {
        Some(p) => vec!["--password-file".into(), p.display().to_string()],
        None => vec![],
    };
    let mut master = Command::new(&me)
        .arg("master")
        .args(["--listen", &a.listen])
        .arg("--journal")
        .arg(a.data.join("master"))
        .args(&secret_args)
        .stdout(Stdio::piped())
        .spawn()
        .context("cannot start the master")?;
    let addr = wait_for_listen(&mut master, "pilotq master listening on ")?;
    let host = pilotq_actors::config::hostname();
    let mut foremen: Vec<(Child, String)> = Vec::new();
    for i in 0..a.foremen {
        let f = Command::new(&me)
            .arg("foreman")
            .args(["--master", &addr])
            .args(["--listen", "127.0.0.1:0"])
            .arg("--journal")
            .arg(a.data.join(format!("foreman-{i}")))
            .args(["--name", &format!("{host}-f{i}")])
            .args(&secret_args)
            .stdout(Stdio::piped())
            .spawn();
        let started = f.context("cannot start a foreman").and_then(|mut f| {
            match wait_for_listen(&mut f, "pilotq foreman listening on ") {
                Ok(at) => Ok((f, at)),
                Err(e) => {
                    terminate(&f);
                    let _ = f.wait();
                    Err(e)
                }
            }
        });
        match started {
            Ok(f) => foremen.push(f),
            Err(e) => {
                let _ = stop_all(Vec::new(), foremen, master);
                return Err(e);
            }
        }
    }
    let cores = a
        .cores_per_worker
        .unwrap_or_else(|| (machine::cores() / a.workers.max(1)).max(1));
    // Workers drain while this file exists; one left by an earlier run would
    // stop them at once.
    let drain = a.data.join("drain");
    let _ = std::fs::remove_file(&drain);
    let mut workers: Vec<Child> = Vec::new();
    for i in 0..a.workers {
        let upstream = match foremen.len() {
            0 => addr.clone(),
            n => foremen[i as usize % n].1.clone(),
        };
        let w = Command::new(&me)
            .arg("worker")
            .args(["--master", &upstream])
            .args(["--cores", &cores.to_string()])
            .arg("--workdir")
            .arg(a.data.join(format!("worker-{i}")))
            .args(["--name", &format!("{host}-w{i}")])
            .arg("--drain-file")
            .arg(&drain)
            .args(&secret_args)
            .spawn();
        match w {
            Ok(w) => workers.push(w),
            Err(e) => {
                let _ = stop_all(workers, foremen, master);
                return Err(e).context("cannot start a worker");
            }
        }
    }
    println!(
        "pilotq up: master at {addr}, {} worker(s) of {cores} core(s); data in {}",
        a.workers,
        a.data.display()
    );
    for (i, (_, at)) in foremen.iter().enumerate() {
        println!(
            "  foreman {i} at {at}, journal {}",
            a.data.join(format!("foreman-{i}")).display()
        );
    }
    if !foremen.is_empty() {
        println!(
            "  workers spread over the {} foremen (worker i → foreman i mod {})",
            foremen.len(),
            foremen.len()
        );
    }
    println!("  export PILOTQ_MASTER={addr}   # then: pilotq submit -- /bin/echo hi; pilotq q");
    println!("Press Ctrl-C to stop.");
    let sys = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let sig = sys.block_on(async {
        tokio::select! {
            s = crate::signals::stop_requested() => Some(s),
            _ = watch_exit(master.id()) => None,
        }
    });
    if sig.is_none() {
        eprintln!("pilotq up: the master exited; stopping the foremen and workers");
    } else {
        drain_workers(&sys, &drain, &mut workers, a.grace);
    }
    let status = stop_all(workers, foremen, master);
    let _ = std::fs::remove_file(&drain);
    match status {
        Ok(s) => println!("pilotq up: stopped (master {s})"),
        Err(e) => println!("pilotq up: stopped (master: {e})"),
    }
    Ok(if sig.is_some() { 0 } else { 1 })
}

/// Lets the workers finish their jobs and exit on their own, for up to
/// `grace` seconds or until a second stop signal.
fn drain_workers(
    sys: &tokio::runtime::Runtime,
    drain: &std::path::Path,
    workers: &mut [Child],
    grace: f64,
) {
    if workers.is_empty() || std::fs::write(drain, b"").is_err() {
        return;
    }
    println!("pilotq up: draining: workers finish their jobs (up to {grace} s; Ctrl-C again to stop now)");
    sys.block_on(async {
        let deadline = tokio::time::Instant::now() + Duration::from_secs_f64(grace.max(0.0));
        let all_exited = async {
            loop {
                if workers
                    .iter_mut()
                    .all(|w| matches!(w.try_wait(), Ok(Some(_))))
                {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        };
        tokio::select! {
            _ = all_exited => {}
            _ = tokio::time::sleep_until(deadline) => {}
            _ = crate::signals::stop_requested() => {}
        }
    });
}

/// SIGTERM to the workers, then the foremen, then the master, waiting for
/// each group before the next; the master's exit status.
fn stop_all(
    workers: Vec<Child>,
    foremen: Vec<(Child, String)>,
    mut master: Child,
) -> std::io::Result<std::process::ExitStatus> {
    for w in &workers {
        terminate(w);
    }
    for mut w in workers {
        let _ = w.wait();
    }
    for (f, _) in &foremen {
        terminate(f);
    }
    for (mut f, _) in foremen {
        let _ = f.wait();
    }
    terminate(&master);
    master.wait()
}

/// Reads a child's stdout until it prints `prefix` and where it listens.
fn wait_for_listen(child: &mut Child, prefix: &str) -> Result<String> {
    let out = child.stdout.take().context("child stdout")?;
    let mut lines = BufReader::new(out).lines();
    let deadline = Instant::now() + Duration::from_secs(120);
    while Instant::now() < deadline {
        match lines.next() {
            Some(Ok(l)) => {
                if let Some(addr) = l.strip_prefix(prefix) {
                    let addr = addr.trim().to_string();
                    // Keep draining its stdout so it never blocks on a full pipe.
                    std::thread::spawn(move || for _ in lines {});
                    return Ok(addr);
                }
            }
            _ => break,
        }
    }
    bail!(
        "the {} did not start (see its messages above)",
        prefix.split_whitespace().nth(1).unwrap_or("process")
    )
}

async fn watch_exit(pid: u32) {
    loop {
        tokio::time::sleep(Duration::from_millis(500)).await;
        // SAFETY: kill with signal 0 only checks that the process exists.
        if unsafe { libc::kill(pid as i32, 0) } != 0 {
            return;
        }
        // A zombie still "exists": check its state.
        if let Ok(s) = std::fs::read_to_string(format!("/proc/{pid}/stat")) {
            if s.split_whitespace().nth(2) == Some("Z") {
                return;
            }
        }
    }
}

fn terminate(c: &Child) {
    // SAFETY: signalling our own child by pid.
    unsafe {
        libc::kill(c.id() as i32, libc::SIGTERM);
    }
}
