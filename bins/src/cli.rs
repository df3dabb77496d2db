//! `pilotq` and its subcommands.

use crate::client_opts::{ClientOpts, SecretOpts};
use crate::commands::ops;
use clap::{Parser, Subcommand};
use std::path::PathBuf;

#[derive(Debug, Parser)]
#[command(
    name = "pilotq",
    version,
    about = "A durable pilot-job queue: a master, workers, and an HTCondor-compatible face",
    long_about = "pilotq runs pilot jobs (or any batch job) on machines that have no batch system.\n\
        A master keeps every job in a durable journal and hands jobs to foremen and workers,\n\
        which run them as processes. Kill the master and start it again: nothing is lost,\n\
        nothing runs twice. condor_submit, condor_q, condor_rm and condor_status speak to it.\n\n\
        Quick start:  pilotq up                                   (master + local workers, data in ./pilotq-data)\n\
        then:         pilotq submit --count 10 -- /bin/echo hello  ;  pilotq q"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the master: owns the job table and its journal, serves workers and clients.
    Master(MasterArgs),
    /// Run a worker: runs the master's jobs as local processes.
    Worker(WorkerArgs),
    /// Run a foreman: a local queue between the master and its workers,
    /// which keeps them busy while the master is away.
    Foreman(ForemanArgs),
    /// Submit a cluster of jobs (like condor_submit).
    Submit(SubmitArgs),
    /// List jobs (like condor_q -nobatch).
    Q(QArgs),
    /// Finished jobs from the master's history store, newest first (like
    /// condor_history), with completion date and exit code.
    History(HistoryArgs),
    /// Remove jobs: C, C.P, or --all (like condor_rm). Running jobs are killed.
    Rm(RmArgs),
    /// Release held jobs: C, C.P, or --all (like condor_release). A job held
    /// because its output could not be written has it written again and
    /// completes; any other held job runs again.
    Release(RmArgs),
    /// Print the output the master kept for a job held because its output
    /// file could not be written (--stderr: its error file).
    Output(OutputArgs),
    /// Counts of jobs and holders.
    Status(StatusArgs),
    /// Post-mortems on a journal — a stopped master's, a copy, or a running
    /// master's (--master): dump, job, at, stats, plot, export, verify.
    Journal {
        #[command(subcommand)]
        command: JournalCommand,
    },
    /// A master, local foremen and workers in one command; Ctrl-C drains and stops them.
    Up(UpArgs),
    /// Write a fresh random shared secret to PATH (mode 0600), for
    /// --password-file on the master, its foremen, workers and clients.
    InitSecret(InitSecretArgs),
    /// Print the shell lines that put pilotq's condor_submit, condor_q,
    /// condor_rm and condor_status first on PATH and point them at the
    /// master: `eval "$(pilotq env)"`.
    Env(EnvArgs),
    /// Start N workers in the background, each kept alive by a supervisor
    /// (alien-workqueue's start-workers, with its WQ_* variables).
    StartWorkers(StartWorkersArgs),
    /// Stop the workers start-workers started: drain, then SIGTERM, then
    /// SIGKILL; clean their pid files and scratch dirs.
    StopWorkers(StopWorkersArgs),
    /// Print the number of live workers started by start-workers.
    CountWorkers(CountWorkersArgs),
    /// Create the drain file (WQ_DRAIN): workers finish their current jobs
    /// and exit, and are not respawned. `--off` removes it.
    Drain(DrainArgs),
    /// Start N foremen (default WQ_NUM_FOREMEN) in the background, each
    /// kept alive by a supervisor (alien-workqueue's start-foremen).
    StartForemen(StartForemenArgs),
    /// Stop the foremen start-foremen started: drain, wait for their local
    /// workers to leave, then SIGTERM, then SIGKILL. Their journals stay in
    /// the work dir (they may hold results the master has not taken yet).
    StopForemen(StopForemenArgs),
    /// Print the number of live foremen started by start-foremen.
    CountForemen(CountForemenArgs),
    /// Load simulation: the real master (and foremen) driven by thousands of
    /// simulated workers, with faults injected and invariants checked.
    Sim(crate::commands::sim::SimArgs),
    /// Keep one worker alive (what start-workers leaves running).
    #[command(hide = true)]
    Supervise(ops::supervisor::SuperviseArgs),
}

