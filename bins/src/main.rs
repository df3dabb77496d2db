//! `pilotq`: see `pilotq --help`.

use clap::Parser;

/// mimalloc instead of glibc's malloc: a master serving ten thousand holders
/// spends about 15% of its CPU in malloc and free (BENCHMARKS.md, issue 4).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    let cli = pilotq::cli::Cli::parse();
    // Before any thread starts (parsing starts none).
    if !cli.command.is_service() {
        pilotq::reset_sigpipe();
    }
    match pilotq::commands::run(cli) {
        Ok(code) => std::process::exit(code),
        Err(e) => {
            eprintln!("pilotq: {e:#}");
            std::process::exit(1);
        }
    }
}
