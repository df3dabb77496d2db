//! A short-lived client connection for the `pilotq` and `condor_*` commands:
//! submit, query, remove, status. Plain tokio, no actors.

use crate::connect::{connect, next, ConnectError, PeerFramed};
use futures::SinkExt;
use pilotq_wire::message::MasterStatus;
use pilotq_wire::{
    ClusterId, FromMaster, JobId, JobSpec, JobView, Role, Secret, Selector, ToMaster,
};
use std::time::Duration;

pub struct Client {
    framed: PeerFramed,
    addr: String,
}

impl Client {
    pub async fn connect(
        addr: &str,
        secret: Option<&Secret>,
        max_frame: usize,
    ) -> Result<Client, ConnectError> {
        let name = format!("client-{}", std::process::id());
        let framed = connect(
            addr,
            Role::Client,
            &name,
            secret,
            max_frame,
            Duration::from_secs(30),
        )
        .await?;
        Ok(Client {
            framed,
            addr: addr.to_string(),
        })
    }

    async fn call(&mut self, msg: ToMaster) -> Result<FromMaster, ConnectError> {
        let addr = self.addr.clone();
        self.framed
            .send(msg)
            .await
            .map_err(|source| ConnectError::Frame {
                addr: addr.clone(),
                source,
            })?;
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

    pub async fn query(&mut self, selectors: Vec<Selector>) -> Result<Vec<JobView>, ConnectError> {
        let mut all = match self.call(ToMaster::Query { selectors }).await? {
            FromMaster::Jobs { jobs, last: true } => return Ok(jobs),
            FromMaster::Jobs { jobs, last: false } => jobs,
            other => return Err(self.unexpected(other)),
        };
        loop {
            match next(&mut self.framed, &self.addr).await? {
                FromMaster::Jobs { jobs, last } => {
                    all.extend(jobs);
                    if last {
                        return Ok(all);
                    }
                }
                other => return Err(self.unexpected(other)),
            }
        }
    }

    /// Removes the selected jobs; returns how many were marked for removal.
    pub async fn remove(&mut self, selectors: Vec<Selector>) -> Result<u64, ConnectError> {
        match self.call(ToMaster::Remove { selectors }).await? {
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
        match self.call(ToMaster::Release { selectors }).await? {
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

    fn unexpected(&self, m: FromMaster) -> ConnectError {
        let what: String = format!("{m:?}").chars().take(120).collect();
        ConnectError::Protocol {
            addr: self.addr.clone(),
            what,
        }
    }
}
