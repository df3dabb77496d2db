//! One simulation, start to end: the master (and foremen) started, the fleet
//! connected, the workload submitted, faults injected while it runs, then
//! the live table taken, everything stopped, and the invariants checked on
//! the journal the master left.

use crate::child::ServerProc;
use crate::config::SimConfig;
use crate::invariants::{self, Evidence};
use crate::proxy::Relay;
use crate::report::Report;
use crate::sim_worker::{self, Shared};
use crate::stats::Stats;
use crate::timeline::{Sample, Timeline};
use crate::workload::{self, JobBook, Workload, SIM_EXECUTABLE};
use anyhow::{bail, Context, Result};
use futures::TryStreamExt;
use pilotq_actors::client::Client;
use pilotq_wire::{JobView, Secret, Selector, DEFAULT_MAX_FRAME};
use rand::Rng;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::Mutex as AsyncMutex;
use tokio_util::sync::CancellationToken;

/// Runs the simulation `cfg` describes. `Ok` carries the report whether or
/// not the invariants held (see [`Report::passed`]); `Err` is a simulation
/// that could not run at all.
pub async fn run(cfg: SimConfig) -> Result<Report> {
    cfg.check().map_err(anyhow::Error::msg)?;
    let mut workload = match &cfg.replay {
        Some(dir) => {
            let w = crate::recorded::load(dir, cfg.duration, cfg.seed)?;
            say(
                &cfg,
                &format!(
                    "replaying {}: {}",
                    dir.display(),
                    crate::recorded::summary(&w)
                ),
            );
            w
        }
        None => workload::synthetic(cfg.jobs, cfg.duration, cfg.seed),
    };
    let offer = sim_worker::offer(cfg.cores_per_worker);
    let reduced = workload.fit_requests(offer);
    if reduced > 0 {
        say(
            &cfg,
            &format!(
                "{reduced} clusters asked for more than a simulated worker offers ({offer}); \
                 their requests were reduced to fit (raise --cores-per-worker to keep them)"
            ),
        );
    }
    crate::rlimit::raise_for(cfg.workers as u64 + 4 * cfg.foremen as u64 + 16)?;

    let scratch = tempfile::Builder::new()
        .prefix("pilotq-sim-")
        .tempdir()
        .context("creating a scratch directory")?;
    let journal = cfg
        .journal
        .clone()
        .unwrap_or_else(|| scratch.path().join("master-journal"));
    let password = scratch.path().join("password");
    let secret_bytes: [u8; 24] = rand::thread_rng().gen();
    std::fs::write(&password, hex::encode(secret_bytes)).context("writing the password file")?;
    let secret = Secret::from_file(&password)?;
    let pki = if cfg.tls {
        Some(crate::certs::Pki::generate(
            &scratch.path().join("tls"),
            "pilotq sim",
        )?)
    } else {
        None
    };

    let mut sim = Sim::new(
        cfg.clone(),
        workload,
        journal.clone(),
        scratch.path(),
        secret,
        &password,
        pki,
    )?;
    let outcome = sim.drive().await;
    // Whatever happened, no child outlives the simulation.
    sim.teardown().await;
    let mut report = match outcome {
        Ok(r) => r,
        Err(e) => {
            // The error may point at the logs: keep them.
            let kept = scratch.keep();
            return Err(e.context(format!("logs and journal kept in {}", kept.display())));
        }
    };
    report.journal = journal.display().to_string();
    if report.passed() {
        drop(scratch);
    } else {
        let kept = scratch.keep();
        report
            .invariants_failed
            .push(format!("logs and journal kept in {}", kept.display()));
    }
    Ok(report)
}

/// A master's or foreman's TLS flags for the run's certificates.
fn server_tls_args(p: &crate::certs::Pki) -> [String; 4] {
    [
        "--tls-cert".into(),
        p.server_cert.display().to_string(),
        "--tls-key".into(),
        p.server_key.display().to_string(),
    ]
}

fn say(cfg: &SimConfig, line: &str) {
    if cfg.progress {
        eprintln!("sim: {line}");
    }
}

