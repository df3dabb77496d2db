//! Where the ops commands' settings come from: a flag, else alien-workqueue's
//! environment variable, else its default (as the scripts have them). An empty
//! variable counts as unset, as `${WQ_X:-default}` does in the scripts.
//!
//! | setting | flag | variable | default |
//! |---|---|---|---|
//! | master | `--master` | `WQ_MASTER`, then `PILOTQ_MASTER` | `127.0.0.1:9094` |
//! | foremen's host | `--foremen` | `WQ_FOREMEN` | `127.0.0.1` |
//! | number of foremen | `--num-foremen` | `WQ_NUM_FOREMEN` | 2 |
//! | first foreman port | `--baseport` | `WQ_MASTER_BASEPORT` | 9080 |
//! | work dir | `--workdir` | `WQ_WORKDIR` | `~/.alien_wq_tmp` |
//! | drain file | `--drain-file` | `WQ_DRAIN` | `~/.alien_wq_drain` |
//! | one job per worker | `--single-task` | `WQ_SINGLETASK` | 0 |
//! | idle timeout (s) | `--idle-timeout` | `WQ_IDLETIMEOUT` | 100 |
//! | no respawn | `--no-respawn` | `WQ_NORESPAWN` | 0 |
//!
//! Worker `i` connects to foreman `i mod N`, at `WQ_FOREMEN:WQ_MASTER_BASEPORT+(i mod N)`;
//! workers without foremen are pointed at the master the way the scripts
//! did it (`WQ_NUM_FOREMEN=1 WQ_FOREMEN=master_host WQ_MASTER_BASEPORT=9094`),
//! or, new here, with `WQ_NUM_FOREMEN=0` (then `WQ_MASTER` is used);
//! `--upstream HOST:PORT` overrides all of it.

use anyhow::{bail, Context, Result};
use clap::Args;
use std::path::{Path, PathBuf};

pub const DEFAULT_MASTER: &str = crate::client_opts::DEFAULT_MASTER;
pub const DEFAULT_FOREMEN: &str = "127.0.0.1";
pub const DEFAULT_NUM_FOREMEN: u32 = 2;
pub const DEFAULT_BASEPORT: u16 = 9080;
pub const DEFAULT_WORKDIR: &str = "~/.alien_wq_tmp";
pub const DEFAULT_DRAIN: &str = "~/.alien_wq_drain";
pub const DEFAULT_IDLE_TIMEOUT: u64 = 100;

type Lookup = Box<dyn Fn(&str) -> Option<String>>;

/// What the resolvers read from the process: variables, `HOME` (for `~`),
/// the current directory (relative paths are made absolute, because the
/// supervisors run elsewhere).
pub struct Env {
    vars: Lookup,
    home: Option<PathBuf>,
    cwd: PathBuf,
}

impl Env {
    /// This process's environment.
    pub fn process() -> Result<Env> {
        Ok(Env {
            vars: Box::new(|k| std::env::var(k).ok()),
            home: std::env::var_os("HOME")
                .filter(|h| !h.is_empty())
                .map(PathBuf::from),
            cwd: std::env::current_dir().context("cannot read the current directory")?,
        })
    }

