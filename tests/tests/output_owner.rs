//! Output files are written as their owner, never as the master, and never
//! through a symbolic link:
//! - a symbolic link in an output path's directories is not followed (the
//!   job is held, naming the link, and nothing appears where it points); a
//!   symbolic link at the file itself is replaced by the output, its target
//!   untouched; a job event log that is a symbolic link is not appended to;
//! - a master running as root writes a job's output, error and log with the
//!   owner's uid and gid, and cannot write where the owner may not;
//! - a master not running as root refuses, at submit, another owner's
//!   submission that names output files.
//!
//! These run as root, as CI does: the master switches to the user `nobody`
//! (Debian's 65534) for its files, and the last test starts a master as
//! `nobody`.

use pilotq_tests::{raw_job_spec, wait_for, Cluster, MasterOpts, RawConn, COMPLETED, HELD};
use pilotq_wire::JobSpec;
use std::os::unix::fs::{symlink, MetadataExt, PermissionsExt};
use std::path::Path;
use std::time::Duration;

/// The uid and gid of `nobody`; panics if this is not root or there is no
/// such user (the tests cannot mean anything then).
fn nobody() -> (u32, u32) {
    // SAFETY: geteuid cannot fail.
    assert_eq!(
        unsafe { libc::geteuid() },
        0,
        "these tests start processes as another user and check whose files are whose: they must run as root, as CI does"
    );
    // SAFETY: getpwnam returns static storage or null; read at once.
    unsafe {
        let pw = libc::getpwnam(c"nobody".as_ptr());
        assert!(!pw.is_null(), "no user `nobody` on this host");
        ((*pw).pw_uid, (*pw).pw_gid)
    }
}

/// A directory owned by `nobody`, and the test's tempdir made traversable
/// (it is 0700 root) so that `nobody` can reach it.
fn nobodys_dir(c: &Cluster, rel: &str) -> std::path::PathBuf {
    let (uid, gid) = nobody();
    std::fs::set_permissions(&c.root, std::fs::Permissions::from_mode(0o755)).unwrap();
    let d = c.path(rel);
    std::fs::create_dir_all(&d).unwrap();
    std::os::unix::fs::chown(&d, Some(uid), Some(gid)).unwrap();
    d
}

const SCRIPT: &[u8] = b"#!/bin/sh\necho \"out of $1\"\necho \"err of $1\" >&2\n";

/// A one-job spec of `owner` with these files; its job prints `out of
/// NAME` and `err of NAME`.
fn spec(owner: &str, name: &str, files: [Option<&Path>; 3]) -> JobSpec {
    let [output, error, log] = files.map(|p| p.map(|p| p.display().to_string()));
    JobSpec {
        arguments: vec![name.into()],
        output,
        error,
        log,
        ..raw_job_spec(owner, "job.sh", SCRIPT)
    }
}

/// Submits over a raw client connection: the cluster id, or the master's
/// error.
fn try_submit(addr: &str, spec: JobSpec) -> Result<u64, String> {
    RawConn::client(addr, None).submit(spec, 1, SCRIPT)
}

fn submit(c: &Cluster, spec: JobSpec) -> u64 {
    let owner = spec.owner.clone();
    try_submit(&c.addr(), spec).unwrap_or_else(|e| panic!("submission as {owner} refused: {e}"))
}

