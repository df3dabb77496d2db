//! A job's `output` and `error` files are part of its result: a job shown as
//! Completed has exactly its own output in exactly the files it asked for,
//! and nothing else is left beside them.
//!
//! What a user checks, and what each test here checks:
//! - under concurrency (4,000 jobs, `pilotq submit` and `condor_submit` in
//!   one run) every output and error file exists and holds its own job's
//!   text, and no temporary file is left in the output directory (the old
//!   writer gave every job of a cluster one temporary name, so files went
//!   missing or held another job's output);
//! - a file that cannot be written (read-only file system, full disk, a
//!   parent that is a file) holds the job, with the path and the OS error in
//!   its `hold_reason`; the output is not lost (`pilotq output` prints it),
//!   and `pilotq release` writes it once the cause is gone, completing the
//!   job with the exit code it had (the old writer logged a warning and
//!   completed the job, its output gone);
//! - a master killed between writing a result's files and acknowledging the
//!   result (the failpoints `PILOTQ_FAILPOINT=results-files-written` and
//!   `results-journaled`) restarts and completes the job once: one run, one
//!   `JobCompleted`, one output file, no temporary file.
//!
//! The mounts are tmpfs (the tests run as root, where permissions would not
//! stop a write); each is unmounted when its test ends, pass or fail.

use pilotq_tests::serde_json::Value;
use pilotq_tests::{
    event_job, event_kind, Cluster, Finished, Job, MasterOpts, COMPLETED, HELD, REMOVED,
};
use std::collections::{BTreeMap, BTreeSet};
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

// ---------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------

/// A tmpfs mounted on a directory of the test, unmounted (`umount -l`) when
/// dropped, whether the test passed or not. Declare it after the [`Cluster`]
/// so that it is dropped first, before the tempdir is removed.
struct Tmpfs {
    dir: PathBuf,
}

impl Tmpfs {
    /// `mount -t tmpfs -o OPTS tmpfs DIR`, creating DIR.
    fn mount(dir: &Path, opts: &str) -> Tmpfs {
        std::fs::create_dir_all(dir).unwrap_or_else(|e| panic!("mkdir {}: {e}", dir.display()));
        let d = dir.to_str().expect("a UTF-8 path");
        sys(&["mount", "-t", "tmpfs", "-o", opts, "tmpfs", d]);
        Tmpfs {
            dir: dir.to_path_buf(),
        }
    }

    /// `mount -o remount,OPTS DIR`.
    fn remount(&self, opts: &str) {
        let o = format!("remount,{opts}");
        sys(&["mount", "-o", &o, self.dir.to_str().unwrap()]);
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        match Command::new("umount").arg("-l").arg(&self.dir).output() {
            Ok(o) if o.status.success() => {}
            Ok(o) => eprintln!(
                "umount -l {} failed: {}",
                self.dir.display(),
                String::from_utf8_lossy(&o.stderr)
            ),
            Err(e) => eprintln!("cannot run umount -l {}: {e}", self.dir.display()),
        }
    }
}

/// Runs a system command (`mount`…) that must succeed.
fn sys(args: &[&str]) {
    let out = Command::new(args[0])
        .args(&args[1..])
        .output()
        .unwrap_or_else(|e| panic!("cannot run {args:?}: {e}"));
    assert!(
        out.status.success(),
        "{args:?} failed ({}): {}{} (these tests run as root, like CI)",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The names in a directory.
fn names_in(dir: &Path) -> BTreeSet<String> {
    std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()))
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect()
}

fn set(names: &[&str]) -> BTreeSet<String> {
    names.iter().map(|s| s.to_string()).collect()
}

/// A file's text, with the test's logs if it cannot be read.
fn read(c: &Cluster, path: &Path) -> String {
    std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("{}: {e}\n{}", path.display(), c.diag()))
}

