//! Writing a job's `output` and `error` files on the submit side. Blocking
//! file I/O, so it runs on its own threads (a `SyncArbiter`), never in the
//! master's handlers.

use actix::prelude::*;
use std::path::Path;

pub struct JobFiles;

impl Actor for JobFiles {
    type Context = SyncContext<Self>;
}

/// Job event log entries to append (see `user_log`).
#[derive(Message)]
#[rtype(result = "()")]
pub struct AppendUserLog(pub Vec<crate::user_log::Write1>);

impl Handler<AppendUserLog> for JobFiles {
    type Result = ();

    fn handle(&mut self, m: AppendUserLog, _ctx: &mut SyncContext<Self>) {
        crate::user_log::append(&m.0);
    }
}

/// One job's files.
pub struct WriteJobFiles {
    pub stdout: Option<(String, Vec<u8>)>,
    pub stderr: Option<(String, Vec<u8>)>,
}

/// Several jobs' files, then `then` (which acknowledges the results).
#[derive(Message)]
#[rtype(result = "()")]
pub struct WriteBatch {
    files: Vec<WriteJobFiles>,
    then: Box<dyn FnOnce() + Send>,
}

impl WriteJobFiles {
    pub fn batch(files: Vec<WriteJobFiles>, then: Box<dyn FnOnce() + Send>) -> WriteBatch {
        WriteBatch { files, then }
    }
}

impl Handler<WriteBatch> for JobFiles {
    type Result = ();

    /// A file that cannot be written (a bad path, a full disk) is logged and
    /// the result still acknowledged: the job's outcome is in the journal,
    /// and retrying for ever would wedge the holder's results behind it.
    fn handle(&mut self, m: WriteBatch, _ctx: &mut SyncContext<Self>) {
        for f in m.files {
            for (path, bytes) in [f.stdout, f.stderr].into_iter().flatten() {
                if let Err(e) = write_file(Path::new(&path), &bytes) {
                    tracing::warn!("job file {path} not written: {e}");
                }
            }
        }
        (m.then)();
    }
}

/// Writes via a temporary file and rename, so a reader never sees half a file
/// and a rewrite (a resent result) replaces it whole.
fn write_file(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    if let Some(dir) = path.parent() {
        if !dir.as_os_str().is_empty() {
            std::fs::create_dir_all(dir)?;
        }
    }
    let tmp = path.with_extension(format!("pilotq-tmp-{}", std::process::id()));
    std::fs::write(&tmp, bytes)?;
    std::fs::rename(&tmp, path)
}