struct Sim {
    cfg: SimConfig,
    workload: Workload,
    journal: PathBuf,
    scratch: PathBuf,
    password: PathBuf,
    /// The run's certificates (`--tls`).
    pki: Option<crate::certs::Pki>,
    master: Arc<AsyncMutex<ServerProc>>,
    foremen: Vec<ServerProc>,
    relays: Vec<Relay>,
    shared: Arc<Shared>,
    /// Death tokens of live workers, by worker id.
    fleet: Arc<Mutex<HashMap<u32, CancellationToken>>>,
    next_worker: Arc<AtomicU64>,
    deaths: Arc<AtomicU64>,
    /// Stops the fault injectors and the sampler.
    faults_off: CancellationToken,
    /// Why the master is gone for good (it would not restart).
    master_dead: Arc<Mutex<Option<String>>>,
    timeline: Arc<Mutex<Timeline>>,
    t_submit: Option<Instant>,
}

impl Sim {
    fn new(
        cfg: SimConfig,
        workload: Workload,
        journal: PathBuf,
        scratch: &Path,
        secret: Secret,
        password: &Path,
        pki: Option<crate::certs::Pki>,
    ) -> Result<Sim> {
        let heartbeat = (cfg.lease / 5).max(Duration::from_millis(200));
        let mut master_args = vec![
            "--journal".to_string(),
            journal.display().to_string(),
            "--name".into(),
            "sim-master".into(),
            "--lease".into(),
            format!("{}", cfg.lease.as_secs_f64()),
            "--heartbeat".into(),
            format!("{}", heartbeat.as_secs_f64()),
            "--password-file".into(),
            password.display().to_string(),
            // The workload is all one owner's, millions of jobs at once.
            "--max-jobs-per-owner".into(),
            "0".into(),
            // Its `--stop-after` removal acts for the site, whoever runs it.
            "--super-users".into(),
            pilotq_actors::client::current_user(),
            // Ten thousand workers come from one address.
            "--max-connections-per-ip".into(),
            "0".into(),
        ];
        let tls = match &pki {
            None => None,
            Some(p) => {
                master_args.extend(server_tls_args(p));
                Some(pilotq_actors::tls::ClientTls::load(&p.ca, None)?)
            }
        };
        let master = ServerProc::new(
            "master",
            cfg.pilotq_bin.clone(),
            master_args,
            scratch.join("master.log"),
        );
        let shared = Arc::new(Shared {
            book: Arc::new(JobBook::new(&workload)),
            stats: Arc::new(Stats::new()),
            secret: Some(secret),
            tls,
            speed: cfg.speed,
            heartbeat,
            max_frame: DEFAULT_MAX_FRAME,
            stop: CancellationToken::new(),
            first_connects: tokio::sync::Semaphore::new(cfg.connect_parallelism.max(1)),
        });
        Ok(Sim {
            cfg,
            workload,
            journal,
            scratch: scratch.to_path_buf(),
            password: password.to_path_buf(),
            pki,
            master: Arc::new(AsyncMutex::new(master)),
            foremen: Vec::new(),
            relays: Vec::new(),
            shared,
            fleet: Arc::new(Mutex::new(HashMap::new())),
            next_worker: Arc::new(AtomicU64::new(0)),
            deaths: Arc::new(AtomicU64::new(0)),
            faults_off: CancellationToken::new(),
            master_dead: Arc::new(Mutex::new(None)),
            timeline: Arc::new(Mutex::new(Timeline::default())),
            t_submit: None,
        })
    }

    fn stats(&self) -> &Stats {
        &self.shared.stats
    }

    async fn master_addr(&self) -> String {
        self.master.lock().await.addr.clone()
    }