fn hold_reason(j: &Job) -> String {
    j.raw["hold_reason"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

/// Waits until job `id` is Held with a reason that `ok` accepts. Fails at
/// once if the job completes instead (its output was not kept) or is
/// removed.
fn wait_held(c: &Cluster, id: &str, what: &str, ok: impl Fn(&str) -> bool) -> Job {
    let jobs = c.wait_until(Duration::from_secs(60), what, |jobs| {
        let Some(j) = jobs.iter().find(|j| j.id == id) else {
            return false;
        };
        if j.status == COMPLETED || j.status == REMOVED {
            panic!(
                "job {id} should be held ({what}) but has status {}: a job whose output \
                 could not be written must not complete\n{:#}\n{}",
                j.status,
                j.raw,
                c.diag()
            );
        }
        j.status == HELD && ok(&hold_reason(j))
    });
    jobs.into_iter().find(|j| j.id == id).unwrap()
}

/// Waits until job `id` is Completed (after a release).
fn wait_completed(c: &Cluster, id: &str) -> Job {
    let jobs = c.wait_until(
        Duration::from_secs(60),
        &format!("job {id} completed (status 4) after its release"),
        |jobs| jobs.iter().any(|j| j.id == id && j.status == COMPLETED),
    );
    jobs.into_iter().find(|j| j.id == id).unwrap()
}

/// `pilotq output [--stderr] JOB`, which must succeed: the kept output.
fn kept_output(c: &Cluster, id: &str, stderr: bool) -> String {
    let mut args = vec!["output"];
    if stderr {
        args.push("--stderr");
    }
    args.push(id);
    c.run_ok(&args).stdout
}

/// Compares two long texts without printing them whole.
fn assert_same_text(got: &str, want: &str, what: &str) {
    if got == want {
        return;
    }
    let at = got
        .bytes()
        .zip(want.bytes())
        .position(|(a, b)| a != b)
        .unwrap_or(got.len().min(want.len()));
    let around = |s: &str| {
        let b = s.as_bytes();
        let (lo, hi) = (at.saturating_sub(20), (at + 40).min(b.len()));
        format!("{:?}", String::from_utf8_lossy(&b[lo..hi]))
    };
    panic!(
        "{what}: {} bytes, expected {}; first difference at byte {at}: got {}, expected {}",
        got.len(),
        want.len(),
        around(got),
        around(want)
    );
}

// ---------------------------------------------------------------------------
// Concurrency
// ---------------------------------------------------------------------------

const NATIVE_JOBS: u32 = 3000;
const CONDOR_JOBS: u32 = 1000;

/// 3,000 `pilotq submit` jobs and 1,000 `condor_submit` jobs on 2 workers ×
/// 2 cores, each writing its number to its own output and error file in one
/// directory: all 8,000 files hold exactly their job's text, and the
/// directory holds nothing else.
#[test]
fn four_thousand_concurrent_jobs_each_write_exactly_their_own_files() {
    // A long lease: a busy debug build on two shared cores must not requeue
    // anything; this test is about the files.
    let mut c = Cluster::with_master(MasterOpts {
        lease: 30.0,
        ..MasterOpts::default()
    });
    c.add_worker("w1", 2);
    c.add_worker("w2", 2);
    c.wait_holders(2, Duration::from_secs(30));
    let t0 = Instant::now();
    let native = c.submit(
        NATIVE_JOBS,
        &[
            "--output",
            "out/o.$(Process)",
            "--error",
            "out/e.$(Process)",
        ],
        &[
            "/bin/sh",
            "-c",
            "echo \"job $0\"; echo \"err $0\" >&2",
            "$(Process)",
        ],
    );
    let condor = c.condor_submit_ok(
        &format!(
            "executable = /bin/sh\n\
             arguments = \"-c 'echo cjob $(Process); echo cerr $(Process) >&2'\"\n\
             output = out/c.$(Process).out\n\
             error = out/c.$(Process).err\n\
             queue {CONDOR_JOBS}\n"
        ),
        CONDOR_JOBS,
    );
    let total = u64::from(NATIVE_JOBS + CONDOR_JOBS);
    wait_completed_count(&c, total, Duration::from_secs(600));
    eprintln!("{total} jobs completed in {:?}", t0.elapsed());

    // Every job completed with exit code 0.
    let jobs = c.jobs();
    assert_eq!(jobs.len() as u64, total, "jobs in the table");
    let in_cluster = |cl: u64| jobs.iter().filter(|j| j.cluster == cl).count();
    assert_eq!(
        in_cluster(native),
        NATIVE_JOBS as usize,
        "jobs of cluster {native}"
    );
    assert_eq!(
        in_cluster(condor),
        CONDOR_JOBS as usize,
        "jobs of cluster {condor}"
    );
    let bad: Vec<&Job> = jobs
        .iter()
        .filter(|j| j.status != COMPLETED || j.exit_code != Some(0))
        .collect();
    assert!(
        bad.is_empty(),
        "{} job(s) not completed with exit code 0, e.g.:\n{}",
        bad.len(),
        bad.iter()
            .take(5)
            .map(|j| j.raw.to_string())
            .collect::<Vec<_>>()
            .join("\n")
    );

    // Every file holds its own job's text.
    let mut want: BTreeMap<String, String> = BTreeMap::new();
    for p in 0..NATIVE_JOBS {
        want.insert(format!("o.{p}"), format!("job {p}\n"));
        want.insert(format!("e.{p}"), format!("err {p}\n"));
    }
    for p in 0..CONDOR_JOBS {
        want.insert(format!("c.{p}.out"), format!("cjob {p}\n"));
        want.insert(format!("c.{p}.err"), format!("cerr {p}\n"));
    }
    let out = c.path("out");
    let mut missing = Vec::new();
    let mut wrong = Vec::new();
    for (name, text) in &want {
        match std::fs::read(out.join(name)) {
            Err(e) => missing.push(format!("{name} ({e})")),
            Ok(got) if got != text.as_bytes() => wrong.push(format!(
                "{name}: {:?}, expected {text:?}",
                String::from_utf8_lossy(&got)
            )),
            Ok(_) => {}
        }
    }
    let present = names_in(&out);
    let extra: Vec<String> = present
        .into_iter()
        .filter(|n| !want.contains_key(n))
        .collect();
    if !(missing.is_empty() && wrong.is_empty() && extra.is_empty()) {
        let some = |v: &[String]| v.iter().take(8).cloned().collect::<Vec<_>>().join("\n  ");
        panic!(
            "of {} expected files in {}: {} missing, {} with the wrong content, \
             and {} unexpected name(s) (temporary files?)\n\
             missing, e.g.:\n  {}\nwrong, e.g.:\n  {}\nunexpected, e.g.:\n  {}\n{}",
            want.len(),
            out.display(),
            missing.len(),
            wrong.len(),
            extra.len(),
            some(&missing),
            some(&wrong),
            some(&extra),
            c.diag()
        );
    }
}

/// Polls `status --json` once a second (a `q --json` of 4,000 jobs five
/// times a second would take a core from the jobs) until `n` jobs are
/// completed; fails at once if any is held or removed.
fn wait_completed_count(c: &Cluster, n: u64, timeout: Duration) {
    let deadline = Instant::now() + timeout;
    let mut last = Value::Null;
    loop {
        let out = c.run(&["status", "--json"]);
        if out.ok() {
            last = pilotq_tests::serde_json::from_str(&out.stdout).unwrap_or(Value::Null);
        }
        let count = |k: &str| last[k].as_u64().unwrap_or(0);
        // Completed and removed jobs leave the queue for the history store:
        // they count wherever they are now.
        let finished = match Finished::from_status(&last) {
            Some(f) => f,
            // No answer yet (the master is starting, say).
            None if last.is_null() => Finished {
                completed: 0,
                removed: 0,
            },
            None => panic!("`status --json` without the history counts: {last}"),
        };
        if count("held") > 0 || finished.removed > 0 {
            let stuck: Vec<String> = c
                .jobs()
                .into_iter()
                .filter(|j| j.status == HELD || j.status == REMOVED)
                .take(5)
                .map(|j| j.raw.to_string())
                .collect();
            panic!(
                "jobs held or removed; these can no longer complete: {last}\ne.g.:\n{}\n{}",
                stuck.join("\n"),
                c.diag()
            );
        }
        if finished.completed == n {
            return;
        }
        if Instant::now() > deadline {
            panic!(
                "timed out after {timeout:?} waiting for {n} completed jobs; last status: {last}\n{}",
                c.diag()
            );
        }
        std::thread::sleep(Duration::from_secs(1));
    }
}

// ---------------------------------------------------------------------------
// Files that cannot be written
// ---------------------------------------------------------------------------

/// The job's output and error go to a read-only file system: the job is
/// held, naming the path and the error; its output is kept and printed by
/// `pilotq output`; once the file system is writable, `pilotq release`
/// writes both files and completes the job with its exit code.
#[test]
fn a_read_only_target_holds_the_job_until_it_is_released() {
    let mut c = Cluster::with_master(MasterOpts::default());
    let fs = Tmpfs::mount(&c.path("ro"), "ro,size=1m");
    let cl = c.submit(
        1,
        &["--output", "ro/o.txt", "--error", "ro/e.txt"],
        &[
            "/bin/sh",
            "-c",
            "echo 'hello from the job'; echo 'a warning' >&2; exit 3",
        ],
    );
    c.add_worker("w", 1);
    let id = format!("{cl}.0");
    let (o, e) = (c.path("ro/o.txt"), c.path("ro/e.txt"));
    let held = wait_held(&c, &id, "held: read-only file system", |r| {
        r.contains("Read-only file system")
    });
    let reason = hold_reason(&held);
    assert!(
        reason.contains(o.to_str().unwrap()) || reason.contains(e.to_str().unwrap()),
        "the hold reason {reason:?} names neither {} nor {}",
        o.display(),
        e.display()
    );
    assert_eq!(kept_output(&c, &id, false), "hello from the job\n");
    assert_eq!(kept_output(&c, &id, true), "a warning\n");

    fs.remount("rw");
    c.run_ok(&["release", &id]);
    let j = wait_completed(&c, &id);
    assert_eq!(j.exit_code, Some(3), "the exit code it had: {:#}", j.raw);
    assert_eq!(
        j.attempts, 1,
        "a release rewrites, it does not rerun: {:#}",
        j.raw
    );
    assert_eq!(read(&c, &o), "hello from the job\n");
    assert_eq!(read(&c, &e), "a warning\n");
    assert_eq!(names_in(&c.path("ro")), set(&["e.txt", "o.txt"]));
}

/// The job prints 228,894 bytes to a 64 KiB file system: held, naming the
/// path and "No space left on device"; `pilotq output` gives back every
/// byte. A release that fails again (the file system now read-only) keeps it
/// held with the new reason; with room, a release completes it and the file
/// is whole, with no partial temporary file left beside it.
#[test]
fn a_full_disk_holds_the_job_and_keeps_its_output_whole() {
    let mut c = Cluster::with_master(MasterOpts::default());
    let fs = Tmpfs::mount(&c.path("small"), "size=64k");
    let cl = c.submit(
        1,
        &["--env", "PATH=/usr/bin:/bin", "--output", "small/o.txt"],
        &["/bin/sh", "-c", "seq 1 40000"],
    );
    let want: String = (1..=40000).map(|i| format!("{i}\n")).collect();
    assert!(want.len() > 200 * 1024);
    c.add_worker("w", 1);
    let id = format!("{cl}.0");
    let o = c.path("small/o.txt");
    let held = wait_held(&c, &id, "held: no space left on device", |r| {
        r.contains("No space left on device")
    });
    let reason = hold_reason(&held);
    assert!(
        reason.contains(o.to_str().unwrap()),
        "the hold reason {reason:?} does not name {}",
        o.display()
    );
    assert_same_text(&kept_output(&c, &id, false), &want, "`pilotq output`");

    // Still failing, for another reason: held again, with that reason.
    fs.remount("ro");
    let again = c.run(&["release", &id]);
    eprintln!("release while read-only:\n{again}");
    let held = wait_held(&c, &id, "held again: read-only file system", |r| {
        r.contains("Read-only file system")
    });
    assert!(
        hold_reason(&held).contains(o.to_str().unwrap()),
        "{:#}",
        held.raw
    );
    assert_same_text(&kept_output(&c, &id, false), &want, "`pilotq output`");

    fs.remount("rw,size=1m");
    c.run_ok(&["release", &id]);
    let j = wait_completed(&c, &id);
    assert_eq!(j.exit_code, Some(0), "{:#}", j.raw);
    assert_eq!(
        j.attempts, 1,
        "a release rewrites, it does not rerun: {:#}",
        j.raw
    );
    assert_same_text(&read(&c, &o), &want, &o.display().to_string());
    assert_eq!(
        names_in(&c.path("small")),
        set(&["o.txt"]),
        "only the output file, no temporary file left by the failed writes"
    );
}

/// The output's parent directory is a regular file: held, naming the path
/// (or the parent in the way) and the error; once it is a directory, a
/// release completes the job.
#[test]
fn a_parent_that_is_a_file_holds_the_job_until_it_is_released() {
    let mut c = Cluster::with_master(MasterOpts::default());
    let blocker = c.path("out/blocker");
    std::fs::write(&blocker, "not a directory\n").unwrap();
    let cl = c.submit(
        1,
        &["--output", "out/blocker/o.txt"],
        &["/bin/sh", "-c", "echo blocked; exit 7"],
    );
    c.add_worker("w", 1);
    let id = format!("{cl}.0");
    let o = c.path("out/blocker/o.txt");
    let held = wait_held(&c, &id, "held: the output's parent is a file", |r| {
        r.contains("Not a directory") || r.contains("File exists")
    });
    // The file's path, or the parent's that is in the way.
    assert!(
        hold_reason(&held).contains(blocker.to_str().unwrap()),
        "the hold reason names neither {} nor its parent: {:#}",
        o.display(),
        held.raw
    );
    assert_eq!(kept_output(&c, &id, false), "blocked\n");

    std::fs::remove_file(&blocker).unwrap();
    std::fs::create_dir(&blocker).unwrap();
    c.run_ok(&["release", &id]);
    let j = wait_completed(&c, &id);
    assert_eq!((j.exit_code, j.attempts), (Some(7), 1), "{:#}", j.raw);
    assert_eq!(read(&c, &o), "blocked\n");
    assert_eq!(names_in(&blocker), set(&["o.txt"]));
}

// ---------------------------------------------------------------------------
// A master killed between a result and its acknowledgement
// ---------------------------------------------------------------------------

#[test]
fn master_killed_after_the_files_are_written_completes_the_job_once() {
    killed_between_result_and_ack("results-files-written", 0);
}

#[test]
fn master_killed_after_the_completion_is_journaled_completes_the_job_once() {
    killed_between_result_and_ack("results-journaled", 1);
}

/// One job on one worker; the master SIGKILLs itself at `failpoint` while
/// handling its result (when the journal holds `completions_at_death`
/// `JobCompleted`s for it) and is restarted without the failpoint. The job
/// ran once, completed once, and its output file is there once, whole.
fn killed_between_result_and_ack(failpoint: &str, completions_at_death: usize) {
    let mut c = Cluster::with_master(MasterOpts {
        lease: 8.0,
        fixed_port: true,
        env: vec![("PILOTQ_FAILPOINT".into(), failpoint.into())],
        ..MasterOpts::default()
    });
    let runs = c.path("runs");
    let script = format!(
        "echo run >> {}.$0; echo \"the result of $0\"",
        runs.display()
    );
    let cl = c.submit(
        1,
        &["--output", "out/o.$(Process)"],
        &["/bin/sh", "-c", &script, "$(Process)"],
    );
    let id = format!("{cl}.0");
    c.add_worker("w", 1);

    let status = wait_master_death(&mut c, failpoint, &id);
    assert_eq!(
        status.signal(),
        Some(libc::SIGKILL),
        "the master should SIGKILL itself at {failpoint}: {status}\n{}",
        c.diag()
    );
    c.kill_master(); // forgets the dead one
    let out = c.path("out");
    let o = out.join("o.0");
    assert_eq!(
        read(&c, &o),
        "the result of 0\n",
        "the files are written before {failpoint}"
    );
    assert_eq!(
        completions(&c, &id),
        completions_at_death,
        "JobCompleted events for {id} in the journal when the master died at {failpoint}"
    );

    c.opts.env.clear();
    c.restart_master();
    let jobs = c.wait_all_completed(Duration::from_secs(60));
    let j = jobs.iter().find(|j| j.id == id).expect("the job");
    assert_eq!(
        (j.exit_code, j.attempts),
        (Some(0), 1),
        "completed once, at its first attempt: {:#}",
        j.raw
    );
    assert_eq!(read(&c, &o), "the result of 0\n");
    assert_eq!(
        names_in(&out),
        set(&["o.0"]),
        "only the output file in {}, no temporary file",
        out.display()
    );
    assert_eq!(
        read(&c, &c.path("runs.0")),
        "run\n",
        "the job ran exactly once"
    );

    let status = c.stop_master();
    assert!(status.success(), "master exit after SIGTERM: {status}");
    assert_eq!(completions(&c, &id), 1, "JobCompleted events for {id}");
}

/// Waits for the master to exit by itself (at the failpoint). Fails early if
/// the job is shown completed for 5 s while the master lives on (a master
/// that ignores `PILOTQ_FAILPOINT`).
fn wait_master_death(c: &mut Cluster, failpoint: &str, id: &str) -> std::process::ExitStatus {
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut completed_since: Option<Instant> = None;
    loop {
        let m = c.master.as_mut().expect("a master");
        if let Some(s) = m.proc.wait_exit(Duration::from_millis(500)) {
            return s;
        }
        // A completed job leaves the queue for the history store: looked
        // for in both (a master that is dying counts as "not shown").
        let shown = c.try_q_json_ids(&[id]).unwrap_or_default();
        if shown.first().is_some_and(|j| j["status"] == COMPLETED) {
            let since = *completed_since.get_or_insert_with(Instant::now);
            if since.elapsed() > Duration::from_secs(5) {
                panic!(
                    "job {id} completed and the master is still running: it did not kill \
                     itself at PILOTQ_FAILPOINT={failpoint}\n{}\n{}",
                    pilotq_tests::compact(&shown),
                    c.diag()
                );
            }
        }
        if Instant::now() > deadline {
            panic!(
                "the master did not kill itself at PILOTQ_FAILPOINT={failpoint} within 60 s\n{}",
                c.diag()
            );
        }
    }
}

/// `JobCompleted` events for `id` in the journal (the master must be down).
fn completions(c: &Cluster, id: &str) -> usize {
    c.journal_events()
        .iter()
        .map(event_kind)
        .filter(|(kind, body)| *kind == "JobCompleted" && event_job(body).as_deref() == Some(id))
        .count()
}
