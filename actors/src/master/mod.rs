//! The master: owns the pilot table and its journal.
//!
//! Every handler follows *decide → append → apply → reply*, with one
//! refinement (ARCHITECTURE.md): the events are applied to the
//! in-memory table when they are handed to the journal writer, not when they
//! are durable, and everything anyone outside can see (replies, dispatches,
//! kills, acks, even query answers) waits for durability. So the next
//! decision already sees the previous one (no job can be dispatched twice
//! while a flush is in flight), many requests share one flush (group commit),
//! and still nothing is revealed before it is durable. If a write fails the
//! process exits: its memory is ahead of the disk, and a restart replays what
//! is durable.
//!
//! ## The rule for everything that leaves the master
//! **Nothing leaves the master before the state that justifies it is
//! durable.** Every `deliver` to a peer (a reply, a `Dispatch`, a `Kill`, an
//! `Ack`, `Drained`, a query chunk) and every message up from a foreman runs
//! inside the completion of a `commit` or of `after_durable`, never straight
//! from a handler: the table may hold decisions still in flight to the disk,
//! and a crash must not leave a peer acting on one that never happened (a
//! job killed, then replayed as running and run again). A result's output
//! files are written before its completion is even journaled (`outputs.rs`).
//! The only frames sent at once are refusals that reveal no state (a bad
//! request, a paused master), the handshake, and executables asked for by
//! hash (`FetchBlob`: a holder only learns a hash from a durable dispatch).
//!
//! | file | concern |
//! |---|---|
//! | `mod.rs` | the actor, its messages, start-up (replay), commit, snapshots, shutdown |
//! | `holders.rs` | workers and foremen: register, started, leases |
//! | `outputs.rs` | results: output files put in place, then completion, then ack; held outputs; release |
//! | `blob_gc.rs` | deleting executables, wrappers and kept outputs nothing needs any more |
//! | `clients.rs` | submit, query, remove, status |
//! | `history.rs` | `condor_history`: finished jobs read from the history store on a thread of their own |
//! | `journal_tail.rs` | the live database's journal segments for post-mortems (`JournalTail`) |
//! | `dispatch.rs` | handing idle jobs to holders with free resources |
//! | `disk.rs` | the journal's free space against `--min-free-disk` |
//! | `seat.rs` | what differs between the site's master and a foreman's local queue |
//! | `local_queue.rs` | as a foreman's local queue: adopt, relay up, report capacity |

mod blob_gc;
mod clients;
pub mod disk;
mod dispatch;
mod history;
mod holders;
mod journal_tail;
mod limits;
pub mod listener;
mod local_queue;
mod outputs;
mod seat;

use crate::config::MasterConfig;
use crate::files::JobFiles;
use crate::outbox::Outbox;
use crate::session::{Grant, SessionSettings};
use crate::user_log::{self, RetryUserLogs, UserLogWriter};
use actix::prelude::*;
use disk::DiskFloor;
use pilotq_journal::{replay, snapshot, Event, JournalError, Store, Table, Writer};
use pilotq_wire::{FromMaster, Resources, Role, ToMaster};
use seat::Seat;
use std::collections::{HashMap, HashSet};
use std::sync::atomic::AtomicUsize;
use std::sync::Arc;
use std::time::Instant;
use tokio::net::TcpListener;

/// A request from an authenticated session.
#[derive(Message)]
#[rtype(result = "()")]
pub struct FromSession {
    pub conn: u64,
    pub role: Role,
    pub grant: Grant,
    pub name: String,
    pub outbox: Outbox<FromMaster>,
    pub msg: ToMaster,
}

#[derive(Message)]
#[rtype(result = "()")]
pub struct SessionClosed {
    pub conn: u64,
    pub role: Role,
    pub name: String,
}

/// Clean shutdown: store a snapshot, flush, stop the system.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Shutdown;

