//! Starting, stopping and counting the supervised processes of one role —
//! the same for every role; what a role's child runs is its caller's
//! business (see [`super::workers`]).

use super::{drain, pid_file, slots, supervisor, Layout, OpsLock, Role};
use anyhow::{bail, Context, Result};
use std::collections::{BTreeMap, BTreeSet};
use std::ffi::OsString;
use std::path::Path;
use std::time::{Duration, Instant};

/// How long `start` waits for every child to be up.
const START_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a child must stay up for `start` to call it started: a child
/// that rejects its options is gone well within this.
const SETTLE: Duration = Duration::from_millis(500);
/// How long `stop` waits after SIGTERM: the supervisors' own grace before
/// they SIGKILL their children, and a margin.
const TERM_WAIT: Duration = Duration::from_secs(supervisor::DEFAULT_GRACE.as_secs() + 2);
/// How long `stop` waits after SIGKILL.
const KILL_WAIT: Duration = Duration::from_secs(5);
const POLL: Duration = Duration::from_millis(200);

/// What `start` needs besides the layout.
pub struct StartPlan<'a> {
    pub count: u32,
    pub drain_file: &'a Path,
    pub no_respawn: bool,
    /// The child's command line for an id, starting with its executable.
    pub child: &'a dyn Fn(u32) -> Vec<OsString>,
    /// What to say about an id's child ("→ host:port").
    pub describe: &'a dyn Fn(u32) -> String,
}

/// The `count` lowest ids not in `used`.
pub fn free_ids(used: &BTreeSet<u32>, count: u32) -> Vec<u32> {
    (0..)
        .filter(|i| !used.contains(i))
        .take(count as usize)
        .collect()
}

/// Creates the work dir and returns it canonical: supervisors and
/// children are told absolute paths, and `count`/`stop` recognise them by
/// those paths, so one spelling must be used every time.
pub fn create_workdir(layout: &Layout) -> Result<Layout> {
    layout.create()?;
    let canonical = std::fs::canonicalize(&layout.workdir)
        .with_context(|| format!("cannot resolve {}", layout.workdir.display()))?;
    Ok(Layout::new(layout.role, canonical))
}

/// The work dir of an existing layout, canonical, or `None` if there is
/// none (then nothing of ours can run there).
fn existing(layout: &Layout) -> Option<Layout> {
    let canonical = std::fs::canonicalize(&layout.workdir).ok()?;
    Some(Layout::new(layout.role, canonical))
}

