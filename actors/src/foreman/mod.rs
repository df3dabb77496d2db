//! The foreman: a local queue between the master and its workers.
//!
//! A foreman is a [`Master`] with its own journal, serving its workers, plus
//! an [`Upstream`] actor that is one holder (role Foreman) at the real master,
//! offering the summed resources of its workers. Jobs it receives are
//! journaled as adopted (`JobAdopted`), pinned to the master's attempt, and
//! dispatched locally; start reports and results flow up, results kept in the
//! journal's `forward` tree until the master acknowledges them. While the
//! master is away the local master keeps its workers busy from what it holds.
//!
//! | file | concern |
//! |---|---|
//! | `mod.rs` | the messages between the two halves |
//! | `upstream.rs` | the link to the master: connect, register, relay |
//! | `../master/local_queue.rs` | the local master's side: adopt, kill, report |

mod upstream;

pub use upstream::{Upstream, UpstreamConfig};

use actix::prelude::*;
use pilotq_wire::message::{Assignment, Attempt, Started};
use pilotq_wire::{Holding, JobResult, Resources};

/// From the local master to its upstream link.
#[derive(Message)]
#[rtype(result = "()")]
pub enum Up {
    Started(Vec<Started>),
    Finished(Vec<JobResult>),
    Capacity(Resources),
    /// Ask the master for an executable by hash.
    FetchBlob(String),
    /// Queued attempts adopted from a worker that failed over here.
    Adopted(Vec<Attempt>),
}

/// Tells the local master where to send [`Up`] messages.
#[derive(Message)]
#[rtype(result = "()")]
pub struct SetUpstream(pub Recipient<Up>);

/// Jobs the master handed to this foreman.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Adopt(pub Vec<Assignment>);

/// The master's order to kill and drop these attempts.
#[derive(Message)]
#[rtype(result = "()")]
pub struct UpstreamKill(pub Vec<Attempt>);

/// What to register with at the master: holdings and capacity.
#[derive(Message)]
#[rtype(result = "Registration")]
pub struct ForUpstream;

#[derive(Debug, Clone, Default, MessageResponse)]
pub struct Registration {
    pub holdings: Vec<Holding>,
    pub capacity: Resources,
    /// Executables asked of the master and not yet received: asked again.
    pub fetching: Vec<String>,
    /// Why the local queue cannot take work now (it started below its disk
    /// floor): the link does not register until it can.
    pub paused: Option<String>,
}

/// The master's answer to a `FetchBlob`.
#[derive(Message)]
#[rtype(result = "()")]
pub struct BlobFetched {
    pub hash: String,
    pub bytes: Option<Vec<u8>>,
}

/// Results still owed to the master.
#[derive(Message)]
#[rtype(result = "Vec<JobResult>")]
pub struct Forwards;

/// The master acknowledged these results.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Forwarded(pub Vec<Attempt>);