impl Command {
    /// Whether this command is a long-running service that talks to peers
    /// over sockets (see `reset_sigpipe`).
    pub fn is_service(&self) -> bool {
        matches!(
            self,
            Command::Master(_)
                | Command::Worker(_)
                | Command::Foreman(_)
                | Command::Up(_)
                | Command::Sim(_)
                | Command::Supervise(_)
        )
    }
}

#[derive(Debug, Clone, clap::Args)]
pub struct MasterArgs {
    /// Address to listen on for workers and clients.
    #[arg(long, default_value = "127.0.0.1:9094")]
    pub listen: String,
    /// Journal directory (created if missing). Only one master may hold it.
    #[arg(long, default_value = "./pilotq-data/master")]
    pub journal: PathBuf,
    /// The master's name, as condor_status shows it.
    #[arg(long, default_value = "pilotq-master")]
    pub name: String,
    /// Seconds between holders' heartbeats.
    #[arg(long, default_value_t = 5.0)]
    pub heartbeat: f64,
    /// Seconds a silent holder keeps its jobs before they are requeued;
    /// after a restart, how long holders have to reclaim their jobs.
    #[arg(long, default_value_t = 60.0)]
    pub lease: f64,
    /// Dispatches before a job whose holders keep getting lost is held.
    #[arg(long, default_value_t = 3)]
    pub max_attempts: u32,
    /// Largest number of jobs in one submission.
    #[arg(long, default_value_t = 1_000_000)]
    pub max_submit: u32,
    /// Jobs one owner may have in the queue (not finished); a submission
    /// beyond is refused, as HTCondor's MAX_JOBS_PER_OWNER. 0: no limit
    /// (a lazy million-job cluster costs the master almost nothing).
    #[arg(long, default_value_t = 100_000)]
    pub max_jobs_per_owner: u64,
    /// Owners whose rm and release act on every owner's jobs (HTCondor's
    /// QUEUE_SUPER_USERS); anyone else's act on their own jobs only.
    #[arg(long, value_delimiter = ',', default_value = "root,condor")]
    pub super_users: Vec<String>,
    /// Store a snapshot of the table after this many events.
    #[arg(long, default_value_t = 200_000)]
    pub snapshot_every: u64,
    /// Largest frame accepted, in bytes.
    #[arg(long, default_value_t = pilotq_wire::DEFAULT_MAX_FRAME)]
    pub max_frame: usize,
    /// Seconds a new connection has to complete the handshake.
    #[arg(long, default_value_t = 10.0)]
    pub handshake_timeout: f64,
    /// Run every job as `PATH <executable> <args…>`; PATH should end with
    /// `exec "$@"`. It is shipped to workers like an executable.
    #[arg(long, value_name = "PATH")]
    pub job_wrapper: Option<PathBuf>,
    /// Refuse new submissions while the journal's filesystem has less free
    /// space than this (bytes, or with K, M, G: 512M, 2G; 0: no floor).
    /// Running work goes on. A master started below it writes nothing, not
    /// even its start marker, until space returns, then resumes by itself.
    /// Default: 1 GiB, or 5 % of the filesystem if that is smaller.
    #[arg(long, value_name = "SIZE", value_parser = parse_size)]
    pub min_free_disk: Option<u64>,
    #[command(flatten)]
    pub journal_keep: JournalKeepOpts,
    /// Finished jobs leave the queue for the history store
    /// (`<journal>/history/`, read by `condor_history`). Its files together
    /// stay under this size (HTCondor's MAX_HISTORY_LOG × (rotations + 1)).
    #[arg(long, value_name = "SIZE", value_parser = parse_size, default_value = "2G")]
    pub history_max_size: u64,
    /// Rotated history files kept besides the current one (HTCondor's
    /// MAX_HISTORY_ROTATIONS); the current file is rotated at
    /// max-size / (rotations + 1).
    #[arg(long, value_name = "N", default_value_t = 9)]
    pub history_rotations: u32,
    /// Rotated history files older than this are deleted (e.g. 90d, 12h);
    /// default: kept until the size or rotation bound.
    #[arg(long, value_name = "DURATION", value_parser = parse_age)]
    pub history_max_age: Option<std::time::Duration>,
    #[command(flatten)]
    pub secret: SecretOpts,
    /// The secret workers and foremen must prove (instead of
    /// --password-file's, for them): a pilot's secret then cannot submit.
    #[arg(long, value_name = "FILE")]
    pub holder_password_file: Option<PathBuf>,
    /// The secret clients (condor_submit, condor_q, condor_rm, pilotq …)
    /// must prove (instead of --password-file's, for them): a client's
    /// secret then cannot register as a worker.
    #[arg(long, value_name = "FILE")]
    pub client_password_file: Option<PathBuf>,
    /// Listen beyond loopback without a password file. Anyone who can reach
    /// the port could then submit jobs that every worker runs: refused
    /// without this flag, and warned about every 5 minutes with it. Make a
    /// secret instead: `pilotq init-secret PATH`.
    #[arg(long)]
    pub insecure: bool,
    #[command(flatten)]
    pub tls: crate::tls_opts::ServerTlsOpts,
    /// Also listen on this Unix socket, open to every local user: the
    /// kernel tells the master who each client is, so its jobs' Owner is
    /// that user, not a claim, and no client secret is needed. Clients
    /// reach it with `--master unix:PATH`.
    #[arg(long, value_name = "PATH")]
    pub unix_socket: Option<PathBuf>,
    /// Let clients without the client secret query the queue, the history
    /// and the status (HTCondor's READ level); submit, rm, release and
    /// outputs still need the secret.
    #[arg(long)]
    pub open_reads: bool,
    /// Connections one source address may hold open; more are closed at
    /// once (0: no bound). Raise it for a host that runs more workers.
    #[arg(long, value_name = "N", default_value_t = 1024)]
    pub max_connections_per_ip: usize,
}

