//! Post-mortems: analyses of a journal's event stream, for `pilotq journal`.
//! Pure functions and folds over `(seq, Envelope)` in order; where the
//! events come from (a stopped journal, sealed files, a running master's
//! tail) is the caller's business. Each fold keeps what its answer needs,
//! never the stream: `stats` and `plot` keep per-job state only while a job
//! is live, so 15 million events cost what the live jobs cost.
//!
//! | module | what it holds |
//! |---|---|
//! | [`point`] | times and sequence numbers as users write them (`--since`, `at`), and UTC printing |
//! | [`filter`] | event kinds, the job/cluster/attempt/holder an event names, `dump`'s filter |
//! | [`tracker`] | a compact fold following `Table::apply`'s rules: counts and per-event effects with durations |
//! | [`histogram`] | percentiles of millions of durations in kilobytes (log-linear buckets) |
//! | [`stats`] | queue wait, run time, completion rates, requeues, holds, failures, restarts and outages |
//! | [`job_life`] | one job's life across its attempts |
//! | [`at`] | the table at a point: a replay of the prefix, from a snapshot if need be |
//! | [`curve`] | idle/running/completed over time with restarts and holder losses, for `plot` |
//! | [`row`] | one flat row per event, for `export` |

pub mod at;
pub mod curve;
pub mod filter;
pub mod histogram;
pub mod job_life;
pub mod point;
pub mod row;
pub mod stats;
pub mod tracker;

pub use point::{human_ms, utc_ms, Point, POINT_SYNTAX};
