//! Putting a job's `output` and `error` files in place on the submit side.
//! Blocking file I/O, so it runs on threads of its own, never in the
//! master's handlers.
//!
//! Outputs are part of a result's commit: the master writes them *before* it
//! journals the completion and acknowledges the result, so a result is never
//! acknowledged away while its files are missing. Each file is written to a
//! temporary name unique to this write in the target directory, `fdatasync`ed,
//! renamed over the target, and the directory is `fsync`ed. A reader never
//! sees half a file, a resent result replaces the file whole, and two jobs
//! never share a temporary name.
//!
//! **As the owner, never through a symbolic link.** The paths are the
//! submitter's choice and the master is usually root, so each file is
//! written with its job owner's ids and its directory is reached without
//! following any symbolic link (`crate::owner_files` says how and why): a
//! user cannot make the master write where they could not. A file that
//! cannot be written so (the owner may not write there, the path holds a
//! symbolic link, the owner is not a user here) holds its job like any
//! other write failure, with the reason.
//!
//! **Group commit, as the journal does it.** Two writer threads share one
//! queue; each takes everything waiting (many holders' result frames) as one
//! group, writes and syncs all its files, renames them into place, and syncs
//! each directory once for the whole group before any of its results is
//! answered. The two threads' syncs overlap, so the filesystem commits them
//! together.

use crate::owner_files::{self, Acting, Dir, WriteAs};
use crossbeam::channel::{unbounded, Receiver, Sender};
use pilotq_wire::JobResult;
use std::collections::HashMap;
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// Where one result's stdout and stderr go (`None`: the job has no such
/// file, or the result needs no files), and whose they are.
#[derive(Debug, Clone, Default)]
pub struct Targets {
    pub stdout: Option<String>,
    pub stderr: Option<String>,
    /// The job's owner: a master running as root writes the files as this
    /// user (`crate::owner_files`).
    pub owner: String,
}

impl Targets {
    pub fn any(&self) -> bool {
        self.stdout.is_some() || self.stderr.is_some()
    }
}

/// Per result: written, or why not (the path and the OS error).
pub type Placed = Vec<Result<(), String>>;

/// Results whose files are to be put in place; `then` gets the results back
/// (for their outcome and, where a file failed, their output to keep) with
/// one status per result.
pub struct PlaceOutputs {
    pub results: Vec<JobResult>,
    pub targets: Vec<Targets>,
    pub then: Box<dyn FnOnce(Vec<JobResult>, Placed) + Send>,
}

/// The writer threads' queue.
#[derive(Clone)]
pub struct JobFiles {
    tx: Sender<PlaceOutputs>,
}

/// Writer threads: two, so that one group is written while another waits
/// on its sync; more would only cut the groups smaller.
pub const WRITER_THREADS: usize = 2;

/// A group is cut here, so one group's answer never waits on an unbounded
/// amount of writing.
const MAX_GROUP_RESULTS: usize = 4096;

impl JobFiles {
    pub fn start(threads: usize) -> JobFiles {
        let (tx, rx) = unbounded::<PlaceOutputs>();
        for i in 0..threads.max(1) {
            let rx = rx.clone();
            std::thread::Builder::new()
                .name(format!("pilotq-files-{i}"))
                .spawn(move || run(rx))
                .expect("spawning a job-file thread");
        }
        JobFiles { tx }
    }

    /// Queues a batch. Unbounded, but the master places each result at most
    /// once at a time and results are bounded by what it dispatched.
    pub fn place(&self, batch: PlaceOutputs) {
        if let Err(e) = self.tx.send(batch) {
            // Only if every writer thread died: fail the batch, never drop it.
            let b = e.0;
            let failed =
                vec![Err("the job-file writer threads are gone".to_string()); b.results.len()];
            (b.then)(b.results, failed);
        }
    }
}

fn run(rx: Receiver<PlaceOutputs>) {
    while let Ok(first) = rx.recv() {
        let mut group = vec![first];
        let mut results = group[0].results.len();
        while results < MAX_GROUP_RESULTS {
            match rx.try_recv() {
                Ok(b) => {
                    results += b.results.len();
                    group.push(b);
                }
                Err(_) => break,
            }
        }
        let placed = {
            let all: Vec<(&[JobResult], &[Targets])> = group
                .iter()
                .map(|b| (b.results.as_slice(), b.targets.as_slice()))
                .collect();
            place_groups(&all)
        };
        for (b, p) in group.into_iter().zip(placed) {
            (b.then)(b.results, p);
        }
    }
}

