//! Site operations: `pilotq start-workers N`, `count-workers`,
//! `stop-workers`, `drain`, driven through alien-workqueue's environment
//! variables against a real master. Workers here connect straight to the
//! master the scripts' way (`WQ_NUM_FOREMEN=1 WQ_FOREMEN=<host>
//! WQ_MASTER_BASEPORT=<port>`). What a worker does with the drain file,
//! `--single-task` and `--idle-timeout` is tested in `worker_modes.rs`;
//! here only the supervisors and the end states are.

use pilotq_tests::{alive, run_with_timeout, wait_for, Cluster, MasterOpts, Out, RUNNING};
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

/// The variables the ops commands read, cleared before each run so the
/// developer's own settings never leak in.
const WQ_VARS: &[&str] = &[
    "WQ_MASTER",
    "WQ_FOREMEN",
    "WQ_NUM_FOREMEN",
    "WQ_MASTER_BASEPORT",
    "WQ_WORKDIR",
    "WQ_DRAIN",
    "WQ_SINGLETASK",
    "WQ_IDLETIMEOUT",
    "WQ_NORESPAWN",
];

/// One test's site: a work dir and a drain file inside the cluster's
/// tempdir, and the environment that points `start-workers` at the master.
/// Dropped before the cluster, it kills every supervisor and worker of the
/// work dir, whatever state the test left them in.
struct Site {
    workdir: PathBuf,
    drain: PathBuf,
    env: Vec<(String, String)>,
}

