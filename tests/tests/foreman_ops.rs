//! Site operations for foremen: `pilotq start-foremen`, `count-foremen`,
//! `stop-foremen`, with workers from `start-workers` spread over them; and
//! `pilotq up --foremen F --workers W`. Real processes on loopback.

use pilotq_tests::{
    alive, free_port, read_listen_line, run_with_timeout, wait_for, Cluster, MasterOpts, Out,
    COMPLETED,
};
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

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

/// A base port where base and base+1 are both free (a moment ago).
fn two_free_ports() -> u16 {
    for _ in 0..100 {
        let p = free_port();
        if p < u16::MAX && TcpListener::bind(("127.0.0.1", p + 1)).is_ok() {
            return p;
        }
    }
    panic!("no two consecutive free ports");
}

/// A work dir and drain file in the cluster's tempdir, and the WQ_*
/// environment pointing at its master. Whatever is left of the work dir's
/// processes is killed by the cluster's drop (their command lines name the
/// tempdir), supervisors and children alike.
struct Site {
    workdir: PathBuf,
    env: Vec<(String, String)>,
}

impl Site {
    fn new(c: &Cluster, base: u16) -> Site {
        let workdir = c.path("wq");
        let env = vec![
            ("WQ_MASTER".into(), c.addr()),
            ("WQ_FOREMEN".into(), "127.0.0.1".into()),
            ("WQ_NUM_FOREMEN".into(), "2".into()),
            ("WQ_MASTER_BASEPORT".into(), base.to_string()),
            ("WQ_WORKDIR".into(), workdir.display().to_string()),
            ("WQ_DRAIN".into(), c.path("drain").display().to_string()),
        ];
        Site { workdir, env }
    }

    fn command(&self, c: &Cluster, args: &[&str]) -> Command {
        let mut cmd = c.command();
        for v in WQ_VARS {
            cmd.env_remove(v);
        }
        cmd.env("HOME", &c.root)
            .envs(self.env.iter().cloned())
            .args(args);
        cmd
    }

    fn run_ok(&self, c: &Cluster, args: &[&str]) -> Out {
        let out = run_with_timeout(
            self.command(c, args),
            Duration::from_secs(60),
            &format!("pilotq {}", args.join(" ")),
        );
        if !out.ok() {
            panic!(
                "`pilotq {}` failed\n{out}\n{}",
                args.join(" "),
                self.diag(c)
            );
        }
        out
    }

