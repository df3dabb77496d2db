//! `pilotq output C.P [--stderr]`: the output the master kept for a job held
//! because its output file could not be written, byte for byte on stdout.

use crate::cli::OutputArgs;
use crate::client_opts::block_on;
use anyhow::{Context, Result};
use pilotq_wire::JobId;
use std::io::Write;

pub fn run(a: OutputArgs) -> Result<i32> {
    crate::logging::init("warn");
    let job: JobId = a
        .job
        .parse()
        .with_context(|| format!("{:?} is not a job id (C.P)", a.job))?;
    let bytes = block_on(async {
        let mut c = a.client.connect().await?;
        anyhow::Ok(c.kept_output(job, a.stderr).await?)
    })?;
    let mut out = std::io::stdout().lock();
    out.write_all(&bytes)?;
    out.flush()?;
    Ok(0)
}
