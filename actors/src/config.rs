//! Settings of the master and the worker, with the defaults of ARCHITECTURE.md.

use pilotq_wire::{Resources, Secret, DEFAULT_MAX_FRAME};
use std::path::PathBuf;
use std::time::Duration;

#[derive(Debug, Clone)]
pub struct MasterConfig {
    pub listen: String,
    pub journal: PathBuf,
    pub name: String,
    pub secret: Option<Secret>,
    pub max_frame: usize,
    /// Holders renew their lease this often.
    pub heartbeat: Duration,
    /// A holder silent this long is lost: its jobs are requeued. After a
    /// restart, every job out on a holder gets one lease to be reclaimed.
    pub lease: Duration,
    /// Dispatches before a job whose holders keep getting lost is Held.
    pub max_attempts: u32,
    /// Largest `queue N` accepted in one submission.
    pub max_submit: u32,
    /// A snapshot is stored after this many events (and at clean shutdown).
    pub snapshot_every: u64,
    /// A connection must finish the handshake within this.
    pub handshake_timeout: Duration,
    /// Connections beyond this are refused.
    pub max_connections: usize,
    /// Run every job as `wrapper <executable> <args…>` (an executable that
    /// ends with `exec "$@"`), shipped to holders like an executable.
    pub job_wrapper: Option<PathBuf>,
    /// Sealed journal files whose last event is older than this are deleted
    /// (`--journal-keep-age`; `None`: kept forever), oldest first, never
    /// one a replay from the oldest kept snapshot needs.
    pub journal_keep_age: Option<Duration>,
    /// The oldest sealed journal files are deleted while they all take more
    /// bytes than this (`--journal-keep-size`; `None`: no bound).
    pub journal_keep_size: Option<u64>,
    /// Below this many free bytes on the journal's filesystem, submissions
    /// are refused (a foreman offers no capacity); `None`: 1 GiB or 5 % of
    /// the filesystem, whichever is smaller; `Some(0)`: no floor.
    pub min_free_disk: Option<u64>,
    /// How much of the history store (finished jobs' records) is kept.
    pub history_limits: pilotq_journal::history::HistoryLimits,
    /// Delete executables, wrappers and kept outputs nothing needs any more
    /// (`master/blob_gc.rs`). The site's master does; a foreman does not
    /// (its adoptions reuse blobs without appending them).
    pub collect_blobs: bool,
    /// Listen beyond loopback without a shared secret (`--insecure`):
    /// anyone who reaches the port could submit commands for every worker
    /// to run. Refused unless asked for, and warned about while it lasts.
    pub insecure: bool,
    /// Role-specific secrets (`--holder-password-file`,
    /// `--client-password-file`); where one is `None`, `secret` serves.
    pub holder_secret: Option<Secret>,
    pub client_secret: Option<Secret>,
    /// Live (not finished) jobs one owner may have; a submission beyond is
    /// refused. HTCondor's `MAX_JOBS_PER_OWNER`, with its default; 0: none.
    pub max_jobs_per_owner: u64,
    /// Owners whose removals and releases act on every owner's jobs
    /// (HTCondor's `QUEUE_SUPER_USERS`, default root and condor).
    pub super_users: Vec<String>,
    /// TLS on the listening port (`--tls-cert`, `--tls-key`, and
    /// `--tls-client-ca` for mutual TLS); `None`: plain TCP.
    pub tls: Option<crate::tls::ServerTls>,
    /// A Unix socket for clients on this host (`--unix-socket`): the kernel
    /// says who they are, so their `Owner` is not a claim.
    pub unix_socket: Option<PathBuf>,
    /// Queries, history and status without the client secret
    /// (`--open-reads`), like HTCondor's READ level.
    pub open_reads: bool,
    /// Connections one source address may hold open at once
    /// (`--max-connections-per-ip`); 0: no bound but `max_connections`.
    pub max_connections_per_ip: usize,
}

impl MasterConfig {
    /// Whose jobs a request by `owner` may act on: `None` for everyone's
    /// (a super user), else that owner's. A request naming no owner acts
    /// on no one's.
    pub fn acts_for(&self, owner: Option<&str>) -> Option<String> {
        match owner {
            Some(o) if self.super_users.iter().any(|s| s == o) => None,
            Some(o) => Some(o.to_string()),
            None => Some(String::new()),
        }
    }
}

impl MasterConfig {
    /// The secret each role must prove.
    pub fn role_secrets(&self) -> crate::session::RoleSecrets {
        crate::session::RoleSecrets {
            holder: self.holder_secret.clone().or_else(|| self.secret.clone()),
            client: self.client_secret.clone().or_else(|| self.secret.clone()),
        }
    }
}

