//! # pilotq-tests — end-to-end tests on real processes
//!
//! Every test starts the built `pilotq` binary as real processes on loopback
//! (a master, workers, short-lived clients), kills them with real signals, and
//! checks what a user would check: `q --json`, output files, exit codes,
//! `journal dump`. Nothing here links the actors; only `pilotq-wire` is used,
//! to speak raw frames at the master in the bad-input tests.
//!
//! | item | what it is |
//! |---|---|
//! | [`bin`] | the `pilotq` binary (`$PILOTQ_BIN`, else `$CARGO_TARGET_DIR/debug/pilotq`, else `<workspace>/target/debug/pilotq`) |
//! | [`Proc`] | one child process: stdout and stderr in files under the tempdir, SIGKILL on drop |
//! | [`Master`], [`Worker`] | `pilotq master` / `pilotq worker` guards |
//! | [`Foreman`], [`Cluster::start_foreman`], [`Cluster::add_worker_to`] | `pilotq foreman` guards (own journal, own port) and workers behind them |
//! | [`MasterOpts`] | lease, heartbeat, handshake timeout, max frame, password, fixed port, extra arguments and environment |
//! | [`Cluster`] | one test's world: a tempdir, a master, workers, client helpers (`run`, `submit`, `q_json`, `wait_until`, `wait_holders`, `wait_capacity`, `journal_events`, `read_file`, `wait_pids`) and diagnostics for panic messages |
//! | [`Cluster::assert_journal_once_each`], [`Cluster::assert_journal_verified`] | the journal after a run: each job dispatched and completed once, never requeued; `journal verify` ok |
//! | [`Job`] | one object of `q --json` or `history --json`, typed |
//! | [`Finished`], [`Cluster::finished_counts`] | completed and removed jobs by `status --json`, in the queue and in history |
//! | [`RawConn`], [`RawConn::client`], [`RawConn::submit`], [`raw_job_spec`] | a raw TCP connection speaking length-prefixed msgpack frames; a client's handshake on it, and a submission as any owner |
//! | [`event_kind`], [`event_job`] | reading `journal dump --json` lines |
//! | [`condor_bin`], [`Cluster::run_condor`], [`Cluster::condor_submit`] | the HTCondor face: `condor_*` binaries next to `pilotq`, run against the cluster's master |
//! | [`Input`], [`run_with_input`] | what a client reads on stdin: nothing, a text, or a pipe left open |
//! | [`user_log`] | the job event log (`log =`): [`user_log::LogEvent`], [`user_log::parse_log`], [`user_log::codes_of`], [`user_log::wait_log`] |
//! | [`logged_jobs`] | jobs that log `start`/`end` to a runs log ([`logged_jobs::logged_job`]) and the checks that each ran and completed exactly once |
//! | [`free_port`], [`alive`], [`wait_for`], [`compact`], [`run_with_timeout`], [`current_user`], [`write_executable`], [`pids_in`] | small utilities |
//!
//! Tests live in `tests/tests/*.rs`, one file per area. Build the binaries
//! first: `cargo build --bins && cargo test -p pilotq-tests`. A failing test
//! prints the tail of every process's log; with `PILOTQ_TEST_KEEP=1` its
//! tempdir (journal, logs, outputs) is kept too.

pub mod logged_jobs;
pub mod user_log;

use serde_json::Value;
use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

pub use serde_json;

/// The workspace root: this crate's parent folder.
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ has a parent")
        .to_path_buf()
}

/// Where `pilotq` is expected, whether or not it exists.
fn pilotq_path() -> PathBuf {
    match std::env::var_os("PILOTQ_BIN") {
        Some(p) => PathBuf::from(p),
        None => match std::env::var_os("CARGO_TARGET_DIR") {
            Some(t) => workspace_root().join(t).join("debug/pilotq"),
            None => workspace_root().join("target/debug/pilotq"),
        },
    }
}

/// The `pilotq` binary under test.
pub fn bin() -> PathBuf {
    let p = pilotq_path();
    if !p.is_file() {
        panic!(
            "the pilotq binary {} does not exist: run `cargo build --bins` first (or set PILOTQ_BIN)",
            p.display()
        );
    }
    p
}

/// An HTCondor-compatible client (`condor_submit`, `condor_q`, `condor_rm`,
/// `condor_status`): built by the `pilotq` package next to `pilotq` itself.
/// A missing one fails the test; it is never a reason to skip.
pub fn condor_bin(name: &str) -> PathBuf {
    let pilotq = pilotq_path();
    let p = pilotq
        .parent()
        .expect("the pilotq path has a directory")
        .join(name);
    if !p.is_file() {
        panic!(
            "the {name} binary {} does not exist: `cargo build --bins` must build it \
             (the pilotq package provides condor_submit, condor_q, condor_rm and condor_status)",
            p.display()
        );
    }
    p
}

/// The Unix user running the tests: HTCondor's `Owner` of what they submit.
pub fn current_user() -> String {
    // SAFETY: getpwuid returns a pointer into static storage or null; the
    // name is copied out at once.
    unsafe {
        let pw = libc::getpwuid(libc::getuid());
        if !pw.is_null() && !(*pw).pw_name.is_null() {
            return std::ffi::CStr::from_ptr((*pw).pw_name)
                .to_string_lossy()
                .into_owned();
        }
    }
    panic!("the current uid has no passwd entry")
}

/// A port that was free a moment ago (for masters that must restart on the
/// same address).
pub fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("binding 127.0.0.1:0");
    l.local_addr().unwrap().port()
}

/// Whether `pid` is a live process (a zombie counts as dead).
pub fn alive(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => false,
        Ok(s) => {
            // The state follows the parenthesised command name.
            let state = s.rsplit_once(')').map(|(_, r)| r.trim_start());
            !matches!(state.and_then(|r| r.chars().next()), Some('Z') | Some('X'))
        }
    }
}

/// Polls `f` every 100 ms until it returns `Some`, or panics after `timeout`
/// with `what` and the output of `diag`.
pub fn wait_for<T>(
    timeout: Duration,
    what: &str,
    mut f: impl FnMut() -> Option<T>,
    diag: impl Fn() -> String,
) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(t) = f() {
            return t;
        }
        if Instant::now() > deadline {
            panic!("timed out after {timeout:?} waiting for {what}\n{}", diag());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Writes `text` to `path` and makes it executable (mode 755).
pub fn write_executable(path: &Path, text: &str) {
    std::fs::write(path, text).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
}

/// The pids listed in a file, one a line (none if it cannot be read;
/// lines that are not numbers are skipped).
pub fn pids_in(path: &Path) -> Vec<i32> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.trim().parse().ok())
        .collect()
}