/// A holder as the master's runtime knows it (not journaled: after a restart
/// holders report themselves again).
pub(crate) struct HolderRt {
    pub outbox: Option<Outbox<FromMaster>>,
    pub resources: Resources,
    /// What the holder may be given: its resources times its queue depth.
    pub capacity: Resources,
    pub depth: u32,
    pub last_seen: Instant,
    /// Executables this connection already received.
    pub blobs_sent: HashSet<String>,
    /// Clusters whose spec this connection already received.
    pub specs_sent: HashSet<pilotq_wire::ClusterId>,
    /// Jobs at once at most (0: no limit).
    pub max_jobs: u32,
    /// What it offers beyond resources; a tagged job needs all its tags.
    pub tags: Vec<String>,
    /// Asked for no more jobs.
    pub draining: bool,
    /// The random value it registered with: a later connection under its
    /// name must show the same to take its attempts back. `None` after a
    /// master restart, until it registers again.
    pub token: Option<Vec<u8>>,
}

pub struct Master {
    pub(crate) cfg: MasterConfig,
    pub(crate) table: Table,
    pub(crate) store: Store,
    pub(crate) writer: Writer,
    pub(crate) holders: HashMap<String, HolderRt>,
    pub(crate) files: JobFiles,
    /// Job event logs, on one thread of their own: a job's events must reach
    /// its log in order.
    user_logs: Addr<UserLogWriter>,
    /// The journal's free space against `--min-free-disk`.
    pub(crate) disk: DiskFloor,
    /// Why submissions are refused: the journal's filesystem is below its
    /// floor (checked every second and at each submission).
    pub(crate) low_disk: Option<String>,
    /// Set when this start found the disk below its floor: nothing is
    /// written (not even `MasterStarted`) until space returns, and every
    /// request that would write is refused with this reason (see `disk`).
    pub(crate) paused: Option<String>,
    /// Results whose files are being put in place, with the copies of them
    /// that arrived meanwhile (one per connection; taken after the first).
    pub(crate) placing: HashMap<(pilotq_wire::JobId, u32), Vec<WaitingCopy>>,
    /// On a foreman: executables asked of the master, not yet here.
    pub(crate) fetching: HashSet<String>,
    /// A blocking thread is making the disk reserve.
    reserve_busy: Arc<std::sync::atomic::AtomicBool>,
    /// The journal directory's lock, held while the master lives.
    _dir_lock: std::fs::File,
    /// The job wrapper (`--job-wrapper`): its hash and bytes.
    pub(crate) wrapper: Option<(String, Vec<u8>)>,
    /// The site's master, or a foreman's local queue (see `seat`).
    pub(crate) seat: Seat,
    pub(crate) capacity_sent: Option<Resources>,
    /// How the master names itself in job event logs.
    pub(crate) host: String,
    /// Executables recently submitted or sent, by hash. A submission's
    /// executable is dispatched from here: its write to the journal may still
    /// be in flight when the first job of the cluster goes out.
    pub(crate) blobs: HashMap<String, Vec<u8>>,
    since_snapshot: u64,
    pub(crate) dispatch_scheduled: bool,
    /// Finished jobs' records, on disk (`history.rs`).
    pub(crate) history: history::HistoryStore,
    /// A blob collection is under way (`blob_gc.rs`).
    pub(crate) collecting_blobs: bool,
    /// The reclaim window this start opened or carried on, while some
    /// holder that had jobs out at the start has neither come back nor been
    /// given up on.
    pub(crate) reclaim: Option<holders::Reclaim>,
}

/// A copy of a result that arrived while the first was being placed.
pub(crate) struct WaitingCopy {
    pub name: String,
    pub ob: Outbox<FromMaster>,
    pub result: pilotq_wire::JobResult,
}

/// What `start` reports about the replay, for the log line and tests.
#[derive(Debug, Clone)]
pub struct StartInfo {
    pub addr: std::net::SocketAddr,
    pub replayed: u64,
    pub snapshot_seq: Option<u64>,
    pub jobs: u64,
    pub replay_ms: u128,
}

