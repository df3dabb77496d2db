//! Logs go to stderr through `tracing`; `RUST_LOG` filters. actix and sled
//! log through the `log` crate, bridged here or their messages vanish.

use tracing_subscriber::EnvFilter;

/// `default` applies when `RUST_LOG` is unset: `info` for daemons, `warn`
/// for short client commands.
pub fn init(default: &str) {
    let _ = tracing_log::LogTracer::init();
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_target(false)
        .try_init();
}