/// Writes every result's files; returns one status per result.
pub fn place_all(results: &[JobResult], targets: &[Targets]) -> Placed {
    place_groups(&[(results, targets)])
        .pop()
        .expect("one batch in, one out")
}

/// A file written under its temporary name and synced, not yet renamed.
struct Staged {
    tmp: OsString,
    name: OsString,
    path: String,
    /// Its directory: an index into the group's open directories.
    dir: usize,
    /// Which result it belongs to: (batch, index).
    result: (usize, usize),
}

/// Who this thread writes as: the owner of the files at hand, switched only
/// when the owner changes, and given back when dropped.
#[derive(Default)]
struct Identity<'a> {
    current: Option<(&'a str, Result<Option<Acting>, String>)>,
}

impl<'a> Identity<'a> {
    /// Acts as `owner` from now on; `Err`: why no file can be written as
    /// them (no such user here, say).
    fn act_as(&mut self, owner: &'a str) -> Result<(), String> {
        if !matches!(&self.current, Some((o, _)) if *o == owner) {
            // The last owner's ids are given back before the next's are taken.
            self.current = None;
            let acting = WriteAs::for_owner(owner)
                .and_then(|w| Acting::begin(&w))
                .map_err(|e| e.to_string());
            self.current = Some((owner, acting));
        }
        match &self.current {
            Some((_, Err(e))) => Err(e.clone()),
            _ => Ok(()),
        }
    }
}

/// A group's directories, each opened once per owner (the walk checks the
/// owner's permissions), and the errors of those that could not be.
#[derive(Default)]
struct Dirs<'a> {
    open: Vec<Dir>,
    by_path: HashMap<(&'a str, PathBuf), Result<usize, String>>,
}

impl<'a> Dirs<'a> {
    /// Opens (making it if missing) the directory `dir` as `owner`, whom the
    /// thread acts as already.
    fn get(&mut self, owner: &'a str, dir: PathBuf) -> Result<usize, String> {
        let open = &mut self.open;
        self.by_path
            .entry((owner, dir))
            .or_insert_with_key(|(_, dir)| {
                let d = Dir::open(dir, true).map_err(|e| e.to_string())?;
                open.push(d);
                Ok(open.len() - 1)
            })
            .clone()
    }
}

/// Several batches' files as one group: every file written under its
/// temporary name and synced, then renamed into place, then each directory
/// synced once. A result one of whose files could not be written or synced
/// has none of them put in place (it is kept with the held job instead).
/// One status list per batch.
///
/// Each file is written as its job's owner (`crate::owner_files`): the
/// results are taken owner by owner, so a group of one owner's results
/// switches the thread's ids once. No symbolic link is followed on the way
/// to a file.
///
/// Each file's data is synced with its own `fdatasync`, which reports that
/// file's write-back errors and no one else's. (One `syncfs` per group was
/// measured a little faster here, but it reports errors only for write-back
/// since a descriptor was opened, on kernels from 5.8, and not per file: an
/// NFS server's error on close could pass unseen, and a result be
/// acknowledged with its data lost.)
fn place_groups(batches: &[(&[JobResult], &[Targets])]) -> Vec<Placed> {
    let mut placed: Vec<Placed> = batches.iter().map(|(r, _)| vec![Ok(()); r.len()]).collect();
    // Owner by owner (a stable sort: in order within each).
    let mut order: Vec<(usize, usize)> = Vec::new();
    for (b, (results, targets)) in batches.iter().enumerate() {
        let n = results.len().min(targets.len());
        order.extend((0..n).filter(|&i| targets[i].any()).map(|i| (b, i)));
    }
    order.sort_by_key(|&(b, i)| batches[b].1[i].owner.as_str());
    let mut who = Identity::default();
    let mut dirs = Dirs::default();
    // 1. Written under temporary names, and synced.
    let mut staged: Vec<Staged> = Vec::new();
    for &(b, i) in &order {
        let (r, t) = (&batches[b].0[i], &batches[b].1[i]);
        for (path, bytes) in [(&t.stdout, &r.stdout), (&t.stderr, &r.stderr)] {
            let Some(path) = path else { continue };
            match stage(&mut who, &mut dirs, &t.owner, path, bytes) {
                Ok((dir, tmp, name)) => staged.push(Staged {
                    tmp,
                    name,
                    path: path.clone(),
                    dir,
                    result: (b, i),
                }),
                Err(e) => {
                    placed[b][i] = Err(format!("cannot write {path}: {e}"));
                    break;
                }
            }
        }
    }
    // 2. Renamed into place, all of a result's files or none (a rename that
    //    fails after its sibling's succeeded leaves the sibling in place; the
    //    job is held all the same, with both kept). As the owner still.
    let mut renamed: Vec<Vec<(usize, usize)>> = vec![Vec::new(); dirs.open.len()];
    for s in staged {
        let (b, i) = s.result;
        let dir = &dirs.open[s.dir];
        let acting = who.act_as(&batches[b].1[i].owner);
        if placed[b][i].is_err() {
            if acting.is_ok() {
                let _ = dir.remove(&s.tmp);
            }
            continue;
        }
        match acting.and_then(|()| dir.rename(&s.tmp, &s.name).map_err(|e| e.to_string())) {
            Ok(()) => renamed[s.dir].push((b, i)),
            Err(e) => {
                let _ = dir.remove(&s.tmp);
                placed[b][i] = Err(format!("cannot write {}: {e}", s.path));
            }
        }
    }
    // The thread is the master's again.
    drop(who);
    // 3. Each directory synced once, for every rename into it.
    for (dir, users) in dirs.open.iter().zip(renamed) {
        if users.is_empty() {
            continue;
        }
        if let Err(e) = dir.sync() {
            for (b, i) in users {
                if placed[b][i].is_ok() {
                    placed[b][i] = Err(format!(
                        "cannot sync directory {}: {e}",
                        dir.path().display()
                    ));
                }
            }
        }
    }
    placed
}