impl MasterArgs {
    /// The history store's bounds from `--history-*`.
    pub fn history_limits(&self) -> pilotq_journal::history::HistoryLimits {
        pilotq_journal::history::HistoryLimits {
            max_size: self.history_max_size,
            rotations: self.history_rotations,
            max_age: self.history_max_age,
        }
    }
}

/// A duration such as `90d`, `12h`, `30m`.
fn parse_age(s: &str) -> Result<std::time::Duration, String> {
    humantime::parse_duration(s).map_err(|e| format!("{e} (write e.g. 90d, 12h, 30m)"))
}

fn parse_size(s: &str) -> Result<u64, String> {
    pilotq_actors::master::disk::parse_size(s)
}

/// How long the journal's sealed files are kept (a master's and a
/// foreman's): events move out of the live database into sealed files once
/// two snapshots cover them.
#[derive(Debug, Clone, clap::Args)]
pub struct JournalKeepOpts {
    /// Delete sealed journal files whose last event is older than this
    /// (e.g. 30d, 12h; `forever` keeps them). Never a file that a replay
    /// from the oldest kept snapshot needs.
    #[arg(long, value_name = "DURATION", value_parser = parse_keep_age, default_value = "30d")]
    pub journal_keep_age: KeepAge,
    /// Delete the oldest sealed journal files while they all take more than
    /// this (bytes, or with K, M, G); default: no bound.
    #[arg(long, value_name = "SIZE", value_parser = parse_size)]
    pub journal_keep_size: Option<u64>,
}

/// `--journal-keep-age`: `None` for `forever`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeepAge(pub Option<std::time::Duration>);

fn parse_keep_age(s: &str) -> Result<KeepAge, String> {
    if s.eq_ignore_ascii_case("forever") {
        return Ok(KeepAge(None));
    }
    humantime::parse_duration(s)
        .map(|d| KeepAge(Some(d)))
        .map_err(|e| format!("{e} (write e.g. 30d, 12h, or forever)"))
}

