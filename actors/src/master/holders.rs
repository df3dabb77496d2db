//! Workers and foremen: registration (and reclaim after a restart), start
//! reports, heartbeats and leases. Results are in `outputs.rs`.
//!
//! Attempts decide everything: a report for any attempt but the job's current
//! one is refused, and its holder told (once that is durable) to kill and
//! drop it.

use super::{HolderRt, Master};
use crate::outbox::Outbox;
use actix::prelude::*;
use pilotq_journal::{now_ms, Event, JobState};
use pilotq_wire::message::{Attempt, Started};
use pilotq_wire::{AttemptKey, FromMaster, Holding, HoldingState, JobId, Resources, Role};
use std::collections::HashSet;
use std::time::{Duration, Instant};

/// What a registering holder offers: its resources, and how many times them
/// it takes at once (its queue depth).
pub(crate) struct Offer {
    pub resources: Resources,
    pub depth: u32,
    pub max_jobs: u32,
    pub tags: Vec<String>,
    pub token: Vec<u8>,
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
                    token: None,
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

    /// Durable with the journal's next flush, on its thread: a lease tick
    /// never flushes sled on the master's.
    fn record_reclaim(&self, spent: Option<Duration>) {
        let ms = spent.map(|d| d.as_millis().min(u64::MAX as u128) as u64);
        self.writer.record_reclaim(ms);
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
            token,
        } = offer;
        // Is it the holder we know under this name? Only one that shows the
        // token that name registered with takes its attempts back; the
        // holder secret alone (every pilot has it) does not.
        let known = self.holders.get(&name);
        let stranger = known
            .and_then(|h| h.token.as_ref())
            .is_some_and(|t| *t != token);
        if stranger && known.is_some_and(|h| h.outbox.is_some()) {
            tracing::warn!(holder = %name, "refused a registration under a live holder's name without its token");
            outbox.deliver(FromMaster::Error {
                message: format!("holder name {name:?} is in use by a live connection; start this holder under another name"),
            });
            outbox.closed.cancel();
            return;
        }
        if stranger {
            tracing::warn!(holder = %name, "a new holder took the name of one that left: its attempts are requeued, not handed over");
        }
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
                token: Some(token),
            },
        );

        let now = now_ms();
        let mut events = Vec::new();
        let mut kills = Vec::new();
        let mut results = Vec::new();
        let mut reported: HashSet<JobId> = HashSet::new();
        let mut adopted = Vec::new();
        for h in holdings {
            if stranger {
                // Not this name's attempts to report: whatever it runs of
                // them is stopped, and its results are not taken.
                if matches!(h.state, HoldingState::Queued | HoldingState::Running { .. }) {
                    kills.push(Attempt {
                        job: h.job,
                        attempt: h.attempt,
                        key: None,
                    });
                }
                continue;
            }
            reported.insert(h.job);
            let current = self.claim(&name, h.job, h.attempt, h.key);
            // A foreman adopts what a worker that failed over to it brings
            // (its master moves the job to this foreman when it hears of it).
            let adoptable = !current
                && self.seat.is_local()
                && self.table.job(h.job).is_none()
                // One that finished here never runs again.
                && !self.table.has_left(h.job)
                && h.spec.is_some()
                && matches!(h.state, HoldingState::Queued | HoldingState::Running { .. });
            if adoptable {
                let at = now_ms();
                // Its executable and wrapper come from the master, for when
                // it runs anywhere but on the worker that brought it.
                if let Some(spec) = &h.spec {
                    self.fetch_blob(&spec.executable);
                }
                if let Some(w) = &h.wrapper {
                    self.fetch_blob(w);
                }
                events.push(Event::JobAdopted {
                    job: h.job,
                    attempt: h.attempt,
                    spec: h.spec,
                    at,
                    wrapper: h.wrapper,
                    key: h.key,
                });
                events.push(Event::JobDispatched {
                    job: h.job,
                    attempt: h.attempt,
                    holder: name.clone(),
                    at,
                });
                match h.state {
                    HoldingState::Running { started_at } => events.push(Event::JobStarted {
                        job: h.job,
                        attempt: h.attempt,
                        at: started_at,
                    }),
                    // A start goes up by itself; a queued job is reported up
                    // so that its master moves the attempt here too.
                    _ => adopted.push(Attempt {
                        job: h.job,
                        attempt: h.attempt,
                        key: h.key,
                    }),
                }
                tracing::info!(job = %h.job, worker = %name, "adopted a job its worker brought from another foreman");
                continue;
            }
            match (h.state, current) {
                (HoldingState::Queued, true) => {}
                (HoldingState::Queued, false) => kills.push(Attempt {
                    job: h.job,
                    attempt: h.attempt,
                    key: None,
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
                    key: None,
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
        // Kills go out once the state that makes those attempts stale is
        // durable (it may still be in flight: a requeue a moment ago).
        let kill_ob = outbox.clone();
        let up = self.seat.up().cloned().filter(|_| !adopted.is_empty());
        self.commit(events, vec![], move || {
            if !kills.is_empty() {
                kill_ob.deliver(FromMaster::Kill(kills));
            }
            if let Some(up) = up {
                up.do_send(crate::foreman::Up::Adopted(adopted));
            }
        });
        if !results.is_empty() {
            self.on_results(ctx, &name, outbox, results);
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
            if !self.claim(name, s.job, s.attempt, s.key) {
                kills.push(Attempt {
                    job: s.job,
                    attempt: s.attempt,
                    key: None,
                });
            } else if matches!(self.state_of(s.job), Some(JobState::Assigned { .. })) {
                events.push(Event::JobStarted {
                    job: s.job,
                    attempt: s.attempt,
                    at: s.at,
                });
            }
        }
        if !events.is_empty() {
            self.commit(events, vec![], || {});
        }
        if !kills.is_empty() {
            if let Some(ob) = self.outbox_of(name) {
                // Once what makes them stale is durable.
                self.after_durable(move || {
                    ob.deliver(FromMaster::Kill(kills));
                });
            }
        }
    }

    /// Whether `attempt` is the one that completed `job` (a late report, or
    /// a result resent after its acknowledgement was lost).
    fn completed_by(&self, job: JobId, attempt: u32) -> bool {
        self.table.job(job).is_some_and(|r| {
            matches!(r.job.state, JobState::Completed { .. }) && r.job.attempts == attempt
        })
    }

    /// A foreman reports attempts a worker brought it, queued, from another
    /// holder: each is moved to it if its holder is gone (as a start report
    /// would), else it is told to drop it, once that is durable.
    pub(crate) fn on_adopted(&mut self, name: &str, conn: u64, attempts: Vec<Attempt>) {
        if !self.touch(name, conn) {
            return;
        }
        // A queued copy of an attempt that already completed must not run.
        let kills: Vec<Attempt> = attempts
            .into_iter()
            .filter(|a| !self.claim(name, a.job, a.attempt, a.key))
            .collect();
        if kills.is_empty() {
            return;
        }
        if let Some(ob) = self.outbox_of(name) {
            self.after_durable(move || {
                ob.deliver(FromMaster::Kill(kills));
            });
        }
    }

    /// A holder asks for an executable by hash (a foreman that adopted a job
    /// from a worker that failed over to it). Read off this thread.
    pub(crate) fn on_fetch_blob(&mut self, ob: Outbox<FromMaster>, hash: String) {
        let own_wrapper = self
            .wrapper
            .as_ref()
            .filter(|(h, _)| *h == hash)
            .map(|(_, b)| b.clone());
        if let Some(bytes) = own_wrapper.or_else(|| self.blobs.get(&hash).cloned()) {
            ob.deliver(FromMaster::Blob {
                hash,
                bytes: Some(bytes),
            });
            return;
        }
        let store = self.store.clone();
        tokio::task::spawn_blocking(move || {
            let bytes = store.blob(&hash).ok().flatten();
            ob.deliver(FromMaster::Blob { hash, bytes });
        });
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
        // Its result is here, its files being written: it settles the job
        // (running it again would race that attempt's files with the next's).
        if self.placing.contains_key(&(job, attempt)) {
            return None;
        }
        // A foreman's job belongs to its master's attempt: a worker lost here
        // sends it back to the local queue; holding is the master's call.
        let pinned = r.job.pinned > 0;
        Some(if !pinned && r.job.attempts >= self.cfg.max_attempts {
            Event::JobHeld {
                job,
                reason: format!("{why}; {} attempts spent", r.job.attempts),
                at: now,
                kept: None,
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
    pub(crate) fn claim(
        &mut self,
        holder: &str,
        job: JobId,
        attempt: u32,
        key: Option<AttemptKey>,
    ) -> bool {
        if !self.claimable(holder, job, attempt, key) {
            return false;
        }
        if self.is_current(holder, job, attempt) {
            return true;
        }
        tracing::info!(%job, attempt, to = %holder, "attempt reported by another holder; moved to it");
        let e = Event::JobMoved {
            job,
            attempt,
            holder: holder.to_string(),
            at: now_ms(),
        };
        self.table.apply(&e);
        self.commit_applied(vec![e], vec![], vec![], || {});
        true
    }

    /// Whether [`Master::claim`] would grant `holder` the attempt (without
    /// moving it). Every report of an attempt shows its key
    /// (`pilotq_wire::attempt_key`): every pilot has the holder secret, and a
    /// name is only a claim (after a master restart, the first registration
    /// under a name is believed), so the key, which only the chain the
    /// attempt was dispatched down has, is what proves it. With it, a holder
    /// may report its own attempt, or take over one whose holder is gone (a
    /// worker that failed over).
    pub(crate) fn claimable(
        &self,
        holder: &str,
        job: JobId,
        attempt: u32,
        key: Option<AttemptKey>,
    ) -> bool {
        let expected = self.seat.attempt_key(&self.table, job, attempt);
        let proven = match (expected, key) {
            (Some(e), Some(k)) => k.matches(&e),
            (Some(_), None) => false,
            // A foreman sent no key by its master has nothing to check.
            (None, _) => true,
        };
        if self.is_current(holder, job, attempt) {
            if !proven {
                tracing::warn!(%job, attempt, by = %holder, "a holder reported its attempt without the attempt's key: refused");
            }
            return proven;
        }
        let gone = match self.table.job(job).and_then(|r| r.job.state.out_on()) {
            Some((owner, a)) if a == attempt => self
                .holders
                .get(&**owner)
                .is_none_or(|h| h.outbox.is_none()),
            _ => false,
        };
        if !gone {
            return false;
        }
        // Taking over another's attempt needs a key there is to check.
        let proven = proven && expected.is_some();
        if !proven {
            tracing::warn!(%job, attempt, by = %holder, "a holder reported another's attempt without its key: refused");
        }
        proven
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

    pub(crate) fn state_of(&self, job: JobId) -> Option<&JobState> {
        self.table.job(job).map(|r| &r.job.state)
    }

    pub(crate) fn outbox_of(&self, name: &str) -> Option<Outbox<FromMaster>> {
        self.holders.get(name).and_then(|h| h.outbox.clone())
    }
}
