//! A full disk survived. The master's and a foreman's journals sit on a small
//! tmpfs of their own, which the tests fill. `--min-free-disk SIZE` (bytes,
//! or K, M, G for KiB, MiB, GiB; `0` turns the check off; by default 1 GiB
//! or 5 % of the journal's filesystem, whichever is smaller) is the floor:
//!
//! * below it a master refuses new submissions, with one error line naming
//!   the journal's path and its free space, but goes on journaling
//!   dispatches and results, so that what was submitted still runs and
//!   completes;
//! * a master restarted below it, even on a disk so full that sled cannot
//!   grow its files by a byte, comes up, answers `q` and `status`, refuses
//!   submissions and holders, and does not exit; its workers keep running
//!   their jobs and retry;
//! * a foreman below its floor takes no new jobs from upstream while its
//!   running ones finish, and restarted on a full disk it stays up;
//! * both look at their disk about every second and resume by themselves
//!   when space returns: submissions accepted, holders back, results
//!   delivered, new jobs run, and every job has run exactly once.
//!
//! Why: a filled disk used to make the journal writer fail, and the master
//! exit (status 70) so that a restart would replay what is durable; restarted
//! on the same full disk it could not even open sled, so a supervisor
//! crash-looped it while its workers' results had nowhere to go. (Opening
//! sled 0.34 writes: after a crash it zero-fills the rest of the log's last
//! segment, up to 512 KiB, and fails with ENOSPC when that does not fit. A
//! disk that is merely below the floor hides this; one filled to the last
//! byte does not.)
//!
//! Mounting a tmpfs needs root (CI runs the tests as root). Every mount is
//! lazily unmounted when its test ends, passed or failed ([`Tmpfs`]'s drop).
//! Leases are long (30 s) so that nothing in these tests is requeued by a
//! lease running out while a holder is refused: the tests are about the
//! disk, not about the reclaim window.

use pilotq_tests::logged_jobs::{
    assert_each_completed_once, assert_each_ran_once, logged, logged_job,
};
use pilotq_tests::{
    free_port, run_with_timeout, Cluster, Job, MasterOpts, Out, COMPLETED, IDLE, RUNNING,
};
use std::collections::BTreeSet;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

const MIB: u64 = 1 << 20;
/// The size of each test's tmpfs.
const DISK_MIB: u64 = 32;
/// The floor the tests set, and the same in bytes.
const FLOOR: &str = "8M";
const FLOOR_BYTES: u64 = 8 * MIB;
/// Free space left "below the floor": under it, but room enough for sled to
/// journal the results and dispatches of a few jobs (they take kilobytes).
const LOW_FREE: u64 = 4 * MIB;
/// The master's (and the foreman's) lease; see the module doc.
const LEASE: f64 = 30.0;
/// How long a process must stay up on a full disk to count as "not exiting".
const STAY_UP: Duration = Duration::from_secs(6);
/// How long after space returns a submission must be accepted (the disk is
/// looked at about every second).
const RESUME_WITHIN: Duration = Duration::from_secs(10);

/// A tmpfs of its own, mounted on a directory of a test's tempdir, and
/// unmounted (`umount -l`) when dropped, whether the test passed or not.
/// Declare it after the [`Cluster`] so that it is dropped first: the
/// cluster's tempdir can then be removed.
struct Tmpfs {
    dir: PathBuf,
}