#[derive(Debug, Clone, clap::Args)]
pub struct ForemanArgs {
    /// The master's HOST:PORT (several, comma separated, to fail over).
    #[arg(long, env = "PILOTQ_MASTER", default_value = crate::client_opts::DEFAULT_MASTER)]
    pub master: String,
    /// Address its workers connect to.
    #[arg(long, default_value = "127.0.0.1:9080")]
    pub listen: String,
    /// The foreman's own journal directory (only one process may hold it).
    #[arg(long, default_value = "./pilotq-data/foreman")]
    pub journal: PathBuf,
    /// Jobs taken from the master as a multiple of its workers' free slots.
    #[arg(long, default_value_t = 2)]
    pub depth: u32,
    /// Tags this foreman offers (comma separated): the master sends it only
    /// jobs whose tags it all has. Its workers need them too.
    #[arg(long, value_delimiter = ',')]
    pub tags: Vec<String>,
    /// The foreman's name at the master (default host:listen-port).
    #[arg(long)]
    pub name: Option<String>,
    /// Seconds between heartbeats, to the master and expected from workers.
    #[arg(long, default_value_t = 5.0)]
    pub heartbeat: f64,
    /// Seconds a silent worker keeps its jobs before they go back to the
    /// foreman's queue.
    #[arg(long, default_value_t = 60.0)]
    pub lease: f64,
    /// Take no new jobs from the master while the foreman's journal has less
    /// free space than this (bytes, or with K, M, G; 0: no floor); its
    /// running jobs go on. Default: 1 GiB, or 5 % of the filesystem if that
    /// is smaller.
    #[arg(long, value_name = "SIZE", value_parser = parse_size)]
    pub min_free_disk: Option<u64>,
    #[command(flatten)]
    pub journal_keep: JournalKeepOpts,
    #[command(flatten)]
    pub secret: SecretOpts,
    /// Listen for workers beyond loopback without a password file (see
    /// `pilotq master --insecure`).
    #[arg(long)]
    pub insecure: bool,
    /// TLS for this foreman's workers (its certificate also shows upstream,
    /// to a master that asks for one).
    #[command(flatten)]
    pub tls: crate::tls_opts::ServerTlsOpts,
    /// Connect to the master with TLS, trusting a certificate signed by
    /// this CA (PEM).
    #[arg(long, value_name = "PEM", env = "PILOTQ_TLS_CA")]
    pub tls_ca: Option<PathBuf>,
    /// Connections one source address may hold open to this foreman; more
    /// are closed at once (0: no bound).
    #[arg(long, value_name = "N", default_value_t = 1024)]
    pub max_connections_per_ip: usize,
}

#[derive(Debug, Clone, clap::Args)]
pub struct InitSecretArgs {
    /// Where to write it; an existing file is left alone (refused).
    pub path: PathBuf,
}

#[derive(Debug, Clone, clap::Args)]
pub struct WorkerArgs {
    /// The upstream's HOST:PORT (a master or a foreman); several, comma
    /// separated, to fail over from one to the next when it dies.
    #[arg(long, env = "PILOTQ_MASTER", default_value = crate::client_opts::DEFAULT_MASTER)]
    pub master: String,
    /// Cores offered (default: all of this machine's).
    #[arg(long)]
    pub cores: Option<u32>,
    /// Memory offered in MB (default: this machine's).
    #[arg(long)]
    pub memory: Option<u64>,
    /// Disk offered in MB (default: free space of the work dir).
    #[arg(long)]
    pub disk: Option<u64>,
    /// Scratch directory: job sandboxes and the executable cache.
    #[arg(long, default_value = "./pilotq-data/worker")]
    pub workdir: PathBuf,
    /// The worker's name, its identity across reconnects (default host:pid).
    #[arg(long)]
    pub name: Option<String>,
    /// Seconds between heartbeats.
    #[arg(long, default_value_t = 5.0)]
    pub heartbeat: f64,
    /// Jobs held at once as a multiple of the resources: the extra ones wait
    /// in the worker's queue and start the moment a slot frees.
    #[arg(long, default_value_t = 2)]
    pub depth: u32,
    /// Size of the executable cache (bytes, or with K, M, G: 512M, 2G):
    /// beyond it the least recently used executables are deleted, never one
    /// a job held here needs, and fetched again when a job needs them.
    #[arg(long, value_name = "SIZE", value_parser = parse_size, default_value = "1G")]
    pub cache_size: u64,
    /// Cap on captured stdout and stderr, each, in bytes (at most what fits
    /// in one frame: raise --max-frame here and on the master for 64 MiB).
    #[arg(long, default_value_t = 64 * 1024 * 1024)]
    pub output_cap: usize,
    /// Largest frame sent or accepted, in bytes.
    #[arg(long, default_value_t = pilotq_wire::DEFAULT_MAX_FRAME)]
    pub max_frame: usize,
    /// Exit after the first job (Work Queue's --single-shot).
    #[arg(long)]
    pub single_task: bool,
    /// Tags this worker offers (comma separated): a job that has tags runs
    /// only where all of them are offered.
    #[arg(long, value_delimiter = ',')]
    pub tags: Vec<String>,
    /// Exit after this many seconds without a job.
    #[arg(long, value_name = "S")]
    pub idle_timeout: Option<f64>,
    /// While this file exists, take no new jobs, finish the ones held, and
    /// exit (a supervisor does not respawn a worker while it exists).
    #[arg(long, value_name = "PATH")]
    pub drain_file: Option<PathBuf>,
    #[command(flatten)]
    pub secret: SecretOpts,
    #[command(flatten)]
    pub tls: crate::tls_opts::PeerTlsOpts,
}