    /// A made-up environment, for tests.
    pub fn fixed(vars: &[(&str, &str)], home: Option<&str>, cwd: &str) -> Env {
        let vars: Vec<(String, String)> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Env {
            vars: Box::new(move |k| vars.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone())),
            home: home.map(PathBuf::from),
            cwd: PathBuf::from(cwd),
        }
    }

    /// A variable, trimmed; empty is unset.
    pub fn var(&self, name: &str) -> Option<String> {
        (self.vars)(name)
            .map(|v| v.trim().to_string())
            .filter(|v| !v.is_empty())
    }

    /// `~` and `~/…` expanded, then made absolute against the current
    /// directory.
    pub fn path(&self, p: &Path, what: &str) -> Result<PathBuf> {
        let expanded = match p.strip_prefix("~") {
            Ok(rest) => match &self.home {
                Some(h) if rest.as_os_str().is_empty() => h.clone(),
                Some(h) => h.join(rest),
                None => bail!("{what} {} starts with ~ but HOME is not set", p.display()),
            },
            Err(_) => p.to_path_buf(),
        };
        Ok(self.cwd.join(expanded))
    }

    /// `flag`, else `$var`, else `default`, as an absolute path.
    fn path_setting(&self, flag: Option<&Path>, var: &str, default: &str) -> Result<PathBuf> {
        let p = match (flag, self.var(var)) {
            (Some(f), _) => f.to_path_buf(),
            (None, Some(v)) => PathBuf::from(v),
            (None, None) => PathBuf::from(default),
        };
        self.path(&p, var)
    }

    /// A count or number from `flag`, else `$var`, else `default`.
    fn number<T: std::str::FromStr>(&self, flag: Option<T>, var: &str, default: T) -> Result<T> {
        match (flag, self.var(var)) {
            (Some(f), _) => Ok(f),
            (None, Some(v)) => v
                .parse()
                .map_err(|_| anyhow::anyhow!("{var}={v:?} is not a valid number")),
            (None, None) => Ok(default),
        }
    }

    /// A switch from `flag`, else `$var` (1/0, true/false, yes/no, on/off),
    /// else off.
    fn switch(&self, flag: Option<bool>, var: &str) -> Result<bool> {
        if let Some(f) = flag {
            return Ok(f);
        }
        match self.var(var).map(|v| v.to_ascii_lowercase()).as_deref() {
            None | Some("0" | "false" | "no" | "off") => Ok(false),
            Some("1" | "true" | "yes" | "on") => Ok(true),
            Some(v) => bail!("{var}={v:?}: expected 1 or 0"),
        }
    }
}

/// The work dir: pid files, logs and the scratch dirs.
#[derive(Debug, Clone, Default, Args)]
pub struct WorkdirOpt {
    /// Work dir: pid files, logs, scratch dirs; created on demand
    /// [env: WQ_WORKDIR] [default: ~/.alien_wq_tmp]
    #[arg(long, value_name = "DIR")]
    pub workdir: Option<PathBuf>,
}

impl WorkdirOpt {
    pub fn resolve(&self, env: &Env) -> Result<PathBuf> {
        env.path_setting(self.workdir.as_deref(), "WQ_WORKDIR", DEFAULT_WORKDIR)
    }
}

/// The drain file.
#[derive(Debug, Clone, Default, Args)]
pub struct DrainOpt {
    /// While this file exists, workers finish their current jobs and exit,
    /// and are not respawned [env: WQ_DRAIN] [default: ~/.alien_wq_drain]
    #[arg(long, value_name = "PATH")]
    pub drain_file: Option<PathBuf>,
}

impl DrainOpt {
    pub fn resolve(&self, env: &Env) -> Result<PathBuf> {
        env.path_setting(self.drain_file.as_deref(), "WQ_DRAIN", DEFAULT_DRAIN)
    }
}

/// Where the processes started here connect.
#[derive(Debug, Clone, Default, Args)]
pub struct UpstreamOpts {
    /// The master's HOST:PORT; workers use it only with --num-foremen 0
    /// [env: WQ_MASTER, else PILOTQ_MASTER] [default: 127.0.0.1:9094]
    #[arg(long, value_name = "HOST:PORT")]
    pub master: Option<String>,
    /// Host of the foremen, which workers connect to [env: WQ_FOREMEN]
    /// [default: 127.0.0.1]
    #[arg(long, value_name = "HOST")]
    pub foremen: Option<String>,
    /// Number of foremen: worker i connects to foreman i mod N; 0 connects
    /// workers straight to the master [env: WQ_NUM_FOREMEN] [default: 2]
    #[arg(long, value_name = "N")]
    pub num_foremen: Option<u32>,
    /// First foreman port: foreman i listens on PORT+i
    /// [env: WQ_MASTER_BASEPORT] [default: 9080]
    #[arg(long, value_name = "PORT")]
    pub baseport: Option<u16>,
    /// Connect every worker to HOST:PORT, whatever the settings above say.
    #[arg(long, value_name = "HOST:PORT")]
    pub upstream: Option<String>,
}