/// The last `n` lines of a file, for panic messages.
pub fn tail(path: &Path, n: usize) -> String {
    let text = std::fs::read(path)
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .unwrap_or_else(|e| format!("<cannot read {}: {e}>", path.display()));
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

fn send_signal(pid: u32, sig: i32) {
    // SAFETY: kill(2) on the pid of a child we started and have not reaped.
    unsafe {
        libc::kill(pid as i32, sig);
    }
}

/// One child process: stdout and stderr go to `<logs>/<label>.stdout` and
/// `.stderr`; it is killed with SIGKILL when dropped.
pub struct Proc {
    pub label: String,
    pub child: Child,
    pub stderr_path: PathBuf,
    pub stdout_path: PathBuf,
    exited: Option<ExitStatus>,
}

impl Proc {
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn signal(&self, sig: i32) {
        if self.exited.is_none() {
            send_signal(self.child.id(), sig);
        }
    }

    /// SIGKILL and reap.
    pub fn kill_9(&mut self) -> ExitStatus {
        if let Some(s) = self.exited {
            return s;
        }
        self.signal(libc::SIGKILL);
        let s = self.child.wait().expect("waiting for a killed child");
        self.exited = Some(s);
        s
    }

    /// The exit status if it exited within `timeout`.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        if let Some(s) = self.exited {
            return Some(s);
        }
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(s) = self.child.try_wait().expect("try_wait") {
                self.exited = Some(s);
                return Some(s);
            }
            if Instant::now() > deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Whether it is still running.
    pub fn running(&mut self) -> bool {
        self.wait_exit(Duration::ZERO).is_none()
    }

    /// The last lines of its stderr.
    pub fn stderr_tail(&self, n: usize) -> String {
        format!(
            "--- {} (pid {}) stderr, last {n} lines ---\n{}",
            self.label,
            self.child.id(),
            tail(&self.stderr_path, n)
        )
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if self.exited.is_none() {
            self.kill_9();
        }
    }
}

/// How a test's master is started.
#[derive(Debug, Clone)]
pub struct MasterOpts {
    pub lease: f64,
    pub heartbeat: f64,
    pub handshake_timeout: Option<f64>,
    pub max_frame: Option<usize>,
    pub password_file: Option<PathBuf>,
    /// Pick an explicit free port up front (for masters that restart on the
    /// same address); otherwise listen on port 0.
    pub fixed_port: bool,
    pub extra: Vec<String>,
    /// Environment variables set for the master process only (e.g.
    /// `PILOTQ_FAILPOINT`); read at every start, so clearing it before
    /// [`Cluster::restart_master`] restarts without them.
    pub env: Vec<(String, String)>,
}

impl Default for MasterOpts {
    fn default() -> Self {
        MasterOpts {
            lease: 4.0,
            heartbeat: 1.0,
            handshake_timeout: None,
            max_frame: None,
            password_file: None,
            fixed_port: false,
            extra: Vec::new(),
            env: Vec::new(),
        }
    }
}

/// A running `pilotq master`.
pub struct Master {
    pub proc: Proc,
    pub addr: String,
    pub port: u16,
}

impl Master {
    pub fn kill_9(&mut self) -> ExitStatus {
        self.proc.kill_9()
    }

    /// SIGTERM: a clean shutdown.
    pub fn terminate(&mut self) {
        self.proc.signal(libc::SIGTERM);
    }
}

/// A running `pilotq worker`.
pub struct Worker {
    pub proc: Proc,
    pub name: String,
    pub cores: u32,
}

/// A running `pilotq foreman`: a local queue between the master and its
/// workers, with its own journal under `<tempdir>/foremen/<name>`.
pub struct Foreman {
    pub proc: Proc,
    pub name: String,
    pub addr: String,
    pub port: u16,
    pub journal: PathBuf,
}

/// Fails the test with one clear line if this `pilotq` has no `foreman`
/// subcommand (rather than a listen-line timeout further down).
fn require_foreman_subcommand() {
    let mut cmd = Command::new(bin());
    cmd.args(["foreman", "--help"]).stdin(Stdio::null());
    let out = run_with_timeout(cmd, Duration::from_secs(20), "pilotq foreman --help");
    if !out.ok() {
        panic!(
            "`pilotq foreman` is not available in {}: `pilotq foreman --help` failed; \
             build a pilotq that has the foreman (`cargo build --bins`)\n{out}",
            pilotq_path().display()
        );
    }
}

/// What a client command printed.
#[derive(Debug, Clone)]
pub struct Out {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

impl Out {
    pub fn ok(&self) -> bool {
        self.status.success()
    }
}

impl std::fmt::Display for Out {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "exit: {}\nstdout:\n{}\nstderr:\n{}",
            self.status, self.stdout, self.stderr
        )
    }
}

/// One job of `q --json`.
#[derive(Debug, Clone, PartialEq)]
pub struct Job {
    pub id: String,
    pub cluster: u64,
    pub proc: u64,
    pub status: u64,
    pub attempts: u64,
    pub exit_code: Option<i64>,
    pub holder: Option<String>,
    pub raw: Value,
}

impl Job {
    pub fn from_json(v: &Value) -> Job {
        let field = |k: &str| {
            v.get(k)
                .unwrap_or_else(|| panic!("q --json object without {k:?}: {v}"))
        };
        Job {
            id: field("id").as_str().expect("id is a string").to_string(),
            cluster: field("cluster").as_u64().expect("cluster is a number"),
            proc: field("proc").as_u64().expect("proc is a number"),
            status: field("status").as_u64().expect("status is a number"),
            attempts: field("attempts").as_u64().expect("attempts is a number"),
            exit_code: field("exit_code").as_i64(),
            holder: field("holder").as_str().map(str::to_string),
            raw: v.clone(),
        }
    }
}

/// HTCondor job states as `q --json` shows them.
pub const IDLE: u64 = 1;
pub const RUNNING: u64 = 2;
pub const REMOVED: u64 = 3;
pub const COMPLETED: u64 = 4;
pub const HELD: u64 = 5;

/// How many jobs finished, by `pilotq status --json`: a job that completes
/// or is removed stays in the queue (`completed`, `removed`) only with
/// `leave_in_queue`; otherwise it leaves for the history store
/// (`history_completed`, `history_removed`). Both count here.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Finished {
    pub completed: u64,
    pub removed: u64,
}

impl Finished {
    /// From a `status --json` object; `None` if one of the four counts is
    /// missing or not a number (a status from before the history store).
    pub fn from_status(s: &Value) -> Option<Finished> {
        let n = |k: &str| s.get(k)?.as_u64();
        Some(Finished {
            completed: n("completed")? + n("history_completed")?,
            removed: n("removed")? + n("history_removed")?,
        })
    }
}

static SEQ: AtomicU32 = AtomicU32::new(0);
static SUBMIT_FILES: AtomicU32 = AtomicU32::new(0);

