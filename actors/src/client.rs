//! A short-lived client connection for the `pilotq` and `condor_*` commands:
//! submit, query, remove, status. Plain tokio, no actors.

use crate::connect::{connect, next, ConnectError, PeerFramed};
use crate::tls::ClientTls;
use futures::SinkExt;
use pilotq_wire::message::MasterStatus;
use pilotq_wire::{
    ClusterId, FromMaster, JobId, JobSpec, JobView, Role, Secret, Selector, ToMaster,
};
use std::ops::ControlFlow;
use std::time::Duration;

pub struct Client {
    framed: PeerFramed,
    addr: String,
    /// A query answer was left unread (`query_each` broke off): the next
    /// frames would be its chunks, not an answer to a new call.
    abandoned: bool,
}

impl Client {
    /// `addr`: `HOST:PORT`, or `unix:PATH` for the master's Unix socket
    /// (where the master knows who we are without a secret).
    pub async fn connect(
        addr: &str,
        secret: Option<&Secret>,
        tls: Option<&ClientTls>,
        max_frame: usize,
    ) -> Result<Client, ConnectError> {
        let name = format!("client-{}", std::process::id());
        let framed = connect(
            addr,
            Role::Client,
            &name,
            secret,
            tls,
            max_frame,
            Duration::from_secs(30),
        )
        .await?;
        Ok(Client {
            framed,
            addr: addr.to_string(),
            abandoned: false,
        })
    }

    async fn call(&mut self, msg: ToMaster) -> Result<FromMaster, ConnectError> {
        let addr = self.addr.clone();
        if self.abandoned {
            return Err(ConnectError::Protocol {
                addr,
                what: "a query answer was abandoned on this connection; connect again".into(),
            });
        }
        self.framed
            .send(msg)
            .await
            .map_err(|e| crate::connect::frame_error(&addr, e))?;
        next(&mut self.framed, &addr).await
    }

    /// Submits `count` jobs of `spec`; returns once the cluster is durable.
    pub async fn submit(
        &mut self,
        spec: JobSpec,
        count: u32,
        executable: Vec<u8>,
    ) -> Result<(ClusterId, u32), ConnectError> {
        match self
            .call(ToMaster::Submit {
                spec: Box::new(spec),
                count,
                executable,
            })
            .await?
        {
            FromMaster::Submitted { cluster, count } => Ok((cluster, count)),
            other => Err(self.unexpected(other)),
        }
    }

    /// Every selected job, in one Vec: for callers that want them all at
    /// once. A large answer is better streamed with [`Client::query_each`].
    pub async fn query(&mut self, selectors: Vec<Selector>) -> Result<Vec<JobView>, ConnectError> {
        let mut all = Vec::new();
        self.query_each(selectors, |jobs| {
            if all.is_empty() {
                all = jobs; // the common one-chunk answer: no copy
            } else {
                all.extend(jobs);
            }
            ControlFlow::Continue(())
        })
        .await?;
        Ok(all)
    }

    /// The selected jobs, chunk by chunk as the master sends them (in
    /// order, at most a few thousand jobs each), so that a million-job
    /// answer is never held whole: `pilotq q` over 1,000,000 jobs took
    /// 3.9 GB when it was. `each` returns `Break` to stop early; the rest of
    /// the answer is then still on its way, so this client refuses further
    /// calls (drop it and connect again).
    pub async fn query_each(
        &mut self,
        selectors: Vec<Selector>,
        each: impl FnMut(Vec<JobView>) -> ControlFlow<()>,
    ) -> Result<(), ConnectError> {
        self.jobs_each(ToMaster::Query { selectors }, each).await
    }

    /// Finished jobs from the master's history store, newest first unless
    /// `forwards` (empty selectors: every record), chunk by chunk as the
    /// master reads them from its store, so the whole answer is never held.
    /// `each` returns `Break` once it has what it wants: then drop the
    /// client. Closing the connection is how a client tells the master to
    /// stop reading (`condor_history -limit 100` over millions of records
    /// costs a chunk or two); as with [`Client::query_each`], this client
    /// refuses further calls after a `Break` mid-answer.
    pub async fn history_each(
        &mut self,
        selectors: Vec<Selector>,
        forwards: bool,
        each: impl FnMut(Vec<JobView>) -> ControlFlow<()>,
    ) -> Result<(), ConnectError> {
        self.jobs_each(
            ToMaster::History {
                selectors,
                forwards,
            },
            each,
        )
        .await
    }