    async fn drive(&mut self) -> Result<Report> {
        let cfg = self.cfg.clone();
        self.master.lock().await.start().await?;
        let master_addr = self.master_addr().await;
        say(
            &cfg,
            &format!(
                "master listening on {master_addr}, journal {}",
                self.journal.display()
            ),
        );
        let upstreams = self.start_foremen(&master_addr).await?;
        let fleet = Arc::new(Fleet {
            shared: self.shared.clone(),
            live: self.fleet.clone(),
            next: self.next_worker.clone(),
            upstreams,
            cores: cfg.cores_per_worker,
            depth: cfg.depth,
        });

        // The fleet.
        let t_connect = Instant::now();
        for _ in 0..cfg.workers {
            fleet.spawn_one();
        }
        let want = cfg.workers as u64;
        let connected = self
            .wait_for(Duration::from_secs(120), || {
                self.stats().connected.load(Relaxed) >= want
            })
            .await;
        let seconds_to_connect = t_connect.elapsed().as_secs_f64();
        if !connected {
            bail!(
                "only {} of {} workers connected within 120 s (see {})",
                self.stats().connected.load(Relaxed),
                cfg.workers,
                self.scratch.join("master.log").display()
            );
        }
        say(
            &cfg,
            &format!(
                "{} workers connected in {seconds_to_connect:.2} s",
                cfg.workers
            ),
        );

        // The workload, the sampler, the faults.
        let total = self.workload.jobs();
        let slots = cfg.workers as u64 * cfg.cores_per_worker as u64;
        self.stats()
            .all_running_target
            .store(total.min(slots), Relaxed);
        let t_submit = Instant::now();
        self.t_submit = Some(t_submit);
        let mut submitting = Some(self.spawn_submitter(t_submit, &master_addr));
        self.spawn_sampler(t_submit);
        self.spawn_master_killer(t_submit);
        self.spawn_churn(fleet.clone());
        self.spawn_partition(t_submit);
        say(&cfg, &format!("submitting {total} jobs"));

        // Until every accepted job has ended, or the timeout.
        let deadline = t_submit + cfg.timeout;
        let mut last_progress = Instant::now();
        let mut client: Option<Client> = None;
        let mut removed_rest = false;
        let finished = loop {
            if Instant::now() > deadline {
                break false;
            }
            if let Some(why) = self
                .master_dead
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .clone()
            {
                bail!("{why}");
            }
            if let (Some(after), false) = (cfg.stop_after, removed_rest) {
                if t_submit.elapsed() >= after {
                    if let Some(h) = submitting.take() {
                        // A submission cut here may still be read by the
                        // master: give it time to land before the removal.
                        h.abort();
                        tokio::time::sleep(Duration::from_millis(500)).await;
                    }
                    if let Some(c) = client.as_mut() {
                        match c.remove(vec![Selector::All]).await {
                            Ok(n) => {
                                removed_rest = true;
                                say(&cfg, &format!("--stop-after: removed the {n} jobs left"));
                            }
                            Err(_) => client = None,
                        }
                    } else {
                        let _ = self.status(&master_addr, &mut client).await;
                    }
                    continue;
                }
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
            if submitting.as_ref().is_some_and(|h| h.is_finished()) {
                let h = submitting.take().expect("checked");
                h.await.context("the submitter panicked")??;
            }
            if submitting.is_some() {
                continue;
            }
            let Some(status) = self.status(&master_addr, &mut client).await else {
                continue;
            };
            if last_progress.elapsed() > Duration::from_secs(5) {
                last_progress = Instant::now();
                say(
                    &cfg,
                    &format!(
                        "{:.0} s: {} idle, {} running, {} completed, {} held; {} workers connected",
                        t_submit.elapsed().as_secs_f64(),
                        status.idle,
                        status.running,
                        status.completed + status.history_completed,
                        status.held,
                        self.stats().connected.load(Relaxed)
                    ),
                );
            }
            let accepted = if removed_rest {
                self.stats().submitted.load(Relaxed)
            } else {
                total
            };
            if status.idle == 0
                && status.running == 0
                && status.completed
                    + status.history_completed
                    + status.held
                    + status.removed
                    + status.history_removed
                    >= accepted
            {
                break true;
            }
        };
        let wall_s = t_submit.elapsed().as_secs_f64();
        self.faults_off.cancel();
        if let Some(h) = submitting.take() {
            h.abort();
        }
        self.sample_now(t_submit, total);

        // The master's figures are those of the run: the checks that follow
        // (a query of every job) are the simulation's, not the workload's.
        let (master_cpu_s, master_peak_rss_mb, master_restarts) = {
            let mut m = self.master.lock().await;
            m.sample();
            (m.cpu_s(), m.peak_rss_mb(), m.restarts)
        };

        // The live table, then everything stopped, then the checks.
        let (live, history) = self.live_table(&master_addr).await?;
        self.shared.stop.cancel();
        for f in &mut self.foremen {
            let _ = f.stop(Duration::from_secs(60)).await;
        }
        let master_peak_rss_mb_with_checks = {
            let mut m = self.master.lock().await;
            m.stop(Duration::from_secs(120)).await?;
            m.peak_rss_mb()
        };
        let allowed_overlap = cfg.lease
            + cfg.partition_foreman.unwrap_or_default()
            + longest_reconnect_wait(cfg.lease)
            + self.shared.heartbeat;
        let overlaps = self
            .stats()
            .overlaps_beyond(allowed_overlap, Instant::now());
        let submitted = self.stats().submitted.load(Relaxed);
        let end = invariants::check(&Evidence {
            live: &live,
            history: &history,
            submitted,
            book: &self.shared.book,
            journal: &self.journal,
            overlaps: &overlaps,
            allowed_overlap,
            removal_ends: removed_rest,
        })?;
        let mut failures = end.failures.clone();
        if !finished {
            failures.insert(
                0,
                format!(
                    "timed out after {:?} with jobs not ended (raise --timeout, or see {})",
                    cfg.timeout,
                    self.scratch.join("master.log").display()
                ),
            );
        }
        if submitted < total && !removed_rest {
            failures.push(format!("only {submitted} of {total} jobs were accepted"));
        }

        let timeline = self
            .timeline
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        let (p50, p99) = self
            .stats()
            .latency_percentiles()
            .map_or((None, None), |(a, b)| (Some(a), Some(b)));
        let report = Report {
            jobs_completed: end.completed,
            jobs_lost: end.lost,
            jobs_duplicated: end.duplicated,
            completions_per_s_sustained: timeline.sustained_rate(),
            completions_per_s_peak: timeline.peak_rate(),
            dispatch_latency_p50_ms: p50,
            dispatch_latency_p99_ms: p99,
            seconds_to_all_running: self.seconds_to_all_running(t_submit),
            master_cpu_s,
            master_peak_rss_mb,
            master_restarts,
            master_peak_rss_mb_with_checks,
            jobs_submitted: submitted,
            jobs_held: end.held,
            jobs_removed: end.removed,
            peak_running: self.stats().peak_running.load(Relaxed),
            jobs_overlapping: end.overlaps,
            jobs_rerun: self.stats().reruns(),
            rerun_examples: self.stats().rerun_examples(3),
            runs_cut: self.stats().runs_cut.load(Relaxed),
            results_died: self.stats().results_died.load(Relaxed),
            workers: cfg.workers,
            cores_per_worker: cfg.cores_per_worker,
            foremen: cfg.foremen,
            worker_deaths: self.deaths.load(Relaxed),
            foreman_partitions: timeline.partitions.len() as u32,
            seconds_to_connect,
            wall_s,
            journal_events: end.journal_events,
            journal_matches_live_table: end.journal_matches_live,
            journal: String::new(),
            invariants_failed: failures,
        };
        if let Some(p) = &cfg.timeline_csv {
            timeline
                .write_csv(p)
                .with_context(|| format!("writing {}", p.display()))?;
        }
        if let Some(p) = &cfg.plot {
            timeline
                .write_svg(p)
                .with_context(|| format!("writing {}", p.display()))?;
        }
        Ok(report)
    }

    fn seconds_to_all_running(&self, t_submit: Instant) -> Option<f64> {
        let us = self.stats().all_running_at_us.load(Relaxed);
        if us == 0 {
            return None;
        }
        let at = self.stats().t0 + Duration::from_micros(us);
        Some(at.saturating_duration_since(t_submit).as_secs_f64())
    }

    /// Foremen, each behind a relay the simulation can cut; the workers'
    /// upstreams (the master when there are none).
    async fn start_foremen(&mut self, master: &str) -> Result<Vec<String>> {
        if self.cfg.foremen == 0 {
            return Ok(vec![master.to_string()]);
        }
        let heartbeat = self.shared.heartbeat;
        let mut addrs = Vec::new();
        for i in 0..self.cfg.foremen {
            let relay = Relay::start(master.to_string(), self.faults_off.child_token())
                .await
                .context("starting a relay")?;
            let mut args = vec![
                "--max-connections-per-ip".to_string(),
                "0".into(),
                "--master".to_string(),
                relay.addr.clone(),
                "--journal".into(),
                self.scratch
                    .join(format!("foreman-{i}"))
                    .display()
                    .to_string(),
                "--name".into(),
                format!("sim-foreman-{i}"),
                "--depth".into(),
                self.cfg.depth.to_string(),
                "--lease".into(),
                format!("{}", self.cfg.lease.as_secs_f64()),
                "--heartbeat".into(),
                format!("{}", heartbeat.as_secs_f64()),
                "--password-file".into(),
                self.password.display().to_string(),
            ];
            if let Some(p) = &self.pki {
                args.extend(server_tls_args(p));
                args.extend(["--tls-ca".to_string(), p.ca.display().to_string()]);
            }
            let mut f = ServerProc::new(
                "foreman",
                self.cfg.pilotq_bin.clone(),
                args,
                self.scratch.join(format!("foreman-{i}.log")),
            );
            f.start().await?;
            addrs.push(f.addr.clone());
            self.foremen.push(f);
            self.relays.push(relay);
        }
        say(
            &self.cfg,
            &format!("{} foremen listening", self.cfg.foremen),
        );
        Ok(addrs)
    }

    async fn wait_for(&self, limit: Duration, done: impl Fn() -> bool) -> bool {
        let until = Instant::now() + limit;
        let mut said = Instant::now();
        while Instant::now() < until {
            if done() {
                return true;
            }
            if said.elapsed() > Duration::from_secs(5) {
                said = Instant::now();
                say(
                    &self.cfg,
                    &format!(
                        "{} of {} workers connected",
                        self.stats().connected.load(Relaxed),
                        self.cfg.workers
                    ),
                );
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        done()
    }

    /// Submits each cluster at its time, on up to [`SUBMITTERS`]
    /// connections at once (a site has many submitters; one would measure
    /// its own round trips, not the master).
    fn spawn_submitter(&mut self, t0: Instant, addr: &str) -> tokio::task::JoinHandle<Result<()>> {
        let plans = std::mem::take(&mut self.workload.clusters);
        let shared = self.shared.clone();
        let speed = self.cfg.speed;
        let sub = Arc::new(Submitter {
            addr: addr.to_string(),
            shared: self.shared.clone(),
            hash: hex::encode(Sha256::digest(SIM_EXECUTABLE)),
            pool: Mutex::new(Vec::new()),
            known: Mutex::new(std::collections::BTreeSet::new()),
        });
        tokio::spawn(async move {
            futures::stream::iter(plans.into_iter().enumerate().map(Ok))
                .try_for_each_concurrent(SUBMITTERS, |(idx, plan)| {
                    let (sub, shared) = (sub.clone(), shared.clone());
                    async move {
                        tokio::time::sleep_until((t0 + plan.at.div_f64(speed)).into()).await;
                        shared.stats.submitted_at.insert(idx, Instant::now());
                        sub.submit(idx, plan).await
                    }
                })
                .await
        })
    }

    fn spawn_sampler(&self, t0: Instant) {
        let (master, stats, timeline, off, every) = (
            self.master.clone(),
            self.shared.stats.clone(),
            self.timeline.clone(),
            self.faults_off.clone(),
            self.cfg.sample_every,
        );
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            loop {
                tokio::select! {
                    _ = off.cancelled() => return,
                    _ = tick.tick() => {}
                }
                let up = match master.try_lock() {
                    Ok(mut m) => {
                        m.sample();
                        m.is_up()
                    }
                    Err(_) => false,
                };
                let sample = sample_of(&stats, t0, up);
                timeline
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .samples
                    .push(sample);
            }
        });
    }

    fn sample_now(&self, t0: Instant, _total: u64) {
        let s = sample_of(self.stats(), t0, true);
        self.timeline
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .samples
            .push(s);
    }

    /// `--kill-master-every`: SIGKILL, then restart on the same journal and
    /// port at once, as a supervisor would.
    fn spawn_master_killer(&self, t0: Instant) {
        let Some(every) = self.cfg.kill_master_every else {
            return;
        };
        let (master, timeline, off, cfg, dead) = (
            self.master.clone(),
            self.timeline.clone(),
            self.faults_off.clone(),
            self.cfg.clone(),
            self.master_dead.clone(),
        );
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    _ = off.cancelled() => return,
                    _ = tokio::time::sleep(every) => {}
                }
                let mut m = master.lock().await;
                if off.is_cancelled() {
                    return;
                }
                m.kill9().await;
                let t = t0.elapsed().as_secs_f64();
                timeline
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .crashes
                    .push(t);
                say(
                    &cfg,
                    &format!("{t:.1} s: master killed (SIGKILL); restarting it"),
                );
                let mut tries = 0;
                loop {
                    match m.start().await {
                        Ok(()) => break,
                        Err(e) if tries < 10 => {
                            tries += 1;
                            tracing::warn!("restarting the master: {e:#}");
                            tokio::time::sleep(Duration::from_millis(500)).await;
                        }
                        Err(e) => {
                            // `drive` ends the run with this, once.
                            *dead.lock().unwrap_or_else(|p| p.into_inner()) =
                                Some(format!("the master did not restart after a SIGKILL: {e:#}"));
                            return;
                        }
                    }
                }
                m.restarts += 1;
            }
        });
    }

    /// `--worker-churn R`: R times a second a random worker dies (as if
    /// SIGKILLed) and a new one joins.
    fn spawn_churn(&self, fleet: Arc<Fleet>) {
        if self.cfg.worker_churn <= 0.0 {
            return;
        }
        // `check` bounds the rate, so the period is a valid duration.
        let period = Duration::from_secs_f64(1.0 / self.cfg.worker_churn);
        let (off, deaths) = (self.faults_off.clone(), self.deaths.clone());
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(period);
            tick.tick().await;
            loop {
                tokio::select! {
                    _ = off.cancelled() => return,
                    _ = tick.tick() => {}
                }
                let victim = {
                    let live = fleet.live.lock().unwrap_or_else(|p| p.into_inner());
                    if live.is_empty() {
                        None
                    } else {
                        let i = rand::thread_rng().gen_range(0..live.len());
                        live.iter().nth(i).map(|(id, t)| (*id, t.clone()))
                    }
                };
                if let Some((id, death)) = victim {
                    fleet
                        .live
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .remove(&id);
                    death.cancel();
                    deaths.fetch_add(1, Relaxed);
                }
                fleet.spawn_one();
            }
        });
    }

    /// `--partition-foreman D`: foreman 0 cut off from the master for D, once,
    /// a third of the way into the expected run (at least 2 s in).
    fn spawn_partition(&self, t0: Instant) {
        let (Some(d), Some(relay)) = (self.cfg.partition_foreman, self.relays.first().cloned())
        else {
            return;
        };
        let slots = (self.cfg.workers as f64 * self.cfg.cores_per_worker as f64).max(1.0);
        let work_s: f64 = self
            .workload
            .clusters
            .iter()
            .flat_map(|c| c.run_ms.iter())
            .map(|&m| m as f64 / 1000.0)
            .sum::<f64>()
            / self.cfg.speed;
        let start = Duration::from_secs_f64((work_s / slots / 3.0).max(2.0));
        let (timeline, off, cfg) = (
            self.timeline.clone(),
            self.faults_off.clone(),
            self.cfg.clone(),
        );
        tokio::spawn(async move {
            tokio::select! {
                _ = off.cancelled() => return,
                _ = tokio::time::sleep_until((t0 + start).into()) => {}
            }
            relay.partition();
            let a = t0.elapsed().as_secs_f64();
            say(
                &cfg,
                &format!("{a:.1} s: foreman 0 cut off from the master for {d:?}"),
            );
            tokio::select! {
                _ = off.cancelled() => {}
                _ = tokio::time::sleep(d) => {}
            }
            relay.heal();
            let b = t0.elapsed().as_secs_f64();
            timeline
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .partitions
                .push((a, b));
            say(&cfg, &format!("{b:.1} s: foreman 0 reconnected"));
        });
    }

    async fn status(
        &self,
        addr: &str,
        client: &mut Option<Client>,
    ) -> Option<pilotq_wire::message::MasterStatus> {
        if client.is_none() {
            *client = Client::connect(
                addr,
                self.shared.secret.as_ref(),
                self.shared.tls.as_ref(),
                DEFAULT_MAX_FRAME,
            )
            .await
            .ok();
        }
        match client.as_mut()?.status().await {
            Ok(s) => Some(s),
            Err(_) => {
                *client = None;
                None
            }
        }
    }

    /// Every job as the master shows it: its queue, and its history store
    /// (finished jobs leave the queue), retried across a restart in flight.
    async fn live_table(&self, addr: &str) -> Result<(Vec<JobView>, Vec<JobView>)> {
        let until = Instant::now() + Duration::from_secs(120);
        loop {
            let r = async {
                let mut c = Client::connect(
                    addr,
                    self.shared.secret.as_ref(),
                    self.shared.tls.as_ref(),
                    DEFAULT_MAX_FRAME,
                )
                .await?;
                let live = c.query(vec![]).await?;
                let mut history = Vec::new();
                c.history_each(vec![], true, |chunk| {
                    history.extend(chunk);
                    std::ops::ControlFlow::Continue(())
                })
                .await?;
                Ok::<_, pilotq_actors::connect::ConnectError>((live, history))
            }
            .await;
            match r {
                Ok(v) => return Ok(v),
                Err(e) if Instant::now() > until => {
                    bail!("cannot read the master's table: {e}")
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(250)).await,
            }
        }
    }

    /// No child outlives the simulation, whatever ended it.
    async fn teardown(&mut self) {
        self.faults_off.cancel();
        self.shared.stop.cancel();
        for f in &mut self.foremen {
            f.kill9().await;
        }
        self.master.lock().await.kill9().await;
    }
}

