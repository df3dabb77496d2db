//! A simulated worker: the real handshake, registration, heartbeats and
//! batches of the wire protocol, but no processes. A dispatched job "runs"
//! for its run time from the [`JobBook`] (divided by `--speed`), then its
//! result is reported and kept until the master acknowledges it, across
//! reconnects, exactly as a real worker does. A worker killed by churn
//! vanishes like one hit by SIGKILL: its jobs and unreported results are gone.
//!
//! One tokio task per worker: ten thousand of them cost a few kilobytes
//! each, where ten thousand actix arbiters would cost a thread each.

use crate::stats::{RunEnd, Stats};
use crate::workload::JobBook;
use futures::{FutureExt, SinkExt, StreamExt};
use pilotq_actors::backoff::Backoff;
use pilotq_actors::connect::{connect_holder, PeerFramed};
use pilotq_journal::now_ms;
use pilotq_wire::message::{Assignment, Attempt, Started};
use pilotq_wire::{
    FromMaster, Holding, HoldingState, JobId, JobResult, Outcome, Resources, Role, Secret, ToMaster,
};
use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;
use tokio_util::time::{delay_queue, DelayQueue};

/// What every simulated worker shares.
#[derive(Debug)]
pub struct Shared {
    pub book: Arc<JobBook>,
    pub stats: Arc<Stats>,
    pub secret: Option<Secret>,
    /// TLS to the master and foremen (`--tls`).
    pub tls: Option<pilotq_actors::tls::ClientTls>,
    /// Time compression: a job of run time `d` takes `d / speed`.
    pub speed: f64,
    pub heartbeat: Duration,
    pub max_frame: usize,
    /// Ends every worker (the simulation is over).
    pub stop: CancellationToken,
    /// Bounds the handshakes of the fleet's first connection: ten thousand
    /// SYNs at once would overflow the master's accept backlog and cost
    /// every loser a one-second SYN retry. Reconnects are not bounded, as
    /// a real fleet's are not.
    pub first_connects: tokio::sync::Semaphore,
}

/// One simulated worker's identity and offer.
#[derive(Debug, Clone)]
pub struct Spec {
    pub id: u32,
    pub name: String,
    /// Tried in turn after a failure.
    pub upstreams: Vec<String>,
    pub cores: u32,
    pub depth: u32,
}

struct Running {
    attempt: u32,
    started_ms: u64,
    cores: u32,
    exit: i32,
    key: delay_queue::Key,
    /// As a real worker's: shown with its reports (fail-over proof).
    attempt_key: Option<pilotq_wire::AttemptKey>,
}

struct Queued {
    job: JobId,
    attempt: u32,
    cores: u32,
    run_ms: u32,
    exit: i32,
    attempt_key: Option<pilotq_wire::AttemptKey>,
}

/// Reconnect backoff: shorter than a real worker's (1 s to 60 s), so that a
/// simulated master crash costs seconds, not minutes; otherwise the real
/// policy (jittered, kept inside the lease the master tells).
pub fn backoff(lease: Option<Duration>) -> Backoff {
    let mut b = Backoff::new(Duration::from_millis(200), Duration::from_secs(5));
    if let Some(lease) = lease {
        b.fit_lease(lease);
    }
    b
}

/// What a simulated worker of `cores` cores offers.
pub fn offer(cores: u32) -> Resources {
    Resources::new(cores, cores as u64 * 2_000, cores as u64 * 10_000)
}

