//! # pilotq-sim — load simulation (placeholder)
//!
//! This crate will hold the `sim` harness of issue 4: the real master binary
//! driven by thousands of simulated workers that speak the real wire protocol
//! over loopback, synthetic or recorded workloads, fault injection (master
//! SIGKILLs, worker churn, partitions) and the invariant checks and reports
//! that CI runs. Until then it only re-exports the vocabulary it will use, so
//! the workspace layout is in place.

pub use pilotq_wire as wire;