/// Distinguishes temporary files of this process: with the pid, unique on
/// the machine for as long as the process lives.
static NEXT_TMP: AtomicU64 = AtomicU64::new(0);

/// Writes `bytes`, as `owner`, under a new temporary name beside `path` and
/// syncs it; returns its directory, that name and the file's own name. On
/// failure the temporary file is removed.
fn stage<'a>(
    who: &mut Identity<'a>,
    dirs: &mut Dirs<'a>,
    owner: &'a str,
    path: &str,
    bytes: &[u8],
) -> Result<(usize, OsString, OsString), String> {
    let (dir, name) = owner_files::split(Path::new(path)).map_err(|e| e.to_string())?;
    who.act_as(owner)?;
    let d = dirs.get(owner, dir)?;
    let mut tmp = OsString::from(".");
    tmp.push(&name);
    tmp.push(format!(
        ".pilotq-{}-{}.tmp",
        std::process::id(),
        NEXT_TMP.fetch_add(1, Ordering::Relaxed)
    ));
    dirs.open[d]
        .write_new(&tmp, bytes)
        .map_err(|e| e.to_string())?;
    Ok((d, tmp, name))
}

#[cfg(test)]
mod tests {
    use super::*;
    use pilotq_wire::{JobId, Outcome};

    /// Whoever runs the tests: their files are written as themselves.
    fn me() -> String {
        crate::owner_files::master_user().to_string()
    }

    fn result(proc: u32, out: &str) -> JobResult {
        JobResult {
            key: None,
            job: JobId::new(1, proc),
            attempt: 1,
            outcome: Outcome::Exited { code: 0 },
            started_at: 1,
            ended_at: 2,
            stdout: out.as_bytes().to_vec(),
            stderr: format!("err {proc}").into_bytes(),
        }
    }

    #[test]
    fn files_whose_names_differ_only_in_extension_keep_their_own_bytes() {
        let d = tempfile::tempdir().unwrap();
        let results: Vec<JobResult> = (0..50).map(|p| result(p, &format!("job {p}"))).collect();
        let targets: Vec<Targets> = (0..50)
            .map(|p| Targets {
                stdout: Some(d.path().join(format!("o.{p}")).display().to_string()),
                stderr: Some(d.path().join(format!("o.{p}.err")).display().to_string()),
                owner: me(),
            })
            .collect();
        // Two writers at once, as the master's file threads are.
        let (a, b) = (results.split_at(25), targets.split_at(25));
        std::thread::scope(|s| {
            let h1 = s.spawn(|| place_all(a.0, b.0));
            let h2 = s.spawn(|| place_all(a.1, b.1));
            assert!(h1.join().unwrap().iter().all(Result::is_ok));
            assert!(h2.join().unwrap().iter().all(Result::is_ok));
        });
        for p in 0..50 {
            let out = std::fs::read_to_string(d.path().join(format!("o.{p}"))).unwrap();
            assert_eq!(out, format!("job {p}"));
            let err = std::fs::read_to_string(d.path().join(format!("o.{p}.err"))).unwrap();
            assert_eq!(err, format!("err {p}"));
        }
        let names: Vec<String> = std::fs::read_dir(d.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names.len(), 100, "temporary files left behind: {names:?}");
    }