impl MasterConfig {
    pub fn new(listen: impl Into<String>, journal: impl Into<PathBuf>) -> Self {
        MasterConfig {
            listen: listen.into(),
            journal: journal.into(),
            name: "pilotq-master".into(),
            secret: None,
            max_frame: DEFAULT_MAX_FRAME,
            heartbeat: Duration::from_secs(5),
            lease: Duration::from_secs(60),
            max_attempts: 3,
            max_submit: 1_000_000,
            snapshot_every: 200_000,
            handshake_timeout: Duration::from_secs(10),
            max_connections: 60_000,
            job_wrapper: None,
            journal_keep_age: Some(pilotq_journal::sealed::DEFAULT_KEEP_AGE),
            journal_keep_size: None,
            min_free_disk: None,
            history_limits: Default::default(),
            collect_blobs: true,
            insecure: false,
            holder_secret: None,
            client_secret: None,
            max_jobs_per_owner: 100_000,
            super_users: vec!["root".into(), "condor".into()],
            tls: None,
            unix_socket: None,
            open_reads: false,
            max_connections_per_ip: 1024,
        }
    }
}

#[derive(Debug, Clone)]
pub struct WorkerConfig {
    /// Upstream addresses (masters or foremen), tried in turn: the worker
    /// fails over to the next when one cannot be reached or is lost,
    /// carrying its holdings.
    pub upstreams: Vec<String>,
    /// The holder name: the worker's identity across reconnects.
    pub name: String,
    pub resources: Resources,
    pub workdir: PathBuf,
    pub secret: Option<Secret>,
    /// The CA the upstream's certificate must chain to (`--tls-ca`), and
    /// our certificate for mutual TLS; `None`: plain TCP.
    pub tls: Option<crate::tls::ClientTls>,
    pub max_frame: usize,
    pub heartbeat: Duration,
    /// Captured stdout/stderr beyond this many bytes is cut, with a marker.
    pub output_cap: usize,
    /// Exit after the first job (its result acknowledged).
    pub single_task: bool,
    /// What this worker offers beyond resources (`--tags a,b`).
    pub tags: Vec<String>,
    /// Exit after this long without a job.
    pub idle_timeout: Option<Duration>,
    /// While this file exists the worker takes no new jobs, finishes what it
    /// holds, and exits.
    pub drain_file: Option<PathBuf>,
    /// Notified when the worker has finished (drained, single task done,
    /// idle): the process should exit.
    pub done: std::sync::Arc<tokio::sync::Notify>,
    /// Jobs held at once, as a multiple of `resources`: with 2, a worker
    /// queues one more job per slot and starts it the moment the slot frees,
    /// instead of waiting a round trip to the master.
    pub depth: u32,
    /// Bytes of executables and job wrappers kept in the cache
    /// (`--cache-size`); least recently used ones beyond it are deleted,
    /// never one a held job needs.
    pub cache_size: u64,
}

impl WorkerConfig {
    pub fn new(
        master: impl Into<String>,
        workdir: impl Into<PathBuf>,
        resources: Resources,
    ) -> Self {
        WorkerConfig {
            upstreams: master
                .into()
                .split(',')
                .map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty())
                .collect(),
            name: default_worker_name(),
            resources,
            workdir: workdir.into(),
            secret: None,
            tls: None,
            max_frame: DEFAULT_MAX_FRAME,
            heartbeat: Duration::from_secs(5),
            output_cap: 64 * 1024 * 1024,
            depth: 2,
            cache_size: crate::worker::cache::DEFAULT_CACHE_SIZE,
            single_task: false,
            tags: Vec::new(),
            idle_timeout: None,
            drain_file: None,
            done: Default::default(),
        }
    }
}

/// `host:pid`: unique per running worker, stable across its reconnects.
pub fn default_worker_name() -> String {
    format!("{}:{}", hostname(), std::process::id())
}

pub fn hostname() -> String {
    let mut buf = [0u8; 256];
    // SAFETY: the buffer is valid for its length; gethostname NUL-terminates
    // within it or truncates.
    let rc = unsafe { libc::gethostname(buf.as_mut_ptr() as *mut libc::c_char, buf.len()) };
    if rc != 0 {
        return "localhost".into();
    }
    let end = buf.iter().position(|b| *b == 0).unwrap_or(buf.len());
    String::from_utf8_lossy(&buf[..end]).into_owned()
}