impl Master {
    /// Replays the journal, binds the listener and starts the master and its
    /// accept loop on the current actix system.
    pub async fn start(cfg: MasterConfig) -> Result<(Addr<Master>, StartInfo), StartError> {
        let t0 = Instant::now();
        // The free space is looked at before the journal is opened: opening
        // writes, and a start below the floor frees the reserve for it.
        std::fs::create_dir_all(&cfg.journal).map_err(|e| {
            StartError::Other(format!(
                "cannot create the journal directory {}: {e}",
                cfg.journal.display()
            ))
        })?;
        let dir_lock = disk::lock_journal_dir(&cfg.journal).map_err(|e| {
            if e.kind() == std::io::ErrorKind::WouldBlock {
                StartError::Journal(JournalError::Locked {
                    path: cfg.journal.display().to_string(),
                })
            } else {
                StartError::Other(format!(
                    "cannot lock the journal directory {}: {e}",
                    cfg.journal.display()
                ))
            }
        })?;
        let disk = DiskFloor::new(&cfg.journal, cfg.min_free_disk).map_err(|e| {
            StartError::Other(format!(
                "cannot read the free space of {}: {e}",
                cfg.journal.display()
            ))
        })?;
        let paused = disk.check().err();
        if paused.is_some() {
            match disk.release_reserve() {
                Ok(0) => {}
                Ok(n) => tracing::warn!(
                    bytes = n,
                    "the disk is below its floor: deleted the reserve beside the journal so that it can be opened"
                ),
                Err(e) => tracing::warn!("cannot delete the reserve beside the journal: {e}"),
            }
        }
        let path = cfg.journal.clone();
        let r = tokio::task::spawn_blocking(move || replay::open(&path))
            .await
            .map_err(|e| StartError::Other(e.to_string()))??;
        let replay_ms = t0.elapsed().as_millis();
        let listener = TcpListener::bind(&cfg.listen)
            .await
            .map_err(|e| StartError::Listen {
                addr: cfg.listen.clone(),
                source: e,
            })?;
        let addr = listener
            .local_addr()
            .map_err(|e| StartError::Other(e.to_string()))?;
        if let Some(why) = open_listen_refusal(&addr, cfg.role_secrets().all_set(), cfg.insecure) {
            return Err(StartError::Other(why));
        }
        let unix = match &cfg.unix_socket {
            None => None,
            Some(p) => Some((
                listener::bind_unix(p).map_err(StartError::Other)?,
                p.clone(),
            )),
        };
        let (tls, per_ip) = (cfg.tls.clone(), cfg.max_connections_per_ip);
        // Attempt keys must survive a restart: workers show theirs after.
        let site_key =
            crate::kept_secret::load_or_create(&cfg.journal, crate::kept_secret::ATTEMPT_KEY)
                .map_err(|e| {
                    StartError::Other(format!(
                        "cannot keep the attempt key in {}: {e}",
                        cfg.journal.display()
                    ))
                })?;
        let info = StartInfo {
            addr,
            replayed: r.replayed,
            snapshot_seq: r.snapshot_seq,
            jobs: r.table.counts().total(),
            replay_ms,
        };
        let wrapper = match &cfg.job_wrapper {
            None => None,
            Some(p) => {
                let bytes = std::fs::read(p).map_err(|e| {
                    StartError::Other(format!("cannot read job wrapper {}: {e}", p.display()))
                })?;
                let hash = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&bytes));
                Some((hash, bytes))
            }
        };
        // Snapshotted events move to sealed files on the sealer's thread.
        let keep = pilotq_journal::Retention {
            keep_age: cfg.journal_keep_age,
            keep_bytes: cfg.journal_keep_size,
        };
        // A start below the disk floor writes nothing, sealed files
        // included: that master seals from its next start on.
        let writer = if paused.is_none() {
            Writer::start_sealing(r.store.clone(), r.next_seq, 65_536, keep)
        } else {
            Writer::start(r.store.clone(), r.next_seq, 65_536)
        };
        // Jobs that finish leave the table for the history store, written
        // by the journal thread with their events.
        let history_dir = history::dir_of(&cfg.journal);
        let last_seq = r.next_seq.saturating_sub(1);
        let limits = cfg.history_limits;
        let hdir = history_dir.clone();
        let history_writer = tokio::task::spawn_blocking(move || {
            pilotq_journal::history::HistoryWriter::open(&hdir, last_seq, limits)
        })
        .await
        .map_err(|e| StartError::Other(e.to_string()))??;
        let history = history::HistoryStore::new(history_dir, history_writer.committed());
        writer.attach_history(history_writer);
        let mut table = r.table;
        table.keep_departures();
        let files = JobFiles::start(crate::files::WRITER_THREADS);
        let settings = SessionSettings {
            secrets: cfg.role_secrets(),
            master_name: cfg.name.clone(),
            max_frame: cfg.max_frame,
            handshake_timeout: cfg.handshake_timeout,
            max_connections: cfg.max_connections,
            open_sessions: Arc::new(AtomicUsize::new(0)),
            open_reads: cfg.open_reads,
            lease: cfg.lease,
        };
        let mut master = Master {
            cfg,
            table,
            store: r.store,
            writer,
            holders: HashMap::new(),
            files,
            user_logs: SyncArbiter::start(1, UserLogWriter::default),
            low_disk: paused.clone(),
            paused,
            disk,
            placing: HashMap::new(),
            fetching: HashSet::new(),
            reserve_busy: Default::default(),
            _dir_lock: dir_lock,
            wrapper,
            seat: Seat::Site { site_key },
            capacity_sent: None,
            host: addr.to_string(),
            blobs: HashMap::new(),
            since_snapshot: r.replayed,
            dispatch_scheduled: false,
            reclaim: None,
            history,
            collecting_blobs: false,
        };
        if master.paused.is_none() {
            master.adopt_orphans();
            master.keep_reserve();
        }
        let addr_m = master.start();
        if let Some((l, path)) = unix {
            actix::spawn(listener::serve_unix(
                l,
                path,
                addr_m.clone(),
                settings.clone(),
            ));
        }
        actix::spawn(listener::serve_tcp(
            listener,
            tls,
            per_ip,
            addr_m.clone(),
            settings,
        ));
        Ok((addr_m, info))
    }

    /// Applies `events` to the table and hands them to the journal; `then`
    /// runs on the journal thread once they are durable.
    pub(crate) fn commit(
        &mut self,
        events: Vec<Event>,
        blobs: Vec<(String, Vec<u8>)>,
        then: impl FnOnce() + Send + 'static,
    ) {
        let logs = user_log::entries_for(&self.table, &events, &self.host);
        for e in &events {
            self.table.apply(e);
        }
        self.append(events, blobs, logs, then);
    }

    /// Like `commit`, for events the caller has already applied; `logs` are
    /// their job event log entries, taken before they were applied.
    pub(crate) fn commit_applied(
        &mut self,
        events: Vec<Event>,
        blobs: Vec<(String, Vec<u8>)>,
        logs: Vec<user_log::Write1>,
        then: impl FnOnce() + Send + 'static,
    ) {
        self.append(events, blobs, logs, then);
    }

    fn append(
        &mut self,
        events: Vec<Event>,
        blobs: Vec<(String, Vec<u8>)>,
        logs: Vec<user_log::Write1>,
        then: impl FnOnce() + Send + 'static,
    ) {
        self.since_snapshot += events.len() as u64;
        let seat = self
            .seat
            .once_durable(&self.table, &events, logs, &self.user_logs);
        let durable = move || {
            seat();
            then();
        };
        // The jobs these events took out of the queue: their history
        // records go with them.
        let departures = self.table.take_departures();
        self.writer.append_departing(
            events,
            blobs,
            departures,
            Box::new(move |r| durable_or_die(r, durable)),
        );
        if self.since_snapshot >= self.cfg.snapshot_every {
            self.snapshot();
        }
    }

    /// Keeps an executable in memory, within a bound (pilots use few
    /// distinct executables; the journal has them all).
    pub(crate) fn remember_blob(&mut self, hash: String, bytes: Vec<u8>) {
        const MAX_BLOBS: usize = 64;
        if self.blobs.len() >= MAX_BLOBS {
            self.blobs.clear();
        }
        self.blobs.insert(hash, bytes);
    }

    /// Runs `then` once everything committed so far is durable: for answers
    /// that reveal state (queries) without adding events.
    pub(crate) fn after_durable(&self, then: impl FnOnce() + Send + 'static) {
        self.writer
            .barrier(Box::new(move |r| durable_or_die(r, then)));
    }

    fn snapshot(&mut self) {
        let t0 = Instant::now();
        let bytes = snapshot::encode(&self.table);
        let len = bytes.len();
        self.since_snapshot = 0;
        self.writer.snapshot(
            bytes,
            Box::new(move |r| {
                if let Err(e) = r {
                    tracing::warn!("snapshot not stored: {e}");
                }
            }),
        );
        tracing::info!(
            bytes = len,
            encode_ms = t0.elapsed().as_millis() as u64,
            "snapshot taken"
        );
    }
}