    const GROUP: usize = 16;

    #[test]
    fn a_failed_write_in_a_large_group_fails_only_its_own_result() {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(d.path().join("plain"), b"x").unwrap();
        let mut results = Vec::new();
        let mut targets = Vec::new();
        for p in 0..GROUP as u32 {
            results.push(result(p, &format!("job {p}")));
            let dir = if p == 3 { "plain" } else { "ok" };
            targets.push(Targets {
                stdout: Some(d.path().join(format!("{dir}/o.{p}")).display().to_string()),
                stderr: Some(d.path().join(format!("ok/e.{p}")).display().to_string()),
                owner: me(),
            });
        }
        let placed = place_all(&results, &targets);
        for (p, r) in placed.iter().enumerate() {
            if p == 3 {
                assert!(r.as_ref().unwrap_err().contains("plain/o.3"), "{r:?}");
                // Its other file is not put in place either: it is kept.
                assert!(!d.path().join("ok/e.3").exists());
            } else {
                assert!(r.is_ok(), "{p}: {r:?}");
                let out = std::fs::read_to_string(d.path().join(format!("ok/o.{p}"))).unwrap();
                assert_eq!(out, format!("job {p}"));
            }
        }
        let names = std::fs::read_dir(d.path().join("ok")).unwrap().count();
        assert_eq!(names, 2 * (GROUP - 1), "no temporary file left behind");
    }

    #[test]
    fn a_failed_write_names_the_path_and_leaves_no_temporary_file() {
        let d = tempfile::tempdir().unwrap();
        // A parent that is a file: ENOTDIR, whoever runs the test (root too).
        std::fs::write(d.path().join("plain"), b"x").unwrap();
        let bad = d.path().join("plain/o.0").display().to_string();
        let good = d.path().join("o.1").display().to_string();
        let placed = place_all(
            &[result(0, "a"), result(1, "b")],
            &[
                Targets {
                    stdout: Some(bad.clone()),
                    stderr: None,
                    owner: me(),
                },
                Targets {
                    stdout: Some(good),
                    stderr: None,
                    owner: me(),
                },
            ],
        );
        let e = placed[0].as_ref().unwrap_err();
        assert!(e.contains(&bad) && e.contains("os error"), "{e}");
        assert!(placed[1].is_ok());
        let names: Vec<String> = std::fs::read_dir(d.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names.len(), 2, "{names:?}");
    }

    #[test]
    fn a_symlink_in_the_path_holds_the_result_and_nothing_is_written_through_it() {
        let d = tempfile::tempdir().unwrap();
        let elsewhere = d.path().join("elsewhere");
        std::fs::create_dir(&elsewhere).unwrap();
        std::os::unix::fs::symlink(&elsewhere, d.path().join("link")).unwrap();
        let path = d.path().join("link/sub/o.0").display().to_string();
        let placed = place_all(
            &[result(0, "a")],
            &[Targets {
                stdout: Some(path.clone()),
                stderr: None,
                owner: me(),
            }],
        );
        let e = placed[0].as_ref().unwrap_err();
        let link = d.path().join("link").display().to_string();
        assert_eq!(
            e,
            &format!(
                "cannot write {path}: {link} is a symbolic link; {}",
                crate::owner_files::NOT_FOLLOWED
            )
        );
        assert_eq!(std::fs::read_dir(&elsewhere).unwrap().count(), 0);
    }

    #[test]
    fn an_owner_who_is_not_a_user_here_holds_the_result_when_root() {
        if !crate::owner_files::writes_as_owners() {
            return;
        }
        let d = tempfile::tempdir().unwrap();
        let path = d.path().join("o.0").display().to_string();
        let placed = place_all(
            &[result(0, "a")],
            &[Targets {
                stdout: Some(path.clone()),
                stderr: None,
                owner: "no-such-user-pilotq".into(),
            }],
        );
        assert_eq!(
            placed[0].as_ref().unwrap_err(),
            &format!(
                "cannot write {path}: owner \"no-such-user-pilotq\" is not a user on the submit host"
            )
        );
        assert_eq!(std::fs::read_dir(d.path()).unwrap().count(), 0);
    }
}
