//! The master as a foreman's local queue: what it does differently when it
//! has an upstream (see `crate::foreman`). Jobs come from the upstream as
//! adoptions, removals as its kills; start reports and results go up; it
//! reports its workers' summed resources as they come and go.

use super::Master;
use crate::foreman::{
    Adopt, BlobFetched, ForUpstream, Forwarded, Forwards, Registration, SetUpstream, Up,
    UpstreamKill,
};
use actix::prelude::*;
use pilotq_journal::{now_ms, Event, JobState};
use pilotq_wire::{Holding, HoldingState, JobId, JobResult, Resources, Selector};

impl Master {
    /// What this foreman offers upstream: its connected workers' resources;
    /// nothing while its journal's disk is below its floor (adopting jobs is
    /// what grows a foreman's journal; the jobs it has run on).
    fn offered(&self) -> Resources {
        if self.low_disk.is_some() {
            return Resources::default();
        }
        self.holders
            .values()
            .filter(|h| h.outbox.is_some() && !h.draining)
            .fold(Resources::default(), |acc, h| acc.plus(&h.resources))
    }

    /// Tells the upstream when the offer changed.
    pub(crate) fn report_capacity(&mut self) {
        let Some(up) = self.seat.up() else { return };
        let now = self.offered();
        if self.capacity_sent != Some(now) {
            self.capacity_sent = Some(now);
            up.do_send(Up::Capacity(now));
        }
    }

    /// Every adopted job this foreman still owes the master something for.
    fn holdings(&self) -> Vec<Holding> {
        let mut out = Vec::new();
        for (cid, c) in self.table.clusters() {
            for (proc, j) in c.records() {
                if j.pinned == 0 {
                    continue;
                }
                let state = match &j.state {
                    JobState::Idle | JobState::Assigned { .. } => HoldingState::Queued,
                    JobState::Running { started_at, .. } => HoldingState::Running {
                        started_at: *started_at,
                    },
                    // Finished here: its result is in the forward tree, or
                    // was acknowledged.
                    _ => continue,
                };
                out.push(Holding {
                    job: JobId {
                        cluster: *cid,
                        proc,
                    },
                    attempt: j.pinned,
                    state,
                    // Our master has the spec: it handed us the job.
                    spec: None,
                    wrapper: None,
                    // The key proves it, should the master have it on
                    // another holder (a worker failed over to us).
                    key: j.key,
                });
            }
        }
        for r in self.owed_results() {
            out.push(Holding {
                job: r.job,
                attempt: r.attempt,
                state: HoldingState::ResultFollows,
                spec: None,
                wrapper: None,
                key: r.key,
            });
        }
        out
    }

    /// An executable (or wrapper) its jobs need cannot be had: each idle
    /// job waiting for it leaves this queue and goes back to the master as
    /// failed to start, with `why` (the master holds it), rather than
    /// waiting here for ever.
    fn give_up_waiting_for(&mut self, hash: &str, why: String) {
        tracing::error!(%hash, "{why}: its jobs go back to the master as failed to start");
        let Some(up) = self.seat.up().cloned() else {
            return;
        };
        let now = now_ms();
        let mut events = Vec::new();
        let mut results = Vec::new();
        for (cid, c) in self.table.clusters() {
            if c.spec.executable != hash && c.wrapper.as_deref() != Some(hash) {
                continue;
            }
            for (proc, j) in c.records() {
                if j.pinned == 0 || j.state != JobState::Idle {
                    continue;
                }
                let job = JobId {
                    cluster: *cid,
                    proc,
                };
                events.push(Event::JobRemoved { job, at: now });
                results.push(JobResult {
                    job,
                    attempt: j.pinned,
                    outcome: pilotq_wire::Outcome::FailedToStart {
                        reason: why.clone(),
                    },
                    started_at: now,
                    ended_at: now,
                    stdout: Vec::new(),
                    stderr: Vec::new(),
                    key: j.key,
                });
            }
        }
        if results.is_empty() {
            return;
        }
        // Kept for the master before the append, durable with it.
        self.keep_for_upstream(&results);
        self.commit(events, vec![], move || up.do_send(Up::Finished(results)));
    }

    /// Results still owed to the master. An entry that cannot be read is
    /// reported and skipped; the others still go up.
    fn owed_results(&self) -> Vec<JobResult> {
        let f = self.store.forwards();
        for bad in &f.bad {
            tracing::error!("a result kept for the master cannot be read and is skipped: {bad}");
        }
        f.results
    }

    /// On a foreman: asks the master for an executable (or job wrapper) this
    /// foreman lacks, once; it is stored when it comes (`BlobFetched`), and
    /// asked again at the next registration if the link drops meanwhile.
    pub(crate) fn fetch_blob(&mut self, hash: &str) {
        let Some(up) = self.seat.up() else { return };
        if self.fetching.contains(hash) || self.has_blob_here(hash) {
            return;
        }
        self.fetching.insert(hash.to_string());
        up.do_send(Up::FetchBlob(hash.to_string()));
    }

