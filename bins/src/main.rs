//! `pilotq`: see `pilotq --help`.

use clap::Parser;

fn main() {
    pilotq::reset_sigpipe();
    let cli = pilotq::cli::Cli::parse();
    match pilotq::commands::run(cli) {
        Ok(code) => std::process::exit(code),
        Err(e) => {
            eprintln!("pilotq: {e:#}");
            std::process::exit(1);
        }
    }
}
