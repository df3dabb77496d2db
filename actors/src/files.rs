//! Putting a job's `output` and `error` files in place on the submit side.
//! Blocking file I/O, so it runs on threads of its own (a `SyncArbiter`),
//! never in the master's handlers.
//!
//! Outputs are part of a result's commit: the master writes them *before* it
//! journals the completion and acknowledges the result, so a result is never
//! acknowledged away while its files are missing. Each file is written to a
//! temporary name unique to this write in the target directory, `fdatasync`ed,
//! renamed over the target, and the directory is `fsync`ed; a directory
//! shared by many files of one batch is synced once for all of them (the
//! batching that keeps thousands of small outputs a second affordable, as
//! the journal's group commit does for events). A reader never sees half a
//! file, a resent result replaces the file whole, and two jobs never share a
//! temporary name.

use actix::prelude::*;
use pilotq_wire::JobResult;
use std::collections::BTreeMap;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

pub struct JobFiles;

impl Actor for JobFiles {
    type Context = SyncContext<Self>;
}

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
#[derive(Message)]
#[rtype(result = "()")]
pub struct PlaceOutputs {
    pub results: Vec<JobResult>,
    pub targets: Vec<Targets>,
    pub then: Box<dyn FnOnce(Vec<JobResult>, Placed) + Send>,
}

impl Handler<PlaceOutputs> for JobFiles {
    type Result = ();

    fn handle(&mut self, m: PlaceOutputs, _ctx: &mut SyncContext<Self>) {
        let placed = place_all(&m.results, &m.targets);
        (m.then)(m.results, placed);
    }
}

/// Writes every result's files; returns one status per result.
pub fn place_all(results: &[JobResult], targets: &[Targets]) -> Placed {
    let mut placed: Placed = vec![Ok(()); results.len()];
    // Directories to sync once the batch's renames are done, with the
    // results that wrote into each.
    let mut dirs: BTreeMap<PathBuf, Vec<usize>> = BTreeMap::new();
    for (i, (r, t)) in results.iter().zip(targets).enumerate() {
        let files = [(&t.stdout, &r.stdout), (&t.stderr, &r.stderr)];
        for (path, bytes) in files {
            let Some(path) = path else { continue };
            match place(Path::new(path), bytes) {
                Ok(dir) => dirs.entry(dir).or_default().push(i),
                Err(e) => {
                    placed[i] = Err(format!("cannot write {path}: {e}"));
                    break;
                }
            }
        }
    }
    for (dir, users) in dirs {
        if let Err(e) = sync_dir(&dir) {
            for i in users {
                if placed[i].is_ok() {
                    placed[i] = Err(format!("cannot sync directory {}: {e}", dir.display()));
                }
            }
        }
    }
    placed
}

/// Distinguishes temporary files of this process: with the pid, unique on
/// the machine for as long as the process lives.
static NEXT_TMP: AtomicU64 = AtomicU64::new(0);

/// Writes `bytes` to `path` through a synced temporary file and a rename;
/// returns the directory to sync. On failure the temporary file is removed.
fn place(path: &Path, bytes: &[u8]) -> std::io::Result<PathBuf> {
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
    let written = (|| {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o644)
            .open(&tmp)?;
        f.write_all(bytes)?;
        f.sync_data()?;
        drop(f);
        std::fs::rename(&tmp, path)
    })();
    if let Err(e) = written {
        let _ = std::fs::remove_file(&tmp);
        return Err(e);
    }
    Ok(dir)
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
