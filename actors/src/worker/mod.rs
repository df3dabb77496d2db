//! The worker: runs jobs as child processes and reports their results.
//!
//! It never kills a running job because its upstream went away: it
//! reconnects with backoff (1 s doubling to 60 s or a third of the lease,
//! jittered), reports what it holds (running jobs and results not yet
//! acknowledged), and keeps every result until the master acknowledges it.
//!
//! | file | concern |
//! |---|---|
//! | `mod.rs` | the actor: connection, reconnect, dispatch, kill, ack, batching of reports |
//! | `executor.rs` | one job as a process: sandbox, environment, process group, capture |
//! | `link.rs` | the link upstream: connect, fail over, register, reconnect |
//! | `drain.rs` | leaving cleanly: drain file, single task, idle timeout |
//! | `cache.rs` | executables by content hash, bounded; evicted ones fetched again |
//! | `sandbox.rs` | job sandboxes, reused |

pub mod cache;
mod drain;
pub mod executor;
mod link;
pub mod sandbox;

use crate::backoff::Backoff;
use crate::config::WorkerConfig;
use crate::outbox::Outbox;
use actix::prelude::*;
use cache::BlobCache;
use pilotq_wire::message::{Assignment, Attempt, Started};
use pilotq_wire::{
    ClusterId, FrameError, FromMaster, JobId, JobResult, JobSpec, Outcome, Resources, ToMaster,
};
use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::time::Duration;

/// The result of an attempt this worker could not start at all (the master
/// holds the job with `reason`).
fn failed_to_start(job: JobId, attempt: u32, reason: String) -> JobResult {
    let now = pilotq_journal::now_ms();
    JobResult {
        job,
        attempt,
        outcome: Outcome::FailedToStart { reason },
        started_at: now,
        ended_at: now,
        stdout: vec![],
        stderr: vec![],
        key: None,
    }
}

/// The hashes a job needs in the cache: its executable and its wrapper.
fn needs<'a>(spec: &'a JobSpec, wrapper: &'a Option<String>) -> impl Iterator<Item = &'a str> {
    std::iter::once(spec.executable.as_str()).chain(wrapper.as_deref())
}

/// A job assigned to this worker, waiting for free resources (and, if its
/// executable was evicted from the cache, for its bytes).
struct Queued {
    job: JobId,
    attempt: u32,
    spec: Arc<JobSpec>,
    /// The master's job wrapper, by hash.
    wrapper: Option<String>,
}

struct RunningJob {
    attempt: u32,
    pgid: Option<i32>,
    started_at: u64,
    request: Resources,
    /// Reported with the holdings, for a foreman that must adopt the job.
    spec: Arc<JobSpec>,
    wrapper: Option<String>,
}

pub struct Worker {
    cfg: WorkerConfig,
    /// Shown at every registration: proof that a reconnect is this worker,
    /// which may take back the attempts it holds.
    token: Vec<u8>,
    cache: BlobCache,
    sandboxes: sandbox::Sandboxes,
    outbox: Option<Outbox<ToMaster>>,
    /// Generation of the current connection: items of older streams are ignored.
    generation: u64,
    connecting: bool,
    backoff: Backoff,
    running: HashMap<JobId, RunningJob>,
    /// Resources taken by running jobs.
    used: Resources,
    /// Assigned jobs waiting for free resources (up to depth × resources).
    queue: VecDeque<Queued>,
    /// Specs received on this connection, by cluster.
    specs: HashMap<ClusterId, Arc<JobSpec>>,
    /// Blobs asked for on this connection (`FetchBlob`) and not yet come.
    fetching: HashSet<String>,
    /// Results not yet acknowledged.
    results: HashMap<(JobId, u32), JobResult>,
    pending_started: Vec<Started>,
    /// The key of each attempt held, as its upstream sent it: shown with its
    /// reports, so that another upstream can take the attempt over after a
    /// fail-over (`pilotq_wire::attempt_key`).
    keys: HashMap<(JobId, u32), pilotq_wire::AttemptKey>,
    /// Index into the upstream list.
    upstream: usize,
    /// No new jobs wanted (drain file, single task done, idle timeout).
    draining: bool,
    /// The upstream confirmed it sends no more jobs.
    drained: bool,
    /// When the worker last held a job (for the idle timeout).
    idle_since: std::time::Instant,
    pending_finished: Vec<JobResult>,
    flush_scheduled: bool,
}