/// How often an `--insecure` master repeats its warning.
const INSECURE_WARN_EVERY: std::time::Duration = std::time::Duration::from_secs(300);

/// Why a master must not listen on `addr` (bound): beyond loopback without a
/// shared secret, anyone who reaches the port could submit jobs that every
/// worker runs, and report results written to the submitters' files. Only
/// an explicit `--insecure` gets past.
pub fn open_listen_refusal(
    addr: &std::net::SocketAddr,
    has_secret: bool,
    insecure: bool,
) -> Option<String> {
    if has_secret || addr.ip().is_loopback() {
        return None;
    }
    if insecure {
        tracing::warn!(
            %addr,
            "--insecure: listening beyond loopback with no password file; anyone who reaches this port can submit jobs that every worker runs"
        );
        return None;
    }
    Some(format!(
        "refusing to listen on {addr} without a shared secret for every role: anyone who could reach it could submit jobs for every worker to run. \
         Make one with `pilotq init-secret /etc/pilotq/secret` and give it to the master, its workers and its clients with \
         --password-file (or PILOTQ_PASSWORD_FILE); or listen on 127.0.0.1; or pass --insecure to accept any peer (not for a site)"
    ))
}

/// How often the journal's free space is looked at (and failed job event
/// log appends retried).
const DISK_TICK: std::time::Duration = std::time::Duration::from_secs(1);

