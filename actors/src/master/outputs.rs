//! Results, and the outputs that are part of their commit.
//!
//! A result that completes its job goes through three steps, in this order:
//! 1. its `output` and `error` files are put in place (written, synced,
//!    renamed, their directory synced: `crate::files`), off the master's
//!    thread, as the job's owner and never through a symbolic link
//!    (`crate::owner_files`);
//! 2. its completion is journaled (with the dispatches that refill the freed
//!    slots, in the same flush);
//! 3. once that is durable, it is acknowledged, and the holder forgets it.
//!
//! A crash anywhere in between loses nothing: the holder resends what was
//! not acknowledged, the files are put in place again (whole, by rename), and
//! a result for the attempt that already completed the job is simply
//! acknowledged again. If a file cannot be written (a read-only or full
//! filesystem, a missing mount, a directory its owner may not write, a
//! symbolic link in its path) the job is **Held** with a reason that names
//! the path and the OS error, and its result — output included — is kept in
//! the journal (`JobHeld.kept`, the bytes in `blobs`) and acknowledged: the
//! holder may forget it. `pilotq output` prints what was kept, and `pilotq
//! release` writes the files again and, if they now go in, completes the job
//! with its result (a job held for any other reason is Idle again).
//!
//! On a foreman there are no files: results go into the `forward` tree and up
//! to its master (`local_queue.rs`).

use super::Master;
use crate::files::{self, PlaceOutputs, Placed, Targets};
use crate::outbox::Outbox;
use actix::prelude::*;
use pilotq_journal::{now_ms, Event, JobState, KeptOutput};
use pilotq_wire::message::Attempt;
use pilotq_wire::{FromMaster, JobId, JobResult, JobStatus, Outcome, Selector};
use sha2::{Digest, Sha256};

/// A holder's results whose files were put in place (or could not be).
#[derive(Message)]
#[rtype(result = "()")]
pub(crate) struct OutputsPlaced {
    name: String,
    ob: Outbox<FromMaster>,
    results: Vec<JobResult>,
    placed: Placed,
    /// Which results had files to place (the others were not claimable
    /// when they arrived).
    had_files: Vec<bool>,
}

impl Handler<OutputsPlaced> for Master {
    type Result = ();

    fn handle(&mut self, m: OutputsPlaced, ctx: &mut Context<Self>) {
        crate::failpoint::hit("results-files-written");
        let mut waiting = Vec::new();
        for r in &m.results {
            if let Some(w) = self.placing.remove(&(r.job, r.attempt)) {
                waiting.extend(w);
            }
        }
        let placed = m
            .placed
            .into_iter()
            .zip(m.had_files)
            .map(|(p, had)| had.then_some(p))
            .collect();
        self.settle_results(ctx, &m.name, m.ob, m.results, placed);
        // Copies that arrived while the files were written go through as
        // results of their own: acknowledged as copies if the first settled
        // the job, taken if it did not (its sender had lost the job to
        // theirs meanwhile).
        for w in waiting {
            self.on_results(ctx, &w.name, w.ob, vec![w.result]);
        }
    }
}

/// Held jobs whose kept output was written again (or not).
#[derive(Message)]
#[rtype(result = "()")]
struct KeptPlaced {
    ob: Outbox<FromMaster>,
    released: u64,
    problems: Vec<String>,
    jobs: Vec<(JobId, u32, Outcome)>,
    placed: Placed,
}

impl Handler<KeptPlaced> for Master {
    type Result = ();

    fn handle(&mut self, m: KeptPlaced, _ctx: &mut Context<Self>) {
        let KeptPlaced {
            ob,
            mut released,
            mut problems,
            jobs,
            placed,
        } = m;
        let at = now_ms();
        let mut events = Vec::new();
        for ((job, attempt, outcome), p) in jobs.into_iter().zip(placed) {
            // Still held with that result? (It may have been removed since.)
            let Some(kept) = self
                .table
                .kept_output(job)
                .filter(|k| k.attempt == attempt)
                .cloned()
            else {
                continue;
            };
            match p {
                Ok(()) => {
                    released += 1;
                    events.push(Event::JobCompleted {
                        job,
                        attempt,
                        outcome,
                        at,
                    });
                }
                Err(e) => {
                    problems.push(format!("{job}: still held: {e}"));
                    // Held on with today's reason, the same result kept.
                    events.push(Event::JobHeld {
                        job,
                        reason: held_reason(job, &e),
                        at,
                        kept: Some(Box::new(kept)),
                    });
                }
            }
        }
        self.commit(events, vec![], move || {
            ob.deliver(FromMaster::Released {
                jobs: released,
                problems: capped(problems),
            });
        });
    }
}