/// The master and foremen as the settings describe them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Upstreams {
    pub master: String,
    pub foremen: String,
    pub num_foremen: u32,
    pub baseport: u16,
    pub fixed: Option<String>,
}

impl UpstreamOpts {
    pub fn resolve(&self, env: &Env) -> Result<Upstreams> {
        let master = match &self.master {
            Some(m) => m.clone(),
            None => env
                .var("WQ_MASTER")
                .or_else(|| env.var("PILOTQ_MASTER"))
                .unwrap_or_else(|| DEFAULT_MASTER.to_string()),
        };
        check_host_port(&master, "the master (--master, WQ_MASTER)")?;
        let foremen = match &self.foremen {
            Some(f) => f.clone(),
            None => env
                .var("WQ_FOREMEN")
                .unwrap_or_else(|| DEFAULT_FOREMEN.to_string()),
        };
        if foremen.trim().is_empty() {
            bail!("the foremen's host (--foremen, WQ_FOREMEN) is empty");
        }
        let num_foremen = env.number(self.num_foremen, "WQ_NUM_FOREMEN", DEFAULT_NUM_FOREMEN)?;
        let baseport = env.number(self.baseport, "WQ_MASTER_BASEPORT", DEFAULT_BASEPORT)?;
        if num_foremen > 0 && u32::from(baseport) + num_foremen - 1 > u32::from(u16::MAX) {
            bail!("{num_foremen} foremen from port {baseport} run past port 65535");
        }
        if let Some(u) = &self.upstream {
            check_host_port(u, "--upstream")?;
        }
        Ok(Upstreams {
            master,
            foremen,
            num_foremen,
            baseport,
            fixed: self.upstream.clone(),
        })
    }
}

impl Upstreams {
    /// Where worker `id` connects.
    pub fn for_worker(&self, id: u32) -> String {
        if let Some(u) = &self.fixed {
            return u.clone();
        }
        if self.num_foremen == 0 {
            return self.master.clone();
        }
        self.foreman(id % self.num_foremen)
    }

    /// Where foreman `id` listens, and where its workers connect:
    /// `foremen:(baseport+id)`. `id` must keep the port within range
    /// ([`Upstreams::check_foremen`]).
    pub fn foreman(&self, id: u32) -> String {
        let port = u32::from(self.baseport) + id;
        // An IPv6 literal needs brackets before a port.
        if self.foremen.contains(':') && !self.foremen.starts_with('[') {
            format!("[{}]:{port}", self.foremen)
        } else {
            format!("{}:{port}", self.foremen)
        }
    }

    /// Foremen `0..count` fit below port 65535.
    pub fn check_foremen(&self, count: u32) -> Result<()> {
        if count > 0 && u32::from(self.baseport) + count - 1 > u32::from(u16::MAX) {
            bail!(
                "{count} foremen from port {} run past port 65535",
                self.baseport
            );
        }
        Ok(())
    }
}

/// Whether supervisors respawn what they run (foremen; workers have it in
/// [`WorkerOpts`]).
#[derive(Debug, Clone, Default, Args)]
pub struct RespawnOpt {
    /// Do not respawn a foreman that exited (--no-respawn=0 does)
    /// [env: WQ_NORESPAWN=1] [default: 0]
    #[arg(long, value_name = "BOOL", num_args = 0..=1, require_equals = true,
          default_missing_value = "1", hide_possible_values = true,
          value_parser = clap::builder::BoolishValueParser::new())]
    pub no_respawn: Option<bool>,
}

impl RespawnOpt {
    /// True: do not respawn.
    pub fn resolve(&self, env: &Env) -> Result<bool> {
        env.switch(self.no_respawn, "WQ_NORESPAWN")
    }
}

