//! `pilotq`: see `pilotq --help`.

use clap::Parser;

fn main() {
    // Die quietly on a closed pipe (`pilotq q | head`) like other Unix tools.
    // SAFETY: resetting a signal disposition before any thread starts.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    let cli = pilotq::cli::Cli::parse();
    match pilotq::commands::run(cli) {
        Ok(code) => std::process::exit(code),
        Err(e) => {
            eprintln!("pilotq: {e:#}");
            std::process::exit(1);
        }
    }
}
