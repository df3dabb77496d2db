//! Site operations: `pilotq start-workers N`, `stop-workers`,
//! `count-workers` and `drain`, the Rust successors of alien-workqueue's
//! shell scripts, with the same environment variables and defaults
//! (the scripts ALICE sites run today).
//!
//! `start-workers` leaves, for each worker, a detached *supervisor*
//! (`pilotq supervise`, hidden) in its own session that runs the worker and
//! respawns it when it exits. Everything lives under the work dir:
//!
//! ```text
//! <workdir>/pids/worker-<id>.supervisor.pid   the supervisor
//! <workdir>/pids/worker-<id>.pid              its current worker
//! <workdir>/logs/worker-<id>.log              both their stdout and stderr
//! <workdir>/workers/<id>/                     the worker's scratch dir
//! <workdir>/ops.lock                          held by start-/stop-workers
//! ```
//!
//! | module | what it holds |
//! |---|---|
//! | [`settings`] | flag, else `WQ_*` variable, else default; `~` expansion; where worker i connects |
//! | [`pid_file`] | atomic pid files; is that pid alive, and is it really ours (`/proc/PID/cmdline`) |
//! | [`slots`] | what runs for a role in a work dir, by id: from pid files and from `/proc`; signalling and waiting |
//! | [`supervisor`] | `pilotq supervise`: run, respawn with backoff, stop on SIGTERM; starting one detached |
//! | [`lifecycle`] | for any role: start N supervisors, stop them (drain → TERM → KILL), count |
//! | [`workers`] | the worker role: its settings and command line; `start-`, `stop-`, `count-workers` |
//! | [`foremen`] | the foreman role: its command line; `start-`, `stop-`, `count-foremen` |
//! | [`drain`] | `pilotq drain [--off]` |
//!
//! A role is a [`Role`] variant: its subcommand names its pid files, logs
//! and scratch dirs, and tells our processes from others. Workers and
//! foremen ([`foremen`]: `start-`, `stop-`, `count-foremen`) share the work
//! dir, its `pids/` and `logs/` folders and its lock; a foreman's scratch
//! dir is `foremen/<id>/`, its journal `foremen/<id>/journal`.

pub mod drain;
pub mod foremen;
pub mod lifecycle;
pub mod pid_file;
pub mod settings;
pub mod slots;
pub mod supervisor;
pub mod workers;

use anyhow::{Context, Result};
use std::path::{Path, PathBuf};

/// A kind of process the ops commands start and keep alive.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Role {
    Worker,
    Foreman,
}

impl Role {
    /// The `pilotq` subcommand that runs one process of this role; also the
    /// stem of its pid files and logs.
    pub fn subcommand(self) -> &'static str {
        match self {
            Role::Worker => "worker",
            Role::Foreman => "foreman",
        }
    }

    /// The folder of the work dir holding one scratch dir per id.
    fn scratch_folder(self) -> &'static str {
        match self {
            Role::Worker => "workers",
            Role::Foreman => "foremen",
        }
    }

    /// The child's flag that names its place under [`Layout::scratch`], and
    /// what that place is below the scratch dir: a worker's `--workdir` is
    /// the scratch dir itself, a foreman's `--journal` is `journal` in it.
    fn place_flag(self) -> (&'static str, Option<&'static str>) {
        match self {
            Role::Worker => ("--workdir", None),
            Role::Foreman => ("--journal", Some("journal")),
        }
    }
}

/// The paths of one role's processes under one work dir.
#[derive(Debug, Clone)]
pub struct Layout {
    pub role: Role,
    /// Absolute, so every process spawned from it agrees on the paths (and
    /// on the command lines [`Layout::is_child`] compares).
    pub workdir: PathBuf,
}

impl Layout {
    pub fn new(role: Role, workdir: PathBuf) -> Layout {
        Layout { role, workdir }
    }

    pub fn pids_dir(&self) -> PathBuf {
        self.workdir.join("pids")
    }

    pub fn logs_dir(&self) -> PathBuf {
        self.workdir.join("logs")
    }

    pub fn scratch_root(&self) -> PathBuf {
        self.workdir.join(self.role.scratch_folder())
    }

    pub fn scratch(&self, id: u32) -> PathBuf {
        self.scratch_root().join(id.to_string())
    }

    pub fn supervisor_pid_file(&self, id: u32) -> PathBuf {
        self.pids_dir()
            .join(format!("{}-{id}.supervisor.pid", self.role.subcommand()))
    }

    pub fn child_pid_file(&self, id: u32) -> PathBuf {
        self.pids_dir()
            .join(format!("{}-{id}.pid", self.role.subcommand()))
    }