/// One test's world: a temporary directory holding the journal, the workers'
/// scratch space, the logs and the jobs' output; a master; workers.
pub struct Cluster {
    dir: Option<tempfile::TempDir>,
    pub root: PathBuf,
    pub journal: PathBuf,
    pub opts: MasterOpts,
    pub master: Option<Master>,
    pub workers: Vec<Worker>,
    /// Foremen, in the order started (a restarted one appears again).
    pub foremen: Vec<Foreman>,
    /// Other processes started by the test (e.g. `pilotq up`).
    pub others: Vec<Proc>,
    /// The password file clients use (`PILOTQ_PASSWORD_FILE`).
    pub client_password: Option<PathBuf>,
    port: Option<u16>,
    starts: u32,
}

impl Cluster {
    /// A fresh tempdir, nothing running yet.
    pub fn new() -> Cluster {
        let _ = bin();
        let n = SEQ.fetch_add(1, Ordering::Relaxed);
        let dir = tempfile::Builder::new()
            .prefix(&format!("pilotq-e2e-{}-{n}-", std::process::id()))
            .tempdir()
            .expect("creating a tempdir");
        let root = std::fs::canonicalize(dir.path()).expect("canonicalize tempdir");
        std::fs::create_dir_all(root.join("logs")).unwrap();
        std::fs::create_dir_all(root.join("out")).unwrap();
        Cluster {
            journal: root.join("journal"),
            root,
            dir: Some(dir),
            opts: MasterOpts::default(),
            master: None,
            workers: Vec::new(),
            foremen: Vec::new(),
            others: Vec::new(),
            client_password: None,
            port: None,
            starts: 0,
        }
    }

    /// A fresh tempdir and a master started with `opts`.
    pub fn with_master(opts: MasterOpts) -> Cluster {
        let mut c = Cluster::new();
        c.client_password = opts.password_file.clone();
        c.opts = opts;
        c.start_master();
        c
    }

    /// A path inside the tempdir.
    pub fn path(&self, rel: &str) -> PathBuf {
        self.root.join(rel)
    }

    /// A base command for the binary: cwd = the tempdir, no inherited
    /// `PILOTQ_*` settings (a `PILOTQ_FAILPOINT` only through
    /// [`MasterOpts::env`]).
    pub fn command(&self) -> Command {
        let mut cmd = Command::new(bin());
        cmd.current_dir(&self.root)
            .env_remove("PILOTQ_MASTER")
            .env_remove("PILOTQ_PASSWORD_FILE")
            .env_remove("PILOTQ_FAILPOINT")
            .env("RUST_BACKTRACE", "1")
            .stdin(Stdio::null());
        cmd
    }

    /// Starts a long-running child with its stdout and stderr in
    /// `logs/<label>.stdout` and `logs/<label>.stderr`.
    pub fn spawn(&self, label: &str, mut cmd: Command) -> Proc {
        let stderr_path = self.root.join("logs").join(format!("{label}.stderr"));
        let stdout_path = self.root.join("logs").join(format!("{label}.stdout"));
        let e = std::fs::File::create(&stderr_path).expect("creating a log file");
        let o = std::fs::File::create(&stdout_path).expect("creating a log file");
        cmd.stdout(o).stderr(e);
        let child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {label}: {e}"));
        Proc {
            label: label.to_string(),
            child,
            stderr_path,
            stdout_path,
            exited: None,
        }
    }

    /// Starts (or restarts) the master on the journal and, after the first
    /// start, on the same port. Waits for its listen line.
    pub fn start_master(&mut self) -> &Master {
        assert!(self.master.is_none(), "a master is already running");
        self.starts += 1;
        let port = match self.port {
            Some(p) => p,
            None if self.opts.fixed_port => free_port(),
            None => 0,
        };
        let o = self.opts.clone();
        let mut cmd = self.command();
        cmd.arg("master")
            .args(["--listen", &format!("127.0.0.1:{port}")])
            .arg("--journal")
            .arg(&self.journal)
            .args(["--lease", &o.lease.to_string()])
            .args(["--heartbeat", &o.heartbeat.to_string()]);
        if let Some(t) = o.handshake_timeout {
            cmd.args(["--handshake-timeout", &t.to_string()]);
        }
        if let Some(m) = o.max_frame {
            cmd.args(["--max-frame", &m.to_string()]);
        }
        if let Some(p) = &o.password_file {
            cmd.arg("--password-file").arg(p);
        }
        cmd.args(&o.extra);
        cmd.envs(o.env.iter().map(|(k, v)| (k, v)));
        let label = format!("master-{}", self.starts);
        let mut proc = self.spawn(&label, cmd);
        let addr = read_listen_line(&mut proc, "pilotq master listening on ");
        let port: u16 = addr
            .rsplit_once(':')
            .and_then(|(_, p)| p.parse().ok())
            .unwrap_or_else(|| panic!("bad listen address {addr:?}"));
        self.port = Some(port);
        self.master = Some(Master { proc, addr, port });
        self.master.as_ref().unwrap()
    }

    /// SIGKILL the master (and reap it).
    pub fn kill_master(&mut self) {
        let mut m = self.master.take().expect("no master running");
        m.kill_9();
    }

    /// SIGTERM the master and wait for it to exit; returns its status.
    pub fn stop_master(&mut self) -> ExitStatus {
        let mut m = self.master.take().expect("no master running");
        m.terminate();
        match m.proc.wait_exit(Duration::from_secs(30)) {
            Some(s) => s,
            None => {
                let t = m.proc.stderr_tail(40);
                m.kill_9();
                panic!("the master did not stop within 30 s of SIGTERM\n{t}");
            }
        }
    }

    /// Restart after a crash: same journal, same port.
    pub fn restart_master(&mut self) -> &Master {
        self.start_master()
    }

    /// Points clients at a master started some other way (`pilotq up`).
    pub fn set_master_port(&mut self, port: u16) {
        self.port = Some(port);
    }

    pub fn addr(&self) -> String {
        match &self.master {
            Some(m) => m.addr.clone(),
            None => format!("127.0.0.1:{}", self.port.expect("the master never started")),
        }
    }

    /// Starts `pilotq worker --name NAME --cores N` with a 1 s heartbeat and
    /// its own work dir. Its environment carries a canary variable that a
    /// job must never see.
    pub fn add_worker(&mut self, name: &str, cores: u32) -> &Worker {
        let master = self.addr();
        self.add_worker_to(name, cores, &master)
    }

    /// [`Cluster::add_worker`] with another upstream: `pilotq worker
    /// --master UPSTREAM` (a foreman's address, say).
    pub fn add_worker_to(&mut self, name: &str, cores: u32, upstream: &str) -> &Worker {
        let mut cmd = self.command();
        cmd.arg("worker")
            .args(["--master", upstream])
            .args(["--cores", &cores.to_string()])
            .arg("--workdir")
            .arg(self.root.join("workers").join(name))
            .args(["--name", name])
            .args(["--heartbeat", &self.opts.heartbeat.to_string()])
            .env("PILOTQ_TEST_CANARY", "inherited-from-the-worker");
        if let Some(p) = &self.opts.password_file {
            cmd.arg("--password-file").arg(p);
        }
        let proc = self.spawn(&format!("worker-{name}"), cmd);
        self.workers.push(Worker {
            proc,
            name: name.to_string(),
            cores,
        });
        self.workers.last().unwrap()
    }