/// A sample of what the simulated workers see.
fn sample_of(stats: &Stats, t0: Instant, master_up: bool) -> Sample {
    let running = stats.running.load(Relaxed);
    let completed = stats.completed.load(Relaxed);
    let submitted = stats.submitted.load(Relaxed);
    Sample {
        t_s: t0.elapsed().as_secs_f64(),
        idle: submitted.saturating_sub(running + completed),
        running,
        completed,
        master_up,
    }
}

/// Submissions in flight at once.
const SUBMITTERS: usize = 8;

/// Submits clusters, exactly once each across master crashes.
struct Submitter {
    addr: String,
    shared: Arc<Shared>,
    /// sha256 of [`SIM_EXECUTABLE`].
    hash: String,
    /// Idle client connections.
    pool: Mutex<Vec<Client>>,
    /// Cluster ids the master gave us.
    known: Mutex<std::collections::BTreeSet<u64>>,
}

impl Submitter {
    async fn submit(&self, idx: usize, plan: workload::ClusterPlan) -> Result<()> {
        let mut spec = plan.spec;
        spec.executable = self.hash.clone();
        workload::tag_plan(&mut spec, idx);
        let count = plan.run_ms.len() as u32;
        loop {
            let mut c = self.client().await;
            match c.submit(spec.clone(), count, SIM_EXECUTABLE.to_vec()).await {
                Ok((cluster, n)) => {
                    self.landed(cluster.0, n);
                    self.pool.lock().unwrap_or_else(|p| p.into_inner()).push(c);
                    return Ok(());
                }
                Err(pilotq_actors::connect::ConnectError::Refused { message, .. }) => {
                    bail!("the master refused a submission: {message}")
                }
                Err(e) => {
                    tracing::info!("submission cut ({e}); checking whether it landed");
                    if let Some(id) = self.find(idx).await {
                        self.landed(id, count);
                        return Ok(());
                    }
                }
            }
        }
    }

