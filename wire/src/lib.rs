//! # pilotq-wire — the vocabulary every pilotq process speaks
//!
//! Pure data and pure functions: no actors, no sockets of its own. Everything
//! that crosses a TCP connection or lands in the journal is defined here.
//!
//! | module | what it holds |
//! |---|---|
//! | [`ids`] | `ClusterId`, `JobId {cluster, proc}` and their `C.P` text form |
//! | [`resources`] | `Resources` (cores, memory MB, disk MB) and the arithmetic dispatch needs |
//! | [`job_spec`] | `JobSpec`: what a job runs, with what environment, where its files go |
//! | [`outcome`] | `Outcome` and `JobResult`: how a job ended and what it printed |
//! | [`message`] | every message, one enum per direction (`ToMaster`, `FromMaster`) |
//! | [`attempt_key`] | `AttemptKey`: the proof a holder shows for an attempt dispatched to another (fail-over) |
//! | [`handshake`] | `Hello`, the protocol version and the mutual HMAC-SHA256 shared-secret proof |
//! | [`codec`] | the frame codec: 4-byte big-endian length + named msgpack, bounded size |
//! | [`status`] | `JobStatus`, HTCondor's numeric job states as clients see them |
//! | [`time_format`] | dates as HTCondor prints them (UTC) |
//!
//! Encoding rule: everything is msgpack with field names
//! (`rmp_serde::to_vec_named`) so that a field added later with
//! `#[serde(default)]` stays readable in both directions.

pub mod attempt_key;
pub mod codec;
pub mod handshake;
pub mod ids;
pub mod job_spec;
pub mod message;
pub mod outcome;
pub mod resources;
pub mod status;
pub mod time_format;

pub use attempt_key::AttemptKey;
pub use codec::{FrameCodec, FrameError, FrameLimit, DEFAULT_MAX_FRAME, PRE_HANDSHAKE_MAX_FRAME};
pub use handshake::{Hello, Role, Secret, PROTOCOL_VERSION};
pub use ids::{ClusterId, JobId, ParseIdError};
pub use job_spec::JobSpec;
pub use message::{FromMaster, JobView, Selector, TailSegment, ToMaster};
pub use outcome::{Holding, HoldingState, JobResult, Outcome};
pub use resources::Resources;
pub use status::JobStatus;