    /// Sends `request` and hands each chunk of its answer (`Jobs` or
    /// `History`) to `each`, until the last or a `Break`.
    async fn jobs_each(
        &mut self,
        request: ToMaster,
        mut each: impl FnMut(Vec<JobView>) -> ControlFlow<()>,
    ) -> Result<(), ConnectError> {
        let history = matches!(request, ToMaster::History { .. });
        let mut reply = self.call(request).await?;
        loop {
            let (jobs, last) = match reply {
                FromMaster::Jobs { jobs, last } if !history => (jobs, last),
                FromMaster::History { jobs, last } if history => (jobs, last),
                other => return Err(self.unexpected(other)),
            };
            if each(jobs).is_break() {
                if !last {
                    self.abandoned = true;
                }
                return Ok(());
            }
            if last {
                return Ok(());
            }
            reply = next(&mut self.framed, &self.addr).await?;
        }
    }

    /// Removes the selected jobs; returns how many were marked for removal.
    pub async fn remove(&mut self, selectors: Vec<Selector>) -> Result<u64, ConnectError> {
        let owner = Some(current_user());
        match self.call(ToMaster::Remove { selectors, owner }).await? {
            FromMaster::Removed { jobs } => Ok(jobs),
            other => Err(self.unexpected(other)),
        }
    }

    pub async fn status(&mut self) -> Result<MasterStatus, ConnectError> {
        match self.call(ToMaster::Status).await? {
            FromMaster::Status(s) => Ok(s),
            other => Err(self.unexpected(other)),
        }
    }

    /// Releases held jobs; returns how many went on, and why any selected
    /// job did not.
    pub async fn release(
        &mut self,
        selectors: Vec<Selector>,
    ) -> Result<(u64, Vec<String>), ConnectError> {
        let owner = Some(current_user());
        match self.call(ToMaster::Release { selectors, owner }).await? {
            FromMaster::Released { jobs, problems } => Ok((jobs, problems)),
            other => Err(self.unexpected(other)),
        }
    }

    /// The stdout (or stderr) the master kept for a job held because its
    /// output could not be written.
    pub async fn kept_output(&mut self, job: JobId, stderr: bool) -> Result<Vec<u8>, ConnectError> {
        match self.call(ToMaster::KeptOutput { job, stderr }).await? {
            FromMaster::Output { bytes } => Ok(bytes),
            other => Err(self.unexpected(other)),
        }
    }

    /// Asks for the journal's events from `from` on that are still in the
    /// master's live database; returns the answer's first chunk. Read the
    /// rest with [`Client::journal_tail_more`] until a chunk says `last`:
    /// the answer streams, a few MiB a chunk, and is never held whole.
    pub async fn journal_tail(
        &mut self,
        from: u64,
    ) -> Result<(Vec<pilotq_wire::TailSegment>, bool), ConnectError> {
        let reply = self.call(ToMaster::JournalTail { from }).await?;
        self.tail_chunk(reply)
    }

    /// The next chunk of a [`Client::journal_tail`] answer.
    pub async fn journal_tail_more(
        &mut self,
    ) -> Result<(Vec<pilotq_wire::TailSegment>, bool), ConnectError> {
        let reply = next(&mut self.framed, &self.addr).await?;
        self.tail_chunk(reply)
    }

    fn tail_chunk(
        &self,
        reply: FromMaster,
    ) -> Result<(Vec<pilotq_wire::TailSegment>, bool), ConnectError> {
        match reply {
            FromMaster::JournalSegments { segments, last } => Ok((segments, last)),
            FromMaster::Error { message } => Err(ConnectError::Refused {
                addr: self.addr.clone(),
                message,
            }),
            other => Err(self.unexpected(other)),
        }
    }

    fn unexpected(&self, m: FromMaster) -> ConnectError {
        let what: String = format!("{m:?}").chars().take(120).collect();
        ConnectError::Protocol {
            addr: self.addr.clone(),
            what,
        }
    }
}

/// The Unix user this process runs as (HTCondor's `Owner` of what it
/// submits, and who asks for removals and releases).
pub fn current_user() -> String {
    // SAFETY: getuid has no preconditions.
    crate::owner_files::name_of(unsafe { libc::getuid() })
        .unwrap_or_else(|| std::env::var("USER").unwrap_or_else(|_| "unknown".into()))
}
