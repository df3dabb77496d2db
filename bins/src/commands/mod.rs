//! One module per `pilotq` subcommand. Each returns the process exit code.

pub mod env;
pub mod foreman;
pub mod history;
pub mod init_secret;
pub mod journal;
pub mod master;
pub mod ops;
pub mod output;
pub mod q;
pub mod release;
pub mod rm;
pub mod sim;
pub mod status;
pub mod submit;
pub mod up;
pub mod worker;

use crate::cli::{Cli, Command};
use anyhow::Result;

pub fn run(cli: Cli) -> Result<i32> {
    match cli.command {
        Command::Master(a) => master::run(a),
        Command::Worker(a) => worker::run(a),
        Command::Foreman(a) => foreman::run(a),
        Command::Submit(a) => submit::run(a),
        Command::Q(a) => q::run(a),
        Command::History(a) => history::run(a),
        Command::Rm(a) => rm::run(a),
        Command::Release(a) => release::run(a),
        Command::Output(a) => output::run(a),
        Command::Status(a) => status::run(a),
        Command::Journal { command } => journal::run(command),
        Command::Up(a) => up::run(a),
        Command::Env(a) => env::run(a),
        Command::InitSecret(a) => init_secret::run(a),
        Command::StartWorkers(a) => ops::workers::start(a),
        Command::StopWorkers(a) => ops::workers::stop(a),
        Command::CountWorkers(a) => ops::workers::count(a),
        Command::StartForemen(a) => ops::foremen::start(a),
        Command::StopForemen(a) => ops::foremen::stop(a),
        Command::CountForemen(a) => ops::foremen::count(a),
        Command::Drain(a) => ops::drain::run(a),
        Command::Sim(a) => sim::run(a),
        Command::Supervise(a) => ops::supervisor::run(a),
    }
}

/// Seconds from a command-line float, refusing nonsense.
pub fn seconds(name: &str, s: f64) -> Result<std::time::Duration> {
    if !(s.is_finite() && s > 0.0) {
        anyhow::bail!("--{name} must be a positive number of seconds, not {s}");
    }
    Ok(std::time::Duration::from_secs_f64(s))
}