/// Waits until the one job of `cluster` has status `status`; returns its
/// hold reason (empty if none).
fn wait_status(c: &Cluster, cluster: u64, status: u64, what: &str) -> String {
    let jobs = c.wait_until(Duration::from_secs(30), what, |jobs| {
        jobs.iter()
            .any(|j| j.cluster == cluster && j.status == status)
    });
    let j = jobs.iter().find(|j| j.cluster == cluster).unwrap();
    j.raw["hold_reason"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

fn owner_of(p: &Path) -> (u32, u32) {
    let m = std::fs::symlink_metadata(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    (m.uid(), m.gid())
}

/// A symbolic link in an output path is not followed. In a directory
/// (`out/link -> elsewhere`, output `out/link/o.txt`): the job is held with
/// a reason that names the link, and nothing appears in `elsewhere`. At the
/// file itself (`out/o.txt -> victim.txt`): the output replaces the link
/// (the rename that puts a file in place replaces a link, it never follows
/// it), and the victim keeps its bytes. A job event log that is a link
/// (`out/job.log -> victim.log`) is not appended to: the master reports it
/// and the victim keeps its bytes.
#[test]
fn a_symlink_in_an_output_path_is_not_followed() {
    let mut c = Cluster::with_master(MasterOpts::default());
    let me = pilotq_tests::current_user();
    let elsewhere = c.path("elsewhere");
    std::fs::create_dir(&elsewhere).unwrap();
    symlink(&elsewhere, c.path("out/link")).unwrap();
    let victim = c.path("victim.txt");
    std::fs::write(&victim, "precious\n").unwrap();
    symlink(&victim, c.path("out/o.txt")).unwrap();
    let victim_log = c.path("victim.log");
    std::fs::write(&victim_log, "precious log\n").unwrap();
    symlink(&victim_log, c.path("out/job.log")).unwrap();
    c.add_worker("w1", 2);

    // A link among the directories: held, naming it.
    let through = c.path("out/link/o.txt");
    let held = submit(&c, spec(&me, "through", [Some(&through), None, None]));
    let reason = wait_status(&c, held, HELD, "the job writing through out/link held");
    let link = c.path("out/link").display().to_string();
    assert!(
        reason.starts_with(&format!(
            "cannot write {}: {link} is a symbolic link; pilotq does not follow symbolic links in output paths",
            through.display()
        )),
        "hold reason: {reason}"
    );
    let there: Vec<_> = std::fs::read_dir(&elsewhere).unwrap().collect();
    assert!(there.is_empty(), "written through the link: {there:?}");
    // Still a link, to the same place.
    assert_eq!(std::fs::read_link(c.path("out/link")).unwrap(), elsewhere);

    // A link as the file itself, and as the log: the output replaces the
    // link; the log is not written through it.
    let out = c.path("out/o.txt");
    let log = c.path("out/job.log");
    let replaced = submit(&c, spec(&me, "replaced", [Some(&out), None, Some(&log)]));
    wait_status(
        &c,
        replaced,
        COMPLETED,
        "the job writing over out/o.txt completed",
    );
    let m = std::fs::symlink_metadata(&out).unwrap();
    assert!(m.is_file(), "out/o.txt is still a link: {m:?}");
    assert_eq!(std::fs::read_to_string(&out).unwrap(), "out of replaced\n");
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious\n");
    // The log's appends (submitted, executing, terminated) are refused and
    // reported, over and over; none reaches the victim.
    let stderr = c.master.as_ref().unwrap().proc.stderr_path.clone();
    wait_for(
        Duration::from_secs(20),
        "the master to report the job event log that is a symbolic link",
        || {
            let text = std::fs::read_to_string(&stderr).ok()?;
            text.contains(&format!(
                "{} is a symbolic link; pilotq does not follow symbolic links",
                log.display()
            ))
            .then_some(())
        },
        || c.diag(),
    );
    assert!(std::fs::symlink_metadata(&log).unwrap().is_symlink());
    assert_eq!(
        std::fs::read_to_string(&victim_log).unwrap(),
        "precious log\n"
    );
    // The master is still serving.
    c.add_worker("w2", 1);
    c.wait_holders(2, Duration::from_secs(30));
}

/// Running as root, the master writes a job's output and error as the job's
/// owner (`nobody`): the files, and the directories it makes for them, are
/// nobody's, with the job's bytes. A job of nobody's whose output directory
/// is root's (0755) is held with "Permission denied": the master did not
/// write as root.
#[test]
fn as_root_output_and_error_are_written_as_the_jobs_owner() {
    let (uid, gid) = nobody();
    let mut c = Cluster::with_master(MasterOpts::default());
    let theirs = nobodys_dir(&c, "theirs");
    let roots = c.path("roots");
    std::fs::create_dir(&roots).unwrap();
    std::fs::set_permissions(&roots, std::fs::Permissions::from_mode(0o755)).unwrap();
    c.add_worker("w1", 2);

    let out = theirs.join("made/for/it/o.txt");
    let err = theirs.join("e.txt");
    let ok = submit(&c, spec("nobody", "ok", [Some(&out), Some(&err), None]));
    wait_status(&c, ok, COMPLETED, "nobody's job completed");
    assert_eq!(std::fs::read_to_string(&out).unwrap(), "out of ok\n");
    assert_eq!(std::fs::read_to_string(&err).unwrap(), "err of ok\n");
    for p in [
        out.as_path(),
        err.as_path(),
        &theirs.join("made"),
        &theirs.join("made/for/it"),
    ] {
        assert_eq!(owner_of(p), (uid, gid), "{} is not nobody's", p.display());
    }
    let names: Vec<_> = std::fs::read_dir(theirs.join("made/for/it"))
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, ["o.txt"], "no temporary file left");

    let denied_out = roots.join("o.txt");
    let denied = submit(
        &c,
        spec("nobody", "denied", [Some(&denied_out), None, None]),
    );
    let reason = wait_status(
        &c,
        denied,
        HELD,
        "nobody's job writing into root's directory held",
    );
    assert!(
        reason.starts_with(&format!("cannot write {}: ", denied_out.display()))
            && reason.contains("Permission denied"),
        "hold reason: {reason}"
    );
    assert_eq!(std::fs::read_dir(&roots).unwrap().count(), 0);

    // The root user's own jobs are still written (as root).
    let mine = c.path("out/root.txt");
    let root_job = submit(&c, spec("root", "root", [Some(&mine), None, None]));
    wait_status(&c, root_job, COMPLETED, "root's job completed");
    assert_eq!(owner_of(&mine), (0, 0));
}

/// The job event log is likewise written as the job's owner: created by
/// nobody, every event in it; in a directory nobody may not write, it is not
/// created at all (the master reports it).
#[test]
fn as_root_the_job_event_log_is_written_as_the_jobs_owner() {
    let (uid, gid) = nobody();
    let mut c = Cluster::with_master(MasterOpts::default());
    let theirs = nobodys_dir(&c, "theirs");
    let roots = c.path("roots");
    std::fs::create_dir(&roots).unwrap();
    c.add_worker("w1", 2);

    let log = theirs.join("job.log");
    let logged = submit(&c, spec("nobody", "logged", [None, None, Some(&log)]));
    wait_status(&c, logged, COMPLETED, "nobody's logged job completed");
    let events =
        pilotq_tests::user_log::wait_log(&c, &log, "submitted, executing, terminated", |evs| {
            evs.iter().any(|e| e.code == "005")
        });
    let codes: Vec<&str> = events.iter().map(|e| e.code.as_str()).collect();
    assert_eq!(codes, ["000", "001", "005"]);
    assert_eq!(owner_of(&log), (uid, gid));

    let denied_log = roots.join("job.log");
    let denied = submit(
        &c,
        spec("nobody", "denied", [None, None, Some(&denied_log)]),
    );
    wait_status(
        &c,
        denied,
        COMPLETED,
        "nobody's job logging into root's directory completed",
    );
    let stderr = c.master.as_ref().unwrap().proc.stderr_path.clone();
    wait_for(
        Duration::from_secs(20),
        "the master to report the log it may not write",
        || {
            let text = std::fs::read_to_string(&stderr).ok()?;
            text.lines()
                .any(|l| {
                    l.contains(&format!("job event log {}", denied_log.display()))
                        && l.contains("Permission denied")
                })
                .then_some(())
        },
        || c.diag(),
    );
    assert!(!denied_log.exists(), "written as root");
}

/// A master that does not run as root cannot write files as another user:
/// it refuses, at submit and with one clear error, another owner's
/// submission that names an output, error or log file, and applies none of
/// it. Another owner's submission without files, and its own user's with
/// files, are taken.
#[test]
fn a_master_not_running_as_root_refuses_another_owners_output_files() {
    let (uid, gid) = nobody();
    let mut c = Cluster::new();
    std::fs::set_permissions(&c.root, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::create_dir_all(&c.journal).unwrap();
    std::os::unix::fs::chown(&c.journal, Some(uid), Some(gid)).unwrap();
    let theirs = nobodys_dir(&c, "theirs");
    let mut cmd = c.command();
    cmd.arg("master")
        .args(["--listen", "127.0.0.1:0", "--journal"])
        .arg(&c.journal)
        .args(["--lease", "4", "--heartbeat", "1"]);
    std::os::unix::process::CommandExt::uid(&mut cmd, uid);
    std::os::unix::process::CommandExt::gid(&mut cmd, gid);
    let mut master = c.spawn("master-as-nobody", cmd);
    let addr = pilotq_tests::read_listen_line(&mut master, "pilotq master listening on ");
    let port: u16 = addr.rsplit_once(':').unwrap().1.parse().unwrap();
    c.set_master_port(port);
    c.others.push(master);

    let out = c.path("out/root.txt");
    for files in [
        [Some(out.as_path()), None, None],
        [None, Some(out.as_path()), None],
        [None, None, Some(out.as_path())],
    ] {
        let e = try_submit(&addr, spec("root", "root", files))
            .expect_err("root's submission naming a file was taken by a master running as nobody");
        assert_eq!(
            e,
            "submission refused: this master runs as user \"nobody\", not as root, so it cannot write output, error or log files as their owner \"root\"; submit without them, or as \"nobody\", or run the master as root"
        );
    }
    assert!(
        c.q_json().is_empty(),
        "nothing of a refused submission applied"
    );

    // Without files: taken. Its own user's, with files: taken, and written
    // once a worker runs it.
    let bare = try_submit(&addr, spec("root", "bare", [None, None, None])).unwrap();
    let own_out = theirs.join("o.txt");
    let own = try_submit(&addr, spec("nobody", "own", [Some(&own_out), None, None])).unwrap();
    c.add_worker("w1", 2);
    let jobs = c.wait_all_completed(Duration::from_secs(30));
    let mut clusters: Vec<u64> = jobs.iter().map(|j| j.cluster).collect();
    clusters.sort();
    assert_eq!(clusters, [bare, own]);
    assert_eq!(std::fs::read_to_string(&own_out).unwrap(), "out of own\n");
    assert_eq!(owner_of(&own_out), (uid, gid));
    assert!(!out.exists());
}