    pub fn log(&self, id: u32) -> PathBuf {
        self.logs_dir()
            .join(format!("{}-{id}.log", self.role.subcommand()))
    }

    /// The id a pid file in [`Layout::pids_dir`] belongs to, and whether it
    /// is the supervisor's.
    pub fn parse_pid_file_name(&self, name: &str) -> Option<(u32, bool)> {
        let rest = name
            .strip_prefix(self.role.subcommand())?
            .strip_prefix('-')?;
        let (id, supervisor) = match rest.strip_suffix(".supervisor.pid") {
            Some(id) => (id, true),
            None => (rest.strip_suffix(".pid")?, false),
        };
        if id.is_empty() || !id.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        Some((id.parse().ok()?, supervisor))
    }

    /// Where the child of `id` keeps its state: a worker's work dir, a
    /// foreman's journal.
    pub fn place(&self, id: u32) -> PathBuf {
        match self.role.place_flag().1 {
            None => self.scratch(id),
            Some(sub) => self.scratch(id).join(sub),
        }
    }

    /// Whether `argv` is the child of supervisor `id`: `pilotq <role> …
    /// --workdir <scratch(id)> …` (a foreman: `--journal <scratch(id)>/journal`).
    pub fn is_child(&self, argv: &[String], id: u32) -> bool {
        self.child_id(argv) == Some(id)
    }

    /// The id of a child of this layout from its command line.
    pub fn child_id(&self, argv: &[String]) -> Option<u32> {
        if !runs_pilotq(argv, self.role.subcommand()) {
            return None;
        }
        let (flag, sub) = self.role.place_flag();
        let dir = flag_value(argv, flag)?;
        let rel = Path::new(dir).strip_prefix(self.scratch_root()).ok()?;
        let rel = match sub {
            None => rel,
            Some(sub) => match rel.strip_prefix(rel.parent()?) {
                Ok(last) if last == Path::new(sub) => rel.parent()?,
                _ => return None,
            },
        };
        let id = rel.to_str()?;
        if !id.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        id.parse().ok()
    }

    /// The id of a supervisor of this layout from its command line:
    /// `pilotq supervise --role <role> --id <id> --workdir <workdir> …`.
    pub fn supervisor_id(&self, argv: &[String]) -> Option<u32> {
        if !runs_pilotq(argv, "supervise")
            || flag_value(argv, "--role") != Some(self.role.subcommand())
            || flag_value(argv, "--workdir").map(Path::new) != Some(self.workdir.as_path())
        {
            return None;
        }
        flag_value(argv, "--id")?.parse().ok()
    }

    /// Creates the work dir and its folders.
    pub fn create(&self) -> Result<()> {
        for d in [self.pids_dir(), self.logs_dir(), self.scratch_root()] {
            std::fs::create_dir_all(&d)
                .with_context(|| format!("cannot create {}", d.display()))?;
        }
        Ok(())
    }
}

/// `argv[0]` is a `pilotq` binary and `argv[1]` the subcommand. The
/// supervisor execs the path it was given, so `argv[0]` is that path.
fn runs_pilotq(argv: &[String], subcommand: &str) -> bool {
    let exe = argv.first().map(|a| Path::new(a.as_str()));
    let named = exe
        .and_then(Path::file_name)
        .is_some_and(|n| n.to_string_lossy().contains("pilotq"));
    named && argv.get(1).map(String::as_str) == Some(subcommand)
}

/// The argument after the first `flag` (spawned command lines always use
/// the separate form, never `--flag=value`), before any `--`.
fn flag_value<'a>(argv: &'a [String], flag: &str) -> Option<&'a str> {
    let end = argv.iter().position(|a| a == "--").unwrap_or(argv.len());
    let args = &argv[..end];
    let i = args.iter().position(|a| a == flag)?;
    args.get(i + 1).map(String::as_str)
}

/// `ops.lock` in the work dir, held by start- and stop-workers so two of
/// them never pick the same ids or stop what the other starts. An flock:
/// the kernel releases it when the process dies.
pub struct OpsLock {
    _file: std::fs::File,
}