/// Starts `plan.count` supervisors, detached, on the lowest free ids, and
/// waits until each one's child runs. Exit code 1 if one did not come up.
/// `layout` comes from [`create_workdir`].
pub fn start(layout: &Layout, plan: &StartPlan) -> Result<i32> {
    let role = layout.role.subcommand();
    if plan.drain_file.exists() {
        bail!(
            "the drain file {} exists: {role}s would exit at once; lift it with `pilotq drain --off`",
            plan.drain_file.display()
        );
    }
    let exe = std::env::current_exe().context("cannot find the pilotq executable")?;
    let _lock = OpsLock::take(&layout.workdir)?;
    let used: BTreeSet<u32> = slots::running(layout).into_keys().collect();
    let mut starting = Vec::new();
    for id in free_ids(&used, plan.count) {
        let mut args: Vec<OsString> = vec![
            "--role".into(),
            role.into(),
            "--id".into(),
            id.to_string().into(),
            "--workdir".into(),
            layout.workdir.clone().into(),
            "--drain-file".into(),
            plan.drain_file.into(),
        ];
        if plan.no_respawn {
            args.push("--no-respawn".into());
        }
        args.push("--".into());
        args.extend((plan.child)(id));
        let sup = supervisor::spawn_detached(&exe, &args, &layout.log(id), &layout.workdir)?;
        starting.push((id, sup));
    }

    // Each child's pid file, or its supervisor's end.
    let deadline = Instant::now() + START_TIMEOUT;
    let mut up: BTreeMap<u32, (u32, i32)> = BTreeMap::new();
    let mut failed: Vec<(u32, String)> = Vec::new();
    while !starting.is_empty() {
        starting.retain_mut(|(id, sup)| {
            if let Some(pid) =
                pid_file::live(&layout.child_pid_file(*id), |a| layout.is_child(a, *id))
            {
                up.insert(*id, (sup.id(), pid));
                return false;
            }
            match sup.try_wait() {
                Ok(None) => true,
                Ok(Some(status)) => {
                    failed.push((*id, format!("its supervisor exited ({status})")));
                    false
                }
                Err(e) => {
                    failed.push((*id, format!("cannot watch its supervisor: {e}")));
                    false
                }
            }
        });
        if Instant::now() > deadline {
            for (id, sup) in &starting {
                failed.push((
                    *id,
                    format!(
                        "not running after {} s; its supervisor (pid {}) keeps trying",
                        START_TIMEOUT.as_secs(),
                        sup.id()
                    ),
                ));
            }
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    if !up.is_empty() {
        std::thread::sleep(SETTLE);
    }
    for (id, (sup, pid)) in &up {
        if pid_file::alive(*pid) {
            println!(
                "{role} {id}: pid {pid} {} (supervisor {sup})",
                (plan.describe)(*id)
            );
        } else {
            eprintln!(
                "warning: {role} {id} (pid {pid}) exited right after starting; {}\n{}",
                if plan.no_respawn {
                    "it is not respawned"
                } else {
                    "its supervisor respawns it with backoff"
                },
                log_tail(&layout.log(*id), 5)
            );
        }
    }
    for (id, why) in &failed {
        eprintln!(
            "{role} {id} did not start: {why}\n{}",
            log_tail(&layout.log(*id), 5)
        );
    }
    println!(
        "started {} {role}(s) in {}; logs in {}",
        up.len(),
        layout.workdir.display(),
        layout.logs_dir().display()
    );
    Ok(if failed.is_empty() { 0 } else { 1 })
}

fn log_tail(log: &Path, n: usize) -> String {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    let tail = lines[lines.len().saturating_sub(n)..].join("\n  ");
    format!("  (last lines of {})\n  {tail}", log.display())
}

/// The number of live children, by their pid files (stale ones removed).
pub fn count(layout: &Layout) -> usize {
    match existing(layout) {
        None => 0,
        Some(layout) => slots::from_pid_files(&layout)
            .values()
            .map(|s| s.children.len())
            .sum(),
    }
}

/// How `stop` ended, id by id.
#[derive(Debug, Default)]
pub struct Stopped {
    /// Left on their own while the drain file was there.
    pub drained: BTreeSet<u32>,
    /// Gone after SIGTERM.
    pub terminated: BTreeSet<u32>,
    /// Needed SIGKILL.
    pub killed: BTreeSet<u32>,
    /// Still there after SIGKILL (stuck in the kernel).
    pub survivors: BTreeSet<u32>,
    /// Leftover job processes of SIGKILLed children.
    pub jobs_killed: usize,
}

impl Stopped {
    pub fn total(&self) -> usize {
        self.drained.len() + self.terminated.len() + self.killed.len() + self.survivors.len()
    }

    /// "stopped 4 workers (2 drained, 2 terminated)".
    pub fn summary(&self, role: &str) -> String {
        let mut parts = vec![
            format!("{} drained", self.drained.len()),
            format!("{} terminated", self.terminated.len()),
        ];
        if !self.killed.is_empty() {
            parts.push(format!("{} killed", self.killed.len()));
        }
        if self.jobs_killed > 0 {
            parts.push(format!(
                "{} leftover job process(es) killed",
                self.jobs_killed
            ));
        }
        let n = self.total() - self.survivors.len();
        let mut s = format!("stopped {n} {role}{} ({})", plural(n), parts.join(", "));
        if !self.survivors.is_empty() {
            s.push_str(&format!(
                "; {} still running after SIGKILL: ids {:?}",
                self.survivors.len(),
                self.survivors
            ));
        }
        s
    }
}

fn plural(n: usize) -> &'static str {
    if n == 1 {
        ""
    } else {
        "s"
    }
}

/// Stops every supervised process of the layout: the drain file first, so
/// children finish their jobs and supervisors do not respawn them; after
/// `grace`, SIGTERM to what is left; after [`TERM_WAIT`], SIGKILL. Then
/// removes the drain file if it made it, the pid files and the scratch
/// dirs.
pub fn stop(layout: &Layout, drain_file: &Path, grace: Duration) -> Result<Stopped> {
    stop_when(layout, drain_file, grace, &|| false)
}

/// [`stop`], but the wait for the drain ends early, and SIGTERM follows at
/// once, when `drained` says so (foremen, which do not leave on their own:
/// once their workers are gone).
pub fn stop_when(
    layout: &Layout,
    drain_file: &Path,
    grace: Duration,
    drained: &dyn Fn() -> bool,
) -> Result<Stopped> {
    let mut done = Stopped::default();
    let Some(layout) = existing(layout) else {
        return Ok(done);
    };
    let role = layout.role.subcommand();
    let _lock = OpsLock::take(&layout.workdir)?;
    let ids: BTreeSet<u32> = slots::running(&layout).into_keys().collect();
    if ids.is_empty() {
        clean(&layout, &BTreeSet::new());
        return Ok(done);
    }

    let created = drain::create(drain_file)?;
    println!(
        "drain file {} {}; waiting up to {} s for {} {role}(s) to finish their jobs",
        drain_file.display(),
        if created { "created" } else { "already there" },
        grace.as_secs_f64(),
        ids.len()
    );
    escalate(&layout, &ids, grace, drained, &mut done);
    if created {
        drain::remove(drain_file)?;
    }
    clean(&layout, &done.survivors);
    Ok(done)
}

/// Waits `grace` (or until `drained`) for `ids` to leave on their own,
/// then SIGTERMs what is left and waits [`TERM_WAIT`], then SIGKILLs.
fn escalate(
    layout: &Layout,
    ids: &BTreeSet<u32>,
    grace: Duration,
    drained: &dyn Fn() -> bool,
    done: &mut Stopped,
) {
    let mut left = wait_gone_or(layout, ids, grace, drained, &mut done.drained);
    if left.is_empty() {
        return;
    }
    signal(layout, &left, libc::SIGTERM);
    left = wait_gone(layout, &left, TERM_WAIT, &mut done.terminated);
    if left.is_empty() {
        return;
    }
    // Looked up afresh each pass: a supervisor may have started a child
    // just before it was killed.
    for _ in 0..3 {
        signal(layout, &left, libc::SIGKILL);
        left = wait_gone(layout, &left, KILL_WAIT / 3, &mut done.killed);
        if left.is_empty() {
            break;
        }
    }
    done.survivors = left;
    // A SIGKILLed child could not stop its jobs, and their sandboxes are
    // about to go.
    for pid in slots::processes_inside(&layout.scratch_root()) {
        if pid_file::signal(pid, libc::SIGKILL) {
            done.jobs_killed += 1;
        }
    }
}

/// Polls until none of `ids` has a live process or `timeout` passes; the
/// ids that went are added to `gone`; returns those still there.
fn wait_gone(
    layout: &Layout,
    ids: &BTreeSet<u32>,
    timeout: Duration,
    gone: &mut BTreeSet<u32>,
) -> BTreeSet<u32> {
    wait_gone_or(layout, ids, timeout, &|| false, gone)
}

/// [`wait_gone`], ending early when `enough` says so.
fn wait_gone_or(
    layout: &Layout,
    ids: &BTreeSet<u32>,
    timeout: Duration,
    enough: &dyn Fn() -> bool,
    gone: &mut BTreeSet<u32>,
) -> BTreeSet<u32> {
    let deadline = Instant::now() + timeout;
    loop {
        let slots = slots::running(layout);
        let left: BTreeSet<u32> = ids
            .iter()
            .copied()
            .filter(|id| slots.get(id).is_some_and(|s| !s.is_empty()))
            .collect();
        if left.is_empty() || Instant::now() >= deadline || enough() {
            gone.extend(ids.difference(&left));
            return left;
        }
        std::thread::sleep(POLL);
    }
}

/// Signals every process of `ids`, supervisors before their children.
fn signal(layout: &Layout, ids: &BTreeSet<u32>, sig: i32) {
    let slots = slots::running(layout);
    for id in ids {
        if let Some(s) = slots.get(id) {
            for pid in s.supervisors.iter().chain(&s.children) {
                pid_file::signal(*pid, sig);
            }
        }
    }
}

/// Removes the pid files and scratch dirs of every id but `keep`.
fn clean(layout: &Layout, keep: &BTreeSet<u32>) {
    if let Ok(dir) = std::fs::read_dir(layout.pids_dir()) {
        for e in dir.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if let Some((id, _)) = layout.parse_pid_file_name(&name) {
                if !keep.contains(&id) {
                    pid_file::remove(&e.path());
                }
            }
        }
    }
    // A foreman's directory holds its journal: results it has not yet passed
    // to the master (which may be down) live there. Never delete it.
    if layout.role == Role::Foreman {
        return;
    }
    if let Ok(dir) = std::fs::read_dir(layout.scratch_root()) {
        for e in dir.flatten() {
            let id = e.file_name().to_str().and_then(|n| n.parse::<u32>().ok());
            if id.is_some_and(|id| !keep.contains(&id)) {
                remove_tree(&e.path());
            }
        }
    }
}

