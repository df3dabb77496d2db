//! # pilotq-journal — the master never forgets
//!
//! Every change of the pilot table is an [`Event`] appended to a sled
//! journal; the table is a pure fold of those events, so replaying the journal
//! (from a snapshot plus its tail) rebuilds exactly the table a crashed master
//! had. Nothing here knows about actors or sockets.
//!
//! | module | what it holds |
//! |---|---|
//! | [`event`] | `Event`, the stored `Envelope {v, t, e}` and the format version |
//! | [`table`] | `Table`: clusters and jobs, `apply`, lazy materialisation, dispatch order |
//! | [`blob_gc`] | which blobs (executables, wrappers, kept outputs) nothing kept needs |
//! | [`counts`] | jobs per HTCondor status, kept incrementally |
//! | [`procs`] | process numbers as ranges: the jobs that left a cluster |
//! | [`departure`] | a job leaving the queue, and its history record |
//! | [`history`] | the history store: finished jobs' records in rotated files |
//! | [`view`] | a job as clients see it (`JobView`), selected by ids |
//! | [`store`] | the sled trees (`events`, `snapshots`, `blobs`) behind one type |
//! | [`writer`] | the group-commit writer thread: one batch, one flush, every waiter woken |
//! | [`sealed`] | sealed segment files: snapshotted events out of sled, compressed, immutable, readable while a master runs; retention |
//! | [`sealer`] | the sealer thread: seals and retires in the background, asked by the writer after each snapshot |
//! | [`snapshot`] | the table encoded at a sequence number, a cache for fast restarts |
//! | [`replay`] | open a journal and rebuild its table: snapshot + tail |
//! | [`postmortem`] | analyses of the event stream for `pilotq journal`: a job's life, the table at a point, stats, plots, export |
//! | [`error`] | `JournalError` |
//!
//! The durability contract (ARCHITECTURE.md): nothing is acknowledged to anyone
//! before the writer's completion for its events has run.

pub mod blob_gc;
pub mod counts;
pub mod departure;
pub mod error;
pub mod event;
pub mod history;
pub mod postmortem;
pub mod procs;
pub mod replay;
pub mod sealed;
pub mod sealer;
pub mod snapshot;
pub mod store;
pub mod table;
pub mod view;
pub mod writer;

pub use counts::Counts;
pub use departure::{Departed, Departure};
pub use error::JournalError;
pub use event::{now_ms, Envelope, Event, KeptOutput, FORMAT_VERSION};
pub use sealed::{Retention, SealedDir, SegmentFile};
pub use sealer::Sealer;
pub use store::{SealReport, Store};
pub use table::{Job, JobState, LeftQueue, Table};
pub use writer::{Done, Writer};