    /// Results go up through the forward tree (durable with the completion's
    /// flush) instead of into job files.
    pub(crate) fn keep_for_upstream(&self, results: &[JobResult]) {
        for r in results {
            if let Err(e) = self.store.put_forward(r) {
                tracing::error!(job = %r.job, "cannot keep a result for the master: {e}");
            }
        }
    }
}

impl Handler<SetUpstream> for Master {
    type Result = ();

    fn handle(&mut self, m: SetUpstream, _ctx: &mut Context<Self>) {
        self.seat = super::seat::Seat::Local { up: m.0 };
        self.capacity_sent = None;
        self.report_capacity();
    }
}

impl Handler<ForUpstream> for Master {
    type Result = Registration;

    fn handle(&mut self, _m: ForUpstream, _ctx: &mut Context<Self>) -> Registration {
        let capacity = self.offered();
        self.capacity_sent = Some(capacity);
        Registration {
            holdings: self.holdings(),
            capacity,
            fetching: self.fetching.iter().cloned().collect(),
            paused: self.paused.clone(),
        }
    }
}

impl Handler<Forwards> for Master {
    type Result = MessageResult<Forwards>;

    fn handle(&mut self, _m: Forwards, _ctx: &mut Context<Self>) -> Self::Result {
        MessageResult(self.owed_results())
    }
}

impl Handler<BlobFetched> for Master {
    type Result = ();

    /// Stores a fetched executable (checked against its hash) and runs what
    /// waited for it.
    fn handle(&mut self, m: BlobFetched, ctx: &mut Context<Self>) {
        if !self.fetching.remove(&m.hash) {
            return;
        }
        let Some(bytes) = m.bytes else {
            return self.give_up_waiting_for(
                &m.hash,
                format!("the master does not have executable {}", m.hash),
            );
        };
        let got = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&bytes));
        if got != m.hash {
            return self.give_up_waiting_for(
                &m.hash,
                format!(
                    "the master sent bytes that do not match executable {}",
                    m.hash
                ),
            );
        }
        self.remember_blob(m.hash.clone(), bytes.clone());
        self.commit(vec![], vec![(m.hash, bytes)], || {});
        self.schedule_dispatch(ctx);
    }
}

impl Handler<Forwarded> for Master {
    type Result = ();

    fn handle(&mut self, m: Forwarded, _ctx: &mut Context<Self>) {
        for a in m.0 {
            if let Err(e) = self.store.drop_forward(a.job, a.attempt) {
                tracing::warn!(job = %a.job, "cannot drop an acknowledged result: {e}");
            }
        }
    }
}

impl Handler<Adopt> for Master {
    type Result = ();

    fn handle(&mut self, m: Adopt, ctx: &mut Context<Self>) {
        let at = now_ms();
        let mut events = Vec::new();
        let mut blobs = Vec::new();
        // The spec comes with a cluster's first job, maybe earlier in this
        // very batch (not yet in the table).
        let mut fresh: std::collections::HashMap<pilotq_wire::ClusterId, String> =
            Default::default();
        for a in m.0 {
            if let Some(w) = &a.wrapper {
                match &a.wrapper_bytes {
                    Some(bytes) => {
                        if !self.store.has_blob(w).unwrap_or(false) {
                            blobs.push((w.clone(), bytes.clone()));
                        }
                        self.remember_blob(w.clone(), bytes.clone());
                    }
                    None => self.fetch_blob(w),
                }
            }
            let known = fresh.get(&a.job.cluster).cloned();
            let hash = match (&a.spec, self.table.cluster(a.job.cluster), known) {
                (Some(s), _, _) => {
                    fresh.insert(a.job.cluster, s.executable.clone());
                    s.executable.clone()
                }
                (None, Some(c), _) => c.spec.executable.clone(),
                (None, None, Some(h)) => h,
                (None, None, None) => {
                    tracing::error!(job = %a.job, "adopted job of an unknown cluster without its spec; dropped");
                    continue;
                }
            };
            if let Some(bytes) = a.executable {
                if !self.store.has_blob(&hash).unwrap_or(false) {
                    blobs.push((hash.clone(), bytes.clone()));
                }
                self.remember_blob(hash, bytes);
            }
            events.push(Event::JobAdopted {
                job: a.job,
                attempt: a.attempt,
                spec: a.spec.map(Box::new),
                at,
                wrapper: a.wrapper,
                key: a.key,
            });
        }
        if !events.is_empty() {
            self.commit(events, blobs, || {});
            self.schedule_dispatch(ctx);
        }
    }
}

impl Handler<UpstreamKill> for Master {
    type Result = ();

    fn handle(&mut self, m: UpstreamKill, _ctx: &mut Context<Self>) {
        let selectors: Vec<Selector> =
            m.0.iter()
                .filter(|k| {
                    self.table
                        .job(k.job)
                        .is_some_and(|r| r.job.pinned == k.attempt)
                })
                .map(|k| Selector::Job(k.job))
                .collect();
        // Their results, if any, are moot too.
        for k in &m.0 {
            let _ = self.store.drop_forward(k.job, k.attempt);
        }
        if !selectors.is_empty() {
            self.remove_jobs(selectors, None, |_| {});
        }
    }
}