#[derive(Debug, Clone, clap::Args)]
pub struct SubmitArgs {
    #[command(flatten)]
    pub client: ClientOpts,
    /// Number of jobs in the cluster (`queue N`).
    #[arg(long, default_value_t = 1)]
    pub count: u32,
    /// Higher runs first.
    #[arg(long, default_value_t = 0, allow_hyphen_values = true)]
    pub priority: i32,
    #[arg(long, default_value_t = 1)]
    pub cores: u32,
    /// MB.
    #[arg(long, default_value_t = 0)]
    pub memory: u64,
    /// MB.
    #[arg(long, default_value_t = 0)]
    pub disk: u64,
    /// Only holders offering this tag may run the jobs (repeatable).
    #[arg(long = "tag", value_name = "TAG")]
    pub tags: Vec<String>,
    /// K=V, repeatable: the job's whole environment.
    #[arg(long = "env", value_name = "K=V")]
    pub env: Vec<String>,
    /// Where the job's stdout goes; $(Cluster) and $(Process) expand.
    #[arg(long)]
    pub output: Option<String>,
    /// Where the job's stderr goes; $(Cluster) and $(Process) expand.
    #[arg(long)]
    pub error: Option<String>,
    /// The job event log path.
    #[arg(long)]
    pub log: Option<String>,
    /// The executable (a path, or a name found on PATH) and its arguments.
    #[arg(
        required = true,
        trailing_var_arg = true,
        allow_hyphen_values = true,
        value_name = "EXECUTABLE [ARGS]..."
    )]
    pub command: Vec<String>,
}

#[derive(Debug, Clone, clap::Args)]
pub struct QArgs {
    #[command(flatten)]
    pub client: ClientOpts,
    /// Print a JSON array, one object per job.
    #[arg(long, conflicts_with = "jsonl")]
    pub json: bool,
    /// Print one JSON object per line (JSON Lines), the objects of --json.
    #[arg(long)]
    pub jsonl: bool,
    /// Job or cluster ids (C.P or C); all jobs when none.
    pub ids: Vec<String>,
}

#[derive(Debug, Clone, clap::Args)]
pub struct HistoryArgs {
    #[command(flatten)]
    pub client: ClientOpts,
    /// Print a JSON array, one object per job (the objects of `q --json`
    /// and the history fields).
    #[arg(long, conflicts_with = "jsonl")]
    pub json: bool,
    /// Print one JSON object per line, the objects of --json.
    #[arg(long)]
    pub jsonl: bool,
    /// At most N jobs; reading stops there.
    #[arg(long, value_name = "N")]
    pub limit: Option<u64>,
    /// Oldest first.
    #[arg(long)]
    pub forwards: bool,
    /// Job or cluster ids (C.P or C); every finished job when none.
    pub ids: Vec<String>,
}

#[derive(Debug, Clone, clap::Args)]
pub struct RmArgs {
    #[command(flatten)]
    pub client: ClientOpts,
    /// Every job.
    #[arg(long, short = 'a')]
    pub all: bool,
    /// Job or cluster ids (C.P or C).
    pub ids: Vec<String>,
}