impl Master {
    pub(crate) fn on_finished(
        &mut self,
        ctx: &mut Context<Self>,
        name: &str,
        conn: u64,
        results: Vec<JobResult>,
    ) {
        if !self.touch(name, conn) {
            return;
        }
        let Some(ob) = self.outbox_of(name) else {
            return;
        };
        self.on_results(ctx, name, ob, results);
    }

    /// Results from `name`: those that complete their job have their files
    /// put in place first, then all of them are settled together.
    pub(crate) fn on_results(
        &mut self,
        ctx: &mut Context<Self>,
        name: &str,
        ob: Outbox<FromMaster>,
        results: Vec<JobResult>,
    ) {
        // A copy of a result whose files are being written waits for it (one
        // waiter per connection, so a holder cannot grow this by resending).
        let mut fresh = Vec::with_capacity(results.len());
        for r in results {
            match self.placing.get_mut(&(r.job, r.attempt)) {
                Some(waiting) => {
                    if !waiting.iter().any(|w| w.ob.conn == ob.conn) {
                        waiting.push(super::WaitingCopy {
                            name: name.to_string(),
                            ob: ob.clone(),
                            result: r,
                        });
                    }
                }
                None => fresh.push(r),
            }
        }
        if fresh.is_empty() {
            return;
        }
        let targets: Vec<Targets> = fresh.iter().map(|r| self.targets_of(name, r)).collect();
        if !targets.iter().any(Targets::any) {
            let none = vec![None; fresh.len()];
            return self.settle_results(ctx, name, ob, fresh, none);
        }
        for (r, t) in fresh.iter().zip(&targets) {
            if t.any() {
                self.placing.insert((r.job, r.attempt), Vec::new());
            }
        }
        let me = ctx.address();
        let name = name.to_string();
        let had_files = targets.iter().map(Targets::any).collect();
        // One batch per result frame, and results are bounded by what was
        // dispatched (copies wait above), so the file threads' queue is too.
        self.files.place(PlaceOutputs {
            results: fresh,
            targets,
            then: Box::new(move |results, placed| {
                me.do_send(OutputsPlaced {
                    name,
                    ob,
                    results,
                    placed,
                    had_files,
                })
            }),
        });
    }

    /// Where a result's files go: only for a result that would complete its
    /// job here (a master's, for the job's current attempt, that ran).
    fn targets_of(&self, name: &str, r: &JobResult) -> Targets {
        if self.seat.is_local()
            || matches!(r.outcome, Outcome::FailedToStart { .. })
            || !self.claimable(name, r.job, r.attempt, r.key)
        {
            return Targets::default();
        }
        match self.table.cluster(r.job.cluster) {
            Some(c) => Targets {
                stdout: c.spec.output_path(r.job),
                stderr: c.spec.error_path(r.job),
                owner: c.spec.owner.clone(),
            },
            None => Targets::default(),
        }
    }