    /// Starts (or, after [`Cluster::kill_foreman`], restarts) `pilotq foreman
    /// --master <the master> --listen 127.0.0.1:PORT --journal
    /// <tempdir>/foremen/NAME --name NAME --heartbeat <the master's> EXTRA…`
    /// and waits for its listen line. PORT 0 picks any; a foreman that must
    /// restart on its address needs a fixed one ([`free_port`]).
    pub fn start_foreman(&mut self, name: &str, port: u16, extra: &[&str]) -> &Foreman {
        require_foreman_subcommand();
        if let Some(f) = self.foremen.iter_mut().find(|f| f.name == name) {
            assert!(!f.proc.running(), "foreman {name} is already running");
        }
        let starts = self.foremen.iter().filter(|f| f.name == name).count() + 1;
        let journal = self.root.join("foremen").join(name);
        let mut cmd = self.command();
        cmd.arg("foreman")
            .args(["--master", &self.addr()])
            .args(["--listen", &format!("127.0.0.1:{port}")])
            .arg("--journal")
            .arg(&journal)
            .args(["--name", name])
            .args(["--heartbeat", &self.opts.heartbeat.to_string()]);
        if let Some(p) = &self.opts.password_file {
            cmd.arg("--password-file").arg(p);
        }
        cmd.args(extra);
        let mut proc = self.spawn(&format!("foreman-{name}-{starts}"), cmd);
        let addr = read_listen_line(&mut proc, "pilotq foreman listening on ");
        let port: u16 = addr
            .rsplit_once(':')
            .and_then(|(_, p)| p.parse().ok())
            .unwrap_or_else(|| panic!("bad foreman listen address {addr:?}"));
        self.foremen.push(Foreman {
            proc,
            name: name.to_string(),
            addr,
            port,
            journal,
        });
        self.foremen.last().unwrap()
    }

    /// The latest foreman started as `name`.
    pub fn foreman(&mut self, name: &str) -> &mut Foreman {
        self.foremen
            .iter_mut()
            .rev()
            .find(|f| f.name == name)
            .unwrap_or_else(|| panic!("no foreman {name}"))
    }

    /// SIGKILL a foreman (and reap it).
    pub fn kill_foreman(&mut self, name: &str) {
        self.foreman(name).proc.kill_9();
    }

    pub fn worker(&mut self, name: &str) -> &mut Worker {
        self.workers
            .iter_mut()
            .find(|w| w.name == name)
            .unwrap_or_else(|| panic!("no worker {name}"))
    }

    /// SIGKILL a worker (and reap it).
    pub fn kill_worker(&mut self, name: &str) {
        self.worker(name).proc.kill_9();
    }

    /// Runs `pilotq ARGS` as a client (master address and password from the
    /// cluster), with a 60 s limit.
    pub fn run(&self, args: &[&str]) -> Out {
        let mut cmd = self.command();
        cmd.args(args);
        if self.master.is_some() || self.port.is_some() {
            cmd.env("PILOTQ_MASTER", self.addr());
        }
        if let Some(p) = &self.client_password {
            cmd.env("PILOTQ_PASSWORD_FILE", p);
        }
        run_with_timeout(cmd, Duration::from_secs(60), &format!("pilotq {args:?}"))
    }

    /// Runs a client command that must succeed.
    pub fn run_ok(&self, args: &[&str]) -> Out {
        let out = self.run(args);
        if !out.ok() {
            panic!("`pilotq {}` failed\n{out}\n{}", args.join(" "), self.diag());
        }
        out
    }

    /// A base command for an HTCondor-compatible client: cwd = the tempdir,
    /// `PILOTQ_MASTER` and `PILOTQ_PASSWORD_FILE` set as for `pilotq`
    /// clients, nothing else of ours inherited, stdin `/dev/null`.
    pub fn condor_command(&self, name: &str) -> Command {
        let mut cmd = Command::new(condor_bin(name));
        cmd.current_dir(&self.root)
            .env_remove("PILOTQ_MASTER")
            .env_remove("PILOTQ_PASSWORD_FILE")
            .env("RUST_BACKTRACE", "1")
            .stdin(Stdio::null());
        if self.master.is_some() || self.port.is_some() {
            cmd.env("PILOTQ_MASTER", self.addr());
        }
        if let Some(p) = &self.client_password {
            cmd.env("PILOTQ_PASSWORD_FILE", p);
        }
        cmd
    }

    /// Runs `NAME ARGS` (e.g. `condor_q -af ClusterId`) with `stdin` as its
    /// input (`/dev/null` when `None`), with a 60 s limit.
    pub fn run_condor(&self, name: &str, args: &[&str], stdin: Option<&str>) -> Out {
        let input = match stdin {
            Some(t) => Input::Text(t),
            None => Input::Null,
        };
        self.run_condor_with(name, args, input, None, Duration::from_secs(60))
    }

    /// [`Cluster::run_condor`] with every knob: stdin, working directory
    /// (default the tempdir) and time limit.
    pub fn run_condor_with(
        &self,
        name: &str,
        args: &[&str],
        input: Input,
        cwd: Option<&Path>,
        timeout: Duration,
    ) -> Out {
        let mut cmd = self.condor_command(name);
        cmd.args(args);
        if let Some(d) = cwd {
            cmd.current_dir(d);
        }
        run_with_input(cmd, input, timeout, &format!("{name} {args:?}"))
    }

    /// Runs a `condor_*` command that must succeed.
    pub fn run_condor_ok(&self, name: &str, args: &[&str]) -> Out {
        let out = self.run_condor(name, args, None);
        if !out.ok() {
            panic!("`{name} {}` failed\n{out}\n{}", args.join(" "), self.diag());
        }
        out
    }

    /// `condor_q ARGS` that must succeed; its stdout lines.
    pub fn condor_q_lines(&self, args: &[&str]) -> Vec<String> {
        let out = self.run_condor_ok("condor_q", args);
        out.stdout.lines().map(str::to_string).collect()
    }

    /// Writes `text` to a fresh submit file in the tempdir and runs
    /// `condor_submit FILE`.
    pub fn condor_submit(&self, text: &str) -> Out {
        let n = SUBMIT_FILES.fetch_add(1, Ordering::Relaxed);
        let file = self.root.join(format!("job-{n}.sub"));
        std::fs::write(&file, text).expect("writing a submit file");
        self.run_condor("condor_submit", &[file.to_str().unwrap()], None)
    }

