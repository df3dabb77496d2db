//! `pilotq start-foremen [N]`, `stop-foremen`, `count-foremen`: the foreman
//! role's settings and command line; the rest is [`super::lifecycle`].
//!
//! Foreman `i` listens on `WQ_FOREMEN:(WQ_MASTER_BASEPORT+i)` — where
//! `start-workers` points worker `j` when `i = j mod WQ_NUM_FOREMEN` — and
//! connects to `WQ_MASTER`; its journal is `<workdir>/foremen/<i>/journal`,
//! kept across restarts (a respawned foreman replays it), its name at the
//! master `<host>-f<i>`.
//!
//! A foreman has no drain-file flag of its own: the drain file only stops
//! its supervisor from respawning it. So `stop-foremen`, after creating the
//! drain file (which makes the workers finish their jobs and leave), waits
//! up to `--grace` for the workers of the same work dir that connect to
//! these foremen to be gone, then SIGTERMs the foremen (a foreman stores a
//! snapshot of its journal and exits), then SIGKILLs what is left.

use super::lifecycle::{self, StartPlan};
use super::settings::Env;
use super::{flag_value, pid_file, slots, Layout, Role};
use crate::cli::{CountForemenArgs, StartForemenArgs, StopForemenArgs};
use anyhow::{bail, Context, Result};
use std::collections::BTreeSet;
use std::ffi::OsString;
use std::path::Path;

pub fn start(a: StartForemenArgs) -> Result<i32> {
    crate::logging::init("warn");
    let env = Env::process()?;
    let upstreams = a.upstream.resolve(&env)?;
    let count = a.count.unwrap_or(upstreams.num_foremen);
    if count == 0 {
        bail!("no foremen to start (N and WQ_NUM_FOREMEN are 0)");
    }
    let no_respawn = a.respawn.resolve(&env)?;
    let drain_file = a.drain.resolve(&env)?;
    let password_file = match &a.secret.password_file {
        Some(p) => Some(env.path(p, "--password-file")?),
        None => None,
    };
    a.secret.load()?;
    let layout = lifecycle::create_workdir(&Layout::new(Role::Foreman, a.workdir.resolve(&env)?))?;
    // start() fills the lowest free ids; the highest it can reach must
    // still have a port.
    let used = slots::running(&layout).len() as u32;
    upstreams.check_foremen(used + count)?;
    let exe = std::env::current_exe().context("cannot find the pilotq executable")?;
    let host = pilotq_actors::config::hostname();
    let child = |id: u32| {
        let mut argv = foreman_command(
            &exe,
            &upstreams.master,
            &upstreams.foreman(id),
            &layout.place(id),
            &format!("{host}-f{id}"),
            password_file.as_deref(),
        );
        argv.extend(a.foreman_args.iter().map(OsString::from));
        argv
    };
    let describe = |id: u32| {
        format!(
            "on {} → {}, journal {}",
            upstreams.foreman(id),
            upstreams.master,
            layout.place(id).display()
        )
    };
    lifecycle::start(
        &layout,
        &StartPlan {
            count,
            drain_file: &drain_file,
            no_respawn,
            child: &child,
            describe: &describe,
        },
    )
}

/// `pilotq foreman …` as a supervisor runs it.
pub fn foreman_command(
    exe: &Path,
    master: &str,
    listen: &str,
    journal: &Path,
    name: &str,
    password_file: Option<&Path>,
) -> Vec<OsString> {
    let mut argv: Vec<OsString> = vec![
        exe.into(),
        "foreman".into(),
        "--master".into(),
        master.into(),
        "--listen".into(),
        listen.into(),
        "--journal".into(),
        journal.into(),
        "--name".into(),
        name.into(),
    ];
    if let Some(p) = password_file {
        argv.push("--password-file".into());
        argv.push(p.into());
    }
    argv
}

pub fn stop(a: StopForemenArgs) -> Result<i32> {
    crate::logging::init("warn");
    if !(a.grace.is_finite() && a.grace >= 0.0) {
        bail!("--grace must be a number of seconds, not {}", a.grace);
    }
    let env = Env::process()?;
    let workdir = a.workdir.resolve(&env)?;
    let drain_file = a.drain.resolve(&env)?;
    let layout = Layout::new(Role::Foreman, workdir.clone());
    let addrs = listen_addrs(&layout);
    let workers = Layout::new(
        Role::Worker,
        std::fs::canonicalize(&workdir).unwrap_or(workdir),
    );
    let drained = || workers_of(&workers, &addrs) == 0;
    let done = lifecycle::stop_when(
        &layout,
        &drain_file,
        std::time::Duration::from_secs_f64(a.grace),
        &drained,
    )?;
    if done.total() == 0 {
        println!("no foremen running in {}", layout.workdir.display());
        return Ok(0);
    }
    println!("{}", done.summary("foreman").replace("foremans", "foremen"));
    Ok(if done.survivors.is_empty() { 0 } else { 1 })
}