    /// Journals what `results` decide and acknowledges them once durable.
    /// `placed`: for each result, whether its files went in (`None`: none
    /// were written for it). The completion is applied at once (so the table
    /// never shows a finished job still running).
    fn settle_results(
        &mut self,
        ctx: &mut Context<Self>,
        name: &str,
        ob: Outbox<FromMaster>,
        results: Vec<JobResult>,
        placed: Vec<Option<Result<(), String>>>,
    ) {
        let now = now_ms();
        let mut events = Vec::new();
        let mut blobs = Vec::new();
        let mut acks = Vec::new();
        // Results that turn out to need files after all: placed first.
        let mut again = Vec::new();
        // On a foreman: results for the master, instead of job files.
        let mut up = Vec::new();
        let foreman = self.seat.is_local();
        for (r, placed) in results.into_iter().zip(placed) {
            let attempt = Attempt {
                job: r.job,
                attempt: r.attempt,
                key: None,
            };
            // A foreman passes up results of jobs it never had (its worker
            // failed over to it with them): its master decides.
            if foreman && self.table.job(r.job).is_none() && !self.table.has_left(r.job) {
                acks.push(attempt);
                up.push(r);
                continue;
            }
            let current = self.claim(name, r.job, r.attempt, r.key);
            if !current {
                // Stale or unknown (the holder may forget it), or a copy of
                // the result that already completed the job.
                acks.push(attempt);
                continue;
            }
            // Not claimable when it arrived, so no files were written, but
            // its holder has since become entitled to it (the one that had
            // the job went away meanwhile): its files go in first.
            if placed.is_none() && self.targets_of(name, &r).any() {
                again.push(r);
                continue;
            }
            let placed = placed.unwrap_or(Ok(()));
            acks.push(attempt);
            if foreman {
                up.push(r.clone());
            }
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
            events.push(match (r.outcome, placed) {
                (Outcome::FailedToStart { reason }, _) => Event::JobHeld {
                    job: r.job,
                    reason: format!("failed to start on {name}: {reason}"),
                    at: now,
                    kept: None,
                },
                (outcome, Ok(())) => Event::JobCompleted {
                    job: r.job,
                    attempt: r.attempt,
                    outcome,
                    at: r.ended_at.max(1),
                },
                (outcome, Err(why)) => {
                    tracing::error!(job = %r.job, "output not written, job held with its result kept: {why}");
                    let spec = self.table.cluster(r.job.cluster).map(|c| c.spec.clone());
                    let mut keep = |has_file: bool, bytes: Vec<u8>| {
                        has_file.then(|| {
                            let hash = hex::encode(Sha256::digest(&bytes));
                            blobs.push((hash.clone(), bytes));
                            hash
                        })
                    };
                    let kept = KeptOutput {
                        attempt: r.attempt,
                        outcome,
                        stdout: keep(spec.as_ref().is_some_and(|s| s.output.is_some()), r.stdout),
                        stderr: keep(spec.as_ref().is_some_and(|s| s.error.is_some()), r.stderr),
                    };
                    Event::JobHeld {
                        job: r.job,
                        reason: held_reason(r.job, &why),
                        at: now,
                        kept: Some(Box::new(kept)),
                    }
                }
            });
        }
        if !again.is_empty() {
            self.on_results(ctx, name, ob.clone(), again);
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
        // Kept before the append, so its flush makes them durable together.
        self.keep_for_upstream(&up);
        let upstream = self.seat.up().cloned();
        self.commit_applied(events, blobs, logs, move || {
            super::dispatch::deliver(deliveries);
            if let (Some(u), false) = (upstream, up.is_empty()) {
                u.do_send(crate::foreman::Up::Finished(up));
            }
            crate::failpoint::hit("results-journaled");
            ob.deliver(FromMaster::Ack(acks));
        });
    }

    /// `pilotq release`: held jobs go on. One held with a kept result has its
    /// files written again (off this thread) and completes with that result;
    /// any other held job is Idle again. The answer comes once all of it is
    /// durable.
    pub(crate) fn on_release(
        &mut self,
        ctx: &mut Context<Self>,
        ob: Outbox<FromMaster>,
        selectors: Vec<Selector>,
        owner: Option<String>,
    ) {
        let only = self.cfg.acts_for(owner.as_deref());
        if selectors.is_empty() {
            ob.deliver(FromMaster::Released {
                jobs: 0,
                problems: vec![],
            });
            return;
        }
        let at = now_ms();
        let mut bare = Vec::new();
        let mut kept = Vec::new();
        let mut problems = Vec::new();
        for job in self.table.select(&selectors) {
            let Some(r) = self.table.job(job) else {
                continue;
            };
            let theirs = only.as_deref().is_none_or(|o| {
                self.table
                    .cluster(job.cluster)
                    .is_some_and(|c| c.spec.owner == o)
            });
            if !theirs {
                if selectors.contains(&Selector::Job(job)) {
                    problems.push(format!("{job}: not yours"));
                }
                continue;
            }
            if r.job.state.status() != JobStatus::Held {
                if selectors.contains(&Selector::Job(job)) {
                    problems.push(format!("{job}: not held"));
                }
                continue;
            }
            match self.table.kept_output(job) {
                None => bare.push(Event::JobReleased { job, at }),
                Some(k) => {
                    let spec = &self.table.cluster(job.cluster).expect("has the job").spec;
                    let targets = Targets {
                        stdout: k.stdout.as_ref().and(spec.output_path(job)),
                        stderr: k.stderr.as_ref().and(spec.error_path(job)),
                        owner: spec.owner.clone(),
                    };
                    kept.push((job, k.clone(), targets));
                }
            }
        }
        let released = bare.len() as u64;
        let idle_again = !bare.is_empty();
        if kept.is_empty() {
            self.commit(bare, vec![], move || {
                ob.deliver(FromMaster::Released {
                    jobs: released,
                    problems: capped(problems),
                });
            });
        } else {
            self.commit(bare, vec![], || {});
            self.place_kept(ctx, ob, released, problems, kept);
        }
        if idle_again {
            self.schedule_dispatch(ctx);
        }
    }

    /// Writes the kept outputs of held jobs again, on a blocking thread (the
    /// bytes are read from the journal); `KeptPlaced` settles them here.
    fn place_kept(
        &mut self,
        ctx: &mut Context<Self>,
        ob: Outbox<FromMaster>,
        released: u64,
        problems: Vec<String>,
        kept: Vec<(JobId, KeptOutput, Targets)>,
    ) {
        let store = self.store.clone();
        let me = ctx.address();
        tokio::task::spawn_blocking(move || {
            let mut results = Vec::with_capacity(kept.len());
            let mut targets = Vec::with_capacity(kept.len());
            let mut jobs = Vec::with_capacity(kept.len());
            let mut unreadable = Vec::with_capacity(kept.len());
            for (job, k, t) in kept {
                // A kept output that cannot be read is never written out as
                // an empty file: the job stays held, with the reason.
                let read = |h: &Option<String>| -> Result<Vec<u8>, String> {
                    let Some(h) = h else { return Ok(Vec::new()) };
                    match store.blob(h) {
                        Ok(Some(b)) => Ok(b),
                        Ok(None) => Err(format!("the kept output {h} is missing from the journal")),
                        Err(e) => Err(format!("cannot read the kept output {h}: {e}")),
                    }
                };
                let (stdout, stderr) = match (read(&k.stdout), read(&k.stderr)) {
                    (Ok(o), Ok(e)) => {
                        unreadable.push(None);
                        (o, e)
                    }
                    (Err(e), _) | (_, Err(e)) => {
                        unreadable.push(Some(e));
                        (Vec::new(), Vec::new())
                    }
                };
                let skip = unreadable.last().is_some_and(Option::is_some);
                results.push(JobResult {
                    job,
                    attempt: k.attempt,
                    outcome: k.outcome.clone(),
                    started_at: 0,
                    ended_at: 0,
                    stdout,
                    stderr,
                    key: None,
                });
                targets.push(if skip { Targets::default() } else { t });
                jobs.push((job, k.attempt, k.outcome));
            }
            let mut placed = files::place_all(&results, &targets);
            for (p, u) in placed.iter_mut().zip(unreadable) {
                if let Some(e) = u {
                    *p = Err(e);
                }
            }
            me.do_send(KeptPlaced {
                ob,
                released,
                problems,
                jobs,
                placed,
            });
        });
    }

    /// `pilotq output`: the stdout or stderr kept with a held job.
    pub(crate) fn on_kept_output(&mut self, ob: Outbox<FromMaster>, job: JobId, stderr: bool) {
        let refuse = |message: String| {
            ob.deliver(FromMaster::Error { message });
        };
        let Some(k) = self.table.kept_output(job) else {
            return refuse(format!(
                "job {job} has no kept output (only a job held because its output could not be written has)"
            ));
        };
        let which = if stderr { "error" } else { "output" };
        let Some(hash) = (if stderr { &k.stderr } else { &k.stdout }).clone() else {
            return refuse(format!("job {job} has no {which} file"));
        };
        let store = self.store.clone();
        // Its `JobHeld` may still be on its way to the disk.
        self.after_durable(move || {
            match store.blob(&hash) {
                Ok(Some(bytes)) => ob.deliver(FromMaster::Output { bytes }),
                Ok(None) => ob.deliver(FromMaster::Error {
                    message: format!("job {job}'s kept {which} is missing from the journal"),
                }),
                Err(e) => ob.deliver(FromMaster::Error {
                    message: format!("cannot read job {job}'s kept {which}: {e}"),
                }),
            };
        });
    }
}

/// Why a finished job is held: its file could not be written, and how to
/// get at what was kept.
fn held_reason(job: JobId, why: &str) -> String {
    format!(
        "{why}; the job's output is kept by the master: `pilotq output {job}` shows it, `pilotq release {job}` writes it again"
    )
}

/// Problem lines sent with a release answer: a storm of failed writes must
/// not make an answer larger than a frame.
const MAX_PROBLEM_LINES: usize = 100;

fn capped(mut problems: Vec<String>) -> Vec<String> {
    if problems.len() > MAX_PROBLEM_LINES {
        let more = problems.len() - MAX_PROBLEM_LINES;
        problems.truncate(MAX_PROBLEM_LINES);
        problems.push(format!("… and {more} more"));
    }
    problems
}