    /// [`Cluster::condor_submit`] that must succeed with `count` jobs;
    /// checks condor_submit's two lines and returns the cluster id.
    pub fn condor_submit_ok(&self, text: &str, count: u32) -> u64 {
        let out = self.condor_submit(text);
        if !out.ok() {
            panic!("condor_submit failed on\n{text}\n{out}\n{}", self.diag());
        }
        parse_submit(&out.stdout, count)
            .unwrap_or_else(|e| panic!("{e}\nsubmit file:\n{text}\n{out}"))
    }

    /// `pilotq submit --count N OPTS -- CMD...`; checks condor_submit's two
    /// lines and returns the cluster id.
    pub fn submit(&self, count: u32, opts: &[&str], cmd: &[&str]) -> u64 {
        let n = count.to_string();
        let mut args = vec!["submit", "--count", &n];
        args.extend_from_slice(opts);
        args.push("--");
        args.extend_from_slice(cmd);
        let out = self.run_ok(&args);
        parse_submit(&out.stdout, count).unwrap_or_else(|e| panic!("{e}\n{out}"))
    }

    /// [`Cluster::q_json_ids`] that returns an error, not a panic, when the
    /// master cannot answer (it may be dying on purpose).
    pub fn try_q_json_ids(&self, ids: &[&str]) -> Result<Vec<Value>, String> {
        self.try_q(ids)
    }

    /// Every job the master knows of IDS (all when empty), in the queue
    /// (`pilotq q --json`) or in history (`pilotq history --json`), parsed,
    /// in id order; panics if it fails.
    pub fn q_json_ids(&self, ids: &[&str]) -> Vec<Value> {
        match self.try_q(ids) {
            Ok(v) => v,
            Err(e) => panic!("{e}\n{}", self.diag()),
        }
    }

    /// `pilotq q --json`, parsed.
    pub fn q_json(&self) -> Vec<Value> {
        self.q_json_ids(&[])
    }

    /// `q --json` as typed jobs.
    pub fn jobs(&self) -> Vec<Job> {
        self.q_json().iter().map(Job::from_json).collect()
    }

    /// One job by `C.P`.
    pub fn job(&self, id: &str) -> Job {
        let v = self.q_json_ids(&[id]);
        assert_eq!(v.len(), 1, "q --json {id} gave {v:?}");
        Job::from_json(&v[0])
    }

    /// Every job the master knows, as a user finds them: `pilotq history
    /// --json` (finished jobs leave the queue for the history store) and
    /// `pilotq q --json` (the queue), in id order. A job in both is an
    /// error: it would be counted twice.
    ///
    /// The two answers are one view of the table only if no job left the
    /// queue between them: a job that finished after `history` was read but
    /// before `q` was is in neither, and a `wait_all_completed` would then
    /// see fewer jobs, all completed, and return early. So history is read
    /// before and after `q`, and the three are taken only when both
    /// histories hold the same jobs (history only grows: every job that left
    /// before `q` was answered is in the second, hence in the first).
    fn try_q(&self, ids: &[&str]) -> Result<Vec<Value>, String> {
        let key = |v: &Value| (v["cluster"].as_u64(), v["proc"].as_u64());
        let keys = |a: &[Value]| {
            let mut k: Vec<_> = a.iter().map(key).collect();
            k.sort();
            k
        };
        let mut history = self.try_list("history", ids)?;
        let mut tries = 0;
        let mut all = loop {
            let queue = self.try_list("q", ids)?;
            let again = self.try_list("history", ids)?;
            if keys(&again) == keys(&history) {
                let mut all = history;
                all.extend(queue);
                break all;
            }
            tries += 1;
            if tries >= 20 {
                return Err(format!(
                    "jobs kept leaving the queue while it was read ({tries} tries); \
                     last history:\n{}",
                    compact(&again)
                ));
            }
            history = again;
        };
        all.sort_by_key(key);
        if let Some(w) = all.windows(2).find(|w| key(&w[0]) == key(&w[1])) {
            panic!(
                "job {} is both in the queue and in history: {all:?}",
                w[0]["id"]
            );
        }
        Ok(all)
    }

    /// `pilotq VERB --json [IDS]` (`q` or `history`), parsed as an array.
    fn try_list(&self, verb: &str, ids: &[&str]) -> Result<Vec<Value>, String> {
        let mut args = vec![verb, "--json"];
        args.extend_from_slice(ids);
        let out = self.run(&args);
        if !out.ok() {
            return Err(format!("`pilotq {verb} --json` failed\n{out}"));
        }
        match serde_json::from_str::<Value>(&out.stdout) {
            Ok(Value::Array(a)) => Ok(a),
            _ => Err(format!(
                "`pilotq {verb} --json` printed no JSON array\n{out}"
            )),
        }
    }

