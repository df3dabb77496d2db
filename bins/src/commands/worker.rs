//! `pilotq worker`.

use crate::cli::WorkerArgs;
use crate::commands::seconds;
use crate::machine;
use actix::Actor;
use anyhow::{Context, Result};
use pilotq_actors::{Worker, WorkerConfig};
use pilotq_wire::Resources;

pub fn run(a: WorkerArgs) -> Result<i32> {
    crate::logging::init("info");
    let resources = Resources {
        cores: a.cores.unwrap_or_else(machine::cores),
        memory_mb: a.memory.unwrap_or_else(machine::memory_mb),
        disk_mb: a.disk.unwrap_or_else(|| machine::disk_mb(&a.workdir)),
    };
    if resources.cores == 0 {
        anyhow::bail!("--cores must be at least 1");
    }
    let mut cfg = WorkerConfig::new(a.master, a.workdir.clone(), resources);
    if let Some(n) = a.name {
        cfg.name = n;
    }
    cfg.secret = a.secret.load()?;
    cfg.tls = a.tls.load()?;
    cfg.heartbeat = seconds("heartbeat", a.heartbeat)?;
    cfg.output_cap = a.output_cap;
    cfg.max_frame = a.max_frame;
    cfg.single_task = a.single_task;
    cfg.tags = a.tags;
    cfg.idle_timeout = a
        .idle_timeout
        .map(|s| seconds("idle-timeout", s))
        .transpose()?;
    cfg.drain_file = a.drain_file;
    let done = cfg.done.clone();
    cfg.depth = a.depth.clamp(1, 64);
    cfg.cache_size = a.cache_size;
    tracing::info!(name = %cfg.name, %resources, workdir = %a.workdir.display(), "worker starting");
    let sys = actix::System::new();
    sys.block_on(async move {
        let worker = Worker::new(cfg)
            .with_context(|| format!("cannot use work dir {}", a.workdir.display()))?;
        let addr = worker.start();
        tokio::select! {
            sig = crate::signals::stop_requested() => {
                let killed = addr.send(pilotq_actors::worker::KillAll).await.unwrap_or(0);
                tracing::info!(killed, "{sig}: worker stopping");
            }
            // Drained, single task done, or idle: a clean exit.
            _ = done.notified() => {}
        }
        anyhow::Ok(())
    })?;
    Ok(0)
}
