//! `pilotq up`: a master and local workers as child processes of this one,
//! data under one directory. Ctrl-C (or SIGTERM) stops the workers, then the
//! master, which stores a snapshot and flushes its journal.

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
    let addr = wait_for_listen(&mut master)?;
    let cores = a
        .cores_per_worker
        .unwrap_or_else(|| (machine::cores() / a.workers.max(1)).max(1));
    let mut workers: Vec<Child> = Vec::new();
    for i in 0..a.workers {
        let w = Command::new(&me)
            .arg("worker")
            .args(["--master", &addr])
            .args(["--cores", &cores.to_string()])
            .arg("--workdir")
            .arg(a.data.join(format!("worker-{i}")))
            .args([
                "--name",
                &format!("{}-w{i}", pilotq_actors::config::hostname()),
            ])
            .args(&secret_args)
            .spawn()
            .context("cannot start a worker")?;
        workers.push(w);
    }
    println!(
        "pilotq up: master at {addr}, {} worker(s) of {cores} core(s); data in {}",
        a.workers,
        a.data.display()
    );
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
        eprintln!("pilotq up: the master exited; stopping the workers");
    }
    for w in &workers {
        terminate(w);
    }
    for mut w in workers {
        let _ = w.wait();
    }
    terminate(&master);
    let status = master.wait()?;
    println!("pilotq up: stopped (master {status})");
    Ok(if sig.is_some() { 0 } else { 1 })
}

/// Reads the master's stdout until it says where it listens.
fn wait_for_listen(master: &mut Child) -> Result<String> {
    let out = master.stdout.take().context("master stdout")?;
    let mut lines = BufReader::new(out).lines();
    let deadline = Instant::now() + Duration::from_secs(120);
    while Instant::now() < deadline {
        match lines.next() {
            Some(Ok(l)) => {
                if let Some(addr) = l.strip_prefix("pilotq master listening on ") {
                    let addr = addr.trim().to_string();
                    // Keep draining its stdout so it never blocks on a full pipe.
                    std::thread::spawn(move || for _ in lines {});
                    return Ok(addr);
                }
            }
            _ => break,
        }
    }
    bail!("the master did not start (see its messages above)")
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