/// Where foremen listen and what they connect to.
#[derive(Debug, Clone, Default, Args)]
pub struct ForemenOpts {
    /// The master's HOST:PORT, which the foremen connect to
    /// [env: WQ_MASTER, else PILOTQ_MASTER] [default: 127.0.0.1:9094]
    #[arg(long, value_name = "HOST:PORT")]
    pub master: Option<String>,
    /// Host the foremen listen on, which workers connect to
    /// [env: WQ_FOREMEN] [default: 127.0.0.1]
    #[arg(long, value_name = "HOST")]
    pub foremen: Option<String>,
    /// First foreman port: foreman i listens on PORT+i
    /// [env: WQ_MASTER_BASEPORT] [default: 9080]
    #[arg(long, value_name = "PORT")]
    pub baseport: Option<u16>,
}

impl ForemenOpts {
    /// The settings, with `num_foremen` from `WQ_NUM_FOREMEN` (default 2).
    pub fn resolve(&self, env: &Env) -> Result<Upstreams> {
        UpstreamOpts {
            master: self.master.clone(),
            foremen: self.foremen.clone(),
            num_foremen: None,
            baseport: self.baseport,
            upstream: None,
        }
        .resolve(env)
    }
}

/// `HOST:PORT` with a port (the scripts require one too).
fn check_host_port(s: &str, what: &str) -> Result<()> {
    match s.rsplit_once(':') {
        Some((host, port)) if !host.is_empty() && port.parse::<u16>().is_ok_and(|p| p > 0) => {
            Ok(())
        }
        _ => bail!("{what} must be HOST:PORT, not {s:?}"),
    }
}

/// How each worker runs, and whether it comes back.
#[derive(Debug, Clone, Default, Args)]
pub struct WorkerOpts {
    /// A worker exits after its first job (--single-task=0 turns it off)
    /// [env: WQ_SINGLETASK=1] [default: 0]
    #[arg(long, value_name = "BOOL", num_args = 0..=1, require_equals = true,
          default_missing_value = "1", hide_possible_values = true,
          value_parser = clap::builder::BoolishValueParser::new())]
    pub single_task: Option<bool>,
    /// Seconds without a job before a worker exits; 0 never
    /// [env: WQ_IDLETIMEOUT] [default: 100]
    #[arg(long, value_name = "S")]
    pub idle_timeout: Option<u64>,
    /// Do not respawn a worker that exited (--no-respawn=0 does)
    /// [env: WQ_NORESPAWN=1] [default: 0]
    #[arg(long, value_name = "BOOL", num_args = 0..=1, require_equals = true,
          default_missing_value = "1", hide_possible_values = true,
          value_parser = clap::builder::BoolishValueParser::new())]
    pub no_respawn: Option<bool>,
}

/// [`WorkerOpts`] resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkerPolicy {
    pub single_task: bool,
    /// `None`: never time out.
    pub idle_timeout: Option<u64>,
    pub no_respawn: bool,
}

impl WorkerOpts {
    pub fn resolve(&self, env: &Env) -> Result<WorkerPolicy> {
        let idle = env.number(self.idle_timeout, "WQ_IDLETIMEOUT", DEFAULT_IDLE_TIMEOUT)?;
        Ok(WorkerPolicy {
            single_task: env.switch(self.single_task, "WQ_SINGLETASK")?,
            idle_timeout: (idle > 0).then_some(idle),
            no_respawn: env.switch(self.no_respawn, "WQ_NORESPAWN")?,
        })
    }
}

