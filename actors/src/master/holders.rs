//! Workers and foremen: registration (and reclaim after a restart), started
//! and finished reports, heartbeats and leases.
//!
//! Attempts decide everything: a report for any attempt but the job's current
//! one is refused, and its holder told to kill and drop it. A result is
//! acknowledged only once its event is durable; a holder resends what was not
//! acknowledged, and a duplicate (an attempt already completed) is simply
//! acknowledged again.

use super::{HolderRt, Master};
use crate::files::WriteJobFiles;
use crate::outbox::Outbox;
use actix::prelude::*;
use pilotq_journal::{now_ms, Event, JobState};
use pilotq_wire::message::{Attempt, Started};
use pilotq_wire::{FromMaster, Holding, HoldingState, JobId, JobResult, Outcome, Resources, Role};
use std::collections::HashSet;
use std::time::{Duration, Instant};

/// What a registering holder offers: its resources, and how many times them
/// it takes at once (its queue depth).
pub(crate) struct Offer {
    pub resources: Resources,
    pub depth: u32,
    pub max_jobs: u32,
    pub tags: Vec<String>,
}

/// The reclaim window of one start (see [`Master::adopt_orphans`]).
pub(crate) struct Reclaim {
    /// This start.
    since: Instant,
    /// Uptime spent in earlier starts of the same window.
    spent_before: Duration,
    /// Holders with jobs out at this start that have neither come back nor
    /// been given up on.
    waiting: HashSet<String>,
}