/// Runs the worker until `shared.stop` (a clean end) or `death` (churn: it
/// dies at once, with what it holds).
pub async fn run(spec: Spec, shared: Arc<Shared>, death: CancellationToken) {
    let mut w = Worker {
        spec,
        sh: shared.clone(),
        token: pilotq_wire::handshake::fresh_nonce(),
        running: HashMap::new(),
        queue: VecDeque::new(),
        results: HashMap::new(),
        clusters: HashMap::new(),
        timers: DelayQueue::new(),
        free_since: VecDeque::new(),
        used_cores: 0,
        upstream: 0,
        backoff: backoff(None),
        registered: false,
        ever_connected: false,
        unsent_started: Vec::new(),
        unsent_finished: Vec::new(),
    };
    let mut link: Option<PeerFramed> = None;
    let mut next_try = Instant::now();
    let mut hb = tokio::time::interval(shared.heartbeat);
    hb.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        if link.is_none() {
            tokio::select! {
                biased;
                _ = death.cancelled() => return w.die(),
                _ = shared.stop.cancelled() => return w.quit(),
                Some(exp) = w.timers.next(), if !w.timers.is_empty() => {
                    w.job_done(exp.into_inner());
                }
                _ = tokio::time::sleep_until(next_try.into()) => {
                    match w.connect().await {
                        Some(framed) => {
                            link = Some(framed);
                            w.backoff.reset();
                            if w.register(link.as_mut().expect("set")).await.is_err() {
                                link = w.lost(&mut next_try);
                            }
                        }
                        None => {
                            next_try = Instant::now() + w.backoff.next_wait();
                        }
                    }
                }
            }
            continue;
        }
        let framed = link.as_mut().expect("connected");
        let outcome: Result<(), ()> = tokio::select! {
            biased;
            _ = death.cancelled() => return w.die(),
            _ = shared.stop.cancelled() => return w.quit(),
            m = framed.next() => match m {
                Some(Ok(msg)) => w.on_message(framed, msg).await,
                Some(Err(e)) => {
                    tracing::debug!(worker = %w.spec.name, "link error: {e}");
                    Err(())
                }
                None => Err(()),
            },
            Some(exp) = w.timers.next(), if !w.timers.is_empty() => {
                w.job_done(exp.into_inner());
                w.flush(framed).await
            }
            _ = hb.tick() => framed.send(ToMaster::Heartbeat).await.map_err(|_| ()),
        };
        if outcome.is_err() {
            link = w.lost(&mut next_try);
        }
    }
}

struct Worker {
    spec: Spec,
    sh: Arc<Shared>,
    /// Its holder token, as a real worker's: kept across its reconnects.
    token: Vec<u8>,
    running: HashMap<JobId, Running>,
    queue: VecDeque<Queued>,
    /// Results not yet acknowledged, sent or not.
    results: HashMap<JobId, JobResult>,
    /// Each cluster's cores and plan, learnt from the spec that comes with
    /// the cluster's first assignment on this connection.
    clusters: HashMap<u64, (u32, Option<usize>)>,
    timers: DelayQueue<JobId>,
    /// When each free slot became free, oldest first: a dispatch fills the
    /// oldest, and its latency counts from there.
    free_since: VecDeque<Instant>,
    used_cores: u32,
    upstream: usize,
    backoff: Backoff,
    registered: bool,
    ever_connected: bool,
    /// Reports not yet sent: they go out together at the next flush.
    unsent_started: Vec<Started>,
    unsent_finished: Vec<JobResult>,
}

impl Worker {
    async fn connect(&mut self) -> Option<PeerFramed> {
        let _permit = if self.ever_connected {
            None
        } else {
            self.sh.first_connects.acquire().await.ok()
        };
        let addr = &self.spec.upstreams[self.upstream % self.spec.upstreams.len()];
        match connect_holder(
            addr,
            Role::Worker,
            &self.spec.name,
            self.sh.secret.as_ref(),
            self.sh.tls.as_ref(),
            self.sh.max_frame,
            Duration::from_secs(20),
        )
        .await
        {
            Ok((f, lease)) => {
                self.ever_connected = true;
                if let Some(lease) = lease {
                    self.backoff.fit_lease(lease);
                }
                Some(f)
            }
            Err(e) => {
                tracing::debug!(worker = %self.spec.name, "{e}");
                self.upstream += 1;
                None
            }
        }
    }

    fn lost(&mut self, next_try: &mut Instant) -> Option<PeerFramed> {
        self.leave();
        self.upstream += 1;
        *next_try = Instant::now() + self.backoff.next_wait();
        None
    }