impl Master {
    /// The post-mortem marker of a start, once the master may write.
    fn mark_start(&mut self) {
        let name = self.cfg.name.clone();
        // The job wrapper goes into the journal's blobs like an executable,
        // so that a foreman can still fetch it after a restart with another.
        let blobs = match &self.wrapper {
            Some((hash, bytes)) if !self.store.has_blob(hash).unwrap_or(false) => {
                vec![(hash.clone(), bytes.clone())]
            }
            _ => vec![],
        };
        // Never collected (see `Store::note_wrapper`); durable with the
        // start marker's flush.
        if let Some((hash, _)) = &self.wrapper {
            if let Err(e) = self.store.note_wrapper(hash) {
                tracing::warn!("cannot note the job wrapper in the journal: {e}");
            }
        }
        self.commit(
            vec![Event::MasterStarted {
                name,
                at: pilotq_journal::now_ms(),
            }],
            blobs,
            || {},
        );
    }

    /// Looks at the free space: refuses or accepts submissions, and resumes a
    /// start that found the disk full once space has returned.
    fn disk_tick(&mut self, ctx: &mut Context<Self>) {
        self.user_logs.do_send(RetryUserLogs);
        let low = self.disk.check().err();
        if self.paused.is_some() {
            if low.is_none() {
                tracing::info!("the journal's filesystem is above its floor again: resuming");
                self.paused = None;
                self.low_disk = None;
                self.adopt_orphans();
                self.mark_start();
                self.report_capacity();
                self.schedule_dispatch(ctx);
            }
            return;
        }
        match (&self.low_disk, &low) {
            (None, Some(why)) => {
                tracing::warn!("{why}: refusing new submissions; running work goes on")
            }
            (Some(_), None) => {
                tracing::info!(
                    "the journal's filesystem is above its floor again: accepting submissions"
                )
            }
            _ => {}
        }
        if low.is_none() {
            self.keep_reserve();
        }
        self.low_disk = low;
        self.report_capacity();
    }

