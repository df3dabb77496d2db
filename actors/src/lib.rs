//! # pilotq-actors — the processes' moving parts
//!
//! actix actors on actix-rt arbiters; the journal writer and the job-file
//! writer run on threads of their own so no handler ever blocks on disk.
//!
//! | module | what it holds |
//! |---|---|
//! | [`config`] | `MasterConfig`, `WorkerConfig` and their defaults |
//! | [`master`] | the master actor: decide → append → apply → reply; leases; dispatch |
//! | [`session`] | one actor per accepted connection: handshake, then requests to the master |
//! | [`outbox`] | a connection's sending half: bounded queue, writer task, slow peers cut |
//! | [`foreman`] | the foreman: a local master plus its link upstream |
//! | [`files`] | putting jobs' output and error files in place (synced, renamed), off the master's thread |
//! | [`owner_files`] | writing a job's files as its owner (per-thread `setfsuid`) and never through a symbolic link |
//! | [`kept_secret`] | random secrets kept beside a journal: a foreman's holder token, a master's attempt key |
//! | [`failpoint`] | `PILOTQ_FAILPOINT`: crash points for end-to-end tests |
//! | [`user_log`] | HTCondor's job event log (`log = path`): what to write, and writing it (synced, retried) |
//! | [`worker`] | the worker actor, its process executor and executable cache |
//! | [`connect`] | the peer side of the handshake (workers, foremen, clients) |
//! | [`transport`] | the byte streams frames travel on: TCP, TLS, the Unix socket |
//! | [`tls`] | rustls configurations: a master's certificate, a peer's CA, mutual TLS |
//! | [`backoff`] | a holder's reconnect backoff: doubling, jittered, kept inside the lease |
//! | [`client`] | a short-lived client: submit, query, remove, status |

pub mod backoff;
pub mod client;
pub mod config;
pub mod connect;
pub mod failpoint;
pub mod files;
pub mod foreman;
pub mod kept_secret;
pub mod master;
pub mod outbox;
pub mod owner_files;
pub mod session;
pub mod tls;
pub mod transport;
pub mod user_log;
pub mod worker;

pub use client::Client;
pub use config::{MasterConfig, WorkerConfig};
pub use master::{Master, Shutdown, StartError, StartInfo};
pub use worker::Worker;