    /// Register with what we hold, then resend every unacknowledged result.
    async fn register(&mut self, framed: &mut PeerFramed) -> Result<(), ()> {
        self.clusters.clear();
        let mut holdings: Vec<Holding> = self
            .running
            .iter()
            .map(|(job, r)| Holding {
                key: r.attempt_key,
                job: *job,
                attempt: r.attempt,
                state: HoldingState::Running {
                    started_at: r.started_ms,
                },
                spec: None,
                wrapper: None,
            })
            .collect();
        holdings.extend(self.queue.iter().map(|q| Holding {
            key: q.attempt_key,
            job: q.job,
            attempt: q.attempt,
            state: HoldingState::Queued,
            spec: None,
            wrapper: None,
        }));
        holdings.extend(self.results.values().map(|r| Holding {
            key: r.key,
            job: r.job,
            attempt: r.attempt,
            state: HoldingState::ResultFollows,
            spec: None,
            wrapper: None,
        }));
        framed
            .send(ToMaster::Register {
                resources: offer(self.spec.cores),
                holdings,
                depth: self.spec.depth,
                max_jobs: 0,
                tags: vec![],
                token: self.token.clone(),
            })
            .await
            .map_err(|_| ())?;
        self.registered = true;
        self.sh
            .stats
            .connected
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        // Slots free from now on: what we can hold minus what we hold.
        let capacity = (self.spec.cores * self.spec.depth) as usize;
        let held = self.running.len() + self.queue.len();
        let now = Instant::now();
        self.free_since.clear();
        self.free_since
            .extend(std::iter::repeat_n(now, capacity.saturating_sub(held)));
        let results: Vec<JobResult> = self.results.values().cloned().collect();
        for chunk in results.chunks(4096) {
            framed
                .send(ToMaster::Finished(chunk.to_vec()))
                .await
                .map_err(|_| ())?;
        }
        Ok(())
    }

    async fn on_message(&mut self, framed: &mut PeerFramed, msg: FromMaster) -> Result<(), ()> {
        match msg {
            FromMaster::Dispatch(assignments) => {
                self.on_dispatch(assignments);
                self.flush(framed).await?;
            }
            FromMaster::Kill(attempts) => {
                let now = Instant::now();
                for a in attempts {
                    self.kill(a, now);
                }
                self.start_queued();
                self.flush(framed).await?;
            }
            FromMaster::Ack(attempts) => {
                for a in attempts {
                    if self
                        .results
                        .get(&a.job)
                        .is_some_and(|r| r.attempt == a.attempt)
                    {
                        self.results.remove(&a.job);
                    }
                }
            }
            FromMaster::Error { message } => {
                tracing::warn!(worker = %self.spec.name, "master says: {message}");
            }
            _ => {}
        }
        Ok(())
    }

    fn on_dispatch(&mut self, assignments: Vec<Assignment>) {
        let now = Instant::now();
        let mut lat = Vec::with_capacity(assignments.len());
        for a in assignments {
            if let Some(spec) = &a.spec {
                let plan = JobBook::plan_of(&spec.attributes);
                self.clusters
                    .insert(a.job.cluster.0, (spec.request.cores.max(1), plan));
            }
            let Some(&(cores, Some(plan))) = self.clusters.get(&a.job.cluster.0) else {
                tracing::warn!(job = %a.job, "dispatched a job of a cluster the simulation did not submit");
                continue;
            };
            let Some((run_ms, exit)) = self.sh.book.lookup(plan, a.job.proc) else {
                tracing::warn!(job = %a.job, "dispatched a job outside its cluster's plan");
                continue;
            };
            if self.running.contains_key(&a.job) || self.queue.iter().any(|q| q.job == a.job) {
                continue;
            }
            // Latency: from when both the job (its cluster sent) and a slot
            // here (freed by a result, or offered at registration) were
            // ready, to the dispatch's arrival — the master's reaction time,
            // not the time a job queued behind a full pool. First attempts
            // only: a requeued job waited out a lease on purpose.
            let slot = self.free_since.pop_front().unwrap_or(now);
            if a.attempt == 1 {
                let submitted = self
                    .sh
                    .stats
                    .submitted_at
                    .get(&plan)
                    .map(|t| *t)
                    .unwrap_or(slot);
                let ready = slot.max(submitted);
                lat.push(
                    now.saturating_duration_since(ready)
                        .as_micros()
                        .min(u32::MAX as u128) as u32,
                );
            }
            self.queue.push_back(Queued {
                job: a.job,
                attempt: a.attempt,
                cores,
                run_ms,
                exit,
                attempt_key: a.key,
            });
        }
        self.sh.stats.record_latencies(&lat);
        self.start_queued();
    }