fn remove_tree(p: &Path) {
    if let Err(e) = std::fs::remove_dir_all(p) {
        if e.kind() != std::io::ErrorKind::NotFound {
            eprintln!("warning: cannot remove {}: {e}", p.display());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_ids_fill_the_gaps_first() {
        let used: BTreeSet<u32> = [0, 1, 3, 6].into();
        assert_eq!(free_ids(&used, 4), [2, 4, 5, 7]);
        assert_eq!(free_ids(&BTreeSet::new(), 3), [0, 1, 2]);
        assert!(free_ids(&used, 0).is_empty());
    }

    #[test]
    fn the_summary_says_what_happened() {
        let mut s = Stopped {
            drained: [0, 1].into(),
            terminated: [2, 3].into(),
            ..Stopped::default()
        };
        assert_eq!(
            s.summary("worker"),
            "stopped 4 workers (2 drained, 2 terminated)"
        );
        s.killed = [4].into();
        s.jobs_killed = 2;
        assert_eq!(
            s.summary("worker"),
            "stopped 5 workers (2 drained, 2 terminated, 1 killed, 2 leftover job process(es) killed)"
        );
        let one = Stopped {
            terminated: [0].into(),
            ..Stopped::default()
        };
        assert_eq!(
            one.summary("worker"),
            "stopped 1 worker (0 drained, 1 terminated)"
        );
    }
}
