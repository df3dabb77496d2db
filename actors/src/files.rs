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
//! **Group commit, as the journal does it.** Two writer threads share one
//! queue; each takes everything waiting (many holders' result frames) as one
//! group, writes and syncs all its files, renames them into place, and syncs
//! each directory once for the whole group before any of its results is
//! answered. The two threads' syncs overlap, so the filesystem commits them
//! together.

use crossbeam::channel::{unbounded, Receiver, Sender};
use pilotq_wire::JobResult;
use std::collections::BTreeMap;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// Where one result's stdout and stderr go (`None`: the job has no such
/// file, or the result needs no files).
#[derive(Debug, Clone, Default)]
pub struct Targets {
    pub stdout: Option<String>,
    pub stderr: Option<String>,
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
    tmp: PathBuf,
    path: PathBuf,
    dir: PathBuf,
    /// Which result it belongs to: (batch, index).
    owner: (usize, usize),
}

/// Several batches' files as one group: every file written under its
/// temporary name and synced, then renamed into place, then each directory
/// synced once. A result one of whose files could not be written or synced
/// has none of them put in place (it is kept with the held job instead).
/// One status list per batch.
///
/// Each file's data is synced with its own `fdatasync`, which reports that
/// file's write-back errors and no one else's. (One `syncfs` per group was
/// measured a little faster here, but it reports errors only for write-back
/// since a descriptor was opened, on kernels from 5.8, and not per file: an
/// NFS server's error on close could pass unseen, and a result be
/// acknowledged with its data lost.)
fn place_groups(batches: &[(&[JobResult], &[Targets])]) -> Vec<Placed> {
    let mut placed: Vec<Placed> = batches.iter().map(|(r, _)| vec![Ok(()); r.len()]).collect();
    // 1. Written under temporary names, and synced.
    let mut staged: Vec<Staged> = Vec::new();
    for (b, (results, targets)) in batches.iter().enumerate() {
        for (i, (r, t)) in results.iter().zip(targets.iter()).enumerate() {
            for (path, bytes) in [(&t.stdout, &r.stdout), (&t.stderr, &r.stderr)] {
                let Some(path) = path else { continue };
                match stage(Path::new(path), bytes) {
                    Ok((tmp, dir)) => staged.push(Staged {
                        tmp,
                        path: PathBuf::from(path),
                        dir,
                        owner: (b, i),
                    }),
                    Err(e) => {
                        placed[b][i] = Err(format!("cannot write {path}: {e}"));
                        break;
                    }
                }
            }
        }
    }
    // 2. Renamed into place, all of a result's files or none (a rename that
    //    fails after its sibling's succeeded leaves the sibling in place; the
    //    job is held all the same, with both kept).
    let mut dirs: BTreeMap<PathBuf, Vec<(usize, usize)>> = BTreeMap::new();
    for s in staged {
        let (b, i) = s.owner;
        if placed[b][i].is_err() {
            let _ = std::fs::remove_file(&s.tmp);
            continue;
        }
        match std::fs::rename(&s.tmp, &s.path) {
            Ok(()) => dirs.entry(s.dir).or_default().push((b, i)),
            Err(e) => {
                let _ = std::fs::remove_file(&s.tmp);
                placed[b][i] = Err(format!("cannot write {}: {e}", s.path.display()));
            }
        }
    }
    // 3. Each directory synced once, for every rename into it.
    for (dir, users) in dirs {
        if let Err(e) = sync_dir(&dir) {
            for (b, i) in users {
                if placed[b][i].is_ok() {
                    placed[b][i] = Err(format!("cannot sync directory {}: {e}", dir.display()));
                }
            }
        }
    }
    placed
}

/// Distinguishes temporary files of this process: with the pid, unique on
/// the machine for as long as the process lives.
static NEXT_TMP: AtomicU64 = AtomicU64::new(0);

/// Writes `bytes` under a new temporary name beside `path` and syncs it;
/// returns that name and the directory. On failure the temporary file is
/// removed.
fn stage(path: &Path, bytes: &[u8]) -> std::io::Result<(PathBuf, PathBuf)> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    std::fs::create_dir_all(&dir)?;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(
        ".{name}.pilotq-{}-{}.tmp",
        std::process::id(),
        NEXT_TMP.fetch_add(1, Ordering::Relaxed)
    ));
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o644)
        .open(&tmp)?;
    let written = f.write_all(bytes).and_then(|()| f.sync_data());
    drop(f);
    if let Err(e) = written {
        let _ = std::fs::remove_file(&tmp);
        return Err(e);
    }
    Ok((tmp, dir))
}

/// Makes the directory's entries (a rename into it) durable.
pub fn sync_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::File::open(dir)?.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;
    use pilotq_wire::{JobId, Outcome};

    fn result(proc: u32, out: &str) -> JobResult {
        JobResult {
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
                },
                Targets {
                    stdout: Some(good),
                    stderr: None,
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
}