    /// Starts queued jobs while their cores are free.
    fn start_queued(&mut self) {
        while let Some(q) = self.queue.front() {
            if self.used_cores + q.cores > self.spec.cores && self.used_cores > 0 {
                break;
            }
            let q = self.queue.pop_front().expect("front");
            let now = Instant::now();
            // `--speed` is bounded by `SimConfig::check`; the clamp keeps a
            // bad value from panicking a worker all the same.
            let wait = Duration::try_from_secs_f64(q.run_ms as f64 / 1000.0 / self.sh.speed)
                .unwrap_or(Duration::from_secs(86_400 * 365));
            let key = self.timers.insert(q.job, wait);
            self.used_cores += q.cores;
            let started_ms = now_ms();
            self.running.insert(
                q.job,
                Running {
                    attempt: q.attempt,
                    started_ms,
                    cores: q.cores,
                    exit: q.exit,
                    key,
                    attempt_key: q.attempt_key,
                },
            );
            self.sh
                .stats
                .run_started(q.job, self.spec.id, q.attempt, now);
            self.unsent_started.push(Started {
                key: q.attempt_key,
                job: q.job,
                attempt: q.attempt,
                at: started_ms,
            });
        }
    }

    /// A job's run time is over: its result is kept until acknowledged, and
    /// every other job due by now ends with it, in one report.
    fn job_done(&mut self, first: JobId) {
        let now = Instant::now();
        self.finish(first, now);
        while let Some(Some(exp)) = self.timers.next().now_or_never() {
            self.finish(exp.into_inner(), now);
        }
        self.start_queued();
    }

    fn finish(&mut self, job: JobId, now: Instant) {
        let Some(r) = self.running.remove(&job) else {
            return;
        };
        self.used_cores -= r.cores;
        self.free_since.push_back(now);
        self.sh
            .stats
            .run_ended(job, self.spec.id, r.attempt, now, RunEnd::Completed);
        let result = JobResult {
            key: r.attempt_key,
            job,
            attempt: r.attempt,
            outcome: Outcome::Exited { code: r.exit },
            started_at: r.started_ms,
            ended_at: now_ms(),
            stdout: Vec::new(),
            stderr: Vec::new(),
        };
        self.results.insert(job, result.clone());
        if self.registered {
            self.unsent_finished.push(result);
        }
    }

    fn kill(&mut self, a: Attempt, now: Instant) {
        if let Some(r) = self.running.get(&a.job) {
            if r.attempt == a.attempt {
                let r = self.running.remove(&a.job).expect("present");
                self.timers.remove(&r.key);
                self.used_cores -= r.cores;
                self.free_since.push_back(now);
                self.sh
                    .stats
                    .run_ended(a.job, self.spec.id, a.attempt, now, RunEnd::Cut);
            }
        }
        let before = self.queue.len();
        self.queue
            .retain(|q| !(q.job == a.job && q.attempt == a.attempt));
        if self.queue.len() < before {
            self.free_since.push_back(now);
        }
    }

    /// Sends what is waiting: starts first, then results.
    async fn flush(&mut self, framed: &mut PeerFramed) -> Result<(), ()> {
        if !self.registered {
            self.unsent_started.clear();
            self.unsent_finished.clear();
            return Ok(());
        }
        if !self.unsent_started.is_empty() {
            let s = std::mem::take(&mut self.unsent_started);
            framed.feed(ToMaster::Started(s)).await.map_err(|_| ())?;
        }
        if !self.unsent_finished.is_empty() {
            let f = std::mem::take(&mut self.unsent_finished);
            framed.feed(ToMaster::Finished(f)).await.map_err(|_| ())?;
        }
        framed.flush().await.map_err(|_| ())
    }

    /// Churn: gone at once, like a worker hit by SIGKILL. Its runs end
    /// without results; the master finds out by the lease.
    fn die(mut self) {
        let now = Instant::now();
        for (job, r) in self.running.drain() {
            self.sh
                .stats
                .run_ended(job, self.spec.id, r.attempt, now, RunEnd::Cut);
        }
        // Results the master never acknowledged die too: those jobs may run
        // again, which explains a rerun.
        self.sh.stats.results_died.fetch_add(
            self.results.len() as u64,
            std::sync::atomic::Ordering::Relaxed,
        );
        self.leave();
    }

    /// The simulation is over.
    fn quit(mut self) {
        self.leave();
    }

    /// No longer registered: on a lost link, a death or the end.
    fn leave(&mut self) {
        if self.registered {
            self.registered = false;
            self.sh
                .stats
                .connected
                .fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
        }
    }
}
