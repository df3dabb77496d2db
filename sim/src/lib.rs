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
//! | [`config`] | `SimConfig`: the flags of `pilotq sim` and their checks |
//! | [`workload`] | clusters to submit and each job's run time: synthetic, or |
//! | [`recorded`] | … read from a recorded journal (`--replay`) |
//! | [`sim_worker`] | one simulated worker: the wire protocol, no processes |
//! | [`child`] | the real master and foreman processes: start, SIGKILL, `/proc` figures |
//! | [`proxy`] | the relay that can cut a foreman off from the master |
//! | [`stats`] | what the workers observe: counts, latencies, each job's runs |
//! | [`timeline`] | idle/running/completed over time: CSV and an SVG plot |
//! | [`invariants`] | the end checks |
//! | [`report`] | the report, for people and as JSON |
//! | [`rlimit`] | raising the open-file limit for thousands of sockets |
//! | [`certs`] | a throw-away CA and certificates, for `--tls` runs and tests |
//! | [`run`] | one simulation, start to end |

pub mod certs;
pub mod child;
pub mod config;
pub mod invariants;
pub mod proxy;
pub mod recorded;
pub mod report;
pub mod rlimit;
pub mod run;
pub mod sim_worker;
pub mod stats;
pub mod timeline;
pub mod workload;

pub use config::SimConfig;
pub use report::Report;
pub use run::run;