    /// Makes the reserve beside the journal if it is missing and there is
    /// room (see `disk`), on a blocking thread: up to 16 MiB written and
    /// synced has no place on the master's.
    fn keep_reserve(&self) {
        use std::sync::atomic::Ordering;
        if self.reserve_busy.swap(true, Ordering::AcqRel) {
            return;
        }
        let (disk, busy) = (self.disk.clone(), self.reserve_busy.clone());
        tokio::task::spawn_blocking(move || {
            match disk.ensure_reserve() {
                Ok(true) => tracing::info!("made the reserve file beside the journal"),
                Ok(false) => {}
                Err(e) => tracing::warn!("cannot make the reserve file beside the journal: {e}"),
            }
            busy.store(false, Ordering::Release);
        });
    }
}

fn durable_or_die(r: Result<u64, JournalError>, then: impl FnOnce()) {
    match r {
        Ok(_) => then(),
        Err(e) => {
            tracing::error!(
                "journal write failed: {e}; exiting so that a restart replays what is durable"
            );
            eprintln!("pilotq master: journal write failed: {e}; exiting so that a restart replays what is durable");
            std::process::exit(70);
        }
    }
}

impl Actor for Master {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        ctx.set_mailbox_capacity(4096);
        match &self.paused {
            None => self.mark_start(),
            Some(why) => tracing::warn!(
                "{why}: this master writes nothing until space returns; it answers queries and refuses submissions and holders meanwhile"
            ),
        }
        let tick = (self.cfg.heartbeat / 2).max(std::time::Duration::from_millis(200));
        ctx.run_interval(tick, |act, ctx| {
            if act.paused.is_none() {
                act.check_leases(ctx)
            }
        });
        ctx.run_interval(DISK_TICK, |act, ctx| act.disk_tick(ctx));
        self.collect_blobs(ctx);
        ctx.run_interval(blob_gc::BLOB_GC_EVERY, |act, ctx| act.collect_blobs(ctx));
        if !self.cfg.role_secrets().all_set() {
            tracing::warn!("no password file given for every role: this master accepts any peer that connects as a role without one");
            if self.cfg.insecure {
                // Said again while it lasts, so it is never lost in a log.
                ctx.run_interval(INSECURE_WARN_EVERY, |act, _| {
                    tracing::warn!(
                        listen = %act.cfg.listen,
                        "--insecure: no password file, listening beyond loopback: anyone who reaches this port can submit jobs that every worker runs"
                    );
                });
            }
        }
    }
}

impl Handler<FromSession> for Master {
    type Result = ();