/// A frame from connection `0`, or its end (`None`).
#[derive(Message)]
#[rtype(result = "()")]
struct Incoming(u64, Option<Result<FromMaster, FrameError>>);

impl Worker {
    pub fn new(mut cfg: WorkerConfig) -> std::io::Result<Worker> {
        if cfg.upstreams.is_empty() {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                "no upstream (master or foreman) address given",
            ));
        }
        // One result (both streams) must fit in one frame.
        let fits = (cfg.max_frame / 2).saturating_sub(64 * 1024);
        if cfg.output_cap > fits {
            tracing::warn!(
                output_cap = cfg.output_cap,
                max_frame = cfg.max_frame,
                "captured output capped at {fits} bytes per stream so that a result fits in one frame; raise --max-frame (here and on the master) for more"
            );
            cfg.output_cap = fits;
        }
        std::fs::create_dir_all(&cfg.workdir)?;
        // Jobs run with their sandbox as working directory: every path we
        // hand them must be absolute.
        cfg.workdir = std::fs::canonicalize(&cfg.workdir)?;
        let cache = BlobCache::open(&cfg.workdir.join("cache"), cfg.cache_size)?;
        let sandboxes = sandbox::Sandboxes::open(&cfg.workdir.join("sandboxes"))?;
        Ok(Worker {
            cfg,
            token: pilotq_wire::handshake::fresh_nonce(),
            cache,
            sandboxes,
            outbox: None,
            generation: 0,
            connecting: false,
            backoff: Backoff::default(),
            running: HashMap::new(),
            used: Resources::default(),
            queue: VecDeque::new(),
            specs: HashMap::new(),
            fetching: HashSet::new(),
            results: HashMap::new(),
            pending_started: Vec::new(),
            keys: HashMap::new(),
            upstream: 0,
            draining: false,
            drained: false,
            idle_since: std::time::Instant::now(),
            pending_finished: Vec::new(),
            flush_scheduled: false,
        })
    }

    fn on_dispatch(&mut self, ctx: &mut Context<Self>, assignments: Vec<Assignment>) {
        for a in assignments {
            if self.holds(a.job, a.attempt) {
                continue; // a duplicate of what we already hold
            }
            if let Some(k) = a.key {
                self.keys.insert((a.job, a.attempt), k);
            }
            let spec = match a.spec {
                Some(s) => {
                    let s = Arc::new(s);
                    self.specs.insert(a.job.cluster, s.clone());
                    Some(s)
                }
                None => self.specs.get(&a.job.cluster).cloned(),
            };
            // Bytes that came are stored; a hash that came without bytes
            // and is not cached was sent on this connection before and
            // evicted since: it is fetched, and the job waits for it.
            let mut missing: Vec<&str> = Vec::new();
            let mut ready = match (&a.wrapper, &a.wrapper_bytes) {
                (None, _) => Ok(()),
                (Some(h), Some(bytes)) => self.cache.put(h, bytes),
                (Some(h), None) => {
                    if !self.cache.has(h) {
                        missing.push(h);
                    }
                    Ok(())
                }
            };
            match (&spec, &a.executable) {
                (None, _) => {
                    ready = Err(format!(
                        "the spec of cluster {} was not sent",
                        a.job.cluster
                    ))
                }
                (Some(s), Some(bytes)) => {
                    ready = ready.and_then(|()| self.cache.put(&s.executable, bytes))
                }
                (Some(s), None) => {
                    if !self.cache.has(&s.executable) {
                        missing.push(&s.executable);
                    }
                }
            }
            if let Err(reason) = ready {
                self.finish(ctx, failed_to_start(a.job, a.attempt, reason));
                continue;
            }
            let missing: Vec<String> = missing.into_iter().map(str::to_string).collect();
            for h in missing {
                tracing::info!(job = %a.job, hash = %h, "not in the cache (evicted): fetching it");
                self.fetch(h);
            }
            let spec = spec.expect("checked above");
            if self.cfg.single_task {
                self.begin_drain("single task: its job has come");
            }
            self.queue.push_back(Queued {
                job: a.job,
                attempt: a.attempt,
                spec,
                wrapper: a.wrapper,
            });
        }
        self.start_queued(ctx);
        // Only now: what was just stored is pinned by its queued job.
        self.trim_cache();
    }

    /// Asks the upstream for a blob's bytes, once per connection. (Without
    /// a connection there is nothing to ask; `fetch_missing` asks again on
    /// the next one.)
    fn fetch(&mut self, hash: String) {
        if let Some(ob) = &self.outbox {
            if self.fetching.insert(hash.clone()) {
                ob.deliver(ToMaster::FetchBlob { hash });
            }
        }
    }

    /// Asks for every blob a queued job waits for: on a new connection, as
    /// an answer due on the old one is lost with it.
    fn fetch_missing(&mut self) {
        let cache = &mut self.cache;
        let missing: HashSet<String> = self
            .queue
            .iter()
            .flat_map(|q| needs(&q.spec, &q.wrapper))
            .filter(|h| !cache.has(h))
            .map(str::to_string)
            .collect();
        for h in missing {
            self.fetch(h);
        }
    }

    /// The upstream's answer to a `FetchBlob`: the jobs waiting for it can
    /// start, or, if it does not have the bytes (or they do not match),
    /// fail to start with the reason (the master holds them).
    fn on_blob(&mut self, ctx: &mut Context<Self>, hash: String, bytes: Option<Vec<u8>>) {
        self.fetching.remove(&hash);
        let stored = match bytes {
            Some(b) => self.cache.put(&hash, &b),
            None => Err(format!(
                "executable {hash} was evicted from this worker's cache and its upstream does not have it"
            )),
        };
        if let Err(reason) = stored {
            if !self.cache.has(&hash) {
                let mut failed = Vec::new();
                self.queue.retain(|q| {
                    let waits = needs(&q.spec, &q.wrapper).any(|h| h == hash);
                    if waits {
                        failed.push((q.job, q.attempt));
                    }
                    !waits
                });
                for (job, attempt) in failed {
                    self.finish(ctx, failed_to_start(job, attempt, reason.clone()));
                }
            }
        }
        self.start_queued(ctx);
        self.trim_cache();
    }

    /// Evicts what the cache holds beyond its size, keeping everything a
    /// queued or running job needs.
    fn trim_cache(&mut self) {
        if !self.cache.over() {
            return;
        }
        let in_use: HashSet<&str> = self
            .queue
            .iter()
            .flat_map(|q| needs(&q.spec, &q.wrapper))
            .chain(
                self.running
                    .values()
                    .flat_map(|r| needs(&r.spec, &r.wrapper)),
            )
            .collect();
        self.cache.trim(|h| in_use.contains(h));
    }

    fn holds(&self, job: JobId, attempt: u32) -> bool {
        self.running.get(&job).is_some_and(|r| r.attempt == attempt)
            || self.results.contains_key(&(job, attempt))
            || self
                .queue
                .iter()
                .any(|q| q.job == job && q.attempt == attempt)
    }

    /// Starts queued jobs, in the order they came, while they fit in what is
    /// free. A job too big for what is free waits; the ones behind it wait
    /// too (no overtaking: the master already chose the order).
    fn start_queued(&mut self, ctx: &mut Context<Self>) {
        while let Some(a) = self.queue.front() {
            // Its bytes are still being fetched: it waits, and so do the
            // ones behind it.
            let cache = &mut self.cache;
            if needs(&a.spec, &a.wrapper).any(|h| !cache.has(h)) {
                break;
            }
            let free = self.cfg.resources.minus(&self.used);
            // A job larger than the whole worker would wait for ever: run it
            // alone rather than never.
            let alone = self.running.is_empty();
            if !free.fits(&a.spec.request) && !alone {
                break;
            }
            let a = self.queue.pop_front().expect("peeked");
            let sandbox = match self.sandboxes.take() {
                Ok(s) => s,
                Err(e) => {
                    let reason = format!("cannot make a sandbox: {e}");
                    self.finish(ctx, failed_to_start(a.job, a.attempt, reason));
                    continue;
                }
            };
            // `$(Cluster)` and `$(Process)` in arguments and environment
            // values are per job: one spec serves the whole cluster.
            let args = a.spec.arguments.iter().map(|s| JobSpec::expand(s, a.job));
            let exe = self.cache.path(&a.spec.executable);
            // With a job wrapper the job runs as `wrapper <executable> <args…>`.
            let (executable, arguments) = match &a.wrapper {
                Some(w) => (
                    self.cache.path(w),
                    std::iter::once(exe.display().to_string())
                        .chain(args)
                        .collect(),
                ),
                None => (exe, args.collect()),
            };
            let launch = executor::Launch {
                job: a.job,
                attempt: a.attempt,
                executable,
                cmd: a.spec.cmd.clone(),
                arguments,
                environment: a
                    .spec
                    .environment
                    .iter()
                    .map(|(k, v)| (k.clone(), JobSpec::expand(v, a.job)))
                    .collect(),
                sandbox: sandbox.clone(),
                output_cap: self.cfg.output_cap,
            };
            let (pgid, done) = executor::start(launch);
            let started_at = pilotq_journal::now_ms();
            self.used = self.used.plus(&a.spec.request);
            self.running.insert(
                a.job,
                RunningJob {
                    attempt: a.attempt,
                    pgid,
                    started_at,
                    request: a.spec.request,
                    spec: a.spec.clone(),
                    wrapper: a.wrapper.clone(),
                },
            );
            if pgid.is_some() {
                self.pending_started.push(Started {
                    job: a.job,
                    attempt: a.attempt,
                    at: started_at,
                    key: self.keys.get(&(a.job, a.attempt)).copied(),
                });
                self.schedule_flush(ctx);
            }
            let cleaned = async move {
                let result = done.await;
                // Most jobs leave their sandbox empty: checking costs three
                // system calls, cheaper than a hop to a blocking thread. Only
                // a sandbox with files in it is cleared off this thread.
                let reusable = sandbox::is_empty(&sandbox)
                    || tokio::task::spawn_blocking({
                        let s = sandbox.clone();
                        move || sandbox::empty(&s)
                    })
                    .await
                    .unwrap_or(false);
                (result, reusable.then_some(sandbox))
            };
            ctx.spawn(cleaned.into_actor(self).map(|(result, sandbox), act, ctx| {
                if let Some(s) = sandbox {
                    act.sandboxes.give_back(s);
                }
                act.finish(ctx, result)
            }));
        }
    }

    fn finish(&mut self, ctx: &mut Context<Self>, mut result: JobResult) {
        // Killed (removed or stale) attempts are dropped, not reported.
        match self.running.get(&result.job) {
            Some(r) if r.attempt == result.attempt => {
                self.used = self.used.minus(&r.request);
                self.running.remove(&result.job);
                self.start_queued(ctx);
                self.trim_cache();
            }
            Some(_) => return,
            None if matches!(result.outcome, Outcome::FailedToStart { .. }) => {}
            None => return,
        }
        // The result carries the key from now on.
        result.key = self.keys.remove(&(result.job, result.attempt));
        self.results
            .insert((result.job, result.attempt), result.clone());
        self.pending_finished.push(result);
        self.schedule_flush(ctx);
    }

    fn on_kill(&mut self, kills: Vec<Attempt>) {
        self.idle_since = std::time::Instant::now();
        for k in kills {
            if let Some(r) = self.running.get(&k.job) {
                if r.attempt == k.attempt {
                    if let Some(pg) = r.pgid {
                        executor::kill_group(pg);
                    }
                    tracing::info!(job = %k.job, attempt = k.attempt, "killed on the master's order");
                    self.used = self.used.minus(&r.request);
                    self.running.remove(&k.job);
                }
            }
            self.results.remove(&(k.job, k.attempt));
            self.keys.remove(&(k.job, k.attempt));
            self.queue
                .retain(|q| !(q.job == k.job && q.attempt == k.attempt));
        }
        self.trim_cache();
    }

    /// Reports go out in batches: everything that happened in one turn of the
    /// event loop shares a frame.
    fn schedule_flush(&mut self, ctx: &mut Context<Self>) {
        if !self.flush_scheduled {
            self.flush_scheduled = true;
            ctx.run_later(Duration::ZERO, |act, _| act.flush_reports());
        }
    }

    fn flush_reports(&mut self) {
        self.flush_scheduled = false;
        let Some(ob) = &self.outbox else {
            // Reported in the holdings on reconnect instead.
            self.pending_started.clear();
            self.pending_finished.clear();
            return;
        };
        let results = std::mem::take(&mut self.pending_finished);
        crate::connect::deliver_results(ob, results, self.cfg.max_frame);
        // After the results: the master frees a slot before it hears that
        // the job queued behind it started in it. A job that already
        // finished needs no start report: its result says it all.
        let results = &self.results;
        self.pending_started
            .retain(|s| !results.contains_key(&(s.job, s.attempt)));
        if !self.pending_started.is_empty() {
            ob.deliver(ToMaster::Started(std::mem::take(&mut self.pending_started)));
        }
    }
}