    fn count(&self, c: &Cluster, what: &str) -> u32 {
        let out = self.run_ok(c, &[what]);
        out.stdout
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("{what} printed {:?}", out.stdout))
    }

    fn wait_count(&self, c: &Cluster, what: &str, n: u32, timeout: Duration) {
        wait_for(
            timeout,
            &format!("{what} == {n}"),
            || (self.count(c, what) == n).then_some(()),
            || self.diag(c),
        );
    }

    fn pid(&self, name: &str) -> Option<i32> {
        std::fs::read_to_string(self.workdir.join("pids").join(name))
            .ok()?
            .trim()
            .parse()
            .ok()
    }

    /// Live processes whose command line names the work dir.
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

    fn diag(&self, c: &Cluster) -> String {
        let mut s = format!("processes: {:#?}\n", self.processes());
        if let Ok(d) = std::fs::read_dir(self.workdir.join("logs")) {
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

#[test]
fn foremen_start_carry_workers_respawn_and_stop() {
    let c = Cluster::with_master(MasterOpts {
        fixed_port: true,
        ..MasterOpts::default()
    });
    let base = two_free_ports();
    let site = Site::new(&c, base);

    let out = site.run_ok(&c, &["start-foremen", "2", "--", "--heartbeat", "1"]);
    assert!(out.stdout.contains("started 2 foreman(s)"), "{out}");
    assert!(
        out.stdout.contains(&format!("on 127.0.0.1:{}", base + 1)),
        "{out}"
    );
    assert_eq!(site.count(&c, "count-foremen"), 2);
    assert!(site.workdir.join("foremen/0/journal").exists());

    site.run_ok(
        &c,
        &[
            "start-workers",
            "2",
            "--",
            "--cores",
            "1",
            "--heartbeat",
            "1",
        ],
    );
    assert_eq!(site.count(&c, "count-workers"), 2);
    // The master sees the two foremen, each carrying one worker's core.
    wait_for(
        Duration::from_secs(20),
        "2 holders with cores at the master",
        || {
            let s = c.status_json();
            (s["holders"] == 2 && s["cores"].as_u64().is_some_and(|n| n > 0)).then_some(())
        },
        || site.diag(&c),
    );

    c.submit(4, &[], &["/bin/sh", "-c", "sleep 0.5; echo hi"]);
    let jobs = c.wait_all_completed(Duration::from_secs(30));
    assert_eq!(jobs.len(), 4);
    assert!(jobs.iter().all(|j| j.status == COMPLETED), "{jobs:?}");

    // A foreman killed outright comes back.
    let old = site.pid("foreman-0.pid").expect("foreman 0's pid file");
    // SAFETY: a process of this test's work dir.
    unsafe { libc::kill(old, libc::SIGKILL) };
    wait_for(
        Duration::from_secs(15),
        "foreman 0 respawned",
        || {
            site.pid("foreman-0.pid")
                .filter(|p| *p != old && alive(*p))
                .map(|_| ())
        },
        || site.diag(&c),
    );
    site.wait_count(&c, "count-foremen", 2, Duration::from_secs(10));

    let out = site.run_ok(&c, &["stop-workers", "--grace", "5"]);
    assert!(out.stdout.contains("stopped 2 workers"), "{out}");
    let out = site.run_ok(&c, &["stop-foremen", "--grace", "5"]);
    assert!(out.stdout.contains("stopped 2 foremen"), "{out}");
    assert_eq!(site.count(&c, "count-workers"), 0);
    assert_eq!(site.count(&c, "count-foremen"), 0);
    std::thread::sleep(Duration::from_millis(300));
    let left = site.processes();
    assert!(left.is_empty(), "left running: {left:#?}");
    assert!(
        !c.path("drain").exists(),
        "stop-foremen left the drain file"
    );
}

#[test]
fn up_with_foremen_runs_jobs_and_stops_cleanly() {
    let mut c = Cluster::new();
    let port = free_port();
    let data = c.path("data");
    let mut cmd = c.command();
    cmd.arg("up")
        .arg("--data")
        .arg(&data)
        .args(["--listen", &format!("127.0.0.1:{port}")])
        .args([
            "--foremen",
            "2",
            "--workers",
            "2",
            "--cores-per-worker",
            "1",
        ]);
    let mut up = c.spawn("up", cmd);
    let line = read_listen_line(&mut up, "pilotq up: master at ");
    assert!(line.starts_with(&format!("127.0.0.1:{port}")), "{line}");
    c.others.push(up);
    c.set_master_port(port);
    // The master's holders are the two foremen.
    c.wait_holders(2, Duration::from_secs(30));

    c.submit(4, &[], &["/bin/sh", "-c", "sleep 0.5; echo hi"]);
    let jobs = c.wait_all_completed(Duration::from_secs(30));
    assert_eq!(jobs.len(), 4);
    assert!(jobs.iter().all(|j| j.status == COMPLETED), "{jobs:?}");
    let stdout = std::fs::read_to_string(&c.others[0].stdout_path).unwrap();
    assert!(stdout.contains("foreman 1 at 127.0.0.1:"), "{stdout}");

    let up = &mut c.others[0];
    up.signal(libc::SIGINT);
    let Some(status) = up.wait_exit(Duration::from_secs(30)) else {
        panic!("pilotq up did not stop within 30 s of SIGINT\n{}", c.diag());
    };
    assert_eq!(status.code(), Some(0), "{}", c.diag());
    std::thread::sleep(Duration::from_millis(300));
    let left = c.stray_pids();
    assert!(left.is_empty(), "left after `up` stopped: {left:?}");
    assert!(data.join("foreman-0").exists() && data.join("foreman-1").exists());
}