impl Tmpfs {
    /// `mount -t tmpfs -o size=<mib>m tmpfs DIR` (creating DIR), checked.
    fn mount(dir: &Path, mib: u64) -> Tmpfs {
        std::fs::create_dir_all(dir)
            .unwrap_or_else(|e| panic!("creating the mount point {}: {e}", dir.display()));
        let size = format!("size={mib}m");
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &size, "tmpfs"])
            .arg(dir)
            .output()
            .unwrap_or_else(|e| {
                panic!(
                    "cannot run `mount` to put a {mib} MiB tmpfs on {}: {e}",
                    dir.display()
                )
            });
        if !out.status.success() {
            panic!(
                "`mount -t tmpfs -o {size} tmpfs {}` failed ({}): {}\n\
                 these tests fill a small filesystem of their own and must run as root \
                 (CAP_SYS_ADMIN), as CI does",
                dir.display(),
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        // From here on the guard unmounts it, whatever happens next.
        let t = Tmpfs {
            dir: dir.to_path_buf(),
        };
        let (total, free) = (t.total(), t.free());
        assert!(
            total == mib * MIB && free + MIB > total,
            "{} after mounting a {mib} MiB tmpfs on it: {total} bytes in all, {free} free",
            dir.display()
        );
        t
    }

    /// statvfs(2) on the mount: (free bytes for unprivileged users, size).
    fn statvfs(&self) -> (u64, u64) {
        let c = std::ffi::CString::new(self.dir.as_os_str().as_encoded_bytes())
            .expect("a path without NUL");
        // SAFETY: statvfs writes into the zeroed struct we pass; the path is
        // a valid C string for the duration of the call.
        unsafe {
            let mut s: libc::statvfs = std::mem::zeroed();
            if libc::statvfs(c.as_ptr(), &mut s) != 0 {
                panic!(
                    "statvfs {}: {}",
                    self.dir.display(),
                    std::io::Error::last_os_error()
                );
            }
            let frsize = s.f_frsize as u64;
            (s.f_bavail as u64 * frsize, s.f_blocks as u64 * frsize)
        }
    }

    /// Free bytes, as a master would count them.
    fn free(&self) -> u64 {
        self.statvfs().0
    }

    fn total(&self) -> u64 {
        self.statvfs().1
    }

    /// Writes a filler file `name` at the top of the mount, leaving about
    /// `leave` bytes free (less, if someone writes meanwhile).
    fn fill_leaving(&self, name: &str, leave: u64) -> PathBuf {
        let path = self.dir.join(name);
        let free = self.free();
        assert!(
            free > leave + MIB,
            "{} has {free} bytes free, cannot leave {leave}",
            self.dir.display()
        );
        let mut f = std::fs::File::create(&path)
            .unwrap_or_else(|e| panic!("creating {}: {e}", path.display()));
        let chunk = vec![0u8; MIB as usize];
        let mut left = free - leave;
        while left > 0 {
            let n = left.min(MIB) as usize;
            f.write_all(&chunk[..n])
                .unwrap_or_else(|e| panic!("writing {}: {e}", path.display()));
            left -= n as u64;
        }
        let now = self.free();
        assert!(
            now <= leave && now + MIB > leave,
            "after writing {} the tmpfs has {now} bytes free, wanted about {leave}",
            path.display()
        );
        path
    }

    /// Writes a filler file `name` until the filesystem has not one byte
    /// left (ENOSPC on a write of one byte), and checks that statvfs agrees.
    fn fill_completely(&self, name: &str) -> PathBuf {
        let path = self.dir.join(name);
        let mut f = std::fs::File::create(&path)
            .unwrap_or_else(|e| panic!("creating {}: {e}", path.display()));
        for size in [MIB as usize, 4096, 1] {
            let chunk = vec![0u8; size];
            loop {
                match f.write(&chunk) {
                    Ok(0) => break,
                    Ok(_) => {}
                    Err(e) if e.raw_os_error() == Some(libc::ENOSPC) => break,
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                    Err(e) => panic!("filling {}: {e}", path.display()),
                }
            }
        }
        let free = self.free();
        assert_eq!(
            free,
            0,
            "{} was written until ENOSPC, yet statvfs counts {free} bytes free",
            path.display()
        );
        path
    }

    /// Deletes a filler: the space comes back at once.
    fn remove(&self, filler: &Path) {
        std::fs::remove_file(filler)
            .unwrap_or_else(|e| panic!("removing {}: {e}", filler.display()));
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        // A failed test kept with PILOTQ_TEST_KEEP=1 keeps the journals too
        // (not the fillers): copied next to the mount point before it goes.
        if std::thread::panicking() && std::env::var_os("PILOTQ_TEST_KEEP").is_some() {
            let kept = self.dir.with_extension("kept");
            let _ = std::fs::create_dir_all(&kept);
            if let Ok(entries) = std::fs::read_dir(&self.dir) {
                for e in entries.flatten() {
                    if !e.file_name().to_string_lossy().starts_with("filler") {
                        let _ = Command::new("cp")
                            .arg("-a")
                            .arg(e.path())
                            .arg(&kept)
                            .status();
                    }
                }
            }
        }
        match Command::new("umount").arg("-l").arg(&self.dir).output() {
            Ok(o) if o.status.success() => {}
            Ok(o) => eprintln!(
                "umount -l {} failed ({}): {}",
                self.dir.display(),
                o.status,
                String::from_utf8_lossy(&o.stderr).trim()
            ),
            Err(e) => eprintln!("cannot run umount -l {}: {e}", self.dir.display()),
        }
    }
}