    fn handle(&mut self, req: FromSession, ctx: &mut Context<Self>) {
        let FromSession {
            conn,
            role,
            grant,
            name,
            outbox,
            msg,
        } = req;
        let reads = matches!(
            msg,
            ToMaster::Query { .. } | ToMaster::History { .. } | ToMaster::Status
        );
        if role == Role::Client && !reads && !grant.may_write() {
            outbox.deliver(FromMaster::Error {
                message: "this master lets clients without the client secret read the queue only (--open-reads); give the client secret (--password-file) to change it or read outputs".into(),
            });
            return;
        }
        if let Some(why) = limits::client_refusal(&msg) {
            outbox.deliver(FromMaster::Error { message: why });
            return;
        }
        if role != Role::Client {
            if let Some(why) = limits::holder_refusal(&msg, self.cfg.max_frame) {
                tracing::warn!(holder = %name, "cutting off a holder: {why}");
                outbox.deliver(FromMaster::Error {
                    message: format!("refused: {why}"),
                });
                outbox.closed.cancel();
                return;
            }
        }
        if let Some(why) = &self.paused {
            // Started below the disk floor: nothing that would write is taken.
            let writes = !matches!(
                msg,
                ToMaster::Query { .. }
                    | ToMaster::JournalTail { .. }
                    | ToMaster::History { .. }
                    | ToMaster::Status
                    | ToMaster::KeptOutput { .. }
                    | ToMaster::FetchBlob { .. }
            );
            if writes {
                outbox.deliver(FromMaster::Error {
                    message: format!("master paused: {why}; try again when space returns"),
                });
                if matches!(msg, ToMaster::Register { .. }) {
                    // A holder retries with its backoff; its jobs run on.
                    outbox.closed.cancel();
                }
                return;
            }
        }
        match (role, msg) {
            (
                Role::Worker | Role::Foreman,
                ToMaster::Register {
                    resources,
                    holdings,
                    depth,
                    max_jobs,
                    tags,
                    token,
                },
            ) => {
                let offer = holders::Offer {
                    resources,
                    depth,
                    max_jobs,
                    tags,
                    token,
                };
                self.on_register(ctx, role, name, outbox, offer, holdings)
            }
            (Role::Worker | Role::Foreman, ToMaster::Drain) => self.on_drain(&name, conn, outbox),
            (Role::Worker | Role::Foreman, ToMaster::Capacity { resources }) => {
                self.on_capacity(ctx, &name, conn, resources)
            }
            (Role::Worker | Role::Foreman, ToMaster::Heartbeat) => {
                self.touch(&name, conn);
            }
            (Role::Worker | Role::Foreman, ToMaster::Started(s)) => self.on_started(&name, conn, s),
            (Role::Worker | Role::Foreman, ToMaster::Finished(r)) => {
                self.on_finished(ctx, &name, conn, r)
            }
            (Role::Foreman, ToMaster::Adopted(a)) => self.on_adopted(&name, conn, a),
            (Role::Worker | Role::Foreman, ToMaster::FetchBlob { hash }) => {
                if self.touch(&name, conn) {
                    self.on_fetch_blob(outbox, hash)
                }
            }
            // Client requests come from client connections only: a worker
            // or foreman (a pilot on a machine the site may not fully
            // trust) cannot submit, remove, release or read the queue.
            (
                Role::Client,
                ToMaster::Submit {
                    spec,
                    count,
                    executable,
                },
            ) => match clients::owner_refusal(&self.cfg, &grant, &spec.owner) {
                Some(why) => {
                    outbox.deliver(FromMaster::Error { message: why });
                }
                None => self.on_submit(ctx, outbox, *spec, count, executable),
            },
            (Role::Client, ToMaster::Query { selectors }) => self.on_query(ctx, outbox, selectors),
            (
                Role::Client,
                ToMaster::History {
                    selectors,
                    forwards,
                },
            ) => self.on_history(outbox, selectors, forwards),
            (Role::Client, ToMaster::Remove { selectors, owner }) => {
                let owner = grant.proven_owner().map(str::to_string).or(owner);
                self.on_remove(outbox, selectors, owner)
            }
            (Role::Client, ToMaster::Status) => self.on_status(outbox),
            (Role::Client, ToMaster::Release { selectors, owner }) => {
                let owner = grant.proven_owner().map(str::to_string).or(owner);
                self.on_release(ctx, outbox, selectors, owner)
            }
            (Role::Client, ToMaster::KeptOutput { job, stderr }) => {
                self.on_kept_output(outbox, job, stderr)
            }
            (Role::Client, ToMaster::JournalTail { from }) => {
                self.on_journal_tail(ctx, outbox, from)
            }
            (role, other) => {
                let what: String = format!("{other:?}").chars().take(40).collect();
                outbox.deliver(FromMaster::Error {
                    message: format!("a {role} may not send {what}"),
                });
                outbox.closed.cancel();
            }
        }
    }
}

impl Handler<SessionClosed> for Master {
    type Result = ();

    fn handle(&mut self, m: SessionClosed, _ctx: &mut Context<Self>) {
        if let Some(h) = self.holders.get_mut(&m.name) {
            if h.outbox.as_ref().is_some_and(|o| o.conn == m.conn) {
                tracing::info!(holder = %m.name, role = %m.role, "holder disconnected; its jobs wait one lease for it");
                h.outbox = None;
                self.report_capacity();
            }
        }
    }
}

impl Handler<Shutdown> for Master {
    type Result = ();

    /// Stores a snapshot and flushes the journal; the caller then stops the
    /// system (or the process).
    fn handle(&mut self, _m: Shutdown, _ctx: &mut Context<Self>) {
        // A paused master has nothing new to store, and no room to store it.
        if self.paused.is_none() {
            self.snapshot();
        }
        self.writer.shutdown();
        tracing::info!("journal flushed and closed");
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Journal(#[from] JournalError),
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        addr: String,
        source: std::io::Error,
    },
    #[error("{0}")]
    Other(String),
}