impl Master {
    /// After a restart every job out on a holder is *disconnected*: its
    /// holder gets what is left of the reclaim window to come back and
    /// reclaim it.
    ///
    /// The window is one lease of master *uptime*, summed over an unbroken
    /// run of restarts (kept beside the journal, see `Store::reclaim_spent`),
    /// not a fresh lease at each start: a master restarted faster than its
    /// lease would otherwise never requeue the jobs of holders that died
    /// meanwhile (`pilotq sim --kill-master-every 2s --worker-churn 5` found
    /// this). Time the master is down does not count, since nobody can come
    /// back then, and each start still gives holders at least one heartbeat
    /// period. The window closes as soon as every such holder has come back
    /// or been given up on.
    pub(crate) fn adopt_orphans(&mut self) {
        let now = Instant::now();
        let names: Vec<String> = self.table.holders().map(|(h, _)| h.to_string()).collect();
        if names.is_empty() {
            self.reclaim = None;
            self.record_reclaim(None);
            return;
        }
        let stored = match self.store.reclaim_spent() {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!("cannot read the reclaim window: {e}");
                None
            }
        };
        let grace = self.cfg.heartbeat.min(self.cfg.lease);
        let spent =
            Duration::from_millis(stored.unwrap_or(0)).min(self.cfg.lease.saturating_sub(grace));
        if !spent.is_zero() {
            tracing::warn!(
                spent_s = spent.as_secs_f64(),
                "restarted within the reclaim window of an earlier start: holders have {:.1} s to come back",
                (self.cfg.lease - spent).as_secs_f64()
            );
        }
        let last_seen = now.checked_sub(spent).unwrap_or(now);
        for name in &names {
            self.holders.insert(
                name.clone(),
                HolderRt {
                    outbox: None,
                    resources: Resources::default(),
                    capacity: Resources::default(),
                    depth: 1,
                    last_seen,
                    blobs_sent: HashSet::new(),
                    specs_sent: HashSet::new(),
                    max_jobs: 0,
                    tags: Vec::new(),
                    draining: false,
                },
            );
        }
        self.reclaim = Some(Reclaim {
            since: now,
            spent_before: spent,
            waiting: names.into_iter().collect(),
        });
        // Recorded at once: a crash a moment from now must not reopen the
        // window from zero.
        self.record_reclaim(Some(spent));
    }

    /// Brings the reclaim window up to date (from `check_leases`): holders
    /// that came back or were given up on leave it; when none is left it
    /// closes, else the uptime spent so far is recorded.
    fn advance_reclaim(&mut self) {
        let Some(r) = &mut self.reclaim else {
            return;
        };
        let holders = &self.holders;
        r.waiting.retain(|name| {
            holders
                .get(name)
                .is_some_and(|h| h.outbox.is_none() && h.last_seen <= r.since)
        });
        if r.waiting.is_empty() {
            tracing::info!("reclaim window closed: every holder came back or was given up on");
            self.reclaim = None;
            self.record_reclaim(None);
        } else {
            let spent = r.spent_before + r.since.elapsed();
            self.record_reclaim(Some(spent));
        }
    }

    fn record_reclaim(&self, spent: Option<Duration>) {
        let ms = spent.map(|d| d.as_millis().min(u64::MAX as u128) as u64);
        if let Err(e) = self.store.set_reclaim_spent(ms) {
            tracing::warn!("cannot record the reclaim window: {e}");
        }
    }

    /// Whether `conn` is the live connection of holder `name`; refreshes its lease.
    pub(crate) fn touch(&mut self, name: &str, conn: u64) -> bool {
        match self.holders.get_mut(name) {
            Some(h) if h.outbox.as_ref().is_some_and(|o| o.conn == conn) => {
                h.last_seen = Instant::now();
                true
            }
            _ => false,
        }
    }

    pub(crate) fn on_register(
        &mut self,
        ctx: &mut Context<Self>,
        role: Role,
        name: String,
        outbox: Outbox<FromMaster>,
        offer: Offer,
        holdings: Vec<Holding>,
    ) {
        let Offer {
            resources,
            depth,
            max_jobs,
            tags,
        } = offer;
        if let Some(old) = self.holders.get(&name).and_then(|h| h.outbox.clone()) {
            if old.conn != outbox.conn {
                tracing::info!(holder = %name, "holder reconnected; closing its old connection");
                old.closed.cancel();
            }
        }
        tracing::info!(holder = %name, %role, %resources, holdings = holdings.len(), "holder registered");
        self.holders.insert(
            name.clone(),
            HolderRt {
                outbox: Some(outbox.clone()),
                resources,
                capacity: resources.times(depth.clamp(1, 64)),
                depth: depth.clamp(1, 64),
                max_jobs,
                tags,
                draining: false,
                last_seen: Instant::now(),
                blobs_sent: HashSet::new(),
                specs_sent: HashSet::new(),
            },
        );

        let now = now_ms();
        let mut events = Vec::new();
        let mut kills = Vec::new();
        let mut results = Vec::new();
        let mut reported: HashSet<JobId> = HashSet::new();
        for h in holdings {
            reported.insert(h.job);
            let current = self.claim(&name, h.job, h.attempt);
            // A foreman adopts what a worker that failed over to it brings
            // (its master moves the job to this foreman when it hears of it).
            let adoptable = !current
                && self.upstream.is_some()
                && self.table.job(h.job).is_none()
                && h.spec.is_some()
                && matches!(h.state, HoldingState::Queued | HoldingState::Running { .. });
            if adoptable {
                let at = now_ms();
                events.push(Event::JobAdopted {
                    job: h.job,
                    attempt: h.attempt,
                    spec: h.spec,
                    at,
                });
                events.push(Event::JobDispatched {
                    job: h.job,
                    attempt: h.attempt,
                    holder: name.clone(),
                    at,
                });
                if let HoldingState::Running { started_at } = h.state {
                    events.push(Event::JobStarted {
                        job: h.job,
                        attempt: h.attempt,
                        at: started_at,
                    });
                }
                tracing::info!(job = %h.job, worker = %name, "adopted a job its worker brought from another foreman");
                continue;
            }
            match (h.state, current) {
                (HoldingState::Queued, true) => {}
                (HoldingState::Queued, false) => kills.push(Attempt {
                    job: h.job,
                    attempt: h.attempt,
                }),
                (HoldingState::Running { started_at }, true) => {
                    if matches!(self.state_of(h.job), Some(JobState::Assigned { .. })) {
                        events.push(Event::JobStarted {
                            job: h.job,
                            attempt: h.attempt,
                            at: started_at,
                        });
                    }
                }
                (HoldingState::Running { .. }, false) => kills.push(Attempt {
                    job: h.job,
                    attempt: h.attempt,
                }),
                // Current, already recorded, or stale: `on_finished_from`
                // tells them apart.
                (HoldingState::Finished(r), _) => results.push(r),
                // Reclaimed until its result arrives (or, if stale, acked
                // as such when it does).
                (HoldingState::ResultFollows, _) => {}
            }
        }
        // Jobs we think are out on this holder but that it does not hold were
        // lost with its previous life (or never reached it): requeue them now
        // rather than waiting out the lease.
        let lost: Vec<JobId> = self
            .table
            .jobs_on(&name)
            .filter(|j| !reported.contains(j))
            .collect();
        for job in lost {
            events.extend(self.requeue_or_hold(job, "holder no longer has the job", now));
        }
        if !kills.is_empty() {
            outbox.deliver(FromMaster::Kill(kills));
        }
        self.commit(events, vec![], || {});
        if !results.is_empty() {
            self.on_finished_from(&name, outbox, results);
        }
        self.report_capacity();
        self.schedule_dispatch(ctx);
    }

    /// A holder's offer changed (a foreman's workers came or went).
    pub(crate) fn on_capacity(
        &mut self,
        ctx: &mut Context<Self>,
        name: &str,
        conn: u64,
        resources: Resources,
    ) {
        if !self.touch(name, conn) {
            return;
        }
        if let Some(h) = self.holders.get_mut(name) {
            h.resources = resources;
            h.capacity = resources.times(h.depth);
            tracing::info!(holder = %name, %resources, "holder's offer changed");
        }
        self.schedule_dispatch(ctx);
    }

    /// A holder wants no more jobs: none is planned for it from now on, and
    /// `Drained` reaches it after every dispatch already made to it.
    pub(crate) fn on_drain(&mut self, name: &str, conn: u64, ob: Outbox<FromMaster>) {
        if !self.touch(name, conn) {
            return;
        }
        if let Some(h) = self.holders.get_mut(name) {
            h.draining = true;
        }
        self.report_capacity();
        tracing::info!(holder = %name, "holder draining: no more jobs for it");
        self.after_durable(move || {
            ob.deliver(FromMaster::Drained);
        });
    }

    pub(crate) fn on_started(&mut self, name: &str, conn: u64, started: Vec<Started>) {
        if !self.touch(name, conn) {
            return;
        }
        let mut events = Vec::new();
        let mut kills = Vec::new();
        for s in started {
            if self.completed_by(s.job, s.attempt) {
                // A late start report of a job that already finished.
                continue;
            }
            if !self.claim(name, s.job, s.attempt) {
                kills.push(Attempt {
                    job: s.job,
                    attempt: s.attempt,
                });
            } else if matches!(self.state_of(s.job), Some(JobState::Assigned { .. })) {
                events.push(Event::JobStarted {
                    job: s.job,
                    attempt: s.attempt,
                    at: s.at,
                });
            }
        }
        if !kills.is_empty() {
            if let Some(ob) = self.outbox_of(name) {
                ob.deliver(FromMaster::Kill(kills));
            }
        }
        if !events.is_empty() {
            self.commit(events, vec![], || {});
        }
    }

    pub(crate) fn on_finished(&mut self, name: &str, conn: u64, results: Vec<JobResult>) {
        if !self.touch(name, conn) {
            return;
        }
        let Some(ob) = self.outbox_of(name) else {
            return;
        };
        self.on_finished_from(name, ob, results);
    }

    /// Results from `name`. The completion is applied and journaled at once
    /// (so the table never shows a finished job still running); once it is
    /// durable the job's output and error files are written, and only then
    /// is the result acknowledged. A crash in between loses nothing: the
    /// holder resends the unacknowledged result, and a result for the attempt
    /// that already completed the job gets its files written again.
    fn on_finished_from(&mut self, name: &str, ob: Outbox<FromMaster>, results: Vec<JobResult>) {
        let now = now_ms();
        let mut events = Vec::new();
        let mut acks = Vec::new();
        let mut files = Vec::new();
        // On a foreman: results for the master, instead of job files.
        let mut up = Vec::new();
        let foreman = self.upstream.is_some();
        for r in results {
            acks.push(Attempt {
                job: r.job,
                attempt: r.attempt,
            });
            // A foreman passes up results of jobs it never had (its worker
            // failed over to it with them): its master decides.
            if foreman && self.table.job(r.job).is_none() {
                up.push(r);
                continue;
            }
            let current = self.claim(name, r.job, r.attempt);
            if !current && !self.completed_by(r.job, r.attempt) {
                continue; // stale or unknown: the holder may forget it
            }
            if foreman {
                if current {
                    up.push(r.clone());
                }
            } else if let Some(c) = self.table.cluster(r.job.cluster) {
                let spec = &c.spec;
                if spec.output.is_some() || spec.error.is_some() {
                    files.push(WriteJobFiles {
                        stdout: spec.output_path(r.job).map(|p| (p, r.stdout.clone())),
                        stderr: spec.error_path(r.job).map(|p| (p, r.stderr.clone())),
                    });
                }
            }
            if current {
                // A job that ran and ended before its start was reported (the
                // worker folds the start into the result): it still started,
                // and job event logs want 001 before 005.
                let ran = !matches!(r.outcome, Outcome::FailedToStart { .. });
                if ran && matches!(self.state_of(r.job), Some(JobState::Assigned { .. })) {
                    events.push(Event::JobStarted {
                        job: r.job,
                        attempt: r.attempt,
                        at: r.started_at,
                    });
                }
                events.push(match r.outcome {
                    Outcome::FailedToStart { reason } => Event::JobHeld {
                        job: r.job,
                        reason: format!("failed to start on {name}: {reason}"),
                        at: now,
                    },
                    outcome => Event::JobCompleted {
                        job: r.job,
                        attempt: r.attempt,
                        outcome,
                        at: r.ended_at.max(1),
                    },
                });
            }
        }
        if acks.is_empty() {
            return;
        }
        // The freed resources are refilled in the same journal append as the
        // results: one flush per round trip instead of two.
        let logs = crate::user_log::entries_for(&self.table, &events, &self.host);
        for e in &events {
            self.table.apply(e);
        }
        let (mut dispatched, deliveries) = self.plan_dispatch(vec![name.to_string()]);
        events.append(&mut dispatched);
        let writer = self.files.clone();
        // Kept before the append, so its flush makes them durable together.
        self.keep_for_upstream(&up);
        let upstream = self.upstream.clone();
        self.commit_applied(events, logs, move || {
            super::dispatch::deliver(deliveries);
            if let (Some(u), false) = (upstream, up.is_empty()) {
                u.do_send(crate::foreman::Up::Finished(up));
            }
            let ack = move || {
                ob.deliver(FromMaster::Ack(acks));
            };
            if files.is_empty() {
                ack();
            } else {
                // One message per result batch, and batches are bounded by
                // what was dispatched, so the file writers' queue is too.
                writer.do_send(WriteJobFiles::batch(files, Box::new(ack)));
            }
        });
    }

    /// Whether `attempt` is the one that completed `job` (a result resent
    /// after a crash, or after its acknowledgement was lost).
    fn completed_by(&self, job: JobId, attempt: u32) -> bool {
        self.table.job(job).is_some_and(|r| {
            matches!(r.job.state, JobState::Completed { .. }) && r.job.attempts == attempt
        })
    }

    /// Requeues (or, with its attempts spent, holds) every job of holders
    /// silent for longer than the lease.
    pub(crate) fn check_leases(&mut self, ctx: &mut Context<Self>) {
        let lease = self.cfg.lease;
        let lost: Vec<String> = self
            .holders
            .iter()
            .filter(|(_, h)| h.last_seen.elapsed() > lease)
            .map(|(n, _)| n.clone())
            .collect();
        if lost.is_empty() {
            self.advance_reclaim();
            return;
        }
        let now = now_ms();
        let mut events = Vec::new();
        for name in &lost {
            let h = self.holders.remove(name).expect("listed");
            if let Some(ob) = h.outbox {
                ob.closed.cancel();
            }
            let jobs: Vec<JobId> = self.table.jobs_on(name).collect();
            tracing::warn!(holder = %name, jobs = jobs.len(), "holder lost: lease expired");
            for job in jobs {
                events.extend(self.requeue_or_hold(
                    job,
                    &format!("holder {name} lost (lease expired)"),
                    now,
                ));
            }
        }
        self.commit(events, vec![], || {});
        self.advance_reclaim();
        self.report_capacity();
        self.schedule_dispatch(ctx);
    }

    /// The event that takes a job back from a lost holder.
    fn requeue_or_hold(&self, job: JobId, why: &str, now: u64) -> Option<Event> {
        let r = self.table.job(job)?;
        let (_, attempt) = r.job.state.out_on()?;
        // A foreman's job belongs to its master's attempt: a worker lost here
        // sends it back to the local queue; holding is the master's call.
        let pinned = r.job.pinned > 0;
        Some(if !pinned && r.job.attempts >= self.cfg.max_attempts {
            Event::JobHeld {
                job,
                reason: format!("{why}; {} attempts spent", r.job.attempts),
                at: now,
            }
        } else {
            Event::JobRequeued {
                job,
                attempt,
                reason: why.to_string(),
                at: now,
            }
        })
    }

    /// Whether `holder` may report on attempt `attempt` of `job`: it holds
    /// it, or the attempt's holder is gone (not connected) and `holder` now
    /// has it — a worker that failed over to another foreman, which reports
    /// it. Then the job is moved to `holder` (journaled first, in order).
    fn claim(&mut self, holder: &str, job: JobId, attempt: u32) -> bool {
        if self.is_current(holder, job, attempt) {
            return true;
        }
        let owner_gone = match self
            .table
            .job(job)
            .and_then(|r| r.job.state.out_on().map(|(h, a)| (h.clone(), a)))
        {
            Some((owner, a)) if a == attempt => {
                self.holders.get(&*owner).is_none_or(|h| h.outbox.is_none())
            }
            _ => false,
        };
        if !owner_gone {
            return false;
        }
        tracing::info!(%job, attempt, to = %holder, "attempt reported by another holder; moved to it");
        let e = Event::JobMoved {
            job,
            attempt,
            holder: holder.to_string(),
            at: now_ms(),
        };
        self.table.apply(&e);
        self.commit_applied(vec![e], vec![], || {});
        true
    }

    fn is_current(&self, holder: &str, job: JobId, attempt: u32) -> bool {
        self.table
            .job(job)
            .and_then(|r| {
                r.job
                    .state
                    .out_on()
                    .map(|(h, a)| &**h == holder && a == attempt)
            })
            .unwrap_or(false)
    }

    fn state_of(&self, job: JobId) -> Option<&JobState> {
        self.table.job(job).map(|r| &r.job.state)
    }

    pub(crate) fn outbox_of(&self, name: &str) -> Option<Outbox<FromMaster>> {
        self.holders.get(name).and_then(|h| h.outbox.clone())
    }
}
