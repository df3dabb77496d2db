//! Waiting for the signals that ask a daemon to stop cleanly.

use tokio::signal::unix::{signal, SignalKind};

/// Resolves on SIGINT or SIGTERM; returns the signal's name.
pub async fn stop_requested() -> &'static str {
    let mut term = signal(SignalKind::terminate()).expect("installing a SIGTERM handler");
    let mut int = signal(SignalKind::interrupt()).expect("installing a SIGINT handler");
    tokio::select! {
        _ = term.recv() => "SIGTERM",
        _ = int.recv() => "SIGINT",
    }
}