/// What is wrong with `out` as the refusal of a submission for want of disk
/// space: it must fail, print nothing on stdout, and print one error line
/// that names `journal` and states its free space (the word "free" and a
/// number besides those in the path).
fn refusal_problem(out: &Out, journal: &Path) -> Option<String> {
    if out.ok() {
        return Some("the submission was accepted".into());
    }
    if !out.stdout.trim().is_empty() {
        return Some("a refused submission printed something on stdout".into());
    }
    let lines: Vec<&str> = out
        .stderr
        .lines()
        .filter(|l| !l.trim().is_empty())
        .collect();
    let [line] = lines.as_slice() else {
        return Some(format!(
            "expected one error line on stderr, got {}",
            lines.len()
        ));
    };
    let j = journal.display().to_string();
    if !line.contains(&j) {
        return Some(format!("the error line does not name the journal {j}"));
    }
    let rest = line.replace(&j, "");
    if !rest.to_lowercase().contains("free") || !rest.chars().any(|c| c.is_ascii_digit()) {
        return Some("the error line does not state the free space (\"free\" and a number)".into());
    }
    None
}

/// `pilotq submit` of one job, which must be refused for the disk (see
/// [`refusal_problem`]) and leave the table at `jobs` jobs.
fn assert_submit_refused(c: &Cluster, journal: &Path, jobs: usize, when: &str) {
    let out = c.run(&["submit", "--count", "1", "--", "/bin/true"]);
    if let Some(why) = refusal_problem(&out, journal) {
        panic!(
            "{when}, a submission must be refused for the disk: {why}\n{out}\n{}",
            c.diag()
        );
    }
    let n = c.q_json().len();
    assert_eq!(
        n,
        jobs,
        "{when}: the table has {n} jobs after a refused submission, {jobs} before\n{}",
        c.diag()
    );
}

/// Submits `count` jobs of `cmd` again and again (every 300 ms, each try
/// refused) until one is accepted, within [`RESUME_WITHIN`]: space has
/// returned. Returns the cluster id.
fn submit_when_accepted(c: &Cluster, count: u32, cmd: &[&str], when: &str) -> u64 {
    let n = count.to_string();
    let mut args = vec![
        "submit",
        "--count",
        &n,
        "--output",
        "out/$(Cluster).$(Process).out",
        "--",
    ];
    args.extend_from_slice(cmd);
    let start = Instant::now();
    loop {
        let out = c.run(&args);
        if out.ok() {
            return pilotq_tests::parse_submit(&out.stdout, count)
                .unwrap_or_else(|e| panic!("{e}\n{out}"));
        }
        if start.elapsed() > RESUME_WITHIN {
            panic!(
                "{when}, submissions were still refused {RESUME_WITHIN:?} later \
                 (the disk is to be looked at about every second)\nlast try:\n{out}\n{}",
                c.diag()
            );
        }
        std::thread::sleep(Duration::from_millis(300));
    }
}

/// Idle jobs out at no holder: still the master's to dispatch (a job
/// assigned to a holder but not yet started also shows as idle, with it).
fn idle_at_master(jobs: &[Job]) -> Vec<&Job> {
    jobs.iter()
        .filter(|j| j.status == IDLE && j.holder.is_none())
        .collect()
}

fn running(jobs: &[Job]) -> usize {
    jobs.iter().filter(|j| j.status == RUNNING).count()
}

/// Fails the test unless the master is still running.
fn assert_master_up(c: &mut Cluster, when: &str) {
    let up = c.master.as_mut().is_some_and(|m| m.proc.running());
    if !up {
        panic!("{when}, the master exited\n{}", c.diag());
    }
}