impl OpsLock {
    pub fn take(workdir: &Path) -> Result<OpsLock> {
        use std::os::fd::AsRawFd;
        let path = workdir.join("ops.lock");
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .with_context(|| format!("cannot open {}", path.display()))?;
        let fd = file.as_raw_fd();
        // SAFETY: flock on a descriptor we own for as long as `file` lives.
        if unsafe { libc::flock(fd, libc::LOCK_EX | libc::LOCK_NB) } != 0 {
            eprintln!(
                "waiting for another pilotq start-workers/stop-workers on {}",
                workdir.display()
            );
            // SAFETY: as above, blocking this time.
            if unsafe { libc::flock(fd, libc::LOCK_EX) } != 0 {
                return Err(std::io::Error::last_os_error())
                    .with_context(|| format!("cannot lock {}", path.display()));
            }
        }
        Ok(OpsLock { _file: file })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn argv(s: &str) -> Vec<String> {
        s.split(' ').map(str::to_string).collect()
    }

    fn layout() -> Layout {
        Layout::new(Role::Worker, PathBuf::from("/wd"))
    }

    #[test]
    fn pid_file_names() {
        let l = layout();
        assert_eq!(
            l.supervisor_pid_file(3),
            Path::new("/wd/pids/worker-3.supervisor.pid")
        );
        assert_eq!(l.child_pid_file(3), Path::new("/wd/pids/worker-3.pid"));
        assert_eq!(l.scratch(3), Path::new("/wd/workers/3"));
        assert_eq!(l.parse_pid_file_name("worker-3.pid"), Some((3, false)));
        assert_eq!(
            l.parse_pid_file_name("worker-12.supervisor.pid"),
            Some((12, true))
        );
        for bad in [
            "worker-.pid",
            "worker-x.pid",
            "worker-3.pid.tmp.77",
            "foreman-3.pid",
            "worker-3.supervisor.pid.tmp.1",
            "worker--3.pid",
        ] {
            assert_eq!(l.parse_pid_file_name(bad), None, "{bad}");
        }
    }

    #[test]
    fn tells_our_processes_from_others() {
        let l = layout();
        let w = argv("/usr/bin/pilotq worker --master h:1 --workdir /wd/workers/4 --name h-w4");
        assert_eq!(l.child_id(&w), Some(4));
        assert!(l.is_child(&w, 4));
        assert!(!l.is_child(&w, 5));
        for other in [
            "/usr/bin/pilotq worker --workdir /elsewhere/workers/4",
            "/usr/bin/pilotq worker --workdir /wd/workers/4x",
            "/usr/bin/pilotq master --workdir /wd/workers/4",
            "/usr/bin/sleep worker --workdir /wd/workers/4",
            "/usr/bin/pilotq worker",
            "/usr/bin/pilotq",
        ] {
            assert_eq!(l.child_id(&argv(other)), None, "{other}");
        }
        let s = argv("/x/pilotq supervise --role worker --id 7 --workdir /wd -- /x/pilotq worker --workdir /wd/workers/7");
        assert_eq!(l.supervisor_id(&s), Some(7));
        assert_eq!(l.child_id(&s), None);
        let elsewhere = argv("/x/pilotq supervise --role worker --id 7 --workdir /other --");
        assert_eq!(l.supervisor_id(&elsewhere), None);
        // A flag of the child after `--` is not the supervisor's.
        let hidden = argv("/x/pilotq supervise --role worker -- --id 7 --workdir /wd");
        assert_eq!(l.supervisor_id(&hidden), None);
    }

    #[test]
    fn foremen_are_told_by_their_journal() {
        let l = Layout::new(Role::Foreman, PathBuf::from("/wd"));
        assert_eq!(l.place(2), Path::new("/wd/foremen/2/journal"));
        assert_eq!(l.child_pid_file(2), Path::new("/wd/pids/foreman-2.pid"));
        assert_eq!(
            l.parse_pid_file_name("foreman-2.supervisor.pid"),
            Some((2, true))
        );
        assert_eq!(l.parse_pid_file_name("worker-2.pid"), None);
        let f = argv("/x/pilotq foreman --master m:1 --listen h:9082 --journal /wd/foremen/2/journal --name h-f2");
        assert_eq!(l.child_id(&f), Some(2));
        for other in [
            "/x/pilotq foreman --journal /wd/foremen/2",
            "/x/pilotq foreman --journal /wd/foremen/2/journalx",
            "/x/pilotq foreman --journal /wd/foremen/journal",
            "/x/pilotq foreman --journal /wd/workers/2/journal",
            "/x/pilotq worker --workdir /wd/foremen/2/journal",
            "/x/pilotq foreman --workdir /wd/foremen/2",
        ] {
            assert_eq!(l.child_id(&argv(other)), None, "{other}");
        }
        // Workers of the same work dir are not foremen, and the other way.
        let w = argv("/x/pilotq worker --workdir /wd/workers/2");
        assert_eq!(l.child_id(&w), None);
        assert_eq!(layout().child_id(&f), None);
        let s =
            argv("/x/pilotq supervise --role foreman --id 1 --workdir /wd -- /x/pilotq foreman");
        assert_eq!(l.supervisor_id(&s), Some(1));
        assert_eq!(layout().supervisor_id(&s), None);
    }
}