impl Site {
    fn new(c: &Cluster, extra_env: &[(&str, &str)]) -> Site {
        let workdir = c.path("wq");
        let drain = c.path("drain");
        let port = c.addr().rsplit_once(':').unwrap().1.to_string();
        let mut env: Vec<(String, String)> = vec![
            ("WQ_MASTER".into(), c.addr()),
            ("WQ_NUM_FOREMEN".into(), "1".into()),
            ("WQ_FOREMEN".into(), "127.0.0.1".into()),
            ("WQ_MASTER_BASEPORT".into(), port),
            ("WQ_WORKDIR".into(), workdir.display().to_string()),
            ("WQ_DRAIN".into(), drain.display().to_string()),
        ];
        env.extend(
            extra_env
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string())),
        );
        Site {
            workdir,
            drain,
            env,
        }
    }

    fn command(&self, c: &Cluster, args: &[&str]) -> Command {
        let mut cmd = c.command();
        for v in WQ_VARS {
            cmd.env_remove(v);
        }
        // Defaults under ~ must never reach the real home.
        cmd.env("HOME", &c.root)
            .envs(self.env.iter().cloned())
            .args(args);
        cmd
    }

    fn run(&self, c: &Cluster, args: &[&str]) -> Out {
        run_with_timeout(
            self.command(c, args),
            Duration::from_secs(60),
            &format!("pilotq {}", args.join(" ")),
        )
    }

    fn run_ok(&self, c: &Cluster, args: &[&str]) -> Out {
        let out = self.run(c, args);
        if !out.ok() {
            panic!(
                "`pilotq {}` failed\n{out}\n{}",
                args.join(" "),
                self.diag(c)
            );
        }
        out
    }

    /// `start-workers N` with small workers: one core, 1 s heartbeats.
    fn start(&self, c: &Cluster, n: u32) -> Out {
        let n = n.to_string();
        self.run_ok(
            c,
            &[
                "start-workers",
                &n,
                "--",
                "--cores",
                "1",
                "--heartbeat",
                "1",
            ],
        )
    }

    fn count(&self, c: &Cluster) -> u32 {
        let out = self.run_ok(c, &["count-workers"]);
        out.stdout
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("count-workers printed {:?}", out.stdout))
    }

    fn wait_count(&self, c: &Cluster, n: u32, timeout: Duration) {
        wait_for(
            timeout,
            &format!("count-workers == {n}"),
            || (self.count(c) == n).then_some(()),
            || self.diag(c),
        );
    }

    fn pid_file(&self, name: &str) -> PathBuf {
        self.workdir.join("pids").join(name)
    }

    fn read_pid(&self, name: &str) -> Option<i32> {
        std::fs::read_to_string(self.pid_file(name))
            .ok()?
            .trim()
            .parse()
            .ok()
    }

    fn pid(&self, c: &Cluster, name: &str) -> i32 {
        self.read_pid(name).unwrap_or_else(|| {
            panic!(
                "no pid in {}\n{}",
                self.pid_file(name).display(),
                self.diag(c)
            )
        })
    }

    /// Live processes whose command line names the work dir: supervisors
    /// and workers.
    fn processes(&self) -> Vec<(i32, String)> {
        let needle = self.workdir.display().to_string();
        let mut found = Vec::new();
        for e in std::fs::read_dir("/proc").unwrap().flatten() {
            let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<i32>().ok()) else {
                continue;
            };
            let Ok(raw) = std::fs::read(format!("/proc/{pid}/cmdline")) else {
                continue;
            };
            let cmd = String::from_utf8_lossy(&raw).replace('\0', " ");
            if cmd.contains(&needle) && alive(pid) {
                found.push((pid, cmd));
            }
        }
        found
    }

    fn pid_files(&self) -> Vec<String> {
        std::fs::read_dir(self.workdir.join("pids"))
            .map(|d| {
                d.flatten()
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default()
    }

    fn diag(&self, c: &Cluster) -> String {
        let mut s = format!(
            "pid files: {:?}\nprocesses: {:#?}\n",
            self.pid_files(),
            self.processes()
        );
        let logs = self.workdir.join("logs");
        if let Ok(d) = std::fs::read_dir(&logs) {
            let mut paths: Vec<PathBuf> = d.flatten().map(|e| e.path()).collect();
            paths.sort();
            for p in paths {
                s.push_str(&format!(
                    "--- {} (last 20 lines) ---\n{}\n",
                    p.display(),
                    pilotq_tests::tail(&p, 20)
                ));
            }
        }
        s + &c.diag()
    }
}

impl Drop for Site {
    fn drop(&mut self) {
        // Supervisors first, so none respawns what is killed next.
        for _ in 0..20 {
            let procs = self.processes();
            if procs.is_empty() {
                return;
            }
            let (sups, rest): (Vec<_>, Vec<_>) = procs
                .iter()
                .partition(|(_, cmd)| cmd.contains(" supervise "));
            for (pid, _) in sups.iter().chain(rest.iter()) {
                // SAFETY: kill(2) on a process this test started (its command
                // line names the test's own tempdir).
                unsafe {
                    libc::kill(*pid, libc::SIGKILL);
                }
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// The session of `pid` (field 6 of /proc/PID/stat).
fn session(pid: i32) -> i32 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let after = stat.rsplit_once(')').unwrap().1;
    after.split_whitespace().nth(3).unwrap().parse().unwrap()
}

fn sigkill(pid: i32) {
    // SAFETY: kill(2) on a worker this test started.
    unsafe {
        libc::kill(pid, libc::SIGKILL);
    }
}

fn hostname() -> String {
    let mut buf = [0u8; 256];
    // SAFETY: the buffer is valid for its length.
    let rc = unsafe { libc::gethostname(buf.as_mut_ptr() as *mut libc::c_char, buf.len()) };
    assert_eq!(rc, 0);
    let end = buf.iter().position(|b| *b == 0).unwrap();
    String::from_utf8_lossy(&buf[..end]).into_owned()
}

fn assert_all_gone(site: &Site, c: &Cluster) {
    let procs = site.processes();
    assert!(
        procs.is_empty(),
        "processes left: {procs:#?}\n{}",
        site.diag(c)
    );
    let files = site.pid_files();
    assert!(
        files.iter().all(|f| !f.ends_with(".pid")),
        "pid files left: {files:?}"
    );
    let jobs: Vec<i32> = c
        .stray_pids()
        .into_iter()
        .filter(|p| {
            std::fs::read_link(format!("/proc/{p}/cwd")).is_ok_and(|d| d.starts_with(&site.workdir))
        })
        .collect();
    assert!(jobs.is_empty(), "job processes left: {jobs:?}");
}

#[test]
fn started_workers_run_jobs_are_respawned_when_killed_and_stop_cleanly() {
    let c = Cluster::with_master(MasterOpts::default());
    let site = Site::new(&c, &[]);

    // Two, then one more: ids 0, 1, then 2.
    let out = site.start(&c, 2);
    assert!(out.stdout.contains("started 2 worker(s)"), "{out}");
    let out = site.start(&c, 1);
    assert!(out.stdout.contains("started 1 worker(s)"), "{out}");
    assert!(out.stdout.contains("worker 2: pid "), "{out}");
    assert!(out.stdout.contains(&format!("→ {}", c.addr())), "{out}");
    assert_eq!(site.count(&c), 3, "{}", site.diag(&c));
    c.wait_holders(3, Duration::from_secs(20));

    // Detached: each supervisor leads its own session; each worker is its
    // supervisor's child, with the name and scratch dir of its id.
    let host = hostname();
    for id in 0..3 {
        let sup = site.pid(&c, &format!("worker-{id}.supervisor.pid"));
        let w = site.pid(&c, &format!("worker-{id}.pid"));
        assert_eq!(session(sup), sup, "supervisor {id} is not a session leader");
        let stat = std::fs::read_to_string(format!("/proc/{w}/stat")).unwrap();
        let ppid: i32 = stat
            .rsplit_once(')')
            .unwrap()
            .1
            .split_whitespace()
            .nth(1)
            .unwrap()
            .parse()
            .unwrap();
        assert_eq!(ppid, sup, "worker {id}'s parent");
        let cmd = std::fs::read(format!("/proc/{w}/cmdline")).unwrap();
        let cmd = String::from_utf8_lossy(&cmd).replace('\0', " ");
        let scratch = site.workdir.join("workers").join(id.to_string());
        for want in [
            format!(" worker --master {} ", c.addr()),
            format!(" --workdir {} ", scratch.display()),
            format!(" --name {host}-w{id} "),
            " --idle-timeout 100 ".to_string(),
            format!(" --drain-file {} ", site.drain.display()),
        ] {
            assert!(
                cmd.contains(&want),
                "worker {id} runs {cmd:?}, without {want:?}"
            );
        }
        assert!(!cmd.contains("--single-task"), "{cmd}");
    }

    c.submit(6, &[], &["/bin/sh", "-c", "echo ran"]);
    let jobs = c.wait_all_completed(Duration::from_secs(30));
    assert_eq!(jobs.len(), 6);
    assert!(jobs.iter().all(|j| j.exit_code == Some(0)), "{jobs:#?}");

    // A worker killed with SIGKILL comes back under the same id.
    let victim = site.pid(&c, "worker-1.pid");
    let sup1 = site.pid(&c, "worker-1.supervisor.pid");
    sigkill(victim);
    let killed = Instant::now();
    let respawned = wait_for(
        Duration::from_secs(10),
        "worker 1 respawned",
        || {
            site.read_pid("worker-1.pid")
                .filter(|p| *p != victim && alive(*p))
        },
        || site.diag(&c),
    );
    assert!(
        killed.elapsed() >= Duration::from_millis(900),
        "respawned after {:?}, before the 1 s backoff",
        killed.elapsed()
    );
    assert_ne!(respawned, victim);
    assert_eq!(
        site.pid(&c, "worker-1.supervisor.pid"),
        sup1,
        "the same supervisor"
    );
    site.wait_count(&c, 3, Duration::from_secs(5));
    c.wait_holders(3, Duration::from_secs(20));

    // An orphan: worker 2 without its supervisor (killed), still counted,
    // still stopped. And a busy worker: its job outlasts the grace period,
    // so it is terminated rather than drained.
    let sup2 = site.pid(&c, "worker-2.supervisor.pid");
    let w2 = site.pid(&c, "worker-2.pid");
    sigkill(sup2);
    wait_for(
        Duration::from_secs(5),
        "supervisor 2 gone",
        || (!alive(sup2)).then_some(()),
        || site.diag(&c),
    );
    assert!(alive(w2));
    assert_eq!(site.count(&c), 3);
    c.submit(1, &[], &["/bin/sleep", "60"]);
    c.wait_until(Duration::from_secs(20), "the long job running", |jobs| {
        jobs.iter().any(|j| j.status == RUNNING)
    });

    let stopping = Instant::now();
    let out = site.run_ok(&c, &["stop-workers", "--grace", "5"]);
    assert!(
        out.stdout
            .contains("stopped 3 workers (2 drained, 1 terminated)"),
        "{out}\n{}",
        site.diag(&c)
    );
    assert!(
        stopping.elapsed() >= Duration::from_secs(5),
        "the busy worker was not given its grace period"
    );
    assert_eq!(site.count(&c), 0);
    assert_all_gone(&site, &c);
    assert!(!site.drain.exists(), "stop-workers left its drain file");
    let scratch: Vec<_> = std::fs::read_dir(site.workdir.join("workers"))
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .collect();
    assert!(scratch.is_empty(), "scratch dirs left: {scratch:?}");
    // Nothing left to stop.
    let out = site.run_ok(&c, &["stop-workers", "--grace", "1"]);
    assert!(out.stdout.contains("no workers running"), "{out}");
}

#[test]
fn with_wq_norespawn_a_killed_worker_stays_dead() {
    let c = Cluster::with_master(MasterOpts::default());
    let site = Site::new(&c, &[("WQ_NORESPAWN", "1"), ("WQ_SINGLETASK", "1")]);
    site.start(&c, 2);
    assert_eq!(site.count(&c), 2, "{}", site.diag(&c));
    let w0 = site.pid(&c, "worker-0.pid");
    let cmd = String::from_utf8_lossy(&std::fs::read(format!("/proc/{w0}/cmdline")).unwrap())
        .replace('\0', " ");
    assert!(cmd.contains(" --single-task "), "WQ_SINGLETASK=1: {cmd}");
    let sup0 = site.pid(&c, "worker-0.supervisor.pid");
    sigkill(w0);
    // Its supervisor leaves too, and takes its pid files along.
    wait_for(
        Duration::from_secs(5),
        "supervisor 0 gone",
        || (!alive(sup0)).then_some(()),
        || site.diag(&c),
    );
    // Longer than the first respawn backoff.
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(site.count(&c), 1, "{}", site.diag(&c));
    let files = site.pid_files();
    assert!(
        !files.iter().any(|f| f.starts_with("worker-0.")),
        "{files:?}"
    );
    let out = site.run_ok(&c, &["stop-workers", "--grace", "1"]);
    assert!(out.stdout.contains("stopped 1 worker ("), "{out}");
    assert_all_gone(&site, &c);
}

#[test]
fn drain_file_on_and_off_and_start_refuses_while_draining() {
    let c = Cluster::with_master(MasterOpts::default());
    let site = Site::new(&c, &[]);
    assert_eq!(site.count(&c), 0, "no work dir yet: nothing runs");

    let out = site.run_ok(&c, &["drain"]);
    assert!(site.drain.exists());
    assert!(
        out.stdout.contains(&site.drain.display().to_string()),
        "{out}"
    );
    let out = site.run(&c, &["start-workers", "1"]);
    assert!(!out.ok(), "start-workers while draining must fail\n{out}");
    assert!(out.stderr.contains("drain"), "{out}");
    assert_eq!(site.count(&c), 0);

    let out = site.run_ok(&c, &["drain", "--off"]);
    assert!(!site.drain.exists());
    assert!(out.stdout.contains("removed"), "{out}");
    let out = site.run_ok(&c, &["drain", "--off"]);
    assert!(out.stdout.contains("no drain file"), "{out}");

    // A drain file that was there before stop-workers is still there after.
    site.start(&c, 1);
    assert_eq!(site.count(&c), 1);
    site.run_ok(&c, &["drain"]);
    let out = site.run_ok(&c, &["stop-workers", "--grace", "2"]);
    // The worker may have left on its own before stop-workers looked.
    assert!(
        out.stdout.contains("stopped 1 worker (") || out.stdout.contains("no workers running"),
        "{out}"
    );
    assert!(
        site.drain.exists(),
        "stop-workers removed a drain file it did not make"
    );
    assert_eq!(site.count(&c), 0);
    assert_all_gone(&site, &c);
}