    fn landed(&self, cluster: u64, jobs: u32) {
        self.known
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(cluster);
        self.shared.stats.submitted.fetch_add(jobs as u64, Relaxed);
    }

    /// A connection from the pool, or a new one; waits out a master restart.
    async fn client(&self) -> Client {
        loop {
            let pooled = self.pool.lock().unwrap_or_else(|p| p.into_inner()).pop();
            if let Some(c) = pooled {
                return c;
            }
            match Client::connect(
                &self.addr,
                self.shared.secret.as_ref(),
                self.shared.tls.as_ref(),
                DEFAULT_MAX_FRAME,
            )
            .await
            {
                Ok(c) => return c,
                Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
            }
        }
    }

    /// Whether plan `idx`, whose submission was cut, landed anyway: the
    /// master numbers clusters in order, so it can only be one of the ids
    /// below the highest we know, or just above it, that no answer gave us.
    /// Each is asked for its first job, whose attributes name its plan.
    async fn find(&self, idx: usize) -> Option<u64> {
        // Connections made before the crash are dead.
        self.pool.lock().unwrap_or_else(|p| p.into_inner()).clear();
        let candidates: Vec<u64> = {
            let known = self.known.lock().unwrap_or_else(|p| p.into_inner());
            let top = known.last().copied().unwrap_or(0) + SUBMITTERS as u64 + 1;
            (1..=top).filter(|id| !known.contains(id)).collect()
        };
        'retry: loop {
            let mut c = self.client().await;
            for &id in &candidates {
                let sel = vec![Selector::Job(pilotq_wire::JobId::new(id, 0))];
                // In the queue, or in history once it finished.
                let mut found = c.query(sel.clone()).await;
                if matches!(&found, Ok(jobs) if jobs.is_empty()) {
                    let mut old = Vec::new();
                    found = c
                        .history_each(sel, false, |chunk| {
                            old.extend(chunk);
                            std::ops::ControlFlow::Continue(())
                        })
                        .await
                        .map(|()| old);
                }
                match found {
                    Ok(jobs) => {
                        if jobs.first().and_then(|v| JobBook::plan_of(&v.attributes)) == Some(idx) {
                            self.pool.lock().unwrap_or_else(|p| p.into_inner()).push(c);
                            return Some(id);
                        }
                    }
                    Err(_) => continue 'retry,
                }
            }
            self.pool.lock().unwrap_or_else(|p| p.into_inner()).push(c);
            return None;
        }
    }
}