#[test]
fn a_master_below_its_floor_refuses_submissions_survives_a_full_disk_and_resumes_by_itself() {
    let mut c = Cluster::new();
    let disk = Tmpfs::mount(&c.path("disk"), DISK_MIB);
    // The journal in a directory of the tmpfs: the fillers go beside it.
    c.journal = c.path("disk/journal");
    let journal = c.journal.clone();
    c.opts = MasterOpts {
        lease: LEASE,
        heartbeat: 1.0,
        fixed_port: true,
        extra: vec!["--min-free-disk".into(), FLOOR.into()],
        ..MasterOpts::default()
    };
    c.start_master();
    // One core each, queues of two: four jobs out at once, one running on
    // each worker and one waiting behind it.
    c.add_worker("a", 1);
    c.add_worker("b", 1);
    c.wait_holders(2, Duration::from_secs(30));
    let log = c.path("runs.log");
    let output = ["--output", "out/$(Cluster).$(Process).out"];

    // 1. Below the floor, live: six jobs of 3 s, two running, two queued on
    // the workers and two still the master's, which it must dispatch (and
    // journal) after the disk is low.
    let first = c.submit(6, &output, &["/bin/sh", "-c", &logged_job(&log, "3")]);
    c.wait_until(
        Duration::from_secs(20),
        "two jobs running, two queued on the workers, two idle at the master",
        |jobs| jobs.len() == 6 && running(jobs) == 2 && idle_at_master(jobs).len() == 2,
    );
    let low = disk.fill_leaving("filler-low", LOW_FREE);
    assert!(disk.free() < FLOOR_BYTES);
    // Looked at about every second.
    std::thread::sleep(Duration::from_millis(2500));
    assert_submit_refused(&c, &journal, 6, "with the journal's disk below the floor");
    let jobs = c.wait_all_completed(Duration::from_secs(60));
    assert_each_completed_once(&c, &jobs, 6);
    assert!(jobs.iter().all(|j| j.cluster == first));
    assert_master_up(&mut c, "below the floor");
    assert_submit_refused(
        &c,
        &journal,
        6,
        "with the disk still below the floor after the jobs completed",
    );

    // 2. Space returns: accepted again without a restart. Two jobs of 8 s,
    // one on each worker, to be running across the crash below.
    disk.remove(&low);
    let second = submit_when_accepted(
        &c,
        2,
        &["/bin/sh", "-c", &logged_job(&log, "8")],
        "after the filler below the floor was deleted",
    );
    c.wait_until(
        Duration::from_secs(20),
        "both jobs of the second cluster running, one on each worker",
        |jobs| {
            let on = |w: &str| {
                jobs.iter()
                    .filter(|j| {
                        j.cluster == second && j.status == RUNNING && j.holder.as_deref() == Some(w)
                    })
                    .count()
            };
            on("a") == 1 && on("b") == 1
        },
    );

    // 3. Crash, the disk full to the last byte, restart.
    c.kill_master();
    let full = disk.fill_completely("filler-full");
    c.restart_master();
    let start = Instant::now();
    while start.elapsed() < STAY_UP {
        assert_master_up(&mut c, "restarted on a full disk");
        let jobs = c.jobs();
        assert_eq!(
            jobs.len(),
            8,
            "restarted on a full disk, q shows {} jobs\n{}",
            jobs.len(),
            c.diag()
        );
        c.status_json();
        std::thread::sleep(Duration::from_millis(500));
    }
    assert_master_up(&mut c, "restarted on a full disk");
    assert_submit_refused(&c, &journal, 8, "restarted on a full disk");
    let status = c.status_json();
    assert_eq!(
        status["holders"],
        0,
        "restarted on a full disk the master must refuse holders (they would bring results \
         it cannot journal): status {status}\n{}",
        c.diag()
    );
    // Its workers are refused but keep running their jobs, which end there.
    let ids: BTreeSet<String> = (0..2).map(|p| format!("{second}.{p}")).collect();
    pilotq_tests::wait_for(
        Duration::from_secs(20),
        "both jobs of the second cluster ending on their workers while the master is full",
        || logged(&log, "end").is_superset(&ids).then_some(()),
        || c.diag(),
    );
    for w in ["a", "b"] {
        assert!(
            c.worker(w).proc.running(),
            "worker {w} exited while the master refused it\n{}",
            c.diag()
        );
    }
    assert_master_up(
        &mut c,
        "restarted on a full disk, after its workers' jobs ended",
    );

    // 4. Space returns: the same master resumes by itself.
    disk.remove(&full);
    let third = submit_when_accepted(
        &c,
        2,
        &["/bin/sh", "-c", &logged_job(&log, "1")],
        "after the disk was emptied under the restarted master",
    );
    let jobs = c.wait_all_completed(Duration::from_secs(90));
    assert_each_completed_once(&c, &jobs, 10);
    assert_each_ran_once(&c, &log, &jobs);
    assert!(jobs.iter().any(|j| j.cluster == third));
    c.wait_holders(2, Duration::from_secs(30));
    c.assert_journal_once_each(10, 2);
    c.assert_journal_verified(10);
    drop(disk);
}

