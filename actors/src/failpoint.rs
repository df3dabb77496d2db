//! Crash points for tests: `PILOTQ_FAILPOINT=NAME` in a master's environment
//! makes it SIGKILL itself the first time it reaches the point `NAME`, so that
//! an end-to-end test can kill it exactly between two steps of a commit (a
//! result's files written but its completion not journaled; the completion
//! durable but not acknowledged) and check what a restart makes of it.
//!
//! Points:
//! - `results-files-written`: a result's output files are in place, its
//!   completion not yet journaled;
//! - `results-journaled`: the completion is durable, the acknowledgement not
//!   yet sent.

use std::sync::OnceLock;

fn armed() -> Option<&'static str> {
    static POINT: OnceLock<Option<String>> = OnceLock::new();
    POINT
        .get_or_init(|| std::env::var("PILOTQ_FAILPOINT").ok())
        .as_deref()
}

/// Dies here, by SIGKILL (no destructor, no flush), if `name` is armed.
pub fn hit(name: &str) {
    if armed() == Some(name) {
        eprintln!("pilotq: failpoint {name} reached: SIGKILL");
        // SAFETY: signalling our own pid.
        unsafe {
            libc::kill(libc::getpid(), libc::SIGKILL);
        }
    }
}