/// Starting workers: at the beginning, and for churn.
struct Fleet {
    shared: Arc<Shared>,
    live: Arc<Mutex<HashMap<u32, CancellationToken>>>,
    next: Arc<AtomicU64>,
    upstreams: Vec<String>,
    cores: u32,
    depth: u32,
}

impl Fleet {
    fn spawn_one(&self) {
        let id = self.next.fetch_add(1, Relaxed) as u32;
        // Under foremen, each worker has one: the partition test is about a
        // foreman and its workers cut off together.
        let up = self.upstreams[id as usize % self.upstreams.len()].clone();
        let death = CancellationToken::new();
        self.live
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(id, death.clone());
        let spec = sim_worker::Spec {
            id,
            name: format!("sim-w{id}"),
            upstreams: vec![up],
            cores: self.cores,
            depth: self.depth,
        };
        let (shared, live) = (self.shared.clone(), self.live.clone());
        tokio::spawn(async move {
            sim_worker::run(spec, shared, death).await;
            live.lock().unwrap_or_else(|p| p.into_inner()).remove(&id);
        });
    }
}

/// The longest a holder can wait before it tries its master again: a
/// simulated worker's backoff, or a real foreman's (it is the real binary),
/// each kept inside `lease`.
fn longest_reconnect_wait(lease: Duration) -> Duration {
    let mut foreman = pilotq_actors::backoff::Backoff::default();
    foreman.fit_lease(lease);
    sim_worker::backoff(Some(lease))
        .longest_wait()
        .max(foreman.longest_wait())
}