#[test]
fn a_foreman_below_its_floor_takes_no_new_jobs_survives_a_full_disk_and_resumes_by_itself() {
    let mut c = Cluster::with_master(MasterOpts {
        lease: LEASE,
        heartbeat: 1.0,
        fixed_port: true,
        ..MasterOpts::default()
    });
    // The foreman's journal is <tempdir>/foremen/f: on the tmpfs, with the
    // fillers beside it.
    let disk = Tmpfs::mount(&c.path("foremen"), DISK_MIB);
    let port = free_port();
    // Depth 1: the foreman holds one job per core of its one worker, so what
    // it has not taken stays visibly the master's.
    let lease = LEASE.to_string();
    let args = ["--min-free-disk", FLOOR, "--depth", "1", "--lease", &lease];
    let addr = c.start_foreman("f", port, &args).addr.clone();
    c.add_worker_to("fw", 1, &addr);
    c.wait_capacity(1, 1, Duration::from_secs(30));
    let log = c.path("runs.log");

    // 1. Below the floor, live: the running job finishes and is delivered;
    // the other two stay idle at the master.
    let cl = c.submit(
        3,
        &["--output", "out/$(Cluster).$(Process).out"],
        &["/bin/sh", "-c", &logged_job(&log, "6")],
    );
    c.wait_until(
        Duration::from_secs(20),
        "one job running at the foreman, two idle at the master",
        |jobs| {
            jobs.len() == 3
                && jobs
                    .iter()
                    .filter(|j| j.status == RUNNING && j.holder.as_deref() == Some("f"))
                    .count()
                    == 1
                && idle_at_master(jobs).len() == 2
        },
    );
    let low = disk.fill_leaving("filler-low", LOW_FREE);
    assert!(disk.free() < FLOOR_BYTES);
    c.wait_until(
        Duration::from_secs(30),
        "the running job completed through the foreman below its floor",
        |jobs| jobs.iter().filter(|j| j.status == COMPLETED).count() == 1,
    );
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(5) {
        let jobs = c.jobs();
        if idle_at_master(&jobs).len() != 2 {
            panic!(
                "a foreman below its floor must take no new jobs, yet:\n{}\nstatus: {}\n{}",
                jobs.iter()
                    .map(|j| j.raw.to_string())
                    .collect::<Vec<_>>()
                    .join("\n"),
                c.status_json(),
                c.diag()
            );
        }
        assert!(
            c.foreman("f").proc.running(),
            "the foreman exited below its floor\n{}",
            c.diag()
        );
        std::thread::sleep(Duration::from_millis(500));
    }

    // 2. Space returns: it takes the next job without a restart.
    disk.remove(&low);
    let jobs = c.wait_until(
        Duration::from_secs(20),
        "the foreman taking a job again once space returned",
        |jobs| {
            jobs.iter()
                .any(|j| j.status == RUNNING && j.holder.as_deref() == Some("f"))
        },
    );
    let taken = jobs
        .iter()
        .find(|j| j.status == RUNNING)
        .expect("one running")
        .id
        .clone();

    // 3. Crash while that job runs, the disk full to the last byte, restart.
    c.kill_foreman("f");
    let full = disk.fill_completely("filler-full");
    c.start_foreman("f", port, &args);
    let start = Instant::now();
    while start.elapsed() < STAY_UP {
        assert!(
            c.foreman("f").proc.running(),
            "the foreman restarted on a full disk exited\n{}",
            c.diag()
        );
        let jobs = c.jobs();
        if idle_at_master(&jobs).len() != 1 {
            panic!(
                "a foreman restarted on a full disk must take no new jobs, yet:\n{}\n{}",
                jobs.iter()
                    .map(|j| j.raw.to_string())
                    .collect::<Vec<_>>()
                    .join("\n"),
                c.diag()
            );
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    // Its worker kept running the job it took, which ends there.
    pilotq_tests::wait_for(
        Duration::from_secs(20),
        "the job the foreman took ending on its worker while the foreman is full",
        || logged(&log, "end").contains(&taken).then_some(()),
        || c.diag(),
    );
    assert!(
        c.worker("fw").proc.running(),
        "the foreman's worker exited\n{}",
        c.diag()
    );
    assert!(
        c.foreman("f").proc.running(),
        "the foreman restarted on a full disk exited\n{}",
        c.diag()
    );

    // 4. Space returns: the result goes up, the last job runs.
    disk.remove(&full);
    let jobs = c.wait_all_completed(Duration::from_secs(90));
    assert_each_completed_once(&c, &jobs, 3);
    assert_each_ran_once(&c, &log, &jobs);
    assert!(jobs.iter().all(|j| j.cluster == cl));
    c.wait_capacity(1, 1, Duration::from_secs(30));
    c.assert_journal_once_each(3, 1);
    c.assert_journal_verified(3);
    drop(disk);
}

/// The floor's sizes, on a disk with 4 MiB free: bytes, K, M and G mean
/// bytes, KiB, MiB and GiB; `0` turns the check off; the default is 5 % of
/// so small a filesystem (1.6 MiB of 32), not 1 GiB. Each setting gets a
/// fresh master and journal on the same tmpfs.
#[test]
fn min_free_disk_takes_bytes_k_m_and_g_0_turns_it_off_and_the_default_fits_a_small_disk() {
    static JOURNALS: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let mut c = Cluster::new();
    let disk = Tmpfs::mount(&c.path("disk"), DISK_MIB);
    let _filler = disk.fill_leaving("filler-a", LOW_FREE);
    let check = |c: &mut Cluster, floor: Option<&str>, refused: bool| {
        let n = JOURNALS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        c.journal = c.path(&format!("disk/journal-{n}"));
        c.opts.extra = match floor {
            Some(f) => vec!["--min-free-disk".into(), f.into()],
            None => vec![],
        };
        c.start_master();
        // Looked at about every second.
        std::thread::sleep(Duration::from_millis(1500));
        let free = disk.free();
        let what = format!(
            "with {free} bytes free and {}",
            match floor {
                Some(f) => format!("--min-free-disk {f}"),
                None => "no --min-free-disk".into(),
            }
        );
        if refused {
            let journal = c.journal.clone();
            assert_submit_refused(c, &journal, 0, &what);
        } else {
            let out = c.run(&["submit", "--count", "1", "--", "/bin/true"]);
            assert!(
                out.ok(),
                "{what}, a submission must be accepted\n{out}\n{}",
                c.diag()
            );
        }
        c.kill_master();
        // Each master keeps a reserve file beside its journal while there is
        // room: give the space back, so that every check starts from the
        // same free space.
        std::fs::remove_dir_all(&c.journal).unwrap();
    };
    for (floor, refused) in [
        ("8M", true),
        ("2M", false),
        ("8388608", true),
        ("2097152", false),
        ("8192K", true),
        ("2048K", false),
        ("1G", true),
        ("0", false),
    ] {
        check(&mut c, Some(floor), refused);
    }
    check(&mut c, None, false);
    // 1 MiB free: under 5 % of 32 MiB.
    let _filler = disk.fill_leaving("filler-b", MIB);
    check(&mut c, None, true);
    check(&mut c, Some("0"), false);
    check(&mut c, Some("512K"), false);
}

/// A size that is not one is refused at startup, by the master and the
/// foreman alike, with a message naming the option; both document it.
#[test]
fn a_bad_min_free_disk_is_refused_at_startup() {
    let c = Cluster::new();
    for sub in ["master", "foreman"] {
        let out = c.run(&[sub, "--help"]);
        assert!(
            out.ok() && out.stdout.contains("--min-free-disk"),
            "`pilotq {sub} --help` must document --min-free-disk\n{out}"
        );
    }
    for bad in ["12X", "-1", "M", "", "99999999999G"] {
        for sub in ["master", "foreman"] {
            let journal = c.path(&format!("journal-bad-{sub}"));
            let mut cmd = c.command();
            cmd.arg(sub)
                .args(["--listen", "127.0.0.1:0"])
                .arg("--journal")
                .arg(&journal)
                .arg(format!("--min-free-disk={bad}"));
            if sub == "foreman" {
                cmd.args(["--master", "127.0.0.1:9"]);
            }
            let out = run_with_timeout(
                cmd,
                Duration::from_secs(20),
                &format!("pilotq {sub} --min-free-disk={bad:?}"),
            );
            assert!(
                !out.ok() && !out.stdout.contains("listening on"),
                "pilotq {sub} --min-free-disk={bad:?} must refuse to start\n{out}"
            );
            assert!(
                out.stderr.contains("min-free-disk"),
                "pilotq {sub} --min-free-disk={bad:?}: the error must name the option\n{out}"
            );
        }
    }
}
