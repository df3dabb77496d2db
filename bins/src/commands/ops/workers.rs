//! `pilotq start-workers N`, `stop-workers`, `count-workers`: the worker
//! role's settings and command line; the rest is [`super::lifecycle`].

use super::lifecycle::{self, StartPlan};
use super::settings::{Env, WorkerPolicy};
use super::{Layout, Role};
use crate::cli::{CountWorkersArgs, StartWorkersArgs, StopWorkersArgs};
use anyhow::{bail, Context, Result};
use std::ffi::OsString;
use std::path::{Path, PathBuf};

pub fn start(a: StartWorkersArgs) -> Result<i32> {
    crate::logging::init("warn");
    let env = Env::process()?;
    let upstreams = a.upstream.resolve(&env)?;
    let policy = a.worker.resolve(&env)?;
    let drain_file = a.drain.resolve(&env)?;
    let password_file = match &a.secret.password_file {
        Some(p) => Some(env.path(p, "--password-file")?),
        None => None,
    };
    // A secret the workers cannot read is better reported now than in N logs.
    a.secret.load()?;
    let layout = lifecycle::create_workdir(&Layout::new(Role::Worker, a.workdir.resolve(&env)?))?;
    let exe = std::env::current_exe().context("cannot find the pilotq executable")?;
    let host = pilotq_actors::config::hostname();
    let child = |id: u32| {
        let mut argv = worker_command(
            &exe,
            &upstreams.for_worker(id),
            &layout.scratch(id),
            &format!("{host}-w{id}"),
            &policy,
            &drain_file,
            password_file.as_deref(),
        );
        argv.extend(a.worker_args.iter().map(OsString::from));
        argv
    };
    let describe = |id: u32| format!("→ {}", upstreams.for_worker(id));
    lifecycle::start(
        &layout,
        &StartPlan {
            count: a.count,
            drain_file: &drain_file,
            no_respawn: policy.no_respawn,
            child: &child,
            describe: &describe,
        },
    )
}

/// `pilotq worker …` as a supervisor runs it.
pub fn worker_command(
    exe: &Path,
    upstream: &str,
    scratch: &Path,
    name: &str,
    policy: &WorkerPolicy,
    drain_file: &Path,
    password_file: Option<&Path>,
) -> Vec<OsString> {
    let mut argv: Vec<OsString> = vec![
        exe.into(),
        "worker".into(),
        "--master".into(),
        upstream.into(),
        "--workdir".into(),
        scratch.into(),
        "--name".into(),
        name.into(),
    ];
    if policy.single_task {
        argv.push("--single-task".into());
    }
    if let Some(s) = policy.idle_timeout {
        argv.push("--idle-timeout".into());
        argv.push(s.to_string().into());
    }
    argv.push("--drain-file".into());
    argv.push(drain_file.into());
    if let Some(p) = password_file {
        argv.push("--password-file".into());
        argv.push(p.into());
    }
    argv
}

pub fn stop(a: StopWorkersArgs) -> Result<i32> {
    crate::logging::init("warn");
    if !(a.grace.is_finite() && a.grace >= 0.0) {
        bail!("--grace must be a number of seconds, not {}", a.grace);
    }
    let env = Env::process()?;
    let workdir: PathBuf = a.workdir.resolve(&env)?;
    let drain_file = a.drain.resolve(&env)?;
    let layout = Layout::new(Role::Worker, workdir);
    let done = lifecycle::stop(
        &layout,
        &drain_file,
        std::time::Duration::from_secs_f64(a.grace),
    )?;
    if done.total() == 0 {
        println!("no workers running in {}", layout.workdir.display());
        return Ok(0);
    }
    println!("{}", done.summary("worker"));
    Ok(if done.survivors.is_empty() { 0 } else { 1 })
}

pub fn count(a: CountWorkersArgs) -> Result<i32> {
    let env = Env::process()?;
    let layout = Layout::new(Role::Worker, a.workdir.resolve(&env)?);
    println!("{}", lifecycle::count(&layout));
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    fn strings(v: Vec<OsString>) -> Vec<String> {
        v.into_iter().map(|s| s.into_string().unwrap()).collect()
    }

    fn parse(args: &[&str]) -> StartWorkersArgs {
        let cli = crate::cli::Cli::try_parse_from(args).unwrap_or_else(|e| panic!("{args:?}: {e}"));
        match cli.command {
            crate::cli::Command::StartWorkers(a) => a,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn switches_take_an_optional_value_and_worker_options_follow_two_dashes() {
        let a = parse(&["pilotq", "start-workers", "3"]);
        assert_eq!(
            (a.count, a.worker.single_task, a.worker.no_respawn),
            (3, None, None)
        );
        assert!(a.worker_args.is_empty());
        let a = parse(&[
            "pilotq",
            "start-workers",
            "--single-task",
            "--no-respawn=0",
            "2",
            "--",
            "--cores",
            "1",
        ]);
        assert_eq!(
            (a.worker.single_task, a.worker.no_respawn),
            (Some(true), Some(false))
        );
        assert_eq!(a.worker_args, ["--cores", "1"]);
        let a = parse(&[
            "pilotq",
            "start-workers",
            "1",
            "--single-task=false",
            "--idle-timeout",
            "0",
        ]);
        assert_eq!(
            (a.worker.single_task, a.worker.idle_timeout),
            (Some(false), Some(0))
        );
        assert!(crate::cli::Cli::try_parse_from(["pilotq", "start-workers", "0"]).is_err());
        assert!(crate::cli::Cli::try_parse_from(["pilotq", "start-workers"]).is_err());
    }

    #[test]
    fn the_worker_command_carries_the_policy() {
        let layout = Layout::new(Role::Worker, "/wd".into());
        let plain = WorkerPolicy {
            single_task: false,
            idle_timeout: None,
            no_respawn: false,
        };
        let argv = strings(worker_command(
            Path::new("/bin/pilotq"),
            "f:9081",
            &layout.scratch(1),
            "h-w1",
            &plain,
            Path::new("/d"),
            None,
        ));
        assert_eq!(
            argv.join(" "),
            "/bin/pilotq worker --master f:9081 --workdir /wd/workers/1 --name h-w1 --drain-file /d"
        );
        assert!(layout.is_child(&argv, 1));
        let full = WorkerPolicy {
            single_task: true,
            idle_timeout: Some(100),
            no_respawn: true,
        };
        let argv = strings(worker_command(
            Path::new("/bin/pilotq"),
            "f:9080",
            &layout.scratch(0),
            "h-w0",
            &full,
            Path::new("/d"),
            Some(Path::new("/s")),
        ));
        assert_eq!(
            argv.join(" "),
            "/bin/pilotq worker --master f:9080 --workdir /wd/workers/0 --name h-w0 \
             --single-task --idle-timeout 100 --drain-file /d --password-file /s"
        );
        assert!(layout.is_child(&argv, 0));
    }
}