    /// Polls `q --json` every 200 ms until `cond` holds for the jobs; panics
    /// after `timeout` with the last `q` output and the processes' logs.
    /// A failing `q` (master down) counts as "not yet".
    pub fn wait_until(
        &self,
        timeout: Duration,
        what: &str,
        mut cond: impl FnMut(&[Job]) -> bool,
    ) -> Vec<Job> {
        let deadline = Instant::now() + timeout;
        let mut last: String;
        loop {
            match self.try_q(&[]) {
                Ok(v) => {
                    let jobs: Vec<Job> = v.iter().map(Job::from_json).collect();
                    if cond(&jobs) {
                        return jobs;
                    }
                    last = compact(&v);
                }
                Err(e) => last = e,
            }
            if Instant::now() > deadline {
                panic!(
                    "timed out after {timeout:?} waiting for: {what}\nlast `q --json`:\n{last}\n{}",
                    self.diag()
                );
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// Waits until every job of the table is Completed; fails at once if
    /// one is Held or Removed (nothing in these tests releases a job).
    pub fn wait_all_completed(&self, timeout: Duration) -> Vec<Job> {
        self.wait_until(timeout, "every job completed (status 4)", |jobs| {
            if let Some(j) = jobs
                .iter()
                .find(|j| j.status == HELD || j.status == REMOVED)
            {
                panic!(
                    "job {} can no longer complete: status {}, hold reason {}\n{}\n{}",
                    j.id,
                    j.status,
                    j.raw["hold_reason"],
                    j.raw,
                    self.diag()
                );
            }
            !jobs.is_empty() && jobs.iter().all(|j| j.status == COMPLETED)
        })
    }

    /// `pilotq status --json`, parsed.
    pub fn status_json(&self) -> Value {
        let out = self.run_ok(&["status", "--json"]);
        serde_json::from_str(&out.stdout)
            .unwrap_or_else(|e| panic!("`status --json` printed no JSON: {e}\n{out}"))
    }

    /// Jobs that finished, wherever they are now: `pilotq status --json`'s
    /// counts in the queue plus those that left it for the history store.
    pub fn finished_counts(&self) -> Finished {
        let s = self.status_json();
        Finished::from_status(&s).unwrap_or_else(|| {
            panic!("`status --json` without the queue's and history's counts: {s}")
        })
    }

    /// Waits until the master counts `n` connected holders.
    pub fn wait_holders(&self, n: u64, timeout: Duration) {
        let mut last = Value::Null;
        wait_for(
            timeout,
            &format!("{n} holder(s) connected"),
            || {
                let out = self.run(&["status", "--json"]);
                last = serde_json::from_str(&out.stdout).unwrap_or(Value::Null);
                (last["holders"] == n).then_some(())
            },
            || self.diag(),
        );
    }

    /// Waits until the master counts `holders` connected holders offering
    /// `cores` cores in all (a foreman counts once, with its workers' cores);
    /// `status --json` every 200 ms.
    pub fn wait_capacity(&self, holders: u64, cores: u64, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        loop {
            let out = self.run(&["status", "--json"]);
            let s: Value = serde_json::from_str(&out.stdout).unwrap_or_default();
            if s["holders"] == holders && s["cores"] == cores {
                return;
            }
            if Instant::now() > deadline {
                panic!(
                    "timed out after {timeout:?} waiting for the master to count {holders} \
                     holder(s) with {cores} cores in all (each foreman one holder, with its \
                     workers' cores)\nlast `status --json`: {out}\n{}",
                    self.diag()
                );
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// `pilotq journal dump --json` on this cluster's journal (the master
    /// must be stopped), one value per line.
    pub fn journal_events(&self) -> Vec<Value> {
        let j = self.journal.display().to_string();
        let out = self.run_ok(&["journal", "dump", "--journal", &j, "--json"]);
        out.stdout
            .lines()
            .map(|l| {
                serde_json::from_str(l)
                    .unwrap_or_else(|e| panic!("journal dump line {l:?} is not JSON: {e}"))
            })
            .collect()
    }

    /// Stops the master (SIGTERM, which must succeed) and reads its journal:
    /// `masters` starts, `n` jobs, and per job one dispatch, one completion
    /// and no requeue.
    pub fn assert_journal_once_each(&mut self, n: usize, masters: usize) {
        let status = self.stop_master();
        assert!(status.success(), "master exit after SIGTERM: {status}");
        let mut per_job: BTreeMap<String, BTreeMap<String, u32>> = BTreeMap::new();
        let mut master_starts = 0;
        for ev in &self.journal_events() {
            let (kind, body) = event_kind(ev);
            if kind == "MasterStarted" {
                master_starts += 1;
            }
            if let Some(id) = event_job(body) {
                *per_job
                    .entry(id)
                    .or_default()
                    .entry(kind.to_string())
                    .or_default() += 1;
            }
        }
        assert_eq!(master_starts, masters, "master starts in the journal");
        assert_eq!(per_job.len(), n, "{per_job:?}");
        for (id, kinds) in &per_job {
            assert_eq!(kinds.get("JobDispatched"), Some(&1), "job {id}: {kinds:?}");
            assert_eq!(kinds.get("JobCompleted"), Some(&1), "job {id}: {kinds:?}");
            assert_eq!(kinds.get("JobRequeued"), None, "job {id}: {kinds:?}");
        }
    }

    /// `pilotq journal verify` on this cluster's journal (the master must be
    /// stopped): `ok:`, with `n` completed jobs.
    pub fn assert_journal_verified(&self, n: usize) {
        let j = self.journal.display().to_string();
        let v = self.run_ok(&["journal", "verify", "--journal", &j]);
        assert!(v.stdout.starts_with("ok:"), "{v}");
        assert!(v.stdout.contains(&format!("{n} completed")), "{v}");
    }

    /// A file of the tempdir, which must exist (else the panic shows the
    /// processes' logs).
    pub fn read_file(&self, rel: &str) -> String {
        let p = self.path(rel);
        std::fs::read_to_string(&p)
            .unwrap_or_else(|e| panic!("{}: {e}\n{}", p.display(), self.diag()))
    }

    /// Waits until a job has written `n` pids to `path` (one a line, see
    /// [`pids_in`]) and returns them.
    pub fn wait_pids(&self, path: &Path, n: usize, timeout: Duration) -> Vec<i32> {
        wait_for(
            timeout,
            &format!("the job to write its {n} pids"),
            || {
                let p = pids_in(path);
                (p.len() == n).then_some(p)
            },
            || self.diag(),
        )
    }

    /// The logs of every process this cluster started, for panic messages.
    pub fn diag(&self) -> String {
        let mut s = format!("tempdir: {}\n", self.root.display());
        let mut logs: Vec<PathBuf> = std::fs::read_dir(self.root.join("logs"))
            .map(|d| d.filter_map(|e| e.ok().map(|e| e.path())).collect())
            .unwrap_or_default();
        logs.sort();
        for p in logs {
            if std::fs::metadata(&p).map(|m| m.len() == 0).unwrap_or(true) {
                continue;
            }
            s.push_str(&format!(
                "--- {} (last 25 lines) ---\n{}\n",
                p.file_name().unwrap().to_string_lossy(),
                tail(&p, 25)
            ));
        }
        s
    }

    /// Live processes whose working directory is inside a worker's work
    /// dir: the jobs (and anything they started) of this cluster.
    pub fn job_pids(&self) -> Vec<i32> {
        let workers = self.root.join("workers");
        let mut pids = Vec::new();
        let Ok(dir) = std::fs::read_dir("/proc") else {
            return pids;
        };
        for e in dir.flatten() {
            let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<i32>().ok()) else {
                continue;
            };
            let inside = std::fs::read_link(format!("/proc/{pid}/cwd"))
                .map(|p| p.starts_with(&workers))
                .unwrap_or(false);
            if inside && alive(pid) {
                pids.push(pid);
            }
        }
        pids
    }

    /// Processes (other than this test process) whose working directory or
    /// command line is inside this cluster's tempdir: everything it started,
    /// including job processes whose worker is gone.
    pub fn stray_pids(&self) -> Vec<i32> {
        let me = std::process::id() as i32;
        let root = self.root.display().to_string();
        let mut pids = Vec::new();
        let Ok(dir) = std::fs::read_dir("/proc") else {
            return pids;
        };
        for e in dir.flatten() {
            let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<i32>().ok()) else {
                continue;
            };
            if pid == me || !alive(pid) {
                continue;
            }
            let cwd_in = std::fs::read_link(format!("/proc/{pid}/cwd"))
                .map(|p| p.starts_with(&self.root))
                .unwrap_or(false);
            let cmd_in = std::fs::read(format!("/proc/{pid}/cmdline"))
                .map(|c| String::from_utf8_lossy(&c).contains(&root))
                .unwrap_or(false);
            if cwd_in || cmd_in {
                pids.push(pid);
            }
        }
        pids
    }
}

impl Default for Cluster {
    fn default() -> Self {
        Cluster::new()
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for w in &mut self.workers {
            w.proc.kill_9();
        }
        for f in &mut self.foremen {
            f.proc.kill_9();
        }
        if let Some(m) = &mut self.master {
            m.kill_9();
        }
        for p in &mut self.others {
            p.kill_9();
        }
        // Jobs whose worker is gone, and whatever they left behind.
        for _ in 0..3 {
            let pids = self.stray_pids();
            if pids.is_empty() {
                break;
            }
            for pid in pids {
                send_signal(pid as u32, libc::SIGKILL);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        if std::thread::panicking() {
            if std::env::var_os("PILOTQ_TEST_KEEP").is_some() {
                if let Some(d) = self.dir.take() {
                    eprintln!("keeping the failed test's files in {}", d.keep().display());
                }
            } else {
                eprintln!(
                    "removing {}: set PILOTQ_TEST_KEEP=1 to keep a failed test's files",
                    self.root.display()
                );
            }
        }
    }
}

/// Waits for a line starting with `prefix` in a child's stdout file;
/// returns the rest of that line. Panics (with the child's stderr) if it
/// exits first or takes more than 60 s.
pub fn read_listen_line(proc: &mut Proc, prefix: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let text = std::fs::read_to_string(&proc.stdout_path).unwrap_or_default();
        // Only whole lines count.
        let whole = &text[..text.rfind('\n').map_or(0, |i| i + 1)];
        if let Some(rest) = whole.lines().find_map(|l| l.strip_prefix(prefix)) {
            return rest.trim().to_string();
        }
        let exited = proc.wait_exit(Duration::ZERO);
        if exited.is_some() || Instant::now() > deadline {
            panic!(
                "{} did not print {prefix:?} (exit: {exited:?})\nstdout:\n{text}\n{}",
                proc.label,
                proc.stderr_tail(40)
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// `q --json` output for panic messages: one job per line.
pub fn compact(jobs: &[Value]) -> String {
    let mut s = String::new();
    for j in jobs {
        s.push_str(&j.to_string());
        s.push('\n');
    }
    s
}

/// Runs a command to completion with a time limit, capturing its output.
pub fn run_with_timeout(cmd: Command, timeout: Duration, what: &str) -> Out {
    run_with_input(cmd, Input::AsConfigured, timeout, what)
}

/// What a client started by [`run_with_input`] gets on stdin.
#[derive(Debug, Clone, Copy)]
pub enum Input<'a> {
    /// Whatever the `Command` was set up with.
    AsConfigured,
    /// `/dev/null`.
    Null,
    /// This text, then end of file.
    Text(&'a str),
    /// A pipe that is kept open and never written until the command exits:
    /// a command that reads stdin hangs (and the time limit fails the test).
    OpenPipe,
}

/// [`run_with_timeout`] with a chosen stdin.
pub fn run_with_input(mut cmd: Command, input: Input, timeout: Duration, what: &str) -> Out {
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    match input {
        Input::AsConfigured => {}
        Input::Null => {
            cmd.stdin(Stdio::null());
        }
        Input::Text(_) | Input::OpenPipe => {
            cmd.stdin(Stdio::piped());
        }
    }
    let mut child = cmd
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {what}: {e}"));
    // Written from a thread, so a command that prints before it reads cannot
    // deadlock against us; an open pipe lives until the command has exited.
    let mut open_stdin = None;
    let writer = match input {
        Input::Text(t) => {
            let mut si = child.stdin.take().unwrap();
            let t = t.to_string();
            Some(std::thread::spawn(move || {
                let _ = si.write_all(t.as_bytes());
            }))
        }
        Input::OpenPipe => {
            open_stdin = child.stdin.take();
            None
        }
        _ => None,
    };
    let mut so = child.stdout.take().unwrap();
    let mut se = child.stderr.take().unwrap();
    let to = std::thread::spawn(move || {
        let mut s = Vec::new();
        let _ = so.read_to_end(&mut s);
        s
    });
    let te = std::thread::spawn(move || {
        let mut s = Vec::new();
        let _ = se.read_to_end(&mut s);
        s
    });
    let deadline = Instant::now() + timeout;
    let status = loop {
        if let Some(s) = child.try_wait().expect("try_wait") {
            break s;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            drop(open_stdin.take());
            let stdout = String::from_utf8_lossy(&to.join().unwrap()).into_owned();
            let stderr = String::from_utf8_lossy(&te.join().unwrap()).into_owned();
            panic!(
                "{what} did not finish within {timeout:?}\nstdout:\n{stdout}\nstderr:\n{stderr}"
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    drop(open_stdin);
    if let Some(w) = writer {
        let _ = w.join();
    }
    Out {
        status,
        stdout: String::from_utf8_lossy(&to.join().unwrap()).into_owned(),
        stderr: String::from_utf8_lossy(&te.join().unwrap()).into_owned(),
    }
}

/// Checks condor_submit's output (`Submitting job(s)` + one dot per job, then
/// `N job(s) submitted to cluster C.`) and returns C.
pub fn parse_submit(stdout: &str, count: u32) -> Result<u64, String> {
    let lines: Vec<&str> = stdout.lines().collect();
    let want_first = format!("Submitting job(s){}", ".".repeat(count as usize));
    if lines.len() != 2 || lines[0] != want_first {
        return Err(format!(
            "submit printed {stdout:?}, expected {want_first:?} and a cluster line"
        ));
    }
    let prefix = format!("{count} job(s) submitted to cluster ");
    lines[1]
        .strip_prefix(&prefix)
        .and_then(|r| r.strip_suffix('.'))
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| format!("bad submit line {:?}, expected {prefix:?}C.", lines[1]))
}

/// The name and body of a journal event (`{"e": {"Name": {...}}}`).
pub fn event_kind(ev: &Value) -> (&str, &Value) {
    let e = ev
        .get("e")
        .and_then(Value::as_object)
        .unwrap_or_else(|| panic!("journal line without an event: {ev}"));
    let (k, v) = e
        .iter()
        .next()
        .unwrap_or_else(|| panic!("empty event: {ev}"));
    (k.as_str(), v)
}

/// `C.P` of an event body's `job` field.
pub fn event_job(body: &Value) -> Option<String> {
    let j = body.get("job")?;
    Some(format!(
        "{}.{}",
        j.get("cluster")?.as_u64()?,
        j.get("proc")?.as_u64()?
    ))
}

/// `#!/bin/sh\ntrue\n`: the executable of a job that only succeeds.
pub const TRUE_SH: &[u8] = b"#!/bin/sh\ntrue\n";

/// What a raw submission of `owner`'s says: a one-core job running
/// `executable` (by its hash; the bytes go with the submission, see
/// [`RawConn::submit`]) as `cmd`, in `/`, with no arguments, environment,
/// attributes or tags, and no output, error or log file. Change fields with
/// `JobSpec { output, ..raw_job_spec(..) }`.
pub fn raw_job_spec(owner: &str, cmd: &str, executable: &[u8]) -> pilotq_wire::JobSpec {
    use sha2::Digest;
    pilotq_wire::JobSpec {
        executable: hex::encode(sha2::Sha256::digest(executable)),
        cmd: cmd.into(),
        arguments: vec![],
        environment: Default::default(),
        output: None,
        error: None,
        log: None,
        request: pilotq_wire::Resources::new(1, 0, 0),
        priority: 0,
        attributes: Default::default(),
        owner: owner.into(),
        iwd: "/".into(),
        tags: vec![],
        leave_in_queue: false,
    }
}

/// A raw connection to the master speaking 4-byte big-endian length frames.
pub struct RawConn {
    pub stream: TcpStream,
}

/// What came back on a raw connection.
#[derive(Debug)]
pub enum Reply {
    Frame(Vec<u8>),
    /// Orderly end of stream.
    Closed,
    /// Reset by the peer (closed with unread data).
    Reset,
    /// Nothing within the time limit.
    Silent,
}

impl RawConn {
    pub fn connect(addr: &str) -> RawConn {
        let stream = TcpStream::connect(addr).unwrap_or_else(|e| panic!("connect {addr}: {e}"));
        stream.set_nodelay(true).ok();
        RawConn { stream }
    }

    /// A client connection to the master at `addr`, handshake done: Hello,
    /// Welcome, a Proof of `secret` (`None` for a master without a client
    /// secret), Accepted; panics on anything else.
    pub fn client(addr: &str, secret: Option<&pilotq_wire::Secret>) -> RawConn {
        RawConn::handshake(addr, pilotq_wire::Role::Client, "raw-client", secret)
    }

    /// Connects and completes the handshake as `role` named `name`, proving
    /// `secret` if given; panics unless the master answers Welcome, then
    /// Accepted.
    pub fn handshake(
        addr: &str,
        role: pilotq_wire::Role,
        name: &str,
        secret: Option<&pilotq_wire::Secret>,
    ) -> RawConn {
        use pilotq_wire::{FromMaster, ToMaster};
        const REPLY: Duration = Duration::from_secs(10);
        let mut conn = RawConn::connect(addr);
        let hello = pilotq_wire::Hello {
            protocol: pilotq_wire::PROTOCOL_VERSION,
            role,
            name: name.into(),
            nonce: pilotq_wire::handshake::fresh_nonce(),
        };
        conn.send_msg(&ToMaster::Hello(hello.clone())).unwrap();
        let nonce = match conn.read_msg(REPLY) {
            Ok(FromMaster::Welcome(w)) => w.nonce,
            other => panic!("{role} handshake at {addr}: expected Welcome, got {other:?}"),
        };
        let proof = secret.map(|s| s.prove(pilotq_wire::handshake::Prover::Peer, &hello, &nonce));
        conn.send_msg(&ToMaster::Proof { proof }).unwrap();
        match conn.read_msg(REPLY) {
            Ok(FromMaster::Accepted) => conn,
            other => panic!("{role} handshake at {addr}: expected Accepted, got {other:?}"),
        }
    }

    /// Submits `count` jobs of `spec` (as the owner it names) with the
    /// `executable` bytes it names by hash, on this client connection: the
    /// new cluster's id, or the master's error message; panics on any other
    /// answer.
    pub fn submit(
        &mut self,
        spec: pilotq_wire::JobSpec,
        count: u32,
        executable: &[u8],
    ) -> Result<u64, String> {
        use pilotq_wire::{FromMaster, ToMaster};
        let owner = spec.owner.clone();
        self.send_msg(&ToMaster::Submit {
            spec: Box::new(spec),
            count,
            executable: executable.to_vec(),
        })
        .unwrap();
        match self.read_msg(Duration::from_secs(10)) {
            Ok(FromMaster::Submitted { cluster, .. }) => Ok(cluster.0),
            Ok(FromMaster::Error { message }) => Err(message),
            other => panic!("unexpected answer to a submission as {owner}: {other:?}"),
        }
    }

    pub fn send_raw(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.stream.write_all(bytes)?;
        self.stream.flush()
    }

    /// One frame: a 4-byte big-endian length, then `body`.
    pub fn send_frame(&mut self, body: &[u8]) -> std::io::Result<()> {
        let mut buf = (body.len() as u32).to_be_bytes().to_vec();
        buf.extend_from_slice(body);
        self.send_raw(&buf)
    }

    pub fn send_msg(&mut self, msg: &pilotq_wire::ToMaster) -> std::io::Result<()> {
        self.send_frame(&rmp_serde::to_vec_named(msg).expect("encoding a message"))
    }

    /// Reads one frame, or notices the end of the stream, within `timeout`.
    pub fn read_reply(&mut self, timeout: Duration) -> Reply {
        let deadline = Instant::now() + timeout;
        let mut header = [0u8; 4];
        match self.read_exact_by(&mut header, deadline) {
            Ok(true) => {}
            Ok(false) => return Reply::Closed,
            Err(r) => return r,
        }
        let len = u32::from_be_bytes(header) as usize;
        assert!(len <= 16 << 20, "the master sent a frame of {len} bytes");
        let mut body = vec![0u8; len];
        match self.read_exact_by(&mut body, deadline) {
            Ok(true) => Reply::Frame(body),
            Ok(false) => panic!("the master closed in the middle of a frame"),
            Err(r) => r,
        }
    }

    /// Ok(false) on a clean EOF before the first byte.
    fn read_exact_by(&mut self, buf: &mut [u8], deadline: Instant) -> Result<bool, Reply> {
        let mut got = 0;
        while got < buf.len() {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(Reply::Silent);
            }
            self.stream.set_read_timeout(Some(left)).unwrap();
            match self.stream.read(&mut buf[got..]) {
                Ok(0) if got == 0 => return Ok(false),
                Ok(0) => panic!("the master closed in the middle of a frame"),
                Ok(n) => got += n,
                Err(e)
                    if e.kind() == std::io::ErrorKind::WouldBlock
                        || e.kind() == std::io::ErrorKind::TimedOut =>
                {
                    return Err(Reply::Silent)
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(_) => return Err(Reply::Reset),
            }
        }
        Ok(true)
    }

    /// Reads one message from the master.
    pub fn read_msg(&mut self, timeout: Duration) -> Result<pilotq_wire::FromMaster, String> {
        match self.read_reply(timeout) {
            Reply::Frame(b) => rmp_serde::from_slice(&b)
                .map_err(|e| format!("the master sent a frame that does not decode: {e}")),
            other => Err(format!("expected a frame from the master, got {other:?}")),
        }
    }

    /// Expects an `Error` frame and then the end of the connection; returns
    /// the error message.
    pub fn expect_error_and_close(&mut self, timeout: Duration) -> Result<String, String> {
        let msg = match self.read_msg(timeout)? {
            pilotq_wire::FromMaster::Error { message } => message,
            other => return Err(format!("expected an Error frame, got {other:?}")),
        };
        match self.read_reply(timeout) {
            Reply::Closed | Reply::Reset => Ok(msg),
            other => Err(format!(
                "after the error {msg:?} the connection was not closed: {other:?}"
            )),
        }
    }
}