#[derive(Debug, Clone, clap::Args)]
pub struct OutputArgs {
    #[command(flatten)]
    pub client: ClientOpts,
    /// The kept error file rather than the output file.
    #[arg(long)]
    pub stderr: bool,
    /// The held job (C.P).
    pub job: String,
}

#[derive(Debug, Clone, clap::Args)]
pub struct StatusArgs {
    #[command(flatten)]
    pub client: ClientOpts,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Clone, clap::Args)]
pub struct EnvArgs {
    #[command(flatten)]
    pub client: ClientOpts,
}

#[derive(Debug, Subcommand)]
pub enum JournalCommand {
    /// Print the events in order, optionally only a job's, a window's or
    /// some kinds.
    Dump(crate::commands::journal::dump::DumpArgs),
    /// Replay a stopped journal and check it: every event decodes, replay
    /// equals the snapshot's table, indexes are consistent.
    Verify {
        #[arg(long, default_value = "./pilotq-data/master")]
        journal: PathBuf,
    },
    /// One job's life across its attempts: submitted, each dispatch (to
    /// whom), start, requeue and hold (why), release, completion (exit code
    /// or signal), removal, with the time between them.
    Job(crate::commands::journal::job::JobArgs),
    /// The table as it was at a time or event: counts per state, holders
    /// and their jobs, the jobs in each state.
    At(crate::commands::journal::at::AtArgs),
    /// Queue waits and run times (p50/p90/p99/max), completions per minute,
    /// requeues, holds, failures per holder and exit code, master restarts
    /// and outages.
    Stats(crate::commands::journal::stats::StatsArgs),
    /// Draw idle, running and completed jobs over time as SVG, with master
    /// restarts and holder losses marked.
    Plot(crate::commands::journal::plot::PlotArgs),
    /// One flat row per event (seq, time, kind, job, attempt, holder, exit
    /// code, reason, …) as JSON Lines or CSV, for pandas.
    Export(crate::commands::journal::export::ExportArgs),
}

#[derive(Debug, Clone, clap::Args)]
pub struct UpArgs {
    /// Data directory: the master's journal and the workers' scratch space.
    #[arg(long, default_value = "./pilotq-data")]
    pub data: PathBuf,
    #[arg(long, default_value = "127.0.0.1:9094")]
    pub listen: String,
    /// Local workers to start.
    #[arg(long, default_value_t = 2)]
    pub workers: u32,
    /// On Ctrl-C, seconds the workers get to finish their jobs before they
    /// are stopped.
    #[arg(long, default_value_t = 10.0)]
    pub grace: f64,
    /// Cores per worker (default: this machine's cores divided among the workers, at least 1).
    #[arg(long)]
    pub cores_per_worker: Option<u32>,
    /// Foremen between the master and the workers, each with its own
    /// journal under the data dir; workers are spread over them
    /// round-robin. 0: workers connect straight to the master.
    #[arg(long, default_value_t = 0)]
    pub foremen: u32,
    #[command(flatten)]
    pub secret: SecretOpts,
}

#[derive(Debug, Clone, clap::Args)]
#[command(after_long_help = ops::settings::ENV_HELP)]
pub struct StartWorkersArgs {
    /// How many workers to start (on the lowest free ids).
    #[arg(value_parser = clap::value_parser!(u32).range(1..))]
    pub count: u32,
    #[command(flatten)]
    pub upstream: ops::settings::UpstreamOpts,
    #[command(flatten)]
    pub workdir: ops::settings::WorkdirOpt,
    #[command(flatten)]
    pub drain: ops::settings::DrainOpt,
    #[command(flatten)]
    pub worker: ops::settings::WorkerOpts,
    #[command(flatten)]
    pub secret: SecretOpts,
    /// More `pilotq worker` options for every worker, e.g. `-- --cores 1`.
    #[arg(last = true, value_name = "WORKER OPTIONS")]
    pub worker_args: Vec<String>,
}

#[derive(Debug, Clone, clap::Args)]
#[command(after_long_help = ops::settings::ENV_HELP)]
pub struct StopWorkersArgs {
    #[command(flatten)]
    pub workdir: ops::settings::WorkdirOpt,
    #[command(flatten)]
    pub drain: ops::settings::DrainOpt,
    /// Seconds the workers have to finish their jobs after the drain file
    /// appears; then SIGTERM (running jobs are killed), then SIGKILL.
    #[arg(long, value_name = "S", default_value_t = 30.0)]
    pub grace: f64,
}

