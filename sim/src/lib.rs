//! # pilotq-sim — the real master, thousands of simulated workers
//!
//! `pilotq sim` starts the real `pilotq master` binary as a child process (so
//! a crash is a real SIGKILL) on a real journal, optionally real foremen, and
//! drives it with simulated workers that speak the real wire protocol over
//! loopback but run no processes: a job "runs" for its simulated time and its
//! result is reported. Faults are injected (master SIGKILLs, worker churn,
//! foreman partitions), and at the end the invariants are checked: every job
//! completed exactly once or held, no result lost, no job on two holders at
//! once beyond a lease, and the journal replayed from empty equal to the
//! master's live table.
//!
//! | module | what it holds |
//! |---|---|
//! | [`workload`] | clusters to submit and each job's run time: synthetic, or |
//! | [`recorded`] | … read from a recorded journal (`--replay`) |
//! | [`timeline`] | idle/running/completed over time: CSV and an SVG plot |

pub mod recorded;
pub mod timeline;
pub mod workload;