/// The help text every ops command ends with.
pub const ENV_HELP: &str = "\
Settings come from the flag, else the environment variable, else the default
(alien-workqueue's start-workers and stop-workers read the same variables):
  WQ_MASTER           host:port of the master (PILOTQ_MASTER if unset)   127.0.0.1:9094
  WQ_FOREMEN          host of the foremen; workers connect there         127.0.0.1
  WQ_NUM_FOREMEN      number of foremen; worker i uses foreman i mod N   2
  WQ_MASTER_BASEPORT  first foreman port; foreman i listens on base+i    9080
  WQ_WORKDIR          pid files, logs, scratch dirs (created on demand)  ~/.alien_wq_tmp
  WQ_DRAIN            while it exists, workers finish their jobs and     ~/.alien_wq_drain
                      exit, and are not respawned
  WQ_SINGLETASK       1: a worker exits after its first job              0
  WQ_IDLETIMEOUT      seconds without a job before a worker exits        100
  WQ_NORESPAWN        1: do not respawn a worker that exited             0
  PILOTQ_PASSWORD_FILE  the shared secret, passed on to the workers
  PILOTQ_TLS_CA       the CA of a TLS master, inherited by the workers
                      (with PILOTQ_TLS_CERT, PILOTQ_TLS_KEY for mutual TLS)
Workers started without foremen connect straight to the master:
  WQ_NUM_FOREMEN=1 WQ_FOREMEN=<master host> WQ_MASTER_BASEPORT=<master port>
(or WQ_NUM_FOREMEN=0, which uses WQ_MASTER, or --upstream HOST:PORT).

Under the work dir: pids/worker-<id>.supervisor.pid and pids/worker-<id>.pid,
logs/worker-<id>.log, and workers/<id>/, worker <id>'s scratch dir.";

#[cfg(test)]
mod tests {
    use super::*;

    fn env(vars: &[(&str, &str)]) -> Env {
        Env::fixed(vars, Some("/home/alice"), "/cwd")
    }

    #[test]
    fn defaults_match_the_scripts() {
        let e = env(&[]);
        let u = UpstreamOpts::default().resolve(&e).unwrap();
        assert_eq!(
            u,
            Upstreams {
                master: "127.0.0.1:9094".into(),
                foremen: "127.0.0.1".into(),
                num_foremen: 2,
                baseport: 9080,
                fixed: None,
            }
        );
        assert_eq!(
            WorkdirOpt::default().resolve(&e).unwrap(),
            Path::new("/home/alice/.alien_wq_tmp")
        );
        assert_eq!(
            DrainOpt::default().resolve(&e).unwrap(),
            Path::new("/home/alice/.alien_wq_drain")
        );
        assert_eq!(
            WorkerOpts::default().resolve(&e).unwrap(),
            WorkerPolicy {
                single_task: false,
                idle_timeout: Some(100),
                no_respawn: false
            }
        );
    }

    #[test]
    fn the_environment_overrides_defaults_and_flags_override_the_environment() {
        let e = env(&[
            ("WQ_MASTER", "m:1"),
            ("PILOTQ_MASTER", "p:2"),
            ("WQ_FOREMEN", "f"),
            ("WQ_NUM_FOREMEN", "3"),
            ("WQ_MASTER_BASEPORT", "7000"),
            ("WQ_WORKDIR", "/wq"),
            ("WQ_DRAIN", "/drain"),
            ("WQ_SINGLETASK", "1"),
            ("WQ_IDLETIMEOUT", "5"),
            ("WQ_NORESPAWN", "1"),
        ]);
        let u = UpstreamOpts::default().resolve(&e).unwrap();
        assert_eq!(
            (
                u.master.as_str(),
                u.foremen.as_str(),
                u.num_foremen,
                u.baseport
            ),
            ("m:1", "f", 3, 7000)
        );
        assert_eq!(WorkdirOpt::default().resolve(&e).unwrap(), Path::new("/wq"));
        assert_eq!(
            DrainOpt::default().resolve(&e).unwrap(),
            Path::new("/drain")
        );
        assert_eq!(
            WorkerOpts::default().resolve(&e).unwrap(),
            WorkerPolicy {
                single_task: true,
                idle_timeout: Some(5),
                no_respawn: true
            }
        );

        let flags = UpstreamOpts {
            master: Some("fm:3".into()),
            foremen: Some("ff".into()),
            num_foremen: Some(4),
            baseport: Some(8000),
            upstream: None,
        };
        let u = flags.resolve(&e).unwrap();
        assert_eq!(
            (
                u.master.as_str(),
                u.foremen.as_str(),
                u.num_foremen,
                u.baseport
            ),
            ("fm:3", "ff", 4, 8000)
        );
        let w = WorkdirOpt {
            workdir: Some("/flag".into()),
        };
        assert_eq!(w.resolve(&e).unwrap(), Path::new("/flag"));
        let d = DrainOpt {
            drain_file: Some("/fd".into()),
        };
        assert_eq!(d.resolve(&e).unwrap(), Path::new("/fd"));
        let o = WorkerOpts {
            single_task: Some(false),
            idle_timeout: Some(0),
            no_respawn: Some(false),
        };
        assert_eq!(
            o.resolve(&e).unwrap(),
            WorkerPolicy {
                single_task: false,
                idle_timeout: None,
                no_respawn: false
            }
        );
    }

    #[test]
    fn pilotq_master_is_used_when_wq_master_is_unset_or_empty() {
        for vars in [
            vec![("PILOTQ_MASTER", "p:2")],
            vec![("WQ_MASTER", ""), ("PILOTQ_MASTER", "p:2")],
        ] {
            let u = UpstreamOpts::default().resolve(&env(&vars)).unwrap();
            assert_eq!(u.master, "p:2");
        }
    }

    #[test]
    fn empty_variables_are_unset() {
        let e = env(&[
            ("WQ_NUM_FOREMEN", ""),
            ("WQ_WORKDIR", " "),
            ("WQ_SINGLETASK", ""),
            ("WQ_IDLETIMEOUT", ""),
        ]);
        assert_eq!(UpstreamOpts::default().resolve(&e).unwrap().num_foremen, 2);
        assert_eq!(
            WorkdirOpt::default().resolve(&e).unwrap(),
            Path::new("/home/alice/.alien_wq_tmp")
        );
        let p = WorkerOpts::default().resolve(&e).unwrap();
        assert_eq!((p.single_task, p.idle_timeout), (false, Some(100)));
    }

    #[test]
    fn tilde_and_relative_paths() {
        let e = env(&[("WQ_WORKDIR", "~"), ("WQ_DRAIN", "rel/drain")]);
        assert_eq!(
            WorkdirOpt::default().resolve(&e).unwrap(),
            Path::new("/home/alice")
        );
        assert_eq!(
            DrainOpt::default().resolve(&e).unwrap(),
            Path::new("/cwd/rel/drain")
        );
        let flag = WorkdirOpt {
            workdir: Some("~/x/y".into()),
        };
        assert_eq!(flag.resolve(&e).unwrap(), Path::new("/home/alice/x/y"));
        // Only a leading `~` component is the home directory.
        let e = env(&[("WQ_WORKDIR", "~bob/x"), ("WQ_DRAIN", "/a/~/b")]);
        assert_eq!(
            WorkdirOpt::default().resolve(&e).unwrap(),
            Path::new("/cwd/~bob/x")
        );
        assert_eq!(
            DrainOpt::default().resolve(&e).unwrap(),
            Path::new("/a/~/b")
        );
        let homeless = Env::fixed(&[], None, "/cwd");
        let err = WorkdirOpt::default().resolve(&homeless).unwrap_err();
        assert!(err.to_string().contains("HOME is not set"), "{err}");
    }

    #[test]
    fn worker_i_connects_to_foreman_i_mod_n() {
        let e = env(&[("WQ_FOREMEN", "fh"), ("WQ_NUM_FOREMEN", "3")]);
        let u = UpstreamOpts::default().resolve(&e).unwrap();
        let got: Vec<String> = (0..7).map(|i| u.for_worker(i)).collect();
        assert_eq!(
            got,
            ["fh:9080", "fh:9081", "fh:9082", "fh:9080", "fh:9081", "fh:9082", "fh:9080"]
        );
    }

    #[test]
    fn workers_without_foremen_connect_to_the_master() {
        // The scripts' way.
        let e = env(&[
            ("WQ_FOREMEN", "master.example"),
            ("WQ_NUM_FOREMEN", "1"),
            ("WQ_MASTER_BASEPORT", "9094"),
        ]);
        let u = UpstreamOpts::default().resolve(&e).unwrap();
        assert!((0..4).all(|i| u.for_worker(i) == "master.example:9094"));
        // Zero foremen: WQ_MASTER.
        let e = env(&[("WQ_NUM_FOREMEN", "0"), ("WQ_MASTER", "m.example:9094")]);
        let u = UpstreamOpts::default().resolve(&e).unwrap();
        assert!((0..4).all(|i| u.for_worker(i) == "m.example:9094"));
        // --upstream beats everything.
        let o = UpstreamOpts {
            upstream: Some("up:1".into()),
            ..UpstreamOpts::default()
        };
        let u = o.resolve(&e).unwrap();
        assert!((0..4).all(|i| u.for_worker(i) == "up:1"));
    }

    #[test]
    fn ipv6_foremen_get_brackets() {
        let e = env(&[("WQ_FOREMEN", "::1"), ("WQ_NUM_FOREMEN", "1")]);
        let u = UpstreamOpts::default().resolve(&e).unwrap();
        assert_eq!(u.for_worker(0), "[::1]:9080");
        let e = env(&[("WQ_FOREMEN", "[::1]"), ("WQ_NUM_FOREMEN", "1")]);
        let u = UpstreamOpts::default().resolve(&e).unwrap();
        assert_eq!(u.for_worker(5), "[::1]:9080");
    }

    #[test]
    fn bad_values_are_one_clear_error() {
        let cases: &[(&[(&str, &str)], &str)] = &[
            (&[("WQ_MASTER", "nohost")], "HOST:PORT"),
            (&[("WQ_MASTER", "h:0")], "HOST:PORT"),
            (&[("WQ_MASTER", ":9094")], "HOST:PORT"),
            (&[("WQ_NUM_FOREMEN", "two")], "WQ_NUM_FOREMEN"),
            (&[("WQ_NUM_FOREMEN", "-1")], "WQ_NUM_FOREMEN"),
            (&[("WQ_MASTER_BASEPORT", "70000")], "WQ_MASTER_BASEPORT"),
            (
                &[("WQ_MASTER_BASEPORT", "65535"), ("WQ_NUM_FOREMEN", "2")],
                "past port 65535",
            ),
        ];
        for (vars, want) in cases {
            let err = UpstreamOpts::default()
                .resolve(&env(vars))
                .unwrap_err()
                .to_string();
            assert!(err.contains(want), "{vars:?}: {err}");
        }
        let bad_upstream = UpstreamOpts {
            upstream: Some("nope".into()),
            ..UpstreamOpts::default()
        };
        assert!(bad_upstream.resolve(&env(&[])).is_err());
        for (var, val) in [
            ("WQ_SINGLETASK", "maybe"),
            ("WQ_NORESPAWN", "2"),
            ("WQ_IDLETIMEOUT", "soon"),
        ] {
            let err = WorkerOpts::default()
                .resolve(&env(&[(var, val)]))
                .unwrap_err()
                .to_string();
            assert!(err.contains(var), "{var}: {err}");
        }
        // One port for one foreman at the very top is fine.
        let e = env(&[("WQ_MASTER_BASEPORT", "65535"), ("WQ_NUM_FOREMEN", "1")]);
        assert_eq!(
            UpstreamOpts::default().resolve(&e).unwrap().for_worker(3),
            "127.0.0.1:65535"
        );
    }

    #[test]
    fn switches_read_like_the_scripts() {
        for (v, want) in [
            ("1", true),
            ("0", false),
            ("true", true),
            ("no", false),
            ("ON", true),
        ] {
            let p = WorkerOpts::default()
                .resolve(&env(&[("WQ_NORESPAWN", v)]))
                .unwrap();
            assert_eq!(p.no_respawn, want, "{v}");
        }
    }
}