#[derive(Debug, Clone, clap::Args)]
#[command(after_long_help = ops::settings::ENV_HELP)]
pub struct CountWorkersArgs {
    #[command(flatten)]
    pub workdir: ops::settings::WorkdirOpt,
}

#[derive(Debug, Clone, clap::Args)]
#[command(after_long_help = ops::settings::ENV_HELP)]
pub struct DrainArgs {
    #[command(flatten)]
    pub drain: ops::settings::DrainOpt,
    /// Remove the drain file instead.
    #[arg(long)]
    pub off: bool,
}

#[derive(Debug, Clone, clap::Args)]
#[command(after_long_help = ops::foremen::FOREMEN_HELP)]
pub struct StartForemenArgs {
    /// How many foremen to start (on the lowest free ids)
    /// [default: WQ_NUM_FOREMEN, else 2].
    #[arg(value_parser = clap::value_parser!(u32).range(1..))]
    pub count: Option<u32>,
    #[command(flatten)]
    pub upstream: ops::settings::ForemenOpts,
    #[command(flatten)]
    pub workdir: ops::settings::WorkdirOpt,
    #[command(flatten)]
    pub drain: ops::settings::DrainOpt,
    #[command(flatten)]
    pub respawn: ops::settings::RespawnOpt,
    #[command(flatten)]
    pub secret: SecretOpts,
    /// More `pilotq foreman` options for every foreman, e.g. `-- --depth 4`.
    #[arg(last = true, value_name = "FOREMAN OPTIONS")]
    pub foreman_args: Vec<String>,
}

#[derive(Debug, Clone, clap::Args)]
#[command(after_long_help = ops::foremen::FOREMEN_HELP)]
pub struct StopForemenArgs {
    #[command(flatten)]
    pub workdir: ops::settings::WorkdirOpt,
    #[command(flatten)]
    pub drain: ops::settings::DrainOpt,
    /// Seconds to wait, after the drain file appears, for the workers of
    /// this work dir that use these foremen to leave; then SIGTERM, then
    /// SIGKILL.
    #[arg(long, value_name = "S", default_value_t = 30.0)]
    pub grace: f64,
}

#[derive(Debug, Clone, clap::Args)]
#[command(after_long_help = ops::foremen::FOREMEN_HELP)]
pub struct CountForemenArgs {
    #[command(flatten)]
    pub workdir: ops::settings::WorkdirOpt,
}

#[cfg(test)]
mod journal_keep_tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn keep_ages_parse_as_durations_or_forever() {
        let day = Duration::from_secs(86_400);
        assert_eq!(parse_keep_age("30d"), Ok(KeepAge(Some(30 * day))));
        assert_eq!(parse_keep_age("30days"), Ok(KeepAge(Some(30 * day))));
        assert_eq!(parse_keep_age("12h"), Ok(KeepAge(Some(day / 2))));
        assert_eq!(parse_keep_age("Forever"), Ok(KeepAge(None)));
        assert!(parse_keep_age("a month").is_err());
        assert!(parse_keep_age("").is_err());
    }

    #[test]
    fn a_master_keeps_30_days_of_sealed_journal_by_default() {
        use clap::Parser;
        let Command::Master(a) = Cli::parse_from(["pilotq", "master"]).command else {
            panic!("parsed as another command")
        };
        assert_eq!(
            a.journal_keep.journal_keep_age,
            KeepAge(Some(Duration::from_secs(30 * 86_400)))
        );
        assert_eq!(a.journal_keep.journal_keep_size, None);
        let Command::Foreman(a) = Cli::parse_from([
            "pilotq",
            "foreman",
            "--journal-keep-age",
            "forever",
            "--journal-keep-size",
            "2G",
        ])
        .command
        else {
            panic!("parsed as another command")
        };
        assert_eq!(a.journal_keep.journal_keep_age, KeepAge(None));
        assert_eq!(a.journal_keep.journal_keep_size, Some(2 << 30));
    }
}
