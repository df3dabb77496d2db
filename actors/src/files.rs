//! Writing a job's `output` and `error` files on the submit side. Blocking
//! file I/O, so it runs on its own threads (a `SyncArbiter`), never in the
//! master's handlers.

use actix::prelude::*;
use std::path::Path;

pub struct JobFiles;

impl Actor for JobFiles {
    type Context = SyncContext<Self>;
}

#[derive(Message)]
#[rtype(result = "Result<(), String>")]
pub struct WriteJobFiles {
    pub stdout: Option<(String, Vec<u8>)>,
    pub stderr: Option<(String, Vec<u8>)>,
}

impl Handler<WriteJobFiles> for JobFiles {
    type Result = Result<(), String>;

    fn handle(&mut self, m: WriteJobFiles, _ctx: &mut SyncContext<Self>) -> Result<(), String> {
        for (path, bytes) in [m.stdout, m.stderr].into_iter().flatten() {
            write_file(Path::new(&path), &bytes).map_err(|e| format!("{path}: {e}"))?;
        }
        Ok(())
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