impl Actor for Worker {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        ctx.set_mailbox_capacity(64);
        // A worker started while the drain file exists registers draining:
        // no job is ever planned for it.
        if self.cfg.drain_file.as_deref().is_some_and(|f| f.exists()) {
            self.begin_drain("the drain file exists");
        }
        self.connect(ctx);
        ctx.run_interval(Duration::from_secs(1), |act, ctx| act.tick(ctx));
        ctx.run_interval(self.cfg.heartbeat, |act, _| {
            if let Some(ob) = &act.outbox {
                ob.deliver(ToMaster::Heartbeat);
            }
        });
    }
}

impl Handler<Incoming> for Worker {
    type Result = ();

    fn handle(&mut self, Incoming(gen, item): Incoming, ctx: &mut Context<Self>) {
        if gen != self.generation {
            return;
        }
        match item {
            None => self.lost_connection(ctx, "connection closed"),
            Some(Err(e)) => self.lost_connection(ctx, &e.to_string()),
            Some(Ok(msg)) => match msg {
                FromMaster::Dispatch(a) => self.on_dispatch(ctx, a),
                FromMaster::Kill(k) => self.on_kill(k),
                FromMaster::Blob { hash, bytes } => self.on_blob(ctx, hash, bytes),
                FromMaster::Ack(acks) => {
                    for a in acks {
                        self.results.remove(&(a.job, a.attempt));
                    }
                    // The last acknowledgement is when a worker becomes idle.
                    self.idle_since = std::time::Instant::now();
                }
                FromMaster::Drained => {
                    self.drained = true;
                    self.tick(ctx);
                }
                FromMaster::Error { message } => {
                    self.lost_connection(ctx, &format!("master said: {message}"))
                }
                other => {
                    let what: String = format!("{other:?}").chars().take(60).collect();
                    tracing::warn!("unexpected message from the master: {what}");
                }
            },
        }
    }
}

/// Stop: kill every running job's process group (a stopped worker must not
/// leave jobs running unsupervised; the master requeues them after the lease).
#[derive(Message)]
#[rtype(result = "usize")]
pub struct KillAll;

impl Handler<KillAll> for Worker {
    type Result = usize;

    fn handle(&mut self, _m: KillAll, _ctx: &mut Context<Self>) -> usize {
        let n = self.running.len();
        self.queue.clear();
        for r in self.running.values() {
            if let Some(pg) = r.pgid {
                executor::kill_group(pg);
            }
        }
        self.running.clear();
        n
    }
}
