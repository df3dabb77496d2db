//! # pilotq (bins) — the command-line face
//!
//! Thin: parse arguments, call the libraries, print. Each subcommand of
//! `pilotq` is one file under `commands/`; shared pieces are named for what
//! they are.
//!
//! | module | what it holds |
//! |---|---|
//! | [`cli`] | the clap definition of `pilotq` and its subcommands |
//! | [`client_opts`] | `--master` / `--password-file` (and their environment variables), connecting |
//! | [`logging`] | tracing set-up, with the `log` bridge for actix and sled |
//! | [`machine`] | what this machine has: cores, memory, disk (worker defaults) |
//! | [`signals`] | waiting for SIGINT/SIGTERM |
//! | [`commands`] | one module per subcommand |
//! | [`condor`] | HTCondor's languages: ClassAd expressions (constraints, custom attributes) |

pub mod cli;
pub mod client_opts;
pub mod commands;
pub mod condor;
pub mod logging;
pub mod machine;
pub mod signals;
pub mod tls_opts;

/// Die quietly on a closed pipe (`condor_q | head`) like other Unix tools.
///
/// Only for the short commands that print. Services keep Rust's default of
/// ignoring SIGPIPE: their sockets are written with `writev`, which, unlike
/// `send`, cannot say MSG_NOSIGNAL, so a write to a peer that has just died
/// would kill the writer — a master killed under its workers took
/// `pilotq sim` down this way, and would take a worker down the same way.
/// (Jobs still start with SIGPIPE at its default: std resets it in every
/// child it spawns.)
pub fn reset_sigpipe() {
    // SAFETY: resetting a signal disposition, before any thread starts.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}