/// The `--listen` addresses of the live foremen of `layout`.
fn listen_addrs(layout: &Layout) -> BTreeSet<String> {
    let Ok(canonical) = std::fs::canonicalize(&layout.workdir) else {
        return BTreeSet::new();
    };
    let layout = Layout::new(layout.role, canonical);
    slots::running(&layout)
        .values()
        .flat_map(|s| s.children.iter())
        .filter_map(|pid| pid_file::cmdline(*pid))
        .filter_map(|argv| flag_value(&argv, "--listen").map(str::to_string))
        .collect()
}

/// How many live workers of `workers` connect to one of `addrs`.
fn workers_of(workers: &Layout, addrs: &BTreeSet<String>) -> usize {
    slots::running(workers)
        .values()
        .flat_map(|s| s.children.iter())
        .filter_map(|pid| pid_file::cmdline(*pid))
        .filter(|argv| {
            flag_value(argv, "--master")
                .is_some_and(|m| m.split(',').any(|m| addrs.contains(m.trim())))
        })
        .count()
}

pub fn count(a: CountForemenArgs) -> Result<i32> {
    let env = Env::process()?;
    let layout = Layout::new(Role::Foreman, a.workdir.resolve(&env)?);
    println!("{}", lifecycle::count(&layout));
    Ok(0)
}

/// The help text the `*-foremen` commands end with.
pub const FOREMEN_HELP: &str = "\
Settings come from the flag, else the environment variable, else the default
(alien-workqueue's start-foremen and stop-foremen read the same variables):
  WQ_MASTER           host:port of the master the foremen connect to     127.0.0.1:9094
                      (PILOTQ_MASTER if unset)
  WQ_FOREMEN          host the foremen listen on; workers connect there  127.0.0.1
  WQ_NUM_FOREMEN      how many foremen start-foremen starts without N    2
  WQ_MASTER_BASEPORT  first foreman port; foreman i listens on base+i    9080
  WQ_WORKDIR          pid files, logs, journals (created on demand)      ~/.alien_wq_tmp
  WQ_DRAIN            while it exists, foremen are not respawned         ~/.alien_wq_drain
  WQ_NORESPAWN        1: do not respawn a foreman that exited            0
  PILOTQ_PASSWORD_FILE  the shared secret, passed on to the foremen
  PILOTQ_TLS_CA       the CA of a TLS master, inherited by the foremen
                      (with PILOTQ_TLS_CERT, PILOTQ_TLS_KEY for mutual TLS)

Under the work dir: pids/foreman-<id>.supervisor.pid and pids/foreman-<id>.pid,
logs/foreman-<id>.log, and foremen/<id>/journal, foreman <id>'s journal, kept
until stop-foremen (a respawned foreman replays it).

stop-foremen creates the drain file (workers finish their jobs and exit, and
nothing is respawned), waits up to --grace seconds until no worker of the same
work dir connects to these foremen (workers started elsewhere are not seen:
stop them first), then SIGTERMs the foremen, which store a snapshot and exit,
then SIGKILLs what is left.";

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    fn parse(args: &[&str]) -> StartForemenArgs {
        let cli = crate::cli::Cli::try_parse_from(args).unwrap_or_else(|e| panic!("{args:?}: {e}"));
        match cli.command {
            crate::cli::Command::StartForemen(a) => a,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn the_count_is_optional_and_foreman_options_follow_two_dashes() {
        let a = parse(&["pilotq", "start-foremen"]);
        assert_eq!(a.count, None);
        let a = parse(&[
            "pilotq",
            "start-foremen",
            "3",
            "--no-respawn",
            "--",
            "--depth",
            "4",
        ]);
        assert_eq!((a.count, a.respawn.no_respawn), (Some(3), Some(true)));
        assert_eq!(a.foreman_args, ["--depth", "4"]);
        assert!(crate::cli::Cli::try_parse_from(["pilotq", "start-foremen", "0"]).is_err());
    }

    #[test]
    fn the_foreman_command_listens_on_base_plus_id() {
        let layout = Layout::new(Role::Foreman, "/wd".into());
        let u = super::super::settings::ForemenOpts {
            master: Some("m:9094".into()),
            foremen: Some("f".into()),
            baseport: Some(9080),
        }
        .resolve(&Env::fixed(&[], None, "/"))
        .unwrap();
        assert_eq!(u.num_foremen, 2);
        let argv: Vec<String> = foreman_command(
            Path::new("/bin/pilotq"),
            &u.master,
            &u.foreman(1),
            &layout.place(1),
            "h-f1",
            Some(Path::new("/s")),
        )
        .into_iter()
        .map(|s| s.into_string().unwrap())
        .collect();
        assert_eq!(
            argv.join(" "),
            "/bin/pilotq foreman --master m:9094 --listen f:9081 \
             --journal /wd/foremen/1/journal --name h-f1 --password-file /s"
        );
        assert!(layout.is_child(&argv, 1));
        // Worker j of start-workers connects to foreman j mod N.
        assert_eq!(u.for_worker(3), u.foreman(1));
        assert!(u.check_foremen(2).is_ok());
        let high = super::super::settings::ForemenOpts {
            baseport: Some(65535),
            ..Default::default()
        }
        .resolve(&Env::fixed(&[("WQ_NUM_FOREMEN", "1")], None, "/"))
        .unwrap();
        assert!(high.check_foremen(1).is_ok());
        assert!(high.check_foremen(2).is_err());
    }
}
