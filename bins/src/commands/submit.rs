//! `pilotq submit`: one cluster of N jobs, printed like condor_submit.

use crate::cli::SubmitArgs;
use crate::client_opts::block_on;
use anyhow::{bail, Context, Result};
use pilotq_wire::{JobSpec, Resources};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

pub fn run(a: SubmitArgs) -> Result<i32> {
    crate::logging::init("warn");
    let (exe, args) = a.command.split_first().context("no executable given")?;
    let exe_path = find_executable(exe)?;
    let bytes = std::fs::read(&exe_path)
        .with_context(|| format!("cannot read executable {}", exe_path.display()))?;
    let mut environment = BTreeMap::new();
    for kv in &a.env {
        let (k, v) = kv
            .split_once('=')
            .with_context(|| format!("--env '{kv}' is not K=V"))?;
        if k.is_empty() {
            bail!("--env '{kv}' has an empty name");
        }
        environment.insert(k.to_string(), v.to_string());
    }
    if a.count == 0 {
        bail!("--count must be at least 1");
    }
    let cwd = std::env::current_dir().context("cannot read the current directory")?;
    let spec = JobSpec {
        executable: hex::encode(Sha256::digest(&bytes)),
        cmd: exe.clone(),
        arguments: args.to_vec(),
        environment,
        output: a.output.as_deref().map(|p| absolute(&cwd, p)),
        error: a.error.as_deref().map(|p| absolute(&cwd, p)),
        log: a.log.as_deref().map(|p| absolute(&cwd, p)),
        request: Resources {
            cores: a.cores.max(1),
            memory_mb: a.memory,
            disk_mb: a.disk,
        },
        priority: a.priority,
        attributes: BTreeMap::new(),
        owner: current_user(),
        iwd: cwd.display().to_string(),
        tags: a.tags.clone(),
        leave_in_queue: false,
    };
    let (cluster, count) = block_on(async {
        let mut c = a.client.connect().await?;
        anyhow::Ok(c.submit(spec, a.count, bytes).await?)
    })?;
    let mut out = std::io::stdout().lock();
    write!(out, "Submitting job(s)")?;
    out.write_all(&vec![b'.'; count as usize])?;
    writeln!(out)?;
    writeln!(out, "{count} job(s) submitted to cluster {cluster}.")?;
    Ok(0)
}

/// A path as given if it names a directory part, else the first match on PATH.
pub fn find_executable(exe: &str) -> Result<PathBuf> {
    if exe.contains('/') {
        let p = PathBuf::from(exe);
        if !p.is_file() {
            bail!("executable {exe} does not exist or is not a file");
        }
        return Ok(p);
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    for dir in std::env::split_paths(&path) {
        let p = dir.join(exe);
        if p.is_file() {
            return Ok(p);
        }
    }
    bail!("executable {exe} not found on PATH")
}

/// Output paths are the submitter's: relative ones are relative to where
/// `submit` ran.
pub fn absolute(cwd: &Path, p: &str) -> String {
    if p.starts_with('/') {
        p.to_string()
    } else {
        cwd.join(p).display().to_string()
    }
}

/// The submitting Unix user (HTCondor's `Owner`).
pub use pilotq_actors::client::current_user;
